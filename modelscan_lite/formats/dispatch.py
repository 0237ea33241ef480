"""Routes bytes to the right parser by content, at every level (file, member, decoded layer).

Three entry points: :func:`dispatch_file` for a seekable region of an open file,
:func:`dispatch_stream` for forward-only streams (decompressed layers, tar members), and
:func:`dispatch_bytes` for small in-memory payloads. Each sniffs the head, records the format,
flags extensions that lie about pickle content, enforces the nesting depth, and turns a
decompression or parse failure into an anomaly instead of an exception.
"""

from __future__ import annotations

import io
import lzma
import os
import zlib
from collections.abc import Callable
from typing import BinaryIO, cast

from ..model import Location
from . import registry
from .base import Context
from .registry import Family
from .streams import (
    CHUNK,
    BudgetExceeded,
    BytesSource,
    DecodedStream,
    FileSlice,
    Prefixed,
    Source,
    SourceFile,
)

HEAD = 4096
SPOOL_MEMORY = 16 << 20  # a random-access member from a stream larger than this goes to disk
COMPRESSED = ("gzip", "bz2", "xz", "lzma", "zlib")
# Extensions that promise content which cannot run code; a pickle behind one is a lie.
SAFE_EXTENSIONS = frozenset(
    {
        ".safetensors",
        ".gguf",
        ".ggml",
        ".onnx",
        ".npy",
        ".json",
        ".txt",
        ".md",
        ".yaml",
        ".yml",
        ".csv",
        ".tsv",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".h5",
        ".hdf5",
        ".tflite",
        ".pb",
        ".msgpack",
        ".vocab",
        ".jinja",
        ".wav",
        ".parquet",
        ".arrow",
    }
)
MODEL_EXTENSIONS = frozenset(
    {
        ".pkl",
        ".pickle",
        ".pk",
        ".p",
        ".pt",
        ".pth",
        ".bin",
        ".ckpt",
        ".joblib",
        ".jbl",
        ".sav",
        ".model",
        ".npy",
        ".npz",
        ".safetensors",
        ".gguf",
        ".ggml",
        ".onnx",
        ".h5",
        ".keras",
        ".pb",
        ".tflite",
        ".mar",
        ".zip",
        ".tar",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".7z",
        ".lzma",
        ".z",
        ".zst",
        ".msgpack",
        ".nemo",
        ".llamafile",
    }
)
# Names several formats share: SentencePiece, gensim (a pickle), fastText, LightGBM (text)
# and xgboost all write `.model`. No content is a lie there; a pickle is still scanned as one.
AMBIGUOUS_EXTENSIONS = frozenset({".model"})
PICKLE_LIKE = frozenset({"pickle"})


def extension(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    _, ext = os.path.splitext(base)
    return ext


def _enter(where: Location, ctx: Context) -> bool:
    if ctx.depth >= ctx.limits.max_depth:
        ctx.anomaly(
            "budget-depth", where, f"containers nested deeper than {ctx.limits.max_depth} levels"
        )
        return False
    return True


def _note_format(fmt: str, where: Location, ctx: Context, name: str) -> None:
    ctx.formats.append(fmt)
    ext = extension(name)
    if fmt in PICKLE_LIKE and ext in SAFE_EXTENSIONS:
        ctx.emit("format.mismatch", f"{fmt}:{ext}", where, detected=fmt, extension=ext)


def dispatch_file(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str
) -> str:
    """Sniff and parse ``length`` bytes of ``f`` at ``start``; returns the detected format."""
    f.seek(start)
    head = f.read(min(HEAD, length))
    head, fmt = _decide(head, None, len(head) >= length, FileSlice(f, start, length))
    _note_format(fmt, where, ctx, name)
    return run_format(fmt, head, where, ctx, name, length, file=(f, start, length))


def dispatch_stream(
    src: Source, where: Location, ctx: Context, name: str, length: int | None = None
) -> str:
    """Sniff and parse a forward-only stream; random-access formats are spooled first."""
    try:
        head = src.read(HEAD)
        head, fmt = _decide(head, src.read, len(head) < HEAD)
    except BudgetExceeded as exc:
        ctx.anomaly(exc.what, where, exc.detail)
        return "unknown"
    except (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError) as exc:
        ctx.anomaly("stream-corrupt", where, f"cannot decode: {exc}")
        return "unknown"
    _note_format(fmt, where, ctx, name)
    return run_format(fmt, head, where, ctx, name, length, stream=src)


def run_format(
    fmt: str,
    head: bytes,
    where: Location,
    ctx: Context,
    name: str,
    length: int | None,
    *,
    file: tuple[BinaryIO, int, int] | None = None,
    stream: Source | None = None,
) -> str:
    """Parse content already sniffed (or routed by a profile) as ``fmt``: the registry names
    the parser and how it reads. ``file`` is random-access content, ``stream`` forward-only
    content of which ``head`` was already read."""
    entry = registry.get(fmt)
    fn = entry.parse_function() if entry is not None else None
    if entry is None or fn is None:
        _no_parser(fmt, head, where, ctx, name)
        return fmt
    if entry.nests and not _enter(where, ctx):
        return fmt
    ctx.depth += entry.nests
    try:
        if entry.access == "random":
            if file is not None:
                fn(*file, where, ctx, name)
            elif stream is not None:
                _spooled(fn, fmt, head, stream, where, ctx, name)
        else:
            src = FileSlice(*file) if file is not None else Prefixed(head, cast(Source, stream))
            fn(src, head, where, ctx, name, length)
    finally:
        ctx.depth -= entry.nests
    return fmt


def _spooled(
    fn: Callable[..., None],
    fmt: str,
    head: bytes,
    src: Source,
    where: Location,
    ctx: Context,
    name: str,
) -> None:
    """A random-access format inside a stream: copied in 1 MiB steps to a spooled temp file
    (memory up to SPOOL_MEMORY, then disk); reading it whole into one bytes object once cost
    twice its size in memory."""
    import tempfile  # only for a random-access format inside a stream (and random with it)

    limit = ctx.limits.max_member_read
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) as spool:
        size = spool.write(head)
        try:
            while size <= limit:
                chunk = src.read(min(CHUNK, limit + 1 - size))
                if not chunk:
                    break
                size += spool.write(chunk)
        except BudgetExceeded as exc:
            ctx.anomaly(exc.what, where, exc.detail)
            return
        except (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError) as exc:
            ctx.anomaly("stream-corrupt", where, f"cannot decode: {exc}")
            return
        if size > limit:
            ctx.anomaly(
                "budget-member-size",
                where,
                f"a {fmt} archive inside a stream is larger than {limit} bytes",
            )
            return
        fn(cast(BinaryIO, spool), 0, size, where, ctx, name)


def dispatch_bytes(data: bytes, where: Location, ctx: Context, name: str = "") -> str:
    return dispatch_file(io.BytesIO(data), 0, len(data), where, ctx, name)


def _sniff_head(head: bytes) -> str:
    from .sniff import sniff

    return sniff(head)


def _decide(
    head: bytes,
    more: Callable[[int], bytes] | None,
    complete: bool,
    whole: FileSlice | None = None,
) -> tuple[bytes, str]:
    """Sniff ``head``; when it is an undecided protocol 0/1 pickle prefix, walk the whole
    file (``whole``, skipping by seeking) or, for forward-only streams, read on (the head
    doubles each time, up to ``SNIFF_MAX``) and ask again. Returns the head as read."""
    from .sniff import SNIFF_MAX, _is_text, pickle_prefix

    fmt = _sniff_head(head)
    while fmt in ("text", "unknown"):
        verdict = pickle_prefix(head, complete=complete)
        if verdict is None and whole is not None:
            verdict = pickle_prefix(head, complete=True, whole=whole)
        if verdict is not None:
            return head, "pickle" if verdict else fmt
        if more is None or len(head) >= SNIFF_MAX:
            # still a consistent prefix: a text one is walked as a pickle (protocol 0 lines)
            return head, "pickle" if _is_text(head) else fmt
        want = len(head)
        extra = more(want)
        complete = len(extra) < want
        head += extra
        fmt = _sniff_head(head)
    return head, fmt


def _no_parser(fmt: str, head: bytes, where: Location, ctx: Context, name: str) -> None:
    """Content no parser reads: a recognised format without one (X903, or data, X202), a
    placeholder where a model should be, or text and unknown bytes under a model's name."""
    entry = registry.get(fmt)
    if entry is not None and entry.family in (Family.CODE, Family.TENSORS, Family.CONTAINER):
        ctx.emit("format.unanalysed", fmt, where, detected=fmt)
    elif entry is not None and entry.family is Family.DATA:
        ctx.emit("format.data", fmt, where, detected=fmt, extension=extension(name) or "(none)")
    elif fmt in ("text", "unknown") and _placeholder(head, where, ctx, name):
        pass
    elif fmt in ("text", "unknown"):
        ext = extension(name)
        # binary content in a compression layer that no parser recognises (marshal data,
        # an unknown serializer) is reported even when its name promises nothing (X204)
        layer = (where.member or "").rsplit("!", 1)[-1] in DECODED_LAYERS
        if layer and fmt == "unknown" and ext not in MODEL_EXTENSIONS:
            ctx.emit(
                "format.unknown-in-layer",
                fmt,
                where,
                extension=ext or "(none)",
                head=head[:16].hex(),
            )
        elif ext in MODEL_EXTENSIONS and (
            fmt == "unknown" or ext not in SAFE_EXTENSIONS | AMBIGUOUS_EXTENSIONS
        ):
            from .rawdata import raw_tensor_kind

            raw = raw_tensor_kind(head) if fmt == "unknown" else None
            if raw is not None:
                ctx.emit("format.data", f"raw {raw}", where, detected=raw, extension=ext)
            else:
                ctx.emit(
                    "format.unknown", fmt, where, extension=ext or "(none)", head=head[:16].hex()
                )


def _compressed(codec: str) -> Callable[..., None]:
    """The parser of one compression layer: decode it and dispatch what it holds."""

    def scan(
        src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
    ) -> None:
        inner = DecodedStream(src, codec, ctx.budget)
        ext = extension(name)
        inner_name = (
            name[: -len(ext)] if ext in (".gz", ".bz2", ".xz", ".lzma", ".z", ".zlib") else name
        )
        dispatch_stream(inner, where.child(f"<{codec}>"), ctx, inner_name)

    scan.__name__ = f"scan_{codec}"
    return scan


scan_gzip = _compressed("gzip")
scan_bz2 = _compressed("bz2")
scan_xz = _compressed("xz")
scan_lzma = _compressed("lzma")
scan_zlib = _compressed("zlib")


DECODED_LAYERS = frozenset(f"<{c}>" for c in (*COMPRESSED, "lz4"))
# binary model formats: text (or nothing) under one of these names is never the model
BINARY_MODEL_EXTENSIONS = MODEL_EXTENSIONS - AMBIGUOUS_EXTENSIONS - {".p", ".pb", ".z"}
LFS_POINTER = b"version https://git-lfs.github.com/spec/"


def _placeholder(head: bytes, where: Location, ctx: Context, name: str) -> bool:
    """A file named like a binary model that holds something else in its place: a Git LFS
    pointer (a checkout without ``git lfs pull``), nothing at all, or a saved error page. A
    CI job that scans these scans no model and must not pass."""
    ext = extension(name)
    if ext not in BINARY_MODEL_EXTENSIONS or where.member is not None:
        return False
    stripped = head.lstrip()
    if head.startswith(LFS_POINTER):
        fields = dict(
            line.split(" ", 1)
            for line in head.decode("utf-8", "replace").splitlines()
            if " " in line
        )
        oid, size = fields.get("oid", "?")[:80], fields.get("size", "?")[:20]
        what = f"a Git LFS pointer (oid {oid}, size {size})"
    elif not head:
        what = "an empty file"
    elif stripped[:15].lower().startswith((b"<!doctype html", b"<html")):
        what = "an HTML page"
    elif stripped[:1] in (b"{", b"["):
        what = "a JSON document"
    else:
        return False
    ctx.emit("format.placeholder", what, where, extension=ext)
    return True


def scan_lz4(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    try:
        import lz4.frame  # type: ignore[import-not-found]
    except ImportError:
        ctx.emit("dependency.missing", "lz4", where, detected="lz4", fix="pip install lz4")
        return
    limit = ctx.limits.max_member_read
    try:
        with lz4.frame.LZ4FrameFile(SourceFile(src), "rb") as fh:
            data = fh.read(limit + 1)
    except Exception as exc:
        ctx.anomaly("stream-corrupt", where, f"cannot decode lz4: {exc}")
        return
    if len(data) > limit:
        ctx.anomaly("budget-member-size", where, f"lz4 content larger than {limit} bytes")
        return
    dispatch_stream(BytesSource(data), where.child("<lz4>"), ctx, name)
