//! Archives: a COMPLETE asset's served tree packed as a zip (or, [ext], a `.3tz` with its
//! index for 3D Tiles), built in the background and downloadable with `Range`.

use crate::api::{query_pairs, require};
use crate::store::{ArchiveRow, Status};
use crate::{wire, ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_pipeline::sink::{ArchiveSink, TileSink};

type St = State<Arc<AppState>>;

fn archive_path(s: &AppState, id: i64, format: &str) -> PathBuf {
    let ext = if format == "3TZ" { "3tz" } else { "zip" };
    s.config
        .data_dir
        .join("archives")
        .join(format!("{id}.{ext}"))
}

fn to_wire(a: &ArchiveRow) -> wire::Archive {
    wire::Archive {
        id: a.id,
        asset_id: a.asset_id,
        format: a.format.clone(),
        status: a.status.clone(),
        bytes_archived: a.bytes,
    }
}

/// Pack `dir` into `dest`.
fn pack(dir: &Path, dest: &Path, format: &str) -> Result<u64, String> {
    let files = crate::jobs::list_files(dir);
    if format == "3TZ" {
        let sink = Box::new(ArchiveSink::new(dest).map_err(|e| e.to_string())?);
        for f in &files {
            let rel = f
                .strip_prefix(dir)
                .unwrap_or(f)
                .to_string_lossy()
                .replace('\\', "/");
            let bytes = std::fs::read(f).map_err(|e| e.to_string())?;
            sink.write(&rel, &bytes).map_err(|e| e.to_string())?;
        }
        sink.commit().map_err(|e| e.to_string())?;
    } else {
        let tmp = dest.with_extension("partial");
        let out = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
        let mut z = zip::ZipWriter::new(out);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        for f in &files {
            let rel = f
                .strip_prefix(dir)
                .unwrap_or(f)
                .to_string_lossy()
                .replace('\\', "/");
            z.start_file(rel, opts).map_err(|e| e.to_string())?;
            let mut r = std::fs::File::open(f).map_err(|e| e.to_string())?;
            std::io::copy(&mut r, &mut z).map_err(|e| e.to_string())?;
        }
        z.finish()
            .map_err(|e| e.to_string())?
            .flush()
            .map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, dest).map_err(|e| e.to_string())?;
    }
    std::fs::metadata(dest)
        .map(|m| m.len())
        .map_err(|e| e.to_string())
}

fn asset_id(
    s: &AppState,
    raw: &str,
    uri: &Uri,
    p: &crate::auth::Principal,
) -> Result<i64, ApiError> {
    let id: i64 = raw.parse().map_err(|_| ApiError::not_found(uri.path()))?;
    match s.store.asset(id)? {
        Some(_) if p.sees(id) => Ok(id),
        _ => Err(ApiError::not_found(uri.path())),
    }
}

pub async fn create(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<wire::Archive>, ApiError> {
    let p = require(&s, &uri, &headers, "archives:write")?;
    let id = asset_id(&s, &id, &uri, &p)?;
    let a = s
        .store
        .asset(id)?
        .ok_or_else(|| ApiError::not_found(uri.path()))?;
    let req: wire::CreateArchive = if body.is_empty() {
        wire::CreateArchive { format: None }
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?
    };
    let format = req
        .format
        .as_ref()
        .and_then(|f| f.as_str())
        .unwrap_or("ZIP")
        .to_ascii_uppercase();
    if format != "ZIP" && !(format == "3TZ" && a.type_ == "3DTILES") {
        return Err(ApiError::bad_request(format!(
            "format {format}: archives are ZIP (or 3TZ for 3D Tiles)"
        )));
    }
    if a.status != Status::Complete {
        return Err(ApiError::conflict(format!(
            "asset {id} is {}; only COMPLETE assets can be archived",
            a.status.as_str()
        )));
    }
    let aid = s.store.insert_archive(id, &format)?;
    let state = s.clone();
    let dir = s.layout.output(id);
    let dest = archive_path(&s, aid, &format);
    let fmt = format.clone();
    tokio::task::spawn_blocking(move || {
        let _ = state.store.set_archive(aid, "IN_PROGRESS", 0);
        let _ = std::fs::create_dir_all(dest.parent().unwrap_or(Path::new(".")));
        match pack(&dir, &dest, &fmt) {
            Ok(n) => {
                let _ = state.store.set_archive(aid, "COMPLETE", n);
            }
            Err(_) => {
                let _ = std::fs::remove_file(&dest);
                let _ = state.store.set_archive(aid, "ERROR", 0);
            }
        }
    });
    Ok(Json(wire::Archive {
        id: aid,
        asset_id: id,
        format,
        status: "NOT_STARTED".into(),
        bytes_archived: 0,
    }))
}

pub async fn list(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<wire::Items<wire::Archive>>, ApiError> {
    let p = require(&s, &uri, &headers, "archives:read")?;
    let id = asset_id(&s, &id, &uri, &p)?;
    let q = query_pairs(&uri);
    let get = |k: &str, d: usize| {
        q.iter()
            .rev()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(d)
    };
    let (page, limit) = (get("page", 1).max(1), get("limit", 1000).clamp(1, 1000));
    let items = s
        .store
        .archives(id)?
        .iter()
        .skip((page - 1) * limit)
        .take(limit)
        .map(to_wire)
        .collect();
    Ok(Json(wire::Items { items }))
}

fn find(s: &AppState, id: i64, archive: &str, uri: &Uri) -> Result<ArchiveRow, ApiError> {
    let aid: i64 = archive
        .parse()
        .map_err(|_| ApiError::not_found(uri.path()))?;
    s.store
        .archives(id)?
        .into_iter()
        .find(|a| a.id == aid)
        .ok_or_else(|| ApiError::not_found(uri.path()))
}

pub async fn get(
    State(s): St,
    UrlPath((id, archive)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<wire::Archive>, ApiError> {
    let p = require(&s, &uri, &headers, "archives:read")?;
    let id = asset_id(&s, &id, &uri, &p)?;
    Ok(Json(to_wire(&find(&s, id, &archive, &uri)?)))
}

pub async fn delete(
    State(s): St,
    UrlPath((id, archive)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let p = require(&s, &uri, &headers, "archives:write")?;
    let id = asset_id(&s, &id, &uri, &p)?;
    let a = find(&s, id, &archive, &uri)?;
    s.store.delete_archive(a.id)?;
    let _ = tokio::fs::remove_file(archive_path(&s, a.id, &a.format)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` against a length.
pub fn byte_range(h: &str, len: u64) -> Option<(u64, u64)> {
    let spec = h.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, len.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(len.checked_sub(1)?),
        ),
    };
    (start <= end && end < len).then_some((start, end))
}

pub async fn download(
    State(s): St,
    UrlPath((id, archive)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = require(&s, &uri, &headers, "archives:read")?;
    let id = asset_id(&s, &id, &uri, &p)?;
    let a = find(&s, id, &archive, &uri)?;
    if a.status != "COMPLETE" {
        return Err(ApiError::conflict(format!(
            "archive {} is {}",
            a.id, a.status
        )));
    }
    let path = archive_path(&s, a.id, &a.format);
    let bytes = tokio::fs::read(&path).await.map_err(ApiError::internal)?;
    let len = bytes.len() as u64;
    let ext = if a.format == "3TZ" { "3tz" } else { "zip" };
    let mut h = HeaderMap::new();
    let ct = if a.format == "3TZ" {
        "application/octet-stream"
    } else {
        "application/zip"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"asset-{id}.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(r) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        let Some((start, end)) = byte_range(r, len) else {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, h).into_response());
        };
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
        let part = bytes[start as usize..=end as usize].to_vec();
        return Ok((StatusCode::PARTIAL_CONTENT, h, Body::from(part)).into_response());
    }
    Ok((StatusCode::OK, h, Body::from(bytes)).into_response())
}

#[cfg(test)]
mod tests {
    use super::byte_range as range;

    #[test]
    fn byte_ranges() {
        assert_eq!(range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(range("bytes=100-", 100), None);
        assert_eq!(range("bytes=0-1,4-5", 100), None);
    }
}
