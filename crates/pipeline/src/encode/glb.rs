//! glTF 2.0 binary point tiles for 3D Tiles 1.1: POINTS primitive, COLOR_0, and the
//! per-point attributes as EXT_structural_metadata property attributes so clients can
//! style by classification or intensity.

use super::{pad_to, PointTile};
use serde_json::{json, Value};

struct Builder {
    bin: Vec<u8>,
    views: Vec<Value>,
    accessors: Vec<Value>,
}

impl Builder {
    /// Add a vertex attribute whose data starts at `offset` in the binary chunk.
    fn attribute(&mut self, offset: usize, count: usize, stride: usize, accessor: Value) -> usize {
        self.views.push(json!({
            "buffer": 0, "byteOffset": offset, "byteLength": count * stride,
            "byteStride": stride, "target": 34962
        }));
        let mut a = accessor;
        a["bufferView"] = json!(self.views.len() - 1);
        a["count"] = json!(count);
        self.accessors.push(a);
        self.accessors.len() - 1
    }
}

/// sRGB-encoded 8-bit values to linear 16-bit ones.
fn srgb_to_linear_u16() -> [u16; 256] {
    let mut lut = [0u16; 256];
    for (i, v) in lut.iter_mut().enumerate() {
        let c = i as f64 / 255.0;
        let lin = if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        };
        *v = (lin * 65535.0).round() as u16;
    }
    lut
}

fn push_scalar_u8(bin: &mut Vec<u8>, v: &[u8]) {
    for &x in v {
        bin.extend_from_slice(&[x, 0, 0, 0]);
    }
}

/// Encode one point tile as GLB. The node's translation carries `tile.center`
/// (converted to glTF's y-up axes, as 3D Tiles clients expect).
pub fn encode_point_glb(tile: &PointTile) -> Vec<u8> {
    let n = tile.positions.len();
    let mut b = Builder {
        bin: Vec::with_capacity(n * 32),
        views: Vec::new(),
        accessors: Vec::new(),
    };
    let mut min = [f32::INFINITY; 3];
    let mut max = [f32::NEG_INFINITY; 3];
    for p in tile.positions {
        let yup = [p[0], p[2], -p[1]];
        for i in 0..3 {
            min[i] = min[i].min(yup[i]);
            max[i] = max[i].max(yup[i]);
            b.bin.extend_from_slice(&yup[i].to_le_bytes());
        }
    }
    let mut attributes = serde_json::Map::new();
    let pos = b.attribute(
        0,
        n,
        12,
        json!({"componentType": 5126, "type": "VEC3", "min": min, "max": max}),
    );
    attributes.insert("POSITION".into(), json!(pos));
    if let Some(rgb) = tile.rgb {
        // LAS colours are sRGB; glTF vertex colours are linear. 16 bits keep dark tones.
        let lut = srgb_to_linear_u16();
        let offset = b.bin.len();
        for c in rgb {
            for ch in c {
                b.bin
                    .extend_from_slice(&lut[usize::from(*ch)].to_le_bytes());
            }
            b.bin.extend_from_slice(&[0, 0]);
        }
        let i = b.attribute(
            offset,
            n,
            8,
            json!({"componentType": 5123, "normalized": true, "type": "VEC3"}),
        );
        attributes.insert("COLOR_0".into(), json!(i));
    }
    let mut props = serde_json::Map::new();
    let mut class_props = serde_json::Map::new();
    let mut add_prop = |b: &mut Builder,
                        name: &str,
                        attr: &str,
                        ct: u32,
                        ctype: &str,
                        bytes: &dyn Fn(&mut Vec<u8>)| {
        let offset = b.bin.len();
        bytes(&mut b.bin);
        let i = b.attribute(offset, n, 4, json!({"componentType": ct, "type": "SCALAR"}));
        attributes.insert(attr.into(), json!(i));
        props.insert(name.into(), json!({"attribute": attr}));
        class_props.insert(
            name.into(),
            json!({"type": "SCALAR", "componentType": ctype}),
        );
    };
    if let Some(v) = tile.intensity {
        add_prop(&mut b, "intensity", "_INTENSITY", 5123, "UINT16", &|bin| {
            for &x in v {
                bin.extend_from_slice(&x.to_le_bytes());
                bin.extend_from_slice(&[0, 0]);
            }
        });
    }
    if let Some(v) = tile.classification {
        add_prop(
            &mut b,
            "classification",
            "_CLASSIFICATION",
            5121,
            "UINT8",
            &|bin| push_scalar_u8(bin, v),
        );
    }
    if let Some(v) = tile.return_number {
        add_prop(
            &mut b,
            "return_number",
            "_RETURN_NUMBER",
            5121,
            "UINT8",
            &|bin| push_scalar_u8(bin, v),
        );
    }
    if let Some(v) = tile.number_of_returns {
        add_prop(
            &mut b,
            "number_of_returns",
            "_NUMBER_OF_RETURNS",
            5121,
            "UINT8",
            &|bin| push_scalar_u8(bin, v),
        );
    }
    let c = tile.center;
    let mut primitive = json!({"mode": 0, "attributes": attributes});
    let mut doc = json!({
        "asset": {"version": "2.0", "generator": concat!("tessera ", env!("CARGO_PKG_VERSION"))},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "translation": [c[0], c[2], -c[1]]}],
        "buffers": [{"byteLength": b.bin.len()}],
        "bufferViews": b.views,
        "accessors": b.accessors,
    });
    if !props.is_empty() {
        primitive["extensions"] = json!({"EXT_structural_metadata": {"propertyAttributes": [0]}});
        doc["extensionsUsed"] = json!(["EXT_structural_metadata"]);
        doc["extensions"] = json!({"EXT_structural_metadata": {
            "schema": {"id": "tessera_point_cloud", "classes": {"point": {"properties": class_props}}},
            "propertyAttributes": [{"class": "point", "properties": props}]
        }});
    }
    doc["meshes"] = json!([{"primitives": [primitive]}]);
    glb_container(&doc, b.bin)
}

/// Wrap a glTF JSON document and its binary chunk into a GLB.
pub fn glb_container(doc: &Value, mut bin: Vec<u8>) -> Vec<u8> {
    // Both chunks 4-byte aligned; the JSON padded further so the whole GLB is a multiple
    // of 8 bytes, as 3D Tiles 1.0 wants when it is embedded in a b3dm.
    let mut json_bytes = serde_json::to_vec(doc).unwrap_or_default();
    pad_to(&mut bin, 4, 0);
    pad_to(&mut json_bytes, 4, b' ');
    if !(28 + json_bytes.len() + bin.len()).is_multiple_of(8) {
        json_bytes.extend_from_slice(b"    ");
    }
    let total = 12 + 8 + json_bytes.len() + 8 + bin.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(json_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(&json_bytes);
    out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
    out.extend_from_slice(b"BIN\0");
    out.extend_from_slice(&bin);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glb_layout_is_sound() {
        let pos = [[1.0f32, 2.0, 3.0], [-1.0, 0.0, 0.5]];
        let rgb = [[255u8, 0, 0], [0, 255, 0]];
        let cls = [2u8, 6];
        let tile = PointTile {
            center: [10.0, 20.0, 30.0],
            positions: &pos,
            rgb: Some(&rgb),
            intensity: None,
            classification: Some(&cls),
            return_number: None,
            number_of_returns: None,
        };
        let glb = encode_point_glb(&tile);
        assert_eq!(&glb[0..4], b"glTF");
        assert_eq!(
            u32::from_le_bytes(glb[8..12].try_into().unwrap()) as usize,
            glb.len()
        );
        let jlen = u32::from_le_bytes(glb[12..16].try_into().unwrap()) as usize;
        let doc: Value = serde_json::from_slice(&glb[20..20 + jlen]).unwrap();
        assert_eq!(doc["nodes"][0]["translation"], json!([10.0, 30.0, -20.0]));
        assert_eq!(doc["accessors"][0]["max"], json!([1.0, 3.0, 0.0]));
        assert_eq!(doc["accessors"].as_array().unwrap().len(), 3);
        let blen = u32::from_le_bytes(glb[20 + jlen..24 + jlen].try_into().unwrap()) as usize;
        assert_eq!(blen, 2 * 12 + 2 * 8 + 2 * 4);
        let lut = srgb_to_linear_u16();
        assert_eq!((lut[0], lut[255]), (0, 65535));
        assert!((lut[128] as f64 / 65535.0 - 0.2158).abs() < 1e-3);
        assert_eq!(
            doc["meshes"][0]["primitives"][0]["attributes"]["_CLASSIFICATION"],
            json!(2)
        );
    }
}
