//! The REST routes: handlers of a few lines over the store, the job queue and auth.

use crate::auth::{self, Principal, SCOPES};
use crate::store::{AssetRow, Status, Store, UploadSession};
use crate::util::{now_rfc3339, random_string, safe_relative, unix_now, ALNUM, UPPER_DIGITS};
use crate::wire::{self, option};
use crate::{ApiError, AppState, AuthMode, Config, BUCKET};
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

type St = State<Arc<AppState>>;
type ApiResult<T> = Result<T, ApiError>;

pub fn router(state: Arc<AppState>) -> Router {
    let s3 = crate::s3::service(state.clone());
    let tokens = Router::new()
        .route("/", get(list_tokens).post(create_token))
        .route("/default", get(default_token))
        .route(
            "/{id}",
            get(get_token).patch(patch_token).delete(delete_token),
        );
    Router::new()
        .route("/", get(crate::web::index))
        .route("/ui/app.js", get(crate::web::app_js))
        .route("/ui/app.css", get(crate::web::app_css))
        .route("/cesium/{*path}", get(crate::web::cesium))
        .route(
            "/vendor/meshopt_decoder.mjs",
            get(crate::web::meshopt_decoder),
        )
        .route("/appData", get(app_data))
        .route("/v1/me", get(me))
        .route("/v1/defaults", get(defaults))
        .route("/v1/geocode/{kind}", get(geocode))
        .route("/v1/assets", get(list_assets).post(create_asset))
        .route(
            "/v1/assets/{id}",
            get(get_asset).patch(patch_asset).delete(delete_asset),
        )
        .route("/v1/assets/{id}/uploadComplete", post(upload_complete))
        .route("/v1/assets/{id}/uploadLocation", post(new_upload_location))
        .route("/v1/assets/{id}/endpoint", get(endpoint))
        .route(
            "/v1/assets/{id}/files",
            get(list_files).post(post_files_refused),
        )
        .route(
            "/v1/assets/{id}/files/{*path}",
            put(put_file).delete(delete_file),
        )
        .route("/v1/assets/{id}/analysis", post(analysis))
        .route("/v1/assets/{id}/graphics", get(graphics))
        .route(
            "/v1/assets/{id}/archives",
            get(crate::archives::list).post(crate::archives::create),
        )
        .route(
            "/v1/assets/{id}/archives/{archive}",
            get(crate::archives::get).delete(crate::archives::delete),
        )
        .route(
            "/v1/assets/{id}/archives/{archive}/download",
            get(crate::archives::download),
        )
        .route("/v1/assets/{id}/exports", any(exports_unsupported))
        .nest("/v2/tokens", tokens.clone())
        .nest("/v1/tokens", tokens)
        .route("/assets/{id}", get(crate::tiles::serve_root))
        .route("/assets/{id}/", get(crate::tiles::serve_root))
        .route("/assets/{id}/{*path}", get(crate::tiles::serve))
        .route_service(&format!("/{BUCKET}"), s3.clone())
        .route_service(&format!("/{BUCKET}/"), s3.clone())
        .route_service(&format!("/{BUCKET}/{{*key}}"), s3)
        .fallback(not_found)
        .layer(middleware::from_fn(cors))
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

/// CORS for API, tiles and S3 alike; preflights answer 204 without credentials.
async fn cors(req: Request, next: Next) -> Response {
    let requested = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        requested.unwrap_or(HeaderValue::from_static(
            "Authorization, Content-Type, Accept, Range, X-Cesium-Client, X-Cesium-Client-Version, x-amz-date, x-amz-content-sha256, x-amz-security-token, x-amz-user-agent, Content-MD5",
        )),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "Link, ETag, Content-Length, Content-Encoding, Content-Range, x-amz-request-id",
        ),
    );
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }
    resp
}

// ---------------------------------------------------------------- auth helpers

/// The request's query as (name, value) pairs, percent-decoded, repeats kept.
pub fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                let hex = |c: u8| (c as char).to_digit(16);
                if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// The credential of a request: `access_token` query, else `Authorization: Bearer`.
pub fn credential(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    if let Some((_, v)) = query_pairs(uri)
        .into_iter()
        .find(|(k, v)| k == "access_token" && !v.is_empty())
    {
        return Some(v);
    }
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))?;
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The API principal of a request (token mode: 401 without a valid API token, 403 when
/// the token's `allowedUrls` do not admit the request's Referer/Origin).
pub fn principal(state: &AppState, uri: &Uri, headers: &HeaderMap) -> ApiResult<Principal> {
    if state.config.auth == AuthMode::Disabled {
        return Ok(Principal::Local);
    }
    let token = credential(uri, headers).ok_or_else(ApiError::unauthorized)?;
    let p = token_principal(state, &token).ok_or_else(ApiError::unauthorized)?;
    check_urls(&p, headers)?;
    Ok(p)
}

/// The principal an API token string stands for (`None`: not a live API token).
pub fn token_principal(state: &AppState, token: &str) -> Option<Principal> {
    let id = if state.config.admin_token.as_deref() == Some(token) {
        state.admin_token_id.clone()
    } else {
        let claims = auth::verify(&state.secret, token)?;
        if claims.get("assetId").is_some() {
            return None; // endpoint tokens are for tiles only
        }
        claims["jti"].as_str()?.to_string()
    };
    let row = state.store.token(&id).ok()??;
    let now = now_rfc3339();
    // Record use at most once a minute.
    let stale = row
        .date_last_used
        .as_deref()
        .is_none_or(|d| d.get(..16) != now.get(..16));
    if stale {
        let _ = state.store.touch_token(&row.id, &now);
    }
    Some(Principal::Token {
        id: row.id,
        scopes: row.scopes,
        asset_ids: row.asset_ids,
        allowed_urls: row.allowed_urls,
    })
}

/// The principal, which must hold `scope` and pass its URL restriction.
pub fn require(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    scope: &str,
) -> ApiResult<Principal> {
    let p = principal(state, uri, headers)?;
    if !p.has(scope) {
        return Err(ApiError::forbidden(format!(
            "this token lacks the {scope} scope"
        )));
    }
    Ok(p)
}

pub fn check_urls(p: &Principal, headers: &HeaderMap) -> ApiResult<()> {
    if let Principal::Token {
        allowed_urls: Some(urls),
        ..
    } = p
    {
        let h = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
        if !auth::url_allowed(urls, h(header::REFERER), h(header::ORIGIN)) {
            return Err(ApiError::forbidden(
                "this token may only be used from its allowed URLs",
            ));
        }
    }
    Ok(())
}

/// The base URL clients reach us at.
pub fn base_url(config: &Config, headers: &HeaderMap) -> String {
    if let Some(u) = &config.public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

// ---------------------------------------------------------------- bootstrap

const DEFAULT_SCOPES: [&str; 2] = ["assets:read", "geocode"];

/// Create the default and admin tokens on first start; returns the admin token id and,
/// when just created, the admin token string.
pub fn bootstrap_tokens(
    store: &Store,
    secret: &[u8],
    config: &Config,
) -> Result<(String, Option<String>), String> {
    let tokens = store.tokens().map_err(|e| e.to_string())?;
    let now = now_rfc3339();
    let make = |name: &str, scopes: &[&str], is_default: bool| {
        let id = uuid::Uuid::new_v4().to_string();
        wire::Token {
            token: auth::jwt(secret, &auth::api_claims(&id, unix_now())),
            id,
            name: name.into(),
            date_added: now.clone(),
            date_modified: now.clone(),
            date_last_used: None,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            asset_ids: None,
            allowed_urls: None,
            is_default,
        }
    };
    if !tokens.iter().any(|t| t.is_default) {
        store
            .insert_token(&make("Default", &DEFAULT_SCOPES, true))
            .map_err(|e| e.to_string())?;
    }
    let admin_name = "Admin (created at first start)";
    if let Some(t) = tokens.iter().find(|t| t.name == admin_name) {
        return Ok((t.id.clone(), None));
    }
    let t = make(admin_name, SCOPES, false);
    store.insert_token(&t).map_err(|e| e.to_string())?;
    let path = config.data_dir.join("admin-token.txt");
    write_private(&path, &t.token).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((t.id, Some(t.token)))
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")
}

// ---------------------------------------------------------------- info

async fn app_data(State(s): St) -> Json<wire::AppData> {
    Json(wire::AppData {
        application_mode: match s.config.auth {
            AuthMode::Disabled => "single-user",
            AuthMode::Token => "cesium-ion",
        },
        data_store_type: "FILESYSTEM",
        attribution: "",
        server_name: "tessera",
        server_version: env!("CARGO_PKG_VERSION"),
        extensions: vec![
            "direct-upload",
            "processing-errors",
            "archives",
            "analysis",
            "graphics",
        ],
    })
}

async fn me(State(s): St, uri: Uri, headers: HeaderMap) -> ApiResult<Json<wire::Me>> {
    let p = principal(&s, &uri, &headers)?;
    let profile = p.has("profile:read");
    let used = s.store.assets()?.iter().map(|a| a.bytes).sum::<u64>();
    // The data volume's size (0 when the OS does not say).
    let total = fs4::total_space(&s.config.data_dir).unwrap_or(0).max(used);
    Ok(Json(wire::Me {
        id: 1,
        scopes: p.scopes(),
        username: profile.then_some("local"),
        email: profile.then_some("local@localhost"),
        email_verified: profile.then_some(true),
        avatar: profile.then_some(""),
        storage: profile.then_some(wire::Storage {
            used,
            available: total - used,
            total,
        }),
    }))
}

async fn defaults(State(s): St, uri: Uri, headers: HeaderMap) -> ApiResult<Json<wire::Defaults>> {
    if s.config.auth == AuthMode::Token && credential(&uri, &headers).is_some() {
        principal(&s, &uri, &headers)?;
    }
    Ok(Json(wire::Defaults {
        default_assets: Map::new(),
        quick_add_assets: Vec::new(),
    }))
}

async fn geocode(
    State(s): St,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Json<wire::FeatureCollection>> {
    require(&s, &uri, &headers, "geocode")?;
    if !query_pairs(&uri)
        .iter()
        .any(|(k, v)| k == "text" && !v.is_empty())
    {
        return Err(ApiError::bad_request("the text parameter is required"));
    }
    Ok(Json(wire::FeatureCollection {
        type_: "FeatureCollection",
        features: Vec::new(),
        attributions: Vec::new(),
    }))
}

// ---------------------------------------------------------------- assets

fn to_wire(s: &AppState, a: &AssetRow, full: bool) -> wire::Asset {
    let mut percent = a.percent;
    let mut stage = a.stage.clone();
    let mut tiles = a.tiles_written;
    if a.status == Status::InProgress {
        if let Some(p) = s.jobs.progress(a.id) {
            let snap = p.snapshot();
            percent = (snap.percent.floor() as u8).min(99);
            stage = Some(format!("{:?}", snap.stage).to_ascii_uppercase());
            tiles = snap.tiles_written;
        } else if let Ok(Some(fresh)) = s.store.asset(a.id) {
            // The job ended between reading the row and looking for its progress: the
            // row now holds the outcome (it is written before the job leaves the list).
            if fresh.status != Status::InProgress {
                return to_wire(s, &fresh, full);
            }
        }
    }
    let w = wire::Asset {
        id: a.id,
        type_: a.type_.clone(),
        name: a.name.clone(),
        description: a.description.clone(),
        attribution: a.attribution.clone(),
        bytes: a.bytes,
        date_added: a.date_added.clone(),
        status: a.status.as_str().into(),
        percent_complete: if a.status == Status::Complete {
            100
        } else {
            percent.min(99)
        },
        archivable: a.status == Status::Complete,
        exportable: false,
        options: Some(a.options.clone()),
        processing: Some(stage.map(|stage| wire::Processing {
            stage,
            started_at: a.started_at.clone(),
            finished_at: a.finished_at.clone(),
            tiles_written: tiles,
        })),
        processing_error: Some(a.error.clone()),
        processing_warnings: Some(a.warnings.clone()),
    };
    if full {
        w
    } else {
        w.list_item()
    }
}

fn parse_id(raw: &str, uri: &Uri) -> ApiResult<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::not_found(uri.path()))
}

/// The principal (holding `scope`) and the asset at `raw_id`, if it exists and the
/// principal may see it.
pub fn asset_for(
    s: &AppState,
    raw_id: &str,
    uri: &Uri,
    headers: &HeaderMap,
    scope: &str,
) -> ApiResult<(Principal, AssetRow)> {
    let p = require(s, uri, headers, scope)?;
    let id = parse_id(raw_id, uri)?;
    let a = visible(s, &p, id, uri)?;
    Ok((p, a))
}

/// The asset, if it exists and the principal may see it.
fn visible(s: &AppState, p: &Principal, id: i64, uri: &Uri) -> ApiResult<AssetRow> {
    match s.store.asset(id)? {
        Some(a) if p.sees(id) => Ok(a),
        _ => Err(ApiError::not_found(uri.path())),
    }
}

const TYPES: [&str; 7] = [
    "3DTILES", "GLTF", "IMAGERY", "TERRAIN", "CZML", "KML", "GEOJSON",
];

pub fn paging(q: &[(String, String)]) -> ApiResult<(usize, usize)> {
    let get = |k: &str, d: usize, max: usize| -> ApiResult<usize> {
        match q.iter().rev().find(|(n, _)| n == k) {
            None => Ok(d),
            Some((_, v)) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{k} must be an integer from 1 to {max}"))
                }),
        }
    };
    Ok((get("page", 1, usize::MAX)?, get("limit", 1000, 1000)?))
}

/// Page `items` and add `Link` headers.
pub fn page_response<T: Serialize>(
    s: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    items: Vec<T>,
    page: usize,
    limit: usize,
) -> Response {
    let total = items.len();
    let start = (page - 1).saturating_mul(limit);
    let slice: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let mut links = Vec::new();
    let link = |p: usize| {
        let mut q: Vec<String> = query_pairs(uri)
            .into_iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| format!("{}={}", enc(&k), enc(&v)))
            .collect();
        q.push(format!("page={p}"));
        format!(
            "{}{}?{}",
            base_url(&s.config, headers),
            uri.path(),
            q.join("&")
        )
    };
    if start + limit < total {
        links.push(format!("<{}>; rel=\"next\"", link(page + 1)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", link(page - 1)));
    }
    let mut resp = Json(wire::Items { items: slice }).into_response();
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        if !links.is_empty() {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    resp
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Comma-separated or repeated enum values, upper-cased, each checked.
fn multi(q: &[(String, String)], key: &str, allowed: &[&str]) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    for (_, v) in q.iter().filter(|(k, _)| k == key) {
        for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let up = part.to_ascii_uppercase();
            if !allowed.contains(&up.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "{key}: unknown value {part}"
                )));
            }
            out.push(up);
        }
    }
    Ok(out)
}

async fn list_assets(State(s): St, uri: Uri, headers: HeaderMap) -> ApiResult<Response> {
    let p = principal(&s, &uri, &headers)?;
    check_urls(&p, &headers)?;
    let limited = !p.has("assets:list");
    if limited && !p.has("assets:limited-list") {
        return Err(ApiError::forbidden(
            "this token lacks the assets:list scope",
        ));
    }
    let q = query_pairs(&uri);
    let (page, limit) = paging(&q)?;
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let want_status = multi(&q, "status", &statuses)?;
    let want_type = multi(&q, "type", &TYPES)?;
    let sort_by = q
        .iter()
        .rev()
        .find(|(k, _)| k == "sortBy")
        .map(|(_, v)| v.to_ascii_uppercase())
        .unwrap_or_else(|| "ID".into());
    let desc = match q.iter().rev().find(|(k, _)| k == "sortOrder") {
        None => false,
        Some((_, v)) if v.eq_ignore_ascii_case("asc") => false,
        Some((_, v)) if v.eq_ignore_ascii_case("desc") => true,
        Some(_) => return Err(ApiError::bad_request("sortOrder must be ASC or DESC")),
    };
    let words: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "search")
        .flat_map(|(_, v)| {
            v.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut assets: Vec<AssetRow> = s
        .store
        .assets()?
        .into_iter()
        // assets:limited-list lists only the ids the token names.
        .filter(|_| {
            !limited
                || matches!(
                    &p,
                    Principal::Token {
                        asset_ids: Some(_),
                        ..
                    }
                )
        })
        .filter(|a| p.sees(a.id))
        .filter(|a| want_status.is_empty() || want_status.iter().any(|x| x == a.status.as_str()))
        .filter(|a| want_type.is_empty() || want_type.contains(&a.type_))
        .filter(|a| {
            let hay = format!("{}\n{}\n{}", a.name, a.description, a.attribution).to_lowercase();
            words.iter().all(|w| hay.contains(w))
        })
        .collect();
    let key = |a: &AssetRow| -> (String, i64) {
        let k = match sort_by.as_str() {
            "NAME" => a.name.to_lowercase(),
            "DESCRIPTION" => a.description.to_lowercase(),
            "BYTES" => format!("{:020}", a.bytes),
            "TYPE" => a.type_.clone(),
            "STATUS" => a.status.as_str().into(),
            "DATE_ADDED" => a.date_added.clone(),
            _ => format!("{:020}", a.id),
        };
        (k, a.id)
    };
    let known = [
        "ID",
        "NAME",
        "DESCRIPTION",
        "BYTES",
        "TYPE",
        "STATUS",
        "DATE_ADDED",
    ];
    if !known.contains(&sort_by.as_str()) {
        return Err(ApiError::bad_request(format!(
            "sortBy: unknown value {sort_by}"
        )));
    }
    assets.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        let o = ka.0.cmp(&kb.0);
        let o = if desc { o.reverse() } else { o };
        o.then(ka.1.cmp(&kb.1))
    });
    let items: Vec<wire::Asset> = assets.iter().map(|a| to_wire(&s, a, false)).collect();
    Ok(page_response(&s, &uri, &headers, items, page, limit))
}

async fn get_asset(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Json<wire::Asset>> {
    let p = principal(&s, &uri, &headers)?;
    check_urls(&p, &headers)?;
    if !(p.has("assets:read") || p.has("assets:list")) {
        return Err(ApiError::forbidden(
            "this token lacks the assets:read scope",
        ));
    }
    let id = parse_id(&id, &uri)?;
    let a = visible(&s, &p, id, &uri)?;
    Ok(Json(to_wire(&s, &a, true)))
}

/// Parse a JSON body; empty bodies read as `{}`.
fn json_body(headers: &HeaderMap, body: &Bytes) -> ApiResult<Value> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(json!({}));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if !ct.contains("json") && !ct.starts_with("text/plain") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("expected a JSON body, got {ct}"),
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))
}

fn string_field(v: &Option<Value>, name: &str, required: bool) -> ApiResult<Option<String>> {
    match v {
        None | Some(Value::Null) if required => {
            Err(ApiError::bad_request(format!("{name} is required")))
        }
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("{name} must be a string"))),
    }
}

/// Which sourceTypes each type takes (the conversions this server runs or serves).
fn source_types(type_: &str) -> &'static [&'static str] {
    match type_ {
        "3DTILES" => &["CITYGML", "POINT_CLOUD", "3D_MODEL", "3D_CAPTURE"],
        "TERRAIN" => &["RASTER_TERRAIN"],
        "IMAGERY" => &["RASTER_IMAGERY"],
        "GLTF" => &["3D_MODEL", "GLTF"],
        "CZML" => &["CZML"],
        "KML" => &["KML"],
        "GEOJSON" => &["GEOJSON"],
        _ => &[],
    }
}

/// Normalise and check create options.
fn normalise_options(type_: &str, options: &Value) -> ApiResult<Value> {
    let Some(o) = options.as_object() else {
        return Err(ApiError::bad_request(
            "options must be an object with a sourceType",
        ));
    };
    let mut o = o.clone();
    let st = o
        .get(option::SOURCE_TYPE)
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase)
        .ok_or_else(|| ApiError::bad_request("options.sourceType is required"))?;
    if !source_types(type_).contains(&st.as_str()) {
        return Err(ApiError::bad_request(format!(
            "options.sourceType {st} cannot make a {type_} asset (allowed: {})",
            source_types(type_).join(", ")
        )));
    }
    o.insert(option::SOURCE_TYPE.into(), json!(st));
    if let Some(c) = o.get(option::INPUT_CRS) {
        let c = c
            .as_str()
            .ok_or_else(|| ApiError::bad_request("options.inputCrs must be a string"))?;
        tessera_model::CrsSpec::parse(c)
            .map_err(|e| ApiError::bad_request(format!("options.inputCrs: {e}")))?;
    }
    if let Some(pos) = o.get(option::POSITION) {
        if !pos.is_null() {
            let [lon, lat, h] = wire::position(pos).ok_or_else(|| ApiError::bad_request(
                "options.position must be [longitude, latitude, height] or {longitude, latitude, height}",
            ))?;
            tessera_model::check_placement(lon, lat, h)
                .map_err(|e| ApiError::bad_request(format!("options.position: {e}")))?;
        }
    }
    // ion's older spellings of geometryCompression, then its values (any case).
    if let Some(v) = o.remove("geometricCompression") {
        o.entry(option::GEOMETRY_COMPRESSION).or_insert(v);
    }
    if let Some(v) = o.remove("dracoCompression") {
        let b = v
            .as_bool()
            .ok_or_else(|| ApiError::bad_request("options.dracoCompression must be a boolean"))?;
        o.entry(option::GEOMETRY_COMPRESSION)
            .or_insert(json!(if b { "DRACO" } else { "NONE" }));
    }
    upper_case_choice(
        &mut o,
        option::GEOMETRY_COMPRESSION,
        &["NONE", "DRACO", "MESHOPT"],
    )?;
    upper_case_choice(&mut o, option::TILING, &["AUTO", "IMPLICIT", "EXPLICIT"])?;
    if let Some(a) = o.get(option::ATTRIBUTES) {
        let names = a.as_array().filter(|l| {
            l.len() <= 256 && l.iter().all(|n| n.as_str().is_some_and(|s| s.len() <= 64))
        });
        if names.is_none() {
            return Err(ApiError::bad_request(
                "options.attributes must be a list of attribute names, e.g. [\"rgb\", \"intensity\", \"Deviation\"]",
            ));
        }
    }
    if let Some(w) = o.get(option::WATER_MASK) {
        if !w.is_boolean() {
            return Err(ApiError::bad_request("options.waterMask must be a boolean"));
        }
    }
    if let Some(c) = o.get(option::CLAMP_TO_TERRAIN) {
        if !c.is_boolean() {
            return Err(ApiError::bad_request(
                "options.clampToTerrain must be a boolean",
            ));
        }
    }
    if let Some(b) = o.get(option::BASE_TERRAIN_ID) {
        if !b.is_null() && b.as_i64().is_none() {
            return Err(ApiError::bad_request(
                "options.baseTerrainId must be the id of a TERRAIN asset",
            ));
        }
    }
    if o.get(option::CLAMP_TO_TERRAIN).and_then(Value::as_bool) == Some(true)
        && o.get(option::BASE_TERRAIN_ID)
            .and_then(Value::as_i64)
            .is_none()
    {
        return Err(ApiError::bad_request(
            "options.clampToTerrain needs options.baseTerrainId: the id of a TERRAIN asset on this server",
        ));
    }
    Ok(Value::Object(o))
}

/// An option that is one of `allowed` in any case, stored upper case.
fn upper_case_choice(
    o: &mut serde_json::Map<String, Value>,
    key: &str,
    allowed: &[&str],
) -> ApiResult<()> {
    let Some(v) = o.get(key) else {
        return Ok(());
    };
    let c = v
        .as_str()
        .map(str::to_ascii_uppercase)
        .filter(|c| allowed.contains(&c.as_str()))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "options.{key} must be one of {}",
                allowed.join(", ")
            ))
        })?;
    o.insert(key.into(), json!(c));
    Ok(())
}

fn new_session(s: &AppState, id: i64) -> ApiResult<UploadSession> {
    let session = UploadSession {
        access_key: random_string(20, UPPER_DIGITS),
        secret: random_string(40, ALNUM),
        session_token: format!("tsr1.{id}.{}", random_string(24, ALNUM)),
        asset_id: id,
        expires_unix: unix_now() + s.config.upload_credential_ttl_s,
        closed: false,
    };
    s.store.insert_session(&session)?;
    Ok(session)
}

fn upload_location(
    s: &AppState,
    headers: &HeaderMap,
    session: &UploadSession,
) -> wire::UploadLocation {
    let exp = time::OffsetDateTime::from_unix_timestamp(session.expires_unix)
        .map(crate::util::rfc3339)
        .unwrap_or_default();
    wire::UploadLocation {
        endpoint: base_url(&s.config, headers),
        bucket: BUCKET.into(),
        prefix: format!("sources/{}/", session.asset_id),
        access_key: session.access_key.clone(),
        secret_access_key: session.secret.clone(),
        session_token: session.session_token.clone(),
        expiration: exp,
    }
}

async fn create_asset(
    State(s): St,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<wire::Created>> {
    require(&s, &uri, &headers, "assets:write")?;
    let v = json_body(&headers, &body)?;
    let c: wire::CreateAsset =
        serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if c.from.as_ref().is_some_and(|f| !f.is_null()) {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "importing from another bucket (from) is not implemented",
        ));
    }
    let name = string_field(&c.name, "name", true)?.unwrap_or_default();
    if name.trim().is_empty() || name.chars().count() > 256 {
        return Err(ApiError::bad_request("name must be 1 to 256 characters"));
    }
    let type_ = string_field(&c.type_, "type", true)?
        .unwrap_or_default()
        .to_ascii_uppercase();
    if !TYPES.contains(&type_.as_str()) {
        return Err(ApiError::bad_request(format!(
            "type: unknown value {type_}"
        )));
    }
    let options = c
        .options
        .ok_or_else(|| ApiError::bad_request("options is required"))?;
    let options = normalise_options(&type_, &options)?;
    let row = AssetRow {
        id: 0,
        type_: type_.clone(),
        name,
        description: string_field(&c.description, "description", false)?.unwrap_or_default(),
        attribution: string_field(&c.attribution, "attribution", false)?.unwrap_or_default(),
        bytes: 0,
        date_added: now_rfc3339(),
        status: Status::AwaitingFiles,
        percent: 0,
        options,
        stage: None,
        started_at: None,
        finished_at: None,
        tiles_written: 0,
        error: None,
        warnings: Vec::new(),
        entry: String::new(),
        attempts: 0,
    };
    let id = s.store.create_asset(&row)?;
    std::fs::create_dir_all(s.layout.sources(id)).map_err(ApiError::internal)?;
    let session = new_session(&s, id)?;
    let a = s
        .store
        .asset(id)?
        .ok_or_else(|| ApiError::internal("asset vanished"))?;
    let base = base_url(&s.config, &headers);
    Ok(Json(wire::Created {
        asset_metadata: to_wire(&s, &a, false),
        upload_location: upload_location(&s, &headers, &session),
        on_complete: wire::OnComplete {
            method: "POST",
            url: format!("{base}/v1/assets/{id}/uploadComplete"),
            fields: Map::new(),
        },
    }))
}

async fn patch_asset(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let (_, mut a) = asset_for(&s, &id, &uri, &headers, "assets:write")?;
    let v = json_body(&headers, &body)?;
    let patch: wire::PatchAsset =
        serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(n) = &patch.name {
        match n {
            Value::String(n) if !n.trim().is_empty() && n.chars().count() <= 256 => {
                a.name = n.clone()
            }
            _ => return Err(ApiError::bad_request("name must be 1 to 256 characters")),
        }
    }
    for (field, target) in [
        (&patch.description, &mut a.description),
        (&patch.attribution, &mut a.attribution),
    ] {
        match field {
            None => {}
            Some(Value::Null) => target.clear(),
            Some(Value::String(v)) => *target = v.clone(),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "description and attribution must be strings",
                ))
            }
        }
    }
    s.store.update_asset(&a)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_asset(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let (_, a) = asset_for(&s, &id, &uri, &headers, "assets:write")?;
    let id = a.id;
    crate::archives::remove_all(&s, id).await?;
    s.store.delete_asset(id)?;
    s.jobs.cancel(id);
    discard_multipart(&s.config.data_dir, id);
    let _ = tokio::fs::remove_dir_all(s.layout.sources(id)).await;
    let _ = tokio::fs::remove_dir_all(s.layout.output(id)).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn upload_complete(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let (_, mut a) = asset_for(&s, &id, &uri, &headers, "assets:write")?;
    let id = a.id;
    match a.status {
        Status::NotStarted | Status::InProgress => return Ok(StatusCode::NO_CONTENT),
        st if st.is_final() => {
            return Err(ApiError::conflict(format!(
                "asset {id} is {}; processing has ended",
                st.as_str()
            )))
        }
        _ => {}
    }
    let files = crate::util::list_files(&s.layout.sources(id));
    if files.is_empty() {
        return Err(ApiError::bad_request(format!(
            "No source files were uploaded under sources/{id}/"
        )));
    }
    s.store.close_sessions(id)?;
    discard_multipart(&s.config.data_dir, id);
    a.status = Status::NotStarted;
    a.stage = Some("QUEUED".into());
    a.bytes = crate::util::dir_size(&s.layout.sources(id));
    s.store.update_asset(&a)?;
    s.jobs.enqueue(id);
    Ok(StatusCode::NO_CONTENT)
}

/// Unfinished multipart uploads of an asset are dropped when its upload ends.
fn discard_multipart(data_dir: &std::path::Path, id: i64) {
    let prefix = format!("sources/{id}/");
    let Ok(entries) = std::fs::read_dir(data_dir.join("multipart")) else {
        return;
    };
    for e in entries.flatten() {
        let key = std::fs::read_to_string(e.path().join("key")).unwrap_or_default();
        if key.lines().nth(1).is_some_and(|k| k.starts_with(&prefix)) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

async fn new_upload_location(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Json<wire::NewUploadLocation>> {
    let (_, a) = asset_for(&s, &id, &uri, &headers, "assets:write")?;
    let id = a.id;
    if a.status != Status::AwaitingFiles {
        return Err(ApiError::conflict(format!(
            "asset {id} no longer accepts uploads"
        )));
    }
    let session = new_session(&s, id)?;
    Ok(Json(wire::NewUploadLocation {
        upload_location: upload_location(&s, &headers, &session),
    }))
}

/// Markdown attribution as escaped HTML.
fn attribution_html(md: &str) -> String {
    md.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn endpoint(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Json<wire::Endpoint>> {
    let (p, a) = asset_for(&s, &id, &uri, &headers, "assets:read")?;
    let id = a.id;
    if a.status != Status::Complete {
        let w = to_wire(&s, &a, false);
        return Err(ApiError::conflict(format!(
            "asset {id} is {} ({}% complete)",
            w.status, w.percent_complete
        )));
    }
    let src = p.token_id().unwrap_or("anonymous").to_string();
    let claims = auth::endpoint_claims(
        id,
        &a.type_,
        &src,
        unix_now(),
        s.config.endpoint_token_ttl_s,
    );
    let mut attributions = Vec::new();
    if !a.attribution.trim().is_empty() {
        attributions.push(wire::Attribution {
            html: format!("<span>{}</span>", attribution_html(&a.attribution)),
            collapsible: true,
        });
    }
    Ok(Json(wire::Endpoint {
        type_: a.type_.clone(),
        url: format!("{}/assets/{id}/{}", base_url(&s.config, &headers), a.entry),
        access_token: auth::jwt(&s.secret, &claims),
        attributions,
    }))
}

// ---------------------------------------------------------------- direct upload [ext]

async fn list_files(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Json<wire::Items<wire::FileEntry>>> {
    let (_, a) = asset_for(&s, &id, &uri, &headers, "assets:write")?;
    let id = a.id;
    let dir = s.layout.sources(id);
    let items = crate::util::list_files(&dir)
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            wire::FileEntry {
                path: f
                    .strip_prefix(&dir)
                    .unwrap_or(&f)
                    .to_string_lossy()
                    .replace('\\', "/"),
                bytes: meta.as_ref().map(|m| m.len()).unwrap_or(0),
                date_added: meta
                    .and_then(|m| m.modified().ok())
                    .map(|t| crate::util::rfc3339(time::OffsetDateTime::from(t))),
            }
        })
        .collect();
    Ok(Json(wire::Items { items }))
}

async fn post_files_refused() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        "multipart form upload is not available; PUT each file to /v1/assets/{id}/files/{path} or use the S3 uploadLocation",
    )
}

async fn put_file(
    State(s): St,
    UrlPath((id, path)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (_, a) = asset_for(&s, &id, &uri, &headers, "assets:write")?;
    let id = a.id;
    if a.status != Status::AwaitingFiles {
        return Err(ApiError::conflict(format!(
            "asset {id} is {}; files can only be added before uploadComplete",
            a.status.as_str()
        )));
    }
    let rel = safe_relative(&path).ok_or_else(|| {
        ApiError::bad_request(format!("{path}: not a relative path inside the upload"))
    })?;
    let dest = s.layout.sources(id).join(rel);
    let existed = dest.exists();
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(ApiError::internal)?;
    }
    let part = dest.with_file_name(format!(
        ".{}.upload-{}",
        dest.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        random_string(8, ALNUM)
    ));
    let mut file = tokio::fs::File::create(&part)
        .await
        .map_err(ApiError::internal)?;
    let mut stream = body.into_data_stream();
    let mut bytes = 0u64;
    let limit = s.config.max_upload_bytes;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(ApiError::bad_request(format!("upload interrupted: {e}")));
            }
        };
        bytes += chunk.len() as u64;
        if bytes > limit {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                format!("{path} is larger than the {limit}-byte limit"),
            ));
        }
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    file.flush().await.map_err(ApiError::internal)?;
    drop(file);
    tokio::fs::rename(&part, &dest)
        .await
        .map_err(ApiError::internal)?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let entry = wire::FileEntry {
        path: rel.to_string(),
        bytes,
        date_added: None,
    };
    Ok((status, Json(entry)).into_response())
}

async fn delete_file(
    State(s): St,
    UrlPath((id, path)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let (_, a) = asset_for(&s, &id, &uri, &headers, "assets:write")?;
    let id = a.id;
    if a.status != Status::AwaitingFiles {
        return Err(ApiError::conflict(format!(
            "asset {id} no longer accepts changes to its files"
        )));
    }
    let rel = safe_relative(&path).ok_or_else(|| ApiError::not_found(uri.path()))?;
    tokio::fs::remove_file(s.layout.sources(id).join(rel))
        .await
        .map_err(|_| ApiError::not_found(uri.path()))?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- analysis, graphics [ext]

async fn analysis(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Json<wire::Analysis>> {
    let (_, a) = asset_for(&s, &id, &uri, &headers, "assets:read")?;
    let id = a.id;
    let files = crate::util::list_files(&s.layout.sources(id));
    let source_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    // Reading upload headers is reader code: with worker processes it runs in one, so a
    // hostile header cannot take this process down.
    let est = match s.inspector.get() {
        Some(w) => {
            let (w, task) = (w.clone(), crate::jobs::Task::of(&a, &s.layout, w.budget()));
            tokio::task::spawn_blocking(move || w.analyse(&task))
                .await
                .map_err(ApiError::internal)?
                .unwrap_or_else(|why| {
                    let mut e = crate::tiles::estimate(&Value::Null, &files, source_bytes);
                    e.basis = format!("{}; the headers could not be read: {why}", e.basis);
                    e
                })
        }
        None => crate::tiles::estimate(&a.options, &files, source_bytes),
    };
    Ok(Json(wire::Analysis {
        asset_id: id,
        source_bytes,
        source_files: files.len() as u64,
        expected_tiles: est.tiles,
        expected_output_bytes: est.bytes,
        expected_seconds: est.seconds,
        basis: est.basis,
    }))
}

async fn graphics(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Json<wire::Graphics>> {
    let Json(e) = endpoint(State(s.clone()), UrlPath(id), uri, headers).await?;
    let type_ = match e.type_.as_str() {
        "3DTILES" => "3DTILES",
        "TERRAIN" => "QUANTIZED_MESH",
        "IMAGERY" => "TMS",
        other => other,
    };
    Ok(Json(wire::Graphics {
        graphics: vec![wire::GraphicsItem {
            type_: type_.into(),
            uri: e.url,
            authentication: wire::GraphicsAuth {
                type_: "Header",
                key: "Authorization",
                value: format!("Bearer {}", e.access_token),
            },
        }],
    }))
}

async fn exports_unsupported() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        "exports are not implemented",
    )
}

// ---------------------------------------------------------------- tokens

fn parse_scopes(v: &Value) -> ApiResult<Vec<String>> {
    let arr = v
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::bad_request("scopes must be a non-empty array"))?;
    let mut out = Vec::new();
    for s in arr {
        let s = s
            .as_str()
            .filter(|s| SCOPES.contains(s))
            .ok_or_else(|| ApiError::bad_request(format!("unknown scope {s}")))?;
        if !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

fn parse_ids(v: &Value) -> ApiResult<Option<Vec<i64>>> {
    match v {
        Value::Null => Ok(None),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| {
                x.as_i64()
                    .ok_or_else(|| ApiError::bad_request("assetIds must hold integers"))
            })
            .collect::<ApiResult<Vec<i64>>>()
            .map(Some),
        _ => Err(ApiError::bad_request(
            "assetIds must be null or a non-empty array",
        )),
    }
}

fn parse_urls(v: &Value) -> ApiResult<Option<Vec<String>>> {
    match v {
        Value::Null => Ok(None),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| {
                x.as_str()
                    .filter(|u| auth::normalize_url(u).is_some())
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::bad_request("allowedUrls must hold absolute URLs"))
            })
            .collect::<ApiResult<Vec<String>>>()
            .map(Some),
        _ => Err(ApiError::bad_request(
            "allowedUrls must be null or a non-empty array",
        )),
    }
}

fn no_escalation(p: &Principal, scopes: &[String]) -> ApiResult<()> {
    if let Some(s) = scopes.iter().find(|s| !p.has(s)) {
        return Err(ApiError::forbidden(format!(
            "a token cannot grant {s}, which the calling token lacks"
        )));
    }
    Ok(())
}

async fn list_tokens(State(s): St, uri: Uri, headers: HeaderMap) -> ApiResult<Response> {
    require(&s, &uri, &headers, "tokens:read")?;
    let q = query_pairs(&uri);
    let (page, limit) = paging(&q)?;
    let words: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "search")
        .flat_map(|(_, v)| {
            v.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut tokens: Vec<wire::Token> = s
        .store
        .tokens()?
        .into_iter()
        .filter(|t| words.iter().all(|w| t.name.to_lowercase().contains(w)))
        .collect();
    let by = q
        .iter()
        .rev()
        .find(|(k, _)| k == "sortBy")
        .map(|(_, v)| v.to_ascii_uppercase());
    match by.as_deref() {
        None => {}
        Some("NAME") => tokens.sort_by_key(|t| t.name.to_lowercase()),
        Some("LAST_USED") => tokens.sort_by(|a, b| a.date_last_used.cmp(&b.date_last_used)),
        Some(o) => return Err(ApiError::bad_request(format!("sortBy: unknown value {o}"))),
    }
    if q.iter()
        .any(|(k, v)| k == "sortOrder" && v.eq_ignore_ascii_case("desc"))
    {
        tokens.reverse();
    }
    Ok(page_response(&s, &uri, &headers, tokens, page, limit))
}

async fn create_token(
    State(s): St,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<wire::Token>> {
    let p = require(&s, &uri, &headers, "tokens:write")?;
    let v = json_body(&headers, &body)?;
    let b: wire::TokenBody =
        serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let name = string_field(&b.name, "name", false)?.unwrap_or_else(|| "Token".into());
    let scopes = parse_scopes(b.scopes.as_ref().unwrap_or(&Value::Null))?;
    no_escalation(&p, &scopes)?;
    let asset_ids = parse_ids(b.asset_ids.as_ref().unwrap_or(&Value::Null))?;
    let urls = b.allowed_urls.as_ref().or(b.new_allowed_urls.as_ref());
    let allowed_urls = parse_urls(urls.unwrap_or(&Value::Null))?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_rfc3339();
    let t = wire::Token {
        token: auth::jwt(&s.secret, &auth::api_claims(&id, unix_now())),
        id,
        name,
        date_added: now.clone(),
        date_modified: now,
        date_last_used: None,
        scopes,
        asset_ids,
        allowed_urls,
        is_default: false,
    };
    s.store.insert_token(&t)?;
    Ok(Json(t))
}

async fn default_token(State(s): St, uri: Uri, headers: HeaderMap) -> ApiResult<Json<wire::Token>> {
    require(&s, &uri, &headers, "tokens:read")?;
    s.store
        .tokens()?
        .into_iter()
        .find(|t| t.is_default)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(uri.path()))
}

async fn get_token(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Json<wire::Token>> {
    require(&s, &uri, &headers, "tokens:read")?;
    s.store
        .token(&id)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(uri.path()))
}

async fn patch_token(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let p = require(&s, &uri, &headers, "tokens:write")?;
    let mut t = s
        .store
        .token(&id)?
        .ok_or_else(|| ApiError::not_found(uri.path()))?;
    if t.is_default {
        return Err(ApiError::forbidden("the default token cannot be changed"));
    }
    let v = json_body(&headers, &body)?;
    let b: wire::TokenBody =
        serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(n) = string_field(&b.name, "name", false)? {
        t.name = n;
    }
    if let Some(sc) = &b.scopes {
        let scopes = parse_scopes(sc)?;
        no_escalation(&p, &scopes)?;
        t.scopes = scopes;
    }
    if let Some(ids) = &b.asset_ids {
        t.asset_ids = parse_ids(ids)?;
    }
    if let Some(urls) = b.allowed_urls.as_ref().or(b.new_allowed_urls.as_ref()) {
        t.allowed_urls = parse_urls(urls)?;
    }
    t.date_modified = now_rfc3339();
    s.store.update_token(&t)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_token(
    State(s): St,
    UrlPath(id): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    require(&s, &uri, &headers, "tokens:write")?;
    let t = s
        .store
        .token(&id)?
        .ok_or_else(|| ApiError::not_found(uri.path()))?;
    if t.is_default {
        return Err(ApiError::forbidden("the default token cannot be deleted"));
    }
    s.store.delete_token(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_compression_is_normalised() {
        let o = |v: Value| normalise_options("3DTILES", &v);
        let got =
            o(json!({"sourceType": "POINT_CLOUD", "geometryCompression": "meshopt"})).unwrap();
        assert_eq!(got["geometryCompression"], "MESHOPT");
        let got = o(json!({"sourceType": "POINT_CLOUD", "dracoCompression": false})).unwrap();
        assert_eq!(got["geometryCompression"], "NONE");
        assert!(got.get("dracoCompression").is_none());
        let got = o(json!({"sourceType": "POINT_CLOUD", "geometricCompression": "Draco"})).unwrap();
        assert_eq!(got["geometryCompression"], "DRACO");
        assert!(o(json!({"sourceType": "POINT_CLOUD", "geometryCompression": "zstd"})).is_err());
        assert!(o(json!({"sourceType": "POINT_CLOUD", "geometryCompression": 3})).is_err());
        assert!(
            o(json!({"sourceType": "POINT_CLOUD", "attributes": ["rgb", "Deviation"]})).is_ok()
        );
        assert!(o(json!({"sourceType": "POINT_CLOUD", "attributes": "rgb"})).is_err());
        assert!(o(json!({"sourceType": "POINT_CLOUD", "attributes": [3]})).is_err());
        let got = o(json!({"sourceType": "POINT_CLOUD", "tiling": "implicit"})).unwrap();
        assert_eq!(got["tiling"], "IMPLICIT");
        assert!(o(json!({"sourceType": "POINT_CLOUD", "tiling": "octree"})).is_err());
    }
}
