//! Tile images to PNG, JPEG or WebP bytes.

use super::warp::RgbaTile;
use crate::error::PipelineError;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    #[default]
    Png,
    Jpeg,
    /// Lossless WebP.
    Webp,
    /// JPEG where a tile is fully opaque, PNG where it needs alpha.
    Auto,
}

impl ImageFormat {
    /// The extension tilemapresource.xml announces.
    pub fn extension(&self) -> &'static str {
        match self {
            ImageFormat::Png | ImageFormat::Auto => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Webp => "webp",
        }
    }

    pub fn mime(&self) -> &'static str {
        match self {
            ImageFormat::Png | ImageFormat::Auto => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
        }
    }
}

pub struct EncodedImage {
    pub bytes: Vec<u8>,
    pub extension: &'static str,
}

/// 8-bit RGBA from a premultiplied tile.
pub fn to_rgba8(t: &RgbaTile) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.data.len());
    // Values are never negative, so +0.5 and truncation round to nearest.
    let byte = |v: f32| (v + 0.5).clamp(0.0, 255.0) as u8;
    for p in t.data.chunks_exact(4) {
        let a = p[3];
        if a <= 0.0 {
            out.extend_from_slice(&[0, 0, 0, 0]);
        } else if a >= 1.0 {
            out.extend_from_slice(&[byte(p[0]), byte(p[1]), byte(p[2]), 255]);
        } else {
            let inv = 1.0 / a;
            out.extend_from_slice(&[
                byte(p[0] * inv),
                byte(p[1] * inv),
                byte(p[2] * inv),
                byte(a * 255.0),
            ]);
        }
    }
    out
}

fn rgb_only(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| {
            // Transparent pixels of a JPEG become black, as gdal2tiles writes them.
            let a = u16::from(p[3]);
            [p[0], p[1], p[2]].map(|c| ((u16::from(c) * a + 127) / 255) as u8)
        })
        .collect()
}

fn err(e: image::ImageError) -> PipelineError {
    PipelineError::Internal(format!("image encoder: {e}"))
}

pub fn encode_tile(
    t: &RgbaTile,
    format: ImageFormat,
    quality: u8,
) -> Result<EncodedImage, PipelineError> {
    let rgba = to_rgba8(t);
    let opaque = rgba.chunks_exact(4).all(|p| p[3] == 255);
    let format = match format {
        ImageFormat::Auto if opaque => ImageFormat::Jpeg,
        ImageFormat::Auto => ImageFormat::Png,
        f => f,
    };
    let mut bytes = Vec::new();
    let (w, h) = (t.size, t.size);
    match format {
        ImageFormat::Png | ImageFormat::Auto => {
            let enc = PngEncoder::new_with_quality(
                &mut bytes,
                CompressionType::Fast,
                FilterType::Adaptive,
            );
            if opaque {
                enc.write_image(&rgb_only(&rgba), w, h, ExtendedColorType::Rgb8)
            } else {
                enc.write_image(&rgba, w, h, ExtendedColorType::Rgba8)
            }
            .map_err(err)?;
        }
        ImageFormat::Jpeg => {
            JpegEncoder::new_with_quality(&mut bytes, quality)
                .write_image(&rgb_only(&rgba), w, h, ExtendedColorType::Rgb8)
                .map_err(err)?;
        }
        ImageFormat::Webp => {
            WebPEncoder::new_lossless(&mut bytes)
                .write_image(&rgba, w, h, ExtendedColorType::Rgba8)
                .map_err(err)?;
        }
    }
    Ok(EncodedImage {
        bytes,
        extension: format.extension(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes_each_format() {
        let mut t = RgbaTile::transparent(16);
        for (i, p) in t.data.chunks_exact_mut(4).enumerate() {
            let a = if i < 128 { 1.0 } else { 0.5 };
            p.copy_from_slice(&[200.0 * a, 100.0 * a, 50.0 * a, a]);
        }
        for f in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Webp,
            ImageFormat::Auto,
        ] {
            let e = encode_tile(&t, f, 90).expect("encode");
            let img = image::load_from_memory(&e.bytes)
                .expect("decode")
                .to_rgba8();
            assert_eq!(img.dimensions(), (16, 16));
            let p = img.get_pixel(0, 0).0;
            assert!((i32::from(p[0]) - 200).abs() <= 3, "{f:?} {p:?}");
            if f != ImageFormat::Jpeg {
                assert_eq!(img.get_pixel(0, 15).0[3], 128, "{f:?}");
            }
        }
        // Opaque tiles become JPEG under Auto.
        let mut o = RgbaTile::transparent(8);
        o.data
            .chunks_exact_mut(4)
            .for_each(|p| p.copy_from_slice(&[1.0, 2.0, 3.0, 1.0]));
        assert_eq!(
            encode_tile(&o, ImageFormat::Auto, 85)
                .expect("encode")
                .extension,
            "jpg"
        );
    }
}
