//! Texture images per level of detail: leaves embed the source images as they are;
//! a tile `h` levels above the leaves embeds them downscaled by 2^h (not below 32 px),
//! decoded and encoded once per image and level however many tiles share them.

use super::container::ImageData;
use crate::report::Warnings;
use image::{ImageFormat, ImageReader};
use std::collections::HashMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

const MIN_SIDE_PX: u32 = 32;
const JPEG_QUALITY: u8 = 85;

type Slot = Arc<OnceLock<Option<ImageData>>>;

pub struct TextureLevels<'a> {
    path: PathBuf,
    source: &'a [Option<ImageData>],
    cache: Mutex<HashMap<(usize, u32), Slot>>,
    warnings: &'a Warnings,
}

impl<'a> TextureLevels<'a> {
    pub fn new(path: PathBuf, source: &'a [Option<ImageData>], warnings: &'a Warnings) -> Self {
        TextureLevels {
            path,
            source,
            cache: Mutex::new(HashMap::new()),
            warnings,
        }
    }

    /// Image `index` as a tile `height` levels above the leaves embeds it; `None` when the
    /// image is missing.
    pub fn get(&self, index: usize, height: u32) -> Option<ImageData> {
        let original = self.source.get(index)?.as_ref()?;
        let format = match original.mime.as_str() {
            "image/png" => ImageFormat::Png,
            "image/jpeg" => ImageFormat::Jpeg,
            "image/webp" => ImageFormat::WebP,
            _ => return Some(original.clone()), // KTX2 and the like travel as they are
        };
        if height == 0 {
            return Some(original.clone());
        }
        let slot = {
            let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            c.entry((index, height)).or_default().clone()
        };
        slot.get_or_init(|| Some(self.downscale(index, original, format, height)))
            .clone()
    }

    fn downscale(
        &self,
        index: usize,
        original: &ImageData,
        format: ImageFormat,
        height: u32,
    ) -> ImageData {
        let decoded =
            ImageReader::with_format(Cursor::new(original.bytes.as_slice()), format).decode();
        let img = match decoded {
            Ok(i) => i,
            Err(e) => {
                self.warnings.push(
                    "model-image-undecodable",
                    format!(
                        "{}: image {index} does not decode ({e}); coarser tiles embed it at full size",
                        self.path.display()
                    ),
                );
                return original.clone();
            }
        };
        let shrink = |side: u32| (side >> height.min(31)).max(side.min(MIN_SIDE_PX)).max(1);
        let (w, h) = (shrink(img.width()), shrink(img.height()));
        if (w, h) == (img.width(), img.height()) {
            return original.clone();
        }
        let small = img.resize_exact(w, h, image::imageops::FilterType::Triangle);
        let mut out = Vec::new();
        let written = if format == ImageFormat::Jpeg {
            let rgb = small.to_rgb8();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
                .encode_image(&rgb)
                .map(|_| "image/jpeg")
        } else {
            small
                .write_with_encoder(image::codecs::png::PngEncoder::new_with_quality(
                    &mut out,
                    image::codecs::png::CompressionType::Fast,
                    image::codecs::png::FilterType::Adaptive,
                ))
                .map(|_| "image/png")
        };
        match written {
            Ok(mime) => ImageData {
                bytes: Arc::new(out),
                mime: mime.into(),
            },
            Err(_) => original.clone(),
        }
    }
}
