//! Opening a GeoTIFF: image levels (full resolution and overviews), masks, bands, sample
//! type, georeferencing and nodata. Pixels are read chunk by chunk (see `chunk.rs`).

use super::geokeys::{geo_transform, GeoKeys, KeyCrs};
use crate::error::RasterError;
use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tessera_model::{CrsSpec, GeoTransform};
use tiff::decoder::{Decoder, Limits};
use tiff::tags::Tag;

/// Rasters claiming more pixels than this are refused before any allocation.
pub const MAX_PIXELS: u64 = 1 << 36;
/// Largest decoded chunk (tile or strip) accepted, in bytes.
const MAX_CHUNK_BYTES: usize = 256 << 20;

pub(super) type TiffDecoder = Decoder<BufReader<File>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    F64,
}

impl SampleType {
    pub fn name(&self) -> &'static str {
        match self {
            SampleType::U8 => "Byte",
            SampleType::I8 => "Int8",
            SampleType::U16 => "UInt16",
            SampleType::I16 => "Int16",
            SampleType::U32 => "UInt32",
            SampleType::I32 => "Int32",
            SampleType::F32 => "Float32",
            SampleType::F64 => "Float64",
        }
    }
}

/// How the stored samples become bands.
#[derive(Debug, Clone, PartialEq)]
pub enum Photometric {
    Gray,
    Rgb,
    /// JPEG-compressed YCbCr, converted to RGB when read.
    YCbCr,
    /// 8- or 4-bit indices into a colour map (16-bit entries, scaled to 8 bit here).
    Palette(Vec<[u8; 3]>),
}

/// How a chunk's bytes are turned into samples.
#[derive(Debug, Clone)]
pub(super) enum Codec {
    /// The `tiff` crate decodes the chunk.
    Crate,
    /// Decoded here: palettes and 1-bit masks, which the crate refuses.
    Raw(RawLayout),
}

#[derive(Debug, Clone)]
pub(super) struct RawLayout {
    pub offsets: Vec<u64>,
    pub byte_counts: Vec<u64>,
    pub compression: u16,
    pub bits: u16,
}

/// One IFD holding the image (full resolution or an overview).
#[derive(Debug, Clone)]
pub struct Level {
    pub(super) ifd: usize,
    pub width: u32,
    pub height: u32,
    pub chunk_w: u32,
    pub chunk_h: u32,
    /// Tiles are stored padded to full size; strips are not.
    pub(super) tiled: bool,
    pub(super) across: u32,
    pub(super) chunks_per_plane: u32,
    pub(super) planar: bool,
    pub(super) codec: Codec,
    pub(super) mask: Option<MaskLevel>,
}

/// A GDAL internal mask IFD (1-bit transparency mask) matching a level's size.
#[derive(Debug, Clone)]
pub(super) struct MaskLevel {
    pub chunk_w: u32,
    pub chunk_h: u32,
    pub tiled: bool,
    pub across: u32,
    pub raw: RawLayout,
}

/// An opened GeoTIFF. Decoders are pooled so many threads can read chunks at once.
#[derive(Debug)]
pub struct GeoTiff {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// Stored samples per pixel (1 for palettes).
    pub samples: u16,
    /// Index of the alpha sample, if one is declared (ExtraSamples) or implied (RGBA, gray+alpha).
    pub alpha_sample: Option<u16>,
    pub sample: SampleType,
    pub photometric: Photometric,
    pub geo: GeoTransform,
    /// From the GeoKeys; `None` when absent or user-defined (see `crs_problem`).
    pub crs: Option<CrsSpec>,
    pub crs_problem: Option<String>,
    pub nodata: Option<f64>,
    /// `levels[0]` is full resolution, then overviews from fine to coarse.
    pub levels: Vec<Level>,
    /// Values outside this range (file units) are set aside as nodata when decoded, and
    /// counted: DEM heights beyond what Earth has. Infinite values always are.
    pub plausible: Option<(f32, f32)>,
    /// Pixels set aside that way, per decoded (level, chunk): a chunk decoded again after
    /// eviction is not counted twice.
    pub(super) implausible: Mutex<HashMap<(usize, u32), u64>>,
    pub(super) pool: Mutex<Vec<(usize, TiffDecoder)>>,
    pub(super) file: File,
    pub(super) file_len: u64,
}

fn header_err(path: &Path, e: impl std::fmt::Display) -> RasterError {
    RasterError::Header {
        path: path.into(),
        reason: e.to_string(),
    }
}

pub(super) fn open_decoder(path: &Path) -> Result<TiffDecoder, RasterError> {
    let f = File::open(path).map_err(|e| header_err(path, e))?;
    let mut limits = Limits::default();
    limits.decoding_buffer_size = MAX_CHUNK_BYTES;
    limits.ifd_value_size = 64 << 20;
    limits.intermediate_buffer_size = MAX_CHUNK_BYTES;
    Ok(Decoder::new(BufReader::new(f))
        .map_err(|e| header_err(path, e))?
        .with_limits(limits))
}

/// Tag values of the current IFD that matter here.
struct Ifd {
    width: u32,
    height: u32,
    subfile: u32,
    photometric: u16,
    samples: u16,
    bits: u16,
    format: u16,
    planar: bool,
    compression: u16,
    tiled: bool,
    chunk_w: u32,
    chunk_h: u32,
    extra: Vec<u16>,
}

fn read_ifd(d: &mut TiffDecoder, path: &Path) -> Result<Ifd, RasterError> {
    let e = |e: tiff::TiffError| header_err(path, e);
    let u = |d: &mut TiffDecoder, t: Tag, def: u32| -> Result<u32, RasterError> {
        Ok(d.find_tag_unsigned::<u32>(t).map_err(e)?.unwrap_or(def))
    };
    let width = u(d, Tag::ImageWidth, 0)?;
    let height = u(d, Tag::ImageLength, 0)?;
    let bits_vec: Vec<u16> = d
        .find_tag_unsigned_vec::<u16>(Tag::BitsPerSample)
        .map_err(e)?
        .unwrap_or_else(|| vec![1]);
    let bits = bits_vec.first().copied().unwrap_or(1);
    if bits_vec.iter().any(|b| *b != bits) {
        return Err(RasterError::Unsupported {
            path: path.into(),
            what: format!("bands with different bit depths ({bits_vec:?})"),
            hint: "Convert it with `gdal_translate -ot Byte` or similar".into(),
        });
    }
    let format_vec: Vec<u16> = d
        .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)
        .map_err(e)?
        .unwrap_or_else(|| vec![1]);
    let tiled = d.find_tag(Tag::TileWidth).map_err(e)?.is_some();
    let (chunk_w, chunk_h) = if tiled {
        (u(d, Tag::TileWidth, 0)?, u(d, Tag::TileLength, 0)?)
    } else {
        (width, u(d, Tag::RowsPerStrip, height)?.min(height.max(1)))
    };
    Ok(Ifd {
        width,
        height,
        subfile: u(d, Tag::NewSubfileType, 0)?,
        photometric: u(d, Tag::PhotometricInterpretation, 1)? as u16,
        samples: u(d, Tag::SamplesPerPixel, 1)? as u16,
        bits,
        format: format_vec.first().copied().unwrap_or(1),
        planar: u(d, Tag::PlanarConfiguration, 1)? == 2,
        compression: u(d, Tag::Compression, 1)? as u16,
        tiled,
        chunk_w,
        chunk_h,
        extra: d
            .find_tag_unsigned_vec::<u16>(Tag::ExtraSamples)
            .map_err(e)?
            .unwrap_or_default(),
    })
}

/// The chunk offsets and byte counts of the current IFD.
fn raw_layout_any(d: &mut TiffDecoder, ifd: &Ifd, path: &Path) -> Result<RawLayout, RasterError> {
    let e = |e: tiff::TiffError| header_err(path, e);
    let (ot, ct) = if ifd.tiled {
        (Tag::TileOffsets, Tag::TileByteCounts)
    } else {
        (Tag::StripOffsets, Tag::StripByteCounts)
    };
    let offsets = d.get_tag_u64_vec(ot).map_err(e)?;
    let byte_counts = d.get_tag_u64_vec(ct).map_err(e)?;
    if offsets.len() != byte_counts.len() {
        return Err(header_err(
            path,
            "chunk offsets and byte counts differ in length",
        ));
    }
    Ok(RawLayout {
        offsets,
        byte_counts,
        compression: ifd.compression,
        bits: ifd.bits,
    })
}

/// Palettes and masks are decompressed here, which knows fewer codecs than the crate.
fn raw_layout_codec(ifd: &Ifd, raw: RawLayout, path: &Path) -> Result<Codec, RasterError> {
    if !matches!(ifd.compression, 1 | 5 | 8 | 32946 | 32773) {
        return Err(RasterError::Unsupported {
            path: path.into(),
            what: format!("compression {} on a palette or mask image", ifd.compression),
            hint: "Re-save it with DEFLATE or LZW (`gdal_translate -co COMPRESS=DEFLATE`)".into(),
        });
    }
    Ok(Codec::Raw(raw))
}

fn raw_layout(d: &mut TiffDecoder, ifd: &Ifd, path: &Path) -> Result<RawLayout, RasterError> {
    match raw_layout_codec(ifd, raw_layout_any(d, ifd, path)?, path)? {
        Codec::Raw(raw) => Ok(raw),
        Codec::Crate => Err(header_err(path, "no chunk layout")),
    }
}

/// Bytes per stored sample (sub-byte samples round up to one).
fn sample_bytes(bits: u16) -> u128 {
    u128::from(bits.div_ceil(8).max(1))
}

/// Sizes an IFD declares, checked before anything is sized by them: pixel count, bands,
/// and the decoded size of one tile or strip (checked arithmetic: a 2^31 x 2^31 tile of 64
/// bands must not wrap around to a small number).
fn check_ifd(ifd: &Ifd, path: &Path, what: &str) -> Result<(), RasterError> {
    let (w, h) = (u64::from(ifd.width), u64::from(ifd.height));
    let place = if what == "the image" {
        String::new()
    } else {
        format!(" ({what})")
    };
    let implausible = |reason: String| RasterError::Implausible {
        path: path.into(),
        width: w,
        height: h,
        bands: u64::from(ifd.samples),
        reason: format!("{reason}{place}"),
    };
    if w == 0 || h == 0 {
        return Err(implausible("an empty image".into()));
    }
    if u128::from(w) * u128::from(h) > u128::from(MAX_PIXELS) {
        return Err(implausible(format!(
            "more than the {MAX_PIXELS} pixels Tessera accepts"
        )));
    }
    if ifd.samples == 0 || ifd.samples > 64 {
        return Err(implausible("an implausible band count".into()));
    }
    if ifd.chunk_w == 0 || ifd.chunk_h == 0 {
        return Err(implausible("a zero tile or strip size".into()));
    }
    let chunk_bytes = u128::from(ifd.chunk_w)
        * u128::from(ifd.chunk_h)
        * u128::from(ifd.samples)
        * sample_bytes(ifd.bits);
    if chunk_bytes > MAX_CHUNK_BYTES as u128 {
        return Err(implausible(format!(
            "and a tile or strip of {} x {} pixels ({} MB), too big to decode safely",
            ifd.chunk_w,
            ifd.chunk_h,
            chunk_bytes >> 20
        )));
    }
    Ok(())
}

/// Tiles or strips an IFD's size implies (all planes); they must be indexable by u32.
fn chunk_count(ifd: &Ifd, path: &Path) -> Result<usize, RasterError> {
    let across = u128::from(ifd.width.div_ceil(ifd.chunk_w.max(1)));
    let down = u128::from(ifd.height.div_ceil(ifd.chunk_h.max(1)));
    let planes = if ifd.planar {
        u128::from(ifd.samples)
    } else {
        1
    };
    let n = across * down * planes;
    if n > u128::from(u32::MAX) {
        return Err(RasterError::Implausible {
            path: path.into(),
            width: u64::from(ifd.width),
            height: u64::from(ifd.height),
            bands: u64::from(ifd.samples),
            reason: format!("and {n} tiles or strips, more than a TIFF can index"),
        });
    }
    usize::try_from(n).map_err(|_| header_err(path, "too many tiles or strips"))
}

/// Every tile or strip the image needs has an offset, and its bytes lie inside the file.
fn check_extents(
    raw: &RawLayout,
    needed: usize,
    file_len: u64,
    path: &Path,
) -> Result<(), RasterError> {
    if raw.offsets.len() < needed {
        return Err(header_err(
            path,
            format!(
                "the TIFF lists {} tile or strip offsets but its size needs {needed}",
                raw.offsets.len()
            ),
        ));
    }
    for (i, (off, count)) in raw.offsets.iter().zip(&raw.byte_counts).enumerate() {
        if *count == 0 {
            continue; // a sparse chunk: nodata, nothing stored
        }
        if off.checked_add(*count).is_none_or(|end| end > file_len) {
            return Err(header_err(
                path,
                format!(
                    "tile or strip {i} claims bytes {off}..{} but the file has only {file_len} bytes; the file is truncated or corrupt",
                    u128::from(*off) + u128::from(*count)
                ),
            ));
        }
    }
    Ok(())
}

fn sample_type(ifd: &Ifd, path: &Path) -> Result<SampleType, RasterError> {
    Ok(match (ifd.format, ifd.bits) {
        (1, 8) | (1, 4) | (1, 1) => SampleType::U8,
        (1, 16) => SampleType::U16,
        (1, 32) => SampleType::U32,
        (2, 8) => SampleType::I8,
        (2, 16) => SampleType::I16,
        (2, 32) => SampleType::I32,
        (3, 32) => SampleType::F32,
        (3, 64) => SampleType::F64,
        (f, b) => {
            let kind = match f {
                1 => "unsigned integer",
                2 => "signed integer",
                3 => "floating point",
                5 | 6 => "complex",
                _ => "unknown",
            };
            return Err(RasterError::Unsupported {
                path: path.into(),
                what: format!("the sample format ({b}-bit {kind})"),
                hint: "Tessera reads 8/16/32-bit integer and 32/64-bit float samples; convert \
                       with `gdal_translate -ot Float32` (or -ot Byte / UInt16)"
                    .into(),
            });
        }
    })
}

impl GeoTiff {
    /// Read the headers of every IFD; no pixel is decoded here.
    pub fn open(path: &Path) -> Result<GeoTiff, RasterError> {
        let file_len = std::fs::metadata(path)
            .map_err(|e| header_err(path, e))?
            .len();
        let mut d = open_decoder(path)?;
        let first = read_ifd(&mut d, path)?;
        let (w, h) = (u64::from(first.width), u64::from(first.height));
        check_ifd(&first, path, "the image")?;
        let compression_name = match first.compression {
            1 | 5 | 7 | 8 | 32773 | 32946 => None,
            6 => Some("old-style JPEG (6)"),
            34712 => Some("JPEG 2000 (34712)"),
            34887 => Some("LERC (34887)"),
            50000 => Some("ZSTD (50000)"),
            50001 => Some("WebP (50001)"),
            34925 => Some("LZMA (34925)"),
            _ => Some("this compression"),
        };
        if let Some(name) = compression_name {
            return Err(RasterError::Unsupported {
                path: path.into(),
                what: format!("{name} (TIFF compression code {})", first.compression),
                hint:
                    "Tessera reads uncompressed, DEFLATE, LZW, PackBits and JPEG TIFFs; re-save it \
                       with `gdal_translate -co COMPRESS=DEFLATE in.tif out.tif`"
                        .into(),
            });
        }
        let sample = sample_type(&first, path)?;
        let photometric = match (first.photometric, first.compression) {
            (0 | 1, _) => Photometric::Gray,
            (2, _) => Photometric::Rgb,
            (6, 7) => Photometric::YCbCr,
            (3, _) => {
                let map = d
                    .get_tag_u16_vec(Tag::ColorMap)
                    .map_err(|e| header_err(path, e))?;
                let n = if matches!(first.bits, 4 | 8) {
                    1usize << first.bits
                } else {
                    usize::MAX
                };
                if n == usize::MAX || map.len() < 3 * n || first.samples != 1 {
                    return Err(header_err(
                        path,
                        "palette image with a malformed colour map",
                    ));
                }
                Photometric::Palette(
                    (0..n)
                        .map(|i| {
                            [
                                (map[i] >> 8) as u8,
                                (map[n + i] >> 8) as u8,
                                (map[2 * n + i] >> 8) as u8,
                            ]
                        })
                        .collect(),
                )
            }
            (p, c) => {
                let what = match p {
                    5 => "CMYK colour".to_string(),
                    6 => format!("YCbCr colour with compression {c}"),
                    8..=10 => "CIE Lab colour".to_string(),
                    _ => format!("photometric interpretation {p}"),
                };
                return Err(RasterError::Unsupported {
                    path: path.into(),
                    what,
                    hint: "Convert it to RGB first, e.g. `gdal_translate -expand rgb` or \
                           `-co PHOTOMETRIC=RGB`"
                        .into(),
                });
            }
        };
        let alpha_sample = match (&photometric, first.samples, first.extra.first()) {
            (_, s, Some(1 | 2)) if s >= 2 => Some(s - first.extra.len() as u16),
            (Photometric::Rgb, 4, _) | (Photometric::Gray, 2, _) => Some(first.samples - 1),
            _ => None,
        };

        let keys = match d.find_tag(Tag::GeoKeyDirectoryTag) {
            Ok(Some(_)) => Some(GeoKeys::parse(
                &d.get_tag_u16_vec(Tag::GeoKeyDirectoryTag)
                    .map_err(|e| header_err(path, e))?,
            )),
            _ => None,
        };
        let (crs, crs_problem) = match keys.as_ref().map(GeoKeys::crs) {
            Some(KeyCrs::Epsg(c)) => (Some(c), None),
            Some(KeyCrs::UserDefined(what)) => {
                (None, Some(format!("the GeoTIFF keys hold {what}")))
            }
            Some(KeyCrs::Absent) => (None, Some("the GeoTIFF keys name no CRS".into())),
            None => (None, Some("no GeoTIFF keys (no CRS)".into())),
        };
        let pixel_is_point = keys.as_ref().is_some_and(GeoKeys::pixel_is_point);
        let f64s = |d: &mut TiffDecoder, t: Tag| -> Option<Vec<f64>> {
            d.find_tag(t).ok().flatten()?;
            d.get_tag_f64_vec(t).ok()
        };
        let geo = geo_transform(
            f64s(&mut d, Tag::ModelTransformationTag).as_deref(),
            f64s(&mut d, Tag::ModelTiepointTag).as_deref(),
            f64s(&mut d, Tag::ModelPixelScaleTag).as_deref(),
            pixel_is_point,
        )
        .ok_or_else(|| RasterError::NoGeoreference { path: path.into() })?;
        let nodata = d
            .find_tag(Tag::GdalNodata)
            .ok()
            .flatten()
            .and_then(|_| d.get_tag_ascii_string(Tag::GdalNodata).ok())
            .and_then(|s| s.trim_matches(char::from(0)).trim().parse::<f64>().ok());

        let samples = first.samples;
        let levels = Self::scan_levels(&mut d, first, path, file_len)?;
        let file = File::open(path).map_err(|e| header_err(path, e))?;
        Ok(GeoTiff {
            path: path.into(),
            width: w as u32,
            height: h as u32,
            samples,
            alpha_sample,
            sample,
            photometric,
            geo,
            crs,
            crs_problem,
            nodata,
            levels,
            plausible: None,
            implausible: Mutex::new(HashMap::new()),
            pool: Mutex::new(vec![(0, d)]),
            file,
            file_len,
        })
    }

    /// Walk all IFDs: the first is the image, reduced-resolution ones are overviews, and
    /// 1-bit transparency masks are attached to the level of the same size.
    fn scan_levels(
        d: &mut TiffDecoder,
        first: Ifd,
        path: &Path,
        file_len: u64,
    ) -> Result<Vec<Level>, RasterError> {
        let mut ifds = vec![(0usize, first)];
        let mut index = 0;
        while d.more_images() && index < 64 {
            index += 1;
            // A damaged or looping chain is refused rather than cut short in silence.
            d.next_image()
                .map_err(|e| header_err(path, format!("IFD {index}: {e}")))?;
            ifds.push((index, read_ifd(d, path)?));
        }
        let main_samples = ifds[0].1.samples;
        let main_bits = ifds[0].1.bits;
        let (main_w, main_h) = (ifds[0].1.width, ifds[0].1.height);
        let mut levels: Vec<Level> = Vec::new();
        let mut masks: Vec<(u32, u32, MaskLevel)> = Vec::new();
        for (i, ifd) in ifds {
            let is_mask = ifd.subfile & 4 != 0 && ifd.photometric == 4;
            if is_mask {
                if ifd.bits == 1 && ifd.samples == 1 && !ifd.planar {
                    check_ifd(&ifd, path, &format!("the mask in IFD {i}"))?;
                    d.seek_to_image(i).map_err(|e| header_err(path, e))?;
                    let raw = raw_layout(d, &ifd, path)?;
                    check_extents(&raw, chunk_count(&ifd, path)?, file_len, path)?;
                    masks.push((
                        ifd.width,
                        ifd.height,
                        MaskLevel {
                            chunk_w: ifd.chunk_w,
                            chunk_h: ifd.chunk_h,
                            tiled: ifd.tiled,
                            across: ifd.width.div_ceil(ifd.chunk_w.max(1)),
                            raw,
                        },
                    ));
                }
                continue;
            }
            let overview = ifd.subfile & 1 != 0;
            if i > 0 && (!overview || ifd.samples != main_samples || ifd.bits != main_bits) {
                continue;
            }
            if ifd.chunk_w == 0 || ifd.chunk_h == 0 || ifd.width == 0 || ifd.height == 0 {
                continue;
            }
            if i > 0 {
                if ifd.width > main_w || ifd.height > main_h {
                    return Err(header_err(
                        path,
                        format!(
                            "overview IFD {i} claims {} x {} pixels, more than the {main_w} x {main_h} image",
                            ifd.width, ifd.height
                        ),
                    ));
                }
                check_ifd(&ifd, path, &format!("overview IFD {i}"))?;
            }
            d.seek_to_image(i).map_err(|e| header_err(path, e))?;
            let chunks = chunk_count(&ifd, path)?;
            let raw = raw_layout_any(d, &ifd, path)?;
            check_extents(&raw, chunks, file_len, path)?;
            let codec = if ifd.photometric == 3 {
                raw_layout_codec(&ifd, raw, path)?
            } else {
                Codec::Crate
            };
            let across = ifd.width.div_ceil(ifd.chunk_w);
            let down = ifd.height.div_ceil(ifd.chunk_h);
            levels.push(Level {
                ifd: i,
                width: ifd.width,
                height: ifd.height,
                chunk_w: ifd.chunk_w,
                chunk_h: ifd.chunk_h,
                tiled: ifd.tiled,
                across,
                chunks_per_plane: across * down,
                planar: ifd.planar && ifd.samples > 1,
                codec,
                mask: None,
            });
        }
        for l in levels.iter_mut() {
            if let Some(pos) = masks
                .iter()
                .position(|(w, h, _)| *w == l.width && *h == l.height)
            {
                l.mask = Some(masks.swap_remove(pos).2);
            }
        }
        if levels.is_empty() {
            return Err(header_err(
                path,
                "the first IFD is a transparency mask, not an image",
            ));
        }
        levels[1..].sort_by_key(|l| std::cmp::Reverse(l.width));
        d.seek_to_image(0).map_err(|e| header_err(path, e))?;
        Ok(levels)
    }

    /// The transform of `level` (overviews cover the same extent with bigger pixels).
    pub fn level_geo(&self, level: usize) -> GeoTransform {
        let l = &self.levels[level];
        self.geo.scaled(
            f64::from(self.width) / f64::from(l.width),
            f64::from(self.height) / f64::from(l.height),
        )
    }

    /// Memory one worker holds while decoding the largest tile or strip of any level: the
    /// decoder's buffer of stored samples, the values (floats unless 8-bit) and the alpha
    /// plane. Returns the bytes and that chunk's size.
    pub fn chunk_working_bytes(&self) -> (u128, u32, u32) {
        let stored_bytes: u128 = match self.sample {
            SampleType::U8 | SampleType::I8 => 1,
            SampleType::U16 | SampleType::I16 => 2,
            SampleType::U32 | SampleType::I32 | SampleType::F32 => 4,
            SampleType::F64 => 8,
        };
        let value_bytes: u128 = if self.sample == SampleType::U8 { 1 } else { 4 };
        let bands = self.value_bands() as u128;
        self.levels
            .iter()
            .map(|l| {
                let px = u128::from(l.chunk_w) * u128::from(l.chunk_h);
                let bytes =
                    px * u128::from(self.samples) * stored_bytes + px * bands * value_bytes + px;
                (bytes, l.chunk_w, l.chunk_h)
            })
            .max()
            .unwrap_or((0, 0, 0))
    }

    /// Refuse a raster whose tiles or strips, decoded by `workers` threads at once next to
    /// a chunk cache of `cache_bytes`, would need more memory than `budget` allows.
    pub fn check_memory(
        &self,
        budget: &crate::refs::Budget,
        workers: usize,
        cache_bytes: usize,
    ) -> Result<(), RasterError> {
        let (per_worker, cw, ch) = self.chunk_working_bytes();
        let total = per_worker * workers.max(1) as u128 + cache_bytes as u128;
        let what = format!(
            "decoding its {cw} x {ch}-pixel tiles or strips on {workers} workers next to the {} MiB chunk cache",
            cache_bytes >> 20
        );
        budget
            .check(total, &what)
            .map_err(|reason| RasterError::Implausible {
                path: self.path.clone(),
                width: u64::from(self.width),
                height: u64::from(self.height),
                bands: u64::from(self.samples),
                reason: format!("and {reason}"),
            })
    }

    /// The finest level whose decoded chunks held implausible values, with how many
    /// pixels of it were set aside; `None` when none were.
    pub fn implausible_pixels(&self) -> Option<(usize, u64)> {
        let g = self.implausible.lock().unwrap_or_else(|p| p.into_inner());
        let level = g.keys().map(|k| k.0).min()?;
        let n = g
            .iter()
            .filter(|(k, _)| k.0 == level)
            .map(|(_, n)| *n)
            .sum();
        Some((level, n))
    }

    /// Bands a reader gets per pixel, alpha excluded: 3 for RGB, YCbCr and palettes.
    pub fn value_bands(&self) -> usize {
        let stored = match self.photometric {
            Photometric::Palette(_) | Photometric::YCbCr => 3,
            _ => usize::from(self.samples),
        };
        stored - usize::from(self.alpha_sample.is_some())
    }

    /// Label for reports: "791x718, 3 x Byte".
    pub fn describe(&self) -> String {
        format!(
            "{}x{}, {} x {}{}{}",
            self.width,
            self.height,
            self.samples,
            self.sample.name(),
            match self.levels.len() {
                1 => String::new(),
                n => format!(", {} overviews", n - 1),
            },
            if self.levels[0].mask.is_some() {
                ", mask"
            } else {
                ""
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifd(width: u32, height: u32, chunk: (u32, u32), samples: u16, bits: u16) -> Ifd {
        Ifd {
            width,
            height,
            subfile: 0,
            photometric: 1,
            samples,
            bits,
            format: 1,
            planar: false,
            compression: 1,
            tiled: true,
            chunk_w: chunk.0,
            chunk_h: chunk.1,
            extra: Vec::new(),
        }
    }

    fn reason(r: Result<(), RasterError>) -> String {
        r.map_err(|e| e.to_string()).unwrap_err()
    }

    #[test]
    fn ifd_sizes_are_checked_without_wrapping() {
        let p = Path::new("x.tif");
        assert!(check_ifd(&ifd(1000, 1000, (256, 256), 3, 8), p, "the image").is_ok());
        // 2^31 x 2^31 x 64 bands x 2 bytes is 2^69: zero in 64-bit arithmetic.
        let e = reason(check_ifd(
            &ifd(16, 16, (1 << 31, 1 << 31), 64, 16),
            p,
            "the image",
        ));
        assert!(e.contains("too big to decode safely"), "{e}");
        let e = reason(check_ifd(
            &ifd(16, 16, (16, 16), 65535, 8),
            p,
            "overview IFD 3",
        ));
        assert!(e.contains("implausible band count (overview IFD 3)"), "{e}");
        let e = reason(check_ifd(
            &ifd(u32::MAX, u32::MAX, (256, 256), 1, 8),
            p,
            "x",
        ));
        assert!(e.contains("more than the"), "{e}");
        let e = reason(check_ifd(&ifd(16, 16, (0, 16), 1, 8), p, "the image"));
        assert!(e.contains("zero tile"), "{e}");
    }

    #[test]
    fn chunk_extents_must_lie_in_the_file() {
        let p = Path::new("x.tif");
        let raw = |offsets: Vec<u64>, byte_counts: Vec<u64>| RawLayout {
            offsets,
            byte_counts,
            compression: 1,
            bits: 8,
        };
        assert!(check_extents(&raw(vec![8, 108], vec![100, 100]), 2, 208, p).is_ok());
        // Sparse chunks (no bytes) are nodata, wherever their offset points.
        assert!(check_extents(&raw(vec![8, 0], vec![100, 0]), 2, 108, p).is_ok());
        let e = reason(check_extents(&raw(vec![8, 108], vec![100, 101]), 2, 208, p));
        assert!(e.contains("tile or strip 1 claims bytes 108..209"), "{e}");
        let e = reason(check_extents(&raw(vec![u64::MAX], vec![2]), 1, 208, p));
        assert!(e.contains("truncated or corrupt"), "{e}");
        let e = reason(check_extents(&raw(vec![8], vec![100]), 4, 208, p));
        assert!(
            e.contains("lists 1 tile or strip offsets but its size needs 4"),
            "{e}"
        );
        let big = ifd(1 << 20, 1 << 20, (1, 1), 64, 8);
        assert!(chunk_count(&big, p).is_err());
        assert_eq!(
            chunk_count(&ifd(1000, 1000, (256, 256), 3, 8), p).unwrap(),
            16
        );
    }
}
