//! tessera-server: a local, Cesium-ion-shaped REST API over the conversion pipeline.
//!
//! In: a [`Config`] (data folder, auth mode, public URL) and a [`jobs::JobRunner`].
//! Out: an axum [`Router`] serving `/appData`, `/v1/…`, `/v2/tokens`, tiles under
//! `/assets/{id}/…`, the S3-compatible upload endpoint under `/{bucket}/…`, and the
//! dashboard at `/` (CesiumJS under `/cesium/…`).
//! Must not know: terminals. It reads the pipeline's progress snapshots; it never drives
//! the pipeline's loop. Only `wire.rs` knows ion's JSON field names.

mod api;
mod archives;
pub mod auth;
pub mod jobs;
mod native;
mod s3;
pub mod store;
mod tiles;
mod unzip;
pub mod util;
pub mod web;
pub mod wire;
pub mod worker;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use jobs::{Executor, Jobs, Layout};
use std::path::PathBuf;
use std::sync::Arc;
use store::Store;

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every request acts as the local account with all scopes (loopback default).
    Disabled,
    /// API routes need a token; tiles need an endpoint token or `assets:read`.
    Token,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub auth: AuthMode,
    /// Base URL clients reach the server at (no trailing slash); `None`: from `Host`.
    pub public_url: Option<String>,
    /// Accepted as an admin token (automation, tests).
    pub admin_token: Option<String>,
    pub endpoint_token_ttl_s: i64,
    pub upload_credential_ttl_s: i64,
    /// Largest single request body on JSON routes and direct uploads.
    pub max_upload_bytes: u64,
    /// CesiumJS's `Build/Cesium` folder, served under `/cesium/` for the dashboard.
    pub cesium_dir: Option<PathBuf>,
}

impl Config {
    pub fn new(data_dir: PathBuf, auth: AuthMode) -> Config {
        Config {
            data_dir,
            auth,
            public_url: None,
            admin_token: None,
            endpoint_token_ttl_s: 3600,
            upload_credential_ttl_s: 3600,
            max_upload_bytes: 64 << 30,
            cesium_dir: None,
        }
    }
}

pub const BUCKET: &str = "tessera_uploads";

/// Everything a handler needs.
pub struct AppState {
    pub config: Config,
    pub store: Arc<Store>,
    pub jobs: Arc<Jobs>,
    pub layout: Layout,
    pub secret: Vec<u8>,
    /// Id of the admin token created at first start (and of `TESSERA_ADMIN_TOKEN`).
    pub admin_token_id: String,
    /// Extensions each served terrain asset's layer.json lists.
    pub layer_extensions: std::sync::Mutex<std::collections::HashMap<i64, Arc<Vec<String>>>>,
    /// How uploads are inspected for `…/analysis`: in a worker process when jobs run in
    /// them (set by [`start_worker`]).
    pub inspector: std::sync::OnceLock<worker::WorkerProcess>,
}

/// An API error: ion's `{"code", "message"}` with its HTTP status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", m)
    }
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidCredentials",
            "Invalid access token",
        )
    }
    pub fn forbidden(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "Forbidden", m)
    }
    pub fn not_found(path: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFound", path)
    }
    pub fn conflict(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "Conflict", m)
    }
    pub fn internal(m: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            format!("internal error: {m}"),
        )
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&wire::ErrorBody {
            code: self.code,
            message: &self.message,
        })
        .unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        (self.status, headers, body).into_response()
    }
}

/// Open (or create) the state in `config.data_dir`: the database, the server secret,
/// the default and admin tokens (the admin token is returned when it was just created,
/// so the caller can show it once), and re-queue jobs a previous process left running.
pub fn open_state(config: Config) -> Result<(Arc<AppState>, Option<String>), String> {
    for d in ["sources", "assets", "work", "archives"] {
        std::fs::create_dir_all(config.data_dir.join(d))
            .map_err(|e| format!("{}: {e}", config.data_dir.join(d).display()))?;
    }
    let store = Arc::new(Store::open(&config.data_dir).map_err(|e| e.to_string())?);
    let secret = match store.meta("secret").map_err(|e| e.to_string())? {
        Some(s) => s,
        None => {
            let s = util::random_string(64, util::ALNUM);
            store.set_meta("secret", &s).map_err(|e| e.to_string())?;
            s
        }
    };
    let secret = secret.into_bytes();
    let (admin_token_id, new_admin) = api::bootstrap_tokens(&store, &secret, &config)?;
    let layout = Layout {
        data_dir: config.data_dir.clone(),
    };
    let jobs = Arc::new(Jobs::default());
    // Jobs that were running when the last process ended start again from scratch.
    let assets = store.assets().map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(config.data_dir.join("work"));
    let _ = std::fs::create_dir_all(config.data_dir.join("work"));
    for mut a in assets {
        if a.status == store::Status::InProgress && a.attempts >= jobs::MAX_ATTEMPTS {
            // Killed under it twice already: a third start would likely kill it again.
            a.status = store::Status::Error;
            a.error = Some(jobs::interrupted_error());
            a.finished_at = Some(util::now_rfc3339());
            store.update_asset(&a).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_dir_all(layout.output(a.id));
            continue;
        }
        if matches!(
            a.status,
            store::Status::InProgress | store::Status::NotStarted
        ) {
            if a.status == store::Status::InProgress {
                a.status = store::Status::NotStarted;
                a.percent = 0;
                a.stage = Some("QUEUED".into());
                a.started_at = None;
                store.update_asset(&a).map_err(|e| e.to_string())?;
                let _ = std::fs::remove_dir_all(layout.output(a.id));
            }
            jobs.enqueue(a.id);
        }
    }
    clean_staging(&config.data_dir.join("assets"), None);
    // Uploads cut off when the last process died are not files of their asset.
    for f in util::list_partial_uploads(&config.data_dir.join("sources")) {
        let _ = std::fs::remove_file(f);
    }
    Ok((
        Arc::new(AppState {
            config,
            store,
            jobs,
            layout,
            secret,
            admin_token_id,
            layer_extensions: Default::default(),
            inspector: Default::default(),
        }),
        new_admin,
    ))
}

/// Remove half-written outputs (the pipeline stages next to the destination): all of
/// them, or those of asset `only`.
pub(crate) fn clean_staging(dir: &std::path::Path, only: Option<i64>) {
    let prefix = only.map(|id| format!(".{id}.partial-"));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = match &prefix {
                Some(p) => name.starts_with(p.as_str()),
                None => name.starts_with('.') && name.contains(".partial-"),
            };
            if ours {
                let _ = std::fs::remove_dir_all(e.path());
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Start the job worker thread; it stops after `state.jobs.shutdown()`. Jobs run as
/// `executor` says: in worker processes ([`worker::WorkerProcess`]) or, for tests, on a
/// [`jobs::JobRunner`] in this process.
pub fn start_worker(
    state: &Arc<AppState>,
    executor: impl Into<Executor>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let executor = executor.into();
    if let Executor::Isolated(w) = &executor {
        let _ = state.inspector.set(w.clone());
    }
    let (store, jobs, layout) = (
        state.store.clone(),
        state.jobs.clone(),
        state.layout.clone(),
    );
    std::thread::Builder::new()
        .name("tessera-jobs".into())
        .spawn(move || jobs::worker(store, jobs, executor, layout))
}

/// The whole HTTP surface.
pub fn router(state: Arc<AppState>) -> Router {
    api::router(state)
}
