#!/usr/bin/env python3
"""Writes the OpenAI GPT parity fixtures from PyTorch and transformers (5.x).

Needs torch, transformers, safetensors and numpy, e.g. in a venv (.venv/ is ignored by git):

    python3 -m venv .venv/ref
    .venv/ref/bin/pip install torch transformers safetensors numpy
    HF_HUB_OFFLINE=1 .venv/ref/bin/python scripts/make_gpt_fixtures.py \
        --openai-gpt $STILTS_MODELS_DIR/openai-gpt --glue $GLUE_DIR

Outputs:

- crates/stilts-models/tests/fixtures/tiny-gpt/: a random 2-layer OpenAI GPT (n_embd 32, 4
  heads, 64 positions, afn "gelu") over the first 2000 merges of the released BPE tables (a
  vocabulary of 2477 tokens: <unk>, the 476 base symbols and the 2000 merged ones, ids as in the
  full release), as an HF directory holds it: config.json, model.safetensors (keys with the
  `transformer.` prefix of OpenAIGPTLMHeadModel), vocab.json, merges.txt. Beside them:
  records.jsonl (four RTE dev pairs) and forward.safetensors (those pairs encoded by
  transformers' OpenAIGPTTokenizer without special tokens and right-padded, the last hidden
  state at every position, and the LM logits at each row's last token) and train.safetensors (one training step, dropout off:
  a 2-label linear head on the last token's state, cross-entropy plus 0.5 times Radford et
  al.'s LM loss, global-norm clip 1, AdamW lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay
  0.01 on matrices only; the losses and every parameter after the step).
- crates/stilts-models/tests/fixtures/tiny-gpt-original/: the same weights as OpenAI's original
  release lays them out: params_shapes.json and params_0.npy ... params_9.npy (one flat float32
  array, tensors in release order, convolution weights [1, in, out], split in ten), and the
  config.json (the shapes do not say the number of heads).
- crates/stilts-models/tests/fixtures/tiny-gpt-legacy/: the same weights as older Hugging Face
  GPT checkpoints hold them: pytorch_model.bin with keys of OpenAIGPTModel (no `transformer.`
  prefix) and the causal-mask buffers `h.N.attn.bias` those versions saved, and config.json.
- crates/stilts-data/tests/fixtures/tokenizer_openai_gpt.json: ids and tokens of transformers'
  OpenAIGPTTokenizer, built from the full released tables, for 300 GLUE dev texts and pairs.
"""

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import OpenAIGPTConfig, OpenAIGPTLMHeadModel, OpenAIGPTTokenizer

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "crates/stilts-models/tests/fixtures"
DATA = ROOT / "crates/stilts-data/tests/fixtures"
BASE = 477  # <unk> and the 476 base symbols: merge k makes token 477 + k
MERGES = 2000
# RTE dev pairs short enough for 64 positions without truncation (58 and 43 tokens, 8: 54, 16: 50).
RTE_ROWS = [8, 58, 16, 43]


def read_tables(openai_gpt: Path):
    vocab = json.loads((openai_gpt / "encoder_bpe_40000.json").read_text(encoding="utf-8"))
    merges = (openai_gpt / "vocab_40000.bpe").read_text(encoding="utf-8").split("\n")[1:-1]
    return vocab, merges


def tokenizer(vocab, merges):
    return OpenAIGPTTokenizer(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges])


def glue_dev(glue: Path, task: str, cols):
    lines = (glue / task / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [[line.split("\t")[c] for c in cols] for line in lines]


def tiny_tables(vocab, merges):
    merges = merges[:MERGES]
    sub = {t: i for t, i in vocab.items() if i < BASE + MERGES}
    assert len(sub) == BASE + MERGES, len(sub)
    for k, m in enumerate(merges):
        a, b = m.split(" ")
        assert sub[a + b] == BASE + k, m
    return sub, merges


def original_layout(state, config):
    """The release's tensors, in its order and shapes, from an HF state dict."""
    t = lambda k: state[f"transformer.{k}"].detach().numpy().astype(np.float32)
    params = [t("positions_embed.weight"), t("tokens_embed.weight")]
    for i in range(config.n_layer):
        p = lambda s: t(f"h.{i}.{s}")
        params += [
            p("attn.c_attn.weight")[None], p("attn.c_attn.bias"),
            p("attn.c_proj.weight")[None], p("attn.c_proj.bias"),
            p("ln_1.weight"), p("ln_1.bias"),
            p("mlp.c_fc.weight")[None], p("mlp.c_fc.bias"),
            p("mlp.c_proj.weight")[None], p("mlp.c_proj.bias"),
            p("ln_2.weight"), p("ln_2.bias"),
        ]
    return params


def lm_loss(logits, ids, mask):
    """Radford et al.'s LM loss: each row's mean next-token cross-entropy, then the batch mean."""
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    nll = -logp.gather(-1, ids[:, 1:, None]).squeeze(-1)
    m = mask[:, 1:].float()
    return ((nll * m).sum(1) / m.sum(1).clamp_min(1.0)).mean()


def tiny_gpt(vocab, merges, glue: Path):
    out = MODELS / "tiny-gpt"
    out.mkdir(parents=True, exist_ok=True)
    sub, sub_merges = tiny_tables(vocab, merges)
    (out / "vocab.json").write_text(json.dumps(sub, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(sub_merges) + "\n", encoding="utf-8")
    tok = tokenizer(sub, sub_merges)
    config = OpenAIGPTConfig(
        vocab_size=len(sub), n_positions=64, n_embd=32, n_layer=2, n_head=4, afn="gelu",
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = OpenAIGPTLMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, out / "model.safetensors", metadata={"format": "pt"})
    config.save_pretrained(out)

    rows = glue_dev(glue, "RTE", (1, 2))
    pairs = [rows[i] for i in RTE_ROWS]
    # GPT has no padding token: rows are padded on the right with id 0 and masked out.
    encoded = [tok(a, b)["input_ids"] for a, b in pairs]
    assert max(len(e) for e in encoded) <= 64
    with open(out / "records.jsonl", "w", encoding="utf-8") as f:
        for a, b in pairs:
            f.write(json.dumps({"text_a": a, "text_b": b}, ensure_ascii=False) + "\n")
    width = max(len(e) for e in encoded)
    ids = torch.tensor([e + [0] * (width - len(e)) for e in encoded], dtype=torch.int64)
    mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in encoded], dtype=torch.int64)
    with torch.no_grad():
        hidden = model.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
        last = mask.sum(1) - 1
        at_last = hidden[torch.arange(len(last)), last]
        lm_last = model.lm_head(at_last)
    save_file(
        {"input_ids": ids, "attention_mask": mask, "last_hidden_state": hidden.contiguous(),
         "lm_logits_last": lm_last.contiguous()},
        out / "forward.safetensors",
    )

    # The original release's layout of the same weights.
    orig = MODELS / "tiny-gpt-original"
    orig.mkdir(parents=True, exist_ok=True)
    params = original_layout(model.state_dict(), config)
    (orig / "params_shapes.json").write_text(json.dumps([list(p.shape) for p in params]))
    flat = np.concatenate([p.reshape(-1) for p in params])
    for i, part in enumerate(np.array_split(flat, 10)):
        np.save(orig / f"params_{i}.npy", part.astype(np.float32))
    config.save_pretrained(orig)

    # One training step, dropout off.
    train_config = OpenAIGPTConfig.from_dict(
        {**config.to_dict(), "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    )
    train_config._attn_implementation = "eager"
    train = OpenAIGPTLMHeadModel(train_config)
    train.load_state_dict(model.state_dict())
    train.train()
    head = torch.nn.Linear(32, 2)
    with torch.no_grad():
        head.weight.copy_(torch.randn(2, 32) * 0.2)
        head.bias.copy_(torch.randn(2) * 0.2)
    labels = torch.tensor([0, 1, 1, 0])
    h = train.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
    logits = head(h[torch.arange(len(last)), last])
    task = torch.nn.functional.cross_entropy(logits, labels)
    lm = lm_loss(train.lm_head(h), ids, mask)
    total = task + 0.5 * lm
    total.backward()
    named = [(f"transformer.{n}", p) for n, p in train.transformer.named_parameters()]
    named += [(f"head.{n}", p) for n, p in head.named_parameters()]
    torch.nn.utils.clip_grad_norm_([p for _, p in named], 1.0)
    groups = [
        {"params": [p for _, p in named if p.dim() >= 2], "weight_decay": 0.01},
        {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0},
    ]
    optim = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    head_before = {f"before.{n}": p.detach().clone().contiguous() for n, p in head.named_parameters()}
    optim.step()
    after = {f"after.{n}": p.detach().contiguous() for n, p in named}
    save_file(
        {**head_before, **after, "labels": labels, "loss.task": task.detach().reshape(1),
         "loss.lm": lm.detach().reshape(1), "loss.total": total.detach().reshape(1)},
        out / "train.safetensors",
    )
    print(f"tiny-gpt: vocab {len(sub)}, batch {tuple(ids.shape)}, task {task.item():.6f}, lm {lm.item():.6f}")


def legacy_gpt():
    """tiny-gpt's weights as an older checkpoint: pytorch_model.bin, bare keys, mask buffers."""
    from safetensors.torch import load_file

    src, out = MODELS / "tiny-gpt", MODELS / "tiny-gpt-legacy"
    out.mkdir(parents=True, exist_ok=True)
    config = OpenAIGPTConfig.from_pretrained(src)
    state = {k.removeprefix("transformer."): v for k, v in load_file(src / "model.safetensors").items()}
    n = config.n_positions
    for i in range(config.n_layer):
        state[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
    torch.save(state, out / "pytorch_model.bin")
    config.save_pretrained(out)
    print(f"tiny-gpt-legacy: {len(state)} keys")


def tokenizer_golden(vocab, merges, glue: Path):
    tok = tokenizer(vocab, merges)
    records = []
    sources = [("RTE", (1, 2), 60), ("MRPC", (3, 4), 60), ("STS-B", (7, 8), 60), ("CoLA", (3,), 60), ("SST-2", (0,), 60)]
    for task, cols, n in sources:
        lines = (glue / task / "dev.tsv").read_text(encoding="utf-8").splitlines()
        if task != "CoLA":
            lines = lines[1:]
        for line in lines[:n]:
            f = line.split("\t")
            texts = [f[c] for c in cols]
            enc = tok(*texts)
            records.append({
                "task": task,
                "text_a": texts[0],
                "text_b": texts[1] if len(texts) > 1 else None,
                "ids": enc["input_ids"],
                "tokens": tok.convert_ids_to_tokens(enc["input_ids"]),
            })
    # Characters outside the vocabulary, accents, CJK, control characters and empty text.
    for text in ["Café naïve résumé", "東京 and Zürich", "tab\there", "", "   ", "a\u00a0b", "It's 3.5% (approx.)!"]:
        enc = tok(text)
        records.append({"task": "extra", "text_a": text, "text_b": None, "ids": enc["input_ids"],
                         "tokens": tok.convert_ids_to_tokens(enc["input_ids"])})
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "tokenizer_openai_gpt.json").write_text(json.dumps(records, ensure_ascii=False, indent=0), encoding="utf-8")
    print(f"tokenizer golden: {len(records)} records")


def main():
    parser = argparse.ArgumentParser()
    env = lambda name, rest="": Path(os.environ[name]) / rest if name in os.environ else None
    parser.add_argument("--openai-gpt", type=Path, default=env("STILTS_MODELS_DIR", "openai-gpt"), required="STILTS_MODELS_DIR" not in os.environ)
    parser.add_argument("--glue", type=Path, default=env("GLUE_DIR"), required="GLUE_DIR" not in os.environ)
    args = parser.parse_args()
    vocab, merges = read_tables(args.openai_gpt)
    tiny_gpt(vocab, merges, args.glue)
    legacy_gpt()
    tokenizer_golden(vocab, merges, args.glue)


if __name__ == "__main__":
    main()
