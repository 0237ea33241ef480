"""SentencePiece models (``tokenizer.model``, ``spiece.model``, ``sentencepiece.bpe.model``):
a protobuf ``ModelProto``, walked at wire level under a size and time budget.

Format (``src/sentencepiece_model.proto``, sentencepiece 0.2.x; proto2, lite runtime)::

    ModelProto
      1  pieces             repeated SentencePiece (LEN)
           1 piece   string, non-empty            (LEN)
           2 score   float                        (FIXED32)
           3 type    enum 1..6 (NORMAL UNKNOWN CONTROL USER_DEFINED UNUSED BYTE) (VARINT)
      2  trainer_spec       TrainerSpec (LEN): 3 model_type (VARINT), 4 vocab_size (VARINT)...
      3  normalizer_spec    NormalizerSpec (LEN): 1 name (LEN), 2 precompiled_charsmap (LEN,
                            see :mod:`.spm_charsmap`), 6 normalization_rule_tsv (LEN)...
      4  self_test_data     SelfTestData (LEN)
      5  denormalizer_spec  NormalizerSpec (LEN)
      200+ extensions

The serializer writes fields in number order, so a model starts with its pieces: byte 0 is
the key ``0x0a`` (field 1, LEN) and the first nested message starts with ``0x0a`` too. The
walk checks every field's wire type against the schema, every length against its enclosing
message, every piece for a non-empty string and a known type, and each precompiled charsmap
as sentencepiece would. It counts the pieces (fact ``sentencepiece.model``) so the repo
analysis can compare them with the config's vocabulary. Loading such a model builds tables
of strings and floats: it runs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..limits import Deadline
from ..model import Location
from .base import Context
from .protobuf import FIXED32, LEN, VARINT, ProtoError, fields, varint
from .spm_charsmap import charsmap_problem
from .streams import Source

PIECE_TYPES = range(1, 7)
SNIFF_PIECES = 8
# field number -> expected wire type, per message; other numbers are unknown fields, which
# the protobuf runtime keeps and sentencepiece ignores.
MODEL_FIELDS = {1: LEN, 2: LEN, 3: LEN, 4: LEN, 5: LEN}
PIECE_FIELDS = {1: LEN, 2: FIXED32, 3: VARINT}
TRAINER_FIELDS = {3: VARINT, 4: VARINT}
NORMALIZER_FIELDS = {1: LEN, 2: LEN, 3: VARINT, 4: VARINT, 5: VARINT, 6: LEN}


@dataclass
class SPModel:
    pieces: int = 0
    types: dict[int, int] = field(default_factory=dict)
    vocab_size: int | None = None
    model_type: int | None = None
    normalizers: list[str] = field(default_factory=list)


def _piece(
    buf: bytes | memoryview, start: int, end: int, model: SPModel, check: bool = True
) -> None:
    text = None
    kind = 1
    for number, wire, value, at in fields(buf, start, end):
        want = PIECE_FIELDS.get(number)
        if want is not None and want != wire:
            raise ProtoError(f"piece field {number} has wire type {wire}, not {want}", at)
        if number == 1:
            text = value
        elif number == 3:
            kind = value
    if not check:  # the sniff: wire-level structure only, the values are the parser's job
        model.pieces += 1
        return
    if not text:
        raise ProtoError(f"piece {model.pieces} has no text (sentencepiece refuses it)", start)
    if kind not in PIECE_TYPES:
        raise ProtoError(f"piece {model.pieces} has unknown type {kind}", start)
    model.types[kind] = model.types.get(kind, 0) + 1
    model.pieces += 1


def _message(
    buf: bytes | memoryview, start: int, end: int, schema: dict[int, int], what: str
) -> dict[int, list[tuple[int, int]]]:
    """Well-formedness of a nested message; returns number -> [(value or length, offset)]."""
    out: dict[int, list[tuple[int, int]]] = {}
    for number, wire, value, at in fields(buf, start, end):
        want = schema.get(number)
        if want is not None and want != wire:
            raise ProtoError(f"{what} field {number} has wire type {wire}, not {want}", at)
        out.setdefault(number, []).append((value, at))
    return out


def _signed32(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


def parse_model(buf: bytes | memoryview, deadline: Deadline | None = None) -> SPModel:
    """Walk a whole ``ModelProto``; raises :class:`ProtoError` on anything sentencepiece's
    parser or model loader would refuse, ``TimeoutError`` when ``deadline`` passes."""
    model = SPModel()
    for steps, (number, wire, value, at) in enumerate(fields(buf, 0, len(buf)), 1):
        if deadline is not None and not steps & 0xFFFF and deadline.expired():
            raise TimeoutError
        want = MODEL_FIELDS.get(number)
        if want is not None and want != wire:
            raise ProtoError(f"ModelProto field {number} has wire type {wire}, not {want}", at)
        if number == 1:
            _piece(buf, at, at + value, model)
        elif number == 2:
            spec = _message(buf, at, at + value, TRAINER_FIELDS, "trainer_spec")
            if 3 in spec:
                model.model_type = spec[3][-1][0]
            if 4 in spec:
                model.vocab_size = _signed32(spec[4][-1][0])
        elif number in (3, 5):
            what = "normalizer_spec" if number == 3 else "denormalizer_spec"
            spec = _message(buf, at, at + value, NORMALIZER_FIELDS, what)
            name = "".join(
                bytes(buf[o : o + min(n, 64)]).decode("utf-8", "replace")
                for n, o in spec.get(1, [])[-1:]
            )
            model.normalizers.append(name or "(unnamed)")
            for n, o in spec.get(2, [])[-1:]:
                if n:
                    problem = charsmap_problem(bytes(buf[o : o + n]), deadline)
                    if problem is not None:
                        raise ProtoError(f"{what}.precompiled_charsmap: {problem}", o)
        elif number == 4:
            _message(buf, at, at + value, {}, "self_test_data")
    if not model.pieces:
        raise ProtoError("the model has no pieces (sentencepiece refuses it)", 0)
    return model


def count_pieces(data: bytes) -> int | None:
    """Number of pieces of a SentencePiece model, None when it is not a valid one."""
    try:
        return parse_model(data).pieces
    except ProtoError:
        return None


def sniff_sentencepiece(head: bytes) -> bool:
    """Field 1 (LEN) whose message starts with field 1 (LEN, the piece text), and the first
    pieces that the head holds whole walk cleanly as ``SentencePiece`` messages."""
    if len(head) < 4 or head[0] != 0x0A or head[2] != 0x0A:
        return False
    model = SPModel()
    pos = 0
    try:
        while pos < len(head) and model.pieces < SNIFF_PIECES:
            if head[pos] != 0x0A:
                break  # the pieces end (trainer_spec follows) inside the head
            n, start = varint(head, pos + 1, len(head))
            if start + n > len(head):
                break  # a piece cut by the head: judged by the full walk
            if not model.pieces and not (n > 2 and head[start] == 0x0A and head[start + 1]):
                return False  # the first piece (``<unk>`` in practice) starts with its text
            _piece(head, start, start + n, model, check=False)
            pos = start + n
    except ProtoError:
        return False
    return model.pieces >= 1


def scan_sentencepiece(
    src: Source,
    head: bytes,
    where: Location,
    ctx: Context,
    name: str = "",
    length: int | None = None,
) -> None:
    limit = ctx.limits.max_member_read
    data = src.read(limit + 1)
    if len(data) > limit:
        ctx.anomaly("budget-member-size", where, f"a SentencePiece model larger than {limit} bytes")
        return
    try:
        model = parse_model(data, ctx.deadline)
    except TimeoutError:
        ctx.anomaly("budget-time", where, f"more than {ctx.deadline.seconds:.0f}s to walk")
        return
    except ProtoError as exc:
        ctx.anomaly(
            "sentencepiece-malformed",
            where.at(exc.offset),
            f"not a valid SentencePiece model: {exc}",
        )
        return
    ctx.emit(
        "sentencepiece.model",
        str(model.pieces),
        where,
        pieces=model.pieces,
        trainer_vocab_size=model.vocab_size,
        model_type=model.model_type,
        normalizers=",".join(model.normalizers) or None,
    )
