//! From an input's CRS to the tileset's local frame without a PROJ call per point.
//!
//! For a fixed horizontal position, every transform a point cloud meets (projection
//! inverse, datum shift, geoid offset, geographic to ECEF, ECEF to the local frame) is
//! affine in the height: local = A(x, y) + z · D(x, y). A and D are smooth in (x, y), so
//! they are computed by PROJ on a regular grid of nodes over the file's header box and
//! interpolated bilinearly in between. The grid is refined until, at every cell centre
//! and edge midpoint and at both ends of the height range, the interpolated position is
//! within [`TOLERANCE_M`] of PROJ's own; where that cannot be reached with at most
//! [`MAX_CELLS`] cells, or for points outside the grid's box, PROJ is called per point.

use crate::reproject::CrsPlan;
use tessera_model::{Aabb, EnuFrame};

/// Largest difference from PROJ accepted for interpolated positions (0.1 mm).
pub const TOLERANCE_M: f64 = 1e-4;
/// Most cells along one axis.
const MAX_CELLS: usize = 512;
/// Cells along the longer axis of the first try.
const FIRST_CELLS: usize = 16;
/// Heights the grid covers beyond the header's range, in the file's units.
const HEIGHT_MARGIN: f64 = 100.0;

pub struct LocalGrid {
    x0: f64,
    y0: f64,
    dx: f64,
    dy: f64,
    nx: usize,
    ny: usize,
    z_lo: f64,
    z_hi: f64,
    /// Local position at `z_lo`, per node (row-major, `nx + 1` per row).
    base: Vec<[f64; 3]>,
    /// Change of the local position per unit of z, per node.
    slope: Vec<[f64; 3]>,
}

/// Exact local positions of `pts` (file CRS) through PROJ; `None` if PROJ fails or a
/// point is off the Earth.
fn exact(plan: &CrsPlan, frame: &EnuFrame, pts: &[[f64; 3]]) -> Option<Vec<[f64; 3]>> {
    let mut ecef = pts.to_vec();
    plan.to_ecef(&mut ecef).ok()?;
    if CrsPlan::first_implausible(&ecef).is_some() {
        return None;
    }
    Some(ecef.into_iter().map(|e| frame.to_local(e)).collect())
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

impl LocalGrid {
    /// The grid for one input with header box `bounds`, or `None` where interpolation
    /// cannot be made exact enough (PROJ is then used per point).
    pub fn build(plan: &CrsPlan, frame: &EnuFrame, bounds: &Aabb) -> Option<LocalGrid> {
        let [w, h, _] = bounds.size();
        if !(w.is_finite() && h.is_finite()) {
            return None;
        }
        // A little beyond the box: coordinates written just outside it still hit.
        let pad_x = w * 0.001 + 1e-6;
        let pad_y = h * 0.001 + 1e-6;
        let (x0, y0) = (bounds.min[0] - pad_x, bounds.min[1] - pad_y);
        let (w, h) = (w + 2.0 * pad_x, h + 2.0 * pad_y);
        let z_lo = bounds.min[2] - HEIGHT_MARGIN;
        let z_hi = bounds.max[2] + HEIGHT_MARGIN;
        let mut cells = FIRST_CELLS;
        while cells <= MAX_CELLS {
            let (nx, ny) = if w >= h {
                (cells, ((cells as f64 * h / w).ceil() as usize).max(1))
            } else {
                (((cells as f64 * w / h).ceil() as usize).max(1), cells)
            };
            let grid = LocalGrid::at(plan, frame, [x0, y0, z_lo, z_hi], w, h, nx, ny)?;
            if grid.worst_error(plan, frame)? <= TOLERANCE_M {
                return Some(grid);
            }
            cells *= 2;
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn at(
        plan: &CrsPlan,
        frame: &EnuFrame,
        [x0, y0, z_lo, z_hi]: [f64; 4],
        w: f64,
        h: f64,
        nx: usize,
        ny: usize,
    ) -> Option<LocalGrid> {
        let (dx, dy) = (w / nx as f64, h / ny as f64);
        let mut lo = Vec::with_capacity((nx + 1) * (ny + 1));
        for j in 0..=ny {
            for i in 0..=nx {
                lo.push([x0 + i as f64 * dx, y0 + j as f64 * dy, z_lo]);
            }
        }
        let hi: Vec<[f64; 3]> = lo.iter().map(|p| [p[0], p[1], z_hi]).collect();
        let base = exact(plan, frame, &lo)?;
        let top = exact(plan, frame, &hi)?;
        let dz = z_hi - z_lo;
        let slope = base
            .iter()
            .zip(&top)
            .map(|(a, b)| [0, 1, 2].map(|k| (b[k] - a[k]) / dz))
            .collect();
        Some(LocalGrid {
            x0,
            y0,
            dx,
            dy,
            nx,
            ny,
            z_lo,
            z_hi,
            base,
            slope,
        })
    }

    /// Largest distance between interpolated and PROJ positions over the probe points.
    fn worst_error(&self, plan: &CrsPlan, frame: &EnuFrame) -> Option<f64> {
        let mut probes = Vec::with_capacity(self.nx * self.ny * 8);
        let z_mid = (self.z_lo + self.z_hi) / 2.0;
        for j in 0..self.ny {
            for i in 0..self.nx {
                let x = self.x0 + (i as f64 + 0.5) * self.dx;
                let y = self.y0 + (j as f64 + 0.5) * self.dy;
                let xe = self.x0 + i as f64 * self.dx;
                let ys = self.y0 + j as f64 * self.dy;
                for z in [self.z_lo, self.z_hi] {
                    probes.push([x, y, z]);
                    probes.push([xe, y, z]);
                    probes.push([x, ys, z]);
                }
                probes.push([x, y, z_mid]);
            }
        }
        let want = exact(plan, frame, &probes)?;
        let mut worst = 0.0f64;
        for (p, w) in probes.iter().zip(&want) {
            let got = self.apply(p)?;
            worst = worst.max(dist(got, *w));
        }
        Some(worst)
    }

    /// The local position of `p`, or `None` outside the grid's box and height range.
    #[inline]
    pub fn apply(&self, p: &[f64; 3]) -> Option<[f64; 3]> {
        let u = (p[0] - self.x0) / self.dx;
        let v = (p[1] - self.y0) / self.dy;
        if !(u >= 0.0 && v >= 0.0 && u <= self.nx as f64 && v <= self.ny as f64) {
            return None;
        }
        if !(p[2] >= self.z_lo && p[2] <= self.z_hi) {
            return None;
        }
        let i = (u as usize).min(self.nx - 1);
        let j = (v as usize).min(self.ny - 1);
        let (fu, fv) = (u - i as f64, v - j as f64);
        let row = self.nx + 1;
        let k00 = j * row + i;
        let corners = [k00, k00 + 1, k00 + row, k00 + row + 1];
        let weights = [
            (1.0 - fu) * (1.0 - fv),
            fu * (1.0 - fv),
            (1.0 - fu) * fv,
            fu * fv,
        ];
        let dz = p[2] - self.z_lo;
        let mut out = [0.0; 3];
        for (c, wgt) in corners.iter().zip(weights) {
            let (b, s) = (self.base[*c], self.slope[*c]);
            for k in 0..3 {
                out[k] += wgt * (b[k] + dz * s[k]);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Warnings;
    use crate::reproject::enu_frame_at;
    use std::path::Path;
    use tessera_model::CrsSpec;

    fn check(crs: &str, bounds: Aabb) {
        let plan = CrsPlan::new(
            &CrsSpec::parse(crs).unwrap(),
            None,
            Path::new("t.las"),
            &Warnings::default(),
        )
        .unwrap();
        let mut c = [bounds.center()];
        plan.to_ecef(&mut c).unwrap();
        let frame = enu_frame_at(c[0]).unwrap();
        let grid = LocalGrid::build(&plan, &frame, &bounds).expect("a grid");
        // Points spread over the box on a pattern unrelated to the grid.
        let mut pts = Vec::new();
        for i in 0..2000 {
            let t = f64::from(i);
            let s = bounds.size();
            pts.push([
                bounds.min[0] + s[0] * ((t * 0.618_034) % 1.0),
                bounds.min[1] + s[1] * ((t * 0.414_214) % 1.0),
                bounds.min[2] + s[2] * ((t * 0.732_051) % 1.0),
            ]);
        }
        let want = exact(&plan, &frame, &pts).unwrap();
        for (p, w) in pts.iter().zip(&want) {
            let got = grid.apply(p).unwrap();
            assert!(
                dist(got, *w) <= TOLERANCE_M,
                "{crs} {p:?}: {got:?} vs {w:?}"
            );
        }
        assert!(grid
            .apply(&[bounds.min[0] - 1000.0, bounds.min[1], 0.0])
            .is_none());
        assert!(grid.apply(&[bounds.min[0], bounds.min[1], 1e7]).is_none());
    }

    #[test]
    fn interpolation_agrees_with_proj() {
        // Rijksdriehoek (AHN), 3 km x 2 km, 0 to 120 m.
        check(
            "EPSG:28992",
            Aabb {
                min: [84_000.0, 445_000.0, -5.0],
                max: [87_000.0, 447_000.0, 120.0],
            },
        );
        // Geographic degrees, a 0.02° box.
        check(
            "EPSG:4326",
            Aabb {
                min: [-123.08, 44.04, 100.0],
                max: [-123.06, 44.06, 300.0],
            },
        );
    }
}
