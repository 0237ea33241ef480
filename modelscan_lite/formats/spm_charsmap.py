"""SentencePiece normaliser tables ("precompiled charsmap"): the ``*.bin`` files of
sentencepiece's ``data/`` folder (``nfkc.bin``, ``nmt_nfkc_cf.bin``...) and the
``normalizer_spec.precompiled_charsmap`` bytes inside a SentencePiece model.

Format (``src/normalizer.cc`` ``DecodePrecompiledCharsMap`` and darts-clone's
``DoubleArrayImpl::validate``, sentencepiece 0.2.x)::

    u32 LE  trie_size        >= 1024, a multiple of 1024, < len(blob) - 4
    u32 LE  unit[trie_size / 4]   a darts-clone double-array trie
    bytes   normalized       the replacement strings, NUL-separated; non-empty, ends in NUL

A unit ``u`` has ``label = u & 0x800000FF``, ``has_leaf = (u >> 8) & 1``,
``value = u & 0x7FFFFFFF`` and ``offset = (u >> 10) << ((u & 0x200) >> 6)``. The root
(unit 0) has label 0, no leaf and a non-zero offset. For every other unit whose label is at
most 0xFF, ``(i ^ offset) | 0xFF`` lies inside the array and a unit with a leaf points at a
unit whose label is above 0xFF; a leaf unit's value is an offset into ``normalized`` and
lies inside it. These are exactly the checks sentencepiece runs before it uses the table;
a table that fails them is refused by the loader, one that passes is plain data (a mapping
from byte sequences to replacement strings) and runs nothing.
"""

from __future__ import annotations

import struct
import sys
from array import array

from ..limits import Deadline
from ..model import Location
from .base import Context
from .streams import Source

MAX_CHARSMAP = 16 << 20  # real tables are ~250 KB; a Python walk of 4 M units takes ~2 s


def _root_ok(head: bytes, size: int) -> bool:
    (u0,) = struct.unpack_from("<I", head, 4)
    off = (u0 >> 10) << ((u0 & 0x200) >> 6)
    return not (u0 & 0x800000FF) and not (u0 >> 8) & 1 and off != 0 and (off | 0xFF) < size


def sniff_charsmap(head: bytes) -> bool:
    """A trie size that is a multiple of 1024, a valid root unit, and every unit of the head
    whose label is a byte pointing inside the declared array."""
    if len(head) < 1032:
        return False
    (n,) = struct.unpack_from("<I", head)
    if n < 1024 or n & 0x3FF:
        return False
    size = n // 4
    if not _root_ok(head, size):
        return False
    units = struct.unpack_from(f"<{min(size, len(head) // 4 - 1)}I", head, 4)
    for i, u in enumerate(units):
        if i and u & 0x800000FF <= 0xFF:
            off = (u >> 10) << ((u & 0x200) >> 6)
            if ((i ^ off) | 0xFF) >= size:
                return False
    return True


def charsmap_problem(blob: bytes, deadline: Deadline | None = None) -> str | None:
    """Why sentencepiece would refuse ``blob`` as a precompiled charsmap (None: it accepts)."""
    if len(blob) <= 4:
        return "the table is shorter than its 4-byte size field"
    (n,) = struct.unpack_from("<I", blob)
    if n >= len(blob) - 4:
        return f"the trie size {n} exceeds the {len(blob) - 4} bytes that follow it"
    if n < 1024 or n & 0x3FF:
        return f"the trie size {n} is not a positive multiple of 1024"
    normalized = blob[4 + n :]
    if not normalized.endswith(b"\0"):
        return "the normalized-string block is not NUL-terminated"
    units = array("I", blob[4 : 4 + n])
    if sys.byteorder == "big":
        units.byteswap()
    size = len(units)
    if not _root_ok(blob, size):
        return "the trie's root unit is invalid"
    limit = len(normalized)
    for i in range(1, size):
        if deadline is not None and not i & 0xFFFF and deadline.expired():
            raise TimeoutError
        u = units[i]
        if u & 0x800000FF <= 0xFF:
            off = (u >> 10) << ((u & 0x200) >> 6)
            j = i ^ off
            if (j | 0xFF) >= size:
                return f"trie unit {i} points outside the array"
            if (u >> 8) & 1 and units[j] & 0x800000FF <= 0xFF:
                return f"trie unit {i} has a leaf that is not a value unit"
        elif u & 0x7FFFFFFF >= limit:
            return f"trie unit {i} points past the normalized strings"
    return None


def scan_charsmap(
    src: Source,
    head: bytes,
    where: Location,
    ctx: Context,
    name: str = "",
    length: int | None = None,
) -> None:
    """A standalone normaliser table: read it whole (under a budget) and validate it."""
    data = src.read(MAX_CHARSMAP + 1)
    if len(data) > MAX_CHARSMAP:
        ctx.anomaly(
            "budget-member-size",
            where,
            f"a SentencePiece normaliser table larger than {MAX_CHARSMAP} bytes",
        )
        return
    check_blob(data, where, ctx)


def check_blob(data: bytes, where: Location, ctx: Context) -> None:
    try:
        problem = charsmap_problem(data, ctx.deadline)
    except TimeoutError:
        ctx.anomaly("budget-time", where, f"more than {ctx.deadline.seconds:.0f}s to walk")
        return
    if problem is not None:
        ctx.anomaly(
            "charsmap-malformed",
            where,
            f"not a valid SentencePiece normaliser table: {problem}; sentencepiece refuses it",
        )
        return
    (n,) = struct.unpack_from("<I", data)
    ctx.emit(
        "sentencepiece.charsmap",
        str(n // 4),
        where,
        trie_units=n // 4,
        normalized_bytes=len(data) - 4 - n,
    )
