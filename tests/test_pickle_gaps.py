"""Pickle parser gaps of issue 9: FRAME reads of ``pickle.load(file)`` (P206), expansion
pickles (P301) and second stages in PyTorch storage members (A207)."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from modelscan_lite.formats.pickle_vm import Reader, walk_file_path, walk_stream
from modelscan_lite.formats.streams import BytesSource
from modelscan_lite.limits import Deadline, Limits
from samples.make_samples import (
    GLOBAL,
    REDUCE,
    TUPLE1,
    UNICODE,
    U,
    frame_divergence,
    memo_laughs,
    payload_system,
    torch_members,
    torch_zip,
)

from .helpers import find, rules_of, scan_bytes

# the pickle suite runs on both walkers: the pure-Python reference and the compiled core
pytestmark = pytest.mark.usefixtures("walker")

POP, STOP = b"0", b"."


def walk(data: bytes, limits: Limits | None = None):  # type: ignore[no-untyped-def]
    lim = limits or Limits()
    return walk_stream(Reader(BytesSource(data)), lim, Deadline(60), [lim.max_opcodes])


# -- P206: FRAME reads of pickle.load(file) ------------------------------------------------


def _framed(tail: bytes, after: bytes, big: bool) -> bytes:
    """PROTO 4, one FRAME ending with ``tail``, then ``after`` outside the frame. ``big``
    pads the frame past 128 KiB: a buffered ``open()`` then reads it as its own buffer too."""
    pad = b"B" + struct.pack("<I", 300_000) + b"p" * 300_000 + POP if big else b""
    window = pad + tail
    return b"\x80\x04\x95" + struct.pack("<Q", len(window)) + window + after


def _twin_text(big: bool) -> bytes:  # SHORT_BINUNICODE text runs past the frame
    loads_code = POP + b"N" + STOP
    n = len(loads_code) + 11
    after = b"x" * 11 + loads_code + POP + U("FILE") + STOP
    return _framed(b"\x8c" + bytes([n]) + b"y" * len(loads_code), after, big)


def _twin_line(big: bool) -> bytes:  # a protocol 0 text argument runs past the frame
    return _framed(b"VLO", b"ADS\n" + STOP, big)


def _twin_nested_frame(big: bool) -> bytes:  # a FRAME longer than what is left of the first
    after = U("FILE!!!!") + STOP
    return _framed(b"\x95" + struct.pack("<Q", len(after)) + U("LOADS") + STOP, after, big)


def _twin_length(big: bool) -> bytes:  # fickling's layout: a length field runs past it
    if not big:
        return frame_divergence(U("FILE"))
    body = b"\x00\x00" + (U("FILE") + b"(").ljust(261, b"N")
    return _framed(b"N(B\x07", b"\x01\x00\x00" + body + b"1" + STOP, big)


def _twin_bytes(big: bool) -> bytes:  # bytes payload: read through the frame's end, no drop
    return _framed(b"C" + bytes([6]) + b"abc", b"def" + STOP, big)


TWINS = {
    "text": _twin_text,
    "line": _twin_line,
    "nested-frame": _twin_nested_frame,
    "length": _twin_length,
    "bytes": _twin_bytes,
}

ORACLE = """
import io, json, pickle, sys
out = {}
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    got = {}
    for how, load in (
        ("loads", lambda: pickle.loads(data)),
        ("bytesio", lambda: pickle.load(io.BytesIO(data))),
        ("open", lambda: pickle.load(open(path, "rb", buffering=8192))),
    ):
        try:
            got[how] = repr(load())
        except Exception as exc:
            got[how] = "error: " + type(exc).__name__
    out[path] = got
print(json.dumps(out))
"""


def test_frame_reads_match_the_real_unpickler_on_harmless_twins(tmp_path: Path) -> None:
    """Differential oracle: the real C unpickler in a subprocess (each twin only returns a
    different literal) against the walker's two readings. ``loads`` == the first walk;
    ``load(BytesIO)`` (torch.load's data.pkl) == the file-path walk; a buffered ``open()``
    follows the file path for frames past its buffer and ``loads`` for small ones."""
    paths = {}
    for name, make in TWINS.items():
        for big in (False, True):
            path = tmp_path / f"{name}-{'big' if big else 'small'}.pkl"
            path.write_bytes(make(big))
            paths[path] = big
    proc = subprocess.run(
        [sys.executable, "-c", ORACLE, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    real = json.loads(proc.stdout)
    diverged = set()
    for path, big in paths.items():
        got = real[str(path)]
        data = path.read_bytes()
        first = walk(data)
        lim = Limits()
        walked = walk_file_path(BytesSource(data), first, lim, Deadline(60))
        second = walked[0] if walked else first
        assert repr(first.top) == got["loads"], path.name
        assert repr(second.top) == got["bytesio"], path.name
        assert got["open"] == (got["bytesio"] if big else got["loads"]), path.name
        if walked and walked[1]:
            diverged.add(path.name.split("-big")[0].split("-small")[0])
            assert got["bytesio"] != got["loads"]
    assert diverged == {"text", "line", "nested-frame", "length"}


def test_payload_hidden_after_a_frame_is_found_at_its_offset(tmp_path: Path) -> None:
    hidden = GLOBAL("os", "system") + UNICODE("touch marker") + TUPLE1 + REDUCE
    data = frame_divergence(hidden)
    result = scan_bytes(tmp_path, data)
    p101 = find(result, "P101")
    assert p101.location.offset == data.index(b"cos\nsystem")
    assert "os.system('touch marker')" in p101.message
    p206 = find(result, "P206")
    assert p206.location.offset == data.index(b"B\x07") + 1  # the dropped frame byte
    assert "pickle.load(file) reads this stream differently" in p206.message
    assert "1 import(s) or call(s) pickle.loads does not make" in p206.message
    assert "os.system" in (p206.evidence or "") or "os.system" in (p101.evidence or "")
    find(result, "P202")  # the straddle itself, as before


def test_payload_hidden_after_a_frame_in_a_torch_checkpoint(tmp_path: Path) -> None:
    hidden = GLOBAL("posix", "system") + UNICODE("touch marker") + TUPLE1 + REDUCE
    members = [(n, d) for n, d in torch_members() if n != "data.pkl"]
    data = torch_zip([("data.pkl", frame_divergence(hidden)), *members])
    result = scan_bytes(tmp_path, data, "model.pt")
    assert find(result, "P101", "archive/data.pkl").location.key == "posix.system"
    find(result, "P206", "archive/data.pkl")


def test_bytes_payload_through_a_frame_end_is_not_a_divergence(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, _twin_bytes(False))
    find(result, "P202")
    assert "P206" not in rules_of(result)


def test_real_framed_pickles_have_no_frame_findings(tmp_path: Path) -> None:
    obj = [1, b"y" * 100_000, list(range(50_000)), {"a": "b" * 70_000}]
    for proto in (4, 5):
        assert not rules_of(scan_bytes(tmp_path, pickle.dumps(obj, protocol=proto)))


# -- P301: expansion -----------------------------------------------------------------------


def _dup_laughs(levels: int, width: int) -> bytes:
    """fickling's globalLaughs.pt shape: nested MARKs, each level DUPed then LISTed."""
    return b"\x80\x04" + b"(" * levels + U("lol") + (b"2" * width + b"l") * levels + STOP


def _tuple_dag_key(depth: int) -> bytes:
    """A tuple DAG ``t = (t, t)`` used as a dict key: the load hashes 2**depth elements."""
    return b"\x80\x04}" + b")" + b"2\x86" * depth + b"N" + b"s" + STOP


def test_memo_expansion_pickle(tmp_path: Path) -> None:
    data = memo_laughs(10, 10)
    assert len(data) < 300
    finding = find(scan_bytes(tmp_path, data), "P301")
    # the eighth LIST (10 + 100 + ... + 10**8 elements) is the first past the budget
    assert finding.location.offset == data.index(b"q\x08") - 1
    assert "expands to 111,111,110 elements" in finding.message
    assert finding.severity.name.lower() == "high"


def test_dup_expansion_pickle(tmp_path: Path) -> None:
    data = _dup_laughs(9, 9)
    finding = find(scan_bytes(tmp_path, data), "P301")
    assert "expands to 111,111,110 elements" in finding.message
    assert "from 91 opcodes" in finding.message
    lists = [i for i, byte in enumerate(data) if byte == ord("l")]
    assert finding.location.offset == lists[-2]  # the eighth of nine levels crosses 10**8


def test_tuple_dag_hashed_at_load(tmp_path: Path) -> None:
    data = _tuple_dag_key(40)
    finding = find(scan_bytes(tmp_path, data), "P301")
    assert "elements" in finding.message
    # the walker itself never hashes the DAG (this returns at once)
    assert walk(data).stopped


def test_hashing_work_adds_up_over_keys(tmp_path: Path) -> None:
    # a 2**20-element tuple (under the budget) inserted as a set element 200 times
    data = (
        b"\x80\x04\x8f"
        + b")"
        + b"2\x86" * 20
        + b"\x94"
        + POP
        + b"("
        + b"h\x00" * 200
        + b"\x90"
        + STOP
    )
    finding = find(scan_bytes(tmp_path, data, limits=Limits(max_expansion=100_000_000)), "P301")
    assert "loading hashes tuples" in finding.message


def test_expansion_budget_is_configurable(tmp_path: Path) -> None:
    data = memo_laughs(4, 10)  # 11,110 elements
    assert "P301" not in rules_of(scan_bytes(tmp_path, data))
    low = scan_bytes(tmp_path, data, limits=Limits(max_expansion=1_000))
    assert "expands to 1,110 elements" in find(low, "P301").message


def test_self_reference_is_not_expansion(tmp_path: Path) -> None:
    data = b"\x80\x04]" + b"(" + b"2" * 50 + b"e" + b"(" + b"2" * 50 + b"e" + STOP
    assert "P301" not in rules_of(scan_bytes(tmp_path, data, limits=Limits(max_expansion=10)))


@pytest.mark.slow
def test_dense_benign_pickles_are_not_expansion(tmp_path: Path) -> None:
    records = [{"id": i, "name": f"n{i}", "v": i * 0.5} for i in range(300_000)]
    shared = {"cfg": list(range(100))}
    many = [shared] * 10_000  # shared references, but 10**6 elements: not an explosion
    for obj in (records, many, {f"k{i}": (i, (i, i)) for i in range(100_000)}):
        result = scan_bytes(tmp_path, pickle.dumps(obj, protocol=4))
        assert "P301" not in rules_of(result)


@pytest.mark.slow
def test_torch_state_dict_is_not_expansion(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    model = torch.nn.Sequential(*(torch.nn.Linear(8, 8) for _ in range(50)))
    torch.save({"model": model.state_dict(), "shared": [model.state_dict()] * 20}, path)
    from .helpers import scan

    assert not [f for f in scan(path).findings if f.rule in ("P301", "A207")]


# -- A207: storage members -----------------------------------------------------------------


def test_pickle_in_a_storage_member(tmp_path: Path) -> None:
    data = torch_zip([*torch_members(), ("data/1", payload_system())])
    result = scan_bytes(tmp_path, data, "model.pt")
    a207 = find(result, "A207", "archive/data/1")
    assert "holds a pickle (protocol 2)" in a207.message
    assert a207.severity.name.lower() == "high"
    p101 = find(result, "P101", "archive/data/1")
    assert p101.location.key == "posix.system"


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (None, "a zip archive"),
        (gzip.compress(payload_system(), mtime=0), "gzip-compressed a pickle"),
    ],
)
def test_archive_in_a_storage_member(tmp_path: Path, content: bytes | None, what: str) -> None:
    if content is None:
        import io

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("stage2.pkl", payload_system())
        content = buf.getvalue()
    data = torch_zip([*torch_members(), ("data/7", content)], root="ckpt")
    result = scan_bytes(tmp_path, data, "model.pt")
    assert what in find(result, "A207", "ckpt/data/7").message
    assert any(
        f.rule == "P101" and "ckpt/data/7" in (f.location.member or "") for f in result.findings
    )


def test_storage_bytes_that_resemble_other_things_are_not_flagged(tmp_path: Path) -> None:
    lookalikes = [
        b"\x80\x02" + bytes(range(256)) * 4,  # PROTO 2 then garbage
        b"(lp0\nI1\n" + b"\x00" * 64,  # a protocol 0 look-alike
        b"0.5 1.5 text-like floats\n" * 50,
        b"\x78\x9c" + bytes(range(200)),  # zlib header then non-deflate bytes
        b"PK\x03\x04" + b"\xff" * 40,  # zip magic with insane header fields
        struct.pack("<64f", *([1.0] * 64)),
    ]
    members = [(n, d) for n, d in torch_members()]
    members += [(f"data/{10 + i}", blob) for i, blob in enumerate(lookalikes)]
    result = scan_bytes(tmp_path, torch_zip(members), "model.pt")
    assert "A207" not in rules_of(result)
    assert not [f for f in result.findings if f.severity.name.lower() != "low"]


@pytest.mark.slow
def test_real_torch_checkpoint_storages_are_not_flagged(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    tensors = {
        "f32": torch.randn(64, 64, generator=gen),
        "f16": torch.randn(300, generator=gen).half(),
        "bf16": torch.randn(300, generator=gen).bfloat16(),
        "f64": torch.randn(100, generator=gen).double(),
        "c64": torch.randn(50, 2, generator=gen).contiguous().view(torch.complex64),
        "i64": torch.randint(-(2**40), 2**40, (200,), generator=gen),
        "u8": torch.randint(0, 256, (4096,), dtype=torch.uint8, generator=gen),
        "i8": torch.randint(-128, 128, (999,), dtype=torch.int8, generator=gen),
        "bool": torch.rand(333, generator=gen) > 0.5,
        "text": torch.frombuffer(bytearray(b"(dp0\nS'weight'\np1\n" * 30), dtype=torch.uint8),
        "proto": torch.frombuffer(bytearray(b"\x80\x04\x95" + bytes(500)), dtype=torch.uint8),
    }
    path = tmp_path / "model.pt"
    torch.save(tensors, path)
    from .helpers import scan

    result = scan(path)
    assert not [f for f in result.findings if f.rule in ("A207", "A205", "P301", "P206")]
    assert not [f for f in result.findings if f.severity.name.lower() != "low"]
