//! Bad input: the binary exits 1 naming the file and the reason; never a panic or hang.

use crate::helpers::{assert_data_error, samples, tessera, Outcome};
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn convert(input: &Path, out: &Path, extra: &[&str]) -> Outcome {
    let mut args = vec![
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    tessera(&args, LIMIT)
}

/// A copy of `src` in `dir` with `edit` applied.
fn corrupt(
    src: &Path,
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut Vec<u8>),
) -> std::path::PathBuf {
    let mut b = std::fs::read(src).unwrap();
    edit(&mut b);
    let p = dir.join(name);
    std::fs::write(&p, b).unwrap();
    p
}

#[test]
fn mislabelled_and_missing_crs_are_refused() {
    let Some(root) = samples() else { return };
    let out = tempfile::tempdir().unwrap();
    let lone = root.join("las/pdal/lone-star.copc.laz");
    let o = convert(&lone, &out.path().join("a"), &[]);
    assert_data_error(&o, &lone, "cannot be in");
    assert!(
        !out.path().join("a").exists(),
        "no tileset for a refused input"
    );

    let ahn = root.join("las/ahn3/ahn3_cropped_1.laz");
    let o = convert(&ahn, &out.path().join("b"), &[]);
    assert_data_error(&o, &ahn, "--input-crs");
    assert!(!out.path().join("b").exists());

    let o = convert(&ahn, &out.path().join("c"), &["--input-crs", "EPSG:999999"]);
    assert_data_error(&o, &ahn, "PROJ");
}

#[test]
fn corrupt_files_are_refused() {
    let Some(root) = samples() else { return };
    let dir = tempfile::tempdir().unwrap();
    let laz = root.join("las/laspy/autzen_trim.laz");
    let las12 = root.join("las/lazperf/point10.las");

    let truncated = corrupt(&laz, dir.path(), "truncated.laz", |b| {
        b.truncate(b.len() / 2)
    });
    let o = convert(&truncated, &dir.path().join("o1"), &[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("truncated.laz"), "{}", o.stderr);

    let magic = corrupt(&las12, dir.path(), "magic.las", |b| {
        b[0..4].copy_from_slice(b"XXXX")
    });
    assert_data_error(
        &convert(&magic, &dir.path().join("o2"), &[]),
        &magic,
        "LAS/LAZ",
    );

    // LAS 1.2 legacy point count (offset 107) raised beyond what the file holds.
    let more = corrupt(&las12, dir.path(), "more.las", |b| {
        b[107..111].copy_from_slice(&5000u32.to_le_bytes())
    });
    assert_data_error(
        &convert(&more, &dir.path().join("o3"), &[]),
        &more,
        "truncated",
    );

    let zero = corrupt(&las12, dir.path(), "zero.las", |b| {
        b[107..111].copy_from_slice(&0u32.to_le_bytes());
        for r in 0..5 {
            b[111 + 4 * r..115 + 4 * r].copy_from_slice(&0u32.to_le_bytes());
        }
    });
    assert_data_error(
        &convert(&zero, &dir.path().join("o4"), &[]),
        &zero,
        "no points",
    );

    // x scale factor (offset 131) set to 0.
    let scale = corrupt(&las12, dir.path(), "scale.las", |b| {
        b[131..139].copy_from_slice(&0f64.to_le_bytes())
    });
    assert_data_error(
        &convert(&scale, &dir.path().join("o5"), &[]),
        &scale,
        "scale factor",
    );

    let empty = corrupt(&las12, dir.path(), "empty.las", |b| b.clear());
    assert_data_error(
        &convert(&empty, &dir.path().join("o6"), &[]),
        &empty,
        "empty",
    );

    // Corrupted compressed bytes in the middle of the point data.
    let garbled = corrupt(&laz, dir.path(), "garbled.laz", |b| {
        let mid = b.len() / 2;
        for (i, x) in b[mid..mid + 4096].iter_mut().enumerate() {
            *x = (i * 131 % 251) as u8;
        }
    });
    let o = convert(&garbled, &dir.path().join("o7"), &[]);
    assert!(o.code == 0 || o.code == 1, "{}", o.stderr);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = tessera(&["convert", "x.las"], LIMIT);
    assert_eq!(o.code, 2);
    std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
    let o = tessera(
        &["convert", "x.las", "-o", dir.path().to_str().unwrap()],
        LIMIT,
    );
    assert_eq!(o.code, 2, "existing output needs --force: {}", o.stderr);
    assert!(o.stderr.contains("--force"));
    let o = tessera(
        &["convert", "/no/such/file.las", "-o", "/tmp/x-tessera-none"],
        LIMIT,
    );
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("/no/such/file.las"));
}
