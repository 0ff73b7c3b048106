//! The job queue: one worker thread takes queued assets in order, turns their options
//! into a pipeline `JobSpec`, runs it and records the outcome. Jobs run in a worker
//! process of their own ([`crate::worker`]) so that a job that aborts, exhausts its memory
//! or hangs fails its asset, never the server; tests may run them in process through a
//! [`JobRunner`]. Progress is read from the pipeline's snapshot, never pushed by it.

use crate::store::{AssetRow, Status, Store};
use crate::util::{dir_size, list_files, now_rfc3339};
use crate::wire::{option, ProcessingError, ProcessingWarning};
use crate::worker::WorkerProcess;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tessera_model::{CrsSpec, Stage};
use tessera_pipeline::{
    Budget, ErrorKind, JobReport, JobSpec, PipelineError, PointCompression, Progress, Source,
    Target, TreeLayout,
};

/// Runs one conversion. The real one drives the pipeline on its own rayon pool; tests
/// script progress with a fake.
pub trait JobRunner: Send + Sync + 'static {
    fn run(&self, spec: &JobSpec, progress: &Progress) -> Result<JobReport, PipelineError>;
}

/// The pipeline on a dedicated rayon pool.
pub struct PipelineRunner {
    pool: rayon::ThreadPool,
}

impl PipelineRunner {
    pub fn new(threads: Option<usize>) -> std::io::Result<PipelineRunner> {
        let mut b = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("tessera-job-{i}"));
        if let Some(n) = threads {
            b = b.num_threads(n);
        }
        let pool = b.build().map_err(std::io::Error::other)?;
        Ok(PipelineRunner { pool })
    }
}

impl JobRunner for PipelineRunner {
    fn run(&self, spec: &JobSpec, progress: &Progress) -> Result<JobReport, PipelineError> {
        self.pool.install(|| tessera_pipeline::run(spec, progress))
    }
}

/// How jobs are executed.
pub enum Executor {
    /// On a thread of this process (tests, embedding): a job that aborts takes the
    /// process with it.
    InProcess(Arc<dyn JobRunner>),
    /// In a worker process per job, with memory and time limits.
    Isolated(WorkerProcess),
}

impl From<Arc<dyn JobRunner>> for Executor {
    fn from(r: Arc<dyn JobRunner>) -> Executor {
        Executor::InProcess(r)
    }
}

impl From<WorkerProcess> for Executor {
    fn from(w: WorkerProcess) -> Executor {
        Executor::Isolated(w)
    }
}

/// One asset's job as a worker process receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub id: i64,
    #[serde(rename = "type")]
    pub type_: String,
    pub options: Value,
    pub data_dir: PathBuf,
    /// Memory the job's readers may size allocations by.
    pub budget: Budget,
}

impl Task {
    pub fn of(asset: &AssetRow, layout: &Layout, budget: Budget) -> Task {
        Task {
            id: asset.id,
            type_: asset.type_.clone(),
            options: asset.options.clone(),
            data_dir: layout.data_dir.clone(),
            budget,
        }
    }

    fn source_type(&self) -> &str {
        self.options[option::SOURCE_TYPE].as_str().unwrap_or("")
    }
}

/// How a job ended, as the asset records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Complete {
        entry: String,
        tiles: u64,
        warnings: Vec<ProcessingWarning>,
    },
    /// `DATA_ERROR` when `data`, else `ERROR`.
    Failed {
        data: bool,
        error: ProcessingError,
    },
    Canceled,
    /// The worker process died without an answer (killed, aborted); the job may run once
    /// more when `retry`.
    Crashed {
        error: ProcessingError,
        retry: bool,
    },
}

/// What the worker and the routes share.
pub struct Jobs {
    queue: Mutex<VecDeque<i64>>,
    wake: Condvar,
    running: Mutex<HashMap<i64, Arc<Progress>>>,
    stop: AtomicBool,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            running: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
        }
    }
}

impl Jobs {
    pub fn enqueue(&self, id: i64) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if !q.contains(&id) {
            q.push_back(id);
        }
        self.wake.notify_all();
    }

    /// Progress of a running job.
    pub fn progress(&self, id: i64) -> Option<Arc<Progress>> {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// Cancel a queued or running job (deletion).
    pub fn cancel(&self, id: i64) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|&q| q != id);
        if let Some(p) = self.progress(id) {
            p.cancel();
        }
    }

    /// Stop the worker after the current job; running jobs are cancelled and re-queued
    /// on the next start.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for p in self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            p.cancel();
        }
        self.wake.notify_all();
    }

    fn next(&self) -> Option<i64> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(id) = q.pop_front() {
                return Some(id);
            }
            q = self.wake.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Where an asset's files live.
#[derive(Debug, Clone)]
pub struct Layout {
    pub data_dir: PathBuf,
}

impl Layout {
    pub fn sources(&self, id: i64) -> PathBuf {
        self.data_dir.join("sources").join(id.to_string())
    }
    pub fn output(&self, id: i64) -> PathBuf {
        self.data_dir.join("assets").join(id.to_string())
    }
    pub fn work(&self, id: i64) -> PathBuf {
        self.data_dir.join("work").join(id.to_string())
    }
}

/// The worker loop: returns when `jobs.shutdown()` is called.
pub fn worker(store: Arc<Store>, jobs: Arc<Jobs>, executor: Executor, layout: Layout) {
    while let Some(id) = jobs.next() {
        let Ok(Some(mut asset)) = store.asset(id) else {
            continue;
        };
        if asset.status != Status::NotStarted {
            continue;
        }
        asset.status = Status::InProgress;
        asset.stage = Some("INSPECT".into());
        asset.started_at = Some(now_rfc3339());
        asset.percent = 0;
        asset.attempts = asset.attempts.saturating_add(1);
        if store.update_asset(&asset).is_err() {
            continue;
        }
        let progress = Arc::new(Progress::new());
        jobs.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, progress.clone());
        let outcome = match &executor {
            Executor::InProcess(runner) => {
                let task = Task::of(&asset, &layout, Budget::default());
                execute(&task, runner.as_ref(), &progress)
            }
            Executor::Isolated(w) => {
                let task = Task::of(&asset, &layout, w.budget());
                w.run(&task, &progress)
            }
        };
        // The job stays listed as running until its row holds the outcome, so readers of
        // percentComplete never see the row's starting 0 in between.
        let finished = || {
            jobs.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        };
        crate::clean_staging(&layout.data_dir.join("assets"), Some(id));
        // Deleted while running: forget everything.
        let Ok(Some(mut asset)) = store.asset(id) else {
            finished();
            let _ = std::fs::remove_dir_all(layout.output(id));
            let _ = std::fs::remove_dir_all(layout.work(id));
            continue;
        };
        let _ = std::fs::remove_dir_all(layout.work(id));
        asset.finished_at = Some(now_rfc3339());
        asset.tiles_written = progress.snapshot().tiles_written;
        // Where it stopped: percentComplete never goes backwards.
        let reached = (progress.snapshot().percent.floor() as u8).min(99);
        match outcome {
            Outcome::Complete {
                entry,
                tiles,
                warnings,
            } => {
                asset.status = Status::Complete;
                asset.percent = 100;
                asset.stage = Some("DONE".into());
                asset.entry = entry;
                asset.tiles_written = asset.tiles_written.max(tiles);
                asset.bytes = dir_size(&layout.output(id)) + dir_size(&layout.sources(id));
                asset.warnings = warnings;
                asset.attempts = 0;
            }
            Outcome::Canceled if jobs.stop.load(Ordering::SeqCst) => {
                // Shutting down: the job runs again from scratch on the next start, and
                // this interruption does not count against it.
                requeue(&mut asset);
                asset.attempts = asset.attempts.saturating_sub(1);
            }
            Outcome::Crashed { error, retry } if retry && asset.attempts < MAX_ATTEMPTS => {
                eprintln!(
                    "job {id}: {} ({}); running it once more",
                    error.message, error.code
                );
                requeue(&mut asset);
                let _ = store.update_asset(&asset);
                finished();
                let _ = std::fs::remove_dir_all(layout.output(id));
                jobs.enqueue(id);
                continue;
            }
            Outcome::Crashed { error, .. } | Outcome::Failed { data: false, error } => {
                asset.status = Status::Error;
                asset.percent = reached;
                asset.error = Some(error);
            }
            Outcome::Failed { data: true, error } => {
                asset.status = Status::DataError;
                asset.percent = reached;
                asset.error = Some(error);
            }
            Outcome::Canceled => {
                asset.status = Status::Error;
                asset.percent = reached;
                asset.error = Some(Failure::Canceled.describe(&layout.sources(id), None).1);
            }
        }
        let _ = store.update_asset(&asset);
        finished();
    }
}

/// Starts a job may have: a job that killed its worker (or the server) this often is
/// failed instead of started again.
pub const MAX_ATTEMPTS: u32 = 2;

fn requeue(asset: &mut AssetRow) {
    asset.status = Status::NotStarted;
    asset.percent = 0;
    asset.stage = Some("QUEUED".into());
    asset.started_at = None;
    asset.finished_at = None;
}

/// The error of a job that was interrupted [`MAX_ATTEMPTS`] times.
pub fn interrupted_error() -> ProcessingError {
    ProcessingError {
        code: "WORKER_CRASHED".into(),
        message: format!(
            "the job was interrupted {MAX_ATTEMPTS} times while it ran (its worker process or the server was killed, e.g. for lack of memory), so it is not started again"
        ),
        file: None,
        stage: "INSPECT".into(),
        mitigation: mitigation("WORKER_CRASHED").into(),
    }
}

/// Run one job here, turning every way it can end (a panic included) into an outcome.
pub fn execute(task: &Task, runner: &dyn JobRunner, progress: &Progress) -> Outcome {
    let layout = Layout {
        data_dir: task.data_dir.clone(),
    };
    let sources = layout.sources(task.id);
    let result = catch_unwind(AssertUnwindSafe(|| {
        process(task, &layout, runner, progress).map(|(mut report, entry)| {
            let mut ignored = ignored_options(task.source_type(), &task.options);
            ignored.append(&mut report.warnings);
            report.warnings = ignored;
            (report, entry)
        })
    }));
    let stage = format!("{:?}", progress.snapshot().stage).to_ascii_uppercase();
    match result {
        Ok(Ok((report, entry))) => Outcome::Complete {
            entry,
            tiles: report.tiles,
            warnings: warnings(&report, &sources),
        },
        Ok(Err(Failure::Canceled)) => Outcome::Canceled,
        Ok(Err(f)) => {
            let (status, error) = f.describe(&sources, Some(&stage));
            Outcome::Failed {
                data: status == Status::DataError,
                error,
            }
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            eprintln!("job {}: internal fault: {what}", task.id);
            let (_, error) = Failure::Internal(
                "the conversion stopped on an internal fault (a bug in Tessera); the server log has the details".into(),
            )
            .describe(&sources, Some(&stage));
            Outcome::Failed { data: false, error }
        }
    }
}

/// Why a job did not complete.
pub enum Failure {
    Pipeline(PipelineError),
    Data { code: &'static str, message: String },
    Internal(String),
    Canceled,
}

fn mitigation(code: &str) -> &'static str {
    match code {
        "UNSUPPORTED_FILE_TYPE" => "Upload a format this source type reads, or create the asset with the matching sourceType.",
        "SOURCE_TYPE_MISMATCH" => "Create the asset again with the type/sourceType that matches the files.",
        "UNREADABLE_FILE" => "Re-export or re-upload the file; check that it is complete.",
        "INVALID_ARCHIVE" => "Repack as a plain zip with relative paths.",
        "MISSING_CRS" => "Create the asset again with options.inputCrs (e.g. \"EPSG:25832\"), or options.position for a local model.",
        "UNKNOWN_CRS" => "Use an EPSG code PROJ knows in options.inputCrs.",
        "OUT_OF_RANGE_COORDINATES" => "The CRS is wrong; set options.inputCrs to the right one.",
        "EMPTY_DATA" => "Check the export: the upload holds no geometry, points or data pixels.",
        "LIMIT_EXCEEDED" => "Split the input or raise the limit.",
        "WORKER_CRASHED" => "Check the input (a damaged or hostile file can do this), or give the server more memory (tessera serve --job-memory); the server log has the details.",
        "STORAGE_FULL" => "Free space on the server's data disk (or move --data to a larger one), then create the asset again.",
        "PERMISSION_DENIED" => "Give the server's user write access to its --data folder, then create the asset again.",
        "STORAGE_ERROR" => "Check the server's --data folder (exists, writable, not full), then create the asset again.",
        "MISSING_TERRAIN" => "Upload the DEM as a RASTER_TERRAIN asset first, wait for COMPLETE, and pass its id as options.baseTerrainId.",
        _ => "Retry with a new asset; if it fails again, report a bug with the server log.",
    }
}

/// Replace the sources folder in a message by nothing, so paths read as uploaded; the
/// first such path is the file at fault.
fn relative(message: &str, sources: &Path) -> (String, Option<String>) {
    let prefix = format!("{}/", sources.display());
    let file = message.find(&prefix).map(|i| {
        let rest = &message[i + prefix.len()..];
        let end = rest.find(": ").unwrap_or(rest.len());
        rest[..end].to_string()
    });
    (message.replace(&prefix, ""), file)
}

impl Failure {
    fn describe(self, sources: &Path, stage: Option<&str>) -> (Status, ProcessingError) {
        let stage = stage.unwrap_or("INSPECT").to_string();
        let (status, code, message) = match self {
            Failure::Pipeline(e) => {
                let status = match e.kind() {
                    ErrorKind::Data => Status::DataError,
                    ErrorKind::Internal | ErrorKind::Environment | ErrorKind::Canceled => {
                        Status::Error
                    }
                };
                let code = e.code();
                (status, code, e.to_string())
            }
            Failure::Data { code, message } => (Status::DataError, code, message),
            Failure::Internal(m) => (Status::Error, "INTERNAL_ERROR", m),
            Failure::Canceled => (
                Status::Error,
                "INTERNAL_ERROR",
                "the job was cancelled".into(),
            ),
        };
        let (message, file) = relative(&message, sources);
        (
            status,
            ProcessingError {
                code: code.into(),
                message,
                file,
                stage,
                mitigation: mitigation(code).into(),
            },
        )
    }
}

fn warnings(report: &JobReport, sources: &Path) -> Vec<ProcessingWarning> {
    let mut out: Vec<ProcessingWarning> = Vec::new();
    for w in &report.warnings {
        let (message, _) = relative(&w.message, sources);
        let code = w.code.to_ascii_uppercase().replace('-', "_");
        // Repeats of a code are counted under its first message, except ignored
        // options: each names a different option.
        let same = |x: &ProcessingWarning| {
            x.code == code && (code != "OPTION_IGNORED" || x.message == message)
        };
        if let Some(x) = out.iter_mut().find(|x| same(x)) {
            x.count += 1;
        } else if out.len() < 100 {
            out.push(ProcessingWarning {
                code,
                message,
                count: 1,
            });
        }
    }
    out
}

/// Extensions each source type reads (lower case).
fn accepted(source_type: &str) -> &'static [&'static str] {
    match source_type {
        "POINT_CLOUD" => &["las", "laz"],
        "RASTER_TERRAIN" | "RASTER_IMAGERY" => &["tif", "tiff"],
        "3D_MODEL" | "3D_CAPTURE" | "GLTF" => &["glb", "gltf"],
        "CITYGML" => &["gml", "xml", "citygml"],
        "CZML" => &["czml"],
        "KML" => &["kml", "kmz"],
        "GEOJSON" => &["geojson", "json"],
        _ => &[],
    }
}

fn ext_of(p: &Path) -> String {
    p.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The pipeline job of an asset: its inputs, output, options and budget.
fn base_spec(task: &Task, layout: &Layout, inputs: Vec<PathBuf>) -> Result<JobSpec, Failure> {
    let mut spec = JobSpec::new(inputs, layout.output(task.id));
    spec.temp_dir = Some(layout.work(task.id));
    // Textures, buffers and codelists are read from the asset's own upload only.
    spec.refs_root = Some(layout.sources(task.id));
    spec.budget = task.budget;
    if let Some(c) = task.options[option::INPUT_CRS].as_str() {
        spec.input_crs = Some(CrsSpec::parse(c).map_err(|e| Failure::Data {
            code: "UNKNOWN_CRS",
            message: format!("options.inputCrs: {e}"),
        })?);
    }
    Ok(spec)
}

fn run_spec(
    runner: &dyn JobRunner,
    spec: &JobSpec,
    progress: &Progress,
) -> Result<JobReport, Failure> {
    runner.run(spec, progress).map_err(|e| match e {
        PipelineError::Canceled => Failure::Canceled,
        e => Failure::Pipeline(e),
    })
}

/// Run one asset's job; `Ok` gives the report and the endpoint's entry file.
fn process(
    task: &Task,
    layout: &Layout,
    runner: &dyn JobRunner,
    progress: &Progress,
) -> Result<(JobReport, String), Failure> {
    let sources = layout.sources(task.id);
    let work = layout.work(task.id);
    let _ = std::fs::remove_dir_all(&work);
    let source_type = task.source_type().to_string();
    if source_type == "CITYGML" {
        return process_citygml(task, layout, runner, progress);
    }
    // Zips are unpacked into the work folder; everything else is read where it was
    // uploaded.
    let unzipped = work.join("unzipped");
    let mut candidates = Vec::new();
    for f in list_files(&sources) {
        if ext_of(&f) != "zip" {
            candidates.push(f);
            continue;
        }
        let rel = f.strip_prefix(&sources).unwrap_or(&f);
        crate::unzip::extract(&f, &unzipped.join(rel).with_extension("")).map_err(|message| {
            Failure::Data {
                code: "INVALID_ARCHIVE",
                message: format!("{}: {message}", f.display()),
            }
        })?;
    }
    candidates.extend(list_files(&unzipped));
    progress.check().map_err(|_| Failure::Canceled)?;
    let ok_ext = accepted(&source_type);
    let inputs: Vec<PathBuf> = candidates
        .into_iter()
        .filter(|f| ok_ext.contains(&ext_of(f).as_str()))
        .collect();
    if inputs.is_empty() {
        return Err(Failure::Data {
            code: "UNSUPPORTED_FILE_TYPE",
            message: format!(
                "no uploaded file has an extension {source_type} reads ({})",
                ok_ext.join(", ")
            ),
        });
    }
    let output = layout.output(task.id);
    let mut spec = base_spec(task, layout, inputs.clone())?;
    if inputs.iter().any(|f| f.starts_with(&unzipped)) {
        // Unpacked files refer to each other inside the unpacked folder.
        spec.refs_root = Some(work.clone());
    }
    let entry;
    match (task.type_.as_str(), source_type.as_str()) {
        ("3DTILES", "POINT_CLOUD") => {
            spec.target = Target::Tiles3d;
            spec.source = Some(Source::PointCloud);
            let (compression, warning) =
                point_compression(task.options[option::GEOMETRY_COMPRESSION].as_str());
            spec.tiling.compression = compression;
            spec.tiling.tree = match task.options[option::TILING].as_str() {
                Some("IMPLICIT") => TreeLayout::Implicit,
                Some("EXPLICIT") => TreeLayout::Explicit,
                _ => TreeLayout::Auto,
            };
            spec.tiling.attributes = task.options[option::ATTRIBUTES].as_array().map(|l| {
                l.iter()
                    .filter_map(|n| n.as_str().map(String::from))
                    .collect()
            });
            entry = "tileset.json".to_string();
            let mut report = run_spec(runner, &spec, progress)?;
            report.warnings.extend(warning);
            return Ok((report, entry));
        }
        ("3DTILES", "3D_MODEL" | "3D_CAPTURE") => {
            spec.target = Target::Tiles3d;
            spec.source = Some(Source::Model);
            spec.inputs = vec![inputs[0].clone()];
            spec.model.position = crate::wire::position(&task.options[option::POSITION]);
            entry = "tileset.json".to_string();
        }
        ("TERRAIN", "RASTER_TERRAIN") => {
            spec.target = Target::Terrain;
            spec.terrain.normals = true;
            spec.terrain.watermask = task.options[option::WATER_MASK].as_bool() == Some(true);
            entry = String::new();
        }
        ("IMAGERY", "RASTER_IMAGERY") => {
            spec.target = Target::Imagery;
            // Every tile inside the bounds exists (transparent where there is no data), so
            // clients never see 404s inside the layer.
            spec.imagery.write_empty = true;
            entry = String::new();
        }
        ("GLTF" | "CZML" | "KML" | "GEOJSON", _) => {
            return serve_as_is(task, &spec, &output, progress);
        }
        (t, s) => {
            return Err(Failure::Data {
                code: "UNSUPPORTED_FILE_TYPE",
                message: format!(
                    "{s} → {t} conversion is not available in this version of Tessera"
                ),
            })
        }
    }
    let report = run_spec(runner, &spec, progress)?;
    Ok((report, entry))
}

/// Options of an asset that its conversion does not apply, each with the reason, for
/// `OPTION_IGNORED` warnings: keys its `sourceType` does not read (unknown ones
/// included), and ion options whose requested value this version cannot make (values
/// that ask for what the route does anyway, such as `textureFormat: AUTO` or
/// `heightReference: WGS84` for terrain, are honoured and give none).
pub fn ignored_options(source_type: &str, options: &Value) -> Vec<tessera_pipeline::Warning> {
    let Some(o) = options.as_object() else {
        return Vec::new();
    };
    let reads: &[&str] = match source_type {
        "POINT_CLOUD" => &[
            option::GEOMETRY_COMPRESSION,
            option::TILING,
            option::ATTRIBUTES,
        ],
        "3D_MODEL" | "3D_CAPTURE" => &[option::POSITION],
        "RASTER_TERRAIN" => &[option::WATER_MASK],
        "CITYGML" => &[option::CLAMP_TO_TERRAIN, option::BASE_TERRAIN_ID],
        _ => &[],
    };
    let mut out = Vec::new();
    let mut ignore = |key: &str, why: String| {
        out.push(tessera_pipeline::Warning {
            code: "option-ignored",
            message: format!("options.{key}: {why}"),
        });
    };
    for (key, v) in o {
        let key = key.as_str();
        if key == option::SOURCE_TYPE || key == option::INPUT_CRS || reads.contains(&key) {
            continue;
        }
        let text = v.as_str().map(str::to_ascii_uppercase);
        let flag = v.as_bool();
        let meshes = matches!(source_type, "CITYGML" | "3D_MODEL" | "3D_CAPTURE");
        match key {
            "heightReference" if source_type == "RASTER_TERRAIN" => {
                if text.as_deref() != Some("WGS84") {
                    ignore(
                        key,
                        format!(
                            "{v} is not applied: this version adds no geoid model, so the DEM's heights are kept as stored (as WGS84 would); pass WGS84 to say so, or convert the DEM to ellipsoidal heights first"
                        ),
                    );
                }
            }
            "toMeters" if source_type == "RASTER_TERRAIN" => {
                if v.as_f64() != Some(1.0) {
                    ignore(
                        key,
                        format!("{v} is not applied: heights are taken as metres"),
                    );
                }
            }
            "baseTerrainId" if source_type == "RASTER_TERRAIN" => {
                if !v.is_null() {
                    ignore(key, "terrain is not filled from a base terrain in this version; outside the DEM there are no tiles".into());
                }
            }
            "geometryCompression" if meshes => {
                if text.as_deref() != Some("NONE") {
                    ignore(
                        key,
                        format!("{v} is not applied: mesh tiles are written uncompressed in this version (as NONE)"),
                    );
                }
            }
            "textureFormat" if meshes => {
                if text.as_deref() != Some("AUTO") {
                    ignore(
                        key,
                        format!("{v} is not applied: textures keep their JPEG/PNG encoding (as AUTO)"),
                    );
                }
            }
            "disableColors" | "disableTextures" if meshes => {
                if flag != Some(false) {
                    ignore(
                        key,
                        format!("{v} is not applied: colours and textures are always kept in this version"),
                    );
                }
            }
            option::POSITION if source_type == "POINT_CLOUD" => ignore(
                key,
                "point clouds are placed by their CRS (the file's, or options.inputCrs), not by a position".into(),
            ),
            _ => ignore(
                key,
                format!("not an option of sourceType {source_type}; ignored"),
            ),
        }
    }
    out
}

/// ion's `geometryCompression` for point clouds. Draco (ion's default) has no
/// glTF extension for point primitives, so an explicit `DRACO` gets meshopt and a
/// warning saying why; unset means Tessera's default, meshopt.
fn point_compression(
    requested: Option<&str>,
) -> (PointCompression, Option<tessera_pipeline::Warning>) {
    match requested {
        Some("NONE") => (PointCompression::None, None),
        Some("DRACO") => (
            PointCompression::Meshopt,
            Some(tessera_pipeline::Warning {
                code: "draco-not-for-points",
                message: "geometryCompression DRACO: KHR_draco_mesh_compression covers triangle meshes, not point primitives, so the point tiles use EXT_meshopt_compression (quantized positions, meshopt-compressed attributes), which CesiumJS reads; pass MESHOPT to say so, or NONE for plain tiles".into(),
            }),
        ),
        _ => (PointCompression::Meshopt, None),
    }
}

/// CityGML: the upload folder as it is; the pipeline reads the documents, zips
/// included (entries checked as it goes), and finds textures and codelists beside them.
fn process_citygml(
    task: &Task,
    layout: &Layout,
    runner: &dyn JobRunner,
    progress: &Progress,
) -> Result<(JobReport, String), Failure> {
    let mut spec = base_spec(task, layout, vec![layout.sources(task.id)])?;
    spec.target = Target::Tiles3d;
    spec.source = Some(Source::CityModel);
    if task.options[option::CLAMP_TO_TERRAIN].as_bool() == Some(true) {
        let id = task.options[option::BASE_TERRAIN_ID].as_i64().unwrap_or(0);
        let terrain = layout.output(id);
        if !terrain.join("layer.json").is_file() {
            return Err(Failure::Data {
                code: "MISSING_TERRAIN",
                message: format!(
                    "options.baseTerrainId {id} is not a completed TERRAIN asset of this server"
                ),
            });
        }
        spec.city.clamp_to_terrain = Some(terrain);
    }
    let report = run_spec(runner, &spec, progress)?;
    Ok((report, "tileset.json".into()))
}

/// Native types: the single uploaded file (a glTF with its resources) is served as it is,
/// once it has been read as what it claims to be.
fn serve_as_is(
    task: &Task,
    spec: &JobSpec,
    output: &Path,
    progress: &Progress,
) -> Result<(JobReport, String), Failure> {
    progress.enter(Stage::Read);
    let main = &spec.inputs[0];
    let mut report = JobReport::default();
    match task.type_.as_str() {
        "GLTF" => {
            let warnings = tessera_pipeline::Warnings::default();
            let root = tessera_pipeline::RefRoot::for_input(spec, main);
            let model = tessera_pipeline::models::read_model(main, &root, &spec.budget, &warnings)
                .map_err(|e| Failure::Pipeline(e.into()))?;
            report.triangles_read = model.triangles;
            report.warnings = warnings.take().0;
        }
        t => crate::native::check(t, main).map_err(|message| Failure::Data {
            code: "UNREADABLE_FILE",
            message: format!("{}: {message}", main.display()),
        })?,
    }
    let src_dir = main.parent().unwrap_or(Path::new("."));
    let _ = std::fs::remove_dir_all(output);
    let io = |e: std::io::Error, p: &Path| {
        Failure::Pipeline(
            tessera_pipeline::error::OutputError::Io {
                path: p.into(),
                source: e,
            }
            .into(),
        )
    };
    for f in list_files(src_dir) {
        let rel = f.strip_prefix(src_dir).unwrap_or(&f);
        let dest = output.join(rel);
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p).map_err(|e| io(e, p))?;
        }
        std::fs::copy(&f, &dest).map_err(|e| io(e, &dest))?;
    }
    let entry = main
        .strip_prefix(src_dir)
        .unwrap_or(main)
        .to_string_lossy()
        .replace('\\', "/");
    progress.finish();
    Ok((report, entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_a_route_does_not_apply_are_reported_with_the_reason() {
        let codes = |st: &str, o: Value| -> Vec<String> {
            ignored_options(st, &o)
                .into_iter()
                .inspect(|w| assert_eq!(w.code, "option-ignored"))
                .map(|w| w.message)
                .collect()
        };
        // Read by the route, or asking for what it does anyway: nothing to report.
        assert!(codes(
            "POINT_CLOUD",
            json!({"sourceType": "POINT_CLOUD", "inputCrs": "EPSG:28992", "geometryCompression": "MESHOPT", "tiling": "AUTO"})
        )
        .is_empty());
        assert!(codes(
            "RASTER_TERRAIN",
            json!({"sourceType": "RASTER_TERRAIN", "heightReference": "WGS84", "toMeters": 1.0, "waterMask": true})
        )
        .is_empty());
        assert!(codes(
            "CITYGML",
            json!({"sourceType": "CITYGML", "textureFormat": "AUTO", "geometryCompression": "NONE", "disableTextures": false})
        )
        .is_empty());
        // Not applied: each named with its reason.
        let t = codes(
            "RASTER_TERRAIN",
            json!({"sourceType": "RASTER_TERRAIN", "heightReference": "MEAN_SEA_LEVEL", "toMeters": 0.3048, "clampToTerrain": true}),
        );
        assert_eq!(t.len(), 3, "{t:?}");
        assert!(t
            .iter()
            .any(|m| m.starts_with("options.heightReference:") && m.contains("geoid")));
        assert!(t.iter().any(|m| m.starts_with("options.toMeters:")));
        assert!(t
            .iter()
            .any(|m| m.starts_with("options.clampToTerrain:") && m.contains("RASTER_TERRAIN")));
        let c = codes(
            "CITYGML",
            json!({"sourceType": "CITYGML", "geometryCompression": "DRACO", "textureFormat": "KTX2", "disableColors": true, "shiny": 1}),
        );
        assert_eq!(c.len(), 4, "{c:?}");
        assert!(c
            .iter()
            .any(|m| m.starts_with("options.shiny: not an option")));
        let p = codes(
            "POINT_CLOUD",
            json!({"sourceType": "POINT_CLOUD", "position": [1, 2, 3], "waterMask": true}),
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p
            .iter()
            .any(|m| m.starts_with("options.position:") && m.contains("CRS")));
    }

    #[test]
    fn ion_geometry_compression_maps_onto_point_tiles() {
        assert_eq!(point_compression(None), (PointCompression::Meshopt, None));
        assert_eq!(
            point_compression(Some("MESHOPT")),
            (PointCompression::Meshopt, None)
        );
        assert_eq!(
            point_compression(Some("NONE")),
            (PointCompression::None, None)
        );
        let (c, w) = point_compression(Some("DRACO"));
        assert_eq!(c, PointCompression::Meshopt);
        let w = w.expect("a warning for DRACO");
        assert_eq!(w.code, "draco-not-for-points");
        assert!(w.message.contains("point primitives"));
    }

    #[test]
    fn environment_failures_are_errors_with_their_codes() {
        let io = |kind| {
            Failure::Pipeline(
                tessera_pipeline::error::OutputError::Io {
                    path: "/data/assets/1000/0/0/0.png".into(),
                    source: std::io::Error::from(kind),
                }
                .into(),
            )
        };
        let sources = Path::new("/data/sources/1000");
        for (kind, code) in [
            (std::io::ErrorKind::StorageFull, "STORAGE_FULL"),
            (std::io::ErrorKind::PermissionDenied, "PERMISSION_DENIED"),
            (std::io::ErrorKind::ReadOnlyFilesystem, "PERMISSION_DENIED"),
            (std::io::ErrorKind::NotFound, "STORAGE_ERROR"),
        ] {
            let (status, e) = io(kind).describe(sources, Some("TILE"));
            assert_eq!(status, Status::Error);
            assert_eq!(e.code, code);
            assert!(!e.mitigation.contains("report a bug"), "{}", e.mitigation);
        }
    }

    #[test]
    fn messages_lose_the_sources_folder_and_name_the_file() {
        let (m, f) = relative(
            "/data/sources/1000/dem/a.tif: no georeferencing",
            Path::new("/data/sources/1000"),
        );
        assert_eq!(m, "dem/a.tif: no georeferencing");
        assert_eq!(f.as_deref(), Some("dem/a.tif"));
    }
}
