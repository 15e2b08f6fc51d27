#!/usr/bin/env bash
# Parameter-efficient STILTs on real data at CPU scale (docs/results.md, "Parameter-efficient
# STILTs"): MiniLM on RTE in the 1k regime, alone and after 3k MNLI-subset examples, training
# the whole encoder, LoRA (r 8, alpha 16, query and value) or Houlsby adapters (reduction 16),
# RESTARTS seeds each (default 1). Needs GLUE_DIR, STILTS_EXTRA_DIR and STILTS_MINILM_DIR (or a
# network for the hub id); writes runs/peft/<condition>_<experiment>/ and prints one line per
# experiment: the condition, the chain and the RTE dev accuracy of each seed.
set -euo pipefail
cd "$(dirname "$0")/.."
RESTARTS=${RESTARTS:-1}
STILTS=${STILTS:-target/release/stilts}
# Each condition's --set values, separated by |.
declare -A RECIPE=(
    [full]='recipe.lr=5e-5'
    [lora]='recipe.lr=5e-4|recipe.lora={ r = 8, alpha = 16 }'
    [houlsby]='recipe.lr=5e-4|recipe.adapter={ preset = "houlsby", reduction_factor = 16 }'
)
for condition in full lora houlsby; do
    for experiment in cpu_rte_1k cpu_mnli_rte_1k; do
        out="runs/peft/${condition}_${experiment}"
        last=$([ "$experiment" = cpu_rte_1k ] && echo 0 || echo 1)
        args=(--set "output_dir=$out" --set "phases.$last.restarts=$RESTARTS")
        IFS='|' read -ra sets <<< "${RECIPE[$condition]}"
        for s in "${sets[@]}"; do args+=(--set "$s"); done
        "$STILTS" run "configs/experiments/$experiment.toml" "${args[@]}" --quiet
        scores=$(for f in "$out/0$last-rte"/seed-*/result.json; do
            python3 -c 'import json, sys; print("%.4f" % json.load(open(sys.argv[1]))["dev_score"])' "$f"
        done | paste -sd' ')
        echo "$condition $experiment $scores"
    done
done
