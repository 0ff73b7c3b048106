//! Planar polygons with holes to triangles: each polygon is projected onto its own plane
//! (Newell normal of the exterior ring), cut by earcut, and every triangle is wound
//! counter-clockwise around that normal, so faces point where the polygon points.

use super::reader::Polygon;
use earcut::Earcut;

/// Newell's normal of a ring (not normalised); zero for degenerate rings.
pub fn newell(ring: &[[f64; 3]]) -> [f64; 3] {
    let mut n = [0.0; 3];
    for (i, a) in ring.iter().enumerate() {
        let b = ring[(i + 1) % ring.len()];
        n[0] += (a[1] - b[1]) * (a[2] + b[2]);
        n[1] += (a[2] - b[2]) * (a[0] + b[0]);
        n[2] += (a[0] - b[0]) * (a[1] + b[1]);
    }
    n
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// A triangulated polygon: its vertices (exterior then holes) and triangle indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Triangulated {
    pub vertices: Vec<[f64; 3]>,
    pub indices: Vec<u32>,
    /// Unit normal of the polygon.
    pub normal: [f64; 3],
}

/// Triangulate one polygon; `None` when it has no area (collinear or repeated points).
pub fn triangulate(p: &Polygon, earcut: &mut Earcut<f64>) -> Option<Triangulated> {
    let n = newell(&p.exterior);
    let len = dot(n, n).sqrt();
    if len.is_nan() || len <= 1e-12 {
        return None;
    }
    let normal = [n[0] / len, n[1] / len, n[2] / len];
    // A basis of the plane; coordinates relative to the first vertex keep precision
    // for projected CRSs with large offsets.
    let helper = if normal[0].abs() < 0.9 {
        [1.0, 0.0, 0.0]
    } else {
        [0.0, 1.0, 0.0]
    };
    let u = cross(helper, normal);
    let ul = dot(u, u).sqrt();
    let u = [u[0] / ul, u[1] / ul, u[2] / ul];
    let v = cross(normal, u);
    let origin = p.exterior[0];
    let mut vertices = p.exterior.clone();
    let mut holes = Vec::with_capacity(p.interiors.len());
    for ring in &p.interiors {
        holes.push(vertices.len() as u32);
        vertices.extend_from_slice(ring);
    }
    let flat: Vec<[f64; 2]> = vertices
        .iter()
        .map(|q| {
            let d = sub(*q, origin);
            [dot(d, u), dot(d, v)]
        })
        .collect();
    let mut indices: Vec<u32> = Vec::new();
    earcut.earcut(flat.iter().copied(), &holes, &mut indices);
    if indices.is_empty() {
        return None;
    }
    for t in indices.chunks_exact_mut(3) {
        let [a, b, c] = [t[0], t[1], t[2]].map(|i| vertices[i as usize]);
        if dot(cross(sub(b, a), sub(c, a)), normal) < 0.0 {
            t.swap(1, 2);
        }
    }
    Some(Triangulated {
        vertices,
        indices,
        normal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(t: &Triangulated) -> f64 {
        t.indices
            .chunks(3)
            .map(|c| {
                let [a, b, cc] = [c[0], c[1], c[2]].map(|i| t.vertices[i as usize]);
                dot(cross(sub(b, a), sub(cc, a)), t.normal) / 2.0
            })
            .sum()
    }

    #[test]
    fn a_wall_with_a_window_keeps_its_area_and_faces_out() {
        // A 10 × 6 m wall in the x-z plane at UTM-sized offsets, 2 × 1.5 m window.
        let (x0, y0) = (458_877.0, 5_438_353.0);
        let wall = Polygon {
            gml_id: None,
            lod: Some(2),
            surface: Some("WallSurface".into()),
            exterior: vec![
                [x0, y0, 0.0],
                [x0 + 10.0, y0, 0.0],
                [x0 + 10.0, y0, 6.0],
                [x0, y0, 6.0],
            ],
            interiors: vec![vec![
                [x0 + 2.0, y0, 2.0],
                [x0 + 2.0, y0, 3.5],
                [x0 + 4.0, y0, 3.5],
                [x0 + 4.0, y0, 2.0],
            ]],
            ..Default::default()
        };
        let t = triangulate(&wall, &mut Earcut::new()).unwrap();
        assert!((area(&t) - 57.0).abs() < 1e-6, "{}", area(&t));
        // Counter-clockwise seen from -y: the wall faces -y.
        assert!((t.normal[1] + 1.0).abs() < 1e-12, "{:?}", t.normal);
        assert_eq!(t.indices.len() / 3, 8);
    }

    #[test]
    fn degenerate_polygons_are_refused() {
        let line = Polygon {
            gml_id: None,
            lod: None,
            surface: None,
            exterior: vec![[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0]],
            interiors: vec![],
            ..Default::default()
        };
        assert!(triangulate(&line, &mut Earcut::new()).is_none());
    }
}
