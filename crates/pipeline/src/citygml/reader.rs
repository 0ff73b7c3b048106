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

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::io::BufRead;

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
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("malformed XML at byte {position}: {reason}")]
    Xml { position: u64, reason: String },
    #[error("the document declares a DTD; CityGML needs none and entity expansion is refused")]
    Dtd,
    #[error("the file is not CityGML: no CityModel root")]
    NotCityGml,
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

/// The next XML event of a CityGML document; a DTD is refused (CityGML needs none, and
/// entity expansion is a way to exhaust memory).
pub(crate) fn next_event<'b, R: BufRead>(
    reader: &mut Reader<R>,
    buf: &'b mut Vec<u8>,
) -> Result<Event<'b>, ReadError> {
    match reader.read_event_into(buf) {
        Ok(Event::DocType(_)) => Err(ReadError::Dtd),
        Ok(ev) => Ok(ev),
        Err(e) => Err(ReadError::Xml {
            position: reader.buffer_position(),
            reason: e.to_string(),
        }),
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
    dim: usize,
}

fn parse_coords(text: &str, dim: usize, out: &mut Vec<[f64; 3]>) -> bool {
    let mut vals = Vec::new();
    for t in text.split_ascii_whitespace() {
        match t.parse::<f64>() {
            Ok(v) if v.is_finite() => vals.push(v),
            _ => return false,
        }
    }
    if dim < 2 || vals.len() % dim != 0 {
        return false;
    }
    for c in vals.chunks(dim) {
        out.push([c[0], c[1], if dim >= 3 { c[2] } else { 0.0 }]);
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
    let mut distinct = ring.clone();
    distinct.sort_by(|a, b| {
        a[0].total_cmp(&b[0])
            .then(a[1].total_cmp(&b[1]))
            .then(a[2].total_cmp(&b[2]))
    });
    distinct.dedup();
    (distinct.len() >= 3).then_some(ring)
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
    mut each: impl FnMut(CityObject) -> bool,
) -> Result<ReadStats, ReadError> {
    let mut reader = Reader::from_reader(input);
    reader.config_mut().trim_text(false);
    let mut buf = Vec::new();
    let mut stats = ReadStats::default();
    let mut path: Vec<String> = Vec::new();
    // gml:id of each open element (None without one), parallel to `path`.
    let mut ids: Vec<Option<String>> = Vec::new();
    // codeSpace of the innermost open element inside an object: (depth, codeSpace).
    let mut code_space: Option<(usize, String)> = None;
    let mut objects: Vec<ObjectFrame> = Vec::new();
    let mut poly: Option<PolyFrame> = None;
    let mut text = String::new();
    let mut seen_root = false;
    let mut default_dim: usize = 3;
    // Simple-attribute candidate: (depth, name) of the element whose text we collect.
    loop {
        let ev = next_event(&mut reader, &mut buf)?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let name = local(e.name().as_ref());
                let at = attrs(e);
                if path.is_empty() {
                    if name != "CityModel" {
                        return Err(ReadError::NotCityGml);
                    }
                    seen_root = true;
                }
                if let Some(s) = at.srs_name.clone() {
                    stats.srs_name.get_or_insert(s.clone());
                    if let Some(o) = objects.last_mut() {
                        o.obj.srs_name.get_or_insert(s);
                    }
                }
                if let Some(d) = at
                    .srs_dimension
                    .as_deref()
                    .and_then(|d| d.parse::<u8>().ok())
                {
                    stats.srs_dimension.get_or_insert(d);
                    if poly.is_none() && (2..=3).contains(&d) {
                        default_dim = d as usize;
                    }
                }
                text.clear();
                let member_child = path
                    .last()
                    .is_some_and(|p| p == "cityObjectMember" || p == "featureMember");
                if OBJECT_CLASSES.contains(&name.as_str()) || (member_child && !empty) {
                    let parent = objects.last().map(|o| o.obj.gml_id.clone());
                    let id = at.id.clone().unwrap_or_else(|| {
                        format!("{name}_{}", stats.objects + objects.len() as u64 + 1)
                    });
                    objects.push(ObjectFrame {
                        obj: CityObject {
                            gml_id: id,
                            class: name.clone(),
                            parent,
                            ..Default::default()
                        },
                        depth: path.len() + 1,
                        generic: None,
                    });
                } else if matches!(name.as_str(), "Polygon" | "Triangle" | "Rectangle")
                    && poly.is_none()
                {
                    let lod = path.iter().rev().find_map(|p| lod_of(p));
                    let from = objects.last().map_or(0, |o| o.depth);
                    let enclosing_ids: Vec<String> =
                        ids.iter().skip(from).rev().flatten().cloned().collect();
                    let surface = path
                        .iter()
                        .rev()
                        .find(|p| SURFACE_CLASSES.contains(&p.as_str()))
                        .cloned();
                    poly = Some(PolyFrame {
                        id: at.id.clone(),
                        lod,
                        surface,
                        enclosing_ids,
                        dim: default_dim,
                        ..Default::default()
                    });
                } else if let Some(p) = poly.as_mut() {
                    match name.as_str() {
                        "interior" | "innerBoundaryIs" => p.in_interior = true,
                        "LinearRing" => p.ring_id = at.id.clone(),
                        "exterior" | "outerBoundaryIs" => p.in_interior = false,
                        "posList" | "pos" => {
                            if let Some(d) = at
                                .srs_dimension
                                .as_deref()
                                .and_then(|d| d.parse::<usize>().ok())
                            {
                                p.dim = d;
                            }
                        }
                        _ => {}
                    }
                } else if let Some(o) = objects.last_mut() {
                    // A reference to geometry defined elsewhere.
                    if let Some(h) = at.href.clone() {
                        if path.iter().any(|p| lod_of(p).is_some()) || name.ends_with("Member") {
                            o.obj
                                .unresolved_refs
                                .push(h.trim_start_matches('#').to_string());
                        }
                    }
                    code_space = at.code_space.clone().map(|c| (path.len() + 1, c));
                    match name.as_str() {
                        "stringAttribute" | "intAttribute" | "doubleAttribute"
                        | "dateAttribute" | "uriAttribute" | "measureAttribute" => {
                            o.generic = Some((at.name.clone(), None, name.clone()));
                        }
                        "StringAttribute" | "IntAttribute" | "DoubleAttribute"
                        | "DateAttribute" | "UriAttribute" | "MeasureAttribute"
                        | "CodeAttribute" => {
                            o.generic = Some((None, None, name.clone()));
                        }
                        _ => {}
                    }
                }
                if !empty {
                    path.push(name);
                    ids.push(at.id);
                }
            }
            Event::Text(t) => {
                text.push_str(&t);
            }
            Event::GeneralRef(r) => {
                // Only the five predefined entities and character references exist
                // without a DTD.
                let name: &str = &r;
                let c = match name {
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
                };
                if let Some(c) = c {
                    text.push(c);
                }
            }
            Event::CData(t) => text.push_str(&t),
            Event::End(_) => {
                let Some(name) = path.pop() else { break };
                ids.pop();
                let depth = path.len() + 1;
                if let Some(p) = poly.as_mut() {
                    match name.as_str() {
                        "posList" | "pos" | "coordinates" => {
                            let t = if name == "coordinates" {
                                text.replace(',', " ")
                            } else {
                                text.clone()
                            };
                            let dim = if name == "coordinates" { 3 } else { p.dim };
                            if !parse_coords(&t, dim, &mut p.ring) {
                                p.bad_ring = true;
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
                                None => stats.degenerate_rings += 1,
                            }
                        }
                        "Polygon" | "Triangle" | "Rectangle" => {
                            if let Some(p) = poly.take() {
                                if !p.exterior.is_empty() {
                                    stats.polygons += 1;
                                    if let Some(o) = objects.last_mut() {
                                        let mut ring_ids = vec![p.exterior_id];
                                        ring_ids.extend(p.interior_ids);
                                        o.obj.polygons.push(Polygon {
                                            gml_id: p.id,
                                            lod: p.lod,
                                            surface: p.surface,
                                            exterior: p.exterior,
                                            interiors: p.interiors,
                                            ring_ids,
                                            enclosing_ids: p.enclosing_ids,
                                        });
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                } else if let Some(o) = objects.last_mut() {
                    if depth == o.depth {
                        let mut done = objects.pop().map(|f| f.obj).unwrap_or_default();
                        // Geometry referenced and also defined inside the object is not
                        // missing.
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
                        stats.objects += 1;
                        if done.srs_name.is_none() {
                            done.srs_name = stats.srs_name.clone();
                        }
                        if !each(done) {
                            return Ok(stats);
                        }
                    } else if let Some((gname, gvalue, kind)) = o.generic.as_mut() {
                        match name.as_str() {
                            "name" => *gname = Some(text.trim().to_string()),
                            "value" => *gvalue = Some(text.trim().to_string()),
                            n if n == kind => {
                                if let (Some(k), Some(v)) = (gname.take(), gvalue.take()) {
                                    let value = match kind.to_ascii_lowercase().as_str() {
                                        "stringattribute" | "dateattribute" | "uriattribute"
                                        | "codeattribute" => AttrValue::Text(v),
                                        _ => AttrValue::guess(&v),
                                    };
                                    o.obj.attributes.push((k, value));
                                }
                                o.generic = None;
                            }
                            _ => {}
                        }
                    } else if !text.trim().is_empty()
                        && !NOT_ATTRIBUTES.contains(&name.as_str())
                        && !path.iter().skip(o.depth).any(|p| {
                            lod_of(p).is_some()
                                || SURFACE_CLASSES.contains(&p.as_str())
                                || p == "appearance"
                                || p == "appearanceMember"
                        })
                    {
                        // A simple child element (or nested ADE element) with text.
                        if let Some((d, cs)) = code_space.take() {
                            if d == depth {
                                o.obj.code_spaces.push((o.obj.attributes.len(), cs));
                            }
                        }
                        o.obj
                            .attributes
                            .push((name.clone(), AttrValue::guess(&text)));
                    }
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err(ReadError::NotCityGml);
    }
    Ok(stats)
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
}
