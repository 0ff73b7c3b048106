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

/// Split `points` into one point per grid cell of `cells` per edge (returned first) and
/// the rest, both in input order. Each cell keeps the point nearest its centre, ties to
/// the smallest id, so the choice does not depend on the input order. One pass with a
/// map from cell to its best point so far: no sort.
pub fn grid_sample<const K: usize>(
    points: Vec<TilePoint<K>>,
    cube: &Cube,
    cells: u32,
) -> (Vec<TilePoint<K>>, Vec<TilePoint<K>>) {
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
    let mut sample = Vec::with_capacity(best.len());
    let mut rest = Vec::with_capacity(points.len() - best.len());
    for (p, k) in points.into_iter().zip(keep) {
        if k {
            sample.push(p);
        } else {
            rest.push(p);
        }
    }
    (sample, rest)
}

/// The level-of-detail sample of an inner node: the finest grid (up to [`GRID`]) whose
/// sample fits in `max_points`. Returns (sample, rest, spacing in metres).
pub fn lod_sample<const K: usize>(
    points: Vec<TilePoint<K>>,
    cube: &Cube,
    max_points: usize,
) -> (Vec<TilePoint<K>>, Vec<TilePoint<K>>, f64) {
    let mut cells = GRID;
    let mut points = points;
    loop {
        let (sample, rest) = grid_sample(points, cube, cells);
        if sample.len() <= max_points.max(1) || cells == 1 {
            return (sample, rest, cube.edge / f64::from(cells));
        }
        points = sample;
        points.extend(rest);
        cells /= 2;
    }
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
