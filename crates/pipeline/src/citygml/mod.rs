//! CityGML input: the streaming reader, srsName → CRS (with axis order), and polygon
//! triangulation. The 3D Tiles writer for city models (feature ids, property tables,
//! appearance) builds on these; the `convert` route does not take CityGML yet.

pub mod crs;
pub mod reader;
pub mod triangulate;

pub use crs::{crs_from_srs_name, latitude_first};
pub use reader::{read_city_objects, AttrValue, CityObject, Polygon, ReadError, ReadStats};
pub use triangulate::{triangulate, Triangulated};
