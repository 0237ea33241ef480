"""The compiled pickle walker against the pure-Python reference: the same facts on random,
generated and mutated streams (differential fuzzing), and how the walker is chosen, reported
and refused.

The rest of the pickle suite runs on both walkers through the ``walker`` fixture; here the two
walk the same bytes side by side and every field of the result must match.
"""

from __future__ import annotations

import datetime
import os
import pickle
import random
import struct
from collections import OrderedDict
from pathlib import Path
from sys import getsizeof
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelscan_lite.formats import pickle_vm, walker_engine
from modelscan_lite.formats.pickle_vm import FileReader, Reader, StreamResult, walk_stream
from modelscan_lite.formats.streams import BytesSource
from modelscan_lite.limits import Deadline, Limits

from .conftest import ROOT, run_cli

needs_core = pytest.mark.skipif(
    not walker_engine.available() and not os.environ.get("CI"),
    reason="the compiled walker is not built here",
)

SMALL = Limits(max_opcodes=20_000, max_stack=500, max_memo=300, max_expansion=5_000)
LIMITS = (Limits(), SMALL)


def state(value: Any, seen: dict[int, int], depth: int = 0) -> Any:
    """The machine's value with every slot of its containers (what they kept, dropped and
    counted), each object dumped once (``("ref", n)`` after that: DAGs stay small)."""
    vm = pickle_vm
    t = type(value)
    if t not in (vm.Dct, vm.Seq, vm.Call, tuple, list) or depth > 8:
        return vm._short(value, 200) if t in (vm.Global, vm.Blob, vm.Opaque) else repr(value)
    if id(value) in seen:
        return ("ref", seen[id(value)])
    seen[id(value)] = len(seen)
    if t is tuple or t is list:
        return (t.__name__, [state(v, seen, depth + 1) for v in value])
    slots = {name: getattr(value, name) for name in t.__slots__}  # type: ignore[attr-defined]
    return (t.__name__, {k: state(v, seen, depth + 1) for k, v in sorted(slots.items())})


def facts(res: StreamResult) -> dict[str, Any]:
    """Every field of a walk's result; the top of the stack with its containers' state."""
    out: dict[str, Any] = {}
    for name in StreamResult.__slots__:
        value = getattr(res, name)
        if name in ("globals", "derived_calls"):
            value = {
                k: {s: getattr(u, s) for s in pickle_vm.GlobalUse.__slots__}
                for k, u in value.items()
            }
        elif name == "top":
            value = state(value, {})
        elif name == "code_objects":
            value = pickle_vm._short(value, 2000)
        out[name] = value
    return out


def walk(data: bytes, walker: str, limits: Limits, file_mode: bool, chunk: int) -> dict[str, Any]:
    """Walk ``data`` reading ``chunk`` bytes at a time (small chunks make opcode arguments
    straddle buffer refills: the core must hand those back to the Python loop)."""
    default = pickle_vm.CHUNK
    pickle_vm.CHUNK = chunk
    try:
        return _walk(data, walker, limits, file_mode)
    finally:
        pickle_vm.CHUNK = default


def _walk(data: bytes, walker: str, limits: Limits, file_mode: bool) -> dict[str, Any]:
    with walker_engine.use(walker):
        reader = (FileReader if file_mode else Reader)(BytesSource(data))
        streams = []
        budget = [limits.max_opcodes]
        while len(streams) < 4:  # stacked streams, as the pickle scanner walks them
            res = walk_stream(reader, limits, Deadline(30.0), budget)
            streams.append(facts(res))
            if res.error or reader.at_eof():
                break
        return {"streams": streams, "at": reader.tell()}


def same_on_both(data: bytes, file_mode: bool = False) -> None:
    for limits in LIMITS:
        for chunk in (61, pickle_vm.CHUNK):
            ref = walk(data, "python", limits, file_mode, chunk)
            got = walk(data, "compiled", limits, file_mode, chunk)
            assert got == ref, f"the walkers differ on {data[:200]!r}... ({chunk}-byte reads)"


# -- streams -----------------------------------------------------------------------------
def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=6)
        | st.tuples(inner, inner)
        | st.tuples(inner, inner, inner)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=5)
        | st.frozensets(st.integers(), max_size=4)
        | st.sets(st.text(max_size=4), max_size=4)
    )


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40),
    _containers,
    max_leaves=40,
)


def _shared(v: Any) -> Any:
    """Values that reach the memo twice (BINGET), and objects with REDUCE/BUILD."""
    return [v, v, OrderedDict(a=v), datetime.date(2020, 1, 2), {"k": (v, v)}]


# data opcodes with arguments, and the others the core hands back
_OPS: list[bytes] = [
    b"(", b"}", b"]", b")", b"\x8f", b"N", b"\x88", b"\x89", b"0", b"1", b"2", b"\x94",
    b"s", b"u", b"a", b"e", b"\x90", b"t", b"\x85", b"\x86", b"\x87", b"l", b"d", b"R", b"b",
    b"\x81", b"\x93", b"\x91", b".",
]  # fmt: skip


def _random_op(rng: random.Random) -> bytes:
    kind = rng.randrange(12)
    if kind == 0:
        return b"K" + bytes([rng.randrange(256)])
    if kind == 1:
        return b"M" + struct.pack("<H", rng.randrange(65536))
    if kind == 2:
        return b"J" + struct.pack("<i", rng.randrange(-(2**31), 2**31))
    if kind == 3:
        text = rng.choice(["a", "os", "system", "__setstate__", "\udcff", "x" * 300])
        raw = text.encode("utf-8", "surrogatepass")
        if rng.random() < 0.5 and len(raw) < 256:
            return b"\x8c" + bytes([len(raw)]) + raw
        return b"X" + struct.pack("<I", len(raw)) + raw
    if kind == 4:
        return b"h" + bytes([rng.randrange(8)])
    if kind == 5:
        return b"q" + bytes([rng.randrange(8)])
    if kind == 6:
        return b"G" + struct.pack(">d", rng.random())
    if kind == 7:
        n = rng.randrange(10)
        return b"\x8a" + bytes([n]) + rng.randbytes(n)
    if kind == 8:
        return b"C" + bytes([3]) + b"abc"
    if kind == 9:
        return b"cbuiltins\nlist\n" if rng.random() < 0.5 else b"j" + struct.pack("<I", 2)
    return rng.choice(_OPS)


def _op_stream(rng: random.Random) -> bytes:
    body = b"".join(_random_op(rng) for _ in range(rng.randrange(1, 80)))
    head = b"\x80" + bytes([rng.choice([2, 4, 5])])
    if rng.random() < 0.3:
        head += b"\x95" + struct.pack("<Q", rng.randrange(len(body) + 8))
    return head + body + b"."


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        if not out:
            break
        at = rng.randrange(len(out))
        how = rng.randrange(3)
        if how == 0:
            out[at] = rng.randrange(256)
        elif how == 1:
            del out[at : at + rng.randrange(1, 4)]
        else:
            out[at:at] = rng.randbytes(rng.randrange(1, 4))
    return bytes(out)


# -- differential fuzzing ------------------------------------------------------------------
@needs_core
@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=values, proto=st.sampled_from([0, 1, 2, 4, 5]), seed=st.integers(0, 2**32))
def test_walkers_agree_on_real_and_mutated_pickles(value: Any, proto: int, seed: int) -> None:
    data = pickle.dumps(_shared(value), protocol=proto)
    same_on_both(data)
    rng = random.Random(seed)
    for _ in range(3):
        same_on_both(_mutate(data, rng))
    if proto >= 4:
        same_on_both(data, file_mode=True)


@needs_core
@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32))
def test_walkers_agree_on_generated_opcode_streams(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(4):
        data = _op_stream(rng)
        same_on_both(data, file_mode=rng.random() < 0.3)


@needs_core
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300))
def test_walkers_agree_on_random_bytes(data: bytes) -> None:
    same_on_both(data)
    same_on_both(b"\x80\x04" + data)


@needs_core
def test_walkers_agree_on_the_shipped_pickle_samples() -> None:
    """Every pickle-family sample (attacks and benign), whole and cut short."""
    seen = 0
    for path in sorted((ROOT / "samples").rglob("*")):
        if not path.is_file() or path.stat().st_size > 1 << 20:
            continue
        data = path.read_bytes()
        if data[:1] != b"\x80" and data[:1] not in (b"(", b"c", b"]", b"}"):
            continue
        seen += 1
        same_on_both(data)
        same_on_both(data[: len(data) // 2])
    assert seen >= 20


@needs_core
def test_walkers_agree_on_expansion_bombs_and_budgets() -> None:
    """Shared containers (the expansion accounting the core keeps), a deep stack and a big
    memo (budgets the Python loop checks between the core's runs)."""
    bomb = b"\x80\x04]\x94" + b"(h\x00h\x00e" * 40 + b"."
    nested = b"\x80\x04" + b"]\x94(" * 300 + b"e" * 300 + b"."
    memo = b"\x80\x04]" + b"K\x01\x94" * 2000 + b"."
    tuples = b"\x80\x04" + b"K\x01\x85" * 50 + b"\x86" * 49 + b"."
    for data in (bomb, nested, memo, tuples):
        same_on_both(data)


# -- the core's own parts ---------------------------------------------------------------------
@needs_core
def test_core_sizes_match_getsizeof() -> None:
    """Memo.nbytes's sum, computed by the core without calling getsizeof for fixed-size
    types, equals sum(map(sys.getsizeof, ...)) on every kind of value the machine holds."""
    core = walker_engine.core()
    assert core is not None
    vm = pickle_vm
    values: list[Any] = [
        vm.Dct(), vm.Seq("set"), vm.Call(None, ()), vm.Global("os.system"),
        vm.Blob("bytes", 0, 9), vm.Opaque("x"), 1.5, None, True, False, 0, 2**200, -7,
        "", "a", "a" * 99, "k" * 4096, "\u20ac" * 5, "\U0001f600", "\xe9t\xe9",
        type("Text", (str,), {})("subclass"), b"", b"x" * 50, (), (1, 2), [1],
    ]  # fmt: skip
    values.append("".join(["late", "r"]).encode().decode())  # a fresh str
    for start in (0, 3, len(values)):
        assert core.sizes(values, start) == sum(map(getsizeof, values[start:]))


# -- choosing the walker ---------------------------------------------------------------------
def test_python_walker_uses_no_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(walker_engine.ENV, "python")
    assert walker_engine.core() is None
    assert "MODELSCAN_LITE_WALKER=python" in walker_engine.describe()
    assert walker_engine.fallback_notice() is None


def test_unknown_walker_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(walker_engine.ENV, "turbo")
    with pytest.raises(walker_engine.WalkerUnavailable, match="turbo"):
        walker_engine.core()
    proc = run_cli("scan", str(ROOT / "samples"), env={walker_engine.ENV: "turbo"})
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "MODELSCAN_LITE_WALKER='turbo' is not one of auto, compiled, python" in proc.stderr


@pytest.fixture
def no_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on an install built without a C compiler."""
    monkeypatch.setattr(walker_engine, "_loaded", [(None, "it is not installed (test)")])


def test_missing_core_falls_back_with_a_notice(no_core: None, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from modelscan_lite.cli import app

    assert walker_engine.core() is None
    sample = ROOT / "samples/P101/bad-posix-system.pkl"
    result = CliRunner().invoke(app, ["scan", "-f", "json", str(sample)])
    assert result.exit_code == 1, result.output
    assert '"P101"' in result.stdout
    notice = result.stderr
    assert "pure Python (the compiled core cannot be used: it is not installed (test))" in notice
    assert "MODELSCAN_LITE_WALKER=python" in notice
    assert "note:" not in result.stdout


def test_compiled_asked_for_but_missing_is_a_usage_error(
    no_core: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from modelscan_lite.cli import app

    monkeypatch.setenv(walker_engine.ENV, "compiled")
    result = CliRunner().invoke(app, ["scan", str(ROOT / "samples/P101/bad-posix-system.pkl")])
    assert result.exit_code == 2
    assert "MODELSCAN_LITE_WALKER=compiled, but the compiled pickle walker" in result.stderr


@needs_core
def test_stale_core_is_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A core compiled from another version of its C source (an edited checkout)."""
    (tmp_path / "_pickle_fast.c").write_text("/* edited */\n")
    monkeypatch.setattr(walker_engine, "__file__", str(tmp_path / "walker_engine.py"))
    monkeypatch.setattr(walker_engine, "_loaded", [])
    try:
        importable = walker_engine._load()
    finally:
        walker_engine._loaded.clear()
    assert importable == (None, "it was built from another version of _pickle_fast.c")


def test_version_names_the_walker() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert "pickle walker: " in proc.stdout
    proc = run_cli("version", env={walker_engine.ENV: "python"})
    assert "pickle walker: pure Python (MODELSCAN_LITE_WALKER=python)" in proc.stdout
