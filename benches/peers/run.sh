#!/usr/bin/env bash
# Point-cloud route against its peers, in one run on this machine: bare LAZ decode
# (laspy + lazrs, parallel), tessera at 1 and 2 threads, py3dtiles --jobs 2; wall time,
# throughput, output bytes per point and peak RSS of each.
#
#   bash benches/peers/run.sh [INPUT.laz [EPSG]]
#
# Default input: the ~20.5 M point AHN3 replica that ../shared/bench/make-inputs.sh laz20
# writes under $PEERDATA (default ~/tessera-peerdata), EPSG:28992. Python peers come from a
# venv in target/peers-venv (made on first use: laspy[lazrs], py3dtiles 12.1.1).
set -euo pipefail
cd "$(dirname "$0")/../.."
PEERDATA=${PEERDATA:-$HOME/tessera-peerdata}
input=${1:-$PEERDATA/inputs/ahn3_x32_20M.laz}
epsg=${2:-28992}
venv=target/peers-venv
if [ ! -x "$venv/bin/py3dtiles" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'laspy[lazrs]' numpy 'py3dtiles[las]==12.1.1'
fi
if [ ! -f "$input" ] && [ $# -eq 0 ]; then
  PEERDATA="$PEERDATA" PY="$venv/bin/python" bash ../shared/bench/make-inputs.sh laz20
fi
[ -f "$input" ] || { echo "no input $input" >&2; exit 2; }
cargo build --release --locked -q
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
points=$("$venv/bin/python" -c 'import laspy,sys; print(laspy.open(sys.argv[1]).header.point_count)' "$input")
echo "input: $input ($points points, EPSG:$epsg), $(nproc) cores"
printf '%-26s %9s %12s %14s %10s\n' run wall_s Mpts_per_s bytes_per_pt peak_MB

# One timed command: wall seconds and peak RSS (KB) from GNU time.
measure() {
  local name=$1 dir=$2; shift 2
  /usr/bin/time -f '%e %M' -o "$out/time" "$@" >"$out/log" 2>&1 || { cat "$out/log" >&2; echo "$name failed" >&2; return 1; }
  read -r wall rss <"$out/time"
  local bpp=-
  if [ -n "$dir" ]; then
    local bytes
    bytes=$(du -sb "$dir" | cut -f1)
    bpp=$(python3 -c "print(f'{$bytes/$points:.2f}')")
  fi
  printf '%-26s %9.2f %12.2f %14s %10.0f\n' "$name" "$wall" "$(python3 -c "print($points/$wall/1e6)")" "$bpp" "$(python3 -c "print($rss/1024)")"
}

measure "bare decode (lazrs x2)" "" "$venv/bin/python" -c '
import sys, laspy
with laspy.open(sys.argv[1], laz_backend=laspy.LazBackend.LazrsParallel) as f:
    n = 0
    for chunk in f.chunk_iterator(2_000_000):
        n += len(chunk.x)
assert n == int(sys.argv[2]), n
' "$input" "$points"
measure "tessera --threads 1" "$out/t1" ./target/release/tessera convert "$input" -o "$out/t1" --input-crs "EPSG:$epsg" --threads 1 -q --report "$out/t1.json"
measure "tessera --threads 2" "$out/t2" ./target/release/tessera convert "$input" -o "$out/t2" --input-crs "EPSG:$epsg" --threads 2 -q --report "$out/t2.json"
# The attribute set of the figures before GPS times were kept (py3dtiles keeps fewer still).
measure "tessera -t2 no gps_time" "$out/t2s" ./target/release/tessera convert "$input" -o "$out/t2s" --input-crs "EPSG:$epsg" --threads 2 -q --attributes rgb,intensity,classification,returns
measure "py3dtiles --jobs 2" "$out/py" "$venv/bin/py3dtiles" convert "$input" --out "$out/py" --jobs 2 --srs_in "$epsg" --srs_out 4978
python3 - "$out/t1.json" "$out/t2.json" <<'PY'
import json, sys
for f in sys.argv[1:]:
    r = json.load(open(f))
    stages = ", ".join(f"{s} {t:.2f} s" for s, t in r.get("stage_seconds", []))
    print(f"{f.rsplit('/', 1)[1]}: {r['points_written']} points in {r['tiles']} tiles; {stages}")
PY
cmp -s <(cd "$out/t1" && find . -type f -exec md5sum {} + | sort -k2) <(cd "$out/t2" && find . -type f -exec md5sum {} + | sort -k2) \
  && echo "1 and 2 threads: identical trees" || echo "1 and 2 threads: trees DIFFER"
