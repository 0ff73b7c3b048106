//! Input discovery: expand directories and recognise formats by content, not extension.

use crate::error::InputError;
use crate::report::Warnings;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// LAS or LAZ (compression is told by the header), COPC included.
    Las,
}

/// What the first bytes of a file say it is.
fn sniff(path: &Path) -> Result<Result<InputFormat, String>, InputError> {
    let mut head = [0u8; 8];
    let mut f = File::open(path).map_err(|source| InputError::Io {
        path: path.into(),
        source,
    })?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(source) => {
                return Err(InputError::Io {
                    path: path.into(),
                    source,
                })
            }
        }
    }
    let head = &head[..n];
    Ok(if head.starts_with(b"LASF") {
        Ok(InputFormat::Las)
    } else if n == 0 {
        Err("the file is empty".into())
    } else {
        Err(describe(head))
    })
}

fn describe(head: &[u8]) -> String {
    let kind = if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        "a TIFF/GeoTIFF raster"
    } else if head.starts_with(b"PK") {
        "a zip archive"
    } else if head.starts_with(b"glTF") {
        "a binary glTF model"
    } else if head.starts_with(b"<?xml") || head.starts_with(b"<") {
        "an XML document"
    } else if head.starts_with(&[0x1f, 0x8b]) {
        "a gzip file"
    } else {
        "not a recognised format (no LASF signature)"
    };
    format!("this is {kind}, not a LAS/LAZ point cloud")
}

/// Expand the job's inputs: files must be recognised; directories are searched
/// recursively (sorted, so the result is the same on every run) and files in them that
/// are not point clouds are skipped with a warning.
pub fn discover(
    inputs: &[PathBuf],
    warnings: &Warnings,
) -> Result<Vec<(PathBuf, InputFormat)>, InputError> {
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|_| InputError::NotFound {
            path: input.clone(),
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(input, &mut files)?;
            files.sort();
            let before = out.len();
            for f in files {
                match sniff(&f)? {
                    Ok(fmt) => out.push((f, fmt)),
                    Err(why) => {
                        warnings.push("skipped-file", format!("{}: skipped: {why}", f.display()))
                    }
                }
            }
            if out.len() == before {
                return Err(InputError::NoInputs(format!(
                    "{} holds no LAS/LAZ files",
                    input.display()
                )));
            }
        } else {
            match sniff(input)? {
                Ok(fmt) => out.push((input.clone(), fmt)),
                Err(what) => {
                    return Err(InputError::Unsupported {
                        path: input.clone(),
                        what,
                    })
                }
            }
        }
    }
    if out.is_empty() {
        return Err(InputError::NoInputs("nothing given to convert".into()));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|(p, _)| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
    Ok(out)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let entries = std::fs::read_dir(dir).map_err(|source| InputError::Io {
        path: dir.into(),
        source,
    })?;
    for e in entries {
        let e = e.map_err(|source| InputError::Io {
            path: dir.into(),
            source,
        })?;
        let p = e.path();
        let ft = e.file_type().map_err(|source| InputError::Io {
            path: p.clone(),
            source,
        })?;
        if ft.is_dir() {
            walk(&p, files)?;
        } else if ft.is_file() {
            files.push(p);
        }
    }
    Ok(())
}
