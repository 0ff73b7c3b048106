//! Temporary files holding points between passes, so memory does not grow with the input.

use super::record::TilePoint;
use crate::error::PipelineError;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tessera_model::OctTileId;

fn spill_err(path: &Path, source: std::io::Error) -> PipelineError {
    PipelineError::Spill {
        path: path.into(),
        source,
    }
}

/// A file of point records for one octree node.
#[derive(Debug, Clone, PartialEq)]
pub struct PointFile {
    pub id: OctTileId,
    pub path: PathBuf,
    pub count: u64,
}

pub fn file_path(dir: &Path, prefix: &str, id: OctTileId) -> PathBuf {
    dir.join(format!("{prefix}-{id}.bin"))
}

/// Write `points` to a new file.
pub fn write_file<const K: usize>(
    dir: &Path,
    prefix: &str,
    id: OctTileId,
    points: &[TilePoint<K>],
) -> Result<PointFile, PipelineError> {
    let path = file_path(dir, prefix, id);
    let mut buf = Vec::with_capacity(points.len() * TilePoint::<K>::BYTES);
    for p in points {
        p.write_to(&mut buf);
    }
    std::fs::write(&path, &buf).map_err(|e| spill_err(&path, e))?;
    Ok(PointFile {
        id,
        path,
        count: points.len() as u64,
    })
}

/// Read every record of a file, then delete it.
pub fn take_file<const K: usize>(file: &PointFile) -> Result<Vec<TilePoint<K>>, PipelineError> {
    let bytes = std::fs::read(&file.path).map_err(|e| spill_err(&file.path, e))?;
    let size = TilePoint::<K>::BYTES;
    if bytes.len() as u64 != file.count.saturating_mul(size as u64) {
        return Err(spill_err(
            &file.path,
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{} bytes where {} records were written",
                    bytes.len(),
                    file.count
                ),
            ),
        ));
    }
    let out = bytes.chunks_exact(size).map(TilePoint::read_from).collect();
    drop(bytes);
    std::fs::remove_file(&file.path).map_err(|e| spill_err(&file.path, e))?;
    Ok(out)
}

/// Stream a file's records in batches to `f`, then delete it.
pub fn drain_file<const K: usize>(
    file: &PointFile,
    mut f: impl FnMut(&[TilePoint<K>]) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    let fh = File::open(&file.path).map_err(|e| spill_err(&file.path, e))?;
    let mut r = BufReader::with_capacity(1 << 20, fh);
    let mut left = file.count;
    let mut batch = Vec::with_capacity(65_536);
    let mut rec = vec![0u8; TilePoint::<K>::BYTES];
    while left > 0 {
        batch.clear();
        while left > 0 && batch.len() < 65_536 {
            r.read_exact(&mut rec)
                .map_err(|e| spill_err(&file.path, e))?;
            batch.push(TilePoint::read_from(&rec));
            left -= 1;
        }
        f(&batch)?;
    }
    drop(r);
    std::fs::remove_file(&file.path).map_err(|e| spill_err(&file.path, e))
}

/// An open cell file and how many records it holds.
type OpenCell = Option<(BufWriter<File>, u64)>;

/// Appends points to one file per octree cell from many threads at once.
pub struct CellWriter {
    dir: PathBuf,
    prefix: String,
    cells: Vec<OctTileId>,
    slots: Vec<Mutex<OpenCell>>,
}

impl CellWriter {
    /// One slot per cell in `cells` (looked up with [`CellWriter::slot`]).
    pub fn new(dir: &Path, prefix: &str, mut cells: Vec<OctTileId>) -> CellWriter {
        cells.sort_unstable();
        let slots = cells.iter().map(|_| Mutex::new(None)).collect();
        CellWriter {
            dir: dir.into(),
            prefix: prefix.into(),
            cells,
            slots,
        }
    }

    pub fn slot(&self, id: OctTileId) -> Option<usize> {
        self.cells.binary_search(&id).ok()
    }

    /// Append encoded records (`bytes`, `count` of them) to slot `i`.
    pub fn append(&self, i: usize, bytes: &[u8], count: u64) -> Result<(), PipelineError> {
        let id = self.cells[i];
        let path = file_path(&self.dir, &self.prefix, id);
        let mut g = self.slots[i].lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            let f = File::create(&path).map_err(|e| spill_err(&path, e))?;
            *g = Some((BufWriter::with_capacity(64 << 10, f), 0));
        }
        if let Some((w, n)) = g.as_mut() {
            w.write_all(bytes).map_err(|e| spill_err(&path, e))?;
            *n += count;
        }
        Ok(())
    }

    /// Flush and close every file; the non-empty cells, sorted by id.
    pub fn finish(self) -> Result<Vec<PointFile>, PipelineError> {
        let mut out = Vec::new();
        for (id, slot) in self.cells.into_iter().zip(self.slots) {
            let path = file_path(&self.dir, &self.prefix, id);
            if let Some((mut w, n)) = slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
                w.flush().map_err(|e| spill_err(&path, e))?;
                out.push(PointFile { id, path, count: n });
            }
        }
        Ok(out)
    }
}
