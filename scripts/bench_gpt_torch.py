#!/usr/bin/env python3
"""PyTorch anchor for `cargo xtask bench gpt`: one measurement per process, printed as one JSON
line, the same as `crates/stilts-models/benches/gpt.rs --child <what> <shape> <iters>` measures:

- `infer`: HF `OpenAIGPTModel` (eager attention, fp32, eval, torch.no_grad) and a linear
  classifier on the last token's state, examples/s;
- `train`: Radford et al.'s fine-tuning step: cross-entropy plus 0.5 times the language-model
  loss over the input tokens (the LM head tied to the token embeddings; per-example mean over
  tokens, then the batch mean, as `finetune-transformer-lm` computes it), backward,
  torch.optim.AdamW (eps 1e-8, weight decay 0.01 on matrices only), dropout 0.1 on;
- `train-noaux`: the same step without the language-model loss.

Random weights, vocabulary 40,481 (the original 40,478 BPE tokens and the three fine-tuning
tokens), seq 128, batch 8, `torch.set_num_threads` from `--threads` (default 2). Peak RSS is
the process's ru_maxrss.

Make the venv once (CPU wheels are enough), then `cargo xtask bench gpt` finds it through
$STILTS_TORCH_PYTHON:

    python3 -m venv .venv/ref
    .venv/ref/bin/pip install torch transformers

Run alone:  .venv/ref/bin/python scripts/bench_gpt_torch.py --child train --shape small --iters 2
"""

import argparse
import json
import resource
import time

SEQ, BATCH, VOCAB, AUX_LM_WEIGHT = 128, 8, 40481, 0.5
SHAPES = {"gpt": (12, 768, 12), "small": (4, 256, 4)}


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def build(torch, shape):
    from transformers import OpenAIGPTConfig, OpenAIGPTModel

    layers, width, heads = SHAPES[shape]
    config = OpenAIGPTConfig(
        vocab_size=VOCAB,
        n_positions=512,
        n_embd=width,
        n_layer=layers,
        n_head=heads,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    gpt = OpenAIGPTModel(config)
    head = torch.nn.Linear(width, 2)
    return gpt, head


def inputs(torch):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, VOCAB, (BATCH, SEQ), generator=g)
    return ids, torch.ones(BATCH, SEQ, dtype=torch.long)


def forward(torch, gpt, head, ids, mask, aux):
    hidden = gpt(input_ids=ids, attention_mask=mask).last_hidden_state  # [batch, seq, width]
    logits = head(hidden[:, -1])  # the extract token's state
    if not aux:
        return logits, None
    lm_logits = hidden[:, :-1] @ gpt.tokens_embed.weight.T  # [batch, seq - 1, vocab]
    per_token = torch.nn.functional.cross_entropy(
        lm_logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1), reduction="none"
    ).view(BATCH, SEQ - 1)
    weights = mask[:, 1:].float()
    lm = ((per_token * weights).sum(1) / weights.sum(1)).mean()
    return logits, lm


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def child_infer(torch, shape, iters):
    gpt, head = build(torch, shape)
    gpt.eval()
    ids, mask = inputs(torch)
    times = []
    with torch.no_grad():
        for i in range(iters + 1):
            start = time.perf_counter()
            forward(torch, gpt, head, ids, mask, False)
            if i > 0:
                times.append(time.perf_counter() - start)
    secs = median(times)
    return dict(secs=secs, examples_per_s=BATCH / secs, peak_rss_mib=peak_rss_mib())


def child_train(torch, shape, iters, aux):
    gpt, head = build(torch, shape)
    gpt.train()
    params = list(gpt.named_parameters()) + [("head." + n, p) for n, p in head.named_parameters()]
    decay = [p for _, p in params if p.ndim >= 2]
    no_decay = [p for _, p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [dict(params=decay, weight_decay=0.01), dict(params=no_decay, weight_decay=0.0)],
        lr=6.25e-5,
        eps=1e-8,
    )
    ids, mask = inputs(torch)
    labels = torch.arange(BATCH) % 2
    fwd, bwd, step, total = [], [], [], []
    for i in range(iters + 1):
        t0 = time.perf_counter()
        logits, lm = forward(torch, gpt, head, ids, mask, aux)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        if lm is not None:
            loss = loss + AUX_LM_WEIGHT * lm
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if i > 0:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            step.append(t3 - t2)
            total.append(t3 - t0)
    secs = median(total)
    return dict(
        secs=secs,
        examples_per_s=BATCH / secs,
        peak_rss_mib=peak_rss_mib(),
        phases_ms={
            "forward + loss": median(fwd) * 1e3,
            "backward": median(bwd) * 1e3,
            "optimizer": median(step) * 1e3,
        },
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", required=True, choices=["infer", "train", "train-noaux"])
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.child == "infer":
        out = child_infer(torch, args.shape, args.iters)
    else:
        out = child_train(torch, args.shape, args.iters, args.child == "train")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
