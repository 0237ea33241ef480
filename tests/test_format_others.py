"""The "other" model formats: XGBoost (JSON, UBJSON, legacy binary), LightGBM text, CatBoost,
Flax msgpack, llamafile, OpenVINO IR, Core ML. Real-library fixtures
(tests/data/formats/others, scripts/make_other_fixtures.py) pass with no failing finding; each
broken structure gives its rule at its location with its evidence; truncations and byte
mutations of every sample never crash or hang the scanner."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from modelscan_lite.model import Severity
from samples.formats import others as S

from .helpers import find, scan, scan_bytes

FIXTURES = Path(__file__).parent / "data" / "formats" / "others"
FIXTURE_FILES = sorted(p for p in FIXTURES.iterdir() if p.name != "MANIFEST.md")

EXPECTED_FORMAT = {
    "xgb-": ("xgboost-json", "xgboost-ubj"),
    "lgb-": ("lightgbm",),
    "cb-": ("catboost",),
}


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_real_library_files_pass(path: Path) -> None:
    result = scan(path)
    failing = [f for f in result.findings if f.severity >= Severity.MEDIUM]
    assert not failing, [(f.rule, f.message) for f in failing]
    assert result.error is None and result.skipped is None
    for prefix, formats in EXPECTED_FORMAT.items():
        if path.name.startswith(prefix):
            assert result.format in formats, result.format


def _one(tmp_path: Path, data: bytes, name: str, rule: str) -> str:
    result = scan_bytes(tmp_path, data, name)
    hit = find(result, rule)
    assert hit.location.path.endswith(name)
    return hit.message


# -- XGBoost, LightGBM, CatBoost (M220) -------------------------------------------------------


def test_xgboost_formats_recognised_by_content(tmp_path: Path) -> None:
    # named .bin, none of them is "unrecognised" (X201) or taken for another format
    for data, fmt in (
        (S.fixture("xgb-gbtree.json"), "xgboost-json"),
        (S.fixture("xgb-gbtree.ubj"), "xgboost-ubj"),
        (S.xgb_legacy([1, -1, -1], [2, -1, -1], [0, 0, 0]), "xgboost-binary"),
        (S.xgb_legacy([1, -1, -1], [2, -1, -1], [0, 0, 0], magic=False), "xgboost-binary"),
        (S.fixture("lgb-binary.txt"), "lightgbm"),
        (S.fixture("cb-symmetric.cbm"), "catboost"),
    ):
        result = scan_bytes(tmp_path, data, "model.bin")
        assert result.format == fmt
        assert not result.findings, [(f.rule, f.message) for f in result.findings]


def test_xgboost_child_out_of_range(tmp_path: Path) -> None:
    doc = S.xgb_doc([1, -1, -1], [7, -1, -1], [2147483647, 0, 0], [0, 0, 0])
    for data, name in ((S.xgb_json(doc), "m.json"), (S.ubj(doc), "m.ubj")):
        msg = _one(tmp_path, data, name, "M220")
        assert "node 0 points to child 7" in msg


def test_xgboost_shared_node_and_wrong_parent(tmp_path: Path) -> None:
    doc = S.xgb_doc([1, 2, -1], [2, 2, -1], [2147483647, 0, 0], [0, 0, 0])
    assert "two parents" in _one(tmp_path, S.xgb_json(doc), "m.json", "M220")
    doc = S.xgb_doc([1, -1, -1], [2, -1, -1], [2147483647, 2, 0], [0, 0, 0])
    assert "says its parent is 2" in _one(tmp_path, S.ubj(doc), "m.ubj", "M220")


def test_xgboost_feature_and_counts(tmp_path: Path) -> None:
    doc = S.xgb_doc([1, -1, -1], [2, -1, -1], [2147483647, 0, 0], [5, 0, 0])
    assert "splits on feature 5" in _one(tmp_path, S.xgb_json(doc), "m.json", "M220")
    doc = S.xgb_doc([1, -1, -1], [2, -1, -1], [2147483647, 0, 0], [0, 0, 0])
    doc["learner"]["gradient_booster"]["model"]["gbtree_model_param"]["num_trees"] = "3"  # type: ignore[index]
    assert "num_trees is 3" in _one(tmp_path, S.xgb_json(doc), "m.json", "M220")


def test_xgboost_ubjson_lies_about_sizes(tmp_path: Path) -> None:
    good = S.fixture("xgb-gbtree.ubj")
    at = good.index(b"left_children[$l#L") + len(b"left_children[$l#L")
    bad = good[:at] + (10_000).to_bytes(8, "big") + good[at + 8 :]
    assert "container length of 10000" in _one(tmp_path, bad, "m.ubj", "M220")
    assert "xgboost" in _one(tmp_path, good[:-40], "m.ubj", "M220")


def test_xgboost_legacy(tmp_path: Path) -> None:
    bad = S.xgb_legacy([1, -1, -1], [1, -1, -1], [0, 0, 0])
    assert "two parents" in _one(tmp_path, bad, "m.bin", "M220")
    bad = S.xgb_legacy([1, -1, -1], [2, -1, -1], [3, 0, 0])
    assert "feature 3" in _one(tmp_path, bad, "m.bin", "M220")


def test_lightgbm(tmp_path: Path) -> None:
    text = S.fixture("lgb-binary.txt")
    assert "tree_sizes puts it" in _one(tmp_path, S._lgb_tree_sizes_lie(text), "m.txt", "M220")
    assert "already used" in _one(tmp_path, S._lgb_child_cycle(text), "m.txt", "M220")
    line = next(x for x in text.split(b"\n") if x.startswith(b"split_feature="))
    bad = S._lgb_replace(text, b"split_feature", line[len(b"split_feature=") :][:-1] + b"9")
    assert "feature outside" in _one(tmp_path, bad, "m.txt", "M220")
    cat = S.fixture("lgb-categorical.txt")
    bad = S._lgb_replace(cat, b"cat_boundaries", b"0 1 99999")
    assert "cat_" in _one(tmp_path, bad, "m.txt", "M220")
    assert "end of trees" in _one(
        tmp_path, text.replace(b"end of trees", b"the end"), "m.txt", "M220"
    )


def test_lightgbm_line_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelscan_lite.formats import lightgbm_text

    monkeypatch.setattr(lightgbm_text, "MAX_LINE", 64)
    result = scan_bytes(tmp_path, S.fixture("lgb-binary.txt"), "m.txt")
    assert find(result, "X901").message


def test_catboost(tmp_path: Path) -> None:
    good = S.fixture("cb-symmetric.cbm")
    assert "tree sizes add up" in _one(tmp_path, S.cbm_tree_sizes_lie(good), "m.cbm", "M220")
    assert "declares" in _one(tmp_path, good[:-100], "m.cbm", "M220")
    assert "after a core" in _one(tmp_path, good + b"\0" * 8, "m.cbm", "M220")


# -- fuzz: truncations and mutations never crash or hang --------------------------------------


def _fuzz_inputs() -> list[tuple[str, bytes]]:
    seeds = [(p.name, p.read_bytes()) for p in FIXTURE_FILES if p.stat().st_size < 64_000]
    return seeds


@pytest.mark.parametrize("name,data", _fuzz_inputs(), ids=lambda v: v if isinstance(v, str) else "")
def test_fuzz_truncate_and_mutate(tmp_path: Path, name: str, data: bytes) -> None:
    rng = random.Random(name)
    cases = [data[: rng.randrange(len(data))] for _ in range(6)]
    for _ in range(10):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        cases.append(bytes(buf))
    for case in cases:
        start = time.monotonic()
        result = scan_bytes(tmp_path, case, name)
        assert result.error is None, result.error
        assert time.monotonic() - start < 10


# -- Flax msgpack (M221) ----------------------------------------------------------------------


def test_flax_arrays(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, S.flax_state(kernel=S.nd([2], "object", b"\0" * 16)), "f.msgpack")
    hit = find(result, "M221")
    assert hit.location.key == "params/Dense_0/kernel" and "dtype 'object'" in hit.message
    bad = S.flax_state(kernel=S.nd([1000, 1000], "float32", b"\0" * 16))
    hit = find(scan_bytes(tmp_path, bad, "f.msgpack"), "M221")
    assert hit.location.key == "params/Dense_0/kernel" and "buffer holds 16 bytes" in hit.message
    bad = S.flax_state(kernel=S.nd([2], "float32", b"\0" * 8), x=S.Ext(9, b"abc"))
    assert find(scan_bytes(tmp_path, bad, "f.msgpack"), "M221").location.key == "params/Dense_0/x"


def test_flax_recognised_under_any_name(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, S.fixture("flax-params.msgpack"), "model.bin")
    assert result.format == "flax-msgpack" and not result.findings


def test_flax_budgets(tmp_path: Path) -> None:
    from modelscan_lite.limits import Limits

    deep: object = S.nd([1], "int8", b"\0")
    for _ in range(100):
        deep = {"k": deep}
    result = scan_bytes(tmp_path, S.mp({"a": deep}), "f.msgpack")
    assert "deeper" in find(result, "X901").message
    wide = S.mp({"params": {f"w{i}": S.nd([1], "int8", b"\0") for i in range(200)}})
    result = scan_bytes(tmp_path, wide, "f.msgpack", limits=Limits(max_json_values=100))
    assert find(result, "X901")
    # a map that declares 2**32-1 entries in a small file: refused before any allocation
    lie = b"\x81\xa6params\xdf\xff\xff\xff\xff" + S.mp("k") + S.mp(S.nd([1], "int8", b"\0"))
    assert "map count" in find(scan_bytes(tmp_path, lie, "f.msgpack"), "M221").message


# -- llamafile and executables (M121, M122) ----------------------------------------------------


def test_llamafile_members_scanned(tmp_path: Path) -> None:
    from samples.make_samples import gguf_model

    result = scan_bytes(tmp_path, S.llamafile(gguf_model()[:60]), "m.llamafile")
    assert result.format == "executable"
    hit = find(result, "M121")
    assert "llamafile" in hit.message and "model.gguf, .args" in (hit.evidence or "")
    assert hit.severity == Severity.HIGH
    assert find(result, "G301", member="model.gguf")
    assert "M122" not in {f.rule for f in result.findings}


def test_executable_disguised(tmp_path: Path) -> None:
    from samples.make_samples import gguf_model

    for data, name in ((S.llamafile(gguf_model()), "model.gguf"), (S.elf_stub(), "w.safetensors")):
        result = scan_bytes(tmp_path, data, name)
        hit = find(result, "M122")
        assert hit.severity == Severity.CRITICAL and name.rsplit(".", 1)[1] in hit.message


def test_executable_sniff_is_strict(tmp_path: Path) -> None:
    from modelscan_lite.formats.llamafile import executable_kind

    assert executable_kind(b"MZ" + b"\0" * 100) is None  # no PE header
    assert executable_kind(b"\x7fELF\x09" + b"\0" * 30) is None
    assert executable_kind(S.elf_stub()) == "ELF x86-64"
    assert executable_kind(S.APE_HEAD) == "APE"


# -- OpenVINO IR (M120, M222, M320, M420) and Core ML (X903) ---------------------------------


def test_openvino_extension_layer(tmp_path: Path) -> None:
    xml = S.ov_ir('<layer id="3" name="decode" type="MyDecoder" version="my_extension"/>')
    hit = find(scan_bytes(tmp_path, xml, "model.xml"), "M120")
    assert hit.location.key == "layer 3 decode" and "my_extension" in hit.message
    assert 'type="MyDecoder"' in (hit.evidence or "")
    xml = S.ov_ir('<layer id="3" name="odd" type="RunScript" version="opset8"/>')
    assert "not an operation of opset8" in find(scan_bytes(tmp_path, xml, "m.xml"), "M120").message


def test_openvino_entities_refused(tmp_path: Path) -> None:
    bomb = S.ov_ir(prolog=S.BILLION_LAUGHS).replace(b'name="m"', b'name="&i;"')
    start = time.monotonic()
    result = scan_bytes(tmp_path, bomb, "model.xml")
    assert time.monotonic() - start < 5
    assert find(result, "M320").severity == Severity.HIGH


def test_openvino_weights_outside_bin(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"\0" * 64)
    result = scan_bytes(tmp_path, S.ov_ir(const='offset="32" size="64"'), "model.xml")
    hit = find(result, "M420")
    assert hit.location.key == "layer 1 w" and "32..96" in hit.message
    ok = scan_bytes(tmp_path, S.ov_ir(const='offset="0" size="64"'), "model.xml")
    assert "M420" not in {f.rule for f in ok.findings}


def test_openvino_malformed(tmp_path: Path) -> None:
    bad = S.ov_ir(edges='<edge from-layer="0" from-port="0" to-layer="99" to-port="0"/>')
    assert "'99'" in find(scan_bytes(tmp_path, bad, "m.xml"), "M222").message


def test_coreml_package_not_silent(tmp_path: Path) -> None:
    manifest = (
        b'{"fileFormatVersion": "1.0.0", "itemInfoEntries": {"A": {"author": '
        b'"com.apple.CoreML", "path": "com.apple.CoreML/model.mlmodel"}}, '
        b'"rootModelIdentifier": "A"}'
    )
    result = scan_bytes(tmp_path, manifest, "Manifest.json")
    # analysed since the Core ML parser (tests/test_format_coreml.py): no longer X903
    assert result.format == "coreml-package" and "X903" not in {f.rule for f in result.findings}


def test_sniffs_do_not_steal(tmp_path: Path) -> None:
    """Plain JSON, text, msgpack without Flax arrays and XML that is not an IR keep their
    old verdicts; the existing ONNX and SentencePiece samples keep their formats."""
    from modelscan_lite.formats.sniff import sniff

    assert sniff(b'{"learner_rate": 1, "x": [1, 2]}' + b" " * 20) == "text"
    assert sniff(b"tree\nnot lightgbm\n" + b"x" * 20) == "text"
    assert sniff(b'<?xml version="1.0"?>\n<svg></svg>\n') == "text"
    assert sniff(b"\x82\xa1a\x01\xa1b\x02" + b"\0" * 8) != "flax-msgpack"
    samples = Path(__file__).parent.parent / "samples"
    for p in list(samples.glob("O*/ok-*"))[:10] + list(samples.glob("A208/ok-*"))[:10]:
        if p.is_file():
            assert sniff(p.read_bytes()[:4096]) not in {
                "xgboost-json",
                "xgboost-ubj",
                "xgboost-binary",
                "lightgbm",
                "catboost",
                "flax-msgpack",
                "openvino-ir",
                "coreml-package",
                "executable",
            }, p
