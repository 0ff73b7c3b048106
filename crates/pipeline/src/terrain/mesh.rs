//! Adaptive TIN over a (2^k + 1)² height grid: a right-triangulated irregular network
//! (RTIN, the scheme of Evans et al. that martini implements) keeping every vertex whose
//! removal would move the surface by more than the allowed error. Every vertex on the tile's
//! border is kept, so two neighbouring tiles, which sample the same border points, share
//! identical edge vertices and can never crack.

/// Triangles (indices into the grid, row 0 = north) of the mesh within `max_error_m`.
pub fn rtin(heights: &[f64], size: usize, max_error_m: f64) -> Vec<[u32; 3]> {
    debug_assert!(size >= 3 && (size - 1).is_power_of_two());
    debug_assert_eq!(heights.len(), size * size);
    let errors = rtin_errors(heights, size);
    let mut out = Vec::new();
    let max = (size - 1) as i64;
    let mut stack = vec![(0, 0, max, max, max, 0), (max, max, 0, 0, 0, max)];
    while let Some((ax, ay, bx, by, cx, cy)) = stack.pop() {
        let (mx, my) = ((ax + bx) / 2, (ay + by) / 2);
        let split = (ax - cx).abs() + (ay - cy).abs() > 1
            && errors[(my * size as i64 + mx) as usize] > max_error_m;
        if split {
            stack.push((bx, by, cx, cy, mx, my));
            stack.push((cx, cy, ax, ay, mx, my));
        } else {
            let idx = |x: i64, y: i64| (y * size as i64 + x) as u32;
            out.push([idx(ax, ay), idx(bx, by), idx(cx, cy)]);
        }
    }
    out
}

/// Per grid point, the error of leaving it out, propagated so that a point is kept whenever
/// a finer point below it is; border points are always kept.
fn rtin_errors(heights: &[f64], size: usize) -> Vec<f64> {
    let tile = size - 1;
    let num_triangles = tile * tile * 2 - 2;
    let num_parents = num_triangles - tile * tile;
    let mut errors = vec![0f64; size * size];
    let h = |x: usize, y: usize| heights[y * size + x];
    let border = |x: usize, y: usize| x == 0 || y == 0 || x == tile || y == tile;
    let coords = coords_table(tile);
    for i in (0..num_triangles).rev() {
        let [ax, ay, bx, by] = coords[i].map(usize::from);
        let (mx, my) = ((ax + bx) / 2, (ay + by) / 2);
        let cx = mx + my - ay;
        let cy = my + ax - mx;
        let middle = my * size + mx;
        let interpolated = (h(ax, ay) + h(bx, by)) / 2.0;
        let mut e = (interpolated - h(mx, my)).abs();
        if border(mx, my) {
            e = f64::INFINITY;
        }
        errors[middle] = errors[middle].max(e);
        if i < num_parents {
            let left = ((ay + cy) / 2) * size + (ax + cx) / 2;
            let right = ((by + cy) / 2) * size + (bx + cx) / 2;
            errors[middle] = errors[middle].max(errors[left]).max(errors[right]);
        }
    }
    errors
}

/// Hypotenuse end points of every triangle of an RTIN hierarchy.
type CoordsTable = std::sync::Arc<Vec<[u16; 4]>>;

/// The table for a `tile`-wide grid; the same for every tile, so computed once per size.
fn coords_table(tile: usize) -> CoordsTable {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static TABLES: OnceLock<Mutex<HashMap<usize, CoordsTable>>> = OnceLock::new();
    let tables = TABLES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut g = tables.lock().unwrap_or_else(|p| p.into_inner());
    g.entry(tile)
        .or_insert_with(|| {
            Arc::new(
                (0..tile * tile * 2 - 2)
                    .map(|i| {
                        let (ax, ay, bx, by) = triangle_coords(i, tile);
                        [ax as u16, ay as u16, bx as u16, by as u16]
                    })
                    .collect(),
            )
        })
        .clone()
}

/// Hypotenuse end points of triangle `i` of the RTIN hierarchy (ids from 2, binary path).
fn triangle_coords(i: usize, tile: usize) -> (usize, usize, usize, usize) {
    let mut id = i + 2;
    let (mut ax, mut ay, mut bx, mut by, mut cx, mut cy);
    if id & 1 == 1 {
        (ax, ay, bx, by, cx, cy) = (0, 0, tile, tile, tile, 0);
    } else {
        (ax, ay, bx, by, cx, cy) = (tile, tile, 0, 0, 0, tile);
    }
    loop {
        id >>= 1;
        if id <= 1 {
            break;
        }
        let (mx, my) = ((ax + bx) / 2, (ay + by) / 2);
        if id & 1 == 1 {
            (bx, by) = (ax, ay);
            (ax, ay) = (cx, cy);
        } else {
            (ax, ay) = (bx, by);
            (bx, by) = (cx, cy);
        }
        (cx, cy) = (mx, my);
    }
    (ax, ay, bx, by)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(t: &[u32; 3], size: usize) -> f64 {
        let p = |i: u32| ((i as usize % size) as f64, (i as usize / size) as f64);
        let (a, b, c) = (p(t[0]), p(t[1]), p(t[2]));
        ((b.0 - a.0) * (c.1 - a.1) - (c.0 - a.0) * (b.1 - a.1)).abs() / 2.0
    }

    #[test]
    fn flat_grid_needs_only_its_border() {
        let size = 17;
        let t = rtin(&vec![5.0; size * size], size, 0.1);
        let total: f64 = t.iter().map(|t| area(t, size)).sum();
        assert!((total - 256.0).abs() < 1e-9, "triangles cover the square");
        // Every border point is a vertex.
        let used: std::collections::HashSet<u32> = t.iter().flatten().copied().collect();
        for k in 0..size {
            for (x, y) in [(k, 0), (k, size - 1), (0, k), (size - 1, k)] {
                assert!(used.contains(&((y * size + x) as u32)));
            }
        }
        assert!(
            t.len() < 2 * 16 * 16,
            "a flat interior stays coarse: {}",
            t.len()
        );
    }

    #[test]
    fn error_bound_holds_at_every_grid_point() {
        let size = 33;
        let hs: Vec<f64> = (0..size * size)
            .map(|i| {
                let (x, y) = ((i % size) as f64, (i / size) as f64);
                10.0 * (x / 5.0).sin() * (y / 7.0).cos() + 0.3 * x
            })
            .collect();
        let max_err = 0.5;
        let tris = rtin(&hs, size, max_err);
        // Interpolate each triangle at the grid points it covers.
        let p = |i: u32| ((i as usize % size) as f64, (i as usize / size) as f64);
        for t in &tris {
            let (a, b, c) = (p(t[0]), p(t[1]), p(t[2]));
            let d = (b.1 - c.1) * (a.0 - c.0) + (c.0 - b.0) * (a.1 - c.1);
            for y in 0..size {
                for x in 0..size {
                    let (xf, yf) = (x as f64, y as f64);
                    let l1 = ((b.1 - c.1) * (xf - c.0) + (c.0 - b.0) * (yf - c.1)) / d;
                    let l2 = ((c.1 - a.1) * (xf - c.0) + (a.0 - c.0) * (yf - c.1)) / d;
                    let l3 = 1.0 - l1 - l2;
                    if l1 < -1e-9 || l2 < -1e-9 || l3 < -1e-9 {
                        continue;
                    }
                    let z =
                        l1 * hs[t[0] as usize] + l2 * hs[t[1] as usize] + l3 * hs[t[2] as usize];
                    assert!((z - hs[y * size + x]).abs() <= max_err + 1e-9);
                }
            }
        }
    }
}
