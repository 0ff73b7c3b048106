//! Encoders: plain functions from points to the bytes of one tile.

pub mod features;
mod glb;
mod pnts;
pub mod quantize;

pub use glb::{encode_point_glb, glb_container};
pub use pnts::encode_pnts;
pub use quantize::Grid;
use tessera_model::Aabb;

/// Point columns of one tile; positions in the tileset's local frame (metres, z up).
pub struct PointTile<'a> {
    pub positions: &'a [[f64; 3]],
    /// Bounds of `positions` (plain tiles are written relative to its centre).
    pub bounds: Aabb,
    pub rgb: Option<&'a [[u8; 3]]>,
    pub intensity: Option<&'a [u16]>,
    pub classification: Option<&'a [u8]>,
    pub return_number: Option<&'a [u8]>,
    pub number_of_returns: Option<&'a [u8]>,
}

pub(crate) fn pad_to(buf: &mut Vec<u8>, align: usize, byte: u8) {
    while !buf.len().is_multiple_of(align) {
        buf.push(byte);
    }
}
