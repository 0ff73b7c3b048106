//! The command line against hostile use: outputs and reports that would destroy an input,
//! folders of mixed kinds, flags out of range, a full disk and read-only folders, signals,
//! and leftovers of killed runs.

use crate::helpers::{assert_refused, samples, tessera_capped, Capped, HOSTILE_TIME};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MEM: u64 = 4 << 30;

fn run(args: &[&str], cwd: &Path) -> Capped {
    tessera_capped(args, cwd, MEM, Duration::from_secs(60))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn copy(from: &Path, dir: &Path) -> PathBuf {
    let to = dir.join(from.file_name().unwrap());
    std::fs::copy(from, &to).unwrap();
    to
}

#[test]
fn outputs_and_reports_never_destroy_an_input() {
    let Some(root) = samples() else { return };
    let d = tempfile::tempdir().unwrap();
    let las = copy(&root.join("las/lazperf/point10.las"), d.path());
    let before = std::fs::read(&las).unwrap();
    let folder = d.path().join("in");
    std::fs::create_dir_all(&folder).unwrap();
    let inner = copy(&las, &folder);
    let out = d.path().join("out");
    let tiles = folder.join("tiles");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["convert", s(&las), "-o", s(&out), "--report", s(&las)],
            "--report",
        ),
        (
            vec!["convert", s(&las), "-o", s(&las), "--force"],
            "is the input",
        ),
        (
            vec!["convert", s(&folder), "-o", s(&folder), "--force"],
            "is the input",
        ),
        (
            vec!["convert", s(&inner), "-o", s(&folder), "--force"],
            "holds the input",
        ),
        (
            vec!["convert", s(&folder), "-o", s(&tiles)],
            "inside the input folder",
        ),
        (
            vec!["convert", s(&las), "-o", s(&out), "--report", s(d.path())],
            "--report",
        ),
    ];
    for (args, needle) in cases {
        let c = run(&args, d.path());
        assert_refused(&c, 2, None, needle);
        assert_eq!(
            std::fs::read(&las).unwrap(),
            before,
            "{args:?} touched the input"
        );
        assert_eq!(
            std::fs::read(&inner).unwrap(),
            before,
            "{args:?} touched the input"
        );
    }
    // --force replaces a previous output, never other files.
    let c = run(&["convert", s(&las), "-o", s(&out), "-q"], d.path());
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    let c = run(
        &["convert", s(&las), "-o", s(&out), "-q", "--force"],
        d.path(),
    );
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    let other = d.path().join("photos");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("holiday.jpg"), b"\xFF\xD8\xFF").unwrap();
    let c = run(&["convert", s(&las), "-o", s(&other), "--force"], d.path());
    assert_refused(&c, 2, None, "not a tileset");
    assert!(other.join("holiday.jpg").exists());
}

#[test]
fn flags_out_of_range_are_usage_errors() {
    let Some(root) = samples() else { return };
    let d = tempfile::tempdir().unwrap();
    let truck = root.join("gltf/CesiumMilkTruck/CesiumMilkTruck.gltf");
    let las = root.join("las/lazperf/point10.las");
    let out = d.path().join("out");
    let cases: Vec<Vec<&str>> = vec![
        vec![s(&truck), "--position", "13.4,52.5,40", "--scale", "1e308"],
        vec![s(&truck), "--position", "13.4,52.5,1e300"],
        vec![s(&truck), "--position", "0,500,0"],
        vec![s(&truck), "--position", "13.4,52.5,40", "--heading", "inf"],
        vec![s(&las), "--sample-spacing", "NaN"],
        vec![s(&las), "--max-points-per-tile", "18446744073709551615"],
        vec![s(&las), "--threads", "100000"],
        vec!["--to", "terrain", s(&las), "--max-error", "1e309"],
    ];
    for extra in cases {
        let mut args = vec!["convert", "-o", s(&out)];
        args.extend(extra.iter().copied());
        let c = run(&args, d.path());
        assert_eq!(c.code, Some(2), "{args:?}: {}", c.stderr);
        assert!(!c.stderr.contains("internal error"), "{}", c.stderr);
        assert!(!out.exists());
    }
}

#[test]
fn a_folder_of_mixed_kinds_names_what_it_leaves_out() {
    let Some(root) = samples() else { return };
    let d = tempfile::tempdir().unwrap();
    let mixed = d.path().join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    copy(&root.join("las/lazperf/point10.las"), &mixed);
    copy(
        &root.join("citygml/fzk-haus-citygml1/FZK-House-LoD2-KIT-IAI-KHH-V2.gml"),
        &mixed,
    );
    copy(&root.join("gltf/Box/Box.glb"), &mixed);
    copy(&root.join("geotiff/dem/pysheds_dem.tif"), &mixed);
    let report = d.path().join("report.json");
    let c = run(
        &[
            "convert",
            s(&mixed),
            "-o",
            s(&d.path().join("out")),
            "--report",
            s(&report),
        ],
        d.path(),
    );
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["features_written"], 1, "the CityGML house is converted");
    let warnings = r["warnings"].to_string();
    for name in ["point10.las", "Box.glb", "pysheds_dem.tif"] {
        assert!(
            warnings.contains(name),
            "{name} is named as left out: {warnings}"
        );
    }
    assert!(
        warnings.contains("--to imagery or --to terrain"),
        "{warnings}"
    );
    assert!(c.stderr.contains("left out"), "and shown: {}", c.stderr);
}

#[test]
fn broken_city_files_say_what_they_are() {
    let Some(root) = samples() else { return };
    let d = tempfile::tempdir().unwrap();
    let zip = std::fs::read(root.join("citygml/plateau-yokosuka.zip")).unwrap();
    let gml =
        std::fs::read(root.join("citygml/fzk-haus-citygml1/FZK-House-LoD2-KIT-IAI-KHH-V2.gml"))
            .unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    for u in String::from_utf8_lossy(&gml).encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated.zip", zip[..zip.len() / 3].to_vec()),
        ("truncated.gml", gml[..gml.len() / 2].to_vec()),
        ("utf16.gml", utf16),
    ];
    for (name, bytes) in cases {
        let p = d.path().join(name);
        std::fs::write(&p, &bytes).unwrap();
        let c = run(
            &["convert", s(&p), "-o", s(&d.path().join("out")), "-q"],
            d.path(),
        );
        assert!(
            c.code == Some(1) || c.code == Some(0),
            "{name}: exit {:?}: {}",
            c.code,
            c.stderr
        );
        assert!(!c.stderr.contains("LAS/LAZ"), "{name}: {}", c.stderr);
        assert!(c.elapsed < HOSTILE_TIME);
        if c.code == Some(1) {
            assert!(c.stderr.contains(name), "{name}: {}", c.stderr);
        }
    }
}

#[test]
fn a_fifo_input_is_refused_not_read() {
    let d = tempfile::tempdir().unwrap();
    for name in ["pipe.las", "pipe.gltf", "pipe.gml"] {
        let p = d.path().join(name);
        assert!(std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .unwrap()
            .success());
        let c = run(
            &["convert", s(&p), "-o", s(&d.path().join("out"))],
            d.path(),
        );
        assert_refused(&c, 1, Some(&p), "named pipe");
    }
}

/// Run `tessera` as an unprivileged user when the tests run as root (root ignores
/// permissions), with SIGXFSZ ignored so a file-size limit shows as "file too large".
fn limited(args: &[&str], fsize: Option<u64>, cwd: &Path) -> std::process::Output {
    let mut sh = String::from("trap '' XFSZ; exec ");
    if let Some(n) = fsize {
        sh.push_str(&format!("prlimit --fsize={n} -- "));
    }
    let root = std::process::Command::new("id").arg("-u").output().unwrap();
    let mut exe = PathBuf::from(env!("CARGO_BIN_EXE_tessera"));
    if String::from_utf8_lossy(&root.stdout).trim() == "0" {
        sh.push_str("setpriv --reuid=65534 --regid=65534 --clear-groups -- ");
        // The checkout may sit where that user cannot reach: run a copy from here.
        let copy = cwd.join("tessera-bin");
        if !copy.exists() {
            std::fs::copy(&exe, &copy).unwrap();
        }
        exe = copy;
    }
    sh.push_str(&format!("'{}'", exe.display()));
    for a in args {
        sh.push_str(&format!(" '{a}'"));
    }
    std::process::Command::new("sh")
        .arg("-c")
        .arg(sh)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn a_full_disk_and_a_read_only_folder_are_environment_errors() {
    use std::os::unix::fs::PermissionsExt;
    let Some(root) = samples() else { return };
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let las = copy(&root.join("las/laspy/autzen_trim.laz"), d.path());
    std::fs::set_permissions(&las, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Full disk: no file may grow past 64 KiB.
    let out = d.path().join("full");
    let o = limited(
        &["convert", s(&las), "-o", s(&out), "-q"],
        Some(64 << 10),
        d.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("disk is full"), "{err}");
    assert!(!out.exists(), "nothing left at the output");
    // A folder this user may not write.
    let ro = d.path().join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let o = limited(
        &["convert", s(&las), "-o", s(&ro.join("out")), "-q"],
        None,
        d.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("ro"), "names the path: {err}");
    assert!(err.contains("may not write"), "{err}");
    // A report that cannot be written.
    let o = limited(
        &[
            "convert",
            s(&las),
            "-o",
            s(&d.path().join("ok")),
            "-q",
            "--report",
            s(&ro.join("r.json")),
        ],
        None,
        d.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let leftovers: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn sigterm_cancels_cleanly_and_leftovers_of_a_killed_run_are_removed() {
    let Some(root) = samples() else { return };
    let d = tempfile::tempdir().unwrap();
    let tif = root.join("geotiff/imagery/cog_world.tif");
    let out = d.path().join("world");
    for signal in ["TERM", "HUP", "KILL"] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args([
                "convert",
                "--to",
                "imagery",
                s(&tif),
                "-o",
                s(&out),
                "-q",
                "--max-zoom",
                "6",
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let staged = || {
            std::fs::read_dir(d.path()).unwrap().flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".world.partial-")
            })
        };
        let start = std::time::Instant::now();
        while !staged() && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(staged(), "the job started staging");
        std::thread::sleep(Duration::from_millis(300));
        std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        if signal == "KILL" {
            assert!(staged(), "a killed run leaves its staging behind");
        } else {
            assert_eq!(status.code(), Some(130), "SIG{signal}");
            assert!(!staged(), "SIG{signal} removed the staging");
        }
        assert!(!out.exists());
    }
    // The next run removes what the killed one left.
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/files/tiny-rgb.tif");
    let c = run(
        &["convert", "--to", "imagery", s(&tiny), "-o", s(&out), "-q"],
        d.path(),
    );
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
