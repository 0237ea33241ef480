"""word2vec vectors in the original C tool's formats, as read by gensim's
``KeyedVectors.load_word2vec_format`` (``binary=True`` and ``binary=False``).

Format (word2vec ``word2vec.c`` and gensim ``models/keyedvectors.py``)::

    header  ASCII "<count> <dim>" then optional spaces/CR, then LF      (both variants)
    binary  count x ( [LF] word-bytes up to SP, SP, dim x f32 LE )
    text    count x ( word SP v1 SP ... SP v_dim [SP] [CR] LF ), v_i decimal floats

Words are UTF-8 and hold no space; the C tool writes a LF after each binary vector, gensim
does not, and readers skip a LF before a word. A file shorter than its count says is refused
by gensim ("unexpected end of input; is count incorrect or file otherwise damaged?"). Loading
builds an array of floats and a word list: it runs nothing.

Why a digit first is never a pickle: ``0`` is POP, ``1`` POP_MARK and ``2`` DUP on an
empty stack, and ``3``-``9`` are not opcodes, so ``pickle.load`` fails on the first byte.
"""

from __future__ import annotations

import math
import re
import struct

from ..model import Location
from .base import Context
from .datareader import Cursor, TooLong, Truncated
from .streams import Source

HEADER = re.compile(rb"\A(\d{1,10}) (\d{1,7})[ \t\r]*\n")
MAX_WORD = 1 << 12
MAX_LINE = 1 << 22
MAX_DIM = 1 << 20


class Word2VecError(Exception):
    pass


def _header(head: bytes) -> tuple[int, int, int] | None:
    m = HEADER.match(head)
    if m is None:
        return None
    count, dim = int(m.group(1)), int(m.group(2))
    if count < 1 or not 0 < dim <= MAX_DIM:
        return None
    return count, dim, m.end()


def _text_line(line: bytes, dim: int) -> bool:
    parts = line.rstrip().split(b" ")
    if len(parts) != dim + 1 or not parts[0]:
        return False
    try:
        return all(math.isfinite(float(p)) for p in parts[1:])
    except ValueError:
        return False


def _is_text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 4
    return True


def _text_prefix(cut: bytes, dim: int) -> bool:
    """The start of a text line: a word, then numbers (the last one may be cut)."""
    parts = cut.split(b" ")
    if len(parts) > dim + 2 or not parts[0]:
        return False
    try:
        return all(math.isfinite(float(p)) for p in parts[1:-1] if p)
    except ValueError:
        return False


# a first vector cut by the head is judged on at least this many floats, each finite and
# of a plausible size (embeddings are small numbers; random bytes are not)
MIN_FLOATS_SHOWN = 256
MAX_PLAUSIBLE = 1e6


def sniff_word2vec(head: bytes) -> str | None:
    """``word2vec-text`` or ``word2vec`` (binary) when ``head`` is such a file's start."""
    hdr = _header(head)
    if hdr is None:
        return None
    count, dim, pos = hdr
    if _is_text(head):  # binary vectors hold non-UTF-8 bytes within a few floats
        lines = head[pos:].split(b"\n")
        whole, cut = lines[:-1], lines[-1]  # the last piece may be cut by the head
        if not all(_text_line(ln, dim) for ln in whole[:count]):
            return None
        if len(whole) >= count or _text_prefix(cut, dim):
            return "word2vec-text"
        return None
    # binary: walk the entries the head holds whole
    seen = 0
    while seen < count and pos < len(head):
        if head[pos : pos + 1] == b"\n":
            pos += 1
        space = head.find(b" ", pos, pos + MAX_WORD)
        if space <= pos:
            break
        try:
            head[pos:space].decode("utf-8")
        except UnicodeDecodeError:
            return None
        end = space + 1 + 4 * dim
        if end > len(head):
            # a vector longer than the head (1,024+ dimensions): the floats it holds decide
            shown = (len(head) - space - 1) // 4
            if seen == 0 and shown >= min(dim, MIN_FLOATS_SHOWN):
                floats = struct.unpack_from(f"<{shown}f", head, space + 1)
                if all(math.isfinite(v) and abs(v) < MAX_PLAUSIBLE for v in floats):
                    return "word2vec"
            break
        values = struct.unpack_from(f"<{dim}f", head, space + 1)
        if not all(math.isfinite(v) for v in values):
            return None
        seen += 1
        pos = end
    return "word2vec" if seen >= min(count, 1) else None


def parse_word2vec(src: Source, binary: bool, deadline: object = None) -> tuple[int, int]:
    """Walk the whole file; returns (count, dim). Raises :class:`Word2VecError`,
    :class:`Truncated` or :class:`TooLong` where gensim's reader would fail."""
    from ..limits import Deadline

    cur = Cursor(src, deadline if isinstance(deadline, Deadline) else None)
    line = cur.until(b"\n", 64) + b"\n"
    hdr = _header(line)
    if hdr is None:
        raise Word2VecError("the header is not `<count> <dim>`")
    count, dim, _ = hdr
    for i in range(count):
        if binary:
            if cur.peek(1) == b"\n":
                cur.skip(1)
            word = cur.until(b" ", MAX_WORD)
            if not word:
                raise Word2VecError(f"entry {i} has an empty word")
            cur.skip(4 * dim)
        else:
            text = cur.until(b"\n", MAX_LINE)
            if not _text_line(text, dim):
                raise Word2VecError(f"line {i + 2} is not a word and {dim} numbers")
    if binary and cur.peek(1) == b"\n":
        cur.skip(1)
    if not cur.at_end() and not (not binary and not cur.peek(1 << 12).strip()):
        raise Word2VecError(f"data after the {count} vectors the header announces")
    return count, dim


def scan_word2vec(src: Source, where: Location, ctx: Context, binary: bool) -> None:
    try:
        count, dim = parse_word2vec(src, binary, ctx.deadline)
    except TimeoutError:
        ctx.anomaly("budget-time", where, f"more than {ctx.deadline.seconds:.0f}s to walk")
        return
    except (Word2VecError, Truncated, TooLong) as exc:
        ctx.anomaly(
            "word2vec-malformed",
            where,
            f"not a valid word2vec {'binary' if binary else 'text'} file: {exc}",
        )
        return
    ctx.emit(
        "word2vec.vectors",
        str(count),
        where,
        count=count,
        dim=dim,
        variant="binary" if binary else "text",
    )


def scan_word2vec_binary(
    src: Source,
    head: bytes,
    where: Location,
    ctx: Context,
    name: str = "",
    length: int | None = None,
) -> None:
    scan_word2vec(src, where, ctx, binary=True)


def scan_word2vec_text(
    src: Source,
    head: bytes,
    where: Location,
    ctx: Context,
    name: str = "",
    length: int | None = None,
) -> None:
    scan_word2vec(src, where, ctx, binary=False)
