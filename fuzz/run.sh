#!/usr/bin/env bash
# Coverage-guided fuzzing of one reader on the stable toolchain: libFuzzer (the
# libfuzzer-sys crate, built with g++) with rustc's SanitizerCoverage instrumentation.
#   fuzz/run.sh TARGET [SECONDS]     targets: las geotiff_terrain geotiff_imagery citygml
#                                    gltf zip quantized_mesh (default 600 s)
# Seeds come from $TESSERA_SAMPLES (default ../shared/data) and fixtures/files; the corpus
# grows in target/fuzz/corpus/TARGET, crashes land in target/fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: fuzz/run.sh TARGET [SECONDS]}"
secs="${2:-600}"
samples="${TESSERA_SAMPLES:-$(pwd)/../shared/data}"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
triple="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --manifest-path fuzz/Cargo.toml --target "$triple" --target-dir target/fuzz --bin "$target"
corpus="target/fuzz/corpus/$target"
artifacts="target/fuzz/artifacts/$target"
mkdir -p "$corpus" "$artifacts"
seed() { for f in "$@"; do [ -f "$f" ] && cp -n "$f" "$corpus/" || true; done; }
case "$target" in
  las) seed "$samples"/las/*/*.las "$samples"/las/*/*.laz fixtures/files/tiny.las ;;
  geotiff_terrain) seed "$samples"/geotiff/dem/pysheds_dem.tif fixtures/files/tiny-dem.tif ;;
  geotiff_imagery) seed "$samples"/geotiff/imagery/world.rgb.tif "$samples"/geotiff/imagery/cogeo.tif "$samples"/geotiff/imagery/rgb_lzw.tif fixtures/files/tiny-rgb.tif ;;
  citygml) seed "$samples"/citygml/fzk-haus-citygml*/*.gml "$samples"/citygml/delft-lod1-citygml2.xml "$samples"/citygml/lyon/*.gml fixtures/files/tiny.gml ;;
  gltf) seed "$samples"/gltf/*.glb "$samples"/gltf/Box/*.glb fixtures/files/tiny.gltf ;;
  zip) seed "$samples"/citygml/plateau-meiji-gallery.zip "$samples"/citygml/plateau-yokosuka.zip ;;
  quantized_mesh)
    # Real tiles, un-gzipped, of a terrain made from the tiny DEM.
    RUSTFLAGS= cargo build --release --bin tessera
    t="$(mktemp -d)"
    ./target/release/tessera convert --to terrain fixtures/files/tiny-dem.tif -o "$t/terrain" -q
    find "$t/terrain" -name '*.terrain' | while read -r f; do
      gunzip -c < "$f" > "$corpus/$(echo "$f" | tr / _)" 2>/dev/null || cp "$f" "$corpus/"
    done
    rm -rf "$t" ;;
esac
exec "target/fuzz/$triple/release/$target" "$corpus" \
  -artifact_prefix="$artifacts/" -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT_S:-10}" -rss_limit_mb=2048 \
  -malloc_limit_mb=1536 -max_len=4194304 -print_final_stats=1
