//! Per-feature properties of a mesh tile: an EXT_structural_metadata property table
//! (3D Tiles 1.1) or a JSON batch table (3D Tiles 1.0 `.b3dm`).
//!
//! Types are decided once for the whole tileset ([`PropertyType`] in the schema) so every
//! tile agrees; a feature without a value gets the property's `noData` value (1.1) or
//! `null` (1.0).

use serde_json::{json, Map, Value};

/// The type of one property across the tileset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyType {
    Int32,
    Float64,
    String,
}

/// A property's values for the features of one tile, in tile feature-id order.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValues {
    Int32(Vec<Option<i32>>),
    Float64(Vec<Option<f64>>),
    String(Vec<Option<String>>),
}

/// noData markers: the features without a value.
pub const NO_DATA_INT32: i32 = i32::MIN;
pub const NO_DATA_FLOAT64: f64 = -1.0e300;

/// A property of the schema: its id (a valid identifier), its name as the source spells
/// it, and its type.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyDef {
    pub id: String,
    pub name: String,
    pub ty: PropertyType,
}

/// The schema class of every feature (`EXT_structural_metadata` schema JSON).
pub fn schema_json(schema_id: &str, class: &str, props: &[PropertyDef]) -> Value {
    let mut properties = Map::new();
    for p in props {
        let mut d = match p.ty {
            PropertyType::Int32 => {
                json!({"type": "SCALAR", "componentType": "INT32", "noData": NO_DATA_INT32})
            }
            PropertyType::Float64 => {
                json!({"type": "SCALAR", "componentType": "FLOAT64", "noData": NO_DATA_FLOAT64})
            }
            PropertyType::String => json!({"type": "STRING", "noData": ""}),
        };
        if p.name != p.id {
            d["name"] = json!(p.name);
        }
        properties.insert(p.id.clone(), d);
    }
    json!({"id": schema_id, "classes": {class: {"properties": properties}}})
}

/// The features of one tile.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureTable {
    pub schema: Value,
    pub class: String,
    pub count: usize,
    /// (property id, values); properties nobody in the tile has are left out.
    pub properties: Vec<(String, PropertyValues)>,
}

/// Adds a buffer view (8-byte aligned, as EXT_structural_metadata requires) holding
/// `data` and returns its index.
pub trait ViewSink {
    fn aligned_view(&mut self, data: &[u8]) -> usize;
}

impl FeatureTable {
    /// The `EXT_structural_metadata` extension object with one property table, its
    /// buffers written through `sink`.
    pub fn metadata_extension(&self, sink: &mut dyn ViewSink) -> Value {
        let mut props = Map::new();
        for (id, values) in &self.properties {
            let entry = match values {
                PropertyValues::Int32(v) => {
                    let bytes: Vec<u8> = v
                        .iter()
                        .flat_map(|x| x.unwrap_or(NO_DATA_INT32).to_le_bytes())
                        .collect();
                    json!({"values": sink.aligned_view(&bytes)})
                }
                PropertyValues::Float64(v) => {
                    let bytes: Vec<u8> = v
                        .iter()
                        .flat_map(|x| x.unwrap_or(NO_DATA_FLOAT64).to_le_bytes())
                        .collect();
                    json!({"values": sink.aligned_view(&bytes)})
                }
                PropertyValues::String(v) => {
                    let (bytes, offsets, offset_type) = string_buffers(v);
                    let values = sink.aligned_view(&bytes);
                    let offsets = sink.aligned_view(&offsets);
                    json!({"values": values, "stringOffsets": offsets, "stringOffsetType": offset_type})
                }
            };
            props.insert(id.clone(), entry);
        }
        json!({
            "schema": self.schema,
            "propertyTables": [{"class": self.class, "count": self.count, "properties": props}]
        })
    }

    /// A 3D Tiles 1.0 batch table (JSON only) with `null` for missing values.
    pub fn batch_table_json(&self) -> Value {
        let mut out = Map::new();
        for (id, values) in &self.properties {
            let arr: Vec<Value> = match values {
                PropertyValues::Int32(v) => v.iter().map(|x| json!(x)).collect(),
                PropertyValues::Float64(v) => v.iter().map(|x| json!(x)).collect(),
                PropertyValues::String(v) => v.iter().map(|x| json!(x)).collect(),
            };
            out.insert(id.clone(), Value::Array(arr));
        }
        Value::Object(out)
    }
}

/// The bytes of a string column, its offsets and their type: UINT32, or UINT64 when the
/// strings together pass 4 GiB (offsets never wrap).
fn string_buffers(v: &[Option<String>]) -> (Vec<u8>, Vec<u8>, &'static str) {
    let mut bytes = Vec::new();
    for s in v {
        bytes.extend_from_slice(s.as_deref().unwrap_or("").as_bytes());
    }
    let wide = u32::try_from(bytes.len()).is_err();
    let width = if wide { 8 } else { 4 };
    let mut offsets = Vec::with_capacity((v.len() + 1) * width);
    let mut end = 0u64;
    let push = |offsets: &mut Vec<u8>, at: u64| {
        if wide {
            offsets.extend_from_slice(&at.to_le_bytes());
        } else {
            // Fits: every offset is at most the total, which fits in u32.
            offsets.extend_from_slice(&u32::try_from(at).unwrap_or(u32::MAX).to_le_bytes());
        }
    };
    push(&mut offsets, 0);
    for s in v {
        end += s.as_deref().map_or(0, str::len) as u64;
        push(&mut offsets, end);
    }
    (bytes, offsets, if wide { "UINT64" } else { "UINT32" })
}

/// A property id the metadata spec accepts (`[A-Za-z_][A-Za-z0-9_]*`) for `name`.
pub fn identifier(name: &str) -> String {
    let mut id: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit()) {
        id.insert(0, '_');
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Views(Vec<Vec<u8>>);
    impl ViewSink for Views {
        fn aligned_view(&mut self, data: &[u8]) -> usize {
            self.0.push(data.to_vec());
            self.0.len() - 1
        }
    }

    #[test]
    fn strings_numbers_and_missing_values() {
        let defs = vec![
            PropertyDef {
                id: "gml_id".into(),
                name: "gml_id".into(),
                ty: PropertyType::String,
            },
            PropertyDef {
                id: "_____".into(),
                name: "建物ID".into(),
                ty: PropertyType::Int32,
            },
        ];
        assert_eq!(identifier("建物ID"), "__ID");
        assert_eq!(identifier("3d"), "_3d");
        let t = FeatureTable {
            schema: schema_json("s", "CityObject", &defs),
            class: "CityObject".into(),
            count: 2,
            properties: vec![
                (
                    "gml_id".into(),
                    PropertyValues::String(vec![Some("a".into()), Some("bc".into())]),
                ),
                ("_____".into(), PropertyValues::Int32(vec![Some(7), None])),
            ],
        };
        let mut v = Views(Vec::new());
        let ext = t.metadata_extension(&mut v);
        assert_eq!(v.0[0], b"abc");
        assert_eq!(v.0[1], [0u8, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&v.0[2][4..], &i32::MIN.to_le_bytes());
        assert_eq!(ext["propertyTables"][0]["count"], 2);
        assert_eq!(
            ext["schema"]["classes"]["CityObject"]["properties"]["_____"]["name"],
            "建物ID"
        );
        assert_eq!(t.batch_table_json()["_____"], json!([7, null]));
        let (bytes, offsets, ty) = string_buffers(&[Some("ab".into()), None, Some("c".into())]);
        assert_eq!((bytes.as_slice(), ty), (&b"abc"[..], "UINT32"));
        assert_eq!(offsets, [0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
    }
}
