//! Rendering one tile from one source: destination pixels → source pixels through PROJ
//! (exact on a grid, interpolated in between within 0.125 source pixels, as GDAL's
//! approximate transformer does), then a resampling kernel scaled to the reduction.

use super::source::ImagerySource;
use crate::error::{PipelineError, RasterError};
use crate::raster::{read_window, ChunkCache, Window, WindowRequest};
use serde::{Deserialize, Serialize};
use tessera_model::Rect;

/// Largest interpolation error accepted, in source pixels.
const MAX_APPROX_ERROR_PX: f64 = 0.125;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resampling {
    Nearest,
    #[default]
    Bilinear,
    Cubic,
    Average,
}

/// A square tile of premultiplied RGBA: colour in 0–255 times alpha, alpha in 0–1.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbaTile {
    pub size: u32,
    pub data: Vec<f32>,
}

impl RgbaTile {
    pub fn transparent(size: u32) -> RgbaTile {
        RgbaTile {
            size,
            data: vec![0.0; (size * size * 4) as usize],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.data.chunks_exact(4).all(|p| p[3] < 0.5 / 255.0)
    }

    pub fn is_opaque(&self) -> bool {
        self.data.chunks_exact(4).all(|p| p[3] > 1.0 - 0.5 / 255.0)
    }

    /// Paint `top` over `self` (Porter–Duff "over").
    pub fn composite_over(&mut self, top: &RgbaTile) {
        for (d, s) in self.data.chunks_exact_mut(4).zip(top.data.chunks_exact(4)) {
            let k = 1.0 - s[3];
            for c in 0..4 {
                d[c] = s[c] + d[c] * k;
            }
        }
    }
}

/// Source pixel coordinates (full-resolution, corner-based) of every destination pixel
/// centre; NaN where PROJ cannot map the point.
pub(super) fn pixel_map(
    src: &ImagerySource,
    tile: &Rect,
    size: u32,
) -> Result<Vec<[f64; 2]>, PipelineError> {
    let n = size as usize;
    let unit = tile.width() / f64::from(size);
    let exact = |pts: &[(f64, f64)]| -> Result<Vec<[f64; 2]>, PipelineError> {
        let mut xyz: Vec<[f64; 3]> = pts
            .iter()
            .map(|(i, j)| [tile.min_x + i * unit, tile.max_y - j * unit, 0.0])
            .collect();
        src.to_source(&mut xyz)?;
        Ok(xyz
            .iter()
            .map(|p| {
                let (c, r) = src.inv_geo.apply(p[0], p[1]);
                [c, r]
            })
            .collect())
    };
    let mut step = 32usize.min(n);
    while step > 1 {
        let nodes = n / step + 1;
        let coord = |k: usize| ((k * step) as f64).min(n as f64 - 1.0) + 0.5;
        let grid_pts: Vec<(f64, f64)> = (0..nodes)
            .flat_map(|j| (0..nodes).map(move |i| (coord(i), coord(j))))
            .collect();
        let grid = exact(&grid_pts)?;
        if grid.iter().any(|p| p[0].is_nan()) {
            break;
        }
        let mids: Vec<(f64, f64)> = (0..nodes - 1)
            .flat_map(|j| {
                (0..nodes - 1).map(move |i| {
                    (
                        (coord(i) + coord(i + 1)) / 2.0,
                        (coord(j) + coord(j + 1)) / 2.0,
                    )
                })
            })
            .collect();
        let mid_exact = exact(&mids)?;
        let interp = |x: f64, y: f64| -> [f64; 2] { bilerp(&grid, nodes, step, n, x, y) };
        let ok = mids.iter().zip(&mid_exact).all(|((x, y), e)| {
            let a = interp(*x, *y);
            !e[0].is_nan() && (a[0] - e[0]).abs().max((a[1] - e[1]).abs()) <= MAX_APPROX_ERROR_PX
        });
        if ok {
            return Ok(fill_grid(&grid, nodes, step, n));
        }
        step /= 2;
    }
    let all: Vec<(f64, f64)> = (0..n)
        .flat_map(|j| (0..n).map(move |i| (i as f64 + 0.5, j as f64 + 0.5)))
        .collect();
    exact(&all)
}

/// Where pixel centre `v` falls between grid nodes: (node index, fraction).
fn grid_pos(v: f64, nodes: usize, step: usize, n: usize) -> (usize, f64) {
    let p = v - 0.5;
    let k = ((p.max(0.0) / step as f64) as usize).min(nodes - 2);
    let a = (k * step) as f64;
    let b = (((k + 1) * step) as f64).min(n as f64 - 1.0);
    (k, if b > a { (p - a) / (b - a) } else { 0.0 })
}

/// Every pixel centre of the tile interpolated from the grid, row by row.
fn fill_grid(grid: &[[f64; 2]], nodes: usize, step: usize, n: usize) -> Vec<[f64; 2]> {
    let cols: Vec<(usize, f64)> = (0..n)
        .map(|i| grid_pos(i as f64 + 0.5, nodes, step, n))
        .collect();
    let mut out = Vec::with_capacity(n * n);
    let mut row = vec![[0.0; 2]; nodes];
    for j in 0..n {
        let (k, fy) = grid_pos(j as f64 + 0.5, nodes, step, n);
        for (i, r) in row.iter_mut().enumerate() {
            let (a, b) = (grid[k * nodes + i], grid[(k + 1) * nodes + i]);
            *r = [a[0] + (b[0] - a[0]) * fy, a[1] + (b[1] - a[1]) * fy];
        }
        for &(i, fx) in &cols {
            let (a, b) = (row[i], row[i + 1]);
            out.push([a[0] + (b[0] - a[0]) * fx, a[1] + (b[1] - a[1]) * fx]);
        }
    }
    out
}

/// Bilinear interpolation in a grid of `nodes`² values placed every `step` pixels
/// (the last node sits on the last pixel centre).
fn bilerp(grid: &[[f64; 2]], nodes: usize, step: usize, n: usize, x: f64, y: f64) -> [f64; 2] {
    let pos = |v: f64| -> (usize, f64) {
        let p = v - 0.5;
        let k = ((p.max(0.0) / step as f64) as usize).min(nodes - 2);
        let a = (k * step) as f64;
        let b = (((k + 1) * step) as f64).min(n as f64 - 1.0);
        (k, if b > a { (p - a) / (b - a) } else { 0.0 })
    };
    let (i, fx) = pos(x);
    let (j, fy) = pos(y);
    let g = |i: usize, j: usize| grid[j * nodes + i];
    let (a, b, c, d) = (g(i, j), g(i + 1, j), g(i, j + 1), g(i + 1, j + 1));
    let mut out = [0.0; 2];
    for k in 0..2 {
        let top = a[k] + (b[k] - a[k]) * fx;
        let bot = c[k] + (d[k] - c[k]) * fx;
        out[k] = top + (bot - top) * fy;
    }
    out
}

/// How a tile samples a source: which level, what extra reduction, what kernel scale.
struct Plan {
    level: usize,
    /// Full-resolution pixels per level pixel (x, y).
    level_scale: (f64, f64),
    factor: u32,
    /// Window pixels per destination pixel, at least 1.
    kernel_scale: (f64, f64),
}

fn plan(src: &ImagerySource, map: &[[f64; 2]], size: u32) -> Option<(Plan, [f64; 4])> {
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for p in map.iter().filter(|p| !p[0].is_nan()) {
        b[0] = b[0].min(p[0]);
        b[1] = b[1].min(p[1]);
        b[2] = b[2].max(p[0]);
        b[3] = b[3].max(p[1]);
    }
    if !b[0].is_finite() {
        return None;
    }
    let t = &src.tiff;
    if b[2] < 0.0 || b[3] < 0.0 || b[0] > f64::from(t.width) || b[1] > f64::from(t.height) {
        return None;
    }
    let rx = (b[2] - b[0]) / f64::from(size);
    let ry = (b[3] - b[1]) / f64::from(size);
    let r = rx.min(ry).max(1e-9);
    let mut level = 0;
    for (i, l) in t.levels.iter().enumerate().skip(1) {
        let f = f64::from(t.width) / f64::from(l.width);
        if f <= r * 1.000_001 {
            level = i;
        }
    }
    let l = &t.levels[level];
    let level_scale = (
        f64::from(t.width) / f64::from(l.width),
        f64::from(t.height) / f64::from(l.height),
    );
    let rem = r / level_scale.0;
    let factor = if rem >= 2.0 { rem.floor() as u32 } else { 1 };
    let k = f64::from(factor);
    let kernel_scale = (
        (rx / level_scale.0 / k).max(1.0),
        (ry / level_scale.1 / k).max(1.0),
    );
    Some((
        Plan {
            level,
            level_scale,
            factor,
            kernel_scale,
        },
        b,
    ))
}

/// Most source pixels one tile's window may span (a 256 × 256 tile reads a few hundred
/// thousand; this is 64 million).
const MAX_WINDOW_PIXELS: u128 = 1 << 26;

/// Render `tile` (scheme units) from one source; `None` when the source does not reach it.
pub fn render(
    src: &ImagerySource,
    cache: &ChunkCache,
    tile: &Rect,
    size: u32,
    resampling: Resampling,
) -> Result<Option<RgbaTile>, PipelineError> {
    let map = pixel_map(src, tile, size)?;
    let Some((p, b)) = plan(src, &map, size) else {
        return Ok(None);
    };
    let k = f64::from(p.factor);
    let radius = match resampling {
        Resampling::Cubic => 2.0,
        _ => 1.0,
    } * p.kernel_scale.0.max(p.kernel_scale.1)
        + 1.0;
    let to_win_x = |c: f64| c / p.level_scale.0 / k;
    let to_win_y = |r: f64| r / p.level_scale.1 / k;
    let x0 = (to_win_x(b[0]) - radius).floor() as i64;
    let y0 = (to_win_y(b[1]) - radius).floor() as i64;
    let x1 = (to_win_x(b[2]) + radius).ceil() as i64;
    let y1 = (to_win_y(b[3]) + radius).ceil() as i64;
    let (width, height) = (x1.saturating_sub(x0).max(1), y1.saturating_sub(y0).max(1));
    // A tile reads about its own size of source pixels (overviews and the reduction factor
    // see to that); a window this large means the georeferencing is implausible (pixel
    // sizes that differ by orders of magnitude between the axes).
    if (width as u128) * (height as u128) > MAX_WINDOW_PIXELS {
        return Err(RasterError::Unusable {
            path: src.tiff.path.clone(),
            reason: format!(
                "one tile maps onto {width} × {height} source pixels: the raster's pixel size (its GeoTIFF ModelPixelScale/transformation) is implausible. Check its georeferencing with gdalinfo"
            ),
        }
        .into());
    }
    let win = read_window(
        cache,
        src.id,
        &src.tiff,
        WindowRequest {
            level: p.level,
            x0,
            y0,
            width: width as usize,
            height: height as usize,
            factor: p.factor,
        },
    )
    .map_err(PipelineError::from)?;
    let mut out = RgbaTile::transparent(size);
    let mut any = false;
    let mut wx = Vec::new();
    let mut wy = Vec::new();
    for (i, m) in map.iter().enumerate() {
        if m[0].is_nan() {
            continue;
        }
        let u = to_win_x(m[0]) - x0 as f64;
        let v = to_win_y(m[1]) - y0 as f64;
        let unscaled = p.kernel_scale.0 <= 1.0 && p.kernel_scale.1 <= 1.0;
        let px = match resampling {
            Resampling::Bilinear if unscaled => sample_bilinear(&win, u, v),
            _ => sample(&win, u, v, resampling, p.kernel_scale, &mut wx, &mut wy),
        };
        if let Some(px) = px {
            let rgba = src.to_rgba(&px);
            out.data[i * 4..i * 4 + 4].copy_from_slice(&rgba);
            any |= rgba[3] > 0.0;
        }
    }
    Ok(any.then_some(out))
}

/// Weighted sum of window pixels in premultiplied alpha; taps off the raster are never added.
struct Accum {
    bands: usize,
    acc: [f32; 4],
    asum: f32,
    wsum: f32,
}

impl Accum {
    fn new(win: &Window) -> Accum {
        Accum {
            bands: win.bands.min(4),
            acc: [0.0; 4],
            asum: 0.0,
            wsum: 0.0,
        }
    }

    fn add(&mut self, win: &Window, idx: usize, w: f32) {
        self.wsum += w;
        let a = win.alpha[idx];
        if a > 0.0 {
            let wa = w * a;
            self.asum += wa;
            let vals = &win.values[idx * win.bands..idx * win.bands + self.bands];
            for (c, val) in vals.iter().enumerate() {
                self.acc[c] += wa * val;
            }
        }
    }

    /// Values (not premultiplied) and alpha, or `None` when nothing visible was hit.
    fn finish(self) -> Option<[f32; 5]> {
        if self.asum <= 0.0 || self.wsum <= 0.0 {
            return None;
        }
        let mut out = [0f32; 5];
        for c in 0..self.bands {
            out[c] = self.acc[c] / self.asum;
        }
        out[4] = (self.asum / self.wsum).clamp(0.0, 1.0);
        Some(out)
    }
}

/// Bilinear at (u, v) when no reduction is left: the four surrounding pixels.
fn sample_bilinear(win: &Window, u: f64, v: f64) -> Option<[f32; 5]> {
    let (tx, ty) = (u - 0.5, v - 0.5);
    if tx < -1.0 || ty < -1.0 {
        return None;
    }
    // tx, ty ≥ -1 here: truncating tx + 1 is floor(tx) + 1 without a libm call.
    let (fx0, fy0) = (
        ((tx + 1.0) as i64 - 1) as f64,
        ((ty + 1.0) as i64 - 1) as f64,
    );
    let (ax, ay) = ((tx - fx0) as f32, (ty - fy0) as f32);
    let (ix, iy) = (fx0 as i64, fy0 as i64);
    // Covered only where the pixel under (u, v) is on the raster: adjacent rasters then
    // meet edge to edge, without a blended seam.
    if !win.is_inside(floor_i(u), floor_i(v)) {
        return None;
    }
    let w = win.width as i64;
    let mut sum = Accum::new(win);
    for (dy, wy) in [(0, 1.0 - ay), (1, ay)] {
        let y = iy + dy;
        if wy == 0.0 {
            continue;
        }
        for (dx, wx) in [(0, 1.0 - ax), (1, ax)] {
            let x = ix + dx;
            if wx == 0.0 || !win.is_inside(x, y) {
                continue;
            }
            sum.add(win, (y * w + x) as usize, wx * wy);
        }
    }
    sum.finish()
}

/// Kernel weights for the taps around continuous window coordinate `u` (corner-based).
fn weights(u: f64, resampling: Resampling, scale: f64, len: usize, out: &mut Vec<(usize, f32)>) {
    out.clear();
    let t = u - 0.5;
    match resampling {
        Resampling::Nearest => {
            let i = floor_i(u);
            if i >= 0 && (i as usize) < len {
                out.push((i as usize, 1.0));
            }
        }
        Resampling::Bilinear | Resampling::Cubic | Resampling::Average => {
            let support = match resampling {
                Resampling::Cubic => 2.0 * scale,
                Resampling::Average => 0.5 * scale,
                _ => scale,
            };
            let lo = ceil_i(t - support).max(0);
            let hi = floor_i(t + support).min(len as i64 - 1);
            for i in lo..=hi {
                let x = (i as f64 - t) / scale;
                let w = match resampling {
                    Resampling::Cubic => catmull_rom(x),
                    Resampling::Average => {
                        if x.abs() <= 0.5 {
                            1.0
                        } else {
                            0.0
                        }
                    }
                    _ => (1.0 - x.abs()).max(0.0),
                };
                if w != 0.0 {
                    out.push((i as usize, w as f32));
                }
            }
            if out.is_empty() {
                let i = floor_i(u);
                if i >= 0 && (i as usize) < len {
                    out.push((i as usize, 1.0));
                }
            }
        }
    }
}

/// floor / ceil without a libm call (the baseline x86-64 target has no rounding instruction).
fn floor_i(x: f64) -> i64 {
    let i = x as i64;
    if (i as f64) > x {
        i - 1
    } else {
        i
    }
}

fn ceil_i(x: f64) -> i64 {
    let i = x as i64;
    if (i as f64) < x {
        i + 1
    } else {
        i
    }
}

/// The kernel GDAL calls cubic (Catmull-Rom, a = -0.5).
pub(super) fn catmull_rom(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.5 * x * x * x - 2.5 * x * x + 1.0
    } else if x < 2.0 {
        -0.5 * x * x * x + 2.5 * x * x - 4.0 * x + 2.0
    } else {
        0.0
    }
}

/// Values (not premultiplied) and alpha at window coordinate (u, v).
#[allow(clippy::too_many_arguments)]
fn sample(
    win: &Window,
    u: f64,
    v: f64,
    resampling: Resampling,
    scale: (f64, f64),
    wx: &mut Vec<(usize, f32)>,
    wy: &mut Vec<(usize, f32)>,
) -> Option<[f32; 5]> {
    if !win.is_inside(floor_i(u), floor_i(v)) {
        return None;
    }
    weights(u, resampling, scale.0, win.width, wx);
    weights(v, resampling, scale.1, win.height, wy);
    wx.retain(|(i, _)| (win.inside.0..win.inside.2).contains(&(*i as i64)));
    wy.retain(|(j, _)| (win.inside.1..win.inside.3).contains(&(*j as i64)));
    if wx.is_empty() || wy.is_empty() {
        return None;
    }
    let mut sum = Accum::new(win);
    for &(j, w_y) in wy.iter() {
        let row = j * win.width;
        for &(i, w_x) in wx.iter() {
            sum.add(win, row + i, w_x * w_y);
        }
    }
    sum.finish()
}
