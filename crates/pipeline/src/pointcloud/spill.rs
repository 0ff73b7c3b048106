//! Temporary files holding points between passes, so memory does not grow with the input.
//! The cells of the first pass keep records in memory up to a fixed number of bytes
//! (writing to disk costs more than decoding on many machines) and write the rest.

use super::record::{RecordLayout, TilePoint};
use crate::error::PipelineError;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tessera_model::OctTileId;

fn spill_err(path: &Path, source: std::io::Error) -> PipelineError {
    PipelineError::Spill {
        path: path.into(),
        source,
    }
}

/// The point records of one octree node: `count` in all, the first ones in a file
/// (none when every record is held), then `held` in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct PointFile {
    pub id: OctTileId,
    pub path: PathBuf,
    pub count: u64,
    pub held: Vec<u8>,
}

impl PointFile {
    fn on_disk(&self, layout: &RecordLayout) -> u64 {
        self.count
            .saturating_sub((self.held.len() / layout.bytes()) as u64)
    }
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
    layout: &RecordLayout,
) -> Result<PointFile, PipelineError> {
    let path = file_path(dir, prefix, id);
    let mut buf = Vec::with_capacity(points.len() * layout.bytes());
    for p in points {
        layout.write(p, &mut buf);
    }
    std::fs::write(&path, &buf).map_err(|e| spill_err(&path, e))?;
    Ok(PointFile {
        id,
        path,
        count: points.len() as u64,
        held: Vec::new(),
    })
}

thread_local! {
    /// Each worker's buffer for the records it reads back, kept from one cell to the
    /// next: a new buffer per cell would be fresh pages from the system every time (large
    /// blocks go back to it when freed), and faulting them in costs more than reading.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Read the records a file holds on disk (`count` of them) into this thread's read
/// buffer, delete the file, and hand the bytes to `f`.
fn with_disk_part<R>(
    path: &Path,
    count: u64,
    size: usize,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, PipelineError> {
    if count == 0 {
        return Ok(f(&[]));
    }
    READ_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        buf.clear();
        let expected = count.saturating_mul(size as u64);
        File::open(path)
            .and_then(|mut file| {
                usize::try_from(expected)
                    .ok()
                    .and_then(|n| buf.try_reserve(n).ok())
                    .ok_or_else(|| {
                        std::io::Error::other(format!("no memory for {expected} bytes"))
                    })?;
                file.read_to_end(&mut buf)
            })
            .map_err(|e| spill_err(path, e))?;
        if buf.len() as u64 != expected {
            return Err(spill_err(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{} bytes where {count} records were written", buf.len()),
                ),
            ));
        }
        std::fs::remove_file(path).map_err(|e| spill_err(path, e))?;
        Ok(f(&buf))
    })
}

/// Every record of a node, in the order written; its file is deleted.
/// The records held in memory are released.
pub fn take_file<const K: usize>(
    file: &mut PointFile,
    layout: &RecordLayout,
) -> Result<Vec<TilePoint<K>>, PipelineError> {
    let size = layout.bytes();
    let on_disk = file.on_disk(layout);
    let held = std::mem::take(&mut file.held);
    file.count = 0;
    let mut out = Vec::with_capacity(on_disk as usize + held.len() / size);
    with_disk_part(&file.path, on_disk, size, |disk| {
        out.extend(disk.chunks_exact(size).map(|b| layout.read(b)));
    })?;
    out.extend(held.chunks_exact(size).map(|b| layout.read(b)));
    Ok(out)
}

/// Stream a node's records in batches to `f`; its file is deleted.
pub fn drain_file<const K: usize>(
    file: PointFile,
    layout: &RecordLayout,
    mut f: impl FnMut(&[TilePoint<K>]) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    const BATCH: usize = 65_536;
    let size = layout.bytes();
    let mut batch = Vec::with_capacity(BATCH);
    let mut emit = |bytes: &[u8]| {
        batch.clear();
        batch.extend(bytes.chunks_exact(size).map(|b| layout.read(b)));
        f(&batch)
    };
    let mut left = file.on_disk(layout);
    if left > 0 {
        let mut r = File::open(&file.path).map_err(|e| spill_err(&file.path, e))?;
        let mut buf = vec![0u8; BATCH * size];
        while left > 0 {
            let n = left.min(BATCH as u64) as usize * size;
            r.read_exact(&mut buf[..n])
                .map_err(|e| spill_err(&file.path, e))?;
            emit(&buf[..n])?;
            left -= (n / size) as u64;
        }
        drop(r);
        std::fs::remove_file(&file.path).map_err(|e| spill_err(&file.path, e))?;
    }
    for chunk in file.held.chunks(BATCH * size) {
        emit(chunk)?;
    }
    Ok(())
}

/// Files a [`CellWriter`] keeps open at once: a quarter of what the process may open
/// (the rest is for inputs, tiles and other writers), at most one per cell of a level-4
/// partition. Cells past that open their file for each write.
fn max_open_files() -> usize {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    (soft / 4).clamp(16, 4096) as usize
}

/// Direct I/O moves whole blocks: file offsets, lengths and buffer addresses are
/// multiples of this (the largest logical block size of common disks).
const DIRECT_ALIGN: usize = 4096;

/// Bytes a cell file gathers before it writes them.
const CELL_BUFFER: usize = 64 << 10;

/// A cell file written with direct I/O (`O_DIRECT`): spill records are written once and
/// read once, so the page cache gains nothing from them, and copying gigabytes into
/// newly allocated cache pages costs more CPU than decoding them on virtual machines
/// that hand freed memory back to their host. Records gather in an aligned buffer
/// written a whole buffer at a time; the last part is padded to a block and the file
/// cut back to its records on [`DirectFile::finish`].
struct DirectFile {
    file: File,
    /// `CELL_BUFFER` bytes from `start` are the aligned buffer.
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    written: u64,
}

impl DirectFile {
    /// Create `path` for direct writing; `None` where its file system does not
    /// support direct I/O.
    fn create(path: &Path) -> std::io::Result<Option<DirectFile>> {
        use std::os::unix::fs::OpenOptionsExt;
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        let file = match opened {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(None),
            Err(e) => return Err(e),
        };
        let buf = vec![0u8; CELL_BUFFER + DIRECT_ALIGN];
        let start = buf.as_ptr().align_offset(DIRECT_ALIGN);
        Ok(Some(DirectFile {
            file,
            buf,
            start,
            filled: 0,
            written: 0,
        }))
    }

    fn write_all(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let n = (CELL_BUFFER - self.filled).min(data.len());
            let at = self.start + self.filled;
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == CELL_BUFFER {
                self.file
                    .write_all(&self.buf[self.start..self.start + CELL_BUFFER])?;
                self.written += CELL_BUFFER as u64;
                self.filled = 0;
            }
        }
        Ok(())
    }

    /// Write what is left (padded to a whole block) and cut the padding off.
    fn finish(mut self) -> std::io::Result<()> {
        if self.filled > 0 {
            let padded = self.filled.next_multiple_of(DIRECT_ALIGN);
            self.buf[self.start + self.filled..self.start + padded].fill(0);
            self.file
                .write_all(&self.buf[self.start..self.start + padded])?;
            self.file.set_len(self.written + self.filled as u64)?;
        }
        Ok(())
    }
}

/// A cell file kept open: direct where the file system allows, else buffered.
enum OpenFile {
    Direct(DirectFile),
    Buffered(BufWriter<File>),
}

impl OpenFile {
    fn create(path: &Path) -> std::io::Result<OpenFile> {
        Ok(match DirectFile::create(path)? {
            Some(d) => OpenFile::Direct(d),
            None => OpenFile::Buffered(BufWriter::with_capacity(CELL_BUFFER, File::create(path)?)),
        })
    }

    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            OpenFile::Direct(d) => d.write_all(data),
            OpenFile::Buffered(w) => w.write_all(data),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            OpenFile::Direct(d) => d.finish(),
            OpenFile::Buffered(mut w) => w.flush(),
        }
    }
}

/// Where one cell's records go once they no longer fit in memory.
#[derive(Default)]
enum CellFile {
    /// Nothing written yet.
    #[default]
    None,
    /// Kept open.
    Open(OpenFile),
    /// Written and closed; reopened to append.
    Closed,
}

/// One cell's records: those written to its file (once it has one) and those held.
#[derive(Default)]
struct Cell {
    file: CellFile,
    count: u64,
    held: Vec<u8>,
}

/// Appends points to one file per octree cell from many threads at once, keeping up
/// to `hold_bytes` of records (all cells together, counted as allocated) in memory
/// instead.
pub struct CellWriter {
    dir: PathBuf,
    prefix: String,
    cells: Vec<OctTileId>,
    slots: Vec<Mutex<Cell>>,
    hold_bytes: usize,
    held: AtomicUsize,
    open_files: AtomicUsize,
    max_open_files: usize,
}

impl CellWriter {
    /// One slot per cell in `cells` (looked up with [`CellWriter::slot`]); records
    /// are held in memory while all cells together hold at most `hold_bytes`.
    pub fn new(
        dir: &Path,
        prefix: &str,
        mut cells: Vec<OctTileId>,
        hold_bytes: usize,
    ) -> CellWriter {
        cells.sort_unstable();
        let slots = cells.iter().map(|_| Mutex::new(Cell::default())).collect();
        CellWriter {
            dir: dir.into(),
            prefix: prefix.into(),
            cells,
            slots,
            hold_bytes,
            held: AtomicUsize::new(0),
            open_files: AtomicUsize::new(0),
            max_open_files: max_open_files(),
        }
    }

    /// Claim `n` bytes of the memory allowance, if that many are left.
    fn claim(&self, n: usize) -> bool {
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                (h + n <= self.hold_bytes).then_some(h + n)
            })
            .is_ok()
    }

    /// Add `bytes` to a cell's held records if the allowance covers the buffer's
    /// growth; the allowance counts allocated capacity, claimed before allocating.
    fn hold(&self, held: &mut Vec<u8>, bytes: &[u8]) -> bool {
        let need = held.len() + bytes.len();
        let cap = held.capacity();
        if need > cap {
            let want = need.max(cap * 2).max(64 << 10);
            if !self.claim(want - cap) {
                return false;
            }
            held.reserve_exact(want - held.len());
            let extra = held.capacity().saturating_sub(want);
            self.held.fetch_add(extra, Ordering::Relaxed);
        }
        held.extend_from_slice(bytes);
        true
    }

    pub fn slot(&self, id: OctTileId) -> Option<usize> {
        self.cells.binary_search(&id).ok()
    }

    /// Append encoded records (`bytes`, `count` of them) to slot `i`: held in memory
    /// while the allowance lasts; otherwise the cell's held records and these go to
    /// its file (in that order, so the file stays first).
    pub fn append(&self, i: usize, bytes: &[u8], count: u64) -> Result<(), PipelineError> {
        let mut g = self.slots[i].lock().unwrap_or_else(|p| p.into_inner());
        g.count += count;
        if self.hold(&mut g.held, bytes) {
            return Ok(());
        }
        let path = file_path(&self.dir, &self.prefix, self.cells[i]);
        let cell = &mut *g;
        match &mut cell.file {
            CellFile::Open(w) => w
                .write_all(&cell.held)
                .and_then(|_| w.write_all(bytes))
                .map_err(|e| spill_err(&path, e))?,
            CellFile::None
                if self
                    .open_files
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        (n < self.max_open_files).then_some(n + 1)
                    })
                    .is_ok() =>
            {
                let mut w = OpenFile::create(&path).map_err(|e| spill_err(&path, e))?;
                w.write_all(&cell.held)
                    .and_then(|_| w.write_all(bytes))
                    .map_err(|e| spill_err(&path, e))?;
                cell.file = CellFile::Open(w);
            }
            first_or_closed => {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| spill_err(&path, e))?;
                f.write_all(&cell.held)
                    .and_then(|_| f.write_all(bytes))
                    .map_err(|e| spill_err(&path, e))?;
                *first_or_closed = CellFile::Closed;
            }
        }
        self.held.fetch_sub(cell.held.capacity(), Ordering::Relaxed);
        cell.held = Vec::new();
        Ok(())
    }

    /// Flush and close every file; the non-empty cells, sorted by id.
    pub fn finish(self) -> Result<Vec<PointFile>, PipelineError> {
        let mut out = Vec::new();
        for (id, slot) in self.cells.into_iter().zip(self.slots) {
            let path = file_path(&self.dir, &self.prefix, id);
            let cell = slot.into_inner().unwrap_or_else(|p| p.into_inner());
            if let CellFile::Open(w) = cell.file {
                w.finish().map_err(|e| spill_err(&path, e))?;
            }
            if cell.count > 0 {
                out.push(PointFile {
                    id,
                    path,
                    count: cell.count,
                    held: cell.held,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: u64) -> TilePoint<1> {
        TilePoint {
            pos: [id as f64, 0.5, -2.0],
            id,
            rgb: [1, 2, 3],
            classification: 2,
            intensity: 7,
            return_number: 1,
            number_of_returns: 1,
            extra: [id as f64 * 1e-6],
        }
    }

    fn layout() -> RecordLayout {
        let keep = tessera_model::PointAttributes {
            rgb: true,
            rgb16: false,
            intensity: true,
            classification: true,
            returns: true,
        };
        RecordLayout::new(keep, 1, None, 3)
    }

    fn encoded(ids: std::ops::Range<u64>) -> Vec<u8> {
        let mut b = Vec::new();
        for i in ids {
            layout().write(&point(i), &mut b);
        }
        b
    }

    /// Cells keep their records in append order whether they are held, on disk or split
    /// between the two, and leave no file behind once read.
    #[test]
    fn cells_hold_then_spill_and_read_back_in_order() {
        // Nothing held; the first cell held, the second on disk, then the first's
        // buffer overflowing to disk and later records held again; everything held.
        // With every file kept open, and with none (each write reopens its file).
        for (hold, max_open) in [
            (0, 8),
            (0, 0),
            (100 << 10, 8),
            (100 << 10, 1),
            (64 << 20, 8),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let cells: Vec<OctTileId> = (0..2).map(|o| OctTileId::ROOT.child(o)).collect();
            let mut w = CellWriter::new(dir.path(), "cell", cells.clone(), hold);
            w.max_open_files = max_open;
            let a = w.slot(cells[0]).unwrap();
            let b = w.slot(cells[1]).unwrap();
            w.append(a, &encoded(0..3), 3).unwrap();
            w.append(b, &encoded(100_000..100_004), 4).unwrap();
            w.append(a, &encoded(3..2_003), 2_000).unwrap();
            w.append(a, &encoded(2_003..2_004), 1).unwrap();
            assert!(w.held.load(Ordering::Relaxed) <= hold);
            let on_disk = std::fs::read_dir(dir.path()).unwrap().count();
            assert_eq!(on_disk, if hold == 64 << 20 { 0 } else { 2 }, "hold {hold}");
            let files = w.finish().unwrap();
            assert_eq!(files.len(), 2);
            let mut it = files.into_iter();
            let mut first = it.next().unwrap();
            assert_eq!(first.count, 2_004);
            if hold == 100 << 10 {
                assert_eq!(
                    first.held.len(),
                    layout().bytes(),
                    "the last record is held"
                );
            }
            let ids: Vec<u64> = take_file::<1>(&mut first, &layout())
                .unwrap()
                .iter()
                .map(|p| p.id)
                .collect();
            assert_eq!(ids, (0..2_004).collect::<Vec<_>>(), "hold {hold}");
            let mut seen = Vec::new();
            drain_file::<1>(it.next().unwrap(), &layout(), |batch| {
                seen.extend(batch.iter().map(|p| p.id));
                Ok(())
            })
            .unwrap();
            assert_eq!(seen, (100_000..100_004).collect::<Vec<_>>(), "hold {hold}");
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }

    /// Direct and buffered cell files hold exactly the bytes written, whatever the
    /// pieces' sizes against the block and buffer sizes.
    #[test]
    fn cell_files_hold_exactly_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let pieces = [
            1usize,
            4095,
            4097,
            CELL_BUFFER - 3,
            7,
            CELL_BUFFER,
            2 * CELL_BUFFER + 11,
        ];
        let mut want = Vec::new();
        for (k, direct) in [true, false].into_iter().enumerate() {
            let path = dir.path().join(format!("f{k}"));
            let mut f = if direct {
                OpenFile::create(&path).unwrap()
            } else {
                OpenFile::Buffered(BufWriter::new(File::create(&path).unwrap()))
            };
            want.clear();
            for (j, &n) in pieces.iter().enumerate() {
                let piece: Vec<u8> = (0..n).map(|i| (i * 31 + j) as u8).collect();
                f.write_all(&piece).unwrap();
                want.extend_from_slice(&piece);
            }
            f.finish().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), want, "direct {direct}");
        }
    }
}
