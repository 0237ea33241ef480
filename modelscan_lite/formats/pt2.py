"""``torch.export`` archives (``.pt2``, ``torch.export.save`` / ``torch.export.load``).

Normatively (``torch/export/pt2_archive/_package.py``, ``torch/_export/serde``; names from
``torch._C._export.pt2_archive_constants``): a zip under one root folder with
``archive_format`` (``pt2``), ``archive_version``, ``.data/version``, ``byteorder``, and per
model ``<name>``:

* ``models/<name>.json``: the serialized ``ExportedProgram`` (``graph_module.graph.nodes``,
  each with a ``target``; higher-order ops carry sub-graphs in ``as_graph`` arguments);
* ``data/weights/<name>_weights_config.json`` and ``data/constants/<name>_constants_config
  .json``: ``{"config": {fqn: {path_name, use_pickle, ...}}}``;
* ``data/weights/weight_<N>``, ``data/constants/tensor_<N>``: raw tensor bytes, or when
  ``use_pickle`` a ``torch.save`` archive that ``torch.export.load`` reads with
  ``torch.load(..., weights_only=False)``; ``data/constants/custom_obj_<N>`` (TorchScript
  pickler zip) and ``opaque_obj_<N>`` (``pickle.loads``); ``data/sample_inputs/<name>.pt``
  and legacy ``data/weights/<name>.pt`` (``torch.load``, falling back to
  ``weights_only=False``);
* ``data/aotinductor/<name>/``: AOTInductor output, shared libraries that
  ``torch._inductor.aoti_load_package`` ``dlopen``\\ s.

The deserializer resolves a node target that starts with ``torch`` by walking attributes
from the ``torch`` module (``_export/serde/serialize.py: deserialize_operator``), so a target
other than ``torch.ops.<ns>.<op>[.<overload>]`` reaches any callable importable under torch
(``torch.serialization.os.system``); ``_operator.*`` and ``math.*`` targets walk those
modules. Those are ``torch.python-target`` unless on the short list of symbolic helpers the
serializer writes. Ops are decided like TorchScript's (:mod:`.torchscript`).

Payload members are routed here so that raw tensor bytes are never mis-sniffed: a member is
handed to the dispatcher only when its first bytes are strongly a zip or a pickle (what
``use_pickle`` writes); the pickled paths that have no raw alternative are sniffed as usual.
"""

from __future__ import annotations

from collections import deque
from typing import Any, BinaryIO

from .. import jsonbudget
from ..model import Location
from .base import Context
from .streams import Source
from .torchscript import read_text_member, torch_ops

MAX_GRAPH_JSON = 256 << 20
MAX_NODES = 2_000_000
MAX_FINDINGS = 100
# Python targets the exporter writes for symbolic shape arithmetic and assertions
# (torch/_export/serde/serialize.py: _SYM_OPS and the builtins it serializes)
SAFE_PYTHON_TARGETS = frozenset(
    {
        *(
            f"_operator.{n}"
            for n in (
                "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos",
                "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "not_", "invert",
                "getitem", "lshift", "rshift", "xor", "abs", "ifloordiv", "iadd", "imul",
            )
        ),
        *(f"math.{n}" for n in ("sqrt", "ceil", "floor", "trunc", "exp", "log", "sin", "cos")),
        *(
            f"torch.{n}"
            for n in (
                "sym_float", "sym_int", "sym_max", "sym_min", "sym_not", "sym_ite",
                "sym_sqrt", "sym_sum", "_sym_sqrt", "_assert_scalar", "sym_constrain_range",
                "sym_constrain_range_for_size", "_check", "_check_is_size",
            )
        ),
    }
)  # fmt: skip


def scan_graph(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    """``models/<name>.json`` (registry format ``pt2-graph``)."""
    data = read_text_member(src, where, ctx, "exported program JSON", MAX_GRAPH_JSON)
    if data is None:
        return
    try:
        doc = jsonbudget.loads(data, ctx.limits)
    except jsonbudget.JsonBudgetExceeded as exc:
        ctx.anomaly(exc.what, where, exc.message)
        return
    except (ValueError, RecursionError) as exc:
        ctx.anomaly("pt2-invalid", where, f"exported program is not JSON: {exc}"[:300])
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("graph_module"), dict):
        ctx.anomaly("pt2-invalid", where, "exported program has no `graph_module` object")
        return
    ops = torch_ops()
    seen: dict[tuple[str, str], int] = {}
    nodes = 0
    # every graph, sub-graphs of higher-order ops (`as_graph`) included, walked iteratively
    todo: deque[tuple[Any, str]] = deque([(doc["graph_module"].get("graph"), "graph")])
    while todo:
        graph, path = todo.popleft()
        if not isinstance(graph, dict):
            ctx.anomaly("pt2-invalid", where.at(key=path), "a graph is not a JSON object")
            continue
        node_list = graph.get("nodes", [])
        if not isinstance(node_list, list):
            ctx.anomaly("pt2-invalid", where.at(key=path), "`nodes` is not a list")
            continue
        for i, node in enumerate(node_list):
            nodes += 1
            if nodes > MAX_NODES or ctx.deadline.expired():
                ctx.anomaly("budget-time", where, "graph walk stopped: too many nodes or time")
                return
            if not isinstance(node, dict) or not isinstance(node.get("target"), str):
                ctx.anomaly("pt2-invalid", where.at(key=f"{path}.nodes[{i}]"), "node has no target")
                continue
            key = f"{path}.nodes[{i}]"
            _target(node["target"], node.get("name"), key, where, ctx, ops, seen)
            # an operator passed as an argument is resolved like a target
            # (``deserialize_input``: ``as_operator`` -> ``deserialize_operator``)
            for at, op in _operator_args(node.get("inputs")):
                _target(op, node.get("name"), f"{key}.inputs{at}", where, ctx, ops, seen)
            for sub in _subgraphs(node.get("inputs")):
                todo.append((sub, f"{key}.graph"))
    if len(seen) > MAX_FINDINGS:
        ctx.anomaly("pt2-invalid", where, f"{len(seen) - MAX_FINDINGS} more op findings not listed")


def _operator_args(inputs: Any) -> list[tuple[str, str]]:
    """``(path, target)`` of every ``as_operator`` in a node's arguments (lists and
    optionals nest them); graphs are left to :func:`_subgraphs`."""
    out: list[tuple[str, str]] = []
    todo: list[tuple[Any, str]] = [(inputs, "")]
    steps = 0
    while todo and steps < 10_000:
        steps += 1
        value, at = todo.pop()
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "as_operator" and isinstance(v, str):
                    out.append((at, v))
                elif k != "as_graph":
                    todo.append((v, f"{at}.{k}"))
        elif isinstance(value, list):
            todo.extend((v, f"{at}[{n}]") for n, v in enumerate(value))
    return out


def _subgraphs(inputs: Any) -> list[Any]:
    out = []
    if isinstance(inputs, list):
        for arg in inputs:
            a = arg.get("arg") if isinstance(arg, dict) else None
            if isinstance(a, dict) and isinstance(a.get("as_graph"), dict):
                out.append(a["as_graph"].get("graph"))
    return out


def _target(
    target: str,
    node: Any,
    key: str,
    where: Location,
    ctx: Context,
    ops: Any,
    seen: dict[tuple[str, str], int],
) -> None:
    parts = target.split(".")
    found: tuple[str, str, str] | None = None
    if target.startswith("torch.ops.") and len(parts) >= 4:
        hit = ops.classify(parts[2], parts[3])
        if hit:
            found = (hit[0], f"{parts[2]}::{parts[3]}", hit[1])
    elif target.startswith("#"):
        found = ("torch.custom-op", target, "an extension operator the host must register")
    elif target in SAFE_PYTHON_TARGETS:
        return
    elif target.startswith(("torch", "_operator", "math")):
        found = (
            "torch.python-target",
            target,
            "the loader resolves it by attribute walk from a Python module and calls it",
        )
    else:
        return  # an unresolved name: the deserializer keeps it as a string, nothing runs
    if found is None:
        return
    k = (found[0], found[1])
    seen[k] = seen.get(k, 0) + 1
    if seen[k] > 1 or len(seen) > MAX_FINDINGS:
        return
    ctx.emit(
        found[0],
        found[1],
        where.at(key=key),
        f"node {str(node)[:80]!s}: target {target[:200]}",
        what=found[2],
        via="graph node",
        format="pt2",
    )


def scan_payload(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str
) -> None:
    """``data/weights/weight_*`` and ``data/constants/tensor_*`` (registry format
    ``pt2-payload``): raw tensor bytes, or a ``torch.save`` archive / pickle."""
    from .archives import STORAGE_HEAD, _strong_format
    from .dispatch import dispatch_file
    from .sniff import pickle_prefix
    from .streams import FileSlice

    f.seek(start)
    head = f.read(min(STORAGE_HEAD, length))
    if _strong_format(head, 1) is None and not pickle_prefix(
        head, complete=len(head) >= length, whole=FileSlice(f, start, length)
    ):
        return  # raw tensor bytes: copied by the loader, never deserialized
    # a torch.save archive or a pickle (``use_pickle``; torch.load also reads a protocol
    # 0/1 pickle there): scanned as what it is
    dispatch_file(f, start, length, where, ctx, name)


def scan_native(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str
) -> None:
    """A member under ``data/aotinductor/`` (registry format ``pt2-native``)."""
    from .dispatch import dispatch_file

    f.seek(start)
    head = f.read(min(64, length))
    kind = native_kind(head)
    member = (where.member or name).rsplit("!", 1)[-1]
    if kind is not None or member.endswith((".so", ".dylib", ".dll", ".pyd")):
        ctx.emit(
            "torch.native-code",
            member,
            where,
            f"{member}: {kind or 'named as a shared library'}, {length} bytes",
            what=f"{kind or 'a shared library'} that loading the package maps into the process",
            via="AOTInductor",
        )
        return
    dispatch_file(f, start, length, where, ctx, name)


def native_kind(head: bytes) -> str | None:
    if head.startswith(b"\x7fELF"):
        return "an ELF shared object"
    if head[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
        return "a Mach-O binary"
    if head.startswith(b"MZ"):
        return "a PE (Windows) binary"
    return None
