//! Shared test plumbing: sample location, running the pipeline and the binary, and
//! decoding what was written.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tessera_pipeline::{JobReport, JobSpec, Progress};

/// `TESSERA_SAMPLES`, default `../shared/data`. `None` (test skipped) when absent,
/// except under CI, where a missing sample folder fails the run.
pub fn samples() -> Option<PathBuf> {
    let dir = std::env::var_os("TESSERA_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.join("las").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "sample data not found at {} (set TESSERA_SAMPLES)",
            dir.display()
        );
    }
    eprintln!("skipping: sample data not found at {}", dir.display());
    None
}

pub fn run_with_threads(
    spec: &JobSpec,
    threads: usize,
) -> Result<JobReport, tessera_pipeline::PipelineError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| tessera_pipeline::run(spec, &Progress::new()))
}

pub struct Outcome {
    pub code: i32,
    pub stderr: String,
}

/// Run the `tessera` binary; fails the test if it runs past `limit` (a hang).
pub fn tessera(args: &[&str], limit: Duration) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return Outcome {
                code: status.code().unwrap_or(-1),
                stderr,
            };
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("tessera {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A decoded point tile: ECEF positions (root transform, tile centre and glTF y-up undone).
pub struct DecodedTile {
    pub uri: String,
    pub ecef: Vec<[f64; 3]>,
    /// The same points in the tileset's local frame (before the root transform).
    pub local: Vec<[f64; 3]>,
    pub has_color: bool,
    pub box_local: [f64; 12],
}

/// A JSON array of numbers.
pub fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn mat_apply(m: &[f64], p: [f64; 3]) -> [f64; 3] {
    [
        m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12],
        m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13],
        m[2] * p[0] + m[6] * p[1] + m[10] * p[2] + m[14],
    ]
}

/// The plain bytes of a buffer view: as stored, or decoded with meshopt's own decoder
/// when the view is EXT_meshopt_compression-compressed (its filter undone too).
pub fn view_bytes(doc: &Value, bin: &[u8], view: usize) -> Vec<u8> {
    let v = &doc["bufferViews"][view];
    let Some(e) = v["extensions"].get("EXT_meshopt_compression") else {
        let off = v["byteOffset"].as_u64().unwrap_or(0) as usize;
        let len = v["byteLength"].as_u64().unwrap() as usize;
        return bin[off..off + len].to_vec();
    };
    assert_eq!(e["mode"], "ATTRIBUTES");
    let off = e["byteOffset"].as_u64().unwrap_or(0) as usize;
    let len = e["byteLength"].as_u64().unwrap() as usize;
    let count = e["count"].as_u64().unwrap() as usize;
    let stride = e["byteStride"].as_u64().unwrap() as usize;
    let src = &bin[off..off + len];
    let mut out: Vec<u8> = match stride {
        4 => meshopt::decode_vertex_buffer::<[u8; 4]>(src, count)
            .unwrap()
            .concat(),
        8 => meshopt::decode_vertex_buffer::<[u8; 8]>(src, count)
            .unwrap()
            .concat(),
        12 => meshopt::decode_vertex_buffer::<[u8; 12]>(src, count)
            .unwrap()
            .concat(),
        16 => meshopt::decode_vertex_buffer::<[u8; 16]>(src, count)
            .unwrap()
            .concat(),
        s => panic!("meshopt stride {s}"),
    };
    match e["filter"].as_str() {
        None | Some("NONE") => {}
        Some("EXPONENTIAL") => {
            assert_eq!(stride, 12);
            let mut words: Vec<[u32; 3]> = out
                .chunks_exact(12)
                .map(|c| {
                    [0, 1, 2].map(|k| u32::from_le_bytes(c[k * 4..k * 4 + 4].try_into().unwrap()))
                })
                .collect();
            meshopt::decode_filter_exp(&mut words);
            out = words
                .iter()
                .flatten()
                .flat_map(|w| w.to_le_bytes())
                .collect();
        }
        Some(f) => panic!("filter {f}"),
    }
    assert_eq!(out.len(), count * stride);
    out
}

/// One vertex attribute of a GLB's first primitive as numbers (per element, per
/// component), whatever its component type, stride or compression.
pub fn glb_attribute(doc: &Value, bin: &[u8], name: &str) -> Option<Vec<Vec<f64>>> {
    let prim = &doc["meshes"][0]["primitives"][0];
    let acc = &doc["accessors"][prim["attributes"].get(name)?.as_u64()? as usize];
    let view = acc["bufferView"].as_u64().unwrap() as usize;
    let bytes = view_bytes(doc, bin, view);
    let n = acc["count"].as_u64().unwrap() as usize;
    let comps = match acc["type"].as_str().unwrap() {
        "SCALAR" => 1,
        "VEC2" => 2,
        "VEC3" => 3,
        "VEC4" => 4,
        t => panic!("type {t}"),
    };
    let ct = acc["componentType"].as_u64().unwrap();
    let size = match ct {
        5120 | 5121 => 1,
        5122 | 5123 => 2,
        5125 | 5126 => 4,
        c => panic!("componentType {c}"),
    };
    let stride = doc["bufferViews"][view]["byteStride"]
        .as_u64()
        .map_or(comps * size, |s| s as usize);
    let start = acc["byteOffset"].as_u64().unwrap_or(0) as usize;
    let normalized = acc["normalized"].as_bool() == Some(true);
    Some(
        (0..n)
            .map(|i| {
                (0..comps)
                    .map(|k| {
                        let o = start + i * stride + k * size;
                        let b = &bytes[o..o + size];
                        let v = match ct {
                            5120 => f64::from(b[0] as i8),
                            5121 => f64::from(b[0]),
                            5122 => f64::from(i16::from_le_bytes([b[0], b[1]])),
                            5123 => f64::from(u16::from_le_bytes([b[0], b[1]])),
                            5125 => f64::from(u32::from_le_bytes(b.try_into().unwrap())),
                            _ => f64::from(f32::from_le_bytes(b.try_into().unwrap())),
                        };
                        match (normalized, ct) {
                            (true, 5121) => v / 255.0,
                            (true, 5123) => v / 65535.0,
                            _ => v,
                        }
                    })
                    .collect()
            })
            .collect(),
    )
}

/// Positions of a point GLB in the tile frame (z up), and whether it has colours.
fn decode_glb(bytes: &[u8]) -> (Vec<[f64; 3]>, bool) {
    let (doc, bin) = read_glb(bytes);
    let node = &doc["nodes"][0];
    let t = numbers(&node["translation"]);
    let s = node.get("scale").map_or(vec![1.0; 3], numbers);
    let pts = glb_attribute(&doc, &bin, "POSITION")
        .unwrap()
        .iter()
        .map(|p| {
            // glTF y-up to 3D Tiles z-up: (x, y, z) -> (x, -z, y).
            let y_up = [0, 1, 2].map(|k| p[k] * s[k] + t[k]);
            [y_up[0], -y_up[2], y_up[1]]
        })
        .collect();
    let has_color = doc["meshes"][0]["primitives"][0]["attributes"]
        .get("COLOR_0")
        .is_some();
    (pts, has_color)
}

fn decode_pnts(bytes: &[u8]) -> Vec<[f64; 3]> {
    assert_eq!(&bytes[0..4], b"pnts");
    let w = |k: usize| u32::from_le_bytes(bytes[4 * k..4 * k + 4].try_into().unwrap()) as usize;
    let ft: Value = serde_json::from_slice(&bytes[28..28 + w(3)]).unwrap();
    let bin = &bytes[28 + w(3)..];
    let n = ft["POINTS_LENGTH"].as_u64().unwrap() as usize;
    let c = numbers(&ft["RTC_CENTER"]);
    if ft.get("POSITION_QUANTIZED").is_some() {
        let off = numbers(&ft["QUANTIZED_VOLUME_OFFSET"]);
        let scale = numbers(&ft["QUANTIZED_VOLUME_SCALE"]);
        let q = |i: usize| f64::from(u16::from_le_bytes([bin[i], bin[i + 1]]));
        return (0..n)
            .map(|i| [0, 1, 2].map(|k| c[k] + off[k] + q(i * 6 + k * 2) * scale[k] / 65535.0))
            .collect();
    }
    let f = |i: usize| f32::from_le_bytes(bin[i..i + 4].try_into().unwrap()) as f64;
    (0..n)
        .map(|i| [f(i * 12) + c[0], f(i * 12 + 4) + c[1], f(i * 12 + 8) + c[2]])
        .collect()
}

/// Every content tile of a tileset directory, decoded to ECEF.
pub fn decode_tileset(dir: &Path) -> (Value, Vec<DecodedTile>) {
    let ts: Value =
        serde_json::from_slice(&std::fs::read(dir.join("tileset.json")).unwrap()).unwrap();
    let m = numbers(&ts["root"]["transform"]);
    let mut out = Vec::new();
    let mut stack = vec![ts["root"].clone()];
    while let Some(t) = stack.pop() {
        if let Some(uri) = t["content"]["uri"].as_str() {
            let bytes = std::fs::read(dir.join(uri)).unwrap();
            let (local, has_color) = if uri.ends_with(".glb") {
                decode_glb(&bytes)
            } else {
                (decode_pnts(&bytes), false)
            };
            let b = numbers(&t["boundingVolume"]["box"]);
            // Every point lies inside its tile's box (axis-aligned, half-sizes on the diagonal).
            for p in &local {
                for k in 0..3 {
                    let half = b[3 + k * 4];
                    assert!(
                        (p[k] - b[k]).abs() <= half + 1e-3,
                        "{uri}: point {p:?} outside box {b:?}"
                    );
                }
            }
            out.push(DecodedTile {
                uri: uri.to_string(),
                ecef: local.iter().map(|p| mat_apply(&m, *p)).collect(),
                local: local.clone(),
                has_color,
                box_local: b.try_into().unwrap(),
            });
        }
        if let Some(children) = t["children"].as_array() {
            for c in children {
                assert!(
                    c["geometricError"].as_f64().unwrap() <= t["geometricError"].as_f64().unwrap(),
                    "child geometricError above parent's"
                );
                stack.push(c.clone());
            }
        }
    }
    (ts, out)
}

/// Every file under `dir` with its bytes, by relative path.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The binary refused bad input: exit 1, a message naming the file and saying `needle`,
/// no panic.
pub fn assert_data_error(o: &Outcome, file: &Path, needle: &str) {
    assert_eq!(o.code, 1, "stderr: {}", o.stderr);
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(
        o.stderr.contains(&*name),
        "message should name the file: {}",
        o.stderr
    );
    assert!(
        o.stderr.contains(needle),
        "message should say `{needle}`: {}",
        o.stderr
    );
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
}

/// The JSON and binary chunk of a GLB, or of the GLB inside a `.b3dm`.
pub fn read_glb(bytes: &[u8]) -> (Value, Vec<u8>) {
    let bytes = if bytes.starts_with(b"b3dm") {
        let w = |k: usize| u32::from_le_bytes(bytes[4 * k..4 * k + 4].try_into().unwrap()) as usize;
        assert_eq!(w(2), bytes.len());
        assert_eq!((28 + w(3) + w(4) + w(5) + w(6)) % 8, 0);
        &bytes[28 + w(3) + w(4) + w(5) + w(6)..]
    } else {
        bytes
    };
    assert_eq!(&bytes[0..4], b"glTF");
    assert_eq!(
        u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
        bytes.len()
    );
    let jlen = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let doc: Value = serde_json::from_slice(&bytes[20..20 + jlen]).unwrap();
    (doc, bytes[20 + jlen + 8..].to_vec())
}

/// The bytes of an accessor's buffer view.
pub fn accessor_bytes<'a>(doc: &Value, bin: &'a [u8], acc: u64) -> &'a [u8] {
    let a = &doc["accessors"][acc as usize];
    let v = &doc["bufferViews"][a["bufferView"].as_u64().unwrap() as usize];
    let off = v["byteOffset"].as_u64().unwrap() as usize;
    let len = v["byteLength"].as_u64().unwrap() as usize;
    &bin[off..off + len]
}

/// What a capped run of the binary did.
pub struct Capped {
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Peak resident memory (VmHWM, sampled every 10 ms while it ran).
    pub peak_rss_bytes: u64,
}

/// The limits every hostile input is held to: an answer within 10 s, under 1 GiB of
/// resident memory.
pub const HOSTILE_TIME: Duration = Duration::from_secs(10);
pub const HOSTILE_RSS_BYTES: u64 = 1 << 30;

fn vm_hwm_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Run `tessera args` in `cwd` with its data segment capped at `mem_bytes` (an
/// allocation beyond that fails, so a runaway allocation shows as an abort instead of
/// swapping the machine) and killed once it runs past `limit`.
pub fn tessera_capped(args: &[&str], cwd: &Path, mem_bytes: u64, limit: Duration) -> Capped {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new("prlimit")
        .arg(format!("--data={mem_bytes}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut peak = 0u64;
    let status = loop {
        if let Some(h) = vm_hwm_bytes(child.id()) {
            peak = peak.max(h);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "tessera {args:?} did not finish within {limit:?} (peak RSS {} MiB)",
                peak >> 20
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Capped {
        code: status.code(),
        signal: status.signal(),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
        elapsed: start.elapsed(),
        peak_rss_bytes: peak,
    }
}

/// `tessera convert` on a hostile input: the answer must be `code`, come within
/// [`HOSTILE_TIME`] and [`HOSTILE_RSS_BYTES`], carry no panic text, name `file` when
/// given, and say `needle`.
pub fn assert_refused(c: &Capped, code: i32, file: Option<&Path>, needle: &str) {
    let what = format!(
        "exit {:?} signal {:?} after {:?}, peak RSS {} MiB\nstderr: {}",
        c.code,
        c.signal,
        c.elapsed,
        c.peak_rss_bytes >> 20,
        c.stderr
    );
    assert_eq!(c.code, Some(code), "{what}");
    assert!(c.elapsed < HOSTILE_TIME, "too slow: {what}");
    assert!(
        c.peak_rss_bytes < HOSTILE_RSS_BYTES,
        "too much memory: {what}"
    );
    for bad in ["panicked", "RUST_BACKTRACE", "internal error"] {
        assert!(!c.stderr.contains(bad), "`{bad}` in the message: {what}");
    }
    if let Some(f) = file {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(c.stderr.contains(&*name), "should name {name}: {what}");
    }
    assert!(c.stderr.contains(needle), "should say `{needle}`: {what}");
}

/// A hostile input that must still convert: exit 0 within [`HOSTILE_TIME`] and
/// [`HOSTILE_RSS_BYTES`], no panic text.
pub fn assert_converted(c: &Capped) {
    let what = format!(
        "exit {:?} signal {:?} after {:?}, peak RSS {} MiB\nstdout: {}\nstderr: {}",
        c.code,
        c.signal,
        c.elapsed,
        c.peak_rss_bytes >> 20,
        c.stdout,
        c.stderr
    );
    eprintln!(
        "converted in {:?}, peak RSS {} MiB",
        c.elapsed,
        c.peak_rss_bytes >> 20
    );
    assert_eq!(c.code, Some(0), "{what}");
    assert!(c.elapsed < HOSTILE_TIME, "too slow: {what}");
    assert!(
        c.peak_rss_bytes < HOSTILE_RSS_BYTES,
        "too much memory: {what}"
    );
    assert!(!c.stderr.contains("panicked"), "{what}");
}

/// One availability of a subtree: a constant or a bitstream in its binary chunk.
fn availability(a: &Value, views: &[Value], bin: &[u8]) -> Box<dyn Fn(usize) -> bool> {
    if let Some(c) = a.get("constant") {
        let on = c.as_u64() == Some(1);
        return Box::new(move |_| on);
    }
    let v = &views[a["bitstream"].as_u64().unwrap() as usize];
    let off = v["byteOffset"].as_u64().unwrap_or(0) as usize;
    let len = v["byteLength"].as_u64().unwrap() as usize;
    let bits = bin[off..off + len].to_vec();
    Box::new(move |i| bits.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1))
}

/// Octree coordinates of Morton index `m` on a level `levels` below the subtree root.
fn demorton(m: usize, levels: u32) -> [u32; 3] {
    let mut c = [0u32; 3];
    for b in 0..levels {
        for (k, ck) in c.iter_mut().enumerate() {
            *ck |= ((m >> (3 * b as usize + k)) as u32 & 1) << b;
        }
    }
    c
}

/// Every content tile of an implicit-octree tileset, found through its subtree files
/// and decoded to ECEF. Asserts that the content availability lists exactly the
/// content files on disk, that every available tile's parent is available, and that
/// every point lies in its tile's implicit box.
pub fn decode_implicit(dir: &Path) -> (Value, Vec<DecodedTile>) {
    let ts: Value =
        serde_json::from_slice(&std::fs::read(dir.join("tileset.json")).unwrap()).unwrap();
    // The implicit tree is the only child of an explicit root with the points' box.
    let m = numbers(&ts["root"]["transform"]);
    let root = &ts["root"]["children"][0];
    let it = &root["implicitTiling"];
    assert_eq!(it["subdivisionScheme"], "OCTREE");
    let s = it["subtreeLevels"].as_u64().unwrap() as u32;
    let levels = it["availableLevels"].as_u64().unwrap() as u32;
    let content_t = root["content"]["uri"].as_str().unwrap().to_string();
    let subtree_t = it["subtrees"]["uri"].as_str().unwrap().to_string();
    let fill = |t: &str, l: u32, c: [u32; 3]| {
        t.replace("{level}", &l.to_string())
            .replace("{x}", &c[0].to_string())
            .replace("{y}", &c[1].to_string())
            .replace("{z}", &c[2].to_string())
    };
    let b = numbers(&root["boundingVolume"]["box"]);
    let root_min = [b[0] - b[3], b[1] - b[7], b[2] - b[11]];
    let edge = 2.0 * b[3];
    let mut out = Vec::new();
    let mut available = std::collections::HashSet::new();
    let mut stack = vec![(0u32, [0u32; 3])];
    while let Some((sl, sc)) = stack.pop() {
        let bytes = std::fs::read(dir.join(fill(&subtree_t, sl, sc))).unwrap();
        assert_eq!(&bytes[0..4], b"subt");
        let jlen = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
        let blen = u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize;
        let j: Value = serde_json::from_slice(&bytes[24..24 + jlen]).unwrap();
        let bin = &bytes[24 + jlen..24 + jlen + blen];
        let views = j["bufferViews"].as_array().cloned().unwrap_or_default();
        let tile = availability(&j["tileAvailability"], &views, bin);
        let content = availability(&j["contentAvailability"][0], &views, bin);
        let child = availability(&j["childSubtreeAvailability"], &views, bin);
        let mut start = 0usize;
        for l in 0..s {
            let level = sl + l;
            let n = 1usize << (3 * l);
            for i in 0..n {
                if !tile(start + i) {
                    assert!(!content(start + i), "content without a tile");
                    continue;
                }
                assert!(level < levels, "tile beyond availableLevels");
                let local = demorton(i, l);
                let c = [0, 1, 2].map(|k| (sc[k] << l) + local[k]);
                if level > 0 {
                    assert!(
                        available.contains(&(level - 1, c.map(|v| v / 2))),
                        "tile {level}/{c:?} without its parent"
                    );
                }
                available.insert((level, c));
                if !content(start + i) {
                    continue;
                }
                let uri = fill(&content_t, level, c);
                let (local_pts, has_color) = decode_glb(&std::fs::read(dir.join(&uri)).unwrap());
                let e = edge / f64::from(1u32 << level);
                for p in &local_pts {
                    for k in 0..3 {
                        let lo = root_min[k] + f64::from(c[k]) * e;
                        assert!(
                            p[k] >= lo - 1e-3 && p[k] <= lo + e + 1e-3,
                            "{uri}: point {p:?} outside its implicit box"
                        );
                    }
                }
                let bl = [0, 1, 2].map(|k| root_min[k] + f64::from(c[k]) * e + e / 2.0);
                out.push(DecodedTile {
                    uri,
                    ecef: local_pts.iter().map(|p| mat_apply(&m, *p)).collect(),
                    local: local_pts.clone(),
                    has_color,
                    box_local: [
                        bl[0],
                        bl[1],
                        bl[2],
                        e / 2.0,
                        0.0,
                        0.0,
                        0.0,
                        e / 2.0,
                        0.0,
                        0.0,
                        0.0,
                        e / 2.0,
                    ],
                });
            }
            start += n;
        }
        for i in 0..(1usize << (3 * s)) {
            if child(i) {
                let local = demorton(i, s);
                stack.push((sl + s, [0, 1, 2].map(|k| (sc[k] << s) + local[k])));
            }
        }
    }
    // Exactly the content files on disk are listed.
    let mut listed: Vec<String> = out.iter().map(|t| t.uri.clone()).collect();
    listed.sort();
    let mut on_disk: Vec<String> = tree(dir)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.ends_with(".glb"))
        .collect();
    on_disk.sort();
    assert_eq!(listed, on_disk, "content availability vs files on disk");
    (ts, out)
}
