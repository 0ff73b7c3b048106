//! The fixed-size point record used while tiling, in memory and in spill files.

/// One point in the tileset's local frame (ENU metres) with its attributes and its
/// identity: `id` = input index << 40 | point index, which orders points the same way
/// whatever the thread count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TilePoint {
    pub pos: [f64; 3],
    pub id: u64,
    pub rgb: [u8; 3],
    pub classification: u8,
    pub intensity: u16,
    pub return_number: u8,
    pub number_of_returns: u8,
}

pub const RECORD_BYTES: usize = 40;

impl TilePoint {
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for v in self.pos {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.rgb);
        out.push(self.classification);
        out.extend_from_slice(&self.intensity.to_le_bytes());
        out.push(self.return_number);
        out.push(self.number_of_returns);
    }

    /// Decode one record; `b` must hold exactly [`RECORD_BYTES`].
    pub fn read_from(b: &[u8; RECORD_BYTES]) -> TilePoint {
        let f = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            a
        };
        TilePoint {
            pos: [
                f64::from_le_bytes(f(0)),
                f64::from_le_bytes(f(8)),
                f64::from_le_bytes(f(16)),
            ],
            id: u64::from_le_bytes(f(24)),
            rgb: [b[32], b[33], b[34]],
            classification: b[35],
            intensity: u16::from_le_bytes([b[36], b[37]]),
            return_number: b[38],
            number_of_returns: b[39],
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
            rgb: [1, 2, 3],
            classification: 6,
            intensity: 65_000,
            return_number: 2,
            number_of_returns: 4,
        };
        let mut buf = Vec::new();
        p.write_to(&mut buf);
        assert_eq!(buf.len(), RECORD_BYTES);
        let arr: [u8; RECORD_BYTES] = buf.try_into().unwrap();
        assert_eq!(TilePoint::read_from(&arr), p);
    }
}
