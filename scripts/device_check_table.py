#!/usr/bin/env python3
"""The Markdown report of `scripts/device-check.sh run`, from the files it leaves in its output
directory: env.txt (the machine), parity.txt (the backend parity test's output) and
device-check.jsonl (one record per measurement: side, shape, what, precision, round, and the
child's JSON `result`, or `skipped`).

Examples/s are each side's median over the rounds; the ratio is stilts / PyTorch, the median of
the rounds' ratios with the lowest and highest in brackets (above 1: stilts is faster).

    python3 scripts/device_check_table.py target/device-check/out > device-check.md
"""

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

SHAPES = {"base": "BERT-base (12x768)", "large": "BERT-large (24x1024)", "minilm": "MiniLM (6x384)"}
WHATS = {"infer": "inference", "train": "train step (AdamW)"}


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def fmt(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def main():
    out = Path(sys.argv[1])
    env = (out / "env.txt").read_text().splitlines() if (out / "env.txt").exists() else []
    parity = (out / "parity.txt").read_text().splitlines() if (out / "parity.txt").exists() else []
    records = [json.loads(l) for l in (out / "device-check.jsonl").read_text().splitlines() if l.strip()]

    print("# Device check\n")
    for line in env:
        print(f"- {line}")
    print("\n## Parity (tiny BERT logits against Hugging Face's fixture)\n")
    wanted = re.compile(r"([a-z][a-z0-9:-]*: logits max abs diff.*|^parity: .*|.*panicked.*)")
    shown = list(dict.fromkeys(m.group(1).strip() for l in parity if (m := wanted.search(l.strip()))))
    print("```\n" + ("\n".join(shown) or "no output") + "\n```\n")

    groups = defaultdict(lambda: {"stilts": {}, "torch": {}, "notes": []})
    order = []
    for rec in records:
        key = (rec["shape"], rec["what"], rec["precision"])
        if key not in groups:
            order.append(key)
        g = groups[key]
        if "skipped" in rec:
            note = f"round {rec['round']} {rec['side']}: skipped ({rec['skipped']})"
            g["notes"].append(note)
            continue
        result = rec["result"]
        if "error" in result:
            lines = [l for l in result["error"].splitlines() if "XDG_RUNTIME_DIR" not in l]
            error = " ".join(" ".join(lines).split())[-200:]
            g["notes"].append(f"round {rec['round']} {rec['side']}: failed: {error}")
            continue
        g[rec["side"]][rec["round"]] = result

    print("## BERT, batch 8, seq 128\n")
    print("| shape | measurement | precision | stilts ex/s | PyTorch ex/s | stilts / PyTorch (range) | PyTorch peak GPU MiB | notes |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for key in order:
        shape, what, precision = key
        g = groups[key]
        ours = median([r["examples_per_s"] for r in g["stilts"].values()])
        theirs = median([r["examples_per_s"] for r in g["torch"].values()])
        ratios = [
            g["stilts"][r]["examples_per_s"] / g["torch"][r]["examples_per_s"]
            for r in g["stilts"]
            if r in g["torch"]
        ]
        ratio = "—"
        if ratios:
            ratio = f"{median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        gpu = median([r["peak_gpu_mib"] for r in g["torch"].values() if "peak_gpu_mib" in r])
        notes = "; ".join(g["notes"]).replace("|", "/")
        print(
            f"| {SHAPES.get(shape, shape)} | {WHATS.get(what, what)} | {precision} | {fmt(ours)} | "
            f"{fmt(theirs)} | {ratio} | {fmt(gpu, 0)} | {notes} |"
        )


if __name__ == "__main__":
    main()
