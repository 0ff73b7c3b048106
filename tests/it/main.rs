//! Integration tests: one binary, one module per scenario.

mod bad_input;
mod helpers;
mod las_route;
