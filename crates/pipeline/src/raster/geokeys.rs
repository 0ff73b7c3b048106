//! GeoTIFF georeferencing: the GeoKey directory (CRS) and the model tags (affine).

use tessera_model::{CrsSpec, GeoTransform};

/// What the GeoKey directory says about the CRS.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyCrs {
    Epsg(CrsSpec),
    /// Keys present but not an EPSG code (user-defined), with what was found.
    UserDefined(String),
    /// No GeoKey directory, or one without a model type.
    Absent,
}

const GT_MODEL_TYPE: u16 = 1024;
const GT_RASTER_TYPE: u16 = 1025;
const GEOGRAPHIC_TYPE: u16 = 2048;
const PROJECTED_CS_TYPE: u16 = 3072;
const VERTICAL_CS_TYPE: u16 = 4096;
const USER_DEFINED: u16 = 32767;

/// Parsed GeoKey directory (only the short-valued keys matter here).
#[derive(Debug, Default, Clone)]
pub struct GeoKeys {
    keys: Vec<(u16, u16)>,
}

impl GeoKeys {
    /// Parse the GeoKeyDirectoryTag (34735) shorts; malformed entries are ignored.
    pub fn parse(dir: &[u16]) -> GeoKeys {
        let mut keys = Vec::new();
        if dir.len() >= 4 {
            let n = usize::from(dir[3]);
            for e in dir[4..].chunks_exact(4).take(n) {
                // Location 0 means the value is stored in place.
                if e[1] == 0 {
                    keys.push((e[0], e[3]));
                }
            }
        }
        GeoKeys { keys }
    }

    fn get(&self, id: u16) -> Option<u16> {
        self.keys.iter().find(|(k, _)| *k == id).map(|(_, v)| *v)
    }

    /// True when the raster type key says pixel values are point samples (GDAL then shifts
    /// the transform by half a pixel so pixels are areas again).
    pub fn pixel_is_point(&self) -> bool {
        self.get(GT_RASTER_TYPE) == Some(2)
    }

    pub fn crs(&self) -> KeyCrs {
        let model = match self.get(GT_MODEL_TYPE) {
            Some(m) => m,
            None => return KeyCrs::Absent,
        };
        let horizontal = match model {
            1 => self.get(PROJECTED_CS_TYPE),
            2 => self.get(GEOGRAPHIC_TYPE),
            3 => return KeyCrs::UserDefined("a geocentric model type".into()),
            other => return KeyCrs::UserDefined(format!("model type {other}")),
        };
        let horizontal = match horizontal {
            Some(c) if c != USER_DEFINED && c != 0 => u32::from(c),
            Some(_) | None => {
                return KeyCrs::UserDefined(if model == 1 {
                    "a user-defined projected CRS (ProjectedCSTypeGeoKey 32767)".into()
                } else {
                    "a user-defined geographic CRS (GeographicTypeGeoKey 32767)".into()
                })
            }
        };
        match self.get(VERTICAL_CS_TYPE) {
            Some(v) if v != USER_DEFINED && v != 0 => {
                KeyCrs::Epsg(CrsSpec::epsg_compound(horizontal, u32::from(v)))
            }
            _ => KeyCrs::Epsg(CrsSpec::epsg(horizontal)),
        }
    }
}

/// The affine from ModelTransformationTag (16 doubles), or from one tie point plus the
/// pixel scale. `None` when neither describes a usable transform.
pub fn geo_transform(
    transformation: Option<&[f64]>,
    tiepoints: Option<&[f64]>,
    pixel_scale: Option<&[f64]>,
    pixel_is_point: bool,
) -> Option<GeoTransform> {
    let mut gt = if let Some(m) = transformation.filter(|m| m.len() >= 16) {
        GeoTransform([m[3], m[0], m[1], m[7], m[4], m[5]])
    } else {
        let tp = tiepoints.filter(|t| t.len() >= 6)?;
        let sc = pixel_scale.filter(|s| s.len() >= 2)?;
        if sc[0] == 0.0 || sc[1] == 0.0 {
            return None;
        }
        GeoTransform([
            tp[3] - tp[0] * sc[0],
            sc[0],
            0.0,
            tp[4] + tp[1] * sc[1],
            0.0,
            -sc[1],
        ])
    };
    if pixel_is_point {
        let (x, y) = gt.apply(-0.5, -0.5);
        gt.0[0] = x;
        gt.0[3] = y;
    }
    (gt.0.iter().all(|v| v.is_finite()) && gt.inverse().is_some()).then_some(gt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projected_and_compound_codes() {
        let k = GeoKeys::parse(&[1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32618]);
        assert_eq!(k.crs(), KeyCrs::Epsg(CrsSpec::epsg(32618)));
        assert!(!k.pixel_is_point());
        let k = GeoKeys::parse(&[
            1, 1, 0, 3, 1024, 0, 1, 1, 3072, 0, 1, 25832, 4096, 0, 1, 5783,
        ]);
        assert_eq!(k.crs(), KeyCrs::Epsg(CrsSpec::epsg_compound(25832, 5783)));
    }

    #[test]
    fn user_defined_and_absent() {
        let k = GeoKeys::parse(&[1, 1, 0, 2, 1024, 0, 1, 1, 3072, 0, 1, 32767]);
        assert!(matches!(k.crs(), KeyCrs::UserDefined(_)));
        assert_eq!(GeoKeys::parse(&[]).crs(), KeyCrs::Absent);
    }

    #[test]
    fn tiepoint_and_point_shift() {
        let gt = geo_transform(
            None,
            Some(&[0.0, 0.0, 0.0, 100.0, 200.0, 0.0]),
            Some(&[2.0, 2.0, 0.0]),
            false,
        )
        .expect("transform");
        assert_eq!(gt.0, [100.0, 2.0, 0.0, 200.0, 0.0, -2.0]);
        let gt = geo_transform(
            None,
            Some(&[0.0, 0.0, 0.0, 100.0, 200.0, 0.0]),
            Some(&[2.0, 2.0, 0.0]),
            true,
        )
        .expect("transform");
        assert_eq!(gt.0, [99.0, 2.0, 0.0, 201.0, 0.0, -2.0]);
        assert!(geo_transform(None, None, Some(&[1.0, 1.0]), false).is_none());
    }
}
