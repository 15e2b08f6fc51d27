#!/usr/bin/env python3
"""PyTorch anchor for `cargo xtask bench elmo`: one measurement per process, printed as one JSON
line (`secs`, `examples_per_s`, `peak_rss_mib`, and for training `phases_ms`), for the paper's
ELMo setup on AllenNLP 2.10.1's own modules:

    char ids -> allennlp.modules.elmo._ElmoBiLm (_ElmoCharacterEncoder: char embedding, char
    CNN, highway, projection; ElmoLstm: forward and backward LstmCellWithProjection stacks with
    cell and projection clips and skip connections; <S> and </S> added)
    -> allennlp.modules.scalar_mix.ScalarMix over its n_layers + 1 layers (trainable, no layer
    norm), with boundaries -> allennlp.nn.util.remove_sentence_boundaries -> dropout 0.2
    (the mix, boundary removal and dropout are Elmo.forward's, i.e. what
    Elmo(num_output_representations=1, dropout=0.2) computes)
    -> torch.nn.Linear(2 * projection_dim, 512) on every word
    -> max-pooling over the words (allennlp.nn.util.masked_max with the mask without boundaries)
    -> torch.nn.Linear(512, 2).

- `infer`: eval mode (dropout off), torch.no_grad, biLM built with requires_grad=False,
  examples/s;
- `train`: train mode (dropout 0.2 on), the whole model trainable (_ElmoBiLm built with
  requires_grad=True: char embedding, CNN, highway, projection and both LSTMs; the scalar mix
  and gamma; both linears), cross-entropy on labels arange(BATCH) % 2, zero_grad + backward,
  torch.optim.Adam (lr 1e-4, eps 1e-8, weight decay 0). `phases_ms`: "forward + loss",
  "backward" (zero_grad and backward), "optimizer" (Adam's step). The recipe's gradient-norm
  clip (5) is left out on both sides (the stilts side has no clip outside its trainer); it
  costs one pass over the gradients.

Both are stateless: `reset_states()` on the ElmoLstm before every forward, so AllenNLP's
stateful LSTM never carries states from one batch into the next. Each child runs one warm-up
iteration and reports the median over `--iters` more.

Shapes (`--shape`):
- `small`: the published small model (elmo_2x1024_128_2048cnn_1xhighway), options read from
  $STILTS_MODELS_DIR/elmo_small_2x1024_128_2048cnn_1xhighway/
  elmo_2x1024_128_2048cnn_1xhighway_options.json when the variable is set, else the same values
  hard-coded: char_cnn relu, filters [[1,32],[2,32],[3,64],[4,128],[5,256],[6,512],[7,1024]]
  (2048), n_highway 1, character embedding dim 16, n_characters 262, 50 characters per token;
  lstm dim (cell) 1024, projection_dim 128, 2 layers, cell_clip 3, proj_clip 3, skip connections.
  Output 256 wide.
- `cpu`: the random ELMo of the CPU-scale grids: the same char_cnn with filters
  [[1,32],[2,32],[3,64],[4,128]] (256), n_highway 1; lstm dim 256, projection_dim 64, 2 layers,
  clips 3, skip connections. Output 128 wide.

Weights are random: the options file and an HDF5 weight file in the released layout (written
with h5py to a temporary directory; every dataset, biases included, normal with std 0.1 from
numpy's default_rng(0); char_embed has n_characters - 1 rows as in the released files) are
loaded by _ElmoBiLm itself, so its own loading code runs too. The scalar mix starts as
AllenNLP initialises it (zeros, gamma 1); the two linears from torch.manual_seed(0).

Input: BATCH = 32 sentences of WORDS = 20 words each, no padding. Word j of sentence i is
3 + (i * 7 + j * 3) % 8 lowercase letters (3 to 10), drawn in order (i, then j, then letter)
with torch.randint(0, 26, generator=torch.Generator().manual_seed(0)); the character ids come
from allennlp.modules.elmo.batch_to_ids on those word lists ([32, 20, 50], int64). They are
built once, outside the timed loop. `torch.set_num_threads` from `--threads` (default 2).
Peak RSS is the process's ru_maxrss.

AllenNLP is imported with `install_allennlp_shim` from scripts/make_elmo_fixtures.py (importing
that module has no side effects beyond its imports: torch, h5py, numpy, safetensors), so the
venv is the one that script documents:

    python3 -m venv .venv/ref
    .venv/ref/bin/pip install torch h5py numpy safetensors transformers
    .venv/ref/bin/pip install --no-deps allennlp==2.10.1 dill base58 lmdb

Run alone:  .venv/ref/bin/python scripts/bench_elmo_torch.py --child train --shape cpu --iters 2
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

BATCH, WORDS, HIDDEN, DROPOUT, STD = 32, 20, 512, 0.2, 0.1
LR, EPS = 1e-4, 1e-8
SMALL_OPTIONS_FILE = (
    "elmo_small_2x1024_128_2048cnn_1xhighway/elmo_2x1024_128_2048cnn_1xhighway_options.json"
)


def char_cnn(filters):
    return {
        "activation": "relu", "filters": filters, "n_highway": 1, "embedding": {"dim": 16},
        "n_characters": 262, "max_characters_per_token": 50,
    }


def lstm(dim, projection_dim):
    return {
        "use_skip_connections": True, "projection_dim": projection_dim, "cell_clip": 3,
        "proj_clip": 3, "dim": dim, "n_layers": 2,
    }


SHAPES = {
    "small": {
        "lstm": lstm(1024, 128),
        "char_cnn": char_cnn([[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]),
    },
    "cpu": {
        "lstm": lstm(256, 64),
        "char_cnn": char_cnn([[1, 32], [2, 32], [3, 64], [4, 128]]),
    },
}


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def options_for(shape):
    models = os.environ.get("STILTS_MODELS_DIR")
    if shape == "small" and models:
        return json.loads((Path(models) / SMALL_OPTIONS_FILE).read_text(encoding="utf-8"))
    return SHAPES[shape]


def write_random_weights(path, options):
    """Random weights (normal, std 0.1) in the released HDF5 layout."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    normal = lambda *shape: (rng.standard_normal(shape) * STD).astype(np.float32)
    cnn, lstm_opts = options["char_cnn"], options["lstm"]
    dim = cnn["embedding"]["dim"]
    n_filters = sum(n for _, n in cnn["filters"])
    proj, cell = lstm_opts["projection_dim"], lstm_opts["dim"]
    data = {"char_embed": normal(cnn["n_characters"] - 1, dim)}
    for i, (width, num) in enumerate(cnn["filters"]):
        data[f"CNN/W_cnn_{i}"] = normal(1, width, dim, num)
        data[f"CNN/b_cnn_{i}"] = normal(num)
    for k in range(cnn["n_highway"]):
        data[f"CNN_high_{k}/W_carry"] = normal(n_filters, n_filters)
        data[f"CNN_high_{k}/W_transform"] = normal(n_filters, n_filters)
        data[f"CNN_high_{k}/b_carry"] = normal(n_filters)
        data[f"CNN_high_{k}/b_transform"] = normal(n_filters)
    data["CNN_proj/W_proj"] = normal(n_filters, proj)
    data["CNN_proj/b_proj"] = normal(proj)
    for d in range(2):
        for layer in range(lstm_opts["n_layers"]):
            base = f"RNN_{d}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"
            data[f"{base}/W_0"] = normal(2 * proj, 4 * cell)  # input rows, then recurrent rows
            data[f"{base}/B"] = normal(4 * cell)
            data[f"{base}/W_P_0"] = normal(cell, proj)
    with h5py.File(path, "w") as f:
        for name, value in data.items():
            f.create_dataset(name, data=value, dtype="<f4")


def load_allennlp():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from make_elmo_fixtures import install_allennlp_shim

    elmo, _, _ = install_allennlp_shim()
    from allennlp.modules.scalar_mix import ScalarMix
    from allennlp.nn import util

    return elmo, ScalarMix, util


def build(torch, elmo, ScalarMix, shape, requires_grad):
    options = options_for(shape)
    with tempfile.TemporaryDirectory() as tmp:
        options_file, weight_file = Path(tmp) / "options.json", Path(tmp) / "weights.hdf5"
        options_file.write_text(json.dumps(options), encoding="utf-8")
        write_random_weights(weight_file, options)
        bilm = elmo._ElmoBiLm(str(options_file), str(weight_file), requires_grad=requires_grad)
    torch.manual_seed(0)
    mix = ScalarMix(bilm.num_layers, do_layer_norm=False)
    width = bilm.get_output_dim()  # 2 * projection_dim
    model = torch.nn.ModuleDict(
        dict(
            bilm=bilm,
            mix=mix,
            dropout=torch.nn.Dropout(p=DROPOUT),
            hidden=torch.nn.Linear(width, HIDDEN),
            head=torch.nn.Linear(HIDDEN, 2),
        )
    )
    return model


def inputs(torch, elmo):
    g = torch.Generator().manual_seed(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    sentences = []
    for i in range(BATCH):
        words = []
        for j in range(WORDS):
            n = 3 + (i * 7 + j * 3) % 8
            words.append("".join(letters[k] for k in torch.randint(0, 26, (n,), generator=g).tolist()))
        sentences.append(words)
    return elmo.batch_to_ids(sentences)  # [BATCH, WORDS, 50]


def forward(model, util, char_ids):
    model["bilm"]._elmo_lstm.reset_states()  # stateless: fresh LSTM states every batch
    out = model["bilm"](char_ids)
    with_bos_eos = model["mix"](out["activations"], out["mask"])
    mixed, mask = util.remove_sentence_boundaries(with_bos_eos, out["mask"])
    words = model["hidden"](model["dropout"](mixed))  # [batch, words, 512]
    pooled = util.masked_max(words, mask.unsqueeze(-1), dim=1)  # [batch, 512]
    return model["head"](pooled)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def child_infer(torch, shape, iters):
    elmo, ScalarMix, util = load_allennlp()
    model = build(torch, elmo, ScalarMix, shape, requires_grad=False)
    model.eval()
    char_ids = inputs(torch, elmo)
    times = []
    with torch.no_grad():
        for i in range(iters + 1):
            start = time.perf_counter()
            forward(model, util, char_ids)
            if i > 0:
                times.append(time.perf_counter() - start)
    secs = median(times)
    return dict(secs=secs, examples_per_s=BATCH / secs, peak_rss_mib=peak_rss_mib())


def child_train(torch, shape, iters):
    elmo, ScalarMix, util = load_allennlp()
    model = build(torch, elmo, ScalarMix, shape, requires_grad=True)
    model.train()
    params = list(model.parameters())
    assert all(p.requires_grad for p in params), "the whole model must be trainable"
    opt = torch.optim.Adam(params, lr=LR, eps=EPS, weight_decay=0.0)
    char_ids = inputs(torch, elmo)
    labels = torch.arange(BATCH) % 2
    fwd, bwd, step, total = [], [], [], []
    for i in range(iters + 1):
        t0 = time.perf_counter()
        logits = forward(model, util, char_ids)
        loss = torch.nn.functional.cross_entropy(logits, labels)
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
    ap.add_argument("--child", required=True, choices=["infer", "train"])
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.child == "infer":
        out = child_infer(torch, args.shape, args.iters)
    else:
        out = child_train(torch, args.shape, args.iters)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
