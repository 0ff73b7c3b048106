//! glTF 2.0 binary point tiles for 3D Tiles 1.1: POINTS primitive, COLOR_0, and the
//! per-point attributes as EXT_structural_metadata property attributes so clients can
//! style by classification or intensity; compact tiles quantize positions and compress
//! every stream with meshopt.

use super::quantize::{Grid, Layout};
use super::{pad_to, ExtraColumn, PointTile};
use serde_json::{json, Value};
use tessera_model::ScalarKind;

/// The binary chunk, buffer views and accessors of one tile. With meshopt, each stream
/// is stored compressed in the GLB's chunk and described as an uncompressed view of a
/// fallback buffer that has no data of its own (EXT_meshopt_compression).
struct Builder {
    meshopt: bool,
    bin: Vec<u8>,
    fallback_len: usize,
    views: Vec<Value>,
    accessors: Vec<Value>,
}

/// meshopt's vertex codec over `count` elements of `N` bytes; bitstream version 0, the
/// one EXT_meshopt_compression defines.
fn meshopt_stream<const N: usize>(data: &[u8]) -> Result<Vec<u8>, String> {
    let elements: Vec<[u8; N]> = data
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            a
        })
        .collect();
    meshopt::encode_vertex_buffer_level(&elements, 2, Some(0)).map_err(|e| e.to_string())
}

impl Builder {
    /// Add one vertex stream of `count` elements, `stride` bytes each; returns its view.
    fn stream(
        &mut self,
        data: &[u8],
        count: usize,
        stride: usize,
        filter: Option<&str>,
    ) -> Result<usize, String> {
        debug_assert_eq!(data.len(), count * stride);
        if !self.meshopt {
            pad_to(&mut self.bin, 4, 0);
            self.views.push(json!({
                "buffer": 0, "byteOffset": self.bin.len(), "byteLength": data.len(),
                "byteStride": stride, "target": 34962
            }));
            self.bin.extend_from_slice(data);
            return Ok(self.views.len() - 1);
        }
        let packed = match stride {
            4 => meshopt_stream::<4>(data)?,
            8 => meshopt_stream::<8>(data)?,
            12 => meshopt_stream::<12>(data)?,
            16 => meshopt_stream::<16>(data)?,
            other => return Err(format!("no meshopt stream of stride {other}")),
        };
        pad_to(&mut self.bin, 4, 0);
        let mut ext = json!({
            "buffer": 0, "byteOffset": self.bin.len(), "byteLength": packed.len(),
            "byteStride": stride, "count": count, "mode": "ATTRIBUTES"
        });
        if let Some(f) = filter {
            ext["filter"] = json!(f);
        }
        self.bin.extend_from_slice(&packed);
        self.views.push(json!({
            "buffer": 1, "byteOffset": self.fallback_len, "byteLength": data.len(),
            "byteStride": stride, "target": 34962,
            "extensions": {"EXT_meshopt_compression": ext}
        }));
        self.fallback_len += data.len();
        Ok(self.views.len() - 1)
    }

    fn accessor(&mut self, view: usize, count: usize, accessor: Value) -> usize {
        let mut a = accessor;
        a["bufferView"] = json!(view);
        a["count"] = json!(count);
        self.accessors.push(a);
        self.accessors.len() - 1
    }

    fn buffers(&self) -> Value {
        if self.meshopt {
            json!([
                {"byteLength": self.bin.len()},
                {"byteLength": self.fallback_len, "extensions": {"EXT_meshopt_compression": {"fallback": true}}}
            ])
        } else {
            json!([{"byteLength": self.bin.len()}])
        }
    }
}

/// sRGB-encoded 8-bit values to linear ones.
fn srgb_to_linear() -> [f64; 256] {
    let mut lut = [0.0; 256];
    for (i, v) in lut.iter_mut().enumerate() {
        let c = i as f64 / 255.0;
        *v = if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        };
    }
    lut
}

/// sRGB-encoded 16-bit values to linear 16-bit ones.
fn srgb16_to_linear() -> &'static [u16] {
    static LUT: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    LUT.get_or_init(|| {
        (0..=u16::MAX)
            .map(|i| {
                let c = f64::from(i) / 65535.0;
                let l = if c <= 0.04045 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                };
                (l * 65535.0).round() as u16
            })
            .collect()
    })
}

/// One extra column as a 4-byte-stride vertex stream: 8/16-bit integers as they are,
/// everything else as 32-bit floats relative to the tile's smallest value (so GPS
/// times keep sub-millisecond steps). Returns (component type, offset, bytes).
fn extra_stream(col: &ExtraColumn) -> (u32, f64, Vec<u8>) {
    let n = col.values.len();
    let mut d = Vec::with_capacity(n * 4);
    if col.dim.is_exact_small_int() {
        let ct = match col.dim.kind {
            ScalarKind::I8 => 5120,
            ScalarKind::U8 => 5121,
            ScalarKind::I16 => 5122,
            _ => 5123,
        };
        for &v in &col.values {
            let w: [u8; 2] = match ct {
                5120 => [(v as i8) as u8, 0],
                5121 => [v as u8, 0],
                5122 => (v as i16).to_le_bytes(),
                _ => (v as u16).to_le_bytes(),
            };
            d.extend_from_slice(&[w[0], w[1], 0, 0]);
        }
        return (ct, 0.0, d);
    }
    let base = col.base();
    for &v in &col.values {
        d.extend_from_slice(&((v - base) as f32).to_le_bytes());
    }
    (5126, base, d)
}

fn push_scalar_u8(bin: &mut Vec<u8>, v: &[u8]) {
    for &x in v {
        bin.extend_from_slice(&[x, 0, 0, 0]);
    }
}

/// POSITION: floats relative to the points' centre, or quantized on `grid`. Returns the
/// accessor, the node's translation and scale (glTF axes, y up), and whether
/// KHR_mesh_quantization is used.
fn positions(
    b: &mut Builder,
    tile: &PointTile,
    grid: Option<&Grid>,
) -> Result<(usize, [f64; 3], Option<f64>, bool), String> {
    let n = tile.positions.len();
    match grid.map(|g| (g, g.layout())) {
        None => {
            let c = tile.bounds.center();
            let mut data = Vec::with_capacity(n * 12);
            let mut min = [f32::INFINITY; 3];
            let mut max = [f32::NEG_INFINITY; 3];
            for p in tile.positions {
                let yup = [
                    (p[0] - c[0]) as f32,
                    (p[2] - c[2]) as f32,
                    -(p[1] - c[1]) as f32,
                ];
                for i in 0..3 {
                    min[i] = min[i].min(yup[i]);
                    max[i] = max[i].max(yup[i]);
                    data.extend_from_slice(&yup[i].to_le_bytes());
                }
            }
            let view = b.stream(&data, n, 12, None)?;
            let acc = b.accessor(
                view,
                n,
                json!({"componentType": 5126, "type": "VEC3", "min": min, "max": max}),
            );
            Ok((acc, [c[0], c[2], -c[1]], None, false))
        }
        Some((g, Layout::U16)) => {
            let mut data = Vec::with_capacity(n * 8);
            let mut min = [u16::MAX; 3];
            let mut max = [0u16; 3];
            for p in tile.positions {
                let q = g.u16_yup(p);
                for i in 0..3 {
                    min[i] = min[i].min(q[i]);
                    max[i] = max[i].max(q[i]);
                    data.extend_from_slice(&q[i].to_le_bytes());
                }
                data.extend_from_slice(&[0, 0]);
            }
            let view = b.stream(&data, n, 8, None)?;
            let acc = b.accessor(
                view,
                n,
                json!({"componentType": 5123, "type": "VEC3", "min": min, "max": max}),
            );
            Ok((acc, g.u16_translation_yup(), Some(g.step_m()), true))
        }
        Some((g, Layout::Exponential)) => {
            let mut data = Vec::with_capacity(n * 12);
            let mut min = [f32::INFINITY; 3];
            let mut max = [f32::NEG_INFINITY; 3];
            for p in tile.positions {
                let (words, values) = g.exp_yup(p);
                for i in 0..3 {
                    min[i] = min[i].min(values[i]);
                    max[i] = max[i].max(values[i]);
                    data.extend_from_slice(&words[i].to_le_bytes());
                }
            }
            let view = b.stream(&data, n, 12, Some("EXPONENTIAL"))?;
            let acc = b.accessor(
                view,
                n,
                json!({"componentType": 5126, "type": "VEC3", "min": min, "max": max}),
            );
            Ok((acc, g.exp_translation_yup(), None, false))
        }
    }
}

/// Encode one point tile as GLB. The node's translation (and, with 16-bit positions,
/// its scale) places the points in the tile frame, converted to glTF's y-up axes as 3D
/// Tiles clients expect. With `grid`, positions are quantized on it and every stream is
/// meshopt-compressed; points should then come in the grid's Morton order.
pub fn encode_point_glb(tile: &PointTile, grid: Option<&Grid>) -> Result<Vec<u8>, String> {
    let n = tile.positions.len();
    let mut b = Builder {
        meshopt: grid.is_some(),
        bin: Vec::with_capacity(n * 16),
        fallback_len: 0,
        views: Vec::new(),
        accessors: Vec::new(),
    };
    let (pos, translation, scale, quantized) = positions(&mut b, tile, grid)?;
    let mut attributes = serde_json::Map::new();
    attributes.insert("POSITION".into(), json!(pos));
    if let Some(rgb) = tile.rgb {
        // LAS colours are sRGB; glTF vertex colours are linear. Compact tiles keep
        // normalized 8 bits unless the source's colours use all 16; plain tiles keep 16
        // bits (dark tones survive the conversion to linear).
        let lut = srgb_to_linear();
        let (data, stride, ct) = if b.meshopt && !tile.rgb16 {
            let mut d = Vec::with_capacity(n * 4);
            for c in rgb {
                for ch in c {
                    d.push((lut[usize::from(ch >> 8)] * 255.0).round() as u8);
                }
                d.push(0);
            }
            (d, 4, 5121)
        } else {
            let deep = tile.rgb16.then(srgb16_to_linear);
            let mut d = Vec::with_capacity(n * 8);
            for c in rgb {
                for ch in c {
                    let v = match deep {
                        Some(l) => l[usize::from(*ch)],
                        None => (lut[usize::from(ch >> 8)] * 65535.0).round() as u16,
                    };
                    d.extend_from_slice(&v.to_le_bytes());
                }
                d.extend_from_slice(&[0, 0]);
            }
            (d, 8, 5123)
        };
        let view = b.stream(&data, n, stride, None)?;
        let i = b.accessor(
            view,
            n,
            json!({"componentType": ct, "normalized": true, "type": "VEC3"}),
        );
        attributes.insert("COLOR_0".into(), json!(i));
    }
    let mut props = serde_json::Map::new();
    let mut class_props = serde_json::Map::new();
    let mut add_prop = |b: &mut Builder,
                        id: &str,
                        attr: String,
                        ct: u32,
                        class_prop: Value,
                        offset: f64,
                        data: Vec<u8>|
     -> Result<(), String> {
        let view = b.stream(&data, n, 4, None)?;
        let i = b.accessor(view, n, json!({"componentType": ct, "type": "SCALAR"}));
        attributes.insert(attr.clone(), json!(i));
        let mut p = json!({"attribute": attr});
        if offset != 0.0 {
            p["offset"] = json!(offset);
        }
        props.insert(id.into(), p);
        class_props.insert(id.into(), class_prop);
        Ok(())
    };
    let small = |ctype: &str| json!({"type": "SCALAR", "componentType": ctype});
    if let Some(v) = tile.intensity {
        let mut d = Vec::with_capacity(n * 4);
        for &x in v {
            d.extend_from_slice(&x.to_le_bytes());
            d.extend_from_slice(&[0, 0]);
        }
        add_prop(
            &mut b,
            "intensity",
            "_INTENSITY".into(),
            5123,
            small("UINT16"),
            0.0,
            d,
        )?;
    }
    for (v, name, attr) in [
        (tile.classification, "classification", "_CLASSIFICATION"),
        (tile.return_number, "return_number", "_RETURN_NUMBER"),
        (
            tile.number_of_returns,
            "number_of_returns",
            "_NUMBER_OF_RETURNS",
        ),
    ] {
        if let Some(v) = v {
            let mut d = Vec::with_capacity(n * 4);
            push_scalar_u8(&mut d, v);
            add_prop(&mut b, name, attr.into(), 5121, small("UINT8"), 0.0, d)?;
        }
    }
    for col in tile.extras {
        let dim = col.dim;
        let attr = format!("_{}", dim.id.to_ascii_uppercase());
        let mut class_prop = json!({"type": "SCALAR", "name": dim.name});
        if !dim.description.is_empty() {
            class_prop["description"] = json!(dim.description);
        }
        let (ct, offset, data) = extra_stream(col);
        class_prop["componentType"] = json!(match ct {
            5120 => "INT8",
            5121 => "UINT8",
            5122 => "INT16",
            5123 => "UINT16",
            _ => "FLOAT32",
        });
        if let (Some(nd), true) = (dim.no_data, ct != 5126) {
            class_prop["noData"] = json!(nd as i64);
        }
        add_prop(&mut b, &dim.id, attr, ct, class_prop, offset, data)?;
    }
    let mut node = json!({"mesh": 0, "translation": translation});
    if let Some(s) = scale {
        node["scale"] = json!([s, s, s]);
    }
    let mut primitive = json!({"mode": 0, "attributes": attributes});
    let mut doc = json!({
        "asset": {"version": "2.0", "generator": concat!("tessera ", env!("CARGO_PKG_VERSION"))},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [node],
        "buffers": b.buffers(),
        "bufferViews": b.views,
        "accessors": b.accessors,
    });
    let mut used = Vec::new();
    let mut required = Vec::new();
    if b.meshopt {
        used.push("EXT_meshopt_compression");
        required.push("EXT_meshopt_compression");
    }
    if quantized {
        used.push("KHR_mesh_quantization");
        required.push("KHR_mesh_quantization");
    }
    if !props.is_empty() {
        primitive["extensions"] = json!({"EXT_structural_metadata": {"propertyAttributes": [0]}});
        used.push("EXT_structural_metadata");
        doc["extensions"] = json!({"EXT_structural_metadata": {
            "schema": {"id": "tessera_point_cloud", "classes": {"point": {"properties": class_props}}},
            "propertyAttributes": [{"class": "point", "properties": props}]
        }});
    }
    if !used.is_empty() {
        doc["extensionsUsed"] = json!(used);
    }
    if !required.is_empty() {
        doc["extensionsRequired"] = json!(required);
    }
    doc["meshes"] = json!([{"primitives": [primitive]}]);
    Ok(glb_container(&doc, b.bin))
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

    fn parts(glb: &[u8]) -> (Value, &[u8]) {
        assert_eq!(&glb[0..4], b"glTF");
        assert_eq!(
            u32::from_le_bytes(glb[8..12].try_into().unwrap()) as usize,
            glb.len()
        );
        let jlen = u32::from_le_bytes(glb[12..16].try_into().unwrap()) as usize;
        let doc: Value = serde_json::from_slice(&glb[20..20 + jlen]).unwrap();
        (doc, &glb[20 + jlen + 8..])
    }

    #[test]
    fn plain_glb_layout_is_sound() {
        let pos = [[11.0, 22.0, 33.0], [9.0, 20.0, 30.5]];
        let rgb = [[65_535u16, 0, 0], [0, 65_535, 0]];
        let cls = [2u8, 6];
        let tile = PointTile {
            positions: &pos,
            bounds: tessera_model::Aabb::from_points(&pos),
            rgb: Some(&rgb),
            rgb16: false,
            intensity: None,
            classification: Some(&cls),
            return_number: None,
            number_of_returns: None,
            extras: &[],
        };
        let glb = encode_point_glb(&tile, None).unwrap();
        let (doc, bin) = parts(&glb);
        assert_eq!(doc["nodes"][0]["translation"], json!([10.0, 31.75, -21.0]));
        assert_eq!(doc["accessors"][0]["max"], json!([1.0, 1.25, 1.0]));
        assert_eq!(doc["accessors"].as_array().unwrap().len(), 3);
        assert_eq!(bin.len(), 2 * 12 + 2 * 8 + 2 * 4);
        assert!(doc.get("extensionsRequired").is_none());
        let lut = srgb_to_linear();
        assert!((lut[128] - 0.2158).abs() < 1e-3);
        assert_eq!(
            doc["meshes"][0]["primitives"][0]["attributes"]["_CLASSIFICATION"],
            json!(2)
        );
    }

    /// Decode a meshopt-compressed view back to its plain bytes.
    fn unpack(doc: &Value, bin: &[u8], view: usize) -> Vec<u8> {
        let e = &doc["bufferViews"][view]["extensions"]["EXT_meshopt_compression"];
        let off = e["byteOffset"].as_u64().unwrap() as usize;
        let len = e["byteLength"].as_u64().unwrap() as usize;
        let count = e["count"].as_u64().unwrap() as usize;
        let stride = e["byteStride"].as_u64().unwrap() as usize;
        let src = &bin[off..off + len];
        let out: Vec<u8> = match stride {
            4 => meshopt::decode_vertex_buffer::<[u8; 4]>(src, count)
                .unwrap()
                .concat(),
            8 => meshopt::decode_vertex_buffer::<[u8; 8]>(src, count)
                .unwrap()
                .concat(),
            12 => meshopt::decode_vertex_buffer::<[u8; 12]>(src, count)
                .unwrap()
                .concat(),
            s => panic!("stride {s}"),
        };
        out
    }

    #[test]
    fn compact_glb_decodes_to_the_points() {
        for spread_m in [30.0, 900.0] {
            let pos: Vec<[f64; 3]> = (0..500)
                .map(|i| {
                    let t = f64::from(i) / 499.0;
                    [
                        100.0 + t * spread_m,
                        -50.0 + (t * 9.0).cos() * 10.0,
                        5.0 + t,
                    ]
                })
                .collect();
            let int: Vec<u16> = (0..500).map(|i| (i * 97 % 65_536) as u16).collect();
            let rgb: Vec<[u16; 3]> = (0..500)
                .map(|i| [(i % 256) as u16 * 257, 7 * 257, 65_535])
                .collect();
            let tile = PointTile {
                positions: &pos,
                bounds: tessera_model::Aabb::from_points(&pos),
                rgb: Some(&rgb),
                rgb16: false,
                intensity: Some(&int),
                classification: None,
                return_number: None,
                number_of_returns: None,
                extras: &[],
            };
            let grid = Grid::new(&tile.bounds, -10);
            let glb = encode_point_glb(&tile, Some(&grid)).unwrap();
            let (doc, bin) = parts(&glb);
            assert!(glb.len() < 500 * 12, "{} bytes", glb.len());
            assert_eq!(
                doc["extensionsRequired"][0],
                json!("EXT_meshopt_compression")
            );
            assert_eq!(
                doc["buffers"][1]["extensions"]["EXT_meshopt_compression"]["fallback"],
                json!(true)
            );
            let node = &doc["nodes"][0];
            let t: Vec<f64> = node["translation"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let raw = unpack(&doc, bin, 0);
            let u16_layout = grid.layout() == Layout::U16;
            assert_eq!(u16_layout, spread_m < 64.0);
            for (i, p) in pos.iter().enumerate() {
                let yup: [f64; 3] = if u16_layout {
                    let s = node["scale"][0].as_f64().unwrap();
                    [0, 1, 2].map(|k| {
                        let o = i * 8 + k * 2;
                        t[k] + f64::from(u16::from_le_bytes([raw[o], raw[o + 1]])) * s
                    })
                } else {
                    assert_eq!(
                        doc["bufferViews"][0]["extensions"]["EXT_meshopt_compression"]["filter"],
                        json!("EXPONENTIAL")
                    );
                    let mut words: Vec<[u32; 3]> = (0..pos.len())
                        .map(|j| {
                            [0, 1, 2].map(|k| {
                                let o = j * 12 + k * 4;
                                u32::from_le_bytes(raw[o..o + 4].try_into().unwrap())
                            })
                        })
                        .collect();
                    meshopt::decode_filter_exp(&mut words);
                    [0, 1, 2].map(|k| t[k] + f64::from(f32::from_bits(words[i][k])))
                };
                let back = [yup[0], -yup[2], yup[1]];
                for k in 0..3 {
                    assert!((back[k] - p[k]).abs() < 0.0005, "{p:?} vs {back:?}");
                }
            }
            let acc = doc["meshes"][0]["primitives"][0]["attributes"]["_INTENSITY"]
                .as_u64()
                .unwrap() as usize;
            let view = doc["accessors"][acc]["bufferView"].as_u64().unwrap() as usize;
            let raw = unpack(&doc, bin, view);
            for (i, v) in int.iter().enumerate() {
                assert_eq!(u16::from_le_bytes([raw[i * 4], raw[i * 4 + 1]]), *v);
            }
        }
    }

    #[test]
    fn extra_columns_and_deep_colour() {
        use tessera_model::ExtraDimension;
        let pos: Vec<[f64; 3]> = (0..300).map(|i| [f64::from(i) * 0.1, 0.0, 1.0]).collect();
        let rgb: Vec<[u16; 3]> = (0..300).map(|i| [i as u16 * 200 + 1, 0, 65_535]).collect();
        let dim = |id: &str, kind, scaled| ExtraDimension {
            name: id.into(),
            id: id.into(),
            kind,
            scaled,
            no_data: Some(0.0),
            description: String::new(),
        };
        let deviation = dim("Deviation", ScalarKind::U16, false);
        let gps = dim("gps_time", ScalarKind::F64, false);
        let extras = [
            ExtraColumn {
                dim: &deviation,
                values: (0..300).map(|i| f64::from(i * 13)).collect(),
            },
            ExtraColumn {
                dim: &gps,
                values: (0..300)
                    .map(|i| 390_583_952.25 + f64::from(i) * 0.001)
                    .collect(),
            },
        ];
        let tile = PointTile {
            positions: &pos,
            bounds: tessera_model::Aabb::from_points(&pos),
            rgb: Some(&rgb),
            rgb16: true,
            intensity: None,
            classification: None,
            return_number: None,
            number_of_returns: None,
            extras: &extras,
        };
        let grid = Grid::new(&tile.bounds, -10);
        let glb = encode_point_glb(&tile, Some(&grid)).unwrap();
        let (doc, bin) = parts(&glb);
        let prim = &doc["meshes"][0]["primitives"][0]["attributes"];
        let colour = prim["COLOR_0"].as_u64().unwrap() as usize;
        assert_eq!(doc["accessors"][colour]["componentType"], json!(5123));
        let meta = &doc["extensions"]["EXT_structural_metadata"];
        let class = &meta["schema"]["classes"]["point"]["properties"];
        assert_eq!(class["Deviation"]["componentType"], json!("UINT16"));
        assert_eq!(class["gps_time"]["componentType"], json!("FLOAT32"));
        let props = &meta["propertyAttributes"][0]["properties"];
        let base = props["gps_time"]["offset"].as_f64().unwrap();
        assert_eq!(base, 390_583_952.25);
        let read = |attr: &str| {
            let acc = prim[attr].as_u64().unwrap() as usize;
            let view = doc["accessors"][acc]["bufferView"].as_u64().unwrap() as usize;
            unpack(&doc, bin, view)
        };
        let dev = read("_DEVIATION");
        let time = read("_GPS_TIME");
        for i in 0..300 {
            let d = u16::from_le_bytes([dev[i * 4], dev[i * 4 + 1]]);
            assert_eq!(f64::from(d), extras[0].values[i]);
            let t = f32::from_le_bytes(time[i * 4..i * 4 + 4].try_into().unwrap());
            assert!((base + f64::from(t) - extras[1].values[i]).abs() < 1e-5);
        }
    }
}
