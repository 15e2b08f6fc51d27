"""Generate the golden fixtures for the GLUE metrics in `crates/stilts-data/src/metrics.rs`.

Writes `crates/stilts-data/tests/fixtures/metrics.json`: inputs plus the values of scikit-learn's
`accuracy_score`, `f1_score` (binary, pos_label=1, default zero_division) and `matthews_corrcoef`
for class predictions, and SciPy's `pearsonr` / `spearmanr` for real-valued scores. SciPy's NaN
(a constant input) is written as `null`; the Rust side returns 0.0 there by design. Float inputs
are written as shortest round-trip decimal strings, so that Rust's correctly rounded `str::parse`
reads back exactly the values SciPy saw (serde_json's default number parsing can be one ulp off,
which matters for inputs like 1e8 + noise). The inputs
come from a fixed numpy seed, so re-running with the same library versions reproduces the file
byte for byte. The versions used are recorded in the file.

Run it from the repository root, with a virtual environment outside the repository:

    python3 -m venv .venv/metrics
    .venv/metrics/bin/pip install numpy scipy scikit-learn
    .venv/metrics/bin/python scripts/make_metric_fixtures.py

then check it with `cargo test -p stilts-data --test metrics`.
"""

import json
import math
import platform
import sys
import warnings
from pathlib import Path

import numpy as np
import scipy
import sklearn
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

SEED = 20181101
OUT = Path(__file__).resolve().parent.parent / "crates/stilts-data/tests/fixtures/metrics.json"

rng = np.random.default_rng(SEED)
cases = []


def finite_or_none(x):
    x = float(x)
    return None if math.isnan(x) else x


def add_classes(name, pred, gold, num_classes):
    pred = [int(v) for v in pred]
    gold = [int(v) for v in gold]
    assert len(pred) == len(gold) > 0
    assert all(0 <= v < num_classes for v in pred + gold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = {
            "accuracy": float(accuracy_score(gold, pred)),
            "mcc": float(matthews_corrcoef(gold, pred)),
        }
        if num_classes == 2:
            expected["f1"] = float(f1_score(gold, pred, pos_label=1, average="binary"))
    cases.append(
        {
            "name": name,
            "kind": "classes",
            "num_classes": num_classes,
            "pred": pred,
            "gold": gold,
            "expected": expected,
        }
    )


def add_scores(name, pred, gold):
    pred = [float(v) for v in pred]
    gold = [float(v) for v in gold]
    assert len(pred) == len(gold) >= 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = {
            "pearson": finite_or_none(pearsonr(pred, gold).statistic),
            "spearman": finite_or_none(spearmanr(pred, gold).statistic),
        }
    cases.append(
        {
            "name": name,
            "kind": "scores",
            "pred": [repr(v) for v in pred],
            "gold": [repr(v) for v in gold],
            "expected": expected,
        }
    )


def noisy_classes(gold, num_classes, accuracy):
    """Keep each gold label with probability `accuracy`, else draw a uniformly random class."""
    keep = rng.random(len(gold)) < accuracy
    return np.where(keep, gold, rng.integers(0, num_classes, len(gold)))


# Binary: random and correlated predictions of various sizes (408 = MRPC dev, 1043 = CoLA dev).
for n in [2, 3, 5, 10, 25, 100, 408, 1043]:
    gold = rng.integers(0, 2, n)
    add_classes(f"binary_random_n{n}", rng.integers(0, 2, n), gold, 2)
    add_classes(f"binary_correlated_n{n}", noisy_classes(gold, 2, 0.7), gold, 2)

# Binary: heavily imbalanced.
gold = (rng.random(500) < 0.05).astype(int)
add_classes("binary_imbalanced_5pct_pos", noisy_classes(gold, 2, 0.6), gold, 2)
add_classes("binary_imbalanced_pred_mostly_pos", (rng.random(500) < 0.95).astype(int), gold, 2)
gold = (rng.random(300) < 0.97).astype(int)
add_classes("binary_imbalanced_97pct_pos", noisy_classes(gold, 2, 0.5), gold, 2)

# Binary: constant predictions, degenerate confusion matrices, n = 2 and 3.
gold = rng.integers(0, 2, 50)
add_classes("binary_constant_pred_0", np.zeros(50, int), gold, 2)
add_classes("binary_constant_pred_1", np.ones(50, int), gold, 2)
add_classes("binary_constant_gold_1", rng.integers(0, 2, 50), np.ones(50, int), 2)
add_classes("binary_all_negative", np.zeros(20, int), np.zeros(20, int), 2)
add_classes("binary_all_positive", np.ones(20, int), np.ones(20, int), 2)
add_classes("binary_perfect", gold, gold, 2)
add_classes("binary_inverted", 1 - gold, gold, 2)
add_classes("binary_no_tp", [1, 0, 0, 0], [0, 1, 0, 0], 2)
add_classes("binary_n2_inverted", [0, 1], [1, 0], 2)
add_classes("binary_n2_perfect", [0, 1], [0, 1], 2)
add_classes("binary_n2_one_off", [1, 1], [0, 1], 2)
add_classes("binary_n3", [1, 0, 1], [1, 1, 0], 2)
add_classes("binary_n1", [1], [1], 2)

# Three classes (MNLI-like): random, correlated, imbalanced, constant, absent classes.
for n in [3, 10, 50, 300, 1000]:
    gold = rng.integers(0, 3, n)
    add_classes(f"multi3_random_n{n}", rng.integers(0, 3, n), gold, 3)
    add_classes(f"multi3_correlated_n{n}", noisy_classes(gold, 3, 0.75), gold, 3)
gold = rng.choice(3, 400, p=[0.85, 0.1, 0.05])
add_classes("multi3_imbalanced", noisy_classes(gold, 3, 0.6), gold, 3)
add_classes("multi3_constant_pred", np.full(400, 0), gold, 3)
add_classes("multi3_perfect", gold, gold, 3)
gold = rng.choice([0, 2], 60)
add_classes("multi3_class1_absent", np.where(rng.random(60) < 0.6, gold, 2 - gold), gold, 3)
add_classes("multi3_class2_only_predicted", rng.integers(0, 3, 60), rng.integers(0, 2, 60), 3)
add_classes("multi3_n3_permuted", [1, 2, 0], [0, 1, 2], 3)
gold = rng.integers(0, 5, 200)
add_classes("multi5_correlated", noisy_classes(gold, 5, 0.4), gold, 5)

# Scores: STS-B-like gold (annotator means on a 0-5 grid) and noisy model outputs (1500 = STS-B dev).
for n in [3, 10, 100, 1500]:
    gold = np.round(rng.uniform(0, 5, n) * 5) / 5
    pred = np.clip(gold + rng.normal(0, 0.9, n), -0.5, 5.5)
    add_scores(f"stsb_like_n{n}", pred, gold)
gold = np.round(rng.uniform(0, 5, 200) * 5) / 5
add_scores("stsb_like_rounded_pred", np.round(np.clip(gold + rng.normal(0, 1.2, 200), 0, 5), 1), gold)
add_scores("stsb_like_uncorrelated", rng.uniform(0, 5, 200), gold)
add_scores("stsb_like_anticorrelated", 5 - gold + rng.normal(0, 0.5, 200), gold)

# Scores: ties-heavy vectors for Spearman's average ranks.
for n in [8, 50, 300]:
    gold = rng.integers(0, 6, n).astype(float)
    pred = np.round((gold + rng.normal(0, 1.5, n)) * 2) / 2
    add_scores(f"ties_heavy_n{n}", pred, gold)
add_scores("ties_binary_valued", rng.integers(0, 2, 40), rng.integers(0, 3, 40))
add_scores("ties_one_distinct_value", [1.0] * 9 + [2.0], [float(v) for v in range(10)])

# Scores: monotone but nonlinear, perfect, small n, extreme offsets and scales.
x = rng.normal(0, 1, 60)
add_scores("monotone_exp", np.exp(3 * x), x)
add_scores("perfect_linear", 2.5 * x - 1.0, x)
add_scores("perfect_negative", -x, x)
add_scores("n2_increasing", [0.3, 1.7], [2.0, 4.0])
add_scores("n2_decreasing", [0.3, 1.7], [4.0, 2.0])
add_scores("n3", [0.1, 0.5, 0.2], [1.0, 3.0, 2.5])
add_scores("n3_tie", [1.0, 2.0, 2.0], [3.0, 1.0, 2.0])
y = x + rng.normal(0, 0.5, 60)
add_scores("large_offset", 1e8 + x, 1e8 + y)
add_scores("tiny_scale", 1e-9 * x, 1e-9 * y)
add_scores("mixed_scale", 1e6 * x, y)

# Scores: constant vectors (SciPy: NaN, written as null; Rust: 0.0).
add_scores("constant_pred", [2.5] * 20, rng.uniform(0, 5, 20))
add_scores("constant_gold", rng.uniform(0, 5, 20), [3.0] * 20)
add_scores("constant_both", [1.0] * 5, [1.0] * 5)

fixture = {
    "generator": "scripts/make_metric_fixtures.py",
    "seed": SEED,
    "versions": {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
    },
    "notes": "expected values: sklearn accuracy_score, f1_score(pos_label=1), matthews_corrcoef; "
    "scipy pearsonr, spearmanr. null = SciPy NaN (constant input); stilts returns 0.0. "
    "Float inputs are decimal strings (exact round trip).",
    "cases": cases,
}

names = [c["name"] for c in cases]
assert len(names) == len(set(names)), "duplicate case names"

lines = ["{"]
for key in ["generator", "seed", "versions", "notes"]:
    lines.append(f"  {json.dumps(key)}: {json.dumps(fixture[key])},")
lines.append('  "cases": [')
lines.append(",\n".join("    " + json.dumps(c, allow_nan=False) for c in cases))
lines.append("  ]")
lines.append("}")
OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text("\n".join(lines) + "\n")
print(f"wrote {len(cases)} cases, {OUT.stat().st_size} bytes to {OUT}", file=sys.stderr)
