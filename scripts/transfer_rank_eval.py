#!/usr/bin/env python3
"""Judges `stilts rank`'s methods against the measured transfer matrix (issue 18).

After `cargo xtask reproduce transfer --scale cpu`, ranks every target's candidates with each
method (ESM-LogME and LogME of tuned features read the grid's own intermediate models), judged
against the grid's `transfer.csv` with `--matrix`, and writes, under the output directory:

- `rank-<target>.json`: `stilts rank --json` for the target (rankings, costs, evaluation);
- `rank.md`: per method and target, Spearman, NDCG@3, regret@1 and regret@3 with their 95%
  intervals over restarts, the mean over targets, and each method's cost.

Standard library only; run from the checkout with the variables the grid used:

    python3 scripts/transfer_rank_eval.py [--grid runs/grids/transfer-cpu] \
        [--out docs/results/transfer-cpu] [--max-examples 500]

`$STILTS_BIN` names the stilts binary (default target/release/stilts); `$STILTS_MINILM_DIR`
the base encoder; `$STILTS_EXTRA_DIR` the subsets. The grid's generated Real/Fake data is
offered beside them through a temporary data root of links.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

METHODS = ["semb", "esm-logme", "logme-tuned", "size", "random"]
TARGETS = ["RTE", "MRPC", "STS-B", "CoLA"]


def intermediates(grid_file):
    """(name, task reference) of the cpu scale's intermediates, as the grid names them."""
    grid = tomllib.loads(Path(grid_file).read_text())
    return [(i["name"], i["task"]) for i in grid["scale"]["cpu"]["intermediates"]]


def tuned_models(grid_dir):
    """Intermediate name -> its run's saved model directory."""
    found = {}
    for run in glob.glob(f"{grid_dir}/runs/*/run.json"):
        meta = json.loads(Path(run).read_text())["meta"]
        if meta["kind"] != "intermediate":
            continue
        models = glob.glob(f"{Path(run).parent}/0*/seed-*/model")
        if models:
            found[meta["condition"]] = models[0]
    return found


def data_root(grid_dir, tmp):
    """$STILTS_EXTRA_DIR's entries and the grid's generated data, linked into one root."""
    root = Path(tmp) / "extra"
    root.mkdir()
    for base in [os.environ["STILTS_EXTRA_DIR"], f"{grid_dir}/data"]:
        for entry in Path(base).iterdir():
            link = root / entry.name
            if not link.exists():
                link.symlink_to(entry.resolve())
    return root


def rank(stilts, target, candidates, tuned, matrix, args, env):
    cmd = [
        stilts, "rank", "--model", os.environ["STILTS_MINILM_DIR"], "--target", target,
        "--candidates", ",".join(ref for _, ref in candidates),
        "--methods", ",".join(METHODS), "--matrix", str(matrix),
        "--max-examples", str(args.max_examples), "--max-seq-len", "64", "--json",
    ]
    for name, ref in candidates:
        cmd += ["--tuned", f"{ref}={tuned[name]}"]
    print(" ".join(cmd[:6]), "...", file=sys.stderr)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout)


def fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def cell(q, key):
    value = q.get(key)
    interval = (q.get("intervals") or {}).get(key)
    if interval is None:
        return fmt(value)
    return f"{fmt(value)} [{fmt(interval[0])}, {fmt(interval[1])}]"


def table(results):
    lines = [
        "| method | target | Spearman | NDCG@3 | regret@1 (%) | regret@3 (%) | seconds |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    means = {}
    for target, result in results.items():
        for evaluation in result["evaluation"]:
            for q in evaluation["methods"]:
                lines.append(
                    f"| {q['method']} | {target} | {cell(q, 'spearman')} | {cell(q, 'ndcg_at_3')} "
                    f"| {cell(q, 'regret_at_1')} | {cell(q, 'regret_at_3')} | {q['seconds']:.0f} |"
                )
                m = means.setdefault(q["method"], {k: [] for k in
                                                   ["spearman", "ndcg_at_3", "regret_at_1", "regret_at_3", "seconds"]})
                for k in m:
                    if q.get(k) is not None:
                        m[k].append(q[k])
    lines += ["", "Mean over targets:", "",
              "| method | Spearman | NDCG@3 | regret@1 (%) | regret@3 (%) | seconds (all targets) |",
              "|---|---:|---:|---:|---:|---:|"]
    for method, m in means.items():
        avg = lambda k: sum(m[k]) / len(m[k]) if m[k] else None
        lines.append(
            f"| {method} | {fmt(avg('spearman'))} | {fmt(avg('ndcg_at_3'))} | {fmt(avg('regret_at_1'))} "
            f"| {fmt(avg('regret_at_3'))} | {sum(m['seconds']):.0f} |"
        )
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default="runs/grids/transfer-cpu")
    ap.add_argument("--grid-file", default="configs/grids/transfer.toml")
    ap.add_argument("--out", default="docs/results/transfer-cpu")
    ap.add_argument("--max-examples", type=int, default=500)
    args = ap.parse_args()
    stilts = os.environ.get("STILTS_BIN", "target/release/stilts")
    matrix = Path(args.grid) / "reports" / "transfer.csv"
    names = intermediates(args.grid_file)
    tuned = tuned_models(args.grid)
    missing = [n for n, _ in names if n not in tuned]
    if missing:
        sys.exit(f"intermediate runs without a saved model: {missing}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, STILTS_EXTRA_DIR=str(data_root(args.grid, tmp)))
        for target in TARGETS:
            candidates = [(n, ref) for n, ref in names if n != target]
            results[target] = rank(stilts, target, candidates, tuned, matrix, args, env)
            (out / f"rank-{target}.json").write_text(json.dumps(results[target], indent=1) + "\n")
    (out / "rank.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
