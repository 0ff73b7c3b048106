//! Serving a completed asset's files under `/assets/{id}/…`: endpoint-token (or API
//! token) checks, content types, gzip terrain, ETag / Last-Modified revalidation. Also
//! the analysis estimate, which reads the same inputs the job will.

use crate::api::{check_urls, credential, query_pairs, token_principal};
use crate::auth;
use crate::store::{AssetRow, Status};
use crate::util::{safe_relative, unix_now};
use crate::{ApiError, AppState, AuthMode};
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::macros::format_description;

/// May this request read asset `id`'s tiles? 401 tells clients to fetch a new endpoint
/// token; an asset the token may not see is 404.
fn tile_access(s: &AppState, uri: &Uri, headers: &HeaderMap, id: i64) -> Result<(), ApiError> {
    if s.config.auth == AuthMode::Disabled {
        return Ok(());
    }
    let token = credential(uri, headers).ok_or_else(ApiError::unauthorized)?;
    if let Some(claims) = auth::verify(&s.secret, &token) {
        if let Some(asset) = claims.get("assetId") {
            let fresh = claims["exp"].as_i64().is_some_and(|e| e > unix_now());
            let for_asset =
                asset.as_i64() == Some(id) || claims["assets"].get(id.to_string()).is_some();
            let src = claims["src"].as_str().unwrap_or("");
            let source = match s.store.token(src) {
                Ok(Some(row)) => Some(row),
                _ => None,
            };
            let src_alive = src == "anonymous" || source.is_some();
            if !for_asset {
                return Err(ApiError::not_found(uri.path()));
            }
            if !(fresh && src_alive) {
                return Err(ApiError::unauthorized());
            }
            // An endpoint token carries the restrictions of the API token it came from.
            if let Some(urls) = source.and_then(|row| row.allowed_urls) {
                let h = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
                if !auth::url_allowed(&urls, h(header::REFERER), h(header::ORIGIN)) {
                    return Err(ApiError::forbidden(
                        "this token may only be used from its allowed URLs",
                    ));
                }
            }
            return Ok(());
        }
    }
    match token_principal(s, &token) {
        Some(p) if !p.sees(id) => Err(ApiError::not_found(uri.path())),
        Some(p) if p.has("assets:read") => check_urls(&p, headers),
        _ => Err(ApiError::unauthorized()),
    }
}

pub fn content_type(path: &Path, terrain_ext: &str) -> String {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "json" | "czml" => "application/json".into(),
        "geojson" => "application/geo+json".into(),
        "glb" => "model/gltf-binary".into(),
        "gltf" => "model/gltf+json".into(),
        "png" => "image/png".into(),
        "jpg" | "jpeg" => "image/jpeg".into(),
        "webp" => "image/webp".into(),
        "xml" => "application/xml".into(),
        "kml" => "application/vnd.google-earth.kml+xml".into(),
        "kmz" => "application/vnd.google-earth.kmz".into(),
        "js" | "mjs" => "text/javascript".into(),
        "css" => "text/css".into(),
        "html" => "text/html; charset=utf-8".into(),
        "svg" => "image/svg+xml".into(),
        "wasm" => "application/wasm".into(),
        "ktx2" => "image/ktx2".into(),
        "terrain" if terrain_ext.is_empty() => "application/vnd.quantized-mesh".into(),
        "terrain" => format!("application/vnd.quantized-mesh;extensions={terrain_ext}"),
        _ => "application/octet-stream".into(),
    }
}

/// Extensions a terrain request asks for: the `extensions` query parameter, else the
/// `extensions=` parameter of the quantized-mesh type in `Accept`; kept only if the
/// layer has them.
fn terrain_extensions(uri: &Uri, headers: &HeaderMap, available: &[String]) -> String {
    let asked: String = query_pairs(uri)
        .into_iter()
        .find(|(k, _)| k == "extensions")
        .map(|(_, v)| v)
        .or_else(|| {
            let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
            accept
                .split(',')
                .find(|p| p.contains("quantized-mesh"))?
                .split(';')
                .find_map(|p| p.trim().strip_prefix("extensions=").map(str::to_string))
        })
        .unwrap_or_default();
    asked
        .split('-')
        .filter(|e| available.iter().any(|a| a == e))
        .collect::<Vec<_>>()
        .join("-")
}

fn http_date(t: std::time::SystemTime) -> String {
    let f = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::from(t).format(f).unwrap_or_default()
}

fn set(h: &mut HeaderMap, k: header::HeaderName, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.insert(k, v);
    }
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` against a length (one range only).
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

/// Answer with the file at `path` (`len` bytes) and the headers in `h`, honouring one
/// `Range`; the body is read from disk in 64 KiB pieces as it is sent.
pub async fn file_response(
    path: &Path,
    len: u64,
    request: &HeaderMap,
    mut h: HeaderMap,
) -> Result<Response, ApiError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    set(&mut h, header::ACCEPT_RANGES, "bytes");
    let (status, start, count) = match request.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => (StatusCode::OK, 0, len),
        Some(r) => match byte_range(r, len) {
            Some((a, b)) => {
                set(
                    &mut h,
                    header::CONTENT_RANGE,
                    &format!("bytes {a}-{b}/{len}"),
                );
                (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
            }
            None => {
                set(&mut h, header::CONTENT_RANGE, &format!("bytes */{len}"));
                return Ok((StatusCode::RANGE_NOT_SATISFIABLE, h).into_response());
            }
        },
    };
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(ApiError::internal)?;
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(ApiError::internal)?;
    set(&mut h, header::CONTENT_LENGTH, &count.to_string());
    let stream = futures::stream::unfold(
        (file.take(count), vec![0u8; 1 << 16]),
        |(mut f, mut buf)| async move {
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => Some((Ok(bytes::Bytes::copy_from_slice(&buf[..n])), (f, buf))),
                Err(e) => Some((Err(e), (f, buf))),
            }
        },
    );
    Ok((status, h, Body::from_stream(stream)).into_response())
}

async fn send_file(
    s: &AppState,
    asset: i64,
    file: PathBuf,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let meta = match tokio::fs::metadata(&file).await {
        Ok(m) if m.is_file() => m,
        _ => return Err(ApiError::not_found(uri.path())),
    };
    let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
    let nanos = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let etag = format!("\"{:x}-{:x}\"", meta.len(), nanos);
    let is_terrain = file.extension().is_some_and(|e| e == "terrain");
    let ext = if is_terrain {
        terrain_extensions(uri, headers, &layer_extensions(s, asset))
    } else {
        String::new()
    };
    let mut h = HeaderMap::new();
    set(&mut h, header::CONTENT_TYPE, &content_type(&file, &ext));
    set(&mut h, header::ETAG, &etag);
    set(&mut h, header::LAST_MODIFIED, &http_date(mtime));
    set(&mut h, header::CACHE_CONTROL, "no-cache");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, h).into_response());
    }
    if is_terrain {
        // Terrain tiles are stored gzip-compressed: sent as they are to clients that
        // accept gzip, decompressed for the others.
        set(&mut h, header::VARY, "Accept-Encoding");
        let accepts_gzip = headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        let bytes = tokio::fs::read(&file)
            .await
            .map_err(|_| ApiError::not_found(uri.path()))?;
        if bytes.starts_with(&[0x1f, 0x8b]) {
            if accepts_gzip {
                set(&mut h, header::CONTENT_ENCODING, "gzip");
                return Ok((StatusCode::OK, h, Body::from(bytes)).into_response());
            }
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut plain)
                .map_err(ApiError::internal)?;
            return Ok((StatusCode::OK, h, Body::from(plain)).into_response());
        }
    }
    file_response(&file, meta.len(), headers, h).await
}

/// The extensions a terrain asset's layer.json lists, read once per asset (a COMPLETE
/// asset's files never change and ids are never reused).
fn layer_extensions(s: &AppState, asset: i64) -> Arc<Vec<String>> {
    let mut cache = s.layer_extensions.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(asset)
        .or_insert_with(|| {
            let layer = s.layout.output(asset).join("layer.json");
            Arc::new(
                std::fs::read(layer)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| {
                        v["extensions"].as_array().map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                    })
                    .unwrap_or_default(),
            )
        })
        .clone()
}

fn served_asset(
    s: &AppState,
    id: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<AssetRow, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::not_found(uri.path()))?;
    tile_access(s, uri, headers, id)?;
    match s.store.asset(id)? {
        Some(a) if a.status == Status::Complete => Ok(a),
        _ => Err(ApiError::not_found(uri.path())),
    }
}

pub async fn serve(
    State(s): State<Arc<AppState>>,
    UrlPath((id, path)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let a = served_asset(&s, &id, &uri, &headers)?;
    let rel = safe_relative(&path).ok_or_else(|| ApiError::not_found(uri.path()))?;
    send_file(&s, a.id, s.layout.output(a.id).join(rel), &uri, &headers).await
}

/// `GET {url}` of a folder-rooted asset: imagery answers with its tilemapresource.xml,
/// terrain with layer.json.
pub async fn serve_root(
    State(s): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let a = served_asset(&s, &id, &uri, &headers)?;
    let dir = s.layout.output(a.id);
    let file = match a.type_.as_str() {
        "IMAGERY" => dir.join("tilemapresource.xml"),
        "TERRAIN" => dir.join("layer.json"),
        _ if !a.entry.is_empty() => dir.join(&a.entry),
        _ => return Err(ApiError::not_found(uri.path())),
    };
    send_file(&s, a.id, file, &uri, &headers).await
}

/// What a job is expected to produce.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Estimate {
    pub tiles: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub basis: String,
}

/// Estimate from the inputs' headers and this machine's measured throughput on the
/// sample data (points/s, tiles/s, triangles/s on 2 cores; scale by core count).
pub fn estimate(options: &serde_json::Value, files: &[PathBuf], source_bytes: u64) -> Estimate {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    let source_type = options[crate::wire::option::SOURCE_TYPE]
        .as_str()
        .unwrap_or("");
    let ext = |f: &PathBuf| {
        f.extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    match source_type {
        "POINT_CLOUD" => {
            let points: u64 = files
                .iter()
                .filter(|f| matches!(ext(f).as_str(), "las" | "laz"))
                .filter_map(|f| tessera_pipeline::las::inspect(f).ok())
                .fold(0u64, |sum, l| sum.saturating_add(l.points));
            Estimate {
                tiles: (points as f64 / 80_000.0 * 1.35).ceil() as u64,
                bytes: points.saturating_mul(22),
                seconds: points as f64 / (0.6e6 * cores),
                basis: format!("{points} points in the LAS/LAZ headers; 80 000 points per tile, ~22 bytes per point"),
            }
        }
        "RASTER_TERRAIN" | "RASTER_IMAGERY" => {
            let px: u64 = files
                .iter()
                .filter(|f| matches!(ext(f).as_str(), "tif" | "tiff"))
                .filter_map(|f| tessera_pipeline::raster::GeoTiff::open(f).ok())
                .fold(0u64, |sum, t| {
                    sum.saturating_add((t.width as u64).saturating_mul(t.height as u64))
                });
            let terrain = source_type == "RASTER_TERRAIN";
            let tile_px = if terrain {
                128.0 * 128.0
            } else {
                256.0 * 256.0
            };
            let tiles = (px as f64 / tile_px * 4.0 / 3.0).ceil() as u64;
            Estimate {
                tiles,
                bytes: tiles.saturating_mul(if terrain { 12_000 } else { 60_000 }),
                seconds: tiles as f64 / (130.0 * cores),
                basis: format!(
                    "{px} raster pixels at about one tile pixel per source pixel, pyramid ×4/3"
                ),
            }
        }
        _ => Estimate {
            tiles: (source_bytes / (4 << 20)).max(1),
            bytes: source_bytes.saturating_mul(2),
            seconds: source_bytes as f64 / (20e6 * cores),
            basis: "source size only".into(),
        },
    }
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
