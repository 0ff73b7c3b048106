//! 3D Tiles 1.0 `.pnts` point tiles: RTC_CENTER + 16-bit quantized positions (float
//! ones where a tile is too large for 16 bits at the grid's step), RGB, and a batch
//! table with the per-point attributes.

use super::quantize::{Grid, Layout};
use super::{pad_to, PointTile};
use serde_json::{json, Map, Value};
use tessera_model::ScalarKind;

fn padded_json(v: &Value, start: usize) -> Vec<u8> {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    while !(start + b.len()).is_multiple_of(8) {
        b.push(b' ');
    }
    b
}

/// Encode one `.pnts`; with `grid`, positions are POSITION_QUANTIZED on it when it
/// fits 16 bits.
pub fn encode_pnts(tile: &PointTile, grid: Option<&Grid>) -> Vec<u8> {
    let n = tile.positions.len();
    let center = tile.bounds.center();
    let mut ft_bin = Vec::with_capacity(n * 15);
    let mut ft = json!({"POINTS_LENGTH": n, "RTC_CENTER": center});
    match grid.filter(|g| g.layout() == Layout::U16) {
        Some(g) => {
            // position = offset + q * scale / 65535 (then RTC_CENTER): the scale makes
            // one unit of q exactly one grid step.
            let s = g.step_m();
            for p in tile.positions {
                let q = g.quantize(p);
                for v in q {
                    ft_bin.extend_from_slice(&(v as u16).to_le_bytes());
                }
            }
            ft["POSITION_QUANTIZED"] = json!({"byteOffset": 0});
            ft["QUANTIZED_VOLUME_OFFSET"] = json!([0, 1, 2].map(|k| g.origin[k] - center[k]));
            ft["QUANTIZED_VOLUME_SCALE"] = json!([s * 65535.0, s * 65535.0, s * 65535.0]);
        }
        None => {
            for p in tile.positions {
                for k in 0..3 {
                    ft_bin.extend_from_slice(&((p[k] - center[k]) as f32).to_le_bytes());
                }
            }
            ft["POSITION"] = json!({"byteOffset": 0});
        }
    }
    if let Some(rgb) = tile.rgb {
        pad_to(&mut ft_bin, 8, 0);
        ft["RGB"] = json!({"byteOffset": ft_bin.len()});
        for c in rgb {
            ft_bin.extend_from_slice(&c.map(|v| (v >> 8) as u8));
        }
    }
    pad_to(&mut ft_bin, 8, 0);
    let mut bt = Map::new();
    let mut bt_bin = Vec::new();
    let mut column = |name: &str, ct: &str, bytes: Vec<u8>| {
        bt.insert(
            name.into(),
            json!({"byteOffset": bt_bin.len(), "componentType": ct, "type": "SCALAR"}),
        );
        bt_bin.extend_from_slice(&bytes);
        pad_to(&mut bt_bin, 8, 0);
    };
    if let Some(v) = tile.intensity {
        column(
            "Intensity",
            "UNSIGNED_SHORT",
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        );
    }
    if let Some(v) = tile.classification {
        column("Classification", "UNSIGNED_BYTE", v.to_vec());
    }
    if let Some(v) = tile.return_number {
        column("ReturnNumber", "UNSIGNED_BYTE", v.to_vec());
    }
    if let Some(v) = tile.number_of_returns {
        column("NumberOfReturns", "UNSIGNED_BYTE", v.to_vec());
    }
    // Extra values: small integers as they are, everything else as doubles (exact).
    for col in tile.extras {
        let (ct, bytes): (&str, Vec<u8>) = match (col.dim.is_exact_small_int(), col.dim.kind) {
            (true, ScalarKind::U8) => (
                "UNSIGNED_BYTE",
                col.values.iter().map(|v| *v as u8).collect(),
            ),
            (true, ScalarKind::I8) => (
                "BYTE",
                col.values.iter().map(|v| (*v as i8) as u8).collect(),
            ),
            (true, ScalarKind::I16) => (
                "SHORT",
                col.values
                    .iter()
                    .flat_map(|v| (*v as i16).to_le_bytes())
                    .collect(),
            ),
            (true, _) => (
                "UNSIGNED_SHORT",
                col.values
                    .iter()
                    .flat_map(|v| (*v as u16).to_le_bytes())
                    .collect(),
            ),
            (false, _) => (
                "DOUBLE",
                col.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        };
        column(&col.dim.id, ct, bytes);
    }
    let ft_json = padded_json(&ft, 28);
    let bt_json = if bt.is_empty() {
        Vec::new()
    } else {
        padded_json(&Value::Object(bt), 28 + ft_json.len() + ft_bin.len())
    };
    let total = 28 + ft_json.len() + ft_bin.len() + bt_json.len() + bt_bin.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"pnts");
    for v in [
        1,
        total,
        ft_json.len(),
        ft_bin.len(),
        bt_json.len(),
        bt_bin.len(),
    ] {
        out.extend_from_slice(&(v as u32).to_le_bytes());
    }
    out.extend_from_slice(&ft_json);
    out.extend_from_slice(&ft_bin);
    out.extend_from_slice(&bt_json);
    out.extend_from_slice(&bt_bin);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths_add_up() {
        let pos = [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [5.0, 0.5, 0.25]];
        let rgb = [[257u16, 514, 771]; 3];
        let i = [7u16; 3];
        let tile = PointTile {
            positions: &pos,
            bounds: tessera_model::Aabb::from_points(&pos),
            rgb: Some(&rgb),
            rgb16: false,
            intensity: Some(&i),
            classification: None,
            return_number: None,
            number_of_returns: None,
            extras: &[],
        };
        let grid = Grid::new(&tile.bounds, -10);
        for g in [None, Some(&grid)] {
            let b = encode_pnts(&tile, g);
            let word =
                |k: usize| u32::from_le_bytes(b[4 * k..4 * k + 4].try_into().unwrap()) as usize;
            assert_eq!(&b[0..4], b"pnts");
            assert_eq!(word(2), b.len());
            assert_eq!(28 + word(3) + word(4) + word(5) + word(6), b.len());
            assert_eq!((28 + word(3)) % 8, 0);
            assert_eq!(b.len() % 8, 0);
            let ft: Value = serde_json::from_slice(&b[28..28 + word(3)]).unwrap();
            assert_eq!(ft.get("POSITION_QUANTIZED").is_some(), g.is_some());
            if g.is_some() {
                // The last point comes back within half a step.
                let bin = &b[28 + word(3)..];
                let off: Vec<f64> = ft["QUANTIZED_VOLUME_OFFSET"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                let scale = ft["QUANTIZED_VOLUME_SCALE"][0].as_f64().unwrap();
                let c = ft["RTC_CENTER"].as_array().unwrap();
                for k in 0..3 {
                    let q = u16::from_le_bytes([bin[12 + 2 * k], bin[13 + 2 * k]]);
                    let v = c[k].as_f64().unwrap() + off[k] + f64::from(q) * scale / 65535.0;
                    assert!((v - pos[2][k]).abs() < 0.0005);
                }
            }
        }
    }
}
