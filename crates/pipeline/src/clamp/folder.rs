//! A quantized-mesh terrain folder: layer.json read once, then for each point the deepest
//! tile that exists there (from layer.json's `available` ranges, probing files beyond
//! them), decoded on first use and kept in a small cache shared by all threads.

use super::tile::{decode, MeshTile, MAXQ};
use crate::error::{InputError, PipelineError};
use crate::report::Warnings;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use tessera_model::{QuadTileId, TilingScheme};

/// The only scheme read: EPSG:4326, two tiles at level 0 (what the terrain route writes).
const SCHEME: TilingScheme = TilingScheme::GeographicQuad;
/// Decoded tiles kept (a full 129 × 129 tile is about 0.5 MB decoded).
const MAX_TILES: usize = 64;
/// Remembered "does this tile file exist" answers before the memory is cleared.
const MAX_PROBES: usize = 1 << 16;
/// Deepest level probed when layer.json gives no `maxzoom`.
const MAX_PROBE_ZOOM: u8 = 24;
/// Largest decompressed tile accepted.
const MAX_TILE_BYTES: u64 = 64 << 20;

/// Tiles `x0..=x1` × `y0..=y1` of one level, rows counted from the south (TMS).
#[derive(Debug, Clone, Copy)]
struct TileRange {
    x0: u64,
    y0: u64,
    x1: u64,
    y1: u64,
}

enum Loaded {
    Mesh(Arc<MeshTile>),
    /// Not on disk: a coarser tile answers instead.
    Missing,
    /// Unreadable (a warning said so): no height there.
    Corrupt,
}

type Slot = Arc<OnceLock<Loaded>>;

#[derive(Default)]
struct TileCache {
    map: HashMap<QuadTileId, (Slot, u64)>,
    tick: u64,
}

pub(super) struct FolderHeights {
    root: PathBuf,
    /// The tile path relative to `root`, `{z}`, `{x}`, `{y}` (TMS row) to fill in.
    template: String,
    version: String,
    /// `available[z]`: ranges of level z that exist.
    available: Vec<Vec<TileRange>>,
    max_zoom: u8,
    /// West, south, east, north in degrees where the terrain has real data.
    coverage: Option<[f64; 4]>,
    tiles: Mutex<TileCache>,
    probes: Mutex<HashMap<QuadTileId, bool>>,
}

impl FolderHeights {
    pub fn open(root: &Path) -> Result<FolderHeights, PipelineError> {
        let layer = root.join("layer.json");
        let bad = |what: String| -> PipelineError {
            InputError::NotTerrain {
                path: layer.clone(),
                what,
            }
            .into()
        };
        let text = std::fs::read(&layer).map_err(|source| InputError::Io {
            path: layer.clone(),
            source,
        })?;
        let doc: Value = serde_json::from_slice(&text)
            .map_err(|e| bad(format!("layer.json is not valid JSON ({e})")))?;
        let str_field = |k: &str| doc.get(k).and_then(Value::as_str);
        match str_field("format") {
            Some(f) if f.starts_with("quantized-mesh-1.") => {}
            Some(f) => {
                return Err(bad(format!(
                    "the terrain's format is {f:?}; only quantized-mesh-1.0 is read"
                )))
            }
            None => return Err(bad("layer.json names no format (quantized-mesh-1.0)".into())),
        }
        let scheme = str_field("scheme").unwrap_or("tms");
        if scheme != "tms" {
            return Err(bad(format!(
                "the tiling scheme is {scheme:?}; only \"tms\" is read"
            )));
        }
        let projection = str_field("projection").unwrap_or("EPSG:4326");
        if projection != "EPSG:4326" {
            return Err(bad(format!(
                "the projection is {projection}; only geographic (EPSG:4326) terrain is read"
            )));
        }
        let tiles = doc
            .get("tiles")
            .and_then(Value::as_array)
            .and_then(|t| t.first())
            .and_then(Value::as_str)
            .ok_or_else(|| bad("layer.json has no \"tiles\" template".into()))?;
        if tiles.contains("://") {
            return Err(bad(format!(
                "the tiles are on a server ({tiles}); download the tileset into a folder first"
            )));
        }
        // The query (`?v={version}`) is for HTTP caches, not part of the file name.
        let template = tiles.split('?').next().unwrap_or(tiles).to_string();
        if !["{z}", "{x}", "{y}"].iter().all(|k| template.contains(k)) {
            return Err(bad(format!(
                "the tiles template {tiles:?} lacks {{z}}, {{x}} or {{y}}"
            )));
        }
        let available = match doc.get("available") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => parse_available(v).ok_or_else(|| {
                bad("its \"available\" list is not a list of {startX, startY, endX, endY} ranges per level".into())
            })?,
        };
        let max_zoom = match doc.get("maxzoom").and_then(Value::as_u64) {
            Some(z) => z.min(u64::from(MAX_PROBE_ZOOM)) as u8,
            None if !available.is_empty() && doc.get("metadataAvailability").is_none() => {
                (available.len() - 1).min(usize::from(MAX_PROBE_ZOOM)) as u8
            }
            None => MAX_PROBE_ZOOM,
        };
        // Tessera writes the DEMs' extent as `valid_bounds`; other writers give `bounds`.
        let coverage = ["valid_bounds", "bounds"]
            .iter()
            .find_map(|k| doc.get(*k).and_then(parse_bounds));
        let heights = FolderHeights {
            root: root.to_path_buf(),
            template,
            version: str_field("version").unwrap_or("1.0.0").to_string(),
            available,
            max_zoom,
            coverage,
            tiles: Mutex::new(TileCache::default()),
            probes: Mutex::new(HashMap::new()),
        };
        let roots = [QuadTileId::new(0, 0, 0), QuadTileId::new(0, 1, 0)];
        if !roots.iter().any(|id| heights.tile_path(*id).is_file()) {
            return Err(bad(format!(
                "no tile at level 0 (looked for {})",
                heights.tile_path(roots[0]).display()
            )));
        }
        Ok(heights)
    }

    pub fn height_at(&self, lon_deg: f64, lat_deg: f64, warnings: &Warnings) -> Option<f64> {
        if !(-180.0..=180.0).contains(&lon_deg) || !(-90.0..=90.0).contains(&lat_deg) {
            return None;
        }
        if let Some(c) = self.coverage {
            if lon_deg < c[0] || lon_deg > c[2] || lat_deg < c[1] || lat_deg > c[3] {
                return None;
            }
        }
        let deepest = self.deepest_level(lon_deg, lat_deg)?;
        for z in (0..=deepest).rev() {
            let (id, u, v) = tile_at(z, lon_deg, lat_deg);
            if !self.listed(id) {
                continue;
            }
            let slot = self.slot(id);
            match slot.get_or_init(|| self.read_tile(id, warnings)) {
                Loaded::Mesh(m) => return m.height_at(u, v),
                Loaded::Missing => continue,
                Loaded::Corrupt => return None,
            }
        }
        None
    }

    /// Whether `available` lists the tile (levels beyond the list count as listed: they
    /// were probed).
    fn listed(&self, id: QuadTileId) -> bool {
        match self.available.get(usize::from(id.level)) {
            None => true,
            Some(ranges) => {
                let (x, y) = (u64::from(id.x), u64::from(SCHEME.tms_y(id)));
                ranges
                    .iter()
                    .any(|r| (r.x0..=r.x1).contains(&x) && (r.y0..=r.y1).contains(&y))
            }
        }
    }

    /// The deepest level with a tile at the point: the deepest listed one, then, when the
    /// list ends there (or there is none), deeper levels as long as their files exist.
    fn deepest_level(&self, lon_deg: f64, lat_deg: f64) -> Option<u8> {
        let listed_levels = self.available.len().min(usize::from(self.max_zoom) + 1);
        let mut best = (0..listed_levels as u8)
            .filter(|z| self.listed(tile_at(*z, lon_deg, lat_deg).0))
            .max();
        if listed_levels == 0 || best == Some(listed_levels as u8 - 1) {
            for z in listed_levels as u8..=self.max_zoom {
                if self.exists(tile_at(z, lon_deg, lat_deg).0) {
                    best = Some(z);
                } else {
                    break;
                }
            }
        }
        best
    }

    fn tile_path(&self, id: QuadTileId) -> PathBuf {
        self.root.join(
            self.template
                .replace("{z}", &id.level.to_string())
                .replace("{x}", &id.x.to_string())
                .replace("{y}", &SCHEME.tms_y(id).to_string())
                .replace("{version}", &self.version),
        )
    }

    fn exists(&self, id: QuadTileId) -> bool {
        if let Some(e) = self
            .probes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return *e;
        }
        let e = self.tile_path(id).is_file();
        let mut g = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        if g.len() >= MAX_PROBES {
            g.clear();
        }
        g.insert(id, e);
        e
    }

    /// The cache slot of a tile; the least recently used tile goes when the cache is full.
    fn slot(&self, id: QuadTileId) -> Slot {
        let mut g = self.tiles.lock().unwrap_or_else(|p| p.into_inner());
        g.tick += 1;
        let tick = g.tick;
        let slot = {
            let e = g.map.entry(id).or_insert_with(|| (Slot::default(), tick));
            e.1 = tick;
            e.0.clone()
        };
        if g.map.len() > MAX_TILES {
            let oldest = g
                .map
                .iter()
                .filter(|(k, _)| **k != id)
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                g.map.remove(&k);
            }
        }
        slot
    }

    fn read_tile(&self, id: QuadTileId, warnings: &Warnings) -> Loaded {
        let path = self.tile_path(id);
        let corrupt = |reason: String| {
            warnings.push(
                "terrain-tile-corrupt",
                format!(
                    "{}: not a readable quantized-mesh tile ({reason}); buildings on it are not clamped. Regenerate the terrain",
                    path.display()
                ),
            );
            Loaded::Corrupt
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                warnings.push(
                    "terrain-tile-missing",
                    format!(
                        "{}: listed in layer.json but missing; a coarser tile gives the heights there",
                        path.display()
                    ),
                );
                return Loaded::Missing;
            }
            Err(e) => return corrupt(e.to_string()),
        };
        let raw = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::with_capacity(bytes.len() * 3);
            if let Err(e) = flate2::read::GzDecoder::new(&bytes[..])
                .take(MAX_TILE_BYTES)
                .read_to_end(&mut out)
            {
                return corrupt(format!("gzip: {e}"));
            }
            out
        } else {
            bytes
        };
        match decode(&raw) {
            Ok(t) => Loaded::Mesh(Arc::new(t)),
            Err(reason) => corrupt(reason),
        }
    }
}

/// The tile of level `z` holding the point, and the point's (u, v) in it (0..=32767).
fn tile_at(z: u8, lon_deg: f64, lat_deg: f64) -> (QuadTileId, f64, f64) {
    let span = SCHEME.tile_span(z);
    let x = (((lon_deg + 180.0) / span).floor() as i64).clamp(0, i64::from(SCHEME.tiles_x(z)) - 1);
    let y = (((90.0 - lat_deg) / span).floor() as i64).clamp(0, i64::from(SCHEME.tiles_y(z)) - 1);
    let id = QuadTileId::new(z, x as u32, y as u32);
    let r = SCHEME.tile_rect(id);
    let u = ((lon_deg - r.min_x) / span * MAXQ).clamp(0.0, MAXQ);
    let v = ((lat_deg - r.min_y) / span * MAXQ).clamp(0.0, MAXQ);
    (id, u, v)
}

fn parse_available(v: &Value) -> Option<Vec<Vec<TileRange>>> {
    v.as_array()?
        .iter()
        .map(|level| {
            level
                .as_array()?
                .iter()
                .map(|r| {
                    let n = |k: &str| r.get(k).and_then(Value::as_u64);
                    Some(TileRange {
                        x0: n("startX")?,
                        y0: n("startY")?,
                        x1: n("endX")?,
                        y1: n("endY")?,
                    })
                })
                .collect()
        })
        .collect()
}

fn parse_bounds(v: &Value) -> Option<[f64; 4]> {
    let a = v.as_array()?;
    if a.len() != 4 {
        return None;
    }
    let b: Vec<f64> = a.iter().map(Value::as_f64).collect::<Option<_>>()?;
    (b.iter().all(|x| x.is_finite()) && b[0] < b[2] && b[1] < b[3])
        .then(|| [b[0], b[1], b[2], b[3]])
}
