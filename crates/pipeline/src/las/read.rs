//! Inspecting a LAS/LAZ file and reading ranges of its points as columns.

use super::crs::declared_crs;
use super::extra::{extra_layout, ExtraLayout};
use super::preflight::{preflight, Layout};
use crate::contain::contained;
use crate::error::LasError;
use las::{LazParallelism, PointData, PointDataBuilder, Reader, ReaderOptions};
use std::fs::File;
use std::io::BufReader;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use tessera_model::{Aabb, CrsSpec, PointAttributes, PointChunk};

/// What inspection learnt about one LAS/LAZ file.
#[derive(Debug, Clone)]
pub struct LasSource {
    pub path: PathBuf,
    pub points: u64,
    pub version: String,
    pub point_format: u8,
    pub compressed: bool,
    pub copc: bool,
    /// Header bounds in the file's CRS.
    pub bounds: Aabb,
    /// Coordinate resolution of the file (the header's x, y, z scale), in its CRS's units.
    pub scale: [f64; 3],
    pub attributes: PointAttributes,
    /// Colours stored in the low byte of the 16-bit fields (common in the wild).
    pub rgb_8bit: bool,
    /// Points carry a GPS time.
    pub gps_time: bool,
    /// Bytes after the standard fields of each point, and what they mean.
    pub extra_bytes: usize,
    pub extra: ExtraLayout,
    /// Declared CRS and where it came from; `None` when the header has none.
    pub crs: Option<(CrsSpec, &'static str)>,
    /// Damaged CRS records, reported as a warning when `crs` is `None`.
    pub crs_problem: Option<String>,
    /// Points per LAZ chunk when chunks have a fixed size (seeks land on chunk starts).
    pub laz_chunk_points: Option<u64>,
    /// Variable-size LAZ chunks (COPC, some writers): each is decoded on its own, so
    /// ranges of whole chunks can be read in parallel.
    pub laz_chunks: Option<LazChunks>,
}

/// The chunk table of a LAZ file with variable-size chunks.
#[derive(Debug, Clone)]
pub struct LazChunks {
    vlr: laz::LazVlr,
    /// Per chunk: first point, points, byte offset in the file, bytes.
    chunks: Vec<(u64, u64, u64, u64)>,
}

impl LazChunks {
    /// Index of the first point of every chunk, in order.
    pub fn starts(&self) -> impl Iterator<Item = u64> + '_ {
        self.chunks.iter().map(|c| c.0)
    }
}

/// Read the chunk table of a variable-chunk LAZ file (the preflight has checked it).
fn variable_chunks(path: &Path, header: &las::Header, points: u64) -> Result<LazChunks, LasError> {
    use std::io::{Read, Seek, SeekFrom};
    let vlr = header.laz_vlr().map_err(|e| LasError::Header {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut head = [0u8; 100];
    f.read_exact(&mut head).map_err(|e| io_err(path, e))?;
    let data_start = u64::from(u32::from_le_bytes([head[96], head[97], head[98], head[99]]));
    f.seek(SeekFrom::Start(data_start))
        .map_err(|e| io_err(path, e))?;
    let mut r = BufReader::new(f);
    let table = contained(AssertUnwindSafe(|| {
        laz::laszip::ChunkTable::read_from(&mut r, &vlr)
    }))
    .map_err(|_| "the chunk table is corrupt".to_string())
    .and_then(|t| t.map_err(|e| e.to_string()))
    .map_err(|reason| LasError::Header {
        path: path.into(),
        reason: format!("LAZ chunk table: {reason}"),
    })?;
    let mut chunks = Vec::with_capacity(table.as_ref().len());
    let (mut first, mut at) = (0u64, data_start + 8);
    for e in table.as_ref() {
        if first >= points {
            break;
        }
        let n = e.point_count.min(points - first);
        chunks.push((first, n, at, e.byte_count));
        first += n;
        at = at.saturating_add(e.byte_count);
    }
    if first < points {
        return Err(LasError::Truncated {
            path: path.into(),
            expected: points,
            found: first,
        });
    }
    Ok(LazChunks { vlr, chunks })
}

fn io_err(path: &Path, e: std::io::Error) -> LasError {
    LasError::Header {
        path: path.into(),
        reason: e.to_string(),
    }
}

/// Open a reader after [`preflight`] has checked every count and length the `las`/`laz`
/// crates would size allocations by.
fn open(path: &Path) -> Result<(Reader, Layout), LasError> {
    let file_len = std::fs::metadata(path).map_err(|e| io_err(path, e))?.len();
    let layout = preflight(path, file_len)?;
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let opts = ReaderOptions::default().with_laz_parallelism(LazParallelism::No);
    // The preflight refuses what is known to make a decoder panic; this stays as a last
    // line so an unknown case is still bad input, never a crash.
    let opened = contained(AssertUnwindSafe(|| {
        Reader::with_options(BufReader::with_capacity(1 << 20, file), opts)
    }));
    match opened {
        Ok(Ok(r)) if r.header().number_of_points() == layout.points => Ok((r, layout)),
        Ok(Ok(r)) => Err(LasError::Header {
            path: path.into(),
            reason: format!(
                "the point count changed while the file was read ({} then {})",
                layout.points,
                r.header().number_of_points()
            ),
        }),
        Ok(Err(e)) => Err(LasError::Header {
            path: path.into(),
            reason: e.to_string(),
        }),
        Err(_) => Err(LasError::Header {
            path: path.into(),
            reason: "the header or its records are corrupt".into(),
        }),
    }
}

/// Scale and offset must be finite (and the scale non-zero), the bounds finite.
fn check_transforms(path: &Path, header: &las::Header) -> Result<(), LasError> {
    let t = header.transforms();
    let b = header.bounds();
    let axes = [
        ('x', t.x, b.min.x, b.max.x),
        ('y', t.y, b.min.y, b.max.y),
        ('z', t.z, b.min.z, b.max.z),
    ];
    for (axis, tr, min, max) in axes {
        if tr.scale == 0.0 || !tr.scale.is_finite() {
            return Err(LasError::BadScale {
                path: path.into(),
                axis,
                value: tr.scale,
            });
        }
        if !tr.offset.is_finite() {
            return Err(LasError::BadOffset {
                path: path.into(),
                axis,
                value: tr.offset,
            });
        }
        if !min.is_finite() || !max.is_finite() {
            return Err(LasError::BadBounds {
                path: path.into(),
                axis,
                min,
                max,
            });
        }
    }
    Ok(())
}

/// Read the header and the first points; check what can be checked cheaply.
pub fn inspect(path: &Path) -> Result<LasSource, LasError> {
    let (mut reader, layout) = open(path)?;
    let header = reader.header().clone();
    check_transforms(path, &header)?;
    let points = layout.points;
    if points == 0 {
        return Err(LasError::Empty { path: path.into() });
    }
    let format = header.point_format();
    let compressed = format.is_compressed;
    let laz_chunk_points = if compressed {
        header
            .laz_vlr()
            .ok()
            .filter(|v| !v.uses_variable_size_chunks() && v.chunk_size() > 0)
            .map(|v| u64::from(v.chunk_size()))
    } else {
        None
    };
    let copc = header.vlrs().iter().any(|v| v.is_copc_info());
    let laz_chunks = if compressed && laz_chunk_points.is_none() {
        let chunked = header
            .laz_vlr()
            .is_ok_and(|v| v.uses_variable_size_chunks());
        if chunked {
            Some(variable_chunks(path, &header, points)?)
        } else {
            None
        }
    } else {
        None
    };
    let (crs, crs_problem) = match declared_crs(&header) {
        Ok(c) => (c, None),
        Err(p) => (None, Some(p)),
    };
    let b = header.bounds();
    // Many writers put 8-bit colours into LAS's 16-bit fields, others scale 8-bit
    // values up: look at the first points to tell both from real 16-bit colour.
    let (rgb_8bit, rgb16) = if format.has_color {
        let probe = read_points(&mut reader, path, 0..points.min(65_536))?;
        let low = probe
            .rgb()
            .is_some_and(|mut it| it.all(|(r, g, b)| r <= 255 && g <= 255 && b <= 255));
        let scaled_8bit = |v: u16| v & 0xff == 0 || v == (v >> 8) * 257;
        let deep = !low
            && probe.rgb().is_some_and(|mut it| {
                it.any(|(r, g, b)| !(scaled_8bit(r) && scaled_8bit(g) && scaled_8bit(b)))
            });
        (low, deep)
    } else {
        (false, false)
    };
    let attributes = PointAttributes {
        rgb: format.has_color,
        rgb16,
        intensity: true,
        classification: true,
        returns: true,
    };
    let extra_bytes = usize::from(format.extra_bytes);
    let extra = if extra_bytes > 0 {
        extra_layout(&header, extra_bytes)
    } else {
        ExtraLayout::default()
    };
    Ok(LasSource {
        path: path.into(),
        points,
        version: format!("{}.{}", header.version().major, header.version().minor),
        point_format: format.to_u8().unwrap_or(0),
        compressed,
        copc,
        bounds: Aabb {
            min: [b.min.x, b.min.y, b.min.z],
            max: [b.max.x, b.max.y, b.max.z],
        },
        scale: {
            let t = header.transforms();
            [t.x.scale.abs(), t.y.scale.abs(), t.z.scale.abs()]
        },
        attributes,
        rgb_8bit,
        gps_time: format.has_gps_time,
        extra_bytes,
        extra,
        crs,
        crs_problem,
        laz_chunk_points,
        laz_chunks,
    })
}

fn read_points(reader: &mut Reader, path: &Path, range: Range<u64>) -> Result<PointData, LasError> {
    let n = range.end - range.start;
    let decode_err = |reason: String| LasError::Decode {
        path: path.into(),
        start: range.start,
        end: range.end,
        reason,
    };
    let mut pd = PointDataBuilder::new().for_header(reader.header()).build();
    let got = contained(AssertUnwindSafe(|| -> las::Result<u64> {
        if range.start > 0 {
            reader.seek(range.start)?;
        }
        reader.fill_points(n, &mut pd)
    }));
    match got {
        Ok(Ok(k)) if k == n => Ok(pd),
        Ok(Ok(k)) => Err(LasError::Truncated {
            path: path.into(),
            expected: reader.header().number_of_points(),
            found: range.start + k,
        }),
        Ok(Err(e)) => {
            let msg = e.to_string();
            if msg.contains("failed to fill whole buffer") || msg.contains("UnexpectedEof") {
                Err(LasError::Truncated {
                    path: path.into(),
                    expected: reader.header().number_of_points(),
                    found: range.start,
                })
            } else {
                Err(decode_err(msg))
            }
        }
        Err(_) => Err(decode_err("the compressed stream is corrupt".into())),
    }
}

/// Where one requested extra column comes from in a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    GpsTime,
    /// Index into [`LasSource::extra`]'s fields.
    Extra(usize),
    /// The file does not have it: every point gets this value.
    Fill(f64),
}

/// Reads consecutive batches of one point range from its own open reader, or chunk by
/// chunk for variable-size chunks.
pub struct RangeReader<'a> {
    source: &'a LasSource,
    reader: Reader,
    next: u64,
    end: u64,
    columns: Vec<Column>,
    /// Variable-size chunks: the file and the next chunk's index.
    chunked: Option<(File, usize)>,
}

impl LasSource {
    /// Read `range`; each batch carries the standard fields and `columns` as extras.
    pub fn open_range(
        &self,
        range: Range<u64>,
        columns: Vec<Column>,
    ) -> Result<RangeReader<'_>, LasError> {
        let (mut reader, _) = open(&self.path)?;
        if let Some(lc) = &self.laz_chunks {
            let first = lc.chunks.partition_point(|c| c.0 < range.start);
            if lc.chunks.get(first).is_none_or(|c| c.0 != range.start) {
                return Err(LasError::Decode {
                    path: self.path.clone(),
                    start: range.start,
                    end: range.end,
                    reason: "the range does not start on a chunk".into(),
                });
            }
            let f = File::open(&self.path).map_err(|e| io_err(&self.path, e))?;
            return Ok(RangeReader {
                source: self,
                reader,
                next: range.start,
                end: range.end,
                columns,
                chunked: Some((f, first)),
            });
        }
        if range.start > 0 {
            let start = range.start;
            contained(AssertUnwindSafe(|| reader.seek(start)))
                .map_err(|_| "the compressed stream is corrupt".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map_err(|reason| LasError::Decode {
                    path: self.path.clone(),
                    start,
                    end: range.end,
                    reason,
                })?;
        }
        Ok(RangeReader {
            source: self,
            reader,
            next: range.start,
            end: range.end,
            columns,
            chunked: None,
        })
    }
}

impl RangeReader<'_> {
    /// Up to `max` more points as columns in the file's CRS; `None` at the range's end.
    pub fn next_batch(&mut self, max: u64) -> Result<Option<PointChunk>, LasError> {
        if self.next >= self.end {
            return Ok(None);
        }
        if self.chunked.is_some() {
            return self.next_chunk().map(Some);
        }
        let n = max.min(self.end - self.next);
        let range = self.next..self.next + n;
        // The reader is already positioned: read without seeking.
        let pd = read_points(&mut self.reader, &self.source.path, 0..n).map_err(|e| match e {
            LasError::Truncated {
                path,
                expected,
                found,
            } => LasError::Truncated {
                path,
                expected,
                found: range.start + found,
            },
            LasError::Decode { path, reason, .. } => LasError::Decode {
                path,
                start: range.start,
                end: range.end,
                reason,
            },
            other => other,
        })?;
        self.next += n;
        Ok(Some(to_chunk(&pd, self.source, &self.columns)))
    }
}

impl RangeReader<'_> {
    /// Decode the next whole chunk of a variable-chunk file.
    fn next_chunk(&mut self) -> Result<PointChunk, LasError> {
        use std::io::{Read, Seek, SeekFrom};
        let src = self.source;
        let Some(lc) = &src.laz_chunks else {
            return Err(LasError::Decode {
                path: src.path.clone(),
                start: self.next,
                end: self.end,
                reason: "no chunk table".into(),
            });
        };
        let Some((file, index)) = self.chunked.as_mut() else {
            return Err(LasError::Decode {
                path: src.path.clone(),
                start: self.next,
                end: self.end,
                reason: "no chunk table".into(),
            });
        };
        let (first, n, at, bytes) = lc.chunks[*index];
        let decode_err = |reason: String| LasError::Decode {
            path: src.path.clone(),
            start: first,
            end: first + n,
            reason,
        };
        let mut packed = vec![0u8; bytes as usize];
        file.seek(SeekFrom::Start(at))
            .and_then(|_| file.read_exact(&mut packed))
            .map_err(|_| LasError::Truncated {
                path: src.path.clone(),
                expected: src.points,
                found: first,
            })?;
        let mut pd = PointDataBuilder::new()
            .for_header(self.reader.header())
            .build();
        let out = pd.resize_for(n as usize);
        let entry = laz::laszip::ChunkTableEntry {
            point_count: n,
            byte_count: bytes,
        };
        contained(AssertUnwindSafe(|| {
            laz::par_decompress(&packed, out, &lc.vlr, &[entry])
        }))
        .map_err(|_| decode_err("the compressed stream is corrupt".into()))?
        .map_err(|e| decode_err(e.to_string()))?;
        *index += 1;
        self.next = first + n;
        Ok(to_chunk(&pd, src, &self.columns))
    }
}

fn to_chunk(pd: &PointData, src: &LasSource, columns: &[Column]) -> PointChunk {
    let positions: Vec<[f64; 3]> = pd
        .x()
        .zip(pd.y())
        .zip(pd.z())
        .map(|((x, y), z)| [x, y, z])
        .collect();
    let rgb = pd.rgb().map(|it| {
        if src.rgb_8bit {
            it.map(|(r, g, b)| [r * 257, g * 257, b * 257]).collect()
        } else {
            it.map(|(r, g, b)| [r, g, b]).collect()
        }
    });
    let n = pd.len();
    let record = pd.record_len();
    let extra_start = record - src.extra_bytes.min(record);
    let extras = columns
        .iter()
        .map(|c| match c {
            Column::GpsTime => pd
                .gps_time()
                .map_or_else(|| vec![0.0; n], |it| it.collect()),
            Column::Extra(i) => {
                let f = &src.extra.fields[*i];
                pd.raw_bytes()
                    .chunks_exact(record)
                    .map(|r| f.value(&r[extra_start..]))
                    .collect()
            }
            Column::Fill(v) => vec![*v; n],
        })
        .collect();
    PointChunk {
        positions,
        rgb,
        intensity: Some(pd.intensity().collect()),
        classification: Some(pd.classification().collect()),
        return_number: Some(pd.return_number().collect()),
        number_of_returns: Some(pd.number_of_returns().collect()),
        extras,
    }
}
