//! The output, report and temporary paths must never destroy an input: a path that is,
//! holds or lies inside an input is refused before anything is written.

use std::path::{Component, Path, PathBuf};

/// `p` made absolute with links resolved as far as it exists, the rest normalised
/// lexically (so paths that do not exist yet compare too).
fn resolve(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut existing = abs.clone();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for c in rest.iter().rev() {
                out.push(c);
            }
            return normalise(&out);
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return normalise(&abs),
        }
    }
}

fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Check the paths a job writes against every path it reads; the message says which
/// clash and how to avoid it.
pub fn check_paths(
    inputs: &[PathBuf],
    output: &Path,
    report: Option<&Path>,
    temp_dir: Option<&Path>,
) -> Result<(), String> {
    let out = resolve(output);
    for input in inputs {
        let i = resolve(input);
        let is_dir = i.is_dir();
        if out == i {
            return Err(format!(
                "-o {} is the input {}; choose another output path",
                output.display(),
                input.display()
            ));
        }
        if i.starts_with(&out) {
            return Err(format!(
                "-o {} holds the input {}; replacing it would delete the input. Choose another output path",
                output.display(),
                input.display()
            ));
        }
        if is_dir && out.starts_with(&i) {
            return Err(format!(
                "-o {} lies inside the input folder {}; write the output elsewhere",
                output.display(),
                input.display()
            ));
        }
        if let Some(report) = report {
            let r = resolve(report);
            if r == i || i.starts_with(&r) || (is_dir && r.starts_with(&i)) {
                return Err(format!(
                    "--report {} is, holds or lies inside the input {}; write the report elsewhere",
                    report.display(),
                    input.display()
                ));
            }
        }
    }
    if let Some(report) = report {
        let r = resolve(report);
        if r == out {
            return Err("--report and -o name the same path".into());
        }
        if r.is_dir() {
            return Err(format!(
                "--report {} is a folder; name the JSON file to write",
                report.display()
            ));
        }
    }
    if let Some(t) = temp_dir {
        let t = resolve(t);
        if t == out || t.starts_with(&out) {
            return Err(format!(
                "--temp-dir lies inside -o {}, which the job replaces; choose a folder outside it",
                output.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_and_reports_never_touch_inputs() {
        let d = tempfile::tempdir().unwrap();
        let las = d.path().join("a.las");
        std::fs::write(&las, b"LASF").unwrap();
        let dir = d.path().join("in");
        std::fs::create_dir_all(&dir).unwrap();
        let inputs = vec![las.clone(), dir.clone()];
        let out = d.path().join("out");
        assert!(check_paths(&inputs, &out, Some(&d.path().join("r.json")), None).is_ok());
        assert!(check_paths(&inputs, &las, None, None)
            .unwrap_err()
            .contains("is the input"));
        assert!(check_paths(&inputs, d.path(), None, None)
            .unwrap_err()
            .contains("holds the input"));
        assert!(check_paths(&inputs, &dir.join("x"), None, None)
            .unwrap_err()
            .contains("inside the input folder"));
        let e = check_paths(&inputs, &out, Some(&las), None).unwrap_err();
        assert!(e.contains("--report"), "{e}");
        let e = check_paths(&inputs, &out, Some(&dir.join("r.json")), None).unwrap_err();
        assert!(e.contains("--report"), "{e}");
        let e =
            check_paths(&inputs, &out, Some(d.path().join("in/..").as_path()), None).unwrap_err();
        assert!(e.contains("--report"), "{e}");
        let rel = d.path().join("in/../a.las");
        assert!(
            check_paths(&inputs, &rel, None, None).is_err(),
            "dot-dot spelling"
        );
        assert!(check_paths(&inputs, &out, None, Some(&out.join("t"))).is_err());
    }
}
