#!/usr/bin/env bash
# Encoder speed on a CUDA GPU: builds with the cuda feature and prints
# sentences/s at batch 1, at batch 32, 128 and 512, and through the batcher.
# Prepared for a GPU machine (target for all-MiniLM-L6-v2 on an H200:
# 20,000 sentences/s); needs nvcc and the CUDA runtime libraries.
#
# Usage: scripts/bench-gpu.sh [MODEL_DIR] [TEXTS_FILE]
# Environment: CUDA_COMPUTE_CAP (default 90 for H100/H200, 80 with nvcc before
# 12.0), DEVICE (cuda:0).
set -euo pipefail
cd "$(dirname "$0")/.."

model=${1:-target/test-models/all-MiniLM-L6-v2}
texts=${2:-}
# candle's kernels build as PTX for compute_${CUDA_COMPUTE_CAP}, and for 90 that is
# compute_90a, which nvcc before 12.0 rejects. PTX for 80 also runs on an H200,
# compiled by the driver when the binary starts.
if [[ -z "${CUDA_COMPUTE_CAP:-}" ]]; then
    nvcc_major=$(nvcc --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
    if [[ "${nvcc_major:-0}" -ge 12 ]]; then
        CUDA_COMPUTE_CAP=90
    else
        CUDA_COMPUTE_CAP=80
        echo "nvcc ${nvcc_major:-?}.x cannot build for compute_90a; building the kernels for 80" >&2
    fi
fi
export CUDA_COMPUTE_CAP

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if [[ ! -f "$model/model.safetensors" ]]; then
    scripts/fetch-test-model.sh target/test-models
fi

# Large batches need many texts: repeat the chosen ones to at least 50,000.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -z "$texts" ]]; then
    python3 -c '
import json, pathlib, sys
path = pathlib.Path("../shared/data/clinc150/data_full.json")
lines = [p[0] for p in json.loads(path.read_text())["test"]] if path.is_file() else ["where is my parcel", "我想退款"]
sys.stdout.write("\n".join(lines) + "\n")' > "$work/base.txt"
    texts="$work/base.txt"
fi
while [[ $(wc -l < "$work/texts.txt" 2>/dev/null || echo 0) -lt 50000 ]]; do
    cat "$texts" >> "$work/texts.txt"
done

cargo build --release -p lepton-encoder --features cuda --example bench
target/release/examples/bench "$model" "$work/texts.txt" --device "${DEVICE:-cuda:0}" --batches 32,128,512
