//! Encoders: plain functions from points to the bytes of one tile.

pub mod features;
mod glb;
mod pnts;
pub mod quantize;

pub use glb::{encode_point_glb, glb_container};
pub use pnts::encode_pnts;
pub use quantize::Grid;
use tessera_model::{Aabb, ExtraDimension};

/// Point columns of one tile; positions in the tileset's local frame (metres, z up).
pub struct PointTile<'a> {
    pub positions: &'a [[f64; 3]],
    /// Bounds of `positions` (plain tiles are written relative to its centre).
    pub bounds: Aabb,
    /// 16-bit colours (8-bit ones scaled by 257).
    pub rgb: Option<&'a [[u16; 3]]>,
    /// The source's colours use all 16 bits: compact tiles keep them at 16 bits too.
    pub rgb16: bool,
    pub intensity: Option<&'a [u16]>,
    pub classification: Option<&'a [u8]>,
    pub return_number: Option<&'a [u8]>,
    pub number_of_returns: Option<&'a [u8]>,
    pub extras: &'a [ExtraColumn<'a>],
}

/// One extra per-point value (GPS time, an extra-bytes dimension) of a tile's points.
pub struct ExtraColumn<'a> {
    pub dim: &'a ExtraDimension,
    pub values: Vec<f64>,
}

impl ExtraColumn<'_> {
    /// The smallest finite value (what float columns are stored relative to), or 0.
    pub fn base(&self) -> f64 {
        let m = self
            .values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::INFINITY, f64::min);
        if m.is_finite() {
            m
        } else {
            0.0
        }
    }
}

pub(crate) fn pad_to(buf: &mut Vec<u8>, align: usize, byte: u8) {
    while !buf.len().is_multiple_of(align) {
        buf.push(byte);
    }
}
