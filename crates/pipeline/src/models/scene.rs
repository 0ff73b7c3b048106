//! From a glTF asset to triangle meshes: walk the scene's node hierarchy, read (or
//! Draco-decode) each primitive once, and bake every instance's transform into f64
//! positions. Materials, textures and samplers are kept as the input's JSON.

use super::container::{self, Asset, ImageData};
use super::{accessor, draco};
use crate::error::ModelError;
use crate::refs::{Budget, RefRoot};
use crate::report::Warnings;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tessera_model::{TriangleMesh, VertexColumn};

/// How a group of triangles is drawn: a material of the source and the primitive's own
/// extensions that must travel with its vertices (EXT_mesh_features).
#[derive(Debug, Clone, PartialEq)]
pub struct Style {
    pub material: Option<usize>,
    pub extensions: serde_json::Map<String, Value>,
}

/// A model read into meshes. Mesh positions are in the model's own axes (glTF: y up) and
/// units, with node transforms applied; `TriangleMesh::material` indexes `styles`.
pub struct ModelSource {
    pub path: PathBuf,
    pub meshes: Vec<TriangleMesh>,
    pub styles: Vec<Style>,
    pub materials: Vec<Value>,
    pub textures: Vec<Value>,
    pub samplers: Vec<Value>,
    pub images: Vec<Option<ImageData>>,
    /// Input extensions the output must still require (e.g. KHR_texture_transform).
    pub required: Vec<String>,
    pub triangles: u64,
}

/// Extensions this reader understands well enough to accept when required.
const READABLE: &[&str] = &[
    "KHR_draco_mesh_compression",
    "KHR_mesh_quantization",
    "KHR_texture_transform",
    "KHR_texture_basisu",
    "EXT_texture_webp",
    "KHR_materials_emissive_strength",
];

/// Extensions that are decoded here and so vanish from the output.
const DECODED: &[&str] = &["KHR_draco_mesh_compression", "KHR_mesh_quantization"];

type Mat4 = [[f64; 4]; 4];

const IDENTITY: Mat4 = [
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
];

/// Row-major product a·b.
fn mul(a: &Mat4, b: &Mat4) -> Mat4 {
    let mut r = [[0.0; 4]; 4];
    for i in 0..4 {
        for j in 0..4 {
            r[i][j] = (0..4).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    r
}

/// A node's local matrix (row-major) from `matrix` or translation/rotation/scale.
fn local_matrix(node: &gltf::json::Node) -> Mat4 {
    if let Some(m) = node.matrix {
        // glTF stores column-major.
        let mut r = [[0.0; 4]; 4];
        for (c, col) in m.chunks(4).enumerate() {
            for (row, v) in col.iter().enumerate() {
                r[row][c] = *v as f64;
            }
        }
        return r;
    }
    let t = node.translation.unwrap_or([0.0; 3]).map(f64::from);
    let q = node
        .rotation
        .map(|q| q.0)
        .unwrap_or([0.0, 0.0, 0.0, 1.0])
        .map(f64::from);
    let s = node.scale.unwrap_or([1.0; 3]).map(f64::from);
    let n = (q.iter().map(|v| v * v).sum::<f64>()).sqrt();
    let [x, y, z, w] = if n > 0.0 {
        q.map(|v| v / n)
    } else {
        [0.0, 0.0, 0.0, 1.0]
    };
    let rot = [
        [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y - z * w),
            2.0 * (x * z + y * w),
        ],
        [
            2.0 * (x * y + z * w),
            1.0 - 2.0 * (x * x + z * z),
            2.0 * (y * z - x * w),
        ],
        [
            2.0 * (x * z - y * w),
            2.0 * (y * z + x * w),
            1.0 - 2.0 * (x * x + y * y),
        ],
    ];
    let mut r = IDENTITY;
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = rot[i][j] * s[j];
        }
        r[i][3] = t[i];
    }
    r
}

/// The 3×3 inverse transpose (for normals) and the determinant of a matrix's linear part.
pub fn normal_matrix(m: &[[f64; 3]; 3]) -> ([[f64; 3]; 3], f64) {
    let c = |r: usize, k: usize| {
        let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
        let (k1, k2) = ((k + 1) % 3, (k + 2) % 3);
        m[r1][k1] * m[r2][k2] - m[r1][k2] * m[r2][k1]
    };
    let det = m[0][0] * c(0, 0) + m[0][1] * c(0, 1) + m[0][2] * c(0, 2);
    // inverse transpose = cofactor matrix / det; the scale does not matter for normals
    // but its sign does.
    let s = if det < 0.0 { -1.0 } else { 1.0 };
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = c(i, j) * s;
        }
    }
    (r, det)
}

pub fn apply3(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

pub fn normalize(v: [f64; 3]) -> [f32; 3] {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if n > 0.0 {
        [(v[0] / n) as f32, (v[1] / n) as f32, (v[2] / n) as f32]
    } else {
        [0.0, 0.0, 1.0]
    }
}

/// One primitive's geometry as stored (before any node transform).
struct PrimGeom {
    positions: Vec<[f32; 3]>,
    normals: Option<Vec<[f32; 3]>>,
    tangents: Option<Vec<[f32; 4]>>,
    columns: Vec<VertexColumn>,
    indices: Vec<u32>,
    style: u32,
}

struct Reader<'a> {
    asset: &'a Asset,
    warnings: &'a Warnings,
    styles: Vec<Style>,
    prims: HashMap<(usize, usize), Option<std::rc::Rc<PrimGeom>>>,
    meshes: Vec<TriangleMesh>,
    dropped_attributes: std::collections::BTreeSet<String>,
    skipped_modes: u64,
    /// Bytes the baked instances hold so far (checked against the budget before each).
    baked_bytes: u128,
}

fn data_err(path: &Path, what: String, reason: String) -> ModelError {
    ModelError::Data {
        path: path.into(),
        what,
        reason,
    }
}

fn to_triangles(mode: u64, idx: Vec<u32>) -> Vec<u32> {
    match mode {
        5 => {
            let mut out = Vec::with_capacity(idx.len().saturating_sub(2) * 3);
            for i in 2..idx.len() {
                let (a, b, c) = (idx[i - 2], idx[i - 1], idx[i]);
                if i % 2 == 0 {
                    out.extend_from_slice(&[a, b, c]);
                } else {
                    out.extend_from_slice(&[b, a, c]);
                }
            }
            out
        }
        6 => {
            let mut out = Vec::with_capacity(idx.len().saturating_sub(2) * 3);
            for i in 2..idx.len() {
                out.extend_from_slice(&[idx[0], idx[i - 1], idx[i]]);
            }
            out
        }
        _ => {
            let mut idx = idx;
            idx.truncate(idx.len() / 3 * 3);
            idx
        }
    }
}

impl Reader<'_> {
    fn style(&mut self, prim: &Value) -> u32 {
        let mut extensions = serde_json::Map::new();
        if let Some(f) = prim.pointer("/extensions/EXT_mesh_features") {
            extensions.insert("EXT_mesh_features".into(), f.clone());
        }
        let s = Style {
            material: prim["material"].as_u64().map(|m| m as usize),
            extensions,
        };
        match self.styles.iter().position(|x| *x == s) {
            Some(i) => i as u32,
            None => {
                self.styles.push(s);
                (self.styles.len() - 1) as u32
            }
        }
    }

    fn read_prim(&mut self, mesh: usize, p: usize) -> Result<Option<PrimGeom>, ModelError> {
        let path = &self.asset.path;
        let prim = &self.asset.raw["meshes"][mesh]["primitives"][p];
        let what = format!("mesh {mesh} primitive {p}");
        let mode = prim["mode"].as_u64().unwrap_or(4);
        if !(4..=6).contains(&mode) {
            self.skipped_modes += 1;
            return Ok(None);
        }
        let Some(attrs) = prim["attributes"].as_object() else {
            return Err(data_err(path, what, "it has no attributes".into()));
        };
        let mut named: Vec<(String, usize)> = Vec::new();
        for (name, acc) in attrs {
            let Some(a) = acc.as_u64() else {
                return Err(data_err(
                    path,
                    what,
                    format!("attribute {name} is not an accessor index"),
                ));
            };
            if name.starts_with("JOINTS_") || name.starts_with("WEIGHTS_") {
                self.dropped_attributes.insert(name.clone());
                continue;
            }
            named.push((name.clone(), a as usize));
        }
        let draco = prim.pointer("/extensions/KHR_draco_mesh_compression");
        let (mut values, indices) = match draco {
            Some(ext) => {
                let d = draco::decode(self.asset, ext, &named)
                    .map_err(|r| data_err(path, what.clone(), r))?;
                (d.attributes, Some(d.indices))
            }
            None => (Vec::new(), None),
        };
        for (name, acc) in &named {
            if values.iter().any(|(n, _, _)| n == name) {
                continue;
            }
            let (v, k) = accessor::read_floats(self.asset, *acc)
                .map_err(|r| data_err(path, what.clone(), r))?;
            values.push((name.clone(), k, v));
        }
        let Some(pos_i) = values.iter().position(|(n, _, _)| n == "POSITION") else {
            self.warnings.push(
                "model-primitive-skipped",
                format!("{}: {what} has no POSITION; skipped", path.display()),
            );
            return Ok(None);
        };
        let (_, k, pos) = values.swap_remove(pos_i);
        if k != 3 {
            return Err(data_err(path, what, "POSITION is not VEC3".into()));
        }
        let n = pos.len() / 3;
        let positions: Vec<[f32; 3]> = pos.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        let mut normals = None;
        let mut tangents = None;
        let mut columns = Vec::new();
        for (name, k, v) in values {
            if v.len() != n * k {
                return Err(data_err(
                    path,
                    what,
                    format!(
                        "{name} has {} elements but POSITION has {n}",
                        v.len() / k.max(1)
                    ),
                ));
            }
            match (name.as_str(), k) {
                ("NORMAL", 3) => {
                    normals = Some(v.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
                }
                ("TANGENT", 4) => {
                    tangents = Some(
                        v.chunks_exact(4)
                            .map(|c| [c[0], c[1], c[2], c[3]])
                            .collect(),
                    )
                }
                ("NORMAL" | "TANGENT", _) => {
                    return Err(data_err(path, what, format!("{name} has {k} components")))
                }
                _ => columns.push(VertexColumn {
                    name,
                    components: k as u8,
                    values: v,
                }),
            }
        }
        columns.sort_by(|a, b| a.name.cmp(&b.name));
        let indices = match (indices, prim["indices"].as_u64()) {
            (Some(i), _) => i,
            (None, Some(acc)) => accessor::read_indices(self.asset, acc as usize, n)
                .map_err(|r| data_err(path, what.clone(), r))?,
            (None, None) => (0..n as u32).collect(),
        };
        let indices = to_triangles(mode, indices);
        if prim.get("targets").is_some() {
            self.warnings.push(
                "model-morph-targets-ignored",
                format!(
                    "{}: {what}: morph targets dropped; the base shape is tiled",
                    path.display()
                ),
            );
        }
        let style = self.style(prim);
        Ok(Some(PrimGeom {
            positions,
            normals,
            tangents,
            columns,
            indices,
            style,
        }))
    }

    /// Memory one baked copy of `g` takes, counted against the budget before it is made.
    fn claim(&mut self, node: usize, g: &PrimGeom) -> Result<(), ModelError> {
        let vertices = g.positions.len() as u128;
        let per_vertex =
            24 + g.normals.as_ref().map_or(0, |_| 12) + g.tangents.as_ref().map_or(0, |_| 16);
        let columns: u128 = g.columns.iter().map(|c| c.values.len() as u128 * 4).sum();
        let bytes = vertices * per_vertex + columns + g.indices.len() as u128 * 4;
        self.baked_bytes += bytes;
        let total = self.baked_bytes + u128::from(self.asset.buffer_bytes);
        self.asset
            .budget
            .check(
                total,
                &format!("baking node {node}'s instance (with those before it)"),
            )
            .map_err(|reason| ModelError::Budget {
                path: self.asset.path.clone(),
                reason,
            })
    }

    fn instance(&mut self, node: usize, mesh: usize, world: &Mat4) -> Result<(), ModelError> {
        let count = self.asset.raw["meshes"][mesh]["primitives"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0);
        let lin = [
            [world[0][0], world[0][1], world[0][2]],
            [world[1][0], world[1][1], world[1][2]],
            [world[2][0], world[2][1], world[2][2]],
        ];
        let (nm, det) = normal_matrix(&lin);
        for p in 0..count {
            let geom = match self.prims.get(&(mesh, p)) {
                Some(g) => g.clone(),
                None => {
                    let g = self.read_prim(mesh, p)?.map(std::rc::Rc::new);
                    self.prims.insert((mesh, p), g.clone());
                    g
                }
            };
            let Some(g) = geom else { continue };
            self.claim(node, &g)?;
            let positions: Vec<[f64; 3]> = g
                .positions
                .iter()
                .map(|v| {
                    let v = [v[0] as f64, v[1] as f64, v[2] as f64];
                    let r = apply3(&lin, v);
                    [r[0] + world[0][3], r[1] + world[1][3], r[2] + world[2][3]]
                })
                .collect();
            if positions.iter().flatten().any(|v| !v.is_finite()) {
                return Err(data_err(
                    &self.asset.path,
                    format!("node {node}"),
                    format!("its transform moves mesh {mesh}'s vertices to infinity"),
                ));
            }
            let normals = g.normals.as_ref().map(|ns| {
                ns.iter()
                    .map(|n| normalize(apply3(&nm, n.map(f64::from))))
                    .collect()
            });
            let tangents = g.tangents.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| {
                        let d = normalize(apply3(&lin, [t[0] as f64, t[1] as f64, t[2] as f64]));
                        [d[0], d[1], d[2], if det < 0.0 { -t[3] } else { t[3] }]
                    })
                    .collect()
            });
            let mut indices = g.indices.clone();
            if det < 0.0 {
                // A mirroring transform turns faces inside out unless the winding flips.
                for t in indices.chunks_exact_mut(3) {
                    t.swap(1, 2);
                }
            }
            self.meshes.push(TriangleMesh {
                positions,
                indices,
                normals,
                tangents,
                columns: g.columns.clone(),
                material: Some(g.style),
            });
        }
        Ok(())
    }

    /// Bake every instance, in the order the hierarchy lists them.
    fn bake(&mut self, instances: &[Instance]) -> Result<(), ModelError> {
        let asset = self.asset;
        for i in instances {
            if asset
                .root
                .nodes
                .get(i.node)
                .is_some_and(|n| n.skin.is_some())
            {
                self.warnings.push(
                    "model-skin-dropped",
                    format!(
                        "{}: node {}: skin dropped; the mesh is tiled in its bind pose",
                        asset.path.display(),
                        i.node
                    ),
                );
            }
            self.instance(i.node, i.mesh, &i.world)?;
        }
        Ok(())
    }
}

/// glTF 2.0's rule for the node hierarchy, quoted in errors.
const TREE_RULE: &str =
    "the node hierarchy to be disjoint strict trees (every node has at most one parent, no cycles)";
const UNIQUE_RULE: &str = "scene.nodes and node.children to hold unique node indices";
const ROOT_RULE: &str = "scene.nodes to list root nodes only (nodes that are nobody's child)";

fn hierarchy_err(path: &Path, rule: &'static str, reason: String) -> ModelError {
    ModelError::Hierarchy {
        path: path.into(),
        reason,
        rule,
    }
}

/// Each node's parent, after checking that the hierarchy is a forest: children exist and
/// are listed once, no node has two parents, and no node is its own ancestor.
fn parents(path: &Path, root: &gltf::json::Root) -> Result<Vec<Option<usize>>, ModelError> {
    let n = root.nodes.len();
    let mut parent: Vec<Option<usize>> = vec![None; n];
    for (i, node) in root.nodes.iter().enumerate() {
        for c in node.children.iter().flatten().map(|c| c.value()) {
            if c >= n {
                return Err(data_err(
                    path,
                    format!("node {i}"),
                    format!("child node {c} does not exist"),
                ));
            }
            if c == i {
                return Err(hierarchy_err(
                    path,
                    TREE_RULE,
                    format!("node {i} lists itself as a child, so it is its own ancestor"),
                ));
            }
            match parent[c] {
                Some(p) if p == i => {
                    return Err(hierarchy_err(
                        path,
                        UNIQUE_RULE,
                        format!("node {i} lists child node {c} more than once"),
                    ))
                }
                Some(p) => {
                    return Err(hierarchy_err(
                        path,
                        TREE_RULE,
                        format!("node {c} has two parents, nodes {p} and {i}"),
                    ))
                }
                None => parent[c] = Some(i),
            }
        }
    }
    if let Some(cycle) = first_cycle(&parent) {
        let shown: Vec<String> = cycle.iter().take(8).map(usize::to_string).collect();
        let more = if cycle.len() > 8 { " → …" } else { "" };
        return Err(hierarchy_err(
            path,
            TREE_RULE,
            format!(
                "node {} is its own ancestor (parent chain {} → {}{more})",
                cycle[0],
                shown.join(" → "),
                cycle[0]
            ),
        ));
    }
    Ok(parent)
}

/// The nodes of a cycle of parent links, if there is one. Each node is visited once:
/// a walk up from every unvisited node stops at the root or at a node seen before, and a
/// node seen in the same walk closes a cycle.
fn first_cycle(parent: &[Option<usize>]) -> Option<Vec<usize>> {
    // 0: not visited; k + 1: visited by the walk that started at node k.
    let mut seen = vec![0usize; parent.len()];
    for start in 0..parent.len() {
        let mut cur = start;
        loop {
            if seen[cur] == start + 1 {
                let mut cycle = vec![cur];
                let mut p = parent[cur];
                while let Some(q) = p.filter(|&q| q != cur) {
                    cycle.push(q);
                    p = parent[q];
                }
                return Some(cycle);
            }
            if seen[cur] != 0 {
                break;
            }
            seen[cur] = start + 1;
            match parent[cur] {
                Some(p) => cur = p,
                None => break,
            }
        }
    }
    None
}

/// The root nodes to draw: the default scene's (checked: existing, unique and parentless),
/// else every node without a parent.
fn scene_roots(
    path: &Path,
    root: &gltf::json::Root,
    parent: &[Option<usize>],
) -> Result<Vec<usize>, ModelError> {
    let scene = root.scene.map(|s| s.value()).or(if root.scenes.is_empty() {
        None
    } else {
        Some(0)
    });
    let Some((index, s)) = scene.and_then(|s| Some((s, root.scenes.get(s)?))) else {
        return Ok((0..root.nodes.len())
            .filter(|&i| parent[i].is_none())
            .collect());
    };
    let mut listed = vec![false; root.nodes.len()];
    let mut out = Vec::with_capacity(s.nodes.len());
    for n in s.nodes.iter().map(|n| n.value()) {
        let Some(flag) = listed.get_mut(n) else {
            return Err(data_err(
                path,
                format!("scene {index}"),
                format!("node {n} does not exist"),
            ));
        };
        if *flag {
            return Err(hierarchy_err(
                path,
                UNIQUE_RULE,
                format!("scene {index} lists node {n} more than once"),
            ));
        }
        if let Some(p) = parent[n] {
            return Err(hierarchy_err(
                path,
                ROOT_RULE,
                format!("scene {index} lists node {n}, which is a child of node {p}"),
            ));
        }
        *flag = true;
        out.push(n);
    }
    Ok(out)
}

/// One mesh drawn by one node, with the node's world transform.
struct Instance {
    node: usize,
    mesh: usize,
    world: Mat4,
}

/// Every mesh instance under `roots`, depth first in the order the nodes list their
/// children (an explicit stack: a hierarchy may be 100 000 levels deep).
fn instances(asset: &Asset, roots: &[usize]) -> Result<Vec<Instance>, ModelError> {
    let mut out = Vec::new();
    let mut stack: Vec<(usize, Mat4)> = roots.iter().rev().map(|&r| (r, IDENTITY)).collect();
    while let Some((node, parent)) = stack.pop() {
        let Some(n) = asset.root.nodes.get(node) else {
            return Err(data_err(
                &asset.path,
                "the scene".into(),
                format!("node {node} does not exist"),
            ));
        };
        let world = mul(&parent, &local_matrix(n));
        if world.iter().flatten().any(|v| !v.is_finite()) {
            return Err(data_err(
                &asset.path,
                format!("node {node}"),
                "its transform is not finite".into(),
            ));
        }
        if let Some(m) = n.mesh {
            if m.value() >= asset.root.meshes.len() {
                return Err(data_err(
                    &asset.path,
                    format!("node {node}"),
                    format!("mesh {} does not exist", m.value()),
                ));
            }
            out.push(Instance {
                node,
                mesh: m.value(),
                world,
            });
        }
        for c in n.children.iter().flatten().rev() {
            stack.push((c.value(), world));
        }
    }
    Ok(out)
}

/// What reading a primitive once and baking it once will allocate, estimated from its
/// accessors' declared counts (nothing is read): `(read, per instance)` bytes.
fn prim_cost(asset: &Asset, prim: &Value) -> (u128, u128) {
    let mode = prim["mode"].as_u64().unwrap_or(4);
    if !(4..=6).contains(&mode) {
        return (0, 0);
    }
    let count = |acc: &Value| {
        acc.as_u64()
            .and_then(|a| accessor::layout(asset, usize::try_from(a).ok()?).ok())
    };
    let (mut floats, mut vertices) = (0u128, 0u128);
    for (name, acc) in prim["attributes"].as_object().into_iter().flatten() {
        if name.starts_with("JOINTS_") || name.starts_with("WEIGHTS_") {
            continue;
        }
        if let Some(l) = count(acc) {
            floats += l.count as u128 * l.components as u128;
            if name == "POSITION" {
                vertices = l.count as u128;
            }
        }
    }
    let listed = count(&prim["indices"]).map_or(vertices, |l| l.count as u128);
    let corners = match mode {
        4 => listed / 3 * 3,
        _ => listed.saturating_sub(2) * 3,
    };
    let read = floats * 4 + (listed + corners) * 4;
    // Baked: f64 positions next to the f32 attributes, the indices, the mesh itself.
    let baked = floats * 4 + vertices * 12 + corners * 4 + 256;
    (read, baked)
}

/// [`prim_cost`] of every primitive of a mesh.
fn mesh_cost(asset: &Asset, mesh: usize) -> (u128, u128) {
    let prims = asset.raw["meshes"][mesh]["primitives"].as_array();
    prims
        .into_iter()
        .flatten()
        .map(|p| prim_cost(asset, p))
        .fold((0, 0), |(r, b), (pr, pb)| (r + pr, b + pb))
}

/// Refuse a hierarchy whose instances would bake into more memory than the budget,
/// before any of them is read.
fn check_expansion(asset: &Asset, instances: &[Instance]) -> Result<(), ModelError> {
    let mut baked_per_mesh: HashMap<usize, u128> = HashMap::new();
    let mut total = u128::from(asset.buffer_bytes);
    for i in instances {
        let baked = match baked_per_mesh.get(&i.mesh) {
            Some(&b) => b,
            None => {
                let (read, baked) = mesh_cost(asset, i.mesh);
                total += read; // each primitive is read once, however many instances
                baked_per_mesh.insert(i.mesh, baked);
                baked
            }
        };
        total += baked;
    }
    asset
        .budget
        .check(
            total,
            &format!(
                "baking the {} mesh instance(s) of the node hierarchy",
                instances.len()
            ),
        )
        .map_err(|reason| ModelError::Budget {
            path: asset.path.clone(),
            reason,
        })
}

fn json_array(raw: &Value, key: &str) -> Vec<Value> {
    raw[key].as_array().cloned().unwrap_or_default()
}

/// Read a .glb/.gltf into meshes and pass-through material JSON. Buffers and images are
/// read only through `refs`; what the file declares (buffers, accessors, the instances
/// of the node hierarchy, image sizes) is checked against `budget` before it is allocated.
pub fn read_model(
    path: &Path,
    refs: &RefRoot,
    budget: &Budget,
    warnings: &Warnings,
) -> Result<ModelSource, ModelError> {
    let asset = container::load(path, refs, budget)?;
    for ext in &asset.root.extensions_required {
        if !READABLE.contains(&ext.as_str()) && !ext.starts_with("KHR_materials_") {
            return Err(ModelError::Unsupported {
                path: path.into(),
                what: format!("the required glTF extension {ext}"),
                hint: "Re-export the model without it (for EXT_meshopt_compression: save it uncompressed)".into(),
            });
        }
    }
    if asset
        .raw
        .get("animations")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        warnings.push(
            "model-animation-dropped",
            format!(
                "{}: animations dropped; 3D Tiles content is static",
                path.display()
            ),
        );
    }
    if asset
        .raw
        .pointer("/extensions/EXT_structural_metadata")
        .is_some()
    {
        warnings.push(
            "model-metadata-dropped",
            format!(
                "{}: EXT_structural_metadata property tables are not carried into the tiles; feature ids are",
                path.display()
            ),
        );
    }
    let parent = parents(path, &asset.root)?;
    let roots = scene_roots(path, &asset.root, &parent)?;
    let instances = instances(&asset, &roots)?;
    check_expansion(&asset, &instances)?;
    let images = container::images(&asset, warnings);
    let mut r = Reader {
        asset: &asset,
        warnings,
        styles: Vec::new(),
        prims: HashMap::new(),
        meshes: Vec::new(),
        dropped_attributes: Default::default(),
        skipped_modes: 0,
        baked_bytes: 0,
    };
    r.bake(&instances)?;
    if r.skipped_modes > 0 {
        warnings.push(
            "model-points-lines-skipped",
            format!(
                "{}: {} point or line primitive(s) skipped; only triangles are tiled",
                path.display(),
                r.skipped_modes
            ),
        );
    }
    if !r.dropped_attributes.is_empty() {
        let names: Vec<_> = r.dropped_attributes.iter().cloned().collect();
        warnings.push(
            "model-skin-attributes-dropped",
            format!(
                "{}: vertex attributes {} dropped (skinning)",
                path.display(),
                names.join(", ")
            ),
        );
    }
    let (styles, mut meshes) = (r.styles, r.meshes);
    meshes.retain(|m| !m.indices.is_empty());
    let triangles: u64 = meshes.iter().map(|m| m.triangle_count() as u64).sum();
    if triangles == 0 {
        return Err(ModelError::Empty { path: path.into() });
    }
    let required = asset
        .root
        .extensions_required
        .iter()
        .filter(|e| !DECODED.contains(&e.as_str()))
        .cloned()
        .collect();
    Ok(ModelSource {
        path: path.into(),
        meshes,
        styles,
        materials: json_array(&asset.raw, "materials"),
        textures: json_array(&asset.raw, "textures"),
        samplers: json_array(&asset.raw, "samplers"),
        images,
        required,
        triangles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn root_of(nodes: Value, scene: Option<Value>) -> gltf::json::Root {
        let mut doc = serde_json::json!({"asset": {"version": "2.0"}, "nodes": nodes});
        if let Some(s) = scene {
            doc["scenes"] = serde_json::json!([{ "nodes": s }]);
        }
        gltf::json::Root::deserialize(&doc).unwrap()
    }

    fn hierarchy_error(nodes: Value, scene: Option<Value>) -> String {
        let root = root_of(nodes, scene);
        let p = Path::new("m.gltf");
        parents(p, &root)
            .and_then(|par| scene_roots(p, &root, &par))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn hierarchies_that_are_not_trees_are_refused() {
        use serde_json::json;
        let e = hierarchy_error(json!([{"children": [1, 1]}, {}]), None);
        assert!(
            e.contains("node 0 lists child node 1 more than once"),
            "{e}"
        );
        let e = hierarchy_error(json!([{"children": [1, 2]}, {"children": [2]}, {}]), None);
        assert!(e.contains("node 2 has two parents, nodes 0 and 1"), "{e}");
        assert!(e.contains("disjoint strict trees"), "{e}");
        let e = hierarchy_error(json!([{"children": [0]}]), None);
        assert!(e.contains("its own ancestor"), "{e}");
        let e = hierarchy_error(
            json!([{"children": [1]}, {"children": [2]}, {"children": [0]}]),
            None,
        );
        assert!(
            e.contains("node 0 is its own ancestor (parent chain 0 → 2 → 1 → 0)"),
            "{e}"
        );
        let e = hierarchy_error(json!([{}, {}]), Some(json!([1, 0, 1])));
        assert!(e.contains("scene 0 lists node 1 more than once"), "{e}");
        let e = hierarchy_error(json!([{"children": [1]}, {}]), Some(json!([0, 1])));
        assert!(e.contains("node 1, which is a child of node 0"), "{e}");
        let e = hierarchy_error(json!([{"children": [5]}]), None);
        assert!(e.contains("child node 5 does not exist"), "{e}");
        assert_eq!(
            hierarchy_error(json!([{"children": [1]}, {}]), Some(json!([0]))),
            ""
        );
    }

    #[test]
    fn deep_chains_are_walked_without_recursion() {
        let n = 100_000;
        let nodes: Vec<Value> = (0..n)
            .map(|i| {
                if i + 1 < n {
                    serde_json::json!({"children": [i + 1], "translation": [1.0, 0.0, 0.0]})
                } else {
                    serde_json::json!({"translation": [1.0, 0.0, 0.0]})
                }
            })
            .collect();
        let root = root_of(Value::Array(nodes), Some(serde_json::json!([0])));
        let p = Path::new("m.gltf");
        let par = parents(p, &root).unwrap();
        assert_eq!(scene_roots(p, &root, &par).unwrap(), vec![0]);
        // A ring of the same length is a cycle, found in one pass.
        let mut ring: Vec<Value> = (0..n)
            .map(|i| serde_json::json!({"children": [(i + 1) % n]}))
            .collect();
        ring.truncate(n);
        let e = parents(p, &root_of(Value::Array(ring), None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("own ancestor") && e.contains("→ …"), "{e}");
    }

    #[test]
    fn strips_and_fans_become_lists() {
        assert_eq!(to_triangles(5, vec![0, 1, 2, 3]), vec![0, 1, 2, 2, 1, 3]);
        assert_eq!(to_triangles(6, vec![0, 1, 2, 3]), vec![0, 1, 2, 0, 2, 3]);
        assert_eq!(to_triangles(4, vec![0, 1, 2, 3]), vec![0, 1, 2]);
    }

    #[test]
    fn mirror_transforms_are_detected() {
        let m = [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let (nm, det) = normal_matrix(&m);
        assert!(det < 0.0);
        assert_eq!(apply3(&nm, [1.0, 0.0, 0.0]), [-1.0, 0.0, 0.0]);
        let s = [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 8.0]];
        let (nm, _) = normal_matrix(&s);
        // A non-uniform scale tilts normals the other way than positions.
        let n = normalize(apply3(&nm, [0.0, 1.0, 1.0]));
        assert!(n[1] > n[2]);
    }
}
