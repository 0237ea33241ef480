"""A repeatable mutation-fuzz campaign against the whole scanner: ``python bench/fuzz_campaign.py``.

This module owns the campaign: its seeds, its mutations, how one case is run and judged, the
reproducers it leaves behind and ``bench/results-fuzz.json``. ``tests/test_fuzz_campaign.py``
runs the same campaign briefly in CI; run here it goes longer (``--cases``, ``--minutes``).

Seeds are every file under ``samples/`` (built by ``samples/make_samples.py`` when missing),
malicious and benign, plus small benign artifacts that the real libraries write at run time
(``torch.save``, safetensors, the ``gguf`` writer, ``onnx.helper``, NumPy ``.npy``/``.npz``,
``joblib.dump`` of a fitted scikit-learn model, and zip/tar/gzip wrappers of those). They are
made in a child process, so the process that scans never imports torch and its peak RSS is the
scanner's. A seed that belongs to a Hugging Face repo folder in ``samples/`` is fuzzed inside a
copy of its folder, so the repo analysis is fuzzed too.

Case ``i`` of campaign seed ``S`` is a pure function of ``(S, i)`` and the seeds: its own
``random.Random`` picks a seed and one to three mutations (bit flips, byte writes, inserts,
deletes, chunk duplication, truncation, little-endian integers overwritten with boundary values,
protobuf varints, splicing two seeds, and format-aware ones: the safetensors header length and
header JSON, a pickle opcode swapped for another, a zip or tar member mutated, renamed with
``../`` or control characters, or made a link, the inside of a gzip/bz2/xz layer, GGUF counts,
the file's extension and a file name with escape sequences or undecodable bytes).

Each case is scanned in-process through :func:`modelscan_lite.scanner.scan_paths` under a
wall-clock watchdog, its peak RSS measured (``VmHWM``, reset per case through
``/proc/self/clear_refs``), and every report rendered as text, JSON and SARIF. A **crash** is an
exception escaping the scanner or a renderer, a scanner error contained as X904
(``internal-error``), JSON or SARIF that does not parse, or a text report that cannot be encoded
as UTF-8 or holds a raw control character other than ``\\n``. A **hang** is a case that takes
longer than ``--seconds-per-case``. One case in ``--cli-every`` also goes through the real CLI
(``python -m modelscan_lite scan PATH --format json``): its exit code must be 0, 1 or 2, its
stdout valid JSON and its stderr free of tracebacks. By default cases run in a forked worker
that is killed and restarted when it stops answering, so even a hang inside C code is counted,
not waited for.

Every crash or hang leaves ``OUT/crashes/<case>-<kind>/`` with ``case.json`` (campaign seed,
case number, seed, mutations, file name, traceback) and ``input/`` (the mutated file, or the
mutated repo folder). ``--replay OUT/crashes/.../case.json`` (or any file or folder) runs the
same checks on it again; ``--seed S --case N`` rebuilds case N from scratch and replays it.

Usage: ``nice -n 10 python bench/fuzz_campaign.py [--cases N] [--minutes M] [--seed S]
[--seconds-per-case T] [--out DIR] [--json RESULTS] [--cli-every K] [--in-process]``.
Exit status 1 when the campaign found a crash or a hang.
"""

from __future__ import annotations

import argparse
import bz2
import contextlib
import datetime
import gzip
import hashlib
import io
import json
import lzma
import multiprocessing
import os
import pickletools
import platform
import random
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLES = ROOT / "samples"
RESULTS = HERE / "results-fuzz.json"
MAX_CASE_BYTES = 4 << 20
REPO_MARKERS = ("config.json", "tokenizer_config.json", "tokenizer.json")

# --- seeds -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    name: str  # where it came from: samples/P101/bad-x.pkl or lib/torch-state-dict.pt
    data: bytes
    filename: str
    repo_dir: Path | None = None  # fuzzed inside a copy of this folder


def make_library_seeds(outdir: Path) -> None:
    """Small benign artifacts, written by the real libraries (run in a child process)."""
    import joblib
    import numpy as np
    import onnx
    import torch
    from gguf import GGUFWriter
    from onnx import TensorProto, helper
    from safetensors.numpy import save_file
    from sklearn.linear_model import LogisticRegression

    outdir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    state = {"layer.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    state["layer.bias"] = torch.zeros(2)
    torch.save(state, outdir / "torch-state-dict.pt")
    torch.save(
        {"model": state, "epoch": 3, "lr": 0.01},
        outdir / "torch-legacy.bin",
        _use_new_zipfile_serialization=False,
    )
    arrays: dict[str, Any] = {
        "w": np.arange(12, dtype=np.float32).reshape(3, 4),
        "b": np.ones(4, np.float16),
    }
    save_file(arrays, str(outdir / "model.safetensors"), metadata={"format": "np"})

    writer = GGUFWriter(str(outdir / "tiny.gguf"), "llama")
    writer.add_uint32("llama.context_length", 128)
    writer.add_string("general.name", "tiny")
    writer.add_chat_template(
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
    )
    writer.add_tensor("tok_embd.weight", np.ones((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    init = helper.make_tensor("W", TensorProto.FLOAT, [2, 2], [1.0, 2.0, 3.0, 4.0])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "tiny",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2])],
        [init],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(outdir / "tiny.onnx"))

    np.save(outdir / "array.npy", arrays["w"])
    np.savez(outdir / "arrays.npz", **arrays)
    np.savez_compressed(outdir / "arrays-compressed.npz", **arrays)

    x = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    clf = LogisticRegression(random_state=0).fit(x, [0, 1, 1, 0])
    joblib.dump(clf, outdir / "sklearn-logreg.joblib")
    joblib.dump(clf, outdir / "sklearn-logreg-gz.joblib", compress=("gzip", 3))

    inner = ["torch-state-dict.pt", "model.safetensors", "array.npy", "sklearn-logreg.joblib"]
    with zipfile.ZipFile(outdir / "bundle.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for name in inner:
            zf.write(outdir / name, f"bundle/{name}")
    with tarfile.open(outdir / "bundle.tar", "w", format=tarfile.PAX_FORMAT) as tf:
        for member in inner:
            tf.add(outdir / member, f"bundle/{member}")
    with tarfile.open(outdir / "bundle.tar.gz", "w:gz", format=tarfile.PAX_FORMAT) as tf:
        for member in inner:
            tf.add(outdir / member, f"bundle/{member}")
    legacy = (outdir / "torch-legacy.bin").read_bytes()
    (outdir / "torch-legacy.bin.gz").write_bytes(gzip.compress(legacy, mtime=0))


def _library_seeds(workdir: Path) -> list[Seed]:
    libdir = workdir / "library-seeds"
    shutil.rmtree(libdir, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--make-seeds", str(libdir)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode:
        raise RuntimeError(f"making the library seeds failed:\n{proc.stderr}")
    return [
        Seed(f"lib/{p.name}", p.read_bytes(), p.name)
        for p in sorted(libdir.iterdir())
        if p.is_file()
    ]


def _sample_seeds() -> list[Seed]:
    files = [p for p in SAMPLES.rglob("*") if p.is_file() and p.parent != SAMPLES]
    if not files:
        subprocess.run([sys.executable, str(SAMPLES / "make_samples.py")], check=True, timeout=600)
        files = [p for p in SAMPLES.rglob("*") if p.is_file() and p.parent != SAMPLES]
    seeds = []
    for p in sorted(files):
        rel = p.relative_to(SAMPLES)
        if "__pycache__" in rel.parts or rel.parts[0] == "formats":
            continue  # samples/formats/ holds the per-format sample builders, not samples
        in_repo = len(rel.parts) > 2 and any((p.parent / m).exists() for m in REPO_MARKERS)
        seeds.append(Seed(f"samples/{rel}", p.read_bytes(), p.name, p.parent if in_repo else None))
    return seeds


def load_seeds(workdir: Path, library: bool = True) -> list[Seed]:
    workdir.mkdir(parents=True, exist_ok=True)
    return _sample_seeds() + (_library_seeds(workdir) if library else [])


def seed_order(seeds: list[Seed], campaign_seed: int) -> list[int]:
    """Round-robin over a seeded shuffle; library seeds count four times (they are few and
    the closest to what people scan)."""
    order = [i for i, s in enumerate(seeds) for _ in range(4 if s.name.startswith("lib/") else 1)]
    random.Random(f"order:{campaign_seed}").shuffle(order)
    return order


# --- mutations ---------------------------------------------------------------------------------

BOUNDARY = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 2**31 - 1, 2**31, 2**32 - 1, 2**63 - 1)
BOUNDARY64 = (*BOUNDARY, 2**63, 2**64 - 1)
INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0A, 0x2E, 0x28, 0x7B, 0x22, 0x1B)
EXTENSIONS = (
    ".pkl", ".pt", ".bin", ".safetensors", ".gguf", ".onnx", ".npy", ".npz", ".joblib",
    ".zip", ".tar", ".gz", ".h5", ".json", ".model", ".ckpt", ".pth", "",
)  # fmt: skip
HOSTILE_NAMES = (
    "../../etc/passwd",
    "/abs/path.pkl",
    "a/../../b.pkl",
    "x\x1b]0;pwned\x07.pkl",
    "x\x1b[2J\x1b[H0 findings\n.pkl",
    "line\nbreak.pkl",
    "cr\rreturn.pkl",
    "bidi\u202etxt.pkl",
    "nul\x00name.pkl",
    "surrogate\udcff.pkl",
    "data.pkl",
    "archive/data.pkl",
    "a" * 300 + ".pkl",
    "",
)
FILENAME_BITS = ("\x1b[31m", "\x1b]0;t\x07", "\n", "\r", "\t", "\u202e", "\udcff", "\x7f", "\u2028")
SWAP_GROUPS = [
    b"ci",  # GLOBAL, INST (two text lines)
    b"\x93Rbo\x81\x92.)]}(0120tle\x85\x86\x87su\x94\x8f\x90\x91NLtL",  # no-argument ops
    b"qh",  # BINPUT, BINGET
    b"rj",  # LONG_BINPUT, LONG_BINGET
    b"KCU\x8c\x8a",  # one-byte argument or length
    b"MTBX",  # two/four-byte argument or length
    b"\x8d\x8e\x96",  # eight-byte lengths
    b"pgIFSVL",  # protocol-0 text arguments
]
ALL_OPCODES = bytes(sorted({b for g in SWAP_GROUPS for b in g} | {0x80, 0x95, 0x82, 0x83, 0x84}))


@dataclass
class State:
    data: bytes
    filename: str
    seeds: list[Seed]


Mutation = Callable[[random.Random, State], bool]


def _pos(rng: random.Random, data: bytes | bytearray) -> int:
    return rng.randrange(len(data)) if data else 0


def m_bitflip(rng: random.Random, st: State) -> bool:
    if not st.data:
        return False
    buf = bytearray(st.data)
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        buf[_pos(rng, buf)] ^= 1 << rng.randrange(8)
    st.data = bytes(buf)
    return True


def m_byte(rng: random.Random, st: State) -> bool:
    if not st.data:
        return False
    buf = bytearray(st.data)
    for _ in range(rng.choice((1, 2, 3))):
        buf[_pos(rng, buf)] = (
            rng.choice(INTERESTING_BYTES) if rng.random() < 0.6 else rng.randrange(256)
        )
    st.data = bytes(buf)
    return True


def m_insert(rng: random.Random, st: State) -> bool:
    at = rng.randint(0, len(st.data))
    n = rng.choice((1, 2, 4, 8, 64, 4096))
    blob = bytes([rng.randrange(256)]) * n if rng.random() < 0.5 else rng.randbytes(min(n, 512))
    st.data = st.data[:at] + blob + st.data[at:]
    return True


def m_delete(rng: random.Random, st: State) -> bool:
    if len(st.data) < 2:
        return False
    at = _pos(rng, st.data)
    n = rng.choice((1, 2, 4, 8, 16, 64, 512))
    st.data = st.data[:at] + st.data[at + n :]
    return True


def m_duplicate(rng: random.Random, st: State) -> bool:
    if not st.data:
        return False
    a = _pos(rng, st.data)
    chunk = st.data[a : a + rng.choice((4, 16, 64, 256, 4096))]
    times = rng.choice((1, 2, 8, 64, 1024))
    blob = chunk * times
    if len(st.data) + len(blob) > MAX_CASE_BYTES:
        blob = chunk
    at = rng.randint(0, len(st.data))
    st.data = st.data[:at] + blob + st.data[at:]
    return True


def m_truncate(rng: random.Random, st: State) -> bool:
    if not st.data:
        return False
    cut = rng.choice((0, 1, 4, 8, 16, rng.randrange(len(st.data)), len(st.data) - 1))
    st.data = st.data[: max(0, min(cut, len(st.data) - 1))]
    return True


def _length_like(data: bytes, width: int, limit: int = 4096) -> list[int]:
    """Offsets whose little-endian integer reads like a length or offset into the file."""
    fmt = "<I" if width == 4 else "<Q"
    out = []
    for at in range(0, min(len(data), limit) - width + 1):
        value = struct.unpack_from(fmt, data, at)[0]
        if 0 < value <= len(data) and value > 3:
            out.append(at)
    return out


def m_int_boundary(rng: random.Random, st: State) -> bool:
    width = rng.choice((4, 8))
    if len(st.data) < width:
        return False
    fmt = "<I" if width == 4 else "<Q"
    candidates = _length_like(st.data, width) if rng.random() < 0.7 else []
    at = rng.choice(candidates) if candidates else rng.randrange(len(st.data) - width + 1)
    old = struct.unpack_from(fmt, st.data, at)[0]
    choices = [v for v in (BOUNDARY if width == 4 else BOUNDARY64) if v < 256**width]
    choices += [max(0, old - 1), old + 1, old * 2, len(st.data), len(st.data) + 1]
    value = rng.choice(choices) % 256**width
    st.data = st.data[:at] + struct.pack(fmt, value) + st.data[at + width :]
    return True


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def m_varint(rng: random.Random, st: State) -> bool:
    if not st.data:
        return False
    at = _pos(rng, st.data)
    value = rng.choice((0, 1, 2**31 - 1, 2**32, 2**63 - 1, 2**64 - 1, len(st.data) * 2))
    blob = _varint(value) if rng.random() < 0.9 else b"\xff" * 11  # or one that never ends
    st.data = st.data[:at] + blob + st.data[at + rng.choice((1, 2)) :]
    return True


def m_splice(rng: random.Random, st: State) -> bool:
    other = rng.choice(st.seeds).data
    if not st.data or not other:
        return False
    a, b = rng.randint(0, len(st.data)), rng.randint(0, len(other))
    st.data = (st.data[:a] + other[b:])[:MAX_CASE_BYTES]
    return True


def _is_safetensors(data: bytes) -> int | None:
    if len(data) < 9:
        return None
    n = int(struct.unpack_from("<Q", data)[0])
    return n if data[8:9] == b"{" and n <= len(data) - 8 else None


def m_safetensors(rng: random.Random, st: State) -> bool:
    n = _is_safetensors(st.data)
    if n is None:
        return False
    body = st.data[8 + n :]
    if rng.random() < 0.5:
        value = rng.choice((0, 1, 7, n - 1, n + 1, len(st.data) - 8, len(st.data), *BOUNDARY64))
        st.data = struct.pack("<Q", value % 2**64) + st.data[8:]
        return True
    try:
        header = json.loads(st.data[8 : 8 + n])
    except ValueError:
        return False
    if not isinstance(header, dict) or not header:
        return False
    key = rng.choice(sorted(header))
    entry = header[key]
    choice = rng.randrange(6)
    if choice == 0 and isinstance(entry, dict):
        entry["data_offsets"] = [rng.choice(BOUNDARY64), rng.choice(BOUNDARY64)]
    elif choice == 1 and isinstance(entry, dict):
        entry["shape"] = [rng.choice((0, 1, 2**31, 2**62, -1)) for _ in range(rng.randint(0, 9))]
    elif choice == 2 and isinstance(entry, dict):
        entry["dtype"] = rng.choice(("F8_E4M3", "X", "", "BOOL", "F64", "I4", 3, None))
    elif choice == 3:
        header[key + "\x1b[2J" if rng.random() < 0.5 else "../" + key] = header.pop(key)
    elif choice == 4:
        header["__metadata__"] = {"k\x1b]0;x\x07": "v" * rng.choice((1, 70_000)), "n": "\udcff"}
    else:
        header = {f"t{i}": entry for i in range(rng.choice((2, 100, 5000)))}
    raw = json.dumps(header, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    st.data = struct.pack("<Q", len(raw)) + raw + body
    return True


def _opcodes(data: bytes) -> list[int]:
    out = []
    with contextlib.suppress(Exception):
        for _op, _arg, pos in pickletools.genops(io.BytesIO(data)):
            if pos is not None:
                out.append(pos)
            if len(out) > 20_000:
                break
    return out


def _mutate_pickle(rng: random.Random, data: bytes) -> bytes | None:
    positions = _opcodes(data)
    if not positions:
        return None
    at = rng.choice(positions)
    old = data[at]
    group = next((g for g in SWAP_GROUPS if old in g), ALL_OPCODES)
    others = [op for op in (group if rng.random() < 0.8 else ALL_OPCODES) if op != old]
    new = rng.choice(others or [op for op in ALL_OPCODES if op != old])
    return data[:at] + bytes([new]) + data[at + 1 :]


def m_pickle_opcode(rng: random.Random, st: State) -> bool:
    if st.data[:1] == b"\x80" or st.data[:1] in (b"(", b"}", b"]", b"c"):
        mutated = _mutate_pickle(rng, st.data)
        if mutated is not None:
            st.data = mutated
            return True
    return False


def _member_mutation(rng: random.Random, data: bytes, seeds: list[Seed]) -> bytes:
    inner = State(data, "", seeds)
    if not (rng.random() < 0.5 and m_pickle_opcode(rng, inner)):
        rng.choice(GENERIC)[1](rng, inner)
    return inner.data


def m_zip(rng: random.Random, st: State) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(st.data)) as zf:
            infos = zf.infolist()
            if not infos or sum(i.file_size for i in infos) > MAX_CASE_BYTES:
                return False
            members = [(i, zf.read(i)) for i in infos]
    except Exception:
        return False
    k = rng.randrange(len(members))
    info, data = members[k]
    choice = rng.randrange(5)
    if choice == 0:
        data = _member_mutation(rng, data, st.seeds)
    elif choice == 1:
        info.filename = rng.choice(HOSTILE_NAMES).replace("\x00", "\\0") or "x"
    elif choice == 2:
        members.append((info, data))  # the same name twice
    elif choice == 3:
        other = rng.choice(st.seeds)
        members.insert(rng.randint(0, len(members)), (zipfile.ZipInfo(other.filename), other.data))
    else:
        info.external_attr = (0o120777 << 16) if rng.random() < 0.5 else 0xFFFFFFFF
        data = rng.choice((b"../../../etc/passwd", b"/etc/shadow", data))
    members[k] = (info, data) if choice != 2 else members[k]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zw:
        for zi, payload in members:
            new = zipfile.ZipInfo(
                zi.filename.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
                zi.date_time,
            )
            new.compress_type = zi.compress_type
            new.external_attr = zi.external_attr
            with warnings_off():
                zw.writestr(new, payload)
    st.data = out.getvalue()
    return True


@contextlib.contextmanager
def warnings_off() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def m_tar(rng: random.Random, st: State) -> bool:
    try:
        with tarfile.open(fileobj=io.BytesIO(st.data)) as tf:
            members = []
            for m in tf.getmembers():
                f = tf.extractfile(m) if m.isfile() else None
                members.append((m, f.read() if f else None))
            if not members:
                return False
    except Exception:
        return False
    k = rng.randrange(len(members))
    info, data = members[k]
    choice = rng.randrange(4)
    if choice == 0 and data is not None:
        data = _member_mutation(rng, data, st.seeds)
        info.size = len(data)
    elif choice == 1:
        info.name = rng.choice(HOSTILE_NAMES).replace("\x00", "\\0").replace("\udcff", "?") or "x"
    elif choice == 2:
        info.type = rng.choice(
            (tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE)
        )
        info.linkname = rng.choice(("../../etc/passwd", "/etc/shadow", members[0][0].name))
        info.size, data = 0, None
    else:
        members.append((info, data))
    members[k] = (info, data) if choice != 3 else members[k]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tw:
        for ti, payload in members:
            ti.size = len(payload) if payload is not None else 0
            tw.addfile(ti, io.BytesIO(payload) if payload is not None else None)
    st.data = out.getvalue()
    return True


CODECS: list[tuple[bytes, Callable[[bytes], bytes], Callable[[bytes], bytes]]] = [
    (b"\x1f\x8b", gzip.decompress, lambda b: gzip.compress(b, mtime=0)),
    (b"BZh", bz2.decompress, bz2.compress),
    (b"\xfd7zXZ", lzma.decompress, lzma.compress),
]


def m_compressed(rng: random.Random, st: State) -> bool:
    for magic, decompress, compress in CODECS:
        if st.data.startswith(magic):
            try:
                inner = decompress(st.data)
            except Exception:
                return False
            if len(inner) > MAX_CASE_BYTES:
                return False
            is_tar = inner[257:262] == b"ustar"
            if is_tar or inner[:2] == b"\x1f\x8b":
                sub = State(inner, st.filename, st.seeds)
                if not (m_tar if is_tar else m_compressed)(rng, sub):
                    m_bitflip(rng, sub)
                inner = sub.data
            else:
                inner = _member_mutation(rng, inner, st.seeds)
            st.data = compress(inner)
            return True
    return False


def m_gguf(rng: random.Random, st: State) -> bool:
    if not st.data.startswith(b"GGUF") or len(st.data) < 24:
        return False
    at, width = rng.choice(((4, 4), (8, 8), (16, 8)))
    value = rng.choice((*BOUNDARY64, 3, 4)) % 256**width
    st.data = st.data[:at] + value.to_bytes(width, "little") + st.data[at + width :]
    return True


def m_extension(rng: random.Random, st: State) -> bool:
    stem = st.filename.split(".")[0] or "model"
    st.filename = stem + rng.choice(EXTENSIONS)
    return True


def m_filename(rng: random.Random, st: State) -> bool:
    at = rng.randint(0, len(st.filename))
    st.filename = st.filename[:at] + rng.choice(FILENAME_BITS) + st.filename[at:]
    return True


GENERIC: list[tuple[str, Mutation]] = [
    ("bitflip", m_bitflip),
    ("byte", m_byte),
    ("insert", m_insert),
    ("delete", m_delete),
    ("duplicate", m_duplicate),
    ("truncate", m_truncate),
    ("int-boundary", m_int_boundary),
    ("varint", m_varint),
]
MUTATIONS: list[tuple[str, Mutation, int]] = [
    *((name, fn, 10) for name, fn in GENERIC),
    ("splice", m_splice, 6),
    ("safetensors-header", m_safetensors, 8),
    ("pickle-opcode", m_pickle_opcode, 10),
    ("zip-member", m_zip, 8),
    ("tar-member", m_tar, 6),
    ("compressed-inner", m_compressed, 6),
    ("gguf-counts", m_gguf, 5),
    ("extension", m_extension, 3),
    ("filename", m_filename, 3),
]


_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ")
FORMAT_AWARE: dict[str, Callable[[bytes], bool]] = {
    "safetensors-header": lambda d: _is_safetensors(d) is not None,
    "pickle-opcode": lambda d: d[:1] in (b"\x80", b"(", b"}", b"]", b"c"),
    "zip-member": lambda d: d[:2] == b"PK",
    "tar-member": lambda d: d[257:262] == b"ustar" or d[:2] == b"\x1f\x8b",
    "compressed-inner": lambda d: d.startswith(_COMPRESSED),
    "gguf-counts": lambda d: d[:4] == b"GGUF",
}


@dataclass
class Case:
    index: int
    seed: Seed
    data: bytes
    filename: str
    mutations: list[str] = field(default_factory=list)


def make_case(seeds: list[Seed], order: list[int], campaign_seed: int, index: int) -> Case:
    """Case ``index`` of the campaign: the same inputs give the same bytes."""
    rng = random.Random(f"{campaign_seed}:{index}")
    seed = seeds[order[index % len(order)]]
    st = State(seed.data, seed.filename, seeds)
    names, weights = [m[0] for m in MUTATIONS], [m[2] for m in MUTATIONS]
    fns = {m[0]: m[1] for m in MUTATIONS}
    applied: list[str] = []
    wanted = 1 + (rng.random() < 0.4) + (rng.random() < 0.15)
    aware = [name for name, fits in FORMAT_AWARE.items() if fits(seed.data)]
    for attempt in range(12):
        if len(applied) >= wanted:
            break
        if attempt == 0 and aware and rng.random() < 0.5:
            name = rng.choice(aware)  # the seed's own format first, half of the time
        else:
            name = rng.choices(names, weights)[0]
        before = (st.data, st.filename)
        if fns[name](rng, st) and len(st.data) <= MAX_CASE_BYTES:
            applied.append(name)
        else:
            st.data, st.filename = before
    if not applied:
        applied.append("bitflip" if m_bitflip(rng, st) else "insert")
        if not seed.data:
            m_insert(rng, st)
    return Case(index, seed, st.data, st.filename or "x", applied)


def write_case(case: Case, where: Path) -> Path:
    """Write the case under ``where`` (emptied first); return the path to scan."""
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    name = case.filename.replace("/", "_").replace("\x00", "_")[:200] or "x"
    if case.seed.repo_dir is not None:
        top = where / "repo"
        shutil.copytree(case.seed.repo_dir, top, symlinks=True)
        (top / case.seed.filename).unlink()
        (top / name).write_bytes(case.data)
        return top
    (where / name).write_bytes(case.data)
    return where / name


# --- running and judging one case ---------------------------------------------------------------


class CaseTimeout(BaseException):
    """Raised by the watchdog; a BaseException so that the scanner's ``except Exception``
    that turns parser failures into X904 does not swallow it."""


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise CaseTimeout(f"case took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def reset_peak_rss() -> None:
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


SAFE_TEXT_CONTROLS = {"\n"}


def _text_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"text report cannot be encoded as UTF-8: {exc}"
    for ch in set(text):
        cat = unicodedata.category(ch)
        if ch not in SAFE_TEXT_CONTROLS and (
            cat == "Cc" or ch in "\u2028\u2029" or "\u202a" <= ch <= "\u202e"
        ):
            return f"text report holds raw control character {ch!r}"
    return None


def judge(path: Path) -> tuple[str | None, str, dict[str, Any]]:
    """Scan ``path`` and render the report; return (crash kind or None, detail, facts)."""
    from modelscan_lite.config import Config
    from modelscan_lite.report import render
    from modelscan_lite.scanner import scan_paths

    report = scan_paths([str(path)], Config(jobs=1))  # the CLI sample runs the pool
    info: dict[str, Any] = {
        "formats": sorted({a.format for a in report.artifacts}),
        "findings": len(report.findings),
        "errors": len(report.errors),
    }
    x904 = [f for f in report.findings if f.rule == "X904"]
    if x904:
        return "internal-error", x904[0].message, info
    for fmt in ("text", "json", "sarif"):
        try:
            out = render(report, fmt)
        except Exception:
            return f"render-{fmt}", traceback.format_exc(), info
        if fmt == "text":
            problem = _text_problem(out)
            if problem:
                return "render-text", problem, info
        else:
            try:
                json.loads(out)
            except ValueError as exc:
                return f"render-{fmt}", f"{fmt} report is not valid JSON: {exc}", info
    return None, "", info


def run_case(path: Path, seconds: float) -> dict[str, Any]:
    """One case, in this process, under the watchdog; never raises (but KeyboardInterrupt)."""
    reset_peak_rss()
    started = time.perf_counter()
    kind: str | None
    info: dict[str, Any] = {}
    try:
        with watchdog(seconds):
            kind, detail, info = judge(path)
    except CaseTimeout:
        kind, detail = "hang", traceback.format_exc()
    except KeyboardInterrupt:
        raise
    except BaseException:
        kind, detail = "exception", traceback.format_exc()
    elapsed = time.perf_counter() - started
    if kind is None and elapsed > seconds:
        kind, detail = "hang", f"case took {elapsed:.1f} s"
    return {"kind": kind, "detail": detail, "seconds": elapsed, "rss_mib": peak_rss_mib(), **info}


def run_cli(path: Path, timeout: float) -> tuple[str | None, int | None, float]:
    """The real CLI on ``path``: (problem or None, exit code, peak RSS MiB from wait4)."""
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp, "out"), Path(tmp, "err")
        with out.open("wb") as fo, err.open("wb") as fe:
            proc = subprocess.Popen(
                [sys.executable, "-m", "modelscan_lite", "scan", str(path), "--format", "json"],
                stdout=fo,
                stderr=fe,
                cwd=tmp,
                env={**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"},
            )
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
            try:
                _pid, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
        rss = usage.ru_maxrss / 1024
        code = proc.returncode
        stdout, stderr = out.read_bytes(), err.read_bytes()
    if code < 0:
        return f"CLI killed by signal {-code} (timeout {timeout} s?)", code, rss
    if code not in (0, 1, 2):
        return f"CLI exit code {code}: {stderr[-2000:]!r}", code, rss
    if b"Traceback (most recent call last)" in stderr:
        return f"CLI printed a traceback: {stderr[-2000:]!r}", code, rss
    try:
        json.loads(stdout)
    except ValueError as exc:
        return f"CLI stdout is not valid JSON ({exc}): {stdout[:300]!r}", code, rss
    return None, code, rss


# --- the campaign -------------------------------------------------------------------------------


def _worker(
    conn: Any, seeds: list[Seed], order: list[int], cseed: int, work: Path, t: float
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            index = json.loads(conn.recv_bytes())
        except EOFError:  # the campaign is gone
            return
        if index is None:
            return
        case = make_case(seeds, order, cseed, index)
        path = write_case(case, work)
        conn.send_bytes(json.dumps({**run_case(path, t), "path": str(path)}).encode())


class Runner:
    """Runs cases in this process, or in a forked worker that is replaced when it hangs."""

    def __init__(
        self,
        seeds: list[Seed],
        order: list[int],
        cseed: int,
        work: Path,
        t: float,
        isolate: bool,
        grace: float = 10.0,
    ) -> None:
        self.args = (seeds, order, cseed, work, t)
        self.isolate = isolate and sys.platform.startswith("linux")
        self.proc: Any = None
        self.conn: Any = None
        self.grace = grace  # seconds past the watchdog before a silent worker is killed

    def _start(self) -> None:
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, *self.args))
        self.proc.start()
        child.close()
        self.conn = parent

    def run(self, index: int) -> dict[str, Any]:
        seeds, order, cseed, work, t = self.args
        if not self.isolate:
            path = write_case(make_case(seeds, order, cseed, index), work)
            return {**run_case(path, t), "path": str(path)}
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send_bytes(json.dumps(index).encode())
        hard = 2 * t + self.grace
        if self.conn.poll(hard):
            with contextlib.suppress(EOFError):
                result: dict[str, Any] = json.loads(self.conn.recv_bytes())
                return result
            detail = f"worker died (exit code {self.proc.exitcode})"
            kind = "exception"
        else:
            detail, kind = f"no answer in {hard} s (killed)", "hang"
        self.proc.kill()
        self.proc.join()
        self.proc = None
        path = write_case(make_case(seeds, order, cseed, index), work)
        return {"kind": kind, "detail": detail, "seconds": hard, "rss_mib": 0.0, "path": str(path)}

    def close(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.conn.send_bytes(b"null")
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()


def save_reproducer(out: Path, case: Case, cseed: int, kind: str, detail: str, src: Path) -> Path:
    where = out / "crashes" / f"{case.index:06d}-{kind}"
    shutil.rmtree(where, ignore_errors=True)
    (where / "input").mkdir(parents=True)
    if src.is_dir():
        shutil.copytree(src, where / "input" / src.name, symlinks=True)
    else:
        shutil.copyfile(src, where / "input" / src.name)
    meta = {
        "campaign_seed": cseed,
        "case": case.index,
        "kind": kind,
        "seed": case.seed.name,
        "mutations": case.mutations,
        "filename": ascii(case.filename),
        "input": f"input/{src.name}",
        "detail": detail,
        "replay": f"python bench/fuzz_campaign.py --replay {where / 'case.json'}",
    }
    (where / "case.json").write_text(json.dumps(meta, indent=2) + "\n")
    return where / "case.json"


def _git_commit() -> str | None:
    with contextlib.suppress(Exception):
        proc = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return proc.stdout.strip() or None
    return None


def run_campaign(
    cases: int,
    campaign_seed: int = 0,
    seconds_per_case: float = 10.0,
    out: Path | None = None,
    *,
    minutes: float | None = None,
    cli_every: int = 50,
    isolate: bool = True,
    library_seeds: bool = True,
    grace: float = 10.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the campaign and return the results (see the module docstring)."""
    from modelscan_lite import __version__

    out = Path(out or tempfile.mkdtemp(prefix="modelscan-lite-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    started = time.perf_counter()
    seeds = load_seeds(out, library=library_seeds)
    order = seed_order(seeds, campaign_seed)
    runner = Runner(seeds, order, campaign_seed, work / "case", seconds_per_case, isolate, grace)
    crashes: list[dict[str, Any]] = []
    hangs: list[dict[str, Any]] = []
    mutations: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    used: set[str] = set()
    times: list[float] = []
    slowest: dict[str, Any] = {"seconds": -1.0}
    slow: list[dict[str, Any]] = []  # under the hang limit, but over a tenth of it
    heaviest: dict[str, Any] = {"rss_mib": -1.0}
    cli: dict[str, Any] = {"cases": 0, "failures": 0, "exit_codes": Counter(), "peak_rss_mib": 0.0}
    deadline = started + minutes * 60 if minutes else None
    stopped = "cases"
    done = 0
    try:
        for index in range(cases):
            if deadline is not None and time.perf_counter() > deadline:
                stopped = "time"
                break
            case = make_case(seeds, order, campaign_seed, index)
            res = runner.run(index)
            done += 1
            mutations.update(case.mutations)
            used.add(case.seed.name)
            formats.update(res.get("formats", ["?"]))
            outcomes["findings" if res.get("findings") else "clean"] += 1
            outcomes["with-errors"] += bool(res.get("errors"))
            times.append(res["seconds"])
            about = {"case": index, "seed": case.seed.name, "mutations": case.mutations}
            if res["seconds"] > slowest["seconds"]:
                slowest = {**about, "seconds": round(res["seconds"], 3)}
            if res["seconds"] > seconds_per_case / 10:
                slow.append({**about, "seconds": round(res["seconds"], 3)})
            if res["rss_mib"] > heaviest["rss_mib"]:
                heaviest = {**about, "rss_mib": round(res["rss_mib"], 1)}
            kind = res["kind"]
            if kind is None and cli_every and index % cli_every == 0:
                problem, code, rss = run_cli(Path(res["path"]), seconds_per_case + 30)
                cli["cases"] += 1
                cli["exit_codes"][str(code)] += 1
                cli["peak_rss_mib"] = max(cli["peak_rss_mib"], round(rss, 1))
                if problem:
                    cli["failures"] += 1
                    kind, res["detail"] = "cli", problem
            if kind is not None:
                repro = save_reproducer(
                    out, case, campaign_seed, kind, res["detail"], Path(res["path"])
                )
                entry = {**about, "kind": kind, "reproducer": str(repro)}
                entry["detail"] = res["detail"][-600:]
                (hangs if kind == "hang" else crashes).append(entry)
                if progress:
                    progress(f"case {index}: {kind}: {res['detail'][-300:]}")
            if progress and done % 1000 == 0:
                progress(
                    f"{done} cases, {len(crashes)} crashes, {len(hangs)} hangs, "
                    f"{time.perf_counter() - started:.0f} s"
                )
    finally:
        runner.close()
    shutil.rmtree(work, ignore_errors=True)
    digest = hashlib.sha256()
    for s in seeds:
        digest.update(s.name.encode() + b"\0" + hashlib.sha256(s.data).digest())
    return {
        "tool": "bench/fuzz_campaign.py",
        "version": __version__,
        "commit": _git_commit(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "campaign_seed": campaign_seed,
        "cases_requested": cases,
        "minutes_limit": minutes,
        "stopped_by": stopped,
        "cases": done,
        "crashes": len(crashes),
        "hangs": len(hangs),
        "seconds_per_case_limit": seconds_per_case,
        "max_seconds_per_case": slowest["seconds"],
        "slowest_case": slowest,
        "median_seconds_per_case": round(statistics.median(times), 4) if times else None,
        "slow_cases": len(slow),
        "slowest_cases": sorted(slow, key=lambda c: -c["seconds"])[:10],
        "peak_rss_mib": heaviest["rss_mib"],
        "peak_rss_case": heaviest,
        "isolated_worker": runner.isolate,
        "cli": {**cli, "every": cli_every, "exit_codes": dict(sorted(cli["exit_codes"].items()))},
        "outcomes": dict(outcomes),
        "artifact_formats": dict(formats.most_common()),
        "mutations": dict(sorted(mutations.items())),
        "seeds": {
            "count": len(seeds),
            "used": len(used),
            "samples": sum(s.name.startswith("samples/") for s in seeds),
            "library": [s.name for s in seeds if s.name.startswith("lib/")],
            "sha256": digest.hexdigest(),
        },
        "seconds": round(time.perf_counter() - started, 1),
        "crash_list": crashes,
        "hang_list": hangs,
        "out": str(out),
    }


def replay(target: Path, seconds: float) -> int:
    """Re-run the checks on a reproducer (its case.json) or on any file or folder."""
    if target.name == "case.json":
        meta = json.loads(target.read_text())
        print(f"case {meta['case']} of seed {meta['campaign_seed']}: {meta['kind']}")
        print(f"  from {meta['seed']} by {', '.join(meta['mutations'])}")
        target = target.parent / meta["input"]
    res = run_case(target, seconds)
    problem, code, _ = run_cli(target, seconds + 30)
    print(f"in-process: {res['kind'] or 'ok'} in {res['seconds']:.2f} s, {res['rss_mib']:.0f} MiB")
    if res["kind"]:
        print(res["detail"])
    print(f"CLI: exit {code}{', ' + problem if problem else ''}")
    return 1 if res["kind"] or problem else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--minutes", type=float, default=20.0, help="stop after this long (0: never)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds-per-case", type=float, default=10.0)
    ap.add_argument("--out", type=Path, help="reproducers go to OUT/crashes (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=RESULTS, help=f"default {RESULTS}")
    ap.add_argument(
        "--cli-every", type=int, default=50, help="1 case in K through the CLI (0: none)"
    )
    ap.add_argument("--in-process", action="store_true", help="no forked worker")
    ap.add_argument("--no-library-seeds", action="store_true")
    ap.add_argument("--replay", type=Path, metavar="FILE")
    ap.add_argument("--case", type=int, help="rebuild case N of --seed under --out and replay it")
    ap.add_argument("--make-seeds", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.make_seeds:
        make_library_seeds(args.make_seeds)
        return 0
    if args.replay:
        return replay(args.replay, args.seconds_per_case)
    if args.case is not None:
        out = Path(args.out or tempfile.mkdtemp(prefix="modelscan-lite-fuzz-"))
        seeds = load_seeds(out, library=not args.no_library_seeds)
        case = make_case(seeds, seed_order(seeds, args.seed), args.seed, args.case)
        print(f"case {args.case}: {case.seed.name} by {', '.join(case.mutations)}")
        return replay(write_case(case, out / f"case-{args.case}"), args.seconds_per_case)
    results = run_campaign(
        args.cases,
        args.seed,
        args.seconds_per_case,
        args.out,
        minutes=args.minutes or None,
        cli_every=args.cli_every,
        isolate=not args.in_process,
        library_seeds=not args.no_library_seeds,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    results["command"] = "python bench/fuzz_campaign.py " + " ".join(argv or sys.argv[1:])
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"{results['cases']} cases ({results['stopped_by']}), {results['crashes']} crashes, "
        f"{results['hangs']} hangs, slowest {results['max_seconds_per_case']} s, "
        f"peak RSS {results['peak_rss_mib']} MiB, CLI {results['cli']['cases']} cases "
        f"({results['cli']['failures']} failures); {args.json}"
    )
    return 1 if results["crashes"] or results["hangs"] else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
