//! CityGML → 3D Tiles: the streaming reader, srsName → CRS (with axis order),
//! appearances, polygon triangulation, city objects as meshes, the importance tile tree
//! and the route itself ([`run_citygml`]).

pub mod appearance;
pub mod crs;
pub mod mesh;
pub mod reader;
mod run;
pub mod source;
pub mod tree;
pub mod triangulate;

pub use crs::{crs_from_srs_name, latitude_first};
pub use mesh::{
    convert_document, convert_document_with, CityPart, Codelists, DocOptions, Feature, Styles,
};
pub use reader::{
    read_city_objects, read_city_objects_limited, read_city_objects_while, AttrValue, CityObject,
    Polygon, ReadError, ReadLimits, ReadStats,
};
pub use run::{run_citygml, CityOptions, MAX_PROPERTIES};
pub use source::{
    discover, discover_job, is_city_job, is_city_model, is_city_zip, text_encoding, Location,
    RefIssue, TextEncoding,
};
pub use triangulate::{triangulate, Triangulated};
