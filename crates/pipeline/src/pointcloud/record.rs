//! The fixed-size point record used while tiling, in memory and in spill files.

/// One point in the tileset's local frame (ENU metres) with its attributes and its
/// identity: `id` = input index << 40 | point index, which orders points the same way
/// whatever the thread count. `extra` holds the job's `K` extra values (GPS time,
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

impl<const K: usize> TilePoint<K> {
    /// Bytes of one record in a spill file.
    pub const BYTES: usize = 43 + 8 * K;

    pub fn write_to(&self, out: &mut Vec<u8>) {
        for v in self.pos {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.id.to_le_bytes());
        for c in self.rgb {
            out.extend_from_slice(&c.to_le_bytes());
        }
        out.push(self.classification);
        out.extend_from_slice(&self.intensity.to_le_bytes());
        out.push(self.return_number);
        out.push(self.number_of_returns);
        for v in self.extra {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Decode one record; `b` holds at least [`TilePoint::BYTES`].
    pub fn read_from(b: &[u8]) -> TilePoint<K> {
        let f = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            a
        };
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let mut extra = [0.0; K];
        for (k, v) in extra.iter_mut().enumerate() {
            *v = f64::from_le_bytes(f(43 + 8 * k));
        }
        TilePoint {
            pos: [
                f64::from_le_bytes(f(0)),
                f64::from_le_bytes(f(8)),
                f64::from_le_bytes(f(16)),
            ],
            id: u64::from_le_bytes(f(24)),
            rgb: [u16_at(32), u16_at(34), u16_at(36)],
            classification: b[38],
            intensity: u16_at(39),
            return_number: b[41],
            number_of_returns: b[42],
            extra,
        }
    }
}

pub fn point_id(input: usize, index: u64) -> u64 {
    ((input as u64) << 40) | index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let p = TilePoint {
            pos: [1.5, -2.25, 1e6],
            id: point_id(3, 123_456_789),
            rgb: [1, 2, 65_535],
            classification: 6,
            intensity: 65_000,
            return_number: 2,
            number_of_returns: 4,
            extra: [390_583_958.410_528_96, -3.0],
        };
        let mut buf = Vec::new();
        p.write_to(&mut buf);
        assert_eq!(buf.len(), TilePoint::<2>::BYTES);
        assert_eq!(TilePoint::<2>::read_from(&buf), p);
        let plain = TilePoint {
            extra: [],
            ..TilePoint::<0>::read_from(&buf)
        };
        assert_eq!(plain.pos, p.pos);
        assert_eq!(TilePoint::<0>::BYTES, 43);
    }
}
