//! Builds the octree out of core: cells below the spill level are tiled top-down in
//! memory, one cell per worker; the levels above are built bottom-up by pulling a
//! level-of-detail sample out of each group of eight children. Finished nodes are
//! encoded and written immediately; nodes whose points may still move up wait on disk.

use super::attributes::PointSchema;
use super::octree::{grid_sample, lod_sample, lod_sample_octants, Cube, GRID, MAX_LEVEL};
use super::record::{RecordLayout, TilePoint};
use super::spill::{drain_file, take_file, write_file, CellWriter, PointFile};
use super::tileset::{content_uri, NodeMeta};
use crate::encode::{encode_pnts, encode_point_glb, ExtraColumn, Grid, PointTile};
use crate::error::PipelineError;
use crate::job::{PointCompression, TilesFormat};
use crate::progress::Progress;
use crate::sink::TileSink;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tessera_model::{Aabb, OctTileId, Stage};

/// A node whose points may still be pulled up into its parent; its points wait on disk.
pub struct Pending {
    id: OctTileId,
    file: PointFile,
    spacing_m: Option<f64>,
    children: Vec<OctTileId>,
}

pub struct TilerOptions<'a> {
    pub cube: Cube,
    pub max_points: usize,
    pub thin_spacing_m: Option<f64>,
    pub cell_budget: usize,
    pub spill_dir: &'a Path,
    pub format: TilesFormat,
    pub schema: &'a PointSchema,
    pub total_points: u64,
    pub compression: PointCompression,
    /// Quantization step of compact tiles, as a power of two (metres).
    pub step_exp: i32,
    /// How spilled records are laid out.
    pub layout: RecordLayout,
}

pub struct Tiler<'a, const K: usize> {
    opts: TilerOptions<'a>,
    sink: &'a dyn TileSink,
    progress: &'a Progress,
    nodes: Mutex<BTreeMap<OctTileId, NodeMeta>>,
    written: AtomicU64,
    thinned: AtomicU64,
    /// The extra column with GPS times, which orders compact tiles.
    time_column: Option<usize>,
}

impl<'a, const K: usize> Tiler<'a, K> {
    pub fn new(
        opts: TilerOptions<'a>,
        sink: &'a dyn TileSink,
        progress: &'a Progress,
    ) -> Tiler<'a, K> {
        Tiler {
            time_column: opts.schema.gps_time_column(),
            opts,
            sink,
            progress,
            nodes: Mutex::new(BTreeMap::new()),
            written: AtomicU64::new(0),
            thinned: AtomicU64::new(0),
        }
    }

    pub fn into_nodes(self) -> (BTreeMap<OctTileId, NodeMeta>, u64, u64) {
        (
            self.nodes.into_inner().unwrap_or_else(|p| p.into_inner()),
            self.written.into_inner(),
            self.thinned.into_inner(),
        )
    }

    fn is_leaf(&self, id: OctTileId, cube: &Cube, n: usize) -> bool {
        n <= self.opts.max_points
            || id.level >= MAX_LEVEL
            || self
                .opts
                .thin_spacing_m
                .is_some_and(|s| cube.edge / f64::from(GRID) <= s)
    }

    /// Leaf content: everything, or one point per `--sample-spacing` cube.
    fn leaf_points(&self, points: Vec<TilePoint<K>>, cube: &Cube) -> Vec<TilePoint<K>> {
        match self.opts.thin_spacing_m {
            Some(s) => {
                let cells = (cube.edge / s).floor().clamp(1.0, f64::from(1u32 << 20)) as u32;
                let (keep, drop) = grid_sample(points, cube, cells);
                self.thinned.fetch_add(drop.len() as u64, Ordering::Relaxed);
                keep
            }
            None => points,
        }
    }

    /// Encode and write one node; record it for the tileset.
    fn emit(
        &self,
        id: OctTileId,
        mut points: Vec<TilePoint<K>>,
        spacing_m: Option<f64>,
        children: Vec<OctTileId>,
    ) -> Result<(), PipelineError> {
        self.progress.check()?;
        let bounds = Aabb::from_points(points.iter().map(|p| &p.pos));
        if !points.is_empty() {
            let bytes = self.encode_tile(&mut points, bounds)?;
            self.sink
                .write(&content_uri(id, self.opts.format), &bytes)?;
            self.progress.add_tile();
        }
        let n = points.len() as u64;
        self.nodes.lock().unwrap_or_else(|p| p.into_inner()).insert(
            id,
            NodeMeta {
                points: n,
                bounds,
                spacing_m,
                children,
            },
        );
        let done =
            self.written.fetch_add(n, Ordering::Relaxed) + n + self.thinned.load(Ordering::Relaxed);
        self.progress
            .raise(Stage::Tile, done, self.opts.total_points);
        Ok(())
    }

    /// Tile `points` (all inside node `id`) completely, top-down. Returns whether the
    /// node exists (has points or descendants).
    fn build(&self, id: OctTileId, points: Vec<TilePoint<K>>) -> Result<bool, PipelineError> {
        if points.is_empty() {
            return Ok(false);
        }
        let cube = self.opts.cube.node(id);
        if self.is_leaf(id, &cube, points.len()) {
            let pts = self.leaf_points(points, &cube);
            self.emit(id, pts, None, Vec::new())?;
            return Ok(true);
        }
        let (sample, parts, spacing) = lod_sample_octants(points, &cube, self.opts.max_points);
        let children = self.build_children(id, parts)?;
        self.emit(id, sample, Some(spacing), children)?;
        Ok(true)
    }

    fn build_children(
        &self,
        id: OctTileId,
        parts: Vec<Vec<TilePoint<K>>>,
    ) -> Result<Vec<OctTileId>, PipelineError> {
        let made: Vec<Option<OctTileId>> = parts
            .into_par_iter()
            .enumerate()
            .map(|(o, pts)| {
                let c = id.child(o as u8);
                self.build(c, pts).map(|exists| exists.then_some(c))
            })
            .collect::<Result<_, _>>()?;
        Ok(made.into_iter().flatten().collect())
    }

    /// Tile a spilled cell; its own node stays pending. Cells over the memory budget are
    /// split on disk first.
    pub fn build_pending(&self, mut file: PointFile) -> Result<Option<Pending>, PipelineError> {
        self.progress.check()?;
        let id = file.id;
        if file.count as usize > self.opts.cell_budget && id.level < MAX_LEVEL {
            let kids: Vec<OctTileId> = (0..8).map(|o| id.child(o)).collect();
            let writer = CellWriter::new(self.opts.spill_dir, "split", kids, 0);
            // Children by the node's own octants, so every point stays inside the node.
            let node = self.opts.cube.node(id);
            let mut slot_of = [0usize; 8];
            for (o, slot) in slot_of.iter_mut().enumerate() {
                *slot = writer.slot(id.child(o as u8)).ok_or_else(|| {
                    PipelineError::Internal(format!("no spill slot for a child of {id}"))
                })?;
            }
            let layout = self.opts.layout;
            drain_file(file, &layout, |batch: &[TilePoint<K>]| {
                let mut buckets: Vec<Vec<u8>> = vec![Vec::new(); 8];
                let mut counts = [0u64; 8];
                for p in batch {
                    let slot = slot_of[usize::from(node.octant(&p.pos))];
                    layout.write(p, &mut buckets[slot]);
                    counts[slot] += 1;
                }
                for (i, b) in buckets.iter().enumerate() {
                    if counts[i] > 0 {
                        writer.append(i, b, counts[i])?;
                    }
                }
                Ok(())
            })?;
            let kids: Vec<Pending> = writer
                .finish()?
                .into_par_iter()
                .map(|f| self.build_pending(f))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect();
            return self.merge(id, kids);
        }
        // Spill files hold points in whatever order the readers appended them; nothing
        // below depends on that order (sampling breaks ties by id, tiles are sorted
        // before they are encoded).
        let points = take_file(&mut file, &self.opts.layout)?;
        let cube = self.opts.cube.node(id);
        let (own, spacing_m, children) = if self.is_leaf(id, &cube, points.len()) {
            (self.leaf_points(points, &cube), None, Vec::new())
        } else {
            let (sample, parts, spacing) = lod_sample_octants(points, &cube, self.opts.max_points);
            let children = self.build_children(id, parts)?;
            (sample, Some(spacing), children)
        };
        if own.is_empty() && children.is_empty() {
            return Ok(None);
        }
        let file = write_file(self.opts.spill_dir, "pending", id, &own, &self.opts.layout)?;
        Ok(Some(Pending {
            id,
            file,
            spacing_m,
            children,
        }))
    }

    /// Form node `id` from its pending children: it takes a level-of-detail sample of
    /// their points (all of them when they fit in one tile); the children keep the rest
    /// and are written.
    pub fn merge(
        &self,
        id: OctTileId,
        kids: Vec<Pending>,
    ) -> Result<Option<Pending>, PipelineError> {
        self.progress.check()?;
        let mut loaded = Vec::with_capacity(kids.len());
        for mut k in kids {
            let pts = take_file(&mut k.file, &self.opts.layout)?;
            loaded.push((k, pts));
        }
        let union: Vec<TilePoint<K>> = loaded.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        let any_grandchildren = loaded.iter().any(|(k, _)| !k.children.is_empty());
        let cube = self.opts.cube.node(id);
        let (sample, spacing_m) = if union.len() <= self.opts.max_points {
            let spacing = any_grandchildren.then(|| cube.edge / f64::from(GRID));
            (union, spacing)
        } else {
            let (sample, _rest, spacing) = lod_sample(union, &cube, self.opts.max_points);
            (sample, Some(spacing))
        };
        let taken: HashSet<u64> = sample.iter().map(|p| p.id).collect();
        let mut children = Vec::new();
        for (k, pts) in loaded {
            let rest: Vec<TilePoint<K>> =
                pts.into_iter().filter(|p| !taken.contains(&p.id)).collect();
            if rest.is_empty() && k.children.is_empty() {
                continue;
            }
            children.push(k.id);
            self.emit(k.id, rest, k.spacing_m, k.children)?;
        }
        if sample.is_empty() && children.is_empty() {
            return Ok(None);
        }
        let spacing_m = if children.is_empty() { None } else { spacing_m };
        let file = write_file(
            self.opts.spill_dir,
            "pending",
            id,
            &sample,
            &self.opts.layout,
        )?;
        Ok(Some(Pending {
            id,
            file,
            spacing_m,
            children,
        }))
    }

    /// Write a pending node as it is (the root, once nothing is above it).
    pub fn finish(&self, mut p: Pending) -> Result<(), PipelineError> {
        let pts = take_file(&mut p.file, &self.opts.layout)?;
        self.emit(p.id, pts, p.spacing_m, p.children)
    }
}

impl Pending {
    pub fn id(&self) -> OctTileId {
        self.id
    }
}

impl<const K: usize> Tiler<'_, K> {
    /// Encode one tile. Compact tiles quantize positions on a grid and list points so
    /// that meshopt's codec finds small deltas: class by class (classes are surfaces:
    /// ground, roofs, trees), and within a class in order of GPS time where it is kept
    /// (the scanner's own order: along scan lines, so positions stay close and times
    /// grow by microseconds), else along the grid's Morton curve. Plain tiles list
    /// points by identity. Every order is the same at any thread count.
    fn encode_tile(
        &self,
        points: &mut [TilePoint<K>],
        bounds: Aabb,
    ) -> Result<Vec<u8>, PipelineError> {
        let grid = match self.opts.compression {
            PointCompression::Meshopt => Some(Grid::new(&bounds, self.opts.step_exp)),
            PointCompression::None => None,
        };
        match &grid {
            Some(g) => match self.time_column {
                Some(t) => {
                    points.sort_by_cached_key(|p| (p.classification, time_key(p.extra[t]), p.id))
                }
                None => points.sort_by_cached_key(|p| (p.classification, g.morton(&p.pos), p.id)),
            },
            None => points.sort_unstable_by_key(|p| p.id),
        }
        let positions: Vec<[f64; 3]> = points.iter().map(|p| p.pos).collect();
        encode_tile(
            points,
            &positions,
            bounds,
            self.opts.schema,
            self.opts.format,
            grid.as_ref(),
        )
        .map_err(|e| PipelineError::Internal(format!("encoding a point tile: {e}")))
    }
}

/// A key that sorts times as numbers (negative ones first).
fn time_key(t: f64) -> u64 {
    let b = t.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | 1 << 63
    }
}

/// Encode one tile's points (positions given in the same order).
fn encode_tile<const K: usize>(
    points: &[TilePoint<K>],
    positions: &[[f64; 3]],
    bounds: Aabb,
    schema: &PointSchema,
    format: TilesFormat,
    grid: Option<&Grid>,
) -> Result<Vec<u8>, String> {
    let attrs = schema.standard;
    let rgb: Option<Vec<[u16; 3]>> = attrs.rgb.then(|| points.iter().map(|p| p.rgb).collect());
    let intensity: Option<Vec<u16>> = attrs
        .intensity
        .then(|| points.iter().map(|p| p.intensity).collect());
    let class: Option<Vec<u8>> = attrs
        .classification
        .then(|| points.iter().map(|p| p.classification).collect());
    let (ret, nret): (Option<Vec<u8>>, Option<Vec<u8>>) = if attrs.returns {
        (
            Some(points.iter().map(|p| p.return_number).collect()),
            Some(points.iter().map(|p| p.number_of_returns).collect()),
        )
    } else {
        (None, None)
    };
    let extras: Vec<ExtraColumn> = schema
        .extras
        .iter()
        .enumerate()
        .map(|(k, dim)| ExtraColumn {
            dim,
            values: points.iter().map(|p| p.extra[k]).collect(),
        })
        .collect();
    let tile = PointTile {
        positions,
        bounds,
        rgb: rgb.as_deref(),
        rgb16: attrs.rgb16,
        intensity: intensity.as_deref(),
        classification: class.as_deref(),
        return_number: ret.as_deref(),
        number_of_returns: nret.as_deref(),
        extras: &extras,
    };
    match format {
        TilesFormat::Tiles11 => encode_point_glb(&tile, grid),
        TilesFormat::Tiles10 => Ok(encode_pnts(&tile, grid)),
    }
}

#[cfg(test)]
mod tests {
    use super::time_key;

    #[test]
    fn time_keys_sort_as_the_times() {
        let times = [-1.0e9, -3.5, -0.0, 0.0, 1.0e-6, 2.0, 228_671.959, 4.0e8];
        for w in times.windows(2) {
            assert!(time_key(w[0]) <= time_key(w[1]), "{} vs {}", w[0], w[1]);
        }
        assert!(time_key(-3.5) < time_key(-1.0));
        assert!(time_key(1.0) < time_key(1.000_001));
    }
}
