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
    /// TIFF or BigTIFF (GeoTIFF, COG).
    Tiff,
    /// glTF 2.0: binary `.glb` or `.gltf` JSON.
    Gltf,
}

impl InputFormat {
    pub fn describe(&self) -> &'static str {
        match self {
            InputFormat::Las => "a LAS/LAZ point cloud",
            InputFormat::Tiff => "a GeoTIFF raster",
            InputFormat::Gltf => "a glTF/GLB model",
        }
    }
}

fn is_tiff(head: &[u8]) -> bool {
    head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
        || head.starts_with(b"II+\0")
        || head.starts_with(b"MM\0+")
}

/// A JSON object (a .gltf), allowing a byte-order mark and leading white space.
fn is_json(head: &[u8]) -> bool {
    let head = head.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(head);
    head.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

fn has_model_extension(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("glb") || e.eq_ignore_ascii_case("gltf"))
}

/// Refuse what is not a regular file (a FIFO would block the reader forever, a device
/// never ends).
pub(crate) fn require_regular(path: &Path) -> Result<(), InputError> {
    let meta = std::fs::metadata(path).map_err(|_| InputError::NotFound { path: path.into() })?;
    if meta.is_file() || meta.is_dir() {
        return Ok(());
    }
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let what = if t.is_fifo() {
        "this is a named pipe (FIFO)"
    } else if t.is_socket() {
        "this is a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "this is a device"
    } else {
        "this is not a regular file"
    };
    Err(InputError::NotRegular {
        path: path.into(),
        what: what.into(),
    })
}

/// What the first bytes of a file say it is, checked against what the route takes.
fn sniff(path: &Path, accept: InputFormat) -> Result<Result<InputFormat, String>, InputError> {
    require_regular(path)?;
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
    let found = if head.starts_with(b"LASF") {
        Some(InputFormat::Las)
    } else if is_tiff(head) {
        Some(InputFormat::Tiff)
    } else if head.starts_with(b"glTF") || is_json(head) {
        Some(InputFormat::Gltf)
    } else {
        None
    };
    Ok(match found {
        Some(f) if f == accept => Ok(f),
        _ if n == 0 => Err("the file is empty".into()),
        _ => Err(describe(head, accept)),
    })
}

fn describe(head: &[u8], accept: InputFormat) -> String {
    let kind = if head.starts_with(b"LASF") {
        "a LAS/LAZ point cloud"
    } else if is_tiff(head) {
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
        "not a recognised format"
    };
    format!("this is {kind}, not {}", accept.describe())
}

/// Expand the job's inputs: files must be of the `accept`ed format; directories are
/// searched recursively (sorted, so the result is the same on every run) and other files
/// in them are skipped with a warning.
pub fn discover(
    inputs: &[PathBuf],
    accept: InputFormat,
    warnings: &Warnings,
) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|_| InputError::NotFound {
            path: input.clone(),
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(input, &mut files)?;
            if accept == InputFormat::Gltf {
                // A model's folder also holds its buffers and images.
                files.retain(|f| has_model_extension(f));
            }
            files.sort();
            let before = out.len();
            for f in files {
                match sniff(&f, accept)? {
                    Ok(_) => out.push(f),
                    Err(why) => {
                        warnings.push("skipped-file", format!("{}: skipped: {why}", f.display()))
                    }
                }
            }
            if out.len() == before {
                return Err(InputError::NoInputs(format!(
                    "{} holds no file that is {}",
                    input.display(),
                    accept.describe()
                )));
            }
        } else {
            match sniff(input, accept)? {
                Ok(_) => out.push(input.clone()),
                Err(what) => {
                    return Err(InputError::Unsupported {
                        path: input.clone(),
                        what,
                        route: accept.describe(),
                    })
                }
            }
        }
    }
    if out.is_empty() {
        return Err(InputError::NoInputs("nothing given to convert".into()));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
    Ok(out)
}

pub(crate) fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), InputError> {
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
