#!/usr/bin/env python3
"""Writes the ELMo parity fixtures from AllenNLP 2.10.1's ELMo modules on PyTorch.

Needs torch (any 2.x), h5py, numpy, safetensors and allennlp 2.10.1 installed *without* its
dependencies (it pins torch<1.13, spacy<3.4 and more), plus the three small pure modules the
imports below really use, e.g. in a venv (.venv/ is ignored by git):

    python3 -m venv .venv/ref
    .venv/ref/bin/pip install torch h5py numpy safetensors transformers
    .venv/ref/bin/pip install --no-deps allennlp==2.10.1 dill base58 lmdb
    .venv/ref/bin/python scripts/make_elmo_fixtures.py

The import shim (`install_allennlp_shim`): `import allennlp` runs package `__init__`s that
import spaCy, torchvision, the transformers-based backbones and everything else. The shim
registers empty package modules for `allennlp`, `allennlp.common`, `allennlp.data`,
`allennlp.data.fields`, `allennlp.data.tokenizers`, `allennlp.data.token_indexers`,
`allennlp.modules` and `allennlp.nn` whose `__path__` is the real package directory, so only
the real submodules ELMo needs are executed, unchanged (elmo.py, elmo_lstm.py,
lstm_cell_with_projection.py, encoder_base.py, highway.py, scalar_mix.py, nn/util.py,
elmo_indexer.py, text_field.py, batch.py, vocabulary.py, instance.py, ...), and sets the few
names those submodules import from the packages. It also stubs two third-party modules:
`spacy` (only `spacy.tokens.Token` is referenced, as a type in an isinstance check, and
`spacy.load`/`spacy.cli.download.download`/`spacy.language.Language`, never called) and
`cached_path` (AllenNLP's `cached_path` becomes the identity on local paths; its cache
helpers are never called). No computation goes through a stub.

Outputs (T_A = 9 and T_B = 7 tokens; 50 characters per token; all with dropout 0):

- crates/stilts-models/tests/fixtures/tiny-elmo/:
  - options.json: a tiny options file in the format of the released ones (char_cnn: relu,
    filters [[1, 4], [2, 8], [3, 16]] (28 filters), 2 highway layers, character embedding
    dim 4, n_characters 262, 50 characters per token; lstm: dim (cell) 16, projection_dim 8,
    2 layers, cell_clip 3, proj_clip 3, use_skip_connections true).
  - weights.hdf5: random weights in the released layout, written by h5py with
    libver="earliest" (superblock version 0, symbol-table groups), every dataset contiguous
    float32 (no chunking, filters or compression). Datasets (F = 28 filters, P = 8, C = 16):
    char_embed [261, 4] (n_characters - 1 rows: AllenNLP prepends an all-zero row 0 for the
    padding id 0), CNN/W_cnn_i [1, width_i, 4, num_i] and CNN/b_cnn_i [num_i],
    CNN_high_k/{W_carry, W_transform} [F, F] and {b_carry, b_transform} [F] (k = 0, 1),
    CNN_proj/W_proj [F, P] and b_proj [P], and for direction d (0 forward, 1 backward) and
    layer l: RNN_d/RNN/MultiRNNCell/Cell{l}/LSTMCell/W_0 [2P, 4C] (input rows then recurrent
    rows; TensorFlow gate order i, j (candidate), f, o), .../B [4C] and .../W_P_0 [C, P].
    Values are normal with std 0.3 (biases too) from a fixed seed, except the LSTM weights
    (W_0 std 0.5 on its input rows and 0.2 on its recurrent rows, B std 2.0, W_P_0 std 1.0) so
    that both clips bite while the recurrences stay contracting: the run prints how many values
    cell_clip and proj_clip changed in each layer and direction (recomputed by counting around
    torch.clamp; with seed 1234 the cell clip changes values in all four cells, the projection
    clip in all but the second backward layer) and asserts that both clip somewhere; it also
    reruns the LSTM outputs and the training step in float64 and asserts they agree with the
    float32 fixtures to 1e-4 (the gaps are printed; about 1e-6).
  - sentences.json: {"a": [[tokens]] * 3, "b": [[tokens]] * 2}, pretokenized; lengths
    A: 6, 9, 1 and B: 3, 7. They hold multi-byte UTF-8 ("café", "naïve", "東京"), and a
    70-byte word whose 48-byte cut falls inside an "ü" (the id row keeps its lone lead
    byte 0xC3), punctuation tokens and a 1-token sentence.
  - reference.safetensors (float32; ids and masks int64):
    - {a,b}.char_ids [N, T, 50]: allennlp.modules.elmo.batch_to_ids (0 pads whole tokens).
    - {a,b}.token_embedding [N, T+2, 8] and {a,b}.mask_with_bos_eos [N, T+2]: the output of
      _ElmoCharacterEncoder (with <S> and </S>; rows past a sentence's </S> are NOT zeroed
      there: they are the encoder's output for an all-padding token).
    - {a,b}.layer_0, {a,b}.layer_1, {a,b}.layer_2 [N, T+2, 16]: the activations _ElmoBiLm
      returns (layer 0 = [token_embedding, token_embedding] times the mask), each batch from
      fresh LSTM states (reset_states() before it).
    - b.stateful.layer_1, b.stateful.layer_2 [2, T_B+2, 16]: batch B run right after batch A
      through the same _ElmoBiLm without resetting (AllenNLP's default stateful LSTM: rows 0
      and 1 of A's final states seed B's rows 0 and 1).
    - mix.weights [3] = [0.3, -0.5, 1.1] (ScalarMix's pre-softmax scalar_parameters) and
      mix.gamma [1] = [1.7].
    - a.mix [3, T_A, 16] and a.mask [3, T_A]: Elmo(num_output_representations=1,
      dropout=0.0) with that scalar mix (boundaries removed, as Elmo returns);
      a.mix_layer_norm [3, T_A, 16]: the same with do_layer_norm=True.
    - train.*: one step of Elmo(requires_grad=True) in train mode, scalar mix as above and
      trainable: train.r [3, T_A, 16] a fixed normal tensor (std 0.02), train.loss [1] = sum(a.mix *
      train.r), train.grad.mix_weights [3] and train.grad.gamma [1] the gradients of the
      scalar mix, then plain SGD (lr 0.05, no momentum or weight decay) on every parameter
      (char embedding incl. its row 0, whose gradient is 0, CNN, highway, projection, both
      LSTMs, scalar mix and gamma), and train.mix_after [3, T_A, 16] the Elmo output for batch A after the step.
      LSTM states are reset before each forward, so the step is stateless.
- crates/stilts-models/tests/fixtures/tiny-elmo-noskip/: options.json as above with
  use_skip_connections false, its own random weights.hdf5 (seed + 1, same layout and stds;
  here only the cell clip bites; float64 check likewise) and reference.safetensors with
  a.layer_0, a.layer_1, a.layer_2 and a.mask_with_bos_eos for batch A of
  tiny-elmo/sentences.json. AllenNLP's _ElmoBiLm refuses
  such options (ConfigurationError "We only support pretrained biLMs with residual
  connections") and ElmoLstm always adds the skip connection for layers above 0, so this
  reference is built from a copy of the options with use_skip_connections true and ElmoLstm's
  own `_lstm_forward` source with that one addition made conditional (the patch is asserted
  to apply exactly once); the result is what bilm-tf computes without skip connections.

At the end the script reads every file back: the HDF5 superblock version (byte 8 of the
file), each dataset's shape, dtype and layout, and each safetensors key with shape and dtype.
"""

import argparse
import contextlib
import importlib.util
import inspect
import json
import sys
import textwrap
import types
from pathlib import Path

import h5py
import numpy as np
import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "crates/stilts-models/tests/fixtures"

OPTIONS = {
    "lstm": {
        "use_skip_connections": True, "projection_dim": 8, "cell_clip": 3, "proj_clip": 3,
        "dim": 16, "n_layers": 2,
    },
    "char_cnn": {
        "activation": "relu", "filters": [[1, 4], [2, 8], [3, 16]], "n_highway": 2,
        "embedding": {"dim": 4}, "n_characters": 262, "max_characters_per_token": 50,
    },
}

SENTENCES = {
    "a": [
        ["The", "café", "in", "東京", "closed", "."],
        ["A", "naïve", "reader", "can't", "parse", "Grundstücksverkehrsgenehmigungszuständigkeitsübertragungsverordnung", ",", "right", "?"],
        ["Hello"],
    ],
    "b": [
        ["Prices", "rose", "!"],
        ["She", "said", "\"", "no", "\"", "twice", "."],
    ],
}

MIX_WEIGHTS = [0.3, -0.5, 1.1]
MIX_GAMMA = 1.7
LR = 0.05
# Stds of the LSTM weights (everything else: 0.3).
# Large biases and projections make both clips bite; small recurrent weights keep the LSTMs
# contracting (with recurrent std 1.0 float32 and float64 runs differ by 5e-3 and gradients
# explode through time).
LSTM_STD = {"W_0 input": 0.5, "W_0 recurrent": 0.2, "B": 2.0, "W_P_0": 1.0}
# The training step's R; the loss's Jacobian is large, so a small R keeps the lr-0.05 step moderate.
R_STD = 0.02


def install_allennlp_shim():
    """Imports AllenNLP's ELMo code without its package __init__s, spaCy or cached_path."""
    spec = importlib.util.find_spec("allennlp")
    if spec is None:
        sys.exit("allennlp is not installed: pip install --no-deps allennlp==2.10.1")
    root = Path(spec.origin).parent

    def stub(name, **attrs):
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module
        return module

    def never(*args, **kwargs):
        raise RuntimeError("stubbed out by make_elmo_fixtures.py")

    spacy = stub("spacy", load=never)
    spacy.cli = stub("spacy.cli")
    spacy.cli.download = stub("spacy.cli.download", download=never)
    spacy.language = stub("spacy.language", Language=type("Language", (), {}))
    spacy.tokens = stub("spacy.tokens", Token=type("Token", (), {}))

    cp = stub(
        "cached_path", cached_path=lambda path, *a, **k: str(path), resource_to_filename=never,
        check_tarfile=never, is_url_or_existing_file=never, find_latest_cached=never,
        filename_to_url=never,
    )
    cp.cache_file = stub("cached_path.cache_file", CacheFile=never)
    cp.common = stub("cached_path.common", PathOrStr=str)
    cp.file_lock = stub("cached_path.file_lock", FileLock=never)
    cp.meta = stub("cached_path.meta", Meta=never)

    for pkg in ["", "common", "data", "data.fields", "data.tokenizers", "data.token_indexers", "modules", "nn"]:
        name = "allennlp" + ("." + pkg if pkg else "")
        module = stub(name)
        module.__path__ = [str(root / pkg.replace(".", "/"))]
        module.__package__ = name

    import allennlp.common as common
    from allennlp.common.from_params import FromParams
    from allennlp.common.lazy import Lazy
    from allennlp.common.params import Params
    from allennlp.common.registrable import Registrable
    from allennlp.common.tqdm import Tqdm

    common.FromParams, common.Lazy, common.Params = FromParams, Lazy, Params
    common.Registrable, common.Tqdm = Registrable, Tqdm
    import allennlp.data.fields as fields
    import allennlp.data.tokenizers as tokenizers
    from allennlp.data.tokenizers.token_class import Token

    tokenizers.Token = Token
    from allennlp.data.fields.text_field import TextField

    fields.TextField = TextField
    import allennlp.modules.elmo as elmo
    import allennlp.modules.elmo_lstm as elmo_lstm
    import allennlp.modules.lstm_cell_with_projection as cell

    return elmo, elmo_lstm, cell


def random_weights(path: Path, options, seed: int):
    """Random weights in the released file's layout; returns nothing, writes `path`."""
    rng = np.random.default_rng(seed)
    normal = lambda shape, std=0.3: (rng.standard_normal(shape) * std).astype(np.float32)
    cnn = options["char_cnn"]
    lstm = options["lstm"]
    dim = cnn["embedding"]["dim"]
    n_filters = sum(n for _, n in cnn["filters"])
    proj, cell_size = lstm["projection_dim"], lstm["dim"]
    data = {"char_embed": normal((cnn["n_characters"] - 1, dim))}
    for i, (width, num) in enumerate(cnn["filters"]):
        data[f"CNN/W_cnn_{i}"] = normal((1, width, dim, num))
        data[f"CNN/b_cnn_{i}"] = normal((num,))
    for k in range(cnn["n_highway"]):
        for name, shape in [("W_carry", (n_filters, n_filters)), ("W_transform", (n_filters, n_filters)),
                            ("b_carry", (n_filters,)), ("b_transform", (n_filters,))]:
            data[f"CNN_high_{k}/{name}"] = normal(shape)
    data["CNN_proj/W_proj"] = normal((n_filters, proj))
    data["CNN_proj/b_proj"] = normal((proj,))
    for d in range(2):
        for layer in range(lstm["n_layers"]):
            base = f"RNN_{d}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"
            data[f"{base}/W_0"] = np.concatenate([normal((proj, 4 * cell_size), LSTM_STD["W_0 input"]),
                                                  normal((proj, 4 * cell_size), LSTM_STD["W_0 recurrent"])])
            data[f"{base}/B"] = normal((4 * cell_size,), LSTM_STD["B"])
            data[f"{base}/W_P_0"] = normal((cell_size, proj), LSTM_STD["W_P_0"])
    with h5py.File(path, "w", libver="earliest") as f:
        for name, value in data.items():
            f.create_dataset(name, data=value, dtype="<f4")


def write_options(directory: Path, options):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "options.json").write_text(json.dumps(options) + "\n", encoding="utf-8")


def i64(t):
    return t.detach().to(torch.int64).contiguous()


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def set_mix(elmo_module):
    mix = elmo_module.scalar_mix_0
    with torch.no_grad():
        for p, v in zip(mix.scalar_parameters, MIX_WEIGHTS):
            p.fill_(v)
        mix.gamma.fill_(MIX_GAMMA)


@contextlib.contextmanager
def count_clamps(cell_module, bilm, cell_size):
    """Counts, per LSTM cell, the values torch.clamp changed (memory cell vs projection)."""
    counts = {}
    current = [None]
    original = torch.clamp

    def clamp(x, lo, hi):
        out = original(x, lo, hi)
        kind = "cell" if x.shape[-1] == cell_size else "proj"
        key = (current[0], kind)
        counts[key] = counts.get(key, 0) + int((out != x).sum())
        return out

    hooks = []
    for name, module in bilm.named_modules():
        if isinstance(module, cell_module.LstmCellWithProjection):
            hooks.append(module.register_forward_pre_hook(
                lambda m, args, name=name: current.__setitem__(0, name.split(".")[-1])))
    cell_module.torch.clamp = clamp
    try:
        yield counts
    finally:
        cell_module.torch.clamp = original
        for h in hooks:
            h.remove()


def no_skip_lstm_class(elmo_lstm):
    """ElmoLstm with AllenNLP's own _lstm_forward, the skip connection made conditional."""
    source = textwrap.dedent(inspect.getsource(elmo_lstm.ElmoLstm._lstm_forward))
    old = "if layer_index != 0:"
    assert source.count(old) == 1, "ElmoLstm._lstm_forward changed; update the no-skip patch"
    source = source.replace(old, "if layer_index != 0 and False:  # no skip connections")
    namespace = dict(vars(elmo_lstm))
    exec(compile(source, "<ElmoLstm._lstm_forward without skip connections>", "exec"), namespace)
    return type("NoSkipElmoLstm", (elmo_lstm.ElmoLstm,), {"_lstm_forward": namespace["_lstm_forward"]})


def train_step(elmo, options_file, weight_file, ids, r, dtype):
    """Elmo(requires_grad=True), one SGD step on sum(mix * r); returns (loss, model, mix after)."""
    model = elmo.Elmo(options_file, weight_file, num_output_representations=1, requires_grad=True,
                      dropout=0.0).to(dtype).train()
    set_mix(model)
    params = list(model.parameters())
    assert all(p.requires_grad for p in params)
    model._elmo_lstm._elmo_lstm.reset_states()
    mix = model(ids)["elmo_representations"][0]
    loss = (mix * r.to(dtype)).sum()
    loss.backward()
    assert all(p.grad is not None for p in params)
    torch.optim.SGD(params, lr=LR).step()
    model._elmo_lstm._elmo_lstm.reset_states()
    with torch.no_grad():
        after = model(ids)["elmo_representations"][0]
    return loss, model, mix, after


def float64_gap(elmo, options_file, weight_file, ids, ref):
    """Largest |float32 reference - float64 rerun| per group: how well conditioned the fixture is."""
    bilm = elmo._ElmoBiLm(options_file, weight_file).eval().double()
    gap = lambda x, key: (x.double() - ref[key].double()).abs().max().item()
    gaps = {}
    with torch.no_grad():
        for k in ["a", "b"]:
            bilm._elmo_lstm.reset_states()
            acts = bilm(ids[k])["activations"]
            gaps[f"{k}.layer_*"] = max(gap(x, f"{k}.layer_{i}") for i, x in enumerate(acts))
        bilm._elmo_lstm.reset_states()
        bilm(ids["a"])
        acts = bilm(ids["b"])["activations"]
        gaps["b.stateful.*"] = max(gap(acts[i], f"b.stateful.layer_{i}") for i in (1, 2))
    loss, model, _, after = train_step(elmo, options_file, weight_file, ids["a"], ref["train.r"], torch.float64)
    gaps["train.loss"] = gap(loss.detach().reshape(1), "train.loss")
    gaps["train.mix_after"] = gap(after, "train.mix_after")
    return gaps


def tiny_elmo(elmo, elmo_lstm, cell, out: Path, seed: int):
    write_options(out, OPTIONS)
    random_weights(out / "weights.hdf5", OPTIONS, seed)
    batches = [f' "{k}": [\n' + ",\n".join("  " + json.dumps(s, ensure_ascii=False) for s in v) + "\n ]"
               for k, v in SENTENCES.items()]
    (out / "sentences.json").write_text("{\n" + ",\n".join(batches) + "\n}\n", encoding="utf-8")
    assert json.loads((out / "sentences.json").read_text(encoding="utf-8")) == SENTENCES
    options_file, weight_file = str(out / "options.json"), str(out / "weights.hdf5")
    for sentence in SENTENCES["a"] + SENTENCES["b"]:
        assert 1 <= len(sentence) <= 9
    long_word = SENTENCES["a"][1][5].encode("utf-8")
    assert len(long_word) > 48 and (long_word[47] & 0xC0) == 0xC0, "48-byte cut must split a character"

    ids = {k: elmo.batch_to_ids(v) for k, v in SENTENCES.items()}
    ref = {}
    bilm = elmo._ElmoBiLm(options_file, weight_file).eval()
    with torch.no_grad():
        for k in ["a", "b"]:
            ref[f"{k}.char_ids"] = i64(ids[k])
            enc = bilm._token_embedder(ids[k])
            ref[f"{k}.token_embedding"] = f32(enc["token_embedding"])
            ref[f"{k}.mask_with_bos_eos"] = i64(enc["mask"])
            bilm._elmo_lstm.reset_states()
            result = bilm(ids[k])
            assert torch.equal(result["mask"], enc["mask"])
            for layer, act in enumerate(result["activations"]):
                ref[f"{k}.layer_{layer}"] = f32(act)
        # AllenNLP's default: the LSTM keeps its states from batch to batch.
        bilm._elmo_lstm.reset_states()
        bilm(ids["a"])
        stateful = bilm(ids["b"])["activations"]
        ref["b.stateful.layer_1"], ref["b.stateful.layer_2"] = f32(stateful[1]), f32(stateful[2])
        assert not torch.allclose(ref["b.stateful.layer_1"], ref["b.layer_1"])
        assert torch.equal(stateful[0], ref["b.layer_0"])

        # Clipping check: recompute both batches, counting what the clamps changed.
        with count_clamps(cell, bilm, OPTIONS["lstm"]["dim"]) as counts:
            for k in ["a", "b"]:
                bilm._elmo_lstm.reset_states()
                bilm(ids[k])
        print("tiny-elmo clipped values (stateless A and B):", dict(sorted(counts.items())))
        assert any(v > 0 for (_, kind), v in counts.items() if kind == "cell"), "cell_clip never bites"
        assert any(v > 0 for (_, kind), v in counts.items() if kind == "proj"), "proj_clip never bites"

    ref["mix.weights"] = torch.tensor(MIX_WEIGHTS, dtype=torch.float32)
    ref["mix.gamma"] = torch.tensor([MIX_GAMMA], dtype=torch.float32)
    for layer_norm, key in [(False, "a.mix"), (True, "a.mix_layer_norm")]:
        model = elmo.Elmo(options_file, weight_file, num_output_representations=1, requires_grad=False,
                          do_layer_norm=layer_norm, dropout=0.0).eval()
        set_mix(model)
        model._elmo_lstm._elmo_lstm.reset_states()
        with torch.no_grad():
            result = model(ids["a"])
        ref[key] = f32(result["elmo_representations"][0])
        ref["a.mask"] = i64(result["mask"])

    # One training step, stateless.
    torch.manual_seed(seed)
    r = torch.randn(ref["a.mix"].shape, dtype=torch.float32) * R_STD
    loss, model, mix, after = train_step(elmo, options_file, weight_file, ids["a"], r, torch.float32)
    assert torch.allclose(mix, ref["a.mix"], atol=1e-6, rtol=0)
    scalar_mix = model.scalar_mix_0
    ref["train.r"] = f32(r)
    ref["train.loss"] = f32(loss.reshape(1))
    ref["train.grad.mix_weights"] = f32(torch.cat([p.grad for p in scalar_mix.scalar_parameters]))
    ref["train.grad.gamma"] = f32(scalar_mix.gamma.grad.reshape(1))
    ref["train.mix_after"] = f32(after)
    change = (ref["train.mix_after"] - ref["a.mix"]).abs().max().item()
    gaps = float64_gap(elmo, options_file, weight_file, ids, ref)
    print(f"tiny-elmo: max |float32 - float64| {gaps}; the step moves a.mix by up to {change:.3g}")
    assert max(gaps.values()) < 1e-4, "badly conditioned fixture"
    save_file(ref, out / "reference.safetensors")
    print(f"tiny-elmo: T_A {ids['a'].shape[1]}, T_B {ids['b'].shape[1]}, loss {loss.item():.6f}, "
          f"{len(list(model.parameters()))} parameter tensors stepped")


def tiny_elmo_noskip(elmo, elmo_lstm, cell, out: Path, sentences_from: Path, seed: int):
    options = json.loads(json.dumps(OPTIONS))
    options["lstm"]["use_skip_connections"] = False
    write_options(out, options)
    random_weights(out / "weights.hdf5", options, seed)
    sentences = json.loads((sentences_from / "sentences.json").read_text(encoding="utf-8"))
    # _ElmoBiLm rejects use_skip_connections false: build it from a copy of the options with
    # true, then give its ElmoLstm the forward pass without the skip additions.
    skip_options = out / "options.skip.tmp.json"
    skip_options.write_text(json.dumps(OPTIONS), encoding="utf-8")
    try:
        bilm = elmo._ElmoBiLm(str(skip_options), str(out / "weights.hdf5")).eval()
    finally:
        skip_options.unlink()
    bilm._elmo_lstm.__class__ = no_skip_lstm_class(elmo_lstm)
    ids = elmo.batch_to_ids(sentences["a"])
    with torch.no_grad():
        bilm._elmo_lstm.reset_states()
        result = bilm(ids)
        with count_clamps(cell, bilm, options["lstm"]["dim"]) as counts:
            bilm._elmo_lstm.reset_states()
            bilm(ids)
    print("tiny-elmo-noskip clipped values (stateless A):", dict(sorted(counts.items())))
    ref = {f"a.layer_{i}": f32(a) for i, a in enumerate(result["activations"])}
    with torch.no_grad():
        bilm.double()._elmo_lstm.reset_states()
        gap = max((x - ref[f"a.layer_{i}"].double()).abs().max().item()
                  for i, x in enumerate(bilm(ids)["activations"]))
    print(f"tiny-elmo-noskip: max |float32 - float64| {gap:.3g}")
    assert gap < 1e-4, "badly conditioned fixture"
    ref["a.mask_with_bos_eos"] = i64(result["mask"])
    save_file(ref, out / "reference.safetensors")
    print(f"tiny-elmo-noskip: T_A {ids.shape[1]}")


def verify(directory: Path):
    total = sum(p.stat().st_size for p in directory.iterdir())
    print(f"== {directory} ({total} bytes)")
    for p in sorted(directory.iterdir()):
        print(f"  {p.name}: {p.stat().st_size} bytes")
    path = directory / "weights.hdf5"
    head = path.read_bytes()[:9]
    assert head[:8] == b"\x89HDF\r\n\x1a\n", head
    print(f"  weights.hdf5 superblock version {head[8]}")
    assert head[8] == 0
    with h5py.File(path, "r") as f:
        def show(name, obj):
            if isinstance(obj, h5py.Dataset):
                layout = obj.id.get_create_plist().get_layout()
                assert layout == h5py.h5d.CONTIGUOUS and obj.chunks is None and obj.compression is None, name
                assert obj.dtype == np.dtype("<f4"), name
                print(f"    {name} {list(obj.shape)} {obj.dtype} contiguous")
        f.visititems(show)
    ref = load_file(directory / "reference.safetensors")
    print("  reference.safetensors:")
    for k in sorted(ref):
        print(f"    {k} {list(ref[k].shape)} {ref[k].dtype}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES,
                        help="the directory that gets tiny-elmo/ and tiny-elmo-noskip/")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    torch.set_num_threads(1)
    elmo, elmo_lstm, cell = install_allennlp_shim()
    tiny = args.fixtures / "tiny-elmo"
    noskip = args.fixtures / "tiny-elmo-noskip"
    tiny_elmo(elmo, elmo_lstm, cell, tiny, args.seed)
    tiny_elmo_noskip(elmo, elmo_lstm, cell, noskip, tiny, args.seed + 1)
    verify(tiny)
    verify(noskip)


if __name__ == "__main__":
    main()
