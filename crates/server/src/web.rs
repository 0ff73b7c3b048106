//! The dashboard (a static single-page app compiled into the binary) at `/`, and CesiumJS
//! from a local npm install under `/cesium/…` so the viewer works without a network.

use crate::tiles::{content_type, file_response};
use crate::util::safe_relative;
use crate::{ApiError, AppState};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const APP_CSS: &str = include_str!("../web/app.css");

/// Where CesiumJS's `Build/Cesium` folder is looked for when none is configured: under
/// the working directory, then under each folder above the executable (a checkout's
/// `node_modules` when the binary is `target/release/tessera`).
pub fn find_cesium_dir(cwd: &Path, exe: Option<&Path>) -> Option<PathBuf> {
    let rel = Path::new("node_modules/cesium/Build/Cesium");
    let mut bases = vec![cwd.to_path_buf()];
    if let Some(exe) = exe {
        bases.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    bases
        .into_iter()
        .map(|b| b.join(rel))
        .find(|d| d.join("Cesium.js").is_file())
}

fn text(body: &'static str, mime: &'static str) -> Response {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    (StatusCode::OK, h, body).into_response()
}

pub async fn index() -> Response {
    text(INDEX_HTML, "text/html; charset=utf-8")
}

pub async fn app_js() -> Response {
    text(APP_JS, "text/javascript; charset=utf-8")
}

pub async fn app_css() -> Response {
    text(APP_CSS, "text/css; charset=utf-8")
}

/// A file of the CesiumJS build; 404 with a hint when none is installed.
pub async fn cesium(
    State(s): State<Arc<AppState>>,
    UrlPath(path): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(root) = &s.config.cesium_dir else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "CesiumJS is not installed: run `npm ci` in the Tessera checkout (scripts/demo does) or start the server with --cesium-dir pointing at node_modules/cesium/Build/Cesium",
        ));
    };
    let rel = safe_relative(&path).ok_or_else(|| ApiError::not_found(uri.path()))?;
    let file = root.join(rel);
    let mime = content_type(&file, "");
    npm_file(&file, &mime, &uri, &headers).await
}

/// A file of an npm package: its type, and a day's caching (the packages are versioned
/// by the lockfile).
async fn npm_file(
    file: &Path,
    mime: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let meta = match tokio::fs::metadata(file).await {
        Ok(m) if m.is_file() => m,
        _ => return Err(ApiError::not_found(uri.path())),
    };
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    file_response(file, meta.len(), headers, h).await
}

/// meshoptimizer's decoder module (installed with CesiumJS, which depends on it), for the
/// dashboard's point picking in meshopt-compressed tiles.
pub async fn meshopt_decoder(
    State(s): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file = s
        .config
        .cesium_dir
        .as_deref()
        .and_then(meshopt_decoder_file)
        .ok_or_else(|| ApiError::not_found(uri.path()))?;
    npm_file(&file, "text/javascript; charset=utf-8", &uri, &headers).await
}

/// `meshopt_decoder.mjs` of the meshoptimizer package beside (or inside) the CesiumJS
/// package whose `Build/Cesium` folder is `cesium_dir`.
fn meshopt_decoder_file(cesium_dir: &Path) -> Option<PathBuf> {
    let cesium_pkg = cesium_dir.parent()?.parent()?;
    let modules = cesium_pkg.parent()?;
    [
        modules.join("meshoptimizer"),
        cesium_pkg.join("node_modules/meshoptimizer"),
        modules.join("@cesium/engine/node_modules/meshoptimizer"),
    ]
    .into_iter()
    .map(|d| d.join("meshopt_decoder.mjs"))
    .find(|f| f.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cesium_is_found_above_the_executable() {
        let d = tempfile::tempdir().unwrap();
        let build = d.path().join("node_modules/cesium/Build/Cesium");
        std::fs::create_dir_all(&build).unwrap();
        std::fs::write(build.join("Cesium.js"), "//").unwrap();
        let exe = d.path().join("target/release/tessera");
        let elsewhere = tempfile::tempdir().unwrap();
        assert_eq!(
            find_cesium_dir(elsewhere.path(), Some(&exe)),
            Some(build.clone())
        );
        assert_eq!(find_cesium_dir(d.path(), None), Some(build));
        assert_eq!(find_cesium_dir(elsewhere.path(), None), None);
    }
}
