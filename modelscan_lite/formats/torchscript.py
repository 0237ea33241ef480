"""TorchScript serialized code: the ``code/**.py`` members of a TorchScript zip.

Normatively (``torch/csrc/jit/serialization/import_source.cpp``): ``torch.jit.load`` compiles
each ``<root>/code/<qualified/name>.py`` member with TorchScript's own frontend, a
Python-syntax subset, against a fixed environment: ``torch`` is the builtin module ``aten``
(``torch.foo(...)`` and ``torch.autograd.foo(...)`` call ``aten::foo``), ``ops.<ns>.<op>``
calls ``<ns>::<op>`` from any registered library, ``CONSTANTS.c<N>`` is entry N of the
tensor table in ``constants.pkl``, ``__torch__.<path>`` names classes compiled from the
archive's own code and ``__torch__.torch.classes.<ns>.<Class>`` TorchBind classes that a
library registers; ``fork``, ``awaitable``, ``annotate``, ``unchecked_cast``,
``uninitialized``, ``inf`` and ``nan`` are special forms. A method call ``value.foo(...)``
on a tensor (or an ``Any``-typed value) calls ``aten::foo`` with the value first.

TorchScript has no ``import`` of Python modules, no ``eval`` and no file objects: what code
can do beyond arithmetic is what its operators do. So the analysis lists the operators the
code names and decides each by identity against ``rules/allowlist/torch-ops.json``
(``scripts/gen_torch_ops.py``, from the installed torch):

* ops that read or write host files (``aten::from_file``, ``aten::save`` ...) and ops that
  reach other hosts (``prim::rpc_*``): ``torch.op-file`` / ``torch.op-network``;
* ``load_library`` named anywhere (``ops.load_library``, ``torch.ops.load_library``):
  ``torch.library-load``;
* an op whose namespace is not PyTorch's own: a library the host must load
  (``torch.custom-op``); a TorchBind class outside torch's class namespaces
  (``torch.custom-class``); an op in a PyTorch namespace that this torch does not register
  (``torch.unregistered-op``).

The text is parsed with :mod:`ast` (never compiled or run) under a byte budget; it is also
scanned lexically for the file, network and library names, so that a construct Python's
parser and TorchScript's lexer read differently (or a member ``ast`` rejects) cannot hide
them. A member that is not UTF-8 or does not parse is ``torchscript-code-invalid`` (T201).
"""

from __future__ import annotations

import ast
import bisect
import functools
import json
import re
import zlib
from dataclasses import dataclass

from ..model import Location
from .base import Context
from .streams import BudgetExceeded, Source

# bytes of one code member parsed with ast (real ones are KBs to a few hundred KB; ast
# costs ~100 bytes of memory per byte of source), and read at all (the text scan is linear)
MAX_CODE = 2 << 20
MAX_TEXT = 16 << 20
MAX_FINDINGS = 100  # distinct findings per member; the rest are counted
EVIDENCE_CHARS = 200
_CONSTANT = re.compile(r"c\d+")
# the special forms and names the importer resolves (import_source.cpp env_)
SPECIAL_ROOTS = frozenset(
    {"fork", "awaitable", "annotate", "unchecked_cast", "uninitialized", "inf", "nan"}
)


@dataclass(frozen=True, slots=True)
class TorchOps:
    """The generated op identities (``rules/allowlist/torch-ops.json``)."""

    version: str
    namespaces: dict[str, frozenset[str]]
    class_namespaces: frozenset[str]
    file_ops: dict[str, str]
    network_ops: dict[str, str]
    library_loads: frozenset[str]

    def classify(self, ns: str, op: str) -> tuple[str, str] | None:
        """(fact kind, what it does) for ``ns::op``, or None for one of torch's own ops."""
        qual = f"{ns}::{op}"
        if qual in self.file_ops:
            return "torch.op-file", self.file_ops[qual]
        if qual in self.network_ops:
            return "torch.op-network", self.network_ops[qual]
        if op in self.library_loads:
            return "torch.library-load", "loads a native library into the process"
        names = self.namespaces.get(ns)
        if names is None:
            return "torch.custom-op", f"namespace `{ns}` is not PyTorch's own"
        if op not in names:
            return "torch.unregistered-op", f"torch {self.version} registers no `{qual}`"
        return None

    def method_op(self, name: str) -> tuple[str, str, str] | None:
        """For a method call ``value.name(...)``: (fact kind, op, what) when ``aten::name``
        touches files or the network."""
        qual = f"aten::{name}"
        if qual in self.file_ops:
            return "torch.op-file", qual, self.file_ops[qual]
        if qual in self.network_ops:
            return "torch.op-network", qual, self.network_ops[qual]
        return None


@functools.cache
def torch_ops() -> TorchOps:
    """The generated op list; an unreadable list knows no namespace (fails closed)."""
    from ..engine import rules_dir  # local: the engine imports the format modules

    try:
        data = json.loads((rules_dir() / "allowlist" / "torch-ops.json").read_text("utf-8"))
        return TorchOps(
            version=str(data["version"]),
            namespaces={str(k): frozenset(map(str, v)) for k, v in data["namespaces"].items()},
            class_namespaces=frozenset(map(str, data["class_namespaces"])),
            file_ops={str(k): str(v["what"]) for k, v in data["file_ops"].items()},
            network_ops={str(k): str(v["what"]) for k, v in data["network_ops"].items()},
            library_loads=frozenset(map(str, data["library_loads"])),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return TorchOps(
            "unknown",
            {},
            frozenset(),
            {"aten::from_file": "reads a host file", "aten::save": "writes a host file"},
            {},
            frozenset({"load_library"}),
        )


def read_text_member(
    src: Source, where: Location, ctx: Context, what: str, limit: int = MAX_CODE
) -> bytes | None:
    """Up to ``limit`` bytes of a text member; the excess is a ``budget-member-size``
    anomaly and None."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            if ctx.deadline.expired():
                ctx.anomaly("budget-time", where, f"time budget ran out reading {what}")
                return None
            chunk = src.read(min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except BudgetExceeded as exc:
        ctx.anomaly(exc.what, where, exc.detail)
        return None
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        ctx.anomaly("stream-corrupt", where, f"cannot decode: {exc}")
        return None
    if size > limit:
        ctx.anomaly(
            "budget-member-size", where, f"{what} larger than {limit} bytes was not analysed"
        )
        return None
    return b"".join(chunks)


# -- the analysis -------------------------------------------------------------------------


@dataclass(slots=True)
class _Hit:
    kind: str
    value: str
    line: int
    what: str
    via: str
    count: int = 1


class _Findings:
    """Distinct (kind, value) hits of one member, first line kept, occurrences counted."""

    def __init__(self) -> None:
        self.hits: dict[tuple[str, str], _Hit] = {}

    def add(self, kind: str, value: str, line: int, what: str, via: str) -> None:
        key = (kind, value)
        hit = self.hits.get(key)
        if hit is None:
            self.hits[key] = _Hit(kind, value, line, what, via)
        else:
            hit.count += 1


def _getattr_name(node: ast.AST) -> tuple[ast.AST, str] | None:
    """``getattr(base, "name")`` (TorchScript's getattr takes a string literal): the base
    and the name."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
    ):
        return node.args[0], node.args[1].value
    return None


def dotted(node: ast.AST) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]`` for an attribute chain rooted at a name (iterative);
    ``getattr(a, "b")`` links count as ``a.b`` (``getattr(getattr(ops, "ns"), "op")``)."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
            continue
        link = _getattr_name(node)
        if link is None:
            break
        node, name = link
        parts.append(name)
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    parts.reverse()
    return parts


def classify_chain(parts: list[str], ops: TorchOps) -> tuple[str, str, str] | None:
    """(fact kind, value, what) for a dotted name TorchScript's importer resolves to an op
    or a TorchBind class, or None."""
    root = parts[0]
    if any(p in ops.library_loads for p in parts[1:]) and root in ("torch", "ops"):
        return "torch.library-load", ".".join(parts), "loads a native library into the process"
    if root == "torch" and len(parts) >= 2:
        rest = parts[1:]
        if rest[0] == "ops":
            return _op(rest[1:], ops)
        if rest[0] == "classes" and len(rest) >= 2:
            return _class(rest[1], ".".join(parts), ops)
        if rest[0] == "autograd" and len(rest) >= 2:
            rest = rest[1:]
        return _op(["aten", rest[0]], ops)
    if root == "ops":
        return _op(parts[1:], ops)
    if root == "__torch__" and parts[1:3] == ["torch", "classes"] and len(parts) >= 4:
        return _class(parts[3], ".".join(parts), ops)
    return None


def _op(ns_op: list[str], ops: TorchOps) -> tuple[str, str, str] | None:
    if len(ns_op) < 2:
        return None
    ns, op = ns_op[0], ns_op[1]
    found = ops.classify(ns, op)
    return (found[0], f"{ns}::{op}", found[1]) if found else None


def _class(ns: str, value: str, ops: TorchOps) -> tuple[str, str, str] | None:
    if ns in ops.class_namespaces:
        return None
    return "torch.custom-class", value, f"TorchBind class namespace `{ns}` is not PyTorch's own"


def analyse_code(text: str, ops: TorchOps, parse: bool = True) -> tuple[_Findings, str | None]:
    """The op hits in one code text, and why it did not parse (or None)."""
    found = _Findings()
    problem = None
    tree = None
    try:
        if parse:
            tree = ast.parse(text, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        problem = f"does not parse as TorchScript source: {type(exc).__name__}: {exc}"[:300]
    if tree is not None:
        _walk(tree, ops, found)
    # a member ast cannot read is still read by TorchScript's own lexer: every op name the
    # text shows is reported, not only the file, network and library ones
    _lexical(text, ops, found, every=tree is None)
    return found, problem


def _walk(tree: ast.AST, ops: TorchOps, found: _Findings) -> None:
    inner: set[int] = set()
    for node in ast.walk(tree):  # breadth first: a parent is seen before its children
        if isinstance(node, ast.Attribute):
            inner.add(id(node.value))
            if id(node) in inner:
                continue
            parts = dotted(node)
            if parts is None:
                continue
            if parts[0] == "CONSTANTS" and len(parts) == 2:
                if not _CONSTANT.fullmatch(parts[1]):
                    found.add("torchscript.bad-constant", ".".join(parts), node.lineno, "", "")
                continue
            hit = classify_chain(parts, ops)
            if hit:
                found.add(hit[0], hit[1], node.lineno, hit[2], "name")
        elif isinstance(node, ast.Call):
            func = node.func
            name = None
            if isinstance(func, ast.Attribute):
                name = func.attr
                base = dotted(func)
                if base is not None and base[0] in ("torch", "ops", "__torch__"):
                    continue  # a resolved name: the chain itself is classified
            elif (
                isinstance(func, ast.Name)
                and func.id == "getattr"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
            ):
                name = node.args[1].value
                base = dotted(node.args[0])
                if base is not None:
                    hit = classify_chain([*base, name], ops)
                    if hit:
                        found.add(hit[0], hit[1], node.lineno, hit[2], "getattr")
                        continue
            if name is None:
                continue
            method = ops.method_op(name)
            if method:
                found.add(method[0], method[1], node.lineno, method[2], "method call")
            elif name in ops.library_loads:
                found.add(
                    "torch.library-load", name, node.lineno, "loads a native library", "method"
                )


_LEX_CHAIN = re.compile(r"\b(torch|ops|__torch__)((?:\s*\.\s*[A-Za-z_]\w*){1,4})")
_LEX_METHOD = re.compile(r"\.\s*([A-Za-z_]\w*)\s*\(")
_LEX_KINDS = frozenset({"torch.op-file", "torch.op-network", "torch.library-load"})


def _lexical(text: str, ops: TorchOps, found: _Findings, *, every: bool = False) -> None:
    """File, network and library names in the raw text that the AST walk did not see
    (``every``: any op or class name, for a text the AST walk could not read)."""
    seen = {v for (k, v) in found.hits if k in _LEX_KINDS}
    lines = {(h.kind, h.line) for h in found.hits.values()}
    method_names = {
        q.split("::", 1)[1] for q in (*ops.file_ops, *ops.network_ops) if q.startswith("aten::")
    }
    method_names |= ops.library_loads
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_of(pos: int) -> int:
        return bisect.bisect_left(newlines, pos) + 1

    for m in _LEX_CHAIN.finditer(text):
        parts = [m.group(1), *(p.strip() for p in m.group(2).split(".")[1:])]
        hit = classify_chain(parts, ops)
        line = line_of(m.start()) if hit else 0
        if (
            hit
            and (every or hit[0] in _LEX_KINDS)
            and hit[1] not in seen
            and (hit[0], line) not in lines
        ):
            found.add(hit[0], hit[1], line, hit[2], "text")
            seen.add(hit[1])
    for m in _LEX_METHOD.finditer(text):
        name = m.group(1)
        if name not in method_names:
            continue
        method = ops.method_op(name)
        kind, value, what = (
            method if method else ("torch.library-load", name, "loads a native library")
        )
        line = line_of(m.start())
        if value not in seen and (kind, line) not in lines:
            found.add(kind, value, line, what, "text")
            seen.add(value)


def emit_findings(
    found: _Findings, lines: list[str], where: Location, ctx: Context, member: str, fmt: str
) -> None:
    hits = sorted(found.hits.values(), key=lambda h: (h.line, h.kind, h.value))
    for hit in hits[:MAX_FINDINGS]:
        if hit.kind == "torchscript.bad-constant":
            ctx.anomaly(
                "torchscript-code-invalid",
                where.at(key=f"line {hit.line}"),
                f"`{hit.value}` is not a constant-table reference (CONSTANTS.c<N>)",
            )
            continue
        text = lines[hit.line - 1].strip() if 0 < hit.line <= len(lines) else ""
        ctx.emit(
            hit.kind,
            hit.value,
            where.at(key=f"line {hit.line}"),
            f"{member}:{hit.line}: {text[:EVIDENCE_CHARS]}",
            what=hit.what,
            via=hit.via,
            line=hit.line,
            count=hit.count,
            format=fmt,
        )
    if len(hits) > MAX_FINDINGS:
        ctx.anomaly(
            "torchscript-code-invalid",
            where,
            f"{len(hits) - MAX_FINDINGS} more operator findings in this member not listed",
        )


def scan_torchscript_code(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    """A ``code/**.py`` member of a TorchScript archive (registry format ``torchscript-code``)."""
    data = read_text_member(src, where, ctx, "TorchScript code member", MAX_TEXT)
    if data is None:
        return
    parse = len(data) <= MAX_CODE
    if not parse:
        ctx.anomaly(
            "budget-member-size",
            where,
            f"code member larger than {MAX_CODE} bytes: only searched as text for file, "
            "network and library names, not parsed",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        ctx.anomaly(
            "torchscript-code-invalid", where, f"code member is not UTF-8 (byte {exc.start})"
        )
        text = data.decode("utf-8", "replace")
    if "\0" in text:
        ctx.anomaly("torchscript-code-invalid", where, "code member holds NUL bytes")
        text = text.replace("\0", " ")
    found, problem = analyse_code(text, torch_ops(), parse)
    if problem:
        ctx.anomaly("torchscript-code-invalid", where, problem)
    member = (where.member or name).rsplit("!", 1)[-1]
    emit_findings(found, text.splitlines(), where, ctx, member, "torchscript")
