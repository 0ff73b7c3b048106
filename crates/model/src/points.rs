//! Columnar point chunks, as readers hand them to the tiler.

use serde::{Deserialize, Serialize};

/// Which optional columns a point source carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointAttributes {
    pub rgb: bool,
    pub intensity: bool,
    pub classification: bool,
    pub returns: bool,
}

impl PointAttributes {
    pub fn union(self, other: PointAttributes) -> PointAttributes {
        PointAttributes {
            rgb: self.rgb || other.rgb,
            intensity: self.intensity || other.intensity,
            classification: self.classification || other.classification,
            returns: self.returns || other.returns,
        }
    }
}

/// Points in columns. Every present optional column has `positions.len()` rows.
/// Colours are normalised to 8 bits by the reader.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointChunk {
    pub positions: Vec<[f64; 3]>,
    pub rgb: Option<Vec<[u8; 3]>>,
    pub intensity: Option<Vec<u16>>,
    pub classification: Option<Vec<u8>>,
    pub return_number: Option<Vec<u8>>,
    pub number_of_returns: Option<Vec<u8>>,
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
        c.rgb = Some(vec![[0; 3]]);
        assert!(!c.is_consistent());
    }
}
