"""Tensor names, dtypes and shapes of a repo's weight files, from headers only.

safetensors: the JSON header. PyTorch checkpoints (zip or legacy): the pickle machine's
symbolic evaluation of ``_rebuild_tensor_v2`` calls in the state dict. Nothing is loaded.
"""

from __future__ import annotations

import os
import struct
import zipfile

from .. import jsonbudget
from ..formats.pickle_vm import Reader, walk_stream
from ..formats.safetensors import header_summary
from ..formats.streams import BytesSource
from ..limits import Deadline, Limits

TensorMap = dict[str, tuple[str, tuple[int, ...]]]
# storage class -> safetensors dtype name
_STORAGE_DTYPES = {
    "FloatStorage": "F32",
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "DoubleStorage": "F64",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
}
MAX_HEADER = 100_000_000
MAX_PICKLE = 64 << 20


def safetensors_tensors(path: str) -> TensorMap | None:
    try:
        with open(path, "rb") as f:
            pre = f.read(8)
            if len(pre) < 8:
                return None
            (n,) = struct.unpack("<Q", pre)
            if n > MAX_HEADER:
                return None
            # the file's own scan reports a header over the budgets; here it is skipped
            header = jsonbudget.loads(f.read(n), Limits())
    except (OSError, ValueError, RecursionError, jsonbudget.JsonBudgetExceeded):
        return None
    return header_summary(header) if isinstance(header, dict) else None


def pickle_tensors(path: str) -> TensorMap | None:
    """Tensors of a PyTorch checkpoint (zip ``data.pkl`` or a legacy/raw pickle)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith("data.pkl")]
                if not names or zf.getinfo(names[0]).file_size > MAX_PICKLE:
                    return None
                data = zf.read(names[0])
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_PICKLE)
    except (OSError, zipfile.BadZipFile, ValueError, NotImplementedError):
        return None
    reader = Reader(BytesSource(data))
    budget = [Limits().max_opcodes]
    tensors: TensorMap = {}
    for _ in range(5):  # legacy files hold the state dict in their fourth pickle
        res = walk_stream(reader, Limits(), Deadline(30), budget)
        tensors.update({k: (_STORAGE_DTYPES.get(d, d), s) for k, (d, s) in res.tensors.items()})
        if res.error or reader.at_eof():
            break
    return tensors


def weight_tensors(path: str) -> TensorMap | None:
    name = os.path.basename(path)
    if name.endswith(".safetensors"):
        return safetensors_tensors(path)
    if name.endswith((".bin", ".pt", ".pth", ".ckpt")):
        return pickle_tensors(path)
    return None


def dominant_dtype(tensors: TensorMap) -> str | None:
    counts: dict[str, int] = {}
    for dtype, _ in tensors.values():
        if dtype in ("F32", "F16", "BF16", "F64"):
            counts[dtype] = counts.get(dtype, 0) + 1
    return max(counts, key=lambda d: counts[d]) if counts else None
