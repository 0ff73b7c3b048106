//! The bytes of a glTF asset: the GLB container or the .gltf JSON, its buffers (GLB BIN
//! chunk, external .bin files, data URIs) and its images. Every length is checked
//! against what is really there; external files are only read from the model's folder.

use crate::error::ModelError;
use crate::report::Warnings;
use base64::Engine;
use serde_json::Value;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Largest glTF JSON accepted (the geometry lives in buffers, not in the JSON).
const MAX_JSON_BYTES: usize = 256 << 20;
/// Largest single buffer or image accepted.
const MAX_RESOURCE_BYTES: u64 = 4 << 30;

/// A parsed asset: typed document for geometry, raw JSON for pass-through, buffers.
pub struct Asset {
    pub path: PathBuf,
    pub root: gltf::json::Root,
    pub raw: Value,
    pub buffers: Vec<Vec<u8>>,
}

fn container_err(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Container {
        path: path.into(),
        reason: reason.into(),
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
}

/// Split a GLB into its JSON and optional BIN chunk, checking every length.
fn split_glb(path: &Path, bytes: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>), ModelError> {
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
    let declared = u32_at(bytes, 8).unwrap_or(0) as usize;
    if declared != bytes.len() {
        return Err(container_err(
            path,
            format!(
                "the header declares {declared} bytes but the file has {}; it is truncated or padded",
                bytes.len()
            ),
        ));
    }
    let mut at = 12;
    let mut json = None;
    let mut bin = None;
    while at < bytes.len() {
        let (Some(len), Some(kind)) = (u32_at(bytes, at), u32_at(bytes, at + 4)) else {
            return Err(container_err(
                path,
                format!("chunk header at byte {at} is cut off"),
            ));
        };
        let len = len as usize;
        let start = at + 8;
        let Some(data) = start.checked_add(len).and_then(|end| bytes.get(start..end)) else {
            return Err(container_err(
                path,
                format!("chunk at byte {at} declares {len} bytes, past the end of the file"),
            ));
        };
        match kind {
            0x4E4F_534A if json.is_none() => json = Some(data.to_vec()),
            0x004E_4942 if bin.is_none() && json.is_some() => bin = Some(data.to_vec()),
            _ => {} // unknown chunks are skipped, as the specification asks
        }
        at = start + len;
    }
    let json = json.ok_or_else(|| container_err(path, "no JSON chunk"))?;
    Ok((json, bin))
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

/// Where an external URI points, if it stays inside the model's folder.
fn resolve_uri(model: &Path, uri: &str) -> Result<PathBuf, String> {
    if uri.contains("://") {
        return Err("remote URIs are not fetched".into());
    }
    let rel = PathBuf::from(percent_decode(uri));
    let mut depth = 0i32;
    for c in rel.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err("it points outside the model's folder".into());
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not followed".into())
            }
        }
    }
    let dir = model.parent().unwrap_or(Path::new("."));
    Ok(dir.join(rel))
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

/// Bytes of a URI: data URI or a file inside the model's folder.
pub fn read_uri(model: &Path, uri: &str) -> Result<Vec<u8>, String> {
    if let Some(d) = data_uri(uri) {
        return d.map(|(_, b)| b);
    }
    let file = resolve_uri(model, uri)?;
    let meta =
        std::fs::metadata(&file).map_err(|_| format!("{} does not exist", file.display()))?;
    if meta.len() > MAX_RESOURCE_BYTES {
        return Err(format!(
            "{} is {} bytes, too big",
            file.display(),
            meta.len()
        ));
    }
    std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

/// Read a .glb or .gltf with its buffers.
pub fn load(path: &Path) -> Result<Asset, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| container_err(path, e.to_string()))?;
    let (json, bin) = if bytes.starts_with(b"glTF") {
        split_glb(path, &bytes)?
    } else {
        (bytes, None)
    };
    if json.len() > MAX_JSON_BYTES {
        return Err(ModelError::Json {
            path: path.into(),
            reason: format!(
                "{} bytes of JSON is more than this reader accepts",
                json.len()
            ),
        });
    }
    let json_err = |e: serde_json::Error| ModelError::Json {
        path: path.into(),
        reason: e.to_string(),
    };
    let raw: Value = serde_json::from_slice(&json).map_err(json_err)?;
    let root: gltf::json::Root = serde_json::from_value(raw.clone()).map_err(json_err)?;
    let version = root.asset.version.as_str();
    if !version.starts_with("2.") {
        return Err(ModelError::Unsupported {
            path: path.into(),
            what: format!("glTF version {version}"),
            hint: "Only glTF 2.0 is read; convert glTF 1.0 files with a current exporter".into(),
        });
    }
    let mut bin = bin;
    let mut buffers = Vec::with_capacity(root.buffers.len());
    for (index, b) in root.buffers.iter().enumerate() {
        let declared = b.byte_length.0;
        let buf_err = |uri: &str, reason: String| ModelError::Buffer {
            path: path.into(),
            index,
            uri: uri.into(),
            reason,
        };
        let data = match &b.uri {
            None => match (index, bin.take()) {
                (0, Some(data)) => data,
                _ => {
                    return Err(buf_err(
                        "GLB BIN chunk",
                        "the file has no BIN chunk for it".into(),
                    ))
                }
            },
            Some(uri) => {
                let shown = if uri.starts_with("data:") {
                    "data URI"
                } else {
                    uri.as_str()
                };
                read_uri(path, uri).map_err(|r| buf_err(shown, r))?
            }
        };
        if (data.len() as u64) < declared {
            let shown = b
                .uri
                .as_deref()
                .filter(|u| !u.starts_with("data:"))
                .unwrap_or("embedded");
            return Err(buf_err(
                shown,
                format!("declares {declared} bytes but holds only {}", data.len()),
            ));
        }
        buffers.push(data);
    }
    Ok(Asset {
        path: path.into(),
        root,
        raw,
        buffers,
    })
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

/// Every image of the asset; a missing or unreadable one is `None` with a warning.
pub fn images(asset: &Asset, warnings: &Warnings) -> Vec<Option<ImageData>> {
    let mut out = Vec::with_capacity(asset.root.images.len());
    for (i, img) in asset.root.images.iter().enumerate() {
        let got: Result<Vec<u8>, String> = if let Some(v) = img.buffer_view {
            view_bytes(asset, v.value()).map(<[u8]>::to_vec)
        } else if let Some(uri) = &img.uri {
            read_uri(&asset.path, uri)
        } else {
            Err("it has neither a bufferView nor a URI".into())
        };
        let name = img
            .uri
            .as_deref()
            .filter(|u| !u.starts_with("data:"))
            .map(str::to_string)
            .unwrap_or_else(|| format!("image {i}"));
        match got {
            Ok(bytes) => match sniff_mime(&bytes) {
                Some(mime) => out.push(Some(ImageData {
                    bytes: Arc::new(bytes),
                    mime: mime.into(),
                })),
                None => {
                    warnings.push(
                        "model-image-unreadable",
                        format!(
                            "{}: {name} is not a PNG, JPEG, WebP or KTX2 image; the surfaces using it stay untextured",
                            asset.path.display()
                        ),
                    );
                    out.push(None);
                }
            },
            Err(reason) => {
                warnings.push(
                    "model-image-missing",
                    format!(
                        "{}: {name}: {reason}; the surfaces using it stay untextured",
                        asset.path.display()
                    ),
                );
                out.push(None);
            }
        }
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
        .and_then(|end| buf.get(start as usize..usize::try_from(end).ok()?))
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
    fn uris_stay_inside_the_model_folder() {
        let m = Path::new("/data/models/a.gltf");
        assert_eq!(
            resolve_uri(m, "tex/a%20b.png").unwrap(),
            PathBuf::from("/data/models/tex/a b.png")
        );
        assert!(resolve_uri(m, "tex/../b.bin").is_ok());
        assert!(resolve_uri(m, "../secret.bin").is_err());
        assert!(resolve_uri(m, "a/../../secret.bin").is_err());
        assert!(resolve_uri(m, "/etc/passwd").is_err());
        assert!(resolve_uri(m, "https://example.com/x.bin").is_err());
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
        glb[8..12].copy_from_slice(&41u32.to_le_bytes());
        let e = split_glb(p, &glb).unwrap_err().to_string();
        assert!(e.contains("declares 41 bytes"), "{e}");
    }
}
