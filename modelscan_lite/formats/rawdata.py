"""Files named like models whose bytes no parser here reads, but whose first bytes show they
are data no code-capable loader accepts: legacy GGML files, UBJSON (xgboost's default
``save_model`` format) and headerless numeric tensor shards (TF.js ``group1-shard1of1.bin``,
ONNX external data, OpenVINO and NCNN weights).

Identification (read from the head only)::

    legacy GGML   u32 LE magic "ggml" 0x67676d6c, "ggmf", "ggjt" or LoRA "ggla" at byte 0
                  (the bytes b"lmgg", b"fmgg", b"tjgg", b"algg")
    UBJSON        "{" then a UBJSON length marker (i U I l L) or "}" / "#" / "$"
    raw tensors   >= 1 KiB of head in which at least 98% of the aligned elements are zero or
                  finite with a magnitude between ~1e-12 and ~1e6, read as float32, bfloat16
                  or float16 little-endian

Why none of these can be a code-capable format the sniffer missed: every loader that can run
code (``pickle``/``torch``/``joblib``/``numpy``/Keras) decides from byte 0. ``l``, ``t``
and ``a`` are pickle opcodes (LIST, TUPLE, APPEND) that fail on an empty stack, ``f`` and
``{`` are not opcodes, and the zip, gzip, bz2, xz, lzma, zlib, lz4, HDF5 and ``.npy`` magics
were already tried. For raw tensors the pickle trial walk must also fail before any opcode
that imports (GLOBAL, STACK_GLOBAL, INST, EXT*, PERSID), so the unpickler raises before it
can reach anything callable. These files are reported as not analysed (X202), not as opaque
(X201).
"""

from __future__ import annotations

import struct

from ..limits import Deadline, Limits
from .pickle_vm import Reader, walk_stream
from .streams import BytesSource

GGML_MAGICS = (b"lmgg", b"fmgg", b"tjgg", b"algg")
UBJSON_NEXT = frozenset(b"iUIlL}#$")
MIN_EVIDENCE = 1024
SHARE = 0.98


def sniff_ggml(head: bytes) -> bool:
    return head[:4] in GGML_MAGICS and len(head) >= 8


def sniff_ubjson(head: bytes) -> bool:
    return len(head) >= 3 and head[0] == 0x7B and head[1] in UBJSON_NEXT


def _share_f32(head: bytes) -> float:
    n = len(head) // 4
    ok = 0
    for (w,) in struct.iter_unpack("<I", head[: n * 4]):
        e = (w >> 23) & 0xFF
        ok += not w & 0x7FFFFFFF or 87 <= e <= 147
    return ok / n


def _share_bf16(head: bytes) -> float:
    n = len(head) // 2
    ok = 0
    for (h,) in struct.iter_unpack("<H", head[: n * 2]):
        e = (h >> 7) & 0xFF
        ok += not h & 0x7FFF or 87 <= e <= 147
    return ok / n


def _share_f16(head: bytes) -> float:
    n = len(head) // 2
    ok = 0
    for (h,) in struct.iter_unpack("<H", head[: n * 2]):
        e = (h >> 10) & 0x1F
        ok += not h & 0x7FFF or 1 <= e <= 22
    return ok / n


def _no_import_before_failure(head: bytes) -> bool:
    """The unpickler fails on these bytes before any opcode that imports."""
    res = walk_stream(Reader(BytesSource(head)), Limits(max_opcodes=64), Deadline(1.0), [64])
    return not res.stopped and not res.globals and not res.ext_codes and res.opcodes < 64


def raw_tensor_kind(head: bytes) -> str | None:
    """``float32``, ``bfloat16`` or ``float16`` when ``head`` reads as tensor data."""
    if len(head) < MIN_EVIDENCE or not any(head):
        return None
    for name, share in (
        ("float32", _share_f32),
        ("bfloat16", _share_bf16),
        ("float16", _share_f16),
    ):
        if share(head) >= SHARE:
            return name if _no_import_before_failure(head) else None
    return None
