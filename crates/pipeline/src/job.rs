//! What to convert and how: the plain data both front ends build.

use crate::citygml::CityOptions;
use crate::imagery::ImageryOptions;
use crate::models::ModelOptions;
use crate::refs::Budget;
use crate::route::Source;
use crate::terrain::TerrainOptions;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tessera_model::CrsSpec;

/// Geometry compression of point tiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PointCompression {
    /// Float positions and plain attribute streams, readable by any glTF loader.
    None,
    /// 3D Tiles 1.1: positions quantized (KHR_mesh_quantization, or meshopt's exponential
    /// filter for tiles too large for 16 bits at 1 mm) and every stream through meshopt's
    /// vertex codec (EXT_meshopt_compression). 3D Tiles 1.0: POSITION_QUANTIZED.
    #[default]
    Meshopt,
}

/// How the tile tree of a point cloud is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TreeLayout {
    /// Implicit above [`crate::pointcloud::AUTO_IMPLICIT_TILES`] tiles, explicit below.
    #[default]
    Auto,
    /// 3D Tiles 1.1 implicit octree: a small root file and subtree files.
    Implicit,
    /// Every tile listed in `tileset.json`, with tight bounding boxes.
    Explicit,
}

/// 3D Tiles flavour of the output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TilesFormat {
    /// 3D Tiles 1.1: glTF (`.glb`) point tiles with EXT_structural_metadata.
    #[default]
    Tiles11,
    /// 3D Tiles 1.0: `.pnts` tiles with a batch table, for older clients.
    Tiles10,
}

/// What the job produces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// 3D Tiles from point clouds or a glTF model (told by the inputs).
    #[default]
    Tiles3d,
    /// A TMS imagery pyramid from GeoTIFFs.
    Imagery,
    /// quantized-mesh terrain from GeoTIFF DEMs.
    Terrain,
}

/// A conversion job. Inputs are files or directories (searched recursively).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub target: Target,
    pub inputs: Vec<PathBuf>,
    /// A directory, or with `archive` the `.3tz` file to write.
    pub output: PathBuf,
    /// Overrides whatever CRS the inputs declare.
    pub input_crs: Option<CrsSpec>,
    /// Vertical grid turning orthometric heights into ellipsoidal ones.
    pub geoid: Option<PathBuf>,
    pub format: TilesFormat,
    pub archive: bool,
    pub tiling: TilingOptions,
    /// Where to spill points while tiling; defaults to the output's parent directory.
    pub temp_dir: Option<PathBuf>,
    #[serde(default)]
    pub imagery: ImageryOptions,
    #[serde(default)]
    pub terrain: TerrainOptions,
    #[serde(default)]
    pub model: ModelOptions,
    #[serde(default)]
    pub city: CityOptions,
    /// What the inputs are, when the caller knows (the server's sourceType); `None`: told
    /// by the files (3D Tiles jobs only).
    #[serde(default)]
    pub source: Option<Source>,
    /// Folder that files referred to by the inputs (textures, buffers) must lie in;
    /// `None`: the folder of each input (see [`crate::RefRoot::for_input`]).
    #[serde(default)]
    pub refs_root: Option<PathBuf>,
    /// Let references leave that folder (still regular files only).
    #[serde(default)]
    pub allow_outside_refs: bool,
    /// Memory that counts and sizes read from files may claim.
    #[serde(default)]
    pub budget: Budget,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TilingOptions {
    /// A tile holding at most this many points becomes a leaf.
    pub max_points_per_tile: usize,
    /// Keep only one point per cube of this edge (metres); `None` keeps every point.
    pub sample_spacing_m: Option<f64>,
    /// Points held in memory per worker while tiling one octree cell.
    pub cell_budget_points: usize,
    /// Bytes of spilled point records kept in memory rather than written to disk
    /// (all cells together); the rest go to temporary files.
    #[serde(default = "default_spill_memory_bytes")]
    pub spill_memory_bytes: usize,
    #[serde(default)]
    pub compression: PointCompression,
    /// Implicit or explicit tile tree (3D Tiles 1.0 output is always explicit).
    #[serde(default)]
    pub tree: TreeLayout,
    /// Per-point attributes to keep (`rgb`, `intensity`, `classification`, `returns`,
    /// `gps_time`, extra-bytes dimension names, `all`, `none`); `None` keeps all.
    #[serde(default)]
    pub attributes: Option<Vec<String>>,
}

fn default_spill_memory_bytes() -> usize {
    384 << 20
}

impl Default for TilingOptions {
    fn default() -> Self {
        TilingOptions {
            max_points_per_tile: 80_000,
            sample_spacing_m: None,
            cell_budget_points: 2_000_000,
            spill_memory_bytes: default_spill_memory_bytes(),
            compression: PointCompression::default(),
            tree: TreeLayout::default(),
            attributes: None,
        }
    }
}

impl JobSpec {
    pub fn new(inputs: Vec<PathBuf>, output: PathBuf) -> JobSpec {
        JobSpec {
            target: Target::default(),
            inputs,
            output,
            input_crs: None,
            geoid: None,
            format: TilesFormat::default(),
            archive: false,
            tiling: TilingOptions::default(),
            temp_dir: None,
            imagery: ImageryOptions::default(),
            terrain: TerrainOptions::default(),
            model: ModelOptions::default(),
            city: CityOptions::default(),
            source: None,
            refs_root: None,
            allow_outside_refs: false,
            budget: Budget::default(),
        }
    }
}
