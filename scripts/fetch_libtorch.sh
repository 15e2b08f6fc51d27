#!/usr/bin/env bash
# Fetch the headers of the libtorch that tch 0.22 (the `tch` feature) builds against, from the
# PyPI `torch` wheel it expects, into DEST (default: ~/.cache/stilts/libtorch-2.9.0), and print
# the directory to give as LIBTORCH: enough for `cargo check --features tch` (what CI runs). No
# network besides PyPI; idempotent.
#
# To link and run the tch backend, use the whole wheel instead: `pip install torch==2.9.0` in a
# venv (its CUDA libraries come as PyPI packages beside it, found through the wheel's rpath), then
# LIBTORCH=$VENV/lib/python3.11/site-packages/torch and LD_LIBRARY_PATH=$LIBTORCH/lib.
set -euo pipefail
# The version torch-sys 0.22's build script checks (its TORCH_VERSION).
VERSION=2.9.0
DEST=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/stilts/libtorch-$VERSION}
LIBTORCH="$DEST/torch"
if [ -f "$LIBTORCH/include/torch/torch.h" ] && [ -f "$LIBTORCH/build-version" ]; then
    echo "$LIBTORCH"
    exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check \
    --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
    "torch==$VERSION" -d "$WORK" >&2
WHEEL=$(ls "$WORK"/torch-"$VERSION"-*.whl)
python3 - "$WHEEL" "$WORK/unz" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    z.extractall(out, [n for n in z.namelist() if n.startswith("torch/include/")])
PY
# torch-sys checks this file against the version it expects.
echo "$VERSION" > "$WORK/unz/torch/build-version"
mkdir -p "$DEST"
rm -rf "$LIBTORCH.tmp" && mv "$WORK/unz/torch" "$LIBTORCH.tmp"
rm -rf "$LIBTORCH" && mv "$LIBTORCH.tmp" "$LIBTORCH"
echo "$LIBTORCH"
