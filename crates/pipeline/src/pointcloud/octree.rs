//! Octree geometry and the level-of-detail rule: a node keeps one point per cell of a
//! grid laid over its cube (the one nearest the cell centre, ties broken by point id) and
//! hands the rest to its children. Every point ends in exactly one node, and the result
//! depends only on the set of points, never on the order they arrive in.

use super::record::TilePoint;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use tessera_model::OctTileId;

/// Cells per cube edge of a node's sampling grid: a flat surface crossing a node
/// keeps at most 256² ≈ 65 k points in it.
pub const GRID: u32 = 256;

/// No level past this is split further (guards against piles of identical points).
pub const MAX_LEVEL: u8 = 24;

/// The root cube of the octree in the tileset's local frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cube {
    pub min: [f64; 3],
    pub edge: f64,
}

impl Cube {
    pub fn node(&self, id: OctTileId) -> Cube {
        let edge = self.edge / f64::from(1u32 << id.level);
        Cube {
            min: [
                self.min[0] + f64::from(id.x) * edge,
                self.min[1] + f64::from(id.y) * edge,
                self.min[2] + f64::from(id.z) * edge,
            ],
            edge,
        }
    }

    /// Grid cell of `p` on a grid of `cells` per edge, clamped into the cube.
    fn cell(&self, p: &[f64; 3], cells: u32) -> [u32; 3] {
        let mut c = [0u32; 3];
        let per_m = f64::from(cells) / self.edge;
        for i in 0..3 {
            let v = (p[i] - self.min[i]) * per_m;
            // Truncation is floor for v >= 0; NaN and negatives go to cell 0, `as`
            // saturates far ones.
            c[i] = if v >= 0.0 {
                (v as u32).min(cells - 1)
            } else {
                0
            };
        }
        c
    }

    pub fn octant(&self, p: &[f64; 3]) -> u8 {
        let c = self.cell(p, 2);
        (c[0] | (c[1] << 1) | (c[2] << 2)) as u8
    }

    /// The descendant of the root at `level` that holds `p`.
    pub fn tile_at(&self, p: &[f64; 3], level: u8) -> OctTileId {
        let c = self.cell(p, 1u32 << level);
        OctTileId {
            level,
            x: c[0],
            y: c[1],
            z: c[2],
        }
    }
}

/// A cheap, fixed hasher for cell keys (the same on every run, unlike std's default).
#[derive(Default, Clone, Copy)]
struct CellHasher(u64);

impl std::hash::Hasher for CellHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
}

type CellMap<V> = HashMap<u64, V, BuildHasherDefault<CellHasher>>;

/// Largest grid (cells per edge) the dense sampler handles: cell coordinates fit a byte.
const DENSE_GRID: u32 = 256;
/// Cells per edge of one block of the dense sampler (16³ = 4096 cells, a few kB of state).
const BLOCK: u32 = 16;

/// Split `points` into one point per grid cell of `cells` per edge (returned first) and
/// the rest, both in input order. Each cell keeps the point nearest its centre, ties to
/// the smallest id, so the choice does not depend on the input order.
pub fn grid_sample<const K: usize>(
    points: Vec<TilePoint<K>>,
    cube: &Cube,
    cells: u32,
) -> (Vec<TilePoint<K>>, Vec<TilePoint<K>>) {
    let keep = if cells <= DENSE_GRID {
        let c = cells_of(&points, cube, cells);
        dense_keep(&points, cube, cells, &c, 0, None)
    } else {
        hashed_keep(&points, cube, cells)
    };
    split(points, &keep)
}

/// The level-of-detail sample of an inner node: the finest grid (up to [`GRID`]) whose
/// sample fits in `max_points`. Returns (sample, rest, spacing in metres).
///
/// The sample at a grid has one point per occupied cell, so the grid is chosen first
/// by counting occupied cells at every power-of-two grid in one pass, then sampled once.
pub fn lod_sample<const K: usize>(
    points: Vec<TilePoint<K>>,
    cube: &Cube,
    max_points: usize,
) -> (Vec<TilePoint<K>>, Vec<TilePoint<K>>, f64) {
    let (keep, _, spacing) = lod_keep(&points, cube, max_points);
    let (sample, rest) = split(points, &keep);
    (sample, rest, spacing)
}

/// [`lod_sample`] with the rest already divided among the node's eight children (by
/// octant, as [`Cube::octant`] numbers them): the sample and the eight parts.
pub fn lod_sample_octants<const K: usize>(
    points: Vec<TilePoint<K>>,
    cube: &Cube,
    max_points: usize,
) -> (Vec<TilePoint<K>>, Vec<Vec<TilePoint<K>>>, f64) {
    let (keep, c, spacing) = lod_keep(&points, cube, max_points);
    // A point's octant is the top bit of its cell on the 256 grid: the two grids'
    // scale factors differ by an exact power of two.
    let octant = |c: [u8; 3]| usize::from((c[0] >> 7) | ((c[1] >> 7) << 1) | ((c[2] >> 7) << 2));
    let kept = keep.iter().filter(|k| **k).count();
    let mut counts = [0usize; 8];
    for (&cell, &k) in c.iter().zip(&keep) {
        if !k {
            counts[octant(cell)] += 1;
        }
    }
    let mut sample = Vec::with_capacity(kept);
    let mut parts: Vec<Vec<TilePoint<K>>> = counts.iter().map(|&n| Vec::with_capacity(n)).collect();
    for ((p, k), cell) in points.into_iter().zip(keep).zip(c) {
        if k {
            sample.push(p);
        } else {
            parts[octant(cell)].push(p);
        }
    }
    (sample, parts, spacing)
}

/// Which points the level-of-detail sample keeps, every point's cell on the
/// [`GRID`], and the sample's spacing.
fn lod_keep<const K: usize>(
    points: &[TilePoint<K>],
    cube: &Cube,
    max_points: usize,
) -> (Vec<bool>, Vec<[u8; 3]>, f64) {
    debug_assert_eq!(GRID, 256, "octants are read off the top bit of 8-bit cells");
    let c = cells_of(points, cube, GRID);
    let blocks = group_by_block(&c);
    let occupied = occupied_per_grid(&c, &blocks);
    // Grid GRID >> s for s = 0, 1, …; the last (one cell) always fits.
    let shift = (0..=GRID.trailing_zeros())
        .find(|&s| occupied[s as usize] <= max_points.max(1) as u64)
        .unwrap_or(GRID.trailing_zeros());
    let cells = GRID >> shift;
    let keep = dense_keep(points, cube, cells, &c, shift, Some(&blocks));
    (keep, c, cube.edge / f64::from(cells))
}

fn split<const K: usize>(
    points: Vec<TilePoint<K>>,
    keep: &[bool],
) -> (Vec<TilePoint<K>>, Vec<TilePoint<K>>) {
    let kept = keep.iter().filter(|k| **k).count();
    let mut sample = Vec::with_capacity(kept);
    let mut rest = Vec::with_capacity(points.len() - kept);
    for (p, k) in points.into_iter().zip(keep) {
        if *k {
            sample.push(p);
        } else {
            rest.push(p);
        }
    }
    (sample, rest)
}

/// Each point's cell on a grid of `cells` (≤ [`DENSE_GRID`]) per edge.
fn cells_of<const K: usize>(points: &[TilePoint<K>], cube: &Cube, cells: u32) -> Vec<[u8; 3]> {
    debug_assert!(cells <= DENSE_GRID);
    points
        .iter()
        .map(|p| cube.cell(&p.pos, cells).map(|v| v as u8))
        .collect()
}

fn block_of(c: [u8; 3]) -> usize {
    let b = c.map(|v| usize::from(v) >> 4);
    (b[0] << 8) | (b[1] << 4) | b[2]
}

/// `(start, order)`: point indices grouped by 16³ block, see [`group_by_block`].
type Blocks = (Vec<u32>, Vec<u32>);

/// Point indices grouped by 16³ block of their cell (a counting sort; input order is
/// kept inside each block): `order[start[b]..start[b + 1]]` are block `b`'s points.
fn group_by_block(c: &[[u8; 3]]) -> Blocks {
    let blocks = (BLOCK * BLOCK * BLOCK) as usize;
    let mut start = vec![0u32; blocks + 1];
    for &cell in c {
        start[block_of(cell) + 1] += 1;
    }
    for b in 0..blocks {
        start[b + 1] += start[b];
    }
    let mut next = start.clone();
    let mut order = vec![0u32; c.len()];
    for (i, &cell) in c.iter().enumerate() {
        let b = block_of(cell);
        order[next[b] as usize] = i as u32;
        next[b] += 1;
    }
    (start, order)
}

/// Occupied cells on the grids `GRID >> s`, s = 0..=8, from the cells at [`GRID`].
/// Cells of a coarser power-of-two grid are the finer ones shifted right: the scale
/// factors differ by exact powers of two, so the floors agree.
fn occupied_per_grid(c: &[[u8; 3]], blocks: &Blocks) -> [u64; 9] {
    let mut counts = [0u64; 9];
    let (start, order) = blocks;
    // Inside a block: bit sets of the cells at shifts 0..=3 (16³, 8³, 4³, 2³ cells).
    let mut bits = [[0u64; 64]; 4];
    let mut blocks_used = [false; 4096];
    for b in 0..(BLOCK * BLOCK * BLOCK) as usize {
        let members = &order[start[b] as usize..start[b + 1] as usize];
        if members.is_empty() {
            continue;
        }
        blocks_used[b] = true;
        for set in bits.iter_mut() {
            set.fill(0);
        }
        for &i in members {
            let f = c[i as usize].map(|v| usize::from(v & 15));
            for (s, set) in bits.iter_mut().enumerate() {
                let w = 16 >> s;
                let k = (((f[0] >> s) * w + (f[1] >> s)) * w) + (f[2] >> s);
                set[k >> 6] |= 1 << (k & 63);
            }
        }
        for (s, set) in bits.iter().enumerate() {
            counts[s] += set.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
        }
        // Shift 4: the block is one cell.
        counts[4] += 1;
    }
    // Shifts 5..=8: cells are unions of blocks.
    for (s, count) in counts.iter_mut().enumerate().skip(5) {
        let w = 16usize >> (s - 4);
        let mut seen = [false; 512];
        for (b, used) in blocks_used.iter().enumerate() {
            if *used {
                let k = (((b >> 8) >> (s - 4)) * w + (((b >> 4) & 15) >> (s - 4))) * w
                    + ((b & 15) >> (s - 4));
                if !seen[k] {
                    seen[k] = true;
                    *count += 1;
                }
            }
        }
    }
    counts
}

/// The points each cell of a grid of `cells` per edge keeps. `c` holds the cells on the
/// grid `cells << shift` (at most [`DENSE_GRID`]), so a point's cell is `c >> shift`.
/// Cells are visited block by block with a small table of the best point so far: no
/// hashing, no sort. `blocks` is [`group_by_block`] of `c` where the caller has it.
fn dense_keep<const K: usize>(
    points: &[TilePoint<K>],
    cube: &Cube,
    cells: u32,
    c: &[[u8; 3]],
    shift: u32,
    blocks: Option<&Blocks>,
) -> Vec<bool> {
    let size = cube.edge / f64::from(cells);
    // Distances to the cell centres in one pass in point order, so the visits by block
    // below read eight bytes per point, not whole points.
    let dist: Vec<u64> = points
        .iter()
        .zip(c)
        .map(|(p, cell)| {
            let mut d2 = 0.0;
            for k in 0..3 {
                let centre = cube.min[k] + (f64::from(u32::from(cell[k]) >> shift) + 0.5) * size;
                d2 += (p.pos[k] - centre) * (p.pos[k] - centre);
            }
            f64::to_bits(d2)
        })
        .collect();
    let mut keep = vec![false; points.len()];
    let mut best = vec![(u64::MAX, u32::MAX); 4096];
    let mut touched: Vec<u16> = Vec::with_capacity(4096);
    let offer = |slot: usize, i: usize, best: &mut [(u64, u32)], touched: &mut Vec<u16>| {
        let cand = dist[i];
        let b = &mut best[slot];
        if b.1 == u32::MAX {
            *b = (cand, i as u32);
            touched.push(slot as u16);
        } else if cand < b.0 || (cand == b.0 && points[i].id < points[b.1 as usize].id) {
            *b = (cand, i as u32);
        }
    };
    if cells <= BLOCK {
        // At most 16³ cells: one table for the whole node.
        let n = cells as usize;
        for i in 0..points.len() {
            let g = c[i].map(|v| usize::from(v) >> shift);
            offer((g[0] * n + g[1]) * n + g[2], i, &mut best, &mut touched);
        }
        for slot in touched.drain(..) {
            keep[best[slot as usize].1 as usize] = true;
        }
        return keep;
    }
    // A sampling cell lies inside one block of the finer grid (16 is a multiple of the
    // cell's width in finer cells): one table per block, reset after it.
    let owned;
    let (start, order) = match blocks {
        Some(b) => b,
        None => {
            owned = group_by_block(c);
            &owned
        }
    };
    let w = (BLOCK >> shift).max(1) as usize;
    for b in 0..(BLOCK * BLOCK * BLOCK) as usize {
        for &i in &order[start[b] as usize..start[b + 1] as usize] {
            let i = i as usize;
            let g = c[i].map(|v| (usize::from(v) & 15) >> shift);
            offer((g[0] * w + g[1]) * w + g[2], i, &mut best, &mut touched);
        }
        for slot in touched.drain(..) {
            let b = &mut best[slot as usize];
            keep[b.1 as usize] = true;
            *b = (u64::MAX, u32::MAX);
        }
    }
    keep
}

/// [`dense_keep`] for grids too fine for a byte per coordinate (thinning of deep
/// leaves): one map from cell to its best point so far.
fn hashed_keep<const K: usize>(points: &[TilePoint<K>], cube: &Cube, cells: u32) -> Vec<bool> {
    let size = cube.edge / f64::from(cells);
    let mut best: CellMap<(u64, u64, u32)> = CellMap::default();
    best.reserve(points.len() / 4);
    for (i, p) in points.iter().enumerate() {
        let c = cube.cell(&p.pos, cells);
        let key = u64::from(c[0]) | (u64::from(c[1]) << 21) | (u64::from(c[2]) << 42);
        let mut d2 = 0.0;
        for k in 0..3 {
            let centre = cube.min[k] + (f64::from(c[k]) + 0.5) * size;
            d2 += (p.pos[k] - centre) * (p.pos[k] - centre);
        }
        let cand = (d2.to_bits(), p.id, i as u32);
        best.entry(key)
            .and_modify(|b| {
                if (cand.0, cand.1) < (b.0, b.1) {
                    *b = cand;
                }
            })
            .or_insert(cand);
    }
    let mut keep = vec![false; points.len()];
    for (_, _, i) in best.values() {
        keep[*i as usize] = true;
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(pos: [f64; 3], id: u64) -> TilePoint {
        TilePoint {
            pos,
            id,
            rgb: [0; 3],
            classification: 0,
            intensity: 0,
            return_number: 1,
            number_of_returns: 1,
            extra: [],
        }
    }

    #[test]
    fn sample_keeps_one_per_cell_and_loses_nothing() {
        let cube = Cube {
            min: [0.0; 3],
            edge: 4.0,
        };
        let pts: Vec<_> = (0..100)
            .map(|i| pt([(i % 10) as f64 * 0.4, (i / 10) as f64 * 0.4, 0.0], i))
            .collect();
        let (s, r) = grid_sample(pts.clone(), &cube, 4);
        assert_eq!(s.len() + r.len(), 100);
        assert_eq!(s.len(), 16);
        // Same result whatever the input order.
        let mut rev = pts;
        rev.reverse();
        let (mut s2, _) = grid_sample(rev, &cube, 4);
        let mut s = s;
        s.sort_unstable_by_key(|p| p.id);
        s2.sort_unstable_by_key(|p| p.id);
        assert_eq!(s, s2);
    }

    /// Points on a bumpy surface with a few piles and some outside the cube.
    fn cloud(n: u64) -> Vec<TilePoint> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|i| {
                let (x, y) = (next() * 110.0 - 5.0, next() * 100.0);
                let z = 20.0 + 8.0 * (x / 9.0).sin() * (y / 13.0).cos() + next() * 3.0;
                let pos = if i % 97 == 0 {
                    [50.0, 50.0, 25.0]
                } else {
                    [x, y, z]
                };
                pt(pos, i * 7 % n)
            })
            .collect()
    }

    /// A 100 m cube around 60,000 points of [`cloud`].
    fn surface_in_cube() -> (Cube, Vec<TilePoint>) {
        let cube = Cube {
            min: [0.0, 0.0, 0.0],
            edge: 100.0,
        };
        (cube, cloud(60_000))
    }

    #[test]
    fn dense_sampler_chooses_what_the_map_chooses() {
        let (cube, pts) = surface_in_cube();
        for cells in [1, 2, 3, 7, 16, 17, 100, 128, 255, 256] {
            let c = cells_of(&pts, &cube, cells);
            assert_eq!(
                dense_keep(&pts, &cube, cells, &c, 0, None),
                hashed_keep(&pts, &cube, cells),
                "{cells} cells"
            );
        }
        // Coarser grids read off the 256 grid agree with their own cells.
        let c = cells_of(&pts, &cube, GRID);
        for shift in 0..=8 {
            let cells = GRID >> shift;
            let keep = dense_keep(&pts, &cube, cells, &c, shift, None);
            assert_eq!(keep, hashed_keep(&pts, &cube, cells), "shift {shift}");
            let occupied = keep.iter().filter(|k| **k).count() as u64;
            assert_eq!(
                occupied_per_grid(&c, &group_by_block(&c))[shift as usize],
                occupied
            );
        }
    }

    #[test]
    fn lod_sample_takes_the_finest_grid_that_fits() {
        let (cube, pts) = surface_in_cube();
        for max in [1, 50, 700, 5_000, 20_000, 100_000] {
            let (s, r, spacing) = lod_sample(pts.clone(), &cube, max);
            // The same sample by trying grids from the finest down.
            let mut cells = GRID;
            let (want, _) = loop {
                let (a, b) = grid_sample(pts.clone(), &cube, cells);
                if a.len() <= max || cells == 1 {
                    break (a, b);
                }
                cells /= 2;
            };
            assert_eq!(s, want, "max {max}");
            assert_eq!(s.len() + r.len(), pts.len());
            assert_eq!(spacing, 100.0 / f64::from(cells));
        }
    }

    #[test]
    fn octant_parts_are_the_rest_split_by_octant() {
        let (cube, pts) = surface_in_cube();
        for max in [1, 700, 20_000, 100_000] {
            let (s, rest, spacing) = lod_sample(pts.clone(), &cube, max);
            let (s2, parts, spacing2) = lod_sample_octants(pts.clone(), &cube, max);
            assert_eq!((s, spacing), (s2, spacing2));
            for (o, part) in parts.iter().enumerate() {
                let want: Vec<_> = rest
                    .iter()
                    .filter(|p| usize::from(cube.octant(&p.pos)) == o)
                    .copied()
                    .collect();
                assert_eq!(part, &want, "max {max} octant {o}");
            }
        }
    }

    #[test]
    fn lod_sample_respects_budget() {
        let cube = Cube {
            min: [0.0; 3],
            edge: 1.0,
        };
        let pts: Vec<_> = (0..4096u64)
            .map(|i| {
                pt(
                    [
                        (i % 16) as f64 / 16.0,
                        ((i / 16) % 16) as f64 / 16.0,
                        (i / 256) as f64 / 16.0,
                    ],
                    i,
                )
            })
            .collect();
        let (s, r, spacing) = lod_sample(pts, &cube, 100);
        assert!(s.len() <= 100);
        assert_eq!(s.len() + r.len(), 4096);
        assert!(spacing >= 1.0 / 8.0);
    }

    #[test]
    fn octants_and_tiles() {
        let cube = Cube {
            min: [0.0; 3],
            edge: 8.0,
        };
        assert_eq!(cube.octant(&[7.0, 1.0, 5.0]), 0b101);
        assert_eq!(cube.octant(&[-3.0, 100.0, 1.0]), 0b010);
        let t = cube.tile_at(&[7.0, 1.0, 5.0], 2);
        assert_eq!((t.x, t.y, t.z), (3, 0, 2));
        let n = cube.node(t);
        assert_eq!(n.edge, 2.0);
        assert_eq!(n.min, [6.0, 0.0, 4.0]);
    }
}
