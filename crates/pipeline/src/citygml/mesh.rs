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
//!
//! Texture images and codelists next to plain files are read only inside the folder the
//! job allows ([`RefRoot`]). Polygons whose coordinates no CRS has, that PROJ cannot
//! transform, or that land far from the Earth's surface are dropped and counted; a
//! document left with none is refused.

use super::appearance::{read_appearances, Theme, Wrap};
use super::crs::{crs_from_srs_name, latitude_first};
use super::reader::{
    local_str, read_city_objects_limited, AttrValue, CityObject, Polygon, ReadError, ReadLimits,
    ReadStats, XmlEvents,
};
use super::source::{Location, RefIssue, TextEncoding};
use super::triangulate::triangulate;
use crate::error::{CityGmlError, CrsError, PipelineError};
use crate::refs::RefRoot;
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
/// Largest codelist read (real ones are a few kilobytes).
const MAX_CODELIST_BYTES: u64 = 32 << 20;
/// No CRS in use has a coordinate beyond this many of its units (the largest false
/// eastings are about 6 × 10⁷ m); larger values are garbage that a projection may still
/// fold back onto the globe.
const MAX_COORDINATE: f64 = 1e8;
/// Vertices one polygon may have (its rings together) to be triangulated: ear cutting
/// takes time quadratic in them for the worst shapes (32,768 take under a second;
/// real polygons have at most a few thousand). Larger ones are dropped and counted.
pub const MAX_POLYGON_VERTICES: usize = 1 << 15;
/// Different srsNames one document may use (real ones use one or two); each costs a set
/// of PROJ objects per thread.
const MAX_CRS_PER_DOCUMENT: usize = 16;

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

/// A reader error as the error of the document at `loc` (a zip that cannot be read
/// is the archive's fault, named as such: malformed XML in a zip entry is first checked
/// against the entry's CRC).
fn read_error(loc: &Location, e: ReadError) -> PipelineError {
    let path = loc.display();
    if let (Location::Zip { zip, .. }, ReadError::Xml { .. } | ReadError::Truncated { .. }) =
        (loc, &e)
    {
        if let Err(reason) = loc.check_entry() {
            return CityGmlError::Archive {
                path: zip.path.clone(),
                reason,
            }
            .into();
        }
    }
    // Positions count the UTF-8 text the reader saw; the end of a UTF-16 file is its size.
    let utf16 = matches!(loc.encoding(), TextEncoding::Utf16 { .. });
    let as_utf8 = |s: String| {
        if utf16 {
            format!("{s} (a position in the file's text as UTF-8; the file is UTF-16)")
        } else {
            s
        }
    };
    match e {
        ReadError::Xml { position, reason } => CityGmlError::Xml {
            path,
            position,
            reason: as_utf8(reason),
        },
        ReadError::Dtd => CityGmlError::Dtd { path },
        ReadError::NotCityGml => CityGmlError::NotCityGml { path },
        ReadError::Truncated { position, open } => CityGmlError::Truncated {
            path,
            position: if utf16 {
                loc.size().unwrap_or(position)
            } else {
                position
            },
            open,
        },
        ReadError::Limit { position, what } => CityGmlError::Limit {
            path,
            what: as_utf8(format!("{what} at byte {position}")),
        },
        ReadError::Io { position, reason } => match loc {
            Location::Zip { zip, .. } => CityGmlError::Archive {
                path: zip.path.clone(),
                reason,
            },
            Location::File(_) => CityGmlError::Read {
                path,
                position,
                reason,
            },
        },
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
        let parsed = Arc::new(
            loc.read_all(MAX_CODELIST_BYTES)
                .ok()
                .and_then(|b| parse_codelist(&b)),
        );
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
    let mut events = XmlEvents::new(bytes);
    let mut buf = Vec::new();
    let mut out = HashMap::new();
    let (mut name, mut desc, mut text) = (None::<String>, None::<String>, String::new());
    loop {
        match events.next(&mut buf).ok()? {
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
    /// Where files the document refers to may be read.
    refs: &'a RefRoot,
    /// codeSpace as written → where it leads (thousands of attributes name the same few
    /// codelists; each is resolved on disk once).
    code_refs: Mutex<HashMap<String, Result<Location, RefIssue>>>,
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
    /// Polygons dropped for more than [`MAX_POLYGON_VERTICES`].
    oversized: u64,
    /// Polygons dropped for coordinates far off the Earth, and the first of them.
    far_off: u64,
    first_far_off: Option<String>,
    /// codeSpace references that may not be read, and why the first may not.
    codelists_refused: u64,
    first_codelist_refused: Option<String>,
}

impl ChunkOut {
    fn far_off(&mut self, object: &str, what: impl FnOnce() -> String) {
        self.far_off += 1;
        if self.first_far_off.is_none() {
            self.first_far_off = Some(format!("object {object} {}", what()));
        }
    }

    /// Add another chunk's counts (the first remarks kept in chunk order).
    fn absorb_counts(&mut self, c: &mut ChunkOut) {
        self.triangles += c.triangles;
        self.degenerate += c.degenerate;
        self.texture_mismatch += c.texture_mismatch;
        self.unresolved_refs += c.unresolved_refs;
        self.far_off += c.far_off;
        self.oversized += c.oversized;
        self.codelists_refused += c.codelists_refused;
        if self.first_far_off.is_none() {
            self.first_far_off = c.first_far_off.take();
        }
        if self.first_codelist_refused.is_none() {
            self.first_codelist_refused = c.first_codelist_refused.take();
        }
    }
}

fn resolve_codes(o: &mut CityObject, ctx: &DocContext, out: &mut ChunkOut) {
    for (i, space) in std::mem::take(&mut o.code_spaces) {
        let resolved = {
            let mut cache = ctx.code_refs.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .entry(space)
                .or_insert_with_key(|space| ctx.loc.resolve_ref(space, ctx.refs))
                .clone()
        };
        let loc = match resolved {
            Ok(l) => l,
            Err(RefIssue::Missing) => continue,
            Err(RefIssue::Refused(why)) => {
                out.codelists_refused += 1;
                out.first_codelist_refused.get_or_insert(why);
                continue;
            }
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

/// The first coordinate of `p` no CRS has (not finite, or beyond [`MAX_COORDINATE`]).
fn absurd_coordinate(p: &Polygon) -> Option<f64> {
    std::iter::once(&p.exterior)
        .chain(p.interiors.iter())
        .flatten()
        .flatten()
        .copied()
        .find(|v| !v.is_finite() || v.abs() > MAX_COORDINATE)
}

/// The vertices of `polygons` in order, axes swapped when the file is latitude-first.
fn source_points(polygons: &[Polygon], swap: bool) -> Vec<[f64; 3]> {
    let mut pts = Vec::with_capacity(polygons.iter().map(Polygon::vertex_count).sum());
    for p in polygons {
        pts.extend_from_slice(&p.exterior);
        for r in &p.interiors {
            pts.extend_from_slice(r);
        }
    }
    if swap {
        for q in pts.iter_mut() {
            q.swap(0, 1);
        }
    }
    pts
}

/// Every vertex of `polygons` in ECEF, and which polygons PROJ could not transform
/// (their vertices are NaN). All at once; polygon by polygon only when some coordinate
/// fails, so only the polygons holding one are lost.
fn polygons_to_ecef(
    polygons: &[Polygon],
    plan: &Plan,
) -> Result<(Vec<[f64; 3]>, Vec<bool>), tessera_proj::ProjError> {
    let mut pts = source_points(polygons, plan.swap);
    match plan.plan.to_ecef(&mut pts) {
        Ok(()) => return Ok((pts, vec![false; polygons.len()])),
        Err(tessera_proj::ProjError::Transform { .. }) => {}
        Err(e) => return Err(e),
    }
    pts.clear();
    let mut failed = Vec::with_capacity(polygons.len());
    for p in polygons {
        let mut one = source_points(std::slice::from_ref(p), plan.swap);
        match plan.plan.to_ecef(&mut one) {
            Ok(()) => failed.push(false),
            Err(tessera_proj::ProjError::Transform { .. }) => {
                one.fill([f64::NAN; 3]);
                failed.push(true);
            }
            Err(e) => return Err(e),
        }
        pts.extend(one);
    }
    Ok((pts, failed))
}

/// `p` with its vertices replaced by `ecef` (as many, in ring order).
fn place(p: &mut Polygon, ecef: &[[f64; 3]]) {
    let mut it = ecef.iter();
    for v in p
        .exterior
        .iter_mut()
        .chain(p.interiors.iter_mut().flat_map(|r| r.iter_mut()))
    {
        if let Some(q) = it.next() {
            *v = *q;
        }
    }
}

/// The object's polygons at the chosen LoD in ECEF; those whose coordinates cannot be
/// on the Earth are counted in `out` and left out.
fn placed_polygons(
    o: &mut CityObject,
    ctx: &DocContext,
    plan: &Plan,
    out: &mut ChunkOut,
) -> Result<Vec<Polygon>, PipelineError> {
    let chosen = pick_lod(o, ctx.lod);
    let mut polygons = Vec::new();
    for p in std::mem::take(&mut o.polygons) {
        if p.lod.is_some() && p.lod != chosen {
            continue;
        }
        if p.vertex_count() > MAX_POLYGON_VERTICES {
            out.oversized += 1;
            continue;
        }
        match absurd_coordinate(&p) {
            Some(v) => out.far_off(&o.gml_id, || format!("has a coordinate of {v:e}")),
            None => polygons.push(p),
        }
    }
    let (ecef, failed) = polygons_to_ecef(&polygons, plan).map_err(|e| CrsError::Unusable {
        path: ctx.path.clone(),
        crs: plan.plan.crs.label(),
        reason: e.to_string(),
    })?;
    let mut kept = Vec::with_capacity(polygons.len());
    let mut at = 0;
    for (mut p, failed) in polygons.into_iter().zip(failed) {
        let n = p.vertex_count();
        let mine = &ecef[at..at + n];
        at += n;
        if failed {
            out.far_off(&o.gml_id, || "has coordinates PROJ cannot transform".into());
            continue;
        }
        if let Some(i) = CrsPlan::first_implausible(mine) {
            let q = mine[i];
            let r_km = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2]).sqrt() / 1000.0;
            out.far_off(&o.gml_id, || {
                format!("has a vertex {r_km:.0} km from the Earth's centre")
            });
            continue;
        }
        place(&mut p, mine);
        kept.push(p);
    }
    Ok(kept)
}

fn convert_chunk(
    objects: Vec<CityObject>,
    ctx: &DocContext,
    plan: &Plan,
) -> Result<ChunkOut, PipelineError> {
    let mut out = ChunkOut::default();
    let mut earcut = Earcut::new();
    for mut o in objects {
        resolve_codes(&mut o, ctx, &mut out);
        out.unresolved_refs += o.unresolved_refs.len() as u64;
        let polygons = placed_polygons(&mut o, ctx, plan, &mut out)?;
        let mut by_style: BTreeMap<u32, TriangleMesh> = BTreeMap::new();
        for p in polygons {
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

/// Convert one CityGML document, reading the files it refers to from its own folder and
/// with the default [`ReadLimits`].
pub fn convert_document(
    loc: &Location,
    opts: &DocOptions,
    styles: &Styles,
    codelists: &Codelists,
    warnings: &Warnings,
) -> Result<DocResult, PipelineError> {
    let refs = match loc {
        Location::File(p) => RefRoot::within(
            p.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        ),
        Location::Zip { .. } => RefRoot::anywhere(),
    };
    let limits = ReadLimits::default();
    convert_document_with(loc, &refs, &limits, opts, styles, codelists, warnings)
}

/// Whether the document mentions appearances at all (a cheap scan before a second
/// parse); read errors are the document's.
fn has_appearance(loc: &Location) -> Result<bool, PipelineError> {
    contains(loc.open_document()?, b"Appearance").map_err(|e| {
        read_error(
            loc,
            ReadError::Io {
                position: 0,
                reason: e.to_string(),
            },
        )
    })
}

/// The appearance theme to draw, with remarks on the themes and on textures that are
/// not drawn.
fn read_theme(
    loc: &Location,
    opts: &DocOptions,
    warnings: &Warnings,
) -> Result<Option<Theme>, PipelineError> {
    if !has_appearance(loc)? {
        return Ok(None);
    }
    let path = loc.display();
    let all = read_appearances(loc.open_document()?).map_err(|e| read_error(loc, e))?;
    let unsupported = all.unsupported_targets;
    let names = all.theme_names();
    let theme = all.pick(opts.theme);
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
    if unsupported > 0 {
        warnings.push(
            "citygml-texture-unsupported",
            format!(
                "{}: {unsupported} surface(s) with georeferenced or generated texture coordinates drawn without texture",
                path.display()
            ),
        );
    }
    Ok(theme)
}

/// The image of each texture of `theme` that may be read; the others (not there, or
/// refused by `refs`) in one warning with the reason of the first refusal.
fn find_images(
    loc: &Location,
    refs: &RefRoot,
    theme: Option<&Theme>,
    warnings: &Warnings,
) -> Vec<Option<Location>> {
    let mut images = Vec::new();
    let mut missing: Vec<&str> = Vec::new();
    let mut refused: Vec<(&str, String)> = Vec::new();
    // Many textures share an image: each name is looked up once.
    let mut seen: HashMap<&str, Option<Location>> = HashMap::new();
    for tex in theme.map_or(&[][..], |t| &t.textures[..]) {
        let uri = tex.image_uri.as_str();
        let found = seen
            .entry(uri)
            .or_insert_with(|| match loc.resolve_ref(uri, refs) {
                Ok(l) => Some(l),
                Err(RefIssue::Missing) => {
                    missing.push(uri);
                    None
                }
                Err(RefIssue::Refused(why)) => {
                    refused.push((uri, why));
                    None
                }
            });
        images.push(found.clone());
    }
    if missing.is_empty() && refused.is_empty() {
        return images;
    }
    missing.sort_unstable();
    refused.sort();
    let first = missing.first().copied().unwrap_or_else(|| refused[0].0);
    let refusal = match refused.first() {
        Some((_, why)) => format!("; {} refused, first: {why}", refused.len()),
        None => String::new(),
    };
    warnings.push(
        "citygml-missing-image",
        format!(
            "{}: {} texture image(s) not found{} (first: {first}){refusal}; their surfaces are drawn untextured",
            loc.display().display(),
            missing.len() + refused.len(),
            if refused.is_empty() { "" } else { " or refused" },
        ),
    );
    images
}

/// Convert one CityGML document: files it refers to are read only as `refs` allows,
/// objects are held to `limits`.
pub fn convert_document_with(
    loc: &Location,
    refs: &RefRoot,
    limits: &ReadLimits,
    opts: &DocOptions,
    styles: &Styles,
    codelists: &Codelists,
    warnings: &Warnings,
) -> Result<DocResult, PipelineError> {
    let path = loc.display();
    // Appearances first, when there are any.
    let theme = read_theme(loc, opts, warnings)?;
    let images = find_images(loc, refs, theme.as_ref(), warnings);
    let ctx = DocContext {
        loc,
        refs,
        code_refs: Mutex::new(HashMap::new()),
        path: path.clone(),
        theme,
        images,
        styles,
        codelists,
        lod: opts.lod,
    };
    let (stats, crs_label, crs_source, chunks) = read_and_convert(&ctx, limits, opts, warnings)?;
    let mut out = DocResult {
        stats,
        crs_label,
        crs_source,
        ..Default::default()
    };
    let mut total = ChunkOut::default();
    for mut c in chunks {
        total.absorb_counts(&mut c);
        out.parts.append(&mut c.parts);
    }
    out.triangles = total.triangles;
    out.degenerate_polygons = total.degenerate;
    if out.triangles == 0 && total.far_off > 0 {
        return Err(CrsError::Implausible {
            path,
            crs: out.crs_label,
            detail: format!(
                "none of its {} polygon(s) lies on the Earth ({})",
                out.stats.polygons,
                total.first_far_off.unwrap_or_default()
            ),
        }
        .into());
    }
    report_chunks(&path, &out, &total, warnings);
    Ok(out)
}

/// The warnings about what converting the document went past.
fn report_chunks(path: &Path, out: &DocResult, total: &ChunkOut, warnings: &Warnings) {
    let degenerate =
        total.degenerate + out.stats.degenerate_rings + total.far_off + total.oversized;
    if degenerate > 0 {
        let mut far_off = match &total.first_far_off {
            Some(first) => format!(" ({} not on the Earth, first: {first})", total.far_off),
            None => String::new(),
        };
        if total.oversized > 0 {
            far_off.push_str(&format!(
                " ({} with more than {MAX_POLYGON_VERTICES} vertices)",
                total.oversized
            ));
        }
        warnings.push(
            "degenerate-polygons",
            format!(
                "{}: {degenerate} polygon(s)/ring(s) without area, with fewer than 3 points or with coordinates that are not numbers or not on the Earth skipped{far_off}",
                path.display()
            ),
        );
    }
    if total.unresolved_refs > 0 {
        warnings.push(
            "citygml-xlink-outside",
            format!(
                "{}: {} xlink:href geometry reference(s) point outside their city object and are not drawn",
                path.display(),
                total.unresolved_refs
            ),
        );
    }
    if total.texture_mismatch > 0 {
        warnings.push(
            "citygml-texture-coordinates",
            format!(
                "{}: {} textured polygon(s) whose texture coordinates do not match their rings drawn untextured",
                path.display(),
                total.texture_mismatch
            ),
        );
    }
    if let Some(why) = &total.first_codelist_refused {
        warnings.push(
            "citygml-codelist-refused",
            format!(
                "{}: {} codeSpace reference(s) not read, first: {why}; their codes are kept as written (codelists are read only as regular files inside that folder: convert the folder that holds them, or allow references outside it)",
                path.display(),
                total.codelists_refused
            ),
        );
    }
}

/// The document's objects read and converted in chunks on the rayon pool while the
/// parser goes on; the chunks come back in document order.
fn read_and_convert(
    ctx: &DocContext,
    limits: &ReadLimits,
    opts: &DocOptions,
    warnings: &Warnings,
) -> Result<(ReadStats, String, String, Vec<ChunkOut>), PipelineError> {
    let loc = ctx.loc;
    let path = &ctx.path;
    // Objects, converted in chunks while the parser goes on.
    let mut plans: HashMap<Option<String>, Arc<Plan>> = HashMap::new();
    let mut failure: Option<PipelineError> = None;
    let results: Mutex<Vec<(usize, Result<ChunkOut, PipelineError>)>> = Mutex::new(Vec::new());
    let mut crs_label = String::new();
    let mut crs_source = String::new();
    let input = loc.open_document()?;
    let in_flight = AtomicUsize::new(0);
    let stats = rayon::in_place_scope(|scope| {
        let mut chunk: Vec<CityObject> = Vec::new();
        let mut seq = 0usize;
        let mut chunk_plan: Option<Arc<Plan>> = None;
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
        let read = read_city_objects_limited(input, limits, |o| {
            let key = opts
                .input_crs
                .is_none()
                .then(|| o.srs_name.clone())
                .flatten();
            let plan = match plans.get(&key) {
                Some(p) => p.clone(),
                None if plans.len() >= MAX_CRS_PER_DOCUMENT => {
                    failure = Some(
                        CityGmlError::Limit {
                            path: path.clone(),
                            what: format!(
                                "more than {MAX_CRS_PER_DOCUMENT} different srsNames (object {})",
                                o.gml_id
                            ),
                        }
                        .into(),
                    );
                    return false;
                }
                None => {
                    let made = make_plan(&o, key.as_deref(), opts, path, warnings);
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
    let stats = stats.map_err(|e| read_error(loc, e))?;
    if let Some(e) = failure {
        return Err(e);
    }
    let mut chunks = results.into_inner().unwrap_or_else(|p| p.into_inner());
    chunks.sort_by_key(|(s, _)| *s);
    let chunks = chunks
        .into_iter()
        .map(|(_, c)| c)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((stats, crs_label, crs_source, chunks))
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
    let sample = if swap {
        [first[1], first[0], first[2]]
    } else {
        first
    };
    if let Some(why) = plan.area_of_use_problem(&[sample]) {
        warnings.push("crs-area-of-use", format!("{}: {why}", path.display()));
    }
    let label = crs.label();
    Ok(Some((Plan { plan, swap }, label, source)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = r#"<?xml version="1.0"?>
<core:CityModel xmlns:core="c" xmlns:bldg="b" xmlns:gml="g">"#;

    fn polygon(ring: &str) -> String {
        format!(
            r#"<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList srsDimension="3">{ring}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember>"#
        )
    }

    fn document(polygons: &[&str], extra: &str) -> String {
        let surfaces: String = polygons.iter().map(|r| polygon(r)).collect();
        format!(
            r#"{HEAD}<core:cityObjectMember><bldg:Building gml:id="B1">{extra}<bldg:lod1Solid><gml:Solid srsName="EPSG:25832"><gml:exterior><gml:CompositeSurface>{surfaces}</gml:CompositeSurface></gml:exterior></gml:Solid></bldg:lod1Solid></bldg:Building></core:cityObjectMember></core:CityModel>"#
        )
    }

    const GOOD: &str =
        "458877 5438353 100 458887 5438353 100 458887 5438353 110 458877 5438353 100";

    fn convert(dir: &Path, doc: &str) -> (Result<DocResult, PipelineError>, Vec<String>) {
        let path = dir.join("doc.gml");
        std::fs::write(&path, doc).unwrap();
        let said = Mutex::new(Default::default());
        let opts = DocOptions {
            input_crs: None,
            lod: None,
            geoid: None,
            theme: None,
            said: &said,
        };
        let warnings = Warnings::default();
        let r = convert_document(
            &Location::File(path),
            &opts,
            &Styles::default(),
            &Codelists::default(),
            &warnings,
        );
        let messages = warnings.take().0.into_iter().map(|w| w.message).collect();
        (r, messages)
    }

    #[test]
    fn polygons_off_the_earth_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let bad = "458877 1e308 100 458887 5438353 100 458887 5438353 110 458877 5438353 100";
        // Within the coordinate bound, but 10,000 km up.
        let high = "458877 5438353 1e7 458887 5438353 100 458887 5438353 110 458877 5438353 100";
        let (r, w) = convert(dir.path(), &document(&[GOOD, bad, high], ""));
        let r = r.unwrap();
        assert_eq!(r.triangles, 1);
        assert!(
            w.iter()
                .any(|m| m.contains("2 polygon(s)/ring(s) without area")
                    && m.contains("2 not on the Earth")
                    && m.contains("1e308")),
            "{w:?}"
        );
        for m in &r.parts[0].meshes {
            assert!(m.positions.iter().flatten().all(|v| v.is_finite()));
        }
        // Nothing left: the document is refused.
        let (r, _) = convert(dir.path(), &document(&[high], ""));
        let e = r.unwrap_err();
        assert!(e.to_string().contains("km from the Earth's centre"), "{e}");
        let (r, _) = convert(dir.path(), &document(&[high, bad], ""));
        let e = r.unwrap_err();
        assert_eq!(e.code(), "OUT_OF_RANGE_COORDINATES");
        assert!(e.to_string().contains("none of its 2 polygon(s)"), "{e}");
    }

    #[test]
    fn coordinates_proj_cannot_transform_cost_only_their_polygon() {
        let crs = CrsSpec::parse("EPSG:4326").unwrap();
        let w = Warnings::default();
        let plan = Plan {
            plan: CrsPlan::new(&crs, None, Path::new("x.gml"), &w).unwrap(),
            swap: false,
        };
        let ring = |lat: f64| Polygon {
            exterior: vec![[8.0, lat, 0.0], [8.001, lat, 0.0], [8.0, lat + 0.001, 0.0]],
            ..Default::default()
        };
        let (pts, failed) = polygons_to_ecef(&[ring(49.0), ring(95.0), ring(50.0)], &plan).unwrap();
        assert_eq!(failed, vec![false, true, false]);
        assert_eq!(pts.len(), 9);
        assert!(pts[..3]
            .iter()
            .chain(&pts[6..])
            .flatten()
            .all(|v| v.is_finite()));
    }

    #[test]
    fn codelists_outside_the_folder_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("in");
        std::fs::create_dir_all(&inner).unwrap();
        let dictionary = |word: &str| {
            format!(
                r#"<gml:Dictionary xmlns:gml="g"><gml:dictionaryEntry><gml:Definition><gml:description>{word}</gml:description><gml:name>1</gml:name></gml:Definition></gml:dictionaryEntry></gml:Dictionary>"#
            )
        };
        std::fs::write(inner.join("inside.xml"), dictionary("residential")).unwrap();
        std::fs::write(dir.path().join("outside.xml"), dictionary("SECRET")).unwrap();
        let extra = r#"<bldg:function codeSpace="inside.xml">1</bldg:function><bldg:usage codeSpace="../outside.xml">1</bldg:usage>"#;
        let (r, w) = convert(&inner, &document(&[GOOD], extra));
        let attrs = &r.unwrap().parts[0].feature.attributes;
        assert!(attrs.contains(&("function".into(), AttrValue::Text("residential".into()))));
        assert!(
            attrs.contains(&("usage".into(), AttrValue::Int(1))),
            "{attrs:?}"
        );
        assert!(
            w.iter()
                .any(|m| m.contains("1 codeSpace reference(s) not read") && m.contains("outside")),
            "{w:?}"
        );
    }

    #[test]
    fn polygons_too_large_to_triangulate_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let n = MAX_POLYGON_VERTICES + 1;
        let big: String = (0..=n)
            .map(|k| {
                let a = std::f64::consts::TAU * (k % n) as f64 / n as f64;
                format!(
                    "{:.3} {:.3} 100 ",
                    458877.0 + 50.0 * a.cos(),
                    5438353.0 + 50.0 * a.sin()
                )
            })
            .collect();
        let (r, w) = convert(dir.path(), &document(&[GOOD, &big], ""));
        assert_eq!(r.unwrap().triangles, 1);
        assert!(
            w.iter()
                .any(|m| m.contains("(1 with more than 32768 vertices)")),
            "{w:?}"
        );
    }

    #[test]
    fn documents_with_many_crss_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let codes = (25828..=25838).chain(32628..=32633);
        let members: String = codes
            .map(|c| {
                document(&[GOOD], "")
                    .split("<core:cityObjectMember>")
                    .nth(1)
                    .unwrap()
                    .split("</core:cityObjectMember>")
                    .next()
                    .unwrap()
                    .replace("EPSG:25832", &format!("EPSG:{c}"))
                    .replace("\"B1\"", &format!("\"B{c}\""))
            })
            .map(|m| format!("<core:cityObjectMember>{m}</core:cityObjectMember>"))
            .collect();
        let (r, _) = convert(dir.path(), &format!("{HEAD}{members}</core:CityModel>"));
        let e = r.unwrap_err();
        assert_eq!(e.code(), "LIMIT_EXCEEDED");
        assert!(
            e.to_string().contains("more than 16 different srsNames"),
            "{e}"
        );
    }
}
