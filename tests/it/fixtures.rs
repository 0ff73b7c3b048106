//! The committed tiny inputs are what their generator writes, and every route converts
//! them.

use crate::helpers::tessera;
use std::path::Path;
use std::time::Duration;

#[test]
fn committed_files_are_what_the_generator_writes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/files");
    for (name, bytes) in tessera_fixtures::tiny::all() {
        let committed = std::fs::read(dir.join(name)).unwrap();
        assert!(
            committed == bytes,
            "fixtures/files/{name} differs from tessera_fixtures::tiny; run `cargo run -p tessera-fixtures --bin make-fixtures`"
        );
    }
}

#[test]
fn every_route_converts_the_tiny_inputs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/files");
    let out = tempfile::tempdir().unwrap();
    let f = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let o = |n: &str| out.path().join(n).to_string_lossy().into_owned();
    let runs: [Vec<String>; 5] = [
        vec![f("tiny.las"), "-o".into(), o("las")],
        vec![f("tiny.gml"), "-o".into(), o("gml")],
        vec![
            f("tiny.gltf"),
            "-o".into(),
            o("gltf"),
            "--position".into(),
            "7,50,100".into(),
        ],
        vec![
            "--to".into(),
            "terrain".into(),
            f("tiny-dem.tif"),
            "-o".into(),
            o("dem"),
        ],
        vec![
            "--to".into(),
            "imagery".into(),
            f("tiny-rgb.tif"),
            "-o".into(),
            o("rgb"),
        ],
    ];
    for args in runs {
        let mut a = vec!["convert", "-q"];
        a.extend(args.iter().map(String::as_str));
        let r = tessera(&a, Duration::from_secs(60));
        assert_eq!(r.code, 0, "{a:?}: {}", r.stderr);
    }
    assert!(out.path().join("las/tileset.json").is_file());
    assert!(out.path().join("gml/tileset.json").is_file());
    assert!(out.path().join("gltf/tileset.json").is_file());
    assert!(out.path().join("dem/layer.json").is_file());
    assert!(out.path().join("rgb/tilemapresource.xml").is_file());
}
