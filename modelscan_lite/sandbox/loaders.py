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
}
