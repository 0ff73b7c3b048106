//! The tile tree's bookkeeping and its `tileset.json`.

use crate::job::TilesFormat;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tessera_model::{Aabb, EnuFrame, OctTileId};

/// What the tileset needs to know about one written (or content-less) node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeMeta {
    pub points: u64,
    /// Bounds of the node's own points (empty for a node without content).
    pub bounds: Aabb,
    /// Spacing of the node's sample in metres; `None` for leaves (complete detail).
    pub spacing_m: Option<f64>,
    pub children: Vec<OctTileId>,
}

pub fn content_uri(id: OctTileId, format: TilesFormat) -> String {
    let ext = match format {
        TilesFormat::Tiles11 => "glb",
        TilesFormat::Tiles10 => "pnts",
    };
    format!("{}/{}-{}-{}.{ext}", id.level, id.x, id.y, id.z)
}

struct Built {
    json: Value,
    bounds: Aabb,
    error_m: f64,
}

fn build(
    id: OctTileId,
    nodes: &BTreeMap<OctTileId, NodeMeta>,
    format: TilesFormat,
) -> Option<Built> {
    let meta = nodes.get(&id)?;
    let mut bounds = meta.bounds;
    let mut children = Vec::new();
    let mut child_error: f64 = 0.0;
    let mut kids = meta.children.clone();
    kids.sort_unstable();
    for c in kids {
        if let Some(b) = build(c, nodes, format) {
            bounds = bounds.union(&b.bounds);
            child_error = child_error.max(b.error_m);
            children.push(b.json);
        }
    }
    if meta.points == 0 && children.is_empty() {
        return None;
    }
    // A node's error is what is missing when it is drawn without its children: the
    // spacing of its sample; never below a child's, so errors shrink down the tree.
    let error_m = if children.is_empty() {
        0.0
    } else {
        meta.spacing_m.unwrap_or(0.0).max(child_error)
    };
    let mut tile = json!({
        "boundingVolume": {"box": bounds.to_tiles_box()},
        "geometricError": error_m,
    });
    if meta.points > 0 {
        tile["content"] = json!({"uri": content_uri(id, format)});
    }
    if !children.is_empty() {
        tile["children"] = Value::Array(children);
    }
    Some(Built {
        json: tile,
        bounds,
        error_m,
    })
}

/// The whole `tileset.json`; `None` when nothing was written.
pub fn tileset_json(
    nodes: &BTreeMap<OctTileId, NodeMeta>,
    frame: &EnuFrame,
    format: TilesFormat,
    root_spacing_m: f64,
) -> Option<Value> {
    let root = build(OctTileId::ROOT, nodes, format)?;
    let mut root_json = root.json;
    root_json["refine"] = json!("ADD");
    root_json["transform"] = json!(frame.to_ecef_matrix());
    // Error of not drawing the tileset at all: larger than the root's own.
    let top = (root.error_m * 2.0)
        .max(root_spacing_m)
        .max(root.bounds.diagonal() / 20.0);
    if root_json["geometricError"].as_f64().unwrap_or(0.0) > top {
        root_json["geometricError"] = json!(top);
    }
    let version = match format {
        TilesFormat::Tiles11 => "1.1",
        TilesFormat::Tiles10 => "1.0",
    };
    Some(json!({
        "asset": {"version": version, "generator": concat!("tessera ", env!("CARGO_PKG_VERSION"))},
        "geometricError": top,
        "root": root_json,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_shrink_and_bounds_cover_children() {
        let mut nodes = BTreeMap::new();
        let root = OctTileId::ROOT;
        let child = root.child(3);
        nodes.insert(
            root,
            NodeMeta {
                points: 10,
                bounds: Aabb::from_points(&[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]),
                spacing_m: Some(0.5),
                children: vec![child],
            },
        );
        nodes.insert(
            child,
            NodeMeta {
                points: 5,
                bounds: Aabb::from_points(&[[2.0, 2.0, 2.0], [3.0, 3.0, 3.0]]),
                spacing_m: None,
                children: vec![],
            },
        );
        let frame = EnuFrame::new([6378137.0, 0.0, 0.0], 0.0, 0.0);
        let t = tileset_json(&nodes, &frame, TilesFormat::Tiles11, 0.5).unwrap();
        assert_eq!(t["root"]["geometricError"], json!(0.5));
        assert_eq!(t["root"]["children"][0]["geometricError"], json!(0.0));
        assert_eq!(t["root"]["boundingVolume"]["box"][0], json!(1.5));
        assert_eq!(t["root"]["refine"], json!("ADD"));
        assert_eq!(
            t["root"]["children"][0]["content"]["uri"],
            json!("1/1-1-0.glb")
        );
        assert!(t["geometricError"].as_f64().unwrap() >= 0.5);
    }
}
