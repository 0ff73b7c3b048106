//! CityGML input. The streaming reader is in place; triangulation, appearance and the
//! 3D Tiles writer for city models build on it (the `convert` route does not take
//! CityGML yet).

pub mod reader;

pub use reader::{read_city_objects, AttrValue, CityObject, Polygon, ReadError, ReadStats};
