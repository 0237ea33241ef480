"""Red-team regressions for the formats of issue 12: inputs the per-format tests did not
design for, each one missed or crashed before its fix. One test per fixed case: rule ID,
location (member / key) and evidence. Every input is built here, deterministically, from the
sample builders; payloads are inert strings (nothing here is loaded)."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import random
import struct
import zipfile
from pathlib import Path

import pytest

from modelscan_lite.formats import hdf5, pymarshal
from modelscan_lite.formats import tensorflow as tfm
from modelscan_lite.formats.keras import lambda_evidence, sniff_keras_config
from modelscan_lite.model import Finding, Severity
from samples.formats import configs as cf
from samples.formats import keras as ks
from samples.formats import tensorflow as tfs
from samples.formats import torch as ts
from samples.make_samples import MARKER_CMD, ZIP_TIME

from .helpers import find, rules_of, scan_bytes


def _yaml_findings(tmp_path: Path, text: bytes, name: str = "conf.yaml") -> list[Finding]:
    """A YAML file scanned alone, as the CLI does (the repo-file-alone path)."""
    from modelscan_lite import scan as scan_tree
    from modelscan_lite.config import Config

    path = tmp_path / name
    path.write_bytes(text)
    return list(scan_tree([path], Config(jobs=1)).findings)


def _one(findings: list[Finding], rule: str) -> Finding:
    hits = [f for f in findings if f.rule == rule]
    assert hits, [(f.rule, f.message) for f in findings]
    return hits[0]


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def _i32(n: int) -> bytes:
    return struct.pack("<i", n)


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"u" + _i32(len(raw)) + raw


def _s(raw: bytes) -> bytes:
    return b"s" + _i32(len(raw)) + raw


def _tup(*items: bytes) -> bytes:
    return b"(" + _i32(len(items)) + b"".join(items)


# a CPython 3.11-layout code object whose bytecode is a COMPARE_OP with oparg 10 (on 3.11
# the oparg indexes dis.cmp_op directly: 10 is out of range)
CMP_OP_CODE = (
    b"c" + _i32(1) + _i32(0) + _i32(0) + _i32(2) + _i32(3)
    + _s(bytes([151, 0, 107, 10, 0, 0, 0, 0, 83, 0]))
    + _tup(b"N") + _tup(_u("system")) + _tup(_u("x")) + _s(b"\x26")
    + _u("<k>") + _u("<lambda>") + _u("<lambda>") + _i32(1) + _s(b"") + _s(b"")
)  # fmt: skip
BAD_CONFIG = json.dumps(ks.sequential([ks.lambda_layer(ks.LAMBDA_FN)])).encode()
LAMBDA_KEY = "config.layers[1].config.function"


# -- Keras ----------------------------------------------------------------------------------


def test_keras_hostile_bytecode_does_not_cost_the_finding(tmp_path: Path) -> None:
    """A COMPARE_OP oparg outside the comparison table crashed the disassembler (X904, and
    the K101 was lost); now the finding stands with a disassembly that says so."""
    fn = {"class_name": "__lambda__", "config": {"code": base64.b64encode(CMP_OP_CODE).decode()}}
    result = scan_bytes(tmp_path, ks.keras_zip(ks.sequential([ks.lambda_layer(fn)])), "m.keras")
    assert "X904" not in rules_of(result)
    f = find(result, "K101", "config.json")
    assert f.location.key == LAMBDA_KEY
    assert f.evidence is not None and "COMPARE_OP" in f.evidence and "<bad index" in f.evidence
    code = pymarshal.read_code(CMP_OP_CODE)
    assert any("COMPARE_OP" in line for line in pymarshal.disassemble(code))


def test_keras_lambda_evidence_shows_code_and_value(tmp_path: Path) -> None:
    """Lambda.from_config runs ``code``, deserialize_keras_object runs ``value``: a benign
    decoy in one no longer hides the other from the evidence."""
    import marshal

    decoy = base64.b64encode(marshal.dumps((lambda x: x).__code__)).decode()
    fn = {"class_name": "__lambda__", "config": {"code": decoy, "value": [ks.LAMBDA_B64]}}
    layer = {**ks.dense(), "config": {**ks.dense()["config"], "activation": fn}}
    result = scan_bytes(tmp_path, ks.keras_zip(ks.sequential([layer])), "m.keras")
    f = find(result, "K101", "config.json")
    evidence = f.evidence or ""
    assert "(`code`)" in evidence and "(`value`)" in evidence
    assert "system" in evidence and MARKER_CMD in evidence
    assert f.location.key == "config.layers[1].config.activation"


def test_keras_dotted_class_name_is_the_public_api_name(tmp_path: Path) -> None:
    """``module: keras, class_name: layers.Dense`` is Keras' ``keras.layers.Dense`` (Keras
    looks up the API name): no K106 false alarm; a dotted name of a gadget is still K104."""
    ok = ks.sequential([ks.obj("keras", "layers.Dense", ks.dense()["config"])])
    assert not rules_of(scan_bytes(tmp_path, ks.keras_zip(ok), "ok.keras"))
    fn = {"module": "keras", "class_name": "function", "config": "utils.get_file"}
    bad = scan_bytes(tmp_path, ks.keras_zip(ks.sequential([ks.lambda_layer(fn)])), "b.keras")
    f = find(bad, "K104", "config.json")
    assert "keras.utils.get_file" in f.message and f.location.key == LAMBDA_KEY


def test_keras_registered_name_does_not_hide_a_dangerous_class(tmp_path: Path) -> None:
    """A ``registered_name`` that does not resolve makes Keras fall back to ``module`` +
    ``class_name``: ``subprocess.Popen`` behind ``a>b`` was only K105 (medium)."""
    layer = ks.obj("subprocess", "Popen", {"args": ["id"]}, registered_name="a>b")
    result = scan_bytes(tmp_path, ks.keras_zip(ks.sequential([layer])), "m.keras")
    f = find(result, "K102", "config.json")
    assert f.severity is Severity.CRITICAL and "subprocess.Popen" in f.message
    assert f.location.key == "config.layers[1]"
    assert "a>b" in find(result, "K105").message
    # a user package behind its registered name stays a custom object only
    mine = ks.obj("my_pkg.layers", "MyLayer", {"name": "m"}, registered_name="my_pkg>MyLayer")
    assert rules_of(scan_bytes(tmp_path, ks.keras_zip(ks.sequential([mine])), "mine.keras")) == {
        "K105"
    }


def test_keras_legacy_value_encoding_with_config_is_an_object(tmp_path: Path) -> None:
    """``{"class_name": "TensorShape", "items": ..., "config": ...}`` is instantiated by
    Keras 3 (a registered ``TensorShape`` custom object), not decoded as a value."""
    layer = {"class_name": "TensorShape", "items": [1], "config": {"name": "t"}}
    result = scan_bytes(tmp_path, ks.keras_zip(ks.sequential([layer])), "m.keras")
    f = find(result, "K105", "config.json")
    assert f.location.key == "config.layers[1]" and "TensorShape" in f.message


@pytest.mark.parametrize(
    "members",
    [
        [("config.json", BAD_CONFIG), ("model.weights.h5", ks.EMPTY_WEIGHTS)],  # no metadata
        [("config.json", BAD_CONFIG)],  # Keras deserializes the config before the weights
        [("README.md", b"hi"), ("config.json", BAD_CONFIG)],  # no Keras layout at all
    ],
    ids=["no-metadata", "config-only", "config-and-junk"],
)
def test_keras_zip_without_metadata_json(tmp_path: Path, members: list[tuple[str, bytes]]) -> None:
    """Keras never reads metadata.json: a .keras without it was a plain zip, and clean."""
    f = find(scan_bytes(tmp_path, _zip(members), "m.keras"), "K101", "config.json")
    assert f.location.key == LAMBDA_KEY and f.evidence and "__import__" in f.evidence


def test_keras_config_json_scanned_alone(tmp_path: Path) -> None:
    """A Keras config.json alone (an unzipped Keras model folder, ``model.to_json()``) was
    a text file; it is sniffed by content, in any JSON encoding json.loads accepts."""
    for data in (BAD_CONFIG, b"\xef\xbb\xbf" + BAD_CONFIG, BAD_CONFIG.decode().encode("utf-16")):
        result = scan_bytes(tmp_path, data, "config.json")
        assert result.format == "keras-config"
        assert find(result, "K101").location.key == LAMBDA_KEY
    # a Hugging Face config.json is not one
    hf = json.dumps({"architectures": ["BertModel"], "model_type": "bert", "class_name": 1})
    assert not sniff_keras_config(hf.encode())
    assert sniff_keras_config(b'{"module": "keras", "class_name": "Sequential", "config": {}}')
    assert not sniff_keras_config(b'{"a": "' + b"x" * 5000)


def test_hdf5_after_a_user_block(tmp_path: Path) -> None:
    """libhdf5 finds the superblock after a 512-byte user block (h5py ``userblock_size``);
    the file was X201 (unrecognised) and its Lambda unseen."""
    model = ks.legacy_sequential(
        [
            {
                "class_name": "Lambda",
                "config": {"name": "l", "function": [ks.LAMBDA_B64, None, None],
                           "function_type": "lambda", "module": "__main__"},
            }
        ]
    )  # fmt: skip
    plain = bytearray(ks.legacy_h5(model))
    struct.pack_into("<Q", plain, 24, 512)  # base address: where h5py puts the superblock
    data = b"user block: anything at all".ljust(512, b"\0") + bytes(plain)
    result = scan_bytes(tmp_path, data, "m.h5")
    assert result.format == "hdf5"
    f = find(result, "K101")
    assert f.location.key == "model_config.config.layers[0].config.function"
    attrs = hdf5.read_root_attributes(io.BytesIO(data), 0, len(data))
    assert b"Lambda" in (attrs.values["model_config"] or b"")
    assert hdf5.sniff_userblock(data[:4096]) and not hdf5.sniff_userblock(bytes(4096))


# -- Hydra / NeMo ---------------------------------------------------------------------------


def test_hydra_oc_decode_of_a_reference(tmp_path: Path) -> None:
    """``${oc.decode:${s}}`` parses the string ``s`` names as YAML at load time."""
    text = b"s: '{_target_: os.system, _args_: [id]}'\nm: ${oc.decode:${s}}\n"
    f = _one(_yaml_findings(tmp_path, text), "N101")
    assert f.location.key == "m<oc.decode>._target_"
    assert f.evidence is not None and "os.system" in f.evidence


def test_hydra_oc_create_dict_literal(tmp_path: Path) -> None:
    """``${oc.create:{...}}`` makes a config node of a dict literal; it is instantiated."""
    text = b"m: '${oc.create:{_target_: subprocess.Popen, args: [id]}}'\n"
    f = _one(_yaml_findings(tmp_path, text), "N101")
    assert f.location.key == "m<oc.create>._target_" and "subprocess.Popen" in f.message


@pytest.mark.parametrize(
    "key", ["\\x5ftarget_", "\\u005f\\u0074arget_", "\\U0000005ftarget_"], ids=["x", "u", "U"]
)
def test_hydra_key_spelled_with_escapes(tmp_path: Path, key: str) -> None:
    """A double-quoted key spelled with escapes has no ``_target_`` bytes: the repo/alone
    path skipped the file as text."""
    text = f'm:\n  "{key}": os.system\n  _args_: [id]\n'.encode()
    f = _one(_yaml_findings(tmp_path, text), "N101")
    assert f.location.key == "m._target_" and "os.system" in (f.evidence or "")


def test_hydra_python_tag_through_a_tag_directive(tmp_path: Path) -> None:
    text = b"%TAG !p! tag:yaml.org,2002:python/\n---\nm: !p!object/apply:os.system ['id']\n"
    f = _one(_yaml_findings(tmp_path, text), "N107")
    assert f.location.key == "m" and "python/object/apply:os.system" in f.message


def test_nemo_model_config_yaml_alone(tmp_path: Path) -> None:
    """An extracted .nemo's model_config.yaml: NeMo instantiates its top-level ``target``."""
    found = _yaml_findings(tmp_path, b"target: os.system\nfoo: 1\n", "model_config.yaml")
    f = _one(found, "N101")
    assert f.location.key == "target" and "os.system" in f.message
    benign = b"name: x\nmodel:\n  sample_rate: 16000\n"
    assert not _yaml_findings(tmp_path, benign, "model_config.yaml")


# -- TorchScript / .pt2 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '    y = getattr(getattr(ops, "evilns"), "run")(x1)\n',
        '    y = getattr(torch.ops, "evilns").run(x1)\n',
    ],
    ids=["nested-getattr", "getattr-then-attribute"],
)
def test_torchscript_custom_op_through_getattr_chains(tmp_path: Path, body: str) -> None:
    data = ts.torchscript(ts._forward(body))
    f = find(scan_bytes(tmp_path, data, "m.pt"), "T103", "model/code/__torch__.py")
    assert "evilns::run" in f.message and (f.location.key or "").startswith("line ")
    assert f.evidence is not None and "getattr" in f.evidence


def test_torchscript_custom_op_in_code_ast_rejects(tmp_path: Path) -> None:
    """TorchScript's lexer reads what ``ast`` refuses (a tab/space mix): the op names of such
    a member are still reported, beside T201."""
    body = "    if bool(x1):\n\ty = ops.evilns.run(x1)\n        z = 1\n"
    result = scan_bytes(tmp_path, ts.torchscript(ts._forward(body)), "m.pt")
    assert "T201" in rules_of(result)
    f = find(result, "T103", "model/code/__torch__.py")
    assert "evilns::run" in f.message and "ops.evilns.run" in (f.evidence or "")


def test_pt2_operator_passed_as_argument(tmp_path: Path) -> None:
    """``as_operator`` arguments are resolved by the same attribute walk as node targets."""
    node = ts._node(
        "torch.ops.higher_order.auto_functionalized",
        "af",
        [{"name": "_mutable_op", "arg": {"as_operator": "torch.serialization.os.system"}}],
    )
    data = ts.pt2(ts.pt2_program([*ts.OK_NODES, node]))
    f = find(scan_bytes(tmp_path, data, "m.pt2"), "T106", "model/models/model.json")
    assert f.location.key == "graph.nodes[3].inputs[0].arg"
    assert "torch.serialization.os.system" in (f.evidence or "")
    custom = ts._node("torch.ops.aten.relu.default", "r", [{"arg": {"as_operator": "#evil.op"}}])
    result = scan_bytes(tmp_path, ts.pt2(ts.pt2_program([*ts.OK_NODES, custom])), "c.pt2")
    assert find(result, "T103").location.key == "graph.nodes[3].inputs[0].arg"


# -- TensorFlow: saved_model.pbtxt ------------------------------------------------------------

PBTXT = b"""# a SavedModel in text format
saved_model_schema_version: 1
meta_graphs {
  meta_info_def { tags: "serve" tensorflow_version: "2.21.0" }
  graph_def {
    node { name: "x" op: "Placeholder" }
    node: [{ name: "mm", op: "MatMul", input: ["x", "x"] }]
    node { name: "py" op: "Eager" 'Py\\106unc' input: "x"
           attr { key: "token" value { s: "pyfunc_0" } } }
    library { function { signature { name: "__inference_f_1" input_arg { name: "p" } }
                         node_def { name: "w" op: "WriteFile" input: "p" input: "p" } } }
  }
}
"""


def test_saved_model_pbtxt(tmp_path: Path) -> None:
    """TensorFlow reads saved_model.pbtxt when a folder has no saved_model.pb: it was text,
    and its PyFunc went unseen (alone and inside an archive)."""
    alone = scan_bytes(tmp_path, PBTXT, "saved_model.pbtxt")
    assert alone.format == "tf-savedmodel-text"
    f = find(alone, "F101")  # adjacent literals and an octal escape spell EagerPyFunc
    assert f.location.key == "graph/py" and "EagerPyFunc" in (f.evidence or "")
    assert find(alone, "F102").location.key == "__inference_f_1/w"
    zipped = scan_bytes(tmp_path, _zip([("m/saved_model.pbtxt", PBTXT)]), "m.zip")
    assert find(zipped, "F101", "m/saved_model.pbtxt").location.key == "graph/py"
    benign = PBTXT.split(b'    node { name: "py"')[0] + b"  }\n}\n"
    assert not rules_of(scan_bytes(tmp_path, benign, "saved_model.pbtxt"))


def test_pbtxt_reader_never_crashes() -> None:
    rng = random.Random(12)
    from modelscan_lite.formats.base import Context
    from modelscan_lite.formats.streams import DecompressBudget
    from modelscan_lite.limits import Deadline, Limits

    c = tfm._Counter(Context(Limits(), Deadline(60), DecompressBudget(1 << 30, 0)))
    for i in range(400):
        b = bytearray(PBTXT)
        for _ in range(rng.randrange(1, 6)):
            b[rng.randrange(len(b))] = rng.choice(b"{}<>[]:,;\"\\'# \nab0")
        text = bytes(b[: rng.randrange(1, len(b) + 1)] if i % 3 == 0 else b)
        with contextlib.suppress(tfm.ProtoError):
            tfm._pb_metas(tfm.parse_pbtxt(text.decode("utf-8", "replace"), c))
    assert tfs.OK_TFLITE  # the module's builders stay importable beside the text reader


# -- dill / cloudpickle ---------------------------------------------------------------------


def test_codetype_with_twelve_arguments(tmp_path: Path) -> None:
    """``types.CodeType(...)`` with 12 literal arguments (the 3.8-3.10 count without
    qualname) raised IndexError in the evidence builder: X904, P112 lost."""
    args = b"K\x00" * 6 + b"C\x02\x97\x00" + b")" * 3 + b"\x8c\x01f\x8c\x01g"
    data = b"\x80\x04\x8c\x05types\x8c\x08CodeType\x93(" + args + b"tR."
    result = scan_bytes(tmp_path, data, "f.pkl")
    assert "X904" not in rules_of(result)
    f = find(result, "P112")
    assert f.evidence is not None and "types.CodeType" in f.evidence


# -- skops: identity spelling ---------------------------------------------------------------


def test_skops_os_aliases_are_dangerous(tmp_path: Path) -> None:
    for module in ("posix", "nt"):
        data = cf.skops_with({"hook": cf._function(module, "system")})
        f = find(scan_bytes(tmp_path, data, "m.skops"), "M101", "schema.json")
        assert f"{module}.system" in f.message


def test_marshal_evidence_helper_is_bounded() -> None:
    evidence, names = lambda_evidence(base64.b64encode(CMP_OP_CODE).decode(), "t")
    assert "system" in names and "COMPARE_OP" in evidence
