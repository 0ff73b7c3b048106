//! One imagery input ready to warp: a placed GeoTIFF plus how its values become 8-bit RGBA.

use crate::error::PipelineError;
use crate::raster::{read_level_reduced, ChunkCache, Photometric, PlacedRaster, SampleType};
use crate::report::Warnings;
use std::path::Path;
use tessera_model::{CrsSpec, TilingScheme};

pub use crate::raster::MERCATOR_MAX_LAT_DEG;

pub struct ImagerySource {
    pub raster: PlacedRaster,
    /// Linear map of values onto 0–255: (offset, gain).
    scale: Option<(f32, f32)>,
    gray: bool,
}

impl std::ops::Deref for ImagerySource {
    type Target = PlacedRaster;
    fn deref(&self) -> &PlacedRaster {
        &self.raster
    }
}

impl ImagerySource {
    pub fn open(
        id: u32,
        path: &Path,
        scheme: TilingScheme,
        input_crs: Option<&CrsSpec>,
        scale: Option<(f64, f64)>,
        cache: &ChunkCache,
        warnings: &Warnings,
    ) -> Result<ImagerySource, PipelineError> {
        let raster = PlacedRaster::open(id, path, scheme, input_crs)?;
        if let Some(why) = raster.area_of_use_problem() {
            warnings.push("crs-area-of-use", format!("{}: {why}", path.display()));
        }
        let tiff = &raster.tiff;
        let gray = tiff.value_bands() < 3;
        if tiff.value_bands() > 3 {
            warnings.push(
                "extra-bands",
                format!(
                    "{}: {} bands; the first three are shown as red, green and blue",
                    path.display(),
                    tiff.value_bands()
                ),
            );
        }
        let mut src = ImagerySource {
            raster,
            scale: None,
            gray,
        };
        src.scale = src.choose_scale(scale, cache, warnings)?;
        Ok(src)
    }

    /// 8-bit samples (and palettes, JPEG) map as they are; anything else is stretched from
    /// `--scale min,max` or from the 2nd–98th percentile of the coarsest level.
    fn choose_scale(
        &self,
        given: Option<(f64, f64)>,
        cache: &ChunkCache,
        warnings: &Warnings,
    ) -> Result<Option<(f32, f32)>, PipelineError> {
        let eight_bit = self.tiff.sample == SampleType::U8
            || matches!(self.tiff.photometric, Photometric::Palette(_));
        let (lo, hi) = match given {
            Some(r) => r,
            None if eight_bit => return Ok(None),
            None => {
                let r = self.percentiles(cache)?;
                warnings.push(
                    "scaled-to-8-bit",
                    format!(
                        "{}: {} values stretched from {:.6}..{:.6} (2nd-98th percentile) to 0..255; \
                         pass --scale MIN,MAX to choose the range",
                        self.tiff.path.display(),
                        self.tiff.sample.name(),
                        r.0,
                        r.1
                    ),
                );
                r
            }
        };
        let gain = if hi > lo { 255.0 / (hi - lo) } else { 1.0 };
        Ok(Some((lo as f32, gain as f32)))
    }

    fn percentiles(&self, cache: &ChunkCache) -> Result<(f64, f64), PipelineError> {
        let t = &self.tiff;
        let level = t.levels.len() - 1;
        // At most ~1 M window pixels: the coarsest level, reduced further when needed.
        let win = read_level_reduced(cache, self.id, t, level)?;
        let mut vals: Vec<f32> = win
            .values
            .chunks_exact(win.bands)
            .zip(&win.alpha)
            .filter(|(_, a)| **a > 0.0)
            .flat_map(|(v, _)| v.iter().take(3).copied())
            .filter(|v| v.is_finite())
            .collect();
        if vals.is_empty() {
            return Ok((0.0, 255.0));
        }
        vals.sort_by(f32::total_cmp);
        let at = |q: f64| f64::from(vals[((vals.len() - 1) as f64 * q).round() as usize]);
        let (lo, hi) = (at(0.02), at(0.98));
        Ok(if hi > lo { (lo, hi) } else { (lo, lo + 1.0) })
    }

    /// Sampled values + alpha → premultiplied RGBA (colour 0–255 × alpha).
    pub fn to_rgba(&self, px: &[f32; 5]) -> [f32; 4] {
        // NaN (from sums of huge values of opposite sign) would survive `clamp`.
        let map = |v: f32| {
            let m = match self.scale {
                Some((lo, gain)) => (v - lo) * gain,
                None => v,
            };
            if m.is_nan() {
                0.0
            } else {
                m.clamp(0.0, 255.0)
            }
        };
        let a = px[4];
        let (r, g, b) = if self.gray {
            let v = map(px[0]);
            (v, v, v)
        } else {
            (map(px[0]), map(px[1]), map(px[2]))
        };
        [r * a, g * a, b * a, a]
    }
}
