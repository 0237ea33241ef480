"""The range reader every parser reads a remote file through (modelscan_lite.remote.ranges):
byte-exact reads, coalesced and cached fetches, budgets that become findings, retries, and
failures that can never be swallowed; and every sample scanned through it gives exactly the
findings of a local scan."""

from __future__ import annotations

import contextlib
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from modelscan_lite.config import Config
from modelscan_lite.formats.streams import BudgetExceeded, unpacker
from modelscan_lite.remote.ranges import BLOCK, HEAD, LazyBuffer, RangeReader, RemoteReadError
from modelscan_lite.scanner import build_policy, scan_file, scan_reader

from .conftest import ROOT

SAMPLES = ROOT / "samples"


class Recorder:
    """A fetch over bytes in memory that records every request."""

    def __init__(self, data: bytes, fail: Callable[[int], BaseException | None] | None = None):
        self.data = data
        self.calls: list[tuple[int, int]] = []
        self.fail = fail

    def __call__(self, start: int, end: int) -> bytes:
        self.calls.append((start, end))
        if self.fail is not None and (exc := self.fail(len(self.calls))) is not None:
            raise exc
        return self.data[start:end]


def _reader(data: bytes, **kw: object) -> tuple[RangeReader, Recorder]:
    rec = Recorder(data)
    return RangeReader(rec, len(data), "f", backoff=0, **kw), rec  # type: ignore[arg-type]


def test_reads_are_byte_exact_at_any_offset() -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    r, _ = _reader(data)
    for start, n in [(0, 10), (BLOCK - 3, 7), (2 * BLOCK, 5 * BLOCK + 3), (len(data) - 5, 100)]:
        r.seek(start)
        assert r.read(n) == data[start : start + n]
    r.seek(0)
    assert r.read() == data
    assert r.read(5) == b""


def test_small_file_is_one_request_and_rereads_are_free() -> None:
    data = os.urandom(200_000)
    r, rec = _reader(data)
    r.seek(150_000)
    assert r.read(10) == data[150_000:150_010]
    r.seek(0)
    r.read(1000)
    assert rec.calls == [(0, len(data))]


def test_big_file_head_tail_and_coalescing() -> None:
    data = os.urandom(64 * 1024 * 1024)
    r, rec = _reader(data)
    assert r.read(8) == data[:8]
    assert rec.calls == [(0, HEAD)]  # the head in one request
    r.seek(len(data) - 22)
    r.read(22)  # a zip's end record: the tail comes with it
    assert rec.calls[-1][1] == len(data) and rec.calls[-1][1] - rec.calls[-1][0] >= 64 * 1024
    r.seek(10 * 1024 * 1024)
    r.read(5 * BLOCK)  # five missing blocks: one request
    assert len(rec.calls) == 3
    assert sum(e - s for s, e in rec.calls) == r.stats.bytes < 2 * 1024 * 1024


def test_forward_streaming_doubles_the_read_ahead() -> None:
    data = os.urandom(32 * 1024 * 1024)
    r, rec = _reader(data)
    r.seek(8 * 1024 * 1024)
    while r.tell() < 24 * 1024 * 1024:
        r.read(4096)
    sizes = [e - s for s, e in rec.calls]
    assert sizes == sorted(sizes) and sizes[-1] >= 2 * 1024 * 1024
    assert len(rec.calls) < 16  # 16 MiB in 4 KiB reads, not 4,096 requests


def test_request_budget_is_a_budget_error_and_remembered() -> None:
    data = os.urandom(16 * 1024 * 1024)
    r, _ = _reader(data, max_requests=3)
    with pytest.raises(BudgetExceeded) as info:
        for k in range(10):
            r.seek(k * 1024 * 1024)
            r.read(1)
    assert info.value.what == "budget-remote-requests"
    assert r.budget_hit is not None and r.budget_hit[0] == "budget-remote-requests"


def test_byte_budget_refuses_before_fetching() -> None:
    data = os.urandom(8 * 1024 * 1024)
    r, rec = _reader(data, max_bytes=1024 * 1024)
    r.read(10)
    with pytest.raises(BudgetExceeded):
        r.read(4 * 1024 * 1024)
    assert r.stats.bytes <= 1024 * 1024 and len(rec.calls) == 1


def test_transient_failures_are_retried() -> None:
    rec = Recorder(b"x" * 1000, fail=lambda n: ConnectionResetError("reset") if n < 3 else None)
    r = RangeReader(rec, 1000, "f", backoff=0)
    assert r.read(10) == b"x" * 10
    assert r.stats.retries == 2 and r.stats.requests == 3


def test_a_failure_that_outlives_retries_is_kept_even_when_swallowed() -> None:
    rec = Recorder(b"x" * 1000, fail=lambda n: TimeoutError("timed out"))
    r = RangeReader(rec, 1000, "f", backoff=0, retries=2)
    with contextlib.suppress(OSError):  # a parser that swallows read errors
        r.read(10)
    assert isinstance(r.failed, RemoteReadError) and "timed out" in str(r.failed)
    with pytest.raises(RemoteReadError):  # and nothing more is asked of the server
        r.read(1)
    assert len(rec.calls) == 3


def test_not_found_is_not_retried() -> None:
    rec = Recorder(b"x" * 1000, fail=lambda n: FileNotFoundError("gone"))
    r = RangeReader(rec, 1000, "f", backoff=0)
    with pytest.raises(RemoteReadError):
        r.read(1)
    assert len(rec.calls) == 1


def test_a_short_answer_is_an_error() -> None:
    def short(start: int, end: int) -> bytes:
        return b"x" * (end - start - 1)

    r = RangeReader(short, 1000, "f", backoff=0)
    with pytest.raises(RemoteReadError, match="instead of"):
        r.read(10)


def test_lazy_buffer_indexes_like_a_memory_map() -> None:
    data = os.urandom(5 * BLOCK)
    r, _ = _reader(data)
    buf = LazyBuffer(r, 100, len(data) - 100)
    view = memoryview(data)[100:]
    assert len(buf) == len(view)
    for i in (0, 1, BLOCK, len(view) - 1, -1):
        assert buf[i] == view[i]
    assert buf[10 : BLOCK * 2] == bytes(view[10 : BLOCK * 2])
    st = struct.Struct("<IQ")
    assert unpacker(st, buf)(7) == unpacker(st, view)(7)
    with pytest.raises(struct.error):
        unpacker(st, buf)(len(view) - 3)
    with pytest.raises(struct.error):
        unpacker(st, view)(len(view) - 3)
    with pytest.raises(IndexError):
        buf[len(view)]


def _remote_scan(path: Path) -> tuple[object, RangeReader]:
    config = Config(jobs=1)
    data = path.read_bytes()
    r = RangeReader(Recorder(data), len(data), str(path))
    result = scan_reader(
        cast(BinaryIO, r),
        len(data),
        str(path),
        build_policy(config),
        config,
        lambda: (None, None),
        time.perf_counter(),
    )
    return result, r


def test_every_sample_scans_the_same_through_ranges() -> None:
    """The acceptance point at its root: findings and locations of a remote read equal a
    local scan's, for every shipped sample (every format and attack)."""
    config = Config(jobs=1)
    policy = build_policy(config)
    differ = []
    for path in sorted(p for p in SAMPLES.rglob("*") if p.is_file()):
        local = scan_file(str(path), policy, config)
        remote, _ = _remote_scan(path)
        mine = [(f.rule, f.location, f.message) for f in local.findings]
        theirs = [(f.rule, f.location, f.message) for f in remote.findings]  # type: ignore[attr-defined]
        if mine != theirs or local.format != remote.format:  # type: ignore[attr-defined]
            differ.append(str(path))
    assert not differ


def test_a_budget_hit_inside_a_parser_is_a_finding(tmp_path: Path) -> None:
    """A file read past its byte budget: X901 names the budget, never a clean pass."""
    import struct as st

    header = b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
    big = st.pack("<Q", len(header)) + header + b"\0" * 16
    path = tmp_path / "m.safetensors"
    path.write_bytes(big)
    config = Config(jobs=1)
    r = RangeReader(Recorder(big), len(big), str(path), max_bytes=4)
    result = scan_reader(
        cast(BinaryIO, r),
        len(big),
        str(path),
        build_policy(config),
        config,
        lambda: (None, None),
        time.perf_counter(),
    )
    x901 = [f for f in result.findings if f.rule == "X901"]
    assert x901 and "budget" in x901[0].message
