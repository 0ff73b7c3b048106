//! The point record used while tiling, in memory ([`TilePoint`]) and in spill buffers
//! and files ([`RecordLayout`]: only the fields a job keeps).

use tessera_model::PointAttributes;

/// One point in the tileset's local frame (ENU metres) with its attributes and its
/// identity: `id` counts the points of all inputs in order (see [`IdPlan`]), which
/// orders points the same way whatever the thread count. `extra` holds the job's `K` extra values (GPS time,
/// extra-bytes dimensions) as physical values; jobs without them use `K = 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TilePoint<const K: usize = 0> {
    pub pos: [f64; 3],
    pub id: u64,
    /// 16-bit colour (8-bit sources scaled by 257).
    pub rgb: [u16; 3],
    pub classification: u8,
    pub intensity: u16,
    pub return_number: u8,
    pub number_of_returns: u8,
    pub extra: [f64; K],
}

/// Point identities: the points of input `i` are numbered from the sum of the header
/// counts before it, so every identity is below the total and fits in few bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPlan {
    first: Vec<u64>,
    total: u64,
}

impl IdPlan {
    /// From the header point counts of the inputs, in order.
    pub fn new(counts: impl IntoIterator<Item = u64>) -> IdPlan {
        let mut first = Vec::new();
        let mut total = 0u64;
        for c in counts {
            first.push(total);
            total = total.saturating_add(c);
        }
        IdPlan { first, total }
    }

    /// The identity of point `index` of input `input`.
    #[inline]
    pub fn id(&self, input: usize, index: u64) -> u64 {
        self.first[input] + index
    }

    /// Bytes that hold every identity.
    pub fn bytes(&self) -> usize {
        let bits = 64 - self.total.saturating_sub(1).leading_zeros() as usize;
        bits.div_ceil(8).max(1)
    }
}

/// How positions are stored in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PositionCoding {
    /// Three `f64` (metres).
    Exact,
    /// Three signed integers of `bytes` bytes each, counting steps of `2^step_exp` m
    /// from the frame's origin: the lattice compact tiles quantize to, so storing a
    /// point on it loses nothing the tiles keep.
    Lattice { step_exp: i32, bytes: usize },
}

/// Farthest a stored position lies from the frame's origin, in metres, as a power of
/// two: points are checked to lie near the Earth's surface (within ~6,420 km of its
/// centre), so none is more than ~12,840 km from an origin on the surface; 2^26 m
/// leaves a wide margin.
const MAX_OFFSET_EXP: i32 = 26;

/// The byte layout of one job's point records: positions (exact or on the tiles'
/// lattice), the identity (in as few bytes as the job's point count needs) and the class (which orders points in compact tiles even
/// where it is not written), then only the attributes the job keeps (returns packed in
/// one byte, as LAS stores them) and its extra values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLayout {
    positions: PositionCoding,
    rgb: bool,
    intensity: bool,
    returns: bool,
    extras: usize,
    id_bytes: usize,
    bytes: usize,
}

impl RecordLayout {
    /// The layout for `extras` extra values and the attributes in `keep`; positions on
    /// the lattice of step `2^step_exp` m when `step_exp` is given; identities of
    /// `id_bytes` bytes (1 to 8).
    pub fn new(
        keep: PointAttributes,
        extras: usize,
        step_exp: Option<i32>,
        id_bytes: usize,
    ) -> RecordLayout {
        let id_bytes = id_bytes.clamp(1, 8);
        let positions = match step_exp {
            Some(e) => PositionCoding::Lattice {
                step_exp: e,
                // Enough bytes for ±2^MAX_OFFSET_EXP m in steps, with the sign bit.
                // (at most 6 for the finest step, 2^-16 m).
                bytes: ((MAX_OFFSET_EXP - e + 1) as usize).div_ceil(8).clamp(1, 6),
            },
            None => PositionCoding::Exact,
        };
        let pos_bytes = match positions {
            PositionCoding::Exact => 24,
            PositionCoding::Lattice { bytes, .. } => 3 * bytes,
        };
        let bytes = pos_bytes
            + id_bytes
            + if keep.rgb { 6 } else { 0 }
            + if keep.intensity { 2 } else { 0 }
            + 1
            + usize::from(keep.returns)
            + 8 * extras;
        RecordLayout {
            positions,
            rgb: keep.rgb,
            intensity: keep.intensity,
            returns: keep.returns,
            extras,
            id_bytes,
            bytes,
        }
    }

    /// Bytes of one record.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// `pos` as a record stores it (on the lattice, or unchanged): the position every
    /// later step sees, so cells are chosen from it.
    #[inline]
    pub fn stored_position(&self, pos: [f64; 3]) -> [f64; 3] {
        match self.positions {
            PositionCoding::Exact => pos,
            PositionCoding::Lattice { step_exp, bytes } => {
                let q = lattice_steps(pos, step_exp, bytes);
                let step = f64::from(step_exp).exp2();
                q.map(|q| q as f64 * step)
            }
        }
    }

    /// Append one record to `out`.
    #[inline]
    pub fn write<const K: usize>(&self, p: &TilePoint<K>, out: &mut Vec<u8>) {
        // Room for a full 8-byte store at any offset (see the lattice positions).
        let mut b = [0u8; MAX_RECORD_BYTES + 8];
        let mut o = match self.positions {
            PositionCoding::Exact => {
                for (k, v) in p.pos.into_iter().enumerate() {
                    b[8 * k..8 * k + 8].copy_from_slice(&v.to_le_bytes());
                }
                24
            }
            PositionCoding::Lattice { step_exp, bytes } => {
                let steps = lattice_steps(p.pos, step_exp, bytes);
                for (k, q) in steps.into_iter().enumerate() {
                    // All eight bytes, fixed-size; the next field overwrites the top ones.
                    b[k * bytes..k * bytes + 8].copy_from_slice(&q.to_le_bytes());
                }
                3 * bytes
            }
        };
        let mut put = |bytes: &[u8]| {
            b[o..o + bytes.len()].copy_from_slice(bytes);
            o += bytes.len();
        };
        put(&p.id.to_le_bytes()[..self.id_bytes]);
        if self.rgb {
            for c in p.rgb {
                put(&c.to_le_bytes());
            }
        }
        if self.intensity {
            put(&p.intensity.to_le_bytes());
        }
        put(&[p.classification]);
        if self.returns {
            // LAS stores both in 4 bits or fewer.
            put(&[(p.return_number & 15) | (p.number_of_returns << 4)]);
        }
        for v in &p.extra[..self.extras] {
            put(&v.to_le_bytes());
        }
        out.extend_from_slice(&b[..self.bytes]);
    }

    /// Decode one record; `b` holds at least [`RecordLayout::bytes`]. Fields the
    /// layout leaves out read as zero.
    #[inline]
    pub fn read<const K: usize>(&self, b: &[u8]) -> TilePoint<K> {
        let b = &b[..self.bytes];
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        // Eight bytes from `o`, zero past the record's end (only the low ones are used).
        let wide_at = |o: usize| {
            if o + 8 <= b.len() {
                u64_at(o)
            } else {
                let mut a = [0u8; 8];
                a[..b.len() - o].copy_from_slice(&b[o..]);
                u64::from_le_bytes(a)
            }
        };
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let (pos, mut o) = match self.positions {
            PositionCoding::Exact => ([0, 8, 16].map(|o| f64::from_bits(u64_at(o))), 24),
            PositionCoding::Lattice { step_exp, bytes } => {
                let step = f64::from(step_exp).exp2();
                let shift = 64 - 8 * bytes as u32;
                // The shifts keep the axis's own bytes and its sign.
                let axis = |k: usize| ((wide_at(k * bytes) << shift) as i64 >> shift) as f64 * step;
                ([axis(0), axis(1), axis(2)], 3 * bytes)
            }
        };
        let id_shift = 64 - 8 * self.id_bytes as u32;
        let id = (wide_at(o) << id_shift) >> id_shift;
        o += self.id_bytes;
        let mut rgb = [0; 3];
        if self.rgb {
            rgb = [u16_at(o), u16_at(o + 2), u16_at(o + 4)];
            o += 6;
        }
        let mut intensity = 0;
        if self.intensity {
            intensity = u16_at(o);
            o += 2;
        }
        let classification = b[o];
        o += 1;
        let (mut return_number, mut number_of_returns) = (0, 0);
        if self.returns {
            (return_number, number_of_returns) = (b[o] & 15, b[o] >> 4);
            o += 1;
        }
        let mut extra = [0.0; K];
        for v in extra.iter_mut().take(self.extras) {
            *v = f64::from_bits(u64_at(o));
            o += 8;
        }
        TilePoint {
            pos,
            id,
            rgb,
            classification,
            intensity,
            return_number,
            number_of_returns,
            extra,
        }
    }
}

/// Largest record: exact positions, every attribute and the most extra values.
const MAX_RECORD_BYTES: usize = 24 + 8 + 6 + 2 + 1 + 1 + 8 * super::attributes::MAX_EXTRAS;

/// A position in lattice steps, clamped to what `bytes` bytes hold (positions never
/// come near that, see [`MAX_OFFSET_EXP`]).
#[inline]
fn lattice_steps(pos: [f64; 3], step_exp: i32, bytes: usize) -> [i64; 3] {
    let per_step = f64::from(-step_exp).exp2();
    let limit = ((1i64 << (8 * bytes - 1)) - 1) as f64;
    pos.map(|v| nearest_integer((v * per_step).clamp(-limit, limit)) as i64)
}

/// `x` rounded to the nearest integer, ties to even, for |x| < 2^51: adding and taking
/// away 1.5 · 2^52 leaves no fraction bits (cheaper than `round` on baseline x86-64).
fn nearest_integer(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    (x + MAGIC) - MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> PointAttributes {
        PointAttributes {
            rgb: true,
            rgb16: false,
            intensity: true,
            classification: true,
            returns: true,
        }
    }

    fn sample() -> TilePoint<2> {
        TilePoint {
            pos: [1.5, -2.25, 1e6],
            id: IdPlan::new([5, 1 << 40, 7]).id(1, 123_456_789),
            rgb: [1, 2, 65_535],
            classification: 6,
            intensity: 65_000,
            return_number: 2,
            number_of_returns: 4,
            extra: [390_583_958.410_528_96, -3.0],
        }
    }

    #[test]
    fn identities_count_the_inputs_in_order_in_the_fewest_bytes() {
        let ids = IdPlan::new([3, 0, 5]);
        assert_eq!([ids.id(0, 2), ids.id(2, 0), ids.id(2, 4)], [2, 3, 7]);
        assert_eq!(ids.bytes(), 1);
        assert_eq!(IdPlan::new([256]).bytes(), 1);
        assert_eq!(IdPlan::new([257]).bytes(), 2);
        assert_eq!(IdPlan::new([1 << 32, 1]).bytes(), 5);
        assert_eq!(IdPlan::new([u64::MAX, 5]).bytes(), 8);
        assert_eq!(IdPlan::new([]).bytes(), 1);
    }

    #[test]
    fn exact_records_round_trip() {
        let layout = RecordLayout::new(all(), 2, None, 8);
        let mut buf = Vec::new();
        layout.write(&sample(), &mut buf);
        assert_eq!(buf.len(), layout.bytes());
        assert_eq!(layout.bytes(), 24 + 8 + 6 + 2 + 1 + 1 + 16);
        assert_eq!(layout.read::<2>(&buf), sample());
    }

    #[test]
    fn lattice_records_keep_positions_to_half_a_step_and_drop_what_the_job_leaves_out() {
        let keep = PointAttributes {
            rgb: false,
            ..all()
        };
        for step_exp in [-10, -16] {
            let layout = RecordLayout::new(keep, 1, Some(step_exp), 4);
            let step = f64::from(step_exp).exp2();
            let mut p = TilePoint {
                pos: [1_234.567_891, -12_000_000.000_4, -0.000_3],
                id: IdPlan::new([3_000_000_000, 100]).id(1, 42),
                rgb: [0; 3],
                classification: 2,
                intensity: 513,
                return_number: 15,
                number_of_returns: 15,
                extra: [390_583_958.410_528_96],
            };
            let mut buf = Vec::new();
            layout.write(&p, &mut buf);
            assert_eq!(buf.len(), layout.bytes());
            let back = layout.read::<1>(&buf);
            for k in 0..3 {
                assert_eq!(back.pos[k], (p.pos[k] / step).round_ties_even() * step);
                assert!(
                    (back.pos[k] - p.pos[k]).abs() <= step / 2.0,
                    "{step_exp} {k}"
                );
                assert_eq!(
                    back.pos[k] / step,
                    (back.pos[k] / step).round(),
                    "on the lattice"
                );
            }
            p.pos = back.pos;
            assert_eq!(back, p);
        }
        // Millimetre steps: 5 bytes per axis, so 15 + 4 + 2 + 1 + 1 + 8 bytes for a
        // job of 10^8 points; the stored position is the one read back.
        let ids = IdPlan::new([60_000_000, 40_000_000]);
        assert_eq!(ids.bytes(), 4);
        assert_eq!(
            RecordLayout::new(keep, 1, Some(-10), ids.bytes()).bytes(),
            31
        );
        // Nothing kept but the class (it orders compact tiles).
        let none = PointAttributes {
            rgb: false,
            rgb16: false,
            intensity: false,
            classification: false,
            returns: false,
        };
        // One-byte identities: the record is shorter than the last axis's eight bytes.
        let layout = RecordLayout::new(none, 0, Some(-10), IdPlan::new([200]).bytes());
        assert_eq!(layout.bytes(), 15 + 1 + 1);
        let p = TilePoint {
            pos: [0.000_49, -0.000_5, 12_345.678_9],
            id: 7,
            rgb: [0; 3],
            classification: 9,
            intensity: 0,
            return_number: 0,
            number_of_returns: 0,
            extra: [],
        };
        let mut buf = Vec::new();
        layout.write(&p, &mut buf);
        let back = layout.read::<0>(&buf);
        assert_eq!(back.pos, layout.stored_position(p.pos));
        assert_eq!((back.id, back.classification), (7, 9));
    }
}
