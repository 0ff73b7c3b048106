//! Checks a LAS/LAZ file's layout over its raw bytes before the `las` and `laz` crates
//! size anything from it: every count, offset and length the header, the VLRs, the laszip
//! record, the chunk table, the EVLRs and the COPC info declare is held against the real
//! file length and against each other. Those crates trust these fields (a VLR's u64 length
//! becomes an allocation, a chunk count becomes `Vec::with_capacity`, an empty item list a
//! panic), so a hostile header must be refused here, with a reason.

use crate::error::LasError;
use las::raw;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes of a VLR header (before its payload) and of an EVLR header.
const VLR_HEADER_BYTES: u64 = 54;
const EVLR_HEADER_BYTES: u64 = 60;
/// The laszip record's fixed part before its item list, and the size of one item.
const LASZIP_FIXED_BYTES: usize = 34;
const LASZIP_ITEM_BYTES: usize = 6;
/// `chunk_size` meaning "variable-size chunks" (0 is read as the same by `laz`).
const VARIABLE_CHUNKS: u32 = u32::MAX;
/// Smallest compressed chunk: a layered chunk starts with its u32 point count, a
/// point-wise one with its first point stored raw (at least 20 bytes).
const MIN_CHUNK_BYTES: u64 = 4;
/// One decoded chunk-table entry in memory (`laz::laszip::ChunkTableEntry`: two u64).
const CHUNK_ENTRY_BYTES: u64 = 16;
/// COPC hierarchy entries are 32 bytes each.
const COPC_ENTRY_BYTES: u64 = 32;

/// What the checks established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Points the `las` crate will report (legacy count unless 0, then the 64-bit one).
    pub points: u64,
}

/// The laszip record's fields that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Laszip {
    compressor: u16,
    chunk_size: u32,
    /// (type, size, version) per item.
    items: Vec<(u16, u16, u16)>,
}

/// A VLR header plus, for the records checked here, its payload.
struct VlrHead {
    user_id: [u8; 16],
    record_id: u16,
    length: u64,
}

impl VlrHead {
    fn is(&self, user: &str, record: u16) -> bool {
        let end = self.user_id.iter().position(|b| *b == 0).unwrap_or(16);
        &self.user_id[..end] == user.as_bytes() && self.record_id == record
    }
}

struct Checker<'a> {
    path: &'a Path,
    file_len: u64,
    read: BufReader<File>,
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl Checker<'_> {
    fn corrupt(&self, what: String) -> LasError {
        LasError::Corrupt {
            path: self.path.into(),
            what,
        }
    }

    fn io(&self, e: std::io::Error, what: &str) -> LasError {
        self.corrupt(format!("{what} cannot be read ({e})"))
    }

    fn seek(&mut self, at: u64, what: &str) -> Result<(), LasError> {
        self.read
            .seek(SeekFrom::Start(at))
            .map(|_| ())
            .map_err(|e| self.io(e, what))
    }

    fn bytes(&mut self, n: usize, what: &str) -> Result<Vec<u8>, LasError> {
        let mut b = vec![0u8; n];
        self.read.read_exact(&mut b).map_err(|e| self.io(e, what))?;
        Ok(b)
    }

    /// `start + len`, refused when it overflows or passes the end of the file.
    fn within(&self, start: u64, len: u64, what: &str) -> Result<u64, LasError> {
        match start.checked_add(len) {
            Some(end) if end <= self.file_len => Ok(end),
            _ => Err(self.corrupt(format!(
                "{what} claims bytes {start}..{} but the file has only {} bytes",
                start as u128 + len as u128,
                self.file_len
            ))),
        }
    }
}

/// Check `path` (of `file_len` bytes) as described in the module docs.
pub fn preflight(path: &Path, file_len: u64) -> Result<Layout, LasError> {
    let file = File::open(path).map_err(|e| LasError::Header {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let mut c = Checker {
        path,
        file_len,
        read: BufReader::with_capacity(64 << 10, file),
    };
    let header = raw::Header::read_from(&mut c.read).map_err(|e| LasError::Header {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let vlrs_start = c
        .read
        .stream_position()
        .map_err(|e| c.io(e, "the header"))?;
    let point_data = u64::from(header.offset_to_point_data);
    if point_data > file_len {
        return Err(c.corrupt(format!(
            "the header puts the point data at byte {point_data}, past the end of the file ({file_len} bytes)"
        )));
    }
    let (laszip, copc_info) = walk_vlrs(&mut c, &header, vlrs_start, point_data)?;
    let points = point_count(&header);
    let compressed = header.point_data_record_format & 0x80 != 0;
    let record_len = u64::from(header.point_data_record_length);
    if points > 0 && record_len == 0 {
        return Err(c.corrupt("the header declares a point record length of 0 bytes".into()));
    }
    let Some(point_bytes) = points.checked_mul(record_len) else {
        return Err(c.corrupt(format!(
            "the header promises {points} points of {record_len} bytes, more than any file can hold"
        )));
    };
    if point_data.checked_add(point_bytes).is_none() {
        return Err(c.corrupt(format!(
            "the header promises {points} points of {record_len} bytes, more than any file can hold"
        )));
    }
    if compressed {
        let Some(laszip) = laszip else {
            return Err(c.corrupt(
                "the point format is marked compressed (LAZ) but there is no laszip record".into(),
            ));
        };
        check_items(&c, &laszip, record_len)?;
        check_chunks(&mut c, &laszip, points, point_data)?;
    } else if point_bytes > file_len - point_data {
        let room = file_len - point_data;
        return Err(LasError::Truncated {
            path: path.into(),
            expected: points,
            found: room / record_len.max(1),
        });
    }
    let hierarchy = walk_evlrs(&mut c, &header)?;
    if let Some(info) = copc_info {
        check_copc(&c, &info, hierarchy)?;
    }
    Ok(Layout { points })
}

/// The count the `las` crate uses: the legacy field unless it is 0, then the 64-bit one.
fn point_count(h: &raw::Header) -> u64 {
    if h.number_of_point_records > 0 {
        u64::from(h.number_of_point_records)
    } else {
        h.large_file.map_or(0, |l| l.number_of_point_records)
    }
}

/// Walk the VLR headers between the public header and the point data; return the
/// laszip record and the COPC info payload when present.
fn walk_vlrs(
    c: &mut Checker,
    h: &raw::Header,
    start: u64,
    point_data: u64,
) -> Result<(Option<Laszip>, Option<Vec<u8>>), LasError> {
    let count = u64::from(h.number_of_variable_length_records);
    let room = point_data.saturating_sub(start);
    if count.saturating_mul(VLR_HEADER_BYTES) > room {
        return Err(c.corrupt(format!(
            "the header declares {count} VLRs (at least {VLR_HEADER_BYTES} bytes each) but only {room} bytes lie between the header and the point data"
        )));
    }
    let (mut laszip, mut copc) = (None, None);
    let mut at = start;
    for i in 0..count {
        c.seek(at, "a VLR header")?;
        let head = read_vlr_head(c, false)?;
        let end = at + VLR_HEADER_BYTES + head.length;
        if end > point_data {
            return Err(c.corrupt(format!(
                "VLR {i} ends at byte {end}, past the start of the point data at byte {point_data}"
            )));
        }
        if head.is("laszip encoded", 22204) {
            let data = c.bytes(head.length as usize, "the laszip record")?;
            laszip = Some(parse_laszip(c, &data)?);
        } else if head.is("copc", 1) {
            copc = Some(c.bytes(head.length as usize, "the COPC info record")?);
        }
        at = end;
    }
    Ok((laszip, copc))
}

fn read_vlr_head(c: &mut Checker, extended: bool) -> Result<VlrHead, LasError> {
    let n = if extended {
        EVLR_HEADER_BYTES
    } else {
        VLR_HEADER_BYTES
    };
    let b = c.bytes(n as usize, "a VLR header")?;
    let mut user_id = [0u8; 16];
    user_id.copy_from_slice(&b[2..18]);
    let length = if extended {
        le_u64(&b, 20)
    } else {
        u64::from(le_u16(&b, 20))
    };
    Ok(VlrHead {
        user_id,
        record_id: le_u16(&b, 18),
        length,
    })
}

fn parse_laszip(c: &Checker, data: &[u8]) -> Result<Laszip, LasError> {
    if data.len() < LASZIP_FIXED_BYTES {
        return Err(c.corrupt(format!(
            "the laszip record is {} bytes, shorter than its fixed {LASZIP_FIXED_BYTES}",
            data.len()
        )));
    }
    let n = usize::from(le_u16(data, 32));
    let need = LASZIP_FIXED_BYTES + n * LASZIP_ITEM_BYTES;
    if data.len() < need {
        return Err(c.corrupt(format!(
            "the laszip record lists {n} point fields ({need} bytes) but holds only {} bytes",
            data.len()
        )));
    }
    let items = (0..n)
        .map(|i| {
            let at = LASZIP_FIXED_BYTES + i * LASZIP_ITEM_BYTES;
            (le_u16(data, at), le_u16(data, at + 2), le_u16(data, at + 4))
        })
        .collect();
    Ok(Laszip {
        compressor: le_u16(data, 0),
        chunk_size: match le_u32(data, 12) {
            0 => VARIABLE_CHUNKS,
            v => v,
        },
        items,
    })
}

/// Name and fixed size of a laszip item type (`None` for the extra-byte types, whose
/// size is their own).
fn item_kind(t: u16) -> Option<(&'static str, Option<u16>)> {
    Some(match t {
        0 => ("extra bytes", None),
        6 => ("point10", Some(20)),
        7 => ("GPS time", Some(8)),
        8 => ("RGB12", Some(6)),
        9 => ("wave packet13", Some(29)),
        10 => ("point14", Some(30)),
        11 => ("RGB14", Some(6)),
        12 => ("RGBNIR14", Some(8)),
        13 => ("wave packet14", Some(29)),
        14 => ("extra bytes14", None),
        _ => return None,
    })
}

/// The item list must describe the header's point record exactly: the decompressor
/// splits its output by the items' sizes and writes each field's own size.
fn check_items(c: &Checker, z: &Laszip, record_len: u64) -> Result<(), LasError> {
    if z.items.is_empty() {
        return Err(c.corrupt("the laszip record lists no point fields (item count 0)".into()));
    }
    let layered = matches!(z.items[0].2, 3 | 4);
    let mut total = 0u64;
    for (i, &(t, size, version)) in z.items.iter().enumerate() {
        let Some((name, fixed)) = item_kind(t) else {
            return Err(c.corrupt(format!("laszip point field {i} has unknown type {t}")));
        };
        if size == 0 {
            return Err(c.corrupt(format!("laszip point field {i} ({name}) has size 0 bytes")));
        }
        if let Some(f) = fixed.filter(|f| *f != size) {
            return Err(c.corrupt(format!(
                "laszip point field {i} ({name}) claims {size} bytes; that field has {f}"
            )));
        }
        if !matches!(version, 1..=4) || matches!(version, 3 | 4) != layered {
            return Err(c.corrupt(format!(
                "laszip point field {i} ({name}) has compressor version {version}, which does not fit the other fields"
            )));
        }
        total += u64::from(size);
    }
    if total != record_len {
        return Err(c.corrupt(format!(
            "the laszip fields add up to {total}-byte points but the header declares {record_len}-byte points"
        )));
    }
    let compressor_fits = match z.compressor {
        1 | 2 => !layered,
        3 => layered,
        _ => false,
    };
    if !compressor_fits {
        return Err(c.corrupt(format!(
            "the laszip record names compressor {}, which does not fit its fields",
            z.compressor
        )));
    }
    Ok(())
}

/// The chunk table as `laz` reads it: an i64 offset at the start of the point data (or,
/// when the writer could not fill it in, in the last 8 bytes of the file), then a version,
/// a chunk count and the arithmetic-coded entries.
fn check_chunks(c: &mut Checker, z: &Laszip, points: u64, point_data: u64) -> Result<(), LasError> {
    if z.compressor == 1 {
        // Point-wise compression without chunks: no table to check.
        return Ok(());
    }
    c.within(point_data, 8, "the chunk table offset")?;
    c.seek(point_data, "the chunk table offset")?;
    let mut table_at = i64::from_le_bytes(eight(c)?);
    if table_at <= point_data as i64 {
        c.within(0, 8, "the chunk table offset at the end of the file")?;
        c.seek(
            c.file_len - 8,
            "the chunk table offset at the end of the file",
        )?;
        table_at = i64::from_le_bytes(eight(c)?);
    }
    if table_at <= point_data as i64 {
        if z.chunk_size == VARIABLE_CHUNKS {
            return Err(
                c.corrupt("the LAZ file has variable-size chunks but no chunk table".into())
            );
        }
        // `laz` reads on without a table (no seeking); nothing more to check.
        return Ok(());
    }
    let table_at = table_at as u64;
    c.within(table_at, 8, "the chunk table")?;
    c.seek(table_at, "the chunk table")?;
    let head = eight(c)?;
    let chunks = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
    let data_bytes = table_at.saturating_sub(point_data + 8);
    if chunks.saturating_mul(MIN_CHUNK_BYTES) > data_bytes {
        return Err(c.corrupt(format!(
            "the LAZ chunk table claims {chunks} chunks but only {data_bytes} bytes of compressed points precede it"
        )));
    }
    crate::refs::Budget::default()
        .check(
            u128::from(chunks) * u128::from(CHUNK_ENTRY_BYTES),
            "the LAZ chunk table",
        )
        .map_err(|e| c.corrupt(e))?;
    if points > 0 && chunks == 0 {
        return Err(c.corrupt(format!(
            "the header promises {points} points but the LAZ chunk table lists no chunks"
        )));
    }
    let variable = z.chunk_size == VARIABLE_CHUNKS;
    c.seek(table_at, "the chunk table")?;
    let read = &mut c.read;
    let table = crate::contain::contained(std::panic::AssertUnwindSafe(|| {
        laz::laszip::ChunkTable::read(read, variable)
    }))
    .map_err(|_| c.corrupt("the LAZ chunk table does not decode".into()))?
    .map_err(|e| c.io(e, "the LAZ chunk table"))?;
    let entries = table.as_ref();
    let stored = entries
        .iter()
        .try_fold(0u64, |s, e| s.checked_add(e.byte_count))
        .unwrap_or(u64::MAX);
    if stored > data_bytes {
        return Err(c.corrupt(format!(
            "the LAZ chunk table sizes its chunks at {stored} bytes but only {data_bytes} bytes of compressed points precede it"
        )));
    }
    let capacity = if variable {
        entries
            .iter()
            .try_fold(0u64, |s, e| s.checked_add(e.point_count))
            .unwrap_or(u64::MAX)
    } else {
        chunks.saturating_mul(u64::from(z.chunk_size))
    };
    // Every fixed-size chunk but the last is full (one empty trailing chunk is tolerated):
    // fewer points than that means the chunk size or the count was tampered with.
    let floor = chunks
        .saturating_sub(2)
        .saturating_mul(u64::from(z.chunk_size));
    if !variable && points <= floor && points > 0 {
        return Err(c.corrupt(format!(
            "the header promises {points} points but the LAZ chunk table's {chunks} chunks of {} hold more than {floor}",
            z.chunk_size
        )));
    }
    if z.compressor == 3 {
        check_layers(c, z, entries, point_data + 8)?;
    }
    if points > capacity {
        let how = if variable {
            format!("{chunks} chunks")
        } else {
            format!("{chunks} chunks of {}", z.chunk_size)
        };
        return Err(c.corrupt(format!(
            "the header promises {points} points but the LAZ chunk table holds at most {capacity} ({how})"
        )));
    }
    Ok(())
}

/// Layered chunks (LAS 1.4 formats) start with the first point, the chunk's point count and
/// one u32 byte count per layer; `laz` allocates each layer by its count before reading it,
/// so every chunk's counts must fit inside the chunk's bytes.
fn check_layers(
    c: &mut Checker,
    z: &Laszip,
    entries: &[laz::laszip::ChunkTableEntry],
    first_chunk: u64,
) -> Result<(), LasError> {
    let mut layers = 0usize;
    let mut first_point = 0usize;
    for &(t, size, _) in &z.items {
        first_point += usize::from(size);
        layers += match t {
            10 => 9,
            12 => 2,
            14 => usize::from(size),
            _ => 1,
        };
    }
    let head = first_point + 4 + 4 * layers;
    let mut at = first_chunk;
    for (i, e) in entries.iter().enumerate() {
        if e.byte_count == 0 {
            continue;
        }
        if (e.byte_count as usize) < head {
            return Err(c.corrupt(format!(
                "LAZ chunk {i} is {} bytes, too short for its own header of {head}",
                e.byte_count
            )));
        }
        c.seek(at, "a LAZ chunk")?;
        let b = c.bytes(head, "a LAZ chunk's layer sizes")?;
        let sizes = b[first_point + 4..].chunks_exact(4).fold(0u64, |s, w| {
            s + u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        });
        let room = e.byte_count - head as u64;
        if sizes > room {
            return Err(c.corrupt(format!(
                "LAZ chunk {i} declares {sizes} bytes of layers in {room} bytes"
            )));
        }
        at = at.saturating_add(e.byte_count);
    }
    Ok(())
}

fn eight(c: &mut Checker) -> Result<[u8; 8], LasError> {
    let b = c.bytes(8, "the chunk table")?;
    let mut a = [0u8; 8];
    a.copy_from_slice(&b);
    Ok(a)
}

/// Walk the EVLR headers (LAS 1.4): each must lie inside the file, its u64 length
/// included. Returns the COPC hierarchy EVLR's payload range when there is one.
fn walk_evlrs(c: &mut Checker, h: &raw::Header) -> Result<Option<(u64, u64)>, LasError> {
    let Some(e) = h.evlr else {
        return Ok(None);
    };
    let count = u64::from(e.number_of_evlrs);
    let start = e.start_of_first_evlr;
    c.within(start, EVLR_HEADER_BYTES, "the first EVLR")?;
    let room = c.file_len - start;
    if count.saturating_mul(EVLR_HEADER_BYTES) > room {
        return Err(c.corrupt(format!(
            "the header declares {count} EVLRs (at least {EVLR_HEADER_BYTES} bytes each) but only {room} bytes follow the first"
        )));
    }
    let mut hierarchy = None;
    let mut at = start;
    for i in 0..count {
        c.within(at, EVLR_HEADER_BYTES, &format!("EVLR {i}"))?;
        c.seek(at, "an EVLR header")?;
        let head = read_vlr_head(c, true)?;
        let data_at = at + EVLR_HEADER_BYTES;
        let end = c.within(data_at, head.length, &format!("EVLR {i}"))?;
        if head.is("copc", 1000) {
            hierarchy = Some((data_at, head.length));
        }
        at = end;
    }
    Ok(hierarchy)
}

/// The COPC info's root hierarchy page must lie inside the hierarchy EVLR (when there is
/// one) and the file, and be a whole number of 32-byte entries.
fn check_copc(c: &Checker, info: &[u8], hierarchy: Option<(u64, u64)>) -> Result<(), LasError> {
    if info.len() < 160 {
        return Err(c.corrupt(format!(
            "the COPC info record is {} bytes, not 160",
            info.len()
        )));
    }
    let (offset, size) = (le_u64(info, 40), le_u64(info, 48));
    let end = c.within(offset, size, "the COPC root hierarchy page")?;
    if size % COPC_ENTRY_BYTES != 0 {
        return Err(c.corrupt(format!(
            "the COPC root hierarchy page is {size} bytes, not a whole number of {COPC_ENTRY_BYTES}-byte entries"
        )));
    }
    if let Some((h_at, h_len)) = hierarchy {
        if offset < h_at || end > h_at + h_len {
            return Err(c.corrupt(format!(
                "the COPC root hierarchy page (bytes {offset}..{end}) lies outside the hierarchy EVLR (bytes {h_at}..{})",
                h_at + h_len
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use las::{Builder, Point, Writer};

    /// A LAS (or LAZ) file of `n` points written by the `las` crate.
    fn write(dir: &Path, name: &str, n: u32, compress: bool) -> (std::path::PathBuf, Vec<u8>) {
        let path = dir.join(name);
        let mut b = Builder::from((1, 2));
        b.point_format.is_compressed = compress;
        let mut w = Writer::from_path(&path, b.into_header().unwrap()).unwrap();
        for i in 0..n {
            w.write_point(Point {
                x: f64::from(i),
                y: 1.0,
                z: 2.0,
                ..Default::default()
            })
            .unwrap();
        }
        w.close().unwrap();
        drop(w);
        let bytes = std::fs::read(&path).unwrap();
        (path, bytes)
    }

    fn check(path: &Path, bytes: &[u8]) -> Result<Layout, String> {
        std::fs::write(path, bytes).unwrap();
        preflight(path, bytes.len() as u64).map_err(|e| e.to_string())
    }

    fn laszip_at(b: &[u8]) -> usize {
        let header = usize::from(le_u16(b, 94));
        assert_eq!(&b[header + 2..header + 16], b"laszip encoded");
        header + VLR_HEADER_BYTES as usize
    }

    #[test]
    fn valid_files_pass_with_their_count() {
        let dir = tempfile::tempdir().unwrap();
        for compress in [false, true] {
            let (p, b) = write(dir.path(), "a.laz", 1000, compress);
            assert_eq!(check(&p, &b).unwrap(), Layout { points: 1000 });
        }
    }

    #[test]
    fn uncompressed_counts_beyond_the_file_are_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let (p, mut b) = write(dir.path(), "a.las", 10, false);
        b[107..111].copy_from_slice(&11u32.to_le_bytes());
        let e = check(&p, &b).unwrap_err();
        assert!(
            e.contains("promises 11 points but the file holds only 10"),
            "{e}"
        );
        b[107..111].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(check(&p, &b).unwrap_err().contains("truncated"));
    }

    #[test]
    fn laszip_items_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (p, b) = write(dir.path(), "a.laz", 100, true);
        let z = laszip_at(&b);
        let mut bad = b.clone();
        bad[z + 32..z + 34].copy_from_slice(&0u16.to_le_bytes());
        assert!(check(&p, &bad).unwrap_err().contains("item count 0"));
        let mut bad = b.clone();
        bad[z + 36..z + 38].copy_from_slice(&0u16.to_le_bytes());
        assert!(check(&p, &bad).unwrap_err().contains("size 0 bytes"));
        let mut bad = b.clone();
        bad[z + 34..z + 36].copy_from_slice(&99u16.to_le_bytes());
        assert!(check(&p, &bad).unwrap_err().contains("unknown type 99"));
        let mut bad = b.clone();
        bad[z..z + 2].copy_from_slice(&3u16.to_le_bytes());
        assert!(check(&p, &bad).unwrap_err().contains("compressor 3"));
        // The header's record length no longer matching the fields.
        let mut bad = b;
        bad[105..107].copy_from_slice(&21u16.to_le_bytes());
        let e = check(&p, &bad).unwrap_err();
        assert!(
            e.contains("20-byte points but the header declares 21-byte"),
            "{e}"
        );
    }

    #[test]
    fn chunk_counts_are_held_to_the_data_and_the_points() {
        let dir = tempfile::tempdir().unwrap();
        let (p, b) = write(dir.path(), "a.laz", 100, true);
        let data = le_u32(&b, 96) as usize;
        let table = le_u64(&b, data) as usize;
        let mut bad = b.clone();
        bad[table + 4..table + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(check(&p, &bad).unwrap_err().contains("4294967295 chunks"));
        let mut bad = b.clone();
        bad[table + 4..table + 8].copy_from_slice(&0u32.to_le_bytes());
        assert!(check(&p, &bad).unwrap_err().contains("lists no chunks"));
        // One chunk of 50 000 points cannot hold 50 001.
        let mut bad = b;
        bad[107..111].copy_from_slice(&50_001u32.to_le_bytes());
        let e = check(&p, &bad).unwrap_err();
        assert!(e.contains("at most 50000 (1 chunks of 50000)"), "{e}");
    }

    #[test]
    fn fixed_chunks_must_be_full_but_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let (p, b) = write(dir.path(), "a.laz", 2500, true);
        let z = laszip_at(&b);
        // 1000-point chunks: 3 of them hold 2001..=3000 points.
        let mut b2 = b.clone();
        b2[z + 12..z + 16].copy_from_slice(&1000u32.to_le_bytes());
        std::fs::write(&p, &b2).unwrap();
        let file_len = b2.len() as u64;
        let table = le_u64(&b2, le_u32(&b2, 96) as usize) as usize;
        let chunks = le_u32(&b2, table + 4);
        assert_eq!(chunks, 1, "one 50000-point chunk was written");
        assert!(
            preflight(&p, file_len).is_err(),
            "2500 points in one 1000-point chunk"
        );
        // A chunk size raised far beyond the points: the other chunks would be empty.
        let (p, b) = write(dir.path(), "b.laz", 120_000, true);
        let z = laszip_at(&b);
        let mut bad = b.clone();
        bad[z + 12..z + 16].copy_from_slice(&10u32.to_le_bytes());
        let e = check(&p, &bad).unwrap_err();
        assert!(e.contains("at most 30 (3 chunks of 10)"), "{e}");
        assert!(check(&p, &b).is_ok());
        let mut small = b;
        small[107..111].copy_from_slice(&50_000u32.to_le_bytes());
        let e = check(&p, &small).unwrap_err();
        assert!(e.contains("3 chunks of 50000 hold more than 50000"), "{e}");
    }

    #[test]
    fn missing_laszip_record_and_short_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (p, b) = write(dir.path(), "a.laz", 10, true);
        let z = laszip_at(&b);
        let mut bad = b.clone();
        bad[z - VLR_HEADER_BYTES as usize + 2] = b'X';
        assert!(check(&p, &bad).unwrap_err().contains("no laszip record"));
        let e = check(&p, &b[..200]).unwrap_err();
        assert!(e.contains("not a readable LAS/LAZ"), "{e}");
    }
}
