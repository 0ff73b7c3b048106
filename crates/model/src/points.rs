//! Columnar point chunks, as readers hand them to the tiler, and the per-point
//! attributes beyond the standard LAS fields.

use serde::{Deserialize, Serialize};

/// Which standard optional columns a point source carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointAttributes {
    pub rgb: bool,
    /// The colours use all 16 bits (they are not 8-bit values scaled up), so they are
    /// written at 16 bits.
    #[serde(default)]
    pub rgb16: bool,
    pub intensity: bool,
    pub classification: bool,
    pub returns: bool,
}

impl PointAttributes {
    pub fn union(self, other: PointAttributes) -> PointAttributes {
        PointAttributes {
            rgb: self.rgb || other.rgb,
            rgb16: self.rgb16 || other.rgb16,
            intensity: self.intensity || other.intensity,
            classification: self.classification || other.classification,
            returns: self.returns || other.returns,
        }
    }
}

/// How a per-point value is stored in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScalarKind {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl ScalarKind {
    pub fn bytes(self) -> usize {
        match self {
            ScalarKind::U8 | ScalarKind::I8 => 1,
            ScalarKind::U16 | ScalarKind::I16 => 2,
            ScalarKind::U32 | ScalarKind::I32 | ScalarKind::F32 => 4,
            ScalarKind::U64 | ScalarKind::I64 | ScalarKind::F64 => 8,
        }
    }

    /// The value of one little-endian field; `b` holds at least [`ScalarKind::bytes`].
    pub fn decode(self, b: &[u8]) -> f64 {
        let a = |n: usize| {
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(&b[..n]);
            w
        };
        match self {
            ScalarKind::U8 => f64::from(b[0]),
            ScalarKind::I8 => f64::from(b[0] as i8),
            ScalarKind::U16 => f64::from(u16::from_le_bytes([b[0], b[1]])),
            ScalarKind::I16 => f64::from(i16::from_le_bytes([b[0], b[1]])),
            ScalarKind::U32 => f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ScalarKind::I32 => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ScalarKind::F32 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ScalarKind::U64 => u64::from_le_bytes(a(8)) as f64,
            ScalarKind::I64 => i64::from_le_bytes(a(8)) as f64,
            ScalarKind::F64 => f64::from_le_bytes(a(8)),
        }
    }

    /// Whether values of this kind fit a glTF vertex attribute exactly (8/16-bit ints).
    pub fn is_small_int(self) -> bool {
        matches!(
            self,
            ScalarKind::U8 | ScalarKind::I8 | ScalarKind::U16 | ScalarKind::I16
        )
    }
}

/// One per-point value beyond the standard fields (a LAS extra-bytes dimension or the
/// GPS time), as the job writes it: values travel as their physical value
/// (`raw * scale + offset`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtraDimension {
    /// The name in the source file.
    pub name: String,
    /// The property's identifier in the output (letters, digits and `_`; unique).
    pub id: String,
    pub kind: ScalarKind,
    /// Whether a scale or offset applies (then values are no longer integers).
    pub scaled: bool,
    /// The value that means "no data", as a physical value.
    pub no_data: Option<f64>,
    pub description: String,
}

impl ExtraDimension {
    /// Values are the stored integers themselves and fit 8 or 16 bits.
    pub fn is_exact_small_int(&self) -> bool {
        self.kind.is_small_int() && !self.scaled
    }
}

/// Points in columns. Every present optional column has `positions.len()` rows.
/// Colours are 16-bit (8-bit sources scaled by 257).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointChunk {
    pub positions: Vec<[f64; 3]>,
    pub rgb: Option<Vec<[u16; 3]>>,
    pub intensity: Option<Vec<u16>>,
    pub classification: Option<Vec<u8>>,
    pub return_number: Option<Vec<u8>>,
    pub number_of_returns: Option<Vec<u8>>,
    /// One column per requested extra dimension, in the order asked for.
    pub extras: Vec<Vec<f64>>,
}

impl PointChunk {
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    pub fn attributes(&self) -> PointAttributes {
        PointAttributes {
            rgb: self.rgb.is_some(),
            rgb16: false,
            intensity: self.intensity.is_some(),
            classification: self.classification.is_some(),
            returns: self.return_number.is_some() && self.number_of_returns.is_some(),
        }
    }

    /// True when every present column has as many rows as there are positions.
    pub fn is_consistent(&self) -> bool {
        let n = self.len();
        self.rgb.as_ref().is_none_or(|c| c.len() == n)
            && self.intensity.as_ref().is_none_or(|c| c.len() == n)
            && self.classification.as_ref().is_none_or(|c| c.len() == n)
            && self.return_number.as_ref().is_none_or(|c| c.len() == n)
            && self.number_of_returns.as_ref().is_none_or(|c| c.len() == n)
            && self.extras.iter().all(|c| c.len() == n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency() {
        let mut c = PointChunk {
            positions: vec![[0.0; 3]; 2],
            intensity: Some(vec![1, 2]),
            ..Default::default()
        };
        assert!(c.is_consistent());
        assert!(c.attributes().intensity && !c.attributes().rgb);
        c.extras = vec![vec![1.0]];
        assert!(!c.is_consistent());
        c.extras = vec![vec![1.0, 2.0]];
        assert!(c.is_consistent());
        c.rgb = Some(vec![[0; 3]]);
        assert!(!c.is_consistent());
    }

    #[test]
    fn scalar_decoding() {
        assert_eq!(ScalarKind::I16.decode(&(-3i16).to_le_bytes()), -3.0);
        assert_eq!(ScalarKind::U32.decode(&4_000_000_000u32.to_le_bytes()), 4e9);
        assert_eq!(ScalarKind::F64.decode(&1.25f64.to_le_bytes()), 1.25);
        assert_eq!(ScalarKind::I8.decode(&[0xff]), -1.0);
        assert!(ScalarKind::U16.is_small_int() && !ScalarKind::F32.is_small_int());
    }
}
