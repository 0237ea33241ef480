"""The symbolic pickle machine: what it resolves, what it skips, and its budgets."""

from __future__ import annotations

import collections
import datetime
import pickle
import struct
from pathlib import Path

import pytest

from modelscan_lite.formats.pickle_vm import Reader, dtype_itemsize, walk_stream
from modelscan_lite.formats.streams import BytesSource
from modelscan_lite.limits import Deadline, Limits
from samples.make_samples import (
    BINBYTES8,
    BINGET,
    BINPUT,
    EMPTY_DICT,
    GLOBAL,
    MARK,
    POP,
    REDUCE,
    STACK_GLOBAL,
    TUPLE,
    TUPLE1,
    U,
    call,
    pk,
)

from .helpers import find, rules_of, scan_bytes

# the pickle suite runs on both walkers: the pure-Python reference and the compiled core
pytestmark = pytest.mark.usefixtures("walker")


def walk(data: bytes, limits: Limits | None = None):  # type: ignore[no-untyped-def]
    lim = limits or Limits()
    return walk_stream(Reader(BytesSource(data)), lim, Deadline(lim.max_seconds), [lim.max_opcodes])


class Point:
    def __init__(self) -> None:
        self.x = 1


VALUES = [
    None,
    True,
    1,
    -5,
    2**70,
    1.5,
    "text",
    "ü" * 300,
    b"bytes",
    b"x" * 10_000,
    bytearray(b"ab"),
    (1, 2),
    (1, 2, 3),
    (1, 2, 3, 4),
    [1, [2]],
    {"a": {"b": 1}},
    {1, 2},
    frozenset({3}),
    collections.OrderedDict(a=1),
    datetime.date(2024, 1, 1),
    complex(1, 2),
    range(3),
]


@pytest.mark.parametrize("proto", range(6))
def test_real_pickles_walk_cleanly_at_every_protocol(proto: int) -> None:
    data = pickle.dumps(VALUES, protocol=proto)
    res = walk(data)
    assert res.stopped and res.error is None and not res.anomalies
    assert res.end == len(data)
    assert "collections.OrderedDict" in res.globals


def test_protocol_5_out_of_band_free_buffers_and_frames() -> None:
    data = pickle.dumps([bytearray(b"z" * 70_000), b"y" * 200_000], protocol=5)
    res = walk(data)
    assert res.stopped and not res.anomalies


def test_large_payloads_are_skipped_not_kept(tmp_path: Path) -> None:
    blob = b"\0" * (64 << 20)
    data = pk(BINBYTES8(blob), POP, call("posix", "system", U("x")), proto=4)
    res = walk(data)
    assert res.stopped and "posix.system" in res.globals


def test_stack_global_operands_through_the_memo() -> None:
    data = pk(
        U("os"),
        BINPUT(3),
        U("system"),
        BINPUT(4),
        POP,
        POP,
        BINGET(3),
        BINGET(4),
        STACK_GLOBAL,
        U("id"),
        TUPLE1,
        REDUCE,
        proto=4,
    )
    res = walk(data)
    assert res.globals["os.system"].called == 1
    assert res.globals["os.system"].first_call == "os.system('id')"


def test_resolver_targets_become_calls() -> None:
    data = pk(
        GLOBAL("builtins", "getattr"),
        MARK,
        call("importlib", "import_module", U("os")),
        U("system"),
        TUPLE,
        REDUCE,
        MARK,
        U("id"),
        TUPLE,
        REDUCE,
        proto=2,
    )
    res = walk(data)
    assert "os.system" in res.derived_calls
    assert res.derived_calls["os.system"].called == 1


def test_python2_names_are_mapped() -> None:
    res = walk(b"c__builtin__\neval\n(S'1'\ntR.")
    assert "builtins.eval" in res.globals


def test_everything_before_an_error_is_reported() -> None:
    data = b"\x80\x02" + call("posix", "system", U("x")) + b"\xff"
    res = walk(data)
    assert "posix.system" in res.globals
    assert res.error_kind == "pickle-invalid" and not res.stopped


@pytest.mark.parametrize(
    "data, kind",
    [
        (b"\x80\x02h\x07.", "pickle-memo-missing"),
        (b"\x80\x020.", "pickle-stack-underflow"),
        (b"\x80\x02X\xff\xff\xff\x7fabc", "pickle-truncated"),
        (b"\x80\x09N.", "pickle-invalid"),
        (b"\x80\x02t.", "pickle-invalid"),
        (b"S'unterminated\n.", "pickle-invalid"),
        (b"\x80\x04\x8c\x02os\x88\x93.", "pickle-invalid"),
    ],
)
def test_broken_streams_end_with_a_named_error(data: bytes, kind: str) -> None:
    res = walk(data)
    assert res.error_kind == kind


def test_opcode_budget_is_a_finding_not_a_pass(tmp_path: Path) -> None:
    data = pk(EMPTY_DICT, *([b"N0"] * 200_000), call("posix", "system", U("x")), proto=2)
    result = scan_bytes(tmp_path, data, limits=Limits(max_opcodes=100_000))
    assert "X901" in rules_of(result)
    assert "budget" in find(result, "X901").message or "opcodes" in find(result, "X901").message


def test_time_budget_is_a_finding(tmp_path: Path) -> None:
    data = pk(*([b"N0"] * 300_000), proto=2)
    result = scan_bytes(tmp_path, data, limits=Limits(max_seconds=0.0))
    assert "X901" in rules_of(result)


def test_stack_budget(tmp_path: Path) -> None:
    data = pk(*([b"N"] * 5000), proto=2)
    result = scan_bytes(tmp_path, data, limits=Limits(max_stack=1000))
    assert "X901" in rules_of(result)


@pytest.mark.parametrize(
    "spec, size",
    [("f8", 8), ("<i4", 4), ("U10", 40), ("S5", 5), ("b1", 1), ("?", 1), ("c16", 16), ("M8", 8)],
)
def test_dtype_sizes(spec: str, size: int) -> None:
    from modelscan_lite.formats.pickle_vm import Call, Global

    assert dtype_itemsize(Call(Global("numpy.dtype"), (spec, False, True))) == (size, False)


def test_object_dtype_is_flagged_as_objects() -> None:
    from modelscan_lite.formats.pickle_vm import Call, Global

    assert dtype_itemsize(Call(Global("numpy.dtype"), ("O8", False, True))) == (8, True)


def test_concatenated_pickles_are_all_walked(tmp_path: Path) -> None:
    benign = pk(EMPTY_DICT, proto=2)
    result = scan_bytes(tmp_path, benign * 3 + pk(call("posix", "system", U("x")), proto=2))
    assert {"P101", "P203"} <= rules_of(result)


def test_legacy_magic_number_check() -> None:
    res = walk(pk(b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little"), proto=2))
    assert res.top == 0x1950A86A20F9469CFC6C


def test_frames_are_validated_like_the_c_unpickler() -> None:
    inner = U("k") + U("x" * 40)
    data = b"\x80\x04\x95" + struct.pack("<Q", 5) + EMPTY_DICT + inner + b"s."
    res = walk(data)
    assert res.stopped  # the C unpickler runs it
    assert any(k == "pickle-frame-straddle" for k, _, _ in res.anomalies)


def test_invalid_string_escapes_do_not_warn() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = walk(b"S'\\\xde'\n.")
    assert res.stopped
