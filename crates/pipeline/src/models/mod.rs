//! glTF/GLB models → 3D Tiles.
//!
//! read (container, accessors, Draco) → bake node transforms ([`scene`]) → place on the
//! globe ([`place`]) → split and simplify into levels of detail ([`lod`]) → one GLB per
//! tile with the materials it uses ([`glb`], textures per level in [`textures`]) →
//! `tileset.json`. The reader is reusable on its own: [`read_model`].

mod accessor;
mod container;
mod draco;
mod glb;
pub mod lod;
pub mod place;
mod scene;
mod textures;

pub use container::{sniff_mime, ImageData};
pub use glb::{b3dm_with_batch, encode_mesh_glb, encode_mesh_glb_features, MaterialSource};
pub use scene::{read_model, ModelSource, Style};

use crate::detect::{discover, InputFormat};
use crate::error::{InputError, ModelError, PipelineError};
use crate::job::{JobSpec, TilesFormat};
use crate::progress::Progress;
use crate::report::{InputSummary, JobReport, Warnings};
use crate::sink::{ArchiveSink, DirectorySink, TileSink};
use lod::TileNode;
use place::Placement;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tessera_model::{Aabb, EnuFrame, Stage, WorkKind};

/// Placement and tiling of a model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelOptions {
    /// Longitude, latitude (degrees) and ellipsoidal height (metres) of the model's origin.
    pub position: Option<[f64; 3]>,
    pub heading_deg: f64,
    pub pitch_deg: f64,
    pub roll_deg: f64,
    /// Model units to metres (or to CRS units with `--input-crs`).
    pub scale: f64,
    /// Leaves hold at most this many triangles; larger models get levels of detail.
    pub max_triangles_per_tile: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            position: None,
            heading_deg: 0.0,
            pitch_deg: 0.0,
            roll_deg: 0.0,
            scale: 1.0,
            max_triangles_per_tile: 50_000,
        }
    }
}

pub(crate) fn content_uri(path: &[u8], format: TilesFormat) -> String {
    let ext = match format {
        TilesFormat::Tiles11 => "glb",
        TilesFormat::Tiles10 => "b3dm",
    };
    let mut name = String::from("tiles/r");
    for (i, c) in path.iter().enumerate() {
        if i > 0 {
            name.push('-');
        }
        name.push(char::from(b'0' + c));
    }
    format!("{name}.{ext}")
}

/// A tile of a mesh tile tree (models: [`TileNode`], city models: the city tree), as
/// `tileset.json` and the tile writer see it.
pub trait MeshTreeNode: Sized {
    fn bounds(&self) -> &Aabb;
    fn error_m(&self) -> f64;
    fn has_content(&self) -> bool;
    fn children(&self) -> &[Self];
}

impl MeshTreeNode for TileNode {
    fn bounds(&self) -> &Aabb {
        &self.bounds
    }
    fn error_m(&self) -> f64 {
        self.error_m
    }
    fn has_content(&self) -> bool {
        !self.meshes.is_empty()
    }
    fn children(&self) -> &[Self] {
        &self.children
    }
}

fn tile_json<N: MeshTreeNode>(node: &N, path: &mut Vec<u8>, format: TilesFormat) -> Value {
    let mut t = json!({
        "boundingVolume": {"box": node.bounds().to_tiles_box()},
        "geometricError": node.error_m(),
    });
    if node.has_content() {
        t["content"] = json!({"uri": content_uri(path, format)});
    }
    if !node.children().is_empty() {
        let kids: Vec<Value> = node
            .children()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                path.push(i as u8);
                let v = tile_json(c, path, format);
                path.pop();
                v
            })
            .collect();
        t["children"] = Value::Array(kids);
    }
    t
}

/// `tileset.json` for a mesh tree in `frame`, refined by `refine` (`ADD`/`REPLACE`).
pub fn tileset_json<N: MeshTreeNode>(
    root: &N,
    frame: &EnuFrame,
    format: TilesFormat,
    refine: &str,
) -> Value {
    let mut r = tile_json(root, &mut Vec::new(), format);
    r["refine"] = json!(refine);
    r["transform"] = json!(frame.to_ecef_matrix());
    // Not drawing the model at all is as wrong as its size.
    let top = root.error_m().max(root.bounds().diagonal()).max(1e-3);
    let version = match format {
        TilesFormat::Tiles11 => "1.1",
        TilesFormat::Tiles10 => "1.0",
    };
    json!({
        "asset": {"version": version, "generator": concat!("tessera ", env!("CARGO_PKG_VERSION"))},
        "geometricError": top,
        "root": r,
    })
}

/// Every tile with content and its path (child indices from the root), parents first.
pub(crate) fn flatten<'a, N: MeshTreeNode>(
    node: &'a N,
    path: &mut Vec<u8>,
    out: &mut Vec<(Vec<u8>, &'a N)>,
) {
    if node.has_content() {
        out.push((path.clone(), node));
    }
    for (i, c) in node.children().iter().enumerate() {
        path.push(i as u8);
        flatten(c, path, out);
        path.pop();
    }
}

/// The placement `spec` asks for.
fn placement(spec: &JobSpec, path: &std::path::Path) -> Result<Placement, PipelineError> {
    let o = &spec.model;
    if !(o.scale.is_finite() && o.scale > 0.0) {
        return Err(ModelError::Unsupported {
            path: path.into(),
            what: format!("scale {}", o.scale),
            hint: "Give a positive --scale".into(),
        }
        .into());
    }
    for (name, deg) in [
        ("heading", o.heading_deg),
        ("pitch", o.pitch_deg),
        ("roll", o.roll_deg),
    ] {
        if !deg.is_finite() {
            return Err(ModelError::Unsupported {
                path: path.into(),
                what: format!("{name} {deg}"),
                hint: format!("Give --{name} in degrees, a finite number"),
            }
            .into());
        }
    }
    match (&spec.input_crs, o.position) {
        (Some(_), Some(_)) => Err(ModelError::Unsupported {
            path: path.into(),
            what: "--position together with --input-crs".into(),
            hint: "Use --position for a model in local coordinates, --input-crs for one whose coordinates are projected".into(),
        }
        .into()),
        (Some(crs), None) => Ok(Placement::Crs {
            crs: crs.clone(),
            scale: o.scale,
        }),
        (None, Some([lon, lat, h])) => {
            if !(lon.abs() <= 180.0 && lat.abs() <= 90.0 && h.abs() <= place::MAX_REACH_M) {
                return Err(ModelError::Unsupported {
                    path: path.into(),
                    what: format!("position {lon}, {lat}, {h}"),
                    hint: "--position takes longitude (-180..180), latitude (-90..90) in degrees and a height in metres".into(),
                }
                .into());
            }
            Ok(Placement::Position {
                lon_deg: lon,
                lat_deg: lat,
                height_m: h,
                heading_deg: o.heading_deg,
                pitch_deg: o.pitch_deg,
                roll_deg: o.roll_deg,
                scale: o.scale,
            })
        }
        (None, None) => Err(ModelError::NoPlacement { path: path.into() }.into()),
    }
}

/// Convert one glTF/GLB model into a 3D Tiles tileset.
pub fn run_model(spec: &JobSpec, progress: &Progress) -> Result<JobReport, PipelineError> {
    let warnings = Warnings::default();
    // Loading a model is quick next to splitting and encoding it.
    progress.plan(&[(Stage::Read, 1.0), (Stage::Tile, 4.0)]);
    progress.enter(Stage::Inspect);
    let files = discover(&spec.inputs, InputFormat::Gltf, &warnings)?;
    if files.len() != 1 {
        return Err(InputError::NoInputs(format!(
            "{} models given; convert one model per tileset",
            files.len()
        ))
        .into());
    }
    let path = &files[0];
    let placement = placement(spec, path)?;
    progress.enter(Stage::Read);
    let refs = crate::refs::RefRoot::for_input(spec, path);
    let mut source = read_model(path, &refs, &spec.budget, &warnings)?;
    let images_present = source.images.iter().filter(|i| i.is_some()).count();
    let summary = InputSummary {
        path: path.clone(),
        model: format!(
            "{} primitive(s), {} triangles, {} material(s), {} of {} image(s)",
            source.meshes.len(),
            source.triangles,
            source.materials.len(),
            images_present,
            source.images.len()
        ),
        crs: match &placement {
            Placement::Crs { crs, .. } => crs.label(),
            Placement::Position { .. } => "local (east-north-up at --position)".into(),
        },
        crs_source: match &placement {
            Placement::Crs { .. } => "--input-crs".into(),
            Placement::Position { .. } => "--position".into(),
        },
        ..Default::default()
    };
    progress.check()?;
    let placed = place::place(
        path,
        std::mem::take(&mut source.meshes),
        &placement,
        spec.geoid.as_deref(),
        &warnings,
    )?;
    progress.check()?;

    progress.enter(Stage::Tile);
    let materials = MaterialSource {
        styles: &source.styles,
        materials: &source.materials,
        textures: &source.textures,
        samplers: &source.samplers,
        required: &source.required,
    };
    let tree = lod::build(&placed.meshes, spec.model.max_triangles_per_tile);
    let texels = textures::texel_sizes(&placed.meshes, &materials, &source.images);
    drop(placed.meshes);
    let written = tree.leaf_triangles() as u64;
    if written != source.triangles {
        return Err(PipelineError::Internal(format!(
            "{} triangles read but {written} in the finest level",
            source.triangles
        )));
    }
    let mut tiles = Vec::new();
    flatten(&tree, &mut Vec::new(), &mut tiles);
    let sink: Box<dyn TileSink> = if spec.archive {
        Box::new(ArchiveSink::new(&spec.output)?)
    } else {
        Box::new(DirectorySink::new(&spec.output)?)
    };
    let textures = textures::TextureLevels::new(path.clone(), &source.images, &warnings);
    let done = std::sync::atomic::AtomicU64::new(0);
    let total = tiles.len() as u64;
    progress.counting(WorkKind::Tiles, total);
    tiles.par_iter().try_for_each(|(p, node)| {
        progress.check()?;
        let center = node.bounds.center();
        let glb = encode_mesh_glb(&node.meshes, center, &materials, &|i| {
            let d = textures::halvings(texels.get(i).copied().flatten(), node.error_m, node.height);
            textures.get(i, d)
        });
        let bytes = match spec.format {
            TilesFormat::Tiles11 => glb,
            TilesFormat::Tiles10 => glb::b3dm(&glb),
        };
        sink.write(&content_uri(p, spec.format), &bytes)?;
        progress.add_tile();
        let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress.raise(Stage::Tile, d, total);
        Ok::<(), PipelineError>(())
    })?;
    let tileset = tileset_json(&tree, &placed.frame, spec.format, "REPLACE");
    let json = serde_json::to_vec_pretty(&tileset)
        .map_err(|e| PipelineError::Internal(format!("tileset.json: {e}")))?;
    sink.write("tileset.json", &json)?;
    progress.check()?;
    progress.enter(Stage::Commit);
    let bytes_written = sink.commit()?;
    progress.finish();
    let (warnings, warnings_dropped) = warnings.take();
    Ok(JobReport {
        output: spec.output.clone(),
        inputs: vec![summary],
        triangles_read: source.triangles,
        triangles_written: written,
        tiles: total,
        min_level: 0,
        max_level: tree.height as u8,
        bytes_written,
        extent_deg: placed.extent_deg,
        warnings,
        warnings_dropped,
        ..Default::default()
    })
}
