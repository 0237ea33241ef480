"""GGUF files (llama.cpp): header, every metadata key/value, tensor infos; never tensor data.

Format (ggml ``docs/gguf.md``): magic ``GGUF`` (bytes ``FUGG`` in big-endian files, whose
every number is big-endian), ``version`` u32 (1, 2 or 3), ``tensor_count`` and
``metadata_kv_count`` (u64; u32 in version 1), then the key/values: a string key (u64 length
+ UTF-8; u32 length in v1), a u32 value type (0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32,
7 bool, 8 string, 9 array, 10 u64, 11 i64, 12 f64) and the value (an array is an element type,
a u64 count and the elements). Then per tensor: name, ``n_dims`` u32 (ggml allows at most 4),
``n_dims`` u64 sizes, a u32 ggml type and a u64 offset into the data section, which starts at
the next multiple of ``general.alignment`` (u32, default 32, a power of two) after the header.
A tensor of type T holds ``prod(dims) / block_size(T) * type_size(T)`` bytes.

Every count and length is checked against the bytes that remain before it is used, so a
hostile header can neither make the scan allocate nor loop beyond the file's own size.
``gguf``'s Python reader is not used: it materialises arrays and needs numpy (~5 s and
~500 MiB on a 1 GB model); its constants are cross-checked in the tests.
"""

from __future__ import annotations

import itertools
import re
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

from ..limits import Deadline
from ..model import Location
from .base import Context
from .streams import map_region, mark_read, unpacker

# ggml type id -> (name, block size, bytes per block); None marks ids removed from ggml
GGML_TYPES: dict[int, tuple[str, int, int] | None] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    4: None,
    5: None,
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    31: None,
    32: None,
    33: None,
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    36: None,
    37: None,
    38: None,
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}
# value type id -> struct code (8 string and 9 array are handled apart)
SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
MAX_DIMS = 4
MAX_NESTING = 4
KEEP_STRING = 1 << 20  # strings kept in full (chat templates); longer ones are skipped
DEFAULT_ALIGNMENT = 32
_BLOCK_RE = re.compile(r"^blk\.(\d+)\.")


class GGUFError(Exception):
    """The header cannot be read further; ``kind`` names the anomaly."""

    def __init__(self, kind: str, message: str, offset: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.offset = offset


class _Reader:
    __slots__ = ("buf", "deadline", "end", "pos", "prefix", "unpackers", "wide")

    def __init__(self, buf: Any, end: int, big_endian: bool, deadline: Deadline) -> None:
        self.buf = buf
        self.unpackers: dict[str, Callable[[int], tuple[Any, ...]]] = {}
        self.end = end
        self.pos = 0
        self.prefix = ">" if big_endian else "<"
        self.wide = True  # u64 counts and lengths (False for version 1)
        self.deadline = deadline

    def check_time(self) -> None:
        if self.deadline.expired():
            raise GGUFError(
                "budget-time",
                f"more than {self.deadline.seconds:.0f}s to read the header",
                self.pos,
            )

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.end:
            raise GGUFError(
                "gguf-truncated", f"{what} needs {n} bytes, {self.end - self.pos} remain", self.pos
            )

    def scalar(self, code: str, what: str) -> Any:
        size = struct.calcsize(code)
        self.need(size, what)
        unpack = self.unpackers.get(code)
        if unpack is None:
            unpack = self.unpackers[code] = unpacker(struct.Struct(self.prefix + code), self.buf)
        (value,) = unpack(self.pos)
        self.pos += size
        return value

    def name(self, i: int, what: str) -> tuple[int, str]:
        """(offset, text) of the ``i``-th key or tensor name; checks the time every 4 Ki."""
        if not i & 0xFFF:
            self.check_time()
        at = self.pos
        text = self.string(f"{what} #{i}", keep=1 << 16)
        if text is None:
            raise GGUFError("gguf-invalid", f"{what} #{i} is longer than 64 KiB", at)
        return at, text

    def count(self, what: str) -> int:
        return int(self.scalar("Q" if self.wide else "I", what))

    def string(self, what: str, keep: int = KEEP_STRING) -> str | None:
        n = self.count(f"{what} length")
        self.need(n, what)
        start = self.pos
        self.pos += n
        if n > keep:
            return None
        try:
            return bytes(self.buf[start : start + n]).decode("utf-8")
        except UnicodeDecodeError:
            raise GGUFError("gguf-invalid", f"{what} is not UTF-8", start) from None


def _value(r: _Reader, vtype: int, what: str, depth: int = 0) -> Any:
    code = SCALARS.get(vtype)
    if code is not None:
        value = r.scalar(code, what)
        if vtype == 7 and value not in (0, 1, True, False):
            raise GGUFError("gguf-invalid", f"{what} is a bool that is not 0 or 1", r.pos - 1)
        return value
    if vtype == 8:
        return r.string(what)
    if vtype == 9:
        if depth >= MAX_NESTING:
            raise GGUFError(
                "gguf-invalid", f"{what}: arrays nested deeper than {MAX_NESTING}", r.pos
            )
        etype = r.scalar("I", f"{what} element type")
        n = r.count(f"{what} count")
        ecode = SCALARS.get(etype)
        if ecode is not None:
            size = struct.calcsize(ecode)
            r.need(n * size, f"{what} ({n} elements)")
            r.pos += n * size
            return _Array(etype, n)
        if etype == 8:
            if n * 8 > r.end - r.pos:
                raise GGUFError("gguf-absurd-count", f"{what} claims {n} strings", r.pos)
            # The hot loop of a large vocabulary: lengths are read without per-item bounds
            # checks (struct.error marks a read past the end, one check after the loop
            # catches a last string that overshoots), the clock every 64 Ki strings.
            unpack = unpacker(struct.Struct(r.prefix + ("Q" if r.wide else "I")), r.buf)
            step = 8 if r.wide else 4
            pos = r.pos
            try:
                for chunk in range(0, n, 0x10000):
                    r.check_time()
                    for _ in range(min(0x10000, n - chunk)):
                        pos += step + unpack(pos)[0]
            except (struct.error, OverflowError):  # read past the end, or far past it
                r.pos = min(pos, r.end)
                r.need(step, f"{what} string length")
            if pos > r.end:
                r.pos = r.end
                r.need(1, f"{what} strings")
            r.pos = pos
            return _Array(etype, n)
        if etype == 9:
            if n * 12 > r.end - r.pos:
                raise GGUFError("gguf-absurd-count", f"{what} claims {n} arrays", r.pos)
            for i in range(n):
                _value(r, 9, f"{what}[{i}]", depth + 1)
                if not i & 0xFFF:
                    r.check_time()
            return _Array(etype, n)
        raise GGUFError("gguf-invalid", f"{what} has unknown element type {etype}", r.pos)
    raise GGUFError("gguf-invalid", f"{what} has unknown value type {vtype}", r.pos)


class _Array:
    __slots__ = ("count", "etype")

    def __init__(self, etype: int, count: int) -> None:
        self.etype = etype
        self.count = count


def scan_gguf(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str = ""
) -> None:
    buf, release = map_region(f, start, length)
    try:
        walked = _scan(buf, length, where, ctx)
    finally:
        release()
    # the header, metadata and tensor infos decide the verdict: part of the content identity
    mark_read(f, start, walked)


def _scan(buf: Any, size: int, where: Location, ctx: Context) -> int:
    """Check the file; returns how many bytes from the start were walked."""
    big = bytes(buf[0:4]) == b"FUGG"
    r = _Reader(buf, size, big, ctx.deadline)
    try:
        r.pos = 4
        version = r.scalar("I", "version")
        if version not in (1, 2, 3):
            raise GGUFError("gguf-invalid", f"unknown GGUF version {version}", 4)
        r.wide = version >= 2
        n_tensors = r.count("tensor count")
        n_kv = r.count("metadata count")
        if n_kv * 13 > size - r.pos or n_tensors * 33 > size - r.pos:
            raise GGUFError(
                "gguf-absurd-count",
                f"{n_tensors} tensors and {n_kv} key/values cannot fit in {size} bytes",
                8,
            )
        meta = _read_metadata(r, n_kv, where, ctx)
        tensors = _read_tensor_infos(r, n_tensors, where, ctx)
    except GGUFError as exc:
        ctx.anomaly(exc.kind, where.at(exc.offset), str(exc))
        return min(r.pos, size)
    alignment = meta.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        ctx.emit("gguf.alignment", str(alignment), where.at(key="general.alignment"))
        alignment = DEFAULT_ALIGNMENT
    data_start = -(-r.pos // alignment) * alignment
    _check_tensor_data(tensors, alignment, data_start, size, where, ctx)
    _check_consistency(meta, tensors, where, ctx)
    for key, value in meta.items():
        named = key == "tokenizer.chat_template" or key.startswith("tokenizer.chat_template.")
        if named and isinstance(value, str):  # the default and `tokenizer.chat_template.<name>`
            from ..templates import scan_template

            scan_template(value, where.at(key=key), ctx)
    return min(r.pos, size)


def _read_metadata(r: _Reader, n_kv: int, where: Location, ctx: Context) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for i in range(n_kv):
        at, key = r.name(i, "key")
        vtype = r.scalar("I", f"type of `{key}`")
        value = _value(r, vtype, f"`{key}`")
        if key in meta:
            ctx.emit("gguf.duplicate", key, where.at(at, key), what="key")
        meta[key] = value
    return meta


def _read_tensor_infos(
    r: _Reader, n: int, where: Location, ctx: Context
) -> list[tuple[str, tuple[int, ...], int, int, int]]:
    out = []
    seen: set[str] = set()
    for i in range(n):
        at, name = r.name(i, "tensor name")
        n_dims = r.scalar("I", f"`{name}` n_dims")
        if n_dims > MAX_DIMS:
            ctx.emit(
                "gguf.dims",
                name,
                where.at(at, name),
                message=f"`{name}` has {n_dims} dimensions; ggml allows {MAX_DIMS}",
            )
            if n_dims * 8 > r.end - r.pos:
                raise GGUFError("gguf-absurd-count", f"`{name}` claims {n_dims} dims", r.pos)
        dims = tuple(r.scalar("Q", f"`{name}` dim") for _ in range(n_dims))
        ttype = r.scalar("I", f"`{name}` type")
        offset = r.scalar("Q", f"`{name}` offset")
        if name in seen:
            ctx.emit("gguf.duplicate", name, where.at(at, name), what="tensor")
        seen.add(name)
        out.append((name, dims, ttype, offset, at))
    return out


def _check_tensor_data(
    tensors: list[tuple[str, tuple[int, ...], int, int, int]],
    alignment: int,
    data_start: int,
    size: int,
    where: Location,
    ctx: Context,
) -> None:
    spans = []
    for name, dims, ttype, offset, at in tensors:
        loc = where.at(at, name)
        info = GGML_TYPES.get(ttype)
        if info is None:
            ctx.emit(
                "gguf.tensor-type",
                str(ttype),
                loc,
                message=f"`{name}` has {'removed' if ttype in GGML_TYPES else 'unknown'} "
                f"ggml type {ttype}",
            )
            continue
        tname, block, tsize = info
        count = 1
        for d in dims:
            count *= d
        if count >= 1 << 63 or (dims and dims[0] % block):
            ctx.emit(
                "gguf.tensor-size",
                name,
                loc,
                message=f"`{name}` dims {list(dims)} do not fit type {tname} "
                f"(overflow or not a multiple of the {block}-element block)",
            )
            continue
        nbytes = count // block * tsize
        if offset % alignment:
            ctx.emit(
                "gguf.tensor-bounds",
                name,
                loc,
                message=f"`{name}` offset {offset} is not a multiple of {alignment}",
            )
        if data_start + offset + nbytes > size:
            ctx.emit(
                "gguf.tensor-bounds",
                name,
                loc,
                message=f"`{name}` needs {nbytes} bytes at data offset {offset}, past "
                f"the end of the file",
            )
        spans.append((offset, offset + nbytes, name))
    spans.sort()
    for (b1, e1, n1), (b2, _e2, n2) in itertools.pairwise(spans):
        if b2 < e1:
            ctx.emit(
                "gguf.tensor-bounds",
                n2,
                where.at(key=n2),
                message=f"`{n2}` overlaps `{n1}` (data offsets {b1}..{e1} and {b2})",
            )


def _check_consistency(
    meta: dict[str, Any],
    tensors: list[tuple[str, tuple[int, ...], int, int, int]],
    where: Location,
    ctx: Context,
) -> None:
    arch = meta.get("general.architecture")
    shapes = {name: dims for name, dims, _t, _o, _a in tensors}
    embd = shapes.get("token_embd.weight")
    tokens = meta.get("tokenizer.ggml.tokens")
    n_vocab = tokens.count if isinstance(tokens, _Array) else None
    if embd is not None and len(embd) >= 2 and n_vocab is not None and embd[1] != n_vocab:
        ctx.emit(
            "gguf.inconsistent",
            "vocab",
            where.at(key="tokenizer.ggml.tokens"),
            message=f"{n_vocab} tokens but token_embd.weight has {embd[1]} rows",
        )
    if not isinstance(arch, str):
        return
    width = meta.get(f"{arch}.embedding_length")
    if embd is not None and isinstance(width, int) and embd and embd[0] != width:
        ctx.emit(
            "gguf.inconsistent",
            "embedding_length",
            where.at(key=f"{arch}.embedding_length"),
            message=f"{arch}.embedding_length is {width} but token_embd.weight is {embd[0]} wide",
        )
    blocks = meta.get(f"{arch}.block_count")
    present = {int(m.group(1)) for n in shapes if (m := _BLOCK_RE.match(n))}
    if isinstance(blocks, int) and present and (max(present) >= blocks or len(present) != blocks):
        ctx.emit(
            "gguf.inconsistent",
            "block_count",
            where.at(key=f"{arch}.block_count"),
            message=f"{arch}.block_count is {blocks} but tensors exist for "
            f"{len(present)} blocks (highest index {max(present)})",
        )
    vocab = meta.get(f"{arch}.vocab_size")
    if isinstance(vocab, int) and n_vocab is not None and vocab != n_vocab:
        ctx.emit(
            "gguf.inconsistent",
            "vocab_size",
            where.at(key=f"{arch}.vocab_size"),
            message=f"{arch}.vocab_size is {vocab} but there are {n_vocab} tokens",
        )
