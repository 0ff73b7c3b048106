//! The command line as a user meets it: flags checked against the job's route, the
//! report as JSON, quiet runs, completions and the manual page.

use crate::helpers::{tessera_capped, Capped};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/files")
        .join(name)
}

fn run(args: &[&str], cwd: &Path) -> Capped {
    tessera_capped(args, cwd, 4 << 30, Duration::from_secs(60))
}

#[test]
fn flags_of_another_route_are_usage_errors_naming_the_route() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let las = fixture("tiny.las");
    let gml = fixture("tiny.gml");
    let gltf = fixture("tiny.gltf");
    let rgb = fixture("tiny-rgb.tif");
    let dem = fixture("tiny-dem.tif");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    // (inputs and flags, the flag, the route named)
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (
            vec![s(&las), "--lod".into(), "2".into()],
            "--lod",
            "point-cloud",
        ),
        (
            vec![s(&las), "--scale".into(), "0.001".into()],
            "--scale",
            "point-cloud",
        ),
        (
            vec![s(&las), "--heading".into(), "0".into()],
            "--heading",
            "point-cloud",
        ),
        (
            vec![s(&gml), "--sample-spacing".into(), "1".into()],
            "--sample-spacing",
            "CityGML",
        ),
        (
            vec![s(&gml), "--position".into(), "7,50,0".into()],
            "--position",
            "CityGML",
        ),
        (
            vec![s(&gltf), "--lod".into(), "1".into()],
            "--lod",
            "glTF model",
        ),
        (
            vec![s(&gltf), "--compression".into(), "none".into()],
            "--compression",
            "glTF model",
        ),
        (
            vec![
                "--to".into(),
                "imagery".into(),
                s(&rgb),
                "--max-error".into(),
                "1".into(),
            ],
            "--max-error",
            "imagery",
        ),
        (
            vec![
                "--to".into(),
                "imagery".into(),
                s(&rgb),
                "--scale".into(),
                "2".into(),
            ],
            "--scale",
            "imagery",
        ),
        (
            vec![
                "--to".into(),
                "terrain".into(),
                s(&dem),
                "--quality".into(),
                "85".into(),
            ],
            "--quality",
            "terrain",
        ),
        (
            vec![
                "--to".into(),
                "terrain".into(),
                s(&dem),
                "--stretch".into(),
                "0,1".into(),
            ],
            "--stretch",
            "terrain",
        ),
    ];
    for (extra, flag, route) in cases {
        let mut args: Vec<&str> = vec!["convert", "-o", out.to_str().unwrap()];
        args.extend(extra.iter().map(String::as_str));
        let c = run(&args, d.path());
        assert_eq!(c.code, Some(2), "{args:?}: {}", c.stderr);
        assert!(
            c.stderr.contains(&format!("{flag} does not apply to")) && c.stderr.contains(route),
            "{args:?}: {}",
            c.stderr
        );
        assert!(!out.exists(), "{args:?} wrote an output");
    }
    // The same flags on their own routes run.
    let ok: Vec<Vec<String>> = vec![
        vec![s(&las), "--sample-spacing".into(), "0.5".into()],
        vec![s(&gml), "--lod".into(), "1".into()],
        vec![
            s(&gltf),
            "--position".into(),
            "7,50,100".into(),
            "--scale".into(),
            "2".into(),
        ],
        vec![
            "--to".into(),
            "imagery".into(),
            s(&rgb),
            "--quality".into(),
            "70".into(),
        ],
        vec![
            "--to".into(),
            "terrain".into(),
            s(&dem),
            "--max-error".into(),
            "0.5".into(),
        ],
    ];
    for (k, extra) in ok.iter().enumerate() {
        let o = d.path().join(format!("ok{k}"));
        let mut args: Vec<&str> = vec!["convert", "-q", "-o", o.to_str().unwrap()];
        args.extend(extra.iter().map(String::as_str));
        let c = run(&args, d.path());
        assert_eq!(c.code, Some(0), "{args:?}: {}", c.stderr);
    }
}

#[test]
fn json_prints_the_report_and_quiet_prints_nothing() {
    let d = tempfile::tempdir().unwrap();
    let las = fixture("tiny.las");
    let a = d.path().join("a");
    let c = run(
        &[
            "convert",
            las.to_str().unwrap(),
            "-o",
            a.to_str().unwrap(),
            "--json",
        ],
        d.path(),
    );
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    let report: Value = serde_json::from_str(&c.stdout).unwrap_or_else(|e| {
        panic!("stdout is not one JSON document ({e}): {}", c.stdout);
    });
    assert_eq!(report["points_written"], 64, "{report}");
    assert!(report["tiles"].as_u64().unwrap() >= 1, "{report}");

    let b = d.path().join("b");
    let c = run(
        &[
            "convert",
            las.to_str().unwrap(),
            "-o",
            b.to_str().unwrap(),
            "-q",
        ],
        d.path(),
    );
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    assert_eq!((c.stdout.as_str(), c.stderr.as_str()), ("", ""));
}

#[test]
fn completions_and_manual_pages_cover_every_command() {
    let d = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let c = run(&["completions", shell], d.path());
        assert_eq!(c.code, Some(0), "{shell}: {}", c.stderr);
        for word in ["convert", "serve", "max-points-per-tile", "stretch"] {
            assert!(c.stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    let c = run(&["completions", "tcsh-or-so"], d.path());
    assert_eq!(c.code, Some(2), "{}", c.stderr);

    let c = run(&["man"], d.path());
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    assert!(
        c.stdout.starts_with(".ie") || c.stdout.contains(".TH tessera"),
        "{}",
        c.stdout
    );
    let pages = d.path().join("man");
    let c = run(&["man", pages.to_str().unwrap()], d.path());
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    for page in ["tessera.1", "tessera-convert.1", "tessera-serve.1"] {
        let text = std::fs::read_to_string(pages.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    let convert = std::fs::read_to_string(pages.join("tessera-convert.1")).unwrap();
    assert!(convert.contains("max\\-points\\-per\\-tile"), "{convert}");
}

#[test]
fn progress_lines_count_in_each_routes_own_units() {
    let d = tempfile::tempdir().unwrap();
    let f = |n: &str| fixture(n).to_str().unwrap().to_owned();
    let runs: Vec<(Vec<String>, &str)> = vec![
        (vec![f("tiny.las")], "done: 64 / 64 points"),
        (vec![f("tiny.gml")], "done: 1 / 1 tiles"),
        (
            vec![f("tiny.gltf"), "--position".into(), "7,50,100".into()],
            "done: 1 / 1 tiles",
        ),
        (
            vec!["--to".into(), "imagery".into(), f("tiny-rgb.tif")],
            "done: 1 / 1 finest-zoom tiles",
        ),
        (
            vec!["--to".into(), "terrain".into(), f("tiny-dem.tif")],
            " tiles",
        ),
    ];
    for (k, (extra, want)) in runs.iter().enumerate() {
        let o = d.path().join(format!("o{k}"));
        let mut args: Vec<&str> = vec!["convert", "-o", o.to_str().unwrap()];
        args.extend(extra.iter().map(String::as_str));
        let c = run(&args, d.path());
        assert_eq!(c.code, Some(0), "{args:?}: {}", c.stderr);
        let lines: Vec<&str> = c
            .stderr
            .lines()
            .filter(|l| l.starts_with("tessera:"))
            .collect();
        let last = lines
            .last()
            .unwrap_or_else(|| panic!("{args:?}: no progress line: {}", c.stderr));
        assert!(
            last.starts_with("tessera: 100% done: ") && last.ends_with(want),
            "{args:?}: {last}"
        );
        if k > 0 {
            assert!(
                lines.iter().all(|l| !l.contains("points")),
                "{args:?}: {lines:?}"
            );
        }
    }
}

/// A raster or city model whose numbers cannot be in the CRS it is given converts with a
/// warning that names the CRS's area of use; its own CRS gives none.
#[test]
fn rasters_and_city_models_outside_their_crs_area_of_use_are_warned_of() {
    let d = tempfile::tempdir().unwrap();
    let rgb = fixture("tiny-rgb.tif");
    let dem = fixture("tiny-dem.tif");
    let gml = fixture("tiny.gml");
    let runs = [("imagery", &rgb), ("terrain", &dem), ("3dtiles", &gml)];
    for (k, (route, file)) in runs.into_iter().enumerate() {
        let f = file.to_str().unwrap();
        let wrong = d.path().join(format!("wrong{k}"));
        let c = run(
            &[
                "convert",
                "--to",
                route,
                f,
                "-o",
                wrong.to_str().unwrap(),
                "--input-crs",
                "EPSG:27700",
            ],
            d.path(),
        );
        assert_eq!(c.code, Some(0), "{route}: {}", c.stderr);
        assert!(
            c.stderr
                .contains("outside the area where OSGB36 / British National Grid is used"),
            "{route}: {}",
            c.stderr
        );
        let right = d.path().join(format!("right{k}"));
        let c = run(
            &["convert", "--to", route, f, "-o", right.to_str().unwrap()],
            d.path(),
        );
        assert_eq!(c.code, Some(0), "{route}: {}", c.stderr);
        assert!(
            !c.stderr.contains("outside the area"),
            "{route}: {}",
            c.stderr
        );
    }
}
