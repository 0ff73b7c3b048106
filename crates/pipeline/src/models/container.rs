//! The bytes of a glTF asset: the GLB container or the .gltf JSON, its buffers (GLB BIN
//! chunk, external .bin files, data URIs) and its images. Every length is checked
//! against what is really there and against the job's memory budget; external files are
//! read only through the job's [`RefRoot`] (regular files inside the allowed folder).

use crate::error::ModelError;
use crate::refs::{read_capped, Budget, RefRoot};
use crate::report::Warnings;
use base64::Engine;
use image::{ImageDecoder, ImageFormat, ImageReader};
use serde::Deserialize;
use serde_json::Value;
use std::io::Cursor;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Largest glTF JSON accepted (the geometry lives in buffers, not in the JSON).
const MAX_JSON_BYTES: usize = 256 << 20;
/// Largest model file: a GLB counts its own length in 32 bits.
const MAX_MODEL_BYTES: u64 = u32::MAX as u64;
/// Largest single buffer or image accepted.
const MAX_RESOURCE_BYTES: u64 = 4 << 30;
/// Longest image edge accepted: the largest texture WebGL clients can draw.
pub const MAX_IMAGE_EDGE_PX: u32 = 16_384;
/// Memory one JSON object may take once parsed, raw and typed (a map node and a struct).
const JSON_BYTES_PER_OBJECT: u128 = 1024;
/// Memory one JSON array element or map entry may take once parsed.
const JSON_BYTES_PER_VALUE: u128 = 64;

/// A parsed asset: typed document for geometry, raw JSON for pass-through, buffers.
pub struct Asset {
    pub path: PathBuf,
    pub root: gltf::json::Root,
    pub raw: Value,
    pub buffers: Vec<Vec<u8>>,
    /// Where the asset's external files may be read from.
    pub refs: RefRoot,
    pub budget: Budget,
    /// Bytes held by the buffers (counted against the budget).
    pub buffer_bytes: u64,
}

fn container_err(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Container {
        path: path.into(),
        reason: reason.into(),
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
}

/// The byte ranges of a GLB's JSON and optional BIN chunk, every length checked.
fn split_glb(
    path: &Path,
    bytes: &[u8],
) -> Result<(Range<usize>, Option<Range<usize>>), ModelError> {
    if bytes.len() < 20 {
        return Err(container_err(
            path,
            format!("{} bytes is too short for a GLB header", bytes.len()),
        ));
    }
    let version = u32_at(bytes, 4).unwrap_or(0);
    if version != 2 {
        return Err(ModelError::Unsupported {
            path: path.into(),
            what: format!("GLB version {version}"),
            hint: "Only glTF 2.0 is read; convert glTF 1.0 files with a current exporter".into(),
        });
    }
    let declared = u32_at(bytes, 8).unwrap_or(0);
    if u64::from(declared) != bytes.len() as u64 {
        return Err(container_err(
            path,
            format!(
                "the header declares {declared} bytes but the file has {}; it is truncated or padded",
                bytes.len()
            ),
        ));
    }
    let mut at = 12usize;
    let mut json = None;
    let mut bin = None;
    while at < bytes.len() {
        let (Some(len), Some(kind)) = (
            u32_at(bytes, at),
            at.checked_add(4).and_then(|k| u32_at(bytes, k)),
        ) else {
            return Err(container_err(
                path,
                format!("chunk header at byte {at} is cut off"),
            ));
        };
        let start = at + 8;
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&end| end <= bytes.len())
        else {
            return Err(container_err(
                path,
                format!("chunk at byte {at} declares {len} bytes, past the end of the file"),
            ));
        };
        match kind {
            0x4E4F_534A if json.is_none() => json = Some(start..end),
            0x004E_4942 if bin.is_none() && json.is_some() => bin = Some(start..end),
            _ => {} // unknown chunks are skipped, as the specification asks
        }
        at = end;
    }
    let json = json.ok_or_else(|| container_err(path, "no JSON chunk"))?;
    Ok((json, bin))
}

/// Memory the parsed JSON may take, from its objects and separators (counted without
/// parsing, so a document of millions of tiny objects is refused before it is built).
fn json_memory_estimate(json: &[u8]) -> u128 {
    let objects = json.iter().filter(|&&b| b == b'{').count() as u128;
    let values = json.iter().filter(|&&b| b == b',').count() as u128;
    objects * JSON_BYTES_PER_OBJECT + values * JSON_BYTES_PER_VALUE + json.len() as u128
}

/// Percent-decode a relative URI reference.
fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `path` with `.` and `..` removed without touching the file system.
fn lexically_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Where an external URI points: relative to the model's folder, and (before any link is
/// followed) inside the folder references may be read from.
fn resolve_uri(model: &Path, refs: &RefRoot, uri: &str) -> Result<PathBuf, String> {
    if uri.contains("://") {
        return Err("remote URIs are not fetched".into());
    }
    let rel = PathBuf::from(percent_decode(uri));
    if rel
        .components()
        .any(|c| matches!(c, Component::RootDir | Component::Prefix(_)))
    {
        return Err("absolute paths are not followed".into());
    }
    let dir = model
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = dir.join(&rel);
    if let Some(root) = refs.root() {
        let real_dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        if !lexically_normal(&real_dir.join(&rel)).starts_with(root) {
            return Err(if real_dir == root {
                "it points outside the model's folder".into()
            } else {
                format!(
                    "it points outside {}, the folder references are read from",
                    root.display()
                )
            });
        }
    }
    Ok(file)
}

/// Decode a `data:` URI's payload.
fn data_uri(uri: &str) -> Option<Result<(String, Vec<u8>), String>> {
    let rest = uri.strip_prefix("data:")?;
    let Some((meta, payload)) = rest.split_once(',') else {
        return Some(Err("a data URI without a comma".into()));
    };
    let mime = meta.split(';').next().unwrap_or("").to_string();
    if !meta.ends_with(";base64") {
        return Some(Ok((mime, percent_decode(payload).into_bytes())));
    }
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map(|b| (mime, b))
            .map_err(|e| format!("bad base64: {e}")),
    )
}

/// Bytes of a URI: a data URI, or a regular file the job's references may read, of at
/// most `max_bytes`.
pub fn read_uri(
    model: &Path,
    refs: &RefRoot,
    uri: &str,
    max_bytes: u64,
) -> Result<Vec<u8>, String> {
    if let Some(d) = data_uri(uri) {
        return d.map(|(_, b)| b);
    }
    let file = resolve_uri(model, refs, uri)?;
    refs.read(&file, max_bytes)
}

/// The model file's bytes: a regular file within the size limits (a pipe, a device or a
/// file larger than the budget is refused before anything is read).
fn read_model_file(path: &Path, budget: &Budget) -> Result<Vec<u8>, ModelError> {
    let unreadable = |reason: String| ModelError::Unreadable {
        path: path.into(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(unreadable(
            "it is not a regular file (a device, pipe, socket or folder)".into(),
        ));
    }
    budget
        .check(u128::from(meta.len()), "reading the model")
        .map_err(|reason| ModelError::Budget {
            path: path.into(),
            reason,
        })?;
    read_capped(path, MAX_MODEL_BYTES).map_err(unreadable)
}

/// Parse the JSON into its raw and typed forms, after checking what they would take.
fn parse_json(
    path: &Path,
    json: &[u8],
    budget: &Budget,
) -> Result<(Value, gltf::json::Root), ModelError> {
    if json.len() > MAX_JSON_BYTES {
        return Err(ModelError::Json {
            path: path.into(),
            reason: format!(
                "{} bytes of JSON is more than this reader accepts",
                json.len()
            ),
        });
    }
    budget
        .check(json_memory_estimate(json), "parsing the glTF JSON")
        .map_err(|reason| ModelError::Budget {
            path: path.into(),
            reason,
        })?;
    let json_err = |e: serde_json::Error| ModelError::Json {
        path: path.into(),
        reason: e.to_string(),
    };
    let raw: Value = serde_json::from_slice(json).map_err(json_err)?;
    let root = gltf::json::Root::deserialize(&raw).map_err(json_err)?;
    Ok((raw, root))
}

/// Read a .glb or .gltf with its buffers; external files only through `refs`.
pub fn load(path: &Path, refs: &RefRoot, budget: &Budget) -> Result<Asset, ModelError> {
    let mut bytes = read_model_file(path, budget)?;
    let (raw, root, bin) = if bytes.starts_with(b"glTF") {
        let (json, bin) = split_glb(path, &bytes)?;
        let (raw, root) = parse_json(path, &bytes[json], budget)?;
        // The BIN chunk keeps the file's allocation instead of being copied.
        let bin = bin.map(|r| {
            bytes.truncate(r.end);
            bytes.drain(..r.start);
            bytes
        });
        (raw, root, bin)
    } else {
        let (raw, root) = parse_json(path, &bytes, budget)?;
        (raw, root, None)
    };
    let version = root.asset.version.as_str();
    if !version.starts_with("2.") {
        return Err(ModelError::Unsupported {
            path: path.into(),
            what: format!("glTF version {version}"),
            hint: "Only glTF 2.0 is read; convert glTF 1.0 files with a current exporter".into(),
        });
    }
    let buffers = load_buffers(path, &root, bin, refs, budget)?;
    let buffer_bytes = buffers.iter().map(|b| b.len() as u64).sum();
    Ok(Asset {
        path: path.into(),
        root,
        raw,
        buffers,
        refs: refs.clone(),
        budget: *budget,
        buffer_bytes,
    })
}

/// Every buffer of the document, each cut to the length it declares; a missing, refused
/// or short buffer is an error naming it.
fn load_buffers(
    path: &Path,
    root: &gltf::json::Root,
    mut bin: Option<Vec<u8>>,
    refs: &RefRoot,
    budget: &Budget,
) -> Result<Vec<Vec<u8>>, ModelError> {
    let mut buffers = Vec::with_capacity(root.buffers.len());
    let mut total: u128 = 0;
    for (index, b) in root.buffers.iter().enumerate() {
        let declared = b.byte_length.0;
        let shown = match b.uri.as_deref() {
            None => "GLB BIN chunk",
            Some(u) if u.starts_with("data:") => "data URI",
            Some(u) => u,
        };
        let buf_err = |reason: String| ModelError::Buffer {
            path: path.into(),
            index,
            uri: shown.into(),
            reason,
        };
        let mut data = match &b.uri {
            None => match (index, bin.take()) {
                (0, Some(data)) => data,
                _ => return Err(buf_err("the file has no BIN chunk for it".into())),
            },
            Some(uri) => {
                let left = u128::from(budget.memory_bytes).saturating_sub(total);
                let cap = u64::try_from(left)
                    .unwrap_or(u64::MAX)
                    .min(MAX_RESOURCE_BYTES);
                read_uri(path, refs, uri, cap).map_err(buf_err)?
            }
        };
        if (data.len() as u64) < declared {
            return Err(buf_err(format!(
                "declares {declared} bytes but holds only {}",
                data.len()
            )));
        }
        // Views are checked against what the buffer declares, not any padding after it.
        data.truncate(usize::try_from(declared).unwrap_or(usize::MAX));
        total += data.len() as u128;
        budget
            .check(total, "the model's buffers")
            .map_err(buf_err)?;
        buffers.push(data);
    }
    Ok(buffers)
}

/// An image's bytes and media type.
#[derive(Debug, Clone)]
pub struct ImageData {
    pub bytes: Arc<Vec<u8>>,
    pub mime: String,
}

/// The media type an image's first bytes announce (PNG, JPEG, WebP, KTX2).
pub fn sniff_mime(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(&[0x89, b'P', b'N', b'G']) {
        Some("image/png")
    } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if b.len() > 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some("image/webp")
    } else if b.starts_with(&[0xAB, b'K', b'T', b'X', b' ', b'2', b'0']) {
        Some("image/ktx2")
    } else {
        None
    }
}

/// The `image` crate's format for a media type it decodes.
pub fn decodable_format(mime: &str) -> Option<ImageFormat> {
    match mime {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// Width, height and decoded bytes an image's header declares (nothing is decoded; a
/// KTX2 texture, which travels as it is, reports 4 bytes per pixel of its base level).
fn image_header(bytes: &[u8], mime: &str) -> Result<(u32, u32, u64), String> {
    if let Some(format) = decodable_format(mime) {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        // Only the header is read here; the limits apply when pixels are decoded.
        reader.no_limits();
        let decoder = reader
            .into_decoder()
            .map_err(|e| format!("its header does not read ({e})"))?;
        let (w, h) = decoder.dimensions();
        return Ok((w, h, decoder.total_bytes()));
    }
    // KTX2: pixelWidth and pixelHeight follow the 12-byte identifier, vkFormat and typeSize.
    let (Some(w), Some(h)) = (u32_at(bytes, 20), u32_at(bytes, 24)) else {
        return Err("its KTX2 header is cut off".into());
    };
    Ok((w, h, u64::from(w) * u64::from(h.max(1)) * 4))
}

/// `Err` with a sentence when an image of this header is too large to decode.
fn check_image_size(header: (u32, u32, u64), budget: &Budget) -> Result<(), String> {
    let (w, h, decoded) = header;
    if w > MAX_IMAGE_EDGE_PX || h > MAX_IMAGE_EDGE_PX {
        return Err(format!(
            "its header claims {w} x {h} pixels, more than the {MAX_IMAGE_EDGE_PX} px a side clients draw"
        ));
    }
    budget.check(
        u128::from(decoded),
        &format!("decoding its {w} x {h} pixels"),
    )
}

/// The bytes of image `i`, or why there are none.
fn image_bytes(asset: &Asset, img: &gltf::json::Image, cap: u64) -> Result<Vec<u8>, String> {
    if let Some(v) = img.buffer_view {
        view_bytes(asset, v.value()).map(<[u8]>::to_vec)
    } else if let Some(uri) = &img.uri {
        read_uri(&asset.path, &asset.refs, uri, cap)
    } else {
        Err("it has neither a bufferView nor a URI".into())
    }
}

/// Every image of the asset; a missing, refused, unreadable or oversized one is `None`
/// with a warning (the surfaces using it lose the texture).
pub fn images(asset: &Asset, warnings: &Warnings) -> Vec<Option<ImageData>> {
    let mut out = Vec::with_capacity(asset.root.images.len());
    let mut total = u128::from(asset.buffer_bytes);
    for (i, img) in asset.root.images.iter().enumerate() {
        let name = img
            .uri
            .as_deref()
            .filter(|u| !u.starts_with("data:"))
            .map(str::to_string)
            .unwrap_or_else(|| format!("image {i}"));
        let warn = |code: &'static str, reason: String| {
            warnings.push(
                code,
                format!(
                    "{}: {name}: {reason}; the surfaces using it stay untextured",
                    asset.path.display()
                ),
            );
        };
        let left = u128::from(asset.budget.memory_bytes).saturating_sub(total);
        let cap = u64::try_from(left)
            .unwrap_or(u64::MAX)
            .min(MAX_RESOURCE_BYTES);
        let bytes = match image_bytes(asset, img, cap) {
            Ok(b) => b,
            Err(reason) => {
                warn("model-image-missing", reason);
                out.push(None);
                continue;
            }
        };
        let Some(mime) = sniff_mime(&bytes) else {
            warn(
                "model-image-unreadable",
                "it is not a PNG, JPEG, WebP or KTX2 image".into(),
            );
            out.push(None);
            continue;
        };
        total += bytes.len() as u128;
        let size = asset
            .budget
            .check(total, "the model's buffers and images")
            .and_then(|()| image_header(&bytes, mime))
            .and_then(|h| check_image_size(h, &asset.budget));
        if let Err(reason) = size {
            warn("model-image-too-large", reason);
            out.push(None);
            continue;
        }
        out.push(Some(ImageData {
            bytes: Arc::new(bytes),
            mime: mime.into(),
        }));
    }
    out
}

/// The bytes of a whole buffer view (checked against its buffer).
pub fn view_bytes(asset: &Asset, view: usize) -> Result<&[u8], String> {
    let v = asset
        .root
        .buffer_views
        .get(view)
        .ok_or_else(|| format!("bufferView {view} does not exist"))?;
    let buf = asset.buffers.get(v.buffer.value()).ok_or_else(|| {
        format!(
            "bufferView {view} names buffer {} which does not exist",
            v.buffer.value()
        )
    })?;
    let start = v.byte_offset.map(|o| o.0).unwrap_or(0);
    let len = v.byte_length.0;
    start
        .checked_add(len)
        .and_then(|end| {
            let (s, e) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
            buf.get(s..e)
        })
        .ok_or_else(|| {
            format!(
                "bufferView {view} spans bytes {start}..{} but buffer {} has {}",
                start.saturating_add(len),
                v.buffer.value(),
                buf.len()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_stay_inside_the_reference_folder() {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        std::fs::create_dir_all(models.join("tex")).unwrap();
        let m = models.join("a.gltf");
        let inside = RefRoot::within(&models);
        assert_eq!(
            resolve_uri(&m, &inside, "tex/a%20b.png").unwrap(),
            models.join("tex/a b.png")
        );
        assert!(resolve_uri(&m, &inside, "tex/../b.bin").is_ok());
        let e = resolve_uri(&m, &inside, "../secret.bin").unwrap_err();
        assert!(e.contains("outside the model's folder"), "{e}");
        assert!(resolve_uri(&m, &inside, "a/../../secret.bin").is_err());
        assert!(resolve_uri(&m, &inside, "/etc/passwd").is_err());
        assert!(resolve_uri(&m, &inside, "https://example.com/x.bin").is_err());
        // A wider root (an upload folder) admits siblings of the model's folder only.
        let wider = RefRoot::within(dir.path());
        assert!(resolve_uri(&m, &wider, "../other/b.bin").is_ok());
        let e = resolve_uri(&m, &wider, "../../b.bin").unwrap_err();
        assert!(e.contains("the folder references are read from"), "{e}");
        // Anywhere: relative paths may leave, absolute ones are still not followed.
        assert!(resolve_uri(&m, &RefRoot::anywhere(), "../../b.bin").is_ok());
        assert!(resolve_uri(&m, &RefRoot::anywhere(), "/etc/passwd").is_err());
    }

    #[test]
    fn data_uris_decode() {
        let (mime, bytes) = data_uri("data:application/octet-stream;base64,AAEC")
            .unwrap()
            .unwrap();
        assert_eq!(mime, "application/octet-stream");
        assert_eq!(bytes, vec![0, 1, 2]);
        assert!(data_uri("data:x;base64,@@").unwrap().is_err());
        assert!(data_uri("file.bin").is_none());
    }

    #[test]
    fn glb_lengths_are_checked() {
        let p = Path::new("m.glb");
        let mut glb = b"glTF".to_vec();
        glb.extend_from_slice(&2u32.to_le_bytes());
        glb.extend_from_slice(&40u32.to_le_bytes());
        glb.extend_from_slice(&100u32.to_le_bytes()); // chunk longer than the file
        glb.extend_from_slice(b"JSON");
        glb.resize(40, b' ');
        let e = split_glb(p, &glb).unwrap_err().to_string();
        assert!(e.contains("past the end"), "{e}");
        glb[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = split_glb(p, &glb).unwrap_err().to_string();
        assert!(e.contains("past the end"), "{e}");
        glb[8..12].copy_from_slice(&41u32.to_le_bytes());
        let e = split_glb(p, &glb).unwrap_err().to_string();
        assert!(e.contains("declares 41 bytes"), "{e}");
        // A chunk header cut off after its length.
        let mut glb = b"glTF".to_vec();
        glb.extend_from_slice(&2u32.to_le_bytes());
        glb.extend_from_slice(&22u32.to_le_bytes());
        glb.extend_from_slice(&0u32.to_le_bytes());
        glb.extend_from_slice(b"JSON");
        glb.extend_from_slice(&[0, 0]);
        let e = split_glb(p, &glb).unwrap_err().to_string();
        assert!(e.contains("cut off"), "{e}");
    }

    #[test]
    fn json_of_millions_of_objects_is_refused_before_parsing() {
        let small = Budget {
            memory_bytes: 64 << 20,
        };
        let mut json = b"{\"asset\":{\"version\":\"2.0\"},\"nodes\":[".to_vec();
        for _ in 0..100_000 {
            json.extend_from_slice(b"{},");
        }
        json.extend_from_slice(b"{}]}");
        let e = parse_json(Path::new("m.gltf"), &json, &small)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("memory budget"), "{e}");
        let big = Budget {
            memory_bytes: 1 << 30,
        };
        let (_, root) = parse_json(Path::new("m.gltf"), &json, &big).unwrap();
        assert_eq!(root.nodes.len(), 100_001);
    }

    /// PNG's chunk checksum (CRC-32, reflected, polynomial 0xEDB88320).
    pub fn crc32(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    #[test]
    fn image_headers_give_sizes_before_decoding() {
        let budget = Budget {
            memory_bytes: 1 << 30,
        };
        let mut png = Vec::new();
        image::RgbaImage::new(4, 3)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        assert_eq!(image_header(&png, "image/png").unwrap(), (4, 3, 48));
        // The same PNG claiming 100 000 px a side: refused from the header alone.
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let e = image_header(&png, "image/png")
            .and_then(|h| check_image_size(h, &budget))
            .unwrap_err();
        assert!(e.contains("100000 x 100000"), "{e}");
        let mut ktx = vec![
            0xAB, b'K', b'T', b'X', b' ', b'2', b'0', 0xBB, 0x0D, 0x0A, 0x1A, 0x0A,
        ];
        ktx.resize(48, 0);
        ktx[20..24].copy_from_slice(&1024u32.to_le_bytes());
        ktx[24..28].copy_from_slice(&512u32.to_le_bytes());
        assert_eq!(image_header(&ktx, "image/ktx2").unwrap().0, 1024);
        assert!(check_image_size((8192, 8192, 8192 * 8192 * 4), &budget).is_ok());
        assert!(check_image_size((8192, 8192, 8192 * 8192 * 32), &budget).is_err());
        assert!(image_header(&ktx[..22], "image/ktx2").is_err());
    }
}
