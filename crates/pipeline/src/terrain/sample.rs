//! Heights on a tile's vertex grid (plus a one-point border for normals), read bilinearly
//! from the DEMs through exact PROJ transforms of every point, so two tiles sampling the same
//! border point get the same height.

use crate::error::PipelineError;
use crate::raster::{read_window, ChunkCache, PlacedRaster, Window, WindowRequest};
use tessera_model::Rect;

/// Which level of a DEM a zoom reads, and by what further integer factor it is reduced.
#[derive(Debug, Clone, Copy)]
pub struct LevelPlan {
    pub level: usize,
    pub factor: u32,
}

/// A DEM with its vertical unit.
pub struct Dem {
    pub raster: PlacedRaster,
    pub height_factor: f64,
}

/// Choose per zoom: the coarsest overview still at least as fine as the grid spacing
/// (`ratio` = DEM pixels per grid step at full resolution), the rest as a box reduction.
pub fn plan_level(dem: &PlacedRaster, ratio: f64) -> LevelPlan {
    let t = &dem.tiff;
    let mut level = 0;
    for (i, l) in t.levels.iter().enumerate().skip(1) {
        if f64::from(t.width) / f64::from(l.width) <= ratio * 1.000_001 {
            level = i;
        }
    }
    let f = f64::from(t.width) / f64::from(t.levels[level].width);
    let rem = ratio / f;
    LevelPlan {
        level,
        factor: if rem >= 2.0 { rem.floor() as u32 } else { 1 },
    }
}

/// DEM pixels (full resolution) per grid step of a tile of `span_deg` at the DEM's centre.
pub fn pixels_per_step(
    dem: &PlacedRaster,
    span_deg: f64,
    steps: usize,
) -> Result<f64, PipelineError> {
    let e = dem.extent_deg;
    let (lon, lat) = ((e[0] + e[2]) / 2.0, (e[1] + e[3]) / 2.0);
    let d = span_deg / steps as f64;
    let mut p = [[lon, lat, 0.0], [lon + d, lat, 0.0], [lon, lat + d, 0.0]];
    dem.to_source(&mut p)?;
    let px: Vec<(f64, f64)> = p.iter().map(|q| dem.inv_geo.apply(q[0], q[1])).collect();
    let dx = (px[1].0 - px[0].0).hypot(px[1].1 - px[0].1);
    let dy = (px[2].0 - px[0].0).hypot(px[2].1 - px[0].1);
    Ok(dx.min(dy))
}

/// Heights at grid points `-1..=size` in both directions (row -1 north of the tile), in
/// metres; `None` where no DEM has data.
pub struct Sampled {
    pub heights: Vec<Option<f64>>,
    /// Points of the tile itself that lie on a DEM but found only nodata there.
    pub nodata_points: u64,
}

pub fn sample_grid(
    dems: &[(&Dem, LevelPlan)],
    cache: &ChunkCache,
    rect: &Rect,
    size: usize,
) -> Result<Sampled, PipelineError> {
    let n = size + 2;
    let mut on_raster = vec![false; n * n];
    let step_x = rect.width() / (size - 1) as f64;
    let step_y = rect.height() / (size - 1) as f64;
    let mut out: Vec<Option<f64>> = vec![None; n * n];
    for (dem, plan) in dems {
        let pts = source_coords(&dem.raster, rect, n, step_x, step_y)?;
        let t = &dem.raster.tiff;
        let l = &t.levels[plan.level];
        let sx = f64::from(t.width) / f64::from(l.width) * f64::from(plan.factor);
        let sy = f64::from(t.height) / f64::from(l.height) * f64::from(plan.factor);
        let coords: Vec<Option<(f64, f64)>> = pts
            .iter()
            .map(|p| {
                if p[0].is_nan() {
                    return None;
                }
                let (c, r) = dem.raster.inv_geo.apply(p[0], p[1]);
                Some((c / sx, r / sy))
            })
            .collect();
        let mut b = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for (u, v) in coords.iter().flatten() {
            b = [b[0].min(*u), b[1].min(*v), b[2].max(*u), b[3].max(*v)];
        }
        let (lw, lh) = (
            f64::from(l.width.div_ceil(plan.factor)),
            f64::from(l.height.div_ceil(plan.factor)),
        );
        if !b[0].is_finite() || b[2] < -1.0 || b[3] < -1.0 || b[0] > lw + 1.0 || b[1] > lh + 1.0 {
            continue;
        }
        let x0 = (b[0].max(-1.0).floor() as i64) - 1;
        let y0 = (b[1].max(-1.0).floor() as i64) - 1;
        let x1 = (b[2].min(lw + 1.0).ceil() as i64) + 2;
        let y1 = (b[3].min(lh + 1.0).ceil() as i64) + 2;
        let win = read_window(
            cache,
            dem.raster.id,
            t,
            WindowRequest {
                level: plan.level,
                x0,
                y0,
                width: (x1 - x0) as usize,
                height: (y1 - y0) as usize,
                factor: plan.factor,
            },
        )?;
        for (k, c) in coords.iter().enumerate() {
            if let Some((u, v)) = c {
                let (wu, wv) = (u - x0 as f64, v - y0 as f64);
                on_raster[k] |= win.is_inside(wu.floor() as i64, wv.floor() as i64);
                if let Some(h) = bilinear(&win, wu, wv) {
                    out[k] = Some(h * dem.height_factor);
                }
            }
        }
    }
    let nodata_points = (1..=size)
        .flat_map(|j| (1..=size).map(move |i| j * n + i))
        .filter(|k| out[*k].is_none() && on_raster[*k])
        .count() as u64;
    Ok(Sampled {
        heights: out,
        nodata_points,
    })
}

/// Largest interpolation error accepted for interior grid points, in source pixels.
const MAX_APPROX_ERROR_PX: f64 = 0.05;

/// Source CRS coordinates of the `n` × `n` grid (index 0 = one step west/north of the tile).
/// The three outermost rows and columns on each side, which neighbouring tiles share for
/// heights and normals, go through PROJ exactly; the interior is interpolated from exact
/// nodes every few points, refined until the error is below `MAX_APPROX_ERROR_PX`.
fn source_coords(
    dem: &PlacedRaster,
    rect: &Rect,
    n: usize,
    step_x: f64,
    step_y: f64,
) -> Result<Vec<[f64; 3]>, PipelineError> {
    let at = |i: usize, j: usize| {
        let lat = (rect.max_y - (j as f64 - 1.0) * step_y).clamp(-90.0, 90.0);
        [rect.min_x + (i as f64 - 1.0) * step_x, lat, 0.0]
    };
    let exact = |idx: &[(usize, usize)]| -> Result<Vec<[f64; 3]>, PipelineError> {
        let mut p: Vec<[f64; 3]> = idx.iter().map(|(i, j)| at(*i, *j)).collect();
        dem.to_source(&mut p)?;
        Ok(p)
    };
    let pixel_size = {
        let (sx, sy) = dem.tiff.geo.pixel_size();
        sx.min(sy)
    };
    let mut out = vec![[f64::NAN; 3]; n * n];
    let mut step = 16usize;
    let interior_done = loop {
        if step < 2 {
            break false;
        }
        // Nodes every `step` points, plus the last index.
        let mut nodes: Vec<usize> = (0..n).step_by(step).collect();
        if *nodes.last().unwrap_or(&0) != n - 1 {
            nodes.push(n - 1);
        }
        let m = nodes.len();
        let idx: Vec<(usize, usize)> = nodes
            .iter()
            .flat_map(|j| nodes.iter().map(move |i| (*i, *j)))
            .collect();
        let grid = exact(&idx)?;
        if grid.iter().any(|p| p[0].is_nan()) {
            break false;
        }
        let interp = |i: usize, j: usize| -> [f64; 3] {
            let ki = nodes.partition_point(|v| *v <= i).clamp(1, m - 1) - 1;
            let kj = nodes.partition_point(|v| *v <= j).clamp(1, m - 1) - 1;
            let fx = (i - nodes[ki]) as f64 / (nodes[ki + 1] - nodes[ki]) as f64;
            let fy = (j - nodes[kj]) as f64 / (nodes[kj + 1] - nodes[kj]) as f64;
            let g = |a: usize, b: usize| grid[b * m + a];
            let mut r = [0.0; 3];
            for c in 0..2 {
                let top = g(ki, kj)[c] + (g(ki + 1, kj)[c] - g(ki, kj)[c]) * fx;
                let bot = g(ki, kj + 1)[c] + (g(ki + 1, kj + 1)[c] - g(ki, kj + 1)[c]) * fx;
                r[c] = top + (bot - top) * fy;
            }
            r
        };
        // Check the middle of every cell.
        let mids: Vec<(usize, usize)> = nodes
            .windows(2)
            .flat_map(|wj| {
                nodes
                    .windows(2)
                    .map(move |wi| ((wi[0] + wi[1]) / 2, (wj[0] + wj[1]) / 2))
            })
            .collect();
        let mid_exact = exact(&mids)?;
        let ok = mids.iter().zip(&mid_exact).all(|((i, j), e)| {
            let a = interp(*i, *j);
            !e[0].is_nan() && (a[0] - e[0]).hypot(a[1] - e[1]) <= MAX_APPROX_ERROR_PX * pixel_size
        });
        if ok {
            for j in 0..n {
                for i in 0..n {
                    out[j * n + i] = interp(i, j);
                }
            }
            break true;
        }
        step /= 2;
    };
    let shared = |k: usize| k < 3 || k + 3 >= n;
    let idx: Vec<(usize, usize)> = (0..n)
        .flat_map(|j| (0..n).map(move |i| (i, j)))
        .filter(|(i, j)| !interior_done || shared(*i) || shared(*j))
        .collect();
    let exact_pts = exact(&idx)?;
    for ((i, j), p) in idx.iter().zip(exact_pts) {
        out[j * n + i] = p;
    }
    Ok(out)
}

/// Bilinear height at window coordinate (u, v) (corner-based), over valid pixels only;
/// `None` when the pixel under the point is off the raster or no neighbour has data.
fn bilinear(win: &Window, u: f64, v: f64) -> Option<f64> {
    let (cx, cy) = (u.floor() as i64, v.floor() as i64);
    if !win.is_inside(cx, cy) {
        return None;
    }
    let (tx, ty) = (u - 0.5, v - 0.5);
    let (ix, iy) = (tx.floor() as i64, ty.floor() as i64);
    let (ax, ay) = (tx - ix as f64, ty - iy as f64);
    let mut acc = 0.0;
    let mut wsum = 0.0;
    for (dy, wy) in [(0, 1.0 - ay), (1, ay)] {
        for (dx, wx) in [(0, 1.0 - ax), (1, ax)] {
            let (x, y) = (ix + dx, iy + dy);
            let w = wx * wy;
            if w == 0.0 || !win.is_inside(x, y) {
                continue;
            }
            let idx = (y * win.width as i64 + x) as usize;
            if win.alpha[idx] > 0.5 {
                acc += w * f64::from(win.values[idx * win.bands]);
                wsum += w;
            }
        }
    }
    (wsum > 0.0).then(|| acc / wsum)
}
