#!/usr/bin/env bash
# End-to-end imagery timings against gdal2tiles, in one run on one machine: tessera convert
# --to imagery at 1 and 2 threads (wall time, peak RSS, tiles/s) and `gdal2tiles
# --processes=2` for the same zooms and resampling, on the 20480 x 20480 RGB COG built by
# ../shared/bench/make-inputs.sh. Then the pixel agreement of the two pyramids
# (../shared/harness/validate-tms.py --reference). Prints one line per tool.
#
#   benches/peers/imagery.sh [PEERDATA folder, default ~/tessera-peerdata]
set -euo pipefail
cd "$(dirname "$0")/../.."
PEERDATA=${1:-${PEERDATA:-$HOME/tessera-peerdata}}
VENV=${VENV:-$PEERDATA/venv}
ZOOMS=${ZOOMS:-11-18}
RESAMPLING=${RESAMPLING:-bilinear}
mkdir -p "$PEERDATA/out"
INPUT="$PEERDATA/inputs/rgb20k_rgb_deflate_cog.tif"
if [ ! -f "$INPUT" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q rasterio numpy
  PEERDATA="$PEERDATA" PY="$VENV/bin/python" bash ../shared/bench/make-inputs.sh rgb
fi
command -v gdal2tiles.py >/dev/null || { echo "gdal2tiles.py not found (apt-get install gdal-bin python3-gdal)"; exit 1; }
cargo build --release --locked -q
echo "input: $INPUT, zooms $ZOOMS, $RESAMPLING"

measure() { # label, output dir, command...
  local label=$1 dir=$2; shift 2
  local log="$PEERDATA/out/$label.time"
  rm -rf "$dir"
  /usr/bin/time -v "$@" >"$PEERDATA/out/$label.log" 2>"$log" || { echo "$label: FAILED (see $PEERDATA/out/$label.log)"; return; }
  local wall rss secs tiles
  wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$log" | awk '{print $NF}')
  secs=$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  tiles=$(find "$dir" -name '*.png' | wc -l)
  echo "$label: ${secs} s, $tiles tiles, $(awk -v t="$tiles" -v s="$secs" 'BEGIN{printf "%.0f", t/s}') tiles/s, peak RSS $((rss / 1024)) MB"
}

min=${ZOOMS%-*}; max=${ZOOMS#*-}
for t in 1 2; do
  measure "tessera-imagery-${t}t" "$PEERDATA/out/tessera-imagery-${t}t" ./target/release/tessera convert --to imagery "$INPUT" \
    -o "$PEERDATA/out/tessera-imagery-${t}t" --min-zoom "$min" --max-zoom "$max" --resampling "$RESAMPLING" --threads "$t" --force -q
done
measure gdal2tiles-2p "$PEERDATA/out/gdal2tiles" gdal2tiles.py -q --processes=2 -x -z "$ZOOMS" -r "$RESAMPLING" "$INPUT" "$PEERDATA/out/gdal2tiles"
python3 ../shared/harness/validate-tms.py "$PEERDATA/out/tessera-imagery-2t" --reference "$PEERDATA/out/gdal2tiles" | tail -1
