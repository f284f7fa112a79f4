#!/usr/bin/env bash
# Measures the demo bot through the REST API with the Redis session store:
# turns per second and latency at concurrency 16 and 64, on one server and on
# two servers sharing one Redis, next to the embedded store on one server and
# to redis-benchmark on the same machine as the ceiling.
# Usage: scripts/bench-redis.sh [SECONDS]
# Needs wrk and redis-server (apt-get install wrk redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
redis_port=16390
ports=(18191 18192)

cargo build --release --quiet
bin=target/release/lepton
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" train demo --data-dir "$work/data" >/dev/null 2>&1
"$bin" index demo --data-dir "$work/data" >/dev/null 2>&1
redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >/dev/null
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.05; done

echo "== redis-benchmark (the ceiling): 16 and 64 clients =="
for clients in 16 64; do
    redis-benchmark -p "$redis_port" -q -n 200000 -c "$clients" -t set,get | tr '\r' '\n' | grep "requests per second" | sed "s/^/c$clients /"
done

# Starts a server with the given --store; waits until it is ready.
start() {
    local port="$1" store="$2"
    # wrk sends from one address as fast as it can; the rate limits would measure themselves.
    LEPTON_LOG=warn LEPTON_WEB_RATE_LIMIT_ADDRESS=off LEPTON_WEB_RATE_LIMIT_CONVERSATION=off LEPTON_REDIS_KEY_PREFIX=bench "$bin" serve demo --port "$port" --demo-orders --no-watch \
        --data-dir "$work/data" --store "$store" > "$work/stdout-$port" &
    pids+=($!)
    until grep -q "ready" "$work/stdout-$port" 2>/dev/null; do sleep 0.01; done
}

stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    pids=()
}

# Runs wrk against one port with a conversation prefix; prints the summary.
load() {
    local port="$1" connections="$2" prefix="$3"
    BENCH_PREFIX="$prefix" wrk -t2 -c"$connections" -d"${duration}s" --latency -s scripts/turns.lua "http://127.0.0.1:$port/" \
        | grep -E "Requests/sec|99%|Non-2xx|Socket errors" | sed "s/^/$prefix /"
}

echo "== embedded store, one server =="
start "${ports[0]}" "$work/sessions.redb"
for connections in 16 64; do
    echo "-- concurrency $connections"
    load "${ports[0]}" "$connections" embedded
done
stop_all

echo "== redis store, one server =="
start "${ports[0]}" "redis://127.0.0.1:$redis_port"
for connections in 16 64; do
    echo "-- concurrency $connections"
    load "${ports[0]}" "$connections" one
done
stop_all

echo "== redis store, two servers (half the connections each, run at once) =="
start "${ports[0]}" "redis://127.0.0.1:$redis_port"
start "${ports[1]}" "redis://127.0.0.1:$redis_port"
for connections in 16 64; do
    echo "-- concurrency $connections in total"
    half=$(( connections / 2 ))
    load "${ports[0]}" "$half" two-a > "$work/a.txt" &
    wrk_a=$!
    load "${ports[1]}" "$half" two-b > "$work/b.txt"
    wait "$wrk_a"
    cat "$work/a.txt" "$work/b.txt"
done
stop_all
