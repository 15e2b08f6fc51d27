#!/usr/bin/env bash
# The GPU check (README, "Backends"; docs/benchmarks.md, "On a GPU"), in two halves:
#
#   scripts/device-check.sh prepare   here: builds the stripped wgpu binaries (the BERT bench
#                                     and the backend parity test) and downloads the Vulkan
#                                     loader packages into $STILTS_DEVICE_CHECK_DIR
#                                     (default target/device-check, about 34 MiB with
#                                     the binaries compressed)
#   scripts/device-check.sh run       on the GPU machine (no network, no Rust): parity of the
#                                     tiny BERT on each backend, then BERT-base and BERT-large,
#                                     inference and train step, f32 and bf16, stilts against
#                                     that machine's PyTorch (python3 with torch and
#                                     transformers), interleaved; writes device-check.md
#                                     and the raw records into $OUT (default
#                                     target/device-check-out)
#
# The device run carries the prepared directory (the device tool's `carry`) and the working tree
# (the fixtures and scripts/bench_bert_torch.py). It stops starting measurements once
# STILTS_DEVICE_CHECK_BUDGET_S seconds (default 420) have passed, so it ends within 8 minutes,
# and names in the table what it skipped.
#
# Settings: STILTS_DEVICE_CHECK_DEVICE (the stilts side's device, default `wgpu`),
# STILTS_DEVICE_CHECK_TORCH_DEVICE (`cuda` where nvidia-smi sees a GPU, else `cpu`),
# STILTS_DEVICE_CHECK_SHAPES (default "base large"), STILTS_DEVICE_CHECK_ROUNDS (default 2),
# STILTS_DEVICE_CHECK_FEATURES (prepare: the stilts-models features, default `wgpu`; empty
# builds the CPU backend alone, which is how the script is rehearsed without a GPU:
# `STILTS_DEVICE_CHECK_FEATURES= scripts/device-check.sh prepare` then
# `STILTS_DEVICE_CHECK_DEVICE=cpu STILTS_DEVICE_CHECK_SHAPES=minilm scripts/device-check.sh run`).
#
# The tch backend is not part of it: tch 0.22 needs libtorch 2.9, the GPU machine has torch
# 2.11, and 2.9's CUDA libraries exceed what a run can carry (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STAGE=${STILTS_DEVICE_CHECK_DIR:-$ROOT/target/device-check}
FEATURES=${STILTS_DEVICE_CHECK_FEATURES-wgpu}
# Debian's Vulkan loader and what NVIDIA's Vulkan driver (libGLX_nvidia) loads beside it.
DEBS="libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libx11-6 libxext6 libxcb1 libxau6 libxdmcp6"

prepare() {
    rm -rf "$STAGE/bin" "$STAGE/debs"
    mkdir -p "$STAGE/bin" "$STAGE/debs"
    local target=$ROOT/target
    local features=()
    if [ -n "$FEATURES" ]; then
        target=$ROOT/target/backends # shared with `cargo xtask check-backends`
        features=(--features "stilts-models/$FEATURES")
    fi
    CARGO_TARGET_DIR=$target cargo build --release --locked -p stilts-models "${features[@]}" \
        --bench bert --test backend_parity --message-format=json-render-diagnostics \
        >"$STAGE/build.json"
    python3 - "$STAGE/build.json" "$STAGE/bin" <<'EOF'
import json, shutil, sys
found = {}
for line in open(sys.argv[1]):
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
        name = msg["target"]["name"]
        if name in ("bert", "backend_parity"):
            found[name] = msg["executable"]
if set(found) != {"bert", "backend_parity"}:
    sys.exit(f"cargo built {sorted(found)}, expected bert and backend_parity")
shutil.copy(found["bert"], f"{sys.argv[2]}/bert-bench")
shutil.copy(found["backend_parity"], f"{sys.argv[2]}/backend-parity")
EOF
    strip "$STAGE/bin/bert-bench" "$STAGE/bin/backend-parity"
    # 88 MiB each with wgpu, 16 MiB each compressed: a run carries at most 64 MiB.
    xz -T0 -6 -f "$STAGE/bin/bert-bench" "$STAGE/bin/backend-parity"
    rm -f "$STAGE/build.json"
    if [ -n "$FEATURES" ]; then
        (cd "$STAGE/debs" && rm -f ./*.deb && { apt-get download $DEBS >/dev/null 2>&1 ||
            { apt-get update -qq && apt-get download $DEBS >/dev/null; }; })
    fi
    git rev-parse --short HEAD >"$STAGE/commit" 2>/dev/null || echo unknown >"$STAGE/commit"
    echo "$FEATURES" >"$STAGE/features"
    du -sh "$STAGE" | cut -f1 | xargs echo "prepared $STAGE:"
}

# Unpacks the carried packages' libraries that this machine lacks, and points the Vulkan loader
# at NVIDIA's driver when the container has the driver's library but no ICD file for it.
vulkan_setup() {
    local prefix=$WORK/root lib
    rm -rf "$prefix" && mkdir -p "$prefix"
    # A .deb is an ar archive holding data.tar.*: unpacked with Python alone (no dpkg needed).
    python3 - "$prefix" "$STAGE"/debs/*.deb <<'EOF'
import io, sys, tarfile
for deb in sys.argv[2:]:
    try:
        data = open(deb, "rb").read()
    except FileNotFoundError:
        continue
    pos = 8
    while pos + 60 <= len(data):
        name = data[pos:pos + 16].decode().strip().rstrip("/")
        size = int(data[pos + 48:pos + 58].decode().strip())
        pos += 60
        if name.startswith("data.tar"):
            tarfile.open(fileobj=io.BytesIO(data[pos:pos + size])).extractall(sys.argv[1])
        pos += size + size % 2
EOF
    lib=$prefix/usr/lib/x86_64-linux-gnu
    if [ -d "$lib" ]; then
        for so in "$lib"/*.so.*; do
            if ldconfig -p | awk '{print $1}' | grep -qxF "$(basename "$so")"; then rm -f "$so"; fi
        done
        export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    fi
    local icd
    for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
        if [ -e "$icd" ]; then
            echo "Vulkan ICD: $icd"
            return
        fi
    done
    if ldconfig -p | grep -q libGLX_nvidia.so.0; then
        mkdir -p "$prefix/icd"
        cat >"$prefix/icd/nvidia_icd.json" <<'EOF'
{"file_format_version": "1.0.0",
 "ICD": {"library_path": "libGLX_nvidia.so.0", "api_version": "1.3.0"}}
EOF
        export VK_ICD_FILENAMES=$prefix/icd/nvidia_icd.json
        echo "Vulkan ICD: written for libGLX_nvidia.so.0"
    else
        echo "Vulkan ICD: none (NVIDIA_DRIVER_CAPABILITIES=${NVIDIA_DRIVER_CAPABILITIES:-unset}; wgpu needs 'graphics')"
    fi
}

run() {
    local out=${OUT:-$ROOT/target/device-check-out}
    mkdir -p "$out"
    # The unpacked binaries and libraries go to a scratch directory, never into $STAGE (which
    # is carried).
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
    python3 - "$STAGE" "$WORK" <<'EOF'
import lzma, os, sys
stage, work = sys.argv[1], sys.argv[2]
for name in ("bert-bench", "backend-parity"):
    with lzma.open(f"{stage}/bin/{name}.xz") as src, open(f"{work}/{name}", "wb") as dst:
        dst.write(src.read())
    os.chmod(f"{work}/{name}", 0o755)
EOF
    local start=$SECONDS budget=${STILTS_DEVICE_CHECK_BUDGET_S:-420}
    local device=${STILTS_DEVICE_CHECK_DEVICE:-wgpu}
    local torch_device=${STILTS_DEVICE_CHECK_TORCH_DEVICE:-}
    if [ -z "$torch_device" ]; then
        if nvidia-smi -L >/dev/null 2>&1; then torch_device=cuda; else torch_device=cpu; fi
    fi
    local records=$out/device-check.jsonl
    : >"$records"
    {
        echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
        echo "commit: $(cat "$STAGE/commit" 2>/dev/null || echo unknown)"
        echo "features: $(cat "$STAGE/features" 2>/dev/null || echo unknown)"
        echo "stilts device: $device; torch device: $torch_device"
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null |
            sed 's/^/gpu: /' || true
        echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
        python3 -c 'import torch, transformers; print("torch:", torch.__version__, "transformers:", transformers.__version__)' 2>&1 | tail -1
    } >"$out/env.txt"
    [ "$device" = cpu ] || vulkan_setup | tee -a "$out/env.txt"

    echo "== parity: the tiny BERT against Hugging Face's fixture on cpu and $device"
    STILTS_FIXTURES_DIR=$ROOT/crates/stilts-models/tests/fixtures STILTS_TEST_DEVICES=cpu,$device \
        timeout 240 "$WORK/backend-parity" --test-threads 1 --nocapture >"$out/parity.txt" 2>&1 &&
        echo "parity: passed" >>"$out/parity.txt" || echo "parity: FAILED (exit $?)" >>"$out/parity.txt"
    grep -E "^[a-z0-9:-]+: logits max abs diff|^parity: |panicked" "$out/parity.txt" || true

    local rounds=${STILTS_DEVICE_CHECK_ROUNDS:-2} shapes=${STILTS_DEVICE_CHECK_SHAPES:-base large}
    local r shape what precision side iters
    for r in $(seq 1 "$rounds"); do
        for shape in $shapes; do
            for what in infer train; do
                for precision in f32 bf16; do
                    iters=10
                    [ "$what" = train ] && iters=5
                    [ "$device" = cpu ] && iters=2
                    # A B in odd rounds, B A in even ones.
                    local sides="stilts torch"
                    [ $((r % 2)) = 0 ] && sides="torch stilts"
                    for side in $sides; do
                        if ((SECONDS - start > budget)); then
                            echo "{\"side\":\"$side\",\"shape\":\"$shape\",\"what\":\"$what\",\"precision\":\"$precision\",\"round\":$r,\"skipped\":\"time budget\"}" >>"$records"
                            continue
                        fi
                        measure "$side" "$shape" "$what" "$precision" "$r" "$iters" "$device" "$torch_device" >>"$records"
                    done
                done
            done
        done
    done
    python3 "$ROOT/scripts/device_check_table.py" "$out" >"$out/device-check.md"
    cat "$out/device-check.md"
    echo "(${SECONDS}s)"
}

# One measurement in a child process: its JSON record on one line, or the failure.
measure() {
    local side=$1 shape=$2 what=$3 precision=$4 round=$5 iters=$6 device=$7 torch_device=$8
    local line status=0
    if [ "$side" = stilts ]; then
        line=$(RUST_BACKTRACE=0 STILTS_BENCH_DEVICE=$device STILTS_BENCH_PRECISION=$precision \
            timeout 180 "$WORK/bert-bench" --child "$what" "$shape" "$iters" 2>"$WORK/last.err") || status=$?
    else
        line=$(timeout 180 python3 "$ROOT/scripts/bench_bert_torch.py" --child "$what" --shape "$shape" \
            --iters "$iters" --device "$torch_device" --dtype "$precision" --threads "$(nproc)" \
            2>"$WORK/last.err") || status=$?
    fi
    line=$(printf '%s\n' "$line" | tail -1)
    if [ "$status" != 0 ] || [ "${line:0:1}" != "{" ]; then
        line="{\"error\": $(grep -v XDG_RUNTIME_DIR "$WORK/last.err" | tail -2 | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip() or "no output"))'), \"exit\": $status}"
    fi
    echo "{\"side\":\"$side\",\"shape\":\"$shape\",\"what\":\"$what\",\"precision\":\"$precision\",\"round\":$round,\"result\":$line}"
}

case "${1:-}" in
prepare) prepare ;;
run) run ;;
*)
    echo "usage: scripts/device-check.sh prepare|run (see the comment at its top)" >&2
    exit 2
    ;;
esac
