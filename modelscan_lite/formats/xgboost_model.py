"""XGBoost native model files: JSON, UBJSON (``.ubj``, the default of ``save_model`` since
2.1) and the old binary format (``binf``); walked under budgets, never loaded.

JSON / UBJSON document (xgboost ``doc/model.schema``; UBJSON is the same tree of values)::

    {"learner": {"attributes": {str: str}, "feature_names": [str], "feature_types": [str],
                 "gradient_booster": {"name": "gbtree" | "dart" | "gblinear", "model": ...},
                 "learner_model_param": {"num_feature": "N", "num_class": ..., ...},
                 "objective": {"name": "binary:logistic", ...}},
     "version": [major, minor, patch]}
    gbtree model  {"gbtree_model_param": {"num_trees": "T", ...}, "tree_info": [T ints],
                   "trees": [tree]}   (dart: {"gbtree": <gbtree model>, "weight_drop": [...]})
    tree          {"tree_param": {"num_nodes": "n", "num_feature": ..., ...},
                   "left_children", "right_children", "parents", "split_indices",
                   "split_conditions", "default_left", ...: n values each}
    gblinear      {"weights": [(num_feature + 1) * groups floats]}

UBJSON (https://ubjson.org, big-endian): markers ``{ } [ ]``, ``Z`` null, ``N`` no-op,
``T F``, ``i U I l L`` (int8, uint8, int16, int32, int64), ``d D`` (float32, float64),
``C`` char, ``S``/``H`` (length + UTF-8). A container may open with ``$<type>#<count>``
(typed, no per-value markers: xgboost writes every numeric array this way) or ``#<count>``.
Object keys are a length and UTF-8 bytes with no ``S``.

Old binary (xgboost <= 1.x ``LearnerImpl::LoadModel``, little-endian): optional ``binf``,
``LearnerModelParam`` (136 bytes: f32 base_score, u32 num_feature, i32 num_class, i32
contain_extra_attrs, i32 contain_eval_metrics, u32 major, u32 minor, u32 num_target, i32
boost_from_average, 25 x i32 reserved), objective and booster names (u64 length + bytes),
then for gbtree/dart ``GBTreeModelParam`` (160 bytes: i32 num_trees, i32 num_roots, i32
num_feature, i32 pad, i64 num_pbuffer, i32 num_output_group, i32 size_leaf_vector, 32 x i32)
and per tree ``TreeParam`` (148 bytes: i32 num_roots, num_nodes, num_deleted, max_depth,
num_feature, size_leaf_vector, 31 x i32), ``num_nodes`` nodes (i32 parent, i32 left, i32
right, u32 split index (top bit: default left), f32) and ``num_nodes`` stats (16 bytes); then
``num_trees`` i32 tree_info. What follows (attributes, eval metrics) is not walked.

Nothing in any of these is code: loading builds numbers and strings. A tree whose children
point outside the node array, form a cycle or share a node is what makes the native
predictor read out of bounds or loop; counts that disagree with the arrays, split features
past ``num_feature``, or sizes past the end of the file are reported too (M220).
"""

from __future__ import annotations

import array
import struct
from collections.abc import Sequence
from typing import Any

from .. import jsonbudget
from ..model import Location
from .base import Context
from .datareader import Cursor, TooLong, Truncated
from .streams import Source

BOOSTERS = ("gbtree", "dart", "gblinear")
MAX_KEY = 1 << 16
MAX_STRING = 64 << 20


class XGBoostError(Exception):
    pass


class Budget(Exception):
    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


# -- sniffs ----------------------------------------------------------------------------------


def sniff_xgboost_json(head: bytes) -> bool:
    """A JSON object whose first key is ``learner`` holding an object (xgboost writes the
    keys sorted: ``learner`` then ``version``)."""
    text = head.lstrip(b" \t\r\n")
    if not text.startswith(b"{"):
        return False
    rest = text[1:].lstrip(b" \t\r\n")
    if not rest.startswith(b'"learner"'):
        return False
    return rest[9:].lstrip(b" \t\r\n").startswith(b":") and rest[9:].lstrip(b" \t\r\n:").lstrip(
        b" \t\r\n"
    ).startswith(b"{")


_INT_MARKERS = {ord("i"): ">b", ord("U"): ">B", ord("I"): ">h", ord("l"): ">i", ord("L"): ">q"}


def sniff_xgboost_ubjson(head: bytes) -> bool:
    """UBJSON ``{`` whose first key is ``learner`` and whose value opens an object."""
    if len(head) < 4 or head[0] != 0x7B:
        return False
    fmt = _INT_MARKERS.get(head[1])
    if fmt is None:
        return False
    size = struct.calcsize(fmt)
    if len(head) < 2 + size + 8:
        return False
    (n,) = struct.unpack_from(fmt, head, 2)
    at = 2 + size
    return bool(n == 7 and head[at : at + 7] == b"learner" and head[at + 7] == 0x7B)


LEGACY_PARAM = struct.Struct("<fIiiiIIIi100x")
GBTREE_PARAM = struct.Struct("<iiiiqii128x")
TREE_PARAM = struct.Struct("<iiiiii124x")
NODE = struct.Struct("<iiiIf")
STAT_SIZE = 16


def _legacy_header(head: bytes) -> tuple[int, tuple[Any, ...], str, str] | None:
    """(offset of the param, the param, objective, booster) when ``head`` reads as one."""
    at = 4 if head.startswith(b"binf") else 0
    if len(head) < at + LEGACY_PARAM.size + 16:
        return None
    param = LEGACY_PARAM.unpack_from(head, at)
    pos = at + LEGACY_PARAM.size
    names = []
    for _ in range(2):
        if len(head) < pos + 8:
            return None
        (n,) = struct.unpack_from("<Q", head, pos)
        if not 1 <= n <= 64 or len(head) < pos + 8 + n:
            return None
        raw = head[pos + 8 : pos + 8 + n]
        if not all(0x21 <= b < 0x7F for b in raw):
            return None
        names.append(raw.decode("ascii"))
        pos += 8 + n
    return at, param, names[0], names[1]


def sniff_xgboost_binary(head: bytes) -> bool:
    """``binf`` and a legacy learner header, or (no magic, as xgboost < 0.8 wrote) a
    header whose booster is one xgboost knows and whose objective names a task
    (``reg:``/``binary:``/``multi:``/``rank:``/``count:``/``survival:``)."""
    found = _legacy_header(head)
    if found is None:
        return False
    at, param, objective, booster = found
    if booster not in BOOSTERS:
        return False
    if at == 4:
        return True
    num_feature, num_class = param[1], param[2]
    return (
        objective.split(":", 1)[0] in ("reg", "binary", "multi", "rank", "count", "survival")
        and 0 < num_feature < 1 << 24
        and 0 <= num_class < 1 << 20
    )


# -- UBJSON ----------------------------------------------------------------------------------

_FIXED = {
    ord("i"): ">b",
    ord("U"): ">B",
    ord("I"): ">h",
    ord("l"): ">i",
    ord("L"): ">q",
    ord("d"): ">f",
    ord("D"): ">d",
}
_ARRAY_CODES = {ord("i"): "b", ord("U"): "B", ord("I"): "h", ord("l"): "i", ord("L"): "q"}


class SkippedArray:
    """A typed float array whose values were skipped (only its length is kept)."""

    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count


class UBJReader:
    """A bounded UBJSON reader: values count against ``max_values``, nesting against
    ``max_depth``; typed integer arrays become ``array.array`` (their bytes are in the
    file, so memory stays within the file's size), typed float arrays are skipped."""

    def __init__(self, cur: Cursor, size: int | None, max_values: int, max_depth: int) -> None:
        self.cur = cur
        self.size = size
        self.values = 0
        self.max_values = max_values
        self.max_depth = max_depth

    def _count(self, n: int = 1) -> None:
        self.values += n
        if self.values > self.max_values:
            raise Budget("budget-json-values", f"more than {self.max_values} UBJSON values")

    def _marker(self) -> int:
        while True:
            m = self.cur.read(1)[0]
            if m != ord("N"):
                return m

    def _int(self, marker: int | None = None) -> int:
        m = self._marker() if marker is None else marker
        fmt = _INT_MARKERS.get(m)
        if fmt is None:
            raise XGBoostError(f"expected an integer marker, found {bytes([m])!r}")
        (v,) = struct.unpack(fmt, self.cur.read(struct.calcsize(fmt)))
        return int(v)

    def _length(self, what: str) -> int:
        n = self._int()
        if n < 0:
            raise XGBoostError(f"negative {what} length {n}")
        if self.size is not None and n > self.size:
            raise XGBoostError(f"a {what} length of {n} in a {self.size}-byte file")
        return n

    def _string(self, limit: int) -> str:
        n = self._length("string")
        if n > limit:
            raise XGBoostError(f"a string of {n} bytes")
        return self.cur.read(n).decode("utf-8", "replace")

    def value(self, depth: int = 0, marker: int | None = None) -> Any:
        m = self._marker() if marker is None else marker
        self._count()
        if m in _FIXED:
            fmt = _FIXED[m]
            return struct.unpack(fmt, self.cur.read(struct.calcsize(fmt)))[0]
        if m == ord("Z"):
            return None
        if m == ord("T"):
            return True
        if m == ord("F"):
            return False
        if m == ord("C"):
            return chr(self.cur.read(1)[0])
        if m in (ord("S"), ord("H")):
            return self._string(MAX_STRING)
        if m in (ord("["), ord("{")):
            if depth >= self.max_depth:
                raise Budget("budget-json-depth", f"UBJSON nested deeper than {self.max_depth}")
            return self._container(m == ord("{"), depth + 1)
        raise XGBoostError(f"unknown UBJSON marker {bytes([m])!r} at offset {self.cur.tell() - 1}")

    def _container(self, is_object: bool, depth: int) -> Any:
        typ: int | None = None
        count: int | None = None
        nxt = self.cur.peek(1)
        if nxt == b"$":
            self.cur.skip(1)
            typ = self.cur.read(1)[0]
            if self.cur.read(1) != b"#":
                raise XGBoostError("a typed container without a count")
            count = self._length("container")
        elif nxt == b"#":
            self.cur.skip(1)
            count = self._length("container")
        if not is_object and typ is not None and count is not None and typ in _FIXED:
            width = struct.calcsize(_FIXED[typ])
            if self.size is not None and count * width > self.size:
                raise XGBoostError(f"a typed array of {count} values in a {self.size}-byte file")
            if typ in _ARRAY_CODES:
                out = array.array(_ARRAY_CODES[typ])
                data = self.cur.read(count * width)
                out.frombytes(data)
                if out.itemsize != width:
                    raise XGBoostError("unsupported integer width")
                out.byteswap()
                return out
            self.cur.skip(count * width)
            return SkippedArray(count)
        if count is not None:
            self._count(count)  # each holds at least one byte: bounded by the file anyway
            self.values -= count
        if is_object:
            obj: dict[str, Any] = {}
            i = 0
            while count is None or i < count:
                if count is None:
                    p = self.cur.peek(1)
                    while p == b"N":
                        self.cur.skip(1)
                        p = self.cur.peek(1)
                    if p == b"}":
                        self.cur.skip(1)
                        break
                key = self._string(MAX_KEY)
                obj[key] = self.value(depth, typ)
                i += 1
            return obj
        items: list[Any] = []
        i = 0
        while count is None or i < count:
            if count is None:
                m = self._marker()
                if m == ord("]"):
                    break
                items.append(self.value(depth, m))
            else:
                items.append(self.value(depth, typ))
            i += 1
        return items


# -- the document ----------------------------------------------------------------------------


def _int_of(v: Any, what: str) -> int:
    if isinstance(v, bool):
        raise XGBoostError(f"{what} is a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    raise XGBoostError(f"{what} is not an integer: {str(v)[:40]!r}")


def _seq(v: Any, what: str) -> Sequence[Any]:
    if isinstance(v, (list, array.array, SkippedArray)):
        return v  # type: ignore[return-value]
    raise XGBoostError(f"{what} is not an array")


def _obj(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise XGBoostError(f"{what} is not an object")
    return v


def check_tree(
    left: Sequence[int],
    right: Sequence[int],
    n: int,
    what: str,
    parents: Sequence[int] | None,
    parent_mask: int = -1,
) -> None:
    """Children form a tree rooted at node 0: every index is -1 or in ``1..n-1``, each node
    has at most one parent, both children or none, and every node is reachable; a node's
    ``parents`` entry (masked with ``parent_mask``) names the node that points to it."""
    seen = bytearray(n)
    if n:
        seen[0] = 1
    for i in range(n):
        a, b = int(left[i]), int(right[i])
        if (a == -1) != (b == -1):
            raise XGBoostError(f"{what}: node {i} has one child ({a}, {b})")
        for c in (a, b):
            if c == -1:
                continue
            if not 0 < c < n:
                raise XGBoostError(f"{what}: node {i} points to child {c}, outside 0..{n - 1}")
            if seen[c]:
                raise XGBoostError(f"{what}: node {c} has two parents (a cycle or a shared node)")
            seen[c] = 1
            if parents is not None and int(parents[c]) & parent_mask != i:
                raise XGBoostError(f"{what}: node {c} says its parent is {parents[c]}, not {i}")
    if n and not all(seen):
        raise XGBoostError(f"{what}: node {seen.index(0)} is not reachable from the root")


def _check_json_tree(tree: dict[str, Any], k: int, num_feature: int) -> int:
    what = f"tree {k}"
    param = _obj(tree.get("tree_param"), f"{what} tree_param")
    n = _int_of(param.get("num_nodes"), f"{what} num_nodes")
    if n < 1:
        raise XGBoostError(f"{what} has {n} nodes")
    arrays = {}
    for key in ("left_children", "right_children", "parents", "split_indices"):
        arr = _seq(tree.get(key), f"{what} {key}")
        if len(arr) != n:
            raise XGBoostError(f"{what}: {key} has {len(arr)} values, num_nodes is {n}")
        if isinstance(arr, SkippedArray) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in arr
        ):
            raise XGBoostError(f"{what}: {key} holds non-integers")
        arrays[key] = arr
    for key in ("split_conditions", "default_left", "base_weights"):
        if key in tree and len(_seq(tree[key], f"{what} {key}")) < n:
            raise XGBoostError(f"{what}: {key} has fewer than {n} values")
    check_tree(arrays["left_children"], arrays["right_children"], n, what, arrays["parents"])
    left, split = arrays["left_children"], arrays["split_indices"]
    for i in range(n):
        if left[i] != -1 and not 0 <= split[i] < max(num_feature, 1):
            raise XGBoostError(
                f"{what}: node {i} splits on feature {split[i]}, the model has {num_feature}"
            )
    return n


def check_document(doc: Any, ctx: Context) -> dict[str, Any]:
    """Validate an xgboost model document; returns a summary. Raises :class:`XGBoostError`."""
    root = _obj(doc, "the document")
    learner = _obj(root.get("learner"), "learner")
    version = root.get("version")
    if not isinstance(version, (list, array.array)) or len(version) != 3:
        raise XGBoostError("version is not [major, minor, patch]")
    mparam = _obj(learner.get("learner_model_param"), "learner_model_param")
    num_feature = _int_of(mparam.get("num_feature", 0), "num_feature")
    if num_feature < 0:
        raise XGBoostError(f"num_feature is {num_feature}")
    objective = _obj(learner.get("objective"), "objective").get("name")
    if not isinstance(objective, str):
        raise XGBoostError("the objective has no name")
    gbm = _obj(learner.get("gradient_booster"), "gradient_booster")
    name = gbm.get("name")
    if name not in BOOSTERS:
        raise XGBoostError(f"unknown booster {str(name)[:40]!r}")
    model = _obj(gbm.get("model") if name != "dart" else gbm.get("gbtree"), "the booster model")
    if name == "dart":
        model = _obj(model.get("model"), "the dart tree model")
    trees = nodes = 0
    if name == "gblinear":
        weights = _seq(model.get("weights"), "gblinear weights")
        if num_feature and len(weights) % (num_feature + 1):
            raise XGBoostError(
                f"gblinear has {len(weights)} weights, not a multiple of num_feature + 1"
            )
    else:
        tree_list = _seq(model.get("trees"), "trees")
        declared = _int_of(
            _obj(model.get("gbtree_model_param"), "gbtree_model_param").get("num_trees"),
            "num_trees",
        )
        if declared != len(tree_list):
            raise XGBoostError(f"num_trees is {declared} but {len(tree_list)} trees are stored")
        info = model.get("tree_info")
        if info is not None and len(_seq(info, "tree_info")) != len(tree_list):
            raise XGBoostError("tree_info and trees differ in length")
        for k, tree in enumerate(tree_list):
            if ctx.deadline.expired():
                raise TimeoutError
            nodes += _check_json_tree(_obj(tree, f"tree {k}"), k, num_feature)
        trees = len(tree_list)
    return {
        "booster": name,
        "objective": objective[:64],
        "trees": trees,
        "nodes": nodes,
        "features": num_feature,
        "version": ".".join(str(v) for v in list(version)[:3]),
    }


def _report(info: dict[str, Any], kind: str, where: Location, ctx: Context) -> None:
    ctx.emit("xgboost.model", str(info["booster"]), where, encoding=kind, **info)


def scan_xgboost_json(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    limit = ctx.limits.max_member_read
    raw = src.read(limit + 1)
    if len(raw) > limit:
        ctx.anomaly("budget-json-bytes", where, f"an xgboost JSON model over {limit} bytes")
        return
    try:
        doc = jsonbudget.loads(raw, ctx.limits)
    except jsonbudget.JsonBudgetExceeded as exc:
        ctx.anomaly(exc.what, where, exc.message)
        return
    except (ValueError, RecursionError) as exc:
        ctx.anomaly("xgboost-malformed", where, f"not a valid xgboost JSON model: {exc}")
        return
    try:
        info = check_document(doc, ctx)
    except TimeoutError:
        ctx.anomaly("budget-time", where, f"more than {ctx.deadline.seconds:.0f}s to walk")
        return
    except XGBoostError as exc:
        ctx.anomaly("xgboost-malformed", where, f"not a valid xgboost model: {exc}")
        return
    _report(info, "json", where, ctx)


def scan_xgboost_ubjson(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    cur = Cursor(src, ctx.deadline)
    reader = UBJReader(cur, length, ctx.limits.max_json_values, ctx.limits.max_json_depth)
    try:
        doc = reader.value()
        if not cur.at_end():
            raise XGBoostError(f"data after the document at offset {cur.tell()}")
        info = check_document(doc, ctx)
    except Budget as exc:
        ctx.anomaly(exc.what, where, str(exc))
        return
    except TimeoutError:
        ctx.anomaly("budget-time", where, f"more than {ctx.deadline.seconds:.0f}s to walk")
        return
    except (XGBoostError, Truncated, TooLong, struct.error) as exc:
        ctx.anomaly("xgboost-malformed", where, f"not a valid xgboost UBJSON model: {exc}")
        return
    _report(info, "ubjson", where, ctx)


def _legacy_string(cur: Cursor, what: str) -> str:
    (n,) = cur.unpack("<Q")
    assert isinstance(n, int)
    if n > 1 << 16:
        raise XGBoostError(f"the {what} name is {n} bytes long")
    return cur.read(n).decode("utf-8", "replace")


def parse_legacy(src: Source, size: int | None, ctx: Context) -> dict[str, Any]:
    cur = Cursor(src, ctx.deadline)
    if cur.peek(4) == b"binf":
        cur.skip(4)
    param = LEGACY_PARAM.unpack(cur.read(LEGACY_PARAM.size))
    num_feature = int(param[1])
    objective = _legacy_string(cur, "objective")
    booster = _legacy_string(cur, "booster")
    if booster not in BOOSTERS:
        raise XGBoostError(f"unknown booster {booster[:40]!r}")
    trees = nodes = 0
    if booster != "gblinear":
        num_trees, _roots, _nf, _pad, _pbuf, groups, _leaf = GBTREE_PARAM.unpack(
            cur.read(GBTREE_PARAM.size)
        )
        if num_trees < 0 or groups < 0:
            raise XGBoostError(f"{num_trees} trees, {groups} output groups")
        if size is not None and num_trees * TREE_PARAM.size > size:
            raise XGBoostError(f"{num_trees} trees declared in a {size}-byte file")
        for k in range(num_trees):
            if ctx.deadline.expired():
                raise TimeoutError
            _roots, n, _deleted, _depth, _nf, _leaf = TREE_PARAM.unpack(cur.read(TREE_PARAM.size))
            if n < 1:
                raise XGBoostError(f"tree {k} has {n} nodes")
            need = n * (NODE.size + STAT_SIZE)
            if size is not None and need > size - cur.tell():
                raise XGBoostError(f"tree {k} declares {n} nodes, past the end of the file")
            raw = cur.read(n * NODE.size)
            left = array.array("i")
            right = array.array("i")
            parents = array.array("i")
            for parent, a, b, sindex, _v in NODE.iter_unpack(raw):
                parents.append(parent)
                left.append(a)
                right.append(b)
                feature = sindex & 0x7FFFFFFF
                if a != -1 and num_feature and feature >= num_feature:
                    raise XGBoostError(
                        f"tree {k}: a node splits on feature {feature}, the model has {num_feature}"
                    )
            # the legacy parent field keeps "is left child" in its top bit
            check_tree(left, right, n, f"tree {k}", parents, 0x7FFFFFFF)
            cur.skip(n * STAT_SIZE)
            nodes += n
        cur.skip(num_trees * 4)
        trees = num_trees
    return {
        "booster": booster,
        "objective": objective[:64],
        "trees": trees,
        "nodes": nodes,
        "features": num_feature,
        "version": f"{param[5]}.{param[6]}",
    }


def scan_xgboost_binary(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    try:
        info = parse_legacy(src, length, ctx)
    except TimeoutError:
        ctx.anomaly("budget-time", where, f"more than {ctx.deadline.seconds:.0f}s to walk")
        return
    except (XGBoostError, Truncated, TooLong, struct.error) as exc:
        ctx.anomaly("xgboost-malformed", where, f"not a valid xgboost binary model: {exc}")
        return
    _report(info, "binary", where, ctx)
