//! glTF/GLB models → 3D Tiles over the real samples and generated broken models.

use crate::helpers::{
    accessor_bytes, assert_data_error, read_glb, run_with_threads, samples, tessera, tree,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tessera_pipeline::{JobSpec, TilesFormat};
use tessera_proj::Transformer;

const BERLIN: [f64; 3] = [13.3777, 52.5163, 40.0];

fn model_spec(input: &Path, out: &Path) -> JobSpec {
    let mut spec = JobSpec::new(vec![input.to_path_buf()], out.to_path_buf());
    spec.model.position = Some(BERLIN);
    spec
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// One decoded mesh tile: its JSON and per primitive the tileset-frame (ENU) positions
/// and triangle corner indices.
struct MeshTile {
    uri: String,
    doc: Value,
    prims: Vec<(Vec<[f64; 3]>, Vec<u32>)>,
    box_: Vec<f64>,
    geometric_error: f64,
    leaf: bool,
}

fn decode_mesh_tile(dir: &Path, tile: &Value) -> MeshTile {
    let uri = tile["content"]["uri"].as_str().unwrap().to_string();
    let (doc, bin) = read_glb(&std::fs::read(dir.join(&uri)).unwrap());
    let t = numbers(&doc["nodes"][0]["translation"]);
    let mut prims = Vec::new();
    for p in doc["meshes"][0]["primitives"].as_array().unwrap() {
        let pa = p["attributes"]["POSITION"].as_u64().unwrap();
        let pb = accessor_bytes(&doc, &bin, pa);
        let f = |i: usize| f32::from_le_bytes(pb[i..i + 4].try_into().unwrap()) as f64;
        let n = doc["accessors"][pa as usize]["count"].as_u64().unwrap() as usize;
        let positions = (0..n)
            .map(|i| {
                let y_up = [f(i * 12) + t[0], f(i * 12 + 4) + t[1], f(i * 12 + 8) + t[2]];
                [y_up[0], -y_up[2], y_up[1]]
            })
            .collect();
        let ia = p["indices"].as_u64().unwrap();
        let ib = accessor_bytes(&doc, &bin, ia);
        let count = doc["accessors"][ia as usize]["count"].as_u64().unwrap() as usize;
        let ct = doc["accessors"][ia as usize]["componentType"]
            .as_u64()
            .unwrap();
        let indices = (0..count)
            .map(|i| match ct {
                5123 => u16::from_le_bytes(ib[i * 2..i * 2 + 2].try_into().unwrap()) as u32,
                _ => u32::from_le_bytes(ib[i * 4..i * 4 + 4].try_into().unwrap()),
            })
            .collect();
        prims.push((positions, indices));
    }
    MeshTile {
        uri,
        doc,
        prims,
        box_: numbers(&tile["boundingVolume"]["box"]),
        geometric_error: tile["geometricError"].as_f64().unwrap(),
        leaf: tile.get("children").is_none(),
    }
}

/// Every content tile, parents before children, checking on the way that errors do not
/// grow downwards and that every vertex is inside its tile's box.
fn decode_model(dir: &Path) -> (Value, Vec<MeshTile>) {
    let ts: Value =
        serde_json::from_slice(&std::fs::read(dir.join("tileset.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    let mut stack = vec![ts["root"].clone()];
    while let Some(t) = stack.pop() {
        if t.get("content").is_some() {
            let m = decode_mesh_tile(dir, &t);
            for (pos, idx) in &m.prims {
                assert!(idx.iter().all(|&i| (i as usize) < pos.len()));
                for p in pos {
                    for k in 0..3 {
                        let half = m.box_[3 + k * 4];
                        assert!(
                            (p[k] - m.box_[k]).abs() <= half + 1e-4,
                            "{}: vertex {p:?} outside box {:?}",
                            m.uri,
                            m.box_
                        );
                    }
                }
            }
            out.push(m);
        }
        for c in t["children"].as_array().into_iter().flatten() {
            assert!(c["geometricError"].as_f64().unwrap() <= t["geometricError"].as_f64().unwrap());
            stack.push(c.clone());
        }
    }
    (ts, out)
}

fn leaf_triangles(tiles: &[MeshTile]) -> usize {
    tiles
        .iter()
        .filter(|t| t.leaf)
        .flat_map(|t| t.prims.iter().map(|(_, i)| i.len() / 3))
        .sum()
}

/// Triangles the scene draws, counted with the gltf crate's own document model: every
/// node instance of every triangle primitive (Draco primitives keep their index accessor
/// for the count).
fn scene_triangles(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let g = gltf::Gltf::from_slice_without_validation(&bytes).unwrap();
    fn walk(n: gltf::Node) -> usize {
        let own = n.mesh().map_or(0, |m| {
            m.primitives()
                .filter(|p| p.mode() == gltf::mesh::Mode::Triangles)
                .map(|p| {
                    p.indices().map_or_else(
                        || p.get(&gltf::Semantic::Positions).unwrap().count(),
                        |a| a.count(),
                    ) / 3
                })
                .sum()
        });
        own + n.children().map(walk).sum::<usize>()
    }
    let scene = g.default_scene().or_else(|| g.scenes().next()).unwrap();
    scene.nodes().map(walk).sum()
}

fn sample_models(dir: &Path) -> Vec<PathBuf> {
    let g = dir.join("gltf");
    let mut out = vec![
        g.join("Box/Box.glb"),
        g.join("Box/Box.gltf"),
        g.join("Box/Box_Draco.glb"),
        g.join("BoxTextured.glb"),
        g.join("Duck/Duck.glb"),
        g.join("Duck/Duck.gltf"),
        g.join("CesiumMilkTruck/CesiumMilkTruck.gltf"),
        g.join("SheenCloth.glb"),
        g.join("BoxMetaDraco/BoxMetaDraco.gltf"),
    ];
    out.retain(|p| p.is_file());
    assert_eq!(out.len(), 9, "glTF samples missing under {}", g.display());
    out
}

#[test]
fn every_sample_model_converts_with_all_its_triangles() {
    let Some(s) = samples() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (i, model) in sample_models(&s).iter().enumerate() {
        for format in [TilesFormat::Tiles11, TilesFormat::Tiles10] {
            let out = tmp.path().join(format!("m{i}-{format:?}"));
            let mut spec = model_spec(model, &out);
            spec.format = format;
            let r =
                run_with_threads(&spec, 2).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
            let (ts, tiles) = decode_model(&out);
            let expected = scene_triangles(model);
            assert_eq!(r.triangles_read as usize, expected, "{}", model.display());
            assert_eq!(r.triangles_written as usize, expected);
            assert_eq!(leaf_triangles(&tiles), expected, "{}", model.display());
            assert_eq!(ts["root"]["refine"], json!("REPLACE"));
            let version = if format == TilesFormat::Tiles11 {
                "1.1"
            } else {
                "1.0"
            };
            assert_eq!(ts["asset"]["version"], json!(version));
            assert!(tiles
                .iter()
                .all(|t| t.uri.ends_with(if format == TilesFormat::Tiles11 {
                    ".glb"
                } else {
                    ".b3dm"
                })));
        }
    }
}

#[test]
fn large_model_gets_levels_of_detail_with_a_lossless_finest_level() {
    let Some(s) = samples() else { return };
    let model = s.join("gltf/SheenCloth.glb");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sheen");
    let report = run_with_threads(&model_spec(&model, &out), 2).unwrap();
    let (ts, tiles) = decode_model(&out);
    assert!(report.max_level >= 1, "{} levels", report.max_level + 1);
    assert!(ts["root"]["children"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
    let root = tiles.iter().find(|t| t.uri == "tiles/r.glb").unwrap();
    let root_tris: usize = root.prims.iter().map(|(_, i)| i.len() / 3).sum();
    assert!(root_tris < 115_200 / 2, "root keeps {root_tris} triangles");
    assert!(root.geometric_error > 0.0);
    assert!(tiles
        .iter()
        .filter(|t| t.leaf)
        .all(|t| t.geometric_error == 0.0));

    // The leaves hold exactly the source triangles (as corner positions, heading 0 means
    // ENU = (x, -z, y) of the model).
    let bytes = std::fs::read(&model).unwrap();
    let g = gltf::Gltf::from_slice(&bytes).unwrap();
    let blob = g.blob.clone().unwrap();
    let mut source = Vec::new();
    for mesh in g.meshes() {
        for p in mesh.primitives() {
            let r = p.reader(|_| Some(&blob));
            let pos: Vec<[f32; 3]> = r.read_positions().unwrap().collect();
            for i in r.read_indices().unwrap().into_u32() {
                let v = pos[i as usize].map(f64::from);
                source.push([v[0], -v[2], v[1]]);
            }
        }
    }
    // Match every leaf triangle to a distinct source triangle with the same corners (to a
    // micrometre: leaves store f32 offsets from their tile centre), via a centroid grid.
    assert_eq!(source.len() / 3, 115_200);
    let cell = |t: &[[f64; 3]]| -> [i64; 3] {
        [0, 1, 2].map(|k| ((t[0][k] + t[1][k] + t[2][k]) / 3.0 * 1e4).floor() as i64)
    };
    let mut grid: std::collections::HashMap<[i64; 3], Vec<usize>> = Default::default();
    for (i, t) in source.chunks(3).enumerate() {
        grid.entry(cell(t)).or_default().push(i);
    }
    let mut used = vec![false; source.len() / 3];
    let mut matched = 0;
    for t in tiles.iter().filter(|t| t.leaf) {
        for (pos, idx) in &t.prims {
            let tri: Vec<[f64; 3]> = idx.iter().map(|&i| pos[i as usize]).collect();
            for tri in tri.chunks(3) {
                let c = cell(tri);
                let mut found = None;
                'search: for dx in -1..=1 {
                    for dy in -1..=1 {
                        for dz in -1..=1 {
                            for &i in grid
                                .get(&[c[0] + dx, c[1] + dy, c[2] + dz])
                                .into_iter()
                                .flatten()
                            {
                                let same = (0..3).all(|v| {
                                    (0..3).all(|k| (source[i * 3 + v][k] - tri[v][k]).abs() < 1e-6)
                                });
                                if same && !used[i] {
                                    found = Some(i);
                                    break 'search;
                                }
                            }
                        }
                    }
                }
                let i = found.expect("a leaf triangle that is not in the source");
                used[i] = true;
                matched += 1;
            }
        }
    }
    assert_eq!(matched, 115_200);

    // Materials keep their extensions at every level.
    let leaf = tiles.iter().find(|t| t.leaf).unwrap();
    for t in [root, leaf] {
        assert!(t.doc["materials"][0]["extensions"]["KHR_materials_sheen"].is_object());
        assert_eq!(
            t.doc["extensionsRequired"],
            json!(["KHR_texture_transform"])
        );
    }
    // With small tiles the tree is deeper, the root's error larger, and its textures are
    // downscaled as far as that error allows.
    let deep = tmp.path().join("deep");
    let mut spec = model_spec(&model, &deep);
    spec.model.max_triangles_per_tile = 2_000;
    let r = run_with_threads(&spec, 2).unwrap();
    assert!(r.max_level >= 3);
    let (_, deep_tiles) = decode_model(&deep);
    assert_eq!(leaf_triangles(&deep_tiles), 115_200);
    let image_px = |t: &MeshTile| {
        let v = t.doc["images"][0]["bufferView"].as_u64().unwrap() as usize;
        let off = t.doc["bufferViews"][v]["byteOffset"].as_u64().unwrap() as usize;
        let bytes = std::fs::read(deep.join(&t.uri)).unwrap();
        let (_, bin) = read_glb(&bytes);
        let img = image::load_from_memory(&bin[off..]).unwrap();
        img.width()
    };
    let deep_root = deep_tiles.iter().find(|t| t.uri == "tiles/r.glb").unwrap();
    let deep_leaf = deep_tiles.iter().find(|t| t.leaf).unwrap();
    assert!(
        image_px(deep_root) < image_px(deep_leaf),
        "root texture {} px, leaf {} px (root error {} m)",
        image_px(deep_root),
        image_px(deep_leaf),
        deep_root.geometric_error
    );

    // One and four workers write the same tiles.
    let out4 = tmp.path().join("sheen4");
    run_with_threads(&model_spec(&model, &out4), 4).unwrap();
    assert!(
        tree(&out) == tree(&out4),
        "output depends on the thread count"
    );
}

#[test]
fn milk_truck_stands_upright_at_its_position() {
    let Some(s) = samples() else { return };
    let model = s.join("gltf/CesiumMilkTruck/CesiumMilkTruck.gltf");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("truck");
    let o = tessera(
        &[
            "convert",
            model.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--position",
            "13.3777,52.5163,40",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("animations dropped"), "{}", o.stderr);
    let (ts, tiles) = decode_model(&out);
    // The frame's origin is PROJ's ECEF of the position (to the millimetre).
    let m = numbers(&ts["root"]["transform"]);
    let mut origin = [BERLIN];
    Transformer::new("EPSG:4979", "EPSG:4978")
        .unwrap()
        .transform(&mut origin)
        .unwrap();
    for k in 0..3 {
        assert!(
            (m[12 + k] - origin[0][k]).abs() < 1e-3,
            "{m:?} vs {origin:?}"
        );
    }
    // Its third axis is the ellipsoid normal there: the truck's up.
    let (lon, lat) = (BERLIN[0].to_radians(), BERLIN[1].to_radians());
    let up = [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()];
    for k in 0..3 {
        assert!((m[8 + k] - up[k]).abs() < 1e-12);
    }
    // Wheels down, roof up: the source's y range (with its node transforms) becomes the
    // frame's height range, and the wheels touch z = 0 as they touch y = 0 in the model.
    let t = &tiles[0];
    let zs: Vec<f64> = t
        .prims
        .iter()
        .flat_map(|(p, _)| p.iter().map(|v| v[2]))
        .collect();
    let (zmin, zmax) = zs
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &z| (a.min(z), b.max(z)));
    assert!(zmin.abs() < 0.05, "lowest point {zmin} m");
    assert!((2.0..4.0).contains(&zmax), "roof at {zmax} m");
    // Textured: the image travels inside the tile and a material samples it.
    assert_eq!(t.doc["images"].as_array().unwrap().len(), 1);
    assert!(t.doc["materials"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["pbrMetallicRoughness"]["baseColorTexture"]["index"].is_number()));
    // Heading 90° turns the truck's length (model x) from east-west to north-south.
    let extent = |tiles: &[MeshTile], k: usize| {
        let v: Vec<f64> = tiles[0]
            .prims
            .iter()
            .flat_map(|(p, _)| p.iter().map(|q| q[k]))
            .collect();
        v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min)
    };
    let out90 = tmp.path().join("truck90");
    let mut spec = model_spec(&model, &out90);
    spec.model.heading_deg = 90.0;
    run_with_threads(&spec, 2).unwrap();
    let (_, t90) = decode_model(&out90);
    assert!((extent(&tiles, 0) - extent(&t90, 1)).abs() < 1e-3);
    assert!((extent(&tiles, 1) - extent(&t90, 0)).abs() < 1e-3);
}

/// Write a glTF with one triangle (and optional extras) for the tests below.
fn write_gltf(dir: &Path, name: &str, doc: &Value, bin: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{name}.bin")), bin).unwrap();
    let p = dir.join(format!("{name}.gltf"));
    std::fs::write(&p, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    p
}

fn triangle_doc(name: &str, translation: [f64; 3]) -> (Value, Vec<u8>) {
    let mut bin = Vec::new();
    for v in [[0.0f32, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 5.0, -20.0]] {
        for c in v {
            bin.extend_from_slice(&c.to_le_bytes());
        }
    }
    for i in [0u16, 1, 2, 0] {
        bin.extend_from_slice(&i.to_le_bytes());
    }
    let doc = json!({
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "translation": translation}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1, "material": 0}]}],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}],
        "textures": [{"source": 0}],
        "images": [{"uri": "missing.png"}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
             "min": [0, 0, -20], "max": [10, 5, 0]},
            {"bufferView": 1, "componentType": 5123, "count": 3, "type": "SCALAR"}
        ],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": 36},
            {"buffer": 0, "byteOffset": 36, "byteLength": 6}
        ],
        "buffers": [{"uri": format!("{name}.bin"), "byteLength": 44}]
    });
    (doc, bin)
}

#[test]
fn projected_model_lands_where_proj_puts_its_coordinates() {
    if samples().is_none() {
        return;
    }
    // A triangle authored in UTM 32N metres: node translation (easting, height, -northing)
    // in glTF's y-up axes.
    let tmp = tempfile::tempdir().unwrap();
    let (doc, bin) = triangle_doc("utm", [500_000.0, 100.0, -5_800_000.0]);
    let model = write_gltf(tmp.path(), "utm", &doc, &bin);
    let out = tmp.path().join("out");
    let mut spec = JobSpec::new(vec![model.clone()], out.clone());
    spec.input_crs = Some(tessera_model::CrsSpec::parse("EPSG:25832").unwrap());
    let r = run_with_threads(&spec, 1).unwrap();
    assert!(
        r.warnings.iter().any(|w| w.code == "model-image-missing"),
        "{:?}",
        r.warnings
    );
    let (ts, tiles) = decode_model(&out);
    let m = numbers(&ts["root"]["transform"]);
    let ecef: Vec<[f64; 3]> = tiles[0].prims[0]
        .0
        .iter()
        .map(|p| {
            [
                m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12],
                m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13],
                m[2] * p[0] + m[6] * p[1] + m[10] * p[2] + m[14],
            ]
        })
        .collect();
    let mut expected = vec![
        [500_000.0, 5_800_000.0, 100.0],
        [500_010.0, 5_800_000.0, 100.0],
        [500_000.0, 5_800_020.0, 105.0],
    ];
    Transformer::new("EPSG:25832", "EPSG:4978")
        .unwrap()
        .transform(&mut expected)
        .unwrap();
    for e in &expected {
        let best = ecef
            .iter()
            .map(|p| ((p[0] - e[0]).powi(2) + (p[1] - e[1]).powi(2) + (p[2] - e[2]).powi(2)).sqrt())
            .fold(f64::MAX, f64::min);
        assert!(best < 0.01, "vertex off by {best} m");
    }
    // The texture whose image is missing is gone, and the material with it.
    assert!(tiles[0].doc.get("textures").is_none());
    assert!(tiles[0].doc["materials"][0]["pbrMetallicRoughness"]
        .get("baseColorTexture")
        .is_none());
}

#[test]
fn broken_models_fail_with_the_file_and_the_reason() {
    if samples().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = |model: &Path, extra: &[&str]| {
        let out = model.with_extension("out");
        let mut args = vec![
            "convert",
            model.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--force",
        ];
        args.extend_from_slice(extra);
        (tessera(&args, Duration::from_secs(30)), out)
    };
    let pos = ["--position", "13.3777,52.5163,40"];

    // GLB whose header length is wrong.
    let (doc, bin) = triangle_doc("t", [0.0; 3]);
    let mut glb_doc = doc.clone();
    glb_doc["buffers"] = json!([{"byteLength": 44}]);
    glb_doc.as_object_mut().unwrap().remove("images");
    glb_doc.as_object_mut().unwrap().remove("textures");
    glb_doc["materials"] = json!([{}]);
    let glb = tessera_pipeline::encode::glb_container(&glb_doc, bin.clone());
    let good = tmp.path().join("good.glb");
    std::fs::write(&good, &glb).unwrap();
    let (o, _) = run(&good, &pos);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let mut bad = glb.clone();
    bad[8..12].copy_from_slice(&((glb.len() + 100) as u32).to_le_bytes());
    let p = tmp.path().join("length.glb");
    std::fs::write(&p, &bad).unwrap();
    assert_data_error(&run(&p, &pos).0, &p, "declares");
    let p = tmp.path().join("cut.glb");
    std::fs::write(&p, &glb[..glb.len() - 10]).unwrap();
    assert_data_error(&run(&p, &pos).0, &p, "truncated");

    // A buffer view past the end of its buffer.
    let mut d = doc.clone();
    d["bufferViews"][0]["byteLength"] = json!(4000);
    let p = write_gltf(&tmp.path().join("view"), "t", &d, &bin);
    assert_data_error(&run(&p, &pos).0, &p, "bufferView 0 spans bytes");

    // An accessor claiming billions of vertices.
    let mut d = doc.clone();
    d["accessors"][0]["count"] = json!(4_000_000_000u64);
    let p = write_gltf(&tmp.path().join("count"), "t", &d, &bin);
    assert_data_error(&run(&p, &pos).0, &p, "4000000000 elements");
    let mut d = doc.clone();
    d["accessors"][0]["count"] = json!(1000);
    let p = write_gltf(&tmp.path().join("count2"), "t", &d, &bin);
    assert_data_error(&run(&p, &pos).0, &p, "do not fit bufferView");

    // An index naming a vertex that does not exist.
    let mut b = bin.clone();
    b[38..40].copy_from_slice(&9u16.to_le_bytes());
    let p = write_gltf(&tmp.path().join("index"), "t", &doc, &b);
    assert_data_error(&run(&p, &pos).0, &p, "names a vertex past");

    // A missing .bin: an error naming it; a missing image: a warning, exit 0.
    let p = write_gltf(&tmp.path().join("nobin"), "t", &doc, &bin);
    std::fs::remove_file(p.with_extension("bin")).unwrap();
    let o = run(&p, &pos).0;
    assert_data_error(&o, &p, "t.bin");
    assert!(o.stderr.contains("does not exist"), "{}", o.stderr);
    let p = write_gltf(&tmp.path().join("noimage"), "t", &doc, &bin);
    let o = run(&p, &pos).0;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("missing.png"), "{}", o.stderr);

    // Buffer and image as data URIs: read, and the image embedded.
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut png = Vec::new();
    image::RgbImage::from_pixel(4, 4, image::Rgb([200, 30, 30]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut d = doc.clone();
    d["buffers"][0]["uri"] = json!(format!(
        "data:application/octet-stream;base64,{}",
        b64(&bin)
    ));
    d["images"][0]["uri"] = json!(format!("data:image/png;base64,{}", b64(&png)));
    let p = tmp.path().join("datauri.gltf");
    std::fs::write(&p, serde_json::to_vec(&d).unwrap()).unwrap();
    let (o, out) = run(&p, &pos);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let (_, tiles) = decode_model(&out);
    assert_eq!(tiles[0].doc["images"][0]["mimeType"], json!("image/png"));
    assert_eq!(
        tiles[0].doc["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"]["index"],
        json!(0)
    );

    // A buffer that escapes the model's folder is not read.
    let mut d = doc.clone();
    d["buffers"][0]["uri"] = json!("../../t.bin");
    let p = write_gltf(&tmp.path().join("escape/a"), "t", &d, &bin);
    assert_data_error(&run(&p, &pos).0, &p, "outside the model's folder");

    // A node that is its own ancestor.
    let mut d = doc.clone();
    d["nodes"] = json!([{"children": [1]}, {"children": [0], "mesh": 0}]);
    let p = write_gltf(&tmp.path().join("cycle"), "t", &d, &bin);
    assert_data_error(&run(&p, &pos).0, &p, "own ancestor");

    // Not JSON at all, an unsupported required extension, no placement.
    let p = tmp.path().join("junk.gltf");
    std::fs::write(&p, b"{\"asset\": ").unwrap();
    assert_data_error(&run(&p, &pos).0, &p, "invalid");
    let mut d = doc.clone();
    d["extensionsRequired"] = json!(["EXT_meshopt_compression"]);
    d["extensionsUsed"] = json!(["EXT_meshopt_compression"]);
    let p = write_gltf(&tmp.path().join("meshopt"), "t", &d, &bin);
    assert_data_error(&run(&p, &pos).0, &p, "EXT_meshopt_compression");
    assert_data_error(&run(&good, &[]).0, &good, "--position");

    // Nothing was ever written next to a failed output.
    assert!(!tmp.path().join("length.out").exists());
}
