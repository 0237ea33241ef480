"""Generate rules/allowlist/keras-objects.json: the exact (module, name) identities Keras'
own objects serialize to, from the installed Keras (see the file's ``about``).

    KERAS_BACKEND=torch /tmp/venv-keras/bin/python scripts/make_keras_allowlist.py

What goes in, and why:

- ``api``: every canonical public name Keras registers (``keras.src.api_export``), split
  at the last dot: ``keras.layers`` + ``Dense``. Keras 3 writes a public object's
  ``module``/``class_name`` this way, and resolves them back through the same table.
  Only the modeling namespaces (layers, models, activations, losses, metrics, optimizers,
  initializers, regularizers, constraints, ops, random, dtype policies, quantizers, the
  root ``keras`` names); ``keras.utils``, ``keras.config``, ``keras.saving``,
  ``keras.applications`` (downloads weights) and the rest are not modeling objects.
- ``class``: every ``KerasSaveable`` subclass defined in ``keras.src`` (importable with
  this backend): non-exported objects are written as ``cls.__module__`` + ``__name__``
  (``keras.src.models.functional`` + ``Functional``).
- ``ast``: classes of the other backends' modules (which import TensorFlow, JAX...)
  whose bases are classes already listed: the optimizers a model saved on another backend
  names (``keras.src.backend.tensorflow.optimizer``...).

What stays out (``denied``, each with its reason): Keras' own NON_MODELING_APIS and every
object that changes safe mode, downloads, reads or writes files, loads a model or a pickle,
or runs serialized code: the gadgets of CVE-2025-8747, CVE-2025-9906, CVE-2025-49655 and
CVE-2026-1462. A config naming one gets K104, never an allowlist pass.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import pkgutil
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import contextlib

import keras
from keras.src import api_export
from keras.src.saving import serialization_lib
from keras.src.saving.keras_saveable import KerasSaveable

OUT = Path(__file__).resolve().parent.parent / "rules" / "allowlist" / "keras-objects.json"

MODELING = (
    "keras.layers",
    "keras.models",
    "keras.activations",
    "keras.losses",
    "keras.metrics",
    "keras.optimizers",
    "keras.initializers",
    "keras.regularizers",
    "keras.constraints",
    "keras.ops",
    "keras.random",
    "keras.dtype_policies",
    "keras.quantizers",
    "keras.mixed_precision",
)

# the last component of an object that changes safe mode, downloads, touches files, loads a
# model, weights or pickle, or turns serialized bytes into code (shared with K104's globs)
GADGETS = {
    "enable_unsafe_deserialization": "turns safe mode off (CVE-2025-9906)",
    "set_global_attribute": "can turn safe mode off (CVE-2025-9906)",
    "SafeModeScope": "sets safe mode",
    "get_file": "downloads a file to a chosen path (CVE-2025-8747)",
    "load_model": "loads another model, with its own safe_mode argument (CVE-2025-9906)",
    "model_from_json": "deserializes another model config",
    "load_weights": "reads a file",
    "load_model_from_hdf5": "loads a legacy HDF5 model, where safe mode does not apply",
    "TorchModuleWrapper": "torch.load()s a pickle from its config (CVE-2025-49655)",
    "TFSMLayer": "loads an external TensorFlow SavedModel (CVE-2026-1462)",
    "func_load": "marshal-loads bytecode",
    "deserialize_keras_object": "deserializes a nested config",
    "register_keras_serializable": "registers objects",
}


def is_gadget(dotted: str) -> str | None:
    if dotted in serialization_lib.NON_MODELING_APIS:
        return "listed in Keras' NON_MODELING_APIS"
    return GADGETS.get(dotted.rpartition(".")[2])


def main() -> int:
    failed: list[str] = []
    src = Path(keras.src.__file__).parent
    for info in pkgutil.walk_packages([str(src)], "keras.src."):
        if ".tests" in info.name or info.name.endswith("_test"):
            continue
        with contextlib.suppress(Exception):
            importlib.import_module(info.name)
    objects: dict[tuple[str, str], dict[str, str]] = {}
    denied: dict[tuple[str, str], str] = {}

    def add(module: str, name: str, kind: str, source: str) -> None:
        why = is_gadget(f"{module}.{name}")
        if why:
            denied[(module, name)] = why
        else:
            objects.setdefault((module, name), {"kind": kind, "source": source})

    for public, obj in sorted(api_export.REGISTERED_NAMES_TO_OBJS.items()):
        module, _, name = public.rpartition(".")
        if module == "keras" or module.startswith(MODELING):
            add(module, name, "class" if inspect.isclass(obj) else "function", "api")
        elif is_gadget(public):
            denied[(module, name)] = str(is_gadget(public))

    seen: set[type] = set()
    todo = [KerasSaveable]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    saveable_names = set()
    for cls in seen:
        if cls.__module__.startswith("keras.src.") and "tests" not in cls.__module__:
            add(cls.__module__, cls.__name__, "class", "class")
            saveable_names.add(cls.__name__)

    # modules that did not import (a failed package hides its submodules from the walk)
    for file in sorted(src.rglob("*.py")):
        parts = file.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modname = ".".join(("keras", "src", *parts))
        test = "tests" in parts or (bool(parts) and parts[-1].endswith("_test"))
        if modname in sys.modules or test:
            continue
        failed.append(modname)
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (OSError, SyntaxError):
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                bases = {
                    b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "")
                    for b in node.bases
                }
                if bases & saveable_names:
                    add(modname, node.name, "class", "ast")

    builtin_functions = sorted(
        {
            name.rpartition(".")[2]
            for name, obj in api_export.REGISTERED_NAMES_TO_OBJS.items()
            if name.rpartition(".")[0] in {f"keras.{m}" for m in serialization_lib.BUILTIN_MODULES}
            and not inspect.isclass(obj)
            and not is_gadget(name)
        }
    )
    data = {
        "about": [
            "The exact (module, name) identities Keras' own objects serialize to in a model",
            "config (config.json of a .keras file, model_config of a legacy .h5). An object",
            "whose identity is here is Keras' own; any other is reported (K102-K106).",
            "Generated by scripts/make_keras_allowlist.py from the installed Keras; `source`",
            "says how each entry was found (api: Keras' public-name table; class: a",
            "KerasSaveable subclass imported with this backend; ast: a class of another",
            "backend's module, read from its source). `builtin_functions` are the names a",
            "config may give with module `builtins` (Keras looks them up in its",
            "activations, losses, metrics... modules). `denied` are Keras objects kept out",
            "on purpose: they change safe mode, download, read files, load models or pickles.",
        ],
        "generator": "scripts/make_keras_allowlist.py",
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "builtin_functions": builtin_functions,
        "objects": [{"module": m, "name": n, **v} for (m, n), v in sorted(objects.items())],
        "denied": [{"module": m, "name": n, "why": w} for (m, n), w in sorted(denied.items())],
    }
    OUT.write_text(json.dumps(data, indent=0, sort_keys=False) + "\n", encoding="utf-8")
    print(
        f"{OUT}: {len(objects)} objects, {len(denied)} denied, {len(failed)} modules "
        "not importable (read by ast)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
