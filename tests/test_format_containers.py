"""Formats inside containers, and the sniffs of big real files: defects the per-format
benchmark (bench/bench_formats.py) found, each with its regression test.

* a GGUF/ONNX/TFLite/SavedModel/Core ML member stored in a zip, tar or llamafile is parsed
  through a window of the file's memory map, never read whole;
* a stored ``model.weights.h5`` of a ``.keras`` file is read in place (a 1 GiB one ended in
  X901 after copying 256 MiB);
* a 7z's expansion ratio is judged against the archive (any 7z over 16 MiB was A301);
* Flax checkpoints whose first array is larger than the sniff head, and binary word2vec
  files with 1,024+ dimensions, are recognised.
"""

from __future__ import annotations

import io
import math
import random
import struct
import zipfile
from pathlib import Path

import pytest

from modelscan_lite.limits import Limits
from samples.make_samples import gguf_model
from tests.helpers import rules_of, scan_bytes


def _stored_zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _rchar() -> int:
    with open("/proc/self/io") as f:
        return int(next(ln for ln in f if ln.startswith("rchar")).split()[1])


def test_gguf_member_is_mapped_not_read(tmp_path: Path) -> None:
    # a GGUF member with 8 MiB of tensor data after its header: the scan reads the header
    model = gguf_model() + b"\0" * (8 << 20)
    path = tmp_path / "bundle.zip"
    path.write_bytes(_stored_zip([("pad.txt", b"x" * 100), ("model.gguf", model)]))
    from modelscan_lite.config import Config
    from modelscan_lite.scanner import build_policy, scan_file

    config = Config()
    policy = build_policy(config)
    before = _rchar()
    result = scan_file(str(path), policy, config)
    read = _rchar() - before
    assert "gguf" in str(result.format) or result.format == "zip"
    assert not {f.rule for f in result.findings if f.severity.label != "low"}
    assert read < (1 << 20), f"read {read} bytes of an {len(model)}-byte member"


def test_stored_keras_weights_over_the_member_budget_are_read_in_place(tmp_path: Path) -> None:
    # Keras stores model.weights.h5 (compression method 0): read in place, the member budget
    # (here below the weights' size) does not apply; a deflated copy is spooled under it
    real = (
        Path(__file__).parent / "data" / "formats" / "keras" / "text-attention-lstm-compiled.keras"
    )
    with zipfile.ZipFile(real) as zf:
        info = zf.getinfo("model.weights.h5")
        assert info.compress_type == zipfile.ZIP_STORED and info.file_size > 32768
    limits = Limits(max_member_read=32768)
    result = scan_bytes(tmp_path, real.read_bytes(), "m.keras", limits=limits)
    assert result.format == "keras-v3"
    assert "X901" not in rules_of(result), result.findings


def test_7z_ratio_is_judged_against_the_archive(tmp_path: Path) -> None:
    py7zr = pytest.importorskip("py7zr")
    random.seed(7)
    noise = random.randbytes(20 << 20)  # incompressible: ratio ~1:1
    target = tmp_path / "noise.7z"
    with py7zr.SevenZipFile(target, "w") as archive:
        archive.writestr(noise, "weights.bin")
    from tests.helpers import scan

    assert "A301" not in rules_of(scan(target))
    # zeros compress thousands to one: still a bomb
    bomb = tmp_path / "zeros.7z"
    with py7zr.SevenZipFile(bomb, "w") as archive:
        archive.writestr(b"\0" * (48 << 20), "weights.bin")
    assert rules_of(scan(bomb)) & {"A301", "X901"}


def test_flax_checkpoint_with_a_large_first_array_is_recognised(tmp_path: Path) -> None:
    from samples.formats.others import flax_state, nd  # type: ignore[attr-defined]

    bias = nd([2048], "float32", struct.pack("<2048f", *([0.01] * 2048)))
    data = flax_state(bias=bias)
    result = scan_bytes(tmp_path, data, "flax_model.msgpack")
    assert result.format == "flax-msgpack"
    assert not rules_of(result)


@pytest.mark.parametrize("dim", [1024, 4096])
def test_binary_word2vec_with_long_vectors_is_recognised(tmp_path: Path, dim: int) -> None:
    rng = random.Random(dim)
    data = f"2 {dim}\n".encode()
    for word in ("the", "cat"):
        floats = [rng.uniform(-0.5, 0.5) for _ in range(dim)]
        data += word.encode() + b" " + struct.pack(f"<{dim}f", *floats) + b"\n"
    result = scan_bytes(tmp_path, data, "vectors.bin")
    assert result.format == "word2vec"
    assert not rules_of(result)


def test_digits_then_random_bytes_are_not_word2vec(tmp_path: Path) -> None:
    # the relaxed sniff still needs plausible floats: random bytes after a header are not
    rng = random.Random(3)
    junk = bytes(rng.getrandbits(8) for _ in range(8192))
    floats = struct.unpack_from("<256f", junk, 0)
    assume_implausible = any(not math.isfinite(v) or abs(v) >= 1e6 for v in floats)
    assert assume_implausible
    result = scan_bytes(tmp_path, b"2 1024\nthe " + junk, "vectors.bin")
    assert result.format != "word2vec"
