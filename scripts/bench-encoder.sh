#!/usr/bin/env bash
# Measures the encoder and sentence-transformers (PyTorch, CPU) on the same
# model and texts in the same run, and prints both plus a comparison table.
#
# Usage: scripts/bench-encoder.sh [MODEL_DIR] [TEXTS_FILE]
#   MODEL_DIR   default target/test-models/all-MiniLM-L6-v2 (fetched if missing)
#   TEXTS_FILE  one text per line; default the CLINC150 test sentences
# Environment: PYTHON (a python with sentence-transformers, default python3),
#              THREADS (threads for both sides, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

model=${1:-target/test-models/all-MiniLM-L6-v2}
texts=${2:-}
python=${PYTHON:-python3}
threads=${THREADS:-2}

if [[ ! -f "$model/model.safetensors" ]]; then
    scripts/fetch-test-model.sh target/test-models
fi
cargo build --release --quiet -p lepton-encoder --example bench

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "== lepton-encoder (candle, packed CPU forward pass) =="
RAYON_NUM_THREADS=$threads target/release/examples/bench "$model" ${texts:+"$texts"} | tee "$out/rust.txt"
echo
echo "== sentence-transformers (PyTorch) =="
HF_HUB_OFFLINE=1 "$python" scripts/bench_encoder_reference.py "$model" ${texts:+"$texts"} --threads "$threads" \
    2> >(grep -v -e '^Loading weights' -e '^$' >&2) | tee "$out/python.txt"
echo
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# The three rows in order: batch 1, batch 32, concurrent callers.
rates() { grep 'sentences/s' "$1" | awk '{ for (i = 1; i <= NF; i++) if ($i == "sentences/s") print $(i - 1) }'; }
paste <(rates "$out/rust.txt") <(rates "$out/python.txt") | awk '
    BEGIN {
        split("batch 1 (sequential)|batch 32 (whole list)|64 concurrent callers", names, "|")
        printf "%-24s %14s %14s %8s\n", "sentences/s", "lepton", "PyTorch", "ratio"
    }
    { printf "%-24s %14.1f %14.1f %7.2fx\n", names[NR], $1, $2, $1 / $2 }'
