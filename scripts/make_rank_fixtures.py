#!/usr/bin/env python3
"""Reference results for `stilts rank` (crates/stilts-train/tests/rank_reference.rs).

LogME, the Embedding Space Map and its training from hf-dataset-selector's own code
(`hfselect.logme.LogME`, `hfselect.ESM`, `hfselect.ESMTrainer`), and SEmb (Poth et al. 2021:
the cosine of two datasets' mean sentence embeddings) in NumPy. The features are random
float32 matrices with some label signal, written into the fixture with the results, so CI
needs neither NumPy, torch nor hfselect.

Run by hand from the reference venv (with torch and transformers):

    pip install numpy numba scipy datasets pandas
    pip install --no-deps hf-dataset-selector==0.2.1   # it pins numpy==2.0.0; 2.4 works
    python scripts/make_rank_fixtures.py
"""

import json
import math
import pathlib

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import ndcg_score
from hfselect import ESM, ESMConfig, ESMTrainer
import hfselect.logme
from hfselect.logme import LogME

TRUNCATED_SVD = hfselect.logme.truncated_svd
ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/stilts-train/tests/fixtures/rank/reference.json"


def features(rng, n, d, labels, signal):
    f = rng.standard_normal((n, d)).astype(np.float32)
    if labels is not None:
        for j in range(min(d, 3)):
            f[:, j] += signal * (np.asarray(labels, dtype=np.float32) - j * 0.5)
    return f.astype(np.float32)


def truncated_svd_rank_tolerance(x):
    """hfselect's `truncated_svd` keeping the directions whose eigenvalue of `f^T f` (a squared
    singular value) is above `max(n, d) * eps` times the largest, instead of singular values
    above an absolute 1e-10: its comment says `k` is the rank of `f`, and with an exactly
    repeated feature the null direction's eigenvalue is rounding noise whose square root
    (~1e-7 here) the absolute test keeps, which makes the score a function of that noise. Used
    only for the rank-deficient case."""
    u, s, vh = np.linalg.svd(x.transpose() @ x)
    s = np.sqrt(s)
    u_times_sigma = x @ vh.transpose()
    k = int(np.sum(s**2 > s.max() ** 2 * max(x.shape) * np.finfo(np.float64).eps))
    s = s.reshape(-1, 1)[:k]
    vh = vh[:k]
    u = u_times_sigma[:, :k] / s.reshape(1, -1)
    return u, s, vh


def logme_case(rng, name, n, d, regression, classes=2, duplicate_column=False, skip=None):
    if regression:
        y = rng.uniform(0.0, 5.0, size=n)
        f = features(rng, n, d, y / 5.0, 1.5)
        # The fixture carries float32 labels as written; the score is computed from those.
        y = np.float64(np.float32(y))
    else:
        y = rng.integers(0, classes, size=n)
        if skip is not None:  # a class below the largest that no example has
            y[y == skip] = classes - 1
        f = features(rng, n, d, y, 1.0)
    if duplicate_column:
        f[:, d - 1] = f[:, 0]
        hfselect.logme.truncated_svd = truncated_svd_rank_tolerance
    try:
        score = LogME(regression=regression).fit(f.astype(np.float64), y)
    finally:
        hfselect.logme.truncated_svd = TRUNCATED_SVD
    return {
        "name": name,
        "n": n,
        "d": d,
        "regression": regression,
        "features": [float(v) for v in f.reshape(-1)],
        "labels": [float(v) for v in y] if regression else [int(v) for v in y],
        "logme": float(score),
    }


def semb_case(rng, name, n_a, n_b, d):
    a = rng.standard_normal((n_a, d)).astype(np.float32) + 0.3
    b = rng.standard_normal((n_b, d)).astype(np.float32) + 0.1
    ma = a.astype(np.float64).mean(axis=0)
    mb = b.astype(np.float64).mean(axis=0)
    cosine = float(ma @ mb / (np.linalg.norm(ma) * np.linalg.norm(mb)))
    return {
        "name": name,
        "d": d,
        "a": [float(v) for v in a.reshape(-1)],
        "b": [float(v) for v in b.reshape(-1)],
        "semb": cosine,
    }


def flat(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


def esm_case(rng, n=70, d=6, epochs=3, batch=32):
    """An ESM trained by hfselect's ESMTrainer on batches in file order, then ESM-LogME."""
    base = rng.standard_normal((n, d)).astype(np.float32)
    mix = (0.5 * rng.standard_normal((d, d))).astype(np.float32)
    tuned = (base @ mix + 0.1 * rng.standard_normal((n, d))).astype(np.float32)
    torch.manual_seed(0)
    esm = ESM(architecture="linear", embedding_dim=d)
    init_w = esm.model.weight.detach().numpy().copy()
    init_b = esm.model.bias.detach().numpy().copy()
    trainer = ESMTrainer()
    trainer.model = esm
    trainer.optimizer = trainer._create_optimizer(model=esm)
    steps = math.ceil(n / batch) * epochs
    trainer.scheduler = ESMTrainer._create_scheduler(trainer.optimizer, steps)
    losses = []
    for _ in range(epochs):
        for start in range(0, n, batch):
            pair = (torch.from_numpy(base[start:start + batch]), torch.from_numpy(tuned[start:start + batch]))
            losses.append(trainer._train_step(pair))
    target = rng.standard_normal((40, d)).astype(np.float32)
    labels = rng.integers(0, 3, size=40)
    target[:, 0] += labels.astype(np.float32)
    with torch.no_grad():
        mapped = esm(torch.from_numpy(target)).numpy()
    score = LogME(regression=False).fit(mapped.astype(np.float64), labels)
    # The map as hfselect saves it (config.json + model.safetensors), for stilts' `--esm`.
    esm.config = ESMConfig(task_id="fixture", base_model_name="random-features", esm_architecture="linear", esm_embedding_dim=d)
    esm.save_pretrained(str(OUT.parent / "esm-hfselect"))
    return {
        "d": d,
        "epochs": epochs,
        "batch_size": batch,
        "learning_rate": trainer.learning_rate,
        "weight_decay": trainer.weight_decay,
        "base": flat(base),
        "tuned": flat(tuned),
        "init_weight": flat(init_w),
        "init_bias": flat(init_b),
        "weight": flat(esm.model.weight.detach().numpy()),
        "bias": flat(esm.model.bias.detach().numpy()),
        "losses": [float(v) for v in losses],
        "target": flat(target),
        "labels": [int(v) for v in labels],
        "mapped": flat(mapped),
        "esm_logme": float(score),
    }


def eval_case(rng, name, n, ties=False):
    """A method's scores against measured STILTs scores: Spearman (SciPy), NDCG@3
    (scikit-learn, linear gains, tied scores averaged) and regret@1/@3 (percent of the best)."""
    stilts = rng.uniform(0.3, 0.9, size=n)
    scores = stilts + rng.normal(0.0, 0.15, size=n)
    if ties:
        scores = np.round(scores * 4) / 4  # a few tied scores, as the size baseline has
    order = sorted(range(n), key=lambda i: -scores[i])  # stable: ties in named order
    best = stilts.max()
    regret = lambda k: float(100 * (best - max(stilts[i] for i in order[:k])) / abs(best))
    return {
        "name": name,
        "stilts": [float(v) for v in stilts],
        "scores": [float(v) for v in scores],
        "spearman": float(spearmanr(scores, stilts).statistic),
        "ndcg_at_3": float(ndcg_score([stilts], [scores], k=3)),
        "regret_at_1": regret(1),
        "regret_at_3": regret(3),
    }


def main():
    rng = np.random.default_rng(20261206)
    cases = [
        logme_case(rng, "classes-tall", 90, 12, False, classes=3),
        logme_case(rng, "classes-wide", 10, 16, False),
        logme_case(rng, "regression", 60, 8, True),
        logme_case(rng, "rank-deficient", 40, 6, False, duplicate_column=True),
        logme_case(rng, "missing-class", 30, 5, False, classes=4, skip=1),
    ]
    semb = [semb_case(rng, "semb", 25, 40, 12)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    esm = [esm_case(rng)]
    evals = [eval_case(rng, "distinct", 9), eval_case(rng, "ties", 10, ties=True)]
    OUT.write_text(json.dumps({"logme": cases, "semb": semb, "esm": esm, "eval": evals}) + "\n")
    for c in cases:
        print(f"{c['name']}: LogME {c['logme']:.6f}")
    print(f"semb: {semb[0]['semb']:.6f}")
    print(f"esm: losses {esm[0]['losses'][0]:.4f} -> {esm[0]['losses'][-1]:.4f}, ESM-LogME {esm[0]['esm_logme']:.6f}")


if __name__ == "__main__":
    main()
