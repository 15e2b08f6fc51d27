#!/usr/bin/env python3
"""Writes the parameter-efficient parity fixtures of crates/stilts-models/tests/fixtures/peft
from HF `peft` (LoRA) and AdapterHub `adapters` (bottleneck adapters) on the tiny BERT of
make_bert_fixtures.py.

`adapters` 1.3 pins transformers 4.57, so it runs from its own venv whose torch and peft come
from the reference venv (a .pth file); HF_HUB_OFFLINE=1, nothing is downloaded:

    python3 -m venv .venv/adapters
    .venv/ref/bin/pip install --no-deps peft accelerate
    echo "$(.venv/ref/bin/python -c 'import site; print(site.getsitepackages()[0])')" \
        > "$(.venv/adapters/bin/python -c 'import site; print(site.getsitepackages()[0])')/ref.pth"
    .venv/adapters/bin/pip install "transformers~=4.57.6" adapters==1.3.0
    HF_HUB_OFFLINE=1 .venv/adapters/bin/python scripts/make_peft_fixtures.py [CASE ...]

Cases (tiny-bert's encoder, its padded RTE batch, eval mode, each output file ~100 KB):

- lora-qv/: peft's defaults for BERT (query and value), r 4, alpha 8; lora_B drawn
  normal(0, 0.1) so that the update is not zero. adapter_model.safetensors and
  adapter_config.json as peft saves them; expected.safetensors: last hidden state, pooled
  output, and the gradient of a fixed projection of the hidden states with respect to every
  LoRA matrix (peft's names).
- lora-all/: all six projections, r 2, alpha 6, use_rslora; expected.safetensors also holds
  the outputs of peft's merge_and_unload.
- fusion/: adapters' dynamic AdapterFusion over two seq_bn adapters named "0" and "1"
  (reduction factor 8), the adapters' and the fusion's weights drawn at random
  (adapter.safetensors), trained: the fusion layers (gradients in expected.safetensors).
- gpt-lora-attn/, gpt-lora-all/: LoRA on the tiny OpenAI GPT of make_gpt_fixtures.py (its
  padded batch, eval mode): peft's GPT default (c_attn, the fused query-key-value projection),
  r 4, alpha 8; and c_attn, both c_proj and c_fc, r 2, alpha 6, use_rslora, with the merged
  outputs. peft adapts GPT's Conv1D projections with fan_in_fan_out; lora_B drawn as above.
- houlsby/, pfeiffer/: adapters' double_seq_bn (swish, after attention and feed-forward) and
  seq_bn (ReLU, after feed-forward), reduction factor 8; weights scaled up so that the adapters
  matter. adapter.safetensors (the adapters' tensors under their model names),
  pytorch_adapter.bin and adapter_config.json as adapters' save_adapter writes them, and
  expected.safetensors as above.
"""

import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from safetensors.torch import load_file, save_file
from transformers import BertModel

FIXTURES = Path(__file__).resolve().parent.parent / "crates/stilts-models/tests/fixtures"
TINY = FIXTURES / "tiny-bert"
OUT = FIXTURES / "peft"
ALL_SIX = r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"


def base_model() -> BertModel:
    model = BertModel.from_pretrained(TINY)
    model.eval()
    return model


def inputs():
    fwd = load_file(TINY / "forward.safetensors")
    return {k: fwd[k] for k in ("input_ids", "token_type_ids", "attention_mask")}


def forward_and_grads(model, trained: dict[str, torch.nn.Parameter], feed=inputs):
    """Outputs, and d(sum(h * w))/d(param) for the trained parameters (w seeded)."""
    out = model(**feed())
    h = out.last_hidden_state
    w = torch.randn(h.shape, generator=torch.Generator().manual_seed(7))
    (h * w).sum().backward()
    tensors = {
        "last_hidden_state": h.detach().contiguous(),
        "projection": w,
    }
    if getattr(out, "pooler_output", None) is not None:
        tensors["pooled_output"] = out.pooler_output.detach().contiguous()
    for name, p in trained.items():
        tensors[f"grad.{name}"] = p.grad.detach().contiguous()
    return tensors


def gpt_base():
    from transformers import OpenAIGPTModel

    model = OpenAIGPTModel.from_pretrained(FIXTURES / "tiny-gpt")
    model.eval()
    return model


def gpt_inputs():
    fwd = load_file(FIXTURES / "tiny-gpt/forward.safetensors")
    return {k: fwd[k] for k in ("input_ids", "attention_mask")}


def lora_case(name: str, base=base_model, feed=inputs, **config) -> None:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(base(), LoraConfig(**config))
    gen = torch.Generator().manual_seed(1)
    trained = {}
    for key, p in model.named_parameters():
        if "lora_B" in key:
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        if "lora_" in key:
            trained[key.replace(".default", "")] = p
    model.eval()
    tensors = forward_and_grads(model, trained, feed)
    out = OUT / name
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out)
    (out / "README.md").unlink()  # peft's model card template
    # peft writes target_modules from a set, in any order: sorted, the file is reproducible.
    config_file = out / "adapter_config.json"
    config = json.loads(config_file.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    relative_base(config_file, "base_model_name_or_path")
    merged = model.merge_and_unload()
    with torch.no_grad():
        m = merged(**feed())
    tensors["merged.last_hidden_state"] = m.last_hidden_state.contiguous()
    save_file(tensors, out / "expected.safetensors")
    print(name, sorted(load_file(out / "adapter_model.safetensors"))[:2])


def adapter_case(name: str, config: str) -> None:
    import adapters

    torch.manual_seed(0)
    model = base_model()
    adapters.init(model)
    model.add_adapter("stilts", config=adapters.AdapterConfig.load(config, reduction_factor=8))
    model.train_adapter("stilts")
    gen = torch.Generator().manual_seed(2)
    trained = {}
    for key, p in model.named_parameters():
        if ".adapters." in key:
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
            trained[key] = p
    model.eval()
    tensors = forward_and_grads(model, trained)
    out = OUT / name
    shutil.rmtree(out, ignore_errors=True)
    model.save_adapter(str(out), "stilts")
    relative_base(out / "adapter_config.json", "model_name")
    save_file({k: p.detach().contiguous() for k, p in trained.items()}, out / "adapter.safetensors")
    save_file(tensors, out / "expected.safetensors")
    print(name, sorted(trained)[:2])


def relative_base(config_file, key) -> None:
    """The base model's path as the fixtures name it (`tiny-bert`), not this machine's."""
    config = json.loads(config_file.read_text())
    config[key] = Path(config[key]).name
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def fusion_case() -> None:
    import adapters
    from adapters.composition import Fuse

    torch.manual_seed(0)
    model = base_model()
    adapters.init(model)
    for name in ("0", "1"):
        model.add_adapter(name, config=adapters.AdapterConfig.load("seq_bn", reduction_factor=8))
    model.add_adapter_fusion(Fuse("0", "1"), "dynamic")
    model.train_adapter_fusion(Fuse("0", "1"))
    gen = torch.Generator().manual_seed(3)
    trained = {}
    held = {}
    for key, p in model.named_parameters():
        if ".adapters." in key or "adapter_fusion_layer" in key:
            with torch.no_grad():
                noise = torch.randn(p.shape, generator=gen)
                p.copy_(p + noise * (0.05 if ".value." in key else 0.15))
            held[key] = p
            if p.requires_grad:
                trained[key] = p
    assert trained and all("adapter_fusion_layer" in k for k in trained), sorted(trained)
    model.eval()
    tensors = forward_and_grads(model, trained)
    out = OUT / "fusion"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    save_file({k: p.detach().contiguous() for k, p in held.items()}, out / "adapter.safetensors")
    save_file(tensors, out / "expected.safetensors")
    print("fusion", sorted(trained)[:3])


def main(only: list[str]) -> None:
    """Writes every case, or the cases named on the command line."""
    OUT.mkdir(parents=True, exist_ok=True)
    gpt = dict(base=gpt_base, feed=gpt_inputs, fan_in_fan_out=True)
    cases = {
        "lora-qv": lambda: lora_case("lora-qv", r=4, lora_alpha=8),
        "lora-all": lambda: lora_case(
            "lora-all", r=2, lora_alpha=6, use_rslora=True, target_modules=ALL_SIX
        ),
        "gpt-lora-attn": lambda: lora_case(
            "gpt-lora-attn", r=4, lora_alpha=8, target_modules=["c_attn"], **gpt
        ),
        "gpt-lora-all": lambda: lora_case(
            "gpt-lora-all",
            r=2,
            lora_alpha=6,
            use_rslora=True,
            target_modules=["c_attn", "c_proj", "c_fc"],
            **gpt,
        ),
        "houlsby": lambda: adapter_case("houlsby", "double_seq_bn"),
        "pfeiffer": lambda: adapter_case("pfeiffer", "seq_bn"),
        "fusion": fusion_case,
    }
    for name in only or cases:
        cases[name]()


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
