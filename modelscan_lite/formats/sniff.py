"""Content sniffing: which format a stream holds, from its first bytes (never its name).

Order matters: strong magic numbers first, then headers with internal checks (tar checksum,
safetensors length + ``{``), then pickles (protocol 2+ magic, or a protocol 0/1 trial walk),
then the structural sniffs of data formats, then text. ``HEAD`` bytes are enough for every
decision but one: a protocol 0/1 pickle whose first opcodes are longer than the head
(:func:`pickle_prefix` says so, and the dispatcher reads on; see there).

Where the data formats sit, and why:

* joblib ``ZF`` (``ZF0x`` + a zlib header) and fastText (magic 793712314 + version) are
  magic numbers no other format starts with: with the other magics, first.
* SentencePiece starts with ``0x0a``: not a pickle opcode, not ONNX's ``0x08``. It comes
  after the pickle and ONNX sniffs so that neither can be shadowed by it, and before text
  because a piece walk rejects text (a piece needs the control byte ``0x15`` or ``0x18``).
* old-format fastText (no magic) is a range check of 12 integers and a double: after
  every magic and the pickle trial walk, so it can only claim bytes nothing else wants.
* normaliser tables start with a u32 trie size that is a multiple of 1024, so byte 0 is
  ``0x00``: no pickle opcode, no archive or compression magic. Their check validates the
  trie units in the head.
* word2vec starts with ASCII digits, which the pickle trial walk rejects at once (``0``
  POP, ``1`` POP_MARK, ``2`` DUP on an empty stack; ``3``-``9`` are not opcodes). It sits
  just before text because its text variant is text.
* formats declared in the registry (:mod:`.registry`) join at three places: ``magic``
  entries with the other magic numbers (after GGUF), ``structural`` sniffs right after
  ONNX, ``data`` sniffs after the built-in data formats.
* legacy GGML (``lmgg`` ...) and UBJSON (``{`` + a length marker) are recognised, not
  parsed (:mod:`.rawdata`); they sit last before text: neither can start a pickle.
"""

from __future__ import annotations

import re
import struct

from ..limits import Deadline, Limits
from .pickle_vm import Reader, walk_stream
from .pickles import STARTS, sniff_pickle
from .registry import magic_format, sniffers
from .streams import BytesSource, Source

HEAD = 4096
_IMPORTABLE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
# How far the dispatcher reads on while a protocol 0/1 pickle prefix is undecided.
SNIFF_MAX = 1 << 20

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
CONTAINERS = frozenset(
    {"zip", "npz", "tar", "7z", "gzip", "bz2", "xz", "lzma", "zlib", "lz4", "joblib-zf"}
)
# Formats that are data only: loading them builds strings and numbers and runs nothing.
DATA_FORMATS = frozenset(
    {"sentencepiece", "spm-charsmap", "fasttext", "word2vec", "word2vec-text", "ggml", "ubjson"}
)


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


# the shortest head a data-format sniffer decides on (a word2vec text header "N D\n" and a
# first vector line; every binary format has a longer fixed header)
MIN_DATA_HEAD = 8
# fastText's magic number 793712314 as little-endian int32 (formats/fasttext.py MAGIC)
FASTTEXT_HEAD = b"\xba\x16O/"


def _data_format(head: bytes) -> str | None:
    """The data formats that are not code, sniffed after every code-capable one. Imported
    here, not at the top: a scan that never gets this far (most pickles, archives, tensors)
    does not pay for their modules."""
    from .fasttext import sniff_fasttext
    from .rawdata import sniff_ggml, sniff_ubjson
    from .sentencepiece import sniff_sentencepiece
    from .spm_charsmap import sniff_charsmap
    from .word2vec import sniff_word2vec

    if sniff_sentencepiece(head):
        return "sentencepiece"
    if sniff_fasttext(head):
        return "fasttext"
    if sniff_charsmap(head):
        return "spm-charsmap"
    w2v = sniff_word2vec(head)
    if w2v is not None:
        return w2v
    if sniff_ggml(head):
        return "ggml"
    if sniff_ubjson(head):
        return "ubjson"
    for fmt, test in sniffers("data"):
        if test(head):
            return fmt
    return None


def sniff(head: bytes, *, data_formats: bool = True) -> str:
    """The format name for ``head`` (``unknown`` when nothing matches). ``data_formats=False``
    stops after the code-capable formats (storage members only ask whether they are one)."""
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
    declared = magic_format(head)
    if declared is not None:
        return declared
    if head.startswith(b"ZF0x"):
        from .joblib_zf import sniff_zf

        if sniff_zf(head):
            return "joblib-zf"
    if head[:4] == FASTTEXT_HEAD:
        from .fasttext import sniff_fasttext

        if sniff_fasttext(head):
            return "fasttext"
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
    if head[:1] == b"\x08":
        # a Core ML model starts 08 <version> 12 <ModelDescription> like ONNX and SavedModel
        # protobufs: its stricter walk (named, typed features; a Model.Type field) goes first
        from .coreml import sniff_coreml_model

        if sniff_coreml_model(head):
            return "coreml-model"
        # ONNX starts 08 too (ir_version): its module is imported only for such heads
        from .onnx import sniff_onnx

        if sniff_onnx(head):
            # a SavedModel also starts 08 01 12 (schema_version 1, a MetaGraphDef)
            from .tensorflow import sniff_saved_model

            return "tf-savedmodel" if sniff_saved_model(head) else "onnx"
    for fmt, test in sniffers("structural"):
        if test(head):
            return fmt
    if data_formats and len(head) >= MIN_DATA_HEAD:
        data = _data_format(head)
        if data is not None:
            return data
    if _is_text(head):
        return "text"
    return "unknown"


def pickle_prefix(head: bytes, *, complete: bool, whole: Source | None = None) -> bool | None:
    """For a head :func:`sniff` did not call a pickle: is it one after all?

    ``None``: the head is a consistent protocol 0/1 prefix that has not shown enough yet
    (fewer than 16 opcodes, no STOP, no error): read on and ask again. ``True``: a pickle
    candidate, because

    * the whole file (``complete``) is a consistent prefix in which the unpickler imports
      something before the data runs out (it does that work, then fails on EOF);
    * the walk stopped on a text argument longer than the walker's line budget (a limit of
      this walker, not of ``pickle``); or
    * the unpickler would call an imported global before the walk fails.

    ``False`` otherwise. ``whole``, when given, is the entire file (positioned at its start)
    and is walked instead of ``head``: long binary arguments are skipped by seeking (a 2 GB
    ``BINUNICODE`` first costs a seek) and at most 16 opcodes' worth of text lines (64 KiB
    each) are read, so the decision never depends on a fixed window.
    """
    if len(head) < 2 or head[0] not in STARTS:
        return False
    limits = Limits(max_opcodes=1 << 16)
    src: Source = BytesSource(head) if whole is None else whole
    res = walk_stream(Reader(src), limits, Deadline(1.0), [1 << 16])
    complete = complete or whole is not None
    if res.stopped:
        return res.opcodes >= 3
    # an import can only succeed (and run anything) for a dotted name of identifiers
    imports = [use for name, use in res.globals.items() if _IMPORTABLE.fullmatch(name)]
    if any(use.called for use in imports):
        return True
    if res.error_kind == "pickle-truncated":
        if res.opcodes >= 16:
            return True
        if complete:
            return bool(imports)
        return None
    if res.error_kind == "budget-opcodes":
        return True
    return bool(res.error and "longer than" in res.error and res.error_kind == "pickle-invalid")
