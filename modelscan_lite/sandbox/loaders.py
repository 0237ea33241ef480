"""The real loaders, run only inside the sandboxed child, and the inference sanity checks.

Each loader has a ``warm`` step (library imports, done before the child is watched so they are
not noise) and a ``run`` step (load the artifact for real, run one inference where the format
has one, check the outputs). ``run`` returns a JSON-able summary; what goes wrong raises, and the
child turns the exception into a load or inference failure.

This module deserializes on purpose: nothing outside ``modelscan_lite.sandbox`` may import it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import time
from collections.abc import Callable
from typing import Any

Summary = dict[str, Any]


class InferenceError(RuntimeError):
    """The artifact loaded but its one inference failed."""


class Unsupported(RuntimeError):
    """The loader library is not installed, so this artifact cannot be loaded here."""


def _require(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Unsupported(f"{module} is not installed (pip install {extra})") from exc


def _finite_report(arrays: dict[str, Any]) -> dict[str, Any]:
    """Shapes and the names of float arrays holding NaN or infinity."""
    import numpy as np

    shapes: dict[str, list[int]] = {}
    bad: list[str] = []
    for name, arr in arrays.items():
        a = np.asarray(arr)
        shapes[name] = list(a.shape)
        if a.dtype.kind in "fc" and a.size and not np.isfinite(a).all():
            bad.append(name)
    return {"shapes": shapes, "non_finite": bad}


# -- torch -----------------------------------------------------------------------------------


def warm_torch(target: str, scratch: str) -> None:
    import torch

    torch.set_num_threads(1)
    # a round trip through our own file: the first op starts the thread pools and the lazy
    # imports of serialization happen now, not while the artifact is watched
    own = os.path.join(scratch, "warm.pt")
    torch.save({"w": torch.zeros(2)}, own)
    torch.load(own, map_location="cpu", weights_only=False).get("w").sum()


def _tensors_of(obj: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    import torch

    out = {} if out is None else out
    if len(out) >= 10_000:
        return out
    if isinstance(obj, torch.Tensor):
        out[prefix or "tensor"] = obj.detach().float() if obj.is_floating_point() else obj
    elif isinstance(obj, dict):
        for k, v in list(obj.items())[:10_000]:
            _tensors_of(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj[:10_000]):
            _tensors_of(v, f"{prefix}[{i}]", out)
    elif isinstance(obj, torch.nn.Module):
        for k, v in obj.state_dict().items():
            _tensors_of(v, f"{prefix}.{k}" if prefix else k, out)
    return out


def _weights_summary(kind: str, obj: Any) -> Summary:
    """How many tensors a loaded object holds, and which dense ones are not finite."""
    import torch

    tensors = _tensors_of(obj)
    dense = {k: v.numpy() for k, v in tensors.items() if v.layout == torch.strided}
    return {"object": kind, "tensors": len(tensors), "weights": _finite_report(dense)}


def run_torch(path: str, timings: dict[str, float]) -> Summary:
    import torch

    t0 = time.perf_counter()
    obj = torch.load(path, map_location="cpu", weights_only=False)
    timings["load"] = time.perf_counter() - t0
    return _weights_summary(type(obj).__name__, obj)


def run_torchscript(path: str, timings: dict[str, float]) -> Summary:
    import torch

    t0 = time.perf_counter()
    module = torch.jit.load(path, map_location="cpu")  # type: ignore[no-untyped-call]
    timings["load"] = time.perf_counter() - t0
    return _weights_summary("ScriptModule", module)


# -- pickle / joblib / numpy -------------------------------------------------------------


def warm_pickle(target: str, scratch: str) -> None:
    import pickle  # noqa: F401

    try:
        import joblib  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        pass


def run_pickle(path: str, timings: dict[str, float]) -> Summary:
    t0 = time.perf_counter()
    try:
        import joblib
    except ImportError:
        import pickle

        with open(path, "rb") as f:
            obj = pickle.load(f)  # noqa: S301 - the sandbox is where loading happens
    else:
        obj = joblib.load(path)
    timings["load"] = time.perf_counter() - t0
    summary: Summary = {"object": type(obj).__qualname__}
    n_features = getattr(obj, "n_features_in_", None)
    if (
        callable(getattr(obj, "predict", None))
        and isinstance(n_features, int)
        and 0 < n_features < 1_000_000
    ):
        import numpy as np

        t1 = time.perf_counter()
        try:
            pred = obj.predict(np.zeros((1, n_features)))
        except Exception as exc:
            raise InferenceError(
                f"predict() on one all-zero row failed: {type(exc).__name__}: {exc}"
            ) from exc
        timings["inference"] = time.perf_counter() - t1
        summary["outputs"] = _finite_report({"predict": pred})
    return summary


def run_numpy(path: str, timings: dict[str, float]) -> Summary:
    import numpy as np

    t0 = time.perf_counter()
    loaded = np.load(path, allow_pickle=True)
    arrays = dict(loaded.items()) if hasattr(loaded, "files") else {"array": loaded}
    timings["load"] = time.perf_counter() - t0
    return {
        "object": type(loaded).__name__,
        "weights": _finite_report(
            {
                k: v
                for k, v in arrays.items()
                if getattr(v, "dtype", None) is not None and v.dtype.kind != "O"
            }
        ),
    }


# -- safetensors / gguf / onnx ----------------------------------------------------------------


def warm_safetensors(target: str, scratch: str) -> None:
    _require("safetensors.numpy", "safetensors")


def run_safetensors(path: str, timings: dict[str, float]) -> Summary:
    from safetensors import safe_open

    t0 = time.perf_counter()
    arrays = {}
    with safe_open(path, framework="np") as f:
        for key in f.keys():  # noqa: SIM118 - safe_open is not iterable
            arrays[key] = f.get_tensor(key)
    timings["load"] = time.perf_counter() - t0
    return {"tensors": len(arrays), "weights": _finite_report(arrays)}


def warm_gguf(target: str, scratch: str) -> None:
    _require("gguf", "gguf")
    with contextlib.suppress(ImportError):
        import llama_cpp  # noqa: F401


def run_gguf(path: str, timings: dict[str, float]) -> Summary:
    import gguf

    t0 = time.perf_counter()
    reader = gguf.GGUFReader(path)
    timings["load"] = time.perf_counter() - t0
    summary: Summary = {"tensors": len(reader.tensors), "fields": len(reader.fields)}
    try:
        import llama_cpp
    except ImportError:
        summary["note"] = "no forward pass: llama-cpp-python is not installed"
        return summary
    t1 = time.perf_counter()
    try:
        llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_threads=1, verbose=False)
        tokens = llm.tokenize(b"Hello")
        llm.eval(tokens)
        logits = llm.scores[len(tokens) - 1]
    except Exception as exc:
        raise InferenceError(f"llama.cpp forward pass failed: {type(exc).__name__}: {exc}") from exc
    timings["inference"] = time.perf_counter() - t1
    summary["outputs"] = _finite_report({"logits": logits})
    summary["expected"] = {"logits": [llm.n_vocab()]}
    return summary


def warm_onnx(target: str, scratch: str) -> None:
    ort = _require("onnxruntime", "onnxruntime")
    import numpy  # noqa: F401

    ort.set_default_logger_severity(3)
    with contextlib.suppress(ImportError):
        import onnx  # noqa: F401 - read for the declared output shapes; registers exit hooks


_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def _declared(dims: list[Any]) -> list[int | None]:
    return [d if isinstance(d, int) and d >= 0 else None for d in dims]


def _graph_outputs(path: str) -> dict[str, list[int | None]]:
    """Output shapes as the graph declares them (onnxruntime reports its own inference,
    which silently drops a declared dimension that contradicts it)."""
    try:
        import onnx
    except ImportError:
        return {}
    graph = onnx.load(path, load_external_data=False).graph
    return {
        o.name: [
            d.dim_value if d.HasField("dim_value") else None for d in o.type.tensor_type.shape.dim
        ]
        for o in graph.output
    }


def run_onnx(path: str, timings: dict[str, float]) -> Summary:
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    t0 = time.perf_counter()
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    timings["load"] = time.perf_counter() - t0
    feeds = {}
    for inp in session.get_inputs():
        dtype = _ORT_DTYPES.get(inp.type)
        if dtype is None:
            raise InferenceError(
                f"input {inp.name!r} has type {inp.type}, which cannot be synthesised"
            )
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        feeds[inp.name] = np.ones(shape, dtype=dtype)
    t1 = time.perf_counter()
    try:
        outputs = session.run(None, feeds)
    except Exception as exc:
        raise InferenceError(f"onnxruntime inference failed: {type(exc).__name__}: {exc}") from exc
    timings["inference"] = time.perf_counter() - t1
    names = [o.name for o in session.get_outputs()]
    expected = _graph_outputs(path) or {
        o.name: _declared(list(o.shape)) for o in session.get_outputs()
    }
    return {
        "inputs": {k: list(v.shape) for k, v in feeds.items()},
        "outputs": _finite_report(dict(zip(names, outputs, strict=False))),
        "expected": expected,
    }


# -- transformers ---------------------------------------------------------------------------


_TINY = {
    "hidden_size": 16,
    "n_embd": 16,
    "d_model": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "n_layer": 1,
    "num_attention_heads": 2,
    "n_head": 2,
    "num_key_value_heads": 2,
    "vocab_size": 64,
    "max_position_embeddings": 32,
    "n_positions": 32,
}


def warm_transformers(target: str, scratch: str) -> None:
    """A full dry run on a tiny model of the same ``model_type``, saved in scratch.

    transformers imports most of itself lazily (the model's module, safetensors loading,
    hub helpers that probe IPv6 or the user name, dynamo's exit hooks); doing it all once on
    our own model keeps that out of what the artifact is watched doing. Only ``model_type``
    is read from the artifact here, as a plain JSON string.
    """
    import json

    warm_torch(target, scratch)
    import torch

    transformers = _require("transformers", "transformers")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        with open(os.path.join(target, "config.json"), encoding="utf-8") as f:
            model_type = json.load(f).get("model_type")
    except (OSError, ValueError, AttributeError):
        model_type = None
    try:
        config = transformers.AutoConfig.for_model(str(model_type or "gpt2"), **_TINY)
        model = transformers.AutoModel.from_config(config)
        own = os.path.join(scratch, "warm-model")
        model.save_pretrained(own)
        model = transformers.AutoModel.from_pretrained(own, local_files_only=True)
        with torch.no_grad():
            model(input_ids=torch.tensor([[1, 2, 3]]))
    except Exception:  # noqa: S110 - an architecture the tiny config does not fit
        pass
    import tokenizers  # noqa: F401


def run_transformers(
    path: str, timings: dict[str, float], trust_remote_code: bool = False
) -> Summary:
    import torch
    import transformers

    t0 = time.perf_counter()
    config = transformers.AutoConfig.from_pretrained(
        path, local_files_only=True, trust_remote_code=trust_remote_code
    )
    model = transformers.AutoModel.from_pretrained(
        path, local_files_only=True, trust_remote_code=trust_remote_code
    )
    model.eval()
    tokenizer = None
    if any(
        os.path.exists(os.path.join(path, n))
        for n in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "tokenizer.model")
    ):
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            path, local_files_only=True, trust_remote_code=trust_remote_code
        )
    timings["load"] = time.perf_counter() - t0
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    if tokenizer is not None:
        ids = tokenizer("Hello world", return_tensors="pt")["input_ids"][:, :16]
    else:
        ids = torch.tensor([[1, 2, 3]]) % max(vocab, 1)
    t1 = time.perf_counter()
    try:
        with torch.no_grad():
            out = model(input_ids=ids)
    except Exception as exc:
        raise InferenceError(f"forward pass failed: {type(exc).__name__}: {exc}") from exc
    timings["inference"] = time.perf_counter() - t1
    arrays = {k: v.detach().float().numpy() for k, v in out.items() if isinstance(v, torch.Tensor)}
    hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
    expected: dict[str, list[int | None]] = {}
    if isinstance(hidden, int) and "last_hidden_state" in arrays:
        expected["last_hidden_state"] = [ids.shape[0], ids.shape[1], hidden]
    if vocab and "logits" in arrays:
        expected["logits"] = [ids.shape[0], ids.shape[1], vocab]
    return {"object": type(model).__name__, "outputs": _finite_report(arrays), "expected": expected}


def warm_keras(target: str, scratch: str) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 without TensorFlow
    _require("keras", "keras")


def run_keras(path: str, timings: dict[str, float]) -> Summary:
    """``keras.saving.load_model`` in safe mode (``.keras``; a legacy ``.h5`` ignores it,
    CVE-2025-9905), then one ``predict`` on zeros of each input's shape (None -> 1)."""
    import numpy as np

    keras = importlib.import_module("keras")  # optional: not a typed dependency
    t0 = time.perf_counter()
    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    timings["load"] = time.perf_counter() - t0
    summary: Summary = {"object": type(model).__name__, "layers": len(model.layers)}
    try:
        inputs = [
            np.zeros([d or 1 for d in t.shape], dtype=str(t.dtype or "float32"))
            for t in model.inputs
        ]
    except (AttributeError, TypeError, ValueError) as exc:
        summary["note"] = f"no inference: input shapes unknown ({exc})"
        return summary
    t1 = time.perf_counter()
    try:
        out = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    except Exception as exc:
        raise InferenceError(f"predict failed: {type(exc).__name__}: {exc}") from exc
    timings["inference"] = time.perf_counter() - t1
    outs = out if isinstance(out, list | tuple) else [out]
    summary["outputs"] = _finite_report({f"output_{i}": np.asarray(o) for i, o in enumerate(outs)})
    return summary


# -- tree models: XGBoost, LightGBM, CatBoost (data formats: the native library parses them) --


def _zero_row_predict(predict: Callable[[], Any], what: str, timings: dict[str, float]) -> Any:
    t1 = time.perf_counter()
    try:
        out = predict()
    except Exception as exc:
        raise InferenceError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
    timings["inference"] = time.perf_counter() - t1
    return out


_MAX_FEATURES = 1_000_000


def warm_xgboost(target: str, scratch: str) -> None:
    xgb = _require("xgboost", "xgboost")
    import numpy as np

    # train, save, load and predict our own model: the native library and the lazy imports
    # load now, not while the artifact is watched
    data = xgb.DMatrix(np.zeros((4, 2), dtype=np.float32), label=[0, 1, 0, 1])
    own = os.path.join(scratch, "warm.ubj")
    xgb.train({"nthread": 1, "max_depth": 1}, data, num_boost_round=1).save_model(own)
    xgb.Booster(params={"nthread": 1}, model_file=own).predict(data)


def run_xgboost(path: str, timings: dict[str, float]) -> Summary:
    """``xgboost.Booster.load_model``, then ``predict`` on one all-zero row of
    ``num_features()`` (the model's own feature names and types, categoricals included)."""
    import numpy as np

    xgb = importlib.import_module("xgboost")
    t0 = time.perf_counter()
    booster = xgb.Booster(params={"nthread": 1})
    booster.load_model(path)
    timings["load"] = time.perf_counter() - t0
    n = booster.num_features()
    summary: Summary = {
        "object": "Booster",
        "features": n,
        "rounds": booster.num_boosted_rounds(),
    }
    if not 0 < n < _MAX_FEATURES:
        summary["note"] = f"no inference: the model declares {n} features"
        return summary
    pred = _zero_row_predict(
        lambda: booster.predict(
            xgb.DMatrix(
                np.zeros((1, n), dtype=np.float32),
                feature_names=booster.feature_names,
                feature_types=booster.feature_types,
                enable_categorical=True,
            )
        ),
        "predict() on one all-zero row",
        timings,
    )
    summary["outputs"] = _finite_report({"predict": pred})
    return summary


def run_xgboost_binary(path: str, timings: dict[str, float]) -> Summary:
    """The legacy binary format: xgboost 3.1 removed its reader, so newer versions cannot
    load it at all (said, as a missing loader, rather than blamed on the file)."""
    xgb = importlib.import_module("xgboost")
    version = tuple(int(p) for p in re.findall(r"\d+", xgb.__version__)[:2])
    if version >= (3, 1):
        raise Unsupported(
            f"xgboost {xgb.__version__} cannot read the legacy binary format (removed in 3.1; "
            "pip install 'xgboost<3.1')"
        )
    return run_xgboost(path, timings)


def warm_lightgbm(target: str, scratch: str) -> None:
    lgb = _require("lightgbm", "lightgbm")
    import numpy as np

    rows = np.arange(40, dtype=np.float64).reshape(20, 2)
    params = {"num_threads": 1, "verbose": -1, "min_data_in_leaf": 1, "num_leaves": 2}
    model = lgb.train(params, lgb.Dataset(rows, label=[0, 1] * 10), num_boost_round=1)
    own = os.path.join(scratch, "warm.txt")
    model.save_model(own)
    lgb.Booster(model_file=own).predict(rows[:1], num_threads=1)


def run_lightgbm(path: str, timings: dict[str, float]) -> Summary:
    """``lightgbm.Booster(model_file=...)``, then ``predict`` on one all-zero row."""
    import numpy as np

    lgb = importlib.import_module("lightgbm")
    t0 = time.perf_counter()
    booster = lgb.Booster(model_file=path)
    timings["load"] = time.perf_counter() - t0
    n = booster.num_feature()
    summary: Summary = {"object": "Booster", "features": n, "trees": booster.num_trees()}
    if not 0 < n < _MAX_FEATURES:
        summary["note"] = f"no inference: the model declares {n} features"
        return summary
    pred = _zero_row_predict(
        lambda: booster.predict(np.zeros((1, n)), num_threads=1),
        "predict() on one all-zero row",
        timings,
    )
    summary["outputs"] = _finite_report({"predict": pred})
    return summary


def warm_catboost(target: str, scratch: str) -> None:
    catboost = _require("catboost", "catboost")
    import numpy as np

    rows = np.arange(40, dtype=np.float64).reshape(20, 2)
    model = catboost.CatBoost(
        {"iterations": 1, "depth": 1, "thread_count": 1, "verbose": False, "train_dir": scratch}
    )
    model.fit(rows, [0.0, 1.0] * 10)
    own = os.path.join(scratch, "warm.cbm")
    model.save_model(own)
    loaded = catboost.CatBoost()
    loaded.load_model(own)
    loaded.predict(catboost.Pool([[0.0, 0.0]]), thread_count=1)


def run_catboost(path: str, timings: dict[str, float]) -> Summary:
    """``CatBoost().load_model``, then ``predict`` on one row: 0 for numeric features, ``"0"``
    for categorical and text ones (embedding features cannot be synthesised: no inference)."""
    catboost = importlib.import_module("catboost")
    t0 = time.perf_counter()
    model = catboost.CatBoost()
    model.load_model(path)
    timings["load"] = time.perf_counter() - t0
    names = list(model.feature_names_ or [])
    cat = list(model.get_cat_feature_indices())
    text = list(model.get_text_feature_indices())
    summary: Summary = {"object": "CatBoost", "features": len(names), "trees": model.tree_count_}
    if model.get_embedding_feature_indices():
        summary["note"] = "no inference: embedding features cannot be synthesised"
        return summary
    if not 0 < len(names) < _MAX_FEATURES:
        summary["note"] = f"no inference: the model declares {len(names)} features"
        return summary
    row: list[Any] = ["0" if i in cat or i in text else 0.0 for i in range(len(names))]
    pred = _zero_row_predict(
        lambda: model.predict(
            catboost.Pool([row], cat_features=cat or None, text_features=text or None),
            thread_count=1,
        ),
        "predict() on one all-zero row",
        timings,
    )
    summary["outputs"] = _finite_report({"predict": pred})
    return summary


# -- skops -----------------------------------------------------------------------------------


def warm_skops(target: str, scratch: str) -> None:
    sio = _require("skops.io", "skops")
    import numpy  # noqa: F401

    # our own estimator through dump and load: skops' and scikit-learn's lazy imports (and
    # the exit handlers joblib registers on import) happen now
    linear = importlib.import_module("sklearn.linear_model")
    own = os.path.join(scratch, "warm.skops")
    sio.dump(linear.LogisticRegression().fit([[0.0], [1.0]], [0, 1]), own)
    sio.load(own).predict([[0.5]])


def run_skops(path: str, timings: dict[str, float]) -> Summary:
    """``skops.io.load`` with skops' default trust (no ``trusted`` list): a file holding a
    type skops does not trust by default is refused by skops itself, a load failure whose
    message names the types. Then ``predict`` on one all-zero row, as for pickles."""
    sio = importlib.import_module("skops.io")
    t0 = time.perf_counter()
    obj = sio.load(path)
    timings["load"] = time.perf_counter() - t0
    summary: Summary = {"object": type(obj).__qualname__}
    n_features = getattr(obj, "n_features_in_", None)
    if (
        callable(getattr(obj, "predict", None))
        and isinstance(n_features, int)
        and 0 < n_features < _MAX_FEATURES
    ):
        import numpy as np

        pred = _zero_row_predict(
            lambda: obj.predict(np.zeros((1, n_features))),
            "predict() on one all-zero row",
            timings,
        )
        summary["outputs"] = _finite_report({"predict": pred})
    return summary


# -- torch.package, torch.export (.pt2) ----------------------------------------------------------


def warm_torch_package(target: str, scratch: str) -> None:
    warm_torch(target, scratch)
    package = importlib.import_module("torch.package")
    own = os.path.join(scratch, "warm-package.pt")
    with package.PackageExporter(own) as exporter:
        exporter.save_source_string("warm_mod", "VALUE = 1\n")
        exporter.save_pickle("warm", "obj.pkl", {"v": 1})
    importer = package.PackageImporter(own)
    importer.import_module("warm_mod")
    importer.load_pickle("warm", "obj.pkl")


def run_torch_package(path: str, timings: dict[str, float]) -> Summary:
    """``torch.package.PackageImporter(path).load_pickle`` of the archive's first pickle
    (its package's modules are imported, their code runs: that is what is watched)."""
    package = importlib.import_module("torch.package")
    t0 = time.perf_counter()
    importer = package.PackageImporter(path)
    records = importer.zip_reader.get_all_records()
    pickles = [r for r in records if r.endswith(".pkl") and "/" in r and not r.startswith(".data/")]
    summary: Summary = {"pickles": len(pickles)}
    if not pickles:
        timings["load"] = time.perf_counter() - t0
        summary["note"] = "no pickle member: nothing for load_pickle to load"
        return summary
    folder, _, resource = pickles[0].rpartition("/")
    obj = importer.load_pickle(folder.replace("/", "."), resource, map_location="cpu")
    timings["load"] = time.perf_counter() - t0
    return {**summary, "member": pickles[0], **_weights_summary(type(obj).__name__, obj)}


def _warm_export_program(scratch: str) -> None:
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.lin(x))

    own = os.path.join(scratch, "warm.pt2")
    torch.export.save(torch.export.export(Tiny(), (torch.zeros(1, 2),)), own)
    program = torch.export.load(own)
    args, kwargs = program.example_inputs or ((torch.zeros(1, 2),), {})
    with torch.no_grad():
        program.module()(*args, **kwargs)


def warm_pt2(target: str, scratch: str) -> None:
    warm_torch(target, scratch)
    _warm_export_program(scratch)


def _export_outputs(program: Any) -> list[list[int | None]]:
    """The output shapes the exported graph declares (a symbolic dimension is None)."""
    shapes: list[list[int | None]] = []
    for node in program.graph.nodes:
        if node.op != "output":
            continue
        for value in node.args[0] if isinstance(node.args[0], list | tuple) else [node.args[0]]:
            shape = getattr(getattr(value, "meta", {}).get("val"), "shape", None)
            if shape is None:
                return []
            shapes.append([d if isinstance(d, int) else None for d in shape])
    return shapes


def run_pt2(path: str, timings: dict[str, float]) -> Summary:
    """``torch.export.load``, then the program's module run once on the sample inputs the
    archive saved (``data/sample_inputs``); without them, no inference."""
    import torch

    t0 = time.perf_counter()
    program = torch.export.load(path)
    timings["load"] = time.perf_counter() - t0
    summary = _weights_summary("ExportedProgram", dict(program.state_dict))
    example = program.example_inputs
    if example is None:
        summary["note"] = "no inference: the archive has no sample inputs"
        return summary
    args, kwargs = example
    t1 = time.perf_counter()
    try:
        with torch.no_grad():
            out = program.module()(*args, **kwargs)
    except Exception as exc:
        raise InferenceError(
            f"the exported program failed on its sample inputs: {type(exc).__name__}: {exc}"
        ) from exc
    timings["inference"] = time.perf_counter() - t1
    outs = _tensors_of(out, "output")
    arrays = {k: v.numpy() for k, v in outs.items() if v.layout == torch.strided}
    summary["outputs"] = _finite_report(arrays)
    declared = _export_outputs(program)
    if isinstance(out, torch.Tensor | list | tuple) and len(declared) == len(arrays):
        summary["expected"] = {name: want for name, want in zip(arrays, declared, strict=True)}
    return summary


# -- TensorFlow SavedModel, TFLite -------------------------------------------------------------


def _tensorflow() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf = _require("tensorflow", "tensorflow")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf


def warm_tf_savedmodel(target: str, scratch: str) -> None:
    tf = _tensorflow()

    class Tiny(tf.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.w = tf.Variable(tf.ones([2, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])  # type: ignore[untyped-decorator]
        def __call__(self, x: Any) -> Any:
            return {"y": tf.matmul(x, self.w)}

    own = os.path.join(scratch, "warm-savedmodel")
    tiny = Tiny()
    tf.saved_model.save(tiny, own, signatures=tiny.__call__)
    loaded = tf.saved_model.load(own)
    loaded.signatures["serving_default"](x=tf.zeros([1, 2]))
    # tf.data's runtime (its thread pool names its threads through /proc/self/task/*/comm)
    tf.data.Dataset.range(2).map(lambda n: n * 2).reduce(tf.constant(0, tf.int64), tf.add)


def _savedmodel_folder(path: str) -> str:
    """The folder to load: beside ``saved_model.pb``, or a zip/tar of one unpacked into the
    scratch dir (inside the sandbox: a member escaping it is refused and reported)."""
    import tarfile
    import tempfile
    import zipfile

    if os.path.isdir(path):
        return path
    if os.path.basename(path) == "saved_model.pb" or not (
        zipfile.is_zipfile(path) or tarfile.is_tarfile(path)
    ):
        return os.path.dirname(path) or "."
    out = tempfile.mkdtemp(prefix="savedmodel-")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            z.extractall(out)  # noqa: S202 - zipfile drops absolute and .. parts
    else:
        with tarfile.open(path) as t:
            t.extractall(out, filter="data")
    for root, _dirs, files in os.walk(out):
        if "saved_model.pb" in files:
            return root
    raise FileNotFoundError("no saved_model.pb in the archive")


def _tf_zeros(tf: Any, spec: Any) -> Any:
    dims = spec.shape.as_list() if spec.shape.rank is not None else None
    if dims is None:
        raise ValueError(f"input {spec.name!r} has an unknown rank")
    shape = [d if d is not None else 1 for d in dims]
    if spec.dtype == tf.string:
        return tf.fill(shape, "")
    return tf.zeros(shape, dtype=spec.dtype)


def run_tf_savedmodel(path: str, timings: dict[str, float]) -> Summary:
    """``tf.saved_model.load`` of the SavedModel folder, then its ``serving_default``
    signature (or the first one) called once on zeros of the declared input shapes."""
    tf = importlib.import_module("tensorflow")
    t0 = time.perf_counter()
    folder = _savedmodel_folder(path)
    loaded = tf.saved_model.load(folder)
    timings["load"] = time.perf_counter() - t0
    signatures = dict(loaded.signatures)
    summary: Summary = {"object": type(loaded).__name__, "signatures": sorted(signatures)}
    if not signatures:
        summary["note"] = "no inference: the SavedModel has no signature"
        return summary
    name = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
    fn = signatures[name]
    _args, specs = fn.structured_input_signature
    try:
        feeds = {k: _tf_zeros(tf, spec) for k, spec in specs.items()}
    except (ValueError, TypeError) as exc:
        summary["note"] = f"no inference: {exc}"
        return summary
    t1 = time.perf_counter()
    try:
        out = fn(**feeds)
    except Exception as exc:
        raise InferenceError(
            f"signature {name!r} failed on zeros: {type(exc).__name__}: {exc}"
        ) from exc
    timings["inference"] = time.perf_counter() - t1
    out = out if isinstance(out, dict) else {"output_0": out}
    summary["outputs"] = _finite_report({k: v.numpy() for k, v in out.items()})
    declared = fn.structured_outputs
    if isinstance(declared, dict):
        summary["expected"] = {
            k: spec.shape.as_list()
            for k, spec in declared.items()
            if k in out and getattr(spec, "shape", None) is not None and spec.shape.rank is not None
        }
    return summary


_TFLITE_INTERPRETERS = (
    ("ai_edge_litert.interpreter", "Interpreter"),
    ("tflite_runtime.interpreter", "Interpreter"),
    ("tensorflow", "lite.Interpreter"),
)


def _tflite_interpreter() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for module, name in _TFLITE_INTERPRETERS:
        try:
            found: Any = importlib.import_module(module)
            for attr in name.split("."):
                found = getattr(found, attr)
        except (ImportError, AttributeError):
            continue
        return found
    raise Unsupported(
        "no TFLite interpreter is installed (pip install ai-edge-litert, or tflite-runtime, "
        "or tensorflow)"
    )


def warm_tflite(target: str, scratch: str) -> None:
    _tflite_interpreter()
    import numpy  # noqa: F401


def run_tflite(path: str, timings: dict[str, float]) -> Summary:
    """The TFLite ``Interpreter`` (LiteRT, tflite-runtime or TensorFlow's, whichever is
    installed): ``allocate_tensors`` and one ``invoke`` on zeros of each input's shape."""
    import numpy as np

    interpreter_class = _tflite_interpreter()
    t0 = time.perf_counter()
    interpreter = interpreter_class(model_path=path, num_threads=1)
    try:
        interpreter.allocate_tensors()
    except RuntimeError as exc:
        if "Select TensorFlow op" in str(exc):  # Flex ops: this interpreter has no delegate
            raise Unsupported(
                f"the model uses Flex (select TensorFlow) ops, which {interpreter_class.__module__}"
                " cannot run without the Flex delegate"
            ) from exc
        raise
    timings["load"] = time.perf_counter() - t0
    inputs = interpreter.get_input_details()
    for detail in inputs:
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
    t1 = time.perf_counter()
    try:
        interpreter.invoke()
    except Exception as exc:
        raise InferenceError(f"invoke() on zeros failed: {type(exc).__name__}: {exc}") from exc
    timings["inference"] = time.perf_counter() - t1
    arrays: dict[str, Any] = {}
    expected: dict[str, list[int | None]] = {}
    for i, detail in enumerate(interpreter.get_output_details()):
        key = f"{i}:{detail.get('name', '')}"
        arrays[key] = interpreter.get_tensor(detail["index"])
        sig = detail.get("shape_signature", detail["shape"])
        expected[key] = [int(d) if d >= 0 else None for d in sig]
    return {
        "inputs": {d.get("name", str(d["index"])): list(map(int, d["shape"])) for d in inputs},
        "outputs": _finite_report(arrays),
        "expected": expected,
    }


# -- OpenVINO IR, Flax msgpack, ExecuTorch, NeMo ------------------------------------------------


def warm_openvino(target: str, scratch: str) -> None:
    ov = _require("openvino", "openvino")
    import numpy as np

    # compile and run our own one-op model: the CPU plugin (a native library) loads now
    ops = importlib.import_module("openvino.opset13")
    x = ops.parameter([1, 2], np.float32, name="x")
    model = ov.Model([ops.relu(x)], [x], "warm")
    ov.Core().compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 1})(
        {0: np.zeros((1, 2), np.float32)}
    )


def run_openvino(path: str, timings: dict[str, float]) -> Summary:
    """``openvino.Core().read_model`` (the ``.xml`` and the ``.bin`` beside it), compiled for
    the CPU, then one inference on zeros of each input's shape (a dynamic dimension -> 1)."""
    import numpy as np

    ov = importlib.import_module("openvino")
    core = ov.Core()
    t0 = time.perf_counter()
    model = core.read_model(path)
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 1})
    timings["load"] = time.perf_counter() - t0
    feeds = {}
    for i, port in enumerate(compiled.inputs):
        shape = port.get_partial_shape()
        if not shape.rank.is_static:
            return {"object": "Model", "note": f"no inference: input {i} has a dynamic rank"}
        dims = [d.get_length() if d.is_static else 1 for d in shape]
        feeds[i] = np.zeros(dims, dtype=port.get_element_type().to_dtype())
    t1 = time.perf_counter()
    try:
        result = compiled(feeds)
    except Exception as exc:
        raise InferenceError(f"inference on zeros failed: {type(exc).__name__}: {exc}") from exc
    timings["inference"] = time.perf_counter() - t1
    arrays: dict[str, Any] = {}
    expected: dict[str, list[int | None]] = {}
    for i, port in enumerate(compiled.outputs):
        key = f"{i}:{port.any_name if port.names else ''}"
        arrays[key] = result[port]
        declared = model.outputs[i].get_partial_shape()
        if declared.rank.is_static:
            expected[key] = [d.get_length() if d.is_static else None for d in declared]
    return {
        "object": "Model",
        "inputs": {str(k): list(v.shape) for k, v in feeds.items()},
        "outputs": _finite_report(arrays),
        "expected": expected,
    }


def _arrays_of(obj: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every array in a nested dict/list state (Flax's restored state), by its path."""
    import numpy as np

    out = {} if out is None else out
    if len(out) >= 10_000:
        return out
    if isinstance(obj, np.ndarray | np.generic):
        out[prefix or "array"] = obj
    elif isinstance(obj, dict):
        for k, v in list(obj.items())[:10_000]:
            _arrays_of(v, f"{prefix}/{k}" if prefix else str(k), out)
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj[:10_000]):
            _arrays_of(v, f"{prefix}/{i}" if prefix else str(i), out)
    return out


def warm_flax(target: str, scratch: str) -> None:
    serialization = _require("flax.serialization", "flax")
    import numpy as np

    serialization.msgpack_restore(serialization.msgpack_serialize({"w": np.zeros(2)}))


def run_flax(path: str, timings: dict[str, float]) -> Summary:
    """``flax.serialization.msgpack_restore`` of the file (a state dict: no model to run)."""
    import numpy as np

    serialization = importlib.import_module("flax.serialization")
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        state = serialization.msgpack_restore(f.read())
    timings["load"] = time.perf_counter() - t0
    arrays = _arrays_of(state)
    dense = {}
    for key, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype.kind in "biufc":
            dense[key] = arr
        elif arr.dtype.name.startswith(("bfloat16", "float8", "float4")):  # ml_dtypes
            dense[key] = arr.astype(np.float32)
    return {
        "object": type(state).__name__,
        "tensors": len(arrays),
        "weights": _finite_report(dense),
    }


# ExecuTorch ScalarType codes (c10::ScalarType) -> torch dtype names
_ET_DTYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16",
              6: "float32", 7: "float64", 11: "bool", 15: "bfloat16"}  # fmt: skip


def warm_executorch(target: str, scratch: str) -> None:
    runtime = _require("executorch.runtime", "executorch")
    warm_torch(target, scratch)
    runtime.Runtime.get()


def run_executorch(path: str, timings: dict[str, float]) -> Summary:
    """The ExecuTorch runtime (``executorch.runtime``): ``load_program`` and ``load_method``
    of ``forward``, then one ``execute`` on zeros of the method's declared input tensors."""
    import torch

    runtime = importlib.import_module("executorch.runtime")
    t0 = time.perf_counter()
    program = runtime.Runtime.get().load_program(path)
    names = sorted(program.method_names)
    summary: Summary = {"object": "Program", "methods": names}
    if "forward" not in names:
        timings["load"] = time.perf_counter() - t0
        summary["note"] = "no inference: the program has no forward method"
        return summary
    method = program.load_method("forward")
    timings["load"] = time.perf_counter() - t0
    try:
        meta = method.metadata
        inputs = []
        for i in range(meta.num_inputs()):
            info = meta.input_tensor_meta(i)
            dtype = _ET_DTYPES[int(info.dtype())]
            inputs.append(torch.zeros(list(info.sizes()), dtype=getattr(torch, dtype)))
    except Exception as exc:  # a non-tensor input, or a runtime without the metadata API
        summary["note"] = f"no inference: the inputs cannot be synthesised ({exc})"
        return summary
    t1 = time.perf_counter()
    try:
        outs = method.execute(inputs)
    except Exception as exc:
        raise InferenceError(f"forward on zeros failed: {type(exc).__name__}: {exc}") from exc
    timings["inference"] = time.perf_counter() - t1
    tensors = _tensors_of(list(outs), "output")
    summary["outputs"] = _finite_report(
        {k: v.numpy() for k, v in tensors.items() if v.layout == torch.strided}
    )
    return summary


def warm_nemo(target: str, scratch: str) -> None:
    _require("nemo.core", "nemo_toolkit")
    warm_torch(target, scratch)


def run_nemo(path: str, timings: dict[str, float]) -> Summary:
    """NeMo's ``ModelPT.restore_from`` (it unpacks the tar into the scratch dir and
    instantiates the config's ``_target_`` classes: that is what is watched); no inference,
    since a NeMo model's inputs are task-specific."""
    import torch

    nemo_core = importlib.import_module("nemo.core")
    t0 = time.perf_counter()
    model = nemo_core.ModelPT.restore_from(path, map_location=torch.device("cpu"))
    timings["load"] = time.perf_counter() - t0
    return _weights_summary(type(model).__name__, model)


Runner = Callable[..., Summary]
LOADERS: dict[str, tuple[Callable[[str, str], None], Runner]] = {
    "torch": (warm_torch, run_torch),
    "torchscript": (warm_torch, run_torchscript),
    "pickle": (warm_pickle, run_pickle),
    "numpy": (warm_pickle, run_numpy),
    "safetensors": (warm_safetensors, run_safetensors),
    "gguf": (warm_gguf, run_gguf),
    "onnx": (warm_onnx, run_onnx),
    "transformers": (warm_transformers, run_transformers),
    "keras": (warm_keras, run_keras),
    "xgboost": (warm_xgboost, run_xgboost),
    "xgboost-binary": (warm_xgboost, run_xgboost_binary),
    "lightgbm": (warm_lightgbm, run_lightgbm),
    "catboost": (warm_catboost, run_catboost),
    "skops": (warm_skops, run_skops),
    "torch-package": (warm_torch_package, run_torch_package),
    "pt2": (warm_pt2, run_pt2),
    "tf-savedmodel": (warm_tf_savedmodel, run_tf_savedmodel),
    "tflite": (warm_tflite, run_tflite),
    "openvino": (warm_openvino, run_openvino),
    "flax": (warm_flax, run_flax),
    "executorch": (warm_executorch, run_executorch),
    "nemo": (warm_nemo, run_nemo),
}
