//! Where CityGML documents and the files they refer to (texture images, codelists) come
//! from: plain files, folders (PLATEAU's `udx/<type>/*.gml` layout included) and zips.
//!
//! Zips are read in place, entry by entry, never unpacked to disk. Every entry is checked
//! before it is read: names that leave the archive (`../`, absolute paths) are skipped
//! with a warning, entries whose declared size or compression ratio is implausible are
//! refused, and reads stop at the declared size so a lying header cannot inflate.

use crate::error::{CityGmlError, InputError, PipelineError};
use crate::report::Warnings;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// An entry inflating more than this many times its compressed size is refused (real
/// CityGML deflates 10-30×; deflate's own ceiling is about 1000×).
pub const MAX_RATIO: u64 = 200;
/// Below this size any ratio is accepted (tiny, highly regular files).
const RATIO_FLOOR_BYTES: u64 = 1 << 20;
/// Largest single entry.
pub const MAX_ENTRY_BYTES: u64 = 64 << 30;
/// Largest image or codelist read into memory.
pub const MAX_RESOURCE_BYTES: u64 = 512 << 20;

#[derive(Debug, Clone)]
struct ZipEntry {
    /// Offset of the compressed data in the archive.
    data_start: u64,
    packed: u64,
    size: u64,
    deflated: bool,
}

/// A zip's usable entries by normalised name.
#[derive(Debug)]
pub struct ZipIndex {
    pub path: PathBuf,
    entries: HashMap<String, ZipEntry>,
}

/// A document or resource: a file, or an entry of a zip.
#[derive(Debug, Clone)]
pub enum Location {
    File(PathBuf),
    Zip { zip: Arc<ZipIndex>, name: String },
}

/// `a/b/../c` → `a/c`; `None` when the path climbs above its root or is absolute.
fn normalise(path: &str) -> Option<String> {
    let unified = path.replace('\\', "/");
    let mut parts: Vec<&str> = Vec::new();
    for c in unified.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    if path.starts_with('/') || path.starts_with('\\') || path.contains(':') {
        return None;
    }
    Some(parts.join("/"))
}

fn archive_error(path: &Path, reason: impl Into<String>) -> PipelineError {
    CityGmlError::Archive {
        path: path.into(),
        reason: reason.into(),
    }
    .into()
}

impl ZipIndex {
    /// Read the central directory, keeping entries that are safe to read.
    pub fn open(path: &Path, warnings: &Warnings) -> Result<Arc<ZipIndex>, PipelineError> {
        let file = File::open(path).map_err(|source| InputError::Io {
            path: path.into(),
            source,
        })?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| {
            archive_error(
                path,
                format!("not a readable zip: {e}. Check that the upload is complete"),
            )
        })?;
        let mut entries = HashMap::new();
        let mut unsafe_names = Vec::new();
        for i in 0..zip.len() {
            let f = zip
                .by_index_raw(i)
                .map_err(|e| archive_error(path, format!("entry {i} is unreadable: {e}")))?;
            if f.is_dir() {
                continue;
            }
            let raw = String::from_utf8_lossy(f.name_raw()).to_string();
            let Some(name) = normalise(&raw).filter(|_| !raw.split(['/', '\\']).any(|c| c == ".."))
            else {
                unsafe_names.push(raw);
                continue;
            };
            let size = f.size();
            let packed = f.compressed_size().max(1);
            let deflated = match f.compression() {
                zip::CompressionMethod::Stored => false,
                zip::CompressionMethod::Deflated => true,
                other => {
                    warnings.push(
                        "zip-unsupported-entry",
                        format!(
                            "{}: entry {raw} skipped: compression {other:?} is not supported (re-zip with deflate)",
                            path.display()
                        ),
                    );
                    continue;
                }
            };
            if f.encrypted() {
                warnings.push(
                    "zip-unsupported-entry",
                    format!("{}: entry {raw} skipped: it is encrypted", path.display()),
                );
                continue;
            }
            let Some(data_start) = f.data_start() else {
                return Err(archive_error(
                    path,
                    format!("entry {raw} has no local header"),
                ));
            };
            if size > MAX_ENTRY_BYTES {
                return Err(archive_error(
                    path,
                    format!(
                        "entry {raw} declares {size} bytes, more than the {} GiB limit",
                        MAX_ENTRY_BYTES >> 30
                    ),
                ));
            }
            if size > RATIO_FLOOR_BYTES && size / packed > MAX_RATIO {
                return Err(archive_error(
                    path,
                    format!(
                        "entry {raw} would inflate {}× ({packed} → {size} bytes); refused as a zip bomb",
                        size / packed
                    ),
                ));
            }
            entries.insert(
                name,
                ZipEntry {
                    data_start,
                    packed: f.compressed_size(),
                    size,
                    deflated,
                },
            );
        }
        if !unsafe_names.is_empty() {
            warnings.push(
                "zip-unsafe-entry",
                format!(
                    "{}: {} entr{} with a path leaving the archive skipped (first: {})",
                    path.display(),
                    unsafe_names.len(),
                    if unsafe_names.len() == 1 { "y" } else { "ies" },
                    unsafe_names[0]
                ),
            );
        }
        Ok(Arc::new(ZipIndex {
            path: path.into(),
            entries,
        }))
    }

    /// Entry names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.entries.keys().cloned().collect();
        n.sort();
        n
    }
}

/// Reads at most `limit` bytes and fails past it (a header that understates the size).
struct Capped<R> {
    inner: R,
    left: u64,
    what: String,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "{} inflates past its declared size; refused as a zip bomb",
                self.what
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn open_entry(zip: &ZipIndex, name: &str) -> Result<Box<dyn Read + Send>, PipelineError> {
    let e = zip
        .entries
        .get(name)
        .ok_or_else(|| archive_error(&zip.path, format!("no entry {name}")))?;
    let io = |source| InputError::Io {
        path: zip.path.clone(),
        source,
    };
    let mut file = File::open(&zip.path).map_err(io)?;
    file.seek(SeekFrom::Start(e.data_start)).map_err(io)?;
    let packed = BufReader::new(file).take(e.packed);
    let what = format!("{}!{name}", zip.path.display());
    Ok(if e.deflated {
        Box::new(Capped {
            inner: flate2::read::DeflateDecoder::new(packed),
            left: e.size,
            what,
        })
    } else {
        Box::new(Capped {
            inner: packed,
            left: e.size,
            what,
        })
    })
}

impl Location {
    /// How messages name it: the path, or `archive.zip!entry`.
    pub fn display(&self) -> PathBuf {
        match self {
            Location::File(p) => p.clone(),
            Location::Zip { zip, name } => PathBuf::from(format!("{}!{name}", zip.path.display())),
        }
    }

    /// A stream of the content.
    pub fn open(&self) -> Result<Box<dyn BufRead + Send>, PipelineError> {
        match self {
            Location::File(p) => {
                let f = File::open(p).map_err(|source| InputError::Io {
                    path: p.clone(),
                    source,
                })?;
                Ok(Box::new(BufReader::with_capacity(1 << 16, f)))
            }
            Location::Zip { zip, name } => Ok(Box::new(BufReader::with_capacity(
                1 << 16,
                open_entry(zip, name)?,
            ))),
        }
    }

    /// Size in bytes (declared size for zip entries), when it exists.
    pub fn size(&self) -> Option<u64> {
        match self {
            Location::File(p) => std::fs::metadata(p)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len()),
            Location::Zip { zip, name } => zip.entries.get(name).map(|e| e.size),
        }
    }

    /// The whole content (images, codelists), at most [`MAX_RESOURCE_BYTES`].
    pub fn read_all(&self) -> Result<Vec<u8>, String> {
        let size = self.size().ok_or("not found")?;
        if size > MAX_RESOURCE_BYTES {
            return Err(format!(
                "{size} bytes is more than the {} MiB limit",
                MAX_RESOURCE_BYTES >> 20
            ));
        }
        let mut r = self.open().map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(size as usize);
        r.by_ref()
            .take(MAX_RESOURCE_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// `uri` resolved against this document's folder (`None` for URLs, absolute paths
    /// inside a zip, and paths that leave the archive).
    pub fn resolve(&self, uri: &str) -> Option<Location> {
        let uri = uri.trim();
        if uri.is_empty() || uri.contains("://") {
            return None;
        }
        let uri = uri.strip_prefix("file:").unwrap_or(uri);
        let decoded = percent_decode(uri);
        match self {
            Location::File(p) => {
                let base = p.parent().unwrap_or(Path::new("."));
                let candidate = Path::new(&decoded);
                if candidate.is_absolute() {
                    return Some(Location::File(candidate.into()));
                }
                // Lexically normalised so that `a/../b` works for folders that are
                // not there.
                let mut out = base.to_path_buf();
                for c in candidate.components() {
                    match c {
                        Component::ParentDir => {
                            out.pop();
                        }
                        Component::Normal(n) => out.push(n),
                        _ => {}
                    }
                }
                Some(Location::File(out))
            }
            Location::Zip { zip, name } => {
                let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                let joined = if dir.is_empty() {
                    decoded
                } else {
                    format!("{dir}/{decoded}")
                };
                Some(Location::Zip {
                    zip: zip.clone(),
                    name: normalise(&joined)?,
                })
            }
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// Whether the first bytes of an XML document open a `CityModel`.
pub fn is_city_model(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let mut rest: &str = text.trim_start_matches('\u{feff}');
    loop {
        let Some(i) = rest.find('<') else {
            return false;
        };
        rest = &rest[i + 1..];
        if rest.starts_with('?') || rest.starts_with('!') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
            .collect();
        return name.rsplit(':').next() == Some("CityModel");
    }
}

fn head_of(loc: &Location) -> Vec<u8> {
    let mut head = Vec::new();
    if let Ok(r) = loc.open() {
        let _ = r.take(4096).read_to_end(&mut head);
    }
    head
}

fn has_xml_extension(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    l.ends_with(".gml") || l.ends_with(".xml") || l.ends_with(".citygml")
}

fn is_zip(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"PK\x03\x04"
}

/// The CityGML documents of a zip.
fn zip_documents(path: &Path, warnings: &Warnings) -> Result<Vec<Location>, PipelineError> {
    let zip = ZipIndex::open(path, warnings)?;
    let mut out = Vec::new();
    for name in zip.names() {
        if !has_xml_extension(&name) {
            continue;
        }
        let loc = Location::Zip {
            zip: zip.clone(),
            name,
        };
        if is_city_model(&head_of(&loc)) {
            out.push(loc);
        }
    }
    Ok(out)
}

/// Whether `inputs` look like a CityGML job: the first is a CityGML document, a zip
/// holding one, or a folder holding one.
pub fn is_city_job(inputs: &[PathBuf]) -> bool {
    let Some(first) = inputs.first() else {
        return false;
    };
    if first.is_dir() {
        let mut files = Vec::new();
        if crate::detect::walk(first, &mut files).is_err() {
            return false;
        }
        files.sort();
        return files.iter().any(|f| {
            let name = f.to_string_lossy();
            (has_xml_extension(&name) && is_city_model(&head_of(&Location::File(f.clone()))))
                || (name.to_ascii_lowercase().ends_with(".zip") && zip_has_city(f))
        });
    }
    if is_zip(first) {
        return zip_has_city(first);
    }
    is_city_model(&head_of(&Location::File(first.clone())))
}

/// A zip whose entry names say CityGML (.gml/.citygml, or .xml beside them); its
/// entries are checked (and refused when hostile) when the job reads them.
fn zip_has_city(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let Ok(mut zip) = zip::ZipArchive::new(file) else {
        return false;
    };
    let names: Vec<String> = (0..zip.len())
        .filter_map(|i| {
            zip.by_index_raw(i)
                .ok()
                .map(|f| String::from_utf8_lossy(f.name_raw()).to_ascii_lowercase())
        })
        .collect();
    if names
        .iter()
        .any(|n| n.ends_with(".gml") || n.ends_with(".citygml"))
    {
        return true;
    }
    zip_documents(path, &Warnings::default()).is_ok_and(|d| !d.is_empty())
}

/// Every CityGML document of the inputs, in a stable order. Other files in folders and
/// zips (images, codelists, READMEs) are left alone; a named file that is not CityGML is
/// an error.
pub fn discover(inputs: &[PathBuf], warnings: &Warnings) -> Result<Vec<Location>, PipelineError> {
    let mut out = Vec::new();
    for input in inputs {
        if !input.exists() {
            return Err(InputError::NotFound {
                path: input.clone(),
            }
            .into());
        }
        if input.is_dir() {
            let mut files = Vec::new();
            crate::detect::walk(input, &mut files)?;
            files.sort();
            let before = out.len();
            for f in files {
                let name = f.to_string_lossy().to_string();
                if name.to_ascii_lowercase().ends_with(".zip") && is_zip(&f) {
                    out.extend(zip_documents(&f, warnings)?);
                } else if has_xml_extension(&name)
                    && is_city_model(&head_of(&Location::File(f.clone())))
                {
                    out.push(Location::File(f));
                }
            }
            if out.len() == before {
                return Err(InputError::NoInputs(format!(
                    "{} holds no CityGML document (.gml/.xml with a CityModel root, or a zip of them)",
                    input.display()
                ))
                .into());
            }
        } else if is_zip(input) {
            let docs = zip_documents(input, warnings)?;
            if docs.is_empty() {
                return Err(CityGmlError::Archive {
                    path: input.clone(),
                    reason: "the zip holds no CityGML document (.gml/.xml with a CityModel root)"
                        .into(),
                }
                .into());
            }
            out.extend(docs);
        } else {
            let loc = Location::File(input.clone());
            if !is_city_model(&head_of(&loc)) {
                return Err(CityGmlError::NotCityGml {
                    path: input.clone(),
                }
                .into());
            }
            out.push(loc);
        }
    }
    if out.is_empty() {
        return Err(InputError::NoInputs("nothing given to convert".into()).into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn names_are_normalised_and_confined() {
        assert_eq!(normalise("a/./b/../c.jpg").as_deref(), Some("a/c.jpg"));
        assert_eq!(normalise("../x"), None);
        assert_eq!(normalise("/etc/passwd"), None);
        assert_eq!(normalise("C:\\x"), None);
        assert!(is_city_model(
            b"\xef\xbb\xbf<?xml version=\"1.0\"?>\n<!-- c -->\n<core:CityModel xmlns:core=\"x\">"
        ));
        assert!(!is_city_model(b"<gml:Dictionary>"));
    }

    fn zip_with(entries: &[(&str, Vec<u8>)]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut w = zip::ZipWriter::new(f.reopen().unwrap());
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
        f
    }

    #[test]
    fn hostile_zips() {
        let doc = b"<CityModel/>".to_vec();
        let z = zip_with(&[("../evil.gml", doc.clone()), ("ok/a.gml", doc.clone())]);
        let w = Warnings::default();
        let docs = discover(&[z.path().into()], &w).unwrap();
        assert_eq!(docs.len(), 1);
        assert!(docs[0].display().to_string_lossy().ends_with("!ok/a.gml"));
        let (ws, _) = w.take();
        assert!(
            ws.iter().any(|x| x.message.contains("../evil.gml")),
            "{ws:?}"
        );
        // Resources cannot climb out either.
        assert!(docs[0].resolve("../../x.jpg").is_none());
        assert!(docs[0].resolve("tex/a.jpg").is_some());
        // A bomb: 200 MB of zeros compress far beyond the ratio limit.
        let bomb = zip_with(&[("b.gml", vec![0u8; 200 << 20])]);
        let err = discover(&[bomb.path().into()], &Warnings::default()).unwrap_err();
        assert!(err.to_string().contains("zip bomb"), "{err}");
    }
}
