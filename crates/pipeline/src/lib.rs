//! tessera-pipeline: turns input files into tilesets.
//!
//! In: a [`JobSpec`] (plain data: target, inputs, output, options) and a [`Progress`] to
//! publish into. Out: the committed output (a 3D Tiles directory or `.3tz` from point clouds,
//! a TMS imagery directory or a quantized-mesh terrain directory from GeoTIFFs, a 3D Tiles
//! directory from a glTF model) and a [`JobReport`]
//! with counts and collected warnings, or a [`PipelineError`] whose `kind()` tells bad input
//! from internal faults and cancellation.
//! Must not know: terminals, HTTP, tokio. Runs on the caller's rayon pool; never prints.

pub mod citygml;
pub mod clamp;
pub mod contain;
mod detect;
pub mod encode;
pub mod error;
pub mod imagery;
mod job;
pub mod las;
pub mod models;
pub mod pointcloud;
mod progress;
pub mod raster;
pub mod refs;
mod report;
pub mod reproject;
pub mod route;
mod run;
pub mod sink;
pub mod terrain;

pub use citygml::CityOptions;
pub use detect::{discover, InputFormat};
pub use error::{ErrorKind, PipelineError};
pub use job::{JobSpec, PointCompression, Target, TilesFormat, TilingOptions, TreeLayout};
pub use models::ModelOptions;
pub use progress::Progress;
pub use refs::{Budget, RefRoot};
pub use report::{InputSummary, JobReport, Warning, Warnings};
pub use route::Source;
pub use run::run;
