//! Where CityGML documents and the files they refer to (texture images, codelists) come
//! from: plain files, folders (PLATEAU's `udx/<type>/*.gml` layout included) and zips.
//!
//! Zips are read in place, entry by entry, never unpacked to disk. Every entry is checked
//! before it is read: names that leave the archive (`../`, absolute paths) are skipped
//! with a warning, entries whose declared size or compression ratio is implausible are
//! refused, and reads stop at the declared size so a lying header cannot inflate.
//!
//! Files a document refers to are read only through [`Location::resolve_ref`]: inside a
//! zip they stay inside the archive; next to a plain file they must be regular files in
//! the folder the job allows ([`RefRoot`]).
//!
//! Documents may be UTF-8 or UTF-16 (either byte order, with or without a byte-order
//! mark): [`Location::open_document`] hands the XML reader UTF-8 either way.

use crate::error::{CityGmlError, InputError, PipelineError};
use crate::job::JobSpec;
use crate::refs::{read_capped, RefRoot};
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
/// What a zip that cannot be read is told to do.
const ZIP_FIX: &str = "the file is truncated or corrupt, re-create the zip";

#[derive(Debug, Clone)]
struct ZipEntry {
    /// Offset of the compressed data in the archive.
    data_start: u64,
    packed: u64,
    size: u64,
    deflated: bool,
    /// CRC-32 of the inflated data, from the central directory.
    crc32: u32,
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
        let mut zip = zip::ZipArchive::new(file)
            .map_err(|e| archive_error(path, format!("not a readable zip: {e}; {ZIP_FIX}")))?;
        let mut entries = HashMap::new();
        let mut unsafe_names = Vec::new();
        for i in 0..zip.len() {
            let f = zip.by_index_raw(i).map_err(|e| {
                archive_error(
                    path,
                    format!("not a readable zip: entry {i}: {e}; {ZIP_FIX}"),
                )
            })?;
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
                    format!("not a readable zip: entry {raw} has no local header; {ZIP_FIX}"),
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
                    crc32: f.crc32(),
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

/// Reads at most `limit` bytes and fails past it (a header that understates the size),
/// and fails when the data ends before it or does not match its CRC-32 (a truncated or
/// corrupt archive).
struct Capped<R> {
    inner: R,
    left: u64,
    what: String,
    /// CRC of what was read so far, and the CRC the whole must have.
    crc: flate2::Crc,
    expected_crc: u32,
}

impl<R> Capped<R> {
    fn new(inner: R, entry: &ZipEntry, what: String) -> Capped<R> {
        Capped {
            inner,
            left: entry.size,
            what,
            crc: flate2::Crc::new(),
            expected_crc: entry.crc32,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("not a readable zip: {}: {e}; {ZIP_FIX}", self.what),
            )
        })?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "{} inflates past its declared size; refused as a zip bomb",
                self.what
            )));
        }
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "not a readable zip: {} ends {} bytes before its declared size; {ZIP_FIX}",
                    self.what, self.left
                ),
            ));
        }
        self.left -= n as u64;
        self.crc.update(&buf[..n]);
        if n == 0 && !buf.is_empty() && self.crc.sum() != self.expected_crc {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "not a readable zip: {} does not match its CRC-32; {ZIP_FIX}",
                    self.what
                ),
            ));
        }
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
        Box::new(Capped::new(
            flate2::read::DeflateDecoder::new(packed),
            e,
            what,
        ))
    } else {
        Box::new(Capped::new(packed, e, what))
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

    /// A stream of the content as stored.
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

    /// A document's text as UTF-8: UTF-16 (told by its first bytes, see
    /// [`text_encoding`]) is converted while it is read.
    pub fn open_document(&self) -> Result<Box<dyn BufRead + Send>, PipelineError> {
        let mut raw = self.open()?;
        let head = raw.fill_buf().map(<[u8]>::to_vec).unwrap_or_default();
        Ok(match text_encoding(&head) {
            TextEncoding::Utf8 => raw,
            TextEncoding::Utf16 { big_endian } => Box::new(BufReader::with_capacity(
                1 << 16,
                Utf16ToUtf8::new(raw, big_endian),
            )),
        })
    }

    /// How the content encodes its text (see [`text_encoding`]).
    pub fn encoding(&self) -> TextEncoding {
        text_encoding(&head_of(self))
    }

    /// For a zip entry: `Err` with the reason when its data cannot be read whole (it
    /// does not inflate, ends early, or fails its CRC). Files are always fine here.
    pub fn check_entry(&self) -> Result<(), String> {
        if let Location::Zip { .. } = self {
            let mut r = self.open().map_err(|e| e.to_string())?;
            std::io::copy(&mut r, &mut std::io::sink()).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The whole content (images, codelists), at most `max_bytes` (and at most
    /// [`MAX_RESOURCE_BYTES`]); a file must be a regular file.
    pub fn read_all(&self, max_bytes: u64) -> Result<Vec<u8>, String> {
        let max_bytes = max_bytes.min(MAX_RESOURCE_BYTES);
        if let Location::File(p) = self {
            return read_capped(p, max_bytes);
        }
        let size = self.size().ok_or("not found")?;
        if size > max_bytes {
            return Err(format!(
                "{size} bytes is more than the {} MiB limit",
                max_bytes >> 20
            ));
        }
        let mut r = self.open().map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(usize::try_from(size).map_err(|e| e.to_string())?);
        r.by_ref()
            .take(max_bytes + 1)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// The file `uri` names, when it may be read: inside a zip, an entry of the same
    /// archive; next to a plain file, a regular file inside `refs` (judged on the name
    /// first, so that nothing outside the folder is even looked at, then on the file
    /// with its links followed). URLs are [`RefIssue::Missing`].
    pub fn resolve_ref(&self, uri: &str, refs: &RefRoot) -> Result<Location, RefIssue> {
        match self {
            Location::File(p) => {
                // Made from the document's canonical folder, so the name compares with
                // the (canonical) root.
                let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
                let dir = dir.unwrap_or(Path::new("."));
                let base = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
                let decoded = decoded_uri(uri).ok_or(RefIssue::Missing)?;
                let candidate = lexical_join(&base, Path::new(&decoded));
                confine(&candidate, refs).map(Location::File)
            }
            Location::Zip { .. } => match self.resolve(uri) {
                Some(entry) if entry.size().is_some() => Ok(entry),
                _ => Err(RefIssue::Missing),
            },
        }
    }

    /// `uri` resolved against this document's folder (`None` for URLs, and for absolute
    /// paths or paths that leave the archive inside a zip). Nothing is checked on disk:
    /// files are read through [`Location::resolve_ref`].
    pub fn resolve(&self, uri: &str) -> Option<Location> {
        let decoded = decoded_uri(uri)?;
        match self {
            Location::File(p) => {
                let base = p.parent().unwrap_or(Path::new("."));
                Some(Location::File(lexical_join(base, Path::new(&decoded))))
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

/// A reference as a path: trimmed, `file:` dropped, percent-decoded; `None` for empty
/// ones and URLs.
fn decoded_uri(uri: &str) -> Option<String> {
    let uri = uri.trim();
    if uri.is_empty() || uri.contains("://") {
        return None;
    }
    let uri = uri.strip_prefix("file:").unwrap_or(uri);
    Some(percent_decode(uri))
}

/// `rel` on top of `base`, normalised by name (so that `a/../b` works for folders that
/// are not there, and `..` cannot hide in a path that is compared with a root); an
/// absolute `rel` replaces `base`.
fn lexical_join(base: &Path, rel: &Path) -> PathBuf {
    let mut out = base.to_path_buf();
    for c in rel.components() {
        match c {
            Component::RootDir => out = PathBuf::from("/"),
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
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

/// Why a referenced file is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefIssue {
    /// Nothing there (or a URL, or a name that leaves its zip).
    Missing,
    /// Something that may not be read, and why: outside the folder references are read
    /// from, or not a regular file.
    Refused(String),
}

/// `candidate` resolved when `refs` lets it be read.
fn confine(candidate: &Path, refs: &RefRoot) -> Result<PathBuf, RefIssue> {
    if let Some(root) = refs.root() {
        if !candidate.starts_with(root) {
            return Err(RefIssue::Refused(format!(
                "{} lies outside {}, the folder references are read from",
                candidate.display(),
                root.display()
            )));
        }
    }
    if std::fs::metadata(candidate).is_err() {
        return Err(RefIssue::Missing);
    }
    refs.check(candidate).map_err(RefIssue::Refused)
}

/// How a document's bytes encode its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Utf16 { big_endian: bool },
}

/// What the first bytes say: a UTF-16 byte-order mark (`FF FE`, `FE FF`), or markup
/// (`<` after optional white space) written in 16-bit units without one; else UTF-8.
pub fn text_encoding(head: &[u8]) -> TextEncoding {
    match head {
        [0xFF, 0xFE, ..] => return TextEncoding::Utf16 { big_endian: false },
        [0xFE, 0xFF, ..] => return TextEncoding::Utf16 { big_endian: true },
        _ => {}
    }
    for big_endian in [false, true] {
        let mut units = head.chunks_exact(2).map(|u| {
            if big_endian {
                u16::from_be_bytes([u[0], u[1]])
            } else {
                u16::from_le_bytes([u[0], u[1]])
            }
        });
        let first = units.find(|&u| !matches!(u, 0x20 | 0x09 | 0x0A | 0x0D));
        let next = units.next();
        if first == Some(u16::from(b'<')) && next.is_some_and(|u| (0x21..0x7F).contains(&u)) {
            return TextEncoding::Utf16 { big_endian };
        }
    }
    TextEncoding::Utf8
}

/// `bytes` decoded for a look at the head (a broken last unit becomes U+FFFD).
fn head_text(bytes: &[u8]) -> String {
    match text_encoding(bytes) {
        TextEncoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        TextEncoding::Utf16 { big_endian } => {
            let units = bytes.chunks_exact(2).map(|u| {
                if big_endian {
                    u16::from_be_bytes([u[0], u[1]])
                } else {
                    u16::from_le_bytes([u[0], u[1]])
                }
            });
            char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect()
        }
    }
}

/// UTF-16 text (either byte order) read as UTF-8, converted while streaming. Unpaired
/// surrogates and a dangling last byte become U+FFFD; a leading byte-order mark is
/// dropped. Byte positions the XML reader reports count the UTF-8 text.
struct Utf16ToUtf8<R> {
    inner: R,
    big_endian: bool,
    /// Bytes read but not yet converted (an odd byte, a high surrogate at a chunk end).
    raw: Vec<u8>,
    out: Vec<u8>,
    at: usize,
    started: bool,
}

/// Bytes read from a UTF-16 stream at a time.
const UTF16_CHUNK: usize = 1 << 16;

impl<R: Read> Utf16ToUtf8<R> {
    fn new(inner: R, big_endian: bool) -> Self {
        Utf16ToUtf8 {
            inner,
            big_endian,
            raw: Vec::with_capacity(UTF16_CHUNK + 2),
            out: Vec::with_capacity(UTF16_CHUNK * 3 / 2),
            at: 0,
            started: false,
        }
    }

    fn unit(&self, i: usize) -> u16 {
        let b = [self.raw[2 * i], self.raw[2 * i + 1]];
        if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    /// Convert the next chunk into `out`; `false` at the end of the input.
    fn refill(&mut self) -> std::io::Result<bool> {
        self.out.clear();
        self.at = 0;
        let kept = self.raw.len();
        self.raw.resize(kept + UTF16_CHUNK, 0);
        let n = loop {
            match self.inner.read(&mut self.raw[kept..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.raw.truncate(kept);
                    return Err(e);
                }
            }
        };
        self.raw.truncate(kept + n);
        let end_of_input = n == 0;
        if end_of_input && self.raw.is_empty() {
            return Ok(false);
        }
        let mut units = self.raw.len() / 2;
        // A high surrogate waits for its partner in the next chunk.
        if !end_of_input && units > 0 && (0xD800..0xDC00).contains(&self.unit(units - 1)) {
            units -= 1;
        }
        let decoded: Vec<char> = char::decode_utf16((0..units).map(|i| self.unit(i)))
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        for c in decoded {
            if !std::mem::replace(&mut self.started, true) && c == '\u{feff}' {
                continue;
            }
            self.out
                .extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
        self.raw.drain(..units * 2);
        if end_of_input && !self.raw.is_empty() {
            self.raw.clear();
            self.out.extend_from_slice(
                char::REPLACEMENT_CHARACTER
                    .encode_utf8(&mut [0; 4])
                    .as_bytes(),
            );
        }
        Ok(true)
    }
}

impl<R: Read> Read for Utf16ToUtf8<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.out.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let n = (self.out.len() - self.at).min(buf.len());
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Whether the first bytes of an XML document (UTF-8 or UTF-16) open a `CityModel`.
pub fn is_city_model(head: &[u8]) -> bool {
    let text = head_text(head);
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
        return is_city_zip(first);
    }
    is_city_model(&head_of(&Location::File(first.clone())))
}

/// Whether a file is a zip for this route: one whose entries say CityGML, or one whose
/// directory cannot be read at all (truncated, corrupt), which only this route reports
/// as what it is ("not a readable zip"), since no other route takes zips.
pub fn is_city_zip(path: &Path) -> bool {
    if !is_zip(path) {
        return false;
    }
    let readable = File::open(path)
        .ok()
        .is_some_and(|f| zip::ZipArchive::new(f).is_ok());
    !readable || zip_has_city(path)
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

/// [`discover`] for a job: every document with the folder its references must stay in
/// ([`RefRoot::for_input`] of the input it was found in).
pub fn discover_job(
    spec: &JobSpec,
    warnings: &Warnings,
) -> Result<Vec<(Location, RefRoot)>, PipelineError> {
    let mut out = Vec::new();
    for input in &spec.inputs {
        let refs = RefRoot::for_input(spec, input);
        let docs = discover(std::slice::from_ref(input), warnings)?;
        out.extend(docs.into_iter().map(|d| (d, refs.clone())));
    }
    if out.is_empty() {
        return Err(InputError::NoInputs("nothing given to convert".into()).into());
    }
    Ok(out)
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

    /// Hands out one byte per read, to split every unit and surrogate pair.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(out)) => {
                    *out = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let units = bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
        for u in units {
            out.extend(if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            });
        }
        out
    }

    #[test]
    fn utf16_documents_are_recognised_and_read_as_utf8() {
        let text = "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\r\n<core:CityModel xmlns:core=\"x\">Straße 𝄞 建物</core:CityModel>";
        assert_eq!(text_encoding(text.as_bytes()), TextEncoding::Utf8);
        assert!(is_city_model(text.as_bytes()));
        for (big_endian, bom) in [(false, true), (true, true), (false, false), (true, false)] {
            let bytes = utf16(text, big_endian, bom);
            assert_eq!(
                text_encoding(&bytes),
                TextEncoding::Utf16 { big_endian },
                "{big_endian} {bom}"
            );
            assert!(is_city_model(&bytes), "{big_endian} {bom}");
            let mut got = String::new();
            Utf16ToUtf8::new(Trickle(&bytes), big_endian)
                .read_to_string(&mut got)
                .unwrap();
            assert_eq!(got, text);
        }
        // White space before the markup, and a head cut in the middle of a unit.
        let bytes = utf16("\n  <CityModel>", false, false);
        assert!(is_city_model(&bytes[..bytes.len() - 1]));
        assert!(!is_city_model(&utf16("<gml:Dictionary>", true, true)));
        // A dangling byte and an unpaired surrogate become U+FFFD.
        let mut broken = utf16("<a>", false, false);
        broken.extend([0x00, 0xD8, b'b', 0x00, 0x41]);
        let mut got = String::new();
        Utf16ToUtf8::new(Trickle(&broken), false)
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!(got, "<a>\u{FFFD}b\u{FFFD}");
        // A file opened as a document is UTF-8 to its reader.
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), utf16(text, true, true)).unwrap();
        let mut got = String::new();
        Location::File(f.path().into())
            .open_document()
            .unwrap()
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!(got, text);
    }

    #[test]
    fn references_next_to_files_stay_in_their_folder() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::create_dir_all(input.join("tex")).unwrap();
        std::fs::write(input.join("doc.gml"), b"<CityModel/>").unwrap();
        std::fs::write(input.join("tex/a.jpg"), b"jpg").unwrap();
        std::fs::write(dir.path().join("secret.jpg"), b"secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.jpg"), input.join("link.jpg")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", input.join("zero.jpg")).unwrap();
        let fifo = input.join("fifo.jpg");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let doc = Location::File(input.join("doc.gml"));
        let root = RefRoot::within(&input);
        let refused = |uri: &str, root: &RefRoot| match doc.resolve_ref(uri, root) {
            Err(RefIssue::Refused(why)) => why,
            other => panic!("{uri}: {other:?}"),
        };
        let inside = doc.resolve_ref("tex/./a.jpg", &root).unwrap();
        assert_eq!(inside.read_all(100).unwrap(), b"jpg");
        for uri in ["tex/missing.jpg", "http://example.com/a.jpg", " "] {
            assert!(
                matches!(doc.resolve_ref(uri, &root), Err(RefIssue::Missing)),
                "{uri}"
            );
        }
        let secret = dir.path().join("secret.jpg");
        for uri in [
            "../secret.jpg",
            "tex/../../secret.jpg",
            "%2e%2e/secret.jpg",
            "file:../secret.jpg",
            secret.to_str().unwrap(),
            // Judged by its name: whether it exists is not looked at.
            "/nonexistent/folder/x.jpg",
            "link.jpg",
            "zero.jpg",
        ] {
            assert!(refused(uri, &root).contains("outside"), "{uri}");
        }
        assert!(refused("fifo.jpg", &root).contains("not a regular file"));
        // Anywhere: outside is fine, still regular files only.
        let anywhere = RefRoot::anywhere();
        let out = doc.resolve_ref("../secret.jpg", &anywhere).unwrap();
        assert_eq!(out.read_all(100).unwrap(), b"secret");
        assert!(refused("fifo.jpg", &anywhere).contains("not a regular file"));
        assert!(refused("zero.jpg", &anywhere).contains("not a regular file"));
        // Reading never opens a pipe (it would wait for a writer forever).
        assert!(Location::File(fifo).read_all(100).is_err());
    }

    #[test]
    fn zips_that_cannot_be_read_say_so() {
        let doc = format!(
            "<CityModel>{}</CityModel>",
            "<Building><name>x</name></Building>".repeat(20_000)
        );
        let z = zip_with(&[("a/b.gml", doc.clone().into_bytes())]);
        let bytes = std::fs::read(z.path()).unwrap();
        let cut = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(cut.path(), &bytes[..bytes.len() / 2]).unwrap();
        let e = discover(&[cut.path().into()], &Warnings::default()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("not a readable zip"), "{msg}");
        assert!(
            msg.contains("truncated or corrupt, re-create the zip"),
            "{msg}"
        );
        assert_eq!(e.code(), "INVALID_ARCHIVE");
        // Routed here, where it is reported as what it is.
        assert!(is_city_zip(cut.path()));
        assert!(is_city_job(&[cut.path().into()]));
        assert!(is_city_zip(z.path()));
        let other = zip_with(&[("points.las", b"LASF".to_vec())]);
        assert!(!is_city_zip(other.path()));
        // Corrupt compressed data: a stored block with lengths that do not match.
        let index = ZipIndex::open(z.path(), &Warnings::default()).unwrap();
        let entry = index.entries["a/b.gml"].clone();
        let mut broken = bytes.clone();
        let mid = (entry.data_start + entry.packed / 2) as usize;
        broken[mid..mid + 64].fill(0);
        let bad = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(bad.path(), &broken).unwrap();
        let index = ZipIndex::open(bad.path(), &Warnings::default()).unwrap();
        let loc = Location::Zip {
            zip: index,
            name: "a/b.gml".into(),
        };
        let mut sink = Vec::new();
        let e = loc
            .open_document()
            .unwrap()
            .read_to_end(&mut sink)
            .unwrap_err();
        assert!(e.to_string().contains("not a readable zip"), "{e}");
        // An entry whose data ends before its declared size.
        let short = Capped::new(
            &b"abc"[..],
            &ZipEntry {
                size: 10,
                ..entry.clone()
            },
            "z!e".into(),
        );
        let e = BufReader::new(short).read_to_end(&mut sink).unwrap_err();
        assert!(e.to_string().contains("before its declared size"), "{e}");
        let same_size = Capped::new(&b"abc"[..], &ZipEntry { size: 3, ..entry }, "z!e".into());
        let e = BufReader::new(same_size)
            .read_to_end(&mut sink)
            .unwrap_err();
        assert!(e.to_string().contains("CRC-32"), "{e}");
    }
}
