//! tessera-proj: 3-D coordinate transforms and CRS inspection on PROJ.
//!
//! In: CRS definitions PROJ understands (EPSG codes, WKT, PROJJSON, PROJ strings) and
//! coordinates. Out: transformed coordinates and facts about a CRS (its kind, whether it
//! has a gravity-related vertical part, its units).
//! Must not know: files, point clouds, threads. A [`Transformer`] is not `Send`: make one
//! per thread (creating one costs about 20 ms).

mod ffi;

pub use ffi::{crs_info, version, CrsInfo, CrsKind, Transformer};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProjError {
    #[error("PROJ does not understand the CRS `{definition}`: {reason}")]
    BadCrs { definition: String, reason: String },
    #[error("PROJ found no transformation from `{from}` to `{to}`: {reason}")]
    NoOperation {
        from: String,
        to: String,
        reason: String,
    },
    #[error("PROJ could not transform {failed} of {total} coordinates (first failure: {first:?})")]
    Transform {
        failed: usize,
        total: usize,
        first: [f64; 3],
    },
    #[error("text given to PROJ contains a NUL byte")]
    Nul,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utm_to_ecef_matches_reference() {
        // Reference values from the bundled PROJ 9.6.2 (cs2cs agrees).
        let t = Transformer::new("EPSG:25832", "EPSG:4978").unwrap();
        let mut p = [[458877.0, 5438353.0, 112.0]];
        t.transform(&mut p).unwrap();
        assert!((p[0][0] - 4139109.2818).abs() < 1e-3);
        assert!((p[0][1] - 613918.0890).abs() < 1e-3);
        assert!((p[0][2] - 4797688.3496).abs() < 1e-3);
    }

    #[test]
    fn geographic_input_is_lon_lat() {
        let t = Transformer::new("EPSG:4326", "EPSG:4978").unwrap();
        let mut p = [[0.0, 0.0, 0.0], [90.0, 0.0, 0.0]];
        t.transform(&mut p).unwrap();
        assert!((p[0][0] - 6378137.0).abs() < 1e-6);
        assert!((p[1][1] - 6378137.0).abs() < 1e-6);
    }

    #[test]
    fn failures_are_reported() {
        let t = Transformer::new("EPSG:4326", "EPSG:4978").unwrap();
        let mut p = [[500000.0, 4900000.0, 0.0]];
        assert!(matches!(
            t.transform(&mut p),
            Err(ProjError::Transform { .. })
        ));
        assert!(Transformer::new("EPSG:999999", "EPSG:4978").is_err());
    }

    #[test]
    fn inspects_crs_kinds() {
        let i = crs_info("EPSG:7415").unwrap();
        assert_eq!(i.kind, CrsKind::Compound);
        assert!(i.vertical_name.as_deref().unwrap_or("").contains("NAP"));
        let i = crs_info("EPSG:4978").unwrap();
        assert_eq!(i.kind, CrsKind::Geocentric);
        let i = crs_info("EPSG:2230").unwrap();
        assert_eq!(i.kind, CrsKind::Projected);
        assert!((i.horizontal_unit_m - 0.3048006096).abs() < 1e-9);
        assert!(i.vertical_name.is_none());
        assert!(crs_info("EPSG:4979").unwrap().kind == CrsKind::Geographic3D);
        // UTM zone 32N: 6-12 degrees east, in the northern hemisphere.
        let a = crs_info("EPSG:25832").unwrap().area_of_use_deg.unwrap();
        assert!(
            a[0] >= 5.0 && a[0] <= 6.0 && a[2] >= 12.0 && a[2] <= 13.5,
            "{a:?}"
        );
        assert!(a[1] > 30.0 && a[3] < 90.0, "{a:?}");
        assert!(crs_info("not a crs").is_err());
    }
}

/// Longitude/latitude extent (west, south, east, north in degrees, WGS 84) of a box given
/// in `crs`, with its edges densified so curved images of straight edges are covered.
pub fn geographic_extent(
    crs: &str,
    min_xy: [f64; 2],
    max_xy: [f64; 2],
) -> Result<[f64; 4], ProjError> {
    let t =
        proj::Proj::new_known_crs(crs, "EPSG:4326", None).map_err(|e| ProjError::NoOperation {
            from: crs.into(),
            to: "EPSG:4326".into(),
            reason: e.to_string(),
        })?;
    let b = t
        .transform_bounds(min_xy[0], min_xy[1], max_xy[0], max_xy[1], 21)
        .map_err(|_| ProjError::Transform {
            failed: 4,
            total: 4,
            first: [min_xy[0], min_xy[1], 0.0],
        })?;
    if b.iter().all(|v| v.is_finite()) {
        Ok(b)
    } else {
        Err(ProjError::Transform {
            failed: 4,
            total: 4,
            first: [min_xy[0], min_xy[1], 0.0],
        })
    }
}

#[cfg(test)]
mod extent_tests {
    #[test]
    fn utm_extent() {
        let e =
            super::geographic_extent("EPSG:32618", [101985.0, 2611485.0], [339315.0, 2826915.0])
                .unwrap();
        assert!(
            e[0] < -78.5 && e[2] > -77.0 && e[1] > 23.0 && e[3] < 26.0,
            "{e:?}"
        );
    }
}
