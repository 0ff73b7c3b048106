//! Decoding one quantized-mesh-1.0 tile (already gunzipped) far enough to interpolate
//! heights: the header's height range, the zig-zag delta encoded u/v/height arrays and the
//! high-water-mark encoded triangles (16-bit indices, or 32-bit after 4-byte alignment when
//! the tile has more than 65 536 vertices). Edge lists and extensions are not needed.
//! Every read is bounds-checked: a corrupt tile is an `Err`, never a panic.

/// u and v run from 0 (west / south edge) to this (east / north edge).
pub(super) const MAXQ: f64 = 32767.0;

/// A decoded tile with a uniform grid of bins over (u, v) for finding the triangle under a
/// point without scanning them all.
pub(super) struct MeshTile {
    u: Vec<u16>,
    v: Vec<u16>,
    height_m: Vec<f64>,
    tris: Vec<[u32; 3]>,
    bins_per_side: usize,
    /// Triangles per bin as CSR: bin b holds `bin_tris[bin_start[b]..bin_start[b + 1]]`.
    bin_start: Vec<u32>,
    bin_tris: Vec<u32>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "{what} needs {n} bytes at offset {} but the tile has {}",
                    self.pos,
                    self.bytes.len()
                )
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f32(&mut self, what: &str) -> Result<f32, String> {
        let b = self.take(4, what)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Decode a tile's vertices and triangles.
pub(super) fn decode(bytes: &[u8]) -> Result<MeshTile, String> {
    let mut r = Reader { bytes, pos: 0 };
    // Header: centre (3 × f64), min/max height (2 × f32), bounding sphere (4 × f64),
    // horizon occlusion point (3 × f64) = 88 bytes.
    r.take(24, "the header")?;
    let min_h = f64::from(r.f32("the header")?);
    let max_h = f64::from(r.f32("the header")?);
    r.take(56, "the header")?;
    if !min_h.is_finite() || !max_h.is_finite() || min_h > max_h {
        return Err(format!("height range {min_h}..{max_h} in the header"));
    }
    let n = r.u32("the vertex count")? as usize;
    let mut arrays: [Vec<u16>; 3] = Default::default();
    for (k, name) in ["u", "v", "height"].iter().enumerate() {
        let raw = r.take(n.saturating_mul(2), name)?;
        let mut acc = 0i32;
        let mut out = Vec::with_capacity(n);
        for z in raw.chunks_exact(2) {
            let z = i32::from(u16::from_le_bytes([z[0], z[1]]));
            acc += (z >> 1) ^ -(z & 1);
            if !(0..=MAXQ as i32).contains(&acc) {
                return Err(format!("{name} value {acc} outside 0..=32767"));
            }
            out.push(acc as u16);
        }
        arrays[k] = out;
    }
    let [u, v, hq] = arrays;
    let wide = n > 65_536;
    if wide && !r.pos.is_multiple_of(4) {
        r.take(4 - r.pos % 4, "the index alignment")?;
    }
    let tri_count = r.u32("the triangle count")? as usize;
    let per_index = if wide { 4 } else { 2 };
    let raw = r.take(
        tri_count.saturating_mul(3).saturating_mul(per_index),
        "the triangle indices",
    )?;
    let mut highest = 0u32;
    let mut flat = Vec::with_capacity(tri_count * 3);
    for c in raw.chunks_exact(per_index) {
        let code = if wide {
            u32::from_le_bytes([c[0], c[1], c[2], c[3]])
        } else {
            u32::from(u16::from_le_bytes([c[0], c[1]]))
        };
        let idx = highest
            .checked_sub(code)
            .ok_or_else(|| format!("index code {code} above the high-water mark {highest}"))?;
        if idx as usize >= n {
            return Err(format!("vertex index {idx} of {n} vertices"));
        }
        if code == 0 {
            highest += 1;
        }
        flat.push(idx);
    }
    let tris: Vec<[u32; 3]> = flat.chunks_exact(3).map(|t| [t[0], t[1], t[2]]).collect();
    let height_m = hq
        .iter()
        .map(|q| min_h + (max_h - min_h) * f64::from(*q) / MAXQ)
        .collect();
    Ok(MeshTile::new(u, v, height_m, tris))
}

impl MeshTile {
    fn new(u: Vec<u16>, v: Vec<u16>, height_m: Vec<f64>, tris: Vec<[u32; 3]>) -> MeshTile {
        // About four triangles per bin for an even mesh.
        let side = ((tris.len() as f64 / 8.0).sqrt().ceil() as usize).clamp(1, 64);
        let cell = (MAXQ + 1.0) / side as f64;
        let bin_range = |t: &[u32; 3], coord: &dyn Fn(u32) -> u16| {
            let (lo, hi) = t
                .iter()
                .map(|i| f64::from(coord(*i)))
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), c| {
                    (a.min(c), b.max(c))
                });
            let b = |x: f64| ((x / cell).floor() as usize).min(side - 1);
            (b(lo), b(hi))
        };
        let cu = |i: u32| u[i as usize];
        let cv = |i: u32| v[i as usize];
        let mut counts = vec![0u32; side * side + 1];
        let ranges: Vec<((usize, usize), (usize, usize))> = tris
            .iter()
            .map(|t| (bin_range(t, &cu), bin_range(t, &cv)))
            .collect();
        for ((x0, x1), (y0, y1)) in &ranges {
            for y in *y0..=*y1 {
                for x in *x0..=*x1 {
                    counts[y * side + x + 1] += 1;
                }
            }
        }
        for b in 1..counts.len() {
            counts[b] += counts[b - 1];
        }
        let mut fill = counts.clone();
        let mut bin_tris = vec![0u32; counts[side * side] as usize];
        for (ti, ((x0, x1), (y0, y1))) in ranges.iter().enumerate() {
            for y in *y0..=*y1 {
                for x in *x0..=*x1 {
                    let slot = &mut fill[y * side + x];
                    bin_tris[*slot as usize] = ti as u32;
                    *slot += 1;
                }
            }
        }
        MeshTile {
            u,
            v,
            height_m,
            tris,
            bins_per_side: side,
            bin_start: counts,
            bin_tris,
        }
    }

    /// Height of the mesh at tile coordinates (u, v), both 0..=32767 (v north), by
    /// barycentric interpolation in the triangle holding the point; `None` where no
    /// triangle does.
    pub fn height_at(&self, u: f64, v: f64) -> Option<f64> {
        let side = self.bins_per_side;
        let cell = (MAXQ + 1.0) / side as f64;
        let bin = |x: f64| ((x / cell).floor().max(0.0) as usize).min(side - 1);
        let b = bin(v) * side + bin(u);
        let list = &self.bin_tris[self.bin_start[b] as usize..self.bin_start[b + 1] as usize];
        // The triangle whose smallest barycentric weight is largest: the one holding the
        // point, or on a shared edge either neighbour (they agree there).
        let mut best: Option<(f64, f64)> = None;
        for &ti in list {
            let [a, b, c] = self.tris[ti as usize].map(|i| i as usize);
            let p = |i: usize| (f64::from(self.u[i]), f64::from(self.v[i]));
            let ((ua, va), (ub, vb), (uc, vc)) = (p(a), p(b), p(c));
            let d = (vb - vc) * (ua - uc) + (uc - ub) * (va - vc);
            if d == 0.0 {
                continue;
            }
            let l1 = ((vb - vc) * (u - uc) + (uc - ub) * (v - vc)) / d;
            let l2 = ((vc - va) * (u - uc) + (ua - uc) * (v - vc)) / d;
            let l3 = 1.0 - l1 - l2;
            let worst = l1.min(l2).min(l3);
            if best.is_none_or(|(w, _)| worst > w) {
                let h = l1 * self.height_m[a] + l2 * self.height_m[b] + l3 * self.height_m[c];
                best = Some((worst, h));
            }
        }
        // A point inside up to rounding (about a millionth of a triangle's size).
        best.filter(|(w, _)| *w >= -1e-6).map(|(_, h)| h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terrain::{encode, rtin, Extensions, GridMesh};
    use tessera_model::Rect;

    fn grid_tile(
        size: usize,
        max_error_m: f64,
        f: impl Fn(f64, f64) -> f64,
    ) -> (Vec<u8>, Vec<f64>) {
        let heights: Vec<f64> = (0..size * size)
            .map(|i| f((i % size) as f64, (i / size) as f64))
            .collect();
        let tris = rtin(&heights, size, max_error_m);
        let rect = Rect {
            min_x: 7.0,
            min_y: 50.0,
            max_x: 7.01,
            max_y: 50.01,
        };
        let bytes = encode(
            &GridMesh {
                rect_deg: rect,
                size,
                heights_m: &heights,
                normals: None,
                triangles: &tris,
            },
            &Extensions {
                normals: false,
                watermask: Some(&[0]),
                metadata: Some("{}"),
            },
        );
        (bytes, heights)
    }

    /// Tile (u, v) of grid point (column i, row j from the north) of a `size` grid.
    fn uv(size: usize, i: usize, j: usize) -> (f64, f64) {
        let last = (size - 1) as f64;
        let q = |x: f64| (x * MAXQ / last).round();
        (q(i as f64), q(last - j as f64))
    }

    #[test]
    fn decodes_what_the_terrain_encoder_writes() {
        let size = 33;
        let (bytes, heights) = grid_tile(size, -1.0, |x, y| 100.0 + 3.0 * (x / 4.0).sin() + y);
        let t = decode(&bytes).expect("tile");
        assert_eq!(
            t.u.len(),
            size * size,
            "a negative error keeps every vertex"
        );
        for (i, j) in [(0, 0), (5, 7), (32, 32), (16, 0), (31, 2)] {
            let (u, v) = uv(size, i, j);
            let h = t.height_at(u, v).expect("inside");
            let range = heights.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                - heights.iter().copied().fold(f64::INFINITY, f64::min);
            assert!(
                (h - heights[j * size + i]).abs() <= range / MAXQ,
                "({i},{j}): {h} vs {}",
                heights[j * size + i]
            );
        }
        // Between grid points: a plane stays a plane.
        let (bytes, _) = grid_tile(size, 0.5, |x, y| 10.0 + 2.0 * x - y);
        let t = decode(&bytes).expect("tile");
        for k in 0..50 {
            let (u, v) = (
                (k as f64 * 977.0) % MAXQ,
                (k as f64 * 3_331.0 + 17.0) % MAXQ,
            );
            let (x, y) = (u / MAXQ * 32.0, 32.0 - v / MAXQ * 32.0);
            let h = t.height_at(u, v).expect("inside");
            assert!((h - (10.0 + 2.0 * x - y)).abs() < 0.01, "{u},{v}: {h}");
        }
    }

    #[test]
    fn decodes_32_bit_indices_after_alignment() {
        // 257 × 257 = 66 049 vertices: more than 65 536, so the encoder writes 32-bit
        // indices after padding to a multiple of four.
        let size = 257;
        let (bytes, heights) = grid_tile(size, -1.0, |x, y| ((x * 7.0 + y * 13.0) % 11.0) * 0.5);
        let t = decode(&bytes).expect("tile");
        assert_eq!(t.u.len(), size * size);
        assert_eq!(t.tris.len(), 2 * 256 * 256);
        for (i, j) in [(0, 0), (100, 200), (256, 256), (3, 250)] {
            let (u, v) = uv(size, i, j);
            let h = t.height_at(u, v).expect("inside");
            assert!((h - heights[j * size + i]).abs() < 1e-3, "({i},{j})");
        }
    }

    #[test]
    fn corrupt_tiles_are_errors_not_panics() {
        let (bytes, _) = grid_tile(17, -1.0, |x, y| x * y);
        assert!(decode(&bytes).is_ok());
        // Every truncation up to the end of the indices fails cleanly.
        let indices_end = 88 + 4 + 6 * 17 * 17 + 4 + 6 * 2 * 16 * 16;
        for len in 0..indices_end {
            assert!(decode(&bytes[..len]).is_err(), "{len} bytes");
        }
        // A vertex count far beyond the data.
        let mut b = bytes.clone();
        b[88..92].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&b).is_err());
        // A triangle count far beyond the data.
        let mut b = bytes.clone();
        let at = 92 + 6 * 17 * 17;
        b[at..at + 4].copy_from_slice(&0x4000_0000u32.to_le_bytes());
        assert!(decode(&b).is_err());
        // An index code above the high-water mark.
        let mut b = bytes.clone();
        b[at + 4..at + 6].copy_from_slice(&7u16.to_le_bytes());
        assert!(decode(&b).is_err());
        // A u delta running out of range.
        let mut b = bytes;
        b[92..94].copy_from_slice(&0xffffu16.to_le_bytes());
        assert!(decode(&b).is_err());
        // Random bytes never panic.
        let mut seed = 7u64;
        for _ in 0..200 {
            let junk: Vec<u8> = (0..400)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            if let Ok(t) = decode(&junk) {
                let _ = t.height_at(100.0, 100.0);
            }
        }
    }

    #[test]
    fn empty_tiles_have_no_heights() {
        let mut b = vec![0u8; 88];
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        let t = decode(&b).expect("an empty tile is valid");
        assert_eq!(t.height_at(10.0, 10.0), None);
    }
}
