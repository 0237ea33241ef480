"""A forward cursor over a :class:`~.streams.Source` for the binary data-format parsers
(fastText, word2vec): fixed-width reads, bounded delimiter scans, and skips that seek.

Every read either returns exactly what was asked or raises :class:`Truncated`; a delimiter
scan gives up after ``limit`` bytes with :class:`TooLong`, so a hostile file cannot make a
parser buffer more than that.
"""

from __future__ import annotations

import struct

from ..limits import Deadline
from .streams import Source

CHUNK = 1 << 16


class Truncated(Exception):
    """The stream ended inside a field."""


class TooLong(Exception):
    """A delimited field ran past its length budget."""


class Cursor:
    __slots__ = ("_buf", "_deadline", "_pos", "_src", "_steps", "base")

    def __init__(self, src: Source, deadline: Deadline | None = None) -> None:
        self._src = src
        self._buf = b""
        self._pos = 0
        self.base = src.tell()
        self._deadline = deadline
        self._steps = 0

    def tell(self) -> int:
        return self.base + self._pos

    def _fill(self, need: int) -> bool:
        have = len(self._buf) - self._pos
        if have >= need:
            return True
        more = self._src.read(max(CHUNK, need - have))
        self.base += self._pos
        self._buf = self._buf[self._pos :] + more
        self._pos = 0
        return len(self._buf) >= need

    def read(self, n: int) -> bytes:
        if not self._fill(n):
            raise Truncated(f"the file ends inside a {n}-byte field at offset {self.tell()}")
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out

    def unpack(self, fmt: str) -> tuple[int | float, ...]:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))

    def skip(self, n: int) -> None:
        """Skip ``n`` bytes (a seek for file slices); raises :class:`Truncated` past the end."""
        have = len(self._buf) - self._pos
        if n <= have:
            self._pos += n
            return
        rest = n - have
        self.base += len(self._buf)
        self._buf = b""
        self._pos = 0
        got = self._src.skip(rest)
        self.base += got
        if got != rest:
            raise Truncated(f"the file ends {rest - got} bytes before the end of a block")

    def until(self, delim: bytes, limit: int) -> bytes:
        """The bytes up to ``delim`` (consumed, not returned), at most ``limit`` of them."""
        self._steps += 1
        if self._deadline is not None and not self._steps & 0xFFF and self._deadline.expired():
            raise TimeoutError
        scanned = 0  # bytes after the read position already searched
        while True:
            i = self._buf.find(delim, self._pos + scanned)
            if i >= 0:
                if i - self._pos > limit:
                    break
                out = self._buf[self._pos : i]
                self._pos = i + len(delim)
                return out
            scanned = max(0, len(self._buf) - self._pos - len(delim) + 1)
            if scanned > limit:
                break
            if not self._fill(len(self._buf) - self._pos + 1):
                raise Truncated(f"the file ends inside a field at offset {self.tell()}")
        raise TooLong(f"a field longer than {limit} bytes at offset {self.tell()}")

    def at_end(self) -> bool:
        return not self._fill(1)

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return self._buf[self._pos : self._pos + n]
