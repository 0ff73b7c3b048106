//! quantized-mesh-1.0 encoding: header (centre, height range, bounding sphere, horizon
//! occlusion point), zig-zag delta vertices, high-water-mark indices, edge lists and the
//! octvertexnormals / watermask / metadata extensions.

use tessera_model::Rect;

const MAXQ: f64 = 32767.0;
const WGS84_A: f64 = 6_378_137.0;
const WGS84_B: f64 = 6_356_752.314_245_179;
const WGS84_E2: f64 = 6.694_379_990_141_316e-3;

/// WGS 84 geodetic (degrees, metres) → ECEF metres.
pub fn ecef(lon_deg: f64, lat_deg: f64, height_m: f64) -> [f64; 3] {
    let (lon, lat) = (lon_deg.to_radians(), lat_deg.to_radians());
    let n = WGS84_A / (1.0 - WGS84_E2 * lat.sin() * lat.sin()).sqrt();
    [
        (n + height_m) * lat.cos() * lon.cos(),
        (n + height_m) * lat.cos() * lon.sin(),
        (n * (1.0 - WGS84_E2) + height_m) * lat.sin(),
    ]
}

/// One tile's mesh over a regular grid of `size` × `size` points (row 0 north).
pub struct GridMesh<'a> {
    pub rect_deg: Rect,
    pub size: usize,
    pub heights_m: &'a [f64],
    /// Unit ECEF normal per grid point, when the octvertexnormals extension is wanted.
    pub normals: Option<&'a [[f64; 3]]>,
    pub triangles: &'a [[u32; 3]],
}

pub struct Extensions<'a> {
    pub normals: bool,
    /// The water mask: 1 byte (0 = all land, 255 = all water) or 256 × 256 bytes.
    pub watermask: Option<&'a [u8]>,
    pub metadata: Option<&'a str>,
}

fn zigzag(v: i32) -> u16 {
    ((v << 1) ^ (v >> 31)) as u16
}

fn oct_encode(n: [f64; 3]) -> [u8; 2] {
    let l1 = n[0].abs() + n[1].abs() + n[2].abs();
    let (mut x, mut y) = (n[0] / l1, n[1] / l1);
    if n[2] < 0.0 {
        let (ox, oy) = (x, y);
        x = (1.0 - oy.abs()) * if ox >= 0.0 { 1.0 } else { -1.0 };
        y = (1.0 - ox.abs()) * if oy >= 0.0 { 1.0 } else { -1.0 };
    }
    let q = |v: f64| ((v.clamp(-1.0, 1.0) * 0.5 + 0.5) * 255.0).round() as u8;
    [q(x), q(y)]
}

/// The point in ellipsoid-scaled space from which the horizon hides the whole tile (the
/// computation CesiumJS's EllipsoidalOccluder does), `None` if no such point exists.
fn horizon_occlusion_point(positions: &[[f64; 3]], center: [f64; 3]) -> Option<[f64; 3]> {
    let scale = |p: [f64; 3]| [p[0] / WGS84_A, p[1] / WGS84_A, p[2] / WGS84_B];
    let c = scale(center);
    let cl = (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt();
    if cl == 0.0 {
        return None;
    }
    let dir = [c[0] / cl, c[1] / cl, c[2] / cl];
    let mut max_mag = 0f64;
    for p in positions {
        let s = scale(*p);
        let mag_sq = (s[0] * s[0] + s[1] * s[1] + s[2] * s[2]).max(1.0);
        let mag = mag_sq.sqrt();
        let pd = [s[0] / mag, s[1] / mag, s[2] / mag];
        let cos_a = pd[0] * dir[0] + pd[1] * dir[1] + pd[2] * dir[2];
        let cr = [
            pd[1] * dir[2] - pd[2] * dir[1],
            pd[2] * dir[0] - pd[0] * dir[2],
            pd[0] * dir[1] - pd[1] * dir[0],
        ];
        let sin_a = (cr[0] * cr[0] + cr[1] * cr[1] + cr[2] * cr[2]).sqrt();
        let cos_b = 1.0 / mag;
        let sin_b = (mag_sq - 1.0).sqrt() * cos_b;
        let denom = cos_a * cos_b - sin_a * sin_b;
        if denom <= 0.0 {
            return None;
        }
        max_mag = max_mag.max(1.0 / denom);
    }
    Some([dir[0] * max_mag, dir[1] * max_mag, dir[2] * max_mag])
}

fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Encode one tile (not yet gzipped).
pub fn encode(mesh: &GridMesh, ext: &Extensions) -> Vec<u8> {
    let size = mesh.size;
    let last = (size - 1) as f64;
    let r = &mesh.rect_deg;
    // Vertices in order of first use, so indices can be high-water-mark encoded; triangles
    // counter-clockwise seen from above (u east, v north).
    let mut remap = vec![u32::MAX; size * size];
    let mut verts: Vec<usize> = Vec::new();
    let mut tris: Vec<[u32; 3]> = Vec::with_capacity(mesh.triangles.len());
    let uv = |g: u32| -> (f64, f64) {
        let g = g as usize;
        ((g % size) as f64, last - (g / size) as f64)
    };
    for t in mesh.triangles {
        let (a, b, c) = (uv(t[0]), uv(t[1]), uv(t[2]));
        let cross = (b.0 - a.0) * (c.1 - a.1) - (c.0 - a.0) * (b.1 - a.1);
        let t = if cross < 0.0 { [t[0], t[2], t[1]] } else { *t };
        let mut out = [0u32; 3];
        for k in 0..3 {
            let g = t[k] as usize;
            if remap[g] == u32::MAX {
                remap[g] = verts.len() as u32;
                verts.push(g);
            }
            out[k] = remap[g];
        }
        tris.push(out);
    }
    let hs: Vec<f64> = verts.iter().map(|g| mesh.heights_m[*g]).collect();
    let min_h = hs.iter().copied().fold(f64::INFINITY, f64::min);
    let max_h = hs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let q = |v: f64| (v * MAXQ / last).round() as i32;
    let us: Vec<i32> = verts.iter().map(|g| q((g % size) as f64)).collect();
    let vs: Vec<i32> = verts.iter().map(|g| q(last - (g / size) as f64)).collect();
    let hq: Vec<i32> = hs
        .iter()
        .map(|h| {
            if max_h > min_h {
                ((h - min_h) / (max_h - min_h) * MAXQ).round() as i32
            } else {
                0
            }
        })
        .collect();
    // Positions as a decoder sees them (latitude linear in v), for the bounding volumes.
    // u and v depend only on the grid column and row, so their trigonometry is tabled.
    let lon_sc: Vec<(f64, f64)> = (0..size)
        .map(|x| {
            (r.min_x + r.width() * f64::from(q(x as f64)) / MAXQ)
                .to_radians()
                .sin_cos()
        })
        .collect();
    let lat_t: Vec<(f64, f64, f64)> = (0..size)
        .map(|y| {
            let lat = (r.min_y + r.height() * f64::from(q(last - y as f64)) / MAXQ).to_radians();
            let (s, c) = lat.sin_cos();
            (s, c, WGS84_A / (1.0 - WGS84_E2 * s * s).sqrt())
        })
        .collect();
    let positions: Vec<[f64; 3]> = verts
        .iter()
        .zip(&hq)
        .map(|(g, hq)| {
            let (so, co) = lon_sc[g % size];
            let (sl, cl, n) = lat_t[g / size];
            let h = min_h + (max_h - min_h) * f64::from(*hq) / MAXQ;
            [
                (n + h) * cl * co,
                (n + h) * cl * so,
                (n * (1.0 - WGS84_E2) + h) * sl,
            ]
        })
        .collect();
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for p in &positions {
        for k in 0..3 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    let center = [
        (lo[0] + hi[0]) / 2.0,
        (lo[1] + hi[1]) / 2.0,
        (lo[2] + hi[2]) / 2.0,
    ];
    let radius = positions
        .iter()
        .map(|p| {
            ((p[0] - center[0]).powi(2) + (p[1] - center[1]).powi(2) + (p[2] - center[2]).powi(2))
                .sqrt()
        })
        .fold(0.0, f64::max)
        + 0.01;
    let hop = horizon_occlusion_point(&positions, center).unwrap_or([f64::NAN; 3]);

    let mut out = Vec::with_capacity(88 + verts.len() * 8 + tris.len() * 6);
    for v in center {
        put_f64(&mut out, v);
    }
    out.extend_from_slice(&(min_h as f32).to_le_bytes());
    out.extend_from_slice(&(max_h as f32).to_le_bytes());
    for v in center {
        put_f64(&mut out, v);
    }
    put_f64(&mut out, radius);
    for v in hop {
        put_f64(&mut out, v);
    }
    let n = verts.len();
    out.extend_from_slice(&(n as u32).to_le_bytes());
    for arr in [&us, &vs, &hq] {
        let mut prev = 0;
        for v in arr.iter() {
            out.extend_from_slice(&zigzag(v - prev).to_le_bytes());
            prev = *v;
        }
    }
    let wide = n > 65_536;
    let put_index = |out: &mut Vec<u8>, i: u32| {
        if wide {
            out.extend_from_slice(&i.to_le_bytes());
        } else {
            out.extend_from_slice(&(i as u16).to_le_bytes());
        }
    };
    if wide && out.len() % 4 != 0 {
        out.resize(out.len() + (4 - out.len() % 4), 0);
    }
    out.extend_from_slice(&(tris.len() as u32).to_le_bytes());
    let mut highest = 0u32;
    for t in &tris {
        for &i in t {
            let code = highest - i;
            if code == 0 {
                highest += 1;
            }
            put_index(&mut out, code);
        }
    }
    // Edge lists: west (u = 0), south (v = 0), east (u = max), north (v = max).
    let edge = |pick: &dyn Fn(usize) -> bool, key: &dyn Fn(usize) -> i32| -> Vec<u32> {
        let mut e: Vec<u32> = (0..n).filter(|i| pick(*i)).map(|i| i as u32).collect();
        e.sort_by_key(|i| key(*i as usize));
        e
    };
    let west = edge(&|i| us[i] == 0, &|i| vs[i]);
    let south = edge(&|i| vs[i] == 0, &|i| us[i]);
    let east = edge(&|i| us[i] == MAXQ as i32, &|i| vs[i]);
    let north = edge(&|i| vs[i] == MAXQ as i32, &|i| us[i]);
    for e in [&west, &south, &east, &north] {
        out.extend_from_slice(&(e.len() as u32).to_le_bytes());
        for i in e.iter() {
            put_index(&mut out, *i);
        }
    }
    if ext.normals {
        if let Some(normals) = mesh.normals {
            out.push(1);
            out.extend_from_slice(&((2 * n) as u32).to_le_bytes());
            for g in &verts {
                out.extend_from_slice(&oct_encode(normals[*g]));
            }
        }
    }
    if let Some(mask) = ext.watermask {
        out.push(2);
        out.extend_from_slice(&(mask.len() as u32).to_le_bytes());
        out.extend_from_slice(mask);
    }
    if let Some(json) = ext.metadata {
        out.push(4);
        out.extend_from_slice(&((json.len() + 4) as u32).to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(json.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecef_of_known_points() {
        let p = ecef(0.0, 0.0, 0.0);
        assert!((p[0] - WGS84_A).abs() < 1e-6);
        let p = ecef(0.0, 90.0, 0.0);
        assert!((p[2] - WGS84_B).abs() < 1e-6);
    }

    #[test]
    fn zigzag_and_oct() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(oct_encode([0.0, 0.0, 1.0]), [128, 128]);
    }

    #[test]
    fn horizon_point_lies_outside_the_ellipsoid() {
        let pts: Vec<[f64; 3]> = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]
            .iter()
            .map(|(lo, la)| ecef(*lo, *la, 100.0))
            .collect();
        let c = ecef(0.5, 0.5, 100.0);
        let h = horizon_occlusion_point(&pts, c).expect("point");
        let r = (h[0] * h[0] + h[1] * h[1] + h[2] * h[2]).sqrt();
        assert!(r > 1.0 && r < 1.01, "{r}");
    }
}
