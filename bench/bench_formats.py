"""Per-format scan cost (issue 12): a typical small input and, where the format allows it, a
1 GiB input whose bulk is tensor bytes, for every format the registry analyses.

    python bench/bench_formats.py [--only SUBSTR] [--small-only] [--runs 5] [--clean]

Inputs are built deterministically under ``bench/data/formats/`` (git-ignored; ``--clean``
deletes it after the run). Small inputs are the real-library fixtures of
``tests/data/formats/`` and the ``ok-*`` files of ``samples/`` where one exists. The 1 GiB
inputs keep the layout of the format and put the tensor bytes in holes of sparse files
(zero runs are seeked over, never written), so the whole set takes a few MB of disk; the ones
made by torch (``torch.save``, ``torch.jit.save``, ``torch.package``, ``torch.export.save``)
and joblib are written through a file object that turns zero runs into holes, the HDF5 ones
by h5py (when an interpreter with it is found: ``--h5py-python``) with early allocation and no
fill, so HDF5 leaves the dataset as a hole.

Each input is measured in fresh processes:

* the CLI as a user runs it, ``python -m modelscan_lite scan PATH --format json``: one
  warm-up, then the median wall time of ``--runs`` runs (2 when one run takes over 10 s),
  peak RSS (``wait4``), ``rchar`` of the process (``/proc/<pid>/io`` read before reaping),
  exit code and the rule IDs of the findings;
* the scan alone, in a child that imports the scanner and scans once (imports warm), then
  drops the input's pages from the page cache, scans again counting the bytes the scan reads
  (``rchar``) and the input's pages resident afterwards (``fincore``: what mmap touched,
  which ``rchar`` does not count; read-ahead included), then times ``--runs`` scans
  (``scanner.scan_file``, or ``scan_paths`` for a folder).

Writes ``bench/results-formats.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "tests" / "data" / "formats"
SAMPLES = ROOT / "samples"
DATA = HERE / "data" / "formats"
GiB = 1 << 30
MiB = 1 << 20
CHUNK = 1 << 20
ZERO = bytes(CHUNK)
DATE = (2024, 1, 1, 0, 0, 0)

# Run as users do: with bytecode caching (bench.py explains why).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

# -- sparse writing ----------------------------------------------------------------------------

Part = bytes | int | Path  # bytes, a run of zero bytes (a hole), or a file copied sparsely


class SparseWriter(io.RawIOBase):
    """A write-only file that seeks over whole zero chunks instead of writing them (the file
    system leaves holes). For libraries that write a format through a file object."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "wb")  # noqa: SIM115
        self._pos = 0
        self._end = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._end}[whence]
        self._pos = base + offset
        return self._pos

    def write(self, b: Any) -> int:
        import numpy as np

        view = memoryview(b).cast("B")
        n = len(view)
        at = 0
        while at < n:
            piece = view[at : at + CHUNK]
            if len(piece) < 4096 or np.frombuffer(piece, np.uint8).any():
                self._f.seek(self._pos)
                self._f.write(piece)
            self._pos += len(piece)
            at += len(piece)
        self._end = max(self._end, self._pos)
        return n

    def close(self) -> None:
        if not self.closed:
            self._f.truncate(self._end)
            os.fsync(self._f.fileno())
            self._f.close()
        super().close()


def copy_sparse(out: BinaryIO, src: Path) -> None:
    with open(src, "rb") as f:
        while chunk := f.read(CHUNK):
            if chunk.count(0) == len(chunk):
                out.seek(len(chunk), 1)
            else:
                out.write(chunk)


def part_size(p: Part) -> int:
    return len(p) if isinstance(p, bytes) else p if isinstance(p, int) else p.stat().st_size


def part_crc(p: Part, crc: int = 0) -> int:
    if isinstance(p, bytes):
        return zlib.crc32(p, crc)
    if isinstance(p, int):
        for at in range(0, p, CHUNK):
            crc = zlib.crc32(ZERO[: min(CHUNK, p - at)], crc)
        return crc
    with open(p, "rb") as f:
        while chunk := f.read(CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def put(out: BinaryIO, p: Part) -> None:
    if isinstance(p, bytes):
        out.write(p)
    elif isinstance(p, int):
        out.seek(p, 1)
    else:
        copy_sparse(out, p)


def finish(out: BinaryIO) -> None:
    out.truncate(out.tell())
    out.flush()
    os.fsync(out.fileno())


def write_parts(path: Path, parts: Iterable[Part]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for p in parts:
            put(out, p)
        finish(out)
    return path


def write_zip(path: Path, members: list[tuple[str, list[Part]]], prefix: bytes = b"") -> Path:
    """A stored (uncompressed) zip, fixed dates, offsets counted from the file's start (a
    prefix makes a self-extracting layout); member data may be holes. No zip64: < 4 GiB."""
    dostime = (DATE[3] << 11) | (DATE[4] << 5) | (DATE[5] // 2)
    dosdate = ((DATE[0] - 1980) << 9) | (DATE[1] << 5) | DATE[2]
    path.parent.mkdir(parents=True, exist_ok=True)
    central = b""
    with open(path, "wb") as out:
        out.write(prefix)
        for name, parts in members:
            size = sum(part_size(p) for p in parts)
            crc = 0
            for p in parts:
                crc = part_crc(p, crc)
            raw = name.encode()
            at = out.tell()
            fixed = struct.pack("<HHHHHIII", 20, 0, 0, dostime, dosdate, crc, size, size)
            out.write(b"PK\x03\x04" + fixed + struct.pack("<HH", len(raw), 0) + raw)
            for p in parts:
                put(out, p)
            central += (
                b"PK\x01\x02"
                + struct.pack("<HHHHHHIII", 20, 20, 0, 0, dostime, dosdate, crc, size, size)
                + struct.pack("<HHHHHII", len(raw), 0, 0, 0, 0, 0o644 << 16, at)
                + raw
            )
        cd_at = out.tell()
        n = len(members)
        out.write(
            central + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, n, n, len(central), cd_at, 0)
        )
        finish(out)
    return path


def write_tar(path: Path, members: list[tuple[str, list[Part]]]) -> Path:
    """An uncompressed ustar archive (mtime 0) whose member data may be holes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for name, parts in members:
            info = tarfile.TarInfo(name)
            info.size = sum(part_size(p) for p in parts)
            info.mtime = 0
            info.mode = 0o644
            info.uname = info.gname = ""
            out.write(info.tobuf(tarfile.USTAR_FORMAT))
            for p in parts:
                put(out, p)
            out.seek(-info.size % 512, 1)
        out.write(bytes(1024))
        finish(out)
    return path


def copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copyfile(src, dst)
    return dst


# -- format builders ---------------------------------------------------------------------------


def st_header(tensors: list[tuple[str, str, list[int], int]]) -> tuple[bytes, int]:
    """safetensors length + header for (name, dtype, shape, nbytes); the data size."""
    from samples.make_samples import st_file, st_tensor

    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    at = 0
    for name, dtype, shape, nbytes in tensors:
        header[name] = st_tensor(dtype, shape, at, at + nbytes)
        at += nbytes
    return st_file(header), at


def big_safetensors(path: Path) -> Path:
    # 16 F16 layers of 4096 x 8192: 1 GiB
    head, data = st_header(
        [
            (f"model.layers.{i}.mlp.up_proj.weight", "F16", [8192, 4096], 8192 * 4096 * 2)
            for i in range(16)
        ]
    )
    return write_parts(path, [head, data])


def gguf_header(width: int, vocab: int, blocks: int) -> tuple[bytes, int]:
    """A llama-style GGUF header: F32 token_embd [width, vocab] and one F32 [width, width]
    attn_q per block; (header padded to the alignment, data size)."""
    from samples.make_samples import g_kv_str, g_kv_tokens, g_kv_u32, g_tensor, gguf_file

    kvs = [
        g_kv_str("general.architecture", "llama"),
        g_kv_u32("llama.block_count", blocks),
        g_kv_u32("llama.embedding_length", width),
        g_kv_tokens(vocab),
    ]
    tensors = [g_tensor("token_embd.weight", [width, vocab], 0, 0)]
    offset = width * vocab * 4
    for b in range(blocks):
        tensors.append(g_tensor(f"blk.{b}.attn_q.weight", [width, width], 0, offset))
        offset += width * width * 4
    return gguf_file(kvs, tensors), offset


def big_gguf(path: Path) -> Path:
    head, data = gguf_header(4096, 32768, 8)  # 512 MiB embeddings + 8 x 64 MiB
    return write_parts(path, [head, data])


def _zeros_f32(n: int) -> Any:
    """A torch tensor of zeros whose pages are never written (calloc: reads map the zero
    page), so writing it costs no memory."""
    import numpy as np
    import torch

    return torch.from_numpy(np.zeros(n, np.float32))


N_1GIB_F32 = GiB // 4


def torch_state(n: int = 16) -> dict[str, Any]:
    """16 F32 tensors of 4096 x 4096, each with its own storage (as a real state dict)."""
    return {f"layers.{i}.weight": _zeros_f32(4096 * 4096).view(4096, 4096) for i in range(n)}


def big_torch_zip(path: Path) -> Path:
    import torch

    with SparseWriter(path) as f:
        torch.save(torch_state(), f)
    return path


def big_torch_legacy(path: Path) -> Path:
    import torch

    with SparseWriter(path) as f:
        torch.save(torch_state(), f, _use_new_zipfile_serialization=False)
    return path


def _big_module() -> Any:
    import torch

    class Big(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(_zeros_f32(N_1GIB_F32).view(16384, 16384))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.weight

    return Big()


def big_torchscript(path: Path) -> Path:
    import torch

    scripted = torch.jit.script(_big_module())
    with SparseWriter(path) as f:
        torch.jit.save(scripted, f)
    return path


def big_torch_package(path: Path) -> Path:
    import torch
    from torch.package import PackageExporter

    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight = torch.nn.Parameter(_zeros_f32(N_1GIB_F32).view(16384, 16384))
        model[0].bias = torch.nn.Parameter(torch.zeros(16384))
    with SparseWriter(path) as f:
        exporter = PackageExporter(f)
        exporter.extern(["torch.**"])
        exporter.save_pickle("model", "model.pkl", model)
        exporter.close()
    return path


def big_pt2(path: Path) -> Path:
    import torch

    module = _big_module()
    program = torch.export.export(module, (torch.zeros(1, 16384),))
    with SparseWriter(path) as f:
        torch.export.save(program, f)
    return path


def big_pickle_numpy(path: Path) -> Path:
    import pickle

    import numpy as np

    with SparseWriter(path) as f:
        pickle.dump({"embeddings": np.zeros(GiB // 8)}, f, protocol=5)
    return path


def big_joblib(path: Path) -> Path:
    import joblib
    import numpy as np

    with SparseWriter(path) as f:
        joblib.dump({"coef_": np.zeros(GiB // 8)}, f)
    return path


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    from samples.make_samples import npy

    return npy(descr, shape, b"")


def big_npy(path: Path) -> Path:
    return write_parts(path, [npy_header("<f4", (16384, 16384)), GiB])


def small_npz(path: Path) -> Path:
    import numpy as np

    members = []
    for name, arr in (("a", np.arange(12, dtype=np.float32).reshape(3, 4)), ("b", np.ones(5))):
        buf = io.BytesIO()
        np.save(buf, arr)
        members.append((f"{name}.npy", [buf.getvalue()]))
    return write_zip(path, members)


def big_npz(path: Path) -> Path:
    return write_zip(
        path,
        [
            ("embeddings.npy", [npy_header("<f4", (16384, 16384)), GiB]),
            ("bias.npy", [npy_header("<f4", (4,)) + bytes(16)]),
        ],
    )


def big_legacy_tar(path: Path) -> Path:
    """The PyTorch 0.1 tar layout (make_samples.legacy_tar) with a 1 GiB storage."""
    from samples.make_samples import (
        BININT1,
        EMPTY_LIST,
        GLOBAL,
        STATE_DICT,
        TUPLE3,
        U,
        pk,
    )

    n = N_1GIB_F32
    storages_head = (
        pk(BININT1(1), proto=2)
        + pk(U("0"), U("cpu"), GLOBAL("torch", "FloatStorage"), TUPLE3, proto=2)
        + struct.pack("<q", n)
    )
    tensors = (
        pk(BININT1(1), proto=2)
        + pk(U("t0"), U("0"), GLOBAL("torch", "FloatTensor"), TUPLE3, proto=2)
        + struct.pack("<i", 1)
        + b"\0" * 4
        + struct.pack("<qqq", n, 1, 0)
    )
    from samples.make_samples import EMPTY_DICT

    return write_tar(
        path,
        [
            ("sys_info", [pk(EMPTY_DICT, proto=2)]),
            ("pickle", [STATE_DICT]),
            ("storages", [storages_head, n * 4, pk(EMPTY_LIST, proto=2)]),
            ("tensors", [tensors]),
        ],
    )


def small_legacy_tar(path: Path) -> Path:
    from samples.make_samples import legacy_tar

    return write_parts(path, [legacy_tar()])


# ONNX: protobuf pieces written around a hole


def _pb_key(field: int, wire: int) -> bytes:
    from samples.make_samples import pb_varint

    return pb_varint(field << 3 | wire)


def _pb_len(field: int, n: int) -> bytes:
    from samples.make_samples import pb_varint

    return _pb_key(field, 2) + pb_varint(n)


def big_onnx_embedded(path: Path) -> Path:
    """``onnx.save`` layout (fields in number order) of a MatMul with a 1 GiB raw_data
    initializer: the serialised pieces come from the onnx library, the raw bytes are a hole."""
    import onnx
    from onnx import TensorProto, helper

    dim = 16384
    nbytes = dim * dim * 4
    tensor = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[dim, dim])
    t_head = tensor.SerializeToString()  # dims(1) data_type(2) name(8); raw_data(9) follows
    t_len = len(t_head) + len(_pb_len(9, nbytes)) + nbytes
    init = _pb_len(5, t_len) + t_head + _pb_len(9, nbytes)
    before = onnx.GraphProto(
        node=[helper.make_node("MatMul", ["X", "W"], ["Y"])], name="g"
    ).SerializeToString()  # node(1) name(2)
    after = onnx.GraphProto(
        input=[helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, dim])],
        output=[helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, dim])],
    ).SerializeToString()  # input(11) output(12)
    g_len = len(before) + len(init) + nbytes + len(after)
    model = helper.make_model(onnx.GraphProto(), opset_imports=[helper.make_opsetid("", 17)])
    model.ClearField("graph")
    head = onnx.ModelProto(ir_version=model.ir_version, producer_name="bench").SerializeToString()
    tail = onnx.ModelProto(opset_import=model.opset_import).SerializeToString()
    return write_parts(path, [head, _pb_len(7, g_len), before, init, nbytes, after, tail])


def small_onnx_external(d: Path) -> Path:
    for p in sorted((SAMPLES / "O401").glob("ok-external.onnx*")):
        copy(p, d / "m" / p.name)
    return d / "m"


def big_onnx_external(folder: Path) -> Path:
    from onnx import TensorProto, helper

    dim = 16384
    w = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[dim, dim])
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "model.onnx.data"), ("offset", "0"), ("length", str(dim * dim * 4))):
        e = w.external_data.add()
        e.key, e.value = k, v
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, dim])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, dim])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    write_parts(folder / "model.onnx", [model.SerializeToString()])
    write_parts(folder / "model.onnx.data", [dim * dim * 4])
    return folder


# TFLite: a FULLY_CONNECTED model whose 1 GiB weight buffer lies after the flatbuffer
# (Buffer.offset/size, how the converter stores models over 2 GB)


def big_tflite(path: Path) -> Path:
    from samples.formats.tensorflow import _flatbuffer

    dim = 16384
    nbytes = dim * dim * 4

    def model(offset: int) -> bytes:
        tensors = [
            [("ints", [1, dim]), ("i8", 0), ("u32", 0), ("str", "input")],
            [("ints", [dim, dim]), ("i8", 0), ("u32", 1), ("str", "weights")],
            [("ints", [1, dim]), ("i8", 0), ("u32", 0), ("str", "output")],
        ]
        subgraph = [
            ("tables", tensors),
            ("ints", [0]),
            ("ints", [2]),
            ("tables", [[("u32", 0), ("ints", [0, 1, -1]), ("ints", [2])]]),
            ("str", "main"),
        ]
        return _flatbuffer(
            [
                ("u32", 3),
                ("tables", [[("i8", 9), None, ("i32", 1), ("i32", 9)]]),  # FULLY_CONNECTED
                ("tables", [subgraph]),
                ("str", "bench"),
                ("tables", [[], [None, ("u64", offset), ("u64", nbytes)]]),
            ]
        )

    first = model(0)
    offset = -(-len(first) // 64) * 64
    fb = model(offset)
    assert len(fb) == len(first)
    return write_parts(path, [fb, offset - len(fb), nbytes])


# ExecuTorch: a program flatbuffer with the extended header, then one 1 GiB data segment


def big_pte(path: Path) -> Path:
    from samples.formats.torch import OK_PTE_OPS, _Builder, _plan

    seg_size = GiB

    class Builder(_Builder):
        """Adds the DataSegment table {0 offset: u64, 1 size: u64} (8-byte slots)."""

        def value(self, v: object) -> int:
            if not isinstance(v, tuple):
                return super().value(v)
            self.buf += bytes(-len(self.buf) % 8)
            vt = len(self.buf)
            self.buf += struct.pack("<HHHH", 8, 24, 8, 16) + bytes(8 - 8 % 8)
            self.buf += bytes(-len(self.buf) % 8)
            at = len(self.buf)
            self.buf += struct.pack("<iIQQ", at - vt, 0, v[0], v[1])
            return at

    def program(seg_base: int) -> bytes:
        b = Builder()
        b.buf += bytes(32)
        root = b.table({0: 0, 1: [_plan(OK_PTE_OPS)], 3: [{0: []}], 4: [(0, seg_size)]})
        struct.pack_into("<I", b.buf, 0, root)
        b.buf[4:8] = b"ET12"
        b.buf[8:32] = b"eh00" + struct.pack("<IQQ", 24, len(b.buf), seg_base)
        return bytes(b.buf)

    first = program(0)
    base = -(-len(first) // 4096) * 4096
    fb = program(base)
    return write_parts(path, [fb, base - len(fb), seg_size])


# Flax msgpack: {"params": {"Dense_i": {"kernel": ndarray ext, "bias": ...}}}, 2 x 512 MiB


def _mp_str(s: str) -> bytes:
    raw = s.encode()
    return bytes([0xA0 | len(raw)]) + raw


def _mp_nd_zero(shape: list[int], dtype: str, nbytes: int) -> list[Part]:
    from samples.formats.others import mp

    inner = b"\x93" + mp(shape) + mp(dtype) + b"\xc6" + struct.pack(">I", nbytes)
    return [b"\xc9" + struct.pack(">Ib", len(inner) + nbytes, 1) + inner, nbytes]


def big_flax(path: Path) -> Path:
    """{"params": {"Dense_0": {"bias": 1 KiB, "kernel": 1 GiB}}}: the sniff needs a whole
    array in the first 4 KiB (a first leaf over ~4 KB is not recognised: see the report)."""
    parts: list[Part] = [b"\x81" + _mp_str("params") + b"\x81" + _mp_str("Dense_0") + b"\x82"]
    parts.append(_mp_str("bias"))
    parts += _mp_nd_zero([256], "float32", 256 * 4)
    parts.append(_mp_str("kernel"))
    parts += _mp_nd_zero([32768, 8192], "float32", GiB)
    return write_parts(path, _merge(parts))


def _merge(parts: list[Part]) -> list[Part]:
    out: list[Part] = []
    for p in parts:
        if out and isinstance(p, bytes) and isinstance(out[-1], bytes):
            out[-1] = out[-1] + p
        else:
            out.append(p)
    return out


def big_llamafile(path: Path) -> Path:
    from samples.formats.others import APE_HEAD

    stub = APE_HEAD + b"\0" * (4096 - len(APE_HEAD))
    head, data = gguf_header(4096, 32768, 8)
    return write_zip(
        path, [("model.gguf", [head, data]), (".args", [b"-m\nmodel.gguf\n...\n"])], prefix=stub
    )


def big_fasttext(path: Path) -> Path:
    """New-format fastText (the layout of tests/test_data_formats.py): 10,000 words, dim
    256, an input matrix of 1,048,576 rows (words + buckets) = 1 GiB."""
    words = [f"w{i}".encode() for i in range(10_000)]
    dim, rows = 256, 1 << 20
    head = struct.pack("<ii", 793712314, 12)
    head += struct.pack("<12id", dim, 5, 5, 1, 5, 1, 2, 1, rows - len(words), 3, 6, 100, 1e-4)
    head += struct.pack("<iiiqq", len(words), len(words), 0, 10**6, -1)
    head += b"".join(w + b"\0" + struct.pack("<qb", 7, 0) for w in words)
    head += b"\0" + struct.pack("<qq", rows, dim)
    out_head = b"\0" + struct.pack("<qq", len(words), dim)
    return write_parts(path, [head, rows * dim * 4, out_head, len(words) * dim * 4])


def big_word2vec(path: Path) -> Path:
    """word2vec binary as gensim's save_word2vec_format(binary=True) writes it: 894,784
    words of 300 float32 (GoogleNews' dimension). Words sit between the vectors every 1.2 KB,
    so the file cannot have holes: this one takes 1 GiB of disk while it exists. The sniff
    needs one whole entry in the first 4 KiB (a dimension over ~1,000 is not recognised)."""
    n, dim = 894_784, 300
    vec = struct.pack("<f", -1.0) + bytes(4 * dim - 4)  # -1.0: bytes no UTF-8 text has
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(f"{n} {dim}\n".encode())
        for start in range(0, n, 16384):
            f.write(b"".join(f"w{i} ".encode() + vec for i in range(start, min(n, start + 16384))))
        finish(f)
    return path


def keras_fixture_members() -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(FIXTURES / "keras" / "sequential.keras") as z:
        return {n: z.read(n) for n in z.namelist()}


H5_SCRIPT = r"""
import sys, h5py, numpy as np
src, dst, group, name = sys.argv[1:5]
import shutil; shutil.copyfile(src, dst)
with h5py.File(dst, "r+", libver="earliest") as f:
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    space = h5py.h5s.create_simple((16384, 16384))
    g = f.require_group(group)
    h5py.h5d.create(g.id, name.encode(), h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
"""


def h5py_python(explicit: str | None) -> str | None:
    candidates = [explicit] if explicit else [sys.executable, "/work/venv-real/bin/python"]
    for py in candidates:
        if py and Path(py).exists():
            ok = subprocess.run([py, "-c", "import h5py"], capture_output=True).returncode == 0
            if ok:
                return py
    return None


def big_h5(src: Path, dst: Path, group: str, name: str, python: str) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-c", H5_SCRIPT, str(src), str(dst), group, name], check=True)
    with open(dst, "rb+") as f:
        os.fsync(f.fileno())
    return dst


def big_keras(path: Path, python: str) -> Path:
    members = keras_fixture_members()
    tmp = path.parent / "model.weights.h5"
    src = path.parent / "fixture.weights.h5"
    write_parts(src, [members["model.weights.h5"]])
    big_h5(src, tmp, "layers/dense/vars", "2", python)
    src.unlink()
    write_zip(
        path,
        [
            ("metadata.json", [members["metadata.json"]]),
            ("config.json", [members["config.json"]]),
            ("model.weights.h5", [tmp]),
        ],
    )
    tmp.unlink()
    return path


def big_legacy_h5(path: Path, python: str) -> Path:
    return big_h5(
        FIXTURES / "keras" / "sequential-legacy.h5",
        path,
        "model_weights/dense/dense",
        "big",
        python,
    )


def big_savedmodel(folder: Path) -> Path:
    copy(FIXTURES / "tensorflow" / "savedmodel-module", folder)
    shard = folder / "variables" / "variables.data-00000-of-00001"
    with open(shard, "rb+") as f:
        f.truncate(GiB)  # the real shard's bytes first (the index stays right), then a hole
    return folder


def savedmodel_tar(path: Path, folder: Path) -> Path:
    members = [(str(p.relative_to(folder)), [p]) for p in sorted(folder.rglob("*")) if p.is_file()]
    return write_tar(path, members)


def big_openvino(folder: Path) -> Path:
    copy(FIXTURES / "others" / "openvino-mlp.xml", folder / "model.xml")
    copy(FIXTURES / "others" / "openvino-mlp.bin", folder / "model.bin")
    with open(folder / "model.bin", "rb+") as f:
        f.truncate(GiB)
    return folder


def small_openvino(folder: Path) -> Path:
    copy(FIXTURES / "others" / "openvino-mlp.xml", folder / "model.xml")
    copy(FIXTURES / "others" / "openvino-mlp.bin", folder / "model.bin")
    return folder


def nemo_members() -> dict[str, bytes]:
    with tarfile.open(FIXTURES / "configs" / "ok-conformer-ctc.nemo") as t:
        return {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}  # type: ignore[union-attr]


def big_nemo(path: Path, ckpt: Path) -> Path:
    m = nemo_members()
    return write_tar(
        path,
        [
            ("./model_config.yaml", [m["./model_config.yaml"]]),
            ("./model_weights.ckpt", [ckpt]),
            ("./vocab.txt", [m["./vocab.txt"]]),
        ],
    )


def big_skops(path: Path) -> Path:
    """ok-logreg.skops with its coefficient array (a .npy member) grown to 1 GiB."""
    import zipfile

    with zipfile.ZipFile(FIXTURES / "configs" / "ok-logreg.skops") as z:
        names = z.namelist()
        data = {n: z.read(n) for n in names}
    biggest = max((n for n in names if n.endswith(".npy")), key=lambda n: len(data[n]))
    members: list[tuple[str, list[Part]]] = []
    for n in names:
        if n == biggest:
            members.append((n, [npy_header("<f8", (GiB // 8,)), GiB]))
        else:
            members.append((n, [data[n]]))
    return write_zip(path, members)


def small_7z(path: Path) -> Path:
    import py7zr

    path.parent.mkdir(parents=True, exist_ok=True)
    with py7zr.SevenZipFile(path, "w") as z:
        z.writestr((SAMPLES / "P101" / "ok-plain-dict.pkl").read_bytes(), "state.pkl")
    return path


def big_7z(path: Path, st: Path) -> Path:
    """A 7z holding a 1 GiB safetensors with the Copy method (stored); written by py7zr,
    then its zero runs punched into holes."""
    import py7zr

    path.parent.mkdir(parents=True, exist_ok=True)
    with py7zr.SevenZipFile(path, "w", filters=[{"id": py7zr.FILTER_COPY}]) as z:
        z.write(st, "model.safetensors")
    subprocess.run(["fallocate", "--dig-holes", str(path)], check=True)
    return path


# -- the cases ---------------------------------------------------------------------------------


@dataclass
class Case:
    fmt: str  # the registry format (or container) it exercises
    label: str
    build: Callable[[Path], Path]  # folder of its own -> the path to scan
    big: bool = False
    note: str = ""


def fixed(src: Path, name: str | None = None) -> Callable[[Path], Path]:
    return lambda d: copy(src, d / (name or src.name))


def parts_file(name: str, parts: Callable[[], list[Part]]) -> Callable[[Path], Path]:
    return lambda d: write_parts(d / name, parts())


def cases(h5py_py: str | None) -> list[Case]:
    from samples.make_samples import gz

    pkl = SAMPLES / "P101" / "ok-plain-dict.pkl"
    gensim_data = None
    try:
        import gensim

        gensim_data = Path(gensim.__file__).parent / "test" / "test_data"
    except ImportError:
        pass
    big_st: dict[str, Path] = {}

    def shared_st(d: Path) -> Path:
        # the 1 GiB safetensors the container cases wrap (built once)
        if "p" not in big_st or not big_st["p"].exists():
            big_st["p"] = big_safetensors(DATA / "_shared" / "model.safetensors")
        return big_st["p"]

    big_ckpt: dict[str, Path] = {}

    def shared_ckpt() -> Path:
        if "p" not in big_ckpt or not big_ckpt["p"].exists():
            big_ckpt["p"] = big_torch_zip(DATA / "_shared" / "model_weights.ckpt")
        return big_ckpt["p"]

    out = [
        # the pickle family
        Case("pickle", "plain dict (sample)", fixed(pkl)),
        Case(
            "pickle",
            "1 GiB numpy array, protocol 5",
            lambda d: big_pickle_numpy(d / "arrays.pkl"),
            True,
        ),
        Case("joblib", "numpy array (sample)", fixed(SAMPLES / "X901" / "ok-joblib-array.joblib")),
        Case(
            "joblib",
            "1 GiB numpy array (joblib.dump)",
            lambda d: big_joblib(d / "model.joblib"),
            True,
        ),
        Case("pytorch-zip", "state dict (sample)", fixed(SAMPLES / "P101" / "ok-state-dict.pt")),
        Case(
            "pytorch-zip",
            "1 GiB state dict, 16 tensors (torch.save)",
            lambda d: big_torch_zip(d / "model.pt"),
            True,
        ),
        Case(
            "pytorch-legacy", "state dict (sample)", fixed(SAMPLES / "P203" / "ok-legacy-torch.pt")
        ),
        Case(
            "pytorch-legacy",
            "1 GiB state dict (torch.save, legacy)",
            lambda d: big_torch_legacy(d / "model.pt"),
            True,
        ),
        Case(
            "pytorch-legacy-tar",
            "state dict (sample layout)",
            lambda d: small_legacy_tar(d / "model.pt"),
        ),
        Case("pytorch-legacy-tar", "1 GiB storage", lambda d: big_legacy_tar(d / "model.pt"), True),
        Case(
            "torchscript",
            "scripted module (fixture)",
            fixed(FIXTURES / "torch" / "scripted-module.pt"),
        ),
        Case(
            "torchscript",
            "1 GiB parameter (torch.jit.save)",
            lambda d: big_torchscript(d / "model.pt"),
            True,
        ),
        Case(
            "torch-package",
            "extern-only package (fixture)",
            fixed(FIXTURES / "torch" / "package-extern-only.pt"),
        ),
        Case(
            "torch-package",
            "1 GiB Linear (PackageExporter)",
            lambda d: big_torch_package(d / "model.pt"),
            True,
        ),
        Case("pt2", "exported program (fixture)", fixed(FIXTURES / "torch" / "exported.pt2")),
        Case("pt2", "1 GiB weight (torch.export.save)", lambda d: big_pt2(d / "model.pt2"), True),
        Case("executorch", "program (sample)", fixed(SAMPLES / "T103" / "ok-program.pte")),
        Case("executorch", "1 GiB data segment", lambda d: big_pte(d / "model.pte"), True),
        Case("npy", "array (sample)", fixed(SAMPLES / "A201" / "ok-array.npy")),
        Case("npy", "1 GiB float32 array", lambda d: big_npy(d / "embeddings.npy"), True),
        Case("npz", "two arrays (np.save members)", lambda d: small_npz(d / "arrays.npz")),
        Case("npz", "1 GiB member", lambda d: big_npz(d / "arrays.npz"), True),
        # tensor formats
        Case("safetensors", "valid (sample)", fixed(SAMPLES / "S201" / "ok-valid.safetensors")),
        Case(
            "safetensors",
            "1 GiB, 16 F16 tensors",
            lambda d: big_safetensors(d / "model.safetensors"),
            True,
        ),
        Case("gguf", "valid (sample)", fixed(SAMPLES / "G201" / "ok-valid.gguf")),
        Case("gguf", "with a chat template (sample)", fixed(SAMPLES / "J101" / "ok-chatml.gguf")),
        Case("gguf", "1 GiB, 32k-token vocabulary", lambda d: big_gguf(d / "model.gguf"), True),
        Case("onnx", "valid (sample)", fixed(SAMPLES / "O101" / "ok-valid.onnx")),
        Case(
            "onnx",
            "1 GiB initializer embedded",
            lambda d: big_onnx_embedded(d / "model.onnx"),
            True,
        ),
        Case("onnx", "external data (sample folder)", small_onnx_external, note="folder"),
        Case(
            "onnx",
            "1 GiB external data (folder)",
            lambda d: big_onnx_external(d / "m"),
            True,
            "folder",
        ),
        # Keras / TensorFlow
        Case("keras-v3", "Sequential (fixture)", fixed(FIXTURES / "keras" / "sequential.keras")),
        Case(
            "hdf5",
            "legacy Sequential .h5 (fixture)",
            fixed(FIXTURES / "keras" / "sequential-legacy.h5"),
        ),
        Case(
            "tf-savedmodel",
            "tf.Module (fixture folder)",
            fixed(FIXTURES / "tensorflow" / "savedmodel-module", "m"),
            note="folder",
        ),
        Case(
            "tf-savedmodel",
            "1 GiB variables shard (folder)",
            lambda d: big_savedmodel(d / "m"),
            True,
            "folder",
        ),
        Case(
            "tf-savedmodel",
            "1 GiB variables shard, as a tar",
            lambda d: savedmodel_tar(d / "saved_model.tar", big_savedmodel(d / "m")),
            True,
        ),
        Case("tflite", "dense (fixture)", fixed(FIXTURES / "tensorflow" / "dense.tflite")),
        Case(
            "tflite",
            "1 GiB buffer after the flatbuffer",
            lambda d: big_tflite(d / "model.tflite"),
            True,
        ),
        # configs
        Case(
            "nemo", "Conformer CTC (fixture)", fixed(FIXTURES / "configs" / "ok-conformer-ctc.nemo")
        ),
        Case(
            "nemo",
            "Conformer CTC, gzip (fixture)",
            fixed(FIXTURES / "configs" / "ok-conformer-ctc-gz.nemo"),
        ),
        Case(
            "nemo",
            "1 GiB model_weights.ckpt (tar)",
            lambda d: big_nemo(d / "model.nemo", shared_ckpt()),
            True,
        ),
        Case(
            "skops", "LogisticRegression (fixture)", fixed(FIXTURES / "configs" / "ok-logreg.skops")
        ),
        Case(
            "skops",
            "LogisticRegression, 1 GiB coef array",
            lambda d: big_skops(d / "model.skops"),
            True,
        ),
        # other model formats
        Case("xgboost-json", "gbtree (fixture)", fixed(FIXTURES / "others" / "xgb-gbtree.json")),
        Case("xgboost-ubj", "gbtree (fixture)", fixed(FIXTURES / "others" / "xgb-gbtree.ubj")),
        Case(
            "xgboost-binary",
            "legacy binary (sample)",
            fixed(SAMPLES / "M220" / "ok-xgboost-legacy.bin"),
        ),
        Case(
            "lightgbm", "binary classifier (fixture)", fixed(FIXTURES / "others" / "lgb-binary.txt")
        ),
        Case(
            "catboost", "symmetric trees (fixture)", fixed(FIXTURES / "others" / "cb-symmetric.cbm")
        ),
        Case(
            "flax-msgpack", "params (fixture)", fixed(FIXTURES / "others" / "flax-params.msgpack")
        ),
        Case(
            "flax-msgpack",
            "1 GiB Dense kernel",
            lambda d: big_flax(d / "flax_model.msgpack"),
            True,
        ),
        Case(
            "openvino-ir", "MLP (fixture folder)", lambda d: small_openvino(d / "m"), note="folder"
        ),
        Case("openvino-ir", "1 GiB .bin (folder)", lambda d: big_openvino(d / "m"), True, "folder"),
        Case("executable", "llamafile (sample)", fixed(SAMPLES / "M122" / "ok-model.llamafile")),
        Case(
            "executable",
            "llamafile with a 1 GiB GGUF",
            lambda d: big_llamafile(d / "model.llamafile"),
            True,
        ),
        # data formats
        Case(
            "sentencepiece",
            "tokenizer.model (sample)",
            fixed(SAMPLES / "A208" / "ok-tokenizer.model"),
        ),
        Case(
            "word2vec",
            "1 GiB, 894,784 x 300 (not sparse)",
            lambda d: big_word2vec(d / "vectors.bin"),
            True,
        ),
        Case("fasttext", "1 GiB input matrix", lambda d: big_fasttext(d / "model.bin"), True),
        # containers
        Case("zip", "relative member (sample)", fixed(SAMPLES / "A401" / "ok-relative.zip")),
        Case(
            "zip",
            "1 GiB TFLite member",
            lambda d: write_zip(d / "tflite.zip", [("model.tflite", [big_tflite(d / "x.tflite")])]),
            True,
        ),
        Case(
            "zip",
            "1 GiB safetensors member",
            lambda d: write_zip(d / "model.zip", [("model.safetensors", [shared_st(d)])]),
            True,
        ),
        Case("tar", "regular members (sample)", fixed(SAMPLES / "A402" / "ok-regular.tar")),
        Case(
            "tar",
            "1 GiB ONNX member (initializer embedded)",
            lambda d: write_tar(
                d / "onnx.tar", [("model.onnx", [big_onnx_embedded(d / "x.onnx")])]
            ),
            True,
        ),
        Case(
            "tar",
            "1 GiB safetensors member",
            lambda d: write_tar(d / "model.tar", [("model.safetensors", [shared_st(d)])]),
            True,
        ),
        Case(
            "gzip", "pickle (gzip -6)", parts_file("state.pkl.gz", lambda: [gz(pkl.read_bytes())])
        ),
        Case("bz2", "pickle (sample)", fixed(SAMPLES / "A301" / "ok-bz2.pkl.bz2")),
        Case(
            "xz",
            "pickle (xz)",
            parts_file("state.pkl.xz", lambda: [lzma.compress(pkl.read_bytes())]),
        ),
        Case("7z", "pickle (py7zr)", lambda d: small_7z(d / "state.7z")),
        Case(
            "7z",
            "1 GiB safetensors, Copy method",
            lambda d: big_7z(d / "model.7z", shared_st(d)),
            True,
        ),
    ]
    if gensim_data is not None:
        out += [
            Case(
                "fasttext",
                "lee_fasttext_new.bin (gensim test data)",
                fixed(gensim_data / "lee_fasttext_new.bin"),
            ),
            Case(
                "word2vec",
                "euclidean_vectors.bin (gensim test data)",
                fixed(gensim_data / "euclidean_vectors.bin"),
            ),
            Case(
                "word2vec-text",
                "word2vec_pre_kv_c (gensim test data)",
                fixed(gensim_data / "word2vec_pre_kv_c", "vectors.txt"),
            ),
        ]
    if h5py_py:
        out += [
            Case(
                "keras-v3",
                "1 GiB model.weights.h5 dataset",
                lambda d: big_keras(d / "model.keras", h5py_py),
                True,
            ),
            Case(
                "hdf5",
                "legacy .h5 with a 1 GiB dataset",
                lambda d: big_legacy_h5(d / "model.h5", h5py_py),
                True,
            ),
        ]
    # grouped by family (word2vec-text beside word2vec), small before 1 GiB per format
    first: dict[str, int] = {}
    for i, c in enumerate(out):
        first.setdefault(c.fmt.split("-")[0], i)
        first.setdefault(c.fmt, i)
    return sorted(out, key=lambda c: (first[c.fmt.split("-")[0]], first[c.fmt], c.big))


# -- measuring ---------------------------------------------------------------------------------

INPROC = r"""
import ctypes, json, os, statistics, sys, time
path, runs = sys.argv[1], int(sys.argv[2])
from modelscan_lite.config import Config
from modelscan_lite.scanner import build_policy, scan_file, scan_paths
config = Config(jobs=1)
policy = build_policy(config)
folder = os.path.isdir(path)
files = [os.path.join(r, n) for r, _, ns in os.walk(path) for n in ns] if folder else [path]

def scan():
    return scan_paths([path], config) if folder else scan_file(path, policy, config)

def rchar():
    with open("/proc/self/io") as f:
        return int(next(l for l in f if l.startswith("rchar")).split()[1])

def resident(p):
    # bytes of the file in the page cache (mincore over a mapping, as fincore does)
    import mmap
    size = os.path.getsize(p)
    if not size:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    c = ctypes
    libc.mmap.argtypes = [c.c_void_p, c.c_size_t, c.c_int, c.c_int, c.c_int, c.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    fd = os.open(p, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        page = mmap.PAGESIZE
        vec = ctypes.create_string_buffer((size + page - 1) // page)
        libc.mincore(ctypes.c_void_p(addr), size, vec)
        libc.munmap(ctypes.c_void_p(addr), size)
        return sum(b & 1 for b in vec.raw) * page
    finally:
        os.close(fd)

def drop():
    for p in files:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

t = time.perf_counter(); scan(); first = time.perf_counter() - t
drop()
before = rchar()
scan()
read = rchar() - before
pages = sum(resident(p) for p in files)
times = []
for _ in range(runs):
    t = time.perf_counter(); scan(); times.append(time.perf_counter() - t)
print(json.dumps({"first_ms": first * 1000, "median_ms": statistics.median(times) * 1000,
                  "scan_rchar": read, "pages_resident": pages}))
"""


# The CLI children are started by this small process, not by the benchmark (which has torch
# and numpy loaded): a child forked from a big parent inherits its peak RSS (ru_maxrss keeps the
# high-water mark across exec), and forking a big process costs time.
LAUNCHER = r"""
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    with open(job["out"], "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(job["cmd"], stdout=out, stderr=subprocess.DEVNULL,
                                env=job["env"], cwd=job["cwd"])
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        wall = time.perf_counter() - start
        with open(f"/proc/{proc.pid}/io") as f:
            io = {k: int(v) for k, v in (l.split(":") for l in f)}
        _, status, usage = os.wait4(proc.pid, 0)
    print(json.dumps({"wall": wall, "maxrss_kib": usage.ru_maxrss, "rchar": io["rchar"],
                      "read_bytes": io["read_bytes"],
                      "exit": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class Launcher:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, cmd: list[str], out: Path) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        job = {"cmd": cmd, "out": str(out), "env": ENV, "cwd": str(ROOT)}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        result: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return result

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


def cli_run(launcher: Launcher, path: Path, out_file: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "modelscan_lite", "scan", str(path), "--format", "json", "-q"]
    return launcher.run(cmd, out_file)


def measure(launcher: Launcher, path: Path, runs: int) -> dict[str, Any]:
    report_file = Path(tempfile.mktemp(prefix="bench-formats-", suffix=".json"))
    try:
        first = cli_run(launcher, path, report_file)
        n = runs if first["wall"] < 10 else 2
        results = [cli_run(launcher, path, report_file) for _ in range(n)]
        report = json.loads(report_file.read_text() or "{}")
    finally:
        report_file.unlink(missing_ok=True)
    findings = sorted(
        {
            f"{f['rule']}:{f['severity']}"
            for a in report.get("artifacts", [])
            for f in a.get("findings", [])
        }
    )
    formats = sorted({a.get("format", "?") for a in report.get("artifacts", [])})
    inproc = subprocess.run(
        [sys.executable, "-c", INPROC, str(path), str(n)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=1800,
    )
    if inproc.returncode:
        raise RuntimeError(f"in-process scan of {path} failed: {inproc.stderr[-2000:]}")
    scan = json.loads(inproc.stdout.strip().splitlines()[-1])
    return {
        "cli_runs": n,
        "wall_s": round(statistics.median(r["wall"] for r in results), 3),
        "walls_s": [round(r["wall"], 3) for r in results],
        "peak_rss_mib": round(max(r["maxrss_kib"] for r in results) / 1024, 1),
        "process_rchar": statistics.median(r["rchar"] for r in results),
        "exit": sorted({r["exit"] for r in results}),
        "findings": findings,
        "scanned_as": formats,
        "errors": report.get("errors", []),
        "inproc_ms": round(scan["median_ms"], 2),
        "inproc_first_ms": round(scan["first_ms"], 2),
        "scan_bytes_read": scan["scan_rchar"],
        "pages_touched": scan["pages_resident"],
    }


def sizes(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return (
        sum(p.stat().st_size for p in files),
        sum(p.stat().st_blocks * 512 for p in files),
    )


def human(n: float) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if n < 10 * scale else f"{n / scale:.0f} {unit}"
    return f"{int(n)} B"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| format | input | size | wall s | in-process ms | peak MiB | bytes read "
        "| pages touched | exit, findings |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            failed = f"build failed: {r['error'][:80]}"
            lines.append(f"| {r['format']} | {r['input']} |{' - |' * 7} {failed} |")
            continue
        m = r["measure"]
        exit_ = ",".join(str(e) for e in m["exit"])
        found = " ".join(m["findings"]) if m["findings"] else ""
        lines.append(
            f"| {r['format']} | {r['input']} | {human(r['size'])} | {m['wall_s']:.3f} | "
            f"{m['inproc_ms']:.1f} | {m['peak_rss_mib']:.0f} | {human(m['scan_bytes_read'])} | "
            f"{human(m['pages_touched'])} | {exit_}{(' ' + found) if found else ''} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", help="cases whose format or label has this")
    ap.add_argument("--small-only", action="store_true", help="skip the 1 GiB inputs")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--h5py-python", help="an interpreter with h5py (for the 1 GiB HDF5 inputs)")
    ap.add_argument("--out", type=Path, default=HERE / "results-formats.json")
    ap.add_argument("--clean", action="store_true", help=f"delete {DATA} afterwards")
    args = ap.parse_args()
    launcher = Launcher()  # first, while this process is small
    free = shutil.disk_usage(HERE).free
    if free < 8 * GiB:
        sys.exit(f"only {human(free)} free under {HERE}: want 8 GiB of headroom")
    h5py_py = h5py_python(args.h5py_python)
    selected = [
        c
        for c in cases(h5py_py)
        if (not args.small_only or not c.big)
        and (not args.only or any(s in c.fmt or s in c.label for s in args.only))
    ]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    baseline = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        for label, cmd in (
            ("python -I -c pass", [sys.executable, "-I", "-c", "pass"]),
            ("modelscan_lite --help", [sys.executable, "-m", "modelscan_lite", "--help"]),
        ):
            walls = [launcher.run(cmd, out)["wall"] for _ in range(args.runs)]
            baseline[label] = round(statistics.median(walls), 3)
    print(f"start-up on this machine now: {baseline}", flush=True)
    try:
        for i, case in enumerate(selected):
            folder = DATA / f"{i:02d}-{case.fmt}{'-1GiB' if case.big else ''}"
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            row: dict[str, Any] = {"format": case.fmt, "input": case.label, "big": case.big}
            try:
                t = time.perf_counter()
                target = case.build(folder)
                row["build_s"] = round(time.perf_counter() - t, 2)
            except Exception as exc:  # a missing optional library: reported, not fatal
                row["error"] = f"{type(exc).__name__}: {exc}"
                rows.append(row)
                print(f"{case.fmt:20} {case.label:45} build failed: {row['error']}", flush=True)
                continue
            row["size"], row["disk"] = sizes(target)
            row["path"] = str(target.relative_to(DATA))
            row["measure"] = measure(launcher, target, args.runs)
            m = row["measure"]
            print(
                f"{case.fmt:20} {case.label:45} {human(row['size']):>9} {m['wall_s']:6.3f} s "
                f"{m['inproc_ms']:9.1f} ms {m['peak_rss_mib']:6.0f} MiB "
                f"{human(m['scan_bytes_read']):>9} read {human(m['pages_touched']):>9} paged "
                f"exit {m['exit']} {' '.join(m['findings'])}",
                flush=True,
            )
            rows.append(row)
            if case.big:  # keep the disk small: the 1 GiB inputs are sparse, still drop them
                shutil.rmtree(folder)
    finally:
        launcher.close()
        if args.clean and DATA.exists():
            shutil.rmtree(DATA)
    doc = {
        "what": (
            "per-format scan cost: `python -m modelscan_lite scan PATH --format json` (median "
            "wall seconds of `cli_runs` runs after one warm-up, peak RSS, exit, findings) and "
            "the scan alone in-process (median ms, imports warm; bytes it read via rchar with "
            "the input's pages dropped first, and the input's pages resident afterwards)"
        ),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs; noisy",
        "seconds_total": round(time.perf_counter() - started, 1),
        "startup_s": baseline,
        "cases": rows,
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print()
    print(table(rows))
    print(f"\nwrote {args.out} in {doc['seconds_total']} s")


if __name__ == "__main__":
    main()
