//! What a running job reports: a snapshot, never a callback.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Inspect,
    Read,
    Tile,
    Commit,
    Done,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Inspect => "inspecting inputs",
            Stage::Read => "reading and reprojecting",
            Stage::Tile => "building tiles",
            Stage::Commit => "writing output",
            Stage::Done => "done",
        })
    }
}

/// What the current stage of a job counts, in the route's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    Points,
    CityDocuments,
    Tiles,
    /// Imagery: tiles of the finest zoom (the coarser ones are made from them).
    FinestTiles,
}

impl WorkKind {
    /// The counted things, plural.
    pub fn label(self) -> &'static str {
        match self {
            WorkKind::Points => "points",
            WorkKind::CityDocuments => "CityGML documents",
            WorkKind::Tiles => "tiles",
            WorkKind::FinestTiles => "finest-zoom tiles",
        }
    }
}

/// A consistent-enough view of a job's counters. `percent` is monotonic and stays
/// below 100 until the output is committed. `done` of `total` are what the current
/// stage counts (`work`; none while inspecting and committing).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProgressSnapshot {
    pub percent: f64,
    pub stage: Stage,
    pub points_read: u64,
    pub points_total: u64,
    pub tiles_written: u64,
    #[serde(default)]
    pub work: Option<WorkKind>,
    #[serde(default)]
    pub done: u64,
    #[serde(default)]
    pub total: u64,
}
