"""Keras v3 ``.keras`` and legacy HDF5 ``.h5``: rules K101-K106, K201, K202, K901, real-library
benign models (tests/data/formats/keras/, made by scripts/make_keras_fixtures.py), one
regression test per published safe-mode bypass, the marshal reader and a little fuzzing."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import marshal
import random
import struct
import time
from pathlib import Path

import pytest

from modelscan_lite.formats import hdf5, pymarshal
from modelscan_lite.formats.keras import lambda_evidence
from modelscan_lite.model import Severity
from samples.formats import keras as ks

from .helpers import find, rules_of, scan, scan_bytes

DATA = Path(__file__).parent / "data" / "formats" / "keras"
REAL = sorted(p for p in DATA.iterdir() if p.suffix in (".keras", ".h5"))


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_keras_files_pass(path: Path) -> None:
    result = scan(path)
    assert result.error is None
    failing = [f for f in result.findings if f.severity >= Severity.MEDIUM]
    assert not failing, failing


def test_real_files_are_recognised() -> None:
    assert scan(DATA / "sequential.keras").format == "keras-v3"
    assert scan(DATA / "conv-legacy.h5").format == "hdf5"
    # plain data and a weights-only file: low X202 at most, never silent about being data
    assert rules_of(scan(DATA / "plain-data.h5")) == {"X202"}


def _samples() -> dict[str, bytes]:
    return ks.samples()


def _scan_sample(tmp_path: Path, key: str):  # type: ignore[no-untyped-def]
    return scan_bytes(tmp_path, _samples()[key], Path(key).name)


# -- K101: Lambda bytecode, with a disassembly as evidence ----------------------------------


def test_lambda_layer_is_critical_with_disassembly(tmp_path: Path) -> None:
    result = _scan_sample(tmp_path, "K101/bad-lambda.keras")
    f = find(result, "K101", "config.json")
    assert f.severity is Severity.CRITICAL
    assert f.location.key == "config.layers[1].config.function"
    assert f.evidence is not None
    assert "LOAD_GLOBAL" in f.evidence and "(__import__)" in f.evidence
    assert "system" in f.evidence and "modelscan-lite-sample-marker" in f.evidence
    assert "without marshal.loads" in f.evidence


def test_lambda_in_nested_submodel_inside_wrapper(tmp_path: Path) -> None:
    f = find(_scan_sample(tmp_path, "K101/bad-lambda-nested-submodel.keras"), "K101")
    assert f.location.key == "config.layers[1].config.layer.config.layers[1].config.function"


def test_lambda_as_activation_is_found(tmp_path: Path) -> None:
    f = find(_scan_sample(tmp_path, "K101/bad-lambda-activation.keras"), "K101")
    assert f.location.key == "config.layers[1].config.activation"


def test_cve_2025_9905_lambda_in_legacy_h5(tmp_path: Path) -> None:
    """safe_mode is ignored for HDF5 models: the Lambda in model_config is found."""
    f = find(_scan_sample(tmp_path, "K101/bad-lambda-legacy.h5"), "K101")
    assert f.location.key == "model_config.config.layers[1].config.function"
    assert f.evidence is not None and "__import__" in f.evidence


def test_cve_2024_3660_lambda_bytecode(tmp_path: Path) -> None:
    """Keras before 2.13 (no safe mode) runs any Lambda: every lambda is critical."""
    result = _scan_sample(tmp_path, "K101/bad-lambda.keras")
    assert "K101" in rules_of(result)


# -- K102-K106: identities -------------------------------------------------------------------


def test_cve_2025_1550_module_function(tmp_path: Path) -> None:
    f = find(_scan_sample(tmp_path, "K102/bad-module-function.keras"), "K102")
    assert f.severity is Severity.CRITICAL
    assert "`os.system`" in f.message
    assert f.location.key == "config.layers[1].config.function"
    assert "K102" in rules_of(_scan_sample(tmp_path, "K102/bad-builtins-exec.keras"))
    assert "K102" in rules_of(_scan_sample(tmp_path, "K102/bad-legacy-function-module.h5"))


def test_builtin_keras_function_is_allowed(tmp_path: Path) -> None:
    assert not rules_of(_scan_sample(tmp_path, "K102/ok-builtin-activation.keras"))


def test_external_class_is_high(tmp_path: Path) -> None:
    f = find(_scan_sample(tmp_path, "K103/bad-external-class.keras"), "K103")
    assert f.severity is Severity.HIGH and "mypkg.layers.Evil" in f.message


def test_cve_2025_8747_get_file(tmp_path: Path) -> None:
    f = find(_scan_sample(tmp_path, "K104/bad-get-file.keras"), "K104")
    assert f.severity is Severity.CRITICAL and "keras.utils.get_file" in f.message


def test_cve_2025_9906_enable_unsafe_deserialization(tmp_path: Path) -> None:
    result = _scan_sample(tmp_path, "K104/bad-enable-unsafe-then-lambda.keras")
    assert "keras.config.enable_unsafe_deserialization" in find(result, "K104").message
    assert "K101" in rules_of(result)
    variant = _scan_sample(tmp_path, "K104/bad-set-global-attribute.keras")
    assert "set_global_attribute" in find(variant, "K104").message


def test_cve_2025_49655_torch_module_wrapper(tmp_path: Path) -> None:
    result = _scan_sample(tmp_path, "K104/bad-torch-module-wrapper.keras")
    assert "TorchModuleWrapper" in find(result, "K104").message
    # the pickle torch.load would read is scanned as a pickle
    p101 = find(result, "P101")
    assert "config.module" in (p101.location.member or "")


def test_cve_2026_1462_tfsm_layer(tmp_path: Path) -> None:
    assert "TFSMLayer" in find(_scan_sample(tmp_path, "K104/bad-tfsm-layer.keras"), "K104").message


def test_custom_objects(tmp_path: Path) -> None:
    f = find(_scan_sample(tmp_path, "K105/bad-registered-custom.keras"), "K105")
    assert f.severity is Severity.MEDIUM and "my_package>MyLayer" in f.message
    assert "K105" in rules_of(_scan_sample(tmp_path, "K105/bad-unknown-legacy-class.h5"))
    assert not rules_of(_scan_sample(tmp_path, "K105/ok-legacy.h5"))


def test_unlisted_keras_function(tmp_path: Path) -> None:
    f = find(_scan_sample(tmp_path, "K106/bad-keras-utility.keras"), "K106")
    assert "keras.utils.plot_model" in f.message


# -- structure ------------------------------------------------------------------------------


def test_malformed_config(tmp_path: Path) -> None:
    f = find(_scan_sample(tmp_path, "K201/bad-invalid-json.keras"), "K201", "config.json")
    assert "not valid JSON" in f.message
    assert "K201" in rules_of(_scan_sample(tmp_path, "K201/bad-not-keras-object.keras"))


def test_malformed_and_dense_hdf5(tmp_path: Path) -> None:
    assert "K202" in rules_of(_scan_sample(tmp_path, "K202/bad-truncated.h5"))
    assert "K901" in rules_of(_scan_sample(tmp_path, "K901/bad-dense-attributes.h5"))


def test_config_budget_is_reported(tmp_path: Path) -> None:
    from modelscan_lite.limits import Limits

    data = ks.keras_zip(ks.sequential([ks.dense()]))
    result = scan_bytes(tmp_path, data, "m.keras", limits=Limits(max_config_json_bytes=100))
    assert "X901" in rules_of(result)


# -- the marshal reader ---------------------------------------------------------------------


def test_marshal_reader_matches_real_code_objects() -> None:
    def sample(x: int) -> int:
        import os

        return len(os.sep) + x + len([y for y in range(3)])

    code = pymarshal.read_code(marshal.dumps(sample.__code__))
    assert code.name == "sample" and "os" in code.names
    assert code.code == sample.__code__.co_code
    assert code.varnames[: len(sample.__code__.co_varnames)] == sample.__code__.co_varnames
    text = "\n".join(pymarshal.disassemble(code))
    assert "IMPORT_NAME" in text and "<listcomp>" in text


def test_marshal_reader_never_calls_marshal_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object) -> None:
        raise AssertionError("marshal.loads called")

    monkeypatch.setattr(marshal, "loads", refuse)
    evidence, names = lambda_evidence(ks.LAMBDA_B64, "test")
    assert "system" in names and "RESUME" in evidence


def test_marshal_reader_rejects_garbage_quickly() -> None:
    rng = random.Random(7)
    raw = base64.b64decode(ks.LAMBDA_B64)
    start = time.monotonic()
    for i in range(2000):
        b = bytearray(raw)
        for _ in range(rng.randrange(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        blob = bytes(b[: rng.randrange(1, len(b) + 1)]) if i % 2 else bytes(b)
        try:
            code = pymarshal.read_code(blob)
            pymarshal.disassemble(code)
        except pymarshal.MarshalError:
            pass
    # huge counts and deep nesting are refused, not allocated
    for blob in (b"(" + struct.pack("<i", 2**30), b"[" * 5000, b"l" + struct.pack("<i", 10**6)):
        with pytest.raises(pymarshal.MarshalError):
            pymarshal.read_code(blob)
    assert time.monotonic() - start < 20


# -- fuzz: truncations and mutations never crash the scanner ---------------------------------


@pytest.mark.parametrize(
    "key", ["K101/bad-lambda.keras", "K101/bad-lambda-legacy.h5", "K105/ok-legacy.h5"]
)
def test_mutations_never_crash(tmp_path: Path, key: str) -> None:
    data = _samples()[key]
    rng = random.Random(key)
    for i in range(40):
        b = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        if i % 4 == 0:
            b = b[: rng.randrange(1, len(b))]
        result = scan_bytes(tmp_path, bytes(b), Path(key).name)
        assert result.error is None
        assert "X904" not in rules_of(result)


def test_hdf5_reader_on_mutated_real_file() -> None:
    data = (DATA / "conv-legacy.h5").read_bytes()
    rng = random.Random(3)
    for _ in range(300):
        b = bytearray(data)
        for _ in range(8):
            b[rng.randrange(2048)] = rng.randrange(256)
        with contextlib.suppress(hdf5.HDF5Error, struct.error, IndexError):
            hdf5.read_root_attributes(io.BytesIO(bytes(b)), 0, len(b))


def test_hdf5_reader_reads_keras_attributes() -> None:
    path = DATA / "conv-legacy.h5"
    with path.open("rb") as f:
        attrs = hdf5.read_root_attributes(f, 0, path.stat().st_size)
    assert json.loads(attrs.values["model_config"] or b"")["class_name"] == "Sequential"
    assert attrs.values["keras_version"] == b"3.15.1"
    path = DATA / "latest-format-config.h5"  # superblock 3, OHDR headers
    with path.open("rb") as f:
        attrs = hdf5.read_root_attributes(f, 0, path.stat().st_size)
    assert b"Sequential" in (attrs.values["model_config"] or b"")
