//! Hostile glTF/GLB models, each written by the test from the Box samples: lying offsets,
//! strides and counts, node hierarchies that are not trees, instance and attribute counts
//! beyond the budget, references to devices, pipes and files outside the model's folder,
//! images whose headers claim huge sizes, placements that overflow. Each is refused with
//! exit 1 naming the file and the reason (or, where the input is valid, converted), within
//! 10 s and 1 GiB, with nothing left at the output and the input untouched.

use crate::helpers::{
    assert_converted, assert_refused, run_with_threads, samples, tessera_capped, Capped,
    HOSTILE_TIME,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tessera_pipeline::{Budget, ErrorKind, JobSpec, RefRoot, Warnings};

/// A runaway allocation beyond this aborts instead of swapping the machine.
const MEM_CAP: u64 = 4 << 30;
/// The run is killed after this; `assert_refused` holds it to 10 s.
const DEADLINE: Duration = Duration::from_secs(60);
const POSITION: &str = "13.3777,52.5163,40";

fn gltf_dir() -> Option<PathBuf> {
    samples().map(|s| s.join("gltf"))
}

/// Box.gltf's JSON and its Box0.bin.
fn box_model(g: &Path) -> (Value, Vec<u8>) {
    let doc = serde_json::from_slice(&std::fs::read(g.join("Box/Box.gltf")).unwrap()).unwrap();
    (doc, std::fs::read(g.join("Box/Box0.bin")).unwrap())
}

/// BoxTextured.glb split into a .gltf JSON (buffer `<name>.bin`, the image at `image_uri`),
/// its buffer and its PNG.
fn textured_box(g: &Path, name: &str, image_uri: &str) -> (Value, Vec<u8>, Vec<u8>) {
    let glb = std::fs::read(g.join("BoxTextured.glb")).unwrap();
    let (mut doc, bin) = crate::helpers::read_glb(&glb);
    let view = &doc["bufferViews"][3];
    let (off, len) = (
        view["byteOffset"].as_u64().unwrap() as usize,
        view["byteLength"].as_u64().unwrap() as usize,
    );
    let png = bin[off..off + len].to_vec();
    doc["buffers"][0]["uri"] = json!(format!("{name}.bin"));
    doc["images"] = json!([{ "uri": image_uri }]);
    (doc, bin, png)
}

/// `doc` as `<dir>/<name>.gltf` next to its buffer `<name>.bin` (the doc's buffer URI is
/// pointed there).
fn write_model(dir: &Path, name: &str, mut doc: Value, bin: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    if doc["buffers"][0]["uri"].is_string() {
        doc["buffers"][0]["uri"] = json!(format!("{name}.bin"));
        std::fs::write(dir.join(format!("{name}.bin")), bin).unwrap();
    }
    let p = dir.join(format!("{name}.gltf"));
    std::fs::write(&p, serde_json::to_vec(&doc).unwrap()).unwrap();
    p
}

/// The regular files of a folder with their bytes (links, pipes and devices by name only,
/// never read).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let regular = std::fs::symlink_metadata(&p).unwrap().is_file();
            let bytes = regular.then(|| std::fs::read(&p).unwrap());
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

/// `tessera convert <model> -o <its folder>/../out-<name> --position … extra…` (warnings on stderr).
fn convert(model: &Path, extra: &[&str]) -> (Capped, PathBuf) {
    let dir = model.parent().unwrap();
    let name = model.file_stem().unwrap().to_string_lossy();
    let out = dir.parent().unwrap().join(format!("out-{name}"));
    let mut args = vec![
        "convert",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    if !extra.contains(&"--position") {
        args.extend_from_slice(&["--position", POSITION]);
    }
    args.extend_from_slice(extra);
    (tessera_capped(&args, dir, MEM_CAP, DEADLINE), out)
}

/// The model is refused with exit 1 naming it and saying `needle`; nothing is written and
/// its folder is as it was.
fn refused(model: &Path, needle: &str) -> String {
    let before = snapshot(model.parent().unwrap());
    let (c, out) = convert(model, &[]);
    eprintln!(
        "{}: exit {:?} in {:?}, peak RSS {} MiB",
        model.display(),
        c.code,
        c.elapsed,
        c.peak_rss_bytes >> 20
    );
    assert_refused(&c, 1, Some(model), needle);
    assert!(!out.exists(), "{} left behind", out.display());
    assert_eq!(snapshot(model.parent().unwrap()), before, "input changed");
    c.stderr
}

/// The model converts (exit 0, within the hostile limits, input untouched); the job report.
fn converts(model: &Path, extra: &[&str]) -> (Value, String) {
    let before = snapshot(model.parent().unwrap());
    let stem = model.file_stem().unwrap().to_string_lossy();
    let report = model
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join(format!("{stem}.report.json"));
    let mut args = vec!["--report", report.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (c, out) = convert(model, &args);
    eprintln!(
        "{}: exit {:?} in {:?}, peak RSS {} MiB",
        model.display(),
        c.code,
        c.elapsed,
        c.peak_rss_bytes >> 20
    );
    assert_converted(&c);
    assert!(out.join("tileset.json").is_file());
    assert_eq!(snapshot(model.parent().unwrap()), before, "input changed");
    let r = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    (r, c.stderr)
}

fn warning_codes(report: &Value) -> Vec<String> {
    report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn offsets_strides_and_counts_past_the_buffer_are_refused() {
    let Some(g) = gltf_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (doc, bin) = box_model(&g);
    let max = json!(u64::MAX);
    let sparse = |count: Value, index_offset: Value, value_offset: Value| {
        json!({"count": count,
            "indices": {"bufferView": 0, "byteOffset": index_offset, "componentType": 5123},
            "values": {"bufferView": 1, "byteOffset": value_offset}})
    };
    type Edit<'a> = Box<dyn Fn(&mut Value) + 'a>;
    let cases: Vec<(&str, Edit<'_>, &str)> = vec![
        (
            "accessor-offset",
            Box::new(|d| d["accessors"][2]["byteOffset"] = max.clone()),
            "accessor 2: 24 elements of 12 bytes (stride 12, offset 18446744073709551615) do not fit bufferView 1",
        ),
        (
            "index-offset",
            Box::new(|d| d["accessors"][0]["byteOffset"] = max.clone()),
            "index accessor 0: 36 elements",
        ),
        (
            "view-offset",
            Box::new(|d| d["bufferViews"][1]["byteOffset"] = max.clone()),
            "bufferView 1 spans bytes 18446744073709551615..",
        ),
        (
            "view-length",
            Box::new(|d| d["bufferViews"][1]["byteLength"] = max.clone()),
            "bufferView 1 spans bytes 0..18446744073709551615",
        ),
        (
            "view-stride",
            Box::new(|d| d["bufferViews"][1]["byteStride"] = max.clone()),
            "accessor 1: 24 elements of 12 bytes (stride 18446744073709551615",
        ),
        (
            "count-max",
            Box::new(|d| d["accessors"][2]["count"] = max.clone()),
            "accessor 2 declares 18446744073709551615 elements",
        ),
        (
            "count-large",
            Box::new(|d| d["accessors"][2]["count"] = json!(1_000_000)),
            "accessor 2: 1000000 elements of 12 bytes",
        ),
        (
            "count-unbacked",
            Box::new(|d| {
                d["accessors"][2].as_object_mut().unwrap().remove("bufferView");
                d["accessors"][2]["count"] = json!(1u64 << 21);
            }),
            "accessor 2 declares 2097152 elements but no bufferView",
        ),
        (
            "sparse-count",
            Box::new(|d| d["accessors"][2]["sparse"] = sparse(max.clone(), json!(0), json!(0))),
            "accessor 2: sparse count 18446744073709551615 exceeds",
        ),
        (
            "sparse-index-offset",
            Box::new(|d| d["accessors"][2]["sparse"] = sparse(json!(24), max.clone(), json!(0))),
            "accessor 2 sparse indices: 24 elements of 2 bytes (stride 2, offset 18446744073709551615)",
        ),
        (
            "sparse-value-offset",
            Box::new(|d| d["accessors"][2]["sparse"] = sparse(json!(2), json!(0), max.clone())),
            "accessor 2 sparse values: 2 elements of 12 bytes",
        ),
        (
            "buffer-length",
            Box::new(|d| d["buffers"][0]["byteLength"] = max.clone()),
            "declares 18446744073709551615 bytes but holds only 648",
        ),
    ];
    for (name, edit, needle) in cases {
        let mut d = doc.clone();
        edit(&mut d);
        let model = write_model(&tmp.path().join(name), name, d, &bin);
        refused(&model, needle);
    }
}

#[test]
fn glb_chunk_lengths_past_the_file_are_refused() {
    let Some(g) = gltf_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let glb = std::fs::read(g.join("Box/Box.glb")).unwrap();
    let json_len = u32::from_le_bytes(glb[12..16].try_into().unwrap()) as usize;
    let bin_at = 20 + json_len;
    for (name, at, needle) in [
        (
            "json-chunk",
            12,
            "chunk at byte 12 declares 4294967295 bytes, past the end",
        ),
        (
            "bin-chunk",
            bin_at,
            "declares 4294967295 bytes, past the end of the file",
        ),
        ("total", 8, "the header declares 4294967295 bytes"),
    ] {
        let mut bad = glb.clone();
        bad[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join(format!("{name}.glb"));
        std::fs::write(&model, &bad).unwrap();
        refused(&model, needle);
    }
}

#[test]
fn node_hierarchies_that_are_not_trees_are_refused() {
    let Some(g) = gltf_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (doc, bin) = box_model(&g);
    let with = |nodes: Vec<Value>, roots: Vec<usize>| {
        let mut d = doc.clone();
        d["nodes"] = Value::Array(nodes);
        d["scenes"] = json!([{ "nodes": roots }]);
        d
    };
    // 32 levels, each listing the next twice: 2^32 instances of the box.
    let mut twice: Vec<Value> = (0..32)
        .map(|k| json!({"children": [k + 1, k + 1]}))
        .collect();
    twice.push(json!({"mesh": 0}));
    // 32 levels of two nodes, each parent of both nodes below: also 2^32 instances.
    let mut shared: Vec<Value> = (0..32)
        .flat_map(|k| {
            let c = [2 * k + 2, 2 * k + 3];
            [json!({ "children": c }), json!({ "children": c })]
        })
        .collect();
    shared.extend([json!({"mesh": 0}), json!({"mesh": 0})]);
    // A ring of 100 000 nodes.
    let ring: Vec<Value> = (0..100_000)
        .map(|i| json!({"children": [(i + 1) % 100_000], "mesh": 0}))
        .collect();
    let cases = [
        (
            "repeated-child",
            with(twice, vec![0]),
            "node 0 lists child node 1 more than once; glTF 2.0 requires scene.nodes and node.children to hold unique node indices",
        ),
        (
            "two-parents",
            with(shared, vec![0, 1]),
            "node 2 has two parents, nodes 0 and 1; glTF 2.0 requires the node hierarchy to be disjoint strict trees",
        ),
        (
            "repeated-root",
            with(vec![json!({"mesh": 0})], vec![0; 1_000_000]),
            "scene 0 lists node 0 more than once",
        ),
        (
            "cycle",
            with(
                vec![json!({"children": [1]}), json!({"children": [0], "mesh": 0})],
                vec![0],
            ),
            "node 0 is its own ancestor (parent chain 0 → 1 → 0)",
        ),
        ("ring", with(ring, vec![0]), "is its own ancestor"),
        (
            "child-as-root",
            with(vec![json!({"children": [1]}), json!({"mesh": 0})], vec![0, 1]),
            "scene 0 lists node 1, which is a child of node 0",
        ),
    ];
    for (name, d, needle) in cases {
        let model = write_model(&tmp.path().join(name), name, d, &bin);
        refused(&model, needle);
    }
}

#[test]
fn a_chain_of_100000_nodes_converts_with_every_instance() {
    let Some(g) = gltf_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (mut doc, bin) = box_model(&g);
    // Each node the single child of the one before; every 1000th draws the box, so 100
    // boxes of 12 triangles lie 10 m apart along x.
    let n = 100_000;
    let nodes: Vec<Value> = (0..n)
        .map(|i| {
            let mut node = json!({"translation": [0.01, 0.0, 0.0]});
            if i + 1 < n {
                node["children"] = json!([i + 1]);
            }
            if i % 1000 == 999 {
                node["mesh"] = json!(0);
            }
            node
        })
        .collect();
    doc["nodes"] = Value::Array(nodes);
    doc["scenes"] = json!([{"nodes": [0]}]);
    let model = write_model(&tmp.path().join("chain"), "chain", doc, &bin);
    let (report, _) = converts(&model, &[]);
    assert_eq!(report["triangles_read"], json!(1200), "{report}");
    assert_eq!(report["triangles_written"], json!(1200), "{report}");
}

#[test]
fn instance_expansion_and_attribute_counts_have_a_budget() {
    let Some(g) = gltf_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (mut doc, bin) = box_model(&g);
    // 100 000 sibling nodes, each drawing a mesh of 2^20 (zero) vertices: every node is a
    // valid tree of its own, but baking them all would take terabytes.
    doc["accessors"]
        .as_array_mut()
        .unwrap()
        .push(json!({"componentType": 5126, "count": 1 << 20, "type": "VEC3"}));
    doc["meshes"] = json!([{"primitives": [{"attributes": {"POSITION": 3}}]}]);
    doc["nodes"] = Value::Array((0..100_000).map(|_| json!({"mesh": 0})).collect());
    doc["scenes"] = json!([{"nodes": (0..100_000).collect::<Vec<u32>>()}]);
    let model = write_model(&tmp.path().join("instances"), "instances", doc, &bin);
    let e = refused(
        &model,
        "baking the 100000 mesh instance(s) of the node hierarchy would need",
    );
    assert!(e.contains("memory budget"), "{e}");
}

#[test]
fn buffers_that_are_pipes_devices_or_outside_the_folder_are_refused() {
    let Some(g) = gltf_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (doc, bin) = box_model(&g);
    std::fs::write(tmp.path().join("secret.bin"), &bin).unwrap();

    let model = write_model(&tmp.path().join("fifo"), "fifo", doc.clone(), &bin);
    let b = model.with_extension("bin");
    std::fs::remove_file(&b).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&b)
        .status()
        .unwrap();
    assert!(made.success());
    let e = refused(&model, "fifo.bin is not a regular file");
    assert!(e.contains("buffer 0 (fifo.bin)"), "{e}");

    for (name, target) in [
        ("zero", PathBuf::from("/dev/zero")),
        ("link", tmp.path().join("secret.bin")),
    ] {
        let model = write_model(&tmp.path().join(name), name, doc.clone(), &bin);
        let b = model.with_extension("bin");
        std::fs::remove_file(&b).unwrap();
        std::os::unix::fs::symlink(&target, &b).unwrap();
        refused(&model, "resolves outside");
    }

    let mut d = doc.clone();
    d["buffers"][0]["uri"] = json!("../secret.bin");
    let dir = tmp.path().join("up");
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("up.gltf");
    std::fs::write(&model, serde_json::to_vec(&d).unwrap()).unwrap();
    refused(&model, "it points outside the model's folder");
}

#[test]
fn images_that_are_devices_pipes_or_outside_lose_the_texture_with_a_warning() {
    let Some(g) = gltf_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (_, _, png) = textured_box(&g, "x", "x.png");
    std::fs::write(tmp.path().join("secret.png"), &png).unwrap();
    let cases: [(&str, &str, &str); 4] = [
        ("zero", "zero.png", "resolves outside"),
        ("fifo", "fifo.png", "fifo.png is not a regular file"),
        ("link", "link.png", "resolves outside"),
        ("up", "../secret.png", "points outside the model's folder"),
    ];
    for (name, uri, needle) in cases {
        let (doc, bin, _) = textured_box(&g, name, uri);
        let dir = tmp.path().join(name);
        let model = write_model(&dir, name, doc, &bin);
        match name {
            "zero" => std::os::unix::fs::symlink("/dev/zero", dir.join(uri)).unwrap(),
            "link" => {
                std::os::unix::fs::symlink(tmp.path().join("secret.png"), dir.join(uri)).unwrap()
            }
            "fifo" => assert!(std::process::Command::new("mkfifo")
                .arg(dir.join(uri))
                .status()
                .unwrap()
                .success()),
            _ => {}
        }
        let (report, stderr) = converts(&model, &[]);
        assert_eq!(report["triangles_read"], json!(12));
        assert!(
            warning_codes(&report).contains(&"model-image-missing".to_string()),
            "{report}"
        );
        assert!(stderr.contains(needle), "should say `{needle}`: {stderr}");
        assert!(stderr.contains("stay untextured"), "{stderr}");
    }
}

/// A PNG whose header claims `w` × `h` pixels (checksum fixed) over a 1-pixel image.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut png = Vec::new();
    image::RgbaImage::new(1, 1)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let mut c = !0u32;
    for &b in &png[12..29] {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    png[29..33].copy_from_slice(&(!c).to_be_bytes());
    png
}

#[test]
fn images_claiming_huge_sizes_are_not_decoded() {
    let Some(g) = gltf_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (mut doc, bin, _) = textured_box(&g, "huge", "huge.png");
    // 200 boxes, so coarser levels of detail (which downscale textures) exist.
    let mut nodes = vec![json!({"children": (1..=200).collect::<Vec<u32>>()})];
    nodes.extend(
        (0..200).map(|i| json!({"mesh": 0, "translation": [2.0 * f64::from(i), 0.0, 0.0]})),
    );
    doc["nodes"] = Value::Array(nodes);
    let dir = tmp.path().join("huge");
    let model = write_model(&dir, "huge", doc, &bin);
    std::fs::write(dir.join("huge.png"), png_claiming(100_000, 100_000)).unwrap();
    let (report, stderr) = converts(&model, &["--max-triangles-per-tile", "1000"]);
    assert_eq!(report["triangles_read"], json!(2400));
    let codes = warning_codes(&report);
    assert!(
        codes.contains(&"model-image-too-large".to_string()),
        "{report}"
    );
    assert!(
        !codes.contains(&"model-image-undecodable".to_string()),
        "{report}"
    );
    assert!(
        stderr.contains("huge.png: its header claims 100000 x 100000 pixels"),
        "{stderr}"
    );
}

/// A one-triangle model whose vertex coordinates are all `c`, its buffer a data URI,
/// under a chain of `levels` nodes each scaling by `node_scale`.
fn triangle(c: f32, levels: usize, node_scale: f32) -> Value {
    use base64::Engine;
    let mut bin = Vec::new();
    for v in [[0.0, 0.0, 0.0], [c, 0.0, 0.0], [0.0, c, c]] {
        for x in v {
            bin.extend_from_slice(&f32::to_le_bytes(x));
        }
    }
    let uri = format!(
        "data:application/octet-stream;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&bin)
    );
    let mut nodes: Vec<Value> = (0..levels)
        .map(|k| json!({"children": [k + 1], "scale": [node_scale, node_scale, node_scale]}))
        .collect();
    nodes.push(json!({"mesh": 0}));
    json!({
        "asset": {"version": "2.0"},
        "scenes": [{"nodes": [0]}],
        "nodes": nodes,
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"}],
        "bufferViews": [{"buffer": 0, "byteLength": 36}],
        "buffers": [{"byteLength": 36, "uri": uri}]
    })
}

#[test]
fn placements_that_overflow_are_data_errors() {
    let Some(g) = gltf_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, doc: &Value| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{name}.gltf"));
        std::fs::write(&p, serde_json::to_vec(doc).unwrap()).unwrap();
        p
    };
    // Eight nested scales of 1e38 put a metre-sized triangle 1e304 m away: finite, but
    // nowhere near the globe.
    let model = write("far", &triangle(1.0, 8, 1e38));
    refused(&model, "farther than the 100000 km a model may reach");
    // Nine overflow the transform itself; eight times a vertex at 3e38 m, the vertices.
    let model = write("inf", &triangle(1.0, 9, 1e38));
    refused(&model, "node 8: its transform is not finite");
    let model = write("vertex", &triangle(3e38, 8, 1e38));
    refused(
        &model,
        "node 8: its transform moves mesh 0's vertices to infinity",
    );

    // Option values a front end let through: a data error, never an internal one or NaN
    // tiles.
    let huge = write("huge", &triangle(3e38, 0, 1.0));
    let box_ = g.join("Box/Box.gltf");
    for (model, scale, needle) in [
        (
            &huge,
            1e308,
            "scaled by 1e308, vertex 1 of mesh 0 overflows to infinite coordinates",
        ),
        (
            &box_,
            1e308,
            "scaled by 1e308, vertex 0 of mesh 0 overflows",
        ),
        (&box_, 1e12, "farther than the 100000 km"),
    ] {
        let out = tmp.path().join("scaled");
        let mut spec = JobSpec::new(vec![model.clone()], out.clone());
        spec.model.position = Some([13.3777, 52.5163, 40.0]);
        spec.model.scale = scale;
        let e = run_with_threads(&spec, 1).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Data, "{e}");
        let msg = e.to_string();
        let name = model.file_name().unwrap().to_string_lossy();
        assert!(msg.contains(&*name) && msg.contains(needle), "{msg}");
        assert!(!out.exists());
    }
    let mut spec = JobSpec::new(vec![box_.clone()], tmp.path().join("nan"));
    spec.model.position = Some([13.3777, 52.5163, 40.0]);
    spec.model.heading_deg = f64::NAN;
    let e = run_with_threads(&spec, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Data, "{e}");
    assert!(e.to_string().contains("heading NaN"), "{e}");
}

/// `read_model` on `path` on another thread; `None` when it does not answer within 10 s.
fn read_model_within(
    path: &Path,
    refs: RefRoot,
) -> Option<Result<u64, tessera_pipeline::error::ModelError>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let r = tessera_pipeline::models::read_model(
            &path,
            &refs,
            &Budget::default(),
            &Warnings::default(),
        );
        let _ = tx.send(r.map(|m| m.triangles));
    });
    rx.recv_timeout(HOSTILE_TIME).ok()
}

#[test]
fn the_reader_refuses_a_pipe_as_the_model_and_devices_anywhere() {
    let Some(g) = gltf_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("model.gltf");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let e = read_model_within(&fifo, RefRoot::within(tmp.path()))
        .expect("a pipe as the model hangs the reader")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model.gltf") && e.contains("not a regular file"),
        "{e}"
    );

    // Outside references allowed: a device is still not read.
    let (doc, bin) = box_model(&g);
    let model = write_model(&tmp.path().join("dev"), "dev", doc, &bin);
    let b = model.with_extension("bin");
    std::fs::remove_file(&b).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &b).unwrap();
    let e = read_model_within(&model, RefRoot::anywhere())
        .expect("a device as the buffer hangs the reader")
        .unwrap_err()
        .to_string();
    assert!(e.contains("dev.bin is not a regular file"), "{e}");
    // And a valid model through the same call reads.
    let ok = read_model_within(&g.join("Box/Box.gltf"), RefRoot::within(&g.join("Box")));
    assert_eq!(ok.unwrap().unwrap(), 12);
}

#[test]
fn corrupt_draco_streams_are_errors_not_panics() {
    let Some(g) = gltf_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let glb = std::fs::read(g.join("Box/Box_Draco.glb")).unwrap();
    let json_len = u32::from_le_bytes(glb[12..16].try_into().unwrap()) as usize;
    let (doc, _) = crate::helpers::read_glb(&glb);
    let stream_at = 20 + json_len + 8;
    let stream_len = doc["bufferViews"][0]["byteLength"].as_u64().unwrap() as usize;
    let model = tmp.path().join("draco.glb");
    let small = Budget {
        memory_bytes: 256 << 20,
    };
    let mut errors = 0;
    // Every byte of the stream set to 0, to 0xFF and flipped: each read ends in the mesh or
    // an error naming the file, never a panic or a runaway allocation.
    for i in 0..stream_len {
        let at = stream_at + i;
        for v in [0x00, 0xFF, glb[at] ^ 0x55] {
            let mut bad = glb.clone();
            bad[at] = v;
            std::fs::write(&model, &bad).unwrap();
            let read = std::panic::catch_unwind(|| {
                tessera_pipeline::models::read_model(
                    &model,
                    &RefRoot::within(tmp.path()),
                    &small,
                    &Warnings::default(),
                )
                .map(|m| m.triangles)
            });
            match read {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    errors += 1;
                    assert!(e.to_string().contains("draco.glb"), "byte {i} = {v}: {e}");
                }
                Err(_) => panic!("byte {i} of the Draco stream set to {v} panics the reader"),
            }
        }
    }
    assert!(errors > 0);
    // The header's first bytes through the binary: exit 1 naming the file.
    let mut bad = glb.clone();
    bad[stream_at..stream_at + 8].fill(0xFF);
    let dir = tmp.path().join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("draco-header.glb");
    std::fs::write(&model, &bad).unwrap();
    refused(
        &model,
        "mesh 0 primitive 0: Draco stream in bufferView 0 does not decode",
    );
}
