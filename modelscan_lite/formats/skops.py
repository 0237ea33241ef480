"""skops archives (``.skops``): a zip of ``schema.json`` and the ``*.npy`` / sparse members it
names.

What ``skops.io.load`` does, normatively (skops 0.16 ``io/_audit.py``, ``io/_general.py``,
``io/_persist.py``): it reads ``schema.json`` (``protocol``, ``_skops_version`` and the root
node) and builds a tree of nodes without constructing anything. A node is a JSON object with
``__loader__`` (the node class: ``ObjectNode``, ``FunctionNode``, ``MethodNode``,
``ReduceNode``, ``OperatorFuncNode``...), ``__module__`` and ``__class__`` (the type it
constructs) and loader-specific content; ``__id__`` memoises a node (a later node with a
known id is replaced by the first one). Before constructing, ``audit_tree`` collects every
type outside the node class's *default trusted list* and refuses the file unless the caller
passes them in ``trusted=[...]`` (``skops.io.get_untrusted_types`` lists them so that users
can, and often do, pass them blindly). Constructing then imports each type:
``ObjectNode`` does ``cls.__new__(cls)`` and sets the state, ``FunctionNode`` returns the
function ``module.name`` itself, ``MethodNode`` returns ``getattr(obj, name)``,
``ReduceNode``-style nodes and ``OperatorFuncNode`` call the constructor / ``operator`` function
with file-chosen arguments, ``PartialNode`` builds ``functools.partial``.

The trusted lists are skops' own, per loader, read from the installed skops by
``scripts/gen_skops_trusted.py`` (``rules/allowlist/skops-trusted.json``). Every node is
reported as a ``skops.type`` fact when its type is outside its loader's list (value: the
dotted type; ``module.Class.method`` for a ``MethodNode``); rules judge the identity with
the shared dangerous-callables list and the pickle allowlist. Structural problems (no
schema, not JSON, nodes without their keys, an unknown loader, a ``MethodNode`` whose object
is another type) are ``skops-malformed`` anomalies.
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import jsonbudget
from ..model import Location
from .base import Context
from .streams import BudgetExceeded, Source

ALLOWLIST_FILE = "allowlist/skops-trusted.json"
SCHEMA_DEPTH = 512  # a node is ~2 JSON levels, a pipeline of pipelines ~7 per level
MAX_TYPE = 300
# node keys that hold file names and loader data, not nodes
_NOT_NODES = frozenset({"__class__", "__module__", "__loader__", "__id__", "is_json"})


@dataclasses.dataclass(frozen=True)
class Trusted:
    loaders: dict[str, frozenset[str]]
    calling: frozenset[str]
    protocol: int


@lru_cache(maxsize=2)
def trusted_types(rules_root: str | None = None) -> Trusted:
    if rules_root is None:
        from ..engine import rules_dir

        rules_root = str(rules_dir())
    try:
        data = json.loads((Path(rules_root) / ALLOWLIST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    loaders = data.get("loaders") if isinstance(data, dict) else None
    return Trusted(
        {str(k): frozenset(map(str, v)) for k, v in (loaders or {}).items()},
        frozenset(map(str, data.get("calling-loaders", ())))
        if isinstance(data, dict)
        else frozenset(),
        int(data.get("protocol", 2)) if isinstance(data, dict) else 2,
    )


def _short(text: str) -> str:
    return text if len(text) <= MAX_TYPE else text[: MAX_TYPE - 3] + "..."


def walk_schema(schema: Any, where: Location, ctx: Context) -> int:
    """Emit the facts of a parsed ``schema.json``; returns the number of nodes."""
    table = trusted_types()
    if not isinstance(schema, dict) or "__loader__" not in schema:
        ctx.anomaly("skops-malformed", where, "schema.json holds no root node")
        return 0
    protocol = schema.get("protocol")
    if not isinstance(protocol, int):
        ctx.anomaly("skops-malformed", where, "schema.json has no integer `protocol`")
    nodes = 0
    seen_ids: set[object] = set()
    reported: set[tuple[str, str]] = set()
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack:
        if ctx.deadline.expired():
            ctx.anomaly("budget-time", where, "time budget ran out inside schema.json")
            break
        value, path = stack.pop()
        if isinstance(value, list):
            for i in range(len(value) - 1, -1, -1):
                stack.append((value[i], f"{path}[{i}]"))
            continue
        if not isinstance(value, dict):
            continue
        if "__loader__" in value:
            nodes += 1
            _node(value, path or "<root>", where, ctx, table, seen_ids, reported)
            if value.get("__loader__") == "JsonNode":
                continue  # its content is a JSON text, not nodes
        for key in reversed(list(value)):
            if key not in _NOT_NODES:
                stack.append((value[key], f"{path}.{key}" if path else key))
    return nodes


def _node(
    node: dict[str, Any],
    path: str,
    where: Location,
    ctx: Context,
    table: Trusted,
    seen_ids: set[object],
    reported: set[tuple[str, str]],
) -> None:
    loader, module, cls = node.get("__loader__"), node.get("__module__"), node.get("__class__")
    here = where.at(key=path)
    if not all(isinstance(v, str) for v in (loader, module, cls)):
        ctx.anomaly(
            "skops-malformed", here, "a node without string `__loader__`, `__module__`, `__class__`"
        )
        return
    assert isinstance(loader, str) and isinstance(module, str) and isinstance(cls, str)
    ident = node.get("__id__")
    if ident is not None and not isinstance(ident, dict | list):
        seen_ids.add(ident)
    if loader == "CachedNode":
        if ident not in seen_ids:
            ctx.anomaly("skops-malformed", here, f"a cached node names the unknown id {ident!r}")
        return
    trusted = table.loaders.get(loader)
    if trusted is None:
        ctx.anomaly(
            "skops-malformed",
            here,
            f"unknown loader `{_short(loader)}` (skops {table.protocol} fails to load it)",
        )
        return
    dotted = f"{module}.{cls}"
    if loader == "MethodNode":
        content = node.get("content")
        func = content.get("func") if isinstance(content, dict) else None
        obj = content.get("obj") if isinstance(content, dict) else None
        if not isinstance(func, str) or not isinstance(obj, dict):
            ctx.anomaly("skops-malformed", here, "a MethodNode without `func` and `obj`")
            return
        if (obj.get("__module__"), obj.get("__class__")) != (module, cls):
            ctx.anomaly(
                "skops-malformed",
                here,
                f"a MethodNode of `{_short(dotted)}` bound to a "
                f"`{_short(str(obj.get('__module__')))}.{_short(str(obj.get('__class__')))}`",
            )
        dotted = f"{dotted}.{func}"
        module, qualname = f"{module}", f"{cls}.{func}"
    elif loader == "OperatorFuncNode":
        if module != "operator":
            ctx.anomaly("skops-malformed", here, f"an OperatorFuncNode of module `{module}`")
        qualname = cls
    else:
        qualname = cls
    if dotted in trusted:
        return
    if (dotted, loader) in reported:
        return
    reported.add((dotted, loader))
    ctx.emit(
        "skops.type",
        _short(dotted),
        here,
        None,
        loader=loader,
        module=_short(module),
        qualname=_short(qualname),
        inits=int(loader in table.calling),
    )


def scan_skops_schema(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    """``schema.json`` of a skops archive (registry parser, routed by the ``skops`` profile)."""
    limit = ctx.limits.max_json_bytes
    try:
        raw = bytearray()
        while len(raw) <= limit:
            chunk = src.read(min(1 << 20, limit + 1 - len(raw)))
            if not chunk:
                break
            raw += chunk
    except BudgetExceeded as exc:
        ctx.anomaly(exc.what, where, exc.detail)
        return
    except (OSError, ValueError, EOFError) as exc:
        ctx.anomaly("stream-corrupt", where, f"cannot read schema.json: {exc}")
        return
    if len(raw) > limit:
        ctx.anomaly("budget-json-bytes", where, f"schema.json larger than {limit} bytes")
        return
    limits = dataclasses.replace(
        ctx.limits, max_json_depth=max(ctx.limits.max_json_depth, SCHEMA_DEPTH)
    )
    try:
        schema = jsonbudget.loads(bytes(raw), limits)
    except jsonbudget.JsonBudgetExceeded as exc:
        ctx.anomaly(exc.what, where, exc.message)
        return
    except (ValueError, RecursionError) as exc:
        ctx.anomaly("skops-malformed", where, f"schema.json is not JSON: {exc}"[:200])
        return
    walk_schema(schema, where, ctx)
