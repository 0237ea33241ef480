"""Realistic safetensors, GGUF and ONNX files written by the real libraries give no finding."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .helpers import scan

pytestmark = pytest.mark.slow
TEMPLATES = sorted((Path(__file__).parent / "fixtures" / "chat_templates").glob("*.jinja"))


def _clean(path: Path) -> None:
    result = scan(path)
    assert result.format not in ("unknown", "text"), path.name
    assert not result.findings, (path.name, [(f.rule, f.message) for f in result.findings])


def test_safetensors_from_torch_all_dtypes(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    tensors = {}
    for name, dtype in [
        ("f32", torch.float32),
        ("f16", torch.float16),
        ("bf16", torch.bfloat16),
        ("f64", torch.float64),
        ("i8", torch.int8),
        ("u8", torch.uint8),
        ("i16", torch.int16),
        ("i32", torch.int32),
        ("i64", torch.int64),
        ("u16", torch.uint16),
        ("u32", torch.uint32),
        ("u64", torch.uint64),
        ("bool", torch.bool),
        ("f8e4m3", torch.float8_e4m3fn),
        ("f8e5m2", torch.float8_e5m2),
        ("c64", torch.complex64),
    ]:
        tensors[name] = torch.zeros(3, 5, dtype=dtype)
    tensors["empty"] = torch.zeros(0, 7)
    tensors["scalar"] = torch.tensor(3.0)
    path = tmp_path / "model.safetensors"
    st.save_file(tensors, str(path), metadata={"format": "pt", "note": "modelscan-lite"})
    _clean(path)


def test_safetensors_from_numpy(tmp_path: Path) -> None:
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "np.safetensors"
    st.save_file({"a": np.zeros((2, 3), np.float32), "b": np.arange(5)}, str(path))
    _clean(path)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_gguf_writer_with_large_vocab_and_real_template(tmp_path: Path, template: Path) -> None:
    gguf = pytest.importorskip("gguf")
    n_vocab, width = 50_000, 8
    path = tmp_path / "model.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_embedding_length(width)
    w.add_context_length(64)
    w.add_token_list([f"tok{i}" for i in range(n_vocab)])
    w.add_token_scores([0.0] * n_vocab)
    w.add_chat_template(template.read_text())
    w.add_tensor("token_embd.weight", np.zeros((n_vocab, width), dtype=np.float16))
    for b in range(2):
        w.add_tensor(f"blk.{b}.attn_q.weight", np.zeros((width, width), dtype=np.float32))
        w.add_tensor(f"blk.{b}.ffn_up.weight", np.zeros((width, 16), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    _clean(path)


def test_onnx_helper_models_with_embedded_and_external_data(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])
    w = helper.make_tensor(
        "W", TensorProto.FLOAT, [4, 4], np.ones(16, dtype=np.float32).tobytes(), raw=True
    )
    b = helper.make_tensor("B", TensorProto.FLOAT, [4], [0.0, 1.0, 2.0, 3.0])
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["H"]),
        helper.make_node("Add", ["H", "B"], ["A"]),
        helper.make_node("Relu", ["A"], ["Y"]),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y], [w, b]), producer_name="tests"
    )
    model.metadata_props.add(key="author", value="modelscan-lite tests")
    onnx.checker.check_model(model)
    onnx.save(model, tmp_path / "embedded.onnx")
    onnx.save(
        model,
        tmp_path / "external.onnx",
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="external.onnx.data",
        size_threshold=0,
    )
    _clean(tmp_path / "embedded.onnx")
    _clean(tmp_path / "external.onnx")
    assert not scan(tmp_path / "external.onnx.data").findings


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript-exporter", "dynamo-exporter"])
def test_onnx_exported_from_torch(tmp_path: Path, dynamo: bool) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    if dynamo:
        pytest.importorskip("onnxscript")
    del torch
    path = tmp_path / "exported.onnx"
    # The exporter unpickles its own internals, which the no-load tripwire of this process
    # would (rightly) stop; making the artifact is not under test, so it runs in a child.
    code = (
        "import sys, warnings, torch; warnings.simplefilter('ignore');"
        "m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.LayerNorm(8));"
        f"torch.onnx.export(m, (torch.randn(1, 4),), sys.argv[1], dynamo={dynamo})"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(path)], check=True, capture_output=True, timeout=600
    )
    _clean(path)
    for extra in tmp_path.glob("*.data"):
        assert not scan(extra).findings
