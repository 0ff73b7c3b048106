#!/usr/bin/env bash
# Real clients against a running `tessera serve` (token auth): the ion upload step with the
# AWS SDK for JavaScript v3, CesiumJS loading every asset kind the ion way, and the
# dashboard driven in chromium. Screenshots go to target/cesium-conformance/ and
# target/dashboard/. Needs scripts/setup-js and a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
samples="${TESSERA_SAMPLES:-$(pwd)/../shared/data}"
data="$(mktemp -d)"
token="browser-checks-$$"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TESSERA_ADMIN_TOKEN="$token" ./target/release/tessera serve --addr "127.0.0.1:$port" --data "$data/state" \
  --cesium-dir node_modules/cesium/Build/Cesium 2>"$data/serve.log" &
server=$!
cleanup() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$port"
rc=0
if node tests/js/s3-upload-check.mjs "$url" "$token" "$data/state"; then echo "S3 upload with the AWS SDK for JavaScript v3: PASS"
else echo "S3 upload with the AWS SDK for JavaScript v3: FAIL"; rc=1; fi
node tests/js/cesium-conformance.mjs "$url" "$token" "$samples" || rc=1
node tests/js/dashboard.mjs "$url" "$token" "$samples" || rc=1
if [ "$rc" -ne 0 ]; then echo "--- server log (last 40 lines)"; tail -40 "$data/serve.log"; fi
exit "$rc"
