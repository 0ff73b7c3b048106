//! Seeded mutations of the real samples (and the tiny fixtures): at least 1 000 per
//! reader, each converted the way `tessera convert` would, each under a time and memory
//! cap. Any panic, internal error, hang (> 10 s) or allocation beyond the cap (the worker
//! process aborts) fails the test, and the input that did it is written to
//! `target/mutation-failures/` (it is also reproduced from its reader and case number).
//!
//! The cases run in child processes of this test binary (the same test, told by an
//! environment variable which cases to run), so an abort or a hang ends one child, not the
//! test run; the parent restarts after the failing case.

use crate::helpers::samples;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tessera_fixtures::cases::{self, Ending, Reader};
use tessera_fixtures::mutate::mutate;

const CASES_PER_READER: usize = 1000;
const CASE_LIMIT: Duration = Duration::from_secs(10);
/// The child's data segment: an allocation beyond it fails (and aborts the child).
const CHILD_MEMORY_BYTES: u64 = 2 << 30;
const CHILD_ENV: &str = "TESSERA_MUTATION_CHILD";

/// A file the mutations start from, and files that must sit beside it (textures, buffers).
struct Base {
    file: PathBuf,
    beside: Vec<PathBuf>,
}

fn base(root: &Path, rel: &str, beside: &[&str]) -> Base {
    let file = root.join(rel);
    let dir = file.parent().unwrap().to_path_buf();
    Base {
        file,
        beside: beside.iter().map(|b| dir.join(b)).collect(),
    }
}

fn bases(reader: Reader, s: &Path) -> Vec<Base> {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/files");
    let f = |n: &str| base(&fx, n, &[]);
    match reader {
        Reader::Las => vec![
            base(s, "las/lazperf/point10.las", &[]),
            base(s, "las/lazperf/point-color-time.las", &[]),
            base(s, "las/laspy/simple.copc.laz", &[]),
            base(s, "las/pdal/epsg_4326.las", &[]),
            base(s, "las/laspy/append-bug.laz", &[]),
            f("tiny.las"),
        ],
        Reader::GeoTiffTerrain | Reader::QuantizedMesh => vec![
            base(s, "geotiff/dem/pysheds_dem.tif", &[]),
            f("tiny-dem.tif"),
        ],
        Reader::GeoTiffImagery => vec![
            base(s, "geotiff/imagery/world.rgb.tif", &[]),
            base(s, "geotiff/imagery/cogeo.tif", &[]),
            base(s, "geotiff/imagery/rgb_lzw.tif", &[]),
            f("tiny-rgb.tif"),
        ],
        Reader::CityGml => vec![
            base(
                s,
                "citygml/fzk-haus-citygml1/FZK-House-LoD2-KIT-IAI-KHH-V2.gml",
                &[],
            ),
            base(
                s,
                "citygml/fzk-haus-citygml3/FZK-Haus-LoD2-KIT-IAI-KHH-B36-V1__v3.gml",
                &[],
            ),
            base(
                s,
                "citygml/lyon/LYON_2EME_BATI_2015_small_house.gml",
                &["LYON_2EME_BATI_2015_small_house.jpg"],
            ),
            base(s, "citygml/delft-lod1-citygml2.xml", &[]),
            f("tiny.gml"),
        ],
        Reader::Gltf => vec![
            base(s, "gltf/Box/Box.glb", &[]),
            base(s, "gltf/BoxTextured.glb", &[]),
            base(s, "gltf/Box/Box_Draco.glb", &[]),
            base(s, "gltf/Box/Box.gltf", &["Box0.bin"]),
            f("tiny.gltf"),
        ],
        Reader::Zip => vec![
            base(s, "citygml/plateau-meiji-gallery.zip", &[]),
            base(s, "citygml/plateau-yokosuka.zip", &[]),
        ],
    }
}

fn seed(reader: Reader, case: usize) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in reader.name().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h ^ (case as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A quantized-mesh case's base: a terrain folder made from a DEM, the tile whose bytes
/// the case replaces, and that tile's bytes un-gzipped.
struct TerrainBase {
    dir: PathBuf,
    tile: PathBuf,
    raw: Vec<u8>,
}

fn terrain_bases(b: &[Base], scratch: &Path) -> Vec<TerrainBase> {
    b.iter()
        .enumerate()
        .map(|(k, b)| {
            let dir = scratch.join(format!("terrain-{k}"));
            let (dir, tile) = cases::terrain_for(&b.file, &dir).unwrap();
            let gz = std::fs::read(&tile).unwrap();
            let mut raw = Vec::new();
            use std::io::Read;
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut raw)
                .unwrap();
            TerrainBase { dir, tile, raw }
        })
        .collect()
}

/// The bytes of case `i` and the path they go to (under `scratch`).
fn case_input(
    reader: Reader,
    bases: &[Base],
    terrain: &[TerrainBase],
    scratch: &Path,
    i: usize,
) -> (PathBuf, Vec<u8>, PathBuf) {
    if reader == Reader::QuantizedMesh {
        let t = &terrain[i % terrain.len()];
        return (
            t.tile.clone(),
            mutate(&t.raw, seed(reader, i)),
            t.dir.clone(),
        );
    }
    let b = &bases[i % bases.len()];
    let dir = scratch.join(format!("base-{}", i % bases.len()));
    let path = dir.join(b.file.file_name().unwrap());
    let bytes = mutate(&std::fs::read(&b.file).unwrap(), seed(reader, i));
    (path.clone(), bytes, path)
}

/// Child mode: run cases `from..to` of one reader, reporting each on stdout.
fn child(spec: &str) {
    let mut parts = spec.split(':');
    let reader = Reader::parse(parts.next().unwrap()).unwrap();
    let from: usize = parts.next().unwrap().parse().unwrap();
    let to: usize = parts.next().unwrap().parse().unwrap();
    rlimit::setrlimit(
        rlimit::Resource::DATA,
        CHILD_MEMORY_BYTES,
        CHILD_MEMORY_BYTES,
    )
    .unwrap();
    let s = samples().unwrap();
    let bases = bases(reader, &s);
    let scratch = tempfile::tempdir().unwrap();
    for (k, b) in bases.iter().enumerate() {
        let dir = scratch.path().join(format!("base-{k}"));
        std::fs::create_dir_all(&dir).unwrap();
        for extra in &b.beside {
            std::fs::copy(extra, dir.join(extra.file_name().unwrap())).unwrap();
        }
    }
    let terrain = if reader == Reader::QuantizedMesh {
        terrain_bases(&bases, scratch.path())
    } else {
        Vec::new()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    tessera_pipeline::contain::quiet_contained_panics();
    for i in from..to {
        let (path, bytes, input) = case_input(reader, &bases, &terrain, scratch.path(), i);
        std::fs::write(&path, &bytes).unwrap();
        println!("start {i}");
        let work = scratch.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let t = Instant::now();
        let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| cases::run(reader, &input, &work))
        }));
        let us = t.elapsed().as_micros();
        let what = match ended {
            Ok(Ending::Converted) => "converted".to_string(),
            Ok(Ending::Refused(_)) => "refused".to_string(),
            Ok(Ending::Internal(m)) => format!("INTERNAL {m}"),
            Err(_) => "PANIC".to_string(),
        };
        println!("end {i} {us} {}", what.replace('\n', " "));
        let _ = std::fs::remove_dir_all(&work);
    }
}

#[derive(Debug)]
struct Failure {
    case: usize,
    what: String,
}

struct Summary {
    reader: Reader,
    converted: usize,
    refused: usize,
    slowest_us: u128,
    total: Duration,
    failures: Vec<Failure>,
}

/// Run every case of `reader` in children, restarting after a hang or a crash.
fn run_reader(reader: Reader) -> Summary {
    let started = Instant::now();
    let mut sum = Summary {
        reader,
        converted: 0,
        refused: 0,
        slowest_us: 0,
        total: Duration::ZERO,
        failures: Vec::new(),
    };
    let mut next = 0;
    while next < CASES_PER_READER {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "mutation::mutated_samples_end_cleanly",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                CHILD_ENV,
                format!("{}:{next}:{CASES_PER_READER}", reader.name()),
            )
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let err_t = std::thread::spawn(move || {
            let mut tail: Vec<String> = Vec::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                tail.push(line);
                if tail.len() > 4 {
                    tail.remove(0);
                }
            }
            tail
        });
        let mut current: Option<(usize, Instant)> = None;
        let mut hung = false;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let mut w = line.splitn(4, ' ');
                    match (w.next(), w.next().and_then(|n| n.parse::<usize>().ok())) {
                        (Some("start"), Some(i)) => current = Some((i, Instant::now())),
                        (Some("end"), Some(i)) => {
                            let us: u128 = w.next().and_then(|u| u.parse().ok()).unwrap_or(0);
                            let what = w.next().unwrap_or("");
                            sum.slowest_us = sum.slowest_us.max(us);
                            match what {
                                "converted" => sum.converted += 1,
                                "refused" => sum.refused += 1,
                                other => sum.failures.push(Failure {
                                    case: i,
                                    what: other.to_string(),
                                }),
                            }
                            if us > CASE_LIMIT.as_micros() {
                                sum.failures.push(Failure {
                                    case: i,
                                    what: format!("took {} ms", us / 1000),
                                });
                            }
                            current = None;
                            next = i + 1;
                        }
                        _ => {}
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if let Some((i, t)) = current {
                if t.elapsed() > CASE_LIMIT {
                    let _ = child.kill();
                    sum.failures.push(Failure {
                        case: i,
                        what: format!("no answer within {CASE_LIMIT:?} (a hang)"),
                    });
                    next = i + 1;
                    hung = true;
                    break;
                }
            }
        }
        let status = child.wait().unwrap();
        let tail = err_t.join().unwrap_or_default();
        if hung {
            continue;
        }
        if let Some((i, _)) = current {
            use std::os::unix::process::ExitStatusExt;
            sum.failures.push(Failure {
                case: i,
                what: format!(
                    "the process died (status {:?}, signal {:?}): {}",
                    status.code(),
                    status.signal(),
                    tail.join(" | ")
                ),
            });
            next = i + 1;
        } else if !status.success() {
            panic!(
                "the mutation child failed outside a case: {}",
                tail.join("\n")
            );
        }
    }
    sum.total = started.elapsed();
    sum
}

/// Write the inputs of failed cases where a developer can run them.
fn keep_failures(sum: &Summary, s: &Path) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/mutation-failures");
    let _ = std::fs::create_dir_all(&dir);
    let bases = bases(sum.reader, s);
    for f in &sum.failures {
        let b = &bases[f.case % bases.len()];
        let bytes = if sum.reader == Reader::QuantizedMesh {
            continue;
        } else {
            mutate(&std::fs::read(&b.file).unwrap(), seed(sum.reader, f.case))
        };
        let name = format!(
            "{}-{}-{}",
            sum.reader.name(),
            f.case,
            b.file.file_name().unwrap().to_string_lossy()
        );
        let _ = std::fs::write(dir.join(name), bytes);
    }
}

#[test]
fn mutated_samples_end_cleanly() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    let Some(s) = samples() else { return };
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let queue = std::sync::Mutex::new(Reader::ALL.to_vec());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..workers {
            sc.spawn(|| loop {
                let Some(r) = queue.lock().unwrap().pop() else {
                    break;
                };
                let sum = run_reader(r);
                results.lock().unwrap().push(sum);
            });
        }
    });
    let results = results.into_inner().unwrap();
    let mut failed = Vec::new();
    for sum in &results {
        eprintln!(
            "mutation {}: {} cases, {} converted, {} refused, {} failed, slowest {} ms, {:.1} s",
            sum.reader.name(),
            sum.converted + sum.refused + sum.failures.len(),
            sum.converted,
            sum.refused,
            sum.failures.len(),
            sum.slowest_us / 1000,
            sum.total.as_secs_f64()
        );
        if !sum.failures.is_empty() {
            keep_failures(sum, &s);
            for f in &sum.failures {
                failed.push(format!("{} case {}: {}", sum.reader.name(), f.case, f.what));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} mutated inputs did not end cleanly (inputs in target/mutation-failures/):\n{}",
        failed.len(),
        failed.join("\n")
    );
}
