#!/usr/bin/env python3
"""Judges `stilts rank`'s methods against the measured transfer matrix (issue 18).

After `cargo xtask reproduce transfer --scale cpu`, ranks every target's candidates with each
method (ESM-LogME and LogME of tuned features read the grid's own intermediate models), judged
against the grid's `transfer.csv` with `--matrix`, and writes, under the output directory:

- `rank-<target>.json`: `stilts rank --json` for the target (rankings, costs, evaluation);
- `rank.md`: per method and target, Spearman, NDCG@3, regret@1 and regret@3 with their 95%
  intervals over restarts, the mean over targets, and each method's cost; then what
  `stilts select --top-k K` would have got on the matrix with each method's ranking (the best
  of the baseline and the top K candidates' measured STILTs scores), its regret against the
  best cell of the target's column, and its cost against the grid's: ranking seconds plus the
  wall time of the runs it trains, read from the grid's own runs.

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
        if meta["kind"] != "intermediate" or meta.get("method", "full") != "full":
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


def portable(text):
    """Machine paths in `text` as the variables that name them, the checkout's as relative."""
    cache = os.environ.get("STILTS_CACHE") or os.path.expanduser("~/.cache/stilts")
    for name, value in [("$STILTS_MINILM_DIR", os.environ.get("STILTS_MINILM_DIR")),
                        ("$STILTS_CACHE", cache), ("", os.getcwd() + "/")]:
        if value:
            text = text.replace(value, name)
    return text


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


def grid_runs(grid_dir):
    """Every finished run of full fine-tuning: (kind, condition, target, wall seconds)."""
    runs = []
    for run in glob.glob(f"{grid_dir}/runs/*/run.json"):
        meta = json.loads(Path(run).read_text())["meta"]
        if meta.get("method", "full") != "full":
            continue
        results = glob.glob(f"{Path(run).parent}/0*/seed-*/result.json")
        if results:
            wall = json.loads(Path(results[0]).read_text())["wall_s"]
            runs.append((meta["kind"], meta["condition"], meta.get("target"), wall))
    return runs


def matrix_scores(matrix):
    """(target, intermediate name) -> STILTs score, and target -> baseline score."""
    import csv
    stilts, baseline = {}, {}
    with open(matrix) as f:
        for row in csv.DictReader(f):
            if row["status"] != "done":
                continue
            stilts[(row["target"], row["intermediate"])] = float(row["stilts"])
            baseline[row["target"]] = float(row["baseline"])
    return stilts, baseline


def select_table(results, names_by_target, grid_dir, matrix, k):
    """What `select --top-k k` gets per method and target, from the measured matrix."""
    stilts, baseline = matrix_scores(matrix)
    runs = grid_runs(grid_dir)
    inter_s = {c: w for kind, c, _, w in runs if kind == "intermediate"}
    totals = {}
    lines = [
        f"| method | target | picks (top {k}) | chosen | best | regret (%) | select s | grid s | saved |",
        "|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for target, result in results.items():
        names = names_by_target[target]
        target_s = {}
        for kind, c, t, w in runs:
            if kind == "target" and t == target:
                target_s[c] = target_s.get(c, 0.0) + w
        grid_cost = sum(target_s.values()) + sum(inter_s.get(n, 0.0) for n in names)
        options = {"none": baseline[target]}
        options.update({n: stilts[(target, n)] for n in names if (target, n) in stilts})
        best = max(options, key=options.get)
        for method in result["methods"]:
            task_to_name = dict(zip([c["task"] for c in result["candidates"]], names))
            order = [task_to_name[r["candidate"]] for r in sorted(method["ranking"], key=lambda r: r["rank"])]
            picks = order[:k]
            tried = {"none": options["none"]}
            tried.update({n: options[n] for n in picks if n in options})
            chosen = max(tried, key=tried.get)
            regret = 100.0 * (options[best] - tried[chosen]) / abs(options[best])
            # Ranking by tuned encoders (ESM-LogME, LogME-tuned) needs every candidate's
            # intermediate model; SEmb, size and random need none.
            needs_all = method["method"] in ("esm-logme", "logme-tuned")
            trained = names if needs_all else picks
            cost = (method["seconds"] + sum(inter_s.get(n, 0.0) for n in trained)
                    + sum(target_s.get(n, 0.0) for n in picks) + target_s.get("none", 0.0))
            t = totals.setdefault(method["method"], [[], 0.0, 0.0])
            t[0].append(regret)
            t[1] += cost
            t[2] += grid_cost
            lines.append(
                f"| {method['method']} | {target} | {', '.join(picks)} | {chosen} {100 * tried[chosen]:.1f} "
                f"| {best} {100 * options[best]:.1f} | {regret:.2f} | {cost:.0f} | {grid_cost:.0f} "
                f"| {100 * (1 - cost / grid_cost):.0f}% |"
            )
    lines += ["", "Over the targets:", "",
              "| method | mean regret (%) | median regret (%) | select s | grid s | saved |",
              "|---|---:|---:|---:|---:|---:|"]
    for method, (regrets, cost, grid_cost) in totals.items():
        median = sorted(regrets)[len(regrets) // 2] if len(regrets) % 2 else \
            sum(sorted(regrets)[len(regrets) // 2 - 1:len(regrets) // 2 + 1]) / 2
        lines.append(f"| {method} | {sum(regrets) / len(regrets):.2f} | {median:.2f} | {cost:.0f} "
                     f"| {grid_cost:.0f} | {100 * (1 - cost / grid_cost):.0f}% |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default="runs/grids/transfer-cpu")
    ap.add_argument("--grid-file", default="configs/grids/transfer.toml")
    ap.add_argument("--out", default="docs/results/transfer-cpu")
    ap.add_argument("--max-examples", type=int, default=500)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--targets", default=",".join(TARGETS),
                    help="comma-separated targets to rank (default: all four)")
    ap.add_argument("--reuse", action="store_true",
                    help="read rank-<target>.json already in --out instead of ranking again")
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
    results, names_by_target = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, STILTS_EXTRA_DIR=str(data_root(args.grid, tmp)))
        for target in args.targets.split(","):
            candidates = [(n, ref) for n, ref in names if n != target]
            names_by_target[target] = [n for n, _ in candidates]
            cached = out / f"rank-{target}.json"
            if args.reuse and cached.exists():
                results[target] = json.loads(cached.read_text())
                continue
            results[target] = rank(stilts, target, candidates, tuned, matrix, args, env)
            cached.write_text(portable(json.dumps(results[target], indent=1)) + "\n")
    text = table(results) + (
        f"\n`stilts select --top-k {args.top_k}` on the matrix (scores ×100 on dev; costs in "
        "seconds of the grid's own runs on this machine):\n\n"
    ) + select_table(results, names_by_target, args.grid, matrix, args.top_k)
    (out / "rank.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
