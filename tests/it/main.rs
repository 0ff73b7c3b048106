//! Integration tests: one binary, one module per scenario.
#![allow(clippy::unwrap_used)] // a test fails by panicking

mod bad_input;
mod helpers;
mod las_route;
