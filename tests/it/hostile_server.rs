//! Hostile uploads and requests against a real `tessera serve --auth token`: each hostile
//! asset ends in its catalogued state, the server stays up and converts the asset queued
//! after it, files outside an upload are never read, `allowedUrls` holds on every route,
//! and an upload cut off by `kill -9` is gone after the restart.

use crate::helpers::samples;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};
use tessera_fixtures::hostile;

const ADMIN: &str = "hostile-test-admin";

struct Server {
    addr: String,
    child: std::process::Child,
}

impl Server {
    fn start(data: &Path, addr: &str) -> Server {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["serve", "--addr", addr, "--auth", "token", "--threads", "2"])
            .arg("--data")
            .arg(data)
            .args(["--job-memory", "2", "--job-timeout", "120"])
            .env("TESSERA_ADMIN_TOKEN", ADMIN)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let s = Server {
            addr: addr.to_string(),
            child,
        };
        for _ in 0..400 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("tessera serve did not start on {addr}");
    }

    /// One request: (status, body).
    fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.addr,
            body.len()
        );
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            head.push_str(&format!("Authorization: Bearer {ADMIN}\r\n"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let status = std::str::from_utf8(&out[9..12]).unwrap().parse().unwrap();
        let mut body = out[split + 4..].to_vec();
        let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
        if head.contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        (status, body)
    }

    fn json(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let (st, b) = self.call(
            method,
            path,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        (st, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    /// Create an asset, upload `files`, start its job; the asset id.
    fn asset(&self, type_: &str, options: Value, files: &[(&str, Vec<u8>)]) -> i64 {
        let (st, c) = self.json(
            "POST",
            "/v1/assets",
            json!({"name": "hostile", "type": type_, "options": options}),
        );
        assert_eq!(st, 200, "{c}");
        let id = c["assetMetadata"]["id"].as_i64().unwrap();
        for (name, bytes) in files {
            let (st, b) = self.call("PUT", &format!("/v1/assets/{id}/files/{name}"), &[], bytes);
            assert_eq!(st, 201, "{}", String::from_utf8_lossy(&b));
        }
        let (st, _) = self.call(
            "POST",
            &format!("/v1/assets/{id}/uploadComplete"),
            &[],
            b"{}",
        );
        assert_eq!(st, 204);
        id
    }

    fn get(&self, id: i64) -> Value {
        self.json("GET", &format!("/v1/assets/{id}"), Value::Null).1
    }

    fn wait(&self, id: i64) -> Value {
        let start = Instant::now();
        loop {
            let a = self.get(id);
            if ["COMPLETE", "DATA_ERROR", "ERROR"].contains(&a["status"].as_str().unwrap_or("")) {
                return a;
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "asset {id} never finished: {a}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(mut self) {
        // SIGTERM: the server finishes requests and re-queues a running job.
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(nl) = b[i..].windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&b[i..i + nl]).unwrap().trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[i + nl + 2..i + nl + 2 + size]);
        i += nl + 2 + size + 2;
    }
    out
}

fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.extend(std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn expect(a: &Value, status: &str, code: &str) {
    assert_eq!(a["status"], status, "{a}");
    assert_eq!(a["processingError"]["code"], code, "{a}");
    let m = a["processingError"]["message"].as_str().unwrap_or("");
    for bad in ["panicked", "/sources/", "/work/", "tessera-data"] {
        assert!(!m.contains(bad), "`{bad}` in the message: {a}");
    }
}

#[test]
fn hostile_uploads_fail_their_asset_and_the_server_keeps_converting() {
    let Some(s) = samples() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = free_addr();
    let srv = Server::start(&data, &addr);
    let read = |p: &str| std::fs::read(s.join(p)).unwrap();
    let las = read("las/lazperf/point10.las");
    let good = || {
        srv.asset(
            "3DTILES",
            json!({"sourceType": "POINT_CLOUD"}),
            &[("good.las", las.clone())],
        )
    };
    // Positions off the Earth are refused at creation.
    for pos in [json!([13.4, 52.5, 1e300]), json!([0, 500, 0])] {
        let (st, b) = srv.json(
            "POST",
            "/v1/assets",
            json!({"name": "p", "type": "3DTILES", "options": {"sourceType": "3D_MODEL", "position": pos}}),
        );
        assert_eq!(st, 400, "{pos}: {b}");
    }

    // A texture outside the upload: another asset's file and an absolute path.
    let secret_jpg = read(
        "citygml/plateau-yokosuka/udx/bldg/52397519_bldg_6697_appearance/14201-bldg-156842-1.jpg",
    );
    let other = srv.asset(
        "3DTILES",
        json!({"sourceType": "POINT_CLOUD"}),
        &[("a.las", las.clone()), ("secret.jpg", secret_jpg.clone())],
    );
    let outside = dir.path().join("secret.jpg");
    std::fs::write(&outside, &secret_jpg).unwrap();
    let lyon = read("citygml/lyon/LYON_2EME_BATI_2015_small_house.gml");
    let lyon_jpg = read("citygml/lyon/LYON_2EME_BATI_2015_small_house.jpg");
    let city = |uri: &str| {
        srv.asset(
            "3DTILES",
            json!({"sourceType": "CITYGML", "inputCrs": "EPSG:3946"}),
            &[
                ("house.gml", hostile::citygml_with_image_uri(&lyon, uri)),
                ("LYON_2EME_BATI_2015_small_house.jpg", lyon_jpg.clone()),
            ],
        )
    };
    let abs = city(outside.to_str().unwrap());
    let sibling = city(&format!("../{other}/secret.jpg"));

    let autzen = read("las/laspy/autzen_trim.laz");
    let chunks = srv.asset(
        "3DTILES",
        json!({"sourceType": "POINT_CLOUD"}),
        &[(
            "chunks.laz",
            hostile::laz_with_chunk_count(&autzen, u32::MAX).unwrap(),
        )],
    );
    let after_chunks = good();
    let count = srv.asset(
        "3DTILES",
        json!({"sourceType": "POINT_CLOUD"}),
        &[(
            "count.laz",
            hostile::las_with_point_count(&autzen, u64::MAX),
        )],
    );
    let gltf =
        hostile::gltf_with_accessor_offset(&tessera_fixtures::tiny::gltf(), u64::MAX).unwrap();
    let model = srv.asset(
        "3DTILES",
        json!({"sourceType": "3D_MODEL", "position": [7.0, 50.0, 100.0]}),
        &[("m.gltf", gltf.clone())],
    );
    let native = srv.asset("GLTF", json!({"sourceType": "GLTF"}), &[("m.gltf", gltf)]);
    let after_model = good();
    let inf = srv.asset(
        "TERRAIN",
        json!({"sourceType": "RASTER_TERRAIN"}),
        &[("inf.tif", hostile::dem_filled(f32::INFINITY))],
    );
    let las_as_city = srv.asset(
        "3DTILES",
        json!({"sourceType": "CITYGML"}),
        &[("cloud.las", las.clone())],
    );
    let czml = srv.asset(
        "CZML",
        json!({"sourceType": "CZML"}),
        &[("a.czml", b"\x00 not json".to_vec())],
    );
    let geojson = srv.asset(
        "GEOJSON",
        json!({"sourceType": "GEOJSON"}),
        &[("a.geojson", br#"{"type":"Banana"}"#.to_vec())],
    );
    let kml = srv.asset(
        "KML",
        json!({"sourceType": "KML"}),
        &[("a.kml", b"<html/>".to_vec())],
    );
    let zip = read("citygml/plateau-yokosuka.zip");
    let truncated = srv.asset(
        "3DTILES",
        json!({"sourceType": "CITYGML"}),
        &[("city.zip", zip[..zip.len() / 2].to_vec())],
    );
    let last = good();

    // Every hostile asset ends in its catalogued state ...
    for id in [abs, sibling] {
        let a = srv.wait(id);
        assert_eq!(a["status"], "COMPLETE", "{a}");
        let warned = a["processingWarnings"].to_string();
        assert!(
            warned.contains("secret.jpg"),
            "the refused texture is named: {a}"
        );
        let out = all_bytes(&data.join(format!("assets/{id}")));
        assert!(!out.is_empty());
        assert!(
            !contains(&out, &secret_jpg[200..264]),
            "asset {id} embeds a file from outside its upload"
        );
    }
    expect(&srv.wait(chunks), "DATA_ERROR", "UNREADABLE_FILE");
    // Reading the hostile headers for an estimate does not take the server down either.
    for id in [chunks, count] {
        let (st, e) = srv.call("POST", &format!("/v1/assets/{id}/analysis"), &[], b"");
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&e));
    }
    let c = srv.wait(count);
    assert_eq!(c["status"], "DATA_ERROR", "{c}");
    expect(&srv.wait(model), "DATA_ERROR", "UNREADABLE_FILE");
    expect(&srv.wait(native), "DATA_ERROR", "UNREADABLE_FILE");
    expect(&srv.wait(inf), "DATA_ERROR", "EMPTY_DATA");
    let m = srv.wait(las_as_city);
    expect(&m, "DATA_ERROR", "SOURCE_TYPE_MISMATCH");
    assert!(
        m["processingError"]["message"]
            .as_str()
            .unwrap()
            .contains("LAS/LAZ"),
        "{m}"
    );
    for id in [czml, geojson, kml] {
        expect(&srv.wait(id), "DATA_ERROR", "UNREADABLE_FILE");
    }
    let t = srv.wait(truncated);
    expect(&t, "DATA_ERROR", "INVALID_ARCHIVE");
    assert_eq!(t["processingError"]["file"], "city.zip", "{t}");
    // ... and the server converted what was queued behind them.
    for id in [after_chunks, after_model, last] {
        assert_eq!(srv.wait(id)["status"], "COMPLETE");
    }
    // Across a restart: states are kept, the next asset converts.
    srv.stop();
    let srv = Server::start(&data, &addr);
    assert_eq!(srv.get(chunks)["status"], "DATA_ERROR");
    let next = srv.asset(
        "3DTILES",
        json!({"sourceType": "POINT_CLOUD"}),
        &[("good.las", las.clone())],
    );
    assert_eq!(srv.wait(next)["status"], "COMPLETE");
    let (st, _) = srv.call("GET", &format!("/assets/{next}/tileset.json"), &[], b"");
    assert_eq!(st, 200);
}

#[test]
fn allowed_urls_hold_on_every_route_a_token_reaches() {
    let Some(s) = samples() else { return };
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(&dir.path().join("data"), &free_addr());
    let las = std::fs::read(s.join("las/lazperf/point10.las")).unwrap();
    let id = srv.asset(
        "3DTILES",
        json!({"sourceType": "POINT_CLOUD"}),
        &[("a.las", las)],
    );
    assert_eq!(srv.wait(id)["status"], "COMPLETE");
    let (st, t) = srv.json(
        "POST",
        "/v2/tokens",
        json!({"name": "site", "scopes": ["assets:read", "assets:list"], "allowedUrls": ["http://good.example"]}),
    );
    assert_eq!(st, 200, "{t}");
    let token = t["token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {token}");
    fn with<'a>(bearer: &'a str, origin: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![("Authorization", bearer), ("Origin", origin)]
    }
    let tileset = format!("/assets/{id}/tileset.json");
    for path in [
        tileset.as_str(),
        &format!("/v1/assets/{id}"),
        "/v1/assets",
        &format!("/v1/assets/{id}/endpoint"),
    ] {
        let (evil, _) = srv.call("GET", path, &with(&bearer, "http://evil.example"), b"");
        assert_eq!(evil, 403, "{path} from another origin");
        let (ok, _) = srv.call("GET", path, &with(&bearer, "http://good.example"), b"");
        assert_eq!(ok, 200, "{path} from the allowed origin");
    }
    let (_, e) = srv.call(
        "GET",
        &format!("/v1/assets/{id}/endpoint"),
        &with(&bearer, "http://good.example"),
        b"",
    );
    let e: Value = serde_json::from_slice(&e).unwrap();
    let tile = format!(
        "{tileset}?access_token={}",
        e["accessToken"].as_str().unwrap()
    );
    let (evil, _) = srv.call(
        "GET",
        &tile,
        &[("Authorization", ""), ("Origin", "http://evil.example")],
        b"",
    );
    assert_eq!(
        evil, 403,
        "an endpoint token keeps its source token's allowedUrls"
    );
    let (ok, _) = srv.call(
        "GET",
        &tile,
        &[("Authorization", ""), ("Origin", "http://good.example")],
        b"",
    );
    assert_eq!(ok, 200);
}

#[test]
fn an_upload_cut_off_by_kill_9_is_gone_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = free_addr();
    let mut srv = Server::start(&data, &addr);
    let (st, c) = srv.json(
        "POST",
        "/v1/assets",
        json!({"name": "cut", "type": "3DTILES", "options": {"sourceType": "POINT_CLOUD"}}),
    );
    assert_eq!(st, 200);
    let id = c["assetMetadata"]["id"].as_i64().unwrap();
    // Promise 10 MB, send 1 MB, then the server dies.
    let mut sock = std::net::TcpStream::connect(&addr).unwrap();
    let head = format!(
        "PUT /v1/assets/{id}/files/big.las HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\nContent-Length: 10000000\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).unwrap();
    sock.write_all(&vec![7u8; 1 << 20]).unwrap();
    let sources = data.join(format!("sources/{id}"));
    let partial = || {
        std::fs::read_dir(&sources)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".upload-"))
            .count()
    };
    let start = Instant::now();
    while partial() == 0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(partial(), 1, "the upload is being written");
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    drop(sock);
    let srv = Server::start(&data, &addr);
    assert_eq!(partial(), 0, "the partial upload is removed at start");
    let (st, files) = srv.json("GET", &format!("/v1/assets/{id}/files"), Value::Null);
    assert_eq!(st, 200);
    assert!(!files.to_string().contains("upload-"), "{files}");
    assert_eq!(srv.get(id)["bytes"], 0);
}
