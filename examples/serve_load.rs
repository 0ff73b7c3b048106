//! Load check for `tessera serve`: N concurrent loopback clients for D seconds, half
//! polling an asset's status, half fetching tile files, over keep-alive HTTP/1.1.
//! Prints requests, errors and latency percentiles.
//!
//! `cargo run --release --example serve_load -- HOST:PORT ASSET_ID TILE_PATH... [--clients 200] [--seconds 30]`
#![allow(clippy::unwrap_used)] // a measurement tool: stop loudly on set-up errors

use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn get(conn: &mut BufReader<TcpStream>, host: &str, path: &str) -> std::io::Result<u16> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: gzip\r\n\r\n");
    conn.get_mut().write_all(req.as_bytes()).await?;
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    let status: u16 = line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut len = 0usize;
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await?;
    Ok(status)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut clients = 200usize;
    let mut seconds = 30u64;
    let mut pos = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--clients" => {
                clients = args[i + 1].parse().unwrap();
                i += 1;
            }
            "--seconds" => {
                seconds = args[i + 1].parse().unwrap();
                i += 1;
            }
            a => pos.push(a.to_string()),
        }
        i += 1;
    }
    let host = pos[0].clone();
    let status_path = format!("/v1/assets/{}", pos[1]);
    let tiles: Vec<String> = pos[2..].to_vec();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (host, status_path, tiles) = (host.clone(), status_path.clone(), tiles.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut conn = None;
            let mut k = c;
            while Instant::now() < deadline {
                if conn.is_none() {
                    match TcpStream::connect(&host).await {
                        Ok(s) => conn = Some(BufReader::new(s)),
                        Err(_) => {
                            errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let path = if c % 2 == 0 || tiles.is_empty() {
                    &status_path
                } else {
                    k += 1;
                    &tiles[k % tiles.len()]
                };
                let t = Instant::now();
                match get(conn.as_mut().unwrap(), &host, path).await {
                    Ok(200) | Ok(304) => lat.push(t.elapsed()),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = None;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{clients} clients, {seconds} s: {} ok requests ({:.0}/s), {errors} errors, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        all.len() as f64 / seconds as f64,
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
}
