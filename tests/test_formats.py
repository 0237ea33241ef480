"""safetensors, GGUF, ONNX and chat templates: regression tests named after the advisories,
cross-checks of our tables against the reference packages, and the cases samples cannot hold
(links on disk, big-endian and v1 GGUF)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from samples.make_samples import (
    BENIGN_DICT,
    CHATML,
    g_kv_str,
    g_kv_u32,
    g_str,
    g_tensor,
    generic_zip,
    gguf_file,
    gguf_model,
    onnx_model,
    onnx_tensor,
    payload_system,
    st_file,
    st_tensor,
)

from .helpers import find, rules_of, scan, scan_bytes


def template(tmp_path: Path, text: str) -> set[str]:
    return rules_of(scan_bytes(tmp_path, gguf_model(template=text), "m.gguf"))


# --- chat templates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload, rule",
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "J101"),
        (
            "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}",
            "J101",
        ),
        ("{{ x|attr('__globals__') }}", "J101"),
        ("{{ x|map(attribute='__class__')|list }}", "J101"),
        ("{{ x['__cla' ~ 'ss__'] }}", "J101"),
        ("{{ x['__cla' + 'ss__'] }}", "J101"),
        ("{{ x['\\x5f\\x5fclass\\x5f\\x5f'] }}", "J101"),
        ("{{ x['\\u005f\\u005fclass\\u005f\\u005f'] }}", "J101"),
        ("{% set a = '__glo' %}{% set b = 'bals__' %}{{ x|attr(a ~ b) }}", "J102"),
        ("{{ x|attr(['_', '_class', '__']|join) }}", "J102"),
        ("{{ x[('%c'|format(95)) * 2 ~ 'class'] }}", "J102"),
        ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "J103"),
        ("{{ joiner.__init__ }}", "J103"),
        ("{{ namespace.__init__.__globals__ }}", "J101"),
        ("{{ x.popen }}", "J103"),
    ],
)
def test_CVE_2024_34359_template_injection_spellings(
    tmp_path: Path, payload: str, rule: str
) -> None:
    assert rule in template(tmp_path, payload)


def test_real_templates_are_clean(tmp_path: Path) -> None:
    folder = Path(__file__).parent / "fixtures" / "chat_templates"
    files = sorted(folder.glob("*.jinja"))
    assert len(files) >= 7
    for path in files:
        result = scan_bytes(tmp_path, gguf_model(template=path.read_text()), "m.gguf")
        assert not result.findings, (path.name, [(f.rule, f.message) for f in result.findings])


def test_template_findings_name_the_key(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, gguf_model(template="{{ x.__class__ }}"), "m.gguf")
    assert find(result, "J101").location.key == "tokenizer.chat_template"


def test_named_templates_are_analysed_too(tmp_path: Path) -> None:
    data = gguf_model(
        template=CHATML, extra=[g_kv_str("tokenizer.chat_template.tool_use", "{{ x.__class__ }}")]
    )
    hit = find(scan_bytes(tmp_path, data, "m.gguf"), "J101")
    assert hit.location.key == "tokenizer.chat_template.tool_use"


# --- GGUF -----------------------------------------------------------------------------------


def test_CVE_2024_21802_absurd_counts_do_not_allocate(tmp_path: Path) -> None:
    data = gguf_file([], [], n_kv=2**60, n_tensors=2**40)
    assert "G301" in rules_of(scan_bytes(tmp_path, data, "m.gguf"))


def test_array_length_past_end(tmp_path: Path) -> None:
    kv = g_str("a") + struct.pack("<IIQ", 9, 4, 2**40)
    assert "G201" in rules_of(scan_bytes(tmp_path, gguf_file([kv], []), "m.gguf"))


def test_string_array_past_end(tmp_path: Path) -> None:
    kv = g_str("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3) + g_str("a") + g_str("b")
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv  # no padding after the header
    result = scan_bytes(tmp_path, data, "m.gguf")
    assert {"G201"} & rules_of(result) or {"G301"} & rules_of(result)


def test_embedding_length_mismatch(tmp_path: Path) -> None:
    data = gguf_model(extra=[])
    bad = data.replace(g_kv_u32("llama.embedding_length", 4), g_kv_u32("llama.embedding_length", 5))
    assert "G501" in rules_of(scan_bytes(tmp_path, bad, "m.gguf"))


@pytest.mark.parametrize(
    "magic, order, version, width",
    [
        (b"FUGG", ">", 3, "Q"),  # big-endian: every number, the version included
        (b"GGUF", "<", 1, "I"),  # version 1: 32-bit counts and string lengths
    ],
    ids=["big-endian", "version-1"],
)
def test_gguf_variants(tmp_path: Path, magic: bytes, order: str, version: int, width: str) -> None:
    def s(x: str) -> bytes:
        return struct.pack(order + width, len(x)) + x.encode()

    kv = s("tokenizer.chat_template") + struct.pack(order + "I", 8) + s("{{ x.__class__ }}")
    data = magic + struct.pack(order + "I" + width * 2, version, 0, 1) + kv
    assert "J101" in rules_of(scan_bytes(tmp_path, data, "m.gguf"))


def test_hostile_vocabulary_is_bounded_by_the_time_budget(tmp_path: Path) -> None:
    from modelscan_lite.limits import Limits

    n = 2_000_000
    kv = g_str("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, n) + b"\0" * (8 * n)
    result = scan_bytes(tmp_path, gguf_file([kv], []), "m.gguf", limits=Limits(max_seconds=0.0))
    assert "X901" in rules_of(result)


def test_ggml_type_table_matches_the_gguf_package() -> None:
    gguf = pytest.importorskip("gguf")
    from modelscan_lite.formats.gguf import GGML_TYPES

    for qtype, (block, size) in gguf.GGML_QUANT_SIZES.items():
        assert GGML_TYPES.get(int(qtype)) is not None, qtype
        assert GGML_TYPES[int(qtype)][1:] == (block, size), qtype
        assert GGML_TYPES[int(qtype)][0] == qtype.name
    known = {int(q) for q in gguf.GGMLQuantizationType}
    assert {k for k, v in GGML_TYPES.items() if v is not None} == known


# --- safetensors -------------------------------------------------------------------------


def test_zip_smuggled_in_a_hole(tmp_path: Path) -> None:
    hidden = generic_zip([("x.pkl", payload_system())])
    data = st_file(
        {
            "a": st_tensor("F32", [1], 0, 4),
            "b": st_tensor("F32", [1], 4 + len(hidden), 8 + len(hidden)),
        },
        b"\0" * 4 + hidden + b"\0" * 4,
    )
    result = scan_bytes(tmp_path, data, "m.safetensors")
    assert {"S208", "P101"} <= rules_of(result)


def test_header_not_starting_with_brace(tmp_path: Path) -> None:
    text = b'  {"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    text += b" " * ((8 - len(text) % 8) % 8)
    data = struct.pack("<Q", len(text)) + text + b"\0" * 4
    result = scan_bytes(tmp_path, data, "m.safetensors")
    # a leading space fails our sniff's "{ then quote" shape and the reference reader's
    # "starts with {": either way it is never a clean safetensors file
    assert result.findings


@pytest.mark.parametrize(
    "name",
    [
        "S201/bad-not-json",
        "S201/bad-length-past-end",
        "S205/bad-overlapping",
        "S205/bad-out-of-range",
        "S206/bad-size-mismatch",
        "S207/bad-trailing-bytes",
        "S207/bad-hole",
        "S208/bad-trailing-pickle",
        "S301/bad-header-too-large",
    ],
)
def test_the_reference_reader_rejects_what_we_flag(name: str) -> None:
    safetensors = pytest.importorskip("safetensors")
    path = Path(__file__).parent.parent / "samples" / f"{name}.safetensors"
    with pytest.raises(Exception), safetensors.safe_open(str(path), framework="numpy") as f:
        list(f.keys())  # its error types are not ours to pin


def test_the_reference_reader_accepts_duplicate_keys_which_we_flag() -> None:
    safetensors = pytest.importorskip("safetensors")
    path = Path(__file__).parent.parent / "samples/S202/bad-duplicate-key.safetensors"
    with safetensors.safe_open(str(path), framework="numpy") as f:
        assert list(f.keys()) == ["w"]
    assert "S202" in rules_of(scan(path))


def test_safetensors_dtypes_cover_the_library() -> None:
    st_torch = pytest.importorskip("safetensors.torch")
    from modelscan_lite.formats.safetensors import DTYPE_BITS

    assert set(st_torch._TYPES) <= set(DTYPE_BITS)


# --- ONNX ------------------------------------------------------------------------------------


def test_onnx_field_numbers_match_the_onnx_package() -> None:
    pb = pytest.importorskip("onnx.onnx_ml_pb2")
    from modelscan_lite.formats.onnx import MSG

    names = {
        "Model": "ModelProto",
        "Graph": "GraphProto",
        "Node": "NodeProto",
        "Attribute": "AttributeProto",
        "Tensor": "TensorProto",
        "Sparse": "SparseTensorProto",
        "Function": "FunctionProto",
        "Training": "TrainingInfoProto",
        "Entry": "StringStringEntryProto",
        "Opset": "OperatorSetIdProto",
    }
    for ours, theirs in names.items():
        fields = {f.number: f for f in getattr(pb, theirs).DESCRIPTOR.fields}
        for number, (_wire, child, name) in MSG[ours].items():
            assert fields[number].name == name, (ours, number)
            if child is not None:
                assert fields[number].message_type.name == names[child]


def test_onnx_known_versions_match_the_package() -> None:
    onnx = pytest.importorskip("onnx")
    from modelscan_lite.formats.onnx import KNOWN_IR_VERSION, KNOWN_OPSET

    assert onnx.IR_VERSION <= KNOWN_IR_VERSION
    assert onnx.defs.onnx_opset_version() <= KNOWN_OPSET


def test_onnx_element_sizes_match_the_package() -> None:
    pytest.importorskip("onnx")
    from onnx import helper

    from modelscan_lite.formats.onnx import ELEM_SIZE

    for dtype, size in ELEM_SIZE.items():
        if size:
            assert helper.tensor_dtype_to_np_dtype(dtype).itemsize == size, dtype


def _ext_model(tmp_path: Path, location: str) -> Path:
    model = tmp_path / "model.onnx"
    model.write_bytes(
        onnx_model(
            inits=[
                onnx_tensor(
                    "W", [2, 2], external={"location": location, "offset": "0", "length": "16"}
                )
            ]
        )
    )
    return model


@pytest.mark.parametrize(
    "location",
    [
        "../secret.bin",
        "/etc/passwd",
        "a/../../secret.bin",
        "..\\secret.bin",
        "C:\\Windows\\win.ini",
    ],
)
def test_CVE_2022_25882_and_CVE_2024_27318_external_data_traversal(
    tmp_path: Path, location: str
) -> None:
    hit = find(scan(_ext_model(tmp_path, location)), "O401")
    assert location in hit.message


def test_a_slash_dotdot_inside_the_directory_is_fine(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "w.bin").write_bytes(b"\0" * 16)
    result = scan(_ext_model(tmp_path, "a/../w.bin"))
    assert "O401" in rules_of(result)  # `..` is refused outright, as onnx >= 1.16 does


def test_CVE_2026_27489_symlinked_external_data(tmp_path: Path) -> None:
    secret = tmp_path.parent / f"{tmp_path.name}-secret.bin"
    secret.write_bytes(b"\0" * 16)
    os.symlink(secret, tmp_path / "weights.bin")
    assert "link" in find(scan(_ext_model(tmp_path, "weights.bin")), "O401").message


def test_CVE_2026_34446_hardlinked_external_data(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "secret.bin").write_bytes(b"\0" * 16)
    os.link(other / "secret.bin", tmp_path / "weights.bin")
    assert "hard link" in find(scan(_ext_model(tmp_path, "weights.bin")), "O401").message


def test_valid_external_data_beside_the_model(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    assert not scan(_ext_model(tmp_path, "weights.bin")).findings


def test_external_data_past_the_end_of_its_file(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0" * 8)
    assert "O203" in rules_of(scan(_ext_model(tmp_path, "weights.bin")))


def test_onnx_inside_an_archive_cannot_check_external_data(tmp_path: Path) -> None:
    inner = onnx_model(inits=[onnx_tensor("W", [2, 2], external={"location": "w.bin"})])
    result = scan_bytes(tmp_path, generic_zip([("m.onnx", inner)]), "bundle.zip")
    assert "X901" in rules_of(result)


def test_benign_dict_is_still_clean(tmp_path: Path) -> None:
    assert not scan_bytes(tmp_path, BENIGN_DICT).findings


def test_gguf_alignment_key_is_honoured(tmp_path: Path) -> None:
    data = gguf_file(
        [g_kv_u32("general.alignment", 64)], [g_tensor("t", [4], 0, 0)], b"\0" * 64, alignment=64
    )
    assert not scan_bytes(tmp_path, data, "m.gguf").findings


@pytest.mark.parametrize("length", [0x0280, 0x0380, 0x0480, 0x0580])
def test_safetensors_length_that_looks_like_a_pickle_proto(tmp_path: Path, length: int) -> None:
    """A header of 0x0480 bytes starts the file with 80 04 (pickle PROTO 4): still safetensors."""
    body = json_header = '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    body = json_header + " " * (length - len(json_header))
    data = struct.pack("<Q", length) + body.encode() + b"\0" * 4
    result = scan_bytes(tmp_path, data, "m.safetensors")
    assert result.format == "safetensors"
    assert not result.findings


def test_safetensors_length_field_that_is_a_whole_pickle(tmp_path: Path) -> None:
    body = '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    pre = b"\x80\x04N." + b"\0\0\0\0"  # PROTO 4, NONE, STOP: a pickle, and a length
    data = pre + body.encode() + b"\0" * 4
    result = scan_bytes(tmp_path, data, "m.safetensors")
    assert "S208" in rules_of(result)


@pytest.mark.parametrize(
    "text",
    [
        "{% set ns = namespace(system='', os='x') %}{{ ns.system }}{{ ns.os }}",
        "{% for m in messages %}{{ loop.cycle('a', 'b') }}{% if loop.changed(m.role) %}x{% endif %}"
        "{% endfor %}",
        "{{ messages[0]['content'].split('\\n')[0].strip().lower() }}",
        "{{ tools | tojson(indent=2) }}{{ '%s'|format(bos_token) }}{{ messages|length }}",
    ],
)
def test_template_idioms_are_not_flagged(tmp_path: Path, text: str) -> None:
    assert template(tmp_path, text) == set()


def test_gguf_string_length_far_past_the_end(tmp_path: Path) -> None:
    kv = g_str("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + struct.pack("<Q", 2**63)
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv + b"\0" * 64
    assert "G201" in rules_of(scan_bytes(tmp_path, data, "m.gguf"))
