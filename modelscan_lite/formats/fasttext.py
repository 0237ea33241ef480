"""fastText binary models (``.bin``, quantised ``.ftz``), as written by Facebook's fastText
and by gensim's ``save_facebook_model``; walked field by field, matrices skipped by seeking.

Format (fastText ``src/fasttext.cc`` ``saveModel``, ``args.cc``, ``dictionary.cc``,
``densematrix.cc``, ``quantmatrix.cc``, ``productquantizer.cc``; little-endian)::

    i32 magic = 793712314, i32 version (11 or 12)
    args       12 x i32: dim ws epoch minCount neg wordNgrams loss(1..4) model(1..3)
               bucket minn maxn lrUpdateRate; f64 t
    dictionary i32 size, i32 nwords, i32 nlabels (nwords + nlabels = size), i64 ntokens,
               i64 pruneidx_size (-1 when unpruned);
               size x (word: bytes up to NUL, i64 count, i8 type 0=word 1=label);
               pruneidx_size x (i32, i32)
    u8 quant_input, input matrix; u8 quant_output, output matrix
    dense matrix  i64 m, i64 n, m*n f32
    quant matrix  u8 qnorm, i64 m, i64 n, i32 codesize, codesize u8,
                  pq (i32 dim, i32 nsubq, i32 dsub, i32 lastdsub, dim*256 f32),
                  if qnorm: m u8 norm codes, pq

The pre-2017 layout ("old format", still read by gensim) has no magic and no version: the
file starts with ``args``, the dictionary has no ``pruneidx_size`` and there are no
``quant`` flags. Its sniff checks that the header fields lie in the ranges fastText's option
parser accepts. Everything here is numbers and strings: loading runs nothing. A header that
lies about sizes (a count past the end of the file, a matrix bigger than the file) is what
makes the C++ loader allocate without bound; it is reported.
"""

from __future__ import annotations

import math
import struct

from ..model import Location
from .base import Context
from .datareader import Cursor, TooLong, Truncated
from .streams import Source

MAGIC = 793712314
VERSIONS = (11, 12)
MAX_WORD = 1 << 16
KSUB = 256
ARGS = struct.Struct("<12id")
DICT_OLD = struct.Struct("<iiiq")
DICT_NEW = struct.Struct("<iiiqq")


class FastTextError(Exception):
    pass


def _args_ok(args: tuple[int | float, ...]) -> bool:
    dim, ws, epoch, min_count, neg, ngrams, loss, model, bucket, minn, maxn, lr_rate, t = args
    ints = (dim, ws, epoch, min_count, neg, ngrams, bucket, minn, maxn, lr_rate)
    return (
        all(isinstance(v, int) and v >= 0 for v in ints)
        and 0 < int(dim) <= 1 << 16
        and 1 <= int(loss) <= 4
        and 1 <= int(model) <= 3
        and int(minn) <= 1 << 10
        and int(maxn) <= 1 << 10
        and isinstance(t, float)
        and math.isfinite(t)
        and 0 <= t <= 1
    )


def sniff_fasttext(head: bytes) -> bool:
    """The magic and a known version, or (old format) an args block and dictionary header
    whose every field lies in fastText's accepted ranges."""
    if len(head) < 8:
        return False
    magic, version = struct.unpack_from("<ii", head)
    if magic == MAGIC:
        return version in VERSIONS
    if len(head) < ARGS.size + DICT_OLD.size:
        return False
    if not _args_ok(ARGS.unpack_from(head)):
        return False
    size, nwords, nlabels, ntokens = DICT_OLD.unpack_from(head, ARGS.size)
    return bool(
        size > 0 and nwords >= 0 and nlabels >= 0 and nwords + nlabels == size and ntokens >= 0
    )


def _matrix(cur: Cursor, quant: bool, remaining: int | None, what: str) -> tuple[int, int]:
    if not quant:
        m, n = cur.unpack("<qq")
        assert isinstance(m, int) and isinstance(n, int)
        if m < 0 or n < 0:
            raise FastTextError(f"the {what} matrix has negative dimensions {m} x {n}")
        nbytes = m * n * 4
        if remaining is not None and nbytes > remaining:
            raise FastTextError(
                f"the {what} matrix declares {m} x {n} floats ({nbytes} bytes) but only "
                f"{remaining} bytes remain"
            )
        cur.skip(nbytes)
        return m, n
    qnorm, m, n, codesize = cur.unpack("<?qqi")
    assert isinstance(m, int) and isinstance(n, int) and isinstance(codesize, int)
    if m < 0 or n < 0 or codesize < 0:
        raise FastTextError(f"the quantised {what} matrix has negative sizes")
    if remaining is not None and codesize > remaining:
        raise FastTextError(f"the {what} codes ({codesize} bytes) run past the end")
    cur.skip(codesize)
    _pq(cur, remaining, what)
    if qnorm:
        cur.skip(m)
        _pq(cur, remaining, what)
    return m, n


def _pq(cur: Cursor, remaining: int | None, what: str) -> None:
    dim, nsubq, dsub, lastdsub = cur.unpack("<iiii")
    assert isinstance(dim, int)
    if dim < 0 or nsubq < 0 or dsub < 0 or lastdsub < 0:
        raise FastTextError(f"the {what} product quantiser has negative sizes")
    nbytes = dim * KSUB * 4
    if remaining is not None and nbytes > remaining:
        raise FastTextError(f"the {what} centroids ({nbytes} bytes) run past the end")
    cur.skip(nbytes)


def parse_fasttext(src: Source, size: int | None, deadline: object = None) -> dict[str, int]:
    """Walk a fastText binary; returns its counts. Raises :class:`FastTextError`,
    :class:`Truncated` or :class:`TooLong` on anything the loaders would refuse."""
    from ..limits import Deadline

    cur = Cursor(src, deadline if isinstance(deadline, Deadline) else None)
    magic, version = struct.unpack("<ii", cur.peek(8).ljust(8, b"\0"))
    new = magic == MAGIC
    if new:
        cur.skip(8)
        if version not in VERSIONS:
            raise FastTextError(f"unknown fastText version {version}")
    args = ARGS.unpack(cur.read(ARGS.size))
    if not _args_ok(args):
        raise FastTextError(f"model arguments out of range: {args}")
    if new:
        words, nwords, nlabels, _ntokens, pruned = DICT_NEW.unpack(cur.read(DICT_NEW.size))
    else:
        words, nwords, nlabels, _ntokens = DICT_OLD.unpack(cur.read(DICT_OLD.size))
        pruned = 0
    if words < 0 or nwords < 0 or nlabels < 0 or nwords + nlabels != words:
        raise FastTextError(
            f"dictionary counts disagree: size {words}, {nwords} words, {nlabels} labels"
        )
    # each entry is at least 10 bytes (NUL, i64 count, i8 type)
    if size is not None and words * 10 > size:
        raise FastTextError(f"the dictionary declares {words} entries; the file is {size} bytes")
    for i in range(words):
        cur.until(b"\0", MAX_WORD)
        _count, kind = cur.unpack("<qb")
        if kind not in (0, 1):
            raise FastTextError(f"dictionary entry {i} has unknown type {kind}")
    if pruned > 0:
        cur.skip(pruned * 8)
    quant_in = quant_out = False
    if new:
        quant_in = bool(cur.unpack("<?")[0])
    remaining = None if size is None else size - cur.tell()
    m_in, n_in = _matrix(cur, bool(quant_in), remaining, "input")
    if new:
        quant_out = bool(cur.unpack("<?")[0])
    remaining = None if size is None else size - cur.tell()
    _matrix(cur, bool(quant_out), remaining, "output")
    dim = int(args[0])
    if n_in != dim:
        raise FastTextError(f"the input matrix is {n_in} wide but dim is {dim}")
    if not cur.at_end():
        raise FastTextError(
            f"{'some' if size is None else size - cur.tell()} bytes after the model"
        )
    return {
        "version": version if new else 0,
        "words": nwords,
        "labels": nlabels,
        "rows": m_in,
        "dim": dim,
        "quantised": int(bool(quant_in)),
    }


def scan_fasttext(
    src: Source,
    head: bytes,
    where: Location,
    ctx: Context,
    name: str = "",
    length: int | None = None,
) -> None:
    size = getattr(src, "size", None)
    try:
        info = parse_fasttext(src, size if isinstance(size, int) else None, ctx.deadline)
    except TimeoutError:
        ctx.anomaly("budget-time", where, f"more than {ctx.deadline.seconds:.0f}s to walk")
        return
    except (FastTextError, Truncated, TooLong, struct.error) as exc:
        ctx.anomaly("fasttext-malformed", where, f"not a valid fastText model: {exc}")
        return
    ctx.emit(
        "fasttext.model",
        str(info["words"]),
        where,
        version=info["version"],
        words=info["words"],
        labels=info["labels"],
        rows=info["rows"],
        dim=info["dim"],
        quantised=info["quantised"],
    )
