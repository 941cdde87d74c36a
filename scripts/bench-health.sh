#!/usr/bin/env bash
# Measures GET /health latency (budget: p99 under 10 ms) from a second
# process on loopback: builds and starts the local server on a spare port,
# sends a bounded load, prints the percentiles, stops the server.
#   scripts/bench-health.sh [requests] [clients]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
c=${2:-8}
port=${BENCH_PORT:-18099}
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/orchestrator" ./functions/local
go build -o "$tmp/loadgen" ./scripts/loadgen
PORT=$port DATA_DIR="$tmp/data" "$tmp/orchestrator" >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
"$tmp/loadgen" -url "http://127.0.0.1:$port/health" -n "$n" -c "$c" -max-time 60s
