//! Fuzz target: the las reader through the whole conversion (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tessera_fixtures::cases::{Ending, Reader, Scratch};

static SCRATCH: OnceLock<Scratch> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dem: Option<std::path::PathBuf> = None;
    let scratch =
        SCRATCH.get_or_init(|| Scratch::new(Reader::Las, dem.as_deref()).expect("scratch folder"));
    if let Ending::Internal(m) = scratch.run(Reader::Las, "in.laz", data) {
        panic!("internal error: {m}");
    }
});
