"""Byte sources the parsers read from: file slices, in-memory bytes and decompressing streams.

Every source reads forward, can *skip* without copying what it skips (a seek for file slices),
and can re-read a small window for evidence where that is cheap. Decompressing sources enforce
the decompressed-size budget and raise :class:`BudgetExceeded` when it runs out.
"""

from __future__ import annotations

import bz2
import contextlib
import functools
import io
import lzma
import mmap
import os
import struct
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

CHUNK = 1 << 20


class BudgetExceeded(Exception):
    """A decompressed-size or ratio budget ran out; ``what`` names it for the finding."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"{what}: {detail}")
        self.what = what
        self.detail = detail


class Source(Protocol):
    def read(self, n: int) -> bytes: ...
    def skip(self, n: int) -> int: ...
    def tell(self) -> int: ...
    def reread(self, start: int, end: int) -> bytes | None: ...


class BytesSource:
    """A source over bytes already in memory (sniffed heads, small members, tests)."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, n: int) -> bytes:
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def skip(self, n: int) -> int:
        step = max(0, min(n, len(self._data) - self._pos))
        self._pos += step
        return step

    def tell(self) -> int:
        return self._pos

    def reread(self, start: int, end: int) -> bytes | None:
        return self._data[start:end]

    @property
    def size(self) -> int:
        return len(self._data)


class FileSlice:
    """``length`` bytes of an open binary file starting at ``start``; skips are seeks."""

    __slots__ = ("_end", "_f", "_pos", "_start")

    def __init__(self, f: BinaryIO, start: int, length: int) -> None:
        self._f = f
        self._start = start
        self._pos = start
        self._end = start + max(0, length)

    def read(self, n: int) -> bytes:
        n = max(0, min(n, self._end - self._pos))
        if n == 0:
            return b""
        self._f.seek(self._pos)
        out = self._f.read(n)
        self._pos += len(out)
        return out

    def skip(self, n: int) -> int:
        step = max(0, min(n, self._end - self._pos))
        self._pos += step
        return step

    def tell(self) -> int:
        return self._pos - self._start

    def window(self) -> tuple[BinaryIO, int, int]:
        """(file, start, length): the whole region, for a parser that seeks."""
        return self._f, self._start, self._end - self._start

    def reread(self, start: int, end: int) -> bytes | None:
        start = max(0, start)
        end = min(end, self._end - self._start)
        if end <= start:
            return b""
        self._f.seek(self._start + start)
        return self._f.read(end - start)

    @property
    def size(self) -> int:
        return self._end - self._start


def open_slice(path: str | os.PathLike[str]) -> tuple[BinaryIO, FileSlice]:
    f = open(path, "rb")  # noqa: SIM115 - the caller closes it
    size = os.fstat(f.fileno()).st_size
    return f, FileSlice(f, 0, size)


class _Decoder(Protocol):
    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...
    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...


DECODERS: dict[str, Callable[[], _Decoder]] = {
    "gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "zlib": lambda: zlib.decompressobj(zlib.MAX_WBITS),
    "deflate": lambda: zlib.decompressobj(-zlib.MAX_WBITS),
    "bz2": lambda: bz2.BZ2Decompressor(),
    "xz": lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ),
    "lzma": lambda: lzma.LZMADecompressor(format=lzma.FORMAT_ALONE),
}


MULTI_MEMBER = {"gzip": b"\x1f\x8b", "bz2": b"BZh", "xz": b"\xfd7zXZ\x00"}


class DecodedStream:
    """Decompresses ``raw`` on the fly under a decompressed-size and ratio budget.

    ``counter`` is shared by every decompressing layer of one artifact, so nested bombs add up.
    Concatenated gzip/bz2/xz members are decoded one after the other, as the stdlib modules do.
    """

    def __init__(
        self,
        raw: Source,
        codec: str,
        budget: DecompressBudget,
        restart: Callable[[], Source] | None = None,
    ) -> None:
        self._raw = raw
        self._codec = codec
        self._dec = DECODERS[codec]()
        self._pending = b""
        self._buf = b""
        self._pos = 0
        self._out = 0
        self._in = 0
        self._done = False
        self._budget = budget
        self._restart = restart

    def _more(self, want: int) -> bool:
        """Decode until ``want`` bytes are buffered past the read position, or the end."""
        while len(self._buf) - self._pos < want and not self._done:
            dec = self._dec
            if dec.eof:
                rest = dec.unused_data or self._pending
                self._pending = b""
                if not rest:
                    rest = self._raw.read(CHUNK)
                    self._in += len(rest)
                if (
                    not rest
                    or self._codec not in MULTI_MEMBER
                    or not rest.startswith(MULTI_MEMBER[self._codec])
                ):
                    self._done = True
                    break
                self._dec = DECODERS[self._codec]()
                self._pending = rest
                continue
            if self._pending:
                data, self._pending = self._pending, b""
            elif getattr(dec, "needs_input", True) is False:
                data = b""
            else:
                data = self._raw.read(CHUNK)
                self._in += len(data)
                if not data:
                    self._done = True
                    raise ValueError(f"{self._codec} stream is truncated")
            out = dec.decompress(data, CHUNK)
            self._pending = getattr(dec, "unconsumed_tail", b"") or self._pending
            self._out += len(out)
            self._budget.charge(len(out), self._in)
            self._buf = self._buf[self._pos :] + out
            self._pos = 0
        return len(self._buf) - self._pos >= want

    def read(self, n: int) -> bytes:
        self._more(n)
        out = self._buf[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def skip(self, n: int) -> int:
        done = 0
        while done < n:
            step = min(n - done, CHUNK)
            got = len(self.read(step))
            done += got
            if got < step:
                break
        return done

    def tell(self) -> int:
        return self._out - (len(self._buf) - self._pos)

    def reread(self, start: int, end: int) -> bytes | None:
        if self._restart is None or end - start > 4 * CHUNK:
            return None
        again = DecodedStream(self._restart(), self._codec, DecompressBudget(end + CHUNK, 0))
        again.skip(start)
        return again.read(end - start)


class DecompressBudget:
    """Total decompressed bytes allowed for one artifact, and the maximal expansion ratio."""

    __slots__ = ("max_bytes", "max_ratio", "used")

    def __init__(self, max_bytes: int, max_ratio: int) -> None:
        self.max_bytes = max_bytes
        self.max_ratio = max_ratio
        self.used = 0

    def charge(self, produced: int, consumed: int) -> None:
        self.used += produced
        if self.used > self.max_bytes:
            raise BudgetExceeded(
                "decompressed-size", f"more than {self.max_bytes} bytes after decompression"
            )
        if self.max_ratio and self.used > (1 << 24) and self.used > consumed * self.max_ratio:
            raise BudgetExceeded(
                "compression-ratio",
                f"{self.used} bytes from {consumed} compressed bytes "
                f"(ratio over {self.max_ratio}:1)",
            )


class Prefixed:
    """A source whose first bytes (already read to sniff it) are served again from memory."""

    __slots__ = ("_head", "_inner", "_pos")

    def __init__(self, head: bytes, inner: Source) -> None:
        self._head = head
        self._inner = inner
        self._pos = 0

    def read(self, n: int) -> bytes:
        if self._pos < len(self._head):
            out = self._head[self._pos : self._pos + n]
            self._pos += len(out)
            if len(out) < n:
                more = self._inner.read(n - len(out))
                self._pos += len(more)
                out += more
            return out
        out = self._inner.read(n)
        self._pos += len(out)
        return out

    def skip(self, n: int) -> int:
        done = 0
        if self._pos < len(self._head):
            done = min(n, len(self._head) - self._pos)
            self._pos += done
        if done < n:
            got = self._inner.skip(n - done)
            self._pos += got
            done += got
        return done

    def tell(self) -> int:
        return self._pos

    def reread(self, start: int, end: int) -> bytes | None:
        if end <= len(self._head):
            return self._head[start:end]
        return self._inner.reread(start, end)

    @property
    def size(self) -> int | None:
        return getattr(self._inner, "size", None)


class SourceFile(io.RawIOBase):
    """A read-only file object over a :class:`Source` (for ``tarfile`` stream mode)."""

    def __init__(self, src: Source) -> None:
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._src.read(len(b))
        b[: len(data)] = data
        return len(data)


class SliceIO(io.RawIOBase):
    """A seekable read-only window ``[start, start+length)`` of an open file (for zipfile)."""

    def __init__(self, f: BinaryIO, start: int, length: int) -> None:
        self._f = f
        self._start = start
        self._len = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._len}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), self._len - self._pos))
        if n == 0:
            return 0
        self._f.seek(self._start + self._pos)
        data = self._f.read(n)
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)


# a region whose every byte decides the verdict (a graph) is counted as read up to this size;
# past it, it holds embedded weights, which an identity must not re-read (see map_region)
_MARK_WHOLE = 16 * 1024 * 1024


def unpacker(st: struct.Struct, buf: Any) -> Callable[[int], tuple[Any, ...]]:
    """``st.unpack_from(buf, pos)`` as a function of ``pos``, for any buffer a parser gets
    from :func:`map_region`: a memory map, bytes, or a remote file's lazy buffer. Reading
    past the end raises ``struct.error`` for all of them."""
    lazy = getattr(buf, "unpacker", None)
    if lazy is not None:
        return lazy(st)  # type: ignore[no-any-return]
    return functools.partial(st.unpack_from, buf)


def mark_read(f: BinaryIO, start: int, length: int) -> None:
    """``f[start:start+length]`` was looked at through a memory map (:func:`map_region`):
    count it in the file's content identity as if it had been read (``content_id``). A
    parser marks what its verdict rests on, never tensor payloads it skipped."""
    from ..content_id import ReadLog

    if isinstance(f, ReadLog) and length > 0:
        f.mark(start, length)


def map_region(
    f: BinaryIO, start: int, length: int, *, all_decides: bool = False
) -> tuple[Any, Callable[[], None]]:
    """``f[start:start+length]`` as a buffer the parsers index, without reading it: a memory
    map of the file, or a zero-copy window of one when the region starts inside it (a model
    in an archive member, a llamafile's GGUF). Only a file that cannot be mapped (a member
    held in memory) is read. Returns the buffer and the function that releases it.

    ``all_decides``: every byte of the region decides the verdict (a protobuf or flatbuffer
    graph): up to 16 MiB it is marked as read for the content identity (:func:`mark_read`).

    A remote file (:mod:`modelscan_lite.remote.ranges`) gives a lazy buffer that fetches what
    is indexed; ``struct`` cannot read it, so parsers unpack through :func:`unpacker`."""
    if all_decides and length <= _MARK_WHOLE:
        mark_read(f, start, length)
    lazy = getattr(f, "lazy_region", None)
    if lazy is not None:  # a remote file: only the bytes indexed are fetched (remote.ranges)
        return lazy(start, length), lambda: None
    try:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both
        mapped = None
    if mapped is None or start + length > len(mapped):
        if mapped is not None:
            mapped.close()
        f.seek(start)
        return f.read(length), lambda: None
    if start == 0 and length == len(mapped):
        return mapped, mapped.close
    view = memoryview(mapped)[start : start + length]

    def release() -> None:
        view.release()
        # a parser that kept a slice of the window leaves the map to the collector
        with contextlib.suppress(BufferError):
            mapped.close()

    return view, release
