"""Random access to a remote file by HTTP-style range requests, under budgets.

:class:`RangeReader` is a read-only, seekable file object over ``fetch(start, end)`` (one
range request, however the backend makes it). Every parser reads a remote file through it
exactly as it reads a local one (``read``/``seek``/``tell``); parsers that index a memory map
of a local file get a :class:`LazyBuffer` instead (``streams.map_region`` asks the reader for
one), which fetches only the bytes indexed. Nothing is ever fetched whole unless it is small.

How bytes are fetched:

- in 64 KiB blocks, kept in a bounded LRU cache (a parser that re-reads a window costs no
  request);
- a read that needs several missing blocks makes one request for the run (coalescing);
- read-ahead: the first request takes the file's head (the whole file when it is small), a
  read at the end takes the tail (zip directories live there), and a read that continues the
  previous fetch doubles the next fetch up to 4 MiB (a pickle or a GGUF vocabulary streams);
- a failed request is retried with exponential backoff; an error that survives the retries
  is an :class:`OSError` (the file's scan error: exit 2);
- at most ``max_requests`` requests and ``max_bytes`` bytes per file: past them reading
  raises :class:`~modelscan_lite.formats.streams.BudgetExceeded` (a budget finding, never a
  silent pass).

``stats`` counts requests and bytes fetched, for the report.
"""

from __future__ import annotations

import functools
import io
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..formats.streams import BudgetExceeded

BLOCK = 64 * 1024
HEAD = 256 * 1024  # the first fetch: a safetensors header, a zip's local header, a pickle
SMALL = 1024 * 1024  # a file this small is fetched whole by its first request
TAIL = 128 * 1024  # a read in the last block fetches this much of the end (zip directories)
MAX_AHEAD = 4 * 1024 * 1024
CACHE_BYTES = 64 * 1024 * 1024
RETRIES = 3
BACKOFF = 0.25

Fetch = Callable[[int, int], bytes]


class RemoteReadError(OSError):
    """A range request failed after its retries."""


@dataclass
class FetchStats:
    """Requests and bytes one remote file cost."""

    requests: int = 0
    bytes: int = 0
    retries: int = 0


class RangeReader(io.RawIOBase):
    """A seekable, read-only file over ``size`` remote bytes; see the module docstring."""

    def __init__(
        self,
        fetch: Fetch,
        size: int,
        name: str,
        *,
        max_requests: int = 512,
        max_bytes: int = 256 * 1024 * 1024,
        retries: int = RETRIES,
        backoff: float = BACKOFF,
    ) -> None:
        super().__init__()
        self._fetch = fetch
        self.size = size
        self.name = name
        self._pos = 0
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._cached = 0
        self._max_requests = max_requests
        self._max_bytes = max_bytes
        self._retries = retries
        self._backoff = backoff
        self._next_sequential = -1  # the block after the last fetch
        self._ahead = BLOCK
        self._lock = threading.Lock()
        self.stats = FetchStats()
        # what went wrong, kept even when a parser swallows the exception: a read that
        # failed after its retries, and a budget that ran out (what, detail)
        self.failed: BaseException | None = None
        self.budget_hit: tuple[str, str] | None = None

    # -- io.RawIOBase --------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self._pos
        data = self.pread(self._pos, size)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def fileno(self) -> int:
        raise io.UnsupportedOperation("a remote file has no descriptor")

    # -- random access ---------------------------------------------------------------------
    def pread(self, start: int, n: int) -> bytes:
        """``n`` bytes at ``start`` (fewer at the end of the file), fetching what is missing."""
        end = min(self.size, start + max(0, n))
        if start >= end:
            return b""
        first, last = start // BLOCK, (end - 1) // BLOCK
        with self._lock:
            self._ensure(first, last)
            if first == last:
                block = self._blocks[first]
                out = block[start - first * BLOCK : end - first * BLOCK]
            else:
                parts = [self._blocks[i] for i in range(first, last + 1)]
                out = b"".join(parts)[start - first * BLOCK : end - first * BLOCK]
            self._evict()
        return out

    def byte_at(self, pos: int) -> int:
        index = pos // BLOCK
        block = self._blocks.get(index)
        if block is None:
            with self._lock:
                self._ensure(index, index)
                block = self._blocks[index]
                self._evict()
        return block[pos - index * BLOCK]

    def lazy_region(self, start: int, length: int) -> LazyBuffer:
        """``[start, start+length)`` as a buffer-like object (``streams.map_region``)."""
        return LazyBuffer(self, start, length)

    @property
    def n_blocks(self) -> int:
        return (self.size + BLOCK - 1) // BLOCK

    def _ensure(self, first: int, last: int) -> None:
        """Fetch the missing blocks of ``[first, last]``, one request per missing run."""
        i = first
        while i <= last:
            if i in self._blocks:
                self._blocks.move_to_end(i)
                i += 1
                continue
            j = i
            while j + 1 <= last and j + 1 not in self._blocks:
                j += 1
            self._fetch_run(i, j)
            i = j + 1

    def _fetch_run(self, first: int, last: int) -> None:
        """Fetch the missing blocks ``first..last`` and the read-ahead around them, in one
        request that never re-fetches a cached block."""
        total = self.n_blocks
        lo, hi = first, last
        if self.stats.requests == 0 and self.size <= SMALL:
            lo, hi = 0, total - 1  # a small file in one request
        elif self.stats.requests == 0 and first == 0:
            hi = max(hi, HEAD // BLOCK - 1)
        elif last >= total - 1 and first * BLOCK > self.size - TAIL:
            lo = max(0, (self.size - TAIL) // BLOCK)  # the tail: a zip directory is there
        if first == self._next_sequential:  # a stream read forward: fetch more each time
            self._ahead = min(self._ahead * 2, MAX_AHEAD)
            hi = max(hi, first + self._ahead // BLOCK - 1)
        else:
            self._ahead = BLOCK
        hi = min(hi, total - 1)
        while first > lo and first - 1 not in self._blocks:
            first -= 1
        while last < hi and last + 1 not in self._blocks:
            last += 1
        start, end = first * BLOCK, min(self.size, (last + 1) * BLOCK)
        data = self._request(start, end)
        for k in range(first, last + 1):
            piece = data[(k - first) * BLOCK : (k - first + 1) * BLOCK]
            self._blocks[k] = piece
            self._cached += len(piece)
        self._next_sequential = last + 1

    def _evict(self) -> None:
        """Drop the least recently used blocks past the cache size (after a read is served,
        so a read larger than the cache still gets all its blocks)."""
        while self._cached > CACHE_BYTES and len(self._blocks) > 1:
            _, old = self._blocks.popitem(last=False)
            self._cached -= len(old)

    def _request(self, start: int, end: int) -> bytes:
        if self.failed is not None:
            raise RemoteReadError(str(self.failed))
        if self.stats.requests >= self._max_requests:
            self._over(
                "budget-remote-requests",
                f"more than {self._max_requests} range requests for `{self.name}`; the "
                "rest of the file was not analysed",
            )
        if self.stats.bytes + (end - start) > self._max_bytes:
            self._over(
                "budget-remote-bytes",
                f"more than {self._max_bytes} bytes to fetch for `{self.name}` "
                f"({self.stats.bytes} fetched, {end - start} more asked); the rest of the "
                "file was not analysed",
            )
        try:
            return self._attempts(start, end)
        except RemoteReadError as exc:
            self.failed = exc
            raise

    def _over(self, what: str, detail: str) -> None:
        self.budget_hit = self.budget_hit or (what, detail)
        raise BudgetExceeded(what, detail)

    def _attempts(self, start: int, end: int) -> bytes:
        def attempt(n: int) -> None:
            self.stats.requests += 1
            self.stats.retries += n > 0

        try:
            data = with_retries(
                lambda: self._fetch(start, end), self._retries + 1, self._backoff, attempt
            )
        except Exception as exc:  # any client's exception: the read failed
            raise RemoteReadError(
                f"range {start}-{end - 1} of `{self.name}`: {_reason(exc)}"
            ) from None
        self.stats.bytes += len(data)
        if len(data) != end - start:
            raise RemoteReadError(
                f"range {start}-{end - 1} of `{self.name}`: {len(data)} bytes came back "
                f"instead of {end - start} (the file changed while it was read, or the "
                "server does not honour range requests)"
            )
        return data


T = TypeVar("T")


def with_retries(
    call: Callable[[], T],
    attempts: int = 3,
    backoff: float = 0.5,
    on_attempt: Callable[[int], None] | None = None,
) -> T:
    """``call()``, tried up to ``attempts`` times, sleeping ``backoff``, then twice that...
    between tries, while it fails on something :func:`transient`; ``on_attempt(n)`` is told
    of each try (0 first). The last failure is raised as it came."""
    for n in range(attempts):
        if on_attempt is not None:
            on_attempt(n)
        try:
            return call()
        except Exception as exc:
            if n == attempts - 1 or not transient(exc):
                raise
            time.sleep(backoff * 2**n)
    raise AssertionError("unreachable")


def transient(exc: BaseException) -> bool:
    """Worth a retry: timeouts, dropped connections, 5xx and 429 answers."""
    if isinstance(exc, FileNotFoundError | PermissionError):
        return False
    status = getattr(exc, "status", None) or getattr(
        getattr(exc, "response", None), "status_code", None
    )
    if isinstance(status, int):
        return status >= 500 or status == 429
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    name = type(exc).__name__
    if any(word in name for word in ("NotFound", "Gated", "Unauthorized", "Forbidden")):
        return False
    text = str(exc)
    return not any(word in text for word in ("401", "403", "404", "Not Found", "Unauthorized"))


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class LazyBuffer:
    """``length`` bytes of a :class:`RangeReader` from ``start``, indexed like the memory
    map a local file gets: ``buf[i]`` is an int, ``buf[a:b]`` bytes, ``len(buf)`` the length.
    Only the blocks indexed are fetched. ``struct`` cannot read it directly: parsers unpack
    through :func:`~modelscan_lite.formats.streams.unpacker`."""

    __slots__ = ("_len", "_reader", "_start")

    def __init__(self, reader: RangeReader, start: int, length: int) -> None:
        self._reader = reader
        self._start = start
        self._len = max(0, min(length, reader.size - start))

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, slice):
            a, b, step = key.indices(self._len)
            data = self._reader.pread(self._start + a, max(0, b - a))
            return data if step == 1 else data[::step]
        if key < 0:
            key += self._len
        if not 0 <= key < self._len:
            raise IndexError("index out of range")
        return self._reader.byte_at(self._start + key)

    def unpacker(self, st: struct.Struct) -> Callable[[int], tuple[Any, ...]]:
        """``st.unpack_from(self, pos)`` for this buffer: struct.error past its end."""
        return functools.partial(_unpack_lazy, st, self)


def _unpack_lazy(st: struct.Struct, buf: LazyBuffer, pos: int) -> tuple[Any, ...]:
    if pos < 0:
        raise struct.error("offset out of range")
    return st.unpack(buf[pos : pos + st.size])
