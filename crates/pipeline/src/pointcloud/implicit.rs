//! 3D Tiles 1.1 implicit octree tiling: a root `tileset.json` of a few hundred bytes
//! whatever the number of tiles, and `.subtree` files holding, for every [`SUBTREE_LEVELS`]
//! levels, which tiles exist, which have content, and which subtrees lie below.
//! Tile volumes are the octree's own cubes; geometric errors halve with each level. The
//! implicit tree hangs below an explicit root tile with the points' tight box.

use super::octree::{Cube, GRID};
use super::tileset::NodeMeta;
use crate::encode::quantize::morton3;
use crate::error::PipelineError;
use crate::sink::TileSink;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use tessera_model::{Aabb, EnuFrame, OctTileId};

/// Levels per subtree file.
pub const SUBTREE_LEVELS: u8 = 4;

pub const SUBTREE_URI: &str = "subtrees/{level}/{x}-{y}-{z}.subtree";

/// Tiles that exist: those with points, and every ancestor of one.
fn available(nodes: &BTreeMap<OctTileId, NodeMeta>) -> BTreeSet<OctTileId> {
    let mut out = BTreeSet::new();
    for (id, meta) in nodes {
        if meta.points == 0 {
            continue;
        }
        let mut t = *id;
        while out.insert(t) && t.level > 0 {
            t = t.parent();
        }
    }
    out
}

/// The ancestor `up` levels above `id`, and `id`'s Morton position among that
/// ancestor's descendants on its level.
fn ancestor(id: OctTileId, up: u8) -> (OctTileId, usize) {
    let d = u32::from(up);
    let a = OctTileId {
        level: id.level - up,
        x: id.x >> d,
        y: id.y >> d,
        z: id.z >> d,
    };
    let mask = (1u32 << d) - 1;
    let m = morton3(
        u64::from(id.x & mask),
        u64::from(id.y & mask),
        u64::from(id.z & mask),
    );
    (a, m as usize)
}

/// `template` with `{level}`, `{x}`, `{y}`, `{z}` filled in for `id`.
fn expand(template: &str, id: OctTileId) -> String {
    template
        .replace("{level}", &id.level.to_string())
        .replace("{x}", &id.x.to_string())
        .replace("{y}", &id.y.to_string())
        .replace("{z}", &id.z.to_string())
}

/// Bits of one subtree: tiles and contents of its levels, and the subtrees below.
struct Bits {
    tiles: Vec<u8>,
    contents: Vec<u8>,
    children: Vec<u8>,
}

fn set(bits: &mut [u8], i: usize) {
    bits[i / 8] |= 1 << (i % 8);
}

fn count(bits: &[u8]) -> u32 {
    bits.iter().map(|b| b.count_ones()).sum()
}

/// Index of `id` in its subtree's tile bitstream and the subtree's root.
fn place(id: OctTileId) -> (OctTileId, usize) {
    let rel = id.level % SUBTREE_LEVELS;
    let (root, m) = ancestor(id, rel);
    let level_start = ((1usize << (3 * u32::from(rel))) - 1) / 7;
    (root, level_start + m)
}

fn subtree_bytes(bits: &Bits) -> Vec<u8> {
    let mut bin = Vec::new();
    let mut views = Vec::new();
    let mut view = |bin: &mut Vec<u8>, data: &[u8]| {
        let offset = bin.len();
        bin.extend_from_slice(data);
        while !bin.len().is_multiple_of(8) {
            bin.push(0);
        }
        views.push(json!({"buffer": 0, "byteOffset": offset, "byteLength": data.len()}));
        views.len() - 1
    };
    let tiles = view(&mut bin, &bits.tiles);
    let contents = view(&mut bin, &bits.contents);
    let children = if count(&bits.children) == 0 {
        json!({"constant": 0})
    } else {
        let v = view(&mut bin, &bits.children);
        json!({"bitstream": v, "availableCount": count(&bits.children)})
    };
    let doc = json!({
        "buffers": [{"byteLength": bin.len()}],
        "bufferViews": views,
        "tileAvailability": {"bitstream": tiles, "availableCount": count(&bits.tiles)},
        "contentAvailability": [{"bitstream": contents, "availableCount": count(&bits.contents)}],
        "childSubtreeAvailability": children,
    });
    let mut json_bytes = serde_json::to_vec(&doc).unwrap_or_default();
    while !json_bytes.len().is_multiple_of(8) {
        json_bytes.push(b' ');
    }
    let mut out = Vec::with_capacity(24 + json_bytes.len() + bin.len());
    out.extend_from_slice(b"subt");
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(json_bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&(bin.len() as u64).to_le_bytes());
    out.extend_from_slice(&json_bytes);
    out.extend_from_slice(&bin);
    out
}

/// Write every subtree file and return the root `tileset.json`; `None` when nothing
/// was written.
pub fn write_implicit(
    nodes: &BTreeMap<OctTileId, NodeMeta>,
    frame: &EnuFrame,
    cube: &Cube,
    sink: &dyn TileSink,
) -> Result<Option<Value>, PipelineError> {
    let avail = available(nodes);
    if !avail.contains(&OctTileId::ROOT) {
        return Ok(None);
    }
    let levels = avail.iter().map(|t| t.level).max().unwrap_or(0) + 1;
    let tile_bits = ((1usize << (3 * u32::from(SUBTREE_LEVELS))) - 1) / 7;
    let child_bits = 1usize << (3 * u32::from(SUBTREE_LEVELS));
    let mut subtrees: BTreeMap<OctTileId, Bits> = BTreeMap::new();
    fn bits_of(
        subtrees: &mut BTreeMap<OctTileId, Bits>,
        root: OctTileId,
        tile_bits: usize,
        child_bits: usize,
    ) -> &mut Bits {
        subtrees.entry(root).or_insert_with(|| Bits {
            tiles: vec![0; tile_bits.div_ceil(8)],
            contents: vec![0; tile_bits.div_ceil(8)],
            children: vec![0; child_bits.div_ceil(8)],
        })
    }
    for id in &avail {
        let (root, i) = place(*id);
        let has_content = nodes.get(id).is_some_and(|m| m.points > 0);
        let b = bits_of(&mut subtrees, root, tile_bits, child_bits);
        set(&mut b.tiles, i);
        if has_content {
            set(&mut b.contents, i);
        }
        if id.level == root.level && id.level > 0 {
            // This subtree's root is a child subtree of the one above.
            let (parent, j) = ancestor(*id, SUBTREE_LEVELS);
            set(
                &mut bits_of(&mut subtrees, parent, tile_bits, child_bits).children,
                j,
            );
        }
    }
    for (root, bits) in &subtrees {
        sink.write(&expand(SUBTREE_URI, *root), &subtree_bytes(bits))?;
    }
    // Level 0's error, from which every level halves: the coarsest sample spacing any
    // node has at its level, scaled back to level 0.
    let root_error = nodes
        .iter()
        .filter_map(|(id, m)| m.spacing_m.map(|s| s * f64::from(1u32 << id.level.min(31))))
        .fold(cube.edge / f64::from(GRID), f64::max);
    let bounds = Aabb {
        min: cube.min,
        max: [
            cube.min[0] + cube.edge,
            cube.min[1] + cube.edge,
            cube.min[2] + cube.edge,
        ],
    };
    let template = "{level}/{x}-{y}-{z}.glb";
    // The implicit tree's volumes are the octree's cubes, which for flat data reach far
    // above it; an explicit root with the points' tight box holds it, so clients frame
    // and cull the tileset by where the points are.
    let tight = nodes
        .values()
        .filter(|m| m.points > 0)
        .map(|m| m.bounds)
        .reduce(|a, b| a.union(&b))
        .unwrap_or(bounds);
    // The explicit root draws nothing: its error is that of not drawing the cloud at
    // all, the size of the data, so clients always go down to the implicit tree.
    let nothing_error = tight.diagonal().max(root_error * 2.0);
    Ok(Some(json!({
        "asset": {"version": "1.1", "generator": concat!("tessera ", env!("CARGO_PKG_VERSION"))},
        "geometricError": nothing_error,
        "root": {
            "boundingVolume": {"box": tight.to_tiles_box()},
            "geometricError": nothing_error,
            "refine": "ADD",
            "transform": frame.to_ecef_matrix(),
            "children": [{
                "boundingVolume": {"box": bounds.to_tiles_box()},
                "geometricError": root_error,
                "refine": "ADD",
                "content": {"uri": template},
                "implicitTiling": {
                    "subdivisionScheme": "OCTREE",
                    "subtreeLevels": SUBTREE_LEVELS,
                    "availableLevels": levels,
                    "subtrees": {"uri": SUBTREE_URI}
                }
            }]
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_find_their_place_in_subtrees() {
        assert_eq!(place(OctTileId::ROOT), (OctTileId::ROOT, 0));
        let c = OctTileId::ROOT.child(5);
        assert_eq!(place(c), (OctTileId::ROOT, 1 + 5));
        let g = c.child(2);
        // Level 2 starts after 1 + 8 bits, then g's Morton position relative to the root.
        assert_eq!(
            place(g).1,
            9 + morton3(u64::from(g.x), u64::from(g.y), u64::from(g.z)) as usize
        );
        let deep = OctTileId {
            level: SUBTREE_LEVELS + 1,
            x: 33,
            y: 2,
            z: 7,
        };
        let (root, i) = place(deep);
        assert_eq!(root.level, SUBTREE_LEVELS);
        assert_eq!((root.x, root.y, root.z), (16, 1, 3));
        assert_eq!(i, 1 + morton3(1, 0, 1) as usize);
        assert_eq!(morton3(1, 0, 0), 1);
        assert_eq!(morton3(0, 1, 0), 2);
        assert_eq!(morton3(0, 0, 1), 4);
        assert_eq!(morton3(2, 0, 0), 8);
        assert_eq!(
            expand(SUBTREE_URI, deep),
            format!("subtrees/{}/33-2-7.subtree", SUBTREE_LEVELS + 1)
        );
    }
}
