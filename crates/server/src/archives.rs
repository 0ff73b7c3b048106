//! Archives: a COMPLETE asset's served tree packed as a zip (or, [ext], a `.3tz` with its
//! index for 3D Tiles), built in the background and downloadable with `Range`.

use crate::api::{asset_for, page_response, paging, query_pairs};
use crate::store::{ArchiveRow, Status};
use crate::{wire, ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::Json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_pipeline::sink::{ArchiveSink, TileSink};

type St = State<Arc<AppState>>;

/// Where an archive's file lives.
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
    let files = crate::util::list_files(dir);
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

/// Remove every archive of an asset (its files; the rows go with the asset).
pub async fn remove_all(s: &AppState, asset: i64) -> Result<(), ApiError> {
    for a in s.store.archives(asset)? {
        let _ = tokio::fs::remove_file(archive_path(s, a.id, &a.format)).await;
    }
    Ok(())
}

pub async fn create(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<wire::Archive>, ApiError> {
    let (_, a) = asset_for(&s, &id, &uri, &headers, "archives:write")?;
    let id = a.id;
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
) -> Result<Response, ApiError> {
    let (_, asset) = asset_for(&s, &id, &uri, &headers, "archives:read")?;
    let id = asset.id;
    let (page, limit) = paging(&query_pairs(&uri))?;
    let items: Vec<wire::Archive> = s.store.archives(id)?.iter().map(to_wire).collect();
    Ok(page_response(&s, &uri, &headers, items, page, limit))
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
    let (_, asset) = asset_for(&s, &id, &uri, &headers, "archives:read")?;
    let id = asset.id;
    Ok(Json(to_wire(&find(&s, id, &archive, &uri)?)))
}

pub async fn delete(
    State(s): St,
    UrlPath((id, archive)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (_, asset) = asset_for(&s, &id, &uri, &headers, "archives:write")?;
    let id = asset.id;
    let a = find(&s, id, &archive, &uri)?;
    s.store.delete_archive(a.id)?;
    let _ = tokio::fs::remove_file(archive_path(&s, a.id, &a.format)).await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn download(
    State(s): St,
    UrlPath((id, archive)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, asset) = asset_for(&s, &id, &uri, &headers, "archives:read")?;
    let id = asset.id;
    let a = find(&s, id, &archive, &uri)?;
    if a.status != "COMPLETE" {
        return Err(ApiError::conflict(format!(
            "archive {} is {}",
            a.id, a.status
        )));
    }
    let path = archive_path(&s, a.id, &a.format);
    let len = tokio::fs::metadata(&path)
        .await
        .map_err(ApiError::internal)?
        .len();
    let (ext, ct) = if a.format == "3TZ" {
        ("3tz", "application/octet-stream")
    } else {
        ("zip", "application/zip")
    };
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"asset-{id}.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    crate::tiles::file_response(&path, len, &headers, h).await
}
