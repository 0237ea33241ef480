"""TensorFlow SavedModel and TFLite: sniffing, op checks, saver and asset logic, flatbuffer
bounds, benign real-library fixtures (tests/data/formats/tensorflow, made by
scripts/make_tensorflow_fixtures.py with TF 2.21) and a little fuzzing."""

from __future__ import annotations

import io
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from modelscan_lite.formats.base import Context
from modelscan_lite.formats.sniff import sniff
from modelscan_lite.formats.streams import DecompressBudget
from modelscan_lite.formats.tensorflow import (
    asset_problem,
    op_lists,
    scan_saved_model,
    scan_tflite,
    sniff_fingerprint,
    sniff_keras_metadata,
    sniff_saved_model,
)
from modelscan_lite.limits import Deadline, Limits
from modelscan_lite.model import Location, Severity
from samples.formats import tensorflow as S

from .helpers import scan, scan_bytes

DATA = Path(__file__).parent / "data" / "formats" / "tensorflow"
ROOT = Path(__file__).parent.parent
FIXTURES = sorted(p for p in DATA.rglob("*") if p.is_file() and p.suffix in (".pb", ".tflite"))


def _ctx() -> Context:
    return Context(Limits(), Deadline(30), DecompressBudget(1 << 30, 2000))


def _facts(data: bytes, tflite: bool = False) -> Context:
    ctx = _ctx()
    fn = scan_tflite if tflite else scan_saved_model
    fn(io.BytesIO(data), 0, len(data), Location("m"), ctx)
    return ctx


def _failing(result: object) -> list[tuple[str, str]]:
    return [
        (f.rule, f.message)
        for f in result.findings  # type: ignore[attr-defined]
        if f.severity >= Severity.MEDIUM
    ]


# -- benign files of the real library -----------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(DATA)))
def test_real_fixture_has_no_failing_finding(path: Path) -> None:
    result = scan(path)
    assert result.format in ("tf-savedmodel", "tf-keras-metadata", "tf-fingerprint", "tflite")
    # keras_metadata.pb goes through the Keras checks too: tf.keras's JSON encodings of
    # tuples, TensorShape and TypeSpec are values, not custom objects
    failing = _failing(result)
    assert not failing, failing


def test_fixture_formats() -> None:
    assert scan(DATA / "savedmodel-module" / "saved_model.pb").format == "tf-savedmodel"
    assert scan(DATA / "savedmodel-module" / "fingerprint.pb").format == "tf-fingerprint"
    assert scan(DATA / "savedmodel-tf-keras" / "keras_metadata.pb").format == "tf-keras-metadata"
    flex = scan(DATA / "flex-matrix-inverse.tflite")
    assert [(f.rule, f.location.key) for f in flex.findings] == [("F106", "operator_codes[0]")]


def test_saver_ops_of_real_models_are_the_savers() -> None:
    """Every real SavedModel has SaveV2/RestoreV2/MergeV2Checkpoints: none is reported."""
    for d in ("savedmodel-module", "savedmodel-keras-export", "savedmodel-lookup-asset"):
        data = (DATA / d / "saved_model.pb").read_bytes()
        assert b"SaveV2" in data and b"RestoreV2" in data
        assert not [f for f in _facts(data).facts if f.kind.startswith("tensorflow.")]


def test_lookup_table_asset_is_fed_not_reported() -> None:
    data = (DATA / "savedmodel-lookup-asset" / "saved_model.pb").read_bytes()
    assert b"InitializeTableFromTextFileV2" in data
    assert not _facts(data).facts


# -- the bad samples: rule, location, evidence --------------------------------------------------


def _sample(name: str) -> bytes:
    return S.samples()[name]


def test_readfile_passwd(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, _sample("F102/bad-readfile-passwd.pb"), "saved_model.pb")
    (f,) = [f for f in result.findings if f.rule == "F102"]
    assert f.severity == Severity.HIGH
    assert f.location.key == "__inference___call___5/ReadFile"
    assert f.evidence and "'/etc/passwd'" in f.evidence and "/etc/passwd" in f.message


def test_pyfunc_is_critical(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, _sample("F101/bad-pyfunc.pb"), "saved_model.pb")
    (f,) = [f for f in result.findings if f.rule == "F101"]
    assert f.severity == Severity.CRITICAL and f.location.key.endswith("/PyFunc")
    assert f.evidence and "PyFunc at __inference___call___5/PyFunc" in f.evidence


@pytest.mark.parametrize(
    "name, op",
    [
        ("F102/bad-writefile.pb", "WriteFile"),
        ("F102/bad-savev2-outside-saver.pb", "SaveV2"),
        ("F102/bad-printv2-to-file.pb", "PrintV2"),
    ],
)
def test_file_ops(tmp_path: Path, name: str, op: str) -> None:
    result = scan_bytes(tmp_path, _sample(name), "saved_model.pb")
    hits = [f for f in result.findings if f.rule == "F102"]
    assert [f.location.key for f in hits] == [f"__inference___call___5/{op}"]
    assert "/tmp/modelscan-lite-sample" in (hits[0].evidence or "")


def test_saver_with_constant_path_is_reported() -> None:
    """A SaveV2 inside the saver function whose path is a constant is not the saver's."""
    top, fns, saver = S._saver_parts()
    evil_restore = S.function(
        "__inference__traced_restore_20",
        ["file_prefix"],
        [
            S.node("p", "Const", attrs=S.const_string("/home/u/.bashrc")),
            S.node("SaveV2", "SaveV2", "p:output:0", "names:output:0"),
        ],
    )
    data = S.saved_model(top, [fns[0], evil_restore], saver)
    facts = [f for f in _facts(data).facts if f.kind == "tensorflow.file-op"]
    assert [f.value for f in facts] == ["SaveV2"]
    assert "/home/u/.bashrc" in (facts[0].evidence or "")


def test_tf1_saver_in_graph_is_fed() -> None:
    """A TF1 saver: RestoreV2 in the graph, its prefix the SaverDef's filename tensor."""
    nodes = [
        S.node("save/Const", "PlaceholderWithDefault"),
        S.node("save/RestoreV2", "RestoreV2", "save/Const", "save/names"),
        S.node("save/restore_all", "NoOp", "^save/RestoreV2"),
    ]
    data = S.saved_model(nodes, [], ("save/Const:0", "save/Identity:0", "save/restore_all"))
    assert not _facts(data).facts


def test_rpc_and_custom_op(tmp_path: Path) -> None:
    rpc = scan_bytes(tmp_path, _sample("F103/bad-rpc-client.pb"), "a.pb")
    assert {f.rule for f in rpc.findings} == {"F103"}
    custom = scan_bytes(tmp_path, _sample("F104/bad-custom-op.pb"), "b.pb")
    (f,) = custom.findings
    assert f.rule == "F104" and f.location.key == "__inference___call___5/Decrypt"


def test_asset_escape(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, _sample("F401/bad-asset-escape.pb"), "saved_model.pb")
    (f,) = [f for f in result.findings if f.rule == "F401"]
    assert f.location.key == "asset_file_def/asset_path:0" and "../../../../etc/passwd" in f.message
    assert asset_problem("/etc/passwd") == "absolute path"
    assert asset_problem("vocab.txt") is None


@pytest.mark.parametrize(
    "name, rule, key",
    [
        ("F101/bad-flex-pyfunc.tflite", "F101", "operator_codes[0]"),
        ("F105/bad-custom-op.tflite", "F105", "operator_codes[0]"),
        ("F106/bad-flex-op.tflite", "F106", "operator_codes[0]"),
        ("F203/bad-buffer-index.tflite", "F203", "subgraphs[0].tensors[2]"),
        ("F203/bad-buffer-outside-file.tflite", "F203", "buffers[1]"),
        ("F202/bad-opcode-index.tflite", "F202", None),
    ],
)
def test_tflite_samples(tmp_path: Path, name: str, rule: str, key: str | None) -> None:
    result = scan_bytes(tmp_path, _sample(name), "model.tflite")
    assert result.format == "tflite"
    hits = [f for f in result.findings if f.rule == rule]
    assert hits and hits[0].location.key == key, result.findings


def test_tflite_runtime_custom_ops_pass(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, _sample("F105/ok-detection-postprocess.tflite"), "m.tflite")
    assert not result.findings


# -- containers ---------------------------------------------------------------------------------


def test_savedmodel_folder_in_zip_and_tar(tmp_path: Path) -> None:
    bad = _sample("F102/bad-readfile-passwd.pb")
    members = {
        "model/saved_model.pb": bad,
        "model/fingerprint.pb": (DATA / "savedmodel-module" / "fingerprint.pb").read_bytes(),
        "model/variables/variables.data-00000-of-00001": b"\x80\x02" + bytes(64),
        "model/variables/variables.index": bytes(32),
    }
    z = tmp_path / "m.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    t = tmp_path / "m.tar"
    with tarfile.open(t, "w") as tf:
        for n, d in members.items():
            info = tarfile.TarInfo(n)
            info.size = len(d)
            tf.addfile(info, io.BytesIO(d))
    for path in (z, t):
        result = scan(path)
        hits = [f for f in result.findings if f.rule == "F102"]
        assert hits and hits[0].location.member.endswith("model/saved_model.pb"), result.findings
        assert not [f for f in result.findings if f.rule in ("X903", "A205", "A207")]


# -- sniffing -----------------------------------------------------------------------------------


def test_sniffs_do_not_steal_other_protobufs() -> None:
    others = [
        *ROOT.glob("samples/O*/*.onnx"),
        *ROOT.glob("samples/*/*.model"),
        *ROOT.glob("tests/data/**/*.onnx"),
        *ROOT.glob("tests/data/**/*.model"),
    ]
    assert others
    for p in others:
        head = p.read_bytes()[:4096]
        assert not sniff_saved_model(head), p
        assert not sniff_keras_metadata(head), p
        assert not sniff_fingerprint(head), p
        assert not sniff(head).startswith("tf-"), p


def test_sniffs_recognise_real_files() -> None:
    for p in DATA.glob("*/saved_model.pb"):
        assert sniff(p.read_bytes()[:4096]) == "tf-savedmodel", p
    for p in DATA.glob("*/fingerprint.pb"):
        assert sniff(p.read_bytes()[:4096]) == "tf-fingerprint", p
    head = (DATA / "savedmodel-tf-keras" / "keras_metadata.pb").read_bytes()[:4096]
    assert sniff(head) == "tf-keras-metadata"


# -- field numbers and op lists against TensorFlow (only where it is installed) ---------------


def test_field_numbers_match_tensorflow() -> None:
    pytest.importorskip("tensorflow")
    from tensorflow.core.framework import attr_value_pb2, function_pb2, graph_pb2, node_def_pb2
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

    def num(msg: object, name: str) -> int:
        return msg.DESCRIPTOR.fields_by_name[name].number  # type: ignore[attr-defined,no-any-return]

    assert num(saved_model_pb2.SavedModel, "meta_graphs") == 2
    assert num(meta_graph_pb2.MetaGraphDef, "graph_def") == 2
    assert num(meta_graph_pb2.MetaGraphDef, "saver_def") == 3
    assert num(meta_graph_pb2.MetaGraphDef, "asset_file_def") == 6
    assert num(graph_pb2.GraphDef, "library") == 2
    assert num(function_pb2.FunctionDef, "node_def") == 3
    assert num(node_def_pb2.NodeDef, "attr") == 5
    assert num(attr_value_pb2.AttrValue, "func") == 10


def test_op_lists_are_tensorflow_ops() -> None:
    lists = op_lists()
    assert len(lists.registered) > 1500 and "ReadFile" in lists.registered
    for op in [*lists.category, *lists.checkpoint, *lists.table_file, *lists.url_attr]:
        assert op in lists.registered, op


# -- hostile input ------------------------------------------------------------------------------


def test_fuzz_truncations_and_mutations_never_crash() -> None:
    rng = random.Random(12)
    seeds = [
        (_sample("F102/bad-readfile-passwd.pb"), False),
        ((DATA / "savedmodel-module" / "saved_model.pb").read_bytes(), False),
        (_sample("F203/bad-buffer-index.tflite"), True),
        ((DATA / "dense-int8.tflite").read_bytes(), True),
    ]
    for data, tfl in seeds:
        for cut in range(0, len(data), max(1, len(data) // 60)):
            _facts(data[:cut], tfl)
        for _ in range(150):
            b = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            _facts(bytes(b), tfl)


def test_deep_nesting_and_loops_are_bounded() -> None:
    # a vtable pointing into itself and a table referencing itself: bounded, no hang
    data = bytearray(S.OK_TFLITE)
    ctx = _facts(bytes(data[:12]) + bytes(64), True)
    assert any(f.value == "tflite-malformed" for f in ctx.facts)
    # a node input cycle: the trace stops
    nodes = [
        S.node("a", "StringJoin", "b"),
        S.node("b", "StringJoin", "a"),
        S.node("SaveV2", "SaveV2", "a", "n"),
    ]
    fn = S.function("f", [], nodes)
    assert [f.value for f in _facts(S.saved_model([], [fn])).facts] == ["SaveV2"]


def test_node_budget_is_x901(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelscan_lite.formats.tensorflow as tfmod

    monkeypatch.setattr(tfmod, "MAX_NODES", 3)
    result = scan_bytes(tmp_path, _sample("F101/ok-module.pb"), "saved_model.pb")
    assert "X901" in {f.rule for f in result.findings}


def test_text_format_sniff_does_not_backtrack_on_blank_runs() -> None:
    # the saved_model.pbtxt sniff once used ``(\s+|#...)*``: a pickle followed by 5,000
    # spaces hung the scanner (exponential backtracking); blanks and comments are now
    # skipped line by line
    from modelscan_lite.formats.sniff import sniff

    assert sniff(b" " * 4096) == "text"
    assert sniff(b"\n \t" * 1365) == "text"
    assert sniff(b"# c\n\n  saved_model_schema_version: 1\n") == "tf-savedmodel-text"
