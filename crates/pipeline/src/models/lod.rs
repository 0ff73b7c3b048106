//! Levels of detail for a triangle model.
//!
//! Leaves: the triangles are split top-down (median of triangle centroids along the
//! longest axis, twice per level, so up to four children) until each piece holds at most
//! the triangle budget; leaves keep the original triangles and attributes untouched.
//! Parents: bottom-up, the children's geometry merged per style and simplified with
//! meshoptimizer to about a quarter, borders locked so neighbouring tiles drawn at
//! different levels still meet. A parent's geometric error is the simplifier's measured
//! error (metres) plus the largest error below it.

use meshopt::SimplifyOptions;
use rayon::prelude::*;
use std::collections::BTreeMap;
use tessera_model::{Aabb, TriangleMesh};

/// One tile of the tree.
#[derive(Debug, Clone)]
pub struct TileNode {
    /// The tile's own content, in the tileset frame.
    pub meshes: Vec<TriangleMesh>,
    /// Bounds of the content and of every tile below.
    pub bounds: Aabb,
    /// Metres of error when this tile is drawn instead of its children (0 for leaves).
    pub error_m: f64,
    /// Levels between this tile and its deepest leaf (0 for a leaf).
    pub height: u32,
    pub children: Vec<TileNode>,
}

impl TileNode {
    pub fn triangles(&self) -> usize {
        self.meshes.iter().map(TriangleMesh::triangle_count).sum()
    }

    /// Tiles in the tree.
    pub fn count(&self) -> usize {
        1 + self.children.iter().map(TileNode::count).sum::<usize>()
    }

    /// Triangles of the leaves (the full-detail level).
    pub fn leaf_triangles(&self) -> usize {
        if self.children.is_empty() {
            self.triangles()
        } else {
            self.children.iter().map(TileNode::leaf_triangles).sum()
        }
    }
}

#[derive(Clone, Copy)]
struct TriRef {
    mesh: u32,
    tri: u32,
    centroid: [f64; 3],
}

fn refs_of(meshes: &[TriangleMesh]) -> Vec<TriRef> {
    let mut out = Vec::new();
    for (m, mesh) in meshes.iter().enumerate() {
        for (t, tri) in mesh.indices.chunks_exact(3).enumerate() {
            let mut c = [0.0; 3];
            for &v in tri {
                let p = mesh.positions[v as usize];
                for k in 0..3 {
                    c[k] += p[k] / 3.0;
                }
            }
            out.push(TriRef {
                mesh: m as u32,
                tri: t as u32,
                centroid: c,
            });
        }
    }
    out
}

/// Split at the median centroid along the longest axis; ties broken by triangle identity
/// so the result does not depend on thread timing.
fn halve(mut refs: Vec<TriRef>) -> (Vec<TriRef>, Vec<TriRef>) {
    let mut b = Aabb::EMPTY;
    for r in &refs {
        b.extend(r.centroid);
    }
    let s = b.size();
    let axis = if s[0] >= s[1] && s[0] >= s[2] {
        0
    } else if s[1] >= s[2] {
        1
    } else {
        2
    };
    let mid = refs.len() / 2;
    refs.select_nth_unstable_by(mid, |a, b| {
        a.centroid[axis]
            .total_cmp(&b.centroid[axis])
            .then(a.mesh.cmp(&b.mesh))
            .then(a.tri.cmp(&b.tri))
    });
    let right = refs.split_off(mid);
    (refs, right)
}

/// Merge meshes of the same style whose attributes match (fewer draw calls).
pub fn merge_by_style(meshes: impl IntoIterator<Item = TriangleMesh>) -> Vec<TriangleMesh> {
    let mut out: Vec<TriangleMesh> = Vec::new();
    for m in meshes {
        let mut merged = false;
        for o in out.iter_mut() {
            if o.material == m.material
                && o.positions.len() + m.positions.len() < u32::MAX as usize
                && o.append(&m)
            {
                merged = true;
                break;
            }
        }
        if !merged {
            out.push(m);
        }
    }
    out
}

fn bounds_of(meshes: &[TriangleMesh]) -> Aabb {
    meshes.iter().fold(Aabb::EMPTY, |b, m| b.union(&m.bounds()))
}

fn leaf(meshes: &[TriangleMesh], refs: &[TriRef]) -> TileNode {
    let mut by_mesh: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for r in refs {
        by_mesh.entry(r.mesh).or_default().push(r.tri);
    }
    let parts = by_mesh.into_iter().map(|(m, mut tris)| {
        tris.sort_unstable();
        meshes[m as usize].subset(tris)
    });
    let content = merge_by_style(parts);
    TileNode {
        bounds: bounds_of(&content),
        meshes: content,
        error_m: 0.0,
        height: 0,
        children: Vec::new(),
    }
}

/// Simplify one mesh to about `target` triangles; returns the mesh and the error (metres).
pub fn simplify(mesh: &TriangleMesh, target: usize) -> (TriangleMesh, f64) {
    let b = mesh.bounds();
    let c = b.center();
    let local: Vec<[f32; 3]> = mesh
        .positions
        .iter()
        .map(|p| {
            [
                (p[0] - c[0]) as f32,
                (p[1] - c[1]) as f32,
                (p[2] - c[2]) as f32,
            ]
        })
        .collect();
    let mut err = 0.0f32;
    let indices = meshopt::simplify_decoder(
        &mesh.indices,
        &local,
        target.max(1) * 3,
        (b.diagonal() as f32).max(f32::MIN_POSITIVE),
        SimplifyOptions::LockBorder | SimplifyOptions::ErrorAbsolute | SimplifyOptions::Prune,
        Some(&mut err),
    );
    (mesh.with_indices(indices), err as f64)
}

fn parent(children: Vec<TileNode>) -> TileNode {
    let total: usize = children.iter().map(TileNode::triangles).sum();
    let target_total = (total / 4).max(1);
    let merged = merge_by_style(children.iter().flat_map(|c| c.meshes.iter().cloned()));
    let simplified: Vec<(TriangleMesh, f64)> = merged
        .par_iter()
        .map(|m| {
            let share = (m.triangle_count() * target_total).div_ceil(total.max(1));
            simplify(m, share)
        })
        .collect();
    let mut error_m: f64 = 0.0;
    let mut content = Vec::new();
    for (m, e) in simplified {
        error_m = error_m.max(e);
        if !m.indices.is_empty() {
            content.push(m);
        }
    }
    let below = children.iter().map(|c| c.error_m).fold(0.0, f64::max);
    let bounds = children
        .iter()
        .fold(bounds_of(&content), |b, c| b.union(&c.bounds));
    TileNode {
        meshes: content,
        bounds,
        error_m: error_m + below,
        height: 1 + children.iter().map(|c| c.height).max().unwrap_or(0),
        children,
    }
}

fn build_refs(meshes: &[TriangleMesh], refs: Vec<TriRef>, max_triangles: usize) -> TileNode {
    if refs.len() <= max_triangles {
        return leaf(meshes, &refs);
    }
    let (a, b) = halve(refs);
    let mut groups = Vec::with_capacity(4);
    for half in [a, b] {
        if half.len() > max_triangles {
            let (x, y) = halve(half);
            groups.push(x);
            groups.push(y);
        } else {
            groups.push(half);
        }
    }
    groups.retain(|g| !g.is_empty());
    let children: Vec<TileNode> = groups
        .into_par_iter()
        .map(|g| build_refs(meshes, g, max_triangles))
        .collect();
    parent(children)
}

/// The tile tree of `meshes` with at most `max_triangles` per leaf.
pub fn build(meshes: &[TriangleMesh], max_triangles: usize) -> TileNode {
    build_refs(meshes, refs_of(meshes), max_triangles.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat grid of `n`×`n` quads.
    pub fn grid(n: u32) -> TriangleMesh {
        let mut positions = Vec::new();
        for y in 0..=n {
            for x in 0..=n {
                positions.push([x as f64, y as f64, ((x * 7 + y * 3) % 5) as f64 * 0.01]);
            }
        }
        let mut indices = Vec::new();
        let w = n + 1;
        for y in 0..n {
            for x in 0..n {
                let i = y * w + x;
                indices.extend_from_slice(&[i, i + 1, i + w, i + 1, i + w + 1, i + w]);
            }
        }
        TriangleMesh {
            positions,
            indices,
            material: Some(0),
            ..Default::default()
        }
    }

    fn check(node: &TileNode, leaves: &mut usize) {
        for m in &node.meshes {
            assert!(m.is_consistent());
            for p in &m.positions {
                for k in 0..3 {
                    assert!(p[k] >= node.bounds.min[k] && p[k] <= node.bounds.max[k]);
                }
            }
        }
        if node.children.is_empty() {
            assert_eq!(node.error_m, 0.0);
            *leaves += node.triangles();
        }
        for c in &node.children {
            assert!(c.error_m <= node.error_m);
            check(c, leaves);
        }
    }

    #[test]
    fn leaves_keep_every_triangle_and_parents_shrink() {
        let g = grid(100); // 20,000 triangles
        let tree = build(std::slice::from_ref(&g), 3000);
        let mut leaves = 0;
        check(&tree, &mut leaves);
        assert_eq!(leaves, 20_000);
        assert!(tree.height >= 2);
        assert!(tree.triangles() < 20_000 / 2, "{}", tree.triangles());
        assert!(tree.error_m > 0.0);
        // Deterministic.
        let again = build(std::slice::from_ref(&g), 3000);
        assert_eq!(again.meshes, tree.meshes);
    }

    #[test]
    fn a_small_model_is_one_lossless_tile() {
        let g = grid(10);
        let tree = build(std::slice::from_ref(&g), 1000);
        assert!(tree.children.is_empty());
        assert_eq!(tree.meshes.len(), 1);
        let corners = |m: &TriangleMesh| -> Vec<[f64; 3]> {
            m.indices.iter().map(|&i| m.positions[i as usize]).collect()
        };
        assert_eq!(corners(&tree.meshes[0]), corners(&g));
    }
}
