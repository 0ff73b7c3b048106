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
pub fn sample_grid(
    dems: &[(&Dem, LevelPlan)],
    cache: &ChunkCache,
    rect: &Rect,
    size: usize,
) -> Result<Vec<Option<f64>>, PipelineError> {
    let n = size + 2;
    let step_x = rect.width() / (size - 1) as f64;
    let step_y = rect.height() / (size - 1) as f64;
    let mut out: Vec<Option<f64>> = vec![None; n * n];
    for (dem, plan) in dems {
        let mut pts: Vec<[f64; 3]> = Vec::with_capacity(n * n);
        for j in 0..n {
            let lat = (rect.max_y - (j as f64 - 1.0) * step_y).clamp(-90.0, 90.0);
            for i in 0..n {
                let lon = rect.min_x + (i as f64 - 1.0) * step_x;
                pts.push([lon, lat, 0.0]);
            }
        }
        dem.raster.to_source(&mut pts)?;
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
                if let Some(h) = bilinear(&win, u - x0 as f64, v - y0 as f64) {
                    out[k] = Some(h * dem.height_factor);
                }
            }
        }
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
