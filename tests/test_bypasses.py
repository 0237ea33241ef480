"""One regression test per published scanner bypass (named after its advisory), plus the
gadget catalogue of ATTACKS.md: every gadget must fail the scan with the most specific rule."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import pytest

from samples.make_samples import (
    BENIGN_DICT,
    GLOBAL,
    MARK,
    STRING,
    TUPLE,
    U,
    break_crc,
    call,
    patch_zip_entry,
    payload_system,
    pk,
    rename_local,
    set_flag,
    torch_members,
    torch_zip,
)

from .helpers import find, rules_of, scan, scan_bytes

# the pickle suite runs on both walkers: the pure-Python reference and the compiled core
pytestmark = pytest.mark.usefixtures("walker")

GADGETS = {
    # (module, name) -> rule that must name it
    ("pip", "main"): "P101",  # CVE-2025-1716
    ("pip._internal.cli.main", "main"): "P101",
    ("asyncio.unix_events", "_UnixSubprocessTransport"): "P101",  # CVE-2025-10157
    ("pydoc", "pipepager"): "P101",
    ("pydoc", "locate"): "P101",
    ("venv", "create"): "P101",
    ("timeit", "timeit"): "P101",
    ("cProfile", "run"): "P101",
    ("profile", "run"): "P101",
    ("trace", "Trace"): "P101",
    ("code", "InteractiveInterpreter.runsource"): "P101",
    ("idlelib.autocomplete", "AutoComplete.fetch_completions"): "P101",
    ("lib2to3.pgen2.pgen", "generate_grammar"): "P101",
    ("doctest", "debug_script"): "P101",
    ("ensurepip", "bootstrap"): "P101",
    ("multiprocessing.util", "spawnv_passfds"): "P101",
    ("uuid", "_get_command_stdout"): "P101",
    ("imaplib", "IMAP4_stream"): "P101",
    ("_osx_support", "_read_output"): "P101",
    ("_aix_support", "_read_cmd_output"): "P101",
    ("numpy.f2py", "compile"): "P101",
    ("numpy.testing._private.utils", "runstring"): "P101",
    ("distutils.file_util", "write_file"): "P101",
    ("types", "CodeType"): "P101",
    ("cloudpickle.cloudpickle", "_make_function"): "P101",
    ("torch._inductor.codecache", "compile_file"): "P101",
    ("torch.utils.collect_env", "run"): "P101",
    ("torch.jit.unsupported_tensor_ops", "execWrapper"): "P101",
    ("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression"): "P101",
    ("mlflow.pyfunc", "load_model"): "P101",
    ("os", "system"): "P101",
    ("posix", "system"): "P101",
    ("nt", "system"): "P101",
    ("subprocess", "run"): "P101",
    ("builtins", "exec"): "P101",
    ("builtins", "compile"): "P101",
    ("runpy", "_run_code"): "P101",
    ("pty", "spawn"): "P101",
    ("webbrowser", "open"): "P101",
    ("ctypes", "CDLL"): "P101",
    ("pathlib", "os.system"): "P101",
    ("tempfile", "_os.system"): "P101",
    ("pkgutil", "resolve_name"): "P102",
    ("importlib", "import_module"): "P102",
    ("operator", "attrgetter"): "P102",
    ("operator", "methodcaller"): "P102",
    ("_operator", "itemgetter"): "P102",
    ("inspect", "getattr_static"): "P102",
    ("builtins", "getattr"): "P102",
    ("builtins", "object.__getattribute__"): "P102",
    # functools.partial is an allowed call-through: what it wraps is judged as called
    # (tests/test_verdicts.py), so partial('x') alone is harmless
    ("functools", "partialmethod"): "P102",
    ("copyreg", "add_extension"): "P102",
    ("pickle", "loads"): "P103",
    ("_pickle", "loads"): "P103",
    ("torch", "load"): "P103",
    ("torch.serialization", "load"): "P103",
    ("joblib", "load"): "P103",
    ("numpy", "load"): "P103",
    ("marshal", "loads"): "P103",
    ("pandas", "read_pickle"): "P103",
    ("builtins", "open"): "P104",
    ("_io", "FileIO"): "P104",
    ("socket", "socket"): "P104",
    ("shutil", "rmtree"): "P104",
    ("logging", "FileHandler"): "P104",
    ("urllib.request", "urlopen"): "P104",
    ("http.client", "HTTPSConnection"): "P104",
    ("ssl", "get_server_certificate"): "P104",
}


@pytest.mark.parametrize("gadget", sorted(GADGETS), ids=lambda g: ".".join(g))
def test_gadget_is_caught_by_its_rule(tmp_path: Path, gadget: tuple[str, str]) -> None:
    module, name = gadget
    data = pk(U(module), U(name), b"\x93", U("x"), b"\x85R", proto=4)
    result = scan_bytes(tmp_path, data)
    hit = find(result, GADGETS[gadget])
    assert f"{module}.{name}" in hit.message
    assert hit.severity.label == "critical"


def test_CVE_2025_1716_pip_main(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, pk(call("pip", "main", MARK, U("install"), U("evil"), TUPLE)))
    assert "pip.main" in find(result, "P101").message


def test_CVE_2025_10157_asyncio_subprocess(tmp_path: Path) -> None:
    data = pk(call("asyncio.unix_events", "_UnixSubprocessTransport", U("x")))
    assert "P101" in rules_of(scan_bytes(tmp_path, data))


def test_CVE_2025_10156_crc_mismatch_still_scanned(tmp_path: Path) -> None:
    bad = patch_zip_entry(torch_zip(torch_members(payload_system())), "archive/data.pkl", break_crc)
    result = scan_bytes(tmp_path, bad, "model.pt")
    find(result, "P101", "archive/data.pkl")
    find(result, "A204", "archive/data.pkl")


def test_CVE_2025_1945_flag_bits_still_scanned(tmp_path: Path) -> None:
    bad = patch_zip_entry(torch_zip(torch_members(payload_system())), "archive/data.pkl", set_flag)
    result = scan_bytes(tmp_path, bad, "model.pt")
    find(result, "P101", "archive/data.pkl")
    assert "encrypted" in find(result, "A204", "archive/data.pkl").message


def test_CVE_2025_1944_local_central_name_mismatch(tmp_path: Path) -> None:
    bad = patch_zip_entry(
        torch_zip(torch_members(payload_system())), "archive/data.pkl", rename_local
    )
    result = scan_bytes(tmp_path, bad, "model.pt")
    find(result, "P101", "archive/data.pkl")
    assert "archive/data.pkX" in find(result, "A204").message


def test_CVE_2025_1944_duplicate_names_both_scanned(tmp_path: Path) -> None:
    data = torch_zip([*torch_members(), ("data.pkl", payload_system())])
    result = scan_bytes(tmp_path, data, "model.pt")
    find(result, "A202", "archive/data.pkl#2")
    find(result, "P101", "archive/data.pkl#2")


def test_CVE_2025_1889_pickle_member_with_other_name(tmp_path: Path) -> None:
    proto0 = GLOBAL("os", "system") + MARK + STRING("id") + TUPLE + b"R."
    data = torch_zip([*torch_members(), ("extra/config.json", proto0)])
    result = scan_bytes(tmp_path, data, "model.pt")
    find(result, "P101", "archive/extra/config.json")
    find(result, "A203", "archive/extra/config.json")
    find(result, "A205", "archive/extra/config.json")


def test_CVE_2025_10155_raw_pickle_named_pytorch_model_bin(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, payload_system(), "pytorch_model.bin")
    assert result.format == "pickle"
    find(result, "P101")


def test_GHSA_97f8_7cmv_76j2_legacy_magic_from_eval(tmp_path: Path) -> None:
    from samples.make_samples import legacy_torch

    data = legacy_torch(magic=call("builtins", "eval", U("0x1950a86a20f9469cfc6c")))
    result = scan_bytes(tmp_path, data, "model.pt")
    assert "builtins.eval" in find(result, "P101").message


def test_legacy_five_stacked_pickles_payload_in_fourth(tmp_path: Path) -> None:
    from samples.make_samples import legacy_torch

    result = scan_bytes(tmp_path, legacy_torch(main=payload_system()), "model.pt")
    find(result, "P101")
    assert "P203" not in rules_of(result)
    assert result.format == "pickle"


def test_protectai_modelscan_85_stash_strings_then_memo(tmp_path: Path) -> None:
    data = Path(__file__).parent.parent / "samples/P101/bad-stash-in-dict-then-memo.pkl"
    assert "os.system" in find(scan(data), "P101").message


def test_nullifai_payload_then_broken_stream_in_7z(tmp_path: Path) -> None:
    py7zr = pytest.importorskip("py7zr")
    broken = payload_system()[:-1] + b"\xff\xff"
    target = tmp_path / "model.7z"
    with py7zr.SevenZipFile(target, "w") as archive:
        archive.writestr(broken, "model.pkl")
    result = scan(target)
    find(result, "P101", "model.pkl")
    find(result, "P201", "model.pkl")


def test_cpython_frame_straddle_differential(tmp_path: Path) -> None:
    hidden = U("h" * 30)
    data = b"\x80\x04\x95" + struct.pack("<Q", 3) + b"}" + hidden + b"N" + b"s" + b"."
    result = scan_bytes(tmp_path, data)
    find(result, "P202")


@pytest.mark.parametrize(
    "opcode_sample",
    [
        b"\x80\x02F1.5\n.",
        b"\x80\x05\x96" + struct.pack("<Q", 3) + b"abc.",
    ],
)
def test_opcodes_other_scanners_lack_do_not_stop_the_walk(
    tmp_path: Path, opcode_sample: bytes
) -> None:
    data = opcode_sample[:-1] + b"0" + call("posix", "system", U("x")) + b"."
    assert "P101" in rules_of(scan_bytes(tmp_path, data))


def test_joblib_payload_after_inline_buffer(tmp_path: Path) -> None:
    from samples.make_samples import SETITEMS, STOP, joblib_array

    data = joblib_array(1000, "f8", then=U("b") + call("posix", "system", U("x")) + SETITEMS + STOP)
    result = scan_bytes(tmp_path, data, "model.joblib")
    find(result, "P101")
    assert "X901" not in rules_of(result)


@pytest.mark.parametrize("codec", ["gzip", "bz2", "xz", "lzma", "zlib"])
def test_compressed_wrappers_are_opened_by_content(tmp_path: Path, codec: str) -> None:
    import bz2
    import gzip
    import lzma
    import zlib

    pack = {
        "gzip": gzip.compress,
        "bz2": bz2.compress,
        "xz": lzma.compress,
        "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
        "zlib": zlib.compress,
    }[codec]
    result = scan_bytes(tmp_path, pack(payload_system()), "model.joblib")
    find(result, "P101", f"<{codec}>")


@pytest.mark.parametrize(
    "name", ["weights.model", "weights", "weights.npy", "weights.safetensors", "weights.txt"]
)
def test_extension_lies(tmp_path: Path, name: str) -> None:
    result = scan_bytes(tmp_path, payload_system(), name)
    find(result, "P101")
    if name.endswith(".model"):  # ambiguous: gensim pickles are named so too
        assert "A203" not in {f.rule for f in result.findings}
    elif "." in name:
        find(result, "A203")


def test_size_gate_bypass_large_file_is_still_scanned(tmp_path: Path) -> None:
    """A 2 GiB padding payload (sparse on disk) before the call: scanned, by seeking."""
    target = tmp_path / "huge.pkl"
    pad = 2 << 30
    with open(target, "wb") as f:
        f.write(b"\x80\x04\x8e" + struct.pack("<Q", pad))
        f.seek(pad, os.SEEK_CUR)
        f.write(b"0" + call("posix", "system", U("x")) + b".")
    find(scan(target), "P101")


def test_zip_bomb_member_stops_at_budget(tmp_path: Path) -> None:
    from modelscan_lite.limits import Limits

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "a.pkl", b"\x80\x04\x8e" + struct.pack("<Q", 40 << 20) + b"\0" * (40 << 20) + b"N."
        )
    result = scan_bytes(
        tmp_path, buf.getvalue(), "bomb.zip", limits=Limits(max_decompressed=8 << 20)
    )
    find(result, "A301", "a.pkl")


def test_benign_dict_has_no_findings(tmp_path: Path) -> None:
    assert not scan_bytes(tmp_path, BENIGN_DICT).findings


@pytest.mark.parametrize(
    "ext", [b"\x82\x2a", b"\x83\x39\x05", b"\x84\x00\x01\x00\x00"], ids=["EXT1", "EXT2", "EXT4"]
)
def test_extension_codes_are_reported(tmp_path: Path, ext: bytes) -> None:
    result = scan_bytes(tmp_path, b"\x80\x02" + ext + b")R.")
    assert find(result, "P106").severity.label == "high"


@pytest.mark.parametrize(
    "operands",
    [
        STRING("os") + b"p0\n" + STRING("system") + b"p1\n0" + b"0g0\ng1\n",  # text PUT/GET
        b"Vos\n" + b"Vsystem\n",  # UNICODE
        STRING("os") + STRING("system"),  # STRING
        b"\x8c\x02os\x94\x8c\x06system\x94" + b"0" * 2 + b"h\x00h\x01",  # MEMOIZE + BINGET
    ],
    ids=["text-put-get", "unicode", "string", "memoize-binget"],
)
def test_stack_global_operand_spellings(tmp_path: Path, operands: bytes) -> None:
    data = b"\x80\x04" + operands + b"\x93" + U("id") + b"\x85R."
    assert "os.system" in find(scan_bytes(tmp_path, data), "P101").message


def test_non_string_memo_operand_is_reported_not_crashed(tmp_path: Path) -> None:
    data = b"\x80\x04K\x01\x94" + U("system") + b"h\x00\x8c\x02os\x93" + b"N."
    result = scan_bytes(tmp_path, data)
    assert result.error is None
    assert "P201" in rules_of(result) or "P101" in rules_of(result)


def test_dunder_import_is_a_resolver(tmp_path: Path) -> None:
    data = pk(call("builtins", "__import__", U("os")))
    assert "P102" in rules_of(scan_bytes(tmp_path, data))


def test_nesting_depth_budget_is_a_finding(tmp_path: Path) -> None:
    from modelscan_lite.limits import Limits
    from samples.make_samples import generic_zip

    data = payload_system()
    for i in range(8):
        data = generic_zip([(f"level{i}.zip", data)])
    result = scan_bytes(tmp_path, data, "deep.zip", limits=Limits(max_depth=4))
    assert "nested deeper" in find(result, "X901").message


def test_member_count_budget_is_a_finding(tmp_path: Path) -> None:
    from modelscan_lite.limits import Limits
    from samples.make_samples import generic_zip

    data = generic_zip([(f"m{i}.txt", b"x") for i in range(50)])
    result = scan_bytes(tmp_path, data, "many.zip", limits=Limits(max_members=10))
    assert "members" in find(result, "X901").message
