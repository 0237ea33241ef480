"""ONNX models: a protobuf wire-level walk of ``ModelProto`` that skips tensor payloads.

Format (``onnx/onnx.proto``, IR version 14): a protobuf ``ModelProto``. Each field is a
varint key ``(number << 3) | wire_type`` followed by a varint (0), 8 bytes (1), a varint
length and that many bytes (2), or 4 bytes (5). The walk descends only into the messages that
can name code or files: ``graph`` (7) -> ``node`` (1) -> ``attribute`` (5) -> sub-graphs and
tensors, ``initializer`` (5), ``sparse_initializer`` (15), ``functions`` (25),
``training_info`` (20), ``opset_import`` (8), ``metadata_props`` (14). A ``TensorProto``'s
``raw_data`` (9) and typed data fields are skipped by length, never copied, so a 2 GB
embedded model costs the memory of its structure, not of its weights. ``onnx.load`` is not
used: even with ``load_external_data=False`` it materialises every embedded weight. The
field numbers are cross-checked against the ``onnx`` package's descriptors in the tests.

External data (``data_location`` 14 = EXTERNAL, ``external_data`` 13 entries ``location``,
``offset``, ``length``) is resolved against the model's directory, without reading it:
absolute paths, ``..`` components, symlinks or hard links that lead elsewhere, and missing
files are findings (CVE-2022-25882, CVE-2024-27318 and later link variants).
"""

from __future__ import annotations

import ast
import functools
import json
import os
import posixpath
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..limits import Deadline
from ..model import Location
from .base import Context
from .protobuf import ProtoError
from .protobuf import varint as _varint
from .streams import map_region

MAX_DEPTH = 48
KNOWN_IR_VERSION = 14
KNOWN_OPSET = 28
STANDARD_DOMAINS = frozenset(
    {
        "",
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.training",
        "ai.onnx.preview.training",
        "com.microsoft.experimental",
    }
)
# Domains whose ops ONNX Runtime or onnxruntime-extensions implement natively: a node from one
# of them passes only when its op is on the list generated from those libraries
# (rules/onnx/known-ops/<domain>.json, scripts/gen_onnx_known_ops.py). Any other op there is
# either a custom-op library registered under that domain name or, in onnxruntime-extensions'
# ``ai.onnx.contrib`` (its ``default_opset_domain()``), a Python function the loading process
# registered with ``@onnx_op`` (``PyCustomOpDef``).
KNOWN_OP_DOMAINS = frozenset(
    {
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.ms.internal.nhwc",
        "ai.onnx.contrib",
        "com.microsoft.extensions",
    }
)
PYTHON_OP_DOMAIN = "ai.onnx.contrib"
PYTHON_OPS = frozenset({"PyOp", "PythonOp", "PythonOpGrad", "PyFunc", "PyFuncOp"})
PYTHON_DOMAINS = frozenset({"ai.onnx.contrib", "com.microsoft.extensions"})
# TensorProto.DataType -> bytes per element; 0 where not a whole number of bytes (strings,
# packed 4-bit and 2-bit types) or unknown
ELEM_SIZE = {
    1: 4,
    2: 1,
    3: 1,
    4: 2,
    5: 2,
    6: 4,
    7: 8,
    8: 0,
    9: 1,
    10: 2,
    11: 8,
    12: 4,
    13: 8,
    14: 8,
    15: 16,
    16: 2,
    17: 1,
    18: 1,
    19: 1,
    20: 1,
    21: 0,
    22: 0,
    23: 0,
    24: 1,
}
ABSURD_BYTES = 1 << 40
SUSPICIOUS_META = re.compile(
    r"\bimport\s+\w|__import__|\beval\(|\bexec\(|subprocess|os\.system|"
    r"\b(?:curl|wget)\s+\S+.*\|\s*(?:ba)?sh|base64\s+-d|powershell",
    re.IGNORECASE,
)
# A reference that fetches or opens something rather than informs: a URL whose scheme reaches
# a file or a share (not a web page), a UNC path, or a web URL of a script, binary or pickle.
# Plain http(s) links (Ultralytics writes `docs` and `license` into every export) are text.
FETCH_REF = re.compile(
    r"\b(?:file|ftps?|sftp|smb|nfs|scp|ssh|rsync)://|(?:^|[\s'\"(=])\\\\[\w.$-]+\\|"
    r"\bhttps?://\S+?\.(?:sh|bash|zsh|ps1|psm1|bat|cmd|vbs|exe|msi|dll|so|dylib|py|pyc|"
    r"pkl|pickle|jar)(?:[?#]\S*)?(?=$|[\s'\")\],;])",
    re.IGNORECASE,
)

# message -> field number -> (wire type, child message or None, field name)
MSG: dict[str, dict[int, tuple[int, str | None, str]]] = {
    "Model": {
        1: (0, None, "ir_version"),
        2: (2, None, "producer_name"),
        7: (2, "Graph", "graph"),
        8: (2, "Opset", "opset_import"),
        14: (2, "Entry", "metadata_props"),
        20: (2, "Training", "training_info"),
        25: (2, "Function", "functions"),
    },
    "Graph": {
        1: (2, "Node", "node"),
        2: (2, None, "name"),
        5: (2, "Tensor", "initializer"),
        15: (2, "Sparse", "sparse_initializer"),
    },
    "Node": {
        3: (2, None, "name"),
        4: (2, None, "op_type"),
        5: (2, "Attribute", "attribute"),
        7: (2, None, "domain"),
    },
    "Attribute": {
        1: (2, None, "name"),
        5: (2, "Tensor", "t"),
        6: (2, "Graph", "g"),
        10: (2, "Tensor", "tensors"),
        11: (2, "Graph", "graphs"),
        22: (2, "Sparse", "sparse_tensor"),
        23: (2, "Sparse", "sparse_tensors"),
    },
    "Tensor": {
        1: (0, None, "dims"),
        2: (0, None, "data_type"),
        8: (2, None, "name"),
        9: (2, None, "raw_data"),
        13: (2, "Entry", "external_data"),
        14: (0, None, "data_location"),
    },
    "Sparse": {1: (2, "Tensor", "values"), 2: (2, "Tensor", "indices")},
    "Function": {1: (2, None, "name"), 7: (2, "Node", "node"), 10: (2, None, "domain")},
    "Training": {1: (2, "Graph", "initialization"), 2: (2, "Graph", "algorithm")},
    "Entry": {1: (2, None, "key"), 2: (2, None, "value")},
    "Opset": {1: (2, None, "domain"), 2: (0, None, "version")},
}
STRINGS = frozenset({"producer_name", "name", "op_type", "domain", "key", "value"})


@dataclass
class Msg:
    """A decoded message: scalar fields, strings, children, and skipped payload sizes."""

    kind: str
    offset: int
    values: dict[str, list[Any]] = field(default_factory=dict)

    def first(self, name: str, default: Any = None) -> Any:
        got = self.values.get(name)
        return got[0] if got else default

    def all(self, name: str) -> list[Any]:
        return self.values.get(name, [])


class Budget:
    """Fields decoded so far, with the wall-clock deadline checked every 64 Ki fields."""

    __slots__ = ("deadline", "fields")

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.fields = 0


class ProtoTimeout(Exception):
    pass


def parse(buf: Any, start: int, end: int, kind: str, budget: Budget, depth: int = 0) -> Msg:
    """Decode the fields of ``kind`` we care about; skip everything else by its length."""
    if depth > MAX_DEPTH:
        raise ProtoError(f"messages nested deeper than {MAX_DEPTH}", start)
    schema = MSG[kind]
    msg = Msg(kind, start)
    pos = start
    while pos < end:
        budget.fields += 1
        if not budget.fields & 0xFFFF and budget.deadline.expired():
            raise ProtoTimeout
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0", pos)
        spec = schema.get(number)
        if spec is not None and spec[0] != wire and not (spec[2] == "dims" and wire == 2):
            spec = None  # a known number with another wire type: protobuf skips it as unknown
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            if spec is not None:
                msg.values.setdefault(spec[2], []).append(value)
        elif wire == 1 or wire == 5:
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise ProtoError("fixed-width field runs past the end", pos)
        elif wire == 2:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise ProtoError(
                    f"field {number} of {n} bytes runs past the end of its {kind} message", pos
                )
            if spec is not None:
                name = spec[2]
                if spec[1] is not None:
                    msg.values.setdefault(name, []).append(
                        parse(buf, pos, pos + n, spec[1], budget, depth + 1)
                    )
                elif name in STRINGS:
                    msg.values.setdefault(name, []).append(
                        bytes(buf[pos : pos + min(n, 4096)]).decode("utf-8", "replace")
                    )
                elif name == "dims":  # packed repeated int64
                    p = pos
                    while p < pos + n:
                        d, p = _varint(buf, p, pos + n)
                        msg.values.setdefault("dims", []).append(d)
                else:  # raw_data: remember the size only
                    msg.values.setdefault(name, []).append(n)
            pos += n
        else:
            raise ProtoError(f"wire type {wire} in a {kind} message", pos)
    if pos != end:
        raise ProtoError("message overruns its length", pos)
    return msg


def sniff_onnx(head: bytes) -> bool:
    """A ModelProto starts with ``ir_version`` and then other ModelProto fields."""
    if len(head) < 4 or head[0] != 0x08 or not 1 <= head[1] <= 0x7F:
        return False
    pos, seen = 2, 0
    try:
        while pos < min(len(head), 256) and seen < 4:
            key, pos = _varint(head, pos, len(head))
            number, wire = key >> 3, key & 7
            spec = MSG["Model"].get(number)
            if spec is None and number not in (3, 4, 5, 6, 26):
                return False
            if wire == 0:
                _, pos = _varint(head, pos, len(head))
            elif wire == 2:
                n, pos = _varint(head, pos, len(head))
                pos += n
            else:
                return False
            seen += 1
    except ProtoError:
        return seen >= 1
    return seen >= 1


def scan_onnx(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str = ""
) -> None:
    buf, release = map_region(f, start, length, all_decides=True)
    try:
        length = len(buf)
        try:
            model = parse(buf, 0, length, "Model", Budget(ctx.deadline))
        except ProtoTimeout:
            ctx.anomaly("budget-time", where, f"more than {ctx.deadline.seconds:.0f}s to walk")
            return
        except (ProtoError, RecursionError) as exc:
            offset = getattr(exc, "offset", None)
            ctx.anomaly("onnx-malformed", where.at(offset), f"not a valid ModelProto: {exc}")
            return
        _check_model(model, where, ctx)
    finally:
        release()


def _walk(msg: Msg, path: str) -> Any:
    """Yield (message, path) for every decoded message below ``msg``."""
    stack = [(msg, path)]
    while stack:
        m, p = stack.pop()
        yield m, p
        for name, values in m.values.items():
            for i, v in enumerate(values):
                if isinstance(v, Msg):
                    label = v.first("name") or v.first("op_type") or f"{name}[{i}]"
                    stack.append((v, f"{p}/{label}" if p else label))


def _check_model(model: Msg, where: Location, ctx: Context) -> None:
    ir = model.first("ir_version", 0)
    if not 1 <= ir <= KNOWN_IR_VERSION:
        ctx.emit(
            "onnx.version",
            f"ir_version {ir}",
            where.at(key="ir_version"),
            message=f"IR version {ir} (known: 1..{KNOWN_IR_VERSION})",
        )
    opsets = {o.first("domain", ""): o.first("version", 0) for o in model.all("opset_import")}
    default = opsets.get("", opsets.get("ai.onnx"))
    # A model that uses no default-domain op (an ai.onnx.ml-only skl2onnx export) may omit
    # that opset (onnx IR.md, "Operator Sets"); a node whose domain has no import may not.
    if default is not None and not 1 <= default <= KNOWN_OPSET:
        ctx.emit(
            "onnx.version",
            f"opset {default}",
            where.at(key="opset_import"),
            message=f"default-domain opset {default} (known: 1..{KNOWN_OPSET})",
        )
    imported = set(opsets) | ({"", "ai.onnx"} if default is not None else set())
    for domain, path in _unimported_domains(model, imported):
        ctx.emit(
            "onnx.version",
            f"opset {domain or 'ai.onnx'}",
            where.at(key=path),
            message=f"node `{path}` uses domain `{domain or 'ai.onnx'}`, which the model "
            "imports no opset for",
        )
    local = {(fn.first("domain", ""), fn.first("name", "")) for fn in model.all("functions")}
    for domain, name in sorted(local):
        ctx.emit(
            "onnx.local-function",
            f"{domain}:{name}",
            where.at(key=name),
            message=f"the model defines function `{name}` in domain `{domain}`",
        )
    local_domains = {d for d, _ in local}
    for entry in model.all("metadata_props"):
        key, value = entry.first("key", ""), entry.first("value", "")
        what = _metadata_hazard(key, value)
        if what:
            ctx.emit(
                "onnx.metadata",
                key,
                where.at(key=f"metadata_props.{key}"),
                message=f"metadata `{key}` holds {what}: {value[:80]!r}",
            )
    base_dir = None
    if where.member is None:
        base_dir = os.path.dirname(os.path.abspath(where.path))
    seen_domains: set[str] = set()
    for msg, path in _walk(model, ""):
        if msg.kind == "Node":
            _check_node(msg, path, local_domains, seen_domains, where, ctx)
        elif msg.kind == "Tensor":
            _check_tensor(msg, path, base_dir, where, ctx)


def _check_node(
    node: Msg, path: str, local_domains: set[str], seen: set[str], where: Location, ctx: Context
) -> None:
    domain = node.first("domain", "")
    op = node.first("op_type", "")
    if op in PYTHON_OPS or (domain in PYTHON_DOMAINS and op.startswith("Py")):
        ctx.emit(
            "onnx.python-op",
            f"{domain}:{op}",
            where.at(key=path),
            message=f"node `{path}` is `{op}` from `{domain or 'ai.onnx'}`, which runs "
            "Python code inside the runtime",
        )
    elif domain in KNOWN_OP_DOMAINS and domain not in local_domains:
        table = known_ops(domain)
        if op in table.ops or f"{domain}\0{op}" in seen:
            return
        seen.add(f"{domain}\0{op}")
        if domain == PYTHON_OP_DOMAIN:
            ctx.emit(
                "onnx.python-op",
                f"{domain}:{op}",
                where.at(key=path),
                message=f"node `{path}` is `{op}` from `{domain}`, which is no native op of "
                f"{table.source}: onnxruntime-extensions runs it as a Python function the "
                "loading process registered (@onnx_op), or a custom-op library supplies it",
            )
        else:
            ctx.emit(
                "onnx.custom-domain",
                f"{domain}:{op}",
                where.at(key=path),
                message=f"op `{op}` is not a built-in op of domain `{domain}` "
                f"({table.source}): it needs a custom-op library (native code) registered "
                "with the runtime",
            )
    elif domain not in STANDARD_DOMAINS and domain not in local_domains and domain not in seen:
        seen.add(domain)
        ctx.emit(
            "onnx.custom-domain",
            domain,
            where.at(key=path),
            message=f"op `{op}` from domain `{domain}` needs a custom-op library "
            "(native code) registered with the runtime",
        )


@dataclass(frozen=True)
class KnownOps:
    ops: frozenset[str]
    source: str


@functools.cache
def known_ops(domain: str) -> KnownOps:
    """The generated op list of ``domain``; an unreadable list knows no op (fails closed)."""
    from ..engine import rules_dir  # local: the engine imports the format modules

    try:
        data = json.loads((rules_dir() / "onnx" / "known-ops" / f"{domain}.json").read_text())
        ops = frozenset(op for op in data["ops"] if isinstance(op, str))
        source = f"{data['library']} {data['version']}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return KnownOps(frozenset(), f"no readable op list: {exc}")
    return KnownOps(ops, source)


def _unimported_domains(model: Msg, imported: set[str]) -> list[tuple[str, str]]:
    """(domain, node path) of the first node of each domain with no opset import, in the
    graph and training graphs (model-local functions carry their own opset imports)."""
    out: dict[str, str] = {}
    roots = [(g.first("name") or "graph", g) for g in model.all("graph")]
    roots += [(f"training_info[{i}]", t) for i, t in enumerate(model.all("training_info"))]
    for label, root in roots:
        for msg, path in _walk(root, label):
            if msg.kind == "Node":
                domain = msg.first("domain", "")
                if domain not in imported and domain not in out:
                    out[domain] = path
    return sorted(out.items())


def _metadata_hazard(key: str, value: str) -> str | None:
    """What in a metadata entry a consumer would run or fetch, if anything.

    Code patterns anywhere; a value that parses as a Python expression with a call in it
    (YOLOv5 and Ultralytics ``eval`` metadata values such as ``names`` and ``imgsz``); a
    reference that fetches or opens something (``FETCH_REF``). Informational text, plain web
    links included, is none of these.
    """
    if SUSPICIOUS_META.search(value) or SUSPICIOUS_META.search(key):
        return "code"
    ref = FETCH_REF.search(value) or FETCH_REF.search(key)
    if ref:
        return f"a reference that fetches or opens `{ref.group(0).strip()[:60]}`"
    if "(" in value and len(value) <= 4096:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(value.strip(), mode="eval")
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return None
        if any(isinstance(n, ast.Call) for n in ast.walk(tree)):
            return "a Python expression with a call, which tools that eval metadata run"
    return None


def _check_tensor(t: Msg, path: str, base_dir: str | None, where: Location, ctx: Context) -> None:
    dims = t.all("dims")
    dtype = t.first("data_type", 0)
    name = t.first("name") or path
    count = 1
    for d in dims:
        count *= d
    size = ELEM_SIZE.get(dtype, 0)
    if any(d >= 1 << 62 for d in dims) or count * max(size, 1) > ABSURD_BYTES:
        ctx.emit(
            "onnx.absurd-size",
            name,
            where.at(key=name),
            message=f"`{name}` declares dims {dims[:8]} ({count} elements)",
        )
        return
    raw = t.first("raw_data")
    if raw is not None and size and raw != count * size:
        ctx.emit(
            "onnx.tensor-mismatch",
            name,
            where.at(key=name),
            message=f"`{name}` has {raw} bytes of raw_data; dims x type need {count * size}",
        )
    entries = {e.first("key", ""): e.first("value", "") for e in t.all("external_data")}
    if t.first("data_location", 0) == 1 or entries:
        _check_external(name, entries, count * size, base_dir, where, ctx)


def location_problem(location: str) -> str | None:
    """Why an external_data location escapes the model's directory, if it does."""
    norm = location.replace("\\", "/")
    if not norm:
        return "empty location"
    if "\0" in norm:
        return "NUL byte in the path"
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "absolute path"
    if any(part == ".." for part in norm.split("/")):
        return "parent-directory component"
    if posixpath.normpath(norm).startswith(".."):
        return "leaves the model directory"
    return None


def _check_external(
    name: str,
    entries: dict[str, str],
    expected: int,
    base_dir: str | None,
    where: Location,
    ctx: Context,
) -> None:
    location = entries.get("location", "")
    loc = where.at(key=name)
    problem = location_problem(location)
    if problem:
        ctx.emit("onnx.external-escape", location, loc, tensor=name, reason=problem)
        return
    if base_dir is None:
        ctx.anomaly(
            "embedded-not-analysed",
            loc,
            f"external data `{location}` of `{name}` cannot be checked inside an archive",
        )
        return
    from ..hfcache import in_cache_blobs

    target = os.path.join(base_dir, location)
    ctx.consult(target)
    real = os.path.realpath(target)
    base_real = os.path.realpath(base_dir)
    # in a Hugging Face cache snapshot every file is a link into the repo's blobs: the
    # loaders follow it, so a blob of the same repo is inside the model directory
    cached = in_cache_blobs(real, ctx.cache_blobs(base_dir))
    if os.path.commonpath([real, base_real]) != base_real and not cached:
        ctx.emit(
            "onnx.external-escape",
            location,
            loc,
            tensor=name,
            reason=f"a link resolves it to {real}",
        )
        return
    try:
        st = os.stat(real)
    except OSError:
        ctx.emit("onnx.external-missing", location, loc, tensor=name)
        return
    linked_folder = any(os.path.islink(p) for p in _parents(target, base_dir))
    if linked_folder or (os.path.islink(target) and not cached):
        ctx.emit(
            "onnx.external-escape",
            location,
            loc,
            tensor=name,
            reason="reached through a symbolic link",
        )
    elif st.st_nlink > 1:
        ctx.emit(
            "onnx.external-escape",
            location,
            loc,
            tensor=name,
            reason=f"a hard link ({st.st_nlink} names) that may alias a file elsewhere",
        )
    offset = _int(entries.get("offset", "0"))
    length = _int(entries.get("length", str(expected)))
    if offset is None or length is None or offset + length > st.st_size:
        ctx.emit(
            "onnx.tensor-mismatch",
            name,
            loc,
            message=f"external data of `{name}` ({entries}) lies outside `{location}` "
            f"({st.st_size} bytes)",
        )


def _parents(target: str, base: str) -> list[str]:
    out = []
    p = os.path.dirname(target)
    while len(p) > len(base):
        out.append(p)
        p = os.path.dirname(p)
    return out


def _int(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 0 else None
