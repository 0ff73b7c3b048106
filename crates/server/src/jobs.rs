//! The job queue: one worker thread takes queued assets in order, turns their options
//! into a pipeline `JobSpec`, runs it through a [`JobRunner`] and records the outcome.
//! Progress is read from the pipeline's snapshot, never pushed by it.

use crate::store::{AssetRow, Status, Store};
use crate::util::{dir_size, list_files, now_rfc3339};
use crate::wire::{option, ProcessingError, ProcessingWarning};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tessera_model::{CrsSpec, Stage};
use tessera_pipeline::{ErrorKind, JobReport, JobSpec, PipelineError, Progress, Target};

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
pub fn worker(store: Arc<Store>, jobs: Arc<Jobs>, runner: Arc<dyn JobRunner>, layout: Layout) {
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
        if store.update_asset(&asset).is_err() {
            continue;
        }
        let progress = Arc::new(Progress::new());
        jobs.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, progress.clone());
        let outcome = process(&asset, &layout, runner.as_ref(), &progress);
        // The job stays listed as running until its row holds the outcome, so readers of
        // percentComplete never see the row's starting 0 in between.
        let finished = || {
            jobs.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        };
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
        match outcome {
            Ok((report, entry)) => {
                asset.status = Status::Complete;
                asset.percent = 100;
                asset.stage = Some("DONE".into());
                asset.entry = entry;
                asset.tiles_written = asset.tiles_written.max(report.tiles);
                asset.bytes = dir_size(&layout.output(id)) + dir_size(&layout.sources(id));
                asset.warnings = warnings(&report, &layout.sources(id));
            }
            Err(Failure::Canceled) if jobs.stop.load(Ordering::SeqCst) => {
                // Shutting down: the job runs again from scratch on the next start.
                asset.status = Status::NotStarted;
                asset.percent = 0;
                asset.stage = Some("QUEUED".into());
                asset.finished_at = None;
            }
            Err(f) => {
                let (status, error) = f.describe(&layout.sources(id), asset.stage.as_deref());
                asset.status = status;
                // Where it stopped: percentComplete never goes backwards.
                asset.percent = (progress.snapshot().percent.floor() as u8).min(99);
                asset.error = Some(error);
            }
        }
        let _ = store.update_asset(&asset);
        finished();
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
                    _ => Status::Error,
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
        if let Some(x) = out.iter_mut().find(|x| x.code == code) {
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

/// Run one asset's job; `Ok` gives the report and the endpoint's entry file.
fn process(
    asset: &AssetRow,
    layout: &Layout,
    runner: &dyn JobRunner,
    progress: &Progress,
) -> Result<(JobReport, String), Failure> {
    let sources = layout.sources(asset.id);
    let work = layout.work(asset.id);
    let _ = std::fs::remove_dir_all(&work);
    let source_type = asset.options[option::SOURCE_TYPE]
        .as_str()
        .unwrap_or("")
        .to_string();
    if source_type == "CITYGML" {
        return process_citygml(asset, layout, runner, progress);
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
    let output = layout.output(asset.id);
    let mut spec = JobSpec::new(inputs.clone(), output.clone());
    spec.temp_dir = Some(work.clone());
    if let Some(c) = asset.options[option::INPUT_CRS].as_str() {
        spec.input_crs = Some(CrsSpec::parse(c).map_err(|e| Failure::Data {
            code: "UNKNOWN_CRS",
            message: format!("options.inputCrs: {e}"),
        })?);
    }
    let entry;
    match (asset.type_.as_str(), source_type.as_str()) {
        ("3DTILES", "POINT_CLOUD") => {
            spec.target = Target::Tiles3d;
            spec.inputs = inputs;
            entry = "tileset.json".to_string();
        }
        ("3DTILES", "3D_MODEL" | "3D_CAPTURE") => {
            spec.target = Target::Tiles3d;
            spec.inputs = vec![inputs[0].clone()];
            spec.model.position = crate::wire::position(&asset.options[option::POSITION]);
            entry = "tileset.json".to_string();
        }
        ("TERRAIN", "RASTER_TERRAIN") => {
            spec.target = Target::Terrain;
            spec.inputs = inputs;
            spec.terrain.normals = true;
            spec.terrain.watermask = asset.options[option::WATER_MASK].as_bool() == Some(true);
            entry = String::new();
        }
        ("IMAGERY", "RASTER_IMAGERY") => {
            spec.target = Target::Imagery;
            spec.inputs = inputs;
            // Every tile inside the bounds exists (transparent where there is no data), so
            // clients never see 404s inside the layer.
            spec.imagery.write_empty = true;
            entry = String::new();
        }
        ("GLTF" | "CZML" | "KML" | "GEOJSON", _) => {
            // The model's buffers and images are read only from inside the upload (or the
            // folder its zip was unpacked into).
            let refs = if inputs[0].starts_with(&unzipped) {
                &unzipped
            } else {
                &sources
            };
            let refs = tessera_pipeline::RefRoot::within(refs);
            return serve_as_is(asset, &inputs, &output, &refs, progress);
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
    let report = runner.run(&spec, progress).map_err(|e| match e {
        PipelineError::Canceled => Failure::Canceled,
        e => Failure::Pipeline(e),
    })?;
    Ok((report, entry))
}

/// CityGML: the upload folder as it is; the pipeline reads the documents, zips
/// included (entries checked as it goes), and finds textures and codelists beside them.
fn process_citygml(
    asset: &AssetRow,
    layout: &Layout,
    runner: &dyn JobRunner,
    progress: &Progress,
) -> Result<(JobReport, String), Failure> {
    let sources = layout.sources(asset.id);
    let mut spec = JobSpec::new(vec![sources], layout.output(asset.id));
    spec.temp_dir = Some(layout.work(asset.id));
    spec.target = Target::Tiles3d;
    if let Some(c) = asset.options[option::INPUT_CRS].as_str() {
        spec.input_crs = Some(CrsSpec::parse(c).map_err(|e| Failure::Data {
            code: "UNKNOWN_CRS",
            message: format!("options.inputCrs: {e}"),
        })?);
    }
    if asset.options[option::CLAMP_TO_TERRAIN].as_bool() == Some(true) {
        let id = asset.options[option::BASE_TERRAIN_ID].as_i64().unwrap_or(0);
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
    let report = runner.run(&spec, progress).map_err(|e| match e {
        PipelineError::Canceled => Failure::Canceled,
        e => Failure::Pipeline(e),
    })?;
    Ok((report, "tileset.json".into()))
}

/// Native types: the single uploaded file (a glTF with its resources) is served as it is.
fn serve_as_is(
    asset: &AssetRow,
    inputs: &[PathBuf],
    output: &Path,
    refs: &tessera_pipeline::RefRoot,
    progress: &Progress,
) -> Result<(JobReport, String), Failure> {
    progress.enter(Stage::Read);
    let main = &inputs[0];
    let mut report = JobReport::default();
    if asset.type_ == "GLTF" {
        let warnings = tessera_pipeline::Warnings::default();
        let budget = tessera_pipeline::Budget::default();
        let model = tessera_pipeline::models::read_model(main, refs, &budget, &warnings)
            .map_err(|e| Failure::Pipeline(e.into()))?;
        report.triangles_read = model.triangles;
        report.warnings = warnings.take().0;
    }
    let src_dir = main.parent().unwrap_or(Path::new("."));
    let _ = std::fs::remove_dir_all(output);
    for f in list_files(src_dir) {
        let rel = f.strip_prefix(src_dir).unwrap_or(&f);
        let dest = output.join(rel);
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p).map_err(|e| Failure::Internal(e.to_string()))?;
        }
        std::fs::copy(&f, &dest).map_err(|e| Failure::Internal(e.to_string()))?;
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
