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

/// A consistent-enough view of a job's counters. `percent` is monotonic and stays
/// below 100 until the output is committed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProgressSnapshot {
    pub percent: f64,
    pub stage: Stage,
    pub points_read: u64,
    pub points_total: u64,
    pub tiles_written: u64,
}
