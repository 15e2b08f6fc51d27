"""Malicious PyTorch checkpoints for the pickle guard's test (crates/stilts-models/tests/pickle.rs).

Each `pytorch_model.bin` is a real code-executing pickle: unpickling it runs
`os.system("touch STILTS_PICKLE_RAN")`, which this script proves in a temporary directory
before it writes anything. Two layouts, as `torch.save` writes them: the zip archive
(`archive/data.pkl`, torch >= 1.6) and the legacy stream of pickles. Plain Python, no torch:

    python3 scripts/make_pickle_fixtures.py
"""

import collections
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "crates", "stilts-models", "tests", "fixtures")
MARKER = "STILTS_PICKLE_RAN"


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def state_dict_pickle(protocol):
    state = collections.OrderedDict()
    state["bert.embeddings.word_embeddings.weight"] = Payload()
    return pickle.dumps(state, protocol=protocol)


def prove_it_runs(data):
    """Unpickles `data` in a fresh interpreter inside a temporary directory."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
            input=data,
            cwd=tmp,
            check=True,
        )
        assert os.path.exists(os.path.join(tmp, MARKER)), "the payload did not run"


def write(name, data_for_check, writer):
    prove_it_runs(data_for_check)
    out = os.path.join(FIXTURES, name)
    os.makedirs(out, exist_ok=True)
    shutil.copy(os.path.join(FIXTURES, "tiny-bert", "config.json"), os.path.join(out, "config.json"))
    writer(os.path.join(out, "pytorch_model.bin"))
    print("wrote", out)


def main():
    zipped = state_dict_pickle(2)

    def write_zip(path):
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", zipped)
            z.writestr("archive/version", "3\n")

    write("evil-pickle-zip", zipped, write_zip)

    legacy_object = state_dict_pickle(2)

    def write_legacy(path):
        with open(path, "wb") as f:
            for value in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001}):
                f.write(pickle.dumps(value, protocol=2))
            f.write(legacy_object)
            f.write(pickle.dumps([], protocol=2))

    write("evil-pickle-legacy", legacy_object, write_legacy)


if __name__ == "__main__":
    main()
