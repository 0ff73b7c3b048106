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

/// Degrees a file may reach beyond its CRS's area of use before it is suspect: areas
/// are drawn around territories, and data near or a little past their edges is common.
const AREA_MARGIN_DEG: f64 = 2.0;

/// Metres in a US survey foot.
const US_FOOT_M: f64 = 1200.0 / 3937.0;

/// Whether a point lies within `area` (west, south, east, north; west > east across the
/// antimeridian) grown by [`AREA_MARGIN_DEG`].
fn in_area(area: &[f64; 4], lon: f64, lat: f64) -> bool {
    let m = AREA_MARGIN_DEG;
    let [w, s, e, n] = *area;
    let lat_ok = lat >= s - m && lat <= n + m;
    let lon_ok = if w <= e {
        lon >= w - m && lon <= e + m
    } else {
        lon >= w - m || lon <= e + m
    };
    lat_ok && lon_ok
}

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

    /// Longitude and latitude (degrees) of source coordinates; `None` where PROJ cannot
    /// place them or they land nowhere near the Earth's surface.
    fn lon_lat(&self, xyz: &[[f64; 3]]) -> Option<Vec<[f64; 2]>> {
        let mut p = xyz.to_vec();
        self.to_ecef(&mut p).ok()?;
        if CrsPlan::first_implausible(&p).is_some() {
            return None;
        }
        to_geodetic(&mut p).ok()?;
        Some(p.iter().map(|g| [g[0], g[1]]).collect())
    }

    /// Why source coordinates `xyz` (spread over a file's extent) do not look like they
    /// belong to this CRS; see [`area_of_use_problem`].
    pub fn area_of_use_problem(&self, xyz: &[[f64; 3]]) -> Option<String> {
        area_of_use_problem(&self.info, xyz, |p| self.lon_lat(p))
    }

    /// Index of the first ECEF position that no real point on Earth could have.
    pub fn first_implausible(ecef: &[[f64; 3]]) -> Option<usize> {
        ecef.iter().position(|p| {
            let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            !PLAUSIBLE_RADIUS_M.contains(&r)
        })
    }
}

thread_local! {
    static TO_GEODETIC: RefCell<Option<Rc<Transformer>>> = const { RefCell::new(None) };
}

/// ECEF to longitude, latitude (degrees) and ellipsoidal height in place, through one
/// PROJ transformer per thread (made on first use).
fn to_geodetic(xyz: &mut [[f64; 3]]) -> Result<(), ProjError> {
    let t = TO_GEODETIC.with(|c| -> Result<Rc<Transformer>, ProjError> {
        let mut c = c.borrow_mut();
        if let Some(t) = c.as_ref() {
            return Ok(t.clone());
        }
        let t = Rc::new(Transformer::new("EPSG:4978", "EPSG:4979")?);
        *c = Some(t.clone());
        Ok(t)
    })?;
    t.transform(xyz)
}

/// An east-north-up frame at the ECEF point `center`.
pub fn enu_frame_at(center_ecef: [f64; 3]) -> Result<EnuFrame, ProjError> {
    let mut p = [center_ecef];
    to_geodetic(&mut p)?;
    Ok(EnuFrame::new(
        center_ecef,
        p[0][0].to_radians(),
        p[0][1].to_radians(),
    ))
}

/// Why source coordinates `xyz` (spread over a file's extent, in the CRS `info`
/// describes; `lon_lat` places them) do not look like they belong to that CRS: they lie outside its area of use (by more than
/// [`AREA_MARGIN_DEG`]). The text gives the extent, the area and the likely cause
/// (feet read as metres or the reverse, swapped axes) when the coordinates fit the
/// area once that is undone. `None` when they fit, or when PROJ knows no area.
pub fn area_of_use_problem(
    info: &CrsInfo,
    xyz: &[[f64; 3]],
    lon_lat: impl Fn(&[[f64; 3]]) -> Option<Vec<[f64; 2]>>,
) -> Option<String> {
    let area = info.area_of_use_deg?;
    let inside = |ll: &[[f64; 2]]| ll.iter().all(|p| in_area(&area, p[0], p[1]));
    let fits = |xyz: &[[f64; 3]]| lon_lat(xyz).is_some_and(|ll| inside(&ll));
    if xyz.is_empty() {
        return None;
    }
    let placed = lon_lat(xyz);
    if placed.as_deref().is_some_and(inside) {
        return None;
    }
    let extent = match placed {
        Some(ll) => {
            let (mut w, mut so, mut e, mut n) = (180.0f64, 90.0f64, -180.0f64, -90.0f64);
            for p in &ll {
                w = w.min(p[0]);
                e = e.max(p[0]);
                so = so.min(p[1]);
                n = n.max(p[1]);
            }
            format!("its coordinates land at lon {w:.2}..{e:.2}, lat {so:.2}..{n:.2}")
        }
        None => "its coordinates land nowhere on the Earth's surface".into(),
    };
    let scaled =
        |f: f64| -> Vec<[f64; 3]> { xyz.iter().map(|p| [p[0] * f, p[1] * f, p[2]]).collect() };
    let linear =
        matches!(info.kind, CrsKind::Projected | CrsKind::Compound) && info.horizontal_unit_m > 0.0;
    let unit = info.horizontal_unit_m;
    let cause = if linear && (unit - 1.0).abs() < 1e-9 && fits(&scaled(US_FOOT_M)) {
        Some("they fit it when read as feet: the file probably holds feet under a CRS in metres; pass --input-crs with the CRS in feet (e.g. the state-plane ftUS variant)")
    } else if linear && unit < 0.5 && fits(&scaled(1.0 / unit)) {
        Some("they fit it when read as metres: the file probably holds metres under a CRS in feet; pass --input-crs with the CRS in metres")
    } else if fits(&xyz.iter().map(|p| [p[1], p[0], p[2]]).collect::<Vec<_>>()) {
        Some("they fit it with x and y swapped: the axis order is probably swapped")
    } else {
        None
    };
    let [w, so, e, n] = area;
    let mut msg = format!(
        "{extent}, outside the area where {} is used (lon {w:.2}..{e:.2}, lat {so:.2}..{n:.2})",
        info.name
    );
    match cause {
        Some(c) => {
            msg.push_str("; ");
            msg.push_str(c);
        }
        None => msg.push_str("; check that the file's CRS is right, or pass --input-crs"),
    }
    Some(msg)
}
