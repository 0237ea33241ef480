#!/usr/bin/env python3
"""Generate ``rules/allowlist/pickle-globals.json``: the exact-identity pickle allowlist.

Run it with the interpreter that has the pinned libraries installed::

    /work/venv-real/bin/python scripts/gen_allowlist.py

It introspects the real libraries (never a model file) and writes:

- ``rules/allowlist/pickle-globals.json``: ``module`` -> ``qualname`` -> ``[library, reason]``,
  exactly as ``pickle`` writes the names (``obj.__module__`` / ``obj.__qualname__``, checked by
  pickling the object itself and reading the GLOBAL/STACK_GLOBAL it writes, plus the aliases a
  module keeps for old pickles), and ``legacy`` names older versions wrote;
- ``rules/allowlist/call-through-candidates.json``: identities refused here because they call,
  instantiate, resolve or deserialize one of their arguments; the engine may allow them with
  argument checks;
- ``scripts/allowlist-refusals.txt``: every refused candidate and why.

How a candidate is chosen: by reviewed *families* (subclasses of a library's data/model base
classes, enums, dataclasses, tensor rebuilders, dtypes, ufuncs...), never "everything
importable". How it is refused: see :class:`Forbidden` (identity with a denylisted callable,
a module object, a forbidden defining module) and :func:`code_hits` (the code a class runs on
construction/unpickling, or a function's code, names something that executes code, imports,
deserializes, or touches files, network or processes), unless a reviewed override in
:data:`OVERRIDES` says why that hit is not a hazard.

The output depends only on the installed versions (recorded under ``libraries``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fnmatch
import functools
import importlib
import inspect
import io
import json
import os
import pickle
import pickletools
import pkgutil
import re
import sys
import time
import types
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
OUT_JSON = RULES / "allowlist" / "pickle-globals.json"
OUT_CALLS = RULES / "allowlist" / "call-through-candidates.json"
OUT_REFUSALS = Path(__file__).resolve().parent / "allowlist-refusals.txt"
DENYLISTS = ("P101", "P102", "P103", "P104")

# --------------------------------------------------------------------------------------------
# Libraries: report key -> (import name, distribution name)
# --------------------------------------------------------------------------------------------
LIBRARIES: dict[str, tuple[str, str]] = {
    "torch": ("torch", "torch"),
    "numpy": ("numpy", "numpy"),
    "scipy": ("scipy", "scipy"),
    "pandas": ("pandas", "pandas"),
    "scikit-learn": ("sklearn", "scikit-learn"),
    "xgboost": ("xgboost", "xgboost"),
    "lightgbm": ("lightgbm", "lightgbm"),
    "catboost": ("catboost", "catboost"),
    "joblib": ("joblib", "joblib"),
    "transformers": ("transformers", "transformers"),
    "tokenizers": ("tokenizers", "tokenizers"),
    "accelerate": ("accelerate", "accelerate"),
    "peft": ("peft", "peft"),
    "diffusers": ("diffusers", "diffusers"),
    "sentence-transformers": ("sentence_transformers", "sentence-transformers"),
    "lightning": ("lightning", "lightning"),
    "lightning-fabric": ("lightning_fabric", "lightning-fabric"),
    "pytorch-lightning": ("pytorch_lightning", "pytorch-lightning"),
    "gensim": ("gensim", "gensim"),
}

# module name components never imported while walking a library: tests, CLIs, build helpers
SKIP_COMPONENTS = frozenset(
    {
        "__main__",
        "tests",
        "test",
        "testing",
        "_testing",
        "conftest",
        "benchmarks",
        "benchmark",
        "examples",
        "_build_utils",
        "__check_build",
        "setup",
        "scripts",
        "commands",
        "cli",
        "_pyinstaller",
        "_pytest",
    }
)
# whole subtrees not walked: denylisted families (refused anyway) and slow, unrelated parts
SKIP_PREFIXES = (
    "torch._inductor",
    "torch._dynamo",
    "torch._functorch",
    "torch._export",
    "torch.export",
    "torch.onnx",
    "torch.fx",
    "torch.hub",
    "torch.package",
    "torch.utils.cpp_extension",
    "torch.utils.collect_env",
    "torch.utils.tensorboard",
    "torch.utils.benchmark",
    "torch.utils.bottleneck",
    "torch.distributed",
    "torch.nn.parallel.distributed",
    "torch.ao.quantization.fx",
    "torch.ao.quantization.pt2e",
    "torch.ao.quantization.quantizer",
    "torch.testing",
    "torch.jit.unsupported_tensor_ops",
    "torch._library",
    "torch._higher_order_ops",
    "torch._subclasses",
    "torch._decomp",
    "torch._refs",
    "torch._prims",
    "torch._numpy",
    "torch.compiler",
    "torch.cuda",
    "torch.mps",
    "torch.xpu",
    "torch.mtia",
    "torch.backends",
    "torch.contrib",
    "torch.nativert",
    "numpy.f2py",
    "numpy.distutils",
    "numpy.testing",
    "numpy.typing",
    "numpy._pyinstaller",
    "scipy._lib.array_api_compat",
    "scipy.datasets",
    "scipy.misc",
    "sklearn.datasets",
    "sklearn.externals",
    "sklearn.utils._testing",
    "pandas.io",
    "pandas.plotting",
    "pandas.util._test_decorators",
    "xgboost.spark",
    "xgboost.dask",
    "xgboost.testing",
    "xgboost.collective",
    "xgboost.tracker",
    "xgboost.federated",
    "lightgbm.dask",
    "catboost.widget",
    "catboost.eval",
    "catboost.hnsw",
    "transformers.models.deprecated",
    "transformers.onnx",
    "transformers.kernels",
    "transformers.integrations",
    "transformers.cli",
    "transformers.commands",
    "transformers.data.datasets",
    "transformers.pipelines",
    "transformers.agents",
    "transformers.tools",
    "transformers.distributed",
    "transformers.quantizers",
    "transformers.generation.continuous_batching",
    "diffusers.commands",
    "diffusers.pipelines",
    "diffusers.modular_pipelines",
    "diffusers.quantizers",
    "diffusers.hooks",
    "diffusers.experimental",
    "accelerate.commands",
    "accelerate.test_utils",
    "lightning.app",
    "lightning.data",
    "lightning.pytorch.cli",
    "lightning.pytorch.loggers",
    "lightning.fabric.loggers",
    "lightning.fabric.plugins.environments",
    "lightning.pytorch.profilers",
    "lightning.pytorch.serve",
    "lightning_fabric.loggers",
    "lightning_fabric.plugins.environments",
    "pytorch_lightning.cli",
    "pytorch_lightning.loggers",
    "pytorch_lightning.profilers",
    "pytorch_lightning.serve",
    "gensim.test",
    "gensim.scripts",
    "gensim.downloader",
    "gensim.similarities.annoy",
    "gensim.similarities.nmslib",
    "sentence_transformers.backend",
)

# --------------------------------------------------------------------------------------------
# Reasons: one sentence each
# --------------------------------------------------------------------------------------------
REASONS: dict[str, str] = {
    "gensim-function": "A gensim helper function kept as a model attribute (tf-idf weighting "
    "schemes, phrase scorers, the hash function, SaveLoad's class-only placeholder): it "
    "computes from its arguments; the code checks found no I/O, import or call-through.",
    "sklearn-function": "A scikit-learn input-validation function kept in an estimator's "
    "state (HistGradientBoosting binds check_array in a partial): it validates and converts "
    "arrays; the code checks found no I/O, import or call-through.",
    "init-side-effects": "A class whose __init__ opens files, runs processes or loads data "
    "from its arguments. Real pickles rebuild it with __new__ and its state, which runs none "
    "of that; the engine treats this reason as reconstruct-only, so a stream that calls the "
    "class (REDUCE with arguments) is reported.",
    "python-data": "A built-in or standard-library value type: constructing it stores the given "
    "values in memory and performs no I/O, import or code execution.",
    "python-function": "A pure built-in function (hash, len, abs, min...): it computes a value "
    "from its arguments with their own dunder methods; no I/O, import, or call of a function it "
    "is given.",
    "python-reconstructor": "A standard-library helper that rebuilds a plain value (Python 2 "
    "string bytes) without calling or importing anything it is given.",
    "python-path": "A pathlib path object: constructing one only stores the path string; it "
    "does not touch the filesystem until a method is called, and pickles cannot call methods.",
    "python-enum": "An Enum class: calling it looks up an existing member by value.",
    "tensor-rebuild": "A PyTorch tensor/parameter rebuilder: it views or copies storage memory "
    "with the given size, stride and dtype, and calls nothing it is given.",
    "torch-storage": "A PyTorch storage or legacy tensor type: it holds raw typed bytes.",
    "torch-constant": "A PyTorch dtype, layout, memory format or qscheme singleton (or the "
    "lookup that returns one by name): a constant.",
    "torch-data": "A PyTorch value type (Size, device, Generator state, structseq return "
    "types, distributions): it stores numbers and tensors.",
    "torch-module": "A torch.nn.Module subclass: construction allocates parameters, "
    "unpickling restores attributes; no I/O or code loading.",
    "torch-optim": "A PyTorch optimizer or learning-rate scheduler: it stores hyper-parameters "
    "and per-parameter state tensors.",
    "tensor-function": "A pure tensor function (torch.nn.functional) that saved modules keep "
    "as an activation value: math on tensors only.",
    "numpy-array": "NumPy array/scalar reconstruction, dtypes and scalar types: they rebuild "
    "values from bytes and shapes and call nothing they are given.",
    "numpy-ufunc": "A NumPy ufunc instance: element-wise math, pickled by name.",
    "numpy-random": "A NumPy random generator or bit generator: it stores RNG state numbers.",
    "scipy-data": "A SciPy data structure (sparse matrix, KD-tree, interpolator, frozen "
    "distribution, optimization result): it stores arrays and parameters.",
    "pandas-data": "A pandas data structure, dtype, index, block or offset (or its unpickle "
    "helper): it rebuilds columns from arrays.",
    "estimator": "A machine-learning estimator or model class: construction stores "
    "hyper-parameters and unpickling restores fitted arrays, with no I/O.",
    "booster": "A gradient-boosting Booster: unpickling hands its own serialized model bytes "
    "to the library's C API parser, which builds trees and never runs code.",
    "cython-data": "A compiled (Cython) data structure whose pickled state is plain numbers and "
    "arrays, restored by its own __setstate__.",
    "joblib-array": "joblib's array wrapper: it reads the array bytes that follow it inline in "
    "the same pickle stream, never another file.",
    "hf-config": "A configuration object (transformers/diffusers/peft/accelerate): it stores "
    "hyper-parameters as attributes.",
    "hf-model": "A model or layer class (transformers, diffusers, peft, sentence-transformers, "
    "Lightning): a torch.nn.Module whose construction allocates parameters.",
    "hf-output": "A model or scheduler output container (ModelOutput/BaseOutput): an ordered "
    "dict of tensors.",
    "hf-tokenizer": "A Rust tokenizers object: its state is the tokenizer's JSON description, "
    "parsed by the tokenizers library; no code.",
    "training-state": "Training state (arguments, trainer state, callbacks' state, attribute "
    "dicts, enums): plain values.",
    "gensim-model": "A gensim SaveLoad model or helper: unpickling restores attributes and "
    "arrays; the separate .npy files are loaded by SaveLoad.load, not by the pickle.",
    "dataclass": "A dataclass of the library: construction stores the given field values.",
    "record": "A named tuple or structseq: a tuple of values with field names.",
    "enum": "An Enum class of the library: calling it looks up an existing member by value.",
}

# --------------------------------------------------------------------------------------------
# Hint names: code that references one of these is refused (conservative, by exact name)
# --------------------------------------------------------------------------------------------
HINT_NAMES = frozenset(
    {
        # running code and importing
        "eval",
        "exec",
        "compile",
        "__import__",
        "import_module",
        "find_spec",
        "spec_from_file_location",
        "module_from_spec",
        "exec_module",
        "load_module",
        "run_path",
        "run_module",
        "get_class_from_dynamic_module",
        "get_class_in_module",
        "dynamic_module_utils",
        # processes
        "system",
        "popen",
        "Popen",
        "subprocess",
        "check_output",
        "check_call",
        "getoutput",
        "getstatusoutput",
        "fork",
        "forkpty",
        "startfile",
        "posix_spawn",
        "posix_spawnp",
        "execv",
        "execve",
        "execl",
        "execle",
        "execlp",
        "execlpe",
        "execvp",
        "execvpe",
        "spawn",
        "spawnv",
        "spawnve",
        "spawnl",
        "spawnle",
        "spawnlp",
        "spawnlpe",
        "spawnvp",
        "spawnvpe",
        # deserializing
        "loads",
        "load",
        "Unpickler",
        "load_file",
        "load_model",
        "from_file",
        "fromfile",
        "loadtxt",
        "genfromtxt",
        "memmap",
        "read_pickle",
        "Load",
        "LoadFromFile",
        "unsafe_load",
        "full_load",
        # files
        "open",
        "fdopen",
        "read_text",
        "read_bytes",
        "write_text",
        "write_bytes",
        "unlink",
        "rmtree",
        "rmdir",
        "makedirs",
        "mkdir",
        # network and hub
        "urlopen",
        "urlretrieve",
        "hf_hub_download",
        "snapshot_download",
        "cached_file",
        "cached_files",
        "http_get",
        "create_connection",
        "socket",
        "init_process_group",
        # native libraries
        "dlopen",
        "CDLL",
        "LoadLibrary",
        "cdll",
    }
)
# hint names that count only when loaded as a global/builtin, never as an attribute
GLOBAL_ONLY_HINTS = frozenset({"eval", "exec", "compile", "__import__", "breakpoint"})
# Reviewed: `is_<pkg>_available()` / `_is_package_available(name)` helpers of transformers,
# accelerate, diffusers and peft check whether an optional package is installed with
# importlib.util.find_spec / import_module of a package name the *library* passes (a string
# constant in its own code), never a value from the pickle. Their find_spec/import_module hits
# are dropped; any other hit in them (e.g. is_ninja_available running `ninja --version`) stays.
AVAILABILITY_CHECK = re.compile(r"^_?is_[A-Za-z0-9_]+_available$|^_is_package_available$")
AVAILABILITY_HINTS = frozenset({"find_spec", "import_module", "__import__"})
# Reviewed names that match a P101-P104 pattern only through a dotted tail (``torch.jit.
# _pickle.x`` -> ``pickle.x``); the object checks still apply to them.
NAME_PATTERN_EXEMPTIONS: dict[tuple[str, str], str] = {
    ("torch.jit._pickle", name): "TorchScript constants.pkl helpers: return their argument"
    for name in (
        "build_intlist",
        "build_tensorlist",
        "build_doublelist",
        "build_boollist",
        "build_tensor_from_id",
        "restore_type_tag",
    )
}
# dunders and protocol methods that run when a pickle builds, fills or calls an object
RECONSTRUCT_METHODS = ("__new__", "__setstate__", "__setitem__", "__setattr__", "append", "extend")
CALL_METHODS = ("__call__",)
INIT_METHODS = ("__init__", "__init_subclass__")
HINT_DEPTH = 2

# Reviewed overrides: (module, qualname) -> why the code hits above are not a hazard.
OVERRIDES: dict[tuple[str, str], str] = {
    ("sklearn.utils.validation", "check_array"): "validates and converts the array it is "
    "given (it calls the array's own methods, e.g. __array__); HistGradientBoosting keeps "
    "partial(check_array, dtype=..., ...) in its state and passes the user's X at predict.",
    ("xgboost.core", "Booster"): "__setstate__ hands the pickled model bytes to "
    "XGBoosterUnserializeFromBuffer (the C API parses its own binary model: not code); "
    "__init__'s model_file is listed as a call-through candidate.",
    ("lightgbm.basic", "Booster"): "__setstate__ parses the pickled model string with "
    "LGBM_BoosterLoadModelFromString (trees as text, not code); __init__'s model_file is listed "
    "as a call-through candidate.",
    **{
        ("torch.nn.functional", name): "imports only the constant module "
        "'torch._decomp.decompositions' (deterministic-algorithms path); the module name is "
        "never an argument."
        for name in (
            "interpolate",
            "pad",
            "max_pool3d_with_indices",
            "local_response_norm",
            "multi_head_attention_forward",
            "upsample",
            "upsample_bilinear",
            "upsample_nearest",
        )
    },
}

# Call-through identities refused outright (the engine allows them only with argument checks).
# (module, qualname) -> (argument, use, note)
CALL_THROUGH: dict[tuple[str, str], tuple[str, str, str]] = {
    ("functools", "partial"): ("0", "calls", "partial(func, *args) calls func when called"),
    ("copyreg", "_reconstructor"): (
        "0,1",
        "class",
        "base.__new__(cls, state) and base.__init__(obj, state): instantiates its arguments",
    ),
    ("copyreg", "__newobj__"): ("0", "class", "cls.__new__(cls, *args)"),
    ("copyreg", "__newobj_ex__"): ("0", "class", "cls.__new__(cls, *args, **kwargs)"),
    ("collections", "defaultdict"): (
        "0",
        "calls",
        "default_factory is called on every missing key",
    ),
    ("builtins", "getattr"): ("0,1", "resolves-name", "getattr(obj, name) reaches any attribute"),
    ("torch.storage", "_load_from_bytes"): (
        "0",
        "payload",
        "torch.load(io.BytesIO(b), weights_only=False) of the bytes argument",
    ),
    ("torch._tensor", "_rebuild_from_type"): ("0", "calls", "calls func(*args)"),
    ("torch._tensor", "_rebuild_from_type_v2"): ("0", "calls", "calls func(*args)"),
    ("torch._utils", "_rebuild_wrapper_subclass"): (
        "0",
        "class",
        "Tensor._make_wrapper_subclass(cls, ...) instantiates cls",
    ),
    ("torch._utils", "_rebuild_parameter_with_state"): (
        "3",
        "resolves-name",
        "_set_obj_state sets arbitrary attributes from state",
    ),
    ("numpy.random._pickle", "__randomstate_ctor"): (
        "0",
        "class",
        "bit_generator argument: a name looked up or a class instantiated",
    ),
    ("numpy.random._pickle", "__generator_ctor"): (
        "0",
        "class",
        "bit_generator argument: a name looked up or a class instantiated",
    ),
    ("numpy.random._pickle", "__bit_generator_ctor"): (
        "0",
        "class",
        "bit_generator argument: a name looked up or a class instantiated",
    ),
    ("numpy.core", "_ufunc_reconstruct"): (
        "0,1",
        "resolves-module",
        "__import__(module) then getattr(mod, name): an import resolver",
    ),
    ("numpy._core", "_ufunc_reconstruct"): (
        "0,1",
        "resolves-module",
        "__import__(module) then getattr(mod, name): an import resolver",
    ),
    ("numpy._core._multiarray_umath", "_ufunc_reconstruct"): (
        "0,1",
        "resolves-module",
        "__import__(module) then getattr(mod, name): an import resolver",
    ),
    ("joblib.numpy_pickle_compat", "NDArrayWrapper"): (
        "0",
        "payload",
        "read() opens the sibling file named by filename and np.load()s it",
    ),
    ("joblib.numpy_pickle_compat", "ZNDArrayWrapper"): (
        "0",
        "payload",
        "read() opens the sibling zlib file named by filename",
    ),
}

# Reviewed value types that live in modules the denylists cover (P104 `pathlib.**`):
# allowed because constructing them touches nothing (see REASONS["python-path"]).
DENIED_MODULE_EXEMPTIONS: dict[tuple[str, str], str] = {
    ("pathlib", "PurePath"): "python-path",
    ("pathlib", "PurePosixPath"): "python-path",
    ("pathlib", "PureWindowsPath"): "python-path",
    ("pathlib", "Path"): "python-path",
    ("pathlib", "PosixPath"): "python-path",
    ("pathlib", "WindowsPath"): "python-path",
}

# Extra forbidden objects and modules beyond P101-P104 (hand list)
HAND_FORBIDDEN_NAMES = (
    "builtins.eval",
    "builtins.exec",
    "builtins.compile",
    "builtins.open",
    "builtins.getattr",
    "builtins.setattr",
    "builtins.delattr",
    "builtins.__import__",
    "builtins.input",
    "builtins.breakpoint",
    "builtins.globals",
    "builtins.locals",
    "builtins.vars",
    "builtins.help",
    "builtins.exit",
    "builtins.quit",
    "builtins.copyright",
    "builtins.credits",
    "builtins.license",
    "builtins.type",
    "builtins.print",
    "builtins.memoryview",
    "functools.partial",
    "functools.reduce",
    "functools.partialmethod",
    "functools.singledispatch",
    "functools.cmp_to_key",
    "copyreg.add_extension",
    "copyreg.remove_extension",
    "copyreg.clear_extension_cache",
    "copyreg.pickle",
    "copyreg.constructor",
    "copyreg._reconstructor",
    "codecs.open",
    "codecs.EncodedFile",
    "codecs.lookup",
    "codecs.decode",
    "gzip.GzipFile",
    "bz2.BZ2File",
    "lzma.LZMAFile",
    "logging.config",
    "joblib.load",
    "joblib.dump",
    "joblib.numpy_pickle.load",
    "joblib.numpy_pickle.dump",
    "joblib.numpy_pickle_compat.NDArrayWrapper",
    "joblib.numpy_pickle_compat.ZNDArrayWrapper",
    "torch.load",
    "torch.save",
    "torch.from_file",
    "torch.serialization.load",
    "torch.serialization.save",
    "torch.storage._load_from_bytes",
    "torch.jit.load",
    "torch.jit.save",
    "numpy.load",
    "numpy.save",
    "numpy.savez",
    "numpy.savez_compressed",
    "numpy.savetxt",
    "numpy.fromfile",
    "numpy.loadtxt",
    "numpy.genfromtxt",
    "numpy.fromregex",
    "numpy.memmap",
    "numpy.tofile",
    "numpy.lib.format.open_memmap",
    "numpy.lib.format.read_array",
    "numpy.lib.npyio.DataSource",
    "numpy.DataSource",
    "numpy.ctypeslib",
    "pandas.read_pickle",
    "pandas.to_pickle",
    "scipy.io.loadmat",
    "scipy.io.savemat",
    "scipy.io.mmread",
    "scipy.sparse.load_npz",
    "scipy.sparse.save_npz",
)
# modules whose every attribute is forbidden (in addition to the `mod.**` denylist patterns)
HAND_FORBIDDEN_MODULES = (
    "builtins.__import__",
    "os",
    "posix",
    "nt",
    "sys",
    "subprocess",
    "shutil",
    "socket",
    "ctypes",
    "runpy",
    "code",
    "pty",
    "importlib",
    "pickle",
    "_pickle",
    "marshal",
    "shelve",
    "dill",
    "cloudpickle",
    "io",
    "_io",
    "tempfile",
    "glob",
    "smart_open",
    "fsspec",
    "requests",
    "urllib",
    "http",
    "huggingface_hub",
    "yaml",
    "zipfile",
    "tarfile",
    "webbrowser",
    "multiprocessing",
    "concurrent",
    "asyncio",
    "threading",
    "_thread",
    "signal",
    "gc",
    "weakref",
    "_weakref",
    "abc",
    "typing",
    "inspect",
    "ast",
    "dis",
    "operator",
    "_operator",
    "pandas.io",
    "scipy.io",
    "sklearn.datasets",
    "torch.utils.data",
    "torch.multiprocessing",
    "torch.distributed",
    "torch.serialization",
    "torch.hub",
    "torch.utils.model_zoo",
    "transformers.dynamic_module_utils",
    "transformers.utils.hub",
    "diffusers.utils.dynamic_modules_utils",
    "diffusers.utils.hub_utils",
    "lightning.fabric.utilities.cloud_io",
    "lightning_fabric.utilities.cloud_io",
    "gensim.utils.smart_open",
)
# objects in modules forbidden above that are still allowed (exact names, reviewed)
FORBIDDEN_MODULE_OK: dict[tuple[str, str], str] = {
    ("torch.serialization", "_get_layout"): "torch-constant",
}
# modules whose import has side effects or is very slow: never imported by the builder
NO_IMPORT = frozenset(
    {
        "antigravity",
        "this",
        "idlelib",
        "lib2to3",
        "distutils",
        "pip",
        "setuptools",
        "ensurepip",
        "venv",
        "test.support",
        "torch._inductor",
        "torch._dynamo",
        "IPython",
        "mlflow",
        "keras",
        "keras.saving",
        "keras.models",
    }
)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence warnings and Python-level prints while importing library modules."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        yield


def import_quiet(name: str) -> types.ModuleType | None:
    try:
        with quiet():
            return importlib.import_module(name)
    except BaseException:
        return None


def resolve(module: str, qualname: str) -> tuple[Any, list[str]]:
    """What ``find_class(module, qualname)`` returns: import, then getattr along the dotted
    qualname. Returns (object, [names of module objects walked through inside the qualname]).
    Raises LookupError when it does not resolve."""
    with quiet():
        try:
            obj: Any = importlib.import_module(module)
        except BaseException as exc:
            raise LookupError(f"import {module}: {type(exc).__name__}: {exc}") from None
        walked: list[str] = []
        parts = qualname.split(".")
        for i, part in enumerate(parts):
            if i and isinstance(obj, types.ModuleType):
                walked.append(".".join(parts[:i]))
            try:
                obj = getattr(obj, part)
            except BaseException as exc:
                raise LookupError(f"{module}:{qualname}: no attribute {part!r} ({exc})") from None
    return obj, walked


def defining_module(obj: Any) -> str | None:
    mod = getattr(obj, "__module__", None)
    if isinstance(mod, str):
        return mod
    objclass = getattr(obj, "__objclass__", None)
    if objclass is not None:
        return getattr(objclass, "__module__", None)
    self_ = getattr(obj, "__self__", None)
    if isinstance(self_, types.ModuleType):
        return self_.__name__
    return None


def unwrap_all(obj: Any) -> list[Any]:
    """The object and everything it wraps: __wrapped__, __func__, bound __self__ methods,
    functools.partial.func, staticmethod/classmethod/property functions."""
    out: list[Any] = []
    todo = [obj]
    seen: set[int] = set()
    while todo:
        cur = todo.pop()
        if id(cur) in seen or len(seen) > 32:
            continue
        seen.add(id(cur))
        out.append(cur)
        for attr in ("__wrapped__", "__func__", "func", "fget", "fset"):
            try:
                nxt = inspect.getattr_static(cur, attr)
            except AttributeError:
                continue
            except Exception:  # noqa: S112 - exotic descriptors
                continue
            if attr == "func":
                if not isinstance(cur, functools.partial):
                    continue
                nxt = cur.func
            if isinstance(nxt, (staticmethod, classmethod)):
                nxt = nxt.__func__
            todo.append(nxt)
        if isinstance(cur, (staticmethod, classmethod)):
            todo.append(cur.__func__)
    return out


def is_dotted(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", text))


def pickle_spellings(obj: Any) -> list[tuple[str, str]]:
    """The (module, name) pairs ``pickle.dumps(obj)`` writes as GLOBAL/STACK_GLOBAL, read with
    pickletools (nothing is loaded). The first pair is how ``obj`` itself is named."""
    try:
        data = pickle.dumps(obj, protocol=4)
    except Exception:
        return []
    out: list[tuple[str, str]] = []
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    for op, arg, _pos in pickletools.genops(data):
        name = op.name
        if name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            stack.append(arg)
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else None
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            stack.append(memo.get(int(arg)))
        elif name == "STACK_GLOBAL":
            if len(stack) >= 2 and isinstance(stack[-2], str) and isinstance(stack[-1], str):
                out.append((stack[-2], stack[-1]))
            stack.append(None)
        elif name == "GLOBAL":
            mod, _, qual = str(arg).partition(" ")
            out.append((mod, qual))
            stack.append(None)
        else:
            stack.append(None)
    return out


def source_line(obj: Any) -> str:
    try:
        target = inspect.unwrap(obj)
        file = inspect.getsourcefile(target) or inspect.getfile(target)
        line = inspect.getsourcelines(target)[1]
    except Exception:
        try:
            file = inspect.getfile(obj)
        except Exception:
            return "(compiled, no source)"
        line = 0
    for base in sorted({p for p in sys.path if p}, key=len, reverse=True):
        if file.startswith(base.rstrip("/") + "/"):
            file = file[len(base.rstrip("/")) + 1 :]
            break
    return f"{file}:{line}" if line else file


# --------------------------------------------------------------------------------------------
# The forbidden set
# --------------------------------------------------------------------------------------------
def _denylist_patterns() -> list[str]:
    import yaml

    from modelscan_lite.callables import load_callables

    pats: list[str] = []
    for rule in DENYLISTS:
        (path,) = sorted((RULES / "pickle").glob(f"{rule}-*.yaml"))
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        pats.extend(str(p) for p in data["match"].get("glob", []))
        # the categories the rule takes from the shared list rules/callables/dangerous.json
        pats.extend(load_callables(str(RULES)).patterns(data["match"].get("callables", [])))
    return pats


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A denylist glob with the engine's own semantics (``*`` one dotted component, ``**``
    across dots)."""
    from modelscan_lite.engine import glob_to_regex

    return re.compile("^" + glob_to_regex(pattern) + "$")


@dataclass
class Forbidden:
    """Objects and modules that execute code, import, deserialize, or touch files, network or
    processes. Compare by identity (also through wrappers) and by defining module."""

    objects: dict[int, tuple[Any, str]] = field(default_factory=dict)
    modules: set[str] = field(default_factory=set)
    name_patterns: list[tuple[str, re.Pattern[str]]] = field(default_factory=list)
    _combined: re.Pattern[str] | None = None

    def _add(self, obj: Any, why: str) -> None:
        if isinstance(obj, (str, bytes, int, float, complex, bool, type(None), tuple)):
            return
        self.objects.setdefault(id(obj), (obj, why))

    def _add_module_members(self, mod: types.ModuleType, why: str) -> None:
        for name, value in list(vars(mod).items()):
            if isinstance(value, types.ModuleType):
                continue
            if not callable(value):
                continue
            home = defining_module(value)
            if home is None or self.module_forbidden(home) or home == mod.__name__:
                self._add(value, f"{why} ({mod.__name__}.{name})")

    def module_forbidden(self, name: str) -> bool:
        parts = name.split(".")
        return any(".".join(parts[:i]) in self.modules for i in range(1, len(parts) + 1))

    def name_denied(self, module: str, qualname: str) -> str | None:
        """The P101-P104 pattern a dotted name matches (every dotted tail, like the engine)."""
        value = f"{module}.{qualname}"
        parts = value.split(".")
        tails = [value] + [".".join(parts[i:]) for i in range(1, len(parts) - 1)]
        tails += [".".join(p.lstrip("_") or p for p in t.split(".")) for t in tails]
        if self._combined is None:
            self._combined = re.compile(
                "|".join(f"(?:{rx.pattern})" for _, rx in self.name_patterns)
            )
        if not any(self._combined.match(t) for t in tails):
            return None
        for pat, rx in self.name_patterns:
            if any(rx.match(t) for t in tails):
                return pat
        return None

    def check(self, obj: Any) -> str | None:
        """Why ``obj`` is forbidden, or None."""
        if isinstance(obj, types.ModuleType):
            return f"is a module object ({obj.__name__})"
        chain = unwrap_all(obj)
        for cur in chain:
            hit = self.objects.get(id(cur))
            if hit is not None and hit[0] is cur:
                return f"is {hit[1]}" if cur is obj else f"wraps {hit[1]}"
        for cur in chain:
            self_ = getattr(cur, "__self__", None)
            if self_ is not None and not isinstance(self_, types.ModuleType):
                hit = self.objects.get(id(self_))
                if hit is not None and hit[0] is self_:
                    return f"is a method of {hit[1]}"
            home = defining_module(cur)
            if home and self.module_forbidden(home):
                return f"is defined in forbidden module {home}"
        return None


def build_forbidden(import_missing: bool = True) -> Forbidden:
    """The forbidden set (see :func:`_build_forbidden`), built with warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _build_forbidden(import_missing)


def _build_forbidden(import_missing: bool) -> Forbidden:
    """Resolve the P101-P104 denylists and the hand lists into concrete objects.

    ``mod.**`` patterns: the module's callables (those it defines, or defined in another
    forbidden module, or C functions without a home) and the module name itself; exact
    patterns: the object they name; ``*`` patterns: the matching attributes."""
    fb = Forbidden()
    patterns = _denylist_patterns()
    fb.name_patterns = [(p, _glob_regex(p)) for p in patterns]
    star_modules: list[str] = []
    for pat in patterns:
        if pat.endswith(".**") and "*" not in pat[:-3]:
            star_modules.append(pat[:-3])
    fb.modules.update(star_modules)
    fb.modules.update(HAND_FORBIDDEN_MODULES)

    def load(modname: str) -> types.ModuleType | None:
        if modname in sys.modules:
            return sys.modules[modname]
        if not import_missing or any(
            modname == n or modname.startswith(n + ".") for n in NO_IMPORT
        ):
            return None
        return import_quiet(modname)

    for modname in sorted(fb.modules):
        mod = load(modname)
        if mod is None:
            continue
        fb._add_module_members(mod, "a member of forbidden module")
        # already-imported submodules of a forbidden package
        for sub, submod in list(sys.modules.items()):
            if sub.startswith(modname + ".") and isinstance(submod, types.ModuleType):
                fb._add_module_members(submod, "a member of forbidden module")

    # exact and single-star patterns, and the hand list of exact names
    exact = [p for p in patterns if not p.endswith(".**")] + list(HAND_FORBIDDEN_NAMES)
    for pat in exact:
        parts = pat.split(".")
        # find the longest importable module prefix
        for cut in range(len(parts) - 1, 0, -1):
            modname = ".".join(parts[:cut])
            mod = load(modname)
            if mod is None:
                continue
            rest = parts[cut:]
            objs: list[tuple[str, Any]] = [(modname, mod)]
            for part in rest:
                nxt: list[tuple[str, Any]] = []
                for path, o in objs:
                    if "*" in part:
                        for n in dir(o):
                            if fnmatch.fnmatchcase(n, part):
                                with contextlib.suppress(Exception):
                                    nxt.append((f"{path}.{n}", getattr(o, n)))
                    else:
                        with contextlib.suppress(Exception):
                            nxt.append((f"{path}.{part}", getattr(o, part)))
                objs = nxt
            for path, o in objs:
                if isinstance(o, types.ModuleType):
                    fb.modules.add(o.__name__)
                    fb._add_module_members(o, "a member of forbidden module")
                else:
                    fb._add(o, f"denylisted {pat} ({path})")
            break
        else:
            fb.modules.add(pat)
    return fb


# --------------------------------------------------------------------------------------------
# Code inspection
# --------------------------------------------------------------------------------------------
def _all_code(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _all_code(const)


_LOADS = frozenset(
    {
        "LOAD_GLOBAL",
        "LOAD_NAME",
        "LOAD_ATTR",
        "LOAD_METHOD",
        "IMPORT_NAME",
        "IMPORT_FROM",
        "LOAD_FROM_DICT_OR_GLOBALS",
        "LOAD_SUPER_ATTR",
    }
)
_CODE_CACHE: dict[int, tuple[set[str], set[str], set[str]]] = {}


def _scan(code: types.CodeType) -> tuple[set[str], set[str], set[str]]:
    """(names the code *loads*, names loaded as globals/builtins, import helpers called with a
    non-constant argument) over the code and its nested code objects. Stored names
    (``self.load = ...``) do not count; ``re.compile``/``model.eval()`` are not the builtins;
    ``find_spec("bitsandbytes")`` with a string constant is an availability check."""
    import dis

    key = id(code)
    if key not in _CODE_CACHE:
        loaded: set[str] = set()
        glob: set[str] = set()
        dynamic: set[str] = set()
        for c in _all_code(code):
            ins = [i for i in dis.get_instructions(c) if i.opname not in ("CACHE", "PRECALL")]
            for n, i in enumerate(ins):
                if i.opname not in _LOADS or not isinstance(i.argval, str):
                    continue
                prev = ins[n - 1] if n else None
                if (
                    i.argval in ("load", "loads")
                    and prev is not None
                    and prev.argval == "json"
                    and prev.opname in ("LOAD_GLOBAL", "LOAD_ATTR", "LOAD_NAME")
                ):
                    continue  # json.load(s): JSON is data, not code
                loaded.add(i.argval)
                if i.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                    glob.add(i.argval)
                if i.argval in AVAILABILITY_HINTS:
                    nxt = ins[n + 1] if n + 1 < len(ins) else None
                    if nxt is not None and i.opname == "LOAD_GLOBAL" and nxt.opname == "PUSH_NULL":
                        nxt = ins[n + 2] if n + 2 < len(ins) else None
                    constant = nxt is not None and nxt.opname == "LOAD_CONST"
                    if not constant or not isinstance(nxt.argval, str):  # type: ignore[union-attr]
                        dynamic.add(i.argval)
        _CODE_CACHE[key] = (loaded, glob, dynamic)
    return _CODE_CACHE[key]


def _names(code: types.CodeType) -> set[str]:
    return _scan(code)[0]


def _hint_hits(code: types.CodeType) -> set[str]:
    loaded, glob, dynamic = _scan(code)
    hits = loaded & (HINT_NAMES - GLOBAL_ONLY_HINTS - AVAILABILITY_HINTS)
    hits |= glob & GLOBAL_ONLY_HINTS
    hits |= dynamic
    return hits


def _as_function(obj: Any) -> types.FunctionType | None:
    for cur in unwrap_all(obj):
        if isinstance(cur, types.FunctionType):
            return cur
    return None


_HIT_CACHE: dict[tuple[int, int, int], list[str]] = {}


def function_hits(
    func: types.FunctionType, owner: type | None, depth: int, label: str
) -> list[str]:
    """Hint names the function's code (and, ``depth`` levels down, the functions and methods
    it names) references. Each hit is ``name in label[->callee...]``."""
    return [f"{name} in {label}{path}" for name, path in _hits(func, owner, depth)]


def _hits(func: types.FunctionType, owner: type | None, depth: int) -> list[tuple[str, str]]:
    key = (id(func.__code__), id(owner), depth)
    if key in _HIT_CACHE:
        return _HIT_CACHE[key]  # type: ignore[return-value]
    _HIT_CACHE[key] = []  # recursion guard
    names = _names(func.__code__)
    hits: list[tuple[str, str]] = [(n, "") for n in sorted(_hint_hits(func.__code__))]
    if depth > 0:
        home = (func.__module__ or "").split(".")[0]
        for n in sorted(names - HINT_NAMES):
            callee: Any = None
            if owner is not None:
                for klass in owner.__mro__:
                    if n in vars(klass):
                        callee = vars(klass)[n]
                        break
            if callee is None:
                callee = func.__globals__.get(n)
            f = _as_function(callee) if callee is not None else None
            if f is None or f is func or (f.__module__ or "").split(".")[0] != home:
                continue
            if (f.__module__, f.__qualname__) in OVERRIDES:
                continue
            for name, path in _hits(f, owner, depth - 1):
                if name in AVAILABILITY_HINTS and AVAILABILITY_CHECK.match(f.__name__):
                    continue  # see AVAILABILITY_CHECK
                hits.append((name, f"->{f.__qualname__}{path}"))
    _HIT_CACHE[key] = hits  # type: ignore[assignment]
    return hits


def class_hits(cls: type, methods: Iterable[str]) -> list[str]:
    out: list[str] = []
    for m in methods:
        for klass in cls.__mro__:
            if klass is object or klass.__module__ == "builtins":
                continue
            if m in vars(klass):
                f = _as_function(vars(klass)[m])
                if f is not None:
                    out.extend(function_hits(f, cls, HINT_DEPTH, f"{klass.__qualname__}.{m}"))
                break
    return out


def param_calls(func: types.FunctionType) -> list[tuple[str, str]]:
    """(parameter, how) for parameters the function calls, instantiates or resolves."""
    import dis

    code = func.__code__
    params = set(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    if code.co_flags & inspect.CO_VARARGS:
        params.add(code.co_varnames[code.co_argcount + code.co_kwonlyargcount])
    params.discard("self")
    params.discard("cls")
    ins = [i for i in dis.get_instructions(code) if i.opname not in ("CACHE", "EXTENDED_ARG")]
    out: list[tuple[str, str]] = []
    for i, cur in enumerate(ins):
        nxt = ins[i + 1] if i + 1 < len(ins) else None
        if cur.opname == "PUSH_NULL" and nxt and nxt.opname == "LOAD_FAST" and nxt.argval in params:
            out.append((str(nxt.argval), "calls"))
        if (
            cur.opname == "LOAD_FAST"
            and cur.argval in params
            and nxt
            and nxt.opname in ("LOAD_METHOD", "LOAD_ATTR")
            and nxt.argval in ("__new__", "__init__", "__call__", "_make_wrapper_subclass")
        ):
            out.append((str(cur.argval), "class"))
        if cur.opname == "LOAD_GLOBAL" and cur.argval in ("getattr", "setattr", "__import__"):
            window = ins[i + 1 : i + 4]
            if any(w.opname == "LOAD_FAST" and w.argval in params for w in window[1:3]):
                out.append((str(window[1].argval if len(window) > 1 else "?"), "resolves-name"))
    return sorted(set(out))


# --------------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------------
@dataclass
class Candidate:
    module: str
    qualname: str
    library: str
    reason: str
    how: str = ""  # family or note, for the refusal report


@dataclass
class State:
    forbidden: Forbidden
    candidates: list[Candidate] = field(default_factory=list)
    import_errors: dict[str, list[str]] = field(default_factory=dict)
    modules: dict[str, list[types.ModuleType]] = field(default_factory=dict)

    def add(self, module: str, qualname: str, library: str, reason: str, how: str = "") -> None:
        self.candidates.append(Candidate(module, qualname, library, reason, how))

    def add_obj(self, obj: Any, library: str, reason: str, how: str = "") -> None:
        """Add ``obj`` under the name pickle writes for it (and its canonical name)."""
        spells = pickle_spellings(obj)
        names: list[tuple[str, str]] = []
        if spells and spells[0] != ("builtins", "getattr"):
            names.append(spells[0])
        mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if isinstance(mod, str) and isinstance(qual, str) and "<" not in qual:
            names.append((mod, qual))
        for m, q in dict.fromkeys(names):
            try:
                found, _ = resolve(m, q)
            except LookupError:
                continue
            if found is obj:
                self.add(m, q, library, reason, how)


def walk_library(state: State, library: str, root: str) -> list[types.ModuleType]:
    """Import every module of a library (errors recorded), except tests/CLIs/denied parts."""
    if library in state.modules:
        return state.modules[library]
    errors = state.import_errors.setdefault(library, [])
    top = import_quiet(root)
    if top is None:
        errors.append(f"{root}: cannot import")
        state.modules[library] = []
        return []
    mods: dict[str, types.ModuleType] = {root: top}
    paths = getattr(top, "__path__", None)
    if paths:

        def onerror(name: str) -> None:
            errors.append(f"{name}: walk_packages failed")

        names: list[str] = []
        with quiet():
            for info in pkgutil.walk_packages(paths, root + ".", onerror=onerror):
                names.append(info.name)
        for name in sorted(set(names)):
            if skip_module(name):
                continue
            try:
                with quiet():
                    mods[name] = importlib.import_module(name)
            except BaseException as exc:
                errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    # modules the library imported from itself that walk_packages did not list
    for name, m in list(sys.modules.items()):
        if under(name, [root]) and isinstance(m, types.ModuleType) and not skip_module(name):
            mods.setdefault(name, m)
    out = [mods[n] for n in sorted(mods)]
    state.modules[library] = out
    return out


def under(name: str, prefixes: Iterable[str]) -> bool:
    """``name`` is one of ``prefixes`` or a submodule of one."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def skip_module(name: str) -> bool:
    parts = name.split(".")
    if any(p in SKIP_COMPONENTS or p.startswith("test_") for p in parts):
        return True
    return any(name == p or name.startswith(p + ".") for p in SKIP_PREFIXES)


def defined_classes(mod: types.ModuleType) -> Iterator[type]:
    """Classes defined in ``mod`` (by __module__), nested classes included."""
    seen: set[int] = set()
    todo = [v for v in list(vars(mod).values()) if isinstance(v, type)]
    while todo:
        cls = todo.pop()
        if id(cls) in seen or cls.__module__ != mod.__name__ or "<" in cls.__qualname__:
            continue
        seen.add(id(cls))
        yield cls
        todo.extend(v for v in list(vars(cls).values()) if isinstance(v, type))


def defined_functions(mod: types.ModuleType) -> Iterator[tuple[str, Any]]:
    cython = ("cython_function_or_method", "fused_cython_function")
    for name, v in sorted(vars(mod).items()):
        is_function = isinstance(v, (types.FunctionType, types.BuiltinFunctionType))
        if (is_function or type(v).__name__ in cython) and defining_module(v) == mod.__name__:
            yield name, v


def subclass_of(cls: type, bases: tuple[type, ...]) -> bool:
    try:
        return issubclass(cls, bases)
    except TypeError:
        return False


def resolve_bases(names: Iterable[str]) -> tuple[type, ...]:
    out: list[type] = []
    for dotted in names:
        mod, _, qual = dotted.rpartition(".")
        m = import_quiet(mod)
        obj = getattr(m, qual, None) if m is not None else None
        if isinstance(obj, type):
            out.append(obj)
    return tuple(out)


def is_record(cls: type) -> bool:
    if not subclass_of(cls, (tuple,)):
        return False
    return hasattr(cls, "_fields") or hasattr(cls, "n_fields")


def cython_picklable(cls: type) -> bool:
    mod = sys.modules.get(cls.__module__)
    file = getattr(mod, "__file__", "") or ""
    if not file.endswith((".so", ".pyd")):
        return False
    # the pickling methods may come from a compiled base of the same library
    # (sklearn's EuclideanDistance64 from DistanceMetric64, KDTree from BinaryTree)
    top = cls.__module__.split(".", 1)[0]
    return any(
        n in vars(k)
        for k in cls.__mro__
        if k.__module__.split(".", 1)[0] == top
        for n in ("__reduce_cython__", "__setstate_cython__", "__reduce__")
    )


def generic_families(
    state: State,
    library: str,
    mods: list[types.ModuleType],
    base_reasons: list[tuple[tuple[type, ...], str]],
    enums: bool = True,
    dataclasses_: bool = True,
    records: bool = True,
    cython: bool = False,
) -> None:
    """Classes defined in the library that subclass a reviewed base, or are enums,
    dataclasses, records (namedtuple/structseq) or picklable Cython data structures."""
    for mod in mods:
        for cls in defined_classes(mod):
            reason = None
            for bases, why in base_reasons:
                if bases and subclass_of(cls, bases):
                    reason = why
                    break
            if reason is None and enums and subclass_of(cls, (enum.Enum,)):
                reason = "enum"
            if reason is None and dataclasses_ and dataclasses.is_dataclass(cls):
                reason = "dataclass"
            if reason is None and records and is_record(cls):
                reason = "record"
            if reason is None and cython and cython_picklable(cls):
                reason = "cython-data"
            if reason is not None:
                state.add(cls.__module__, cls.__qualname__, library, reason, "class")
        # Cython reconstructors are call-throughs: collect them as candidates (refused)
        for name, _fn in defined_functions(mod):
            if name.startswith("__pyx_unpickle_"):
                state.add(mod.__name__, name, library, "cython-data", "pyx-unpickle")


# --------------------------------------------------------------------------------------------
# Per-library families
# --------------------------------------------------------------------------------------------
def fam_python(state: State) -> None:
    import argparse
    import collections
    import datetime
    import decimal
    import fractions
    import ipaddress
    import random
    import uuid

    lib = "python"
    for name in [
        "set",
        "frozenset",
        "bytearray",
        "bytes",
        "slice",
        "range",
        "complex",
        "object",
        "dict",
        "list",
        "tuple",
        "int",
        "float",
        "bool",
        "str",
    ]:
        state.add("builtins", name, lib, "python-data", "builtin type")
    # pure built-in functions that real pickles keep as values (gensim's hashfxn=hash); none
    # takes a function to call (map/filter/sorted-with-key/iter(callable) are left out)
    for name in [
        "hash",
        "len",
        "abs",
        "round",
        "divmod",
        "pow",
        "ord",
        "chr",
        "bin",
        "hex",
        "oct",
        "isinstance",
        "issubclass",
        "callable",
        "id",
        "min",
        "max",
        "sum",
        "all",
        "any",
        "zip",
        "enumerate",
        "reversed",
    ]:
        state.add("builtins", name, lib, "python-function", "pure builtin function")
    for obj in (
        collections.OrderedDict,
        collections.defaultdict,
        collections.deque,
        collections.Counter,
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        datetime.timezone,
        decimal.Decimal,
        decimal.Context,
        fractions.Fraction,
        uuid.UUID,
        uuid.SafeUUID,
        argparse.Namespace,
        types.SimpleNamespace,
        random.Random,
        ipaddress.IPv4Address,
        ipaddress.IPv6Address,
        ipaddress.IPv4Network,
        ipaddress.IPv6Network,
        functools.partial,
        re.RegexFlag,
        enum.Enum,
        enum.IntEnum,
        enum.Flag,
        enum.IntFlag,
    ):
        state.add_obj(obj, lib, "python-enum" if subclass_of(obj, (enum.Enum,)) else "python-data")
    for mod, qual in (
        ("copyreg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("copyreg", "__newobj_ex__"),
        ("builtins", "getattr"),
        ("_codecs", "encode"),
    ):
        state.add(mod, qual, lib, "python-reconstructor", "reviewed stdlib helper")
    for (mod, qual), reason in DENIED_MODULE_EXEMPTIONS.items():
        state.add(mod, qual, lib, reason, "reviewed path type")
    # re._compile: NOT allowed. Compiling an attacker's pattern at load is safe by itself, but
    # the compiled regex is later *used* by the model's code (tokenizers' pre-split patterns),
    # where a catastrophic-backtracking pattern hangs the process (ReDoS): refused on purpose.


def fam_torch(state: State) -> None:
    import torch

    lib = "torch"
    mods = walk_library(state, lib, "torch")
    base = resolve_bases(
        [
            "torch.nn.modules.module.Module",
        ]
    )
    optim = resolve_bases(
        [
            "torch.optim.optimizer.Optimizer",
            "torch.optim.lr_scheduler.LRScheduler",
            "torch.optim.lr_scheduler.ReduceLROnPlateau",
            "torch.optim.swa_utils.AveragedModel",
        ]
    )
    data = resolve_bases(
        [
            "torch.distributions.distribution.Distribution",
            "torch.distributions.constraints.Constraint",
            "torch.distributions.transforms.Transform",
            "torch.storage.TypedStorage",
            "torch.storage.UntypedStorage",
            "torch._tensor.Tensor",
            "torch.nn.utils.rnn.PackedSequence",
            "torch.ao.quantization.observer.ObserverBase",
            "torch.ao.quantization.fake_quantize.FakeQuantizeBase",
        ]
    )
    generic_families(
        state,
        lib,
        [m for m in mods if under(m.__name__, ("torch.nn", "torch.ao.nn", "torch.optim"))],
        [(base, "torch-module"), (optim, "torch-optim")],
        dataclasses_=False,
    )
    generic_families(
        state,
        lib,
        [
            m
            for m in mods
            if under(
                m.__name__,
                (
                    "torch.distributions",
                    "torch.storage",
                    "torch._tensor",
                    "torch.nn.parameter",
                    "torch.nn.utils.rnn",
                    "torch.ao.quantization",
                    "torch.return_types",
                    "torch.types",
                    "torch.torch_version",
                ),
            )
        ],
        [(data, "torch-data")],
        dataclasses_=False,
    )
    import torch.jit._pickle as jp

    for name, _fn in defined_functions(jp):
        if name.startswith(("build_", "restore_type_tag")):
            state.add("torch.jit._pickle", name, lib, "tensor-rebuild", "TorchScript constants")
    # tensor rebuilders
    import torch._utils as tu

    for name, fn in sorted(vars(tu).items()):
        if name.startswith("_rebuild") and callable(fn):
            state.add("torch._utils", name, lib, "tensor-rebuild", "torch._utils._rebuild_*")
    for name in ("_rebuild_from_type", "_rebuild_from_type_v2"):
        state.add("torch._tensor", name, lib, "tensor-rebuild", "torch._tensor rebuild")
    state.add("torch.storage", "_load_from_bytes", lib, "tensor-rebuild", "storage rebuild")
    state.add("torch.serialization", "_get_layout", lib, "torch-constant", "layout lookup")
    # constants: dtypes, layouts, memory formats, qschemes
    const_types = (torch.dtype, torch.layout, torch.memory_format, torch.qscheme)
    for name in sorted(dir(torch)):
        v = getattr(torch, name, None)
        if isinstance(v, const_types):
            state.add("torch", name, lib, "torch-constant", "constant")
            state.add_obj(v, lib, "torch-constant", "constant (pickled spelling)")
    # legacy tensor types and storages exported at torch.*
    for name in sorted(dir(torch)):
        v = getattr(torch, name, None)
        legacy_type = name.endswith(("Storage", "Tensor"))
        if isinstance(v, type) and legacy_type and getattr(v, "__module__", "") == "torch":
            state.add("torch", name, lib, "torch-storage", "torch.*Storage/*Tensor")
    for obj in (torch.Size, torch.device, torch.Generator, torch.Tensor, torch.finfo, torch.iinfo):
        state.add_obj(obj, lib, "torch-data")
    # structseq return types
    for name in sorted(dir(torch.return_types)):
        v = getattr(torch.return_types, name)
        if isinstance(v, type) and not name.startswith("_"):
            state.add_obj(v, lib, "torch-data", "torch.return_types")
    # pure tensor functions kept as activation values in saved modules
    import torch.nn.functional as F

    for name in sorted(dir(F)):
        if name.startswith("_"):
            continue
        v = getattr(F, name)
        if isinstance(v, types.FunctionType) and v.__module__ == "torch.nn.functional":
            state.add("torch.nn.functional", name, lib, "tensor-function", "F.* defined there")
        elif isinstance(v, types.BuiltinFunctionType) and "torch_function" not in name:
            state.add_obj(v, lib, "tensor-function", "F.* builtin")


def fam_numpy(state: State) -> None:
    import numpy as np

    lib = "numpy"
    mods = walk_library(state, lib, "numpy")
    # numpy.matrix: an ndarray subclass joblib and old pickles name as the array subclass
    state.add_obj(np.matrix, lib, "numpy-array", "class")
    # NumPy sets __module__ = "numpy" on it; pickles written before that name its home
    state.add("numpy.matrixlib.defmatrix", "matrix", lib, "numpy-array", "class")
    for name in sorted(dir(np)):
        v = getattr(np, name, None)
        if isinstance(v, np.ufunc):
            state.add_obj(v, lib, "numpy-ufunc", "ufunc")
            state.add("numpy", name, lib, "numpy-ufunc", "ufunc alias")
        elif isinstance(v, type) and subclass_of(v, (np.generic,)):
            state.add_obj(v, lib, "numpy-array", "scalar type")
            state.add("numpy", name, lib, "numpy-array", "scalar type alias")
    for obj in (np.ndarray, np.dtype, np.matrix, np.recarray, np.record, np.ma.MaskedArray):
        state.add_obj(obj, lib, "numpy-array")
    import numpy.dtypes

    for name in sorted(dir(numpy.dtypes)):
        v = getattr(numpy.dtypes, name)
        if isinstance(v, type) and subclass_of(v, (np.dtype,)):
            state.add_obj(v, lib, "numpy-array", "numpy.dtypes")
    for mod, qual in (
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.ma.core", "_mareconstruct"),
        ("numpy.ma.core", "MaskedArray"),
        ("numpy.ma.core", "mvoid"),
        ("numpy.ma.core", "MaskedConstant"),
        ("numpy.ma.mrecords", "MaskedRecords"),
        ("numpy.ma.mrecords", "_mrreconstruct"),
        ("numpy.core", "_ufunc_reconstruct"),
        ("numpy.random", "__RandomState_ctor"),
        # NumPy < 1.0 pickles; kept as a Python function: ndarray.__new__(subtype, ...)
        ("numpy.core._internal", "_reconstruct"),
    ):
        state.add(mod, qual, lib, "numpy-array", "reviewed reconstructor")
    # numpy.random
    rnd = [m for m in mods if m.__name__.startswith("numpy.random")]
    bg = resolve_bases(["numpy.random.bit_generator.BitGenerator"])
    gens = resolve_bases(
        [
            "numpy.random._generator.Generator",
            "numpy.random.mtrand.RandomState",
            "numpy.random.bit_generator.SeedSequence",
            "numpy.random.bit_generator.SeedlessSeedSequence",
        ]
    )
    generic_families(state, lib, rnd, [(bg, "numpy-random"), (gens, "numpy-random")])
    for name in ("__randomstate_ctor", "__generator_ctor", "__bit_generator_ctor"):
        state.add("numpy.random._pickle", name, lib, "numpy-random", "ctor")
    # polynomials and other data classes
    poly = resolve_bases(["numpy.polynomial._polybase.ABCPolyBase"])
    generic_families(
        state,
        lib,
        [m for m in mods if m.__name__.startswith(("numpy.polynomial", "numpy.ma", "numpy.lib"))],
        [(poly, "numpy-array")],
        dataclasses_=False,
    )


def alias_spellings(state: State) -> None:
    """Other spellings of allowed objects that old pickles contain: the ``numpy.core`` shims
    NumPy 2 keeps, and aliases kept in the defining module (``Word2VecKeyedVectors``)."""
    for c in list(state.candidates):
        if c.module.startswith("numpy._core"):
            state.add(
                "numpy.core" + c.module[len("numpy._core") :],
                c.qualname,
                c.library,
                c.reason,
                "numpy.core shim",
            )
    by_id: dict[int, list[Candidate]] = {}
    objs: dict[int, Any] = {}
    for c in state.candidates:
        try:
            obj, walked = resolve(c.module, c.qualname)
        except LookupError:
            continue
        if walked or "." in c.qualname:
            continue
        by_id.setdefault(id(obj), []).append(c)
        objs[id(obj)] = obj
    for c0 in list(state.candidates):
        mod = sys.modules.get(c0.module)
        if mod is None:
            continue
    seen_modules = {c.module for c in state.candidates}
    for modname in sorted(seen_modules):
        mod = sys.modules.get(modname)
        if mod is None:
            continue
        for name, v in list(vars(mod).items()):
            if id(v) in by_id and objs[id(v)] is v and not isinstance(v, types.ModuleType):
                home = getattr(v, "__module__", None)
                if home != modname and modname != "numpy":
                    continue
                c = by_id[id(v)][0]
                state.add(modname, name, c.library, c.reason, "alias in defining module")


# legacy names: (module, qualname, library, versions, same-as module, same-as qualname, reason)
LEGACY: list[tuple[str, str, str, str, str, str, str]] = [
    (
        "sklearn.externals.joblib.numpy_pickle",
        "NumpyArrayWrapper",
        "scikit-learn",
        "<0.23",
        "joblib.numpy_pickle",
        "NumpyArrayWrapper",
        "joblib-array",
    ),
]

# sklearn < 0.24 public module paths of estimators now in private modules
SKLEARN_OLD_MODULES: dict[str, str] = {
    "sklearn.datasets.base": "sklearn.utils._bunch",
    "sklearn.tree.tree": "sklearn.tree._classes",
    "sklearn.tree._tree": "sklearn.tree._tree",
    "sklearn.ensemble.forest": "sklearn.ensemble._forest",
    "sklearn.ensemble.gradient_boosting": "sklearn.ensemble._gb",
    "sklearn.ensemble.weight_boosting": "sklearn.ensemble._weight_boosting",
    "sklearn.ensemble.bagging": "sklearn.ensemble._bagging",
    "sklearn.ensemble.iforest": "sklearn.ensemble._iforest",
    "sklearn.ensemble.voting": "sklearn.ensemble._voting",
    "sklearn.linear_model.logistic": "sklearn.linear_model._logistic",
    "sklearn.linear_model.base": "sklearn.linear_model._base",
    "sklearn.linear_model.ridge": "sklearn.linear_model._ridge",
    "sklearn.linear_model.coordinate_descent": "sklearn.linear_model._coordinate_descent",
    "sklearn.linear_model.stochastic_gradient": "sklearn.linear_model._stochastic_gradient",
    "sklearn.linear_model.perceptron": "sklearn.linear_model._perceptron",
    "sklearn.linear_model.passive_aggressive": "sklearn.linear_model._passive_aggressive",
    "sklearn.linear_model.bayes": "sklearn.linear_model._bayes",
    "sklearn.linear_model.huber": "sklearn.linear_model._huber",
    "sklearn.svm.classes": "sklearn.svm._classes",
    "sklearn.svm.base": "sklearn.svm._base",
    "sklearn.neighbors.classification": "sklearn.neighbors._classification",
    "sklearn.neighbors.regression": "sklearn.neighbors._regression",
    "sklearn.neighbors.unsupervised": "sklearn.neighbors._unsupervised",
    "sklearn.neighbors.kd_tree": "sklearn.neighbors._kd_tree",
    "sklearn.neighbors.ball_tree": "sklearn.neighbors._ball_tree",
    "sklearn.naive_bayes": "sklearn.naive_bayes",
    "sklearn.preprocessing.data": "sklearn.preprocessing._data",
    "sklearn.preprocessing.label": "sklearn.preprocessing._label",
    "sklearn.preprocessing._encoders": "sklearn.preprocessing._encoders",
    "sklearn.preprocessing.imputation": "sklearn.impute._base",
    "sklearn.decomposition.pca": "sklearn.decomposition._pca",
    "sklearn.decomposition.truncated_svd": "sklearn.decomposition._truncated_svd",
    "sklearn.decomposition.nmf": "sklearn.decomposition._nmf",
    "sklearn.decomposition.online_lda": "sklearn.decomposition._lda",
    "sklearn.cluster.k_means_": "sklearn.cluster._kmeans",
    "sklearn.cluster.dbscan_": "sklearn.cluster._dbscan",
    "sklearn.feature_extraction.text": "sklearn.feature_extraction.text",
    "sklearn.feature_selection.univariate_selection": (
        "sklearn.feature_selection._univariate_selection"
    ),
    "sklearn.feature_selection.variance_threshold": "sklearn.feature_selection._variance_threshold",
    "sklearn.model_selection._search": "sklearn.model_selection._search",
    "sklearn.mixture.gaussian_mixture": "sklearn.mixture._gaussian_mixture",
    "sklearn.manifold.t_sne": "sklearn.manifold._t_sne",
    "sklearn.calibration": "sklearn.calibration",
    "sklearn.discriminant_analysis": "sklearn.discriminant_analysis",
    "sklearn.impute": "sklearn.impute._base",
}
GENSIM_OLD: list[tuple[str, str, str, str]] = [
    # gensim 3.x class paths -> 4.x identity
    ("gensim.models.doc2vec", "DocvecsArray", "gensim.models.keyedvectors", "KeyedVectors"),
    ("gensim.models.wrappers.fasttext", "FastText", "gensim.models.fasttext", "FastText"),
    (
        "gensim.models.keyedvectors",
        "Word2VecKeyedVectors",
        "gensim.models.keyedvectors",
        "KeyedVectors",
    ),
    (
        "gensim.models.keyedvectors",
        "Doc2VecKeyedVectors",
        "gensim.models.keyedvectors",
        "KeyedVectors",
    ),
    (
        "gensim.models.keyedvectors",
        "WordEmbeddingsKeyedVectors",
        "gensim.models.keyedvectors",
        "KeyedVectors",
    ),
    (
        "gensim.models.keyedvectors",
        "BaseKeyedVectors",
        "gensim.models.keyedvectors",
        "KeyedVectors",
    ),
    (
        "gensim.models.keyedvectors",
        "EuclideanKeyedVectors",
        "gensim.models.keyedvectors",
        "KeyedVectors",
    ),
    (
        "gensim.models.keyedvectors",
        "FastTextKeyedVectors",
        "gensim.models.fasttext",
        "FastTextKeyedVectors",
    ),
    ("gensim.models.keyedvectors", "Vocab", "gensim.models.keyedvectors", "CompatVocab"),
    ("gensim.models.deprecated.keyedvectors", "Vocab", "gensim.models.keyedvectors", "CompatVocab"),
    (
        "gensim.models.deprecated.keyedvectors",
        "KeyedVectors",
        "gensim.models.keyedvectors",
        "KeyedVectors",
    ),
    ("gensim.models.deprecated.word2vec", "Word2Vec", "gensim.models.word2vec", "Word2Vec"),
    ("gensim.models.deprecated.doc2vec", "Doc2Vec", "gensim.models.doc2vec", "Doc2Vec"),
    ("gensim.models.deprecated.fasttext", "FastText", "gensim.models.fasttext", "FastText"),
    (
        "gensim.models.wrappers.fasttext",
        "FastTextKeyedVectors",
        "gensim.models.fasttext",
        "FastTextKeyedVectors",
    ),
    ("gensim.models.word2vec", "Vocab", "gensim.models.keyedvectors", "CompatVocab"),
    ("gensim.models.doc2vec", "Doctag", "gensim.models.doc2vec", "Doctag"),
    ("gensim.models.doc2vec", "Doc2VecVocab", "gensim.models.doc2vec", "Doc2VecVocab"),
    ("gensim.models.doc2vec", "Doc2VecTrainables", "gensim.models.doc2vec", "Doc2VecTrainables"),
    ("gensim.models.word2vec", "Word2VecVocab", "gensim.models.word2vec", "Word2VecVocab"),
    (
        "gensim.models.word2vec",
        "Word2VecTrainables",
        "gensim.models.word2vec",
        "Word2VecTrainables",
    ),
    ("gensim.models.fasttext", "FastTextVocab", "gensim.models.fasttext", "FastTextVocab"),
    (
        "gensim.models.fasttext",
        "FastTextTrainables",
        "gensim.models.fasttext",
        "FastTextTrainables",
    ),
    ("gensim.models.phrases", "Phraser", "gensim.models.phrases", "FrozenPhrases"),
]
# joblib < 0.10 and sklearn-vendored joblib spellings of call-through wrappers (not allowed)
LEGACY_CALL_THROUGH: list[tuple[str, str, str, str, str]] = [
    (
        "joblib.numpy_pickle",
        "NDArrayWrapper",
        "joblib",
        "<0.10",
        "joblib.numpy_pickle_compat:NDArrayWrapper",
    ),
    (
        "joblib.numpy_pickle",
        "ZNDArrayWrapper",
        "joblib",
        "<0.10",
        "joblib.numpy_pickle_compat:ZNDArrayWrapper",
    ),
    (
        "sklearn.externals.joblib.numpy_pickle",
        "NDArrayWrapper",
        "scikit-learn",
        "<0.21",
        "joblib.numpy_pickle_compat:NDArrayWrapper",
    ),
    (
        "sklearn.externals.joblib.numpy_pickle",
        "ZNDArrayWrapper",
        "scikit-learn",
        "<0.21",
        "joblib.numpy_pickle_compat:ZNDArrayWrapper",
    ),
    (
        "sklearn.externals.joblib.numpy_pickle_compat",
        "NDArrayWrapper",
        "scikit-learn",
        "<0.23",
        "joblib.numpy_pickle_compat:NDArrayWrapper",
    ),
    (
        "sklearn.externals.joblib.numpy_pickle_compat",
        "ZNDArrayWrapper",
        "scikit-learn",
        "<0.23",
        "joblib.numpy_pickle_compat:ZNDArrayWrapper",
    ),
]


def fam_scipy(state: State) -> None:
    lib = "scipy"
    mods = walk_library(state, lib, "scipy")
    bases = resolve_bases(
        [
            "scipy.sparse._base._spbase",
            "scipy.spatial._kdtree.KDTree",
            "scipy.spatial._ckdtree.cKDTree",
            "scipy.interpolate._polyint._Interpolator1D",
            "scipy.interpolate._interpolate._PPolyBase",
            "scipy.interpolate._bsplines.BSpline",
            "scipy.interpolate._fitpack2.UnivariateSpline",
            "scipy.interpolate._rgi.RegularGridInterpolator",
            "scipy.stats._distn_infrastructure.rv_generic",
            "scipy.stats._distn_infrastructure.rv_frozen",
            "scipy.stats._kde.gaussian_kde",
            "scipy.optimize._optimize.OptimizeResult",
            "scipy.spatial.transform._rotation.Rotation",
            "scipy._lib._bunch._make_tuple_bunch",
        ]
    )
    generic_families(
        state,
        lib,
        [
            m
            for m in mods
            if m.__name__.startswith(
                (
                    "scipy.sparse",
                    "scipy.spatial",
                    "scipy.interpolate",
                    "scipy.stats",
                    "scipy.optimize",
                )
            )
        ],
        [(bases, "scipy-data")],
        dataclasses_=False,
        cython=False,
    )


def fam_pandas(state: State) -> None:
    lib = "pandas"
    mods = walk_library(state, lib, "pandas")
    bases = resolve_bases(
        [
            "pandas.core.generic.NDFrame",
            "pandas.core.indexes.base.Index",
            "pandas.core.arrays.base.ExtensionArray",
            "pandas.core.dtypes.base.ExtensionDtype",
            "pandas.core.internals.managers.BaseBlockManager",
            "pandas.core.internals.blocks.Block",
            "pandas._libs.internals.BlockPlacement",
            "pandas._libs.internals.BlockValuesRefs",
            "pandas._libs.tslibs.offsets.BaseOffset",
            "pandas._libs.tslibs.timestamps._Timestamp",
            "pandas._libs.tslibs.timedeltas._Timedelta",
            "pandas._libs.tslibs.period._Period",
            "pandas._libs.interval.Interval",
            "pandas._libs.tslibs.nattype.NaTType",
            "pandas._libs.missing.NAType",
            "pandas.core.flags.Flags",
        ]
    )
    generic_families(
        state,
        lib,
        [
            m
            for m in mods
            if m.__name__.startswith(
                ("pandas.core", "pandas._libs", "pandas.arrays", "pandas.tseries")
            )
        ],
        [(bases, "pandas-data")],
        cython=False,
    )
    for mod, qual in (
        ("pandas.core.internals.blocks", "new_block"),
        ("pandas.core.internals.blocks", "_new_block"),
        ("pandas.core.internals.blocks", "new_block_2d"),
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.core.indexes.period", "_new_PeriodIndex"),
        ("pandas.core.indexes.datetimes", "_new_DatetimeIndex"),
        ("pandas.core.indexes.multi", "_new_MultiIndex"),
        ("pandas.core.arrays.sparse.array", "_make_sparse"),
        ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
        ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
        ("pandas._libs.tslibs.nattype", "__nat_unpickle"),
        ("pandas._libs.tslibs.period", "__pyx_unpickle__Period"),
        ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
        ("pandas._libs.tslibs.offsets", "_Day"),
        ("pandas.core.dtypes.dtypes", "CategoricalDtypeType"),
        ("pandas._libs.lib", "_NoDefault"),
    ):
        state.add(mod, qual, lib, "pandas-data", "reviewed pandas helper")
    # what real pandas objects pickle to (read with pickletools from pickle.dumps: no load)
    for obj in _pandas_samples():
        for m, q in pickle_spellings(obj):
            if m.startswith("pandas"):
                state.add(m, q, lib, "pandas-data", "observed in a pandas pickle")


def _pandas_samples() -> list[Any]:
    import numpy as np
    import pandas as pd

    out: list[Any] = []
    builders: list[Callable[[], Any]] = [
        lambda: pd.DataFrame({"a": [1, 2], "b": [1.5, 2.5], "c": ["x", "y"]}),
        lambda: pd.Series([1, 2, 3], name="s"),
        lambda: pd.Series(pd.Categorical(["a", "b", "a"])),
        lambda: pd.Series(pd.array([1, None], dtype="Int64")),
        lambda: pd.Series(pd.array([True, None], dtype="boolean")),
        lambda: pd.Series(pd.array(["a", None], dtype="string")),
        lambda: pd.Series(pd.array([1.5, None], dtype="Float64")),
        lambda: pd.date_range("2020-01-01", periods=3, tz="UTC"),
        lambda: pd.date_range("2020-01-01", periods=3, freq="D"),
        lambda: pd.period_range("2020-01", periods=3, freq="M"),
        lambda: pd.timedelta_range("1D", periods=3),
        lambda: pd.interval_range(0, 3),
        lambda: pd.MultiIndex.from_tuples([(1, "a"), (2, "b")]),
        lambda: pd.RangeIndex(5),
        lambda: pd.Index([1.5, 2.5]),
        lambda: pd.Index(["a", "b"]),
        lambda: pd.CategoricalIndex(["a", "b"]),
        lambda: pd.Timestamp("2020-01-01", tz="UTC"),
        lambda: pd.Timedelta("1D"),
        lambda: pd.Period("2020-01", freq="M"),
        lambda: pd.Interval(0, 1),
        lambda: pd.NaT,
        lambda: pd.NA,
        lambda: pd.offsets.Day(2),
        lambda: pd.offsets.MonthEnd(),
        lambda: pd.offsets.BusinessDay(),
        lambda: pd.offsets.Hour(3),
        lambda: pd.Series(pd.arrays.SparseArray([0, 0, 1])),
        lambda: pd.Series(np.array([1, 2], dtype="datetime64[ns]")),
        lambda: pd.DataFrame(np.zeros((2, 2))).set_index(0),
        lambda: pd.DataFrame({"t": pd.to_datetime(["2020-01-01"]).tz_localize("Europe/Paris")}),
    ]
    for build in builders:
        with contextlib.suppress(Exception):
            out.append(build())
    return out


def fam_sklearn(state: State) -> None:
    lib = "scikit-learn"
    mods = walk_library(state, lib, "sklearn")
    bases = resolve_bases(
        [
            "sklearn.base.BaseEstimator",
            "sklearn._loss.loss.BaseLoss",
            "sklearn._loss.link.BaseLink",
            "sklearn._loss.link.Interval",
            "sklearn.utils._bunch.Bunch",
            "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
            "sklearn.utils._param_validation._Constraint",
            "sklearn.gaussian_process.kernels.Kernel",
            "sklearn.gaussian_process.kernels.Hyperparameter",
            "sklearn.utils.metadata_routing.MetadataRequest",
            "sklearn.utils._metadata_requests.MetadataRequest",
            "sklearn.utils._metadata_requests.MethodMetadataRequest",
            "sklearn.utils._metadata_requests.MetadataRouter",
            "sklearn.metrics._scorer._BaseScorer",
            "sklearn.metrics._scorer._MultimetricScorer",
            "sklearn.model_selection._split.BaseCrossValidator",
            "sklearn.model_selection._split.BaseShuffleSplit",
            "sklearn.model_selection._split._RepeatedSplits",
            "sklearn.model_selection._split.PredefinedSplit",
            "sklearn.model_selection._split._CVIterableWrapper",
            "sklearn.model_selection._search.ParameterGrid",
            "sklearn.model_selection._search.ParameterSampler",
            "sklearn.neural_network._stochastic_optimizers.BaseOptimizer",
            "sklearn.utils._plotting._BinaryClassifierCurveDisplayMixin",
        ]
    )
    generic_families(state, lib, mods, [(bases, "estimator")], cython=True)
    # the one validation helper estimators keep in their state (reviewed; check_memory and
    # friends create directories and are not offered)
    state.add("sklearn.utils.validation", "check_array", lib, "sklearn-function", "function")


def fam_boosting(state: State) -> None:
    specs = {
        "xgboost": ("xgboost", ["xgboost.sklearn.XGBModel", "xgboost.core.Booster"]),
        "lightgbm": ("lightgbm", ["lightgbm.sklearn.LGBMModel", "lightgbm.basic.Booster"]),
        "catboost": ("catboost", ["catboost.core.CatBoost", "catboost.core._CatBoostBase"]),
    }
    for lib, (root, base_names) in specs.items():
        if import_quiet(root) is None:
            state.import_errors.setdefault(lib, []).append(f"{root}: not installed")
            continue
        mods = walk_library(state, lib, root)
        bases = resolve_bases(base_names)
        boosters = tuple(b for b in bases if b.__name__ == "Booster")
        others = tuple(b for b in bases if b.__name__ != "Booster")
        generic_families(
            state, lib, mods, [(boosters, "booster"), (others, "estimator")], cython=True
        )


def fam_joblib(state: State) -> None:
    lib = "joblib"
    walk_library(state, lib, "joblib")
    state.add("joblib.numpy_pickle", "NumpyArrayWrapper", lib, "joblib-array", "reviewed")
    state.add("joblib.numpy_pickle_compat", "NDArrayWrapper", lib, "joblib-array", "reviewed")
    state.add("joblib.numpy_pickle_compat", "ZNDArrayWrapper", lib, "joblib-array", "reviewed")


def fam_hf(state: State) -> None:
    """transformers, tokenizers, accelerate, peft, diffusers, sentence-transformers."""
    import_needed = {
        "transformers": [
            ("transformers.configuration_utils.PretrainedConfig", "hf-config"),
            ("transformers.configuration_utils.PreTrainedConfig", "hf-config"),
            ("transformers.generation.configuration_utils.GenerationConfig", "hf-config"),
            ("transformers.utils.quantization_config.QuantizationConfigMixin", "hf-config"),
            ("transformers.modeling_utils.PreTrainedModel", "hf-model"),
            ("torch.nn.modules.module.Module", "hf-model"),
            ("transformers.utils.generic.ModelOutput", "hf-output"),
            ("transformers.tokenization_utils_base.BatchEncoding", "hf-output"),
            ("transformers.feature_extraction_utils.BatchFeature", "hf-output"),
            ("transformers.tokenization_utils_base.PreTrainedTokenizerBase", "hf-tokenizer"),
            ("transformers.training_args.TrainingArguments", "training-state"),
            ("transformers.trainer_callback.TrainerState", "training-state"),
            ("transformers.trainer_callback.TrainerControl", "training-state"),
            ("transformers.trainer_callback.TrainerCallback", "training-state"),
            ("transformers.trainer_utils.EvalPrediction", "training-state"),
            ("transformers.feature_extraction_utils.FeatureExtractionMixin", "hf-config"),
            ("transformers.image_processing_base.ImageProcessingMixin", "hf-config"),
            ("transformers.processing_utils.ProcessorMixin", "hf-config"),
            ("transformers.cache_utils.Cache", "hf-output"),
            ("transformers.cache_utils.CacheLayerMixin", "hf-output"),
        ],
        "tokenizers": [],
        "accelerate": [
            ("accelerate.utils.dataclasses.KwargsHandler", "hf-config"),
            ("accelerate.state.PartialState", "training-state"),
            ("accelerate.state.AcceleratorState", "training-state"),
            ("accelerate.state.GradientState", "training-state"),
        ],
        "peft": [
            ("peft.config.PeftConfigMixin", "hf-config"),
            ("torch.nn.modules.module.Module", "hf-model"),
        ],
        "diffusers": [
            ("diffusers.configuration_utils.ConfigMixin", "hf-config"),
            ("diffusers.configuration_utils.FrozenDict", "hf-config"),
            ("diffusers.utils.outputs.BaseOutput", "hf-output"),
            ("torch.nn.modules.module.Module", "hf-model"),
            ("diffusers.schedulers.scheduling_utils.SchedulerMixin", "hf-config"),
        ],
        "sentence-transformers": [
            ("torch.nn.modules.module.Module", "hf-model"),
            (
                "sentence_transformers.training_args.SentenceTransformerTrainingArguments",
                "training-state",
            ),
        ],
    }
    for lib, base_specs in import_needed.items():
        root = LIBRARIES[lib][0]
        if import_quiet(root) is None:
            state.import_errors.setdefault(lib, []).append(f"{root}: not installed")
            continue
        mods = walk_library(state, lib, root)
        if lib == "tokenizers":
            for mod in mods:
                for cls in defined_classes(mod):
                    if mod.__name__.startswith("tokenizers.implementations"):
                        continue  # Python wrappers that read vocab files by path
                    state.add(cls.__module__, cls.__qualname__, lib, "hf-tokenizer", "rust")
                for name, v in sorted(vars(mod).items()):
                    own = str(getattr(v, "__module__", "")).startswith("tokenizers")
                    if isinstance(v, type) and own and not name.startswith("_"):
                        if mod.__name__.startswith("tokenizers.implementations"):
                            continue
                        state.add_obj(v, lib, "hf-tokenizer", "rust (pickled spelling)")
            continue
        families: list[tuple[tuple[type, ...], str]] = []
        for dotted, reason in base_specs:
            families.append((resolve_bases([dotted]), reason))
        generic_families(state, lib, mods, families)


def fam_lightning(state: State) -> None:
    for lib in ("lightning", "lightning-fabric", "pytorch-lightning"):
        root = LIBRARIES[lib][0]
        if import_quiet(root) is None:
            state.import_errors.setdefault(lib, []).append(f"{root}: not installed")
            continue
        mods = walk_library(state, lib, root)
        pre = root + ".pytorch" if root == "lightning" else root
        fab = root + ".fabric" if root == "lightning" else "lightning_fabric"
        bases = [
            (resolve_bases(["torch.nn.modules.module.Module"]), "hf-model"),
            (
                resolve_bases(
                    [
                        f"{pre}.callbacks.callback.Callback",
                        f"{fab}.utilities.data.AttributeDict",
                        f"{pre}.utilities.parsing.AttributeDict",
                        f"{pre}.trainer.states.TrainerState",
                        f"{pre}.loops.progress._BaseProgress",
                        f"{pre}.core.datamodule.LightningDataModule",
                    ]
                ),
                "training-state",
            ),
        ]
        generic_families(state, lib, mods, bases)


GENSIM_HELPER_FUNCTIONS = [
    ("gensim.utils", "call_on_class_only"),
    ("gensim.utils", "identity"),
    ("gensim.models.phrases", "original_scorer"),
    ("gensim.models.phrases", "npmi_scorer"),
    ("gensim.models.tfidfmodel", "df2idf"),
    ("gensim.models.tfidfmodel", "precompute_idfs"),
    ("gensim.models.tfidfmodel", "smartirs_normalize"),
    ("gensim.models.tfidfmodel", "smartirs_wglobal"),
    ("gensim.models.tfidfmodel", "smartirs_wlocal"),
    ("gensim.models.ensemblelda", "mass_masking"),
    ("gensim.models.ensemblelda", "rank_masking"),
]
GENSIM_HELPER_CLASSES = [
    ("gensim.models.ensemblelda", "CBDBSCAN"),
    ("gensim.models.poincare", "NegativesBuffer"),
]


def fam_gensim(state: State) -> None:
    lib = "gensim"
    if import_quiet("gensim") is None:
        state.import_errors.setdefault(lib, []).append("gensim: not installed")
        return
    mods = walk_library(state, lib, "gensim")
    bases = resolve_bases(["gensim.utils.SaveLoad"])
    data = resolve_bases(["gensim.models.keyedvectors.CompatVocab", "gensim.models.doc2vec.Doctag"])
    generic_families(state, lib, mods, [(bases, "gensim-model"), (data, "gensim-model")])
    # helper functions and classes that gensim models keep as attributes, reviewed one by
    # one (a whole-module sweep also admitted file writers such as utils.copytree_hardlink):
    # hashfxn, phrase scorers, tf-idf weighting schemes, SaveLoad's `load` placeholder,
    # ensemble-LDA masking and clustering helpers, the Poincare negatives buffer
    for module, name in GENSIM_HELPER_FUNCTIONS:
        state.add(module, name, lib, "gensim-function", "function")
    for module, name in GENSIM_HELPER_CLASSES:
        state.add(module, name, lib, "gensim-model", "class")


FAMILIES: list[Callable[[State], None]] = [
    fam_python,
    fam_torch,
    fam_numpy,
    fam_scipy,
    fam_pandas,
    fam_sklearn,
    fam_boosting,
    fam_joblib,
    fam_hf,
    fam_lightning,
    fam_gensim,
]


# --------------------------------------------------------------------------------------------
# Judging candidates
# --------------------------------------------------------------------------------------------
@dataclass
class Verdict:
    allowed: bool
    why: str = ""
    call_through: dict[str, str] | None = None


def judge(fb: Forbidden, c: Candidate) -> Verdict:
    """Allow a candidate, or refuse it with a reason (and a call-through record)."""
    ident = (c.module, c.qualname)
    if not is_dotted(c.module) or not is_dotted(c.qualname):
        return Verdict(False, "not a dotted identifier")
    try:
        obj, walked = resolve(c.module, c.qualname)
    except LookupError as exc:
        return Verdict(False, f"does not resolve: {exc}")
    if isinstance(obj, types.ModuleType):
        return Verdict(False, f"is a module object ({obj.__name__})")
    canonical = (defining_module(obj), getattr(obj, "__qualname__", None))
    if walked:
        # the qualname walks through a module object: judged as what it reaches, whose own
        # canonical identity must be a candidate that passes on its own (checked by the caller)
        pass
    if ident in CALL_THROUGH or c.qualname.split(".")[-1].startswith("__pyx_unpickle_"):
        arg, use, note = CALL_THROUGH.get(
            ident, ("0", "class", "Cython reconstructor: type.__new__(cls) on its first argument")
        )
        return Verdict(False, f"call-through: {note}", {"argument": arg, "use": use, "note": note})
    if ident in DENIED_MODULE_EXEMPTIONS or ident in FORBIDDEN_MODULE_OK:
        pass
    else:
        why = fb.check(obj)
        if why is not None:
            return Verdict(False, why)
        pat = None if ident in NAME_PATTERN_EXEMPTIONS else fb.name_denied(c.module, c.qualname)
        if pat is not None:
            return Verdict(False, f"name matches denylist pattern {pat}")
        if fb.module_forbidden(c.module):
            return Verdict(False, f"module {c.module} is forbidden")
    override = OVERRIDES.get(ident) or OVERRIDES.get(canonical)  # type: ignore[arg-type]
    if isinstance(obj, type):
        hits = class_hits(obj, RECONSTRUCT_METHODS + CALL_METHODS)
        init_hits = class_hits(obj, INIT_METHODS)
        if hits and not override:
            return Verdict(False, "unpickling code names " + "; ".join(sorted(set(hits))[:6]))
        if init_hits and not override:
            note = "__init__ names " + "; ".join(sorted(set(init_hits))[:6])
            return Verdict(
                False,
                "constructor: " + note,
                {
                    "argument": "__init__ arguments",
                    "use": "constructor",
                    "note": note + " (NEWOBJ/copyreg reconstruction + BUILD does not run "
                    "__init__; a REDUCE call of the class with arguments does)",
                },
            )
    else:
        fn = _as_function(obj)
        if fn is not None:
            hits = function_hits(fn, None, HINT_DEPTH, fn.__qualname__)
            if hits and not override:
                return Verdict(False, "code names " + "; ".join(sorted(set(hits))[:6]))
            calls = param_calls(fn)
            if calls and not override:
                arg = ",".join(p for p, _ in calls)
                use = calls[0][1]
                note = "; ".join(f"{how} parameter {p}" for p, how in calls)
                return Verdict(
                    False, f"call-through: {note}", {"argument": arg, "use": use, "note": note}
                )
    return Verdict(True, override or "")


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------
def library_versions(libs: Iterable[str]) -> dict[str, str]:
    from importlib import metadata

    out = {"python": ".".join(str(x) for x in sys.version_info[:3])}
    for lib in sorted(libs):
        if lib == "python":
            continue
        try:
            out[lib] = metadata.version(LIBRARIES[lib][1])
        except metadata.PackageNotFoundError:
            # vendored (lightning_fabric inside the pytorch-lightning wheel): its __version__
            mod = import_quiet(LIBRARIES[lib][0])
            version = getattr(mod, "__version__", None)
            if isinstance(version, str):
                out[lib] = version
    return out


def dump_json(doc: dict[str, Any]) -> str:
    """Stable, diffable JSON: one module per block, one entry per line."""
    lines = ["{"]
    top = list(doc.items())
    for ti, (key, value) in enumerate(top):
        comma = "," if ti < len(top) - 1 else ""
        if key in ("entries", "legacy") and isinstance(value, dict):
            lines.append(f"  {json.dumps(key)}: {{")
            mods = sorted(value)
            for mi, mod in enumerate(mods):
                lines.append(f"    {json.dumps(mod)}: {{")
                names = sorted(value[mod])
                for ni, name in enumerate(names):
                    c2 = "," if ni < len(names) - 1 else ""
                    item = json.dumps(value[mod][name], sort_keys=True, ensure_ascii=False)
                    lines.append(f"      {json.dumps(name)}: {item}{c2}")
                lines.append("    }" + ("," if mi < len(mods) - 1 else ""))
            lines.append("  }" + comma)
        elif isinstance(value, dict):
            lines.append(f"  {json.dumps(key)}: {{")
            keys = sorted(value)
            for ki, k in enumerate(keys):
                c2 = "," if ki < len(keys) - 1 else ""
                lines.append(f"    {json.dumps(k)}: {json.dumps(value[k], ensure_ascii=False)}{c2}")
            lines.append("  }" + comma)
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


_T0 = time.monotonic()


def progress(msg: str) -> None:
    if os.environ.get("GEN_ALLOWLIST_QUIET") != "1":
        print(f"[{time.monotonic() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def generate(libraries: Iterable[str] | None = None) -> dict[str, Any]:
    """Run every family, judge every candidate, return the outputs (no files written)."""
    wanted = set(libraries) if libraries else None
    fb_placeholder = Forbidden()
    state = State(fb_placeholder)
    lib_of_family = {
        fam_python: {"python"},
        fam_torch: {"torch"},
        fam_numpy: {"numpy"},
        fam_scipy: {"scipy"},
        fam_pandas: {"pandas"},
        fam_sklearn: {"scikit-learn"},
        fam_boosting: {"xgboost", "lightgbm", "catboost"},
        fam_joblib: {"joblib"},
        fam_hf: {
            "transformers",
            "tokenizers",
            "accelerate",
            "peft",
            "diffusers",
            "sentence-transformers",
        },
        fam_lightning: {"lightning", "lightning-fabric", "pytorch-lightning"},
        fam_gensim: {"gensim"},
    }
    for fam in FAMILIES:
        if wanted is not None and not (lib_of_family[fam] & wanted):
            continue
        progress(f"family {fam.__name__}")
        try:
            fam(state)
        except ImportError as exc:
            for lib in lib_of_family[fam]:
                state.import_errors.setdefault(lib, []).append(f"family skipped: {exc}")
    progress("alias spellings")
    alias_spellings(state)
    progress("forbidden set")
    # the forbidden set is built after every library module is imported, so identities of
    # everything those modules pulled in are known
    fb = build_forbidden()
    state.forbidden = fb

    entries: dict[str, dict[str, list[str]]] = {}
    refusals: dict[tuple[str, str], tuple[str, str, str]] = {}
    calls: dict[tuple[str, str], dict[str, str]] = {}
    seen: dict[tuple[str, str], Candidate] = {}
    for c in state.candidates:
        seen.setdefault((c.module, c.qualname), c)
    allowed_objs: dict[int, Any] = {}
    walked_later: list[tuple[Candidate, Any]] = []
    progress(f"judging {len(seen)} candidates")
    for i, ident in enumerate(sorted(seen)):
        if i and i % 1000 == 0:
            progress(f"  {i}/{len(seen)}")
        c = seen[ident]
        v = judge(fb, c)
        if v.call_through is not None and v.call_through.get("use") == "constructor":
            # Its __init__ touches files or processes, but real pickles rebuild it with
            # __new__ and its state. Allowed under a reason the engine lists as
            # reconstruct-only: a stream that calls it is still reported (P105).
            obj, walked = resolve(c.module, c.qualname)
            if not walked:
                entries.setdefault(c.module, {})[c.qualname] = [c.library, "init-side-effects"]
                allowed_objs[id(obj)] = obj
                rec = {"library": c.library, **v.call_through, "source": source_line(obj)}
                calls[ident] = rec
                continue
        if v.allowed:
            obj, walked = resolve(c.module, c.qualname)
            if walked:
                walked_later.append((c, obj))
                continue
            entries.setdefault(c.module, {})[c.qualname] = [c.library, c.reason]
            allowed_objs[id(obj)] = obj
        else:
            refusals[ident] = (c.library, c.how, v.why)
            if v.call_through is not None:
                rec = {"library": c.library, **v.call_through}
                try:
                    obj, _ = resolve(c.module, c.qualname)
                    rec["source"] = source_line(obj)
                except LookupError:
                    rec["source"] = "(does not resolve)"
                calls[ident] = rec
    for c, obj in walked_later:
        if allowed_objs.get(id(obj)) is obj:
            entries.setdefault(c.module, {})[c.qualname] = [c.library, c.reason]
        else:
            refusals[(c.module, c.qualname)] = (
                c.library,
                c.how,
                "walks through a module object to an object that is not itself allowed",
            )

    legacy: dict[str, dict[str, dict[str, str]]] = {}
    legacy_rows = list(LEGACY)
    for old, new in SKLEARN_OLD_MODULES.items():
        for qual in sorted(entries.get(new, {})):
            if qual[:1].isupper():
                legacy_rows.append(
                    (old, qual, "scikit-learn", "<0.24", new, qual, entries[new][qual][1])
                )
    for mod, qual, new_mod, new_qual in GENSIM_OLD:
        reason = entries.get(new_mod, {}).get(new_qual, ["", "gensim-model"])[1]
        legacy_rows.append((mod, qual, "gensim", "<4.0", new_mod, new_qual, reason))
    for mod, qual, lib, versions, new_mod, new_qual, reason in legacy_rows:
        if qual in entries.get(mod, {}):
            continue  # still resolves to the same allowed object: it is an entry
        if new_qual not in entries.get(new_mod, {}):
            refusals[(mod, qual)] = (lib, "legacy", f"same-as {new_mod}:{new_qual} not allowed")
            continue
        try:
            obj, _ = resolve(mod, qual)
            target, _ = resolve(new_mod, new_qual)
            if obj is not target:
                refusals[(mod, qual)] = (lib, "legacy", "resolves to a different object now")
                continue
            entries.setdefault(mod, {})[qual] = [lib, reason]
            continue
        except LookupError:
            pass
        legacy.setdefault(mod, {})[qual] = {
            "library": lib,
            "versions": versions,
            "same-as": f"{new_mod}:{new_qual}",
            "reason": reason,
        }
    for mod, qual, lib, versions, same in LEGACY_CALL_THROUGH:
        target = tuple(same.split(":"))
        base = calls.get(target)  # type: ignore[arg-type]
        rec = dict(base) if base else {"library": lib}
        if "source" not in rec:
            try:
                rec["source"] = source_line(resolve(*target)[0])
            except LookupError:
                rec["source"] = "(does not resolve)"
        rec.update({"library": lib, "versions": versions, "same-as": same})
        calls[(mod, qual)] = rec
        refusals[(mod, qual)] = (lib, "legacy", f"call-through (legacy spelling of {same})")

    used = {r for mods in entries.values() for _, r in mods.values()}
    used |= {v["reason"] for mods in legacy.values() for v in mods.values()}
    libs = {lib for mods in entries.values() for lib, _ in mods.values()}
    doc = {
        "schema": 1,
        "generator": "scripts/gen_allowlist.py",
        "libraries": library_versions(libs | {"python"}),
        "reasons": {k: REASONS[k] for k in sorted(used)},
        "entries": entries,
        "legacy": legacy,
    }
    return {
        "doc": doc,
        "refusals": refusals,
        "calls": calls,
        "import_errors": state.import_errors,
        "overrides_used": sorted(f"{m}:{q}" for (m, q) in OVERRIDES if q in entries.get(m, {})),
    }


def write_outputs(result: dict[str, Any]) -> None:
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    text = dump_json(result["doc"])
    json.loads(text)  # must stay plain JSON
    OUT_JSON.write_text(text, encoding="utf-8")
    calls = result["calls"]
    call_doc = {
        "schema": 1,
        "generator": "scripts/gen_allowlist.py",
        "about": "Identities the generator refused because they call, instantiate, resolve or "
        "deserialize an argument (or, use=constructor, because their __init__ touches files, "
        "processes or code). The engine may allow them only with argument checks.",
        "candidates": [{"module": m, "qualname": q, **calls[(m, q)]} for (m, q) in sorted(calls)],
    }
    OUT_CALLS.write_text(json.dumps(call_doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    lines = [
        "# Candidates refused by scripts/gen_allowlist.py, sorted: module:qualname  [library, "
        "family]  reason",
        f"# libraries: {json.dumps(result['doc']['libraries'], sort_keys=True)}",
        "",
    ]
    for (m, q), (lib, how, why) in sorted(result["refusals"].items()):
        lines.append(f"{m}:{q}  [{lib}, {how}]  {why}")
    lines.append("")
    lines.append("# Modules that could not be imported while walking (not enumerated):")
    for lib, errs in sorted(result["import_errors"].items()):
        for e in sorted(errs):
            lines.append(f"# {lib}: {e}")
    OUT_REFUSALS.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--only", nargs="*", help="only these libraries (for debugging)")
    ap.add_argument("--dry-run", action="store_true", help="print counts, write nothing")
    args = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    result = generate(args.only)
    doc = result["doc"]
    per_lib: dict[str, int] = {}
    for mods in doc["entries"].values():
        for lib, _ in mods.values():
            per_lib[lib] = per_lib.get(lib, 0) + 1
    ref_lib: dict[str, int] = {}
    for lib, _how, _why in result["refusals"].values():
        ref_lib[lib] = ref_lib.get(lib, 0) + 1
    total = sum(per_lib.values())
    legacy_n = sum(len(v) for v in doc["legacy"].values())
    print(f"entries: {total} ({len(doc['entries'])} modules), legacy: {legacy_n}")
    for lib in sorted(set(per_lib) | set(ref_lib)):
        print(f"  {lib:24} allowed {per_lib.get(lib, 0):6}  refused {ref_lib.get(lib, 0):6}")
    print(f"call-through candidates: {len(result['calls'])}")
    print(f"overrides used: {', '.join(result['overrides_used']) or '-'}")
    if not args.dry_run:
        write_outputs(result)
        print(
            f"wrote {OUT_JSON.relative_to(ROOT)}, {OUT_CALLS.relative_to(ROOT)}, "
            f"{OUT_REFUSALS.relative_to(ROOT)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
