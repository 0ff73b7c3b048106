//! A GeoTIFF placed in a tiling scheme: its CRS settled, its footprint in scheme units and
//! degrees, and the transform from scheme coordinates to its pixels. Shared by the imagery
//! and terrain routes.

use super::GeoTiff;
use crate::error::{CrsError, PipelineError, RasterError};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use tessera_model::{CrsSpec, GeoTransform, Rect, TilingScheme};
use tessera_proj::{crs_info, CrsInfo, CrsKind, Transformer};

/// Web mercator stops at this latitude (the square world).
pub const MERCATOR_MAX_LAT_DEG: f64 = 85.051_128_779_806_59;

thread_local! {
    static TRANSFORMERS: RefCell<HashMap<(String, String), Rc<Transformer>>> =
        RefCell::new(HashMap::new());
}

/// A per-thread PROJ transformer (they are not Send), built once per CRS pair.
pub fn transformer(from: &str, to: &str) -> Result<Rc<Transformer>, tessera_proj::ProjError> {
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

pub struct PlacedRaster {
    pub id: u32,
    pub tiff: GeoTiff,
    pub crs: CrsSpec,
    pub crs_info: CrsInfo,
    pub crs_source: &'static str,
    pub inv_geo: GeoTransform,
    scheme_crs: &'static str,
    /// Where the raster lands, in scheme units.
    pub footprint: Rect,
    /// West, south, east, north in degrees.
    pub extent_deg: [f64; 4],
}

impl PlacedRaster {
    /// Why the raster does not look like it belongs to its CRS (outside the CRS's area of
    /// use, with the likely cause), for a warning; see
    /// [`crate::reproject::area_of_use_problem`].
    pub fn area_of_use_problem(&self) -> Option<String> {
        let b = self.tiff.geo.bounds(self.tiff.width, self.tiff.height);
        let mut grid = Vec::with_capacity(9);
        for fx in [0.0, 0.5, 1.0] {
            for fy in [0.0, 0.5, 1.0] {
                grid.push([b[0] + fx * (b[2] - b[0]), b[1] + fy * (b[3] - b[1]), 0.0]);
            }
        }
        let to_geo = tessera_proj::Transformer::new(self.crs.definition(), "EPSG:4326").ok()?;
        crate::reproject::area_of_use_problem(&self.crs_info, &grid, |xyz| {
            let mut p = xyz.to_vec();
            to_geo.transform(&mut p).ok()?;
            p.iter()
                .all(|g| g[0].abs() <= 180.0 && g[1].abs() <= 90.0)
                .then(|| p.iter().map(|g| [g[0], g[1]]).collect())
        })
    }

    /// Open `path`, settle its CRS (`input_crs` overrides the file) and place it in `scheme`.
    pub fn open(
        id: u32,
        path: &Path,
        scheme: TilingScheme,
        input_crs: Option<&CrsSpec>,
    ) -> Result<PlacedRaster, PipelineError> {
        let tiff = GeoTiff::open(path)?;
        // The machine's budget here; the routes check again against the job's.
        tiff.check_memory(
            &crate::refs::Budget::default(),
            rayon::current_num_threads(),
            super::JOB_CACHE_BYTES,
        )?;
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
        Ok(PlacedRaster {
            id,
            tiff,
            crs,
            crs_info: info,
            crs_source,
            inv_geo,
            scheme_crs: scheme.crs_code(),
            footprint,
            extent_deg: ext,
        })
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
}
