"""NumPy ``.npy`` files (``.npz`` members too): the header, and the pickle behind object arrays.

Format (numpy ``lib/format.py``): magic ``\\x93NUMPY``, major and minor version bytes, header
length (uint16 LE for 1.x, uint32 LE for 2.x/3.x), then a Python-literal dict with ``descr``,
``fortran_order`` and ``shape``, padded with spaces to a 64-byte boundary. Plain arrays follow
as raw bytes; arrays with object fields follow as a pickle, which ``np.load`` runs only with
its ``allow_pickle`` flag set. The header is read with ``ast.literal_eval`` under a size cap,
as numpy itself does; a header written by Python 2 (``2L`` long literals) is retried with
the ``L`` tokens dropped, as numpy's ``_filter_header`` does for format versions up to 2.0.
"""

from __future__ import annotations

import ast
import io
import re
import struct
import tokenize
import warnings
from typing import Any

from ..model import Location
from .base import Context
from .pickles import scan_pickle
from .streams import Source

MAX_NPY_HEADER = 1 << 16
_SIMPLE = re.compile(r"^[<>|=]?([biufcmMSUV?])(\d*)$")


def _has_objects(descr: Any) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list):
        return any(isinstance(f, tuple) and len(f) >= 2 and _has_objects(f[1]) for f in descr)
    return False


def _itemsize(descr: Any) -> int | None:
    if not isinstance(descr, str):
        return None
    m = _SIMPLE.match(descr)
    if not m:
        return None
    kind, n = m.group(1), int(m.group(2) or "1")
    return n * (4 if kind == "U" else 1)


_AST_REPR = re.compile(r"<ast\.(\w+) object at 0x[0-9a-fA-F]+>")


def _literal(text: str) -> Any:
    with warnings.catch_warnings():  # hostile headers make the compiler warn
        warnings.simplefilter("ignore")
        return ast.literal_eval(text)


def _reason(exc: Exception) -> str:
    """``literal_eval``'s complaint without the memory address it quotes
    (``<ast.Call object at 0x7f...>``): a report must read the same on every run."""
    return _AST_REPR.sub(lambda m: f"a {m.group(1)} node", str(exc))


def _filter_py2_longs(text: str) -> str:
    """numpy's ``_filter_header``: drop a NAME token ``L`` that follows a NUMBER token.

    Tokenizing is lexing only (nothing is evaluated); tokenizer errors become SyntaxError.
    """
    tokens = []
    after_number = False
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if not (after_number and tok.type == tokenize.NAME and tok.string == "L"):
                tokens.append(tok)
            after_number = tok.type == tokenize.NUMBER
        return tokenize.untokenize(tokens)
    except (tokenize.TokenError, IndentationError) as exc:
        raise SyntaxError(str(exc)) from exc


def scan_npy(
    src: Source,
    head: bytes,
    where: Location,
    ctx: Context,
    name: str = "",
    length: int | None = None,
) -> None:
    pre = src.read(10)
    if len(pre) < 10:
        ctx.anomaly("npy-invalid", where, "npy header is truncated")
        return
    major = pre[6]
    if major == 1:
        hlen = struct.unpack_from("<H", pre, 8)[0]
        body_start = 10
    elif major in (2, 3):
        more = src.read(2)
        if len(more) < 2:
            ctx.anomaly("npy-invalid", where, "npy header is truncated")
            return
        hlen = struct.unpack_from("<I", pre + more, 8)[0]
        body_start = 12
    else:
        ctx.anomaly("npy-invalid", where, f"unknown npy format version {major}")
        return
    if hlen > MAX_NPY_HEADER:
        ctx.anomaly("npy-invalid", where, f"npy header of {hlen} bytes is absurd")
        return
    raw = src.read(hlen)
    if len(raw) < hlen:
        ctx.anomaly("npy-invalid", where, "npy header is truncated")
        return
    text = raw.decode("utf-8" if major == 3 else "latin-1")
    try:
        header = _literal(text)
    except SyntaxError as exc:
        if (major, pre[7]) > (2, 0):
            ctx.anomaly("npy-invalid", where, f"npy header is not a literal dict: {_reason(exc)}")
            return
        try:  # numpy.lib.format._read_array_header: Python 2 headers, 1.0 and 2.0 only
            header = _literal(_filter_py2_longs(text))
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc2:
            ctx.anomaly("npy-invalid", where, f"npy header is not a literal dict: {_reason(exc2)}")
            return
    except (ValueError, MemoryError, RecursionError, TypeError) as exc:
        ctx.anomaly("npy-invalid", where, f"npy header is not a literal dict: {_reason(exc)}")
        return
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= set(header):
        ctx.anomaly("npy-invalid", where, "npy header lacks descr, fortran_order or shape")
        return
    descr, shape = header["descr"], header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        ctx.anomaly("npy-invalid", where, f"npy shape {shape!r} is not a tuple of sizes")
        return
    if _has_objects(descr):
        ctx.emit("numpy.object-array", str(descr), where.at(body_start + hlen), shape=str(shape))
        scan_pickle(src, where.at(None), ctx, kind="member")
        return
    itemsize = _itemsize(descr)
    size = getattr(src, "size", None)
    if itemsize is not None and isinstance(size, int):
        count = 1
        for d in shape:
            count *= d
        expected = body_start + hlen + count * itemsize
        if size != expected:
            ctx.anomaly(
                "npy-size-mismatch",
                where,
                f"npy data is {size - body_start - hlen} bytes, the header implies "
                f"{count * itemsize}",
            )
