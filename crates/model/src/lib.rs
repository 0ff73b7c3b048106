//! tessera-model: the intermediate representations every Tessera route shares.
//!
//! In: nothing but plain values. Out: point chunks, triangle meshes, bounds, octree and quadtree tile ids, tiling schemes, raster
//! georeferencing, CRS identity,
//! work plans, progress snapshots and warnings, all plain serde data.
//! Must not know: files, threads, PROJ, HTTP or any output format.

mod bounds;
mod crs;
mod frame;
mod mesh;
mod points;
mod progress;
mod quad;
mod raster;
mod tile_id;
mod work;

pub use bounds::Aabb;
pub use crs::{CrsError, CrsSpec};
pub use frame::{check_placement, EnuFrame, PLACEMENT_HEIGHT_RANGE_M};
pub use mesh::{TriangleMesh, VertexColumn};
pub use points::{ExtraDimension, PointAttributes, PointChunk, ScalarKind};
pub use progress::{ProgressSnapshot, Stage, WorkKind};
pub use quad::{QuadTileId, Rect, TilingScheme, MERCATOR_HALF_WORLD_M};
pub use raster::GeoTransform;
pub use tile_id::OctTileId;
pub use work::{WorkPlan, WorkUnit};
