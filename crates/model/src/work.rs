//! Work units: the pieces a job is cut into, with weights that progress is made of.

use serde::{Deserialize, Serialize};
use std::ops::Range;

/// A piece of one input: for point clouds, a range of point indices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkUnit {
    /// Index into the job's list of input files.
    pub input: usize,
    pub part: Range<u64>,
    pub weight: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkPlan {
    pub units: Vec<WorkUnit>,
}

impl WorkPlan {
    pub fn total_weight(&self) -> u64 {
        self.units.iter().map(|u| u.weight).sum()
    }
}
