//! Positions on an integer grid: the quantization step of compact point tiles, the
//! 16-bit and exponential layouts glTF can carry, and the spatial order that lets
//! meshopt's vertex codec find small deltas between neighbouring points.

use tessera_model::Aabb;

/// Coarsest step used for positions: 2^-10 m (0.98 mm).
pub const COARSEST_STEP_EXP: i32 = -10;
/// Finest step ever used: 2^-16 m (15 µm), for inputs recorded finer than that.
pub const FINEST_STEP_EXP: i32 = -16;
/// Largest magnitude of a mantissa in meshopt's exponential filter (24-bit signed).
const MAX_MANTISSA: i64 = (1 << 23) - 1;

/// The power-of-two step (as its exponent) for an input recorded at `scale_m` metres:
/// never finer than the input's own resolution, never coarser than 1 mm.
pub fn step_exponent(scale_m: f64) -> i32 {
    if !(scale_m.is_finite() && scale_m > 0.0) {
        return COARSEST_STEP_EXP;
    }
    (scale_m.log2().ceil() as i32).clamp(FINEST_STEP_EXP, COARSEST_STEP_EXP)
}

/// A regular grid over one tile's points: `origin + q * step_m` per axis (tile frame,
/// z up), `q` in `0..=extent`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub origin: [f64; 3],
    pub step_exp: i32,
    pub extent: [u64; 3],
}

/// How the quantized positions are written to glTF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Unsigned 16-bit integers, scaled by the node (KHR_mesh_quantization).
    U16,
    /// Floats stored as mantissa and shared exponent (meshopt's EXPONENTIAL filter).
    Exponential,
}

impl Grid {
    /// The grid of step `2^step_exp` anchored at the minimum corner of the points'
    /// `bounds`; the step grows (coarser) only where the tile is too large for 24-bit
    /// mantissas at that step, i.e. over 16 km across at 1 mm.
    pub fn new(bounds: &Aabb, step_exp: i32) -> Grid {
        let (min, max) = if bounds.min.iter().zip(&bounds.max).all(|(a, b)| a <= b) {
            (bounds.min, bounds.max)
        } else {
            ([0.0; 3], [0.0; 3])
        };
        let mut step_exp = step_exp;
        loop {
            let step = f64::from(step_exp).exp2();
            let extent = [0, 1, 2].map(|k| ((max[k] - min[k]) / step).round().max(0.0) as u64);
            if extent.iter().all(|e| *e as i64 <= 2 * MAX_MANTISSA) || step_exp >= 64 {
                return Grid {
                    origin: min,
                    step_exp,
                    extent,
                };
            }
            step_exp += 1;
        }
    }

    pub fn step_m(&self) -> f64 {
        f64::from(self.step_exp).exp2()
    }

    pub fn layout(&self) -> Layout {
        if self.extent.iter().all(|e| *e <= u64::from(u16::MAX)) {
            Layout::U16
        } else {
            Layout::Exponential
        }
    }

    /// Grid coordinates of a point, clamped to the grid.
    pub fn quantize(&self, p: &[f64; 3]) -> [u64; 3] {
        let step = self.step_m();
        [0, 1, 2].map(|k| {
            let q = ((p[k] - self.origin[k]) / step).round().max(0.0) as u64;
            q.min(self.extent[k])
        })
    }

    /// Key of the point's cell on a Morton (Z-order) curve, 21 bits per axis.
    pub fn morton(&self, p: &[f64; 3]) -> u64 {
        let widest = self.extent.iter().copied().max().unwrap_or(0);
        let bits = 64 - widest.leading_zeros();
        let shift = bits.saturating_sub(21);
        let q = self.quantize(p);
        morton3(q[0] >> shift, q[1] >> shift, q[2] >> shift)
    }

    /// The 16-bit glTF components of a point (y up: x, z, -y; the last one counted from
    /// the grid's far side so it stays unsigned) and the node translation that goes with
    /// them; the node's scale is the step.
    pub fn u16_yup(&self, p: &[f64; 3]) -> [u16; 3] {
        let q = self.quantize(p);
        [q[0], q[2], self.extent[1] - q[1]].map(|v| v.min(u64::from(u16::MAX)) as u16)
    }

    pub fn u16_translation_yup(&self) -> [f64; 3] {
        let s = self.step_m();
        [
            self.origin[0],
            self.origin[2],
            -(self.origin[1] + self.extent[1] as f64 * s),
        ]
    }

    /// Half the extent per axis: exponential mantissas are counted from the grid's
    /// middle so they stay within 24 bits.
    fn middle(&self) -> [i64; 3] {
        self.extent.map(|e| (e / 2) as i64)
    }

    /// The exponential-filter words of a point (y up) and their decoded float values.
    pub fn exp_yup(&self, p: &[f64; 3]) -> ([u32; 3], [f32; 3]) {
        let q = self.quantize(p);
        let c = self.middle();
        let m = [
            q[0] as i64 - c[0],
            q[2] as i64 - c[2],
            -(q[1] as i64 - c[1]),
        ];
        let e = self.step_exp;
        let word = |m: i64| ((e as i8 as u8 as u32) << 24) | (m as i32 as u32 & 0x00ff_ffff);
        let value = |m: i64| (m as f64 * f64::from(e).exp2()) as f32;
        (m.map(word), m.map(value))
    }

    pub fn exp_translation_yup(&self) -> [f64; 3] {
        let s = self.step_m();
        let c = self.middle();
        [
            self.origin[0] + c[0] as f64 * s,
            self.origin[2] + c[2] as f64 * s,
            -(self.origin[1] + c[1] as f64 * s),
        ]
    }
}

/// Position on the Morton (Z-order) curve of a cell, x in the lowest bit; 21 bits per
/// axis. Also the order 3D Tiles gives octree availability bitstreams.
pub fn morton3(x: u64, y: u64, z: u64) -> u64 {
    spread(x) | (spread(y) << 1) | (spread(z) << 2)
}

/// The low 21 bits of `v` spread to every third bit.
fn spread(v: u64) -> u64 {
    let mut x = v & 0x1f_ffff;
    x = (x | (x << 32)) & 0x1f_0000_0000_ffff;
    x = (x | (x << 16)) & 0x1f_0000_ff00_00ff;
    x = (x | (x << 8)) & 0x100f_00f0_0f00_f00f;
    x = (x | (x << 4)) & 0x10c3_0c30_c30c_30c3;
    x = (x | (x << 2)) & 0x1249_2492_4924_9249;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_follows_the_input_scale_up_to_a_millimetre() {
        assert_eq!(step_exponent(0.01), -10);
        assert_eq!(step_exponent(0.001), -10);
        assert_eq!(step_exponent(0.000_25), -11);
        assert_eq!(step_exponent(f64::from(-12).exp2()), -12);
        assert_eq!(step_exponent(1e-9), FINEST_STEP_EXP);
        assert_eq!(step_exponent(0.0), COARSEST_STEP_EXP);
        assert_eq!(step_exponent(f64::NAN), COARSEST_STEP_EXP);
    }

    #[test]
    fn both_layouts_put_points_back_within_half_a_step() {
        for size in [50.0, 3_000.0] {
            let pts: Vec<[f64; 3]> = (0..1000)
                .map(|i| {
                    let t = i as f64 / 999.0;
                    [
                        -size / 2.0 + t * size,
                        123.456 + (t * 7.0).sin() * size / 3.0,
                        -4.0 + t * 10.0,
                    ]
                })
                .collect();
            let g = Grid::new(&Aabb::from_points(&pts), -10);
            let half = g.step_m() / 2.0 + 1e-9;
            let layout = g.layout();
            assert_eq!(layout == Layout::U16, size < 64.0);
            for p in &pts {
                let yup = match layout {
                    Layout::U16 => {
                        let q = g.u16_yup(p);
                        let t = g.u16_translation_yup();
                        [0, 1, 2].map(|k| t[k] + f64::from(q[k]) * g.step_m())
                    }
                    Layout::Exponential => {
                        let (w, v) = g.exp_yup(p);
                        let t = g.exp_translation_yup();
                        for k in 0..3 {
                            let m = ((w[k] << 8) as i32) >> 8;
                            let e = (w[k] as i32) >> 24;
                            assert_eq!(m as f64 * f64::from(e).exp2(), f64::from(v[k]));
                        }
                        [0, 1, 2].map(|k| t[k] + f64::from(v[k]))
                    }
                };
                let back = [yup[0], -yup[2], yup[1]];
                for k in 0..3 {
                    assert!((back[k] - p[k]).abs() <= half, "{p:?} -> {back:?}");
                }
            }
        }
    }

    #[test]
    fn huge_tiles_coarsen_the_step_to_stay_in_24_bits() {
        let pts = [[0.0, 0.0, 0.0], [40_000.0, 1.0, 1.0]];
        let g = Grid::new(&Aabb::from_points(&pts), -10);
        assert!(g.step_exp > -10);
        assert!(g.extent[0] as i64 <= 2 * MAX_MANTISSA);
    }

    #[test]
    fn morton_order_interleaves_axes() {
        assert_eq!(spread(0b11), 0b1001);
        let g = Grid {
            origin: [0.0; 3],
            step_exp: 0,
            extent: [7, 7, 7],
        };
        assert_eq!(g.morton(&[1.0, 0.0, 0.0]), 1);
        assert_eq!(g.morton(&[0.0, 1.0, 0.0]), 2);
        assert_eq!(g.morton(&[0.0, 0.0, 1.0]), 4);
        assert_eq!(g.morton(&[1.0, 1.0, 1.0]), 7);
    }
}
