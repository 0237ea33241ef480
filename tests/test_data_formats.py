"""Data formats that are not code: SentencePiece models and normaliser tables, fastText and
word2vec files, joblib's legacy ZF container; `.model` as an ambiguous name; the protocol-0
sniff without a fixed window; what unrecognised model-named content gets (X201 / X202).

Benign files are made by the real libraries (sentencepiece here, gensim through
/work/venv-real when it is not importable) or are the real files of
``tests/fixtures/data_formats`` (see SOURCE.md there); hostile variants are cut or patched
copies of them.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from modelscan_lite.formats.sniff import sniff
from modelscan_lite.model import ArtifactResult, Severity
from samples.make_samples import onnx_model

from .helpers import find, rules_of, scan, scan_bytes

FIXTURES = Path(__file__).parent / "fixtures" / "data_formats"
PAYLOAD = b"cos\nsystem\n(S'touch /tmp/modelscan-lite-data-formats-marker'\ntR."
VENV_REAL = Path("/work/venv-real/bin/python")


def failing(result: ArtifactResult) -> list[tuple[str, str]]:
    return [(f.rule, f.message) for f in result.findings if f.severity >= Severity.MEDIUM]


# --- SentencePiece ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sp_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, int]:
    """A unigram model trained by the real sentencepiece trainer, and its piece count."""
    spm = pytest.importorskip("sentencepiece")
    d = tmp_path_factory.mktemp("spm")
    corpus = d / "corpus.txt"
    lines = ["the quick brown fox jumps over the lazy dog", "model scanning is fun", "hello"]
    corpus.write_text("\n".join(lines * 200))
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(d / "sp"), vocab_size=30, minloglevel=2
    )
    size = spm.SentencePieceProcessor(model_file=str(d / "sp.model")).get_piece_size()
    return (d / "sp.model").read_bytes(), size


def _pb2() -> object:
    return pytest.importorskip("sentencepiece.sentencepiece_model_pb2")


@pytest.mark.parametrize("name", ["tokenizer.model", "spiece.model", "sentencepiece.bpe.model"])
def test_real_sentencepiece_model_is_recognised_and_clean(
    tmp_path: Path, sp_model: tuple[bytes, int], name: str
) -> None:
    data, _ = sp_model
    assert sniff(data[:4096]) == "sentencepiece"
    result = scan_bytes(tmp_path, data, name)
    assert result.format == "sentencepiece"
    assert failing(result) == []
    assert not rules_of(result) & {"X201", "A203", "A208"}


def test_sentencepiece_piece_count_fact_matches_the_library(
    tmp_path: Path, sp_model: tuple[bytes, int]
) -> None:
    from modelscan_lite.formats.base import Context
    from modelscan_lite.formats.dispatch import dispatch_bytes
    from modelscan_lite.formats.sentencepiece import count_pieces
    from modelscan_lite.formats.streams import DecompressBudget
    from modelscan_lite.limits import Deadline, Limits
    from modelscan_lite.model import Location
    from modelscan_lite.repo.consistency import sentencepiece_size

    data, pieces = sp_model
    limits = Limits()
    ctx = Context(limits, Deadline(30), DecompressBudget(limits.max_decompressed, 0))
    dispatch_bytes(data, Location("tokenizer.model"), ctx, "tokenizer.model")
    facts = [f for f in ctx.facts if f.kind == "sentencepiece.model"]
    assert [f.value for f in facts] == [str(pieces)]
    assert dict(facts[0].detail)["trainer_vocab_size"] == str(pieces)
    # one reader: the repo analysis counts with the same walker, and refuses what it refuses
    assert sentencepiece_size(data) == count_pieces(data) == pieces
    assert sentencepiece_size(data[:-7]) is None


def test_real_sentencepiece_test_models_from_the_sdist_if_present() -> None:
    """The models of sentencepiece's own test folder (when the sdist was unpacked here)."""
    found = sorted(Path("/tmp/sp").glob("sentencepiece-*/test/*.model"))
    if not found:
        pytest.skip("sentencepiece sdist not unpacked under /tmp/sp")
    for path in found:
        result = scan(path)
        assert result.format == "sentencepiece", path
        assert failing(result) == [], path


def _pieces_end(data: bytes) -> int:
    """Offset of the first non-piece field (trainer_spec)."""
    from modelscan_lite.formats.protobuf import fields

    for number, _wire, _value, at in fields(data, 0, len(data)):
        if number != 1:
            return at - 1 - (at > 128)  # the key and the length varint before the payload
    raise AssertionError


def test_truncated_sentencepiece_is_a208(tmp_path: Path, sp_model: tuple[bytes, int]) -> None:
    data, _ = sp_model
    result = scan_bytes(tmp_path, data[: len(data) // 2], "tokenizer.model")
    hit = find(result, "A208")
    assert "runs past the end" in hit.message
    assert hit.location.offset is not None


def test_sentencepiece_with_an_absurd_length_is_a208(
    tmp_path: Path, sp_model: tuple[bytes, int]
) -> None:
    data, _ = sp_model
    # the second piece claims 2**40 bytes
    first_len = data[1]
    at = 2 + first_len
    assert data[at] == 0x0A
    hostile = data[: at + 1] + b"\x80\x80\x80\x80\x80\x20" + data[at + 2 :]
    hit = find(scan_bytes(tmp_path, hostile, "tokenizer.model"), "A208")
    assert "runs past the end" in hit.message


def test_sentencepiece_piece_without_text_or_with_a_bad_type_is_a208(tmp_path: Path) -> None:
    good = b"\x0a\x0e\x0a\x05<unk>\x15\x00\x00\x00\x00\x18\x02"
    empty = b"\x0a\x05\x15\x00\x00\x00\x00"
    bad_type = b"\x0a\x0e\x0a\x05hello\x15\x00\x00\x00\x00\x18\x09"
    assert sniff(good + good) == "sentencepiece"
    msg = find(scan_bytes(tmp_path, good + empty + good, "tokenizer.model"), "A208").message
    assert "no text" in msg
    msg = find(scan_bytes(tmp_path, good + bad_type, "tokenizer.model"), "A208").message
    assert "unknown type 9" in msg


def test_sentencepiece_with_a_broken_precompiled_charsmap_is_a208(
    tmp_path: Path, sp_model: tuple[bytes, int]
) -> None:
    pb2 = _pb2()
    data, _ = sp_model
    proto = pb2.ModelProto()  # type: ignore[attr-defined]
    proto.ParseFromString(data)
    blob = bytearray(proto.normalizer_spec.precompiled_charsmap)
    assert blob
    blob[-1] = 0x41  # the normalized block is no longer NUL-terminated
    proto.normalizer_spec.precompiled_charsmap = bytes(blob)
    hit = find(scan_bytes(tmp_path, proto.SerializeToString(), "tokenizer.model"), "A208")
    assert "precompiled_charsmap" in hit.message and "NUL" in hit.message


def test_other_protobufs_and_random_bytes_are_not_sentencepiece() -> None:
    from modelscan_lite.formats.sentencepiece import sniff_sentencepiece

    assert not sniff_sentencepiece(onnx_model()[:4096])
    # a TF GraphDef: field 1 NodeDef {name (1, LEN), op (2, LEN)}: op is LEN, score is FIXED32
    graphdef = b"\x0a\x0e\x0a\x05input\x12\x05Const"
    assert not sniff_sentencepiece(graphdef)
    rng = __import__("random").Random(7)
    for _ in range(2000):
        blob = bytes(rng.randrange(256) for _ in range(64))
        assert not sniff_sentencepiece(b"\x0a" + blob)


# --- normaliser tables -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def charsmap(sp_model: tuple[bytes, int]) -> bytes:
    """The precompiled charsmap the real trainer embedded (the same bytes as nmt_nfkc.bin)."""
    pb2 = _pb2()
    proto = pb2.ModelProto()  # type: ignore[attr-defined]
    proto.ParseFromString(sp_model[0])
    blob: bytes = proto.normalizer_spec.precompiled_charsmap
    assert len(blob) > 1024
    return blob


def test_real_normaliser_table_is_recognised_and_clean(tmp_path: Path, charsmap: bytes) -> None:
    assert sniff(charsmap[:4096]) == "spm-charsmap"
    result = scan_bytes(tmp_path, charsmap, "nmt_nfkc.bin")
    assert result.format == "spm-charsmap"
    assert failing(result) == []
    assert "X201" not in rules_of(result)


def test_sdist_normaliser_tables_if_present() -> None:
    found = sorted(Path("/tmp/sp").glob("sentencepiece-*/sentencepiece/data/*.bin"))
    if not found:
        pytest.skip("sentencepiece sdist not unpacked under /tmp/sp")
    for path in found:
        result = scan(path)
        assert (result.format, failing(result)) == ("spm-charsmap", []), path


@pytest.mark.parametrize(
    "mutate, evidence",
    [
        (lambda b: b[:-1] + b"A", "not NUL-terminated"),
        (lambda b: struct.pack("<I", len(b)) + b[4:], "exceeds"),
        # unit 1 gets an offset that leaves the array
        (lambda b: b[:8] + struct.pack("<I", 0x1FFFFF << 10 | 0x41) + b[12:], "outside the array"),
    ],
)
def test_broken_normaliser_tables_are_a208(
    tmp_path: Path, charsmap: bytes, mutate: object, evidence: str
) -> None:
    hostile = mutate(charsmap)  # type: ignore[operator]
    result = scan_bytes(tmp_path, hostile, "nfkc.bin")
    if result.format == "spm-charsmap":
        assert evidence in find(result, "A208").message
    else:  # the head no longer passes the sniff: opaque bytes named like a model
        assert "X201" in rules_of(result)


# --- fastText and word2vec (gensim) ----------------------------------------------------------

GENSIM_SCRIPT = r"""
import sys
from gensim.models import FastText, Word2Vec
from gensim.models.fasttext import save_facebook_model
from gensim.test.utils import common_texts
out = sys.argv[1]
ft = FastText(vector_size=8, window=3, min_count=1, sentences=common_texts, epochs=2, bucket=200)
save_facebook_model(ft, out + "/ft.bin")
w2v = Word2Vec(sentences=common_texts, vector_size=8, min_count=1, epochs=2)
w2v.wv.save_word2vec_format(out + "/w2v.bin", binary=True)
w2v.wv.save_word2vec_format(out + "/w2v.txt", binary=False)
"""


@pytest.fixture(scope="module")
def gensim_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gensim")
    try:
        import gensim  # noqa: F401

        python = sys.executable
    except ImportError:
        if not VENV_REAL.exists():
            pytest.skip("gensim is not installed")
        python = str(VENV_REAL)
    subprocess.run([python, "-c", GENSIM_SCRIPT, str(out)], check=True, timeout=300)
    return out


@pytest.mark.slow
def test_real_fasttext_model_is_clean(gensim_files: Path, tmp_path: Path) -> None:
    data = (gensim_files / "ft.bin").read_bytes()
    assert sniff(data[:4096]) == "fasttext"
    for name in ("ft.bin", "cc.en.8.model"):
        result = scan_bytes(tmp_path, data, name)
        assert (result.format, failing(result)) == ("fasttext", [])


@pytest.mark.slow
@pytest.mark.parametrize("name, fmt", [("w2v.bin", "word2vec"), ("w2v.txt", "word2vec-text")])
def test_real_word2vec_files_are_clean(
    gensim_files: Path, tmp_path: Path, name: str, fmt: str
) -> None:
    data = (gensim_files / name).read_bytes()
    result = scan_bytes(tmp_path, data, "vectors.bin")
    assert (result.format, failing(result)) == (fmt, [])


@pytest.mark.slow
def test_hostile_fasttext_variants_are_a208(gensim_files: Path, tmp_path: Path) -> None:
    data = (gensim_files / "ft.bin").read_bytes()
    # cut in the input matrix
    assert "A208" in rules_of(scan_bytes(tmp_path, data[: len(data) // 2], "ft.bin"))
    # the dictionary claims 2**30 entries (nwords and size agree, the file does not)
    dict_at = 8 + 12 * 4 + 8
    lie = data[:dict_at] + struct.pack("<ii", 1 << 30, 1 << 30) + data[dict_at + 8 :]
    assert "declares" in find(scan_bytes(tmp_path, lie, "ft.bin"), "A208").message
    # bytes appended after the output matrix
    assert "after the model" in find(scan_bytes(tmp_path, data + PAYLOAD, "ft.bin"), "A208").message


@pytest.mark.slow
def test_word2vec_count_lie_is_a208(gensim_files: Path, tmp_path: Path) -> None:
    data = (gensim_files / "w2v.bin").read_bytes()
    header, rest = data.split(b"\n", 1)
    count, dim = header.split()
    lie = f"{int(count) + 5} {int(dim)}\n".encode() + rest
    assert "A208" in rules_of(scan_bytes(tmp_path, lie, "w2v.bin"))


def _fasttext_bytes(words: list[bytes], dim: int = 2, bucket: int = 3) -> bytes:
    """A minimal new-format fastText file per the spec (for the tests that run everywhere)."""
    out = struct.pack("<ii", 793712314, 12)
    out += struct.pack("<12id", dim, 5, 5, 1, 5, 1, 2, 1, bucket, 3, 6, 100, 1e-4)
    out += struct.pack("<iiiqq", len(words), len(words), 0, 100, -1)
    for w in words:
        out += w + b"\0" + struct.pack("<qb", 7, 0)
    rows = len(words) + bucket
    out += b"\0" + struct.pack("<qq", rows, dim) + b"\0" * (4 * rows * dim)
    out += b"\0" + struct.pack("<qq", len(words), dim) + b"\0" * (4 * len(words) * dim)
    return out


def test_fasttext_spec_file_and_hostile_sizes(tmp_path: Path) -> None:
    good = _fasttext_bytes([b"hello", b"world"])
    result = scan_bytes(tmp_path, good, "m.bin")
    assert (result.format, failing(result)) == ("fasttext", [])
    # an input matrix of 2**40 x 2 floats in a tiny file
    at = good.index(b"\0" + struct.pack("<qq", 5, 2))
    absurd = good[: at + 1] + struct.pack("<qq", 1 << 40, 2) + good[at + 17 :]
    assert "only" in find(scan_bytes(tmp_path, absurd, "m.bin"), "A208").message
    # a word that never ends
    endless = good[: good.index(b"hello")] + b"x" * (1 << 17)
    assert "A208" in rules_of(scan_bytes(tmp_path, endless, "m.bin"))


def test_gensim_test_data_if_present() -> None:
    """fastText (old and new layout) and word2vec files shipped in gensim's wheel."""
    root = Path("/tmp/gs/x/gensim/test/test_data")
    if not root.is_dir():
        pytest.skip("gensim wheel not unpacked under /tmp/gs")
    expect = {
        "lee_fasttext.bin": "fasttext",  # pre-2017 layout, no magic
        "lee_fasttext_new.bin": "fasttext",
        "toy-model.bin": "fasttext",
        "pang_lee_polarity_fasttext.bin": "fasttext",  # supervised, 2 labels
        "euclidean_vectors.bin": "word2vec",
        "high_precision.kv.bin": "word2vec",
        "word2vec_pre_kv_c": "word2vec-text",
    }
    for name, fmt in expect.items():
        result = scan(root / name)
        assert (result.format, failing(result)) == (fmt, []), name


# --- joblib ZF -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["joblib_0.9.2_compressed_pickle_py35_np19.gz", "joblib_0.8.4_compressed_pickle_py27_np17.gz"],
)
def test_real_joblib_zf_files_are_unwrapped(name: str) -> None:
    result = scan(FIXTURES / name)
    assert result.format == "joblib-zf"
    assert not rules_of(result) & {"X201", "A208", "P201", "P101"}


def _zf(payload: bytes, declared: int | None = None) -> bytes:
    length = hex(len(payload) if declared is None else declared).encode()
    return b"ZF" + length.ljust(19) + zlib.compress(payload)


def test_payload_inside_a_zf_container_is_found_inside(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, _zf(PAYLOAD), "model.pkl")
    hit = find(result, "P101", member="<joblib-zf>")
    assert "os.system" in hit.message or "posix.system" in hit.message
    assert hit.location.offset == 0


def test_zf_length_lies_are_a208(tmp_path: Path) -> None:
    benign = b"(dp0\nS'a'\np1\nI1\ns."
    msg = find(scan_bytes(tmp_path, _zf(benign, len(benign) + 9), "m.pkl"), "A208").message
    assert "declares" in msg and "holds" in msg
    msg = find(scan_bytes(tmp_path, _zf(benign, 1 << 60), "m.pkl"), "A208").message
    assert "budget" in msg


def test_zf_bomb_stays_inside_the_decompression_budget(tmp_path: Path) -> None:
    from modelscan_lite.limits import Limits

    bomb = b"ZF" + hex(100).encode().ljust(19) + zlib.compress(b"(" * (50 << 20), 9)
    result = scan_bytes(tmp_path, bomb, "m.pkl", limits=Limits(max_decompressed=8 << 20))
    assert rules_of(result) & {"A301", "X901"}


# --- `.model` is ambiguous -------------------------------------------------------------------


def test_pickle_named_model_is_scanned_without_a203(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, b"\x80\x04" + PAYLOAD, "word2vec.model")
    assert "A203" not in rules_of(result)
    assert "P101" in rules_of(result)


def test_lightgbm_style_text_model_is_not_x201(tmp_path: Path) -> None:
    text = b"tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n"
    result = scan_bytes(tmp_path, text * 20, "lgbm.model")
    # recognised and parsed as LightGBM (formats/lightgbm_text.py): a header repeated is not
    # a model, which is M220, never "unrecognised" (X201)
    assert result.format == "lightgbm"
    assert rules_of(result) == {"M220"}


def test_safe_extensions_still_flag_pickles(tmp_path: Path) -> None:
    assert "A203" in rules_of(scan_bytes(tmp_path, b"\x80\x04" + PAYLOAD, "x.safetensors"))


# --- protocol 0 without a fixed window -------------------------------------------------------

LONG_FIRST_LINES = {
    "int": b"I" + b"7" * 4000 + b"\n0",
    "string": b"S'" + b"a" * 5000 + b"'\n0",
    "unicode": b"V" + b"a" * 70_000 + b"\n0",  # longer than 64 KiB
    "global": b"c" + b"m" * 5000 + b"\nname\n0",
}


@pytest.mark.parametrize("kind", sorted(LONG_FIRST_LINES))
@pytest.mark.parametrize("name", ["data.dat", "model.pkl"])
def test_long_first_line_pickle_is_found(tmp_path: Path, kind: str, name: str) -> None:
    prefix = LONG_FIRST_LINES[kind]
    result = scan_bytes(tmp_path, prefix + PAYLOAD, name)
    assert result.format == "pickle"
    hit = find(result, "P101")
    assert hit.location.offset == len(prefix)


@pytest.mark.parametrize(
    "name, text",
    [
        ("README.md", "# Model card\n\nThis model was trained on...\n" * 50),
        ("config.json", json.dumps({"vocab_size": 32000, "a": "x" * 9000})),
        ("numbers.csv", "\n".join(",".join(str(i * j) for j in range(30)) for i in range(500))),
        ("vocab.txt", "[PAD]\n[unused0]\ncls\nsep\n" + "word\n" * 3000),
        ("merges.txt", "#version: 0.2\n" + "Ġ t\n" * 3000),
        ("notes.txt", "V" + "x" * 9000 + "\nsecond line\n"),
        ("words.txt", "cat\ndog\nbird\n" * 100),
    ],
)
def test_plain_text_stays_text(tmp_path: Path, name: str, text: str) -> None:
    result = scan_bytes(tmp_path, text.encode(), name)
    assert result.format == "text"
    assert rules_of(result) == set()


def test_payload_then_garbage_is_a_pickle(tmp_path: Path) -> None:
    """The unpickler runs the REDUCE before it reaches the broken byte."""
    result = scan_bytes(tmp_path, PAYLOAD[:-1] + b"\xff\xfe", "data.dat")
    assert "P101" in rules_of(result)


def test_truncated_payload_without_stop_is_a_pickle(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, PAYLOAD[:-1], "data.dat")
    assert "P101" in rules_of(result)


# --- X201 and X202 ---------------------------------------------------------------------------


def test_raw_float_shard_is_x202_low(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    weights = (np.random.default_rng(0).standard_normal(8192) * 0.05).astype("<f4")
    for dtype in ("<f4", "<f2"):
        result = scan_bytes(tmp_path, weights.astype(dtype).tobytes(), "group1-shard1of1.bin")
        assert rules_of(result) == {"X202"}
        assert failing(result) == []


def test_ggml_and_ubjson_are_x202(tmp_path: Path) -> None:
    ggml = b"tjgg" + struct.pack("<I", 3) + os.urandom(256)
    assert rules_of(scan_bytes(tmp_path, ggml, "ggml-model-q4_0.bin")) == {"X202"}
    ubj = b"{L\x00\x00\x00\x00\x00\x00\x00\x07vectors{" + os.urandom(64)
    assert rules_of(scan_bytes(tmp_path, ubj, "emb.model")) == {"X202"}
    # an XGBoost UBJSON model (a ``learner`` object) is parsed, not just recognised
    xgb = b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{" + os.urandom(64)
    assert scan_bytes(tmp_path, xgb, "xgb.model").format == "xgboost-ubj"


def test_opaque_bytes_named_like_a_model_still_fail(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, os.urandom(8192), "model.bin")
    assert find(result, "X201").severity >= Severity.MEDIUM
    # int8 quantised data is not recognised either
    result = scan_bytes(tmp_path, bytes(range(256)) * 32, "openvino_model.bin")
    assert "X201" in rules_of(result)


def test_float_shard_that_starts_with_a_pickle_is_not_x202(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    floats = (np.random.default_rng(1).standard_normal(4096) * 0.05).astype("<f4").tobytes()
    result = scan_bytes(tmp_path, PAYLOAD + floats, "weights.bin")
    assert "P101" in rules_of(result) and "X202" not in rules_of(result)


def test_copy_fixture_into_a_repo_is_clean(tmp_path: Path, sp_model: tuple[bytes, int]) -> None:
    """A Llama-style repo layout: the tokenizer.model no longer fails the repo."""
    data, _ = sp_model
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "tokenizer.model").write_bytes(data)
    shutil.copy(FIXTURES / "joblib_0.9.2_compressed_pickle_py35_np19.gz", repo / "est.pkl.z")
    for path in sorted(repo.iterdir()):
        assert failing(scan(path)) == [], path


def test_long_binary_first_argument_is_skipped_not_windowed(tmp_path: Path) -> None:
    """Protocol 1 has no PROTO either: a 3 MiB BINUNICODE first is skipped by seeking."""
    prefix = b"X" + struct.pack("<I", 3 << 20) + b"a" * (3 << 20) + b"0"
    result = scan_bytes(tmp_path, prefix + PAYLOAD, "data.dat")
    assert find(result, "P101").location.offset == len(prefix)


def test_binary_that_starts_like_an_opcode_stays_unknown(tmp_path: Path) -> None:
    bmp = b"BM" + struct.pack("<I", 2 << 20) + os.urandom(2 << 20)
    result = scan_bytes(tmp_path, bmp, "picture.bmp")
    assert result.format != "pickle" and rules_of(result) == set()


def test_sniffers_fasttext_head_is_its_magic() -> None:
    import struct

    from modelscan_lite.formats.fasttext import MAGIC
    from modelscan_lite.formats.sniff import FASTTEXT_HEAD

    assert struct.pack("<i", MAGIC) == FASTTEXT_HEAD
