//! Axis-aligned bounds in whatever frame the caller works in.

use serde::{Deserialize, Serialize};

/// An axis-aligned box. `Aabb::EMPTY` is the identity of [`Aabb::union`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Aabb {
    pub min: [f64; 3],
    pub max: [f64; 3],
}

impl Aabb {
    pub const EMPTY: Aabb = Aabb {
        min: [f64::INFINITY; 3],
        max: [f64::NEG_INFINITY; 3],
    };

    pub fn from_points<'a>(points: impl IntoIterator<Item = &'a [f64; 3]>) -> Aabb {
        let mut b = Aabb::EMPTY;
        for p in points {
            b.extend(*p);
        }
        b
    }

    pub fn is_empty(&self) -> bool {
        (0..3).any(|i| self.min[i] > self.max[i])
    }

    pub fn extend(&mut self, p: [f64; 3]) {
        for i in 0..3 {
            self.min[i] = self.min[i].min(p[i]);
            self.max[i] = self.max[i].max(p[i]);
        }
    }

    pub fn union(&self, other: &Aabb) -> Aabb {
        let mut b = *self;
        for i in 0..3 {
            b.min[i] = b.min[i].min(other.min[i]);
            b.max[i] = b.max[i].max(other.max[i]);
        }
        b
    }

    pub fn center(&self) -> [f64; 3] {
        [
            0.5 * (self.min[0] + self.max[0]),
            0.5 * (self.min[1] + self.max[1]),
            0.5 * (self.min[2] + self.max[2]),
        ]
    }

    pub fn size(&self) -> [f64; 3] {
        [
            self.max[0] - self.min[0],
            self.max[1] - self.min[1],
            self.max[2] - self.min[2],
        ]
    }

    /// Length of the diagonal; 0 for a single point, 0 for an empty box.
    pub fn diagonal(&self) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let s = self.size();
        (s[0] * s[0] + s[1] * s[1] + s[2] * s[2]).sqrt()
    }

    /// The smallest cube with the same minimum corner that holds this box.
    pub fn cube(&self) -> Aabb {
        let s = self.size();
        let edge = s[0].max(s[1]).max(s[2]).max(1e-3);
        Aabb {
            min: self.min,
            max: [self.min[0] + edge, self.min[1] + edge, self.min[2] + edge],
        }
    }

    /// 3D Tiles `box` bounding volume: centre then three half-axis vectors.
    /// Degenerate axes get a millimetre of thickness so validators accept the box.
    pub fn to_tiles_box(&self) -> [f64; 12] {
        let c = self.center();
        let s = self.size();
        let h = |v: f64| (0.5 * v).max(5e-4);
        [
            c[0],
            c[1],
            c[2],
            h(s[0]),
            0.0,
            0.0,
            0.0,
            h(s[1]),
            0.0,
            0.0,
            0.0,
            h(s[2]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_with_empty_is_identity() {
        let b = Aabb::from_points(&[[0.0, 1.0, 2.0], [3.0, -1.0, 5.0]]);
        assert_eq!(b.union(&Aabb::EMPTY), b);
        assert_eq!(b.min, [0.0, -1.0, 2.0]);
        assert_eq!(b.max, [3.0, 1.0, 5.0]);
        assert!(Aabb::EMPTY.is_empty());
    }

    #[test]
    fn cube_holds_box() {
        let b = Aabb::from_points(&[[0.0, 0.0, 0.0], [10.0, 2.0, 1.0]]);
        let c = b.cube();
        assert_eq!(c.size(), [10.0, 10.0, 10.0]);
    }

    #[test]
    fn flat_box_gets_thickness() {
        let b = Aabb::from_points(&[[0.0, 0.0, 1.0], [2.0, 2.0, 1.0]]);
        let t = b.to_tiles_box();
        assert_eq!(t[0], 1.0);
        assert!(t[11] > 0.0);
    }
}
