//! A local east-north-up frame on the WGS84 ellipsoid, used as a tileset's root transform.
//! This is the only geodesy Tessera does itself; every CRS change goes through PROJ.

use serde::{Deserialize, Serialize};

/// East-north-up axes at a point given by its ECEF position and geodetic lon/lat.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EnuFrame {
    pub origin_ecef: [f64; 3],
    east: [f64; 3],
    north: [f64; 3],
    up: [f64; 3],
}

impl EnuFrame {
    pub fn new(origin_ecef: [f64; 3], lon_rad: f64, lat_rad: f64) -> EnuFrame {
        let (sl, cl) = lon_rad.sin_cos();
        let (sp, cp) = lat_rad.sin_cos();
        EnuFrame {
            origin_ecef,
            east: [-sl, cl, 0.0],
            north: [-sp * cl, -sp * sl, cp],
            up: [cp * cl, cp * sl, sp],
        }
    }

    /// ECEF → local ENU metres.
    pub fn to_local(&self, ecef: [f64; 3]) -> [f64; 3] {
        let d = [
            ecef[0] - self.origin_ecef[0],
            ecef[1] - self.origin_ecef[1],
            ecef[2] - self.origin_ecef[2],
        ];
        [dot(self.east, d), dot(self.north, d), dot(self.up, d)]
    }

    /// Local ENU metres → ECEF.
    pub fn to_ecef(&self, local: [f64; 3]) -> [f64; 3] {
        let mut out = self.origin_ecef;
        for (i, o) in out.iter_mut().enumerate() {
            *o += self.east[i] * local[0] + self.north[i] * local[1] + self.up[i] * local[2];
        }
        out
    }

    /// Column-major 4×4 matrix taking local ENU to ECEF (a 3D Tiles `transform`).
    pub fn to_ecef_matrix(&self) -> [f64; 16] {
        let (e, n, u, o) = (self.east, self.north, self.up, self.origin_ecef);
        [
            e[0], e[1], e[2], 0.0, n[0], n[1], n[2], 0.0, u[0], u[1], u[2], 0.0, o[0], o[1], o[2],
            1.0,
        ]
    }
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_up_axis() {
        let lon = 2.35_f64.to_radians();
        let lat = 48.85_f64.to_radians();
        let origin = [4_200_000.0, 172_000.0, 4_780_000.0];
        let f = EnuFrame::new(origin, lon, lat);
        let p = [4_200_010.0, 172_020.0, 4_780_030.0];
        let back = f.to_ecef(f.to_local(p));
        for i in 0..3 {
            assert!((back[i] - p[i]).abs() < 1e-9);
        }
        // Up is the ellipsoid normal: moving along it changes only the local z.
        let up = [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()];
        let q = [origin[0] + up[0], origin[1] + up[1], origin[2] + up[2]];
        let l = f.to_local(q);
        assert!(l[0].abs() < 1e-9 && l[1].abs() < 1e-9 && (l[2] - 1.0).abs() < 1e-9);
        let m = f.to_ecef_matrix();
        assert_eq!(m[12], origin[0]);
        assert_eq!(m[15], 1.0);
    }
}

/// Lowest and highest ellipsoidal height a placed model may have: the deepest ocean
/// trench with margin, and low orbit.
pub const PLACEMENT_HEIGHT_RANGE_M: (f64, f64) = (-12_000.0, 1_000_000.0);

/// `Err` with a sentence when a longitude/latitude/height placement is not a place on
/// (or near) the Earth: non-finite, longitude outside −180..180, latitude outside −90..90,
/// height outside [`PLACEMENT_HEIGHT_RANGE_M`].
pub fn check_placement(lon_deg: f64, lat_deg: f64, height_m: f64) -> Result<(), String> {
    let (lo, hi) = PLACEMENT_HEIGHT_RANGE_M;
    if !(lon_deg.is_finite() && (-180.0..=180.0).contains(&lon_deg)) {
        return Err(format!(
            "longitude {lon_deg} is not within -180..180 degrees"
        ));
    }
    if !(lat_deg.is_finite() && (-90.0..=90.0).contains(&lat_deg)) {
        return Err(format!("latitude {lat_deg} is not within -90..90 degrees"));
    }
    if !(height_m.is_finite() && (lo..=hi).contains(&height_m)) {
        return Err(format!(
            "height {height_m} m is not within {lo}..{hi} m of the ellipsoid"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod placement_tests {
    use super::*;

    #[test]
    fn placements_off_the_earth_are_refused() {
        assert!(check_placement(13.4, 52.5, 40.0).is_ok());
        assert!(check_placement(13.4, 52.5, 1e300)
            .unwrap_err()
            .contains("height"));
        assert!(check_placement(0.0, 500.0, 0.0)
            .unwrap_err()
            .contains("latitude"));
        assert!(check_placement(f64::NAN, 0.0, 0.0)
            .unwrap_err()
            .contains("longitude"));
        assert!(check_placement(-180.0, -90.0, -12_000.0).is_ok());
    }
}
