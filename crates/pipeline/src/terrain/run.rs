//! One terrain job: open the DEMs, choose zooms and per-zoom source levels, mesh and encode
//! every tile (in parallel), write layer.json, commit.

use super::mesh::rtin;
use super::qmesh::{encode, Extensions, GridMesh};
use super::sample::{pixels_per_step, plan_level, sample_grid, Dem, LevelPlan};
use super::TerrainOptions;
use crate::detect::{discover, InputFormat};
use crate::error::{OutputError, PipelineError, RasterError};
use crate::imagery::{render, ImagerySource, Resampling};
use crate::job::JobSpec;
use crate::progress::Progress;
use crate::raster::{read_level_reduced, ChunkCache, PlacedRaster, JOB_CACHE_BYTES};
use crate::report::{InputSummary, JobReport, Warnings};
use crate::sink::{DirectorySink, TileSink};
use flate2::write::GzEncoder;
use rayon::prelude::*;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use tessera_model::{QuadTileId, Rect, Stage, TilingScheme, WorkKind};

/// Grid points along a tile edge: 2^7 + 1 (at most 16 641 vertices, below CesiumJS's
/// 65 536-vertex limit for 16-bit indices).
pub const GRID: usize = 129;
const MAX_ZOOM: u8 = 22;
const SCHEME: TilingScheme = TilingScheme::GeographicQuad;

/// Tiles written at each zoom, as inclusive (x0, y0, x1, y1) ranges with rows from the north.
fn tile_ranges(footprint: &Rect, max_zoom: u8) -> Vec<(u32, u32, u32, u32)> {
    (0..=max_zoom)
        .map(|z| {
            if z == 0 {
                (0, 0, 1, 0)
            } else {
                SCHEME.tile_range(z, footprint).unwrap_or((0, 0, 0, 0))
            }
        })
        .collect()
}

fn open_dems(
    spec: &JobSpec,
    files: &[PathBuf],
    warnings: &Warnings,
) -> Result<Vec<Dem>, PipelineError> {
    let mut dems = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let mut raster = PlacedRaster::open(i as u32, f, SCHEME, spec.input_crs.as_ref())?;
        if let Some(why) = raster.area_of_use_problem() {
            warnings.push("crs-area-of-use", format!("{}: {why}", f.display()));
        }
        if raster.tiff.value_bands() != 1 {
            return Err(RasterError::Unsupported {
                path: f.clone(),
                what: format!("a {}-band raster as terrain", raster.tiff.value_bands()),
                hint:
                    "Terrain needs a single-band elevation model (DEM); this looks like imagery. \
                       Use --to imagery, or pass the DEM"
                        .into(),
            }
            .into());
        }
        let height_factor = if raster.crs_info.vertical_name.is_some() {
            raster.crs_info.vertical_unit_m.unwrap_or(1.0)
        } else {
            1.0
        };
        if raster.crs_info.vertical_name.is_none() {
            warnings.push(
                "heights-assumed-metres",
                format!(
                    "{}: the CRS has no vertical part; heights are taken as metres above the geoid/ellipsoid as stored",
                    f.display()
                ),
            );
        }
        raster
            .tiff
            .check_memory(&spec.budget, rayon::current_num_threads(), JOB_CACHE_BYTES)?;
        raster.tiff.plausible = Some(plausible_heights(height_factor));
        require_heights(&raster)?;
        dems.push(Dem {
            raster,
            height_factor,
        });
    }
    Ok(dems)
}

/// Heights further from sea level than this (metres) are not of the Earth: the deepest
/// trench and the highest summit are about 11 km away, the Kármán line at 100 km.
const MAX_ABS_HEIGHT_M: f64 = 100_000.0;

/// The stored values (file units) that are plausible heights.
fn plausible_heights(height_factor: f64) -> (f32, f32) {
    let unit = height_factor.abs();
    let unit = if unit.is_finite() && unit > 0.0 {
        unit
    } else {
        1.0
    };
    let max = (MAX_ABS_HEIGHT_M / unit) as f32;
    (-max, max)
}

/// "of the full-resolution image" or "of overview 2".
fn level_name(level: usize) -> String {
    match level {
        0 => "of the full-resolution image".into(),
        l => format!("of overview {l}"),
    }
}

/// Whether some pixel of `level` holds a usable height, read reduced to about a million
/// window pixels (every chunk of the level is decoded once, through a cache of its own so
/// the job's chunk counts stay those of the tiling).
fn level_has_heights(raster: &PlacedRaster, level: usize) -> Result<bool, PipelineError> {
    let cache = ChunkCache::new(64 << 20);
    let win = read_level_reduced(&cache, raster.id, &raster.tiff, level)?;
    Ok(win.alpha.iter().any(|a| *a > 0.0))
}

/// Refuse a DEM without a single usable height: the coarsest level is read first (an
/// overview pixel has data when the pixels it stands for have), the full resolution
/// only when that finds none.
fn require_heights(raster: &PlacedRaster) -> Result<(), PipelineError> {
    let coarsest = raster.tiff.levels.len() - 1;
    if level_has_heights(raster, coarsest)? || (coarsest > 0 && level_has_heights(raster, 0)?) {
        return Ok(());
    }
    let nodata = raster
        .tiff
        .nodata
        .map(|v| format!(" (nodata {v})"))
        .unwrap_or_default();
    let set_aside = match raster.tiff.implausible_pixels() {
        Some((level, n)) => format!(
            "; {n} pixels {} hold heights that are infinite or beyond ±{} km",
            level_name(level),
            MAX_ABS_HEIGHT_M / 1000.0
        ),
        None => String::new(),
    };
    Err(RasterError::NoData {
        path: raster.tiff.path.clone(),
        detail: format!(
            "every pixel of the DEM is nodata{nodata}, NaN, infinite or a height beyond ±{} km{set_aside}",
            MAX_ABS_HEIGHT_M / 1000.0
        ),
    }
    .into())
}

/// A counted warning for each DEM whose decoded chunks held implausible heights.
fn warn_implausible(dems: &[Dem], warnings: &Warnings) {
    for d in dems {
        if let Some((level, n)) = d.raster.tiff.implausible_pixels() {
            warnings.push(
                "implausible-heights",
                format!(
                    "{}: {n} pixels {} hold heights that are infinite or beyond ±{} km; they were treated as nodata",
                    d.raster.tiff.path.display(),
                    level_name(level),
                    MAX_ABS_HEIGHT_M / 1000.0
                ),
            );
        }
    }
}

pub fn run_terrain(spec: &JobSpec, progress: &Progress) -> Result<JobReport, PipelineError> {
    let opts = &spec.terrain;
    let warnings = Warnings::default();
    progress.plan(&[(Stage::Tile, 1.0)]);
    progress.enter(Stage::Inspect);
    let files = discover(&spec.inputs, InputFormat::Tiff, &warnings)?;
    let dems = open_dems(spec, &files, &warnings)?;
    let cache = ChunkCache::new(JOB_CACHE_BYTES);
    let footprint = dems
        .iter()
        .map(|d| d.raster.footprint)
        .reduce(|a, b| a.union(&b))
        .unwrap_or(dems[0].raster.footprint);
    // Per zoom and DEM: DEM pixels per grid step, and the level read.
    let steps = GRID - 1;
    let mut ratios = Vec::new();
    for d in &dems {
        ratios.push(pixels_per_step(&d.raster, SCHEME.tile_span(0), steps)?);
    }
    let native = (0..=MAX_ZOOM)
        .filter(|z| ratios.iter().any(|r| r / f64::from(1u32 << z) >= 1.0))
        .max()
        .unwrap_or(0);
    let max_zoom = opts.max_zoom.unwrap_or(native).min(MAX_ZOOM);
    let plans: Vec<Vec<LevelPlan>> = (0..=max_zoom)
        .map(|z| {
            dems.iter()
                .zip(&ratios)
                .map(|(d, r)| plan_level(&d.raster, r / f64::from(1u32 << z)))
                .collect()
        })
        .collect();
    let pixel_m = dems
        .iter()
        .map(|d| {
            let (sx, sy) = d.raster.tiff.geo.pixel_size();
            let unit = if d.raster.crs_info.kind == tessera_proj::CrsKind::Projected {
                d.raster.crs_info.horizontal_unit_m
            } else {
                111_320.0
                    * ((d.raster.extent_deg[1] + d.raster.extent_deg[3]) / 2.0)
                        .to_radians()
                        .cos()
            };
            sx.min(sy) * unit
        })
        .fold(f64::INFINITY, f64::min);
    let max_error_m = opts
        .max_error_m
        .unwrap_or((pixel_m / 2.0).clamp(0.1, 100.0));
    let ranges = tile_ranges(&footprint, max_zoom);
    let tiles: Vec<QuadTileId> = ranges
        .iter()
        .enumerate()
        .flat_map(|(z, &(x0, y0, x1, y1))| {
            (y0..=y1).flat_map(move |y| (x0..=x1).map(move |x| QuadTileId::new(z as u8, x, y)))
        })
        .collect();
    let water = match &opts.water_mask {
        Some(path) => Some(ImagerySource::open(
            dems.len() as u32,
            path,
            SCHEME,
            None,
            None,
            &cache,
            &warnings,
        )?),
        None => None,
    };
    let sink = DirectorySink::new(&spec.output)?;
    progress.enter(Stage::Tile);
    let done = AtomicU64::new(0);
    let triangles = AtomicU64::new(0);
    let missing = AtomicU64::new(0);
    let total = tiles.len() as u64;
    progress.counting(WorkKind::Tiles, total);
    tiles
        .par_iter()
        .try_for_each(|id| -> Result<(), PipelineError> {
            progress.check()?;
            let z = usize::from(id.level);
            let err = max_error_m * f64::from(1u32 << (max_zoom - id.level));
            let with_plans: Vec<(&Dem, LevelPlan)> = dems
                .iter()
                .zip(&plans[z])
                .filter(|(d, _)| d.raster.footprint.intersects(&SCHEME.tile_rect(*id)))
                .map(|(d, p)| (d, *p))
                .collect();
            let mask = match (&water, opts.watermask) {
                (_, false) => None,
                (None, true) => Some(vec![0u8]),
                (Some(w), true) => Some(water_mask(w, &cache, &SCHEME.tile_rect(*id))?),
            };
            let (bytes, tris, holes) = build_tile(
                TileInputs {
                    id: *id,
                    dems: &with_plans,
                    cache: &cache,
                    max_error_m: err,
                    watermask: mask.as_deref(),
                },
                opts,
                &ranges,
                max_zoom,
            )?;
            let path = format!("{}/{}/{}.terrain", id.level, id.x, SCHEME.tms_y(*id));
            sink.write(&path, &bytes)?;
            triangles.fetch_add(tris, Ordering::Relaxed);
            missing.fetch_add(holes, Ordering::Relaxed);
            progress.add_tile();
            progress.raise(Stage::Tile, done.fetch_add(1, Ordering::Relaxed) + 1, total);
            Ok(())
        })?;
    progress.enter(Stage::Commit);
    warn_implausible(&dems, &warnings);
    let holes = missing.load(Ordering::Relaxed);
    if holes > 0 {
        warnings.push(
            "no-data-heights",
            format!("{holes} grid points fell on nodata in a DEM and were set to 0 m (as is everything beyond the DEMs)"),
        );
    }
    let layer = super::layer::layer_json(&ranges, max_zoom, &footprint, opts);
    sink.write("layer.json", layer.as_bytes())?;
    let bytes_written = Box::new(sink).commit()?;
    progress.finish();
    let (warnings, warnings_dropped) = warnings.take();
    let tri_total = triangles.load(Ordering::Relaxed);
    Ok(JobReport {
        output: spec.output.clone(),
        inputs: dems
            .iter()
            .map(|d| InputSummary {
                path: d.raster.tiff.path.clone(),
                points: 0,
                raster: format!(
                    "{}; max error {max_error_m:.2} m at zoom {max_zoom}, {:.0} triangles per tile",
                    d.raster.tiff.describe(),
                    tri_total as f64 / total.max(1) as f64
                ),
                raster_chunks_read: cache
                    .decoded_per_level(d.raster.id, d.raster.tiff.levels.len()),
                crs: d.raster.crs.label(),
                crs_source: d.raster.crs_source.to_string(),
                ..Default::default()
            })
            .collect(),
        points_read: 0,
        points_written: 0,
        points_thinned: 0,
        tiles: total,
        min_level: 0,
        max_level: max_zoom,
        bytes_written,
        extent_deg: [
            footprint.min_x,
            footprint.min_y,
            footprint.max_x,
            footprint.max_y,
        ],
        warnings,
        warnings_dropped,
        ..Default::default()
    })
}

/// The water mask of a tile: 256 × 256 bytes (rows from the north, 255 = water), or one
/// byte when the tile is all land (0) or all water (255).
fn water_mask(
    mask: &ImagerySource,
    cache: &ChunkCache,
    rect: &Rect,
) -> Result<Vec<u8>, PipelineError> {
    let Some(t) = render(mask, cache, rect, 256, Resampling::Nearest)? else {
        return Ok(vec![0]);
    };
    let px: Vec<u8> = t
        .data
        .chunks_exact(4)
        .map(|p| if p[3] > 0.5 && p[0] > 0.0 { 255 } else { 0 })
        .collect();
    Ok(if px.iter().all(|v| *v == px[0]) {
        vec![px[0]]
    } else {
        px
    })
}

struct TileInputs<'a> {
    id: QuadTileId,
    dems: &'a [(&'a Dem, LevelPlan)],
    cache: &'a ChunkCache,
    max_error_m: f64,
    watermask: Option<&'a [u8]>,
}

/// Mesh and encode one tile: (gzipped bytes, triangles, grid points without data).
fn build_tile(
    input: TileInputs,
    opts: &TerrainOptions,
    ranges: &[(u32, u32, u32, u32)],
    max_zoom: u8,
) -> Result<(Vec<u8>, u64, u64), PipelineError> {
    let TileInputs {
        id,
        dems,
        cache,
        max_error_m,
        watermask,
    } = input;
    let rect = SCHEME.tile_rect(id);
    let n = GRID + 2;
    let sampled = sample_grid(dems, cache, &rect, GRID)?;
    let border = sampled.heights;
    let holes = sampled.nodata_points;
    let full: Vec<f64> = border.iter().map(|h| h.unwrap_or(0.0)).collect();
    let heights: Vec<f64> = (1..=GRID)
        .flat_map(|j| (1..=GRID).map(move |i| (i, j)))
        .map(|(i, j)| full[j * n + i])
        .collect();
    let tris = rtin(&heights, GRID, max_error_m);
    let normals = opts.normals.then(|| grid_normals(&full, &rect, GRID));
    let metadata = opts.metadata.then(|| child_metadata(id, ranges, max_zoom));
    let raw = encode(
        &GridMesh {
            rect_deg: rect,
            size: GRID,
            heights_m: &heights,
            normals: normals.as_deref(),
            triangles: &tris,
        },
        &Extensions {
            normals: opts.normals,
            watermask,
            metadata: metadata.as_deref(),
        },
    );
    let mut gz = GzEncoder::new(
        Vec::with_capacity(raw.len() / 2),
        flate2::Compression::new(3),
    );
    gz.write_all(&raw)
        .and_then(|_| gz.finish())
        .map(|bytes| (bytes, tris.len() as u64, holes))
        .map_err(|source| {
            PipelineError::Output(OutputError::Io {
                path: PathBuf::from(format!("{id}")),
                source,
            })
        })
}

/// Unit ECEF normals of the height field at each grid point, by central differences over
/// the one-point border (so neighbours compute the same normal on a shared edge).
fn grid_normals(full: &[f64], rect: &Rect, size: usize) -> Vec<[f64; 3]> {
    let n = size + 2;
    let step_lon = (rect.width() / (size - 1) as f64).to_radians();
    let step_lat = (rect.height() / (size - 1) as f64).to_radians();
    let lon_sc: Vec<(f64, f64)> = (0..size)
        .map(|i| {
            (rect.min_x + i as f64 * rect.width() / (size - 1) as f64)
                .to_radians()
                .sin_cos()
        })
        .collect();
    let mut out = Vec::with_capacity(size * size);
    for j in 1..=size {
        let lat = (rect.max_y - (j - 1) as f64 * rect.height() / (size - 1) as f64).to_radians();
        let (sl, cl) = lat.sin_cos();
        let w = (1.0 - 6.694_379_990_141_316e-3 * sl * sl).sqrt();
        let prime = 6_378_137.0 / w;
        let meridian = 6_378_137.0 * (1.0 - 6.694_379_990_141_316e-3) / (w * w * w);
        let dx = (2.0 * step_lon * prime * cl).max(1e-6);
        let dy = 2.0 * step_lat * meridian;
        for i in 1..=size {
            let dh_de = (full[j * n + i + 1] - full[j * n + i - 1]) / dx;
            let dh_dn = (full[(j - 1) * n + i] - full[(j + 1) * n + i]) / dy;
            let (e, nn, u) = (-dh_de, -dh_dn, 1.0);
            let len = (e * e + nn * nn + u * u).sqrt();
            let (e, nn, u) = (e / len, nn / len, u / len);
            let (so, co) = lon_sc[i - 1];
            out.push([
                -so * e - sl * co * nn + cl * co * u,
                co * e - sl * so * nn + cl * so * u,
                cl * nn + sl * u,
            ]);
        }
    }
    out
}

/// The metadata extension's JSON: which children (next zoom) exist, TMS rows (layer.json
/// says `metadataAvailability: 1`, so CesiumJS reads it from every tile).
fn child_metadata(id: QuadTileId, ranges: &[(u32, u32, u32, u32)], max_zoom: u8) -> String {
    if id.level >= max_zoom {
        return r#"{"available":[[]]}"#.to_string();
    }
    let z = usize::from(id.level) + 1;
    let (x0, y0, x1, y1) = ranges[z];
    let cx0 = (id.x * 2).max(x0);
    let cx1 = (id.x * 2 + 1).min(x1);
    let cy0 = (id.y * 2).max(y0);
    let cy1 = (id.y * 2 + 1).min(y1);
    if cx0 > cx1 || cy0 > cy1 {
        return r#"{"available":[[]]}"#.to_string();
    }
    let ny = SCHEME.tiles_y(z as u8);
    format!(
        r#"{{"available":[[{{"startX":{cx0},"startY":{},"endX":{cx1},"endY":{}}}]]}}"#,
        ny - 1 - cy1,
        ny - 1 - cy0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_heights_follow_the_vertical_unit() {
        assert_eq!(plausible_heights(1.0), (-100_000.0, 100_000.0));
        let (lo, hi) = plausible_heights(0.3048);
        assert!((hi - 328_084.0).abs() < 1.0 && lo == -hi);
        // A unit PROJ could not give is taken as metres.
        assert_eq!(plausible_heights(f64::NAN), (-100_000.0, 100_000.0));
        assert_eq!(plausible_heights(0.0), (-100_000.0, 100_000.0));
        assert_eq!(level_name(0), "of the full-resolution image");
        assert_eq!(level_name(2), "of overview 2");
    }
}
