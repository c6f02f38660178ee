#!/usr/bin/env bash
# Load bench: 200 concurrent clients for DURATION (60s) each at the overview, the runs page and
# /api/v1/runs (first 100 runs), with the given logs folder loaded. Prints wrk's latency
# percentiles. Traffic stays on 127.0.0.1.
#   bench/load.sh [LOGS_DIR]      (default ../shared/fixtures/codecarbon-real; build first: ./x build)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-../shared/fixtures/codecarbon-real}
BIN=${CARBON_DASH_BIN:-target/debug/carbon-dash}
DURATION=${DURATION:-60s}
ADDR=127.0.0.1:3999
if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
"$BIN" serve "$DIR" --addr "$ADDR" --site-root site --read-only >/tmp/carbon-dash-bench.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf "http://$ADDR/healthz" >/dev/null && break; sleep 0.2; done
echo "server: $BIN ($(head -1 /tmp/carbon-dash-bench.log))"
REPORT=bench/p95.lua
for path in / /runs "/api/v1/runs?limit=100"; do
  echo "== GET $path: 200 connections, $DURATION"
  wrk -t2 -c200 -d"$DURATION" --timeout 10s -s "$REPORT" "http://$ADDR$path" | grep -E "Requests/sec|^p50"
done
