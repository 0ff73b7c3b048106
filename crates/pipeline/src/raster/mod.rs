//! GeoTIFF rasters: headers, georeferencing, chunk decoding and windowed reads shared by
//! the imagery and terrain routes.

mod chunk;
mod geokeys;
mod geotiff;
mod placed;
mod window;

pub use chunk::{Chunk, Samples};
pub use geokeys::{geo_transform, GeoKeys, KeyCrs};
pub use geotiff::{GeoTiff, Level, Photometric, SampleType, MAX_PIXELS};
pub use placed::{transformer, PlacedRaster, MERCATOR_MAX_LAT_DEG};
pub use window::{
    read_level_reduced, read_window, ChunkCache, Window, WindowRequest, JOB_CACHE_BYTES,
};
