"""LightGBM text models (``model.txt``, ``Booster.save_model``), walked line by line under a
line-length budget; never loaded.

Format (LightGBM ``src/boosting/gbdt_model_text.cpp`` ``SaveModelToString`` and
``src/io/tree.cpp`` ``Tree::ToString``)::

    tree
    version=v4                       (v2, v3 or v4)
    num_class=K  num_tree_per_iteration=K  label_index=0  max_feature_idx=F-1
    objective=...  feature_names=...  feature_infos=...  tree_sizes=s0 s1 ...
    <blank>
    Tree=i                           one block per tree; with tree_sizes, block i starts
    num_leaves=L  num_cat=C          exactly sum(s0..s(i-1)) bytes after block 0 (the
    split_feature= split_gain= threshold= decision_type=      loader seeks there in parallel)
    left_child= right_child= internal_value= internal_weight= internal_count=   L-1 values
    leaf_value= leaf_weight= leaf_count=                                          L values
    cat_boundaries= (C+1) cat_threshold= (cat_boundaries[C])     when C > 0
    is_linear=0|1 (1: leaf_const= num_features= leaf_features= leaf_coeff=)  shrinkage=
    end of trees
    feature_importances: ... parameters: ... end of parameters
    pandas_categorical:<JSON>

A child index ``c >= 0`` is internal node ``c``; ``c < 0`` is leaf ``~c``. Everything is
numbers and strings (``pandas_categorical`` is read with ``json.loads``): loading runs no
code. What the C++ loader trusts and this walk checks: children inside their arrays and
forming one tree, arrays as long as ``num_leaves`` says, split features up to
``max_feature_idx``, categorical thresholds inside ``cat_boundaries``, and ``tree_sizes``
that land on each ``Tree=`` line (a wrong one sends the parallel loader's pointer past the
model). Anything else is reported (M220).
"""

from __future__ import annotations

from ..model import Location
from .base import Context
from .datareader import Cursor, TooLong, Truncated
from .streams import Source

VERSIONS = (b"v2", b"v3", b"v4")
MAX_LINE = 64 << 20
INTERNAL = (
    "split_feature",
    "split_gain",
    "threshold",
    "decision_type",
    "left_child",
    "right_child",
    "internal_value",
    "internal_weight",
    "internal_count",
)
LEAVES = ("leaf_value", "leaf_weight", "leaf_count")


class LightGBMError(Exception):
    pass


def sniff_lightgbm(head: bytes) -> bool:
    """``tree`` then ``version=v2|v3|v4`` on the first two lines (what every LightGBM
    writer since 2.0 puts first)."""
    for eol in (b"\n", b"\r\n"):
        prefix = b"tree" + eol + b"version="
        if head.startswith(prefix):
            rest = head[len(prefix) :]
            return rest[:2] in VERSIONS and rest[2:3] in (b"\n", b"\r")
    return False


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split()]
    except ValueError:
        raise LightGBMError(f"{what} holds a value that is not an integer") from None


def _int(fields: dict[str, str], key: str, what: str) -> int:
    if key not in fields:
        raise LightGBMError(f"{what} has no {key}")
    vals = _ints(fields[key], f"{what} {key}")
    if len(vals) != 1:
        raise LightGBMError(f"{what} {key} is not one integer")
    return vals[0]


def check_lgb_tree(fields: dict[str, str], what: str, max_feature: int) -> int:
    leaves = _int(fields, "num_leaves", what)
    cats = _int(fields, "num_cat", what) if "num_cat" in fields else 0
    if leaves < 1 or cats < 0:
        raise LightGBMError(f"{what} has {leaves} leaves and {cats} categorical splits")
    if "leaf_value" not in fields or len(fields["leaf_value"].split()) != leaves:
        raise LightGBMError(f"{what}: leaf_value does not hold {leaves} values")
    if leaves == 1:
        return 1
    inner = leaves - 1
    for key in INTERNAL:
        if key not in fields:
            if key in ("internal_value", "internal_weight", "internal_count", "split_gain"):
                continue
            raise LightGBMError(f"{what} has no {key}")
        if len(fields[key].split()) != inner:
            raise LightGBMError(f"{what}: {key} does not hold {inner} values")
    for key in LEAVES[1:]:
        if key in fields and len(fields[key].split()) != leaves:
            raise LightGBMError(f"{what}: {key} does not hold {leaves} values")
    left = _ints(fields["left_child"], f"{what} left_child")
    right = _ints(fields["right_child"], f"{what} right_child")
    seen_inner = bytearray(inner)
    seen_inner[0] = 1
    seen_leaf = bytearray(leaves)
    for i in range(inner):
        for c in (left[i], right[i]):
            if c >= 0:
                if not 0 < c < inner or seen_inner[c]:
                    raise LightGBMError(
                        f"{what}: node {i} points to internal node {c}, outside 1..{inner - 1} "
                        "or already used (a cycle or a shared node)"
                    )
                seen_inner[c] = 1
            else:
                leaf = ~c
                if leaf >= leaves or seen_leaf[leaf]:
                    raise LightGBMError(
                        f"{what}: node {i} points to leaf {leaf}, outside 0..{leaves - 1} "
                        "or already used"
                    )
                seen_leaf[leaf] = 1
    if not all(seen_inner) or not all(seen_leaf):
        raise LightGBMError(f"{what}: some nodes or leaves are not reachable from the root")
    features = _ints(fields["split_feature"], f"{what} split_feature")
    if any(not 0 <= f <= max_feature for f in features):
        raise LightGBMError(f"{what} splits on a feature outside 0..{max_feature}")
    decision = _ints(fields["decision_type"], f"{what} decision_type")
    categorical = [i for i, d in enumerate(decision) if d & 1]
    if categorical:
        if cats < 1 or "cat_boundaries" not in fields or "cat_threshold" not in fields:
            raise LightGBMError(f"{what} has categorical splits but no category table")
        bounds = _ints(fields["cat_boundaries"], f"{what} cat_boundaries")
        if len(bounds) != cats + 1 or bounds[0] != 0 or bounds != sorted(bounds):
            raise LightGBMError(f"{what}: cat_boundaries is not {cats + 1} rising offsets")
        if len(fields["cat_threshold"].split()) != bounds[-1]:
            raise LightGBMError(f"{what}: cat_threshold does not hold {bounds[-1]} words")
        thresholds = fields["threshold"].split()
        for i in categorical:
            try:
                idx = int(float(thresholds[i]))
            except ValueError:
                raise LightGBMError(f"{what}: threshold {i} is not a number") from None
            if not 0 <= idx < cats:
                raise LightGBMError(f"{what}: categorical split {i} names category set {idx}")
    if fields.get("is_linear", "0").strip() == "1":
        nfeat = _ints(fields.get("num_features", ""), f"{what} num_features")
        if len(nfeat) != leaves or any(n < 0 for n in nfeat):
            raise LightGBMError(f"{what}: num_features does not hold {leaves} counts")
        total = sum(nfeat)
        for key in ("leaf_features", "leaf_coeff"):
            if len(fields.get(key, "").split()) != total:
                raise LightGBMError(f"{what}: {key} does not hold {total} values")
        linear = _ints(fields["leaf_features"], f"{what} leaf_features")
        if any(not 0 <= f <= max_feature for f in linear):
            raise LightGBMError(f"{what}: a linear leaf uses a feature outside 0..{max_feature}")
    return leaves


def parse_lightgbm(src: Source, ctx: Context) -> dict[str, int | str]:
    cur = Cursor(src, ctx.deadline)

    def line() -> str:
        return cur.until(b"\n", MAX_LINE).rstrip(b"\r").decode("utf-8", "replace")

    if line() != "tree":
        raise LightGBMError("the first line is not `tree`")
    header: dict[str, str] = {}
    text = line()
    while text:
        key, _, value = text.partition("=")  # a bare key is a flag (average_output)
        header[key] = value
        text = line()
    version = header.get("version", "")
    if version.encode() not in VERSIONS:
        raise LightGBMError(f"unknown version {version[:20]!r}")
    max_feature = _int(header, "max_feature_idx", "the header")
    num_class = _int(header, "num_class", "the header")
    per_iter = _int(header, "num_tree_per_iteration", "the header")
    if max_feature < -1 or num_class < 1 or per_iter < 1:
        raise LightGBMError("max_feature_idx, num_class or num_tree_per_iteration out of range")
    if "feature_names" in header and len(header["feature_names"].split()) != max_feature + 1:
        raise LightGBMError(f"feature_names does not hold {max_feature + 1} names")
    sizes = _ints(header["tree_sizes"], "tree_sizes") if "tree_sizes" in header else None
    # blank lines, then the trees
    start = cur.tell()
    text = line()
    while not text:
        start = cur.tell()
        text = line()
    trees = leaves = 0
    first = start
    while text.startswith("Tree="):
        if _ints(text[5:], "Tree=") != [trees]:
            raise LightGBMError(f"tree {trees} is numbered {text[5:25]!r}")
        if sizes is not None:
            if trees >= len(sizes):
                raise LightGBMError(f"more trees than tree_sizes lists ({len(sizes)})")
            expect = first + sum(sizes[:trees])
            if start != expect:
                raise LightGBMError(
                    f"tree {trees} starts at byte {start}, tree_sizes puts it at {expect}"
                )
        fields: dict[str, str] = {}
        text = line()
        while text:
            key, sep, value = text.partition("=")
            if not sep:
                raise LightGBMError(f"tree {trees}: line without `=`: {text[:60]!r}")
            fields[key] = value
            text = line()
        leaves += check_lgb_tree(fields, f"tree {trees}", max_feature)
        trees += 1
        start = cur.tell()
        text = line()
        while not text:
            start = cur.tell()
            text = line()
    if sizes is not None:
        if trees != len(sizes):
            raise LightGBMError(f"tree_sizes lists {len(sizes)} trees, {trees} are stored")
        if any(s <= 0 for s in sizes) or start != first + sum(sizes):
            raise LightGBMError("tree_sizes does not add up to the trees' bytes")
    if text != "end of trees":
        raise LightGBMError(f"expected `end of trees`, found {text[:60]!r}")
    if trees % per_iter:
        raise LightGBMError(f"{trees} trees is not a multiple of {per_iter} per iteration")
    # the rest (feature importances, parameters, pandas_categorical) is read line by line
    # under the same budget; its content is informational
    try:
        while not cur.at_end():
            line()
    except Truncated:
        pass  # a last line without a newline
    return {"version": version, "trees": trees, "leaves": leaves, "features": max_feature + 1}


def scan_lightgbm(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    try:
        info = parse_lightgbm(src, ctx)
    except TimeoutError:
        ctx.anomaly("budget-time", where, f"more than {ctx.deadline.seconds:.0f}s to walk")
        return
    except TooLong:
        ctx.anomaly("budget-line", where, f"a line longer than {MAX_LINE} bytes; not walked")
        return
    except (LightGBMError, Truncated) as exc:
        ctx.anomaly("lightgbm-malformed", where, f"not a valid LightGBM model: {exc}")
        return
    ctx.emit(
        "lightgbm.model",
        str(info["version"]),
        where,
        trees=info["trees"],
        leaves=info["leaves"],
        features=info["features"],
    )
