"""Instantiating configs: Hydra / OmegaConf YAML, NeMo ``model_config.yaml``, alone or inside a
``.nemo`` archive, and the YAML configs of a Hugging Face repo.

What loading does, normatively (hydra-core 1.3 ``_internal/instantiate/_instantiate2.py``,
``_internal/utils.py::_locate``; NeMo ``nemo/core/classes/common.py::from_config_dict``):

- A mapping with a ``_target_`` key is *instantiated*: ``_locate(target)`` imports the first
  dotted component as a module, then walks the rest attribute by attribute (importing
  submodules on the way), and calls what it reaches with ``*_args_`` and every other key as a
  keyword argument. ``_partial_: true`` returns ``functools.partial(target, ...)`` instead (the
  call happens when the program calls it); ``_recursive_: false`` hands nested configs to the
  target uninstantiated (NeMo modules instantiate them themselves), so every nested target is
  reachable either way. ``_convert_`` only changes container types. (``_call_`` is not a
  Hydra key; it is an ordinary keyword argument.)
- NeMo's ``from_config_dict`` also instantiates ``target`` (and Hydra 0.x ``cls``) with
  ``params``, and a ``model_config.yaml`` whose top-level ``target`` names the model class:
  ``import_class_by_path(target)(cfg=config, trainer=...)``. jsonargparse / LightningCLI
  configs do the same with ``class_path`` + ``init_args``.
- Before that, NeMo resolves every OmegaConf interpolation (``to_container(resolve=True)``):
  ``${a.b}`` copies a value, ``${oc.env:NAME}`` reads an environment variable, ``${name:...}``
  calls whatever resolver the program registered under ``name``, ``${oc.decode:...}`` parses
  a string as YAML (a config inside a string). A ``_target_`` built by interpolation is
  computed at load time.
- YAML itself: OmegaConf loads with a SafeLoader subclass (merge keys ``<<`` apply, unknown
  tags fail, duplicate keys fail); a ``!!python/...`` tag runs code only under PyYAML's
  unsafe loaders, which some training scripts still use.

The YAML is read under a byte budget and composed (never constructed) with PyYAML's safe
composer: libyaml's recursive composer overflows the C stack on deeply nested input, so the
C composer is used only when the text cannot nest deeper than ``C_SAFE_DEPTH``
(:func:`depth_bound`: indentation, block indicators on one line, every bracket), and the
pure-Python composer (whose recursion is bounded by
Python's) otherwise. An upper bound on the number of nodes is checked before composing.
The node graph is walked once, iteratively; an alias is walked once (a "billion laughs"
graph costs its size, not its expansion).

Facts: ``config.target.known`` / ``config.target.unknown`` (value: the dotted target; known
means on ``rules/allowlist/config-targets.json``, the targets real NeMo, PyTorch and
Lightning configs use), ``config.target.computed`` (a target built by interpolation),
``config.interpolation`` (value: the resolver name), ``config.yaml-tag`` (a non-standard
tag), and anomalies ``config-malformed``, ``config-duplicate-key``, ``budget-config-*``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model import Location
from .base import Context
from .streams import BudgetExceeded, Source

if TYPE_CHECKING:
    from yaml.nodes import Node

MAX_CONFIG_BYTES = 4 << 20  # real NeMo/Hydra configs are 5-100 KB
MAX_NODES = 250_000  # composed nodes cost ~400 bytes each (two marks per node)
C_SAFE_DEPTH = 5_000  # libyaml composed 20 k levels fine and crashed at 40 k
MAX_EVIDENCE_ARGS = 6
MAX_SHOWN = 200
ALLOWLIST_FILE = "allowlist/config-targets.json"

# instantiation keys, by convention
TARGET_KEYS = ("_target_",)
NEMO_TARGET_KEYS = ("target", "cls")  # NeMo from_config_dict, Hydra 0.x
CLASS_PATH_KEY = "class_path"  # jsonargparse / LightningCLI
RESERVED = frozenset({"_target_", "_args_", "_partial_", "_recursive_", "_convert_"})
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# ``${`` not preceded by a backslash opens an interpolation; a resolver call is ``${name:``
_INTERP = re.compile(r"(?<!\\)\$\{")
_RESOLVER = re.compile(r"(?<!\\)\$\{\s*([A-Za-z_][\w\-]*(?:\.[A-Za-z_][\w\-]*)*)\s*:")
_REF = re.compile(r"(?<!\\)\$\{\s*(\.*[A-Za-z_][\w\-]*(?:\.[A-Za-z_][\w\-]*|\[\d+\])*)\s*\}")
_ENV_ARG = re.compile(r"\$\{\s*(?:oc\.env|env)\s*:\s*['\"]?([^,}'\"]*)")
STANDARD_TAG = "tag:yaml.org,2002:"
STANDARD_TAGS = frozenset(
    STANDARD_TAG + t
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "binary", "timestamp", "merge")
)
MERGE_TAG = STANDARD_TAG + "merge"


class ConfigError(Exception):
    """The YAML could not be read: ``kind`` is the anomaly value."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


# -- reading YAML under budgets ---------------------------------------------------------------


def node_bound(data: bytes) -> int:
    """An upper bound on the nodes (and on the nesting depth) of a YAML text: every node but
    a document's first follows a structure character (``:`` ``-`` ``,`` ``?`` a bracket or a
    line break) or is one (a collection opens with a bracket, a ``-``, a ``?`` or a key's
    ``:``); characters inside scalars only add to it."""
    return (
        data.count(b":")
        + data.count(b"-")
        + data.count(b",")
        + data.count(b"?")
        + data.count(b"[")
        + data.count(b"{")
        + data.count(b"\n")
        + 1
    )


def depth_bound(data: bytes) -> int:
    """An upper bound on how deep a YAML text can nest: block collections nest by indentation
    or by indicators on one line (``- - x``, ``? a``, ``a: b: c`` in compact forms), flow
    collections by brackets, which are all counted (those inside scalars only add)."""
    indent = 0
    inline = 0
    for line in data.split(b"\n"):
        body = line.lstrip(b" \t")
        indent = max(indent, len(line) - len(body))
        marks = (
            body.count(b"- ")
            + body.count(b"-\t")
            + body.count(b"? ")
            + body.count(b"?\t")
            + body.count(b": ")
            + body.count(b":\t")
            + body.endswith((b"-", b":", b"?"))
        )
        inline = max(inline, marks)
    # a block sequence may sit at its parent key's indentation: two levels per column
    return 2 * indent + inline + data.count(b"[") + data.count(b"{") + 2


def compose_yaml(data: bytes) -> Node | None:
    """The node graph of one YAML document (None for an empty one), composed without
    constructing anything. ConfigError when it is too large, too deep or not YAML."""
    import yaml

    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError("budget-config-bytes", f"config larger than {MAX_CONFIG_BYTES} bytes")
    bound = node_bound(data)
    if bound > MAX_NODES * 2:
        raise ConfigError(
            "budget-config-nodes", f"config may hold more than {MAX_NODES} YAML nodes"
        )
    text = data.decode("utf-8", "replace")
    fast = (bound <= C_SAFE_DEPTH or depth_bound(data) <= C_SAFE_DEPTH) and hasattr(
        yaml, "CSafeLoader"
    )
    loader: Any = yaml.CSafeLoader if fast else yaml.SafeLoader
    try:
        return yaml.compose(text, Loader=loader)
    except RecursionError:
        raise ConfigError("budget-config-depth", "config nested too deeply to read") from None
    except yaml.YAMLError as exc:
        raise ConfigError("config-malformed", f"not a YAML document: {_oneline(exc)}") from None
    except (ValueError, TypeError) as exc:  # NUL bytes, encodings
        raise ConfigError("config-malformed", f"not a YAML document: {_oneline(exc)}") from None


def _oneline(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


def read_bounded(src: Source, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """At most ``limit + 1`` bytes of ``src`` (one more says it was larger)."""
    out = bytearray()
    while len(out) <= limit:
        chunk = src.read(min(1 << 20, limit + 1 - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


# -- the known targets -----------------------------------------------------------------------


@lru_cache(maxsize=2)
def known_targets(rules_root: str | None = None) -> frozenset[str]:
    """Exact dotted targets real configs instantiate (``rules/allowlist/config-targets.json``,
    generated by ``scripts/gen_config_targets.py``). Exact strings: ``_locate`` resolves a
    string to one object, so the string is the identity; no prefixes, no patterns."""
    if rules_root is None:
        from ..engine import rules_dir

        rules_root = str(rules_dir())
    path = Path(rules_root) / ALLOWLIST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return frozenset()
    targets = data.get("targets") if isinstance(data, dict) else None
    if not isinstance(targets, dict):
        return frozenset()
    return frozenset(t for t in targets if isinstance(t, str) and _DOTTED.match(t))


# -- walking the node graph -------------------------------------------------------------------


@dataclass
class _Walk:
    where: Location
    ctx: Context
    nemo: bool
    root: Any
    known: frozenset[str]
    seen: set[int] = field(default_factory=set)
    targets: int = 0
    decoded: int = 0


def _scalar(node: Any) -> str | None:
    from yaml.nodes import ScalarNode

    return node.value if isinstance(node, ScalarNode) else None


def _is_str(node: Any) -> bool:
    from yaml.nodes import ScalarNode

    return isinstance(node, ScalarNode) and node.tag == STANDARD_TAG + "str"


def _entries(node: Any, w: _Walk, path: str) -> list[tuple[str, Any, Any]]:
    """``(key, key node, value node)`` of a mapping as a SafeLoader builds it: merge keys
    (``<<``) bring in the keys of the merged mappings that the mapping does not set itself.
    Duplicate keys are reported (OmegaConf refuses them, PyYAML keeps the last)."""
    from yaml.nodes import MappingNode, SequenceNode

    own: list[tuple[str, Any, Any]] = []
    merged: list[tuple[str, Any, Any]] = []
    for knode, vnode in node.value:
        if knode.tag == MERGE_TAG:
            sources = vnode.value if isinstance(vnode, SequenceNode) else [vnode]
            for src in sources:
                if isinstance(src, MappingNode):
                    merged.extend(_entries(src, w, path))
            continue
        key = _scalar(knode)
        own.append((key if key is not None else f"<{type(knode).__name__}>", knode, vnode))
    counts: dict[str, int] = {}
    for key, knode, _ in own:
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 2:
            w.ctx.anomaly(
                "config-duplicate-key",
                w.where.at(key=_join(path, key)),
                f"key `{key}` appears twice in one mapping (line {knode.start_mark.line + 1}): "
                "PyYAML keeps the last value, OmegaConf refuses the file",
            )
    mine = {k for k, _, _ in own}
    return own + [e for e in merged if e[0] not in mine]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def walk_config(
    root: Any, where: Location, ctx: Context, *, nemo: bool = False, prefix: str = ""
) -> int:
    """Emit the facts of a composed config; returns the number of instantiation targets."""
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    if root is None:
        return 0
    w = _Walk(where, ctx, nemo, root, known_targets())
    stack: list[tuple[Any, str, int]] = [(root, prefix, 0)]
    while stack:
        if ctx.deadline.expired():
            ctx.anomaly("budget-time", where, "time budget ran out inside the config")
            break
        node, path, depth = stack.pop()
        if node.tag not in STANDARD_TAGS:
            ctx.emit(
                "config.yaml-tag",
                node.tag,
                where.at(key=path or "<root>"),
                line=node.start_mark.line + 1,
            )
        if isinstance(node, ScalarNode):
            if _INTERP.search(node.value):
                _interpolations(node.value, path, w)
            continue
        if id(node) in w.seen:
            continue  # an alias: its content was walked where it was defined
        w.seen.add(id(node))
        if isinstance(node, SequenceNode):
            for i in range(len(node.value) - 1, -1, -1):
                stack.append((node.value[i], f"{path}[{i}]", depth + 1))
        elif isinstance(node, MappingNode):
            entries = _entries(node, w, path)
            _instantiation(entries, path, depth, w)
            for key, knode, vnode in reversed(entries):
                if not isinstance(knode, ScalarNode):
                    stack.append((knode, _join(path, "<key>"), depth + 1))
                elif _INTERP.search(knode.value):
                    _interpolations(knode.value, path, w)
                stack.append((vnode, _join(path, key), depth + 1))
    return w.targets


def _instantiation(entries: list[tuple[str, Any, Any]], path: str, depth: int, w: _Walk) -> None:
    keys = {k: v for k, _, v in entries}
    style: str | None = None
    if "_target_" in keys:
        style = "_target_"
    elif w.nemo and (
        ("target" in keys and (depth == 0 or "params" in keys))
        or ("cls" in keys and "params" in keys)
    ):
        style = "target" if "target" in keys else "cls"
    elif CLASS_PATH_KEY in keys and _is_str(keys[CLASS_PATH_KEY]):
        style = CLASS_PATH_KEY
    if style is None:
        return
    # a duplicated key: every value is judged (readers disagree on which one wins)
    for tnode in [v for k, _k, v in entries if k == style]:
        _one_target(tnode, style, keys, entries, path, w)


def _one_target(
    tnode: Any,
    style: str,
    keys: dict[str, Any],
    entries: list[tuple[str, Any, Any]],
    path: str,
    w: _Walk,
) -> None:
    where = w.where.at(key=_join(path, style))
    line = tnode.start_mark.line + 1
    if not _is_str(tnode):
        if style == "_target_":
            w.ctx.anomaly(
                "config-malformed",
                where,
                f"`_target_` on line {line} is not a string: instantiation fails",
            )
        return
    raw = tnode.value.strip()
    target = raw
    if _INTERP.search(raw):
        resolved = _resolve_refs(raw, path, w)
        if resolved is None or _INTERP.search(resolved):
            w.targets += 1
            w.ctx.emit(
                "config.target.computed",
                raw[:MAX_SHOWN],
                where,
                _evidence(raw, entries, path, style, line),
                style=style,
                line=line,
            )
            return
        target = resolved
    if not _DOTTED.match(target):
        w.ctx.anomaly(
            "config-malformed",
            where,
            f"`{style}` on line {line} is not a dotted Python name: instantiation fails",
        )
        return
    w.targets += 1
    kind = "config.target.known" if target in w.known else "config.target.unknown"
    details: dict[str, object] = {"style": style, "line": line}
    if raw != target:
        details["spelled"] = raw[:MAX_SHOWN]
    for flag in ("_partial_", "_recursive_"):
        value = _scalar(keys.get(flag))
        if value is not None:
            details[flag.strip("_")] = value
    call = _render_call(target, entries, style)
    w.ctx.emit(
        kind,
        target,
        where,
        _evidence(target, entries, path, style, line),
        call=call,
        **details,
    )


def _resolve_refs(text: str, path: str, w: _Walk, depth: int = 0) -> str | None:
    """``text`` with its plain node references (``${a.b}``, ``${.x}``, ``${..y}``) replaced
    by the scalars they name, as OmegaConf would; None when a reference does not name a
    scalar of this document. Resolver calls are left in place."""
    if depth > 8:
        return None
    failed = False

    def one(m: re.Match[str]) -> str:
        nonlocal failed
        value = _lookup(m.group(1), path, w)
        if value is None:
            failed = True
            return m.group(0)
        return value

    out = _REF.sub(one, text)
    if failed:
        return None
    if out != text and _REF.search(out):
        return _resolve_refs(out, path, w, depth + 1)
    return out


def _lookup(ref: str, path: str, w: _Walk) -> str | None:
    from yaml.nodes import MappingNode, SequenceNode

    parts = _split_path(path)
    if ref.startswith("."):
        dots = len(ref) - len(ref.lstrip("."))
        # ``${.x}`` is a sibling of the key holding the interpolation (its parent mapping)
        base = parts[: max(0, len(parts) - dots)] if dots > 1 else parts
        names = base + _split_path(ref[dots:])
    else:
        names = _split_path(ref)
    node = w.root
    for name in names:
        if isinstance(node, MappingNode):
            found = None
            for key, _k, value in _entries_quiet(node):
                if key == name:
                    found = value
            node = found
        elif isinstance(node, SequenceNode) and name.isdigit() and int(name) < len(node.value):
            node = node.value[int(name)]
        else:
            return None
        if node is None:
            return None
    return _scalar(node)


def _entries_quiet(node: Any) -> Iterator[tuple[str, Any, Any]]:
    for knode, vnode in node.value:
        key = _scalar(knode)
        if key is not None and knode.tag != MERGE_TAG:
            yield key, knode, vnode


def _split_path(path: str) -> list[str]:
    return [p for p in re.split(r"\.|\[|\]", path) if p]


def _interpolations(text: str, path: str, w: _Walk) -> None:
    where = w.where.at(key=path or "<root>")
    env = [m.group(1).strip() for m in _ENV_ARG.finditer(text)]
    for m in _RESOLVER.finditer(text):
        name = m.group(1)
        details: dict[str, object] = {"text": text[:MAX_SHOWN]}
        if name in ("oc.env", "env") and env:
            details["var"] = env.pop(0)[:80]
        w.ctx.emit("config.interpolation", name, where, None, **details)
        if name == "oc.decode":
            _decoded(text[m.end() :], path, w)
        elif name == "oc.create":
            _created(text[m.end() :], path, w)


def _decoded(rest: str, path: str, w: _Walk) -> None:
    """``${oc.decode:'...'}`` parses its string as YAML at load time: a literal string is
    walked as the config it becomes (a ``_target_`` hidden inside a string is still seen),
    and so is the string a plain reference (``${oc.decode:${other.key}}``) names."""
    rest = rest.lstrip()
    ref = _REF.match(rest)
    if ref is not None:
        value = _lookup(ref.group(1), path, w)
        if value is not None and w.decoded < 8:  # a decoded string may decode another
            w.decoded += 1
            _walk_text(value, path, w)
        return
    if not rest or rest[0] not in "'\"":
        return
    quote = rest[0]
    end = rest.find(quote, 1)
    while end > 0 and rest[end - 1] == "\\":
        end = rest.find(quote, end + 1)
    if end < 0:
        return
    _walk_text(rest[1:end].replace("\\" + quote, quote), path, w)


def _created(rest: str, path: str, w: _Walk) -> None:
    """``${oc.create:{...}}`` turns a dict (or list) literal of the interpolation grammar
    into a config node, which is instantiated like any other: the literal (a YAML flow
    collection in all but escapes) is walked as a config."""
    rest = rest.lstrip()
    if rest[:1] not in ("{", "["):
        _decoded(rest, path, w)  # a reference to a node or a string
        return
    depth, quote = 0, ""
    for i, ch in enumerate(rest):
        if quote:
            quote = "" if ch == quote and rest[i - 1] != "\\" else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                _walk_text(rest[: i + 1], path, w, "oc.create")
                return


def _walk_text(text: str, path: str, w: _Walk, how: str = "oc.decode") -> None:
    try:
        node = compose_yaml(text.encode("utf-8", "replace"))
    except ConfigError:
        return
    if node is not None:
        w.targets += walk_config(node, w.where, w.ctx, prefix=f"{path}<{how}>")


# -- evidence ---------------------------------------------------------------------------------


def _show(node: Any, limit: int = 80) -> str:
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    if isinstance(node, ScalarNode):
        text = repr(node.value) if node.tag == STANDARD_TAG + "str" else node.value
    elif isinstance(node, MappingNode):
        inner = {_scalar(k): v for k, v in node.value if _scalar(k) is not None}
        if "_target_" in inner and _scalar(inner["_target_"]) is not None:
            text = f"instantiate({_scalar(inner['_target_'])}, ...)"
        else:
            text = "{...}"
    elif isinstance(node, SequenceNode):
        text = (
            "["
            + ", ".join(_show(v, 40) for v in node.value[:MAX_EVIDENCE_ARGS])
            + (", ...]" if len(node.value) > MAX_EVIDENCE_ARGS else "]")
        )
    else:
        text = "?"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _call_args(entries: list[tuple[str, Any, Any]], style: str) -> list[str]:
    from yaml.nodes import SequenceNode

    args: list[str] = []
    for key, _k, value in entries:
        if key == "_args_" and isinstance(value, SequenceNode):
            args.extend(_show(v) for v in value.value[:MAX_EVIDENCE_ARGS])
            if len(value.value) > MAX_EVIDENCE_ARGS:
                args.append("...")
    if style in ("target", "cls"):
        params = next((v for k, _k, v in entries if k == "params"), None)
        args.append(f"**{_show(params, 40)}" if params is not None else "cfg=<this config>")
        return args
    if style == CLASS_PATH_KEY:
        init = next((v for k, _k, v in entries if k == "init_args"), None)
        return [f"**{_show(init, 40)}"] if init is not None else []
    kwargs = [(k, v) for k, _k, v in entries if k not in RESERVED]
    for key, value in kwargs[:MAX_EVIDENCE_ARGS]:
        args.append(f"{key}={_show(value)}")
    if len(kwargs) > MAX_EVIDENCE_ARGS:
        args.append("...")
    return args


def _render_call(target: str, entries: list[tuple[str, Any, Any]], style: str) -> str:
    args = _call_args(entries, style)
    partial = any(k == "_partial_" and str(_scalar(v)).lower() == "true" for k, _k, v in entries)
    call = (
        f"functools.partial({', '.join([target, *args])})"
        if partial
        else f"{target}({', '.join(args)})"
    )
    return call if len(call) <= 400 else call[:397] + "..."


def _evidence(
    target: str,
    entries: list[tuple[str, Any, Any]],
    path: str,
    style: str,
    line: int,
) -> str:
    how = {
        "_target_": "hydra.utils.instantiate",
        "target": "NeMo from_config_dict / instantiate_from_config",
        "cls": "Hydra 0.x instantiate",
        CLASS_PATH_KEY: "jsonargparse / LightningCLI",
    }[style]
    lines = [
        f"# {path or '<root>'} (line {line}): {how} runs",
        _render_call(target, entries, style),
    ]
    keys = {k: str(_scalar(v)).lower() for k, _k, v in entries}
    if keys.get("_partial_") == "true":
        lines.append("# _partial_: true - the program calls it later, with these arguments")
    if keys.get("_recursive_") == "false":
        lines.append("# _recursive_: false - nested configs are passed on uninstantiated")
    return "\n".join(lines)


# -- entry points -----------------------------------------------------------------------------


def scan_config_bytes(data: bytes, where: Location, ctx: Context, *, nemo: bool = False) -> int:
    """Check one YAML config held in memory; returns the number of instantiation targets."""
    try:
        node = compose_yaml(data)
    except ConfigError as exc:
        ctx.anomaly(exc.kind, where, exc.message)
        return 0
    except ImportError:
        ctx.emit(
            "dependency.missing", "PyYAML", where, detected="hydra-config", fix="pip install PyYAML"
        )
        return 0
    return walk_config(node, where, ctx, nemo=nemo)


def _scan(src: Source, where: Location, ctx: Context, nemo: bool) -> None:
    try:
        data = read_bounded(src)
    except BudgetExceeded as exc:
        ctx.anomaly(exc.what, where, exc.detail)
        return
    except (OSError, ValueError, EOFError) as exc:
        ctx.anomaly("stream-corrupt", where, f"cannot read the config: {exc}")
        return
    scan_config_bytes(data, where, ctx, nemo=nemo)


def scan_hydra_config(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    """A Hydra / OmegaConf YAML config (registry parser, ``access="stream"``)."""
    _scan(src, where, ctx, nemo=False)


def scan_nemo_config(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    """A NeMo ``model_config.yaml`` (registry parser): ``target`` instantiates too."""
    _scan(src, where, ctx, nemo=True)


# what can spell a key or a tag the bytes do not show: escapes in double-quoted scalars
# (``"\x5ftarget_"``), tags (``!!python/...``, ``%TAG`` handles)
_HIDDEN = (b"\\x", b"\\u", b"\\U", b"!")


def has_instantiation(data: bytes, *, nemo: bool = False) -> bool:
    """A cheap test for the repo analysis: can a YAML text name an instantiation key (or a
    tag)? Escapes and tags can hide the key's bytes: then it is composed and walked."""
    if b"_target_" in data or b"class_path" in data or (nemo and b"target" in data):
        return True
    return any(h in data for h in _HIDDEN)


def scan_yaml_file(path: str, ctx: Context) -> int | None:
    """A YAML file of a repo folder with an instantiation key: checked as a Hydra config.
    None when it has none (or cannot be read)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError:
        return None
    # NeMo reads an extracted archive's model_config.yaml too: its ``target`` instantiates
    nemo = Path(path).name == "model_config.yaml"
    if not has_instantiation(data, nemo=nemo):
        return None
    before = len(ctx.facts)
    found = scan_config_bytes(data, Location(path), ctx, nemo=nemo)
    if found or len(ctx.facts) > before or b"_target_" in data or b"class_path" in data:
        return found
    return None  # composed for an escape or a tag, and nothing was there
