"""Reference for the paired bootstrap of `cargo xtask report` (`xtask/src/report/bootstrap.rs`).

Writes `xtask/tests/fixtures/bootstrap.json`: a few dev sets (gold labels and two systems'
predictions, drawn from a fixed numpy seed) with, for each, the GLUE task score of both systems
on the whole set and the paired bootstrap of `stilts - baseline` computed here with numpy and a
large number of resamples: the mean difference, the 2.5th/97.5th percentiles (numpy's default
linear interpolation), the standard deviation of the resampled differences and the fraction of
resamples where the second system scores strictly higher.

The two implementations cannot share resampling indices (different generators), so the Rust test
(`cargo test -p xtask --test report`) checks the point estimates exactly and the bootstrap
statistics to within a few Monte Carlo standard errors (tolerances derived from `sd`).

The metrics are written out here in numpy, as the GLUE definitions: accuracy; binary F1 of class
1 (0 when there are no positives at all); Matthews correlation over any number of classes
(sklearn's formula; 0 when predictions or gold are a single class); Pearson; Spearman as the
Pearson correlation of average ranks (correlations 0 for a constant vector). A task's score is
the mean of its metrics.

Only numpy is needed:

    python3 -m venv .venv/ref && .venv/ref/bin/pip install numpy
    .venv/ref/bin/python scripts/bootstrap_reference.py

(or plain `python3 scripts/bootstrap_reference.py` where numpy is installed). Re-running with
the same numpy version reproduces the file byte for byte.
"""

import json
import platform
from pathlib import Path

import numpy as np

SEED = 20181101
RESAMPLES = 20000
OUT = Path(__file__).resolve().parent.parent / "xtask/tests/fixtures/bootstrap.json"


def accuracy(p, g):
    return float(np.mean(p == g))


def f1(p, g):
    tp = int(np.sum((p == 1) & (g == 1)))
    fp = int(np.sum((p == 1) & (g != 1)))
    fn = int(np.sum((p != 1) & (g == 1)))
    d = 2 * tp + fp + fn
    return 0.0 if d == 0 else 2 * tp / d


def mcc(p, g, k):
    t = np.bincount(g, minlength=k).astype(np.float64)
    q = np.bincount(p, minlength=k).astype(np.float64)
    c = float(np.sum(p == g))
    s = float(len(p))
    cov_pp = s * s - float(np.dot(q, q))
    cov_tt = s * s - float(np.dot(t, t))
    if cov_pp == 0 or cov_tt == 0:
        return 0.0
    return (c * s - float(np.dot(t, q))) / np.sqrt(cov_pp * cov_tt)


def pearson(x, y):
    if np.all(x == x[0]) or np.all(y == y[0]):
        return 0.0
    dx = x - x.mean()
    dy = y - y.mean()
    return float(np.clip(np.sum(dx * dy) / np.sqrt(np.sum(dx * dx) * np.sum(dy * dy)), -1, 1))


def average_ranks(x):
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ends - (counts - 1) / 2.0
    return ranks[inverse]


def spearman(x, y):
    return pearson(average_ranks(x), average_ranks(y))


METRICS = {
    "accuracy": lambda p, g, k: accuracy(p, g),
    "f1": lambda p, g, k: f1(p, g),
    "mcc": mcc,
    "pearson": lambda p, g, k: pearson(p, g),
    "spearman": lambda p, g, k: spearman(p, g),
}


def task_score(metrics, p, g, k):
    return float(np.mean([METRICS[m](p, g, k) for m in metrics]))


def bootstrap(metrics, k, gold, base, stilts, rng):
    n = len(gold)
    diffs = np.empty(RESAMPLES)
    for b in range(RESAMPLES):
        idx = rng.integers(0, n, n)
        g = gold[idx]
        diffs[b] = task_score(metrics, stilts[idx], g, k) - task_score(metrics, base[idx], g, k)
    return {
        "mean": float(diffs.mean()),
        "low": float(np.percentile(diffs, 2.5)),
        "high": float(np.percentile(diffs, 97.5)),
        "sd": float(diffs.std(ddof=1)),
        "win": float(np.mean(diffs > 0)),
    }


def flip(gold, rate, k, rng):
    """Predictions equal to `gold` except a `rate` fraction replaced by another class."""
    wrong = rng.random(len(gold)) < rate
    other = (gold + rng.integers(1, k, len(gold))) % k
    return np.where(wrong, other, gold)


def dump(doc):
    """JSON with one key per line and each array on one line (diffable, still small)."""
    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in doc.items() if k != "cases")
    cases = ",\n".join(
        "  {\n" + ",\n".join(f"   {json.dumps(k)}: {json.dumps(v)}" for k, v in c.items()) + "\n  }"
        for c in doc["cases"]
    )
    return "{\n" + head + ',\n "cases": [\n' + cases + "\n ]\n}\n"


def main():
    rng = np.random.default_rng(SEED)
    cases = []

    def add(name, metrics, k, gold, base, stilts):
        if k == 0:
            as_list = lambda a: [repr(float(v)) for v in a]  # exact decimal strings
        else:
            as_list = lambda a: [int(v) for v in a]
        case = {
            "name": name,
            "metrics": metrics,
            "num_classes": k,
            "gold": as_list(gold),
            "baseline": as_list(base),
            "stilts": as_list(stilts),
            "baseline_score": task_score(metrics, base, gold, k),
            "stilts_score": task_score(metrics, stilts, gold, k),
        }
        case["diff"] = case["stilts_score"] - case["baseline_score"]
        case.update(bootstrap(metrics, k, gold, base, stilts, rng))
        cases.append(case)

    # MRPC-like: binary, F1 and accuracy, 68% positives.
    gold = (rng.random(400) < 0.68).astype(np.int64)
    add("mrpc", ["f1", "accuracy"], 2, gold, flip(gold, 0.22, 2, rng), flip(gold, 0.16, 2, rng))
    # CoLA-like: binary, MCC.
    gold = (rng.random(300) < 0.7).astype(np.int64)
    add("cola", ["mcc"], 2, gold, flip(gold, 0.25, 2, rng), flip(gold, 0.2, 2, rng))
    # MNLI-like: three classes, accuracy; STILTs slightly worse.
    gold = rng.integers(0, 3, 300)
    add("mnli", ["accuracy"], 3, gold, flip(gold, 0.2, 3, rng), flip(gold, 0.23, 3, rng))
    # STS-B-like: scores in [0, 5] on a 0.2 grid (ties), predictions to 3 decimals.
    gold = np.round(rng.uniform(0, 5, 200) * 5) / 5
    base = np.round(gold + rng.normal(0, 1.1, 200), 3)
    stilts = np.round(gold + rng.normal(0, 0.9, 200), 3)
    add("stsb", ["pearson", "spearman"], 0, gold, base, stilts)

    doc = {
        "generator": "scripts/bootstrap_reference.py",
        "seed": SEED,
        "resamples": RESAMPLES,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(dump(doc))
    print(f"wrote {OUT}")
    for c in cases:
        print(
            f"{c['name']}: diff {c['diff']:+.4f}, 95% [{c['low']:+.4f}, {c['high']:+.4f}], "
            f"P(win) {c['win']:.3f}"
        )


if __name__ == "__main__":
    main()
