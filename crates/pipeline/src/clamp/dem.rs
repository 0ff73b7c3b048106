//! Heights read from a DEM GeoTIFF the way the terrain route reads them: longitude/latitude
//! through PROJ into the DEM's CRS, bilinear between pixel centres over pixels with data,
//! times the vertical unit. Chunks (tiles or strips) are decoded on first use and kept in a
//! byte-bounded cache, so a 16k × 16k DEM is never read whole.

use crate::error::{PipelineError, RasterError};
use crate::raster::{read_window, ChunkCache, PlacedRaster, WindowRequest};
use crate::report::Warnings;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use tessera_model::TilingScheme;

/// Decoded DEM chunks kept in memory.
const CACHE_BYTES: usize = 64 << 20;

pub(super) struct DemHeights {
    raster: PlacedRaster,
    /// Metres per stored unit (the terrain route's `height_factor`).
    height_factor: f64,
    cache: ChunkCache,
    /// One warning per kind of failure is enough; the rest would repeat it.
    warned_decode: AtomicBool,
    warned_proj: AtomicBool,
}

impl DemHeights {
    pub fn open(path: &Path) -> Result<DemHeights, PipelineError> {
        // The same placement the terrain route uses (geographic scheme, the file's own CRS),
        // so the PROJ operation and the pixel grid are the ones its tiles were sampled with.
        let raster = PlacedRaster::open(0, path, TilingScheme::GeographicQuad, None)?;
        if raster.tiff.value_bands() != 1 {
            return Err(RasterError::Unsupported {
                path: path.into(),
                what: format!(
                    "a {}-band raster as terrain",
                    raster.tiff.value_bands()
                ),
                hint: "--clamp-to-terrain needs a single-band elevation model (DEM) or a terrain folder; this looks like imagery".into(),
            }
            .into());
        }
        let height_factor = if raster.crs_info.vertical_name.is_some() {
            raster.crs_info.vertical_unit_m.unwrap_or(1.0)
        } else {
            1.0
        };
        Ok(DemHeights {
            raster,
            height_factor,
            cache: ChunkCache::new(CACHE_BYTES),
            warned_decode: AtomicBool::new(false),
            warned_proj: AtomicBool::new(false),
        })
    }

    pub fn height_at(&self, lon_deg: f64, lat_deg: f64, warnings: &Warnings) -> Option<f64> {
        let e = self.raster.extent_deg;
        // The extent is PROJ's densified image of the raster's box; a margin keeps points on
        // a curved edge, and everything else is refused without a PROJ call.
        let (mx, my) = ((e[2] - e[0]) * 0.01, (e[3] - e[1]) * 0.01);
        if lon_deg < e[0] - mx || lon_deg > e[2] + mx || lat_deg < e[1] - my || lat_deg > e[3] + my
        {
            return None;
        }
        let mut p = [[lon_deg, lat_deg, 0.0]];
        if let Err(e) = self.raster.to_source(&mut p) {
            if !self.warned_proj.swap(true, Ordering::Relaxed) {
                warnings.push("terrain-unreadable", e.to_string());
            }
            return None;
        }
        if !p[0][0].is_finite() || !p[0][1].is_finite() {
            return None;
        }
        let (u, v) = self.raster.inv_geo.apply(p[0][0], p[0][1]);
        let t = &self.raster.tiff;
        // The pixel under the point must be on the raster (as in the terrain route).
        if !(u >= 0.0 && u < f64::from(t.width) && v >= 0.0 && v < f64::from(t.height)) {
            return None;
        }
        let (tx, ty) = (u - 0.5, v - 0.5);
        let (ix, iy) = (tx.floor() as i64, ty.floor() as i64);
        let win = match read_window(
            &self.cache,
            self.raster.id,
            t,
            WindowRequest {
                level: 0,
                x0: ix,
                y0: iy,
                width: 2,
                height: 2,
                factor: 1,
            },
        ) {
            Ok(w) => w,
            Err(e) => {
                if !self.warned_decode.swap(true, Ordering::Relaxed) {
                    warnings.push(
                        "terrain-unreadable",
                        format!("{e}; buildings there are not clamped"),
                    );
                }
                return None;
            }
        };
        let (ax, ay) = (tx - ix as f64, ty - iy as f64);
        let mut acc = 0.0;
        let mut wsum = 0.0;
        for (dy, wy) in [(0i64, 1.0 - ay), (1, ay)] {
            for (dx, wx) in [(0i64, 1.0 - ax), (1, ax)] {
                let w = wx * wy;
                if w == 0.0 || !win.is_inside(dx, dy) {
                    continue;
                }
                let idx = (dy * 2 + dx) as usize;
                if win.alpha[idx] > 0.5 {
                    acc += w * f64::from(win.values[idx * win.bands]);
                    wsum += w;
                }
            }
        }
        (wsum > 0.0).then(|| acc / wsum * self.height_factor)
    }
}
