#!/usr/bin/env bash
# Soak run of the demo bot on the Redis store: MINUTES (default 30) of steady
# traffic while server A and Redis are restarted every few minutes; reports lost
# turns, duplicated replies, p99 latency and memory per minute. Not part of CI.
# Usage: scripts/soak.sh [MINUTES] [OUT]   (OUT defaults to target/soak)
# SOAK_BINARY=PATH runs that lepton binary instead of building one.
# Extra options after OUT go to scripts/soak.py (--rate, --think,
# --server-restart, --redis-restart; see scripts/soak.py --help).
# Needs python3 and redis-server (apt-get install redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-30}"
out="${2:-target/soak}"
shift $(( $# < 2 ? $# : 2 ))

# Server logs and Redis's AOF stay in OUT/work for a look after the run.
work="$out/work"
rm -rf "$work"
mkdir -p "$work"
if [ -z "${SOAK_BINARY:-}" ]; then
    cargo build --release --locked --quiet
fi
# A copy, so that a rebuild during the run does not change what restarts run.
cp "${SOAK_BINARY:-target/release/lepton}" "$work/lepton"
bin="$(cd "$work" && pwd)/lepton"

"$bin" train demo --data-dir "$work/data" >/dev/null 2>&1
"$bin" index demo --data-dir "$work/data" >/dev/null 2>&1
python3 scripts/soak.py --binary "$bin" --data-dir "$work/data" --work "$work" --out "$out" --minutes "$minutes" "$@"
