#!/usr/bin/env bash
# Parameter-efficient STILTs on real data at CPU scale (docs/results.md, "Parameter-efficient
# STILTs"): MiniLM on a target in the 1k regime, alone and after 3k MNLI-subset examples
# (configs/experiments/cpu_rte_1k.toml and cpu_mnli_rte_1k.toml with the target swapped in),
# training the whole encoder, LoRA (r 8, alpha 16, query and value) or Houlsby adapters
# (reduction 16), RESTARTS seeds each (default 1).
#
#   TARGETS="RTE STS-B" CHAINS="alone mnli" RESTARTS=1 scripts/peft_cpu_runs.sh
#
# Needs GLUE_DIR, STILTS_EXTRA_DIR and STILTS_MINILM_DIR (or a network for the hub id); writes
# runs/peft/<target>-<chain>-<condition>/ and prints one line per experiment: target, chain,
# condition, the dev score of each seed, and the run's wall seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
RESTARTS=${RESTARTS:-1}
TARGETS=${TARGETS:-RTE}
CHAINS=${CHAINS:-alone mnli}
STILTS=${STILTS:-target/release/stilts}
# Each condition's --set values, separated by |.
declare -A RECIPE=(
    [full]='recipe.lr=5e-5'
    [lora]='recipe.lr=5e-4|recipe.lora={ r = 8, alpha = 16 }'
    [houlsby]='recipe.lr=5e-4|recipe.adapter={ preset = "houlsby", reduction_factor = 16 }'
)
declare -A EXPERIMENT=([alone]=cpu_rte_1k [mnli]=cpu_mnli_rte_1k)
declare -A LAST=([alone]=0 [mnli]=1)
for target in $TARGETS; do
    for chain in $CHAINS; do
        for condition in full lora houlsby; do
            out="runs/peft/$target-$chain-$condition"
            last=${LAST[$chain]}
            args=(--set "output_dir=$out" --set "phases.$last.restarts=$RESTARTS"
                --set "phases.$last.name=${target,,}"
                --set "phases.$last.tasks=[{ task = \"$target\", train_examples = 1000 }]")
            IFS='|' read -ra sets <<< "${RECIPE[$condition]}"
            for s in "${sets[@]}"; do args+=(--set "$s"); done
            "$STILTS" run "configs/experiments/${EXPERIMENT[$chain]}.toml" "${args[@]}" --quiet
            scores=$(for f in "$out/0$last-${target,,}"/seed-*/result.json; do
                python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print("%.4f (%.0f s)" % (r["dev_score"], r["wall_s"]))' "$f"
            done | paste -sd' ')
            echo "$target $chain $condition $scores"
        done
    done
done
