"""joblib's legacy ``ZF`` container (joblib < 0.10 compressed dumps, still read by
``joblib.load`` through ``numpy_pickle_compat.read_zfile``): a zlib-compressed pickle.

Format (joblib 0.9 ``numpy_pickle.py`` ``write_zfile``/``read_zfile``)::

    "ZF"                      magic, 2 bytes
    length                    19 bytes: ``'{:#x}'.format(len(data)).ljust(19)``, ASCII
    [" "]                     one extra space in files from joblib <= 0.8.4 on Python 2
    zlib stream               RFC 1950 (first byte 0x78), decompressing to ``length`` bytes

The decompressed bytes are a pickle that ``joblib.load`` unpickles (its arrays, from
joblib 0.9, are in ``<name>_NN.npy.z`` files of the same layout holding ``.npy`` data). The
stream is decoded under the artifact's decompression budget and dispatched like any other
layer, so the pickle inside is scanned and its findings are located under ``<joblib-zf>``.
``read_zfile`` passes ``length`` to ``zlib.decompress`` as the initial buffer size and then
asserts that the output has exactly that size: a length that does not parse, or that no
budget allows, is reported.
"""

from __future__ import annotations

import re
import zlib

from ..model import Fact, Location
from .base import Context
from .streams import BudgetExceeded, DecodedStream, Source

PREFIX = b"ZF"
FIELD = 19
HEADER = re.compile(rb"\AZF(0x[0-9a-fA-F]{1,16}) *")


def _data_start(head: bytes) -> int:
    return len(PREFIX) + FIELD + (head[21:22] == b" ")


def sniff_zf(head: bytes) -> bool:
    """``ZF`` and a hex length padded with spaces to 19 bytes, then a zlib header."""
    m = HEADER.match(head)
    if m is None or m.end() < len(PREFIX) + FIELD:
        return False
    start = _data_start(head)
    z = head[start : start + 2]
    return len(z) == 2 and z[0] == 0x78 and (z[0] << 8 | z[1]) % 31 == 0


def _array_data_is_data(ctx: Context, before: int) -> None:
    """joblib 0.9 keeps each array's raw buffer in a ``ZF`` file of its own
    (``ZNDArrayWrapper``). Content that matches no format and whose first byte is not a
    pickle opcode cannot run: ``joblib.load`` of it fails on that byte, and the pickle that
    names it only copies the bytes into an array. It is data (X202), not an unknown (X201)."""
    from .pickles import STARTS

    for i in range(before, len(ctx.facts)):
        fact = ctx.facts[i]
        if fact.kind != "format.unknown":
            continue
        head = bytes.fromhex(fact.detail_dict().get("head", ""))
        if head and head[0] not in STARTS and head[0] != 0x80:
            ctx.facts[i] = Fact("format.data", "joblib array buffer", fact.location, fact.detail)


def scan_zf(
    src: Source,
    head: bytes,
    where: Location,
    ctx: Context,
    name: str = "",
    length: int | None = None,
) -> None:
    """Decode the zlib stream under the budget and dispatch what it holds (a pickle)."""
    from .dispatch import dispatch_stream

    m = HEADER.match(head)
    declared = int(m.group(1), 16) if m else -1
    if declared > ctx.limits.max_decompressed:
        ctx.anomaly(
            "joblib-zf-malformed",
            where,
            f"the ZF header declares {declared} bytes, more than the decompression budget "
            "(joblib allocates that much before it decompresses)",
        )
        return
    src.skip(_data_start(head))
    inner = DecodedStream(src, "zlib", ctx.budget)
    before = len(ctx.facts)
    dispatch_stream(inner, where.child("<joblib-zf>"), ctx, name)
    _array_data_is_data(ctx, before)
    if any(f.kind == "anomaly" for f in ctx.facts[before:]):
        return  # the layer already reported why it could not be read to the end
    try:
        inner.skip(max(0, declared + 1 - inner.tell()))
    except BudgetExceeded as exc:
        ctx.anomaly(exc.what, where, exc.detail)
        return
    except (zlib.error, ValueError) as exc:
        ctx.anomaly("joblib-zf-malformed", where, f"cannot decode the ZF stream: {exc}")
        return
    if inner.tell() != declared:
        ctx.anomaly(
            "joblib-zf-malformed",
            where,
            f"the ZF header declares {declared} bytes but the stream holds {inner.tell()}; "
            "joblib refuses the file",
        )
