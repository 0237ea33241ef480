"""Keras model configs: ``config.json`` / ``metadata.json`` of a Keras v3 ``.keras`` zip, and
the ``model_config`` / ``training_config`` attributes of a legacy HDF5 ``.h5`` (read by
:mod:`.hdf5`).

What the bytes are (Keras 3, ``keras/src/saving/saving_lib.py`` and
``serialization_lib.py``): ``config.json`` is one JSON object, the serialized model. Every
Keras object in it is a dict ``{"module", "class_name", "config", "registered_name"}``
(plus ``build_config``, ``compile_config``, ``shared_object_id``, ``inbound_nodes``...),
nested to any depth: a Functional model's ``config.layers``, a wrapper's ``layer``, a
sub-model, an optimizer inside ``compile_config``, an initializer inside a layer config.
Loading resolves each dict to a Python object and calls its ``from_config``:

- ``class_name: "__lambda__"`` (anywhere), and a Keras 2 ``Lambda`` with
  ``function_type: "lambda"``: base64 ``marshal`` bytecode that loading turns into a
  function (``python_utils.func_load``) and later calls. Keras refuses it in safe mode, but
  safe mode does not exist for HDF5 (CVE-2025-9905), for Keras 2 / before 2.13
  (CVE-2024-3660) or once a config turns it off (CVE-2025-9906).
- ``class_name: "function"`` with ``config: "<name>"`` and ``module``: a function looked up
  by name; a class: ``module`` + ``class_name``. Keras 3 before 3.9 imported any
  ``module`` (CVE-2025-1550); later versions still reach every public Keras API that is
  not on their NON_MODELING_APIS list, and any ``KerasSaveable`` in ``keras*`` packages.
- ``registered_name: "package>Name"``: an object of user code, registered with
  ``register_keras_serializable``; it runs if the code is importable.
- Keras 2 / HDF5 configs have no ``module``; a ``class_name`` Keras does not define needs
  a custom object.

Facts (rules K101-K106): ``keras.lambda`` (bytecode, evidence a disassembly made by
:mod:`.pymarshal` without ``marshal.loads``), ``keras.reference`` (an object outside the
Keras packages: ``os.system``, ``builtins.exec``), ``keras.internal`` (a Keras function or
class that is not a modeling object: ``keras.utils.get_file``), ``keras.custom``
(registered or unknown custom objects). Identities are exact (``module`` + name), checked
against ``rules/allowlist/keras-objects.json`` (generated from Keras itself).
Malformed documents are ``keras-config-malformed`` (K201); JSON budgets are X901.

A ``.keras`` is recognised by ``config.json`` at the zip's root beside ``metadata.json`` or
the weights (Keras itself never reads ``metadata.json``), or alone; a Keras config found
anywhere else (scanned alone, an unzipped model folder, a zip of another layout) is
recognised by content (:func:`sniff_keras_config`: a top-level string ``class_name``).
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from functools import lru_cache
from json.decoder import scanstring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from .. import jsonbudget
from ..callables import load_callables
from ..model import Location
from . import pymarshal
from .base import Context
from .streams import BudgetExceeded, Source

KERAS_PACKAGES = ("keras", "tf_keras", "keras_core")
# packages Keras itself imports by ``module`` (serialization_lib): their objects still need
# code from another package, so they are custom objects, not Keras' own
ECOSYSTEM = ("keras_hub", "keras_cv", "keras_nlp")
SPECIAL = frozenset(
    {"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__ellipsis__", "__slice__"}
)
# tf.keras' JSON encodings of values (tf_keras json_utils ``_decode_helper``): turned into a
# tuple, a TensorShape or a type spec found by its *registered* name, never by importing
# (key the decoder reads -> encoding)
LEGACY_VALUE_ENCODINGS = {
    "__tuple__": "items",
    "TensorShape": "items",
    "TypeSpec": "type_spec",
    "CompositeTensor": "spec",
}
MAX_EVIDENCE_LINES = 160
MAX_LAMBDA_BYTES = 4 * 1024 * 1024
MAX_PICKLE_BYTES = 64 * 1024 * 1024


class KerasAllowlist:
    """Keras' own identities (``rules/allowlist/keras-objects.json``)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.objects = frozenset((o["module"], o["name"]) for o in data["objects"])
        self.class_names = frozenset(o["name"] for o in data["objects"] if o.get("kind") == "class")
        self.function_names = frozenset(
            o["name"] for o in data["objects"] if o.get("kind") == "function"
        )
        self.builtin_functions = frozenset(data["builtin_functions"])
        self.version = str(data.get("keras_version", "?"))


@lru_cache(maxsize=2)
def load_allowlist(rules_root: str | None = None) -> KerasAllowlist:
    if rules_root is None:
        from ..engine import rules_dir

        rules_root = str(rules_dir())
    path = Path(rules_root) / "allowlist" / "keras-objects.json"
    return KerasAllowlist(json.loads(path.read_text(encoding="utf-8")))


def _in_packages(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


# -- the sniff and the stream parsers the registry names ------------------------------------


def sniff_keras_config(head: bytes) -> bool:
    """A serialized Keras object as a JSON document (``config.json`` scanned alone, or in a
    zip that is not laid out like a ``.keras``; ``model.to_json()``): a top-level object
    with a string ``class_name`` among the keys the head holds. Decoded as ``json.loads``
    decodes bytes (UTF-8 with or without BOM, UTF-16, UTF-32), since Keras reads it so."""
    try:
        text = head.decode(json.detect_encoding(head), "ignore").lstrip("\ufeff \t\r\n")
    except (LookupError, ValueError):
        return False
    if not text.startswith("{"):
        return False
    decoder = json.JSONDecoder()
    at = 1
    try:
        while True:
            while at < len(text) and text[at] in " \t\r\n,":
                at += 1
            if at >= len(text) or text[at] != '"':
                return False
            key, at = scanstring(text, at + 1)
            while at < len(text) and text[at] in " \t\r\n":
                at += 1
            if text[at : at + 1] != ":":
                return False
            at += 1
            while at < len(text) and text[at] in " \t\r\n":
                at += 1
            value, at = decoder.raw_decode(text, at)
            if key == "class_name":
                return isinstance(value, str)
    except (ValueError, IndexError, RecursionError):
        return False  # the head ends inside a value (or is not JSON)


def _read_document(
    src: Source, head: bytes, where: Location, ctx: Context, what: str
) -> Any | None:
    """The JSON document ``src`` holds, parsed under the byte, value and depth budgets, or
    None (an anomaly says why)."""
    limit = ctx.limits.max_config_json_bytes
    parts: list[bytes] = []  # ``src`` starts at the first byte (``head`` included)
    size = 0
    try:
        while size <= limit:
            chunk = src.read(min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
    except BudgetExceeded as exc:
        ctx.anomaly(exc.what, where, exc.detail)
        return None
    except (OSError, ValueError, EOFError) as exc:
        ctx.anomaly("keras-config-malformed", where, f"{what} cannot be read: {exc}")
        return None
    raw = b"".join(parts)
    if size > limit:
        ctx.anomaly(
            "budget-json-bytes",
            where,
            f"{what} has more than {limit} bytes, over the budget for it; not parsed",
        )
        return None
    return _parse(raw, where, ctx, what)


def _parse(raw: bytes, where: Location, ctx: Context, what: str) -> Any | None:
    try:
        return jsonbudget.loads(raw, ctx.limits)
    except jsonbudget.JsonBudgetExceeded as exc:
        ctx.anomaly(exc.what, where, f"{what}: {exc.message}")
    except (ValueError, RecursionError) as exc:
        ctx.anomaly("keras-config-malformed", where, f"{what} is not valid JSON: {exc}")
    return None


def scan_keras_config(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    """``config.json`` of a ``.keras`` archive (the profile routes it here)."""
    doc = _read_document(src, head, where, ctx, "config.json")
    if doc is None:
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("class_name"), str):
        ctx.anomaly(
            "keras-config-malformed",
            where,
            "config.json is not a serialized Keras object (no `class_name`)",
        )
    analyse_config(doc, where, ctx, "")


def scan_keras_metadata(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    """``metadata.json``: ``keras_version`` and ``date_saved``; nothing in it is loaded as
    code, but a document that is not a JSON object is malformed."""
    doc = _read_document(src, head, where, ctx, "metadata.json")
    if doc is None:
        return
    if not isinstance(doc, dict):
        ctx.anomaly("keras-config-malformed", where, "metadata.json is not a JSON object")
        return
    version = doc.get("keras_version")
    if version is not None:
        ctx.emit("keras.version", str(version)[:64], where.at(key="keras_version"))


def analyse_json_text(text: bytes, where: Location, ctx: Context, what: str, prefix: str) -> None:
    """A config held as a string elsewhere (HDF5 ``model_config``): parsed and walked."""
    if len(text) > ctx.limits.max_config_json_bytes:
        ctx.anomaly(
            "budget-json-bytes",
            where,
            f"{what} has {len(text)} bytes, more than the "
            f"{ctx.limits.max_config_json_bytes}-byte budget for it; not parsed",
        )
        return
    doc = _parse(text, where, ctx, what)
    if doc is None:
        return
    if not isinstance(doc, dict):
        ctx.anomaly("keras-config-malformed", where, f"{what} is not a JSON object")
        return
    analyse_config(doc, where, ctx, prefix)


# -- the walk ---------------------------------------------------------------------------------


def analyse_config(doc: Any, where: Location, ctx: Context, prefix: str) -> None:
    """Every Keras object anywhere in ``doc`` (a parsed config), checked; ``prefix`` starts
    the key paths (``model_config`` for an HDF5 attribute)."""
    walker = _Walker(where, ctx, load_allowlist())
    walker.walk(doc, prefix)


class _Walker:
    def __init__(self, where: Location, ctx: Context, allow: KerasAllowlist) -> None:
        self.where = where
        self.ctx = ctx
        self.allow = allow
        self.nodes = 0
        self.stopped = False

    def walk(self, node: Any, path: str) -> None:
        # iterative: the JSON budget already bounds the depth, this bounds the stack too
        stack: list[tuple[Any, str]] = [(node, path)]
        while stack:
            item, at = stack.pop()
            self.nodes += 1
            if self.nodes & 0xFFF == 0 and self.ctx.deadline.expired():
                self.ctx.anomaly(
                    "budget-time", self.where, "time budget ran out walking the Keras config"
                )
                return
            if isinstance(item, dict):
                if isinstance(item.get("class_name"), str):
                    self.object(item, at)
                children = [(v, f"{at}.{k}" if at else str(k)) for k, v in item.items()]
                stack.extend(reversed(children))
            elif isinstance(item, list):
                stack.extend(reversed([(v, f"{at}[{i}]") for i, v in enumerate(item)]))

    # one serialized object
    def object(self, obj: dict[str, Any], path: str) -> None:
        cn: str = obj["class_name"]
        inner = obj.get("config")
        module = obj.get("module")
        if cn == "__lambda__":
            # Lambda.from_config reads ``code``, deserialize_keras_object reads ``value``:
            # a decoy in one must not hide the other from the evidence
            fields = [k for k in ("code", "value") if isinstance(inner, dict) and k in inner]
            if len(fields) < 2:
                code = inner.get(fields[0]) if isinstance(inner, dict) and fields else None
                self.lambda_code(code, path, "`__lambda__` object")
                return
            assert isinstance(inner, dict)
            parts = [lambda_evidence(inner[k], f"`__lambda__` object (`{k}`)") for k in fields]
            names = list(dict.fromkeys(n for _, found in parts for n in found))
            self.ctx.emit(
                "keras.lambda",
                "bytecode",
                self.where.at(key=path or "(root)"),
                "\n\n".join(evidence for evidence, _ in parts),
                what="`__lambda__` object (`code` and `value`)",
                names=", ".join(names)[:300],
            )
            return
        if cn in SPECIAL:
            return
        if (
            module is None
            and "registered_name" not in obj
            and "config" not in obj
            and LEGACY_VALUE_ENCODINGS.get(cn, "\0") in obj
        ):
            return  # a value, not an object: its items are walked like any others
        if cn == "__typespec__":
            spec = obj.get("spec_name")
            if isinstance(spec, str) and isinstance(module, str):
                self.identity(module, spec, "class", path)
            return
        if isinstance(inner, dict) and inner.get("function_type") is not None:
            self.legacy_lambda_layer(inner, path)
        if cn == "function":
            if isinstance(inner, str):
                self.function(module if isinstance(module, str) else None, inner, obj, path)
            return
        registered = obj.get("registered_name")
        if (
            isinstance(registered, str)
            and registered not in ("", cn, "function")
            and (">" in registered or registered not in self.allow.class_names)
        ):
            self.custom(registered, path, "registered custom object")
            # when the registered name does not resolve, Keras falls back to ``module`` +
            # ``class_name`` (and before 3.9 imported any module): a dangerous identity
            # there is reported as such, a user package stays a custom object
            if isinstance(module, str):
                self.identity(module, cn, "class", path, dangerous_only=True)
            return
        if isinstance(module, str):
            self.identity(module, cn, "class", path)
            if cn == "TorchModuleWrapper" and isinstance(inner, dict):
                self.nested_pickle(inner.get("module"), f"{path}.config.module")
        elif cn not in self.allow.class_names:
            self.custom(cn, path, "class Keras does not define")

    def function(self, module: str | None, name: str, obj: dict[str, Any], path: str) -> None:
        if module in (None, "builtins"):
            if name in self.allow.builtin_functions:
                return
            if module is None:
                registered = obj.get("registered_name")
                self.custom(str(registered or name), path, "function Keras does not define")
                return
        assert module is not None
        self.identity(module, name, "function", path)

    def identity(
        self, module: str, name: str, kind: str, path: str, *, dangerous_only: bool = False
    ) -> None:
        if "." in name and _in_packages(module, KERAS_PACKAGES):
            # ``module: "keras", class_name: "layers.Dense"``: Keras looks up the public
            # API name ``keras.layers.Dense``; judged as that identity
            head, _, name = name.rpartition(".")
            module = f"{module}.{head}"
        if (module, name) in self.allow.objects:
            return
        if dangerous_only:
            if load_callables().lookup(f"{module}.{name}") is None:
                return
            self.ctx.emit(
                "keras.reference",
                f"{module}.{name}",
                self.where.at(key=path or "(root)"),
                module=module,
                name=name,
                objkind=kind,
            )
            return
        dotted = f"{module}.{name}"
        where = self.where.at(key=path or "(root)")
        if _in_packages(module, KERAS_PACKAGES):
            # a Keras 2 / tf.keras path to a class Keras 3 also defines is Keras' own
            # (the names of denied objects are in neither set)
            known = self.allow.class_names if kind == "class" else self.allow.function_names
            if name in known:
                return
            self.ctx.emit("keras.internal", dotted, where, module=module, name=name, objkind=kind)
        elif _in_packages(module, ECOSYSTEM):
            self.custom(dotted, path, "object of a Keras ecosystem package")
        else:
            self.ctx.emit("keras.reference", dotted, where, module=module, name=name, objkind=kind)

    def custom(self, value: str, path: str, why: str) -> None:
        self.ctx.emit("keras.custom", value[:300], self.where.at(key=path or "(root)"), why=why)

    def legacy_lambda_layer(self, inner: dict[str, Any], path: str) -> None:
        """Keras 2 ``Lambda`` (HDF5 and tf.keras): ``function`` / ``output_shape`` with a
        ``*_type`` of ``lambda`` (bytecode) or ``function`` (a name, in ``module``)."""
        for attr in ("function", "output_shape", "mask"):
            kind = inner.get(f"{attr}_type")
            value = inner.get(attr)
            at = f"{path}.config.{attr}"
            if kind == "lambda":
                code = value[0] if isinstance(value, list) and value else value
                self.lambda_code(code, at, f"Keras 2 Lambda `{attr}`")
            elif kind == "function" and isinstance(value, str):
                module = inner.get(f"{attr}_module", inner.get("module"))
                if isinstance(module, str) and module not in ("__main__", ""):
                    self.identity(module, value, "function", at)
                elif value not in self.allow.builtin_functions:
                    self.custom(value, at, "function Keras does not define")

    def lambda_code(self, code: Any, path: str, what: str) -> None:
        where = self.where.at(key=path or "(root)")
        evidence, names = lambda_evidence(code, what)
        self.ctx.emit(
            "keras.lambda", "bytecode", where, evidence, what=what, names=", ".join(names)[:300]
        )

    def nested_pickle(self, value: Any, path: str) -> None:
        """TorchModuleWrapper's ``config.module``: base64 of a ``torch.save`` file, which
        its ``from_config`` hands to ``torch.load``; scanned as what it is."""
        if not isinstance(value, str) or len(value) > MAX_PICKLE_BYTES * 4 // 3 + 4:
            return
        try:
            data = base64.b64decode(value.encode("ascii"), validate=False)
        except (UnicodeEncodeError, binascii.Error):
            return
        from .dispatch import dispatch_bytes

        dispatch_bytes(data, self.where.child(f"[{path}] (base64)"), self.ctx, "module.pt")


def _decode_code(code: Any) -> bytes:
    """What ``func_load`` decodes: base64, else the string's raw_unicode_escape bytes."""
    if isinstance(code, list) and code:
        code = code[0]
    if not isinstance(code, str):
        raise ValueError(f"the bytecode field is a {type(code).__name__}, not a string")
    if len(code) > MAX_LAMBDA_BYTES:
        raise ValueError(f"{len(code)} characters, more than {MAX_LAMBDA_BYTES}; not decoded")
    try:
        return base64.b64decode(code.encode("ascii"), validate=False)
    except (UnicodeEncodeError, binascii.Error):
        return code.encode("raw_unicode_escape")


def lambda_evidence(code: Any, what: str) -> tuple[str, list[str]]:
    """Evidence for a serialized lambda: its referenced names and a disassembly."""
    try:
        raw = _decode_code(code)
    except ValueError as exc:
        return f"{what}: bytecode not decoded: {exc}", []
    head = f"{what}: {len(raw)} bytes of marshal data (base64 in the config)"
    try:
        parsed = pymarshal.read_code(raw)
    except pymarshal.MarshalError as exc:
        return f"{head}; not readable as a code object: {exc}", []
    names = pymarshal.referenced_names(parsed)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    lines = [
        head,
        f"code object layout: CPython {parsed.layout} (read without marshal.loads); "
        f"disassembled with Python {running}'s opcode tables, so opcode names are exact "
        "only if the model was saved by the same Python version",
        "names and strings: " + (", ".join(names) if names else "(none)"),
    ]
    try:
        dis_lines = pymarshal.disassemble(parsed)
    except (IndexError, KeyError, ValueError, TypeError) as exc:  # hostile bytes: keep the finding
        dis_lines = [f"(disassembly stopped: {type(exc).__name__})"]
    if len(dis_lines) > MAX_EVIDENCE_LINES:
        dis_lines = [*dis_lines[:MAX_EVIDENCE_LINES], f"... {len(dis_lines)} lines in all"]
    return "\n".join(lines + dis_lines), names
