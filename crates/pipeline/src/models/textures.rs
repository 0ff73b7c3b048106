//! Texture images per level of detail: leaves embed the source images as they are; a
//! coarser tile embeds them downscaled by 2^d (not below 32 px), where d is as large as
//! the tile's geometric error allows: a texel of the smaller image stays within 1/16 of
//! that error, so at CesiumJS's default screen-space error (16 px) it covers at most one
//! pixel when the tile is drawn. Each image and level is decoded and encoded once.

use super::container::{ImageData, MAX_IMAGE_EDGE_PX};
use super::glb::{texture_images, MaterialSource};
use crate::report::Warnings;
use image::{ImageFormat, ImageReader};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use tessera_model::TriangleMesh;

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
        let mut reader = ImageReader::with_format(Cursor::new(original.bytes.as_slice()), format);
        // The reader checked the header's size; these hold the decoder to it as well.
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_IMAGE_EDGE_PX);
        limits.max_image_height = Some(MAX_IMAGE_EDGE_PX);
        reader.limits(limits);
        let decoded = crate::contain::contained(std::panic::AssertUnwindSafe(|| reader.decode()))
            .unwrap_or_else(|m| Err(image::ImageError::IoError(std::io::Error::other(m))));
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

/// `(texture index, texCoord set, area factor of KHR_texture_transform's scale)` for every
/// texture reference in a material.
fn texture_infos(v: &Value, out: &mut Vec<(usize, usize, f64)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let index = child.get("index").and_then(Value::as_u64);
                match index {
                    Some(i) if k.ends_with("Texture") => {
                        let t = child.pointer("/extensions/KHR_texture_transform");
                        let set = t
                            .and_then(|t| t.get("texCoord"))
                            .or_else(|| child.get("texCoord"))
                            .and_then(Value::as_u64)
                            .unwrap_or(0);
                        let s = t.and_then(|t| t.get("scale")).and_then(Value::as_array);
                        let area = s.map_or(1.0, |s| {
                            s.iter().filter_map(Value::as_f64).product::<f64>().abs()
                        });
                        out.push((i as usize, set as usize, area));
                    }
                    _ => texture_infos(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| texture_infos(i, out)),
        _ => {}
    }
}

fn tri_area3(a: [f64; 3], b: [f64; 3], c: [f64; 3]) -> f64 {
    let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
    let x = [
        u[1] * v[2] - u[2] * v[1],
        u[2] * v[0] - u[0] * v[2],
        u[0] * v[1] - u[1] * v[0],
    ];
    0.5 * (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]).sqrt()
}

/// Metres per texel of each source image at full size, estimated over the triangles
/// that sample it: sqrt(surface area / (texture-space area × width × height)). `None`
/// where no triangle samples the image or its size cannot be read.
pub fn texel_sizes(
    meshes: &[TriangleMesh],
    src: &MaterialSource,
    images: &[Option<ImageData>],
) -> Vec<Option<f64>> {
    let mut world = vec![0.0f64; images.len()];
    let mut texture = vec![0.0f64; images.len()];
    for mesh in meshes {
        let Some(material) = mesh
            .material
            .and_then(|s| src.styles.get(s as usize))
            .and_then(|s| s.material)
            .and_then(|m| src.materials.get(m))
        else {
            continue;
        };
        let mut infos = Vec::new();
        texture_infos(material, &mut infos);
        for (tex, set, scale_area) in infos {
            let Some(t) = src.textures.get(tex) else {
                continue;
            };
            let name = format!("TEXCOORD_{set}");
            let Some(uv) = mesh
                .columns
                .iter()
                .find(|c| c.name == name && c.components == 2)
            else {
                continue;
            };
            let (mut a, mut u) = (0.0, 0.0);
            for tri in mesh.indices.chunks_exact(3) {
                let [i, j, k] = [tri[0] as usize, tri[1] as usize, tri[2] as usize];
                a += tri_area3(mesh.positions[i], mesh.positions[j], mesh.positions[k]);
                let p = |v: usize| [uv.values[2 * v] as f64, uv.values[2 * v + 1] as f64, 0.0];
                u += tri_area3(p(i), p(j), p(k)) * scale_area;
            }
            for img in texture_images(t) {
                if let Some(slot) = world.get_mut(img as usize) {
                    *slot += a;
                    texture[img as usize] += u;
                }
            }
        }
    }
    images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            let img = img.as_ref()?;
            let (w, h) = ImageReader::new(Cursor::new(img.bytes.as_slice()))
                .with_guessed_format()
                .ok()?
                .into_dimensions()
                .ok()?;
            let texels = texture[i] * w as f64 * h as f64;
            (texels > 0.0 && world[i] > 0.0).then(|| (world[i] / texels).sqrt())
        })
        .collect()
}

/// How many halvings a tile with this geometric error and height above the leaves
/// applies to an image with this full-size texel.
pub fn halvings(texel_m: Option<f64>, error_m: f64, height: u32) -> u32 {
    match texel_m {
        Some(t) if t > 0.0 && error_m > 0.0 => {
            let d = (error_m / (16.0 * t)).log2().floor();
            if d <= 0.0 {
                0
            } else {
                (d as u32).min(height)
            }
        }
        Some(_) => 0,
        None => height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halvings_follow_the_error() {
        // 1 mm texels, 10 cm error: 100 mm / 16 = 6.25 mm allows two halvings (4 mm).
        assert_eq!(halvings(Some(0.001), 0.1, 5), 2);
        assert_eq!(halvings(Some(0.001), 0.1, 1), 1);
        assert_eq!(halvings(Some(0.001), 0.01, 5), 0);
        assert_eq!(halvings(Some(0.001), 0.0, 5), 0);
        assert_eq!(halvings(None, 0.1, 3), 3);
    }

    #[test]
    fn texture_transform_scale_and_set_are_read() {
        let m = serde_json::json!({"pbrMetallicRoughness": {"baseColorTexture": {"index": 2, "texCoord": 1,
            "extensions": {"KHR_texture_transform": {"scale": [30, -30]}}}},
            "normalTexture": {"index": 0}});
        let mut out = Vec::new();
        texture_infos(&m, &mut out);
        out.sort_by_key(|x| x.0);
        assert_eq!(out, vec![(0, 0, 1.0), (2, 1, 900.0)]);
    }
}
