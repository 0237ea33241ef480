#!/usr/bin/env python3
"""Make the real-library fixtures of ``tests/data/formats/configs/`` (see its MANIFEST.md).

Run it with a virtualenv that has hydra-core, omegaconf, skops, scikit-learn, dill and
cloudpickle (never the system interpreter), and point it at a NeMo and a Hydra checkout (git
directories) and at an interpreter with torch for the NeMo checkpoint::

    python3 -m venv /tmp/venv-configs
    /tmp/venv-configs/bin/pip install hydra-core omegaconf skops scikit-learn dill cloudpickle
    /tmp/venv-configs/bin/python scripts/make_configs_fixtures.py \\
        --nemo-repo /path/NeMo/.git --hydra-repo /path/hydra/.git --torch-python python3

Nothing here is loaded by the tests: they scan the files statically.
"""

from __future__ import annotations

import argparse
import gzip
import io
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "formats" / "configs"
NEMO_CONFIG = "examples/asr/conf/conformer/conformer_ctc_bpe.yaml"
NEMO_TARGET = "nemo.collections.asr.models.ctc_bpe_models.EncDecCTCModelBPE"
HYDRA_EXAMPLES = (
    "examples/instantiate/docs_example/config.yaml",
    "examples/instantiate/object/conf/config.yaml",
    "examples/instantiate/object_recursive/config.yaml",
    "examples/instantiate/partial/config.yaml",
    "examples/instantiate/schema_recursive/config.yaml",
)
# a state dict shaped like a tiny linear CTC decoder (what the NeMo archive carries)
WEIGHTS_CODE = """
import sys, torch
torch.manual_seed(0)
sd = {"decoder.decoder_layers.0.weight": torch.randn(8, 4, 1),
      "decoder.decoder_layers.0.bias": torch.zeros(8)}
torch.save(sd, sys.argv[1])
"""


def git_show(repo: str, commit: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "--git-dir", repo, "show", f"{commit}:{path}"], check=True, capture_output=True
    ).stdout


def rev(repo: str) -> str:
    return (
        subprocess.run(
            ["git", "--git-dir", repo, "rev-parse", "HEAD"], check=True, capture_output=True
        )
        .stdout.decode()
        .strip()
    )


def tar_bytes(members: dict[str, bytes], compress: bool) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    data = raw.getvalue()
    return gzip.compress(data, mtime=0) if compress else data


def make_nemo(repo: str, torch_python: str) -> list[str]:
    from omegaconf import OmegaConf

    commit = rev(repo)
    full = OmegaConf.create(git_show(repo, commit, NEMO_CONFIG).decode())
    # what SaveRestoreConnector writes: the model section, resolved, plus the class and version
    model = OmegaConf.to_container(full.model, resolve=False)
    assert isinstance(model, dict)
    model["sample_rate"] = 16000
    model["target"] = NEMO_TARGET
    model["nemo_version"] = "2.5.0"
    text = OmegaConf.to_yaml(OmegaConf.create(model)).replace("${model.sample_rate}", "16000")
    weights = OUT / "_weights.ckpt"
    subprocess.run([torch_python, "-c", WEIGHTS_CODE, str(weights)], check=True)
    ckpt = weights.read_bytes()
    weights.unlink()
    members = {
        "./model_config.yaml": text.encode(),
        "./model_weights.ckpt": ckpt,
        "./vocab.txt": b"".join(f"tok{i}\n".encode() for i in range(32)),
    }
    (OUT / "ok-conformer-ctc.nemo").write_bytes(tar_bytes(members, compress=False))
    (OUT / "ok-conformer-ctc-gz.nemo").write_bytes(tar_bytes(members, compress=True))
    (OUT / "ok-model_config.yaml").write_text(text)
    return [f"NeMo {NEMO_CONFIG} @ NVIDIA/NeMo {commit}"]


def make_hydra(repo: str) -> list[str]:
    commit = rev(repo)
    for path in HYDRA_EXAMPLES:
        name = "hydra-" + path.removeprefix("examples/instantiate/").replace("/", "-")
        (OUT / name).write_bytes(git_show(repo, commit, path))
    return [f"hydra {p} @ facebookresearch/hydra {commit}" for p in HYDRA_EXAMPLES]


SKOPS_CODE = {
    "logreg": "LogisticRegression().fit(X, y)",
    "pipeline": 'Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y)',
    "forest": "RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)",
    "hgb": "HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y)",
}


def make_skops() -> list[str]:
    import numpy as np
    import sklearn
    import skops
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    names = {
        "LogisticRegression": LogisticRegression,
        "Pipeline": Pipeline,
        "StandardScaler": StandardScaler,
        "RandomForestClassifier": RandomForestClassifier,
        "HistGradientBoostingClassifier": HistGradientBoostingClassifier,
    }
    rng = np.random.RandomState(0)
    X = rng.randn(60, 4)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    out = []
    for name, code in SKOPS_CODE.items():
        model = eval(code, {**names, "X": X, "y": y})  # noqa: S307 - our own constant
        path = OUT / f"ok-{name}.skops"
        sio.dump(model, path)
        untrusted = sio.get_untrusted_types(file=path)
        out.append(
            f"skops {skops.__version__} sklearn {sklearn.__version__}: {path.name} = "
            f"{code}; get_untrusted_types = {untrusted}"
        )
    return out


PICKLED_FUNCTIONS = """
def add_one(x):
    return x + 1


class Scaler:
    def __init__(self, k):
        self.k = k

    def __call__(self, x):
        return x * self.k


OBJECTS = {"lambda": lambda x: x * 2, "function": add_one, "class": Scaler}
"""


def make_pickled_functions() -> list[str]:
    """dill and cloudpickle pickles of a lambda, a function and a class defined in
    ``__main__`` (what a notebook pickles): defined by exec in a fresh ``__main__``-named
    namespace, so both libraries serialise them by value, with their bytecode."""
    import types

    import cloudpickle
    import dill

    main = types.ModuleType("__main__")
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = main
    try:
        exec(compile(PICKLED_FUNCTIONS, "<fixture>", "exec"), main.__dict__)  # noqa: S102
        out = []
        for lib in (dill, cloudpickle):
            for name, obj in main.__dict__["OBJECTS"].items():
                path = OUT / f"{lib.__name__}-{name}.pkl"
                path.write_bytes(lib.dumps(obj, protocol=4))
                out.append(f"{lib.__name__} {lib.__version__}: {path.name} = dumps({name})")
        return out
    finally:
        sys.modules["__main__"] = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nemo-repo", required=True)
    ap.add_argument("--hydra-repo", required=True)
    ap.add_argument("--torch-python", default="python3")
    opts = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    made = make_nemo(opts.nemo_repo, opts.torch_python) + make_hydra(opts.hydra_repo)
    made += make_skops()
    made += make_pickled_functions()
    for line in made:
        print(line)
    print(f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
