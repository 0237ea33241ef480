"""Content sniffing: which format a stream holds, from its first bytes (never its name).

Order matters: strong magic numbers first, then headers with internal checks (tar checksum,
safetensors length + ``{``), then pickles (protocol 2+ magic, or a protocol 0/1 trial walk),
then text. ``HEAD`` bytes are enough for every decision.
"""

from __future__ import annotations

import struct

from .onnx import sniff_onnx
from .pickles import sniff_pickle

HEAD = 4096

# format name -> family: what the format can do when loaded
PICKLE_FAMILY = frozenset(
    {
        "pickle",
        "pytorch-zip",
        "torchscript",
        "pytorch-legacy",
        "pytorch-legacy-tar",
        "joblib",
        "npy-object",
    }
)
CONTAINERS = frozenset({"zip", "npz", "tar", "7z", "gzip", "bz2", "xz", "lzma", "zlib", "lz4"})


def _is_tar(head: bytes) -> bool:
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    try:
        stored = int(head[148:156].split(b"\0")[0].strip() or b"-1", 8)
    except ValueError:
        return False
    block = head[:148] + b" " * 8 + head[156:512]
    return stored == sum(block) and head[0] != 0


def _is_safetensors(head: bytes) -> bool:
    """An 8-byte length under 2**40, then a JSON object: ``{`` and a quote, ``}`` or space."""
    if len(head) < 10:
        return False
    (n,) = struct.unpack_from("<Q", head)
    return 2 <= n < (1 << 40) and head[8:9] == b"{" and head[9:10] in (b'"', b"}", b" ", b"\n")


def _is_zlib(head: bytes) -> bool:
    return (
        len(head) >= 2
        and head[0] == 0x78
        and (head[0] << 8 | head[1]) % 31 == 0
        and head[1] in (0x01, 0x5E, 0x9C, 0xDA)
    )


def _is_text(head: bytes) -> bool:
    if not head:
        return True
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a cut multi-byte character at the end is fine
            return False
    return True


def sniff(head: bytes) -> str:
    """The format name for ``head`` (``unknown`` when nothing matches)."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and head[3:4].isdigit():
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x04\x22\x4d\x18"):
        return "lz4"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"GGUF") or head.startswith(b"FUGG"):
        return "gguf"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head[4:8] == b"TFL3":
        return "tflite"
    if _is_tar(head):
        return "tar"
    # A safetensors length field can start with 80 02..05 (a header of 0x0280..0x0580
    # bytes), which reads as a pickle PROTO: the structural safetensors test goes first.
    if _is_safetensors(head):
        return "safetensors"
    if head.startswith(b"\x80") and sniff_pickle(head):
        return "pickle"
    if head.startswith(b"\x5d\x00\x00") and len(head) >= 13:
        return "lzma"
    if _is_zlib(head):
        return "zlib"
    if sniff_pickle(head, strict=True):
        return "pickle"
    if sniff_onnx(head):
        return "onnx"
    if _is_text(head):
        return "text"
    return "unknown"
