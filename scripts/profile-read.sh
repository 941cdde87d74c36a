#!/usr/bin/env bash
# Profiles the local server's read path under make bench's load: builds it
# with -tags pprof, starts it as the bench does (simulators answering at
# once, RATE_LIMIT_PER_MINUTE=500000, its log to a file), creates one
# deployment, then loads PATHS (GET /v1/deployments/{id} by default) with
# scripts/loadgen (16 clients, bounded in count and time, loopback only)
# while it takes the CPU, allocation, block and mutex profiles, and prints
# the top entries of each.
#
#   scripts/profile-read.sh [OUT_DIR]        (TARGET=health for /health)
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT="${1:-$(mktemp -d /tmp/profile-read.XXXXXX)}"
mkdir -p "$OUT"
TARGET="${TARGET:-get}"
SECONDS_CPU="${SECONDS_CPU:-8}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
PPROF=$(free_port)
KEY=bench-key-0123456789
go build -tags pprof -o "$OUT/server" ./functions/local
go build -o "$OUT/loadgen" ./scripts/loadgen
env HOST=127.0.0.1 PORT="$PORT" DATA_DIR="$OUT/data" API_KEYS="$KEY" WEBHOOK_ALLOW_PRIVATE=1 \
	RATE_LIMIT_PER_MINUTE=500000 SIMULATE=1 SIMULATE_BOOT_DELAY=0s PPROF_PORT="$PPROF" \
	"$OUT/server" >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -fsS "$BASE/health" >/dev/null 2>&1 && break; sleep 0.1; done
ID=$(curl -fsS -X POST "$BASE/v1/deployments" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
	-d '{"hf_model_id":"stabilityai/sdxl-turbo","user_runpod_key":"rpa_bench","user_webhook_url":"http://127.0.0.1:9/hook"}' |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["deployment_id"])')
for _ in $(seq 300); do
	curl -fsS "$BASE/v1/deployments/$ID" -H "Authorization: Bearer $KEY" | grep -q '"status":"ready"' && break
	sleep 0.1
done
URL="$BASE/v1/deployments/$ID"
[ "$TARGET" = health ] && URL="$BASE/health"
load() { "$OUT/loadgen" -url "$URL" -H "Authorization: Bearer $KEY" -c 16 -n 1000000 -max-time "$1"; }
load 2s >/dev/null # warm-up
load "$((SECONDS_CPU + 2))s" >"$OUT/load-cpu.txt" &
LOAD=$!
sleep 1
curl -fsS "http://127.0.0.1:$PPROF/debug/pprof/profile?seconds=$SECONDS_CPU" -o "$OUT/cpu.pprof"
wait "$LOAD"
# allocs, block and mutex: the difference over a loaded window (seconds=).
load 8s >"$OUT/load-other.txt" &
LOAD=$!
PIDS=()
for p in allocs block mutex; do
	curl -fsS "http://127.0.0.1:$PPROF/debug/pprof/$p?seconds=5" -o "$OUT/$p.pprof" &
	PIDS+=($!)
done
wait "${PIDS[@]}" "$LOAD"
cat "$OUT/load-cpu.txt" "$OUT/load-other.txt"
echo "== CPU (flat)";   go tool pprof -top -nodecount=25 "$OUT/server" "$OUT/cpu.pprof" 2>/dev/null | sed -n '1,32p'
echo "== CPU (cum)";    go tool pprof -top -cum -nodecount=40 "$OUT/server" "$OUT/cpu.pprof" 2>/dev/null | sed -n '6,47p'
echo "== allocs (alloc_space)"; go tool pprof -top -sample_index=alloc_space -nodecount=20 "$OUT/server" "$OUT/allocs.pprof" 2>/dev/null | sed -n '1,27p'
echo "== block";        go tool pprof -top -nodecount=12 "$OUT/server" "$OUT/block.pprof" 2>/dev/null | sed -n '1,19p'
echo "== mutex";        go tool pprof -top -nodecount=12 "$OUT/server" "$OUT/mutex.pprof" 2>/dev/null | sed -n '1,19p'
echo "profiles in $OUT"
