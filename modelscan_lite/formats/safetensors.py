"""safetensors files: the 8-byte header length and the JSON header, never the tensor bytes.

Format (huggingface/safetensors README, "Format"; ``safetensors/src/tensor.rs``):
``N`` as a little-endian u64, then ``N`` bytes of UTF-8 JSON starting with ``{`` (padded with
spaces to 8 bytes), then the byte buffer. The JSON object maps tensor names to
``{"dtype", "shape", "data_offsets": [begin, end]}`` with offsets relative to the byte buffer,
plus an optional ``"__metadata__"`` object of string to string. The reference reader refuses
headers over 100,000,000 bytes, requires the offsets, sorted, to tile the buffer from 0 to its
end with no hole and no overlap, and ``end - begin == prod(shape) * itemsize`` (checked for
overflow). Empty tensors (a 0 dimension) and 0-rank tensors (shape ``[]``) are valid.

What the reference reader tolerates but we report: duplicate JSON keys (serde keeps the last),
tensor entries with extra keys. Bytes outside every tensor's span (a hole, or data after the
last tensor) are where polyglot payloads hide: they are sniffed and scanned as a member.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

from .. import jsonbudget
from ..model import Location
from .base import Context

MAX_HEADER = 100_000_000
# dtype -> size in bits (sub-byte float formats are packed)
DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
TENSOR_KEYS = frozenset({"dtype", "shape", "data_offsets"})
HIDDEN_SNIFF = 4096


class _Dupes:
    """``object_pairs_hook`` that records duplicate keys at any depth."""

    def __init__(self) -> None:
        self.duplicates: list[str] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                self.duplicates.append(k)
            out[k] = v
        return out


def _length_is_a_pickle(pre: bytes) -> bool:
    """True when the length field is a pickle that reaches STOP (a loader would run it)."""
    from ..limits import Deadline, Limits
    from .pickle_vm import Reader, walk_stream
    from .streams import BytesSource

    if pre[:1] != b"\x80" and pre[:1] not in (b"(", b"c", b"N", b"]", b"}", b")"):
        return False
    res = walk_stream(Reader(BytesSource(pre)), Limits(), Deadline(1.0), [64])
    return res.stopped


def header_summary(data: dict[str, Any]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (dtype, shape) for well-formed entries (used by repo-level checks)."""
    out = {}
    for name, info in data.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        shape = info.get("shape")
        if isinstance(shape, list) and all(isinstance(d, int) for d in shape):
            out[name] = (str(info.get("dtype")), tuple(shape))
    return out


def scan_safetensors(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str = ""
) -> None:
    f.seek(start)
    pre = f.read(8)
    if len(pre) < 8:
        ctx.anomaly("safetensors-header-invalid", where, "file shorter than the 8-byte length")
        return
    (n,) = struct.unpack("<Q", pre)
    if _length_is_a_pickle(pre):
        from .dispatch import dispatch_file

        ctx.emit(
            "safetensors.polyglot",
            "pickle",
            where.at(0),
            message="the 8-byte header length is itself a complete pickle",
        )
        dispatch_file(f, start, 8, where.child("<header length>"), ctx, "")
    if n > MAX_HEADER:
        ctx.anomaly(
            "safetensors-header-too-large",
            where.at(0),
            f"header length {n} is over the reference reader's 100,000,000-byte limit",
        )
        if n > length - 8 or n > ctx.limits.max_header:
            return  # never read a header of gigabytes into memory
    if n > length - 8:
        ctx.anomaly(
            "safetensors-header-invalid",
            where.at(0),
            f"header length {n} runs past the end of the {length}-byte file",
        )
        return
    raw = f.read(n)
    try:
        # the values and nesting the parser would build are bounded first (a 99 MB header
        # of ``[],[],...`` once took 2.4 GiB); the raw bytes are dropped before parsing
        jsonbudget.check(raw, ctx.limits)
    except jsonbudget.JsonBudgetExceeded as exc:
        ctx.anomaly(exc.what, where.at(8), f"safetensors header of {n} bytes: {exc.message}")
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        ctx.anomaly(
            "safetensors-header-invalid", where.at(8 + exc.start), "header is not valid UTF-8"
        )
        return
    del raw
    if not text.startswith("{"):
        ctx.anomaly(
            "safetensors-header-invalid", where.at(8), f"header starts with {text[:1]!r}, not '{{'"
        )
        return
    dupes = _Dupes()
    try:
        data = json.loads(text, object_pairs_hook=dupes)
    except (ValueError, RecursionError) as exc:
        ctx.anomaly("safetensors-header-invalid", where.at(8), f"header is not JSON: {exc}")
        return
    del text
    if not isinstance(data, dict):
        ctx.anomaly("safetensors-header-invalid", where.at(8), "header is not a JSON object")
        return
    for key in dict.fromkeys(dupes.duplicates):
        ctx.emit("safetensors.duplicate-key", key, where.at(key=key))
    _check_metadata(data.get("__metadata__"), where, ctx)
    ctx.tensor_table(where, header_summary(data))
    spans = _check_tensors(data, where, ctx)
    buffer_len = length - 8 - n
    _check_layout(spans, buffer_len, f, start + 8 + n, where, ctx)


def _check_metadata(meta: Any, where: Location, ctx: Context) -> None:
    if meta is None:
        return
    if not isinstance(meta, dict):
        ctx.emit(
            "safetensors.bad-metadata",
            type(meta).__name__,
            where.at(key="__metadata__"),
            message="`__metadata__` is not an object",
        )
        return
    for k, v in meta.items():
        if not isinstance(v, str):
            ctx.emit(
                "safetensors.bad-metadata",
                k,
                where.at(key=f"__metadata__.{k}"),
                message=f"`__metadata__.{k}` is a {type(v).__name__}, not a string",
            )


def _check_tensors(
    data: dict[str, Any], where: Location, ctx: Context
) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for name, info in data.items():
        if name == "__metadata__":
            continue
        loc = where.at(key=name)
        if not isinstance(info, dict):
            ctx.anomaly("safetensors-header-invalid", loc, f"entry `{name}` is not an object")
            continue
        missing = TENSOR_KEYS - set(info)
        if missing:
            ctx.anomaly(
                "safetensors-header-invalid",
                loc,
                f"entry `{name}` lacks {', '.join(sorted(missing))}",
            )
            continue
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            ctx.anomaly(
                "safetensors-header-invalid",
                loc,
                f"shape of `{name}` is not a list of sizes: {str(shape)[:60]}",
            )
            continue
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(type(o) is int and o >= 0 for o in offsets)
        ):
            ctx.anomaly(
                "safetensors-header-invalid",
                loc,
                f"data_offsets of `{name}` are not two offsets: {str(offsets)[:60]}",
            )
            continue
        begin, end = offsets
        if end < begin:
            ctx.emit(
                "safetensors.offsets",
                "reversed",
                loc,
                message=f"`{name}` ends at {end}, before it begins at {begin}",
            )
            continue
        spans.append((begin, end, name))
        bits = DTYPE_BITS.get(dtype) if isinstance(dtype, str) else None
        if bits is None:
            ctx.emit("safetensors.unknown-dtype", str(dtype)[:40], loc, tensor=name)
            continue
        count = 1
        for d in shape:
            count *= d  # Python ints: no overflow; absurd products fail the span check
        nbits = count * bits
        if nbits % 8 or nbits // 8 != end - begin:
            ctx.emit(
                "safetensors.size-mismatch",
                name,
                loc,
                message=f"{dtype} x {shape} is {nbits / 8:g} bytes, the span is "
                f"{end - begin} bytes",
            )
    return spans


def _check_layout(
    spans: list[tuple[int, int, str]],
    buffer_len: int,
    f: BinaryIO,
    buffer_start: int,
    where: Location,
    ctx: Context,
) -> None:
    spans.sort()
    cursor = 0
    holes: list[tuple[int, int]] = []
    for begin, end, name in spans:
        if end > buffer_len:
            ctx.emit(
                "safetensors.offsets",
                "out-of-range",
                where.at(key=name),
                message=f"`{name}` spans [{begin}, {end}) but the buffer has {buffer_len} bytes",
            )
        if begin < cursor:
            ctx.emit(
                "safetensors.offsets",
                "overlapping",
                where.at(key=name),
                message=f"`{name}` starts at {begin}, inside the previous tensor "
                f"(which ends at {cursor})",
            )
        elif begin > cursor:
            holes.append((cursor, begin))
        cursor = max(cursor, end)
    if cursor < buffer_len:
        holes.append((cursor, buffer_len))
    for lo, hi in holes[:16]:
        _report_hole(lo, hi, f, buffer_start, where, ctx)


def _report_hole(
    lo: int, hi: int, f: BinaryIO, buffer_start: int, where: Location, ctx: Context
) -> None:
    from .dispatch import dispatch_file
    from .sniff import sniff

    f.seek(buffer_start + lo)
    head = f.read(min(HIDDEN_SNIFF, hi - lo))
    fmt = sniff(head)
    absolute = buffer_start + lo
    if fmt in ("unknown", "text") or not head.strip(b"\0 "):
        ctx.emit(
            "safetensors.unindexed",
            f"{hi - lo}",
            where.at(absolute),
            message=f"{hi - lo} bytes at buffer offset {lo} belong to no tensor",
        )
        return
    ctx.emit(
        "safetensors.polyglot",
        fmt,
        where.at(absolute),
        message=f"{hi - lo} bytes at buffer offset {lo} belong to no tensor and are a {fmt}",
    )
    ctx.depth += 1
    try:
        dispatch_file(f, absolute, hi - lo, where.child(f"<unindexed @{absolute}>"), ctx, "")
    finally:
        ctx.depth -= 1
