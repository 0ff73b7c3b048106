//! Raster georeferencing: GDAL's six affine coefficients, pixel-is-area.

use serde::{Deserialize, Serialize};

/// `x = c[0] + col·c[1] + row·c[2]`, `y = c[3] + col·c[4] + row·c[5]`, where (col, row) is
/// a pixel-corner coordinate: (0, 0) is the outer corner of the first pixel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoTransform(pub [f64; 6]);

impl GeoTransform {
    /// Pixel (col, row) → CRS (x, y).
    pub fn apply(&self, col: f64, row: f64) -> (f64, f64) {
        let c = &self.0;
        (
            c[0] + col * c[1] + row * c[2],
            c[3] + col * c[4] + row * c[5],
        )
    }

    /// The inverse transform, or `None` when the matrix is singular.
    pub fn inverse(&self) -> Option<GeoTransform> {
        let c = &self.0;
        let det = c[1] * c[5] - c[2] * c[4];
        if det == 0.0 || !det.is_finite() {
            return None;
        }
        let (a, b, d, e) = (c[5] / det, -c[2] / det, -c[4] / det, c[1] / det);
        Some(GeoTransform([
            -(a * c[0] + b * c[3]),
            a,
            b,
            -(d * c[0] + e * c[3]),
            d,
            e,
        ]))
    }

    /// True when there is no rotation or shear.
    pub fn is_north_up(&self) -> bool {
        self.0[2] == 0.0 && self.0[4] == 0.0
    }

    /// Pixel size along columns and rows (always positive).
    pub fn pixel_size(&self) -> (f64, f64) {
        let c = &self.0;
        (c[1].hypot(c[4]), c[2].hypot(c[5]))
    }

    /// The same raster resampled so one new pixel covers `fx` × `fy` old ones (overviews).
    pub fn scaled(&self, fx: f64, fy: f64) -> GeoTransform {
        let c = &self.0;
        GeoTransform([c[0], c[1] * fx, c[2] * fy, c[3], c[4] * fx, c[5] * fy])
    }

    /// CRS bounds of a `width` × `height` raster: (min_x, min_y, max_x, max_y).
    pub fn bounds(&self, width: u32, height: u32) -> [f64; 4] {
        let (w, h) = (f64::from(width), f64::from(height));
        let corners = [
            self.apply(0.0, 0.0),
            self.apply(w, 0.0),
            self.apply(0.0, h),
            self.apply(w, h),
        ];
        let mut b = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for (x, y) in corners {
            b[0] = b[0].min(x);
            b[1] = b[1].min(y);
            b[2] = b[2].max(x);
            b[3] = b[3].max(y);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_round_trips() {
        let g = GeoTransform([101985.0, 300.04, 0.5, 2826915.0, 0.2, -300.04]);
        let inv = g.inverse().expect("invertible");
        let (x, y) = g.apply(12.5, 99.25);
        let (c, r) = inv.apply(x, y);
        assert!((c - 12.5).abs() < 1e-9 && (r - 99.25).abs() < 1e-9);
        assert!(GeoTransform([0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
            .inverse()
            .is_none());
    }

    #[test]
    fn bounds_and_overview_scale() {
        let g = GeoTransform([100.0, 2.0, 0.0, 50.0, 0.0, -2.0]);
        assert_eq!(g.bounds(10, 5), [100.0, 40.0, 120.0, 50.0]);
        let o = g.scaled(2.0, 2.0);
        assert_eq!(o.bounds(5, 3), [100.0, 38.0, 120.0, 50.0]);
        assert_eq!(o.pixel_size(), (4.0, 4.0));
    }
}
