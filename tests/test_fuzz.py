"""Property-based fuzzing: arbitrary bytes never make a parser raise anything but its own
error types, and scanning stays inside the budgets."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelscan_lite.formats.base import Context
from modelscan_lite.formats.dispatch import dispatch_bytes
from modelscan_lite.formats.pickle_vm import Reader, walk_stream
from modelscan_lite.formats.streams import BytesSource, DecompressBudget
from modelscan_lite.limits import Deadline, Limits
from modelscan_lite.model import Location
from samples.make_samples import BENIGN_DICT, payload_system

# the pickle suite runs on both walkers: the pure-Python reference and the compiled core
pytestmark = pytest.mark.usefixtures("walker")

LIMITS = Limits(
    max_opcodes=50_000,
    max_decompressed=4 << 20,
    max_seconds=5.0,
    max_member_read=1 << 20,
    max_members=200,
)
OPCODES = st.sampled_from(
    list(b"()]}.0123NIKJMLFSVXUTBCGRbcdeghijlopqrstu") + list(range(0x80, 0x99))
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ctx() -> Context:
    return Context(
        LIMITS,
        Deadline(LIMITS.max_seconds),
        DecompressBudget(LIMITS.max_decompressed, LIMITS.max_ratio),
    )


@FUZZ
@given(st.binary(max_size=2048))
def test_walker_never_raises_on_random_bytes(data: bytes) -> None:
    res = walk_stream(Reader(BytesSource(data)), LIMITS, Deadline(5), [LIMITS.max_opcodes])
    assert res.stopped or res.error_kind


@FUZZ
@given(st.lists(st.tuples(OPCODES, st.binary(max_size=9)), max_size=200))
def test_walker_never_raises_on_opcode_soup(parts: list[tuple[int, bytes]]) -> None:
    data = b"\x80\x04" + b"".join(bytes([op]) + arg for op, arg in parts) + b"."
    res = walk_stream(Reader(BytesSource(data)), LIMITS, Deadline(5), [LIMITS.max_opcodes])
    assert res.opcodes <= LIMITS.max_opcodes + 1


def _mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    return st.lists(
        st.tuples(st.integers(0, max(0, len(seed) - 1)), st.integers(0, 255)), max_size=8
    ).map(lambda edits: _apply(seed, edits))


def _apply(seed: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(seed)
    for i, v in edits:
        if out:
            out[i] = v
    return bytes(out)


def _zip_seed() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", payload_system())
        zf.writestr("inner.zip", BENIGN_DICT)
    return buf.getvalue()


def _tar_seed() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("a.pkl")
        info.size = len(BENIGN_DICT)
        tf.addfile(info, io.BytesIO(BENIGN_DICT))
    return buf.getvalue()


@FUZZ
@given(st.one_of(_mutations(_zip_seed()), _mutations(_tar_seed()), st.binary(max_size=4096)))
def test_containers_never_raise(data: bytes) -> None:
    ctx = _ctx()
    dispatch_bytes(data, Location("fuzz"), ctx, "fuzz.bin")
    assert ctx.members <= LIMITS.max_members + 1


def test_fuzz_corpus_files_scan_cleanly(tmp_path: Path) -> None:
    """A deterministic smoke check of the same property through the public entry point."""
    from .helpers import scan

    for i, data in enumerate([_zip_seed()[:-5], _tar_seed()[:40], b"PK\x05\x06" + b"\0" * 18]):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(data)
        result = scan(path)
        assert result.error is None


def _seed(path: str) -> bytes:
    return (Path(__file__).parent.parent / "samples" / path).read_bytes()


FORMAT_SEEDS = [
    _seed("S201/ok-valid.safetensors"),
    _seed("G201/ok-valid.gguf"),
    _seed("O201/ok-valid.onnx"),
    _seed("J101/ok-chatml.gguf"),
]


@FUZZ
@given(
    st.one_of(
        *[_mutations(s) for s in FORMAT_SEEDS],
        st.builds(
            lambda magic, tail: magic + tail,
            st.sampled_from(
                [b"GGUF\x03\0\0\0", b"FUGG\0\0\0\x03", b"\x08\x07\x12", b'\x40\0\0\0\0\0\0\0{"']
            ),
            st.binary(max_size=512),
        ),
    )
)
def test_format_parsers_never_raise(data: bytes) -> None:
    ctx = _ctx()
    dispatch_bytes(data, Location("fuzz"), ctx, "fuzz.bin")
    assert all(f.kind for f in ctx.facts)


JINJA_BITS = st.sampled_from(
    [
        "{{ ",
        " }}",
        "{% ",
        " %}",
        "{% for m in messages %}",
        "{% endfor %}",
        "{% if x %}",
        "{% endif %}",
        "x",
        ".",
        "__class__",
        "[",
        "]",
        "'a'",
        "~",
        "|attr(",
        ")",
        "(",
        "|join",
        "cycler",
        "namespace(",
        "=",
        ",",
        "+",
        "%",
        "\\x5f",
        "{#",
        "#}",
        "\u200b",
        "\n",
    ]
)


@FUZZ
@given(st.lists(JINJA_BITS, max_size=60).map("".join))
def test_template_analyser_never_raises(text: str) -> None:
    from modelscan_lite.templates import scan_template

    ctx = _ctx()
    scan_template(text, Location("fuzz"), ctx)
    assert all(f.kind.startswith(("template.", "dependency.")) for f in ctx.facts)


def _json_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # a named function: hypothesis >= 6.150 cannot see a multi-line lambda use its argument
    return st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(
            [
                "vocab_size",
                "hidden_size",
                "num_hidden_layers",
                "model_type",
                "architectures",
                "auto_map",
                "weight_map",
                "added_tokens",
                "model",
                "vocab",
                "normalizer",
                "type",
                "pattern",
                "String",
                "content",
                "chat_template",
                "eos_token_id",
                "dtype",
                "id",
                "normalizers",
                "tie_word_embeddings",
                "x",
            ]
        ),
        children,
        max_size=6,
    )


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    _json_containers,
    max_leaves=30,
)
REPO_FILES = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "model.safetensors.index.json",
    "chat_template.json",
]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.fixed_dictionaries({name: JSON for name in REPO_FILES}))
def test_repo_analysis_never_raises_on_hostile_json(
    tmp_path_factory: object, files: dict[str, object]
) -> None:
    import json
    import tempfile

    from modelscan_lite.repo import analyze_repo

    with tempfile.TemporaryDirectory() as d:
        for name, value in files.items():
            Path(d, name).write_text(json.dumps(value))
        Path(d, "model.safetensors").write_bytes(_seed("S201/ok-valid.safetensors"))
        ctx = _ctx()
        analyze_repo(d, ctx)
        assert all(f.kind.startswith(("repo.", "template.", "dependency.")) for f in ctx.facts)


def _data_seeds() -> list[tuple[bytes, str]]:
    """Small valid files of the data formats (built per their specs), with the names a
    loader would give them."""
    import struct
    import zlib

    piece = b"\x0a\x0e\x0a\x05<unk>\x15\x00\x00\x00\x00\x18\x02"
    word = b"\x0a\x0c\x0a\x03the\x15\x00\x00\x80\xbf\x18\x01"
    charsmap = struct.pack("<II", 1024, 1 << 10) + b"\0" * 1020 + b"ab\0"

    def ln(n: int) -> bytes:  # a two-byte varint
        return bytes([n & 0x7F | 0x80, n >> 7])

    normalizer = b"\x0a\x04nfkc\x12" + ln(len(charsmap)) + charsmap
    spm = piece + word * 3 + b"\x12\x02\x20\x05" + b"\x1a" + ln(len(normalizer)) + normalizer
    ft = struct.pack("<ii", 793712314, 12) + struct.pack(
        "<12id", 2, 5, 5, 1, 5, 1, 2, 1, 1, 3, 6, 100, 1e-4
    )
    ft += struct.pack("<iiiqq", 1, 1, 0, 9, -1) + b"hi\0" + struct.pack("<qb", 3, 0)
    ft += (
        b"\0" + struct.pack("<qq", 2, 2) + b"\0" * 16 + b"\0" + struct.pack("<qq", 1, 2) + b"\0" * 8
    )
    w2v = b"2 2\nab " + struct.pack("<2f", 0.5, -0.5) + b"cd " + struct.pack("<2f", 1.0, 2.0)
    benign = b"(dp0\nS'a'\np1\nI1\ns."
    zf = b"ZF" + hex(len(benign)).encode().ljust(19) + zlib.compress(benign)
    return [
        (spm, "tokenizer.model"),
        (charsmap, "nfkc.bin"),
        (ft, "cc.bin"),
        (w2v, "vectors.bin"),
        (b"2 2\nab 0.5 -0.5\ncd 1 2\n", "vectors.bin"),
        (zf, "m.pkl"),
    ]


DATA_SEEDS = _data_seeds()


@FUZZ
@given(
    st.sampled_from(range(len(DATA_SEEDS))).flatmap(
        lambda i: st.tuples(
            st.one_of(
                _mutations(DATA_SEEDS[i][0]),
                st.integers(0, len(DATA_SEEDS[i][0])).map(lambda n, i=i: DATA_SEEDS[i][0][:n]),
            ),
            st.just(DATA_SEEDS[i][1]),
        )
    )
)
def test_data_format_parsers_never_raise(case: tuple[bytes, str]) -> None:
    data, name = case
    ctx = _ctx()
    dispatch_bytes(data, Location("fuzz"), ctx, name)
    assert all(f.kind for f in ctx.facts)


def test_data_seeds_are_valid() -> None:
    for data, name in DATA_SEEDS:
        ctx = _ctx()
        dispatch_bytes(data, Location("seed"), ctx, name)
        assert not [f for f in ctx.facts if f.kind in ("anomaly", "format.unknown")], name
