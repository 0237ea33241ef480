"""ExecuTorch programs (``.pte``): a flatbuffer (``schema/program.fbs`` of pytorch/executorch).

Normatively: bytes 0-3 are the little-endian offset of the root ``Program`` table, bytes 4-7
the file identifier ``ET<NN>`` (``ET12`` today). An optional extended header follows at
offset 8: ``eh00``, its length (u32), the flatbuffer's size (u64) and the offset where data
segments start (u64). A table starts with an ``int32`` back-offset to its vtable (``u16``
vtable size, ``u16`` table size, one ``u16`` field offset per field, 0 = absent); strings
and vectors are reached by ``uint32`` forward offsets and start with a ``uint32`` length.

Read (field numbers from the schema): ``Program`` {0 version, 1 execution_plan,
3 backend_delegate_data, 4 segments}; ``ExecutionPlan`` {0 name, 6 operators,
7 delegates}; ``Operator`` {0 name, 1 overload}; ``BackendDelegate`` {0 id,
1 processed: ``BackendDelegateDataReference`` {0 location (0 inline, 1 segment), 1 index}};
``DataSegment`` {0 offset, 1 size}. Every offset is bounds-checked, every count bounded by
the bytes it needs, and the number of elements visited is budgeted.

Operators are ``<ns>::<name>``: ``aten`` ones are checked like TorchScript's
(:mod:`.torchscript`), ExecuTorch's own namespaces are accepted, any other is a custom op
(``torch.custom-op``). Each delegate's backend id is reported (``torch.delegate``): the
processed blob is the backend's own compiled format, which no scan reads.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from ..model import Location
from .base import Context
from .torchscript import torch_ops

MAX_PROGRAM = 256 << 20  # bytes of flatbuffer read
MAX_ELEMENTS = 1_000_000  # vector elements visited
# ExecuTorch's own operator namespaces (runtime kernels shipped with executorch)
EXECUTORCH_NAMESPACES = frozenset(
    {"executorch_prim", "dim_order_ops", "quantized_decomposed", "et_copy"}
)


def sniff_pte(head: bytes) -> bool:
    return len(head) >= 8 and head[4:6] == b"ET" and head[6:8].isdigit()


class _Bad(Exception):
    pass


class _FB:
    __slots__ = ("b", "left")

    def __init__(self, b: bytes) -> None:
        self.b = b
        self.left = MAX_ELEMENTS

    def _u(self, fmt: str, at: int) -> int:
        size = struct.calcsize(fmt)
        if at < 0 or at + size > len(self.b):
            raise _Bad(f"offset {at} out of bounds")
        value: int = struct.unpack_from(fmt, self.b, at)[0]
        return value

    def table(self, at: int) -> tuple[int, int, int]:
        vt = at - self._u("<i", at)
        vlen = self._u("<H", vt)
        if vlen < 4 or vlen % 2 or vt + vlen > len(self.b):
            raise _Bad(f"bad vtable at {vt}")
        return at, vt, vlen

    def field(self, t: tuple[int, int, int], i: int) -> int | None:
        at, vt, vlen = t
        slot = 4 + 2 * i
        if slot >= vlen:
            return None
        off = self._u("<H", vt + slot)
        return at + off if off else None

    def ref(self, t: tuple[int, int, int], i: int) -> int | None:
        p = self.field(t, i)
        return None if p is None else p + self._u("<I", p)

    def string(self, t: tuple[int, int, int], i: int) -> str | None:
        s = self.ref(t, i)
        if s is None:
            return None
        n = self._u("<I", s)
        if s + 4 + n > len(self.b):
            raise _Bad(f"string at {s} runs past the end")
        return self.b[s + 4 : s + 4 + n].decode("utf-8", "replace")

    def tables(self, t: tuple[int, int, int], i: int) -> list[tuple[int, int, int]]:
        v = self.ref(t, i)
        if v is None:
            return []
        n = self._u("<I", v)
        if v + 4 + 4 * n > len(self.b):
            raise _Bad(f"vector at {v} declares {n} elements past the end")
        self.left -= n
        if self.left < 0:
            raise _Bad("budget")
        out = []
        for k in range(n):
            e = v + 4 + 4 * k
            out.append(self.table(e + self._u("<I", e)))
        return out

    def scalar(self, t: tuple[int, int, int], i: int, fmt: str) -> int:
        p = self.field(t, i)
        return 0 if p is None else self._u(fmt, p)


def scan_pte(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str
) -> None:
    """An ExecuTorch program (registry format ``executorch``)."""
    f.seek(start)
    head = f.read(min(32, length))
    size = length
    if head[8:12] == b"eh00" and len(head) >= 32:
        hlen, psize, seg_base = struct.unpack_from("<IQQ", head, 12)
        if hlen < 24 or psize > length or seg_base > length:
            ctx.anomaly("pte-invalid", where, "extended header sizes exceed the file")
            return
        size = psize or length
    if size > MAX_PROGRAM:
        ctx.anomaly(
            "budget-member-size", where, f"program flatbuffer larger than {MAX_PROGRAM} bytes"
        )
        return
    f.seek(start)
    fb = _FB(f.read(size))
    try:
        _walk(fb, where, ctx)
    except _Bad as exc:
        if str(exc) == "budget":
            ctx.anomaly("budget-members", where, f"more than {MAX_ELEMENTS} flatbuffer elements")
        else:
            ctx.anomaly("pte-invalid", where, f"flatbuffer: {exc}")
    except RecursionError:
        ctx.anomaly("pte-invalid", where, "flatbuffer nests too deeply")


def _walk(fb: _FB, where: Location, ctx: Context) -> None:
    ops = torch_ops()
    program = fb.table(fb._u("<I", 0))
    inline = fb.tables(program, 3)
    segments = fb.tables(program, 4)
    for p, plan in enumerate(fb.tables(program, 1)):
        pname = fb.string(plan, 0) or f"#{p}"
        for i, op in enumerate(fb.tables(plan, 6)):
            full = fb.string(op, 0) or ""
            overload = fb.string(op, 1) or ""
            ns, sep, opname = full.partition("::")
            key = f"execution_plan[{pname}].operators[{i}]"
            if not sep or not ns or not opname:
                ctx.anomaly("pte-invalid", where.at(key=key), f"operator name `{full[:80]}`")
                continue
            if ns in EXECUTORCH_NAMESPACES:
                continue
            hit = ops.classify(ns, opname.split(".", 1)[0])
            if hit:
                shown = f"operator {full}.{overload}" if overload else f"operator {full}"
                ctx.emit(
                    hit[0], f"{ns}::{opname}", where.at(key=key), shown,
                    what=hit[1], via="operator table", format="executorch",
                )  # fmt: skip
        for d, dlg in enumerate(fb.tables(plan, 7)):
            backend = fb.string(dlg, 0) or ""
            key = f"execution_plan[{pname}].delegates[{d}]"
            ref = fb.ref(dlg, 1)
            blob = "no processed data"
            if ref is not None:
                proc = fb.table(ref)
                loc, idx = fb.scalar(proc, 0, "<B"), fb.scalar(proc, 1, "<I")
                pool = inline if loc == 0 else segments
                if idx >= len(pool):
                    message = f"delegate data index {idx} past the {len(pool)} entries"
                    ctx.anomaly("pte-invalid", where.at(key=key), message)
                    continue
                blob = f"{'inline' if loc == 0 else 'segment'} data #{idx}"
            shown = f"delegate {backend[:120]!r}: {blob}"
            ctx.emit("torch.delegate", backend[:120], where.at(key=key), shown, what=blob)
