#!/usr/bin/env bash
# Measures the demo bot through the REST API with wrk on loopback: turns per
# second and latency at concurrency 1 and 16, time to ready, memory (RSS).
# Usage: scripts/bench-turns.sh [SECONDS]   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
port=18181

cargo build --release --quiet
bin=target/release/lepton
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "== training and indexing (release) =="
/usr/bin/time -f "train: %e s wall, %M KB max RSS" "$bin" train demo --data-dir "$work/data" 2>&1 | grep -v INFO
"$bin" index demo --data-dir "$work/data" 2>&1 | grep -v INFO

echo "== start to ready =="
start_ns=$(date +%s%N)
# wrk sends from one address as fast as it can; the rate limits would measure themselves.
LEPTON_LOG=warn LEPTON_WEB_RATE_LIMIT_ADDRESS=off LEPTON_WEB_RATE_LIMIT_CONVERSATION=off "$bin" serve demo --port "$port" --demo-orders --no-watch \
    --data-dir "$work/data" --store "$work/sessions.redb" > "$work/stdout" &
pid=$!
until grep -q "ready" "$work/stdout" 2>/dev/null; do sleep 0.005; done
ready_ns=$(date +%s%N)
echo "ready after $(( (ready_ns - start_ns) / 1000000 )) ms (process start to ready line)"
grep VmRSS "/proc/$pid/status" | sed 's/^/idle /'

for connections in 1 16; do
    threads=$(( connections < 2 ? 1 : 2 ))
    echo "== concurrency $connections =="
    wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s scripts/turns.lua "http://127.0.0.1:$port/" \
        | grep -E "Requests/sec|Latency|50%|90%|99%|requests in|Non-2xx"
    grep -E "VmRSS|VmHWM" "/proc/$pid/status"
done
