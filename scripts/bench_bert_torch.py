#!/usr/bin/env python3
"""PyTorch anchor for `cargo xtask bench bert`: HF `BertForSequenceClassification`, eager
attention, fp32, `torch.set_num_threads(N)` (default 2), random weights, on the shapes of
crates/stilts-models/benches/bert.rs (BERT-base 12x768 and MiniLM 6x384, seq 128, batch 8):

- peak f32 GEMM (2048^3 torch.mm, best of 5);
- inference examples/s (torch.no_grad, eval) and an instrumented forward that times the same op
  classes as the Rust bench (Q/K/V projections, QK^T + scale, mask + softmax, ...);
- train step examples/s (forward + cross-entropy, backward, torch.optim.AdamW with weight decay
  0.01 except biases and LayerNorm weights; dropout 0.1 on, as in fine-tuning), split into phases;
- peak RSS of a child process per (shape, measurement) (ru_maxrss).

`--device cuda` runs on the GPU (synchronising before each clock read; TF32 off, so fp32 is
fp32) and adds the peak GPU memory; `--dtype bf16` runs the passes under
`torch.autocast(dtype=torch.bfloat16)` with fp32 weights and AdamW state, the loss in fp32 (what
`scripts/device-check.sh` compares with stilts' `precision = "bf16"`). BERT-large (`--shape
large`) is the device check's.

Make the venv once (CPU wheels are enough):

    python3 -m venv .venv/ref
    .venv/ref/bin/pip install torch transformers

One measurement per process, as `cargo xtask bench bert` runs it (with $STILTS_TORCH_PYTHON,
else python3 on PATH), interleaved with the stilts side:

    .venv/ref/bin/python scripts/bench_bert_torch.py --child train --shape minilm --iters 5
"""

import argparse
import json
import math
import resource
import time

SEQ, BATCH, VOCAB, GEMM_N = 128, 8, 30522, 2048
SHAPES = {
    "base": dict(layers=12, hidden=768, heads=12, intermediate=3072),
    "minilm": dict(layers=6, hidden=384, heads=12, intermediate=1536),
    "large": dict(layers=24, hidden=1024, heads=16, intermediate=4096),
}
# Where and in what precision (`--device`, `--dtype`): set by main() before a child runs.
DEVICE, BF16 = "cpu", False


def autocast(torch):
    """bf16 mixed precision as `torch.autocast` gives it (fp32 weights), else nothing."""
    import contextlib

    return torch.autocast(DEVICE, dtype=torch.bfloat16) if BF16 else contextlib.nullcontext()


def sync(torch):
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def forward_flops(s):
    h, i, l = s["hidden"], s["intermediate"], s["layers"]
    tokens = BATCH * SEQ
    dense = 2.0 * tokens * (4 * h * h + 2 * h * i) * l
    attention = 2.0 * 2.0 * BATCH * SEQ * SEQ * h * l
    head = 2.0 * BATCH * (h * h + 2 * h)
    return dense + attention + head


def build(torch, s):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=s["hidden"],
        num_hidden_layers=s["layers"],
        num_attention_heads=s["heads"],
        intermediate_size=s["intermediate"],
        num_labels=2,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    return BertForSequenceClassification(config).to(DEVICE)


def inputs(torch):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, VOCAB, (BATCH, SEQ), generator=g)
    types = torch.zeros(BATCH, SEQ, dtype=torch.long)
    types[:, SEQ // 2 :] = 1
    mask = torch.ones(BATCH, SEQ, dtype=torch.long)
    return {k: v.to(DEVICE) for k, v in dict(input_ids=ids, token_type_ids=types, attention_mask=mask).items()}


def peak_gpu(torch):
    if DEVICE != "cuda":
        return {}
    return {"peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20}


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def child_gemm(torch):
    dtype = torch.bfloat16 if BF16 else torch.float32
    a = torch.rand(GEMM_N, GEMM_N, device=DEVICE, dtype=dtype)
    b = torch.rand(GEMM_N, GEMM_N, device=DEVICE, dtype=dtype)
    best = math.inf
    for _ in range(6):
        sync(torch)
        t = time.perf_counter()
        torch.mm(a, b)
        sync(torch)
        best = min(best, time.perf_counter() - t)
    return {"gflops": 2 * GEMM_N**3 / best / 1e9, "n": GEMM_N}


def instrumented(torch, model, x):
    """The Rust bench's op classes, on HF's modules (eval: no dropout)."""
    import torch.nn.functional as F

    ops, order = {}, []

    def timed(name, fn):
        t = time.perf_counter()
        out = fn()
        sync(torch)
        dt = time.perf_counter() - t
        if name not in ops:
            ops[name] = 0.0
            order.append(name)
        ops[name] += dt
        return out

    bert = model.bert
    b, s = x["input_ids"].shape
    mask = timed(
        "embeddings + mask",
        lambda: ((1.0 - x["attention_mask"].float()) * torch.finfo(torch.float32).min).view(b, 1, 1, s),
    )
    h = timed(
        "embeddings + mask",
        lambda: bert.embeddings(input_ids=x["input_ids"], token_type_ids=x["token_type_ids"]),
    )
    for layer in bert.encoder.layer:
        sa = layer.attention.self
        width = h.shape[2]
        heads = model.config.num_attention_heads
        hs = width // heads
        q, k, v = timed("Q/K/V projections", lambda: (sa.query(h), sa.key(h), sa.value(h)))
        split = lambda t: t.view(b, s, heads, hs).transpose(1, 2)
        scores = timed(
            "QK^T + scale",
            lambda: torch.matmul(split(q), split(k).transpose(2, 3)) / math.sqrt(hs),
        )
        probs = timed("mask + softmax", lambda: torch.softmax(scores + mask, dim=-1))
        ctx = timed(
            "PV + merge heads",
            lambda: torch.matmul(probs, split(v)).transpose(1, 2).reshape(b, s, width),
        )
        o = timed("attention output dense", lambda: layer.attention.output.dense(ctx))
        a = timed("residual + LayerNorm", lambda: layer.attention.output.LayerNorm(o + h))
        i = timed("FFN up dense", lambda: layer.intermediate.dense(a))
        g = timed("GELU", lambda: F.gelu(i))
        d = timed("FFN down dense", lambda: layer.output.dense(g))
        h = timed("residual + LayerNorm", lambda: layer.output.LayerNorm(d + a))
    timed("pooler + classifier", lambda: model.classifier(bert.pooler(h)))
    return ops, order


def child_infer(torch, s, iters):
    model = build(torch, s).eval()
    x = inputs(torch)
    times = []
    with torch.no_grad(), autocast(torch):
        for i in range(iters + 1):
            t = time.perf_counter()
            model(**x).logits
            sync(torch)
            if i > 0:
                times.append(time.perf_counter() - t)
        for _ in range(2):
            t = time.perf_counter()
            ops, order = instrumented(torch, model, x)
            total = time.perf_counter() - t
    secs = median(times)
    return {
        "secs": secs,
        "examples_per_s": BATCH / secs,
        "gflops": forward_flops(s) / secs / 1e9,
        "peak_rss_mib": peak_rss_mib(),
        **peak_gpu(torch),
        "ops_ms": {k: v * 1e3 for k, v in ops.items()},
        "ops_order": order,
        "ops_total_ms": total * 1e3,
    }


def child_train(torch, s, iters):
    model = build(torch, s).train()
    x = inputs(torch)
    labels = (torch.arange(BATCH) % 2).to(DEVICE)
    no_decay = lambda n: n.endswith(".bias") or "LayerNorm.weight" in n
    groups = [
        {"params": [p for n, p in model.named_parameters() if not no_decay(n)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if no_decay(n)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=2e-5, betas=(0.9, 0.999), eps=1e-6)
    fwd, bwd, step, total = [], [], [], []
    for i in range(iters + 1):
        t0 = time.perf_counter()
        with autocast(torch):
            logits = model(**x).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        sync(torch)
        t1 = time.perf_counter()
        loss.backward()
        sync(torch)
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(torch)
        t3 = time.perf_counter()
        if i > 0:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            step.append(t3 - t2)
            total.append(t3 - t0)
    secs = median(total)
    return {
        "secs": secs,
        "examples_per_s": BATCH / secs,
        "gflops": 3 * forward_flops(s) / secs / 1e9,
        "peak_rss_mib": peak_rss_mib(),
        **peak_gpu(torch),
        "phases_ms": {
            "forward + loss": median(fwd) * 1e3,
            "backward": median(bwd) * 1e3,
            "optimizer (AdamW)": median(step) * 1e3,
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", required=True, choices=["gemm", "infer", "train"])
    ap.add_argument("--shape", default="-", help="base, large or minilm (not read by gemm)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"], help="bf16: torch.autocast")
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    import transformers

    global DEVICE, BF16
    DEVICE, BF16 = args.device, args.dtype == "bf16"
    if DEVICE == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32, as on the stilts side
        torch.backends.cudnn.allow_tf32 = False

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if args.child == "gemm":
        result = child_gemm(torch)
    elif args.child == "infer":
        result = child_infer(torch, SHAPES[args.shape], args.iters)
    else:
        result = child_train(torch, SHAPES[args.shape], args.iters)
    result["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
