//! Files an input refers to (glTF buffers and images, CityGML textures and codelists) are
//! read only when they are regular files inside the folder the job allows: a hostile
//! document must not be able to pull `/etc/shadow`, a device or a pipe into the tiles.

use crate::job::JobSpec;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where references may lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefRoot {
    /// Canonical folder every referenced file must lie in; `None`: anywhere.
    root: Option<PathBuf>,
}

impl RefRoot {
    /// Files anywhere (still regular files only).
    pub fn anywhere() -> RefRoot {
        RefRoot { root: None }
    }

    /// Files inside `dir` (resolved, symbolic links followed).
    pub fn within(dir: &Path) -> RefRoot {
        let root = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        RefRoot { root: Some(root) }
    }

    /// The root for references of `input` (a file or folder the job was given):
    /// `spec.refs_root` when set, else the folder given (or the given file's folder);
    /// anywhere with `spec.allow_outside_refs`.
    pub fn for_input(spec: &JobSpec, input: &Path) -> RefRoot {
        if spec.allow_outside_refs {
            return RefRoot::anywhere();
        }
        if let Some(r) = &spec.refs_root {
            return RefRoot::within(r);
        }
        if input.is_dir() {
            RefRoot::within(input)
        } else {
            RefRoot::within(
                input
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new(".")),
            )
        }
    }

    /// The folder references must stay in, if any.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// `path` resolved, when it may be read: it exists, is a regular file (after
    /// following links) and lies inside the root. The error says why not.
    pub fn check(&self, path: &Path) -> Result<PathBuf, String> {
        let real = path
            .canonicalize()
            .map_err(|_| format!("{} does not exist", path.display()))?;
        if let Some(root) = &self.root {
            if !real.starts_with(root) {
                return Err(format!(
                    "{} resolves outside {}, the folder references are read from",
                    path.display(),
                    root.display()
                ));
            }
        }
        let meta = std::fs::metadata(&real)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        if !meta.is_file() {
            return Err(format!(
                "{} is not a regular file (a device, pipe, socket or folder)",
                path.display()
            ));
        }
        Ok(real)
    }

    /// The whole file at `path` after [`RefRoot::check`], at most `max_bytes`.
    pub fn read(&self, path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
        let real = self.check(path)?;
        read_capped(&real, max_bytes).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Read a regular file of at most `max_bytes` (its size is checked first and the read is
/// capped, so a file that grows while read cannot exhaust memory).
pub fn read_capped(path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file (a device, pipe, socket or folder)".into());
    }
    if meta.len() > max_bytes {
        return Err(format!(
            "{} bytes is more than the {} MiB limit",
            meta.len(),
            max_bytes >> 20
        ));
    }
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(meta.len() as usize);
    f.take(max_bytes + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() as u64 > max_bytes {
        return Err(format!("more than the {} MiB limit", max_bytes >> 20));
    }
    Ok(out)
}

/// Memory a job may size allocations by. Counts and sizes read from files are checked
/// against this before anything is allocated for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Budget {
    pub memory_bytes: u64,
}

impl Default for Budget {
    /// Three quarters of this machine's memory (8 GiB when it cannot be read).
    fn default() -> Budget {
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map(|kb| kb * 1024)
            .unwrap_or(32 << 30);
        Budget {
            memory_bytes: total / 4 * 3,
        }
    }
}

impl Budget {
    /// `Err` with a sentence when `bytes` (for `what`) exceeds the budget.
    pub fn check(&self, bytes: u128, what: &str) -> Result<(), String> {
        if bytes > u128::from(self.memory_bytes) {
            Err(format!(
                "{what} would need {:.1} GiB, more than the job's memory budget of {:.1} GiB",
                bytes as f64 / f64::from(1u32 << 30),
                self.memory_bytes as f64 / f64::from(1u32 << 30)
            ))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_stay_inside_and_are_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("model");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(inner.join("a.png"), b"png").unwrap();
        std::fs::write(dir.path().join("secret.png"), b"secret").unwrap();
        let root = RefRoot::within(&inner);
        assert_eq!(root.read(&inner.join("a.png"), 100).unwrap(), b"png");
        let e = root.read(&inner.join("../secret.png"), 100).unwrap_err();
        assert!(e.contains("outside"), "{e}");
        assert!(root.read(Path::new("/etc/passwd"), 1 << 20).is_err());
        assert!(root
            .read(&inner.join("missing.png"), 100)
            .unwrap_err()
            .contains("does not exist"));
        std::os::unix::fs::symlink("/dev/zero", inner.join("zero.png")).unwrap();
        let e = root.read(&inner.join("zero.png"), 100).unwrap_err();
        assert!(e.contains("outside"), "{e}");
        let e = RefRoot::anywhere()
            .read(&inner.join("zero.png"), 100)
            .unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::write(inner.join("big.bin"), vec![0u8; 200]).unwrap();
        assert!(root
            .read(&inner.join("big.bin"), 100)
            .unwrap_err()
            .contains("limit"));
    }

    #[test]
    fn budget_refuses_what_exceeds_it() {
        let b = Budget {
            memory_bytes: 1 << 30,
        };
        assert!(b.check(1 << 20, "x").is_ok());
        assert!(b
            .check(u128::from(u64::MAX), "the instances")
            .unwrap_err()
            .contains("budget"));
    }
}
