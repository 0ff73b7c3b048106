//! Integration tests: one binary, one module per scenario.
#![allow(clippy::unwrap_used)] // a test fails by panicking

mod bad_input;
mod citygml_reader;
mod citygml_route;
mod cli;
mod fixtures;
mod helpers;
mod hostile_citygml;
mod hostile_cli;
mod hostile_gltf;
mod hostile_las_raster;
mod hostile_server;
mod imagery_route;
mod las_route;
mod model_route;
mod mutation;
mod server_routes;
mod terrain_route;
