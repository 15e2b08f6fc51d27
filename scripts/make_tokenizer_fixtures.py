#!/usr/bin/env python3
"""Golden fixtures for `crates/stilts-data/src/tokenize.rs`.

Encodes a deterministic sample of real GLUE sentences and pairs (plus a few synthetic edge cases)
with Hugging Face's `BertTokenizerFast` over the bert-base-uncased `vocab.txt`, and writes
`crates/stilts-data/tests/fixtures/tokenizer_bert_uncased.json`.

Each case stores the input texts, its casing and `max_seq_len`, and the expected `input_ids`,
`token_type_ids`, `attention_mask` and `tokens_removed` under the original BERT truncation
(`_truncate_seq_pair` from google-research/bert `run_classifier.py`, applied to HF's WordPiece
ids). HF's own `truncation=True` ('longest_first') output is checked against that; where the two
differ the case also stores `hf_input_ids` / `hf_token_type_ids`. The `batches` section holds
HF's padded batch output (`padding=True` and `padding="max_length"`).

An empty second text ("") makes a single sequence, as in BERT (`if example.text_b:`) and HF's
single call `tok(a, "")`; HF's batch call `tok([a], [""])` instead appends an empty second
segment, so the batches leave such cases out.

Setup (no torch needed):

    python3 -m venv .venv/tok && .venv/tok/bin/pip install transformers tokenizers
    HF_HUB_OFFLINE=1 .venv/tok/bin/python scripts/make_tokenizer_fixtures.py \
        --models-dir ../shared/data/models --glue-dir ../shared/data/glue
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from transformers import BertTokenizerFast  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "crates/stilts-data/tests/fixtures/tokenizer_bert_uncased.json"
SEED = 2018
VOCAB_SIZE = 30522

# (task, file, header?, column indices)
SOURCES = [
    ("CoLA", "train.tsv", False, (3,)),
    ("CoLA", "dev.tsv", False, (3,)),
    ("SST-2", "train.tsv", True, (0,)),
    ("SST-2", "dev.tsv", True, (0,)),
    ("MRPC", "train.tsv", True, (3, 4)),
    ("MRPC", "dev.tsv", True, (3, 4)),
    ("STS-B", "train.tsv", True, (7, 8)),
    ("STS-B", "dev.tsv", True, (7, 8)),
    ("QNLI", "dev.tsv", True, (1, 2)),
    ("RTE", "train.tsv", True, (1, 2)),
    ("RTE", "dev.tsv", True, (1, 2)),
    ("WNLI", "train.tsv", True, (1, 2)),
    ("WNLI", "dev.tsv", True, (1, 2)),
]

SYNTHETIC = [
    ("", None),
    ("   ", None),
    ("", ""),
    ("A lone first part.", ""),
    ("", "A lone second part."),
    ("Naïve café owners in São Paulo façade Ångström Zürich.", "Crème brûlée, jalapeño, piñata."),
    ("北京大学 is in 北京, and 東京 is in 日本.", "汉字混合English文本。"),
    ("Fullwidth ＡＢＣ１２３ and ideographic\u3000space.", None),
    ("e\u0301 versus \u00e9, combining marks ŝ̃ and İstanbul, Straße.", None),
    ("Greek Σίσυφος, Cyrillic Москва, Arabic القاهرة, Hindi हिन्दी, Korean 한국어, kana ひらがな.", None),
    ("Emoji 👍🏽 and symbols ™ © ℝ ½ → ∑.", "Ligatures ﬁ ﬂ and ſ, roman Ⅻ."),
    ("Control\u0000chars\ufffdand\u200bzero\u00a0width\ttabs\nnewlines.", None),
    ("Special tokens [MASK] [CLS] [SEP] [PAD] [UNK] stay whole; [mask] and [unused0] do not.", None),
    ("a" * 100 + " " + "b" * 101, "x" * 99 + "yz"),
    ("Hyphen-ated words, U.S.A., e-mail@example.com and $1,234.56 (approx.) — 'quoted' \"text\"...", None),
    ("UPPER lower MiXeD CamelCase iPhone McDonald's", "THE QUICK BROWN FOX"),
]


def read_rows(glue_dir, task, name, header, cols):
    path = glue_dir / task / name
    lines = path.read_text(encoding="utf-8").split("\n")
    if header:
        lines = lines[1:]
    rows = []
    for lineno, line in enumerate(lines, start=2 if header else 1):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) <= max(cols):
            continue
        texts = [fields[c] for c in cols]
        rows.append(
            {
                "source": f"{task}/{name}:{lineno}",
                "a": texts[0],
                "b": texts[1] if len(texts) > 1 else None,
            }
        )
    return rows


def load_tokenizer(vocab_path, lowercase):
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(vocab_path, Path(tmp) / "vocab.txt")
        tok = BertTokenizerFast.from_pretrained(tmp, do_lower_case=lowercase)
    assert len(tok) == VOCAB_SIZE, f"expected {VOCAB_SIZE} tokens, got {len(tok)}"
    assert tok.backend_tokenizer.normalizer.lowercase == lowercase
    return tok


def truncate_seq_pair(tokens_a, tokens_b, max_length):
    """Verbatim from google-research/bert run_classifier.py."""
    while True:
        total_length = len(tokens_a) + len(tokens_b)
        if total_length <= max_length:
            break
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


def bert_reference(tok, a, b, max_seq_len):
    # An empty second text means a single sequence, both in BERT (`if example.text_b:`) and in HF.
    b = b or None
    ids_a = tok(a, add_special_tokens=False)["input_ids"]
    ids_b = None if b is None else tok(b, add_special_tokens=False)["input_ids"]
    full = tok(a, b)["input_ids"] if b is not None else tok(a)["input_ids"]
    cls, sep = tok.cls_token_id, tok.sep_token_id
    untruncated = [cls] + ids_a + [sep] + ([] if ids_b is None else ids_b + [sep])
    assert full == untruncated, "separate encoding differs from HF pair encoding"
    before = len(ids_a) + (0 if ids_b is None else len(ids_b))
    if ids_b is None:
        ids_a = ids_a[: max_seq_len - 2]
        ids, types = [cls] + ids_a + [sep], [0] * (len(ids_a) + 2)
        after = len(ids_a)
    else:
        truncate_seq_pair(ids_a, ids_b, max_seq_len - 3)
        ids = [cls] + ids_a + [sep] + ids_b + [sep]
        types = [0] * (len(ids_a) + 2) + [1] * (len(ids_b) + 1)
        after = len(ids_a) + len(ids_b)
    return ids, types, before - after


def encode_case(tok, case):
    a, b, msl = case["a"], case["b"], case["max_seq_len"]
    ids, types, removed = bert_reference(tok, a, b, msl)
    hf = tok(a, b, truncation=True, max_length=msl)
    out = dict(case)
    out["input_ids"] = ids
    out["token_type_ids"] = types
    out["attention_mask"] = [1] * len(ids)
    out["tokens_removed"] = removed
    assert hf["attention_mask"] == [1] * len(hf["input_ids"])
    if hf["input_ids"] != ids or hf["token_type_ids"] != types:
        assert b, "single-sequence truncation must agree with HF"
        assert len(hf["input_ids"]) == len(ids)
        assert sorted(hf["input_ids"]) != sorted(ids) or hf["token_type_ids"] != types
        out["hf_input_ids"] = hf["input_ids"]
        out["hf_token_type_ids"] = hf["token_type_ids"]
    return out


def pair_len(tok, row):
    n = len(tok(row["a"], add_special_tokens=False)["input_ids"])
    if row["b"] is not None:
        n += len(tok(row["b"], add_special_tokens=False)["input_ids"])
    return n


def non_ascii(row):
    text = row["a"] + (row["b"] or "")
    return any(ord(c) > 127 for c in text)


def cjk(row):
    text = row["a"] + (row["b"] or "")
    return any(0x4E00 <= ord(c) <= 0x9FFF for c in text)


def select_cases(rows_by_task, uncased):
    rng = random.Random(SEED)
    cases, seen = [], set()

    def add(row, casing, msl, group):
        key = (row["source"], casing, msl)
        if key in seen:
            return
        seen.add(key)
        cases.append(
            {
                "id": f"{group}-{len(cases):03}",
                "source": row["source"],
                "casing": casing,
                "max_seq_len": msl,
                "a": row["a"],
                "b": row["b"],
            }
        )

    per_task = {"CoLA": 35, "SST-2": 35, "MRPC": 25, "STS-B": 25, "QNLI": 30, "RTE": 30, "WNLI": 15}
    for task, k in per_task.items():
        for row in rng.sample(rows_by_task[task], k):
            add(row, "uncased", 128, "sample")

    for task, k in (("RTE", 14), ("QNLI", 8), ("MRPC", 3)):
        longest = sorted(rows_by_task[task], key=lambda r: -pair_len(uncased, r))[:k]
        for row in longest:
            add(row, "uncased", 128, "long")

    everything = [r for task in sorted(rows_by_task) for r in rows_by_task[task]]
    for row in [r for r in everything if cjk(r)]:
        add(row, "uncased", 128, "cjk")
    for row in rng.sample([r for r in everything if non_ascii(r)], 25):
        add(row, "uncased", 128, "unicode")

    for msl, k in ((16, 30), (17, 12), (64, 12)):
        for row in rng.sample(everything, k):
            add(row, "uncased", msl, f"msl{msl}")

    def b_not_shorter(row, budget):
        if not row["b"]:
            return False
        la = len(uncased(row["a"], add_special_tokens=False)["input_ids"])
        lb = len(uncased(row["b"], add_special_tokens=False)["input_ids"])
        return la * 2 > budget and lb >= la

    for msl, k in ((16, 10), (32, 6)):
        candidates = [r for r in rng.sample(everything, 400) if b_not_shorter(r, msl - 3)]
        for row in candidates[:k]:
            add(row, "uncased", msl, f"tie{msl}")

    pool = [r for r in everything if non_ascii(r)]
    for row in rng.sample(pool, 15) + rng.sample(everything, 20):
        add(row, "cased", 128, "cased")
    for row in rng.sample(everything, 8):
        add(row, "cased", 16, "cased")

    for i, (a, b) in enumerate(SYNTHETIC):
        row = {"source": f"synthetic:{i}", "a": a, "b": b}
        for casing in ("uncased", "cased"):
            add(row, casing, 128, "synthetic")
        add(row, "uncased", 16, "synthetic")
        add(row, "uncased", 3, "synthetic")
    return cases


def make_batches(tokenizers_by_casing, cases):
    batches = []
    # HF's batch call encodes a pair whose second text is "" as `[CLS] a [SEP] [SEP]`, unlike its
    # single call and BERT (both: `[CLS] a [SEP]`), so such cases stay out of the batches.
    plain = [
        c
        for c in cases
        if "hf_input_ids" not in c and c["casing"] == "uncased" and c["b"] != ""
    ]
    singles = [c for c in plain if c["b"] is None and c["max_seq_len"] == 128]
    pairs = [c for c in plain if c["b"] is not None and c["max_seq_len"] == 128]
    short_pairs = [c for c in plain if c["b"] is not None and c["max_seq_len"] == 16]
    rng = random.Random(SEED + 1)
    specs = [
        (rng.sample(singles, 7), 128, "longest"),
        (rng.sample(pairs, 6) + [c for c in pairs if c["group"] == "long"][:2], 128, "longest"),
        (rng.sample(short_pairs, 5), 16, "max_length"),
        (rng.sample(singles, 3), 128, "max_length"),
    ]
    for members, msl, padding in specs:
        tok = tokenizers_by_casing["uncased"]
        a = [c["a"] for c in members]
        b = None if members[0]["b"] is None else [c["b"] for c in members]
        enc = tok(a, b, truncation=True, max_length=msl, padding=padding)
        batches.append(
            {
                "case_ids": [c["id"] for c in members],
                "max_seq_len": msl,
                "padding": padding,
                "input_ids": enc["input_ids"],
                "token_type_ids": enc["token_type_ids"],
                "attention_mask": enc["attention_mask"],
            }
        )
    return batches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=REPO.parent / "shared/data/models")
    parser.add_argument("--glue-dir", type=Path, default=REPO.parent / "shared/data/glue")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    vocab = args.models_dir / "bert-base-uncased/vocab.txt"
    toks = {"uncased": load_tokenizer(vocab, True), "cased": load_tokenizer(vocab, False)}

    rows_by_task = {}
    for task, name, header, cols in SOURCES:
        rows_by_task.setdefault(task, []).extend(read_rows(args.glue_dir, task, name, header, cols))

    cases = select_cases(rows_by_task, toks["uncased"])
    for case in cases:
        case["group"] = case["id"].rsplit("-", 1)[0]
    encoded = [encode_case(toks[c["casing"]], c) for c in cases]
    for case in encoded:
        del case["group"]
    batches = make_batches(toks, [dict(c, group=c["id"].rsplit("-", 1)[0]) for c in encoded])

    truncated = sum(1 for c in encoded if c["tokens_removed"] > 0)
    divergent = sum(1 for c in encoded if "hf_input_ids" in c)
    header = {
        "generator": "scripts/make_tokenizer_fixtures.py",
        "transformers_version": transformers.__version__,
        "tokenizers_version": tokenizers.__version__,
        "vocab": "bert-base-uncased/vocab.txt",
        "vocab_sha256": hashlib.sha256(vocab.read_bytes()).hexdigest(),
        "vocab_size": VOCAB_SIZE,
        "hf_class": "BertTokenizerFast.from_pretrained(dir with vocab.txt, do_lower_case=...)",
        "expected": "original BERT _truncate_seq_pair over HF WordPiece ids; "
        "hf_input_ids/hf_token_type_ids hold HF truncation=True output where it differs",
        "num_cases": len(encoded),
        "num_truncated": truncated,
        "num_hf_divergent": divergent,
    }

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("{\n")
        for key, value in header.items():
            f.write(f"{json.dumps(key)}: {json.dumps(value)},\n")
        f.write('"cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in encoded))
        f.write('\n],\n"batches": [\n')
        f.write(",\n".join(json.dumps(b, separators=(",", ":")) for b in batches))
        f.write("\n]\n}\n")
    json.loads(args.out.read_text(encoding="utf-8"))
    size = args.out.stat().st_size
    print(
        f"wrote {args.out} ({size} bytes): {len(encoded)} cases, {truncated} truncated, "
        f"{divergent} where HF longest_first differs, {len(batches)} batches",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
