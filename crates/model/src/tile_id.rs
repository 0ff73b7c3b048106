//! Octree tile ids. Never bare tuples.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node of an octree over a cube: `level` 0 is the root; x, y, z count cells of edge
/// `root_edge / 2^level` from the cube's minimum corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OctTileId {
    pub level: u8,
    pub x: u32,
    pub y: u32,
    pub z: u32,
}

impl OctTileId {
    pub const ROOT: OctTileId = OctTileId {
        level: 0,
        x: 0,
        y: 0,
        z: 0,
    };

    /// Child `octant` (bit 0 = x, bit 1 = y, bit 2 = z).
    pub fn child(&self, octant: u8) -> OctTileId {
        OctTileId {
            level: self.level + 1,
            x: self.x * 2 + u32::from(octant & 1),
            y: self.y * 2 + u32::from((octant >> 1) & 1),
            z: self.z * 2 + u32::from((octant >> 2) & 1),
        }
    }

    /// The parent; the root is its own parent.
    pub fn parent(&self) -> OctTileId {
        if self.level == 0 {
            return *self;
        }
        OctTileId {
            level: self.level - 1,
            x: self.x / 2,
            y: self.y / 2,
            z: self.z / 2,
        }
    }

    /// Which child of its parent this id is.
    pub fn octant(&self) -> u8 {
        ((self.x & 1) | ((self.y & 1) << 1) | ((self.z & 1) << 2)) as u8
    }

    /// Is `self` `other` or one of its descendants?
    pub fn is_within(&self, other: &OctTileId) -> bool {
        if self.level < other.level {
            return false;
        }
        let d = u32::from(self.level - other.level);
        (self.x >> d) == other.x && (self.y >> d) == other.y && (self.z >> d) == other.z
    }

    /// Content path relative to the tileset root, e.g. `3/5/2/7`.
    pub fn path(&self) -> String {
        format!("{}/{}/{}/{}", self.level, self.x, self.y, self.z)
    }
}

impl fmt::Display for OctTileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}-{}", self.level, self.x, self.y, self.z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_parent_round_trip() {
        let id = OctTileId::ROOT.child(5).child(2).child(7);
        assert_eq!(id.level, 3);
        assert_eq!(id.octant(), 7);
        assert_eq!(id.parent().octant(), 2);
        assert_eq!(id.parent().parent().octant(), 5);
        assert_eq!(id.parent().parent().parent(), OctTileId::ROOT);
        assert!(id.is_within(&OctTileId::ROOT.child(5)));
        assert!(!id.is_within(&OctTileId::ROOT.child(4)));
        assert_eq!(OctTileId::ROOT.parent(), OctTileId::ROOT);
    }
}
