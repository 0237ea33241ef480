"""CatBoost binary models (``.cbm``, ``save_model(format="cbm")``): the ``CBM1`` header and
the flatbuffer model core, read by seeking (a 1 GiB model costs a few small reads).

Format (catboost ``libs/model/model.cpp`` ``TFullModel::Save``,
``libs/model/flatbuffers/model.fbs``)::

    "CBM1"  u32 LE core size  core (a flatbuffer, root table TModelCore)  model parts...
    TModelCore     0 FormatVersion: string ("FlabuffersModel_v1")   1 ModelTrees: TModelTrees
                   2 InfoMap: [TKeyValue {Key: string, Value: string}]  3 ModelPartIds: [string]
    TModelTrees    0 ApproxDimension: int  1 TreeSplits: [int]  2 TreeSizes: [int]
                   3 TreeStartOffsets: [int]  4-7 Cat/Float/OneHot/Ctr features: [table]
                   8 LeafValues: [double]  9 LeafWeights: [double]
                   10 NonSymmetricStepNodes: [struct {u16 left, u16 right}]
                   11 NonSymmetricNodeIdToLeafId: [u32]

Flatbuffers (https://flatbuffers.dev/internals/, little-endian): the buffer starts with a u32
offset to the root table; a table starts with an i32 ``soffset`` back to its vtable (u16
vtable size, u16 table size, u16 field offsets, 0 = absent); offset fields hold a u32
relative to where they sit; a string is u32 length + bytes + NUL, a vector u32 count +
elements. Model parts after the core (``ModelPartIds`` names them: CTR tables, text and
embedding processing) are CatBoost's own serialisation of numbers; they are not walked.

No field of a CatBoost model is code: loading builds trees and numbers. The loader does
verify the flatbuffer before reading it, but a tree table whose sizes disagree (splits vs
tree sizes, leaf values vs ``2**depth``, step nodes leaving their tree) is what the
evaluator indexes with; these and offsets outside the buffer are reported (M220).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from ..limits import Deadline
from ..model import Location
from .base import Context

MAGIC = b"CBM1"
CORE_VERSION = b"FlabuffersModel_v1"
MAX_DEPTH = 32
MAX_READ = 64 << 20


class CatBoostError(Exception):
    pass


def sniff_catboost(head: bytes) -> bool:
    """``CBM1``, a core size, and a flatbuffer root offset inside the core."""
    if len(head) < 16 or not head.startswith(MAGIC):
        return False
    size, root = struct.unpack_from("<II", head, 4)
    return bool(size >= 8 and 4 <= root < size)


class FlatBuffer:
    """Bounded reads of a flatbuffer that sits at ``base`` (``size`` bytes) in ``f``."""

    def __init__(self, f: BinaryIO, base: int, size: int) -> None:
        self.f = f
        self.base = base
        self.size = size
        self.reads = 0

    def get(self, off: int, n: int, what: str) -> bytes:
        if off < 0 or n < 0 or off + n > self.size:
            raise CatBoostError(f"{what} at {off}+{n} lies outside the {self.size}-byte core")
        if n > MAX_READ:
            raise CatBoostError(f"{what} is {n} bytes long")
        self.reads += 1
        self.f.seek(self.base + off)
        data = self.f.read(n)
        if len(data) != n:
            raise CatBoostError(f"{what} runs past the end of the file")
        return data

    def u32(self, off: int, what: str) -> int:
        return int(struct.unpack("<I", self.get(off, 4, what))[0])

    def table(self, pos: int, what: str) -> dict[int, int]:
        """Field number -> absolute offset of its value, for the table at ``pos``."""
        (soff,) = struct.unpack("<i", self.get(pos, 4, what))
        vt = pos - soff
        vsize, tsize = struct.unpack("<HH", self.get(vt, 4, f"{what} vtable"))
        if vsize < 4 or vsize % 2:
            raise CatBoostError(f"{what} vtable has size {vsize}")
        self.get(pos, tsize, f"{what} body")
        raw = self.get(vt + 4, vsize - 4, f"{what} vtable")
        out = {}
        for i, (off,) in enumerate(struct.iter_unpack("<H", raw)):
            if off:
                if off >= tsize:
                    raise CatBoostError(f"{what} field {i} sits outside its table")
                out[i] = pos + off
        return out

    def ref(self, at: int, what: str) -> int:
        return at + self.u32(at, what)

    def vector(self, at: int, width: int, what: str) -> tuple[int, int]:
        """(count, offset of the first element) of the vector the field at ``at`` points to."""
        pos = self.ref(at, what)
        n = self.u32(pos, what)
        if n * width > self.size:
            raise CatBoostError(f"{what} declares {n} elements in a {self.size}-byte core")
        if pos + 4 + n * width > self.size:
            raise CatBoostError(f"{what} ({n} elements) runs past the end of the core")
        return n, pos + 4

    def string(self, at: int, what: str, limit: int = 1 << 20) -> bytes:
        pos = self.ref(at, what)
        n = self.u32(pos, what)
        if n > limit:
            raise CatBoostError(f"{what} is a {n}-byte string")
        return self.get(pos + 4, n, what)

    def ints(self, at: int, what: str) -> list[int]:
        n, pos = self.vector(at, 4, what)
        return [v for (v,) in struct.iter_unpack("<i", self.get(pos, n * 4, what))]


def _trees(fb: FlatBuffer, pos: int) -> dict[str, int]:
    t = fb.table(pos, "ModelTrees")
    dim = 1
    if 0 in t:
        (dim,) = struct.unpack("<i", fb.get(t[0], 4, "ApproxDimension"))
    if dim < 1:
        raise CatBoostError(f"ApproxDimension is {dim}")
    splits = fb.vector(t[1], 4, "TreeSplits")[0] if 1 in t else 0
    sizes = fb.ints(t[2], "TreeSizes") if 2 in t else []
    if any(s < 0 for s in sizes):
        raise CatBoostError("a negative tree size")
    if sum(sizes) != splits:
        raise CatBoostError(f"the tree sizes add up to {sum(sizes)}, {splits} splits are stored")
    if 3 in t:
        starts = fb.ints(t[3], "TreeStartOffsets")
        expect, acc = [], 0
        for s in sizes:
            expect.append(acc)
            acc += s
        if starts != expect:
            raise CatBoostError("TreeStartOffsets disagree with TreeSizes")
    leaves = fb.vector(t[8], 8, "LeafValues")[0] if 8 in t else 0
    if 9 in t and fb.vector(t[9], 8, "LeafWeights")[0] * dim not in (0, leaves):
        raise CatBoostError("LeafWeights and LeafValues differ in length")
    steps, at = fb.vector(t[10], 4, "NonSymmetricStepNodes") if 10 in t else (0, 0)
    if steps:  # non-symmetric trees: one step node per split
        if steps != splits:
            raise CatBoostError(f"{steps} step nodes for {splits} splits")
        if 11 in t and fb.vector(t[11], 4, "NonSymmetricNodeIdToLeafId")[0] != steps:
            raise CatBoostError("NonSymmetricNodeIdToLeafId and the step nodes differ in length")
        raw = fb.get(at, steps * 4, "NonSymmetricStepNodes")
        node = 0
        for s in sizes:
            end = node + s
            for i in range(node, end):
                left, right = struct.unpack_from("<HH", raw, i * 4)
                if (left and i + left >= end) or (right and i + right >= end):
                    raise CatBoostError(f"step node {i} jumps outside its tree")
            node = end
    else:
        if any(s > MAX_DEPTH for s in sizes):
            raise CatBoostError(f"a symmetric tree deeper than {MAX_DEPTH}")
        expect_leaves = sum(1 << s for s in sizes) * dim
        if leaves != expect_leaves:
            raise CatBoostError(
                f"{leaves} leaf values stored, the {len(sizes)} symmetric trees need "
                f"{expect_leaves}"
            )
    return {"trees": len(sizes), "splits": splits, "leaves": leaves, "dimension": dim}


def parse_catboost(
    f: BinaryIO, start: int, length: int, deadline: Deadline
) -> dict[str, int | str]:
    f.seek(start)
    head = f.read(8)
    if len(head) < 8 or not head.startswith(MAGIC):
        raise CatBoostError("no CBM1 header")
    (size,) = struct.unpack_from("<I", head, 4)
    if size > length - 8:
        raise CatBoostError(f"the core declares {size} bytes, {length - 8} follow the header")
    fb = FlatBuffer(f, start + 8, size)
    root = fb.ref(0, "the root offset")
    core = fb.table(root, "ModelCore")
    if 0 not in core:
        raise CatBoostError("the core has no FormatVersion")
    version = fb.string(core[0], "FormatVersion", 256)
    if version != CORE_VERSION:
        raise CatBoostError(f"unknown core format {version[:40]!r}")
    if 1 not in core:
        raise CatBoostError("the core has no trees")
    info = _trees(fb, fb.ref(core[1], "ModelTrees"))
    keys = 0
    if 2 in core:
        n, at = fb.vector(core[2], 4, "InfoMap")
        for i in range(n):
            if not i & 0x3FF and deadline.expired():
                raise TimeoutError
            kv = fb.table(fb.ref(at + 4 * i, "InfoMap entry"), "InfoMap entry")
            if 0 not in kv or 1 not in kv:
                raise CatBoostError(f"InfoMap entry {i} lacks its key or value")
            fb.string(kv[0], "InfoMap key")
            fb.string(kv[1], "InfoMap value", MAX_READ)
        keys = n
    parts: list[str] = []
    if 3 in core:
        n, at = fb.vector(core[3], 4, "ModelPartIds")
        for i in range(n):
            if not i & 0x3FF and deadline.expired():
                raise TimeoutError
            parts.append(
                fb.string(at + 4 * i, "ModelPartIds entry", 256).decode("ascii", "replace")
            )
    rest = length - 8 - size
    if not parts and rest:
        raise CatBoostError(f"{rest} bytes after a core that lists no model parts")
    if parts and not rest:
        raise CatBoostError(f"the core lists model parts {parts} but the file ends there")
    return {**info, "info_keys": keys, "parts": ",".join(parts) or "(none)"}


def scan_catboost(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str
) -> None:
    try:
        info = parse_catboost(f, start, length, ctx.deadline)
    except TimeoutError:
        ctx.anomaly("budget-time", where, f"more than {ctx.deadline.seconds:.0f}s to walk")
        return
    except (CatBoostError, struct.error) as exc:
        ctx.anomaly("catboost-malformed", where, f"not a valid CatBoost model: {exc}")
        return
    ctx.emit(
        "catboost.model",
        str(info["trees"]),
        where,
        splits=info["splits"],
        leaves=info["leaves"],
        dimension=info["dimension"],
        info_keys=info["info_keys"],
        parts=info["parts"],
    )
