#!/usr/bin/env bash
# End-to-end point-cloud timings against the peers, in one run on one machine:
# a bare LAZ decode (laspy + lazrs), tessera convert at 1 and 2 threads (wall time, peak
# RSS) and py3dtiles convert, on the ~20 M-point AHN3 replica built by
# ../shared/bench/make-inputs.sh (EPSG:28992). Prints one line per tool.
#
#   benches/peers/run.sh [PEERDATA folder, default ~/tessera-peerdata]
set -euo pipefail
cd "$(dirname "$0")/../.."
PEERDATA=${1:-${PEERDATA:-$HOME/tessera-peerdata}}
VENV=${VENV:-$PEERDATA/venv}
mkdir -p "$PEERDATA/out"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "laspy[lazrs]" numpy py3dtiles
fi
INPUT="$PEERDATA/inputs/ahn3_x32_20M.laz"
[ -f "$INPUT" ] || PEERDATA="$PEERDATA" PY="$VENV/bin/python" bash ../shared/bench/make-inputs.sh laz20
cargo build --release --locked -q
points=$("$VENV/bin/python" -c "import laspy,sys; print(laspy.open(sys.argv[1]).header.point_count)" "$INPUT")
echo "input: $INPUT ($points points)"

measure() { # label, command...
  local label=$1; shift
  local log="$PEERDATA/out/$label.time"
  /usr/bin/time -v "$@" >"$PEERDATA/out/$label.log" 2>"$log" || { echo "$label: FAILED (see $PEERDATA/out/$label.log)"; return; }
  local wall rss
  wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$log" | awk '{print $NF}')
  local secs
  secs=$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  echo "$label: ${secs} s, $(awk -v p="$points" -v s="$secs" 'BEGIN{printf "%.2f", p/s/1e6}') M points/s, peak RSS $((rss / 1024)) MB"
}

measure decode-laspy-lazrs "$VENV/bin/python" -c "import laspy,sys; laspy.read(sys.argv[1], laz_backend=laspy.LazBackend.LazrsParallel)" "$INPUT"
for t in 1 2; do
  measure "tessera-${t}t" ./target/release/tessera convert "$INPUT" -o "$PEERDATA/out/tessera-${t}t" \
    --input-crs EPSG:28992 --threads "$t" --force -q
done
rm -rf "$PEERDATA/out/py3dtiles"
measure py3dtiles-2j "$VENV/bin/py3dtiles" convert "$INPUT" --out "$PEERDATA/out/py3dtiles" \
  --srs_in 28992 --srs_out 4978 --jobs 2 --overwrite
