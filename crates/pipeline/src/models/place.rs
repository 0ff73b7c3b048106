//! Putting a model on the globe: from its own axes to an east-north-up frame.
//!
//! glTF is y-up; 3D Tiles is z-up and turns glTF content upright itself, so the model is
//! first rotated (x, y, z) → (x, −z, y), then scaled, then turned by heading/pitch/roll as
//! CesiumJS defines them (heading clockwise from north about −z, pitch about −y, roll
//! about x), relative to the east-north-up frame at `--position`. With `--input-crs` the
//! rotated coordinates are easting/northing/height in that CRS and go through PROJ.

use super::scene::{apply3, normal_matrix, normalize};
use crate::error::{CrsError, ModelError, PipelineError};
use crate::report::Warnings;
use crate::reproject::{enu_frame_at, CrsPlan};
use std::path::Path;
use tessera_model::{Aabb, CrsSpec, EnuFrame, TriangleMesh};
use tessera_proj::Transformer;

type Mat3 = [[f64; 3]; 3];

/// glTF's y-up axes to z-up ones.
const Y_UP_TO_Z_UP: Mat3 = [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]];

fn mul3(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    r
}

fn rot_x(a: f64) -> Mat3 {
    let (s, c) = a.sin_cos();
    [[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]
}

fn rot_y(a: f64) -> Mat3 {
    let (s, c) = a.sin_cos();
    [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
}

fn rot_z(a: f64) -> Mat3 {
    let (s, c) = a.sin_cos();
    [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
}

/// Where the model goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// Local model at a geodetic position (ellipsoidal height), turned and scaled.
    Position {
        lon_deg: f64,
        lat_deg: f64,
        height_m: f64,
        heading_deg: f64,
        pitch_deg: f64,
        roll_deg: f64,
        scale: f64,
    },
    /// Coordinates already in a CRS (after the y-up rotation), times `scale`.
    Crs { crs: CrsSpec, scale: f64 },
}

/// The model in its tileset frame.
pub struct Placed {
    pub meshes: Vec<TriangleMesh>,
    pub frame: EnuFrame,
    pub extent_deg: [f64; 4],
}

/// The linear part of a `Position` placement: model axes to ENU.
pub fn position_matrix(heading_deg: f64, pitch_deg: f64, roll_deg: f64, scale: f64) -> Mat3 {
    let hpr = mul3(
        &rot_z(-heading_deg.to_radians()),
        &mul3(
            &rot_y(-pitch_deg.to_radians()),
            &rot_x(roll_deg.to_radians()),
        ),
    );
    let mut m = mul3(&hpr, &Y_UP_TO_Z_UP);
    for row in m.iter_mut() {
        for v in row.iter_mut() {
            *v *= scale;
        }
    }
    m
}

fn apply_linear(meshes: &mut [TriangleMesh], m: &Mat3, f: &dyn Fn([f64; 3]) -> [f64; 3]) {
    let (nm, det) = normal_matrix(m);
    for mesh in meshes.iter_mut() {
        for p in mesh.positions.iter_mut() {
            *p = f(*p);
        }
        if let Some(ns) = mesh.normals.as_mut() {
            for n in ns.iter_mut() {
                *n = normalize(apply3(&nm, n.map(f64::from)));
            }
        }
        if let Some(ts) = mesh.tangents.as_mut() {
            for t in ts.iter_mut() {
                let d = normalize(apply3(m, [t[0], t[1], t[2]].map(f64::from)));
                *t = [d[0], d[1], d[2], if det < 0.0 { -t[3] } else { t[3] }];
            }
        }
        if det < 0.0 {
            for tri in mesh.indices.chunks_exact_mut(3) {
                tri.swap(1, 2);
            }
        }
    }
}

/// Farthest a placed vertex may lie from the model's origin: beyond this no part of the
/// model is anywhere near the globe (the Moon is 384 000 km away).
pub const MAX_REACH_M: f64 = 1e8;

/// `Err` when a placed vertex is not finite, or (with `reach_m`) farther from the origin
/// than that: the options or the model's units are wrong, and tiles of it would be NaN.
fn check_placed(
    path: &Path,
    meshes: &[TriangleMesh],
    scale: f64,
    reach_m: Option<f64>,
) -> Result<(), PipelineError> {
    for (m, mesh) in meshes.iter().enumerate() {
        for (v, p) in mesh.positions.iter().enumerate() {
            let far = |c: &f64| reach_m.is_some_and(|r| c.abs() > r);
            if p.iter().all(|c| c.is_finite() && !far(c)) {
                continue;
            }
            let scale = if (1e-4..1e6).contains(&scale) {
                format!("{scale}")
            } else {
                format!("{scale:e}")
            };
            let reason = if p.iter().all(|c| c.is_finite()) {
                let far_m = p.iter().map(|c| c.abs()).fold(0.0, f64::max);
                format!(
                    "scaled by {scale}, vertex {v} of mesh {m} lands {far_m:.1e} m from --position, farther than the {:.0} km a model may reach",
                    MAX_REACH_M / 1000.0
                )
            } else {
                format!(
                    "scaled by {scale}, vertex {v} of mesh {m} overflows to infinite coordinates"
                )
            };
            return Err(ModelError::Placement {
                path: path.into(),
                reason,
            }
            .into());
        }
    }
    Ok(())
}

fn extent_deg(frame: &EnuFrame, bounds: &Aabb) -> Result<[f64; 4], PipelineError> {
    let t = Transformer::new("EPSG:4978", "EPSG:4979")
        .map_err(|e| PipelineError::Internal(format!("PROJ: {e}")))?;
    let mut corners = Vec::with_capacity(8);
    for i in 0..8 {
        let pick = |k: usize| {
            if i >> k & 1 == 0 {
                bounds.min[k]
            } else {
                bounds.max[k]
            }
        };
        corners.push(frame.to_ecef([pick(0), pick(1), pick(2)]));
    }
    t.transform(&mut corners)
        .map_err(|e| PipelineError::Internal(format!("PROJ: {e}")))?;
    let mut e = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for c in corners {
        e = [
            e[0].min(c[0]),
            e[1].min(c[1]),
            e[2].max(c[0]),
            e[3].max(c[1]),
        ];
    }
    Ok(e)
}

/// Move `meshes` (model axes) into an ENU frame as `placement` says.
pub fn place(
    path: &Path,
    mut meshes: Vec<TriangleMesh>,
    placement: &Placement,
    geoid: Option<&Path>,
    warnings: &Warnings,
) -> Result<Placed, PipelineError> {
    let frame = match placement {
        Placement::Position {
            lon_deg,
            lat_deg,
            height_m,
            heading_deg,
            pitch_deg,
            roll_deg,
            scale,
        } => {
            let t = Transformer::new("EPSG:4979", "EPSG:4978")
                .map_err(|e| PipelineError::Internal(format!("PROJ: {e}")))?;
            let mut origin = [[*lon_deg, *lat_deg, *height_m]];
            t.transform(&mut origin)
                .map_err(|e| PipelineError::Internal(format!("PROJ: {e}")))?;
            let m = position_matrix(*heading_deg, *pitch_deg, *roll_deg, *scale);
            apply_linear(&mut meshes, &m, &|p| apply3(&m, p));
            check_placed(path, &meshes, *scale, Some(MAX_REACH_M))?;
            EnuFrame::new(origin[0], lon_deg.to_radians(), lat_deg.to_radians())
        }
        Placement::Crs { crs, scale } => {
            let plan = CrsPlan::new(crs, geoid, path, warnings)?;
            let m = Y_UP_TO_Z_UP.map(|r| r.map(|v| v * scale));
            let mut all = Aabb::EMPTY;
            for mesh in meshes.iter_mut() {
                for p in mesh.positions.iter_mut() {
                    *p = apply3(&m, *p);
                    all.extend(*p);
                }
            }
            // CRS units vary (metres, feet, degrees): only non-finite values are caught
            // here; PROJ and the plausibility check below judge the rest.
            check_placed(path, &meshes, *scale, None)?;
            let unusable = |e: tessera_proj::ProjError| CrsError::Unusable {
                path: path.into(),
                crs: crs.label(),
                reason: e.to_string(),
            };
            // The local linear map at the model's centre turns normals (meridian
            // convergence and scale are constant enough over one model).
            let c = all.center();
            let mut probe = vec![
                c,
                [c[0] + 1.0, c[1], c[2]],
                [c[0], c[1] + 1.0, c[2]],
                [c[0], c[1], c[2] + 1.0],
            ];
            plan.to_ecef(&mut probe).map_err(unusable)?;
            if CrsPlan::first_implausible(&probe[..1]).is_some() {
                let r = probe[0].iter().map(|v| v * v).sum::<f64>().sqrt();
                return Err(CrsError::Implausible {
                    path: path.into(),
                    crs: crs.label(),
                    detail: format!(
                        "the model's centre ({:.1}, {:.1}, {:.1}) lands {:.0} km from the Earth's centre",
                        c[0], c[1], c[2], r / 1000.0
                    ),
                }
                .into());
            }
            let frame = enu_frame_at(probe[0]).map_err(unusable)?;
            let o = frame.to_local(probe[0]);
            let mut jac = [[0.0; 3]; 3];
            for k in 0..3 {
                let d = frame.to_local(probe[k + 1]);
                for r in 0..3 {
                    jac[r][k] = d[r] - o[r];
                }
            }
            for mesh in meshes.iter_mut() {
                plan.to_ecef(&mut mesh.positions).map_err(unusable)?;
                if let Some(i) = CrsPlan::first_implausible(&mesh.positions) {
                    return Err(CrsError::Implausible {
                        path: path.into(),
                        crs: crs.label(),
                        detail: format!("vertex {i} lands off the Earth's surface"),
                    }
                    .into());
                }
                for p in mesh.positions.iter_mut() {
                    *p = frame.to_local(*p);
                }
            }
            // Positions are done; turn normals and tangents by the Jacobian.
            apply_linear(&mut meshes, &mul3(&jac, &m), &|p| p);
            frame
        }
    };
    let bounds = meshes.iter().fold(Aabb::EMPTY, |b, m| b.union(&m.bounds()));
    let extent_deg = extent_deg(&frame, &bounds)?;
    Ok(Placed {
        meshes,
        frame,
        extent_deg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f64; 3], b: [f64; 3]) -> bool {
        (0..3).all(|i| (a[i] - b[i]).abs() < 1e-12)
    }

    #[test]
    fn gltf_up_becomes_enu_up_and_heading_turns_clockwise() {
        let m = position_matrix(0.0, 0.0, 0.0, 1.0);
        assert!(close(apply3(&m, [0.0, 1.0, 0.0]), [0.0, 0.0, 1.0]));
        assert!(close(apply3(&m, [1.0, 0.0, 0.0]), [1.0, 0.0, 0.0]));
        // glTF's front (+z) faces south in the frame.
        assert!(close(apply3(&m, [0.0, 0.0, 1.0]), [0.0, -1.0, 0.0]));
        // Heading 90°: what pointed east now points south (clockwise seen from above).
        let h = position_matrix(90.0, 0.0, 0.0, 2.0);
        assert!(close(apply3(&h, [1.0, 0.0, 0.0]), [0.0, -2.0, 0.0]));
        assert!(close(apply3(&h, [0.0, 1.0, 0.0]), [0.0, 0.0, 2.0]));
    }
}
