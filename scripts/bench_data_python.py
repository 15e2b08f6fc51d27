#!/usr/bin/env python3
"""Python anchor for `cargo xtask bench data`: load SST-2 train with the csv module (as GLUE
loaders in transformers/jiant do) and tokenize it with HF `BertTokenizerFast` (Rust `tokenizers`
under Python), reporting examples/s for load, tokenize and both, best of N runs.

Make the venv once:  python3 -m venv .venv/ref && .venv/ref/bin/pip install transformers
Run:  GLUE_DIR=... STILTS_MODELS_DIR=... python scripts/bench_data_python.py --json
"""
import argparse
import csv
import json
import os
import sys
import time

import tokenizers
import transformers
from transformers import BertTokenizerFast


def load(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, rows = rows[0], rows[1:]
    s, l = header.index("sentence"), header.index("label")
    return [(r[s], int(r[l])) for r in rows]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    path = os.path.join(os.environ["GLUE_DIR"], "SST-2", "train.tsv")
    vocab_dir = os.path.join(os.environ["STILTS_MODELS_DIR"], "bert-base-uncased")
    tok = BertTokenizerFast.from_pretrained(vocab_dir)
    assert len(tok) > 30000, f"vocab has {len(tok)} tokens: tokenizer built wrong"
    best = {"load": float("inf"), "tokenize": float("inf"), "load_tokenize": float("inf")}
    n = 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        data = load(path)
        t1 = time.perf_counter()
        tok([s for s, _ in data], truncation=True, max_length=128)
        t2 = time.perf_counter()
        n = len(data)
        best["load"] = min(best["load"], t1 - t0)
        best["tokenize"] = min(best["tokenize"], t2 - t1)
        best["load_tokenize"] = min(best["load_tokenize"], t2 - t0)
    out = {
        "examples": n,
        "threads": os.environ.get("RAYON_NUM_THREADS", "default"),
        "versions": {"python": sys.version.split()[0], "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
        "examples_per_s": {k: n / v for k, v in best.items()},
    }
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
