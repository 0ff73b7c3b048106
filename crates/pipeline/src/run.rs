//! `run`: one job from inputs to committed output.

use crate::detect::{discover, InputFormat};
use crate::error::{OutputError, PipelineError};
use crate::job::{JobSpec, Target};
use crate::pointcloud::{self, TileJob};
use crate::progress::Progress;
use crate::report::{JobReport, Warnings};
use crate::route::{route_tiles, warn_left_out, Source};
use crate::sink::{ArchiveSink, DirectorySink, TileSink};
use std::path::{Path, PathBuf};
use tessera_model::Stage;

/// Spill folders are named `.tessera-spill-{pid}-…`, so a later run can tell those of
/// dead runs.
const SPILL_PREFIX: &str = ".tessera-spill-";

fn spill_parent(spec: &JobSpec) -> PathBuf {
    spec.temp_dir.clone().unwrap_or_else(|| {
        spec.output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    })
}

/// Convert `spec.inputs` into `spec.output`. Runs on the current rayon pool; nothing is
/// visible at the output until the job succeeds.
pub fn run(spec: &JobSpec, progress: &Progress) -> Result<JobReport, PipelineError> {
    let mut report = run_target(spec, progress)?;
    report.stage_seconds = progress
        .stage_seconds()
        .into_iter()
        .filter(|(s, _)| *s != Stage::Done)
        .map(|(s, t)| (s, (t * 1000.0).round() / 1000.0))
        .collect();
    Ok(report)
}

fn run_target(spec: &JobSpec, progress: &Progress) -> Result<JobReport, PipelineError> {
    match spec.target {
        Target::Tiles3d => {
            let routed = route_tiles(spec)?;
            let left_out = Warnings::default();
            warn_left_out(&routed, &left_out);
            let mut report = match routed.source {
                Source::CityModel => crate::citygml::run_citygml(spec, progress)?,
                Source::Model => crate::models::run_model(spec, progress)?,
                Source::PointCloud => run_points(spec, progress)?,
            };
            let (mut first, dropped) = left_out.take();
            first.append(&mut report.warnings);
            report.warnings = first;
            report.warnings_dropped += dropped;
            Ok(report)
        }
        Target::Imagery => crate::imagery::run_imagery(spec, progress),
        Target::Terrain => crate::terrain::run_terrain(spec, progress),
    }
}

fn run_points(spec: &JobSpec, progress: &Progress) -> Result<JobReport, PipelineError> {
    let warnings = Warnings::default();
    progress.enter(Stage::Inspect);
    let files = discover(&spec.inputs, InputFormat::Las, &warnings)?;
    let inputs = pointcloud::prepare(spec, &files, &warnings)?;
    let total: u64 = inputs.sources.iter().map(|s| s.points).sum();
    progress.set_points_total(total);
    let (frame, cube, extent_deg) = pointcloud::place(&inputs, &warnings)?;
    progress.check()?;

    let parent = spill_parent(spec);
    std::fs::create_dir_all(&parent).map_err(|source| OutputError::Io {
        path: parent.clone(),
        source,
    })?;
    crate::sink::remove_stale(&parent, SPILL_PREFIX);
    let spill = tempfile::Builder::new()
        .prefix(&format!("{SPILL_PREFIX}{}-", std::process::id()))
        .tempdir_in(&parent)
        .map_err(|source| PipelineError::Spill {
            path: parent.clone(),
            source,
        })?;
    let sink: Box<dyn TileSink> = if spec.archive {
        Box::new(ArchiveSink::new(&spec.output)?)
    } else {
        Box::new(DirectorySink::new(&spec.output)?)
    };
    let result = pointcloud::tile(TileJob {
        spec,
        inputs: &inputs,
        frame: &frame,
        cube,
        spill_dir: spill.path(),
        sink: sink.as_ref(),
        progress,
    })?;
    if result.points_written + result.points_thinned != total {
        return Err(PipelineError::Internal(format!(
            "{} points read but {} written and {} thinned",
            total, result.points_written, result.points_thinned
        )));
    }
    progress.check()?;
    progress.enter(Stage::Commit);
    let bytes_written = sink.commit()?;
    drop(spill);
    progress.finish();
    let (warnings, warnings_dropped) = warnings.take();
    Ok(JobReport {
        output: spec.output.clone(),
        inputs: inputs.summaries,
        points_read: total,
        points_written: result.points_written,
        points_thinned: result.points_thinned,
        tiles: result.tiles,
        min_level: 0,
        max_level: result.max_level,
        bytes_written,
        extent_deg,
        warnings,
        warnings_dropped,
        ..Default::default()
    })
}
