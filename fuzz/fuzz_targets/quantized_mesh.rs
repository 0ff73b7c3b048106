//! Fuzz target: a quantized-mesh tile read back by the terrain sampler (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tessera_fixtures::cases::{Ending, Reader, Scratch};

static SCRATCH: OnceLock<Scratch> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dem: Option<std::path::PathBuf> = Some(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/files/tiny-dem.tif"),
    );
    let scratch = SCRATCH.get_or_init(|| {
        Scratch::new(Reader::QuantizedMesh, dem.as_deref()).expect("scratch folder")
    });
    if let Ending::Internal(m) = scratch.run(Reader::QuantizedMesh, "tile.terrain", data) {
        panic!("internal error: {m}");
    }
});
