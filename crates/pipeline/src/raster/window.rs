//! Windowed reads: a shared, byte-bounded cache of decoded chunks, and rectangular windows
//! assembled from them, optionally reduced by an integer factor (box average) so a coarse
//! tile never holds a full-resolution window in memory.

use super::chunk::{decode, Chunk};
use super::geotiff::GeoTiff;
use crate::error::RasterError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

const SHARDS: usize = 16;

/// Decoded source chunks one job keeps in memory, across all its workers.
pub const JOB_CACHE_BYTES: usize = 192 << 20;

type Key = (u32, u8, u32);

/// A chunk being decoded or decoded; workers wanting the same chunk wait for one decode.
type Slot = Arc<OnceLock<Result<Arc<Chunk>, Arc<RasterError>>>>;

struct Entry {
    slot: Slot,
    tick: u64,
    /// Counted once the decode finished.
    bytes: usize,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Key, Entry>,
    bytes: usize,
    tick: u64,
}

/// Decoded chunks shared by all workers of a job, least recently used evicted first.
pub struct ChunkCache {
    shards: Vec<Mutex<Shard>>,
    budget_per_shard: usize,
    /// Chunks decoded per (source, level), for reports.
    decoded: Mutex<HashMap<(u32, u8), u64>>,
}

impl ChunkCache {
    pub fn new(budget_bytes: usize) -> ChunkCache {
        ChunkCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            budget_per_shard: (budget_bytes / SHARDS).max(1),
            decoded: Mutex::new(HashMap::new()),
        }
    }

    /// How many chunks of each level of `source` were decoded (cache misses), finest first.
    pub fn decoded_per_level(&self, source: u32, levels: usize) -> Vec<u64> {
        let g = self.decoded.lock().unwrap_or_else(|p| p.into_inner());
        (0..levels)
            .map(|l| g.get(&(source, l as u8)).copied().unwrap_or(0))
            .collect()
    }

    /// Chunk `index` of `level` of source `source`, decoding it on a miss. Workers asking
    /// for a chunk another worker is decoding wait for that decode.
    pub fn get(
        &self,
        source: u32,
        tiff: &GeoTiff,
        level: usize,
        index: u32,
    ) -> Result<Arc<Chunk>, RasterError> {
        let key = (source, level as u8, index);
        let shard = &self.shards[(index as usize ^ (source as usize * 31) ^ (level * 7)) % SHARDS];
        let slot = {
            let mut g = shard.lock().unwrap_or_else(|p| p.into_inner());
            g.tick += 1;
            let tick = g.tick;
            let e = g.map.entry(key).or_insert_with(|| Entry {
                slot: Arc::new(OnceLock::new()),
                tick,
                bytes: 0,
            });
            e.tick = tick;
            e.slot.clone()
        };
        let mut decoded_here = false;
        let result = slot
            .get_or_init(|| {
                decoded_here = true;
                decode(tiff, level, index).map(Arc::new).map_err(Arc::new)
            })
            .clone();
        if decoded_here {
            *self
                .decoded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((source, level as u8))
                .or_default() += 1;
            if let Ok(chunk) = &result {
                self.account(shard, key, chunk.bytes());
            }
        }
        result.map_err(RasterError::Shared)
    }

    /// Count a finished chunk's bytes and evict least recently used chunks over budget.
    fn account(&self, shard: &Mutex<Shard>, key: Key, bytes: usize) {
        let mut g = shard.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = g.map.get_mut(&key) else {
            return;
        };
        e.bytes = bytes;
        g.bytes += bytes;
        while g.bytes > self.budget_per_shard && g.map.len() > 1 {
            let oldest = g
                .map
                .iter()
                .filter(|(k, e)| **k != key && e.bytes > 0)
                .min_by_key(|(_, e)| e.tick)
                .map(|(k, _)| *k);
            match oldest.and_then(|k| g.map.remove(&k)) {
                Some(e) => g.bytes -= e.bytes,
                None => break,
            }
        }
    }
}

/// A rectangle of a level, reduced by `factor`: pixel (i, j) covers level pixels
/// `[(x0 + i)·factor, (x0 + i + 1)·factor)` × the same in rows. Pixels outside the raster
/// are transparent.
pub struct Window {
    pub x0: i64,
    pub y0: i64,
    pub width: usize,
    pub height: usize,
    pub factor: u32,
    pub bands: usize,
    /// `bands` values per pixel, not premultiplied.
    pub values: Vec<f32>,
    /// 0–1 per pixel.
    pub alpha: Vec<f32>,
    /// Window pixels that lie (at least partly) on the raster: columns `inside.0..inside.2`,
    /// rows `inside.1..inside.3`. Pixels beyond are off the raster, not transparent data.
    pub inside: (i64, i64, i64, i64),
}

impl Window {
    pub fn is_inside(&self, x: i64, y: i64) -> bool {
        x >= self.inside.0 && x < self.inside.2 && y >= self.inside.1 && y < self.inside.3
    }
}

/// What to read: a reduced-pixel rectangle of one level.
#[derive(Debug, Clone, Copy)]
pub struct WindowRequest {
    pub level: usize,
    pub x0: i64,
    pub y0: i64,
    pub width: usize,
    pub height: usize,
    pub factor: u32,
}

/// All of one level, box-reduced to at most about a million window pixels (for statistics
/// over a whole raster: a stretch, whether any data is there).
pub fn read_level_reduced(
    cache: &ChunkCache,
    source: u32,
    tiff: &GeoTiff,
    level: usize,
) -> Result<Window, RasterError> {
    let l = &tiff.levels[level];
    let px = u64::from(l.width) * u64::from(l.height);
    let factor = ((px as f64 / 1.0e6).sqrt().ceil() as u32).max(1);
    read_window(
        cache,
        source,
        tiff,
        WindowRequest {
            level,
            x0: 0,
            y0: 0,
            width: l.width.div_ceil(factor) as usize,
            height: l.height.div_ceil(factor) as usize,
            factor,
        },
    )
}

/// Assemble a window from cached chunks.
pub fn read_window(
    cache: &ChunkCache,
    source: u32,
    tiff: &GeoTiff,
    req: WindowRequest,
) -> Result<Window, RasterError> {
    let l = &tiff.levels[req.level];
    let bands = tiff.value_bands();
    let k = i64::from(req.factor.max(1));
    let (w, h) = (req.width, req.height);
    let (lw, lh) = (i64::from(l.width), i64::from(l.height));
    let inside = (
        (-req.x0).clamp(0, w as i64),
        (-req.y0).clamp(0, h as i64),
        ((lw + k - 1) / k - req.x0).clamp(0, w as i64),
        ((lh + k - 1) / k - req.y0).clamp(0, h as i64),
    );
    let mut sum = vec![0f32; w * h * bands];
    let mut asum = vec![0f32; w * h];
    // Level-pixel rectangle covered, clipped to the raster.
    let lx0 = (req.x0 * k).max(0);
    let ly0 = (req.y0 * k).max(0);
    let lx1 = ((req.x0 + w as i64) * k).min(i64::from(l.width));
    let ly1 = ((req.y0 + h as i64) * k).min(i64::from(l.height));
    if lx0 < lx1 && ly0 < ly1 {
        let (cw, ch) = (i64::from(l.chunk_w), i64::from(l.chunk_h));
        for cy in (ly0 / ch)..=((ly1 - 1) / ch) {
            for cx in (lx0 / cw)..=((lx1 - 1) / cw) {
                let index = (cy * i64::from(l.across) + cx) as u32;
                let chunk = cache.get(source, tiff, req.level, index)?;
                let (ox, oy) = (cx * cw, cy * ch);
                let xa = lx0.max(ox);
                let xb = lx1.min(ox + i64::from(chunk.width));
                let ya = ly0.max(oy);
                let yb = ly1.min(oy + i64::from(chunk.height));
                if k == 1 {
                    // Straight copy: no reduction, values stay as decoded.
                    let n = (xb - xa) as usize;
                    for y in ya..yb {
                        let wrow = (y - req.y0) as usize * w + (xa - req.x0) as usize;
                        let crow = ((y - oy) * i64::from(chunk.width) + (xa - ox)) as usize;
                        chunk.values.copy_to(
                            crow * bands..(crow + n) * bands,
                            &mut sum[wrow * bands..(wrow + n) * bands],
                        );
                        for (a, c) in asum[wrow..wrow + n]
                            .iter_mut()
                            .zip(&chunk.alpha[crow..crow + n])
                        {
                            *a = f32::from(*c) / 255.0;
                        }
                    }
                    continue;
                }
                for y in ya..yb {
                    let wy = (y / k - req.y0) as usize;
                    let crow = ((y - oy) * i64::from(chunk.width)) as usize;
                    for x in xa..xb {
                        let wx = (x / k - req.x0) as usize;
                        let ci = crow + (x - ox) as usize;
                        let a = f32::from(chunk.alpha[ci]) / 255.0;
                        if a == 0.0 {
                            continue;
                        }
                        let wi = wy * w + wx;
                        asum[wi] += a;
                        let dst = &mut sum[wi * bands..(wi + 1) * bands];
                        for (b, d) in dst.iter_mut().enumerate() {
                            *d += a * chunk.values.get(ci * bands + b);
                        }
                    }
                }
            }
        }
    }
    if k == 1 {
        return Ok(Window {
            x0: req.x0,
            y0: req.y0,
            width: w,
            height: h,
            factor: 1,
            bands,
            values: sum,
            alpha: asum,
            inside,
        });
    }
    // Level pixels of window pixel `i` that lie on the raster, along one axis.
    let overlap = |i: usize, origin: i64, len: i64| -> f32 {
        let a = (origin + i as i64) * k;
        ((a + k).min(len) - a.max(0)).max(0) as f32
    };
    let mut alpha = vec![0f32; w * h];
    for i in 0..w * h {
        if asum[i] > 0.0 {
            let inv = 1.0 / asum[i];
            for v in &mut sum[i * bands..(i + 1) * bands] {
                *v *= inv;
            }
            let on_raster = overlap(i % w, req.x0, lw) * overlap(i / w, req.y0, lh);
            alpha[i] = (asum[i] / on_raster.max(1.0)).min(1.0);
        }
    }
    Ok(Window {
        x0: req.x0,
        y0: req.y0,
        width: w,
        height: h,
        factor: req.factor.max(1),
        bands,
        values: sum,
        alpha,
        inside,
    })
}
