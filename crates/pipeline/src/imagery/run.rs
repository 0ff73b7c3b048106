//! One imagery job: open the sources, choose the zooms, build the pyramid, write the
//! tilemapresource.xml, commit.

use super::pyramid::Pyramid;
use super::source::ImagerySource;
use super::tms::{tilemapresource, wmts_capabilities, TmsDoc};
use crate::detect::{discover, InputFormat};
use crate::error::{InputError, PipelineError};
use crate::job::JobSpec;
use crate::progress::Progress;
use crate::raster::{ChunkCache, JOB_CACHE_BYTES};
use crate::report::{InputSummary, JobReport, Warnings};
use crate::sink::{DirectorySink, TileSink};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use tessera_model::{QuadTileId, Stage, WorkKind};

/// Deepest zoom accepted.
const MAX_ZOOM: u8 = 24;

pub fn run_imagery(spec: &JobSpec, progress: &Progress) -> Result<JobReport, PipelineError> {
    let opts = &spec.imagery;
    let warnings = Warnings::default();
    progress.plan(&[(Stage::Tile, 1.0)]);
    progress.enter(Stage::Inspect);
    let files = discover(&spec.inputs, InputFormat::Tiff, &warnings)?;
    let cache = ChunkCache::new(JOB_CACHE_BYTES);
    let scheme = opts.profile;
    let sources = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            ImagerySource::open(
                i as u32,
                f,
                scheme,
                spec.input_crs.as_ref(),
                opts.scale,
                &cache,
                &warnings,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    for s in &sources {
        s.tiff
            .check_memory(&spec.budget, rayon::current_num_threads(), JOB_CACHE_BYTES)?;
    }
    progress.check()?;

    let mut footprint = sources[0].footprint;
    let mut extent_deg = sources[0].extent_deg;
    let mut finest = f64::INFINITY;
    for s in &sources {
        let f = &s.footprint;
        footprint = footprint.union(f);
        let e = s.extent_deg;
        extent_deg = [
            extent_deg[0].min(e[0]),
            extent_deg[1].min(e[1]),
            extent_deg[2].max(e[2]),
            extent_deg[3].max(e[3]),
        ];
        // Like GDAL's suggested warp output: keep the pixel count along the diagonal.
        let res =
            f.width().hypot(f.height()) / f64::from(s.tiff.width).hypot(f64::from(s.tiff.height));
        finest = finest.min(res);
    }
    let tile_px = opts.tile_px;
    let default_max = scheme.level_for_resolution(finest, tile_px, MAX_ZOOM);
    let max_zoom = opts.max_zoom.unwrap_or(default_max).min(MAX_ZOOM);
    let span_px = (footprint.width().max(footprint.height()) / finest).max(1.0);
    let default_min = scheme
        .level_for_resolution(finest * span_px / f64::from(tile_px), tile_px, MAX_ZOOM)
        .min(max_zoom);
    let min_zoom = opts.min_zoom.unwrap_or(default_min);
    if min_zoom > max_zoom {
        return Err(InputError::NoInputs(format!(
            "--min-zoom {min_zoom} is above the maximum zoom {max_zoom}"
        ))
        .into());
    }

    let base_total = scheme
        .tile_range(max_zoom, &footprint)
        .map(|(x0, y0, x1, y1)| u64::from(x1 - x0 + 1) * u64::from(y1 - y0 + 1))
        .unwrap_or(0);
    let roots: Vec<QuadTileId> = match scheme.tile_range(min_zoom, &footprint) {
        Some((x0, y0, x1, y1)) => (y0..=y1)
            .flat_map(|y| (x0..=x1).map(move |x| QuadTileId::new(min_zoom, x, y)))
            .collect(),
        None => Vec::new(),
    };
    let sink = DirectorySink::new(&spec.output)?;
    progress.enter(Stage::Tile);
    progress.counting(WorkKind::FinestTiles, base_total);
    let pyramid = Pyramid {
        sources: &sources,
        cache: &cache,
        scheme,
        opts,
        min_zoom,
        max_zoom,
        footprint,
        sink: &sink,
        progress,
        base_total,
        base_done: AtomicU64::new(0),
        tiles_written: AtomicU64::new(0),
        per_level: (0..=MAX_ZOOM).map(|_| AtomicU64::new(0)).collect(),
    };
    roots
        .par_iter()
        .try_for_each(|r| pyramid.build(*r).map(|_| ()))?;
    progress.check()?;

    progress.enter(Stage::Commit);
    let title = match files.as_slice() {
        [one] => one.file_name().map(|n| n.to_string_lossy().into_owned()),
        _ => spec.inputs[0]
            .file_name()
            .map(|n| n.to_string_lossy().into_owned()),
    }
    .unwrap_or_else(|| "imagery".into());
    let doc = TmsDoc {
        title: &title,
        scheme,
        extent_deg,
        min_zoom,
        max_zoom,
        tile_px,
        format: opts.format,
    };
    sink.write("tilemapresource.xml", tilemapresource(&doc).as_bytes())?;
    if opts.wmts {
        sink.write("WMTSCapabilities.xml", wmts_capabilities(&doc).as_bytes())?;
    }
    let tiles = pyramid.tiles_written.load(Ordering::Relaxed);
    let empty_levels: Vec<u8> = (min_zoom..=max_zoom)
        .filter(|z| pyramid.per_level[usize::from(*z)].load(Ordering::Relaxed) == 0)
        .collect();
    if !empty_levels.is_empty() {
        warnings.push(
            "empty-levels",
            format!("no tile with data at zoom(s) {empty_levels:?}: the rasters hold only nodata/transparent pixels there"),
        );
    }
    for s in &sources {
        if let Some((level, n)) = s.tiff.implausible_pixels() {
            let of = match level {
                0 => "of the full-resolution image".to_string(),
                l => format!("of overview {l}"),
            };
            warnings.push(
                "infinite-values",
                format!(
                    "{}: {n} pixels {of} hold infinite values; they are shown transparent",
                    s.tiff.path.display()
                ),
            );
        }
    }
    drop(pyramid);
    let bytes_written = Box::new(sink).commit()?;
    progress.finish();
    let (warnings, warnings_dropped) = warnings.take();
    Ok(JobReport {
        output: spec.output.clone(),
        inputs: sources
            .iter()
            .map(|s| InputSummary {
                path: s.tiff.path.clone(),
                points: 0,
                raster: s.tiff.describe(),
                raster_chunks_read: cache.decoded_per_level(s.id, s.tiff.levels.len()),
                crs: s.crs.label(),
                crs_source: s.crs_source.to_string(),
                ..Default::default()
            })
            .collect(),
        points_read: 0,
        points_written: 0,
        points_thinned: 0,
        tiles,
        min_level: min_zoom,
        max_level: max_zoom,
        bytes_written,
        extent_deg,
        warnings,
        warnings_dropped,
        ..Default::default()
    })
}
