"""Flax msgpack checkpoints (``flax.serialization.to_bytes`` / ``msgpack_serialize``:
``flax_model.msgpack`` on the Hugging Face Hub), walked with a bounded msgpack reader; array
buffers are skipped by seeking, never read.

msgpack (https://github.com/msgpack/msgpack/blob/master/spec.md, big-endian)::

    nil c0  false/true c2/c3  int: 00-7f, e0-ff, cc-cf (u8..u64), d0-d3 (i8..i64)
    float ca (f32) cb (f64)   str: a0-bf (fixstr), d9/da/db (len u8/u16/u32) + UTF-8
    bin c4/c5/c6 (len u8/u16/u32) + bytes    array 90-9f, dc (u16 n), dd (u32 n)
    map 80-8f, de (u16 n), df (u32 n): n key/value pairs
    ext d4-d8 (fixext 1/2/4/8/16: i8 type + data), c7/c8/c9 (len u8/u16/u32, i8 type, data)

Flax (``flax/serialization.py``): the checkpoint is a map of string keys (a state dict;
tuples and lists become maps keyed "0", "1", ...). Leaves are msgpack scalars, strings or
ext values: type 1 ``ndarray`` = msgpack ``[shape: [int], dtype: str, buffer: bin]``
(``np.frombuffer(buffer, dtype).reshape(shape)``), type 2 native ``complex`` = ``[real,
imag]``, type 3 numpy scalar = the same payload as type 1. Arrays over 2**30 bytes are split
into ``{"__msgpack_chunked_array__": true, "shape": {"0": d0, ...}, "chunks": {"0": arr,
...}}``.

Loading builds numbers, strings and NumPy arrays from declared dtypes: no code runs. What is
checked (M221): the msgpack structure inside its byte and depth budgets, ext types Flax
writes, dtype names that are plain numeric NumPy/ml_dtypes names (no object or structured
dtype, which ``np.dtype(name)`` would build from attacker text), shapes whose element count
times the item size equals the buffer, chunked arrays whose chunks add up to their shape.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from ..limits import Deadline
from ..model import Location
from .base import Context
from .datareader import Cursor, TooLong, Truncated
from .streams import BytesSource, Source

EXT_NDARRAY, EXT_COMPLEX, EXT_SCALAR = 1, 2, 3
CHUNKED = "__msgpack_chunked_array__"
MAX_KEY = 1 << 16
MAX_STR = 16 << 20
MAX_NDIM = 64
ITEMSIZE = {
    "bool": 1,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "uint32": 4,
    "int64": 8,
    "uint64": 8,
    "float16": 2,
    "bfloat16": 2,
    "float32": 4,
    "float64": 8,
    "complex64": 8,
    "complex128": 16,
    # ml_dtypes (jax)
    "float8_e4m3fn": 1,
    "float8_e4m3fnuz": 1,
    "float8_e4m3b11fnuz": 1,
    "float8_e5m2": 1,
    "float8_e5m2fnuz": 1,
    "float8_e3m4": 1,
    "float8_e4m3": 1,
    "float8_e8m0fnu": 1,
    "float4_e2m1fn": 1,
    "int4": 1,
    "uint4": 1,
    "int2": 1,
    "uint2": 1,
}


class MsgpackError(Exception):
    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key or None


class Budget(Exception):
    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


class Ext:
    """An ext value: its type, and for arrays (types 1, 3) shape, dtype and element count."""

    __slots__ = ("code", "dtype", "elements", "shape")

    def __init__(self, code: int, shape: tuple[int, ...] = (), dtype: str = "") -> None:
        self.code = code
        self.shape = shape
        self.dtype = dtype
        self.elements = math.prod(shape)


class Reader:
    """Bounded msgpack reading from a :class:`Cursor`; bins and array buffers are skipped."""

    def __init__(
        self,
        cur: Cursor,
        size: int | None,
        max_values: int,
        max_depth: int,
        deadline: Deadline | None = None,
    ) -> None:
        self.cur = cur
        self.deadline = deadline
        self.size = size
        self.values = 0
        self.max_values = max_values
        self.max_depth = max_depth
        self.arrays = 0
        self.array_bytes = 0
        self.flax_ext = 0  # ext values of Flax's types met, well-formed or not
        self.array_headers = 0  # arrays whose shape, dtype and buffer length agree

    def _n(self, fmt: str) -> int:
        return int(struct.unpack(fmt, self.cur.read(struct.calcsize(fmt)))[0])

    def _fits(self, n: int, what: str) -> int:
        if self.size is not None and n > self.size:
            raise MsgpackError(f"a {what} of {n} in a {self.size}-byte file")
        return n

    def value(self, depth: int, path: str) -> Any:
        self.values += 1
        if not self.values & 0xFFF and self.deadline is not None and self.deadline.expired():
            raise TimeoutError
        if self.values > self.max_values:
            raise Budget("budget-json-values", f"more than {self.max_values} msgpack values")
        b = self.cur.read(1)[0]
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            return b - 0x100
        if 0xA0 <= b <= 0xBF:
            return self._str(b & 0x1F, MAX_STR)
        if 0x90 <= b <= 0x9F:
            return self._array(b & 0x0F, depth, path)
        if 0x80 <= b <= 0x8F:
            return self._map(b & 0x0F, depth, path)
        if b == 0xC0:
            return None
        if b in (0xC2, 0xC3):
            return b == 0xC3
        if b in (0xCC, 0xCD, 0xCE, 0xCF):
            return self._n({0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q"}[b])
        if b in (0xD0, 0xD1, 0xD2, 0xD3):
            return self._n({0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}[b])
        if b == 0xCA:
            return struct.unpack(">f", self.cur.read(4))[0]
        if b == 0xCB:
            return struct.unpack(">d", self.cur.read(8))[0]
        if b in (0xD9, 0xDA, 0xDB):
            return self._str(self._n({0xD9: ">B", 0xDA: ">H", 0xDB: ">I"}[b]), MAX_STR)
        if b in (0xC4, 0xC5, 0xC6):
            n = self._fits(self._n({0xC4: ">B", 0xC5: ">H", 0xC6: ">I"}[b]), "bin length")
            self.cur.skip(n)
            return b""
        if b in (0xDC, 0xDD):
            return self._array(self._n(">H" if b == 0xDC else ">I"), depth, path)
        if b in (0xDE, 0xDF):
            return self._map(self._n(">H" if b == 0xDE else ">I"), depth, path)
        if 0xD4 <= b <= 0xD8:
            return self._ext(1 << (b - 0xD4), path)
        if b in (0xC7, 0xC8, 0xC9):
            return self._ext(self._n({0xC7: ">B", 0xC8: ">H", 0xC9: ">I"}[b]), path)
        raise MsgpackError(f"byte 0x{b:02x} is not a msgpack type (at {path or 'the root'})")

    def _str(self, n: int, limit: int) -> str:
        self._fits(n, "string length")
        if n > limit:
            raise MsgpackError(f"a {n}-byte string")
        return self.cur.read(n).decode("utf-8", "replace")

    def _enter(self, depth: int, count: int, what: str) -> None:
        if depth >= self.max_depth:
            raise Budget("budget-json-depth", f"msgpack nested deeper than {self.max_depth}")
        self._fits(count, f"{what} count")  # each entry takes at least one byte

    def _array(self, n: int, depth: int, path: str) -> list[Any]:
        self._enter(depth, n, "array")
        return [self.value(depth + 1, f"{path}[{i}]") for i in range(n)]

    def _map(self, n: int, depth: int, path: str) -> dict[str, Any]:
        self._enter(depth, n, "map")
        out: dict[str, Any] = {}
        for _ in range(n):
            b = self.cur.peek(1)
            if not b or not (0xA0 <= b[0] <= 0xBF or b[0] in (0xD9, 0xDA, 0xDB)):
                raise MsgpackError(f"a map key at {path or 'the root'} is not a string")
            key = self.value(depth + 1, path)
            assert isinstance(key, str)
            if len(key) > MAX_KEY:
                raise MsgpackError(f"a {len(key)}-character key")
            out[key] = self.value(depth + 1, f"{path}/{key}" if path else key)
        return out

    def _ext(self, n: int, path: str) -> Ext:
        self._fits(n, "ext length")
        code = struct.unpack(">b", self.cur.read(1))[0]
        where = path or "the root"
        if code in (EXT_NDARRAY, EXT_COMPLEX, EXT_SCALAR):
            self.flax_ext += 1
        if code == EXT_COMPLEX:
            start = self.cur.tell()
            inner = self.value(self.max_depth - 2, path)
            if self.cur.tell() - start != n or not (
                isinstance(inner, list)
                and len(inner) == 2
                and all(isinstance(v, (int, float)) for v in inner)
            ):
                raise MsgpackError(f"the complex number at {where} is not [real, imag]", path)
            return Ext(code)
        if code not in (EXT_NDARRAY, EXT_SCALAR):
            raise MsgpackError(f"ext type {code} at {where} is not one Flax writes", path)
        start = self.cur.tell()
        if self.cur.read(1) != b"\x93":
            raise MsgpackError(f"the array at {where} is not [shape, dtype, buffer]", path)
        shape = self.value(self.max_depth - 2, path)
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_NDIM
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise MsgpackError(f"the array at {where} has shape {str(shape)[:60]}", path)
        dtype = self.value(self.max_depth - 2, path)
        if not isinstance(dtype, str) or dtype not in ITEMSIZE:
            raise MsgpackError(f"the array at {where} has dtype {str(dtype)[:40]!r}", path)
        b = self.cur.read(1)[0]
        if b not in (0xC4, 0xC5, 0xC6):
            raise MsgpackError(f"the array at {where} has no byte buffer", path)
        length = self._n({0xC4: ">B", 0xC5: ">H", 0xC6: ">I"}[b])
        ext = Ext(code, tuple(shape), dtype)
        if dtype in ("int4", "uint4", "int2", "uint2", "float4_e2m1fn"):
            need_ok = length in (ext.elements, (ext.elements + 1) // 2, (ext.elements + 3) // 4)
        else:
            need_ok = length == ext.elements * ITEMSIZE[dtype]
        if not need_ok:
            raise MsgpackError(
                f"the array at {where} is {dtype} {list(shape)} "
                f"({ext.elements} elements) but its buffer holds {length} bytes",
                path,
            )
        if self.cur.tell() - start + length != n:
            raise MsgpackError(f"the array at {where} does not fill its ext value", path)
        self.array_headers += 1
        self._fits(length, "array buffer")
        self.cur.skip(length)
        self.arrays += 1
        self.array_bytes += length
        return ext


def _check_chunked(node: dict[str, Any], path: str) -> None:
    shape_map, chunks = node.get("shape"), node.get("chunks")
    if not isinstance(shape_map, dict) or not isinstance(chunks, dict):
        raise MsgpackError(f"the chunked array at {path} lacks its shape or chunks", path)
    try:
        shape = [shape_map[str(i)] for i in range(len(shape_map))]
        parts = [chunks[str(i)] for i in range(len(chunks))]
    except KeyError:
        raise MsgpackError(f"the chunked array at {path} skips an index", path) from None
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise MsgpackError(f"the chunked array at {path} has shape {str(shape)[:60]}", path)
    if not all(isinstance(p, Ext) and p.code == EXT_NDARRAY for p in parts):
        raise MsgpackError(f"a chunk of {path} is not an array", path)
    if len({p.dtype for p in parts}) > 1:
        raise MsgpackError(f"the chunks of {path} have different dtypes", path)
    total = sum(p.elements for p in parts)
    if total != math.prod(shape):
        raise MsgpackError(f"the chunks of {path} hold {total} elements, its shape {shape}", path)


def _walk(node: Any, path: str) -> None:
    """Chunked arrays, found iteratively (the tree is already depth-bounded)."""
    stack = [(node, path)]
    while stack:
        cur, where = stack.pop()
        if isinstance(cur, dict):
            if CHUNKED in cur:
                _check_chunked(cur, where or "the root")
                continue
            stack.extend((v, f"{where}/{k}" if where else k) for k, v in cur.items())
        elif isinstance(cur, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(cur))


def sniff_flax(head: bytes) -> bool:
    """A msgpack map with string keys whose head walks cleanly (running out of head is
    fine) and shows a Flax array (ext type 1 or 3 with a valid header)."""
    if not head or not (0x81 <= head[0] <= 0x8F or head[0] in (0xDE, 0xDF)):
        return False
    second = head[1:2] if head[0] < 0xDE else head[3:4] if head[0] == 0xDE else head[5:6]
    if not second or not (0xA0 <= second[0] <= 0xBF or second[0] in (0xD9, 0xDA)):
        return False
    reader = Reader(Cursor(BytesSource(head)), None, 1 << 16, 64)
    try:
        reader.value(0, "")
    except Truncated:
        # the head ends inside a value: a whole, consistent array header before that is
        # enough (a real checkpoint's first array is usually larger than the head)
        return reader.arrays > 0 or reader.array_headers > 0
    except Budget:
        return True  # string-keyed maps nested past the budget: the scan reports it (X901)
    except (MsgpackError, TooLong, struct.error, UnicodeDecodeError):
        # broken inside a Flax array value: still a Flax checkpoint (a malformed one)
        return reader.flax_ext > 0
    return reader.arrays > 0


def scan_flax(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    cur = Cursor(src, ctx.deadline)
    reader = Reader(
        cur, length, ctx.limits.max_json_values, ctx.limits.max_json_depth, ctx.deadline
    )
    try:
        tree = reader.value(0, "")
        if not isinstance(tree, dict):
            raise MsgpackError("the checkpoint is not a map")
        if not cur.at_end():
            raise MsgpackError(f"data after the checkpoint at offset {cur.tell()}")
        _walk(tree, "")
    except Budget as exc:
        ctx.anomaly(exc.what, where, str(exc))
        return
    except TimeoutError:
        ctx.anomaly("budget-time", where, f"more than {ctx.deadline.seconds:.0f}s to walk")
        return
    except MsgpackError as exc:
        at = where.at(key=exc.key) if exc.key else where
        ctx.anomaly("flax-malformed", at, f"not a valid Flax msgpack checkpoint: {exc}")
        return
    except (Truncated, TooLong, struct.error) as exc:
        ctx.anomaly("flax-malformed", where, f"not a valid Flax msgpack checkpoint: {exc}")
        return
    ctx.emit(
        "flax.checkpoint",
        str(reader.arrays),
        where,
        arrays=reader.arrays,
        array_bytes=reader.array_bytes,
        values=reader.values,
    )
