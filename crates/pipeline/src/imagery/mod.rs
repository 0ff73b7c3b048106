//! GeoTIFF imagery → TMS pyramid (`{z}/{x}/{y}.png|jpg|webp` + tilemapresource.xml).

mod encode;
mod pyramid;
mod run;
mod source;
mod tms;
mod warp;

pub use encode::{encode_tile, to_rgba8, ImageFormat};
pub use pyramid::reduce;
pub use run::run_imagery;
pub use source::{ImagerySource, MERCATOR_MAX_LAT_DEG};
pub use tms::{tilemapresource, wmts_capabilities, TmsDoc};
pub use warp::{render, Resampling, RgbaTile};

use serde::{Deserialize, Serialize};
use tessera_model::TilingScheme;

/// How imagery is tiled; the defaults are gdal2tiles' (mercator, 256 px PNG, zooms from
/// the raster's resolution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageryOptions {
    pub profile: TilingScheme,
    pub resampling: Resampling,
    pub format: ImageFormat,
    /// JPEG quality 1–100.
    pub quality: u8,
    pub min_zoom: Option<u8>,
    pub max_zoom: Option<u8>,
    /// Rows counted from the north in folder names (slippy-map / XYZ) instead of TMS.
    pub xyz: bool,
    /// Map this value range of non-8-bit rasters onto 0–255 (default: 2nd–98th percentile).
    pub scale: Option<(f64, f64)>,
    pub tile_px: u32,
    /// Also write fully transparent tiles inside the bounds (for clients that treat a
    /// missing tile as an error).
    pub write_empty: bool,
    /// Write WMTSCapabilities.xml (needs `xyz`, since WMTS rows count from the north).
    pub wmts: bool,
}

impl Default for ImageryOptions {
    fn default() -> Self {
        ImageryOptions {
            profile: TilingScheme::WebMercatorQuad,
            resampling: Resampling::default(),
            format: ImageFormat::default(),
            quality: 85,
            min_zoom: None,
            max_zoom: None,
            xyz: false,
            scale: None,
            tile_px: 256,
            write_empty: false,
            wmts: false,
        }
    }
}
