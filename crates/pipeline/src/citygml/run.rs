//! CityGML → 3D Tiles: documents (files, folders, zips) read in parallel into city
//! objects as meshes ([`super::mesh`]), optionally clamped to terrain, placed in one
//! east-north-up frame, tiled by importance ([`super::tree`]) and written as GLB tiles
//! with `EXT_mesh_features` + `EXT_structural_metadata` (or `.b3dm` with a batch table).

use super::mesh::{
    convert_document_with, CityPart, Codelists, DocOptions, Feature, StyleKey, Styles,
    SURFACE_COLORS,
};
use super::reader::{AttrValue, ReadLimits};
use super::source::{discover_job, Location, MAX_RESOURCE_BYTES};
use super::tree::{self, Budget, CityNode, Unit};
use crate::clamp::TerrainSampler;
use crate::encode::features::{
    identifier, schema_json, FeatureTable, PropertyDef, PropertyType, PropertyValues,
};
use crate::error::{CityGmlError, PipelineError};
use crate::job::{JobSpec, TilesFormat};
use crate::models::lod::merge_by_style;
use crate::models::sniff_mime;
use crate::models::{
    b3dm_with_batch, content_uri, encode_mesh_glb_features, flatten, tileset_json, ImageData,
    MaterialSource, MeshTreeNode, Style,
};
use crate::progress::Progress;
use crate::report::{InputSummary, JobReport, Warnings};
use crate::reproject::enu_frame_at;
use crate::sink::{ArchiveSink, DirectorySink, TileSink};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tessera_model::{Aabb, EnuFrame, Stage, TriangleMesh, WorkKind};

/// CityGML options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CityOptions {
    /// Draw this LoD where an object has it (else its highest).
    pub lod: Option<u8>,
    /// Move each building vertically onto this terrain (DEM GeoTIFF or terrain folder).
    pub clamp_to_terrain: Option<PathBuf>,
    /// Appearance theme to draw (else the first with textures).
    pub theme: Option<String>,
}

/// Texture bytes per tile.
const TILE_IMAGE_BYTES: u64 = 24 << 20;
/// Longest texture side written; larger images are scaled down.
const MAX_TEXTURE_PX: u32 = 4096;
/// Largest image decoded (told by its header before decoding): 8192 × 8192 pixels.
const MAX_DECODE_PIXELS: u64 = 1 << 26;
/// Distinct attribute names a tileset's schema carries (besides gml_id, class and
/// parent_id); names met after these are dropped with one warning. Real city models
/// use a few hundred; every tile carries the whole schema.
pub const MAX_PROPERTIES: usize = 1_000;
/// Memory one vertex claims on its way to a tile (read, transformed, triangulated,
/// meshed, merged), for the per-object vertex limit under the job's budget.
const BYTES_PER_VERTEX: u64 = 256;

/// One unit of tiling: a top-level object and its parts (indices into the parts).
struct UnitParts {
    parts: Vec<usize>,
}

thread_local! {
    /// ECEF → WGS 84 geographic, made once per worker thread (making one costs
    /// milliseconds; it is called per city object).
    static GEODETIC: std::cell::RefCell<Option<tessera_proj::Transformer>> =
        const { std::cell::RefCell::new(None) };
}

fn to_geodetic(ecef: &mut [[f64; 3]]) -> Result<(), tessera_proj::ProjError> {
    GEODETIC.with(|cell| {
        let mut t = cell.borrow_mut();
        if t.is_none() {
            *t = Some(tessera_proj::Transformer::new("EPSG:4978", "EPSG:4979")?);
        }
        match t.as_ref() {
            Some(t) => t.transform(ecef),
            None => Ok(()),
        }
    })
}

/// Group parts under their top-level ancestor, in order of the ancestor.
fn units_of(parts: &[CityPart]) -> Vec<UnitParts> {
    let by_id: HashMap<&str, usize> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (p.feature.gml_id.as_str(), i))
        .collect();
    let mut root_of = vec![0usize; parts.len()];
    for (i, p) in parts.iter().enumerate() {
        let mut r = i;
        let mut parent = p.feature.parent.as_deref();
        for _ in 0..64 {
            match parent.and_then(|id| by_id.get(id)) {
                Some(&j) => {
                    r = j;
                    parent = parts[j].feature.parent.as_deref();
                }
                None => break,
            }
        }
        root_of[i] = r;
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, r) in root_of.into_iter().enumerate() {
        groups.entry(r).or_default().push(i);
    }
    groups
        .into_values()
        .map(|parts| UnitParts { parts })
        .collect()
}

/// Move every unit vertically so its lowest vertex sits on the terrain.
fn clamp(
    parts: &mut [CityPart],
    units: &[UnitParts],
    sampler: &TerrainSampler,
    path: &std::path::Path,
    warnings: &Warnings,
) -> Result<(u64, u64), PipelineError> {
    // Work on units through their part indices: collect (unit → shift) first.
    let shifts: Vec<Option<[f64; 3]>> = units
        .par_iter()
        .map(|u| {
            let mut lowest: Option<[f64; 3]> = None;
            let mut pts: Vec<[f64; 3]> = u
                .parts
                .iter()
                .flat_map(|&i| {
                    parts[i]
                        .meshes
                        .iter()
                        .flat_map(|m| m.positions.iter().copied())
                })
                .collect();
            if pts.is_empty() {
                return Ok(None);
            }
            to_geodetic(&mut pts).map_err(|e| PipelineError::Internal(e.to_string()))?;
            for p in pts {
                if lowest.is_none_or(|l| p[2] < l[2]) {
                    lowest = Some(p);
                }
            }
            let Some([lon, lat, h]) = lowest else {
                return Ok(None);
            };
            let Some(ground) = sampler.height_at(lon, lat) else {
                return Ok(Some(None));
            };
            let d = ground - h;
            // A terrain without a usable height there leaves the object as it is.
            if !d.is_finite() {
                return Ok(Some(None));
            }
            let (lo, la) = (lon.to_radians(), lat.to_radians());
            let up = [la.cos() * lo.cos(), la.cos() * lo.sin(), la.sin()];
            Ok(Some(Some([up[0] * d, up[1] * d, up[2] * d])))
        })
        .collect::<Result<Vec<Option<Option<[f64; 3]>>>, PipelineError>>()?
        .into_iter()
        .map(|s| s.flatten())
        .collect();
    let mut moved = 0;
    let mut outside = 0;
    for (u, s) in units.iter().zip(&shifts) {
        let has_geometry = u.parts.iter().any(|&i| !parts[i].meshes.is_empty());
        match s {
            Some(d) => {
                moved += 1;
                for &i in &u.parts {
                    for m in parts[i].meshes.iter_mut() {
                        for p in m.positions.iter_mut() {
                            p[0] += d[0];
                            p[1] += d[1];
                            p[2] += d[2];
                        }
                    }
                }
            }
            None if has_geometry => outside += 1,
            None => {}
        }
    }
    sampler.drain_warnings_into(warnings);
    if outside > 0 {
        warnings.push(
            "clamp-outside-terrain",
            format!(
                "{outside} object(s) lie outside {} (or on no-data) and keep their heights",
                path.display()
            ),
        );
    }
    Ok((moved, outside))
}

/// Attribute names beyond [`MAX_PROPERTIES`]: how many names, how many values they
/// had, and the first name.
#[derive(Debug, Default, PartialEq)]
struct DroppedProperties {
    names: u64,
    values: u64,
    first: Option<String>,
}

/// The schema's properties: gml_id, class, parent_id, then every attribute name met (the
/// first [`MAX_PROPERTIES`] of them), with one type each (integers that fit INT32, else
/// FLOAT64; any text makes a STRING).
fn property_defs(
    features: &[&Feature],
) -> (Vec<PropertyDef>, HashMap<String, usize>, DroppedProperties) {
    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        Int,
        Double,
        Text,
    }
    let mut order: Vec<String> = Vec::new();
    let mut kinds: HashMap<String, Seen> = HashMap::new();
    let mut dropped = DroppedProperties::default();
    let mut dropped_names: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for f in features {
        for (name, v) in &f.attributes {
            let k = match v {
                AttrValue::Int(i) if i32::try_from(*i).is_ok() => Seen::Int,
                AttrValue::Int(_) | AttrValue::Double(_) => Seen::Double,
                AttrValue::Text(_) => Seen::Text,
            };
            match kinds.get_mut(name) {
                None if order.len() >= MAX_PROPERTIES => {
                    dropped.values += 1;
                    if dropped_names.insert(name) {
                        dropped.names += 1;
                        dropped.first.get_or_insert_with(|| name.clone());
                    }
                }
                None => {
                    order.push(name.clone());
                    kinds.insert(name.clone(), k);
                }
                Some(prev) => {
                    *prev = match (*prev, k) {
                        (a, b) if a == b => a,
                        (Seen::Text, _) | (_, Seen::Text) => Seen::Text,
                        _ => Seen::Double,
                    }
                }
            }
        }
    }
    let mut defs = vec![
        PropertyDef {
            id: "gml_id".into(),
            name: "gml_id".into(),
            ty: PropertyType::String,
        },
        PropertyDef {
            id: "class".into(),
            name: "class".into(),
            ty: PropertyType::String,
        },
        PropertyDef {
            id: "parent_id".into(),
            name: "parent_id".into(),
            ty: PropertyType::String,
        },
    ];
    let mut taken: std::collections::HashSet<String> = defs.iter().map(|d| d.id.clone()).collect();
    let mut index = HashMap::new();
    for (k, name) in order.into_iter().enumerate() {
        // Property ids are ASCII identifiers; names in other scripts keep their spelling
        // in the schema's `name`.
        let base = if name.is_ascii() {
            identifier(&name)
        } else {
            format!("attribute_{}", k + 1)
        };
        let mut id = base.clone();
        let mut n = 2;
        while taken.contains(&id) {
            id = format!("{base}_{n}");
            n += 1;
        }
        taken.insert(id.clone());
        index.insert(name.clone(), defs.len());
        defs.push(PropertyDef {
            id,
            name: name.clone(),
            ty: match kinds.get(&name) {
                Some(Seen::Int) => PropertyType::Int32,
                Some(Seen::Double) => PropertyType::Float64,
                Some(Seen::Text) | None => PropertyType::String,
            },
        });
    }
    (defs, index, dropped)
}

/// Property `k`'s column of `rows` values, made when first needed.
fn column<'c>(
    cols: &'c mut [Option<PropertyValues>],
    defs: &[PropertyDef],
    k: usize,
    rows: usize,
) -> Option<&'c mut PropertyValues> {
    let ty = defs.get(k)?.ty;
    Some(cols.get_mut(k)?.get_or_insert_with(|| match ty {
        PropertyType::Int32 => PropertyValues::Int32(vec![None; rows]),
        PropertyType::Float64 => PropertyValues::Float64(vec![None; rows]),
        PropertyType::String => PropertyValues::String(vec![None; rows]),
    }))
}

fn feature_table(
    features: &[&Feature],
    defs: &[PropertyDef],
    index: &HashMap<String, usize>,
    schema: &Value,
) -> FeatureTable {
    let n = features.len();
    // Columns are made for the properties the tile's features have, only.
    let mut cols: Vec<Option<PropertyValues>> = vec![None; defs.len()];
    for (row, f) in features.iter().enumerate() {
        let fixed = [
            Some(f.gml_id.clone()),
            Some(f.class.clone()),
            f.parent.clone(),
        ];
        for (k, v) in fixed.into_iter().enumerate() {
            if let Some(v) = v {
                if let Some(PropertyValues::String(c)) = column(&mut cols, defs, k, n) {
                    c[row] = Some(v);
                }
            }
        }
        for (name, v) in &f.attributes {
            let Some(&k) = index.get(name) else { continue };
            let Some(col) = column(&mut cols, defs, k, n) else {
                continue;
            };
            match (col, v) {
                (PropertyValues::Int32(c), AttrValue::Int(i)) => {
                    c[row].get_or_insert(*i as i32);
                }
                (PropertyValues::Float64(c), AttrValue::Int(i)) => {
                    c[row].get_or_insert(*i as f64);
                }
                (PropertyValues::Float64(c), AttrValue::Double(d)) => {
                    c[row].get_or_insert(*d);
                }
                (PropertyValues::String(c), v) => {
                    let text = match v {
                        AttrValue::Int(i) => i.to_string(),
                        AttrValue::Double(d) => d.to_string(),
                        AttrValue::Text(t) => t.clone(),
                    };
                    // A repeated attribute keeps every value.
                    match &mut c[row] {
                        Some(prev) if !prev.split("; ").any(|p| p == text) => {
                            prev.push_str("; ");
                            prev.push_str(&text);
                        }
                        Some(_) => {}
                        None => c[row] = Some(text),
                    }
                }
                _ => {}
            }
        }
    }
    let properties = defs
        .iter()
        .zip(cols)
        .filter_map(|(d, c)| Some((d.id.clone(), c?)))
        .collect();
    FeatureTable {
        schema: schema.clone(),
        class: "CityObject".into(),
        count: n,
        properties,
    }
}

/// glTF materials, textures and samplers for the job's styles.
struct Materials {
    styles: Vec<Style>,
    materials: Vec<Value>,
    textures: Vec<Value>,
    samplers: Vec<Value>,
    /// Image locations by glTF source image index.
    images: Vec<Location>,
}

fn materials_for(keys: &[StyleKey], image_locs: &HashMap<String, Location>) -> Materials {
    let mut out = Materials {
        styles: Vec::new(),
        materials: Vec::new(),
        textures: Vec::new(),
        samplers: vec![
            json!({"wrapS": 10497, "wrapT": 10497}),
            json!({"wrapS": 33648, "wrapT": 33648}),
            json!({"wrapS": 33071, "wrapT": 33071}),
        ],
        images: Vec::new(),
    };
    let mut image_index: HashMap<String, usize> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        let m = match k {
            StyleKey::Surface(s) => {
                let c = SURFACE_COLORS
                    .get(*s as usize)
                    .map_or([0.8; 3], |(_, c)| *c);
                json!({
                    "pbrMetallicRoughness": {"baseColorFactor": [c[0], c[1], c[2], 1.0], "metallicFactor": 0.0, "roughnessFactor": 0.9},
                    "doubleSided": true
                })
            }
            StyleKey::Color { rgba, emissive } => {
                let f = |v: u8| v as f64 / 255.0;
                let mut m = json!({
                    "pbrMetallicRoughness": {"baseColorFactor": [f(rgba[0]), f(rgba[1]), f(rgba[2]), f(rgba[3])], "metallicFactor": 0.0, "roughnessFactor": 0.9},
                    "doubleSided": true
                });
                if rgba[3] < 255 {
                    m["alphaMode"] = json!("BLEND");
                }
                if emissive.iter().any(|&e| e > 0) {
                    m["emissiveFactor"] = json!([f(emissive[0]), f(emissive[1]), f(emissive[2])]);
                }
                m
            }
            StyleKey::Texture { image, wrap } => {
                let source = match image_index.get(image) {
                    Some(&s) => s,
                    None => {
                        let s = out.images.len();
                        if let Some(loc) = image_locs.get(image) {
                            out.images.push(loc.clone());
                        } else {
                            out.images.push(Location::File(PathBuf::from(image)));
                        }
                        image_index.insert(image.clone(), s);
                        s
                    }
                };
                let sampler = match wrap {
                    super::appearance::Wrap::Repeat => 0,
                    super::appearance::Wrap::Mirror => 1,
                    super::appearance::Wrap::Clamp => 2,
                };
                out.textures
                    .push(json!({"source": source, "sampler": sampler}));
                json!({
                    "pbrMetallicRoughness": {"baseColorTexture": {"index": out.textures.len() - 1}, "metallicFactor": 0.0, "roughnessFactor": 0.9},
                    "doubleSided": true
                })
            }
        };
        out.materials.push(m);
        out.styles.push(Style {
            material: Some(i),
            extensions: Default::default(),
        });
    }
    out
}

/// An image as a tile embeds it: JPEG/PNG as they are when small enough, anything else
/// (TIFF, GIF, BMP…) or anything larger than [`MAX_TEXTURE_PX`] decoded and written
/// again. `None` (with a warning) when it cannot be read or decoded.
fn load_image(loc: &Location, warnings: &Warnings) -> Option<ImageData> {
    let bytes = match loc.read_all(MAX_RESOURCE_BYTES) {
        Ok(b) => b,
        Err(e) => {
            warnings.push(
                "citygml-image-unreadable",
                format!("{}: {e}; drawn untextured", loc.display().display()),
            );
            return None;
        }
    };
    let mime = sniff_mime(&bytes).filter(|m| *m == "image/png" || *m == "image/jpeg");
    if let Some(m) = mime {
        let size = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .ok()
            .and_then(|r| r.into_dimensions().ok());
        if size.is_some_and(|(w, h)| w <= MAX_TEXTURE_PX && h <= MAX_TEXTURE_PX) {
            return Some(ImageData {
                bytes: Arc::new(bytes),
                mime: m.into(),
            });
        }
    }
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes)).with_guessed_format();
    let pixels = reader
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .map(|(w, h)| u64::from(w) * u64::from(h));
    if pixels.is_some_and(|p| p > MAX_DECODE_PIXELS) {
        warnings.push(
            "citygml-image-undecodable",
            format!(
                "{}: an image of {} million pixels, more than the {} million decoded; drawn untextured",
                loc.display().display(),
                pixels.unwrap_or(0) / 1_000_000,
                MAX_DECODE_PIXELS / 1_000_000
            ),
        );
        return None;
    }
    let decoded = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| {
            crate::contain::contained(std::panic::AssertUnwindSafe(|| r.decode().ok()))
                .ok()
                .flatten()
        });
    let Some(mut img) = decoded else {
        warnings.push(
            "citygml-image-undecodable",
            format!(
                "{}: not a readable image; drawn untextured",
                loc.display().display()
            ),
        );
        return None;
    };
    if img.width() > MAX_TEXTURE_PX || img.height() > MAX_TEXTURE_PX {
        img = img.resize(
            MAX_TEXTURE_PX,
            MAX_TEXTURE_PX,
            image::imageops::FilterType::Triangle,
        );
    }
    let mut out = Vec::new();
    let written = if img.color().has_alpha() {
        img.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
            .map(|_| "image/png")
    } else {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88)
            .encode_image(&img.to_rgb8())
            .map(|_| "image/jpeg")
    };
    written.ok().map(|m| ImageData {
        bytes: Arc::new(out),
        mime: m.into(),
    })
}

impl MeshTreeNode for CityNode {
    fn bounds(&self) -> &Aabb {
        &self.bounds
    }
    fn error_m(&self) -> f64 {
        self.error_m
    }
    fn has_content(&self) -> bool {
        !self.units.is_empty()
    }
    fn children(&self) -> &[Self] {
        &self.children
    }
}

/// One warning for every attribute left out: past the per-object limits of
/// [`ReadLimits`] (counted by the reader) or past [`MAX_PROPERTIES`] names.
fn warn_dropped_attributes(
    per_object: u64,
    first_object: Option<&str>,
    names: &DroppedProperties,
    warnings: &Warnings,
) {
    let mut parts = Vec::new();
    if per_object > 0 {
        let limits = ReadLimits::default();
        parts.push(format!(
            "{per_object} past the limit of {} attributes ({} KiB) per city object (first in {})",
            limits.max_attributes,
            limits.max_attribute_bytes >> 10,
            first_object.unwrap_or("?")
        ));
    }
    if let Some(first) = &names.first {
        parts.push(format!(
            "{} value(s) of {} attribute name(s) past the {MAX_PROPERTIES} names a tileset carries (first: {first})",
            names.values, names.names
        ));
    }
    if !parts.is_empty() {
        warnings.push(
            "citygml-attributes-dropped",
            format!("attributes left out of the tiles: {}", parts.join("; ")),
        );
    }
}

/// Convert CityGML documents into a 3D Tiles tileset.
pub fn run_citygml(spec: &JobSpec, progress: &Progress) -> Result<JobReport, PipelineError> {
    let warnings = Warnings::default();
    // Parsing, meshing and placing the documents take most of a city run.
    progress.plan(&[(Stage::Read, 3.0), (Stage::Tile, 1.0)]);
    progress.enter(Stage::Inspect);
    let docs = discover_job(spec, &warnings)?;
    let sampler = match &spec.city.clamp_to_terrain {
        Some(t) => Some(TerrainSampler::open(t, spec.geoid.as_deref(), &warnings)?),
        None => None,
    };
    progress.check()?;

    progress.enter(Stage::Read);
    let styles = Styles::default();
    let codelists = Codelists::default();
    let said = std::sync::Mutex::new(std::collections::HashSet::new());
    let opts = DocOptions {
        input_crs: spec.input_crs.as_ref(),
        lod: spec.city.lod,
        geoid: spec.geoid.as_deref(),
        theme: spec.city.theme.as_deref(),
        said: &said,
    };
    let limits = ReadLimits {
        max_object_vertices: ReadLimits::default()
            .max_object_vertices
            .min(spec.budget.memory_bytes / BYTES_PER_VERTEX),
        ..ReadLimits::default()
    };
    let total_docs = docs.len() as u64;
    progress.counting(WorkKind::CityDocuments, total_docs);
    let done = AtomicU64::new(0);
    let results: Vec<_> = docs
        .par_iter()
        .map(|(d, refs)| {
            progress.check()?;
            let r = convert_document_with(d, refs, &limits, &opts, &styles, &codelists, &warnings);
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress.raise(Stage::Read, n, total_docs);
            r
        })
        .collect::<Result<Vec<_>, PipelineError>>()?;
    let mut summaries = Vec::new();
    let mut parts: Vec<CityPart> = Vec::new();
    let mut triangles_read = 0u64;
    let mut objects_read = 0u64;
    let mut attributes_dropped = 0u64;
    let mut attributes_dropped_in = None;
    for ((d, _), r) in docs.iter().zip(results) {
        attributes_dropped += r.stats.attributes_dropped;
        if attributes_dropped_in.is_none() {
            attributes_dropped_in = r.stats.attributes_dropped_in.clone();
        }
        let mut classes: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &r.parts {
            *classes.entry(p.feature.class.as_str()).or_default() += 1;
        }
        let classes: Vec<String> = classes.iter().map(|(c, n)| format!("{n} {c}")).collect();
        summaries.push(InputSummary {
            path: d.display(),
            model: format!(
                "{} city object(s) ({}), {} polygons, {} triangles",
                r.parts.len(),
                classes.join(", "),
                r.stats.polygons,
                r.triangles
            ),
            crs: r.crs_label.clone(),
            crs_source: r.crs_source.clone(),
            ..Default::default()
        });
        triangles_read += r.triangles;
        objects_read += r.stats.objects;
        parts.extend(r.parts);
    }
    if parts.iter().all(|p| p.meshes.is_empty()) {
        return Err(CityGmlError::Empty {
            path: docs[0].0.display(),
            detail: format!(
                " in {} document(s) ({objects_read} object(s) without polygons{})",
                docs.len(),
                spec.city
                    .lod
                    .map(|l| format!(", or none at LoD {l}"))
                    .unwrap_or_default()
            ),
        }
        .into());
    }
    let (keys, image_locs, remap) = styles.finish();
    parts.par_iter_mut().for_each(|p| {
        for m in p.meshes.iter_mut() {
            m.material = m.material.map(|s| remap[s as usize]);
        }
    });
    progress.check()?;

    let units = units_of(&parts);
    let mut clamped = None;
    if let (Some(s), Some(path)) = (&sampler, &spec.city.clamp_to_terrain) {
        clamped = Some(clamp(&mut parts, &units, s, path, &warnings)?);
    }
    progress.check()?;

    let extent_deg = parts
        .par_iter()
        .map(|p| {
            let mut e = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
            for m in &p.meshes {
                let mut g: Vec<[f64; 3]> = m.positions.clone();
                if to_geodetic(&mut g).is_ok() {
                    for q in g {
                        e = [
                            e[0].min(q[0]),
                            e[1].min(q[1]),
                            e[2].max(q[0]),
                            e[3].max(q[1]),
                        ];
                    }
                }
            }
            e
        })
        .reduce(
            || [f64::MAX, f64::MAX, f64::MIN, f64::MIN],
            |a, b| {
                [
                    a[0].min(b[0]),
                    a[1].min(b[1]),
                    a[2].max(b[2]),
                    a[3].max(b[3]),
                ]
            },
        );

    // One frame at the centre of everything.
    let ecef_bounds = parts
        .par_iter()
        .map(|p| {
            p.meshes
                .iter()
                .fold(Aabb::EMPTY, |b, m| b.union(&m.bounds()))
        })
        .reduce(|| Aabb::EMPTY, |a, b| a.union(&b));
    // Every vertex was checked to lie near the Earth's surface; boxes and geometric
    // errors are made from these bounds.
    if !ecef_bounds
        .min
        .iter()
        .chain(&ecef_bounds.max)
        .all(|v| v.is_finite())
    {
        return Err(PipelineError::Internal(format!(
            "city bounds are not finite: {ecef_bounds:?}"
        )));
    }
    let frame: EnuFrame = enu_frame_at(ecef_bounds.center())
        .map_err(|e| PipelineError::Internal(format!("frame: {e}")))?;
    let origin = frame.origin_ecef;
    parts.par_iter_mut().for_each(|p| {
        for m in p.meshes.iter_mut() {
            let zero = frame.to_local(origin);
            for q in m.positions.iter_mut() {
                *q = frame.to_local(*q);
            }
            if let Some(ns) = m.normals.as_mut() {
                for n in ns.iter_mut() {
                    let l = frame.to_local([
                        origin[0] + n[0] as f64,
                        origin[1] + n[1] as f64,
                        origin[2] + n[2] as f64,
                    ]);
                    *n = [
                        (l[0] - zero[0]) as f32,
                        (l[1] - zero[1]) as f32,
                        (l[2] - zero[2]) as f32,
                    ];
                }
            }
        }
    });
    progress.enter(Stage::Tile);
    let mats = materials_for(&keys, &image_locs);
    let image_sizes: Vec<u64> = mats.images.iter().map(|l| l.size().unwrap_or(0)).collect();
    let tex_image: Vec<Option<usize>> = mats
        .styles
        .iter()
        .map(|s| {
            s.material
                .and_then(|m| {
                    mats.materials[m].pointer("/pbrMetallicRoughness/baseColorTexture/index")
                })
                .and_then(Value::as_u64)
                .and_then(|t| mats.textures[t as usize]["source"].as_u64())
                .map(|i| i as usize)
        })
        .collect();
    let unit_info: Vec<Unit> = units
        .par_iter()
        .map(|u| {
            let mut bounds = Aabb::EMPTY;
            let mut triangles = 0;
            let mut imgs: Vec<usize> = Vec::new();
            for &i in &u.parts {
                for m in &parts[i].meshes {
                    bounds = bounds.union(&m.bounds());
                    triangles += m.triangle_count();
                    if let Some(img) = m.material.and_then(|s| tex_image[s as usize]) {
                        imgs.push(img);
                    }
                }
            }
            imgs.sort_unstable();
            imgs.dedup();
            Unit {
                bounds,
                triangles,
                image_bytes: imgs.iter().map(|&i| image_sizes[i]).sum(),
            }
        })
        .collect();
    let budget = Budget {
        triangles: spec.model.max_triangles_per_tile.max(1),
        image_bytes: TILE_IMAGE_BYTES,
    };
    // Objects without geometry (at the chosen LoD) are in no tile.
    let tiled: Vec<usize> = (0..units.len())
        .filter(|&u| !unit_info[u].bounds.is_empty())
        .collect();
    let without_geometry = parts.iter().filter(|p| p.meshes.is_empty()).count();
    let left_out: u64 = (0..units.len())
        .filter(|&u| unit_info[u].bounds.is_empty())
        .map(|u| units[u].parts.len() as u64)
        .sum();
    if without_geometry > 0 {
        warnings.push(
            "citygml-no-geometry",
            format!(
                "{without_geometry} city object(s) without geometry{} of their own: {}",
                spec.city.lod.map(|l| format!(" at LoD {l}")).unwrap_or_default(),
                if left_out == 0 {
                    "each is a feature of the tile of the object it belongs to".to_string()
                } else {
                    format!("{left_out} belong to nothing drawn and are left out, the rest are features of the tile of the object they belong to")
                }
            ),
        );
    }
    let tiled_info: Vec<Unit> = tiled.iter().map(|&u| unit_info[u].clone()).collect();
    let tree = tree::build(&tiled_info, budget);
    let all_features: Vec<&Feature> = parts.iter().map(|p| &p.feature).collect();
    let (defs, index, dropped) = property_defs(&all_features);
    warn_dropped_attributes(
        attributes_dropped,
        attributes_dropped_in.as_deref(),
        &dropped,
        &warnings,
    );
    let schema = schema_json("tessera_citygml", "CityObject", &defs);

    let mut tiles = Vec::new();
    flatten(&tree, &mut Vec::new(), &mut tiles);
    let sink: Box<dyn TileSink> = if spec.archive {
        Box::new(ArchiveSink::new(&spec.output)?)
    } else {
        Box::new(DirectorySink::new(&spec.output)?)
    };
    let src = MaterialSource {
        styles: &mats.styles,
        materials: &mats.materials,
        textures: &mats.textures,
        samplers: &mats.samplers,
        required: &[],
    };
    let written_features = AtomicU64::new(0);
    let written_triangles = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let total = tiles.len() as u64;
    progress.counting(WorkKind::Tiles, total);
    let id_column = match spec.format {
        TilesFormat::Tiles11 => "_FEATURE_ID_0",
        TilesFormat::Tiles10 => "_BATCHID",
    };
    tiles.par_iter().try_for_each(|(path, node)| {
        progress.check()?;
        let mut features: Vec<&Feature> = Vec::new();
        let mut meshes: Vec<TriangleMesh> = Vec::new();
        for &u in &node.units {
            for &pi in &units[tiled[u]].parts {
                let id = features.len() as f32;
                features.push(&parts[pi].feature);
                for m in &parts[pi].meshes {
                    let mut m = m.clone();
                    let n = m.positions.len();
                    m.columns.push(tessera_model::VertexColumn {
                        name: id_column.into(),
                        components: 1,
                        values: vec![id; n],
                    });
                    meshes.push(m);
                }
            }
        }
        let meshes = merge_by_style(meshes);
        let tris: usize = meshes.iter().map(TriangleMesh::triangle_count).sum();
        let table = feature_table(&features, &defs, &index, &schema);
        let center = node.bounds.center();
        let image = |i: usize| mats.images.get(i).and_then(|l| load_image(l, &warnings));
        let bytes = match spec.format {
            TilesFormat::Tiles11 => {
                encode_mesh_glb_features(&meshes, center, &src, &image, Some(&table))
            }
            TilesFormat::Tiles10 => {
                let glb = encode_mesh_glb_features(&meshes, center, &src, &image, None);
                b3dm_with_batch(&glb, table.count, Some(&table.batch_table_json()))
            }
        };
        sink.write(&content_uri(path, spec.format), &bytes)?;
        written_features.fetch_add(features.len() as u64, Ordering::Relaxed);
        written_triangles.fetch_add(tris as u64, Ordering::Relaxed);
        progress.add_tile();
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress.raise(Stage::Tile, d, total);
        Ok::<(), PipelineError>(())
    })?;
    let features_written = written_features.into_inner();
    let triangles_written = written_triangles.into_inner();
    let in_tiles: u64 = tiled.iter().map(|&u| units[u].parts.len() as u64).sum();
    if features_written != in_tiles || triangles_written != triangles_read {
        return Err(PipelineError::Internal(format!(
            "{} objects and {triangles_read} triangles read, but {features_written} features and {triangles_written} triangles written",
            parts.len()
        )));
    }

    let mut tileset = tileset_json(&tree, &frame, spec.format, "ADD");
    if spec.format == TilesFormat::Tiles11 {
        tileset["schema"] = schema.clone();
    }
    let json = serde_json::to_vec_pretty(&tileset)
        .map_err(|e| PipelineError::Internal(format!("tileset.json: {e}")))?;
    sink.write("tileset.json", &json)?;
    progress.check()?;
    progress.enter(Stage::Commit);
    let bytes_written = sink.commit()?;
    progress.finish();
    if let Some((moved, outside)) = clamped {
        warnings.push(
            "clamped",
            format!("{moved} object(s) moved onto the terrain, {outside} outside it"),
        );
    }
    let (warnings, warnings_dropped) = warnings.take();
    Ok(JobReport {
        output: spec.output.clone(),
        inputs: summaries,
        triangles_read,
        triangles_written,
        objects_read,
        features_written,
        tiles: total,
        min_level: 0,
        max_level: tree.depth() as u8,
        bytes_written,
        extent_deg,
        warnings,
        warnings_dropped,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(id: &str, attributes: Vec<(String, AttrValue)>) -> Feature {
        Feature {
            gml_id: id.into(),
            class: "Building".into(),
            parent: None,
            attributes,
        }
    }

    #[test]
    fn property_names_past_the_tileset_limit_are_dropped_and_counted() {
        let a = feature(
            "a",
            (0..MAX_PROPERTIES - 1)
                .map(|i| (format!("p{i}"), AttrValue::Int(1)))
                .collect(),
        );
        let b = feature(
            "b",
            vec![
                ("p0".into(), AttrValue::Text("x".into())),
                ("last".into(), AttrValue::Int(2)),
                ("over1".into(), AttrValue::Int(3)),
                ("over2".into(), AttrValue::Int(4)),
                ("over1".into(), AttrValue::Int(5)),
            ],
        );
        let (defs, index, dropped) = property_defs(&[&a, &b]);
        assert_eq!(defs.len(), 3 + MAX_PROPERTIES);
        assert!(index.contains_key("last") && !index.contains_key("over1"));
        assert_eq!(defs[3].ty, PropertyType::String);
        assert_eq!(
            dropped,
            DroppedProperties {
                names: 2,
                values: 3,
                first: Some("over1".into())
            }
        );
        // A tile holds columns only for the properties its features have.
        let schema = schema_json("s", "CityObject", &defs);
        let t = feature_table(&[&b], &defs, &index, &schema);
        let ids: Vec<&str> = t.properties.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, vec!["gml_id", "class", "p0", "last"]);
        assert_eq!(t.properties[3].1, PropertyValues::Int32(vec![Some(2)]));
        let w = Warnings::default();
        warn_dropped_attributes(7, Some("B9"), &dropped, &w);
        let (ws, _) = w.take();
        assert_eq!(ws.len(), 1);
        assert!(
            ws[0]
                .message
                .contains("7 past the limit of 1000 attributes"),
            "{}",
            ws[0].message
        );
        assert!(
            ws[0].message.contains("3 value(s) of 2 attribute name(s)"),
            "{}",
            ws[0].message
        );
    }
}
