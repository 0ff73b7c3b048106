//! Integration tests: one binary, one module per scenario.
#![allow(clippy::unwrap_used)] // a test fails by panicking

mod bad_input;
mod citygml_reader;
mod citygml_route;
mod helpers;
mod hostile_citygml;
mod imagery_route;
mod las_route;
mod model_route;
mod server_routes;
mod terrain_route;
mod tiff_writer;
