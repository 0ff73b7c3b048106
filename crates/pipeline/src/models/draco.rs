//! KHR_draco_mesh_compression: decode a primitive's Draco stream with the pure-Rust
//! `draco-core` decoder and hand back attribute columns in glTF's names.

use super::accessor::{layout, MAX_COUNT};
use super::container::{view_bytes, Asset};
use draco_core::{DecodeLimits, DecoderBuffer, Mesh, MeshDecoder};
use gltf::json::accessor::ComponentType;
use serde_json::Value;

/// Decoded bytes one primitive may produce (positions, normals, uvs… together).
const MAX_DECODED_BYTES: u64 = 2 << 30;

/// What one decode may produce: as many points as an accessor may hold, as many faces as
/// an index accessor may list, and attribute bytes within the memory budget.
fn limits(budget: &crate::refs::Budget) -> DecodeLimits {
    DecodeLimits::default()
        .with_max_points(MAX_COUNT)
        .with_max_faces(MAX_COUNT / 3)
        .with_max_decoded_bytes(MAX_DECODED_BYTES.min(budget.memory_bytes / 2))
}

pub struct Decoded {
    /// (glTF attribute name, components, values) in the order the extension lists them.
    pub attributes: Vec<(String, usize, Vec<f32>)>,
    pub indices: Vec<u32>,
}

/// Decode the stream named by `ext` (the primitive's extension object). `accessors`
/// maps attribute names to the primitive's accessors, which give component counts and
/// normalisation.
pub fn decode(
    asset: &Asset,
    ext: &Value,
    accessors: &[(String, usize)],
) -> Result<Decoded, String> {
    let view = ext["bufferView"]
        .as_u64()
        .and_then(|v| usize::try_from(v).ok())
        .ok_or("the extension names no bufferView")?;
    let bytes = view_bytes(asset, view)?;
    let mut buffer = DecoderBuffer::new(bytes).with_limits(limits(&asset.budget));
    let mut mesh = Mesh::new();
    let decoded = crate::contain::contained(std::panic::AssertUnwindSafe(|| {
        MeshDecoder::new().decode(&mut buffer, &mut mesh)
    }))
    .map_err(|m| format!("Draco stream in bufferView {view} is corrupt ({m})"))?;
    decoded.map_err(|e| format!("Draco stream in bufferView {view} does not decode: {e}"))?;
    let points = mesh.num_points();
    let corners = mesh
        .num_faces()
        .checked_mul(3)
        .ok_or("the Draco face count overflows")?;
    asset
        .budget
        .check(corners as u128 * 4, "the Draco stream's faces")?;
    let mut indices = Vec::with_capacity(corners);
    for f in mesh.faces() {
        for p in f {
            if p.0 as usize >= points {
                return Err(format!("Draco face names point {} of {points}", p.0));
            }
            indices.push(p.0);
        }
    }
    let map = ext["attributes"]
        .as_object()
        .ok_or("the extension has no attributes map")?;
    let mut attributes = Vec::new();
    for (name, accessor) in accessors {
        let Some(uid) = map.get(name).and_then(Value::as_u64) else {
            continue; // stored uncompressed next to the Draco stream
        };
        let l = layout(asset, *accessor)?;
        let att = mesh
            .attribute_by_unique_id(uid as u32)
            .ok_or_else(|| format!("attribute {name} (Draco id {uid}) is not in the stream"))?;
        asset.budget.check(
            points as u128 * l.components as u128 * 4,
            &format!("Draco attribute {name}"),
        )?;
        let mut values = att.read_f32s(points, l.components);
        if l.normalized {
            let scale = match l.component {
                ComponentType::U8 => 1.0 / 255.0,
                ComponentType::I8 => 1.0 / 127.0,
                ComponentType::U16 => 1.0 / 65535.0,
                ComponentType::I16 => 1.0 / 32767.0,
                _ => 1.0,
            };
            for v in values.iter_mut() {
                *v = (*v * scale).max(-1.0);
            }
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(format!(
                "attribute {name} decodes to NaN or infinite values"
            ));
        }
        attributes.push((name.clone(), l.components, values));
    }
    Ok(Decoded {
        attributes,
        indices,
    })
}
