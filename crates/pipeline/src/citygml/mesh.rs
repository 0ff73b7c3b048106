//! One CityGML document to city objects as meshes in ECEF.
//!
//! Appearances are read first (a pass of their own, only when the document has any),
//! then objects stream in and are converted in chunks on the rayon pool while the parser
//! goes on: one LoD per object (the one asked for when it has it, else its highest),
//! coordinates through PROJ (latitude-first files swapped first), polygons triangulated
//! on their own plane, each triangle drawn with its surface's texture (when the image
//! exists and the coordinates fit the ring), else its X3D material, else a default
//! colour for its thematic surface. Codelist codes (PLATEAU `codeSpace`) become their
//! descriptions.

use super::appearance::{read_appearances, Theme, Wrap};
use super::crs::{crs_from_srs_name, latitude_first};
use super::reader::{
    local_str, next_event, read_city_objects_while, AttrValue, CityObject, ReadError, ReadStats,
};
use super::source::Location;
use super::triangulate::triangulate;
use crate::error::{CityGmlError, CrsError, PipelineError};
use crate::report::Warnings;
use crate::reproject::CrsPlan;
use earcut::Earcut;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tessera_model::{CrsSpec, TriangleMesh, VertexColumn};

/// One feature's identity and attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub gml_id: String,
    pub class: String,
    pub parent: Option<String>,
    pub attributes: Vec<(String, AttrValue)>,
}

/// How a group of triangles is drawn.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StyleKey {
    /// A default colour for a thematic surface class (see [`SURFACE_COLORS`]).
    Surface(u8),
    /// An X3DMaterial: linear RGBA and emissive RGB, 8 bits each.
    Color { rgba: [u8; 4], emissive: [u8; 3] },
    /// A texture image (by location) and its wrap mode.
    Texture { image: String, wrap: Wrap },
}

/// Default colours (linear RGB) by thematic surface, for surfaces without appearance.
pub const SURFACE_COLORS: &[(&str, [f32; 3])] = &[
    ("", [0.82, 0.82, 0.80]),
    ("WallSurface", [0.80, 0.77, 0.72]),
    ("RoofSurface", [0.55, 0.24, 0.18]),
    ("GroundSurface", [0.35, 0.35, 0.35]),
    ("ClosureSurface", [0.70, 0.70, 0.70]),
    ("Window", [0.42, 0.55, 0.68]),
    ("Door", [0.45, 0.30, 0.20]),
    ("WaterSurface", [0.20, 0.40, 0.70]),
    ("TrafficArea", [0.40, 0.40, 0.42]),
    ("AuxiliaryTrafficArea", [0.45, 0.55, 0.40]),
];

fn surface_style(surface: Option<&str>) -> StyleKey {
    let s = surface.unwrap_or("");
    let i = SURFACE_COLORS
        .iter()
        .position(|(n, _)| *n == s)
        .unwrap_or(0);
    StyleKey::Surface(i as u8)
}

/// Styles of the whole job, numbered as they are first met; [`Styles::finish`] sorts
/// them so the output does not depend on thread timing.
#[derive(Default)]
pub struct Styles {
    inner: Mutex<StyleTable>,
}

#[derive(Default)]
struct StyleTable {
    index: HashMap<StyleKey, u32>,
    keys: Vec<StyleKey>,
    images: HashMap<String, Location>,
}

impl Styles {
    fn intern(&self, key: StyleKey, image: Option<&Location>) -> u32 {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&i) = t.index.get(&key) {
            return i;
        }
        if let (StyleKey::Texture { image: name, .. }, Some(loc)) = (&key, image) {
            t.images.insert(name.clone(), loc.clone());
        }
        let i = t.keys.len() as u32;
        t.keys.push(key.clone());
        t.index.insert(key, i);
        i
    }

    /// The styles in sorted order, the image locations, and old index → new index.
    pub fn finish(self) -> (Vec<StyleKey>, HashMap<String, Location>, Vec<u32>) {
        let t = self.inner.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut order: Vec<u32> = (0..t.keys.len() as u32).collect();
        order.sort_by(|a, b| t.keys[*a as usize].cmp(&t.keys[*b as usize]));
        let mut remap = vec![0u32; t.keys.len()];
        for (new, old) in order.iter().enumerate() {
            remap[*old as usize] = new as u32;
        }
        let keys = order.iter().map(|&o| t.keys[o as usize].clone()).collect();
        (keys, t.images, remap)
    }
}

/// A city object with its meshes (ECEF, one per style, `material` = style index).
#[derive(Debug, Clone)]
pub struct CityPart {
    pub feature: Feature,
    pub meshes: Vec<TriangleMesh>,
}

/// What converting a document needs to know.
pub struct DocOptions<'a> {
    pub input_crs: Option<&'a CrsSpec>,
    pub lod: Option<u8>,
    pub geoid: Option<&'a Path>,
    pub theme: Option<&'a str>,
    /// Remarks already made for the job (said once, not per document).
    pub said: &'a Mutex<std::collections::HashSet<String>>,
}

/// One converted document.
#[derive(Debug, Default)]
pub struct DocResult {
    pub parts: Vec<CityPart>,
    pub stats: ReadStats,
    pub crs_label: String,
    pub crs_source: String,
    pub triangles: u64,
    pub degenerate_polygons: u64,
}

/// Objects converted per rayon task.
const CHUNK_OBJECTS: usize = 64;

/// Whether the stream holds `needle` anywhere (a cheap scan before a second parse).
fn contains(mut r: impl Read, needle: &[u8]) -> std::io::Result<bool> {
    let finder = memchr::memmem::Finder::new(needle);
    let mut buf = vec![0u8; 1 << 20];
    let keep = needle.len() - 1;
    let mut have = 0usize;
    loop {
        let n = r.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(false);
        }
        have += n;
        if finder.find(&buf[..have]).is_some() {
            return Ok(true);
        }
        if have >= keep {
            buf.copy_within(have - keep..have, 0);
            have = keep;
        }
    }
}

fn xml_error(path: &Path, e: ReadError) -> PipelineError {
    match e {
        ReadError::Xml { position, reason } => CityGmlError::Xml {
            path: path.into(),
            position,
            reason,
        },
        ReadError::Dtd => CityGmlError::Dtd { path: path.into() },
        ReadError::NotCityGml => CityGmlError::NotCityGml { path: path.into() },
    }
    .into()
}

/// A codelist: code → description (`None` when it could not be read).
type Codelist = Arc<Option<HashMap<String, String>>>;

/// Codelist dictionaries by location, read once each.
#[derive(Default)]
pub struct Codelists {
    cache: Mutex<HashMap<String, Codelist>>,
}

impl Codelists {
    fn get(&self, loc: &Location) -> Codelist {
        let key = loc.display().to_string_lossy().to_string();
        if let Some(v) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return v.clone();
        }
        let parsed = Arc::new(loc.read_all().ok().and_then(|b| parse_codelist(&b)));
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, parsed.clone());
        parsed
    }
}

/// A gml:Dictionary: `gml:Definition`s with a `gml:name` (the code) and a
/// `gml:description` (the value).
fn parse_codelist(bytes: &[u8]) -> Option<HashMap<String, String>> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut out = HashMap::new();
    let (mut name, mut desc, mut text) = (None::<String>, None::<String>, String::new());
    loop {
        match next_event(&mut r, &mut buf).ok()? {
            Event::Start(_) => text.clear(),
            Event::Text(t) => text.push_str(&t),
            Event::End(e) => {
                let n = e.name();
                match local_str(n.as_ref()) {
                    "name" => name = Some(text.trim().to_string()),
                    "description" => desc = Some(text.trim().to_string()),
                    "Definition" => {
                        if let (Some(n), Some(d)) = (name.take(), desc.take()) {
                            out.insert(n, d);
                        }
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Some(out)
}

/// Per-document state shared by the conversion tasks.
struct DocContext<'a> {
    loc: &'a Location,
    path: PathBuf,
    theme: Option<Theme>,
    /// Texture index → image location when the image exists.
    images: Vec<Option<Location>>,
    styles: &'a Styles,
    codelists: &'a Codelists,
    lod: Option<u8>,
}

struct Plan {
    plan: CrsPlan,
    swap: bool,
}

/// The LoD an object is drawn at: `wanted` if it has polygons there, else its highest.
fn pick_lod(o: &CityObject, wanted: Option<u8>) -> Option<u8> {
    let lods: Vec<u8> = o.polygons.iter().filter_map(|p| p.lod).collect();
    match wanted {
        Some(w) if lods.contains(&w) => Some(w),
        _ => lods.into_iter().max(),
    }
}

#[derive(Default)]
struct ChunkOut {
    parts: Vec<CityPart>,
    triangles: u64,
    degenerate: u64,
    texture_mismatch: u64,
    unresolved_refs: u64,
}

fn resolve_codes(o: &mut CityObject, ctx: &DocContext) {
    for (i, space) in std::mem::take(&mut o.code_spaces) {
        let Some(loc) = ctx.loc.resolve(&space) else {
            continue;
        };
        let dict = ctx.codelists.get(&loc);
        let Some(dict) = dict.as_ref() else { continue };
        if let Some((_, v)) = o.attributes.get_mut(i) {
            let code = match v {
                AttrValue::Int(n) => n.to_string(),
                AttrValue::Double(d) => d.to_string(),
                AttrValue::Text(t) => t.clone(),
            };
            if let Some(d) = dict.get(&code) {
                *v = AttrValue::Text(d.clone());
            }
        }
    }
}

fn convert_chunk(
    objects: Vec<CityObject>,
    ctx: &DocContext,
    plan: &Plan,
) -> Result<ChunkOut, PipelineError> {
    let mut out = ChunkOut::default();
    let mut earcut = Earcut::new();
    let unusable = |e: tessera_proj::ProjError| CrsError::Unusable {
        path: ctx.path.clone(),
        crs: plan.plan.crs.label(),
        reason: e.to_string(),
    };
    for mut o in objects {
        resolve_codes(&mut o, ctx);
        out.unresolved_refs += o.unresolved_refs.len() as u64;
        let chosen = pick_lod(&o, ctx.lod);
        let polygons: Vec<_> = std::mem::take(&mut o.polygons)
            .into_iter()
            .filter(|p| p.lod.is_none() || p.lod == chosen)
            .collect();
        let mut pts: Vec<[f64; 3]> = Vec::new();
        for p in &polygons {
            pts.extend_from_slice(&p.exterior);
            for r in &p.interiors {
                pts.extend_from_slice(r);
            }
        }
        if plan.swap {
            for p in pts.iter_mut() {
                p.swap(0, 1);
            }
        }
        plan.plan.to_ecef(&mut pts).map_err(unusable)?;
        if let Some(i) = CrsPlan::first_implausible(&pts) {
            let p = pts[i];
            return Err(CrsError::Implausible {
                path: ctx.path.clone(),
                crs: plan.plan.crs.label(),
                detail: format!(
                    "object {} has a vertex {:.0} km from the Earth's centre",
                    o.gml_id,
                    (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt() / 1000.0
                ),
            }
            .into());
        }
        let mut it = pts.into_iter();
        let mut by_style: BTreeMap<u32, TriangleMesh> = BTreeMap::new();
        for mut p in polygons {
            for v in p.exterior.iter_mut() {
                *v = it.next().unwrap_or(*v);
            }
            for r in p.interiors.iter_mut() {
                for v in r.iter_mut() {
                    *v = it.next().unwrap_or(*v);
                }
            }
            let Some(t) = triangulate(&p, &mut earcut) else {
                out.degenerate += 1;
                continue;
            };
            // Texture: the polygon is a target and every ring has its coordinates.
            let mut uvs: Option<(u32, Vec<f32>)> = None;
            if let Some(theme) = &ctx.theme {
                if let Some(&tex) = p
                    .gml_id
                    .as_ref()
                    .and_then(|id| theme.target_texture.get(id))
                {
                    if ctx.images.get(tex as usize).is_some_and(Option::is_some) {
                        let rings = std::iter::once(p.exterior.len())
                            .chain(p.interiors.iter().map(Vec::len));
                        let mut all = Vec::with_capacity(t.vertices.len() * 2);
                        let mut ok = true;
                        for (k, n) in rings.enumerate() {
                            let coords = p
                                .ring_ids
                                .get(k)
                                .and_then(|id| id.as_ref())
                                .and_then(|id| theme.ring_uvs.get(id));
                            match coords {
                                Some(c) if c.len() == n || c.len() == n + 1 => {
                                    all.extend(c[..n].iter().flatten());
                                }
                                _ => ok = false,
                            }
                        }
                        if ok {
                            uvs = Some((tex, all));
                        } else {
                            out.texture_mismatch += 1;
                        }
                    }
                }
            }
            let style = match &uvs {
                Some((tex, _)) => {
                    let theme = ctx.theme.as_ref();
                    let spec = theme.map(|t| &t.textures[*tex as usize]);
                    let loc = ctx.images[*tex as usize].as_ref();
                    ctx.styles.intern(
                        StyleKey::Texture {
                            image: loc
                                .map(|l| l.display().to_string_lossy().to_string())
                                .unwrap_or_default(),
                            wrap: spec.map_or(Wrap::Repeat, |s| s.wrap),
                        },
                        loc,
                    )
                }
                None => {
                    let material = ctx.theme.as_ref().and_then(|theme| {
                        p.gml_id
                            .iter()
                            .chain(p.enclosing_ids.iter())
                            .find_map(|id| theme.target_material.get(id))
                            .map(|&m| theme.materials[m as usize])
                    });
                    let key = match material {
                        Some(m) => {
                            let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                            StyleKey::Color {
                                rgba: [
                                    q(m.diffuse[0]),
                                    q(m.diffuse[1]),
                                    q(m.diffuse[2]),
                                    q(m.alpha),
                                ],
                                emissive: m.emissive.map(q),
                            }
                        }
                        None => surface_style(p.surface.as_deref()),
                    };
                    ctx.styles.intern(key, None)
                }
            };
            let mesh = by_style.entry(style).or_insert_with(|| TriangleMesh {
                normals: Some(Vec::new()),
                material: Some(style),
                columns: if uvs.is_some() {
                    vec![VertexColumn {
                        name: "TEXCOORD_0".into(),
                        components: 2,
                        values: Vec::new(),
                    }]
                } else {
                    Vec::new()
                },
                ..Default::default()
            });
            let base = mesh.positions.len() as u32;
            mesh.positions.extend_from_slice(&t.vertices);
            mesh.indices.extend(t.indices.iter().map(|i| i + base));
            out.triangles += t.indices.len() as u64 / 3;
            if let Some(n) = mesh.normals.as_mut() {
                n.extend(std::iter::repeat_n(
                    t.normal.map(|v| v as f32),
                    t.vertices.len(),
                ));
            }
            if let (Some((_, uv)), Some(col)) = (uvs, mesh.columns.first_mut()) {
                col.values.extend(uv);
            }
        }
        out.parts.push(CityPart {
            feature: Feature {
                gml_id: o.gml_id,
                class: o.class,
                parent: o.parent,
                attributes: o.attributes,
            },
            meshes: by_style.into_values().collect(),
        });
    }
    Ok(out)
}

/// Convert one CityGML document.
pub fn convert_document(
    loc: &Location,
    opts: &DocOptions,
    styles: &Styles,
    codelists: &Codelists,
    warnings: &Warnings,
) -> Result<DocResult, PipelineError> {
    let path = loc.display();
    // Appearances first, when there are any.
    let has_appearance = contains(loc.open()?, b"Appearance").map_err(|e| CityGmlError::Xml {
        path: path.clone(),
        position: 0,
        reason: e.to_string(),
    })?;
    let mut theme = None;
    let mut unsupported = 0;
    if has_appearance {
        let all = read_appearances(loc.open()?).map_err(|e| xml_error(&path, e))?;
        unsupported = all.unsupported_targets;
        let names = all.theme_names();
        theme = all.pick(opts.theme);
        match (&theme, opts.theme) {
            (None, Some(w)) => warnings.push(
                "citygml-theme",
                format!(
                    "{}: no appearance theme \"{w}\" (themes: {}); surfaces drawn untextured",
                    path.display(),
                    names.join(", ")
                ),
            ),
            (Some(t), None) if names.len() > 1 => warnings.push(
                "citygml-theme",
                format!(
                    "{}: appearance themes {}; drawing \"{}\" (choose with --theme)",
                    path.display(),
                    names.join(", "),
                    t.name
                ),
            ),
            _ => {}
        }
    }
    if unsupported > 0 {
        warnings.push(
            "citygml-texture-unsupported",
            format!(
                "{}: {unsupported} surface(s) with georeferenced or generated texture coordinates drawn without texture",
                path.display()
            ),
        );
    }
    // Which images exist.
    let mut images = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    if let Some(t) = &theme {
        for tex in &t.textures {
            let found = loc.resolve(&tex.image_uri).filter(|l| l.size().is_some());
            if found.is_none() {
                missing.push(tex.image_uri.clone());
            }
            images.push(found);
        }
    }
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        warnings.push(
            "citygml-missing-image",
            format!(
                "{}: {} texture image(s) not found (first: {}); their surfaces are drawn untextured",
                path.display(),
                missing.len(),
                missing[0]
            ),
        );
    }
    let ctx = DocContext {
        loc,
        path: path.clone(),
        theme,
        images,
        styles,
        codelists,
        lod: opts.lod,
    };

    // Objects, converted in chunks while the parser goes on.
    let mut plans: HashMap<Option<String>, Arc<Plan>> = HashMap::new();
    let mut failure: Option<PipelineError> = None;
    let results: Mutex<Vec<(usize, Result<ChunkOut, PipelineError>)>> = Mutex::new(Vec::new());
    let mut crs_label = String::new();
    let mut crs_source = String::new();
    let input = loc.open()?;
    let in_flight = AtomicUsize::new(0);
    let stats = rayon::in_place_scope(|scope| {
        let mut chunk: Vec<CityObject> = Vec::new();
        let mut seq = 0usize;
        let mut chunk_plan: Option<Arc<Plan>> = None;
        let ctx = &ctx;
        let results = &results;
        // Chunks waiting or running; past the limit the parser converts the chunk itself,
        // so raw objects never pile up ahead of the workers.
        let in_flight = &in_flight;
        let limit = 2 * rayon::current_num_threads();
        let flush = |chunk: &mut Vec<CityObject>, plan: &Arc<Plan>, seq: &mut usize| {
            let objects = std::mem::take(chunk);
            let plan = plan.clone();
            let s = *seq;
            *seq += 1;
            if rayon::current_num_threads() == 1 || in_flight.load(Ordering::Acquire) >= limit {
                let r = convert_chunk(objects, ctx, &plan);
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((s, r));
                return;
            }
            in_flight.fetch_add(1, Ordering::AcqRel);
            scope.spawn(move |_| {
                let r = convert_chunk(objects, ctx, &plan);
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((s, r));
                in_flight.fetch_sub(1, Ordering::AcqRel);
            });
        };
        let read = read_city_objects_while(input, |o| {
            let key = opts
                .input_crs
                .is_none()
                .then(|| o.srs_name.clone())
                .flatten();
            let plan = match plans.get(&key) {
                Some(p) => p.clone(),
                None => {
                    let made = make_plan(&o, key.as_deref(), opts, &path, warnings);
                    match made {
                        Ok(Some((p, label, source))) => {
                            if crs_label.is_empty() {
                                crs_label = label;
                                crs_source = source;
                            }
                            let p = Arc::new(p);
                            plans.insert(key.clone(), p.clone());
                            p
                        }
                        // No geometry yet to decide the axis order: wait for one.
                        Ok(None) => {
                            chunk.push(o);
                            return true;
                        }
                        Err(e) => {
                            failure = Some(e);
                            return false;
                        }
                    }
                }
            };
            if chunk_plan.as_ref().is_some_and(|c| !Arc::ptr_eq(c, &plan)) {
                let c = chunk_plan.take().unwrap_or_else(|| plan.clone());
                flush(&mut chunk, &c, &mut seq);
            }
            chunk_plan = Some(plan.clone());
            chunk.push(o);
            if chunk.len() >= CHUNK_OBJECTS {
                flush(&mut chunk, &plan, &mut seq);
            }
            true
        });
        if !chunk.is_empty() {
            match &chunk_plan {
                Some(p) => flush(&mut chunk, p, &mut seq),
                // Objects but no geometry anywhere: they become features without meshes.
                None => {
                    let parts = chunk
                        .drain(..)
                        .map(|o| CityPart {
                            feature: Feature {
                                gml_id: o.gml_id,
                                class: o.class,
                                parent: o.parent,
                                attributes: o.attributes,
                            },
                            meshes: Vec::new(),
                        })
                        .collect();
                    results.lock().unwrap_or_else(|p| p.into_inner()).push((
                        seq,
                        Ok(ChunkOut {
                            parts,
                            ..Default::default()
                        }),
                    ));
                }
            }
        }
        read
    });
    let stats = stats.map_err(|e| xml_error(&path, e))?;
    if let Some(e) = failure {
        return Err(e);
    }
    let mut chunks = results.into_inner().unwrap_or_else(|p| p.into_inner());
    chunks.sort_by_key(|(s, _)| *s);
    let mut out = DocResult {
        stats,
        crs_label,
        crs_source,
        ..Default::default()
    };
    let mut mismatch = 0;
    let mut unresolved = 0;
    for (_, c) in chunks {
        let c = c?;
        unresolved += c.unresolved_refs;
        out.parts.extend(c.parts);
        out.triangles += c.triangles;
        out.degenerate_polygons += c.degenerate;
        mismatch += c.texture_mismatch;
    }
    let degenerate = out.degenerate_polygons + out.stats.degenerate_rings;
    if degenerate > 0 {
        warnings.push(
            "degenerate-polygons",
            format!(
                "{}: {degenerate} polygon(s)/ring(s) without area, with fewer than 3 points or with coordinates that are not numbers skipped",
                path.display()
            ),
        );
    }
    if unresolved > 0 {
        warnings.push(
            "citygml-xlink-outside",
            format!(
                "{}: {unresolved} xlink:href geometry reference(s) point outside their city object and are not drawn",
                path.display()
            ),
        );
    }
    if mismatch > 0 {
        warnings.push(
            "citygml-texture-coordinates",
            format!(
                "{}: {mismatch} textured polygon(s) whose texture coordinates do not match their rings drawn untextured",
                path.display()
            ),
        );
    }
    Ok(out)
}

/// The CRS plan for an object's srsName (or `--input-crs`); `None` while no object with
/// geometry has been seen (the axis order is checked on a real coordinate).
fn make_plan(
    o: &CityObject,
    srs: Option<&str>,
    opts: &DocOptions,
    path: &Path,
    warnings: &Warnings,
) -> Result<Option<(Plan, String, String)>, PipelineError> {
    let Some(first) = o.polygons.first().map(|p| p.exterior[0]) else {
        return Ok(None);
    };
    let (crs, name, source) = match (opts.input_crs, srs) {
        (Some(c), _) => (c.clone(), c.label(), "--input-crs".to_string()),
        (None, Some(s)) => {
            let c = crs_from_srs_name(s).map_err(|_| CityGmlError::UnknownCrs {
                path: path.into(),
                name: s.to_string(),
            })?;
            (c, s.to_string(), format!("srsName {s}"))
        }
        (None, None) => return Err(CityGmlError::NoCrs { path: path.into() }.into()),
    };
    // The same CRS remark for every document of a job is said once.
    let local = Warnings::default();
    let plan = CrsPlan::new(&crs, opts.geoid, path, &local)?;
    for w in local.take().0 {
        let key = format!("{}|{}", w.code, crs.label());
        let first = opts
            .said
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
        if first {
            warnings.push(w.code, w.message);
        }
    }
    let swap = latitude_first(&name, &plan.info, Some(first));
    let label = crs.label();
    Ok(Some((Plan { plan, swap }, label, source)))
}
