//! Inspecting a LAS/LAZ file and reading ranges of its points as columns.

use super::crs::declared_crs;
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
    /// Declared CRS and where it came from; `None` when the header has none.
    pub crs: Option<(CrsSpec, &'static str)>,
    /// Damaged CRS records, reported as a warning when `crs` is `None`.
    pub crs_problem: Option<String>,
    /// Points per LAZ chunk when chunks have a fixed size (seeks land on chunk starts).
    pub laz_chunk_points: Option<u64>,
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
    let (crs, crs_problem) = match declared_crs(&header) {
        Ok(c) => (c, None),
        Err(p) => (None, Some(p)),
    };
    let b = header.bounds();
    let attributes = PointAttributes {
        rgb: format.has_color,
        intensity: true,
        classification: true,
        returns: true,
    };
    // Many writers put 8-bit colours into LAS's 16-bit fields: look at the first points.
    let rgb_8bit = if format.has_color {
        let probe = read_points(&mut reader, path, 0..points.min(65_536))?;
        probe
            .rgb()
            .is_some_and(|mut it| it.all(|(r, g, b)| r <= 255 && g <= 255 && b <= 255))
    } else {
        false
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
        crs,
        crs_problem,
        laz_chunk_points,
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

/// Reads consecutive batches of one point range from its own open reader.
pub struct RangeReader<'a> {
    source: &'a LasSource,
    reader: Reader,
    next: u64,
    end: u64,
}

impl LasSource {
    pub fn open_range(&self, range: Range<u64>) -> Result<RangeReader<'_>, LasError> {
        let (mut reader, _) = open(&self.path)?;
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
        })
    }
}

impl RangeReader<'_> {
    /// Up to `max` more points as columns in the file's CRS; `None` at the range's end.
    pub fn next_batch(&mut self, max: u64) -> Result<Option<PointChunk>, LasError> {
        if self.next >= self.end {
            return Ok(None);
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
        Ok(Some(to_chunk(&pd, self.source)))
    }
}

fn to_chunk(pd: &PointData, src: &LasSource) -> PointChunk {
    let positions: Vec<[f64; 3]> = pd
        .x()
        .zip(pd.y())
        .zip(pd.z())
        .map(|((x, y), z)| [x, y, z])
        .collect();
    let rgb = pd.rgb().map(|it| {
        if src.rgb_8bit {
            it.map(|(r, g, b)| [r as u8, g as u8, b as u8]).collect()
        } else {
            it.map(|(r, g, b)| [(r >> 8) as u8, (g >> 8) as u8, (b >> 8) as u8])
                .collect()
        }
    });
    PointChunk {
        positions,
        rgb,
        intensity: Some(pd.intensity().collect()),
        classification: Some(pd.classification().collect()),
        return_number: Some(pd.return_number().collect()),
        number_of_returns: Some(pd.number_of_returns().collect()),
    }
}
