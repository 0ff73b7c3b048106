//! tessera-model: the intermediate representations every Tessera route shares.
//!
//! In: nothing but plain values. Out: point chunks, bounds, tile ids, CRS identity,
//! work plans, progress snapshots and warnings, all plain serde data.
//! Must not know: files, threads, PROJ, HTTP or any output format.

mod bounds;
mod crs;
mod frame;
mod points;
mod progress;
mod tile_id;
mod work;

pub use bounds::Aabb;
pub use crs::{CrsError, CrsSpec};
pub use frame::EnuFrame;
pub use points::{PointAttributes, PointChunk};
pub use progress::{ProgressSnapshot, Stage};
pub use tile_id::OctTileId;
pub use work::{WorkPlan, WorkUnit};
