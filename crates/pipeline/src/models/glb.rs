//! One mesh tile as GLB: the tile's triangles relative to its centre (glTF y-up, the
//! centre in the node's translation), with only the materials, textures, samplers and
//! images it uses, renumbered. Material JSON travels as the source wrote it
//! (KHR_materials_*, KHR_texture_transform…); references to missing images are removed.

use super::container::ImageData;
use super::scene::Style;
use crate::encode::features::{FeatureTable, ViewSink};
use crate::encode::{glb_container, pad_to};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use tessera_model::TriangleMesh;

/// What a tile's materials refer to.
pub struct MaterialSource<'a> {
    pub styles: &'a [Style],
    pub materials: &'a [Value],
    pub textures: &'a [Value],
    pub samplers: &'a [Value],
    /// Extensions the output must require when used.
    pub required: &'a [String],
}

/// Call `f` on every texture reference (`{"index": n, …}` under a key ending in
/// `Texture`, or `texture`) inside `v`; `f` returns the new index, or `None` to remove
/// the reference.
fn map_texture_refs(v: &mut Value, f: &mut dyn FnMut(u64) -> Option<u64>) {
    match v {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let is_ref = (k.ends_with("Texture") || k == "texture")
                    && map[&k].get("index").and_then(Value::as_u64).is_some();
                if is_ref {
                    let old = map[&k]["index"].as_u64().unwrap_or(0);
                    match f(old) {
                        Some(new) => {
                            map[&k]["index"] = json!(new);
                            if let Some(inner) = map.get_mut(&k) {
                                // texture infos may carry extensions (KHR_texture_transform)
                                if let Some(e) = inner.get_mut("extensions") {
                                    map_texture_refs(e, f);
                                }
                            }
                        }
                        None => {
                            map.remove(&k);
                        }
                    }
                } else if let Some(child) = map.get_mut(&k) {
                    map_texture_refs(child, f);
                }
            }
        }
        Value::Array(items) => {
            for i in items {
                map_texture_refs(i, f);
            }
        }
        _ => {}
    }
}

/// Image indices a texture uses: `source` and any extension's `source`.
pub(super) fn texture_images(t: &Value) -> Vec<u64> {
    let mut out: Vec<u64> = t["source"].as_u64().into_iter().collect();
    if let Some(ext) = t["extensions"].as_object() {
        out.extend(ext.values().filter_map(|e| e["source"].as_u64()));
    }
    out
}

fn collect_extensions(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "extensions" {
                    if let Some(e) = child.as_object() {
                        out.extend(e.keys().cloned());
                    }
                }
                collect_extensions(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_extensions(i, out)),
        _ => {}
    }
}

struct Bin {
    bytes: Vec<u8>,
    views: Vec<Value>,
    accessors: Vec<Value>,
}

impl ViewSink for Bin {
    fn aligned_view(&mut self, data: &[u8]) -> usize {
        pad_to(&mut self.bytes, 8, 0);
        // glTF wants every buffer view to hold at least one byte (all-empty strings).
        self.view(if data.is_empty() { &[0] } else { data }, None)
    }
}

impl Bin {
    fn view(&mut self, data: &[u8], target: Option<u32>) -> usize {
        pad_to(&mut self.bytes, 4, 0);
        let mut v = json!({"buffer": 0, "byteOffset": self.bytes.len(), "byteLength": data.len()});
        if let Some(t) = target {
            v["target"] = json!(t);
        }
        self.bytes.extend_from_slice(data);
        self.views.push(v);
        self.views.len() - 1
    }

    fn floats(&mut self, values: &[f32], components: usize, minmax: bool) -> usize {
        let mut data = Vec::with_capacity(values.len() * 4);
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        let view = self.view(&data, Some(34962));
        let ty = ["SCALAR", "VEC2", "VEC3", "VEC4"][components - 1];
        let mut a = json!({
            "bufferView": view, "componentType": 5126,
            "count": values.len() / components, "type": ty
        });
        if minmax {
            let mut min = vec![f32::INFINITY; components];
            let mut max = vec![f32::NEG_INFINITY; components];
            for e in values.chunks_exact(components) {
                for k in 0..components {
                    min[k] = min[k].min(e[k]);
                    max[k] = max[k].max(e[k]);
                }
            }
            a["min"] = json!(min);
            a["max"] = json!(max);
        }
        self.accessors.push(a);
        self.accessors.len() - 1
    }

    fn indices(&mut self, idx: &[u32], vertices: usize) -> usize {
        let (data, ct) = if vertices <= u16::MAX as usize {
            (
                idx.iter()
                    .flat_map(|&i| (i as u16).to_le_bytes())
                    .collect::<Vec<u8>>(),
                5123,
            )
        } else {
            (
                idx.iter()
                    .flat_map(|&i| i.to_le_bytes())
                    .collect::<Vec<u8>>(),
                5125,
            )
        };
        let view = self.view(&data, Some(34963));
        self.accessors.push(json!({
            "bufferView": view, "componentType": ct, "count": idx.len(), "type": "SCALAR"
        }));
        self.accessors.len() - 1
    }
}

/// Encode `meshes` (tileset frame, z up) as a GLB centred on `center`. `image` gives the
/// bytes to embed for a source image index (`None`: missing).
pub fn encode_mesh_glb(
    meshes: &[TriangleMesh],
    center: [f64; 3],
    src: &MaterialSource,
    image: &dyn Fn(usize) -> Option<ImageData>,
) -> Vec<u8> {
    encode_mesh_glb_features(meshes, center, src, image, None)
}

/// As [`encode_mesh_glb`], with the tile's features: meshes carrying a `_FEATURE_ID_0`
/// column get `EXT_mesh_features` feature ids pointing at `features`' property table
/// (`EXT_structural_metadata`).
pub fn encode_mesh_glb_features(
    meshes: &[TriangleMesh],
    center: [f64; 3],
    src: &MaterialSource,
    image: &dyn Fn(usize) -> Option<ImageData>,
    features: Option<&FeatureTable>,
) -> Vec<u8> {
    // Which materials and textures this tile uses, in ascending source order.
    let used_styles: BTreeSet<usize> = meshes
        .iter()
        .filter_map(|m| m.material.map(|s| s as usize))
        .collect();
    let used_materials: BTreeSet<usize> = used_styles
        .iter()
        .filter_map(|&s| src.styles.get(s)?.material)
        .filter(|&m| m < src.materials.len())
        .collect();
    let mut used_textures = BTreeSet::new();
    let mut note = |t: u64| {
        used_textures.insert(t as usize);
        Some(t)
    };
    for &m in &used_materials {
        map_texture_refs(&mut src.materials[m].clone(), &mut note);
    }
    for &s in &used_styles {
        if let Some(st) = src.styles.get(s) {
            map_texture_refs(&mut Value::Object(st.extensions.clone()), &mut note);
        }
    }
    // Fetch images; a texture survives when it exists and all its images do.
    let mut bin = Bin {
        bytes: Vec::new(),
        views: Vec::new(),
        accessors: Vec::new(),
    };
    let mut images_out: Vec<Value> = Vec::new();
    let mut image_map: BTreeMap<u64, Option<u64>> = BTreeMap::new();
    let mut textures_out: Vec<Value> = Vec::new();
    let mut texture_map: BTreeMap<u64, u64> = BTreeMap::new();
    let mut samplers_out: Vec<Value> = Vec::new();
    let mut sampler_map: BTreeMap<u64, u64> = BTreeMap::new();
    for &t in &used_textures {
        let Some(tex) = src.textures.get(t) else {
            continue;
        };
        let mut ok = true;
        for i in texture_images(tex) {
            let entry = image_map.entry(i).or_insert_with(|| {
                image(i as usize).map(|data| {
                    let view = bin.view(&data.bytes, None);
                    images_out.push(json!({"bufferView": view, "mimeType": data.mime}));
                    (images_out.len() - 1) as u64
                })
            });
            ok &= entry.is_some();
        }
        if !ok || texture_images(tex).is_empty() {
            continue;
        }
        let mut out = tex.clone();
        if let Some(s) = tex["source"].as_u64() {
            out["source"] = json!(image_map[&s]);
        }
        if let Some(ext) = out.get_mut("extensions").and_then(Value::as_object_mut) {
            for e in ext.values_mut() {
                if let Some(s) = e["source"].as_u64() {
                    e["source"] = json!(image_map[&s]);
                }
            }
        }
        if let Some(s) = tex["sampler"].as_u64() {
            match src.samplers.get(s as usize) {
                Some(sampler) => {
                    let n = *sampler_map.entry(s).or_insert_with(|| {
                        samplers_out.push(sampler.clone());
                        (samplers_out.len() - 1) as u64
                    });
                    out["sampler"] = json!(n);
                }
                None => {
                    if let Some(o) = out.as_object_mut() {
                        o.remove("sampler");
                    }
                }
            }
        }
        textures_out.push(out);
        texture_map.insert(t as u64, (textures_out.len() - 1) as u64);
    }
    let mut remap_tex = |t: u64| texture_map.get(&t).copied();
    let mut materials_out = Vec::new();
    let mut material_map = BTreeMap::new();
    for &m in &used_materials {
        let mut mat = src.materials[m].clone();
        map_texture_refs(&mut mat, &mut remap_tex);
        materials_out.push(mat);
        material_map.insert(m, materials_out.len() - 1);
    }

    // Geometry.
    let mut primitives = Vec::new();
    for mesh in meshes {
        let n = mesh.positions.len();
        let mut pos = Vec::with_capacity(n * 3);
        for p in &mesh.positions {
            let d = [p[0] - center[0], p[1] - center[1], p[2] - center[2]];
            pos.extend_from_slice(&[d[0] as f32, d[2] as f32, -d[1] as f32]);
        }
        let mut attributes = Map::new();
        attributes.insert("POSITION".into(), json!(bin.floats(&pos, 3, true)));
        if let Some(ns) = &mesh.normals {
            let v: Vec<f32> = ns.iter().flat_map(|n| [n[0], n[2], -n[1]]).collect();
            attributes.insert("NORMAL".into(), json!(bin.floats(&v, 3, false)));
        }
        if let Some(ts) = &mesh.tangents {
            let v: Vec<f32> = ts.iter().flat_map(|t| [t[0], t[2], -t[1], t[3]]).collect();
            attributes.insert("TANGENT".into(), json!(bin.floats(&v, 4, false)));
        }
        for c in &mesh.columns {
            let a = bin.floats(&c.values, c.components as usize, false);
            attributes.insert(c.name.clone(), json!(a));
        }
        let indices = bin.indices(&mesh.indices, n);
        let mut prim = json!({"attributes": attributes, "indices": indices, "mode": 4});
        if let Some(style) = mesh.material.and_then(|s| src.styles.get(s as usize)) {
            if let Some(m) = style.material.and_then(|m| material_map.get(&m)) {
                prim["material"] = json!(m);
            }
            if !style.extensions.is_empty() {
                let mut ext = Value::Object(style.extensions.clone());
                map_texture_refs(&mut ext, &mut remap_tex);
                // Property tables are not carried, so feature ids stand alone.
                if let Some(ids) = ext
                    .pointer_mut("/EXT_mesh_features/featureIds")
                    .and_then(Value::as_array_mut)
                {
                    for id in ids.iter_mut() {
                        if let Some(o) = id.as_object_mut() {
                            o.remove("propertyTable");
                        }
                    }
                    // A feature-id texture whose image is missing is dropped with it.
                    ids.retain(|id| id.get("attribute").is_some() || id.get("texture").is_some());
                }
                prim["extensions"] = ext;
            }
        }
        if let Some(table) = features {
            if mesh.columns.iter().any(|c| c.name == "_FEATURE_ID_0") {
                prim["extensions"]["EXT_mesh_features"] = json!({"featureIds": [{
                    "featureCount": table.count, "attribute": 0, "propertyTable": 0
                }]});
            }
        }
        primitives.push(prim);
    }
    let metadata = features.map(|t| t.metadata_extension(&mut bin));

    let mut doc = json!({
        "asset": {"version": "2.0", "generator": concat!("tessera ", env!("CARGO_PKG_VERSION"))},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "translation": [center[0], center[2], -center[1]]}],
        "meshes": [{"primitives": primitives}],
    });
    for (key, items) in [
        ("materials", materials_out),
        ("textures", textures_out),
        ("samplers", samplers_out),
        ("images", images_out),
    ] {
        if !items.is_empty() {
            doc[key] = Value::Array(items);
        }
    }
    if let Some(m) = metadata {
        doc["extensions"] = json!({"EXT_structural_metadata": m});
    }
    let mut used_ext = BTreeSet::new();
    collect_extensions(&doc, &mut used_ext);
    if !used_ext.is_empty() {
        let required: Vec<&String> = src
            .required
            .iter()
            .filter(|e| used_ext.contains(*e))
            .collect();
        doc["extensionsUsed"] = json!(used_ext);
        if !required.is_empty() {
            doc["extensionsRequired"] = json!(required);
        }
    }
    pad_to(&mut bin.bytes, 4, 0);
    doc["buffers"] = json!([{"byteLength": bin.bytes.len()}]);
    doc["bufferViews"] = Value::Array(bin.views);
    doc["accessors"] = Value::Array(bin.accessors);
    glb_container(&doc, bin.bytes)
}

/// Wrap a GLB as a 3D Tiles 1.0 `.b3dm` (no batch table).
pub fn b3dm(glb: &[u8]) -> Vec<u8> {
    b3dm_with_batch(glb, 0, None)
}

/// Wrap a GLB (whose vertices carry `_BATCHID`) as a `.b3dm` with `batch_length`
/// features and their JSON batch table.
pub fn b3dm_with_batch(glb: &[u8], batch_length: usize, batch: Option<&Value>) -> Vec<u8> {
    let mut ft = format!("{{\"BATCH_LENGTH\":{batch_length}}}").into_bytes();
    // Every part must end on an 8-byte boundary counted from the file start.
    while !(28 + ft.len()).is_multiple_of(8) {
        ft.push(b' ');
    }
    let mut bt = batch
        .map(|b| serde_json::to_vec(b).unwrap_or_default())
        .unwrap_or_default();
    while !(28 + ft.len() + bt.len()).is_multiple_of(8) {
        bt.push(b' ');
    }
    let total = 28 + ft.len() + bt.len() + glb.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"b3dm");
    for v in [1u32, total as u32, ft.len() as u32, 0, bt.len() as u32, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&ft);
    out.extend_from_slice(&bt);
    out.extend_from_slice(glb);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texture_references_are_renumbered_or_removed() {
        let mut mat = json!({
            "pbrMetallicRoughness": {"baseColorTexture": {"index": 3,
                "extensions": {"KHR_texture_transform": {"scale": [2, 2]}}}},
            "normalTexture": {"index": 5},
            "extensions": {"KHR_materials_sheen": {"sheenColorTexture": {"index": 3}}}
        });
        map_texture_refs(&mut mat, &mut |t| if t == 3 { Some(0) } else { None });
        assert_eq!(
            mat["pbrMetallicRoughness"]["baseColorTexture"]["index"],
            json!(0)
        );
        assert_eq!(
            mat["pbrMetallicRoughness"]["baseColorTexture"]["extensions"]["KHR_texture_transform"]
                ["scale"],
            json!([2, 2])
        );
        assert!(mat.get("normalTexture").is_none());
        assert_eq!(
            mat["extensions"]["KHR_materials_sheen"]["sheenColorTexture"]["index"],
            json!(0)
        );
        let mut used = BTreeSet::new();
        collect_extensions(&mat, &mut used);
        assert_eq!(
            used.into_iter().collect::<Vec<_>>(),
            vec![
                "KHR_materials_sheen".to_string(),
                "KHR_texture_transform".to_string()
            ]
        );
    }

    #[test]
    fn b3dm_header_is_aligned() {
        let b = b3dm(&[0u8; 16]);
        assert_eq!(&b[0..4], b"b3dm");
        let ft = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
        assert_eq!((28 + ft) % 8, 0);
        assert_eq!(
            u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize,
            b.len()
        );
    }
}
