//! Streaming CityGML reader (1.0, 2.0 and 3.0 alike: elements are matched by local name,
//! whatever their namespace). It walks the XML once with quick-xml and hands each city
//! object to a callback as soon as its end tag is read, so memory follows the largest
//! object, not the file.
//!
//! A city object is an element whose local name is a CityGML feature class (Building,
//! BuildingPart, Bridge, Road, CityFurniture, WaterBody, …); nested objects (a
//! BuildingPart inside its Building) are objects of their own with `parent` set. Its
//! attributes are its simple child elements (ADE ones included) and generic attributes
//! in the 1.0/2.0 (`gen:stringAttribute name=…`) and 3.0 (`gen:StringAttribute` with
//! `gen:name`) forms. Its polygons come from every `gml:Polygon`, `gml:Triangle` and
//! `gml:Rectangle` inside it, tagged with the LoD of the enclosing `lodN…` property and
//! the thematic surface (WallSurface, RoofSurface…) around them.
//!
//! Nothing the document says sizes memory unchecked: one XML token (a tag or a run of
//! text) is at most [`MAX_TOKEN_BYTES`], elements nest at most [`MAX_DEPTH`] deep, and a
//! city object keeps at most [`ReadLimits`] attributes and vertices. A document that ends
//! inside an element is refused as truncated, never read as if it were complete.

use quick_xml::errors::{Error as XmlError, SyntaxError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::io::{BufRead, Read};

/// Feature classes that make a city object of their own.
const OBJECT_CLASSES: &[&str] = &[
    "Building",
    "BuildingPart",
    "BuildingInstallation",
    "Bridge",
    "BridgePart",
    "BridgeConstructiveElement",
    "BridgeInstallation",
    "Tunnel",
    "TunnelPart",
    "TunnelInstallation",
    "Road",
    "Railway",
    "Track",
    "Square",
    "Waterway",
    "TransportationComplex",
    "Intersection",
    "Section",
    "CityFurniture",
    "SolitaryVegetationObject",
    "PlantCover",
    "WaterBody",
    "LandUse",
    "ReliefFeature",
    "TINRelief",
    "GenericCityObject",
    "GenericOccupiedSpace",
    "GenericUnoccupiedSpace",
    "GenericLogicalSpace",
    "GenericThematicSurface",
    "CityObjectGroup",
    "OtherConstruction",
    "HollowSpace",
];

/// Thematic surfaces: polygons inside them carry this class.
const SURFACE_CLASSES: &[&str] = &[
    "WallSurface",
    "RoofSurface",
    "GroundSurface",
    "ClosureSurface",
    "FloorSurface",
    "OuterFloorSurface",
    "CeilingSurface",
    "OuterCeilingSurface",
    "InteriorWallSurface",
    "Window",
    "Door",
    "TrafficArea",
    "AuxiliaryTrafficArea",
    "WaterSurface",
    "WaterGroundSurface",
    "WaterClosureSurface",
];

/// Elements whose text is never an attribute of the object.
const NOT_ATTRIBUTES: &[&str] = &["boundedBy", "Envelope", "lowerCorner", "upperCorner"];

/// Largest XML token (a tag with its attributes, a run of text, a comment) and largest
/// text of one element: 16 MiB holds a ring of about half a million 3-D points.
/// quick-xml buffers a token whole, so without this a single endless text would claim
/// memory of any size.
pub const MAX_TOKEN_BYTES: u64 = 16 << 20;
/// Deepest element nesting accepted (real CityGML nests about 20 deep). Bounds the
/// element stack and the per-element look-ups along it.
pub const MAX_DEPTH: usize = 256;

/// What one city object may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Attributes kept per city object (default 1,000; real objects carry up to a few
    /// hundred); further ones are dropped and counted in [`ReadStats`].
    pub max_attributes: usize,
    /// Bytes of attribute names and values kept per city object (default 1 MiB);
    /// attributes past it are dropped and counted the same way.
    pub max_attribute_bytes: usize,
    /// Vertices one city object may have (default 16 million, a terrain TIN of five
    /// million triangles); an object with more is refused.
    pub max_object_vertices: u64,
}

impl Default for ReadLimits {
    fn default() -> ReadLimits {
        ReadLimits {
            max_attributes: 1_000,
            max_attribute_bytes: 1 << 20,
            max_object_vertices: 16_000_000,
        }
    }
}

/// A typed attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Int(i64),
    Double(f64),
    Text(String),
}

impl AttrValue {
    fn guess(text: &str) -> AttrValue {
        let t = text.trim();
        if let Ok(i) = t.parse::<i64>() {
            return AttrValue::Int(i);
        }
        match t.parse::<f64>() {
            Ok(f) if f.is_finite() => AttrValue::Double(f),
            _ => AttrValue::Text(t.to_string()),
        }
    }

    /// Bytes the value holds (for the per-object attribute budget).
    fn bytes(&self) -> usize {
        match self {
            AttrValue::Int(_) | AttrValue::Double(_) => 8,
            AttrValue::Text(t) => t.len(),
        }
    }
}

/// One planar surface: an exterior ring and its holes (closing point dropped).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Polygon {
    pub gml_id: Option<String>,
    pub lod: Option<u8>,
    /// Thematic surface class around the polygon, when there is one.
    pub surface: Option<String>,
    pub exterior: Vec<[f64; 3]>,
    pub interiors: Vec<Vec<[f64; 3]>>,
    /// gml:ids of the rings (exterior first), for texture coordinates.
    pub ring_ids: Vec<Option<String>>,
    /// gml:ids of the geometry (and thematic surfaces) enclosing the polygon inside its
    /// object, nearest first: appearance targets may name any of them.
    pub enclosing_ids: Vec<String>,
}

impl Polygon {
    /// Vertices of every ring.
    pub fn vertex_count(&self) -> usize {
        self.exterior.len() + self.interiors.iter().map(Vec::len).sum::<usize>()
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CityObject {
    pub gml_id: String,
    /// Local name of the feature class (`Building`, `BuildingPart`, …).
    pub class: String,
    /// gml:id of the enclosing city object, if nested.
    pub parent: Option<String>,
    pub attributes: Vec<(String, AttrValue)>,
    /// Attributes whose value is a code of a codelist: (index into `attributes`,
    /// the element's codeSpace as written).
    pub code_spaces: Vec<(usize, String)>,
    pub polygons: Vec<Polygon>,
    /// Geometry referenced by `xlink:href` that was not defined inside this object.
    pub unresolved_refs: Vec<String>,
    /// srsName of the object's geometry when it names one.
    pub srs_name: Option<String>,
}

/// Problems the reader met and went past.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReadStats {
    pub objects: u64,
    pub polygons: u64,
    /// Rings with fewer than three distinct points, or coordinates that are not numbers.
    pub degenerate_rings: u64,
    /// First srsName in the file (the document's envelope or its first geometry).
    pub srs_name: Option<String>,
    pub srs_dimension: Option<u8>,
    /// Attributes dropped by the per-object limits of [`ReadLimits`].
    pub attributes_dropped: u64,
    /// The first object that lost attributes that way.
    pub attributes_dropped_in: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("malformed XML at byte {position}: {reason}")]
    Xml { position: u64, reason: String },
    #[error("the document declares a DTD; CityGML needs none and entity expansion is refused")]
    Dtd,
    #[error("the file is not CityGML: no CityModel root")]
    NotCityGml,
    /// The input ended inside an element (or inside a tag).
    #[error("the document ends early at byte {position}, inside {open} open element(s)")]
    Truncated { position: u64, open: usize },
    /// A size the reader does not accept (see [`MAX_TOKEN_BYTES`], [`MAX_DEPTH`],
    /// [`ReadLimits`]).
    #[error("{what} at byte {position}")]
    Limit { position: u64, what: String },
    /// The bytes could not be read (a corrupt zip entry, an I/O failure).
    #[error("cannot read the document at byte {position}: {reason}")]
    Io { position: u64, reason: String },
}

/// The local part of a qualified name (`bldg:Building` → `Building`).
pub(crate) fn local_str(name: &str) -> &str {
    match name.rsplit_once(':') {
        Some((_, l)) => l,
        None => name,
    }
}

fn local(name: &str) -> String {
    local_str(name).to_string()
}

/// Raised by [`TokenLimit`] once a token outgrows [`MAX_TOKEN_BYTES`].
#[derive(Debug)]
struct TokenTooLarge;

impl std::fmt::Display for TokenTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "an XML token larger than {} MiB", MAX_TOKEN_BYTES >> 20)
    }
}

impl std::error::Error for TokenTooLarge {}

/// Counts the bytes quick-xml takes for the event being read and fails past
/// [`MAX_TOKEN_BYTES`], before its buffer grows further.
struct TokenLimit<R> {
    inner: R,
    taken: u64,
}

impl<R: BufRead> Read for TokenLimit<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let avail = self.fill_buf()?;
            let n = avail.len().min(out.len());
            out[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for TokenLimit<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.taken > MAX_TOKEN_BYTES {
            return Err(std::io::Error::other(TokenTooLarge));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.taken = self.taken.saturating_add(n as u64);
        self.inner.consume(n);
    }
}

/// The XML events of a CityGML document (or of a codelist) with the checks every reader
/// of them needs: a DTD is refused (CityGML needs none, and entity expansion is a way to
/// exhaust memory), tokens and nesting are bounded, and an input that ends inside an
/// element is an error.
pub(crate) struct XmlEvents<R> {
    reader: Reader<TokenLimit<R>>,
    depth: usize,
}

impl<R: BufRead> XmlEvents<R> {
    pub(crate) fn new(input: R) -> XmlEvents<R> {
        let mut reader = Reader::from_reader(TokenLimit {
            inner: input,
            taken: 0,
        });
        reader.config_mut().trim_text(false);
        XmlEvents { reader, depth: 0 }
    }

    /// Bytes read so far.
    pub(crate) fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    pub(crate) fn next<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, ReadError> {
        self.reader.get_mut().taken = 0;
        let ev = match self.reader.read_event_into(buf) {
            Ok(ev) => ev,
            Err(e) => return Err(self.error(e)),
        };
        match ev {
            Event::DocType(_) => return Err(ReadError::Dtd),
            Event::Start(_) => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(ReadError::Limit {
                        position: self.position(),
                        what: format!("elements nested more than {MAX_DEPTH} deep"),
                    });
                }
            }
            Event::End(_) => self.depth = self.depth.saturating_sub(1),
            Event::Eof if self.depth > 0 => {
                return Err(ReadError::Truncated {
                    position: self.position(),
                    open: self.depth,
                })
            }
            _ => {}
        }
        Ok(ev)
    }

    fn error(&self, e: XmlError) -> ReadError {
        let position = self.position();
        match e {
            XmlError::Io(io) => {
                match io.get_ref().and_then(|x| x.downcast_ref::<TokenTooLarge>()) {
                    Some(t) => ReadError::Limit {
                        position,
                        what: t.to_string(),
                    },
                    None => ReadError::Io {
                        position,
                        reason: io.to_string(),
                    },
                }
            }
            // Only the end of the input leaves these open.
            // The tag being read counts as open.
            XmlError::Syntax(
                SyntaxError::UnclosedTag
                | SyntaxError::UnclosedSingleQuotedAttributeValue
                | SyntaxError::UnclosedDoubleQuotedAttributeValue,
            ) => ReadError::Truncated {
                position,
                open: self.depth + 1,
            },
            XmlError::Syntax(
                SyntaxError::UnclosedComment
                | SyntaxError::UnclosedCData
                | SyntaxError::UnclosedPI
                | SyntaxError::UnclosedXmlDecl
                | SyntaxError::UnclosedDoctype,
            ) => ReadError::Truncated {
                position,
                open: self.depth,
            },
            e => ReadError::Xml {
                position,
                reason: e.to_string(),
            },
        }
    }
}

/// `text` with `more` appended, refused past [`MAX_TOKEN_BYTES`] (text is collected
/// across events: character references, CDATA sections and comments split it).
pub(crate) fn append_text(text: &mut String, more: &str, position: u64) -> Result<(), ReadError> {
    if (text.len() + more.len()) as u64 > MAX_TOKEN_BYTES {
        return Err(ReadError::Limit {
            position,
            what: format!(
                "the text of one element is larger than {} MiB",
                MAX_TOKEN_BYTES >> 20
            ),
        });
    }
    text.push_str(more);
    Ok(())
}

/// The character an entity reference stands for: only the five predefined entities and
/// character references exist without a DTD.
pub(crate) fn entity_char(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        n => n
            .strip_prefix("#x")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .or_else(|| n.strip_prefix('#').and_then(|d| d.parse().ok()))
            .and_then(char::from_u32),
    }
}

/// The attributes the reader looks at, read in one pass over an element's attributes.
#[derive(Default)]
struct Attrs {
    id: Option<String>,
    srs_name: Option<String>,
    srs_dimension: Option<String>,
    href: Option<String>,
    code_space: Option<String>,
    name: Option<String>,
}

fn attrs(e: &BytesStart) -> Attrs {
    let mut out = Attrs::default();
    for a in e.attributes().with_checks(false).flatten() {
        let slot = match local_str(a.key.as_ref()) {
            "id" => &mut out.id,
            "srsName" => &mut out.srs_name,
            "srsDimension" => &mut out.srs_dimension,
            "href" => &mut out.href,
            "codeSpace" => &mut out.code_space,
            "name" => &mut out.name,
            _ => continue,
        };
        *slot = Some(a.value.to_string());
    }
    out
}

/// LoD of a property name like `lod2Solid`, `lod0FootPrint`, `lod3MultiSurface`.
fn lod_of(name: &str) -> Option<u8> {
    let rest = name.strip_prefix("lod")?;
    let d = rest.chars().next()?.to_digit(10)?;
    (rest.len() > 1).then_some(d as u8)
}

struct ObjectFrame {
    obj: CityObject,
    depth: usize,
    /// Generic attribute being read: (name, value, kind).
    generic: Option<(Option<String>, Option<String>, String)>,
    /// Bytes of the attributes kept so far.
    attribute_bytes: usize,
    /// Vertices of the polygons kept so far.
    vertices: u64,
}

impl ObjectFrame {
    /// Keep an attribute when the object's budget allows; `false` when it was dropped.
    fn push_attribute(&mut self, name: String, value: AttrValue, limits: &ReadLimits) -> bool {
        let bytes = name.len() + value.bytes();
        if self.obj.attributes.len() >= limits.max_attributes
            || self.attribute_bytes + bytes > limits.max_attribute_bytes
        {
            return false;
        }
        self.attribute_bytes += bytes;
        self.obj.attributes.push((name, value));
        true
    }
}

#[derive(Default)]
struct PolyFrame {
    id: Option<String>,
    lod: Option<u8>,
    surface: Option<String>,
    exterior: Vec<[f64; 3]>,
    interiors: Vec<Vec<[f64; 3]>>,
    exterior_id: Option<String>,
    interior_ids: Vec<Option<String>>,
    ring_id: Option<String>,
    enclosing_ids: Vec<String>,
    in_interior: bool,
    ring: Vec<[f64; 3]>,
    /// The current ring's coordinates did not parse (already counted).
    bad_ring: bool,
    /// Coordinates per position: 2 or 3 (anything else makes the ring bad).
    dim: usize,
    /// Vertices read into this polygon's rings so far.
    vertices: u64,
}

/// Coordinates of a posList/pos/coordinates text appended to `out`; `false` when they
/// are not all finite numbers or do not make whole positions of `dim` (2 or 3) values.
fn parse_coords(text: &str, dim: usize, out: &mut Vec<[f64; 3]>) -> bool {
    if !(2..=3).contains(&dim) {
        return false;
    }
    let start = out.len();
    let mut p = [0.0; 3];
    let mut k = 0;
    for t in text.split_ascii_whitespace() {
        match t.parse::<f64>() {
            Ok(v) if v.is_finite() => p[k] = v,
            _ => {
                out.truncate(start);
                return false;
            }
        }
        k += 1;
        if k == dim {
            out.push(p);
            p = [0.0; 3];
            k = 0;
        }
    }
    if k != 0 {
        out.truncate(start);
        return false;
    }
    true
}

/// A ring with the closing point dropped; `None` when fewer than 3 distinct points.
/// Repeated points stay (texture coordinates are given per written point); the
/// triangulation skips them.
fn close_ring(mut ring: Vec<[f64; 3]>) -> Option<Vec<[f64; 3]>> {
    if ring.len() > 1 && ring.first() == ring.last() {
        ring.pop();
    }
    let a = *ring.first()?;
    let b = *ring.iter().find(|p| **p != a)?;
    ring.iter().any(|p| *p != a && *p != b).then_some(ring)
}

/// Read CityGML from `input`, calling `each` for every city object.
pub fn read_city_objects<R: BufRead>(
    input: R,
    mut each: impl FnMut(CityObject),
) -> Result<ReadStats, ReadError> {
    read_city_objects_while(input, |o| {
        each(o);
        true
    })
}

/// As [`read_city_objects`], stopping early when `each` returns false. Objects without an
/// srsName of their own get the document's.
pub fn read_city_objects_while<R: BufRead>(
    input: R,
    each: impl FnMut(CityObject) -> bool,
) -> Result<ReadStats, ReadError> {
    read_city_objects_limited(input, &ReadLimits::default(), each)
}

/// As [`read_city_objects_while`], with the given limits.
pub fn read_city_objects_limited<R: BufRead>(
    input: R,
    limits: &ReadLimits,
    mut each: impl FnMut(CityObject) -> bool,
) -> Result<ReadStats, ReadError> {
    let mut events = XmlEvents::new(input);
    let mut r = ObjectReader {
        limits: *limits,
        ..Default::default()
    };
    let mut buf = Vec::new();
    loop {
        let ev = events.next(&mut buf)?;
        let position = events.position();
        match ev {
            Event::Start(ref e) => r.start(e, false)?,
            Event::Empty(ref e) => r.start(e, true)?,
            Event::Text(t) => append_text(&mut r.text, &t, position)?,
            Event::CData(t) => append_text(&mut r.text, &t, position)?,
            Event::GeneralRef(g) => {
                if let Some(c) = entity_char(&g) {
                    append_text(&mut r.text, c.encode_utf8(&mut [0; 4]), position)?;
                }
            }
            Event::End(_) => match r.end(position)? {
                End::Object(o) => {
                    if !each(o) {
                        return Ok(r.stats);
                    }
                }
                End::Root => break,
                End::Other => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !r.seen_root {
        return Err(ReadError::NotCityGml);
    }
    Ok(r.stats)
}

/// What an end tag finished.
enum End {
    Object(CityObject),
    Root,
    Other,
}

/// The state of [`read_city_objects_limited`] between events.
#[derive(Default)]
struct ObjectReader {
    limits: ReadLimits,
    stats: ReadStats,
    path: Vec<String>,
    /// gml:id of each open element (None without one), parallel to `path`.
    ids: Vec<Option<String>>,
    /// codeSpace of the innermost open element inside an object: (depth, codeSpace).
    code_space: Option<(usize, String)>,
    objects: Vec<ObjectFrame>,
    poly: Option<PolyFrame>,
    text: String,
    seen_root: bool,
    /// srsDimension of the document (2 or 3) for positions that do not state theirs.
    default_dim: Option<usize>,
}

impl ObjectReader {
    fn start(&mut self, e: &BytesStart, empty: bool) -> Result<(), ReadError> {
        let name = local(e.name().as_ref());
        let at = attrs(e);
        if self.path.is_empty() {
            if name != "CityModel" {
                return Err(ReadError::NotCityGml);
            }
            self.seen_root = true;
        }
        if let Some(s) = at.srs_name.clone() {
            self.stats.srs_name.get_or_insert(s.clone());
            if let Some(o) = self.objects.last_mut() {
                o.obj.srs_name.get_or_insert(s);
            }
        }
        if let Some(d) = at
            .srs_dimension
            .as_deref()
            .and_then(|d| d.parse::<u8>().ok())
        {
            self.stats.srs_dimension.get_or_insert(d);
            if self.poly.is_none() && (2..=3).contains(&d) {
                self.default_dim = Some(d as usize);
            }
        }
        self.text.clear();
        let member_child = self
            .path
            .last()
            .is_some_and(|p| p == "cityObjectMember" || p == "featureMember");
        if OBJECT_CLASSES.contains(&name.as_str()) || (member_child && !empty) {
            self.open_object(&name, at.id.clone());
        } else if matches!(name.as_str(), "Polygon" | "Triangle" | "Rectangle")
            && self.poly.is_none()
        {
            self.open_polygon(at.id.clone());
        } else if let Some(p) = self.poly.as_mut() {
            match name.as_str() {
                "interior" | "innerBoundaryIs" => p.in_interior = true,
                "LinearRing" => p.ring_id = at.id.clone(),
                "exterior" | "outerBoundaryIs" => p.in_interior = false,
                "posList" | "pos" => {
                    // Only 2 and 3 make positions; any other number makes the ring bad.
                    if let Some(d) = at
                        .srs_dimension
                        .as_deref()
                        .and_then(|d| d.trim().parse::<usize>().ok())
                    {
                        p.dim = d;
                    }
                }
                _ => {}
            }
        } else if let Some(o) = self.objects.last_mut() {
            // A reference to geometry defined elsewhere.
            if let Some(h) = at.href.clone() {
                if self.path.iter().any(|p| lod_of(p).is_some()) || name.ends_with("Member") {
                    o.obj
                        .unresolved_refs
                        .push(h.trim_start_matches('#').to_string());
                }
            }
            self.code_space = at.code_space.clone().map(|c| (self.path.len() + 1, c));
            match name.as_str() {
                "stringAttribute" | "intAttribute" | "doubleAttribute" | "dateAttribute"
                | "uriAttribute" | "measureAttribute" => {
                    o.generic = Some((at.name.clone(), None, name.clone()));
                }
                "StringAttribute" | "IntAttribute" | "DoubleAttribute" | "DateAttribute"
                | "UriAttribute" | "MeasureAttribute" | "CodeAttribute" => {
                    o.generic = Some((None, None, name.clone()));
                }
                _ => {}
            }
        }
        if !empty {
            self.path.push(name);
            self.ids.push(at.id);
        }
        Ok(())
    }

    fn open_object(&mut self, class: &str, id: Option<String>) {
        let parent = self.objects.last().map(|o| o.obj.gml_id.clone());
        let id = id.unwrap_or_else(|| {
            format!(
                "{class}_{}",
                self.stats.objects + self.objects.len() as u64 + 1
            )
        });
        self.objects.push(ObjectFrame {
            obj: CityObject {
                gml_id: id,
                class: class.to_string(),
                parent,
                ..Default::default()
            },
            depth: self.path.len() + 1,
            generic: None,
            attribute_bytes: 0,
            vertices: 0,
        });
    }

    fn open_polygon(&mut self, id: Option<String>) {
        let lod = self.path.iter().rev().find_map(|p| lod_of(p));
        let from = self.objects.last().map_or(0, |o| o.depth);
        let enclosing_ids: Vec<String> = self
            .ids
            .iter()
            .skip(from)
            .rev()
            .flatten()
            .cloned()
            .collect();
        let surface = self
            .path
            .iter()
            .rev()
            .find(|p| SURFACE_CLASSES.contains(&p.as_str()))
            .cloned();
        self.poly = Some(PolyFrame {
            id,
            lod,
            surface,
            enclosing_ids,
            dim: self.default_dim.unwrap_or(3),
            ..Default::default()
        });
    }

    fn end(&mut self, position: u64) -> Result<End, ReadError> {
        let Some(name) = self.path.pop() else {
            return Ok(End::Root);
        };
        self.ids.pop();
        let depth = self.path.len() + 1;
        let mut out = End::Other;
        if self.poly.is_some() {
            self.end_in_polygon(&name, position)?;
        } else if self.objects.last().is_some_and(|o| o.depth == depth) {
            out = End::Object(self.finish_object());
        } else {
            self.end_in_object(&name, depth);
        }
        self.text.clear();
        Ok(out)
    }

    fn end_in_polygon(&mut self, name: &str, position: u64) -> Result<(), ReadError> {
        let Some(p) = self.poly.as_mut() else {
            return Ok(());
        };
        match name {
            "posList" | "pos" | "coordinates" => {
                let before = p.ring.len();
                let ok = if name == "coordinates" {
                    parse_coords(&self.text.replace(',', " "), 3, &mut p.ring)
                } else {
                    parse_coords(&self.text, p.dim, &mut p.ring)
                };
                if !ok {
                    p.bad_ring = true;
                }
                p.vertices += (p.ring.len() - before) as u64;
                let held = self.objects.last().map_or(0, |o| o.vertices) + p.vertices;
                if held > self.limits.max_object_vertices {
                    let id = self
                        .objects
                        .last()
                        .map_or("(none)", |o| o.obj.gml_id.as_str());
                    return Err(ReadError::Limit {
                        position,
                        what: format!(
                            "city object {id} has more than {} vertices",
                            self.limits.max_object_vertices
                        ),
                    });
                }
            }
            "LinearRing" => {
                let ring = std::mem::take(&mut p.ring);
                let ring = if std::mem::take(&mut p.bad_ring) {
                    Vec::new()
                } else {
                    ring
                };
                let id = p.ring_id.take();
                match close_ring(ring) {
                    Some(r) if p.in_interior || !p.exterior.is_empty() => {
                        p.interiors.push(r);
                        p.interior_ids.push(id);
                    }
                    Some(r) => {
                        p.exterior = r;
                        p.exterior_id = id;
                    }
                    None => self.stats.degenerate_rings += 1,
                }
            }
            "Polygon" | "Triangle" | "Rectangle" => {
                if let Some(p) = self.poly.take() {
                    self.finish_polygon(p);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish_polygon(&mut self, p: PolyFrame) {
        if p.exterior.is_empty() {
            return;
        }
        self.stats.polygons += 1;
        if let Some(o) = self.objects.last_mut() {
            let mut ring_ids = vec![p.exterior_id];
            ring_ids.extend(p.interior_ids);
            let polygon = Polygon {
                gml_id: p.id,
                lod: p.lod,
                surface: p.surface,
                exterior: p.exterior,
                interiors: p.interiors,
                ring_ids,
                enclosing_ids: p.enclosing_ids,
            };
            o.vertices += polygon.vertex_count() as u64;
            o.obj.polygons.push(polygon);
        }
    }

    fn finish_object(&mut self) -> CityObject {
        let mut done = self.objects.pop().map(|f| f.obj).unwrap_or_default();
        // Geometry referenced and also defined inside the object is not missing.
        let defined: std::collections::HashSet<&str> = done
            .polygons
            .iter()
            .filter_map(|p| p.gml_id.as_deref())
            .collect();
        let refs: Vec<String> = done
            .unresolved_refs
            .iter()
            .filter(|r| !defined.contains(r.as_str()))
            .cloned()
            .collect();
        done.unresolved_refs = refs;
        self.stats.objects += 1;
        if done.srs_name.is_none() {
            done.srs_name = self.stats.srs_name.clone();
        }
        done
    }

    fn end_in_object(&mut self, name: &str, depth: usize) {
        let Some(o) = self.objects.last_mut() else {
            return;
        };
        let limits = self.limits;
        let mut dropped = false;
        if let Some((gname, gvalue, kind)) = o.generic.as_mut() {
            match name {
                "name" => *gname = Some(self.text.trim().to_string()),
                "value" => *gvalue = Some(self.text.trim().to_string()),
                n if n == kind => {
                    if let (Some(k), Some(v)) = (gname.take(), gvalue.take()) {
                        let value = match kind.to_ascii_lowercase().as_str() {
                            "stringattribute" | "dateattribute" | "uriattribute"
                            | "codeattribute" => AttrValue::Text(v),
                            _ => AttrValue::guess(&v),
                        };
                        dropped = !o.push_attribute(k, value, &limits);
                    }
                    o.generic = None;
                }
                _ => {}
            }
        } else if !self.text.trim().is_empty()
            && !NOT_ATTRIBUTES.contains(&name)
            && !self.path.iter().skip(o.depth).any(|p| {
                lod_of(p).is_some()
                    || SURFACE_CLASSES.contains(&p.as_str())
                    || p == "appearance"
                    || p == "appearanceMember"
            })
        {
            // A simple child element (or nested ADE element) with text.
            let index = o.obj.attributes.len();
            if o.push_attribute(name.to_string(), AttrValue::guess(&self.text), &limits) {
                if let Some((d, cs)) = self.code_space.take() {
                    if d == depth {
                        o.obj.code_spaces.push((index, cs));
                    }
                }
            } else {
                dropped = true;
            }
        }
        if dropped {
            self.stats.attributes_dropped += 1;
            if self.stats.attributes_dropped_in.is_none() {
                self.stats.attributes_dropped_in = Some(o.obj.gml_id.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r##"<?xml version="1.0"?>
<core:CityModel xmlns:core="c" xmlns:bldg="b" xmlns:gml="g" xmlns:gen="x" xmlns:uro="u">
 <gml:boundedBy><gml:Envelope srsName="EPSG:25832" srsDimension="3"><gml:lowerCorner>0 0 0</gml:lowerCorner></gml:Envelope></gml:boundedBy>
 <core:cityObjectMember>
  <bldg:Building gml:id="B1">
   <bldg:measuredHeight uom="m">6.52</bldg:measuredHeight>
   <bldg:storeysAboveGround>2</bldg:storeysAboveGround>
   <gen:stringAttribute name="note"><gen:value>a &amp; b</gen:value></gen:stringAttribute>
   <uro:buildingDetails><uro:BuildingDetails><uro:fireproofStructureType>1001</uro:fireproofStructureType></uro:BuildingDetails></uro:buildingDetails>
   <bldg:boundedBy><bldg:WallSurface><bldg:lod2MultiSurface><gml:MultiSurface><gml:surfaceMember>
     <gml:Polygon gml:id="P1"><gml:exterior><gml:LinearRing><gml:posList>0 0 0 1 0 0 1 0 1 0 0 1 0 0 0</gml:posList></gml:LinearRing></gml:exterior>
     <gml:interior><gml:LinearRing><gml:posList>0.2 0 0.2 0.4 0 0.2 0.4 0 0.4 0.2 0 0.2</gml:posList></gml:LinearRing></gml:interior></gml:Polygon>
   </gml:surfaceMember></gml:MultiSurface></bldg:lod2MultiSurface></bldg:WallSurface></bldg:boundedBy>
   <bldg:lod2Solid><gml:Solid><gml:exterior><gml:CompositeSurface><gml:surfaceMember xlink:href="#P1"/><gml:surfaceMember xlink:href="#P9"/></gml:CompositeSurface></gml:exterior></gml:Solid></bldg:lod2Solid>
   <bldg:consistsOfBuildingPart><bldg:BuildingPart gml:id="BP1"><bldg:lod1Solid><gml:Solid><gml:exterior><gml:CompositeSurface><gml:surfaceMember>
     <gml:Polygon><gml:exterior><gml:LinearRing><gml:posList srsDimension="3">0 0 0 1 1 1 NaN 0 0 0 0 0</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>
   </gml:surfaceMember></gml:CompositeSurface></gml:exterior></gml:Solid></bldg:lod1Solid></bldg:BuildingPart></bldg:consistsOfBuildingPart>
  </bldg:Building>
 </core:cityObjectMember>
</core:CityModel>"##;

    #[test]
    fn objects_attributes_polygons_and_parts() {
        let mut got = Vec::new();
        let stats = read_city_objects(DOC.as_bytes(), |o| got.push(o)).unwrap();
        assert_eq!(stats.objects, 2);
        assert_eq!(stats.srs_name.as_deref(), Some("EPSG:25832"));
        assert_eq!(stats.degenerate_rings, 1);
        // The part ends first.
        assert_eq!(got[0].class, "BuildingPart");
        assert_eq!(got[0].parent.as_deref(), Some("B1"));
        assert!(got[0].polygons.is_empty());
        let b = &got[1];
        assert_eq!(b.gml_id, "B1");
        assert!(b
            .attributes
            .contains(&("measuredHeight".into(), AttrValue::Double(6.52))));
        assert!(b
            .attributes
            .contains(&("storeysAboveGround".into(), AttrValue::Int(2))));
        assert!(b
            .attributes
            .contains(&("note".into(), AttrValue::Text("a & b".into()))));
        assert!(b
            .attributes
            .contains(&("fireproofStructureType".into(), AttrValue::Int(1001))));
        assert_eq!(b.polygons.len(), 1);
        let p = &b.polygons[0];
        assert_eq!(
            (p.lod, p.surface.as_deref()),
            (Some(2), Some("WallSurface"))
        );
        assert_eq!(p.exterior.len(), 4);
        assert_eq!(p.interiors.len(), 1);
        assert_eq!(b.unresolved_refs, vec!["P9".to_string()]);
    }

    #[test]
    fn hostile_and_foreign_documents_are_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><CityModel>&lol2;</CityModel>"#;
        assert!(matches!(
            read_city_objects(bomb.as_bytes(), |_| {}),
            Err(ReadError::Dtd)
        ));
        assert!(matches!(
            read_city_objects("<kml/>".as_bytes(), |_| {}),
            Err(ReadError::NotCityGml)
        ));
        assert!(matches!(
            read_city_objects("<CityModel><a></b></CityModel>".as_bytes(), |_| {}),
            Err(ReadError::Xml { .. })
        ));
    }

    fn read_with(doc: &str, limits: &ReadLimits) -> (Vec<CityObject>, ReadStats) {
        let mut got = Vec::new();
        let stats = read_city_objects_limited(doc.as_bytes(), limits, |o| {
            got.push(o);
            true
        })
        .unwrap();
        (got, stats)
    }

    #[test]
    fn truncated_documents_say_where_they_end() {
        // In text, inside a tag, inside the root's start tag.
        for cut in [DOC.len() / 2, DOC.find("<bldg:lod2Solid").unwrap() + 5, 40] {
            let head = &DOC[..cut];
            match read_city_objects(head.as_bytes(), |_| {}) {
                Err(ReadError::Truncated { position, open }) => {
                    assert_eq!(position, cut as u64, "cut at {cut}");
                    assert!(open >= 1);
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        // The appearance pass says the same.
        let head = &DOC[..DOC.len() / 2];
        assert!(matches!(
            crate::citygml::appearance::read_appearances(head.as_bytes()),
            Err(ReadError::Truncated { .. })
        ));
        assert!(read_city_objects(DOC.as_bytes(), |_| {}).is_ok());
    }

    #[test]
    fn nesting_and_token_sizes_are_bounded() {
        let deep = format!(
            "<CityModel>{}{}</CityModel>",
            "<a>".repeat(100_000),
            "</a>".repeat(100_000)
        );
        let e = read_city_objects(deep.as_bytes(), |_| {}).unwrap_err();
        assert!(
            matches!(&e, ReadError::Limit { what, .. } if what.contains("nested")),
            "{e}"
        );
        let big = format!(
            "<CityModel><Building><posList>{}</posList></Building></CityModel>",
            "0 ".repeat(9 << 20)
        );
        // Read as files are, through a buffer, so the token is stopped as it grows.
        let file = std::io::BufReader::with_capacity(1 << 16, big.as_bytes());
        let e = read_city_objects(file, |_| {}).unwrap_err();
        assert!(
            matches!(&e, ReadError::Limit { what, .. } if what.contains("token")),
            "{e}"
        );
        // Text split by CDATA sections (each its own token) is bounded too.
        let split = format!(
            "<CityModel><Building><name>{}</name></Building></CityModel>",
            "<![CDATA[0123456789abcdef0123456789abcdef]]>".repeat(600_000)
        );
        let e = read_city_objects(split.as_bytes(), |_| {}).unwrap_err();
        assert!(
            matches!(&e, ReadError::Limit { what, .. } if what.contains("text")),
            "{e}"
        );
        // Nesting just below the limit is fine.
        let ok = format!(
            "<CityModel>{}{}</CityModel>",
            "<a>".repeat(MAX_DEPTH - 1),
            "</a>".repeat(MAX_DEPTH - 1)
        );
        assert!(read_city_objects(ok.as_bytes(), |_| {}).is_ok());
    }

    #[test]
    fn attribute_budgets_drop_and_count_the_excess() {
        let mut doc =
            String::from(r#"<CityModel xmlns:gen="g"><cityObjectMember><Building gml:id="B">"#);
        for i in 0..50 {
            doc.push_str(&format!(
                r#"<gen:stringAttribute name="a{i}"><gen:value>v{i}</gen:value></gen:stringAttribute>"#
            ));
        }
        doc.push_str(
            r#"<function codeSpace="f.xml">1</function></Building></cityObjectMember></CityModel>"#,
        );
        let limits = ReadLimits {
            max_attributes: 10,
            ..ReadLimits::default()
        };
        let (got, stats) = read_with(&doc, &limits);
        assert_eq!(got[0].attributes.len(), 10);
        assert_eq!(got[0].attributes[9].0, "a9");
        assert_eq!(stats.attributes_dropped, 41);
        assert_eq!(stats.attributes_dropped_in.as_deref(), Some("B"));
        // A dropped coded attribute leaves no codeSpace pointing at another attribute.
        assert!(got[0].code_spaces.is_empty());
        let limits = ReadLimits {
            max_attribute_bytes: 20,
            ..ReadLimits::default()
        };
        let (got, stats) = read_with(&doc, &limits);
        // "a0" + "v0": 4 bytes each.
        assert_eq!(got[0].attributes.len(), 5, "{:?}", got[0].attributes);
        assert_eq!(stats.attributes_dropped, 46);
        let (got, stats) = read_with(&doc, &ReadLimits::default());
        assert_eq!(got[0].attributes.len(), 51);
        assert_eq!(got[0].code_spaces, vec![(50, "f.xml".to_string())]);
        assert_eq!(stats.attributes_dropped, 0);
    }

    #[test]
    fn vertices_per_object_are_bounded() {
        let limits = ReadLimits {
            max_object_vertices: 5,
            ..ReadLimits::default()
        };
        let e = read_city_objects_limited(DOC.as_bytes(), &limits, |_| true).unwrap_err();
        assert!(
            matches!(&e, ReadError::Limit { what, .. } if what.contains("more than 5 vertices")),
            "{e}"
        );
        assert!(
            read_city_objects_limited(DOC.as_bytes(), &ReadLimits::default(), |_| true).is_ok()
        );
    }

    #[test]
    fn odd_srs_dimensions_make_bad_rings_not_panics() {
        for dim in [
            "0",
            "1",
            "4",
            "100000000000",
            "18446744073709551615",
            "-3",
            "x",
        ] {
            let doc = DOC.replace(
                r#"<gml:posList srsDimension="3">0 0 0 1 1 1"#,
                &format!(r#"<gml:posList srsDimension="{dim}">0 0 0 1 1 1"#),
            );
            let (got, stats) = read_with(&doc, &ReadLimits::default());
            assert_eq!(got.len(), 2, "srsDimension {dim}");
            assert_eq!(stats.degenerate_rings, 1, "srsDimension {dim}");
        }
        let mut out = Vec::new();
        assert!(parse_coords("1 2 3 4 5 6", 3, &mut out));
        assert_eq!(out, vec![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        assert!(!parse_coords("1 2 3 4", 3, &mut out));
        assert!(!parse_coords("1 2 1e309", 3, &mut out));
        assert_eq!(out.len(), 2);
        assert!(parse_coords("1 2", 2, &mut out));
        assert_eq!(out[2], [1.0, 2.0, 0.0]);
        assert_eq!(close_ring(vec![[0.0; 3], [1.0, 0.0, 0.0], [0.0; 3]]), None);
        assert_eq!(
            close_ring(vec![
                [0.0; 3],
                [1.0, 0.0, 0.0],
                [1.0, 0.0, 0.0],
                [0.0, 1.0, 0.0],
                [0.0; 3]
            ])
            .map(|r| r.len()),
            Some(4)
        );
    }
}
