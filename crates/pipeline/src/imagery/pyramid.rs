//! The tile pyramid, built depth-first: a base-level tile is warped from the sources, every
//! coarser tile is reduced from its four children. Subtrees run in parallel (rayon::join),
//! each tile is a pure function of its id, and a worker holds at most four tiles per level,
//! so memory stays bounded and 1 or N threads write the same bytes.

use super::encode::{encode_tile, EncodedImage};
use super::source::ImagerySource;
use super::warp::{catmull_rom, render, Resampling, RgbaTile};
use super::ImageryOptions;
use crate::error::PipelineError;
use crate::progress::Progress;
use crate::raster::ChunkCache;
use crate::sink::TileSink;
use std::sync::atomic::{AtomicU64, Ordering};
use tessera_model::{QuadTileId, Rect, Stage, TilingScheme};

pub struct Pyramid<'a> {
    pub sources: &'a [ImagerySource],
    pub cache: &'a ChunkCache,
    pub scheme: TilingScheme,
    pub opts: &'a ImageryOptions,
    pub min_zoom: u8,
    pub max_zoom: u8,
    pub footprint: Rect,
    pub sink: &'a dyn TileSink,
    pub progress: &'a Progress,
    pub base_total: u64,
    pub base_done: AtomicU64,
    pub tiles_written: AtomicU64,
    /// Tiles per level, to report.
    pub per_level: Vec<AtomicU64>,
}

impl Pyramid<'_> {
    /// Build and write every tile under `id` down to the base level.
    pub fn build(&self, id: QuadTileId) -> Result<Option<RgbaTile>, PipelineError> {
        self.progress.check()?;
        let rect = self.scheme.tile_rect(id);
        if !rect.intersects(&self.footprint) {
            return Ok(None);
        }
        let img = if id.level >= self.max_zoom {
            let t = self.render_base(&rect)?;
            let done = self.base_done.fetch_add(1, Ordering::Relaxed) + 1;
            self.progress.raise(Stage::Tile, done, self.base_total);
            t
        } else {
            let [a, b, c, d] = id.children();
            let ((ta, tb), (tc, td)) = rayon::join(
                || rayon::join(|| self.build(a), || self.build(b)),
                || rayon::join(|| self.build(c), || self.build(d)),
            );
            let kids = [ta?, tb?, tc?, td?];
            if kids.iter().all(Option::is_none) {
                None
            } else {
                Some(reduce(&kids, self.opts.tile_px, self.opts.resampling))
            }
        };
        if id.level >= self.min_zoom {
            self.emit(id, img.as_ref())?;
        }
        Ok(img)
    }

    fn render_base(&self, rect: &Rect) -> Result<Option<RgbaTile>, PipelineError> {
        let mut out: Option<RgbaTile> = None;
        for src in self.sources.iter().filter(|s| s.footprint.intersects(rect)) {
            if let Some(layer) = render(
                src,
                self.cache,
                rect,
                self.opts.tile_px,
                self.opts.resampling,
            )? {
                match out.as_mut() {
                    None => out = Some(layer),
                    Some(o) => o.composite_over(&layer),
                }
            }
        }
        Ok(out.filter(|t| !t.is_empty()))
    }

    fn emit(&self, id: QuadTileId, img: Option<&RgbaTile>) -> Result<(), PipelineError> {
        let blank;
        let img = match img {
            Some(t) if !t.is_empty() => t,
            _ if self.opts.write_empty => {
                blank = RgbaTile::transparent(self.opts.tile_px);
                &blank
            }
            _ => return Ok(()),
        };
        let EncodedImage { bytes, extension } =
            encode_tile(img, self.opts.format, self.opts.quality)?;
        let row = if self.opts.xyz {
            id.y
        } else {
            self.scheme.tms_y(id)
        };
        let path = format!("{}/{}/{}.{}", id.level, id.x, row, extension);
        self.sink.write(&path, &bytes)?;
        self.tiles_written.fetch_add(1, Ordering::Relaxed);
        self.per_level[usize::from(id.level)].fetch_add(1, Ordering::Relaxed);
        self.progress.add_tile();
        Ok(())
    }
}

/// One row of 1-D reduction weights: for output pixel `i`, taps `2i + offset` with weights.
fn reduction_taps(resampling: Resampling) -> Vec<(i32, f32)> {
    match resampling {
        Resampling::Nearest => vec![(1, 1.0)],
        Resampling::Average => vec![(0, 0.5), (1, 0.5)],
        Resampling::Bilinear => vec![(-1, 0.125), (0, 0.375), (1, 0.375), (2, 0.125)],
        Resampling::Cubic => {
            // Catmull-Rom stretched by two, centred between input pixels 2i and 2i+1.
            let taps: Vec<(i32, f32)> = (-3..=4)
                .map(|o| (o, catmull_rom((f64::from(o) - 0.5) / 2.0) as f32))
                .collect();
            let sum: f32 = taps.iter().map(|t| t.1).sum();
            taps.into_iter().map(|(o, w)| (o, w / sum)).collect()
        }
    }
}

/// Halve four children (NW, NE, SW, SE; `None` = transparent) into their parent.
pub fn reduce(kids: &[Option<RgbaTile>; 4], size: u32, resampling: Resampling) -> RgbaTile {
    let n = size as usize;
    let m = 2 * n;
    let taps = reduction_taps(resampling);
    // Horizontal pass: 2n rows × n columns.
    let mut tmp = vec![0f32; m * n * 4];
    for y in 0..m {
        let (ky, yy) = (y / n, y % n);
        for x in 0..n {
            let mut acc = [0f32; 4];
            let mut wsum = 0f32;
            for &(o, w) in &taps {
                let sx = 2 * x as i32 + o;
                if sx < 0 || sx >= m as i32 {
                    continue;
                }
                let (kx, xx) = (sx as usize / n, sx as usize % n);
                wsum += w;
                if let Some(t) = &kids[ky * 2 + kx] {
                    let p = &t.data[(yy * n + xx) * 4..(yy * n + xx) * 4 + 4];
                    for c in 0..4 {
                        acc[c] += w * p[c];
                    }
                }
            }
            let o = (y * n + x) * 4;
            for c in 0..4 {
                tmp[o + c] = acc[c] / wsum;
            }
        }
    }
    // Vertical pass.
    let mut out = RgbaTile::transparent(size);
    for y in 0..n {
        for x in 0..n {
            let mut acc = [0f32; 4];
            let mut wsum = 0f32;
            for &(o, w) in &taps {
                let sy = 2 * y as i32 + o;
                if sy < 0 || sy >= m as i32 {
                    continue;
                }
                wsum += w;
                let p = &tmp[(sy as usize * n + x) * 4..(sy as usize * n + x) * 4 + 4];
                for c in 0..4 {
                    acc[c] += w * p[c];
                }
            }
            let a = (acc[3] / wsum).clamp(0.0, 1.0);
            let o = (y * n + x) * 4;
            for c in 0..3 {
                out.data[o + c] = (acc[c] / wsum).clamp(0.0, 255.0 * a);
            }
            out.data[o + 3] = a;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(size: u32, rgb: f32, a: f32) -> RgbaTile {
        let mut t = RgbaTile::transparent(size);
        for p in t.data.chunks_exact_mut(4) {
            p.copy_from_slice(&[rgb * a, rgb * a, rgb * a, a]);
        }
        t
    }

    #[test]
    fn reducing_uniform_children_keeps_the_colour() {
        for r in [
            Resampling::Nearest,
            Resampling::Bilinear,
            Resampling::Cubic,
            Resampling::Average,
        ] {
            let kids = [
                Some(solid(8, 100.0, 1.0)),
                Some(solid(8, 100.0, 1.0)),
                Some(solid(8, 100.0, 1.0)),
                Some(solid(8, 100.0, 1.0)),
            ];
            let p = reduce(&kids, 8, r);
            for px in p.data.chunks_exact(4) {
                assert!(
                    (px[0] - 100.0).abs() < 1e-3 && (px[3] - 1.0).abs() < 1e-5,
                    "{r:?} {px:?}"
                );
            }
        }
    }

    #[test]
    fn missing_children_are_transparent_quadrants() {
        let kids = [Some(solid(8, 200.0, 1.0)), None, None, None];
        let p = reduce(&kids, 8, Resampling::Average);
        // North-west quadrant opaque, south-east transparent.
        assert!((p.data[3] - 1.0).abs() < 1e-6);
        assert_eq!(p.data[(7 * 8 + 7) * 4 + 3], 0.0);
        // Colour stays 200 where opaque (premultiplied, so divide by alpha).
        assert!((p.data[0] / p.data[3] - 200.0).abs() < 1e-3);
    }
}
