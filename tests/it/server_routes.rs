//! The ion-style server: routes through tower `oneshot` with a scripted job runner, the
//! auth matrix, restart and deletion, and the upload tutorial's flow over a real socket
//! with the AWS SDK for Rust and the real pipeline.

use crate::helpers::samples;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tessera_model::Stage;
use tessera_pipeline::{JobReport, JobSpec, PipelineError, Progress};
use tessera_server::jobs::{JobRunner, PipelineRunner};
use tessera_server::{AppState, AuthMode, Config};
use tower::ServiceExt;

const ADMIN: &str = "test-admin-token";

/// Steps progress through the tile stage, then writes a one-tile tileset.
struct Scripted {
    steps: u64,
    step: Duration,
}

impl JobRunner for Scripted {
    fn run(&self, spec: &JobSpec, progress: &Progress) -> Result<JobReport, PipelineError> {
        progress.enter(Stage::Read);
        for i in 0..self.steps {
            std::thread::sleep(self.step);
            progress.check()?;
            progress.raise(Stage::Tile, i + 1, self.steps);
        }
        std::fs::create_dir_all(&spec.output).unwrap();
        std::fs::write(
            spec.output.join("tileset.json"),
            br#"{"asset":{"version":"1.1"},"geometricError":1,"root":{"boundingVolume":{"sphere":[0,0,0,1]},"geometricError":0,"refine":"ADD"}}"#,
        )
        .unwrap();
        progress.finish();
        Ok(JobReport {
            tiles: 1,
            ..Default::default()
        })
    }
}

struct Srv {
    app: Router,
    state: Arc<AppState>,
    dir: Option<tempfile::TempDir>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Srv {
    /// Stop the worker (as on SIGTERM) and keep the data folder.
    fn stop(mut self) -> tempfile::TempDir {
        self.state.jobs.shutdown();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        self.dir.take().unwrap()
    }
}

impl Drop for Srv {
    fn drop(&mut self) {
        self.state.jobs.shutdown();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

fn server_in(
    dir: tempfile::TempDir,
    auth: AuthMode,
    runner: Arc<dyn JobRunner>,
    tweak: impl FnOnce(&mut Config),
) -> Srv {
    let mut config = Config::new(dir.path().to_path_buf(), auth);
    config.admin_token = Some(ADMIN.into());
    tweak(&mut config);
    let (state, _) = tessera_server::open_state(config).unwrap();
    let worker = tessera_server::start_worker(&state, runner).unwrap();
    Srv {
        app: tessera_server::router(state.clone()),
        state,
        dir: Some(dir),
        worker: Some(worker),
    }
}

fn server(auth: AuthMode, runner: Arc<dyn JobRunner>) -> Srv {
    server_in(tempfile::tempdir().unwrap(), auth, runner, |_| {})
}

fn scripted() -> Arc<dyn JobRunner> {
    Arc::new(Scripted {
        steps: 20,
        step: Duration::from_millis(15),
    })
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Resp {
    let mut b = Request::builder().method(method).uri(uri);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        b = b.header("host", "tessera.test");
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(b.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

async fn create(app: &Router, token: Option<&str>, name: &str, type_: &str, source: &str) -> Resp {
    let auth = token.map(bearer);
    let mut h = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        h.push(("authorization", a));
    }
    let body = json!({"name": name, "type": type_, "options": {"sourceType": source}});
    call(
        app,
        Method::POST,
        "/v1/assets",
        &h,
        body.to_string().into_bytes(),
    )
    .await
}

/// Poll until the asset reaches an end state; percentComplete must never decrease and
/// reaches 100 only with COMPLETE.
async fn wait(app: &Router, id: i64, token: Option<&str>) -> Value {
    let auth = token.map(bearer);
    let h: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let mut last = 0;
    for _ in 0..1200 {
        let a = call(app, Method::GET, &format!("/v1/assets/{id}"), &h, vec![])
            .await
            .json();
        let p = a["percentComplete"].as_u64().unwrap();
        assert!(p >= last, "percentComplete went from {last} to {p}");
        last = p;
        let status = a["status"].as_str().unwrap();
        assert!(p < 100 || status == "COMPLETE", "100% while {status}");
        if ["COMPLETE", "DATA_ERROR", "ERROR"].contains(&status) {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("asset {id} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_upload_flow_serves_tiles() {
    let s = server(AuthMode::Disabled, scripted());
    let app = &s.app;
    let info = call(app, Method::GET, "/appData", &[], vec![]).await.json();
    assert_eq!(info["applicationMode"], "single-user");
    let c = create(app, None, "Cloud", "3DTILES", "POINT_CLOUD").await;
    assert_eq!(c.status, StatusCode::OK);
    let c = c.json();
    let id = c["assetMetadata"]["id"].as_i64().unwrap();
    assert_eq!(id, 1000);
    assert_eq!(c["assetMetadata"]["status"], "AWAITING_FILES");
    assert_eq!(c["uploadLocation"]["bucket"], "tessera_uploads");
    assert_eq!(c["uploadLocation"]["prefix"], "sources/1000/");
    assert_eq!(c["uploadLocation"]["endpoint"], "http://tessera.test");
    assert_eq!(
        c["onComplete"]["url"],
        "http://tessera.test/v1/assets/1000/uploadComplete"
    );
    // Nothing uploaded yet.
    let r = call(
        app,
        Method::POST,
        "/v1/assets/1000/uploadComplete",
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("sources/1000/"));
    // Paths must stay inside the upload.
    let r = call(
        app,
        Method::PUT,
        "/v1/assets/1000/files/a/..%2F..%2Fx.laz",
        &[],
        b"x".to_vec(),
    )
    .await;
    assert_ne!(r.status, StatusCode::CREATED);
    let r = call(
        app,
        Method::PUT,
        "/v1/assets/1000/files/dir/cloud.laz",
        &[],
        vec![7; 1000],
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json(), json!({"path": "dir/cloud.laz", "bytes": 1000}));
    let files = call(app, Method::GET, "/v1/assets/1000/files", &[], vec![])
        .await
        .json();
    assert_eq!(files["items"][0]["path"], "dir/cloud.laz");
    // Endpoint before completion → 409.
    assert_eq!(
        call(app, Method::GET, "/v1/assets/1000/endpoint", &[], vec![])
            .await
            .status,
        StatusCode::CONFLICT
    );
    let r = call(
        app,
        Method::POST,
        "/v1/assets/1000/uploadComplete",
        &[("content-type", "application/json")],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // An idempotent retry while it runs.
    assert_eq!(
        call(
            app,
            Method::POST,
            "/v1/assets/1000/uploadComplete",
            &[],
            vec![]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let a = wait(app, id, None).await;
    assert_eq!(a["status"], "COMPLETE", "{a}");
    assert_eq!(a["percentComplete"], 100);
    assert_eq!(a["processing"]["stage"], "DONE");
    // Finished: no more uploads or completes.
    assert_eq!(
        call(
            app,
            Method::POST,
            "/v1/assets/1000/uploadComplete",
            &[],
            vec![]
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        call(
            app,
            Method::PUT,
            "/v1/assets/1000/files/late.laz",
            &[],
            vec![1]
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    let e = call(app, Method::GET, "/v1/assets/1000/endpoint", &[], vec![])
        .await
        .json();
    assert_eq!(e["type"], "3DTILES");
    assert_eq!(e["url"], "http://tessera.test/assets/1000/tileset.json");
    assert!(e["accessToken"].as_str().unwrap().split('.').count() == 3);
    assert_eq!(e["attributions"], json!([]));
    // Tiles, with revalidation.
    let t = call(app, Method::GET, "/assets/1000/tileset.json", &[], vec![]).await;
    assert_eq!(t.status, StatusCode::OK);
    assert_eq!(t.headers["content-type"], "application/json");
    assert_eq!(t.headers["access-control-allow-origin"], "*");
    let etag = t.headers["etag"].to_str().unwrap().to_string();
    let t2 = call(
        app,
        Method::GET,
        "/assets/1000/tileset.json",
        &[("if-none-match", &etag)],
        vec![],
    )
    .await;
    assert_eq!(t2.status, StatusCode::NOT_MODIFIED);
    for bad in [
        "/assets/1000/../1000/tileset.json",
        "/assets/1000/%2e%2e/x",
        "/assets/1000/missing.glb",
        "/assets/1001/tileset.json",
    ] {
        let r = call(app, Method::GET, bad, &[], vec![]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(r.json()["code"], "ResourceNotFound");
    }
    // Preflight without credentials.
    let p = call(
        app,
        Method::OPTIONS,
        "/v1/assets/1000/endpoint",
        &[
            (
                "access-control-request-headers",
                "x-cesium-client,x-cesium-client-version",
            ),
            ("origin", "http://localhost:5173"),
        ],
        vec![],
    )
    .await;
    assert_eq!(p.status, StatusCode::NO_CONTENT);
    assert_eq!(
        p.headers["access-control-allow-headers"],
        "x-cesium-client,x-cesium-client-version"
    );
    // [ext] graphics and analysis.
    let g = call(app, Method::GET, "/v1/assets/1000/graphics", &[], vec![])
        .await
        .json();
    assert_eq!(g["graphics"][0]["type"], "3DTILES");
    assert_eq!(g["graphics"][0]["authentication"]["key"], "Authorization");
    assert!(g["graphics"][0]["authentication"]["value"]
        .as_str()
        .unwrap()
        .starts_with("Bearer "));
    let an = call(app, Method::POST, "/v1/assets/1000/analysis", &[], vec![])
        .await
        .json();
    assert_eq!(an["sourceBytes"], 1000);
    // Archives: a zip of the served tree, downloadable in ranges; a .3tz for 3D Tiles.
    assert_eq!(a["archivable"], true);
    for format in ["ZIP", "3TZ"] {
        let r = call(
            app,
            Method::POST,
            "/v1/assets/1000/archives",
            &[("content-type", "application/json")],
            json!({"format": format}).to_string().into_bytes(),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        let aid = r.json()["id"].as_i64().unwrap();
        assert_eq!(r.json()["status"], "NOT_STARTED");
        let mut done = Value::Null;
        for _ in 0..200 {
            done = call(
                app,
                Method::GET,
                &format!("/v1/assets/1000/archives/{aid}"),
                &[],
                vec![],
            )
            .await
            .json();
            if done["status"] == "COMPLETE" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(done["status"], "COMPLETE");
        let dl = call(
            app,
            Method::GET,
            &format!("/v1/assets/1000/archives/{aid}/download"),
            &[],
            vec![],
        )
        .await;
        assert_eq!(dl.status, StatusCode::OK);
        assert_eq!(
            dl.body.len() as u64,
            done["bytesArchived"].as_u64().unwrap()
        );
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(dl.body.clone())).unwrap();
        assert!(z.by_name("tileset.json").is_ok());
        if format == "3TZ" {
            assert!(z.by_name("@3dtilesIndex1@").is_ok());
        }
        let part = call(
            app,
            Method::GET,
            &format!("/v1/assets/1000/archives/{aid}/download"),
            &[("range", "bytes=0-9")],
            vec![],
        )
        .await;
        assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(part.body, dl.body[..10]);
    }
    assert_eq!(
        call(app, Method::GET, "/v1/assets/1000/archives", &[], vec![])
            .await
            .json()["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let bad = call(
        app,
        Method::POST,
        "/v1/assets/1000/archives",
        &[],
        br#"{"format":"TAR"}"#.to_vec(),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Patch, then delete.
    let r = call(
        app,
        Method::PATCH,
        "/v1/assets/1000",
        &[("content-type", "application/json")],
        br#"{"name":"Renamed","attribution":null}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(app, Method::GET, "/v1/assets/1000", &[], vec![])
            .await
            .json()["name"],
        "Renamed"
    );
    let r = call(
        app,
        Method::PATCH,
        "/v1/assets/1000",
        &[("content-type", "application/json")],
        br#"{"name":""}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        call(app, Method::DELETE, "/v1/assets/1000", &[], vec![])
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(app, Method::GET, "/v1/assets/1000", &[], vec![])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(app, Method::GET, "/assets/1000/tileset.json", &[], vec![])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(!s.state.layout.output(1000).exists() && !s.state.layout.sources(1000).exists());
    // Ids are never reused.
    let c = create(app, None, "Next", "3DTILES", "POINT_CLOUD")
        .await
        .json();
    assert_eq!(c["assetMetadata"]["id"], 1001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_validation_paging_and_sorting() {
    let s = server(AuthMode::Disabled, scripted());
    let app = &s.app;
    let h = [("content-type", "application/json")];
    for (body, status) in [
        (
            json!({"type": "3DTILES", "options": {"sourceType": "POINT_CLOUD"}}),
            400,
        ),
        (
            json!({"name": "x", "type": "3DTILES", "options": {"sourceType": "RASTER_TERRAIN"}}),
            400,
        ),
        (
            json!({"name": "x", "type": "NOPE", "options": {"sourceType": "POINT_CLOUD"}}),
            400,
        ),
        (json!({"name": "x", "type": "3DTILES"}), 400),
        (
            json!({"name": "x", "type": "3DTILES", "options": {"sourceType": "POINT_CLOUD", "inputCrs": "EPSG:banana"}}),
            400,
        ),
        (
            json!({"name": "x", "type": "3DTILES", "options": {"sourceType": "3D_MODEL", "position": [1, 2]}}),
            400,
        ),
        (
            json!({"name": "x", "type": "3DTILES", "options": {"sourceType": "CITYGML", "clampToTerrain": true}}),
            400,
        ),
        (
            json!({"name": "x", "type": "3DTILES", "options": {"sourceType": "CITYGML", "clampToTerrain": "yes", "baseTerrainId": 1}}),
            400,
        ),
        (
            json!({"name": "x", "type": "3DTILES", "options": {"sourceType": "POINT_CLOUD"}, "from": {"type": "S3"}}),
            501,
        ),
    ] {
        let r = call(
            app,
            Method::POST,
            "/v1/assets",
            &h,
            body.to_string().into_bytes(),
        )
        .await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(r.json()["code"].is_string() && r.json()["message"].is_string());
    }
    let r = call(
        app,
        Method::POST,
        "/v1/assets",
        &[("content-type", "text/xml")],
        b"<a/>".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = call(app, Method::POST, "/v1/assets", &h, b"{nope".to_vec()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for name in ["delta", "alpha", "echo", "charlie", "bravo"] {
        assert_eq!(
            create(app, None, name, "3DTILES", "POINT_CLOUD")
                .await
                .status,
            StatusCode::OK
        );
    }
    // Follow next links through pages of two.
    let mut seen = Vec::new();
    let mut url = "/v1/assets?limit=2".to_string();
    loop {
        let r = call(app, Method::GET, &url, &[], vec![]).await;
        assert_eq!(r.status, StatusCode::OK);
        for a in r.json()["items"].as_array().unwrap() {
            seen.push(a["id"].as_i64().unwrap());
            assert!(
                a.get("options").is_none(),
                "list items carry only ion's fields"
            );
        }
        let link = r
            .headers
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        match link.and_then(|l| {
            l.split(", ")
                .find(|p| p.ends_with("rel=\"next\""))
                .map(str::to_string)
        }) {
            Some(next) => {
                let u = next.trim_start_matches('<').split('>').next().unwrap();
                url = u.trim_start_matches("http://tessera.test").to_string();
            }
            None => break,
        }
    }
    assert_eq!(seen, vec![1000, 1001, 1002, 1003, 1004]);
    let names: Vec<String> = call(
        app,
        Method::GET,
        "/v1/assets?sortBy=NAME&sortOrder=DESC",
        &[],
        vec![],
    )
    .await
    .json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["echo", "delta", "charlie", "bravo", "alpha"]);
    let r = call(
        app,
        Method::GET,
        "/v1/assets?status=COMPLETE&status=error",
        &[],
        vec![],
    )
    .await
    .json();
    assert_eq!(r["items"], json!([]));
    let r = call(
        app,
        Method::GET,
        "/v1/assets?status=AWAITING_FILES,COMPLETE&search=ALP",
        &[],
        vec![],
    )
    .await
    .json();
    assert_eq!(r["items"].as_array().unwrap().len(), 1);
    for bad in [
        "/v1/assets?limit=0",
        "/v1/assets?limit=1001",
        "/v1/assets?page=x",
        "/v1/assets?status=DONE",
        "/v1/assets?sortBy=COLOR",
    ] {
        assert_eq!(
            call(app, Method::GET, bad, &[], vec![]).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(
        call(app, Method::GET, "/v1/assets?page=9", &[], vec![])
            .await
            .json()["items"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix_scopes_asset_ids_and_allowed_urls() {
    let s = server(AuthMode::Token, scripted());
    let app = &s.app;
    let admin = bearer(ADMIN);
    let ah = [
        ("authorization", admin.as_str()),
        ("content-type", "application/json"),
    ];
    assert_eq!(
        call(app, Method::GET, "/appData", &[], vec![]).await.json()["applicationMode"],
        "cesium-ion"
    );
    // Two assets, one completed.
    let a = create(app, Some(ADMIN), "A", "3DTILES", "POINT_CLOUD")
        .await
        .json()["assetMetadata"]["id"]
        .as_i64()
        .unwrap();
    let b = create(app, Some(ADMIN), "B", "3DTILES", "POINT_CLOUD")
        .await
        .json()["assetMetadata"]["id"]
        .as_i64()
        .unwrap();
    call(
        app,
        Method::PUT,
        &format!("/v1/assets/{a}/files/x.laz"),
        &ah,
        vec![1],
    )
    .await;
    call(
        app,
        Method::POST,
        &format!("/v1/assets/{a}/uploadComplete"),
        &ah,
        vec![],
    )
    .await;
    assert_eq!(wait(app, a, Some(ADMIN)).await["status"], "COMPLETE");
    // One token per scope.
    let mut tokens = std::collections::HashMap::new();
    for scope in tessera_server::auth::SCOPES {
        let r = call(
            app,
            Method::POST,
            "/v2/tokens",
            &ah,
            json!({"name": scope, "scopes": [scope]})
                .to_string()
                .into_bytes(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        tokens.insert(*scope, r.json()["token"].as_str().unwrap().to_string());
    }
    let default = call(app, Method::GET, "/v2/tokens/default", &ah, vec![])
        .await
        .json();
    assert_eq!(default["scopes"], json!(["assets:read", "geocode"]));
    // (method, path, body, scope that grants it)
    let routes: Vec<(Method, String, &str, &[&str])> = vec![
        (
            Method::GET,
            "/v1/assets".into(),
            "",
            &["assets:list", "assets:limited-list"],
        ),
        (
            Method::GET,
            format!("/v1/assets/{a}"),
            "",
            &["assets:read", "assets:list"],
        ),
        (
            Method::GET,
            format!("/v1/assets/{a}/endpoint"),
            "",
            &["assets:read"],
        ),
        (
            Method::POST,
            "/v1/assets".into(),
            r#"{"name":"n","type":"3DTILES","options":{"sourceType":"POINT_CLOUD"}}"#,
            &["assets:write"],
        ),
        (
            Method::PATCH,
            format!("/v1/assets/{b}"),
            r#"{"description":"d"}"#,
            &["assets:write"],
        ),
        (
            Method::GET,
            format!("/v1/assets/{b}/files"),
            "",
            &["assets:write"],
        ),
        (Method::GET, "/v2/tokens".into(), "", &["tokens:read"]),
        (
            Method::GET,
            "/v1/tokens/default".into(),
            "",
            &["tokens:read"],
        ),
        (
            Method::POST,
            "/v2/tokens".into(),
            r#"{"name":"t","scopes":["tokens:write"]}"#,
            &["tokens:write"],
        ),
        (
            Method::GET,
            "/v1/geocode/search?text=x".into(),
            "",
            &["geocode"],
        ),
        (
            Method::GET,
            "/v1/me".into(),
            "",
            tessera_server::auth::SCOPES,
        ),
    ];
    for (method, path, body, allowed) in &routes {
        let r = call(
            app,
            method.clone(),
            path,
            &[("content-type", "application/json")],
            body.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token"
        );
        assert_eq!(r.json()["code"], "InvalidCredentials");
        let r = call(
            app,
            method.clone(),
            path,
            &[
                ("authorization", "Bearer not.a.token"),
                ("content-type", "application/json"),
            ],
            body.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        for (scope, token) in &tokens {
            let auth = bearer(token);
            let r = call(
                app,
                method.clone(),
                path,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                body.as_bytes().to_vec(),
            )
            .await;
            if allowed.contains(scope) {
                assert!(
                    r.status.is_success(),
                    "{method} {path} with {scope}: {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                );
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{method} {path} with {scope}"
                );
                assert_eq!(r.json()["code"], "Forbidden");
            }
        }
    }
    // /v1/me shows the profile only with profile:read; the access_token query works too.
    let me = call(
        app,
        Method::GET,
        &format!("/v1/me?access_token={}", tokens["geocode"]),
        &[],
        vec![],
    )
    .await
    .json();
    assert_eq!(me["scopes"], json!(["geocode"]));
    assert!(me.get("username").is_none());
    let me = call(
        app,
        Method::GET,
        &format!("/v1/me?access_token={}", tokens["profile:read"]),
        &[],
        vec![],
    )
    .await
    .json();
    assert_eq!(me["username"], "local");
    // A token cannot grant what it lacks.
    let tw = bearer(&tokens["tokens:write"]);
    let r = call(
        app,
        Method::POST,
        "/v2/tokens",
        &[("authorization", &tw)],
        json!({"scopes": ["assets:write"]}).to_string().into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // assetIds: B is invisible, lists are filtered.
    let r = call(
        app,
        Method::POST,
        "/v2/tokens",
        &ah,
        json!({"name": "only A", "scopes": ["assets:read", "assets:list"], "assetIds": [a]})
            .to_string()
            .into_bytes(),
    )
    .await
    .json();
    let only_a = bearer(r["token"].as_str().unwrap());
    let oh = [("authorization", only_a.as_str())];
    assert_eq!(
        call(
            app,
            Method::GET,
            &format!("/v1/assets/{b}/endpoint"),
            &oh,
            vec![]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            app,
            Method::GET,
            &format!("/v1/assets/{a}/endpoint"),
            &oh,
            vec![]
        )
        .await
        .status,
        StatusCode::OK
    );
    let listed = call(app, Method::GET, "/v1/assets", &oh, vec![])
        .await
        .json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    // allowedUrls.
    let r = call(
        app,
        Method::POST,
        "/v2/tokens",
        &ah,
        json!({"name": "web", "scopes": ["assets:read"], "allowedUrls": ["http://localhost:5173"]})
            .to_string()
            .into_bytes(),
    )
    .await
    .json();
    let web = bearer(r["token"].as_str().unwrap());
    let web_id = r["id"].as_str().unwrap().to_string();
    let ep = format!("/v1/assets/{a}/endpoint");
    assert_eq!(
        call(app, Method::GET, &ep, &[("authorization", &web)], vec![])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            app,
            Method::GET,
            &ep,
            &[("authorization", &web), ("origin", "http://localhost:5173")],
            vec![]
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        call(
            app,
            Method::GET,
            &ep,
            &[("authorization", &web), ("referer", "http://evil.test/")],
            vec![]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // newAllowedUrls: null lifts the restriction.
    let r = call(
        app,
        Method::PATCH,
        &format!("/v2/tokens/{web_id}"),
        &ah,
        br#"{"newAllowedUrls":null}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(app, Method::GET, &ep, &[("authorization", &web)], vec![])
            .await
            .status,
        StatusCode::OK
    );
    // The default token can be neither changed nor deleted; bad token bodies are 400.
    let did = default["id"].as_str().unwrap();
    assert_eq!(
        call(
            app,
            Method::DELETE,
            &format!("/v2/tokens/{did}"),
            &ah,
            vec![]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            app,
            Method::PATCH,
            &format!("/v2/tokens/{did}"),
            &ah,
            br#"{"name":"x"}"#.to_vec()
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    for body in [
        json!({"scopes": []}),
        json!({"scopes": ["nope"]}),
        json!({"scopes": ["geocode"], "assetIds": []}),
        json!({"scopes": ["geocode"], "allowedUrls": []}),
    ] {
        assert_eq!(
            call(
                app,
                Method::POST,
                "/v2/tokens",
                &ah,
                body.to_string().into_bytes()
            )
            .await
            .status,
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }

    // Tiles: endpoint token of A works for A only; deleting its API token cuts it off.
    let rt = &tokens["assets:read"];
    let e = call(
        app,
        Method::GET,
        &format!("/v1/assets/{a}/endpoint?access_token={rt}"),
        &[],
        vec![],
    )
    .await
    .json();
    let et = e["accessToken"].as_str().unwrap().to_string();
    let tile = format!("/assets/{a}/tileset.json");
    assert_eq!(
        call(app, Method::GET, &tile, &[], vec![]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            app,
            Method::GET,
            &tile,
            &[("authorization", &bearer(&et))],
            vec![]
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        call(
            app,
            Method::GET,
            &format!("{tile}?access_token={et}&v=1.0"),
            &[],
            vec![]
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        call(
            app,
            Method::GET,
            &format!("/assets/{b}/tileset.json"),
            &[("authorization", &bearer(&et))],
            vec![]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    // An API token with assets:read reads tiles as ion allows.
    assert_eq!(
        call(
            app,
            Method::GET,
            &tile,
            &[("authorization", &bearer(rt))],
            vec![]
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        call(
            app,
            Method::GET,
            &tile,
            &[("authorization", &bearer(&tokens["geocode"]))],
            vec![]
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    // Endpoint tokens are not API tokens.
    assert_eq!(
        call(
            app,
            Method::GET,
            "/v1/me",
            &[("authorization", &bearer(&et))],
            vec![]
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    let read_id = call(
        app,
        Method::GET,
        "/v2/tokens?search=assets:read",
        &ah,
        vec![],
    )
    .await
    .json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "assets:read")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        call(
            app,
            Method::DELETE,
            &format!("/v2/tokens/{read_id}"),
            &ah,
            vec![]
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(
            app,
            Method::GET,
            &tile,
            &[("authorization", &bearer(&et))],
            vec![]
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            app,
            Method::GET,
            "/v1/me",
            &[("authorization", &bearer(rt))],
            vec![]
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_tokens_expire() {
    let s = server_in(
        tempfile::tempdir().unwrap(),
        AuthMode::Token,
        scripted(),
        |c| c.endpoint_token_ttl_s = 1,
    );
    let app = &s.app;
    let ah = [("authorization", "Bearer test-admin-token")];
    let a = create(app, Some(ADMIN), "A", "3DTILES", "POINT_CLOUD")
        .await
        .json()["assetMetadata"]["id"]
        .as_i64()
        .unwrap();
    call(
        app,
        Method::PUT,
        &format!("/v1/assets/{a}/files/x.laz"),
        &ah,
        vec![1],
    )
    .await;
    call(
        app,
        Method::POST,
        &format!("/v1/assets/{a}/uploadComplete"),
        &ah,
        vec![],
    )
    .await;
    wait(app, a, Some(ADMIN)).await;
    let et = call(
        app,
        Method::GET,
        &format!("/v1/assets/{a}/endpoint"),
        &ah,
        vec![],
    )
    .await
    .json()["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let tile = format!("/assets/{a}/tileset.json");
    assert_eq!(
        call(
            app,
            Method::GET,
            &tile,
            &[("authorization", &bearer(&et))],
            vec![]
        )
        .await
        .status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = call(
        app,
        Method::GET,
        &tile,
        &[("authorization", &bearer(&et))],
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["code"], "InvalidCredentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_cancels_a_running_job() {
    let slow: Arc<dyn JobRunner> = Arc::new(Scripted {
        steps: 400,
        step: Duration::from_millis(10),
    });
    let s = server(AuthMode::Disabled, slow);
    let app = &s.app;
    for name in ["first", "second"] {
        create(app, None, name, "3DTILES", "POINT_CLOUD").await;
    }
    for id in [1000, 1001] {
        call(
            app,
            Method::PUT,
            &format!("/v1/assets/{id}/files/x.laz"),
            &[],
            vec![1],
        )
        .await;
        call(
            app,
            Method::POST,
            &format!("/v1/assets/{id}/uploadComplete"),
            &[],
            vec![],
        )
        .await;
    }
    // Wait until the first job runs, then delete it.
    for _ in 0..200 {
        if call(app, Method::GET, "/v1/assets/1000", &[], vec![])
            .await
            .json()["status"]
            == "IN_PROGRESS"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        call(app, Method::DELETE, "/v1/assets/1000", &[], vec![])
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // The second starts promptly (the first was cancelled, not run to its end).
    let mut started = false;
    for _ in 0..300 {
        if call(app, Method::GET, "/v1/assets/1001", &[], vec![])
            .await
            .json()["status"]
            == "IN_PROGRESS"
        {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(started, "the queue did not move on after the deletion");
    assert!(!s.state.layout.output(1000).exists());
    assert_eq!(
        call(app, Method::GET, "/v1/assets/1000", &[], vec![])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_running_when_the_process_died_runs_again_on_start() {
    let s = server(AuthMode::Disabled, scripted());
    create(&s.app, None, "crashed", "3DTILES", "POINT_CLOUD").await;
    call(
        &s.app,
        Method::PUT,
        "/v1/assets/1000/files/x.laz",
        &[],
        vec![1],
    )
    .await;
    // What a killed process leaves behind: the row says IN_PROGRESS at 37 %, and a
    // half-written output.
    let mut r = s.state.store.asset(1000).unwrap().unwrap();
    r.status = tessera_server::store::Status::InProgress;
    r.percent = 37;
    s.state.store.update_asset(&r).unwrap();
    std::fs::create_dir_all(s.state.layout.output(1000)).unwrap();
    std::fs::write(s.state.layout.output(1000).join("half.glb"), b"x").unwrap();
    let dir = s.stop();
    let s2 = server_in(dir, AuthMode::Disabled, scripted(), |_| {});
    let a = call(&s2.app, Method::GET, "/v1/assets/1000", &[], vec![])
        .await
        .json();
    assert!(
        ["NOT_STARTED", "IN_PROGRESS"].contains(&a["status"].as_str().unwrap()),
        "{a}"
    );
    assert!(a["percentComplete"].as_u64().unwrap() < 37);
    assert_eq!(wait(&s2.app, 1000, None).await["status"], "COMPLETE");
    assert!(!s2.state.layout.output(1000).join("half.glb").exists());
    // Its upload survived.
    assert!(s2.state.layout.sources(1000).join("x.laz").exists());
}

/// Serve `state` on a free loopback port; returns its base URL.
async fn listen(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn s3_client(loc: &Value) -> aws_sdk_s3::Client {
    let creds = aws_sdk_s3::config::Credentials::new(
        loc["accessKey"].as_str().unwrap(),
        loc["secretAccessKey"].as_str().unwrap(),
        loc["sessionToken"].as_str().map(str::to_string),
        None,
        "tessera-test",
    );
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(loc["endpoint"].as_str().unwrap())
        .credentials_provider(creds)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// ion's upload tutorial over a real socket: create, upload with the AWS SDK (PutObject
/// and multipart), onComplete, poll, endpoint, root file with the endpoint token — for a
/// source of each type, converted by the real pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_tutorial_with_the_aws_sdk_for_every_source_type() {
    let Some(samples) = samples() else { return };
    let runner: Arc<dyn JobRunner> = Arc::new(PipelineRunner::new(Some(2)).unwrap());
    let s = server(AuthMode::Token, runner);
    let base = listen(s.app.clone()).await;
    let host = base.trim_start_matches("http://").to_string();
    let app = &s.app;
    let admin = bearer(ADMIN);
    let cases: Vec<(&str, &str, Value, PathBuf, &str)> = vec![
        (
            "3DTILES",
            "POINT_CLOUD",
            json!({}),
            samples.join("las/laspy/autzen_trim.laz"),
            "tileset.json",
        ),
        (
            "TERRAIN",
            "RASTER_TERRAIN",
            json!({"waterMask": true}),
            samples.join("geotiff/dem/pysheds_dem.tif"),
            "layer.json",
        ),
        (
            "IMAGERY",
            "RASTER_IMAGERY",
            json!({}),
            samples.join("geotiff/imagery/world.rgb.tif"),
            "tilemapresource.xml",
        ),
        (
            "3DTILES",
            "3D_MODEL",
            json!({"position": [13.3777, 52.5163, 40]}),
            samples.join("gltf/Duck/Duck.glb"),
            "tileset.json",
        ),
        (
            "GLTF",
            "3D_MODEL",
            json!({}),
            samples.join("gltf/BoxTextured.glb"),
            "BoxTextured.glb",
        ),
        (
            "3DTILES",
            "CITYGML",
            json!({}),
            samples.join("citygml/plateau-yokosuka.zip"),
            "tileset.json",
        ),
        // Clamped onto the terrain asset made above (1001); the buildings lie outside it,
        // so they keep their heights and the asset still completes.
        (
            "3DTILES",
            "CITYGML",
            json!({"clampToTerrain": true, "baseTerrainId": 1001}),
            samples.join("citygml/plateau-yokosuka.zip"),
            "tileset.json",
        ),
    ];
    for (type_, source, extra, file, root) in cases {
        let mut options = json!({"sourceType": source});
        for (k, v) in extra.as_object().unwrap() {
            options[k] = v.clone();
        }
        let body = json!({"name": format!("{type_} {source}"), "type": type_, "options": options});
        let r = call(
            app,
            Method::POST,
            "/v1/assets",
            &[
                ("authorization", &admin),
                ("content-type", "application/json"),
                ("host", &host),
            ],
            body.to_string().into_bytes(),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        let c = r.json();
        let id = c["assetMetadata"]["id"].as_i64().unwrap();
        let loc = &c["uploadLocation"];
        let client = s3_client(loc).await;
        let key = format!(
            "{}{}",
            loc["prefix"].as_str().unwrap(),
            file.file_name().unwrap().to_string_lossy()
        );
        let data = std::fs::read(&file).unwrap();
        client
            .put_object()
            .bucket(loc["bucket"].as_str().unwrap())
            .key(&key)
            .body(data.clone().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject {key}: {e:?}"));
        // The same bytes arrived.
        let stored =
            std::fs::read(s.state.layout.sources(id).join(file.file_name().unwrap())).unwrap();
        assert!(stored == data, "{key} differs after upload");
        let r = call(
            app,
            Method::POST,
            &format!("/v1/assets/{id}/uploadComplete"),
            &[
                ("authorization", &admin),
                ("content-type", "application/json"),
            ],
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let a = wait(app, id, Some(ADMIN)).await;
        assert_eq!(a["status"], "COMPLETE", "{type_}/{source}: {a}");
        let e = call(
            app,
            Method::GET,
            &format!("/v1/assets/{id}/endpoint"),
            &[("authorization", &admin), ("host", &host)],
            vec![],
        )
        .await
        .json();
        let url = e["url"].as_str().unwrap();
        assert!(url.starts_with(&base), "{url}");
        if matches!(type_, "TERRAIN" | "IMAGERY") {
            assert!(url.ends_with('/'), "{url}");
        }
        let path = format!("/assets/{id}/{root}");
        let et = bearer(e["accessToken"].as_str().unwrap());
        let r = call(app, Method::GET, &path, &[("authorization", &et)], vec![]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(
            call(app, Method::GET, &path, &[], vec![]).await.status,
            StatusCode::UNAUTHORIZED
        );
        if type_ == "TERRAIN" {
            let layer: Value = serde_json::from_slice(&r.body).unwrap();
            assert!(layer["extensions"]
                .as_array()
                .unwrap()
                .contains(&json!("watermask")));
            // A tile, gzip when asked, plain otherwise.
            let t =
                format!("/assets/{id}/0/0/0.terrain?extensions=octvertexnormals-watermask&v=1.0.0");
            let gz = call(
                app,
                Method::GET,
                &t,
                &[("authorization", &et), ("accept-encoding", "gzip, deflate")],
                vec![],
            )
            .await;
            assert_eq!(gz.status, StatusCode::OK);
            assert_eq!(gz.headers["content-encoding"], "gzip");
            assert_eq!(
                gz.headers["content-type"],
                "application/vnd.quantized-mesh;extensions=octvertexnormals-watermask"
            );
            let plain = call(app, Method::GET, &t, &[("authorization", &et)], vec![]).await;
            assert!(plain.headers.get("content-encoding").is_none());
            assert!(plain.body.len() > 88);
        }
        if type_ == "IMAGERY" {
            let same = call(
                app,
                Method::GET,
                &format!("/assets/{id}/"),
                &[("authorization", &et)],
                vec![],
            )
            .await;
            assert_eq!(
                same.body, r.body,
                "GET {{url}} answers with tilemapresource.xml"
            );
        }
    }

    // Multipart through the SDK (three 5 MiB parts), byte-identical, then refusals.
    let body =
        json!({"name": "multipart", "type": "3DTILES", "options": {"sourceType": "POINT_CLOUD"}});
    let c = call(
        app,
        Method::POST,
        "/v1/assets",
        &[
            ("authorization", &admin),
            ("content-type", "application/json"),
            ("host", &host),
        ],
        body.to_string().into_bytes(),
    )
    .await
    .json();
    let loc = &c["uploadLocation"];
    let id = c["assetMetadata"]["id"].as_i64().unwrap();
    let client = s3_client(loc).await;
    let bucket = loc["bucket"].as_str().unwrap();
    let key = format!("{}big.bin", loc["prefix"].as_str().unwrap());
    let data: Vec<u8> = (0..12u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let up = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    let upload_id = up.upload_id().unwrap().to_string();
    let mut parts = Vec::new();
    for (n, chunk) in data.chunks(5 << 20).enumerate() {
        let p = client
            .upload_part()
            .bucket(bucket)
            .key(&key)
            .upload_id(&upload_id)
            .part_number(n as i32 + 1)
            .body(chunk.to_vec().into())
            .send()
            .await
            .unwrap();
        parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n as i32 + 1)
                .e_tag(p.e_tag().unwrap())
                .build(),
        );
    }
    client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(&key)
        .upload_id(&upload_id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let stored = std::fs::read(s.state.layout.sources(id).join("big.bin")).unwrap();
    assert!(stored == data, "multipart object differs");
    let listed = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(loc["prefix"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 1);
    let outside = client
        .put_object()
        .bucket(bucket)
        .key("sources/1/evil.txt")
        .body(b"x".to_vec().into())
        .send()
        .await;
    assert!(format!("{:?}", outside.unwrap_err()).contains("AccessDenied"));
    let mut wrong = loc.clone();
    wrong["secretAccessKey"] = json!("x".repeat(40));
    let bad = s3_client(&wrong)
        .await
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(b"x".to_vec().into())
        .send()
        .await;
    assert!(format!("{:?}", bad.unwrap_err()).contains("SignatureDoesNotMatch"));
    std::fs::remove_file(s.state.layout.sources(id).join("big.bin")).unwrap();
    std::fs::write(
        s.state.layout.sources(id).join("c.laz"),
        std::fs::read(samples.join("las/laspy/simple.copc.laz")).unwrap(),
    )
    .unwrap();
    call(
        app,
        Method::POST,
        &format!("/v1/assets/{id}/uploadComplete"),
        &[("authorization", &admin)],
        vec![],
    )
    .await;
    let late = client
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(b"x".to_vec().into())
        .send()
        .await;
    assert!(format!("{:?}", late.unwrap_err()).contains("AccessDenied"));
    wait(app, id, Some(ADMIN)).await;

    // A bad input ends DATA_ERROR with a catalogued error naming the file.
    let body =
        json!({"name": "no crs", "type": "3DTILES", "options": {"sourceType": "POINT_CLOUD"}});
    let c = call(
        app,
        Method::POST,
        "/v1/assets",
        &[
            ("authorization", &admin),
            ("content-type", "application/json"),
        ],
        body.to_string().into_bytes(),
    )
    .await
    .json();
    let id = c["assetMetadata"]["id"].as_i64().unwrap();
    let bytes = std::fs::read(samples.join("las/ahn3/ahn3_cropped_1.laz")).unwrap();
    call(
        app,
        Method::PUT,
        &format!("/v1/assets/{id}/files/ahn3_cropped_1.laz"),
        &[("authorization", &admin)],
        bytes,
    )
    .await;
    call(
        app,
        Method::POST,
        &format!("/v1/assets/{id}/uploadComplete"),
        &[("authorization", &admin)],
        vec![],
    )
    .await;
    let a = wait(app, id, Some(ADMIN)).await;
    assert_eq!(a["status"], "DATA_ERROR");
    assert!(a["percentComplete"].as_u64().unwrap() < 100);
    assert_eq!(a["processingError"]["code"], "MISSING_CRS");
    assert_eq!(a["processingError"]["file"], "ahn3_cropped_1.laz");
    assert!(
        a["processingError"]["message"]
            .as_str()
            .unwrap()
            .starts_with("ahn3_cropped_1.laz: "),
        "{a}"
    );
    assert!(a["processingError"]["mitigation"]
        .as_str()
        .unwrap()
        .contains("inputCrs"));
}

/// One HTTP/1.1 request over a plain socket: (status, body).
fn raw_http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = std::str::from_utf8(&out[9..12]).unwrap().parse().unwrap();
    (status, out[split + 4..].to_vec())
}

fn spawn_server(addr: &str, data: &std::path::Path) -> std::process::Child {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "serve",
            "--addr",
            addr,
            "--data",
            data.to_str().unwrap(),
            "--threads",
            "2",
        ])
        .env_remove("TESSERA_ADMIN_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("tessera serve did not start on {addr}");
}

/// `kill -9` while a conversion runs, start again: the asset completes, the upload is
/// still there, nothing half-written is served.
#[test]
fn kill_9_during_a_conversion_then_restart_completes_the_asset() {
    let Some(samples) = samples() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = spawn_server(&addr, dir.path());
    let body =
        json!({"name": "world", "type": "IMAGERY", "options": {"sourceType": "RASTER_IMAGERY"}});
    let (st, c) = raw_http(&addr, "POST", "/v1/assets", body.to_string().as_bytes());
    assert_eq!(st, 200);
    let id = serde_json::from_slice::<Value>(&c).unwrap()["assetMetadata"]["id"]
        .as_i64()
        .unwrap();
    // A conversion long enough to be killed in the middle: the 36000 × 18000 world
    // (3291 tiles, ~15 s optimised); unoptimised test builds take a Landsat scene.
    let name = if cfg!(debug_assertions) {
        "RGB.byte.tif"
    } else {
        "cog_world.tif"
    };
    let tif = std::fs::read(samples.join("geotiff/imagery").join(name)).unwrap();
    assert_eq!(
        raw_http(&addr, "PUT", &format!("/v1/assets/{id}/files/{name}"), &tif).0,
        201
    );
    assert_eq!(
        raw_http(
            &addr,
            "POST",
            &format!("/v1/assets/{id}/uploadComplete"),
            b"{}"
        )
        .0,
        204
    );
    let status = |addr: &str| {
        serde_json::from_slice::<Value>(&raw_http(addr, "GET", &format!("/v1/assets/{id}"), b"").1)
            .unwrap()
    };
    let mut seen = Value::Null;
    for _ in 0..2000 {
        seen = status(&addr);
        if seen["status"] == "IN_PROGRESS" && seen["percentComplete"].as_u64().unwrap() > 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(seen["status"], "IN_PROGRESS", "{seen}");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut child = spawn_server(&addr, dir.path());
    let mut last = Value::Null;
    for _ in 0..6000 {
        last = status(&addr);
        if ["COMPLETE", "DATA_ERROR", "ERROR"].contains(&last["status"].as_str().unwrap()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(last["status"], "COMPLETE", "{last}");
    assert!(dir.path().join(format!("sources/{id}/{name}")).exists());
    let (st, xml) = raw_http(
        &addr,
        "GET",
        &format!("/assets/{id}/tilemapresource.xml"),
        b"",
    );
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&xml).contains("<TileMap"));
    let _ = child.kill();
    let _ = child.wait();
}

/// The dashboard is served at `/` without a token (it asks for one itself), and CesiumJS
/// from the configured folder under `/cesium/`, with paths kept inside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_local_cesium_are_served() {
    let cesium = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(cesium.path().join("Workers")).unwrap();
    std::fs::write(cesium.path().join("Cesium.js"), "var Cesium = {};").unwrap();
    std::fs::write(cesium.path().join("Workers/a.wasm"), b"\0asm").unwrap();
    let dir = cesium.path().to_path_buf();
    let s = server_in(
        tempfile::tempdir().unwrap(),
        AuthMode::Token,
        scripted(),
        move |c| c.cesium_dir = Some(dir),
    );
    let r = call(&s.app, Method::GET, "/", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = String::from_utf8(r.body).unwrap();
    assert!(html.contains("/ui/app.js") && html.contains("Skip to content"));
    for (path, mime, needle) in [
        ("/ui/app.js", "text/javascript", "Ion.defaultServer"),
        ("/ui/app.css", "text/css", ".viewer"),
    ] {
        let r = call(&s.app, Method::GET, path, &[], vec![]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with(mime));
        assert!(String::from_utf8_lossy(&r.body).contains(needle), "{path}");
    }
    let r = call(&s.app, Method::GET, "/cesium/Cesium.js", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/javascript");
    assert_eq!(r.body, b"var Cesium = {};");
    let r = call(&s.app, Method::GET, "/cesium/Workers/a.wasm", &[], vec![]).await;
    assert_eq!(r.headers["content-type"], "application/wasm");
    for bad in [
        "/cesium/../admin-token.txt",
        "/cesium/Workers/../../x",
        "/cesium/%2e%2e/secret",
        "/cesium/nope.js",
    ] {
        let r = call(&s.app, Method::GET, bad, &[], vec![]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
    }
    // API routes still need the token the dashboard asks for.
    let r = call(&s.app, Method::GET, "/v1/assets", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Without a CesiumJS folder the viewer's script is a 404 that says how to install it.
    let bare = server(AuthMode::Disabled, scripted());
    let r = call(&bare.app, Method::GET, "/cesium/Cesium.js", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["message"].as_str().unwrap().contains("npm ci"));
}

/// A stand-in for the worker executable: it reads the job, then aborts, reports an
/// exhausted allocation, hangs, or hands the job to the real worker, as the asset's
/// `test` option says.
fn fake_worker(dir: &std::path::Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("worker.sh");
    std::fs::write(
        &p,
        format!(
            r#"#!/bin/sh
read -r line
case "$line" in
  *'"test":"abort"'*) kill -ABRT $$ ;;
  *'"test":"oom"'*) echo "memory allocation of 1099511627776 bytes failed" >&2; kill -ABRT $$ ;;
  *'"test":"hang"'*) exec sleep 600 ;;
esac
{{ printf '%s\n' "$line"; cat; }} | exec "{}" job-worker
"#,
            env!("CARGO_BIN_EXE_tessera")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

async fn create_with(app: &Router, name: &str, type_: &str, options: Value) -> i64 {
    let body = json!({"name": name, "type": type_, "options": options});
    let r = call(
        app,
        Method::POST,
        "/v1/assets",
        &[("content-type", "application/json")],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["assetMetadata"]["id"].as_i64().unwrap()
}

async fn upload_and_start(app: &Router, id: i64, name: &str, bytes: Vec<u8>) {
    let r = call(
        app,
        Method::PUT,
        &format!("/v1/assets/{id}/files/{name}"),
        &[],
        bytes,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = call(
        app,
        Method::POST,
        &format!("/v1/assets/{id}/uploadComplete"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

/// Jobs run in worker processes: one that aborts is retried once and then fails its
/// asset, one that runs out of memory or time fails at once, a hanging one is cancelled
/// by DELETE, and every asset queued behind them still converts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_worker_fails_only_its_own_asset() {
    let Some(samples) = samples() else { return };
    let dir = tempfile::tempdir().unwrap();
    let exe = fake_worker(dir.path());
    let data = dir.path().join("data");
    let mut config = Config::new(data.clone(), AuthMode::Disabled);
    config.admin_token = Some(ADMIN.into());
    let (state, _) = tessera_server::open_state(config).unwrap();
    let worker = tessera_server::start_worker(
        &state,
        tessera_server::worker::WorkerProcess {
            exe,
            threads: Some(2),
            memory_bytes: 4 << 30,
            timeout: Duration::from_secs(3),
        },
    )
    .unwrap();
    let app = tessera_server::router(state.clone());
    let las = std::fs::read(samples.join("las/lazperf/point10.las")).unwrap();
    let pc = |test: &str| json!({"sourceType": "POINT_CLOUD", "test": test});
    let abort = create_with(&app, "abort", "3DTILES", pc("abort")).await;
    let oom = create_with(&app, "oom", "3DTILES", pc("oom")).await;
    let slow = create_with(&app, "hang", "3DTILES", pc("hang")).await;
    let good = create_with(&app, "good", "3DTILES", pc("none")).await;
    for id in [abort, oom, slow, good] {
        upload_and_start(&app, id, "cloud.las", las.clone()).await;
    }
    let a = wait(&app, abort, None).await;
    assert_eq!(a["status"], "ERROR", "{a}");
    assert_eq!(a["processingError"]["code"], "WORKER_CRASHED", "{a}");
    assert!(
        a["processingError"]["message"]
            .as_str()
            .unwrap()
            .contains("signal 6"),
        "{a}"
    );
    let o = wait(&app, oom, None).await;
    assert_eq!(o["status"], "ERROR", "{o}");
    assert_eq!(o["processingError"]["code"], "LIMIT_EXCEEDED", "{o}");
    assert!(o["processingError"]["message"]
        .as_str()
        .unwrap()
        .contains("memory"));
    let h = wait(&app, slow, None).await;
    assert_eq!(h["processingError"]["code"], "LIMIT_EXCEEDED", "{h}");
    assert!(h["processingError"]["message"]
        .as_str()
        .unwrap()
        .contains("longer than"));
    let g = wait(&app, good, None).await;
    assert_eq!(g["status"], "COMPLETE", "{g}");
    let t = call(
        &app,
        Method::GET,
        &format!("/assets/{good}/tileset.json"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(t.status, StatusCode::OK);

    // DELETE of a hanging job frees the queue at once.
    let stuck = create_with(&app, "stuck", "3DTILES", pc("hang")).await;
    let after = create_with(&app, "after", "3DTILES", pc("none")).await;
    upload_and_start(&app, stuck, "cloud.las", las.clone()).await;
    upload_and_start(&app, after, "cloud.las", las.clone()).await;
    for _ in 0..100 {
        let s = call(
            &app,
            Method::GET,
            &format!("/v1/assets/{stuck}"),
            &[],
            vec![],
        )
        .await
        .json();
        if s["status"] == "IN_PROGRESS" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = call(
        &app,
        Method::DELETE,
        &format!("/v1/assets/{stuck}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    let started = std::time::Instant::now();
    let a = wait(&app, after, None).await;
    assert_eq!(a["status"], "COMPLETE", "{a}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the queue waited for the hung job"
    );
    // Nothing half-written is left next to the served assets.
    let leftovers: Vec<_> = std::fs::read_dir(data.join("assets"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    state.jobs.shutdown();
    let _ = worker.join();
}

/// A job the server died under twice is failed at the next start instead of run a third
/// time (no crash loop); one it died under once runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_interrupted_twice_is_not_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let (once, twice) = {
        let mut config = Config::new(dir.path().to_path_buf(), AuthMode::Disabled);
        config.admin_token = Some(ADMIN.into());
        let (state, _) = tessera_server::open_state(config).unwrap();
        let app = tessera_server::router(state.clone());
        let pc = json!({"sourceType": "POINT_CLOUD"});
        let once = create_with(&app, "once", "3DTILES", pc.clone()).await;
        let twice = create_with(&app, "twice", "3DTILES", pc).await;
        for (id, attempts) in [(once, 1), (twice, 2)] {
            let mut a = state.store.asset(id).unwrap().unwrap();
            a.status = tessera_server::store::Status::InProgress;
            a.attempts = attempts;
            state.store.update_asset(&a).unwrap();
        }
        (once, twice)
    };
    let mut config = Config::new(dir.path().to_path_buf(), AuthMode::Disabled);
    config.admin_token = Some(ADMIN.into());
    let (state, _) = tessera_server::open_state(config).unwrap();
    let a = state.store.asset(twice).unwrap().unwrap();
    assert_eq!(a.status, tessera_server::store::Status::Error);
    assert_eq!(a.error.unwrap().code, "WORKER_CRASHED");
    let b = state.store.asset(once).unwrap().unwrap();
    assert_eq!(b.status, tessera_server::store::Status::NotStarted);
}

/// Options an asset's conversion does not apply end as `OPTION_IGNORED` warnings naming
/// the option and why, on assets that still complete; options it honours give none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_a_conversion_does_not_apply_are_warned_of_on_the_asset() {
    let runner: Arc<dyn JobRunner> = Arc::new(PipelineRunner::new(Some(2)).unwrap());
    let s = server(AuthMode::Disabled, runner);
    let fixture = |n: &str| {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/files")
                .join(n),
        )
        .unwrap()
    };
    let cases = [
        (
            "3DTILES",
            json!({"sourceType": "POINT_CLOUD", "waterMask": true, "tiling": "AUTO"}),
            "tiny.las",
            vec!["options.waterMask"],
        ),
        (
            "TERRAIN",
            json!({"sourceType": "RASTER_TERRAIN", "heightReference": "MEAN_SEA_LEVEL", "toMeters": 0.3048}),
            "tiny-dem.tif",
            vec!["options.heightReference", "options.toMeters"],
        ),
        (
            "TERRAIN",
            json!({"sourceType": "RASTER_TERRAIN", "heightReference": "WGS84", "waterMask": true}),
            "tiny-dem.tif",
            vec![],
        ),
    ];
    for (type_, options, file, want) in cases {
        let id = create_with(&s.app, file, type_, options.clone()).await;
        upload_and_start(&s.app, id, file, fixture(file)).await;
        let a = wait(&s.app, id, None).await;
        assert_eq!(a["status"], "COMPLETE", "{options}: {a}");
        let ignored: Vec<String> = a["processingWarnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["code"] == "OPTION_IGNORED")
            .map(|w| w["message"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ignored.len(), want.len(), "{options}: {ignored:?}");
        for (got, key) in ignored.iter().zip(&want) {
            assert!(
                got.starts_with(&format!("{key}: ")),
                "{options}: {ignored:?}"
            );
        }
    }
}
