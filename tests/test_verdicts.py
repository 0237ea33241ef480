"""Pickle verdicts by exact identity (issue 9): attribute walks and re-exports under allowed
packages, call-throughs whose arguments are checked, and severity by what loading does.

Every stream here is assembled from opcodes; nothing is unpickled."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelscan_lite.allowlist import AllowlistError, parse_identity
from modelscan_lite.config import ConfigError, load_config
from modelscan_lite.engine import load_rules
from modelscan_lite.model import ArtifactResult, Finding, Severity
from samples.make_samples import (
    BINBYTES,
    EMPTY_DICT,
    EMPTY_TUPLE,
    EXT1,
    GLOBAL,
    MARK,
    NEWOBJ,
    NONE,
    REDUCE,
    SETITEM,
    TUPLE,
    U,
    call,
    payload_system,
    pk,
    torch_zip,
)

from .helpers import find, rules_of, scan_bytes

# the pickle suite runs on both walkers: the pure-Python reference and the compiled core
pytestmark = pytest.mark.usefixtures("walker")

FAILING = Severity.MEDIUM


def failing(result: ArtifactResult) -> list[str]:
    return [f.rule for f in result.findings if f.severity >= FAILING]


def at_key(result: ArtifactResult, rule: str, key: str) -> Finding:
    """The finding of ``rule`` whose location key is the global name ``key``."""
    hits = [f for f in result.findings if f.rule == rule and f.location.key == key]
    assert hits, [(f.rule, f.location.key, f.message) for f in result.findings]
    return hits[0]


# -- the allowlist is exact ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "qualname", "rule", "reached"),
    [
        # torch.serialization imports os; find_class walks serialization -> os -> system
        ("torch", "serialization.os.system", "P101", "os.system"),
        ("torch._utils", "os.system", "P101", "os.system"),
        # numpy's npyio module holds the pickle module
        ("numpy.lib._npyio_impl", "pickle.loads", "P103", "pickle.loads"),
        # sklearn modules hold numpy as `np`; numpy holds `lib`, ... subprocess is reachable
        ("sklearn.base", "np.testing._private.utils.subprocess.Popen", "P101", "subprocess.Popen"),
    ],
)
def test_module_attribute_walk_is_judged_as_what_it_reaches(
    tmp_path: Path, module: str, qualname: str, rule: str, reached: str
) -> None:
    data = pk(call(module, qualname, U("marker")), proto=2)
    result = scan_bytes(tmp_path, data)
    hit = at_key(result, rule, f"{module}.{qualname}")
    assert hit.location.offset == 2
    assert reached in hit.message or reached in (hit.evidence or "")


@pytest.mark.parametrize(
    ("module", "qualname"),
    [
        # a dotted qualname that walks through a module object is never an allowed identity,
        # even when the object it reaches is allowed under its own name
        ("torch.nn", "modules.linear.Linear"),
        ("sklearn", "linear_model._logistic.LogisticRegression"),
        ("numpy", "random.mtrand.RandomState"),
    ],
)
def test_walk_to_an_allowed_object_is_not_its_identity(
    tmp_path: Path, module: str, qualname: str
) -> None:
    result = scan_bytes(tmp_path, pk(GLOBAL(module, qualname), EMPTY_TUPLE, REDUCE, proto=2))
    hit = at_key(result, "P105", f"{module}.{qualname}")
    assert hit.severity == Severity.HIGH


def test_reexported_partial_is_not_functools_partial(tmp_path: Path) -> None:
    # torch.ao.quantization.observer does `from functools import partial`
    data = pk(
        call("torch.ao.quantization.observer", "partial", GLOBAL("builtins", "print")), proto=2
    )
    result = scan_bytes(tmp_path, data)
    hit = at_key(result, "P105", "torch.ao.quantization.observer.partial")
    assert "torch.ao.quantization.observer.partial(" in hit.message


def test_exactly_allowed_identity_is_silent(tmp_path: Path) -> None:
    data = pk(call("torch._utils", "_rebuild_tensor_v2", NONE), proto=2)
    assert failing(scan_bytes(tmp_path, data)) == []


def test_same_dotted_name_from_two_modules_is_two_identities(tmp_path: Path) -> None:
    data = pk(
        GLOBAL("collections", "OrderedDict"),
        EMPTY_TUPLE,
        REDUCE,
        GLOBAL("collections.OrderedDict", ""),
        proto=2,
    )
    # the second spelling is not a valid identity at all; the first stays allowed
    result = scan_bytes(tmp_path, data)
    assert all(f.location.key != "collections.OrderedDict" for f in result.findings)


# -- call-throughs ------------------------------------------------------------------------

UNKNOWN = ("shelve_helpers", "run")


@pytest.mark.parametrize(
    ("name", "stream"),
    [
        ("functools.partial", call("functools", "partial", GLOBAL(*UNKNOWN), U("x"))),
        ("collections.defaultdict", call("collections", "defaultdict", GLOBAL(*UNKNOWN))),
        (
            "copyreg._reconstructor",
            call("copyreg", "_reconstructor", GLOBAL(*UNKNOWN), GLOBAL("builtins", "object"), NONE),
        ),
        (
            "copyreg._reconstructor",
            call("copyreg", "_reconstructor", GLOBAL("builtins", "object"), GLOBAL(*UNKNOWN), NONE),
        ),
        (
            "torch._tensor._rebuild_from_type_v2",
            call(
                "torch._tensor",
                "_rebuild_from_type_v2",
                GLOBAL(*UNKNOWN),
                GLOBAL("torch", "Tensor"),
                MARK + U("x") + TUPLE,
                NONE,
            ),
        ),
        (
            "torch._utils._rebuild_wrapper_subclass",
            call("torch._utils", "_rebuild_wrapper_subclass", GLOBAL(*UNKNOWN)),
        ),
        (
            "numpy.random._pickle.__randomstate_ctor",
            call("numpy.random._pickle", "__randomstate_ctor", U("MT19937"), GLOBAL(*UNKNOWN)),
        ),
        (
            "numpy.random._pickle.__generator_ctor",
            call("numpy.random._pickle", "__generator_ctor", U("PCG64"), GLOBAL(*UNKNOWN)),
        ),
        (
            "numpy.random._pickle.__bit_generator_ctor",
            call("numpy.random._pickle", "__bit_generator_ctor", GLOBAL(*UNKNOWN)),
        ),
        (
            "numpy.random.__RandomState_ctor",
            call("numpy.random", "__RandomState_ctor", U("MT19937"), GLOBAL(*UNKNOWN)),
        ),
    ],
)
def test_call_through_argument_is_judged_as_called(
    tmp_path: Path, name: str, stream: bytes
) -> None:
    result = scan_bytes(tmp_path, pk(stream, proto=2))
    hit = at_key(result, "P105", "shelve_helpers.run")
    assert hit.severity == Severity.HIGH
    assert name in hit.message  # the message names the call-through that calls it
    assert "P110" not in rules_of(result)


@pytest.mark.parametrize("through", ["collections.defaultdict", "functools.partial"])
def test_call_through_to_a_dangerous_function_is_critical(tmp_path: Path, through: str) -> None:
    module, _, name = through.rpartition(".")
    data = pk(call(module, name, GLOBAL("posix", "system"), U("touch /tmp/x")), proto=2)
    hit = at_key(scan_bytes(tmp_path, data), "P101", "posix.system")
    assert hit.severity == Severity.CRITICAL
    assert through in hit.message


def test_call_through_with_allowed_arguments_is_silent(tmp_path: Path) -> None:
    streams = [
        call("functools", "partial", GLOBAL("torch._utils", "_rebuild_tensor_v2")),
        call("collections", "defaultdict", GLOBAL("builtins", "list")),
        call("collections", "defaultdict", NONE),
        call("numpy.random._pickle", "__randomstate_ctor", U("MT19937")),
        call(
            "numpy.random._pickle",
            "__randomstate_ctor",
            U("MT19937"),
            GLOBAL("numpy.random._pickle", "__bit_generator_ctor"),
        ),
    ]
    for i, stream in enumerate(streams):
        result = scan_bytes(tmp_path, pk(stream, proto=2), name=f"s{i}.pkl")
        assert failing(result) == [], (i, [(f.rule, f.message) for f in result.findings])


def test_call_through_argument_that_cannot_be_checked(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, pk(call("functools", "partial", EXT1(42), U("x")), proto=2))
    hit = find(result, "P109")
    assert "functools.partial" in hit.message and "extension code 42" in hit.message


def test_load_from_bytes_payload_is_scanned_inside(tmp_path: Path) -> None:
    inner = torch_zip([("data.pkl", payload_system())])
    data = pk(call("torch.storage", "_load_from_bytes", BINBYTES(inner)), proto=2)
    result = scan_bytes(tmp_path, data)
    hit = at_key(result, "P101", "posix.system")
    assert (hit.location.member or "").startswith("<bytes for torch.storage._load_from_bytes @")
    # the allowed call-through itself gives no finding
    assert all(f.location.key != "torch.storage._load_from_bytes" for f in result.findings)


def test_load_from_bytes_with_computed_bytes_cannot_be_checked(tmp_path: Path) -> None:
    computed = call("builtins", "bytes", U("x"))
    data = pk(call("torch.storage", "_load_from_bytes", computed), proto=2)
    assert "P109" in rules_of(scan_bytes(tmp_path, data))


@pytest.mark.parametrize("package", ["numpy.core", "numpy._core"])
def test_ufunc_reconstruct_resolves_to_an_import(tmp_path: Path, package: str) -> None:
    bad = pk(call(package, "_ufunc_reconstruct", U("posix"), U("system")), proto=2)
    hit = at_key(scan_bytes(tmp_path, bad, name="bad.pkl"), "P101", "posix.system")
    assert "_ufunc_reconstruct('posix', 'system')" in (hit.evidence or "")
    good = pk(call(package, "_ufunc_reconstruct", U("numpy"), U("log1p")), proto=2)
    assert failing(scan_bytes(tmp_path, good, name="good.pkl")) == []


# -- severity by what loading does ---------------------------------------------------------


def test_called_unknown_is_high_referenced_is_medium(tmp_path: Path) -> None:
    called = scan_bytes(tmp_path, pk(call(*UNKNOWN, U("x")), proto=2), name="c.pkl")
    assert find(called, "P105").severity == Severity.HIGH
    ref = pk(EMPTY_DICT, U("f"), GLOBAL(*UNKNOWN), SETITEM, proto=2)
    referenced = scan_bytes(tmp_path, ref, name="r.pkl")
    hit = at_key(referenced, "P110", "shelve_helpers.run")
    assert hit.severity == Severity.MEDIUM
    assert "P105" not in rules_of(referenced)


def test_newobj_counts_as_a_call(tmp_path: Path) -> None:
    data = pk(GLOBAL("__main__", "MyNet"), EMPTY_TUPLE, NEWOBJ, proto=2)
    assert at_key(scan_bytes(tmp_path, data), "P105", "__main__.MyNet")


def test_referenced_harmless_builtin_does_not_fail(tmp_path: Path) -> None:
    data = pk(EMPTY_DICT, U("hashfxn"), GLOBAL("builtins", "hash"), SETITEM, proto=2)
    assert failing(scan_bytes(tmp_path, data)) == []


def test_referenced_dangerous_global_still_critical(tmp_path: Path) -> None:
    data = pk(EMPTY_DICT, U("f"), GLOBAL("posix", "system"), SETITEM, proto=2)
    assert at_key(scan_bytes(tmp_path, data), "P101", "posix.system").severity == Severity.CRITICAL


@pytest.mark.parametrize(
    ("module", "name"), [("this", "s"), ("antigravity", "geohash"), ("venv.__main__", "x")]
)
def test_import_with_effects(tmp_path: Path, module: str, name: str) -> None:
    result = scan_bytes(tmp_path, pk(GLOBAL(module, name), proto=2))
    assert {"P111", "P101"} & rules_of(result), result.findings
    assert failing(result)


# -- user extensions are exact names --------------------------------------------------------


def test_parse_identity() -> None:
    assert parse_identity("mypkg.models.Net") == ("mypkg.models", "Net")
    assert parse_identity("mypkg.models:Net.Inner") == ("mypkg.models", "Net.Inner")
    for bad in ("mypkg.*", "mypkg.**", "re:^x$", "Net", "a..b", "a.b[0]"):
        with pytest.raises(AllowlistError):
            parse_identity(bad)


def test_config_rejects_patterns(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.modelscan-lite]\nallow-globals = ["my.**"]\n')
    with pytest.raises(ConfigError, match="allow-globals"):
        load_config(tmp_path / "pyproject.toml")


def test_user_allowed_exact_name(tmp_path: Path) -> None:
    from modelscan_lite.config import Config
    from modelscan_lite.scanner import build_policy, scan_file

    target = tmp_path / "m.pkl"
    target.write_bytes(pk(GLOBAL("__main__", "MyNet"), EMPTY_TUPLE, NEWOBJ, proto=2))
    config = Config(allow_globals=("__main__.MyNet",))
    assert failing(scan_file(str(target), build_policy(config), config)) == []
    config = Config(allow_globals=("__main__.Other",))
    assert "P105" in rules_of(scan_file(str(target), build_policy(config), config))


def test_allowlist_is_loaded_with_the_rules() -> None:
    allowlist = load_rules().allowlist
    assert len(allowlist.call_throughs) >= 15
    for through in allowlist.call_throughs.values():
        assert through.why and through.source and (through.args or through.state)
    assert allowlist.allows("torch._utils", "_rebuild_tensor_v2")
    assert allowlist.allows("functools", "partial")  # only as a checked call-through
    assert not allowlist.allows("torch", "serialization.os.system")


def test_calling_an_object_the_stream_built_cannot_be_checked(tmp_path: Path) -> None:
    # REDUCE whose callable is the result of an allowed constructor
    built = call("collections", "OrderedDict")
    result = scan_bytes(tmp_path, pk(built, MARK, U("x"), TUPLE, REDUCE, proto=2))
    hit = find(result, "P109")
    assert "collections.OrderedDict" in hit.message and hit.location.offset is not None


def _ndarray_wrapper(filename: str, subclass: tuple[str, str] = ("numpy", "ndarray")) -> bytes:
    return pk(
        GLOBAL("joblib.numpy_pickle", "NDArrayWrapper"),
        EMPTY_TUPLE,
        NEWOBJ,
        EMPTY_DICT,
        U("filename"),
        U(filename),
        SETITEM,
        U("subclass"),
        GLOBAL(*subclass),
        SETITEM,
        b"b",  # BUILD
        proto=2,
    )


@pytest.mark.parametrize(
    "filename", ["../../x/payload.npy", "/etc/payload.npy", "sub/../../p.npy", "C:\\p.npy"]
)
def test_legacy_joblib_sibling_file_escape(tmp_path: Path, filename: str) -> None:
    hit = at_key(scan_bytes(tmp_path, _ndarray_wrapper(filename)), "P401", filename)
    assert filename in hit.message and hit.severity == Severity.HIGH


def test_legacy_joblib_sibling_file_is_named(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, _ndarray_wrapper("model.pkl_01.npy"))
    assert at_key(result, "P402", "model.pkl_01.npy").severity == Severity.LOW
    assert failing(result) == []


def test_legacy_joblib_subclass_is_instantiated(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, _ndarray_wrapper("a.npy", UNKNOWN))
    assert "NDArrayWrapper" in at_key(result, "P105", "shelve_helpers.run").message


def test_reconstruct_only_class_rebuilt_is_silent_called_is_p105(tmp_path: Path) -> None:
    linear = ("torch.nn.modules.linear", "Linear")
    rebuilt = pk(GLOBAL(*linear), EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, b"b", proto=2)
    assert failing(scan_bytes(tmp_path, rebuilt, name="new.pkl")) == []
    called = pk(call(*linear, b"K\x04", b"K\x04"), proto=2)
    hit = at_key(
        scan_bytes(tmp_path, called, name="init.pkl"), "P105", "torch.nn.modules.linear.Linear"
    )
    assert hit.severity == Severity.HIGH and "Linear(4, 4)" in hit.message


def test_torchscript_classes_are_the_archives_own(tmp_path: Path) -> None:
    data_pkl = pk(GLOBAL("__torch__.mypkg.Net", "Net"), EMPTY_TUPLE, NEWOBJ, proto=2)
    scripted = torch_zip([("data.pkl", data_pkl), ("constants.pkl", pk(EMPTY_TUPLE, proto=2))])
    result = scan_bytes(tmp_path, scripted, name="scripted.pt")
    assert failing(result) == [], result.findings
    # the same class name in a plain torch.save zip is an import Python would attempt
    plain = scan_bytes(tmp_path, torch_zip([("data.pkl", data_pkl)]), name="plain.pt")
    assert at_key(plain, "P105", "__torch__.mypkg.Net.Net")


def test_evidence_builder_never_writes_to_stdout(tmp_path: Path) -> None:
    """fickling warns on stdout about STACK_GLOBAL operands it cannot type; stdout carries
    only the report (found on a real scikit-learn OrdinalEncoder joblib file)."""
    import subprocess
    import sys

    # STACK_GLOBAL with a computed operand, then a call: evidence is built for the finding
    data = pk(U("os"), call("builtins", "str", U("system")), b"\x93", U("x"), b"\x85R", proto=4)
    target = tmp_path / "m.pkl"
    target.write_bytes(data)
    out = subprocess.run(
        [sys.executable, "-m", "modelscan_lite", "scan", "--format", "json", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1
    import json

    report = json.loads(out.stdout)  # nothing but the report
    assert report["artifacts"][0]["findings"]


def test_scipy_distribution_setstate_exec_gadget_is_not_allowed(tmp_path: Path) -> None:
    """scipy.stats' rv_generic.__setstate__ runs exec(self._parse_arg_template) on a string
    from the pickled state (scipy 1.17.1 _distn_infrastructure.py:747); the generator refuses
    every rv_*_gen class, so rebuilding one is an unknown call."""
    state = pk(
        GLOBAL("scipy.stats._continuous_distns", "norm_gen"),
        EMPTY_TUPLE,
        NEWOBJ,
        EMPTY_DICT,
        U("_parse_arg_template"),
        U("import os; os.system('touch /tmp/x')"),
        SETITEM,
        b"b",
        proto=2,
    )
    hit = at_key(scan_bytes(tmp_path, state), "P105", "scipy.stats._continuous_distns.norm_gen")
    assert hit.severity == Severity.HIGH


def test_allowlist_lookup_is_exact_for_hostile_module_names(tmp_path: Path) -> None:
    allowlist = load_rules().allowlist
    assert allowlist.allows("torch._utils", "_rebuild_tensor_v2")
    for module in ("torch._utils\x1f", "\x1etorch._utils", "torch._util", "torch._utils\n"):
        assert not allowlist.allows(module, "_rebuild_tensor_v2"), repr(module)
    assert not allowlist.allows("torch._utils", "_rebuild_tensor_v2\ttensor-rebuild")
