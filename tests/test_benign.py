"""Realistic benign artifacts made with the real libraries must not fail the scan.

False alarms are what make people turn a scanner off, so every artifact here must give no
finding at or above the default threshold (medium); the only intended exceptions are named
in ``INTENDED`` with the reason.
"""

from __future__ import annotations

import datetime
import pickle
import random
import warnings
from pathlib import Path

import numpy as np
import pytest

from modelscan_lite.model import Severity

from .helpers import scan

torch = pytest.importorskip("torch")
joblib = pytest.importorskip("joblib")

# the pickle suite runs on both walkers: the pure-Python reference and the compiled core
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("walker")]


class CustomNet(torch.nn.Module):  # a user class: pickled by reference to this module
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)


# artifact name -> (rule, why) for findings that are intended
INTENDED = {
    "full_custom_module.pt": ("P105", "a full torch.save of a user class imports that class"),
    "object_array.npy": ("A206", "object arrays need allow_pickle=True (low severity)"),
}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("benign")
    with warnings.catch_warnings():
        # the libraries' own deprecation notices while *making* artifacts are not under test
        warnings.simplefilter("ignore")
        _make(d)
    return d


def _make(d: Path) -> None:
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(
        nn.Linear(4, 8),
        nn.ReLU(),
        nn.LayerNorm(8),
        nn.Dropout(0.1),
        nn.Embedding(10, 4),
        nn.GELU(),
        nn.BatchNorm1d(4),
        nn.Conv2d(1, 2, 3),
        nn.LSTM(4, 4),
        nn.MultiheadAttention(4, 2),
    )
    torch.save(model.state_dict(), d / "state_dict.pt")
    torch.save(model.state_dict(), d / "state_dict_legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(model, d / "full_module.pt")
    torch.save(CustomNet(), d / "full_custom_module.pt")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sum(p.sum() for p in model.parameters()).backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    torch.save(
        {
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "epoch": 3,
            "rng": torch.get_rng_state(),
            "np_rng": np.random.get_state(),
            "py_rng": random.getstate(),
            "when": datetime.datetime(2024, 5, 1),
        },
        d / "training_state.pt",
    )
    torch.save(
        {
            "bf16": torch.zeros(3, dtype=torch.bfloat16),
            "fp8": torch.zeros(2, dtype=torch.float8_e4m3fn),
            "sparse": torch.zeros(3, 3).to_sparse(),
            "quant": torch.quantize_per_tensor(torch.rand(3), 0.1, 0, torch.quint8),
            "param": nn.Parameter(torch.zeros(2)),
            "device": torch.device("cpu"),
            "dtype": torch.float16,
            "size": torch.Size([2, 3]),
            "shared": [torch.ones(2)] * 3,
        },
        d / "tensor_types.pt",
    )
    torch.jit.save(
        torch.jit.script(nn.Sequential(nn.Linear(3, 3), nn.ReLU())), d / "torchscript.pt"
    )
    with open(d / "tensor_in_plain_pickle.pkl", "wb") as f:
        pickle.dump({"t": torch.ones(3)}, f)

    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    x = rng.random((40, 4))
    y = (x[:, 0] > 0.5).astype(int)
    estimators = {
        "pipeline": make_pipeline(StandardScaler(), PCA(2), LogisticRegression()).fit(x, y),
        "forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y),
        "boosting": GradientBoostingClassifier(n_estimators=3, random_state=0).fit(x, y),
        "tfidf": TfidfVectorizer().fit(["hello world", "foo bar baz"]),
        "columns": ColumnTransformer(
            [("s", StandardScaler(), [0, 1]), ("o", OneHotEncoder(), [2])]
        ).fit(np.c_[x[:, :2], (x[:, 2] * 3).astype(int)]),
    }
    for name, est in estimators.items():
        joblib.dump(est, d / f"{name}.joblib")
        with open(d / f"{name}.pkl", "wb") as f:
            pickle.dump(est, f)
    for codec in ("zlib", "gzip", "bz2", "xz", "lzma"):
        joblib.dump(estimators["forest"], d / f"forest.{codec}.joblib", compress=(codec, 3))

    from transformers import TrainingArguments

    torch.save(TrainingArguments(output_dir=str(d / "out"), report_to=[]), d / "training_args.bin")

    np.save(d / "array.npy", np.arange(10.0))
    np.save(d / "object_array.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    np.savez(d / "arrays.npz", a=np.arange(3), b=np.ones((2, 2)))
    np.savez_compressed(d / "arrays_compressed.npz", a=np.arange(3))
    with open(d / "numpy_objects.pkl", "wb") as f:
        pickle.dump(
            {
                "a": np.arange(5),
                "f": np.float32(3),
                "gen": np.random.default_rng(0),
                "rs": np.random.RandomState(0),
                "dt": np.dtype("f4"),
            },
            f,
            protocol=5,
        )
    for proto in range(6):
        with open(d / f"plain_p{proto}.pkl", "wb") as f:
            pickle.dump(
                {
                    "a": [1, 2.5, "x", b"y", None, True, (1, 2), {3}],
                    "big": b"q" * 100_000,
                    "when": datetime.date(2024, 1, 1),
                },
                f,
                protocol=proto,
            )


def test_artifacts_were_made(artifacts: Path) -> None:
    assert len(list(artifacts.iterdir())) >= 30


def test_no_benign_artifact_fails_the_default_threshold(artifacts: Path) -> None:
    failures = []
    for path in sorted(artifacts.iterdir()):
        if path.is_dir():
            continue
        result = scan(path)
        for f in result.findings:
            intended = INTENDED.get(path.name)
            if intended and f.rule == intended[0]:
                continue
            if f.severity >= Severity.MEDIUM or f.rule.startswith("P"):
                failures.append((path.name, f.rule, f.message))
        assert result.format not in ("unknown", "text"), path.name
    assert not failures, failures


@pytest.mark.parametrize("name, rule", sorted((k, v[0]) for k, v in INTENDED.items()))
def test_intended_findings_are_exactly_the_documented_ones(
    artifacts: Path, name: str, rule: str
) -> None:
    result = scan(artifacts / name)
    assert {f.rule for f in result.findings} == {rule}
