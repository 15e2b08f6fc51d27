#!/usr/bin/env python3
"""Writes the BERT parity fixtures of crates/stilts-models/tests/fixtures from PyTorch.

Needs torch, transformers (5.x) and safetensors, e.g. in a venv (.venv/ is ignored by git):

    python3 -m venv .venv/ref
    .venv/ref/bin/pip install torch transformers safetensors
    HF_HUB_OFFLINE=1 .venv/ref/bin/python scripts/make_bert_fixtures.py \
        --vocab $STILTS_MODELS_DIR/bert-base-uncased/vocab.txt \
        --glue $GLUE_DIR \
        --minilm $STILTS_MINILM_DIR

Outputs (each file under 2 MB):

- tiny-bert/: a random 2-layer BERT (hidden 32, 4 heads, intermediate 37, the first 8192
  word pieces of the uncased vocab) with a 3-label head, as HF saves it (`bert.` prefix):
  config.json, model.safetensors, vocab.txt; forward.safetensors (a padded batch of RTE pairs
  and HF's hidden states, pooled output, logits, and a regression head's scores and MSE loss);
  train_grads.safetensors (loss and the gradient of every parameter, dropout off) and
  train_after.safetensors (every parameter after one AdamW step, no decay on biases and
  LayerNorm weights).
- tiny-bert-legacy/: a BERT encoder without pooler saved as pytorch_model.bin with TF-era
  `LayerNorm.gamma/beta` names, no prefix, a position_ids buffer and an MLM bias;
  forward.safetensors with its last hidden state.
- minilm/expected.safetensors: all-MiniLM-L6-v2 on 4 RTE pairs (padded, one truncated): inputs, last hidden
  state, pooled output, a seeded random 2-label head and its logits.
"""

import argparse
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

FIXTURES = Path(__file__).resolve().parent.parent / "crates/stilts-models/tests/fixtures"
TINY_VOCAB = 8192
# Short and long pairs, so that batches have both padding and truncation.
RTE_ROWS = [0, 4, 8, 2]


def glue_pairs(glue: Path, task: str, rows: list[int], cols: tuple[int, int], label_col: int):
    """Dev rows (0-based, after the header) of a GLUE TSV: tab-separated, no quoting."""
    lines = (glue / task / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    fields = [lines[i].split("\t") for i in rows]
    return [(f[cols[0]], f[cols[1]], f[label_col]) for f in fields]


def tokenizer_for(vocab_lines: list[str], expected: int) -> BertTokenizerFast:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.txt").write_text("\n".join(vocab_lines) + "\n", encoding="utf-8")
        tok = BertTokenizerFast.from_pretrained(tmp, do_lower_case=True)
    assert len(tok) == expected, f"tokenizer has {len(tok)} pieces, expected {expected}"
    return tok


def encode(tok, pairs, max_length):
    enc = tok(
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return {k: enc[k].to(torch.int64).contiguous() for k in ("input_ids", "token_type_ids", "attention_mask")}


def perturb(model: torch.nn.Module, scale: float):
    """Moves every parameter off its init so that LayerNorm weights and biases matter."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)


def tiny(vocab: Path, glue: Path):
    out = FIXTURES / "tiny-bert"
    out.mkdir(parents=True, exist_ok=True)
    lines = vocab.read_text(encoding="utf-8").splitlines()[:TINY_VOCAB]
    (out / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    tok = tokenizer_for(lines, TINY_VOCAB)

    config = BertConfig(
        vocab_size=TINY_VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        type_vocab_size=2,
        layer_norm_eps=1e-5,
        num_labels=3,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    perturb(model, 0.05)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, out / "model.safetensors", metadata={"format": "pt"})
    config.save_pretrained(out)

    pairs = glue_pairs(glue, "RTE", RTE_ROWS, (1, 2), 3)
    inputs = encode(tok, pairs, 64)
    with torch.no_grad():
        hidden = model.bert(**inputs)
        logits = model(**inputs).logits
    # A regression head (num_labels = 1, STS-B) on the same pooled output.
    reg = torch.nn.Linear(32, 1)
    with torch.no_grad():
        reg.weight.copy_(torch.randn(1, 32) * 0.2)
        reg.bias.copy_(torch.randn(1) * 0.2)
        reg_scores = reg(hidden.pooler_output)
    reg_labels = torch.tensor([4.5, 0.25, 3.0, 1.75])
    reg_loss = torch.nn.functional.mse_loss(reg_scores.squeeze(), reg_labels)
    save_file(
        {
            **inputs,
            "last_hidden_state": hidden.last_hidden_state.contiguous(),
            "pooled_output": hidden.pooler_output.contiguous(),
            "logits": logits.contiguous(),
            "reg.weight": reg.weight.detach().contiguous(),
            "reg.bias": reg.bias.detach().contiguous(),
            "reg.labels": reg_labels,
            "reg.scores": reg_scores.contiguous(),
            "reg.loss": reg_loss.reshape(1),
        },
        out / "forward.safetensors",
    )

    # One training step, dropout off.
    train_config = BertConfig.from_dict(
        {**config.to_dict(), "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    )
    train_config._attn_implementation = "eager"
    train = BertForSequenceClassification(train_config)
    train.load_state_dict(model.state_dict())
    train.train()
    labels = torch.tensor([0, 2, 1, 2])
    loss = train(**inputs, labels=labels).loss
    loss.backward()
    grads = {f"grad.{n}": p.grad.detach().contiguous() for n, p in train.named_parameters()}
    save_file(
        {**grads, "loss": loss.detach().reshape(1), "labels": labels}, out / "train_grads.safetensors"
    )
    no_decay = lambda n: n.endswith(".bias") or "LayerNorm.weight" in n
    groups = [
        {"params": [p for n, p in train.named_parameters() if not no_decay(n)], "weight_decay": 0.01},
        {"params": [p for n, p in train.named_parameters() if no_decay(n)], "weight_decay": 0.0},
    ]
    optim = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-6)
    optim.step()
    after = {f"after.{n}": p.detach().contiguous() for n, p in train.named_parameters()}
    save_file(after, out / "train_after.safetensors")
    print(f"tiny-bert: loss {loss.item():.6f}, logits {logits.shape}, seq {inputs['input_ids'].shape}")


def legacy():
    out = FIXTURES / "tiny-bert-legacy"
    out.mkdir(parents=True, exist_ok=True)
    config = BertConfig(
        vocab_size=128,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=32,
        type_vocab_size=2,
        attn_implementation="eager",
    )
    torch.manual_seed(1)
    model = BertModel(config, add_pooling_layer=False).eval()
    perturb(model, 0.05)
    state = {}
    for k, v in model.state_dict().items():
        k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state[k] = v.detach().clone().contiguous()
    state["embeddings.position_ids"] = torch.arange(32, dtype=torch.int64).reshape(1, 32)
    state["cls.predictions.bias"] = torch.zeros(128)
    torch.save(state, out / "pytorch_model.bin")
    config.save_pretrained(out)
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(1, 128, (3, 9), generator=g)
    types = torch.zeros(3, 9, dtype=torch.int64)
    types[:, 5:] = 1
    mask = torch.ones(3, 9, dtype=torch.int64)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    ids = ids * mask
    with torch.no_grad():
        hidden = model(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
    save_file(
        {
            "input_ids": ids.contiguous(),
            "token_type_ids": types.contiguous(),
            "attention_mask": mask.contiguous(),
            "last_hidden_state": hidden.contiguous(),
        },
        out / "forward.safetensors",
    )
    print(f"tiny-bert-legacy: {len(state)} keys")


def minilm(model_dir: Path, glue: Path):
    out = FIXTURES / "minilm"
    out.mkdir(parents=True, exist_ok=True)
    tok = BertTokenizerFast.from_pretrained(model_dir)
    assert len(tok) == 30522, f"tokenizer has {len(tok)} pieces"
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    pairs = glue_pairs(glue, "RTE", RTE_ROWS, (1, 2), 3)
    inputs = encode(tok, pairs, 128)
    torch.manual_seed(3)
    head = torch.nn.Linear(model.config.hidden_size, 2)
    with torch.no_grad():
        head.weight.normal_(0.0, 0.02)
        head.bias.normal_(0.0, 0.02)
        outputs = model(**inputs)
        logits = head(outputs.pooler_output)
    save_file(
        {
            **inputs,
            "last_hidden_state": outputs.last_hidden_state.contiguous(),
            "pooled_output": outputs.pooler_output.contiguous(),
            "classifier.weight": head.weight.detach().contiguous(),
            "classifier.bias": head.bias.detach().contiguous(),
            "logits": logits.contiguous(),
        },
        out / "expected.safetensors",
    )
    print(f"minilm: seq {inputs['input_ids'].shape}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    env = lambda name, rest="": Path(os.environ[name]) / rest if name in os.environ else None
    parser.add_argument("--vocab", type=Path, default=env("STILTS_MODELS_DIR", "bert-base-uncased/vocab.txt"), required="STILTS_MODELS_DIR" not in os.environ)
    parser.add_argument("--glue", type=Path, default=env("GLUE_DIR"), required="GLUE_DIR" not in os.environ)
    parser.add_argument("--minilm", type=Path, default=env("STILTS_MINILM_DIR"), required="STILTS_MINILM_DIR" not in os.environ)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tiny(args.vocab, args.glue)
    legacy()
    minilm(args.minilm, args.glue)
    for f in sorted(FIXTURES.rglob("*")):
        if f.is_file():
            size = f.stat().st_size
            assert size < 2_000_000, f"{f} is {size} bytes"
            print(f"{size:>9}  {f.relative_to(FIXTURES)}")


if __name__ == "__main__":
    main()
