//! The point-cloud route: LAS/LAZ → reprojected points → out-of-core octree → 3D Tiles.

mod attributes;
mod implicit;
mod octree;
mod record;
mod spill;
mod tiler;
mod tileset;
mod transform;

pub use attributes::{PointSchema, MAX_EXTRAS};
pub use octree::{grid_sample, lod_sample, Cube, GRID};
pub use record::TilePoint;

use crate::error::{CrsError, PipelineError};
use crate::job::{JobSpec, PointCompression, TilesFormat, TreeLayout};
use crate::las::LasSource;
use crate::progress::Progress;
use crate::report::{InputSummary, Warnings};
use crate::reproject::{enu_frame_at, CrsPlan};
use crate::sink::TileSink;
use rayon::prelude::*;
use record::{IdPlan, RecordLayout};
use spill::CellWriter;
use std::collections::BTreeMap;
use std::path::Path;
use tessera_model::{Aabb, EnuFrame, OctTileId, Stage, WorkKind, WorkPlan, WorkUnit};
use tessera_proj::CrsKind;
use tiler::{Pending, Tiler, TilerOptions};
use transform::LocalGrid;

/// Tiles above which `--tiling auto` writes an implicit tree.
pub const AUTO_IMPLICIT_TILES: u64 = 2_000;

/// Points per read batch (bounded memory per worker).
const BATCH_POINTS: u64 = 262_144;
/// Deepest level of the first spill partition: 8^4 cells, of which a surface occupies
/// about 4^4, so a 10^8-point survey needs no second pass over its records on disk.
const MAX_SPILL_LEVEL: u8 = 4;

/// Inputs after inspection, with their CRS plans, ready to read.
pub struct PreparedInputs {
    pub sources: Vec<LasSource>,
    pub plans: Vec<CrsPlan>,
    pub summaries: Vec<InputSummary>,
    /// The attributes every tile is written with.
    pub schema: PointSchema,
}

pub struct TilingResult {
    pub points_written: u64,
    pub points_thinned: u64,
    pub tiles: u64,
    pub max_level: u8,
    pub tileset: serde_json::Value,
}

/// Inspect every input and decide its CRS; fail on the first file without one.
pub fn prepare(
    spec: &JobSpec,
    files: &[std::path::PathBuf],
    warnings: &Warnings,
) -> Result<PreparedInputs, PipelineError> {
    let sources: Vec<LasSource> = files
        .par_iter()
        .map(|p| crate::las::inspect(p))
        .collect::<Result<_, _>>()?;
    let mut plans = Vec::with_capacity(sources.len());
    let mut summaries = Vec::with_capacity(sources.len());
    for s in &sources {
        let (crs, origin) = match (&spec.input_crs, &s.crs) {
            (Some(c), _) => (c.clone(), "--input-crs"),
            (None, Some((c, origin))) => (c.clone(), *origin),
            (None, None) => {
                if let Some(problem) = &s.crs_problem {
                    warnings.push("crs-records", format!("{}: {problem}", s.path.display()));
                }
                return Err(CrsError::Missing {
                    path: s.path.clone(),
                }
                .into());
            }
        };
        let plan = CrsPlan::new(&crs, spec.geoid.as_deref(), &s.path, warnings)?;
        summaries.push(InputSummary {
            path: s.path.clone(),
            points: s.points,
            raster: String::new(),
            raster_chunks_read: Vec::new(),
            crs: format!("{} ({})", plan.info.name, crs.label()),
            crs_source: origin.to_string(),
            ..Default::default()
        });
        plans.push(plan);
    }
    for s in &sources {
        for p in &s.extra.problems {
            warnings.push("extra-bytes", format!("{}: {p}", s.path.display()));
        }
    }
    let schema = attributes::choose(spec.tiling.attributes.as_deref(), &sources, warnings)?;
    Ok(PreparedInputs {
        sources,
        plans,
        summaries,
        schema,
    })
}

/// Points spread over a header box, used to place the frame and the octree cube before
/// reading: corners, edge midpoints and the centre, at both heights.
fn header_samples(b: &Aabb) -> Vec<[f64; 3]> {
    let mut out = Vec::with_capacity(18);
    for fx in [0.0, 0.5, 1.0] {
        for fy in [0.0, 0.5, 1.0] {
            for z in [b.min[2], b.max[2]] {
                out.push([
                    b.min[0] + fx * (b.max[0] - b.min[0]),
                    b.min[1] + fy * (b.max[1] - b.min[1]),
                    z,
                ]);
            }
        }
    }
    out
}

fn implausible(path: &Path, plan: &CrsPlan, what: String) -> PipelineError {
    CrsError::Implausible {
        path: path.into(),
        crs: format!("{} ({})", plan.info.name, plan.crs.label()),
        detail: what,
    }
    .into()
}

fn radius_km(p: &[f64; 3]) -> f64 {
    (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt() / 1000.0
}

/// The local frame (at the centre of all inputs), the octree cube in it, and the
/// geographic extent. Refuses inputs whose header box cannot be in their CRS; warns of
/// those outside their CRS's area of use.
pub fn place(
    inputs: &PreparedInputs,
    warnings: &Warnings,
) -> Result<(EnuFrame, Cube, [f64; 4]), PipelineError> {
    let mut all_ecef = Vec::new();
    for (s, plan) in inputs.sources.iter().zip(&inputs.plans) {
        let orig = header_samples(&s.bounds);
        if let Some(why) = plan.area_of_use_problem(&orig) {
            warnings.push("crs-area-of-use", format!("{}: {why}", s.path.display()));
        }
        let mut pts = orig.clone();
        plan.to_ecef(&mut pts).map_err(|e| {
            implausible(
                &s.path,
                plan,
                format!(
                    "the header bounds {:?}..{:?} cannot be transformed ({e})",
                    s.bounds.min, s.bounds.max
                ),
            )
        })?;
        if let Some(i) = CrsPlan::first_implausible(&pts) {
            return Err(implausible(
                &s.path,
                plan,
                format!(
                    "the header bounds corner ({:.3}, {:.3}, {:.3}) would lie {:.0} km from the Earth's centre, where the surface is about 6,370 km away",
                    orig[i][0], orig[i][1], orig[i][2], radius_km(&pts[i])
                ),
            ));
        }
        all_ecef.extend(pts);
    }
    let ecef_box = Aabb::from_points(&all_ecef);
    let frame = enu_frame_at(ecef_box.center())
        .map_err(|e| PipelineError::Internal(format!("local frame: {e}")))?;
    let local = Aabb::from_points(
        all_ecef
            .iter()
            .map(|p| frame.to_local(*p))
            .collect::<Vec<_>>()
            .iter(),
    );
    let margin = local.diagonal() * 0.01 + 1.0;
    let grown = Aabb {
        min: [
            local.min[0] - margin,
            local.min[1] - margin,
            local.min[2] - margin,
        ],
        max: [
            local.max[0] + margin,
            local.max[1] + margin,
            local.max[2] + margin,
        ],
    }
    .cube();
    let cube = Cube {
        min: grown.min,
        edge: grown.size()[0],
    };
    let to_geo = tessera_proj::Transformer::new("EPSG:4978", "EPSG:4979")
        .map_err(|e| PipelineError::Internal(format!("extent: {e}")))?;
    let mut geo = all_ecef;
    to_geo
        .transform(&mut geo)
        .map_err(|e| PipelineError::Internal(format!("extent: {e}")))?;
    let mut extent = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for g in &geo {
        extent[0] = extent[0].min(g[0]);
        extent[1] = extent[1].min(g[1]);
        extent[2] = extent[2].max(g[0]);
        extent[3] = extent[3].max(g[1]);
    }
    Ok((frame, cube, extent))
}

/// Most work units one input is cut into: a header count far beyond what any file holds
/// must not become a plan of billions of units (the read itself then fails on the data).
const MAX_UNITS_PER_INPUT: u64 = 1 << 16;

/// Cut each input into point ranges: LAZ ranges start on chunk boundaries so a seek
/// lands without decoding; files with variable-size chunks are read whole.
pub fn work_plan(sources: &[LasSource]) -> WorkPlan {
    let threads = rayon::current_num_threads() as u64;
    let mut units = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let mut size = (s.points / threads.saturating_mul(4).max(1))
            .clamp(262_144, 4_194_304)
            .max(s.points.div_ceil(MAX_UNITS_PER_INPUT));
        if s.compressed && s.laz_chunks.is_none() {
            size = match s.laz_chunk_points {
                Some(c) => size.div_ceil(c).saturating_mul(c),
                None => s.points,
            };
        }
        if let Some(chunks) = &s.laz_chunks {
            // Variable-size chunks: units of whole chunks, about `size` points each.
            let ends = chunks.starts().skip(1).chain([s.points]);
            let mut begin = 0u64;
            for end in ends {
                if end - begin >= size || end == s.points {
                    units.push(WorkUnit {
                        input: i,
                        part: begin..end,
                        weight: end - begin,
                    });
                    begin = end;
                }
            }
            continue;
        }
        let mut start = 0;
        while start < s.points {
            let end = start.saturating_add(size).min(s.points);
            units.push(WorkUnit {
                input: i,
                part: start..end,
                weight: end - start,
            });
            start = end;
        }
    }
    WorkPlan { units }
}

/// The finest coordinate resolution among the inputs, in metres on the ground (degrees
/// taken at the equator, feet as feet).
fn finest_scale_m(inputs: &PreparedInputs) -> f64 {
    let mut finest = f64::INFINITY;
    for (s, plan) in inputs.sources.iter().zip(&inputs.plans) {
        let horizontal = match plan.info.kind {
            CrsKind::Geographic2D | CrsKind::Geographic3D => {
                plan.info.horizontal_unit_m * 6_378_137.0
            }
            _ => plan.info.horizontal_unit_m,
        };
        let vertical = plan.info.vertical_unit_m.unwrap_or(1.0);
        for (scale, unit) in [
            (s.scale[0], horizontal),
            (s.scale[1], horizontal),
            (s.scale[2], vertical),
        ] {
            let m = scale * unit;
            if m.is_finite() && m > 0.0 {
                finest = finest.min(m);
            }
        }
    }
    finest
}

/// Level of the first spill partition. Point clouds are mostly surfaces: a level-L
/// partition has about 4^L occupied cells, not 8^L, and the densest hold well above the
/// mean; aim for half the budget per occupied cell so few cells need splitting on disk.
fn spill_level(total: u64, cell_budget: usize) -> u8 {
    let target = (cell_budget as u64 / 2).max(1);
    let mut level = 0u8;
    let mut cells = 1u64;
    while level < MAX_SPILL_LEVEL && total / cells > target {
        level += 1;
        cells *= 4;
    }
    level
}

fn cells_at(level: u8) -> Vec<OctTileId> {
    let n = 1u32 << level;
    let mut v = Vec::with_capacity((n * n * n) as usize);
    for x in 0..n {
        for y in 0..n {
            for z in 0..n {
                v.push(OctTileId { level, x, y, z });
            }
        }
    }
    v
}

struct ReadContext<'a> {
    inputs: &'a PreparedInputs,
    /// Per input: the interpolated transform to the local frame, where one was built.
    grids: &'a [Option<LocalGrid>],
    frame: &'a EnuFrame,
    cube: &'a Cube,
    level: u8,
    writer: &'a CellWriter,
    layout: RecordLayout,
    ids: &'a IdPlan,
    progress: &'a Progress,
    total: u64,
}

/// Read one work unit, reproject it and append its points to the cell files.
fn read_unit<const K: usize>(ctx: &ReadContext, unit: &WorkUnit) -> Result<(), PipelineError> {
    let src = &ctx.inputs.sources[unit.input];
    let plan = &ctx.inputs.plans[unit.input];
    let columns = ctx.inputs.schema.columns[unit.input].clone();
    let mut reader = src.open_range(unit.part.clone(), columns)?;
    let mut index = unit.part.start;
    // One buffer per cell of the partition, indexed the way `cells_at` lists them.
    let side = 1usize << ctx.level;
    let mut buckets: Vec<(Vec<u8>, u64)> = vec![(Vec::new(), 0); side * side * side];
    while let Some(chunk) = reader.next_batch(BATCH_POINTS)? {
        ctx.progress.check()?;
        let n = chunk.len();
        let grid = ctx.grids[unit.input].as_ref();
        let mut local = vec![[0.0; 3]; n];
        let mut outside = Vec::new();
        for (i, p) in chunk.positions.iter().enumerate() {
            match grid.and_then(|g| g.apply(p)) {
                Some(l) => local[i] = l,
                None => outside.push(i),
            }
        }
        // Points the grid does not cover go through PROJ one by one.
        let mut ecef: Vec<[f64; 3]> = outside.iter().map(|&i| chunk.positions[i]).collect();
        plan.to_ecef(&mut ecef).map_err(|e| {
            implausible(
                &src.path,
                plan,
                format!(
                    "PROJ cannot transform points {index}..{}: {e}",
                    index + n as u64
                ),
            )
        })?;
        if let Some(k) = CrsPlan::first_implausible(&ecef) {
            let i = outside[k];
            let p = chunk.positions[i];
            return Err(implausible(
                &src.path,
                plan,
                format!(
                    "point {} ({:.3}, {:.3}, {:.3}) would lie {:.0} km from the Earth's centre, where the surface is about 6,370 km away",
                    index + i as u64,
                    p[0],
                    p[1],
                    p[2],
                    radius_km(&ecef[k])
                ),
            ));
        }
        for (k, &i) in outside.iter().enumerate() {
            local[i] = ctx.frame.to_local(ecef[k]);
        }
        for (i, &exact) in local.iter().enumerate() {
            // The cell comes from the stored position, which every later step sees.
            let pos = ctx.layout.stored_position(exact);
            let mut extra = [0.0; K];
            for (v, column) in extra.iter_mut().zip(&chunk.extras) {
                *v = column[i];
            }
            let p = TilePoint::<K> {
                pos,
                id: ctx.ids.id(unit.input, index + i as u64),
                rgb: chunk.rgb.as_ref().map_or([0; 3], |c| c[i]),
                classification: chunk.classification.as_ref().map_or(0, |c| c[i]),
                intensity: chunk.intensity.as_ref().map_or(0, |c| c[i]),
                return_number: chunk.return_number.as_ref().map_or(0, |c| c[i]),
                number_of_returns: chunk.number_of_returns.as_ref().map_or(0, |c| c[i]),
                extra,
            };
            let cell = ctx.cube.tile_at(&pos, ctx.level);
            let slot = (cell.x as usize * side + cell.y as usize) * side + cell.z as usize;
            debug_assert_eq!(Some(slot), ctx.writer.slot(cell));
            let b = &mut buckets[slot];
            ctx.layout.write(&p, &mut b.0);
            b.1 += 1;
        }
        for (slot, (bytes, count)) in buckets.iter_mut().enumerate() {
            if *count > 0 {
                ctx.writer.append(slot, bytes, *count)?;
                bytes.clear();
                *count = 0;
            }
        }
        index += n as u64;
        let read = ctx.progress.add_points_read(n as u64);
        ctx.progress.raise(Stage::Read, read, ctx.total);
    }
    Ok(())
}

pub struct TileJob<'a> {
    pub spec: &'a JobSpec,
    pub inputs: &'a PreparedInputs,
    pub frame: &'a EnuFrame,
    pub cube: Cube,
    pub spill_dir: &'a Path,
    pub sink: &'a dyn TileSink,
    pub progress: &'a Progress,
}

/// Read, spill and tile everything; write every tile and `tileset.json` to the sink.
pub fn tile(job: TileJob) -> Result<TilingResult, PipelineError> {
    // Records carry the job's extra values inline; a few fixed sizes cover every count.
    match job.inputs.schema.extras.len() {
        0 => tile_with::<0>(job),
        1 => tile_with::<1>(job),
        2 => tile_with::<2>(job),
        3..=4 => tile_with::<4>(job),
        5..=8 => tile_with::<8>(job),
        _ => tile_with::<MAX_EXTRAS>(job),
    }
}

fn tile_with<const K: usize>(job: TileJob) -> Result<TilingResult, PipelineError> {
    let total = job
        .inputs
        .sources
        .iter()
        .fold(0u64, |t, s| t.saturating_add(s.points));
    // The budget is set for plain records; larger ones get proportionally fewer.
    let plain = std::mem::size_of::<TilePoint<0>>();
    let budget = (job.spec.tiling.cell_budget_points * plain / std::mem::size_of::<TilePoint<K>>())
        .max(job.spec.tiling.max_points_per_tile);
    let level = spill_level(total, budget);
    let cells = cells_at(level);
    // The writer keeps a file open per cell while a quarter of the soft open-file limit
    // allows (and reopens files past that): ask for enough, up to the hard limit.
    let _ = rlimit::increase_nofile_limit(4 * cells.len() as u64 + 1024);
    let writer = CellWriter::new(
        job.spill_dir,
        "cell",
        cells,
        job.spec.tiling.spill_memory_bytes,
    );
    let step_exp = crate::encode::quantize::step_exponent(finest_scale_m(job.inputs));
    // Compact tiles keep positions on a lattice; storing them on it loses nothing.
    let lattice = (job.spec.tiling.compression == PointCompression::Meshopt).then_some(step_exp);
    let ids = IdPlan::new(job.inputs.sources.iter().map(|s| s.points));
    let layout = RecordLayout::new(
        job.inputs.schema.standard,
        K.min(job.inputs.schema.extras.len()),
        lattice,
        ids.bytes(),
    );
    let plan = work_plan(&job.inputs.sources);
    job.progress.enter(Stage::Read);
    job.progress.counting(WorkKind::Points, total);
    let grids: Vec<Option<LocalGrid>> = job
        .inputs
        .sources
        .par_iter()
        .zip(&job.inputs.plans)
        .map(|(s, p)| LocalGrid::build(p, job.frame, &s.bounds))
        .collect();
    let ctx = ReadContext {
        inputs: job.inputs,
        grids: &grids,
        frame: job.frame,
        cube: &job.cube,
        level,
        writer: &writer,
        layout,
        ids: &ids,
        progress: job.progress,
        total,
    };
    plan.units
        .par_iter()
        .try_for_each(|u| read_unit::<K>(&ctx, u))?;
    let cells = writer.finish()?;

    job.progress.enter(Stage::Tile);
    job.progress.counting(WorkKind::Points, total);
    let tiler = Tiler::<K>::new(
        TilerOptions {
            cube: job.cube,
            max_points: job.spec.tiling.max_points_per_tile.max(1),
            thin_spacing_m: job.spec.tiling.sample_spacing_m.filter(|s| *s > 0.0),
            cell_budget: budget,
            spill_dir: job.spill_dir,
            format: job.spec.format,
            schema: &job.inputs.schema,
            total_points: total,
            compression: job.spec.tiling.compression,
            step_exp,
            layout,
        },
        job.sink,
        job.progress,
    );
    let mut pending: Vec<Pending> = cells
        .into_par_iter()
        .map(|f| tiler.build_pending(f))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    for _ in 0..level {
        let mut groups: BTreeMap<OctTileId, Vec<Pending>> = BTreeMap::new();
        for p in pending {
            groups.entry(p.id().parent()).or_default().push(p);
        }
        pending = groups
            .into_par_iter()
            .map(|(parent, kids)| tiler.merge(parent, kids))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
    }
    for p in pending {
        tiler.finish(p)?;
    }
    let (nodes, written, thinned) = tiler.into_nodes();
    let tiles = nodes.values().filter(|n| n.points > 0).count() as u64;
    let max_level = nodes.keys().map(|k| k.level).max().unwrap_or(0);
    let implicit = job.spec.format == TilesFormat::Tiles11
        && match job.spec.tiling.tree {
            TreeLayout::Implicit => true,
            TreeLayout::Explicit => false,
            TreeLayout::Auto => tiles > AUTO_IMPLICIT_TILES,
        };
    let tileset = if implicit {
        implicit::write_implicit(&nodes, job.frame, &job.cube, job.sink)?
    } else {
        let root_spacing = job.cube.edge / f64::from(GRID);
        tileset::tileset_json(&nodes, job.frame, job.spec.format, root_spacing)
    }
    .ok_or_else(|| PipelineError::Internal("no tiles were produced".into()))?;
    let json =
        serde_json::to_vec_pretty(&tileset).map_err(|e| PipelineError::Internal(e.to_string()))?;
    job.sink.write("tileset.json", &json)?;
    Ok(TilingResult {
        points_written: written,
        points_thinned: thinned,
        tiles,
        max_level,
        tileset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spill_level_grows_with_input() {
        assert_eq!(spill_level(1_000, 2_000_000), 0);
        assert_eq!(spill_level(3_000_000, 2_000_000), 1);
        assert_eq!(spill_level(10_000_000, 2_000_000), 2);
        assert_eq!(spill_level(50_000_000, 2_000_000), 3);
        assert_eq!(spill_level(200_000_000, 2_000_000), 4);
        assert_eq!(spill_level(u64::MAX / 2, 2_000_000), MAX_SPILL_LEVEL);
        assert_eq!(cells_at(2).len(), 64);
    }
}
