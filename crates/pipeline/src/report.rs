//! What a finished job tells its caller: counts, inputs and collected warnings.
//! The library never prints; front ends decide how to show this.

use serde::Serialize;
use std::path::PathBuf;
use std::sync::Mutex;
use tessera_model::Stage;

/// Warnings kept per job; the rest are counted.
const MAX_WARNINGS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Stable identifier, e.g. `orthometric-heights`.
    pub code: &'static str,
    pub message: String,
}

/// Thread-safe, capped collection of warnings.
#[derive(Debug, Default)]
pub struct Warnings {
    inner: Mutex<(Vec<Warning>, u64)>,
}

impl Warnings {
    pub fn push(&self, code: &'static str, message: impl Into<String>) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.len() < MAX_WARNINGS {
            g.0.push(Warning {
                code,
                message: message.into(),
            });
        } else {
            g.1 += 1;
        }
    }

    pub fn take(&self) -> (Vec<Warning>, u64) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (std::mem::take(&mut g.0), g.1)
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct InputSummary {
    pub path: PathBuf,
    pub points: u64,
    /// Raster inputs: "791x718, 3 x Byte" and the like; empty for point clouds.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub raster: String,
    /// Raster inputs: chunks (tiles/strips) decoded per level, full resolution first, then
    /// each overview.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub raster_chunks_read: Vec<u64>,
    /// Model inputs: "4 meshes, 2856 triangles, 1 image" and the like.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub model: String,
    pub crs: String,
    /// Where the CRS came from: `WKT VLR`, `GeoTIFF keys` or `--input-crs`.
    pub crs_source: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct JobReport {
    pub output: PathBuf,
    pub inputs: Vec<InputSummary>,
    pub points_read: u64,
    pub points_written: u64,
    /// Points dropped on purpose by `--sample-spacing`.
    pub points_thinned: u64,
    /// Model inputs: triangles read, and triangles at the finest level of the output.
    #[serde(skip_serializing_if = "is_zero")]
    pub triangles_read: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub triangles_written: u64,
    /// City model inputs: city objects read, and features written (one per object with
    /// geometry).
    #[serde(skip_serializing_if = "is_zero")]
    pub objects_read: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub features_written: u64,
    pub tiles: u64,
    pub min_level: u8,
    pub max_level: u8,
    pub bytes_written: u64,
    /// West, south, east, north in degrees (WGS 84).
    pub extent_deg: [f64; 4],
    pub warnings: Vec<Warning>,
    pub warnings_dropped: u64,
    /// Wall-clock seconds spent in each stage, in the order they ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stage_seconds: Vec<(Stage, f64)>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}
