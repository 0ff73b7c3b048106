//! GeoTIFF DEMs → quantized-mesh-1.0 terrain (`{z}/{x}/{y}.terrain` + layer.json) in the
//! geographic TMS scheme CesiumTerrainProvider reads.

mod layer;
mod mesh;
mod qmesh;
mod run;
mod sample;

pub use mesh::rtin;
pub use qmesh::{ecef, encode, Extensions, GridMesh};
pub use run::{run_terrain, GRID};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TerrainOptions {
    /// Finest zoom (default: where the vertex grid reaches the DEM's resolution).
    pub max_zoom: Option<u8>,
    /// Largest height error at the finest zoom, in metres (default: half a DEM pixel);
    /// it doubles for every coarser zoom.
    pub max_error_m: Option<f64>,
    /// octvertexnormals extension.
    pub normals: bool,
    /// watermask extension: from `water_mask` when given, else the one-byte all-land form.
    pub watermask: bool,
    /// An 8-bit raster whose non-zero pixels are water (any CRS), sampled at 256 × 256 per tile.
    #[serde(default)]
    pub water_mask: Option<std::path::PathBuf>,
    /// metadata extension (child availability per tile).
    pub metadata: bool,
}

impl Default for TerrainOptions {
    fn default() -> Self {
        TerrainOptions {
            max_zoom: None,
            max_error_m: None,
            normals: true,
            watermask: false,
            water_mask: None,
            metadata: true,
        }
    }
}
