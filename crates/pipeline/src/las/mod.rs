//! LAS/LAZ reader: cheap inspection (header, CRS, work units) and reads of point ranges,
//! callable from many rayon workers at once (each opens its own reader).

mod crs;
mod extra;
mod preflight;
mod read;

pub use crs::declared_crs;
pub use extra::{ExtraField, ExtraLayout};
pub use read::{inspect, Column, LasSource, LazChunks};
