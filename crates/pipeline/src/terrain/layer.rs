//! layer.json: what CesiumTerrainProvider reads before any tile.

use super::TerrainOptions;
use serde_json::json;
use tessera_model::{Rect, TilingScheme};

/// `ranges[z]` = written tiles of zoom z, rows from the north.
pub fn layer_json(
    ranges: &[(u32, u32, u32, u32)],
    max_zoom: u8,
    footprint: &Rect,
    opts: &TerrainOptions,
) -> String {
    let scheme = TilingScheme::GeographicQuad;
    let available: Vec<_> = ranges
        .iter()
        .enumerate()
        .map(|(z, &(x0, y0, x1, y1))| {
            let ny = scheme.tiles_y(z as u8);
            vec![json!({"startX": x0, "startY": ny - 1 - y1, "endX": x1, "endY": ny - 1 - y0})]
        })
        .collect();
    let mut extensions = Vec::new();
    if opts.normals {
        extensions.push("octvertexnormals");
    }
    if opts.watermask {
        extensions.push("watermask");
    }
    if opts.metadata {
        extensions.push("metadata");
    }
    let doc = json!({
        "tilejson": "2.1.0",
        "name": "terrain",
        "description": "quantized-mesh terrain made by tessera",
        "version": "1.2.0",
        "format": "quantized-mesh-1.0",
        "attribution": "",
        "scheme": "tms",
        "tiles": ["{z}/{x}/{y}.terrain?v={version}"],
        "projection": "EPSG:4326",
        "bounds": [-180.0, -90.0, 180.0, 90.0],
        "minzoom": 0,
        "maxzoom": max_zoom,
        "available": available,
        "extensions": extensions,
        "valid_bounds": [footprint.min_x, footprint.min_y, footprint.max_x, footprint.max_y],
    });
    let mut doc = doc;
    if opts.metadata {
        // Every tile carries its children's availability in the metadata extension.
        doc["metadataAvailability"] = json!(1);
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
