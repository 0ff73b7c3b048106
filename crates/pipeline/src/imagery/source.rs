//! One imagery input ready to warp: the opened GeoTIFF, its CRS, where it lands in the
//! tiling scheme, and how its values become 8-bit RGBA.

use crate::error::{CrsError, PipelineError, RasterError};
use crate::raster::{read_window, ChunkCache, GeoTiff, Photometric, SampleType, WindowRequest};
use crate::report::Warnings;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use tessera_model::{CrsSpec, GeoTransform, Rect, TilingScheme};
use tessera_proj::{crs_info, CrsKind, Transformer};

/// Web mercator stops at this latitude (the square world).
pub const MERCATOR_MAX_LAT_DEG: f64 = 85.051_128_779_806_59;

thread_local! {
    static TRANSFORMERS: RefCell<HashMap<(String, String), Rc<Transformer>>> =
        RefCell::new(HashMap::new());
}

fn transformer(from: &str, to: &str) -> Result<Rc<Transformer>, tessera_proj::ProjError> {
    TRANSFORMERS.with(|c| {
        let key = (from.to_string(), to.to_string());
        if let Some(t) = c.borrow().get(&key) {
            return Ok(t.clone());
        }
        let t = Rc::new(Transformer::new(from, to)?);
        c.borrow_mut().insert(key, t.clone());
        Ok(t)
    })
}

pub struct ImagerySource {
    pub id: u32,
    pub tiff: GeoTiff,
    pub crs: CrsSpec,
    pub crs_source: &'static str,
    pub inv_geo: GeoTransform,
    scheme_crs: &'static str,
    /// Where the raster lands, in scheme units.
    pub footprint: Rect,
    /// West, south, east, north in degrees.
    pub extent_deg: [f64; 4],
    /// Linear map of values onto 0–255: (offset, gain).
    scale: Option<(f32, f32)>,
    gray: bool,
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
        let tiff = GeoTiff::open(path)?;
        let (crs, crs_source) = match (input_crs, &tiff.crs) {
            (Some(c), _) => (c.clone(), "--input-crs"),
            (None, Some(c)) => (c.clone(), "GeoTIFF keys"),
            (None, None) => {
                return Err(CrsError::RasterCrs {
                    path: path.into(),
                    detail: tiff
                        .crs_problem
                        .clone()
                        .unwrap_or_else(|| "no CRS in the file".into()),
                }
                .into())
            }
        };
        let info = crs_info(crs.definition()).map_err(|e| CrsError::Unusable {
            path: path.into(),
            crs: crs.label(),
            reason: e.to_string(),
        })?;
        if matches!(info.kind, CrsKind::Geocentric | CrsKind::Vertical) {
            return Err(CrsError::Implausible {
                path: path.into(),
                crs: crs.label(),
                detail: "a raster needs a projected or geographic CRS".into(),
            }
            .into());
        }
        let inv_geo = tiff
            .geo
            .inverse()
            .ok_or_else(|| RasterError::NoGeoreference { path: path.into() })?;
        let bounds = tiff.geo.bounds(tiff.width, tiff.height);
        let unusable = |e: tessera_proj::ProjError| CrsError::Unusable {
            path: path.into(),
            crs: crs.label(),
            reason: e.to_string(),
        };
        let mut ext = tessera_proj::geographic_extent(
            crs.definition(),
            [bounds[0], bounds[1]],
            [bounds[2], bounds[3]],
        )
        .map_err(unusable)?;
        if ext[1] < -90.001 || ext[3] > 90.001 || ext[0] < -180.001 || ext[2] > 180.001 {
            return Err(CrsError::Implausible {
                path: path.into(),
                crs: crs.label(),
                detail: format!(
                    "the raster would cover lon {:.3}..{:.3}, lat {:.3}..{:.3}",
                    ext[0], ext[2], ext[1], ext[3]
                ),
            }
            .into());
        }
        // Web mercator ends at ±85.05°; the bounds clients read must too.
        let max_lat = match scheme {
            TilingScheme::WebMercatorQuad => MERCATOR_MAX_LAT_DEG,
            TilingScheme::GeographicQuad => 90.0,
        };
        ext = [
            ext[0].max(-180.0),
            ext[1].max(-max_lat),
            ext[2].min(180.0),
            ext[3].min(max_lat),
        ];
        if ext[1] >= ext[3] {
            return Err(CrsError::Implausible {
                path: path.into(),
                crs: crs.label(),
                detail: format!(
                    "the raster lies beyond latitude ±{max_lat:.4}°, outside the {scheme} profile; use --profile geodetic"
                ),
            }
            .into());
        }
        let footprint = match scheme {
            TilingScheme::GeographicQuad => Rect {
                min_x: ext[0],
                min_y: ext[1],
                max_x: ext[2],
                max_y: ext[3],
            },
            TilingScheme::WebMercatorQuad => {
                let t = transformer("EPSG:4326", "EPSG:3857").map_err(unusable)?;
                let mut c = [[ext[0], ext[1], 0.0], [ext[2], ext[3], 0.0]];
                t.transform(&mut c).map_err(unusable)?;
                Rect {
                    min_x: c[0][0],
                    min_y: c[0][1],
                    max_x: c[1][0],
                    max_y: c[1][1],
                }
            }
        };
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
            id,
            tiff,
            crs,
            crs_source,
            inv_geo,
            scheme_crs: scheme.crs_code(),
            footprint,
            extent_deg: ext,
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
        let l = &t.levels[level];
        // At most ~1 M window pixels: reduce the coarsest level further when needed.
        let px = u64::from(l.width) * u64::from(l.height);
        let factor = ((px as f64 / 1.0e6).sqrt().ceil() as u32).max(1);
        let win = read_window(
            cache,
            self.id,
            t,
            WindowRequest {
                level,
                x0: 0,
                y0: 0,
                width: l.width.div_ceil(factor) as usize,
                height: l.height.div_ceil(factor) as usize,
                factor,
            },
        )?;
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

    /// Scheme coordinates → source CRS coordinates in place (NaN where PROJ fails).
    pub fn to_source(&self, xyz: &mut [[f64; 3]]) -> Result<(), PipelineError> {
        let t = transformer(self.scheme_crs, self.crs.definition()).map_err(|e| {
            CrsError::Unusable {
                path: self.tiff.path.clone(),
                crs: self.crs.label(),
                reason: e.to_string(),
            }
        })?;
        t.transform_partial(xyz);
        Ok(())
    }

    /// Sampled values + alpha → premultiplied RGBA (colour 0–255 × alpha).
    pub fn to_rgba(&self, px: &[f32; 5]) -> [f32; 4] {
        let map = |v: f32| match self.scale {
            Some((lo, gain)) => ((v - lo) * gain).clamp(0.0, 255.0),
            None => v.clamp(0.0, 255.0),
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
