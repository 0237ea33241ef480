"""The protobuf wire format, bounded: varints and a field walker shared by the ONNX and
SentencePiece parsers.

Wire format (https://protobuf.dev/programming-guides/encoding/): a message is a sequence of
fields. Each field is a varint key ``(number << 3) | wire_type`` (number >= 1) followed by
its payload: wire type 0 a varint (at most 10 bytes), 1 eight bytes, 2 a varint length ``n``
and ``n`` bytes (strings, bytes, nested messages, packed repeated scalars), 5 four bytes.
Wire types 3 and 4 (groups) are deprecated and rejected here, as are 6 and 7. A message ends
exactly where its enclosing length says; a field that runs past that end is an error. Nothing
is copied: payloads are reported as ``(offset, length)`` into the caller's buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5


class ProtoError(Exception):
    """The bytes are not a well-formed protobuf message; ``offset`` is where that shows."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it; at most 10 bytes, never past ``end``."""
    result = shift = 0
    while True:
        if pos >= end:
            raise ProtoError("varint runs past the end of its message", pos)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtoError("varint longer than 10 bytes", pos)


def fields(buf: Any, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(number, wire, value, offset)`` for each field of the message in
    ``buf[start:end]``. ``value`` is the integer for wire type 0; for the other types it is
    the payload's length (``offset`` is then where the payload starts). Raises
    :class:`ProtoError` on a malformed key, a field past ``end`` or a group wire type."""
    pos = start
    while pos < end:
        key_at = pos
        key, pos = varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0", key_at)
        if wire == VARINT:
            value, pos = varint(buf, pos, end)
            yield number, wire, value, key_at
            continue
        if wire == LEN:
            n, pos = varint(buf, pos, end)
        elif wire == FIXED64:
            n = 8
        elif wire == FIXED32:
            n = 4
        else:
            raise ProtoError(f"wire type {wire} (field {number})", key_at)
        if pos + n > end:
            raise ProtoError(f"field {number} of {n} bytes runs past the end of its message", pos)
        yield number, wire, n, pos
        pos += n
