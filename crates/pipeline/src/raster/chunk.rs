//! Decoding one chunk (tile or strip) of a level into float values plus an alpha plane.
//! The `tiff` crate decodes ordinary chunks; palettes and 1-bit masks, which it refuses,
//! are decompressed here.

use super::geotiff::{open_decoder, Codec, GeoTiff, Photometric, RawLayout};
use crate::error::RasterError;
use std::io::Read;
use tiff::decoder::DecodingResult;

/// Sample values, pixel-interleaved: bytes for 8-bit imagery (a quarter of the memory),
/// floats for everything else.
#[derive(Debug, Clone)]
pub enum Samples {
    U8(Vec<u8>),
    F32(Vec<f32>),
}

impl Samples {
    pub fn len(&self) -> usize {
        match self {
            Samples::U8(v) => v.len(),
            Samples::F32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> f32 {
        match self {
            Samples::U8(v) => f32::from(v[i]),
            Samples::F32(v) => v[i],
        }
    }

    /// Copy the samples in `range` into `out` as floats.
    pub fn copy_to(&self, range: std::ops::Range<usize>, out: &mut [f32]) {
        match self {
            Samples::U8(v) => {
                for (o, x) in out.iter_mut().zip(&v[range]) {
                    *o = f32::from(*x);
                }
            }
            Samples::F32(v) => out.copy_from_slice(&v[range]),
        }
    }
}

/// Decoded pixels of one chunk: `values` holds `bands` samples per pixel (alpha excluded,
/// palettes expanded to RGB, YCbCr converted), `alpha` one 0–255 byte per pixel combining
/// the alpha band, the internal mask, nodata and NaN.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub width: u32,
    pub height: u32,
    pub bands: usize,
    pub values: Samples,
    pub alpha: Vec<u8>,
}

impl Chunk {
    pub fn bytes(&self) -> usize {
        let values = match &self.values {
            Samples::U8(v) => v.len(),
            Samples::F32(v) => v.len() * 4,
        };
        values + self.alpha.len() + 64
    }
}

fn decode_err(t: &GeoTiff, what: String, reason: impl std::fmt::Display) -> RasterError {
    RasterError::Decode {
        path: t.path.clone(),
        what,
        reason: reason.to_string(),
    }
}

fn to_f32(r: DecodingResult) -> Vec<f32> {
    match r {
        DecodingResult::U8(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::I8(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::U16(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::I16(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::U32(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::I32(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::U64(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::I64(v) => v.into_iter().map(|x| x as f32).collect(),
        DecodingResult::F16(v) => v.into_iter().map(f32::from).collect(),
        DecodingResult::F32(v) => v,
        DecodingResult::F64(v) => v.into_iter().map(|x| x as f32).collect(),
    }
}

/// Size of chunk `index` once padding is cut off.
fn data_dims(t: &GeoTiff, level: usize, index: u32) -> (u32, u32) {
    let l = &t.levels[level];
    let (cx, cy) = (index % l.across, index / l.across);
    (
        l.chunk_w.min(l.width - cx * l.chunk_w),
        l.chunk_h.min(l.height - cy * l.chunk_h),
    )
}

fn to_samples(r: DecodingResult) -> Samples {
    match r {
        DecodingResult::U8(v) => Samples::U8(v),
        other => Samples::F32(to_f32(other)),
    }
}

/// One chunk through the `tiff` crate's decoder, a panic on corrupt data contained.
fn read_chunk<R: std::io::Read + std::io::Seek>(
    t: &GeoTiff,
    d: &mut tiff::decoder::Decoder<R>,
    index: u32,
    what: &dyn Fn() -> String,
) -> Result<DecodingResult, RasterError> {
    crate::contain::contained(std::panic::AssertUnwindSafe(|| d.read_chunk(index)))
        .map_err(|m| RasterError::Decode {
            path: t.path.clone(),
            what: what(),
            reason: format!("the compressed data is corrupt ({m})"),
        })?
        .map_err(|e| decode_err(t, what(), e))
}

/// Stored samples of a chunk, pixel-interleaved, via the `tiff` crate.
fn crate_samples(t: &GeoTiff, level: usize, index: u32) -> Result<Samples, RasterError> {
    let l = &t.levels[level];
    let what = || format!("level {level} chunk {index}");
    let mut dec = {
        let mut pool = t.pool.lock().unwrap_or_else(|p| p.into_inner());
        match pool.iter().position(|(ifd, _)| *ifd == l.ifd) {
            Some(i) => Some(pool.swap_remove(i).1),
            None => pool.pop().map(|(_, d)| d),
        }
    };
    let mut d = match dec.take() {
        Some(d) => d,
        None => open_decoder(&t.path)?,
    };
    d.seek_to_image(l.ifd)
        .map_err(|e| decode_err(t, what(), e))?;
    let samples = usize::from(t.samples);
    let out = if l.planar {
        let mut planes = Vec::with_capacity(samples);
        for p in 0..samples as u32 {
            let r = read_chunk(t, &mut d, index + p * l.chunks_per_plane, &what)?;
            planes.push(to_samples(r));
        }
        let n = planes.iter().map(Samples::len).min().unwrap_or(0);
        if planes.iter().all(|p| matches!(p, Samples::U8(_))) {
            let mut v = vec![0u8; n * samples];
            for (p, plane) in planes.iter().enumerate() {
                if let Samples::U8(plane) = plane {
                    for (i, x) in plane.iter().take(n).enumerate() {
                        v[i * samples + p] = *x;
                    }
                }
            }
            Samples::U8(v)
        } else {
            let mut v = vec![0f32; n * samples];
            for (p, plane) in planes.iter().enumerate() {
                for i in 0..n {
                    v[i * samples + p] = plane.get(i);
                }
            }
            Samples::F32(v)
        }
    } else {
        to_samples(read_chunk(t, &mut d, index, &what)?)
    };
    t.pool
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((l.ifd, d));
    Ok(out)
}

fn read_raw(
    t: &GeoTiff,
    raw: &RawLayout,
    index: u32,
    expected: usize,
) -> Result<Vec<u8>, RasterError> {
    let what = || format!("chunk {index}");
    let i = index as usize;
    let (off, count) = match (raw.offsets.get(i), raw.byte_counts.get(i)) {
        (Some(o), Some(l)) => (*o, *l),
        _ => return Err(decode_err(t, what(), "chunk index past the offsets table")),
    };
    // Checked at open too; the file may have shrunk since.
    if off.checked_add(count).is_none_or(|end| end > t.file_len) {
        return Err(decode_err(
            t,
            what(),
            format!(
                "{count} bytes claimed at byte {off}, past the end of the file ({} bytes)",
                t.file_len
            ),
        ));
    }
    let len = usize::try_from(count).map_err(|e| decode_err(t, what(), e))?;
    if len > super::geotiff::MAX_PIXELS as usize / 64 + expected * 4 + 4096 {
        return Err(decode_err(
            t,
            what(),
            format!("{len} bytes claimed for one chunk"),
        ));
    }
    let mut buf = vec![0u8; len];
    read_at(&t.file, &mut buf, off).map_err(|e| decode_err(t, what(), e))?;
    let out = match raw.compression {
        1 => buf,
        5 => weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
            .decode(&buf)
            .map_err(|e| decode_err(t, what(), e))?,
        8 | 32946 => {
            let mut v = Vec::with_capacity(expected);
            flate2::read::ZlibDecoder::new(&buf[..])
                .take(expected as u64)
                .read_to_end(&mut v)
                .map_err(|e| decode_err(t, what(), e))?;
            v
        }
        32773 => unpack_bits(&buf, expected),
        c => return Err(decode_err(t, what(), format!("compression {c}"))),
    };
    if out.len() < expected {
        return Err(decode_err(
            t,
            what(),
            format!("{} bytes decoded, {expected} expected", out.len()),
        ));
    }
    Ok(out)
}

#[cfg(unix)]
fn read_at(f: &std::fs::File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, off)
}

#[cfg(not(unix))]
fn read_at(f: &std::fs::File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut f = f.try_clone()?;
    f.seek(SeekFrom::Start(off))?;
    f.read_exact(buf)
}

/// PackBits run-length decoding, stopping at `expected` bytes.
fn unpack_bits(src: &[u8], expected: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(expected);
    let mut i = 0;
    while i < src.len() && out.len() < expected {
        let n = src[i] as i8;
        i += 1;
        if n >= 0 {
            let k = (n as usize + 1).min(src.len() - i);
            out.extend_from_slice(&src[i..i + k]);
            i += k;
        } else if n != -128 {
            if let Some(&b) = src.get(i) {
                out.extend(std::iter::repeat_n(b, (1 - n as isize) as usize));
            }
            i += 1;
        }
    }
    out
}

/// Unpack `bits`-per-sample rows (each padded to a byte) of a `cw`-wide stored chunk into
/// one byte per sample, keeping the first `w` × `h` samples.
fn unpack_rows(bytes: &[u8], bits: u16, cw: u32, w: u32, h: u32) -> Vec<u8> {
    let row_bytes = (cw as usize * bits as usize).div_ceil(8);
    let mut out = Vec::with_capacity(w as usize * h as usize);
    for r in 0..h as usize {
        let row = &bytes[r * row_bytes..(r + 1) * row_bytes];
        for c in 0..w as usize {
            out.push(match bits {
                8 => row[c],
                4 => (row[c / 2] >> (4 * (1 - c % 2))) & 0x0f,
                _ => (row[c / 8] >> (7 - c % 8)) & 1,
            });
        }
    }
    out
}

/// Rows of a stored chunk: tiles are always full size, strips may be short at the end.
fn stored_rows(chunk_h: u32, data_h: u32, tiled_like: bool) -> u32 {
    if tiled_like {
        chunk_h
    } else {
        data_h
    }
}

/// Decode chunk `index` of `level`.
pub fn decode(t: &GeoTiff, level: usize, index: u32) -> Result<Chunk, RasterError> {
    let l = &t.levels[level];
    let (w, h) = data_dims(t, level, index);
    let n = w as usize * h as usize;
    let samples = match &l.codec {
        Codec::Crate => crate_samples(t, level, index)?,
        Codec::Raw(raw) => {
            let rows = stored_rows(l.chunk_h, h, l.tiled);
            let expected = (l.chunk_w as usize * raw.bits as usize).div_ceil(8) * rows as usize;
            let bytes = read_raw(t, raw, index, expected)?;
            Samples::U8(unpack_rows(&bytes, raw.bits, l.chunk_w, w, h))
        }
    };
    let stored = usize::from(t.samples);
    if samples.len() < n * stored {
        return Err(decode_err(
            t,
            format!("level {level} chunk {index}"),
            format!("{} samples decoded, {} expected", samples.len(), n * stored),
        ));
    }
    let bands = t.value_bands();
    let mut alpha = vec![255u8; n];
    let values = match samples {
        Samples::U8(raw) => Samples::U8(bytes_to_values(t, raw, n, bands, &mut alpha)),
        Samples::F32(raw) => {
            let (values, implausible) = floats_to_values(t, &raw, n, bands, &mut alpha);
            if implausible > 0 {
                t.implausible
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert((level, index), implausible);
            }
            Samples::F32(values)
        }
    };
    if let Some(m) = &l.mask {
        if m.chunk_w == l.chunk_w && m.chunk_h == l.chunk_h && m.across == l.across {
            let rows = stored_rows(m.chunk_h, h, m.tiled);
            let expected = (m.chunk_w as usize).div_ceil(8) * rows as usize;
            let bytes = read_raw(t, &m.raw, index, expected)?;
            for (a, bit) in alpha
                .iter_mut()
                .zip(unpack_rows(&bytes, 1, m.chunk_w, w, h))
            {
                if bit == 0 {
                    *a = 0;
                }
            }
        }
    }
    Ok(Chunk {
        width: w,
        height: h,
        bands,
        values,
        alpha,
    })
}

/// 8-bit samples → value bytes (palette / YCbCr → RGB, alpha split off), filling `alpha`.
fn bytes_to_values(t: &GeoTiff, raw: Vec<u8>, n: usize, bands: usize, alpha: &mut [u8]) -> Vec<u8> {
    let stored = usize::from(t.samples);
    let mut values = match &t.photometric {
        Photometric::Palette(map) => raw[..n]
            .iter()
            .flat_map(|i| map.get(usize::from(*i)).copied().unwrap_or([0, 0, 0]))
            .collect(),
        Photometric::YCbCr => raw[..n * 3]
            .chunks_exact(3)
            .flat_map(|p| {
                let (y, cb, cr) = (
                    f32::from(p[0]),
                    f32::from(p[1]) - 128.0,
                    f32::from(p[2]) - 128.0,
                );
                [
                    y + 1.402 * cr,
                    y - 0.344_136 * cb - 0.714_136 * cr,
                    y + 1.772 * cb,
                ]
                .map(|v| v.round().clamp(0.0, 255.0) as u8)
            })
            .collect(),
        _ => match t.alpha_sample {
            None if stored == bands => {
                let mut raw = raw;
                raw.truncate(n * bands);
                raw
            }
            a => {
                let a = a.map(usize::from);
                let mut v = Vec::with_capacity(n * bands);
                for (i, px) in raw.chunks_exact(stored).take(n).enumerate() {
                    for (b, x) in px.iter().enumerate() {
                        if Some(b) == a {
                            alpha[i] = *x;
                        } else if v.len() < (i + 1) * bands {
                            v.push(*x);
                        }
                    }
                }
                v
            }
        },
    };
    values.truncate(n * bands);
    if let Some(nd) = t.nodata {
        if nd.fract() == 0.0 && (0.0..=255.0).contains(&nd) {
            let nd = nd as u8;
            for (a, px) in alpha.iter_mut().zip(values.chunks_exact(bands)) {
                if px.iter().all(|v| *v == nd) {
                    *a = 0;
                }
            }
        }
    }
    values
}

/// Other samples → float values, alpha split off (16-bit alpha scaled), nodata and NaN
/// made transparent; so are infinite values and those outside `t.plausible`, which are
/// counted (the second result).
fn floats_to_values(
    t: &GeoTiff,
    raw: &[f32],
    n: usize,
    bands: usize,
    alpha: &mut [u8],
) -> (Vec<f32>, u64) {
    let implausible =
        |v: &f32| v.is_infinite() || t.plausible.is_some_and(|(lo, hi)| *v < lo || *v > hi);
    let mut set_aside = 0u64;
    let stored = usize::from(t.samples);
    let mut values = Vec::with_capacity(n * bands);
    for (i, px) in raw.chunks_exact(stored).take(n).enumerate() {
        for (b, v) in px.iter().enumerate() {
            if Some(b as u16) != t.alpha_sample {
                values.push(*v);
            }
        }
        if let Some(a) = t.alpha_sample {
            let v = px[usize::from(a)];
            alpha[i] = match t.sample {
                super::geotiff::SampleType::U16 => (v / 257.0).round(),
                _ => v.round(),
            }
            .clamp(0.0, 255.0) as u8;
        }
        let vals = &values[i * bands..(i + 1) * bands];
        let nodata = match t.nodata {
            Some(nd) if nd.is_nan() => vals.iter().all(|v| v.is_nan()),
            Some(nd) => vals.iter().all(|v| f64::from(*v) == nd || *v == nd as f32),
            None => false,
        };
        if nodata || vals.iter().any(|v| v.is_nan()) {
            alpha[i] = 0;
        } else if vals.iter().any(implausible) {
            alpha[i] = 0;
            set_aside += 1;
        }
    }
    (values, set_aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_round_trip() {
        // Apple's example from the TIFF 6.0 specification.
        let src = [
            0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0xFD, 0xAA, 0x03, 0x80, 0x00, 0x2A, 0x22, 0xF7,
            0xAA,
        ];
        let out = unpack_bits(&src, 24);
        assert_eq!(
            out,
            vec![
                0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0xAA, 0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0x22,
                0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA
            ]
        );
    }

    #[test]
    fn unpacks_bits_per_row() {
        // Two rows of a 10-pixel 1-bit chunk, each padded to 2 bytes.
        let bytes = [0b1010_0000, 0b0100_0000, 0b1111_1111, 0b1100_0000];
        let v = unpack_rows(&bytes, 1, 10, 10, 2);
        assert_eq!(&v[..10], &[1, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&v[10..], &[1; 10]);
        let v = unpack_rows(&[0x1f, 0xa0], 4, 3, 3, 1);
        assert_eq!(v, vec![1, 15, 10]);
    }
}
