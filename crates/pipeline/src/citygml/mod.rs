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
pub use mesh::{convert_document, CityPart, Codelists, DocOptions, Feature, Styles};
pub use reader::{
    read_city_objects, read_city_objects_while, AttrValue, CityObject, Polygon, ReadError,
    ReadStats,
};
pub use run::{run_citygml, CityOptions};
pub use source::{discover, is_city_job, Location};
pub use triangulate::{triangulate, Triangulated};
