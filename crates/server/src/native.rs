//! Assets served as uploaded (CZML, GeoJSON, KML/KMZ) are read once before they are
//! served, so a garbage upload ends DATA_ERROR instead of COMPLETE. The checks stream:
//! memory stays small whatever the file's size.

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Most bytes of a KMZ's KML read for its root element.
const KML_HEAD_BYTES: u64 = 1 << 20;

/// `Ok` when the file at `path` is what an asset of `type_` serves.
pub fn check(type_: &str, path: &Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let reader = BufReader::with_capacity(1 << 16, file);
    match type_ {
        "CZML" => czml(reader),
        "GEOJSON" => geojson(reader),
        "KML" if has_zip_magic(path) => kmz(path),
        "KML" => kml(reader),
        other => Err(format!("{other} assets are not served as uploaded")),
    }
}

fn has_zip_magic(path: &Path) -> bool {
    let mut m = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut m))
        .is_ok()
        && &m == b"PK\x03\x04"
}

/// A CZML document: a JSON array whose first packet has `"id": "document"`.
fn czml(r: impl Read) -> Result<(), String> {
    struct Doc;
    #[derive(Deserialize)]
    struct First {
        id: Option<String>,
    }
    impl<'de> Visitor<'de> for Doc {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of CZML packets")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<String>, A::Error> {
            let first: Option<First> = seq.next_element()?;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first.and_then(|f| f.id))
        }
    }
    let mut de = serde_json::Deserializer::from_reader(r);
    let id = serde::Deserializer::deserialize_seq(&mut de, Doc)
        .map_err(|e| format!("not CZML: {e}. A CZML file is a JSON array of packets"))?;
    de.end().map_err(|e| format!("not CZML: {e}"))?;
    match id.as_deref() {
        Some("document") => Ok(()),
        _ => Err(
            "not CZML: the first packet must be the document packet (\"id\": \"document\")".into(),
        ),
    }
}

const GEOJSON_TYPES: &[&str] = &[
    "FeatureCollection",
    "Feature",
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
];

/// A GeoJSON object (RFC 7946) with one of its `type`s.
fn geojson(r: impl Read) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Object {
        #[serde(rename = "type")]
        type_: Option<String>,
    }
    let mut de = serde_json::Deserializer::from_reader(r);
    let o = Object::deserialize(&mut de)
        .map_err(|e| format!("not GeoJSON: {e}. A GeoJSON file is one JSON object"))?;
    de.end().map_err(|e| format!("not GeoJSON: {e}"))?;
    match o.type_.as_deref() {
        Some(t) if GEOJSON_TYPES.contains(&t) => Ok(()),
        Some(t) => Err(format!(
            "not GeoJSON: \"type\": \"{t}\" is none of {}",
            GEOJSON_TYPES.join(", ")
        )),
        None => Err("not GeoJSON: the object has no \"type\"".into()),
    }
}

/// A KML document: XML whose root element is `kml`.
fn kml(r: impl BufRead) -> Result<(), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(r);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                let local = e.local_name();
                let name: &str = local.into_inner();
                return if name == "kml" {
                    Ok(())
                } else {
                    Err(format!("not KML: the root element is <{name}>, not <kml>"))
                };
            }
            Ok(Event::DocType(_)) => {
                return Err(
                    "not accepted: the KML declares a DTD (entity expansion is refused)".into(),
                )
            }
            Ok(Event::Eof) => return Err("not KML: no root element".into()),
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "not KML: malformed XML at byte {}: {e}",
                    reader.buffer_position()
                ))
            }
        }
        buf.clear();
    }
}

/// A KMZ: a zip holding a `.kml` (the first one at its root is the document).
fn kmz(path: &Path) -> Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut zip = zip::ZipArchive::new(f)
        .map_err(|e| format!("not a readable KMZ (zip): {e}; re-create the archive"))?;
    let name = (0..zip.len())
        .filter_map(|i| {
            zip.by_index_raw(i)
                .ok()
                .map(|f| String::from_utf8_lossy(f.name_raw()).into_owned())
        })
        .filter(|n| n.to_ascii_lowercase().ends_with(".kml"))
        .min_by_key(|n| (n.contains('/'), n.clone()))
        .ok_or("not KMZ: the zip holds no .kml document")?;
    let entry = zip
        .by_name(&name)
        .map_err(|e| format!("{name} in the KMZ: {e}"))?;
    kml(BufReader::new(entry.take(KML_HEAD_BYTES))).map_err(|e| format!("{name} in the KMZ: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(type_: &str, bytes: &[u8]) -> Result<(), String> {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), bytes).unwrap();
        check(type_, f.path())
    }

    #[test]
    fn real_documents_pass_and_garbage_does_not() {
        assert!(run("CZML", br#"[{"id":"document","version":"1.0"},{"id":"a"}]"#).is_ok());
        assert!(run("CZML", br#"[{"id":"a"}]"#)
            .unwrap_err()
            .contains("document packet"));
        assert!(run("CZML", b"\x00garbage")
            .unwrap_err()
            .contains("not CZML"));
        assert!(run("CZML", br#"[{"id":"document"}] trailing"#).is_err());
        assert!(run("GEOJSON", br#"{"type":"FeatureCollection","features":[]}"#).is_ok());
        assert!(run("GEOJSON", br#"{"type":"Banana"}"#)
            .unwrap_err()
            .contains("Banana"));
        assert!(run("GEOJSON", b"[1,2]").is_err());
        assert!(run("GEOJSON", b"garbage").is_err());
        assert!(run("KML", br#"<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document/></kml>"#).is_ok());
        assert!(run("KML", b"<html></html>").unwrap_err().contains("<html>"));
        assert!(run("KML", b"garbage").is_err());
        assert!(run("KML", b"<!DOCTYPE kml [<!ENTITY a \"b\">]><kml/>")
            .unwrap_err()
            .contains("DTD"));
    }

    #[test]
    fn kmz_needs_a_kml_inside() {
        use std::io::Write;
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut z = zip::ZipWriter::new(f.reopen().unwrap());
        z.start_file("doc.kml", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(b"<kml><Document/></kml>").unwrap();
        z.finish().unwrap();
        assert!(check("KML", f.path()).is_ok());
        let g = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(g.path(), b"PK\x03\x04broken").unwrap();
        assert!(check("KML", g.path()).unwrap_err().contains("KMZ"));
    }
}
