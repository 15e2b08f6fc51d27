#!/usr/bin/env bash
# Fetch the libtorch that tch 0.22 (the `tch` feature) builds against, from the PyPI `torch`
# wheel it expects, into DEST (default: ~/.cache/stilts/libtorch-2.9.0), and print the directory
# to give as LIBTORCH. No network besides PyPI; idempotent.
#
#   scripts/fetch_libtorch.sh [DEST]          headers only (enough for `cargo check`)
#   scripts/fetch_libtorch.sh --lib [DEST]    headers and the shared libraries (to link and run;
#                                             the wheel's CUDA libraries come from PyPI's nvidia-*
#                                             packages: `pip install torch==2.9.0` for those)
set -euo pipefail
WITH_LIB=0
if [ "${1:-}" = "--lib" ]; then WITH_LIB=1; shift; fi
# The version torch-sys 0.22's build script checks (its TORCH_VERSION).
VERSION=2.9.0
DEST=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/stilts/libtorch-$VERSION}
LIBTORCH="$DEST/torch"
if [ -f "$LIBTORCH/include/torch/torch.h" ] && { [ $WITH_LIB = 0 ] || [ -d "$LIBTORCH/lib" ]; }; then
    echo "$LIBTORCH"
    exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check \
    --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
    "torch==$VERSION" -d "$WORK" >&2
WHEEL=$(ls "$WORK"/torch-"$VERSION"-*.whl)
python3 - "$WHEEL" "$WORK/unz" "$WITH_LIB" <<'PY'
import sys, zipfile
wheel, out, with_lib = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
prefixes = ("torch/include/", "torch/lib/") if with_lib else ("torch/include/",)
with zipfile.ZipFile(wheel) as z:
    z.extractall(out, [n for n in z.namelist() if n.startswith(prefixes)])
PY
echo "$VERSION" > "$WORK/unz/torch/build-version"
mkdir -p "$DEST"
rm -rf "$LIBTORCH.tmp" && mv "$WORK/unz/torch" "$LIBTORCH.tmp"
rm -rf "$LIBTORCH" && mv "$LIBTORCH.tmp" "$LIBTORCH"
echo "$LIBTORCH"
