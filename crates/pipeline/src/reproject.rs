//! From a file's CRS to ECEF (EPSG:4978), always through PROJ. One set of PROJ objects per
//! thread and CRS, created on first use (PROJ objects cannot move between threads).

use crate::error::CrsError;
use crate::report::Warnings;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use tessera_model::{CrsSpec, EnuFrame};
use tessera_proj::{crs_info, CrsInfo, CrsKind, ProjError, Transformer};

/// Distance from the Earth's centre that any real point lies within (metres): the
/// ellipsoid's radii are 6,356,752 m (poles) to 6,378,137 m (equator); this allows
/// the deepest trenches and high-altitude flights.
const PLAUSIBLE_RADIUS_M: std::ops::Range<f64> = 6_330_000.0..6_420_000.0;

#[derive(Debug, Clone, PartialEq)]
enum Heights {
    /// Heights are ellipsoidal already, or the CRS says nothing about them.
    AsGiven,
    /// Orthometric heights, kept orthometric (no grid given).
    OrthometricKept,
    /// Orthometric heights turned ellipsoidal with this vertical grid.
    Geoid(PathBuf),
}

/// How one input's coordinates get to ECEF.
#[derive(Debug, Clone)]
pub struct CrsPlan {
    pub crs: CrsSpec,
    pub info: CrsInfo,
    heights: Heights,
    /// Factor applied to z before PROJ (a 2-D CRS in feet with heights in the same unit).
    z_factor: f64,
    key: String,
}

struct Stages(Vec<Transformer>);

thread_local! {
    static CACHE: RefCell<HashMap<String, Rc<Stages>>> = RefCell::new(HashMap::new());
}

impl CrsPlan {
    /// Check the CRS with PROJ and decide the height handling; warnings name `path`.
    pub fn new(
        crs: &CrsSpec,
        geoid: Option<&Path>,
        path: &Path,
        warnings: &Warnings,
    ) -> Result<CrsPlan, CrsError> {
        let unusable = |crs: &CrsSpec, e: ProjError| CrsError::Unusable {
            path: path.into(),
            crs: crs.label(),
            reason: e.to_string(),
        };
        let (crs, info) = match crs_info(crs.definition()) {
            Ok(i) => (crs.clone(), i),
            Err(e) => {
                // GeoTIFF keys sometimes pair codes PROJ cannot combine: fall back to the
                // horizontal code and say so.
                let horizontal = crs
                    .definition()
                    .strip_prefix("EPSG:")
                    .and_then(|c| c.split_once('+'))
                    .map(|(h, _)| format!("EPSG:{h}"));
                match horizontal.and_then(|h| CrsSpec::parse(&h).ok()) {
                    Some(h) => {
                        let i = crs_info(h.definition()).map_err(|e2| unusable(&h, e2))?;
                        warnings.push(
                            "vertical-crs-ignored",
                            format!(
                                "{}: PROJ cannot combine {} ({e}); using {} and taking heights as given",
                                path.display(),
                                crs.label(),
                                h.label()
                            ),
                        );
                        (h, i)
                    }
                    None => return Err(unusable(crs, e)),
                }
            }
        };
        if info.kind == CrsKind::Vertical {
            return Err(CrsError::Unusable {
                path: path.into(),
                crs: crs.label(),
                reason: "it is a vertical CRS only; a horizontal CRS is needed too".into(),
            });
        }
        let mut z_factor = 1.0;
        let heights = match (&info.vertical_name, geoid) {
            (Some(_), Some(grid)) => {
                if !grid.is_file() {
                    return Err(CrsError::Geoid {
                        path: grid.into(),
                        reason: "no such file".into(),
                    });
                }
                Heights::Geoid(grid.into())
            }
            (Some(v), None) => {
                warnings.push(
                    "orthometric-heights",
                    format!(
                        "{}: heights are orthometric ({v}) and stay orthometric: no geoid grid was given, so the data sits off the ellipsoid by the local geoid height (tens of metres in places). Pass --geoid <grid> to convert them",
                        path.display()
                    ),
                );
                Heights::OrthometricKept
            }
            (None, _) => {
                if matches!(info.kind, CrsKind::Projected | CrsKind::Geographic2D) {
                    if info.kind == CrsKind::Projected
                        && (info.horizontal_unit_m - 1.0).abs() > 1e-9
                    {
                        z_factor = info.horizontal_unit_m;
                    }
                    warnings.push(
                        "no-vertical-crs",
                        format!(
                            "{}: {} has no vertical part; heights are taken as ellipsoidal{}. If they are orthometric, pass --input-crs with a compound CRS (e.g. EPSG:28992+5709) and --geoid",
                            path.display(),
                            crs.label(),
                            if z_factor != 1.0 { ", in the horizontal unit" } else { "" }
                        ),
                    );
                }
                if geoid.is_some() {
                    warnings.push(
                        "geoid-unused",
                        format!(
                            "{}: --geoid ignored: {} declares no orthometric heights",
                            path.display(),
                            crs.label()
                        ),
                    );
                }
                Heights::AsGiven
            }
        };
        let key = format!("{}|{:?}|{}", crs.definition(), heights, z_factor);
        let plan = CrsPlan {
            crs,
            info,
            heights,
            z_factor,
            key,
        };
        // Build the PROJ objects once here so an impossible operation fails early.
        plan.stages().map_err(|e| match (&plan.heights, e) {
            (Heights::Geoid(g), e) => CrsError::Geoid {
                path: g.clone(),
                reason: e.to_string(),
            },
            (_, e) => unusable(&plan.crs, e),
        })?;
        Ok(plan)
    }

    fn build_stages(&self) -> Result<Stages, ProjError> {
        Ok(Stages(match &self.heights {
            Heights::Geoid(grid) => vec![
                Transformer::new(self.crs.definition(), "EPSG:4979")?,
                Transformer::from_pipeline(&format!(
                    "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad \
                     +step +proj=vgridshift +grids={} +multiplier=1 \
                     +step +proj=cart +ellps=WGS84",
                    grid.display()
                ))?,
            ],
            _ => vec![Transformer::new(self.crs.definition(), "EPSG:4978")?],
        }))
    }

    fn stages(&self) -> Result<Rc<Stages>, ProjError> {
        CACHE.with(|c| {
            if let Some(s) = c.borrow().get(&self.key) {
                return Ok(s.clone());
            }
            let s = Rc::new(self.build_stages()?);
            c.borrow_mut().insert(self.key.clone(), s.clone());
            Ok(s)
        })
    }

    /// Transform in place to ECEF. Fails when PROJ fails on any coordinate.
    pub fn to_ecef(&self, xyz: &mut [[f64; 3]]) -> Result<(), ProjError> {
        if self.z_factor != 1.0 {
            for p in xyz.iter_mut() {
                p[2] *= self.z_factor;
            }
        }
        for stage in &self.stages()?.0 {
            stage.transform(xyz)?;
        }
        Ok(())
    }

    /// Index of the first ECEF position that no real point on Earth could have.
    pub fn first_implausible(ecef: &[[f64; 3]]) -> Option<usize> {
        ecef.iter().position(|p| {
            let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            !PLAUSIBLE_RADIUS_M.contains(&r)
        })
    }
}

/// An east-north-up frame at the ECEF point `center`.
pub fn enu_frame_at(center_ecef: [f64; 3]) -> Result<EnuFrame, ProjError> {
    let t = Transformer::new("EPSG:4978", "EPSG:4979")?;
    let mut p = [center_ecef];
    t.transform(&mut p)?;
    Ok(EnuFrame::new(
        center_ecef,
        p[0][0].to_radians(),
        p[0][1].to_radians(),
    ))
}
