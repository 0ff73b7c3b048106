//! Triangle meshes: the IR between model readers (glTF, CityGML) and the mesh tiler.

use crate::Aabb;
use serde::{Deserialize, Serialize};

/// One per-vertex attribute beyond position, normal and tangent, named as glTF names it
/// (`TEXCOORD_0`, `COLOR_0`, `_FEATURE_ID_0`, …). Values are plain floats: normalised
/// integers are already divided out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VertexColumn {
    pub name: String,
    /// Values per vertex (1 to 4).
    pub components: u8,
    pub values: Vec<f32>,
}

/// Triangles sharing one material. Positions are f64 metres in the frame the caller
/// states; indices are counter-clockwise triangles.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TriangleMesh {
    pub positions: Vec<[f64; 3]>,
    pub indices: Vec<u32>,
    pub normals: Option<Vec<[f32; 3]>>,
    pub tangents: Option<Vec<[f32; 4]>>,
    pub columns: Vec<VertexColumn>,
    /// Index into the source's material list; `None` draws with the default material.
    pub material: Option<u32>,
}

impl TriangleMesh {
    pub fn vertex_count(&self) -> usize {
        self.positions.len()
    }

    pub fn triangle_count(&self) -> usize {
        self.indices.len() / 3
    }

    pub fn bounds(&self) -> Aabb {
        Aabb::from_points(&self.positions)
    }

    /// Every column has one entry per vertex and every index names a vertex.
    pub fn is_consistent(&self) -> bool {
        let n = self.positions.len();
        self.indices.len().is_multiple_of(3)
            && self.indices.iter().all(|&i| (i as usize) < n)
            && self.normals.as_ref().is_none_or(|v| v.len() == n)
            && self.tangents.as_ref().is_none_or(|v| v.len() == n)
            && self.columns.iter().all(|c| {
                (1..=4).contains(&c.components) && c.values.len() == n * c.components as usize
            })
    }

    /// A mesh of the given triangles (as indices into this mesh's triangle list) with only
    /// the vertices they use, in first-use order.
    pub fn subset(&self, triangles: impl IntoIterator<Item = u32>) -> TriangleMesh {
        let mut indices = Vec::new();
        for t in triangles {
            let t = t as usize * 3;
            indices.extend_from_slice(&self.indices[t..t + 3]);
        }
        self.with_indices(indices)
    }

    /// A mesh drawing `indices` (into this mesh's vertices) with only the vertices used.
    pub fn with_indices(&self, mut indices: Vec<u32>) -> TriangleMesh {
        const UNSEEN: u32 = u32::MAX;
        let mut remap = vec![UNSEEN; self.positions.len()];
        let mut order = Vec::new();
        for i in indices.iter_mut() {
            let slot = &mut remap[*i as usize];
            if *slot == UNSEEN {
                *slot = order.len() as u32;
                order.push(*i as usize);
            }
            *i = *slot;
        }
        let pick = |v: &[f32], k: usize| -> Vec<f32> {
            let mut out = Vec::with_capacity(order.len() * k);
            for &o in &order {
                out.extend_from_slice(&v[o * k..o * k + k]);
            }
            out
        };
        TriangleMesh {
            positions: order.iter().map(|&o| self.positions[o]).collect(),
            indices,
            normals: self
                .normals
                .as_ref()
                .map(|v| order.iter().map(|&o| v[o]).collect()),
            tangents: self
                .tangents
                .as_ref()
                .map(|v| order.iter().map(|&o| v[o]).collect()),
            columns: self
                .columns
                .iter()
                .map(|c| VertexColumn {
                    name: c.name.clone(),
                    components: c.components,
                    values: pick(&c.values, c.components as usize),
                })
                .collect(),
            material: self.material,
        }
    }

    /// Append `other`'s triangles. Both meshes must carry the same kinds of attributes
    /// (same column names in the same order, normals and tangents alike); `false` and no
    /// change otherwise.
    pub fn append(&mut self, other: &TriangleMesh) -> bool {
        let same_columns = self.columns.len() == other.columns.len()
            && self
                .columns
                .iter()
                .zip(&other.columns)
                .all(|(a, b)| a.name == b.name && a.components == b.components);
        if !same_columns
            || self.normals.is_some() != other.normals.is_some()
            || self.tangents.is_some() != other.tangents.is_some()
        {
            return false;
        }
        let base = self.positions.len() as u32;
        self.positions.extend_from_slice(&other.positions);
        self.indices.extend(other.indices.iter().map(|i| i + base));
        if let (Some(a), Some(b)) = (self.normals.as_mut(), other.normals.as_ref()) {
            a.extend_from_slice(b);
        }
        if let (Some(a), Some(b)) = (self.tangents.as_mut(), other.tangents.as_ref()) {
            a.extend_from_slice(b);
        }
        for (a, b) in self.columns.iter_mut().zip(&other.columns) {
            a.values.extend_from_slice(&b.values);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quad() -> TriangleMesh {
        TriangleMesh {
            positions: vec![
                [0.0, 0.0, 0.0],
                [1.0, 0.0, 0.0],
                [1.0, 1.0, 0.0],
                [0.0, 1.0, 0.0],
            ],
            indices: vec![0, 1, 2, 0, 2, 3],
            normals: Some(vec![[0.0, 0.0, 1.0]; 4]),
            tangents: None,
            columns: vec![VertexColumn {
                name: "TEXCOORD_0".into(),
                components: 2,
                values: vec![0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0],
            }],
            material: Some(2),
        }
    }

    #[test]
    fn subset_keeps_only_used_vertices() {
        let m = quad();
        assert!(m.is_consistent());
        let s = m.subset([1]);
        assert!(s.is_consistent());
        assert_eq!(s.indices, vec![0, 1, 2]);
        assert_eq!(
            s.positions,
            vec![[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
        );
        assert_eq!(s.columns[0].values, vec![0.0, 0.0, 1.0, 1.0, 0.0, 1.0]);
        assert_eq!(s.material, Some(2));
    }

    #[test]
    fn append_offsets_indices_and_refuses_mismatched_attributes() {
        let mut a = quad();
        let b = quad();
        assert!(a.append(&b));
        assert_eq!(a.triangle_count(), 4);
        assert_eq!(&a.indices[6..], &[4, 5, 6, 4, 6, 7]);
        assert!(a.is_consistent());
        let mut c = quad();
        c.normals = None;
        assert!(!a.append(&c));
        assert_eq!(a.triangle_count(), 4);
    }
}
