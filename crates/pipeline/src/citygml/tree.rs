//! The tile tree of a city: additive refinement by importance.
//!
//! Every city object (a building with its parts) is written once, whole, at full detail.
//! A tile that would hold more than the budget keeps its largest objects (up to half
//! the budget) and hands the rest to up to four children, split at the median of their
//! centres along the longest axis (twice). Its geometric error is the size of the
//! largest object left to the children: what is missing while they are not drawn. So
//! from afar CesiumJS draws the big buildings of a city and fills in smaller ones as
//! the camera comes closer, never loading every building at once.

use rayon::prelude::*;
use tessera_model::Aabb;

/// One unit of tiling: a top-level city object and its parts.
#[derive(Debug, Clone)]
pub struct Unit {
    pub bounds: Aabb,
    pub triangles: usize,
    /// Bytes of the texture images it uses.
    pub image_bytes: u64,
}

impl Unit {
    fn size(&self) -> f64 {
        if self.bounds.is_empty() {
            0.0
        } else {
            self.bounds.diagonal()
        }
    }

    fn centre(&self) -> [f64; 3] {
        self.bounds.center()
    }
}

#[derive(Debug, Clone)]
pub struct CityNode {
    /// Indices of the units drawn by this tile.
    pub units: Vec<usize>,
    /// Bounds of this tile's units and every tile below.
    pub bounds: Aabb,
    pub error_m: f64,
    pub children: Vec<CityNode>,
}

impl CityNode {
    pub fn count(&self) -> usize {
        1 + self.children.iter().map(CityNode::count).sum::<usize>()
    }

    pub fn depth(&self) -> usize {
        self.children
            .iter()
            .map(|c| c.depth() + 1)
            .max()
            .unwrap_or(0)
    }
}

/// Limits of one tile's content.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub triangles: usize,
    pub image_bytes: u64,
}

fn split(units: &[Unit], mut idx: Vec<usize>) -> (Vec<usize>, Vec<usize>) {
    let mut b = Aabb::EMPTY;
    for &i in &idx {
        b.extend(units[i].centre());
    }
    let s = b.size();
    let axis = if s[0] >= s[1] && s[0] >= s[2] {
        0
    } else if s[1] >= s[2] {
        1
    } else {
        2
    };
    let mid = idx.len() / 2;
    idx.select_nth_unstable_by(mid, |a, b| {
        units[*a].centre()[axis]
            .total_cmp(&units[*b].centre()[axis])
            .then(a.cmp(b))
    });
    let right = idx.split_off(mid);
    (idx, right)
}

fn node(units: &[Unit], mut idx: Vec<usize>, budget: Budget) -> CityNode {
    let tris: usize = idx.iter().map(|&i| units[i].triangles).sum();
    let bytes: u64 = idx.iter().map(|&i| units[i].image_bytes).sum();
    let bounds_of = |ids: &[usize]| {
        ids.iter()
            .fold(Aabb::EMPTY, |b, &i| b.union(&units[i].bounds))
    };
    if idx.len() <= 1 || (tris <= budget.triangles && bytes <= budget.image_bytes) {
        idx.sort_unstable();
        return CityNode {
            bounds: bounds_of(&idx),
            units: idx,
            error_m: 0.0,
            children: Vec::new(),
        };
    }
    // The largest objects stay here.
    idx.sort_by(|a, b| units[*b].size().total_cmp(&units[*a].size()).then(a.cmp(b)));
    let (mut t, mut by) = (0usize, 0u64);
    let mut keep = 0;
    for &i in &idx {
        let u = &units[i];
        let fits =
            t + u.triangles <= budget.triangles / 2 && by + u.image_bytes <= budget.image_bytes / 2;
        if !fits && keep > 0 {
            break;
        }
        if !fits {
            // A single object over half the budget still sits here alone.
            keep = 1;
            break;
        }
        t += u.triangles;
        by += u.image_bytes;
        keep += 1;
    }
    let rest = idx.split_off(keep);
    let mut own = idx;
    own.sort_unstable();
    let error_m = rest
        .iter()
        .map(|&i| units[i].size())
        .fold(0.0, f64::max)
        .max(1e-3);
    let mut groups = Vec::with_capacity(4);
    let (a, b) = split(units, rest);
    for half in [a, b] {
        if half.len() > 1 {
            let (x, y) = split(units, half);
            groups.push(x);
            groups.push(y);
        } else {
            groups.push(half);
        }
    }
    groups.retain(|g| !g.is_empty());
    let children: Vec<CityNode> = groups
        .into_par_iter()
        .map(|g| node(units, g, budget))
        .collect();
    let bounds = children
        .iter()
        .fold(bounds_of(&own), |b, c| b.union(&c.bounds));
    CityNode {
        units: own,
        bounds,
        error_m,
        children,
    }
}

/// The tree over `units` (each unit in exactly one tile).
pub fn build(units: &[Unit], budget: Budget) -> CityNode {
    node(units, (0..units.len()).collect(), budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(n: usize) -> Vec<Unit> {
        (0..n * n)
            .map(|i| {
                let (x, y) = ((i % n) as f64 * 20.0, (i / n) as f64 * 20.0);
                let s = 5.0 + (i % 7) as f64;
                Unit {
                    bounds: Aabb::from_points(&[[x, y, 0.0], [x + s, y + s, s]]),
                    triangles: 12,
                    image_bytes: 0,
                }
            })
            .collect()
    }

    fn walk(n: &CityNode, seen: &mut Vec<usize>, budget: Budget, units: &[Unit]) {
        let t: usize = n.units.iter().map(|&i| units[i].triangles).sum();
        assert!(t <= budget.triangles || n.units.len() == 1);
        seen.extend(&n.units);
        for c in &n.children {
            assert!(c.error_m <= n.error_m, "{} > {}", c.error_m, n.error_m);
            walk(c, seen, budget, units);
        }
        if n.children.is_empty() {
            assert_eq!(n.error_m, 0.0);
        }
    }

    #[test]
    fn every_unit_once_big_ones_first() {
        let units = grid(100); // 10 000 objects, 120 000 triangles
        let budget = Budget {
            triangles: 6000,
            image_bytes: u64::MAX,
        };
        let tree = build(&units, budget);
        let mut seen = Vec::new();
        walk(&tree, &mut seen, budget, &units);
        seen.sort_unstable();
        assert_eq!(seen, (0..10_000).collect::<Vec<_>>());
        // The root draws only the largest objects.
        assert!(tree
            .units
            .iter()
            .all(|&i| units[i].size() >= 11.0 * 3f64.sqrt() - 1e-9));
        assert!(tree.units.len() <= 250);
        assert!(tree.depth() >= 3);
        // Deterministic.
        assert_eq!(build(&units, budget).units, tree.units);
    }

    #[test]
    fn a_small_city_is_one_tile() {
        let units = grid(3);
        let tree = build(
            &units,
            Budget {
                triangles: 1000,
                image_bytes: 1 << 20,
            },
        );
        assert!(tree.children.is_empty());
        assert_eq!(tree.units.len(), 9);
    }
}
