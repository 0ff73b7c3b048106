//! CityGML input: the streaming reader, srsName → CRS (with axis order), polygon
//! triangulation and city objects as meshes with feature ids in an ENU frame. The 3D Tiles writer for city models (feature ids, property tables,
//! appearance) builds on these; the `convert` route does not take CityGML yet.

pub mod crs;
pub mod mesh;
pub mod reader;
pub mod triangulate;

pub use crs::{crs_from_srs_name, latitude_first};
pub use mesh::{city_meshes, CityMeshes, Feature};
pub use reader::{read_city_objects, AttrValue, CityObject, Polygon, ReadError, ReadStats};
pub use triangulate::{triangulate, Triangulated};
