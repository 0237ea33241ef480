"""HDF5 (Keras/TF ``.h5``): the root group's attributes, read by a small bounded reader of
the HDF5 file format, with no HDF5 library (h5py runs libhdf5's C code on attacker bytes).

What is read (HDF5 File Format Specification, version 3):

- the superblock at offset 0, or after a user block at 512, 1024, 2048... (libhdf5
  searches those offsets; every address is then relative to the superblock): version
  0/1 (sizes of offsets and lengths, base address, the root group's symbol table entry
  -> its object header address) or 2/3 (the root group's object header address directly);
- the root object header: version 1 (16-byte prefix, 8-byte aligned messages) or 2
  (``OHDR``, flags, optional times and attribute phase change values, 1/2/4/8-byte chunk
  size, messages, checksum), following continuation messages (0x10) to further blocks
  (``OCHK`` for version 2), at most :data:`MAX_BLOCKS`;
- attribute messages (0x0C) version 1/2/3: name, datatype, dataspace, data. Values are
  decoded for fixed-length strings (datatype class 3) and variable-length strings
  (class 9, a global heap reference: ``GCOL`` collection, object by index);
- the attribute info message (0x15): attributes kept in dense storage (a fractal heap,
  used past 8 attributes or for values over 64 KiB) are not read, and that is reported.

Keras stores ``model_config`` and ``training_config`` (JSON, checked like a ``.keras``
``config.json`` by :mod:`.keras`), ``keras_version`` and ``backend`` there. An HDF5 file
without ``model_config`` is data to Keras (``format.data``); one inside a ``.keras`` archive
(``model.weights.h5``) is expected to have none.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from ..model import Location
from .base import Context

SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_BLOCKS = 64
MAX_MESSAGES = 20_000
MAX_ATTRIBUTES = 4_096
KERAS_JSON = ("model_config", "training_config")
KERAS_TEXT = ("keras_version", "backend")


class HDF5Error(ValueError):
    pass


@dataclass(slots=True)
class RootAttributes:
    values: dict[str, bytes | None] = field(default_factory=dict)  # None: not a string
    dense: bool = False  # some attributes are in dense storage, not read
    notes: list[str] = field(default_factory=list)


class _File:
    def __init__(self, f: BinaryIO, start: int, length: int) -> None:
        self.f = f
        self.start = start
        self.length = length
        self.so = 8  # size of offsets
        self.sl = 8  # size of lengths
        self.base = 0

    def read(self, addr: int, n: int) -> bytes:
        if addr < 0 or n < 0 or addr + n > self.length:
            raise HDF5Error(f"reads {n} bytes at {addr}, outside the {self.length}-byte file")
        self.f.seek(self.start + addr)
        data = self.f.read(n)
        if len(data) != n:
            raise HDF5Error(f"short read at {addr}")
        return data

    def undefined(self, value: int) -> bool:
        return value == (1 << (8 * self.so)) - 1

    def uint(self, raw: bytes, at: int, size: int) -> int:
        if at + size > len(raw):
            raise HDF5Error("field past the end of its structure")
        return int.from_bytes(raw[at : at + size], "little")


def superblock_offset(f: BinaryIO, start: int, length: int) -> int:
    """Where the superblock is: 0, or past a user block of 512 * 2**n bytes."""
    at = 0
    while at + 8 <= length:
        f.seek(start + at)
        if f.read(8) == SIGNATURE:
            return at
        at = 512 if at == 0 else at * 2
    raise HDF5Error("no HDF5 signature at offset 0 or at any user-block boundary")


def sniff_userblock(head: bytes) -> bool:
    """HDF5 after a user block (the signature at 0 is the registry's magic)."""
    return any(head[at : at + 8] == SIGNATURE for at in (512, 1024, 2048))


def read_root_attributes(f: BinaryIO, start: int, length: int) -> RootAttributes:
    """Raises :class:`HDF5Error` for a file this reader cannot follow."""
    offset = superblock_offset(f, start, length)
    hf = _File(f, start + offset, length - offset)
    sb = hf.read(0, min(hf.length, 128))
    version = sb[8]
    if version in (0, 1):
        hf.so, hf.sl = sb[13], sb[14]
        if hf.so not in (2, 4, 8) or hf.sl not in (2, 4, 8):
            raise HDF5Error(f"sizes of offsets/lengths {hf.so}/{hf.sl} are not 2, 4 or 8")
        at = 24 + (4 if version == 1 else 0)
        hf.base = hf.uint(sb, at, hf.so)
        at += 4 * hf.so  # base, free-space, end of file, driver info
        at += hf.so  # root entry: link name offset
        root = hf.uint(sb, at, hf.so)
    elif version in (2, 3):
        hf.so, hf.sl = sb[9], sb[10]
        if hf.so not in (2, 4, 8) or hf.sl not in (2, 4, 8):
            raise HDF5Error(f"sizes of offsets/lengths {hf.so}/{hf.sl} are not 2, 4 or 8")
        hf.base = hf.uint(sb, 12, hf.so)
        root = hf.uint(sb, 12 + 3 * hf.so, hf.so)
    else:
        raise HDF5Error(f"superblock version {version} is not one this reader knows")
    # the base address field is not trusted: libhdf5 takes addresses relative to where it
    # found the superblock (``hf`` starts there)
    out = RootAttributes()
    for mtype, data in _messages(hf, root):
        if mtype == 0x0C:
            if len(out.values) >= MAX_ATTRIBUTES:
                raise HDF5Error(f"more than {MAX_ATTRIBUTES} attributes")
            name, value = _attribute(hf, data)
            out.values[name] = value
        elif mtype == 0x15 and len(data) >= 2 + hf.so:
            flags = data[1]
            at = 2 + (2 if flags & 1 else 0)
            heap = hf.uint(data, at, hf.so)
            if not hf.undefined(heap):
                out.dense = True
    return out


def _messages(hf: _File, addr: int) -> list[tuple[int, bytes]]:
    head = hf.read(addr, 16)
    out: list[tuple[int, bytes]] = []
    blocks: list[tuple[int, int]] = []
    if head[:4] == b"OHDR":
        v2 = True
        if head[4] != 2:
            raise HDF5Error(f"object header version {head[4]}")
        flags = head[5]
        at = 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        size_len = 1 << (flags & 3)
        pre = hf.read(addr, at + size_len)
        chunk = hf.uint(pre, at, size_len)
        blocks.append((addr + at + size_len, chunk))
        track_order = bool(flags & 0x04)
    elif head[0] == 1:
        v2 = False
        track_order = False
        size = hf.uint(head, 8, 4)
        blocks.append((addr + 16, size))
    else:
        raise HDF5Error(f"no object header at {addr}")
    done = 0
    while blocks:
        done += 1
        if done > MAX_BLOCKS:
            raise HDF5Error(f"more than {MAX_BLOCKS} object header blocks")
        start, size = blocks.pop(0)
        if size > 64 * 1024 * 1024:
            raise HDF5Error(f"object header block of {size} bytes")
        raw = hf.read(start, size)
        at = 0
        hdr = (4 + (2 if track_order else 0)) if v2 else 8
        end = len(raw)  # version 2: the checksums lie outside these areas
        while at + hdr <= end:
            if v2:
                mtype, msize, mflags = raw[at], hf.uint(raw, at + 1, 2), raw[at + 3]
            else:
                mtype, msize, mflags = hf.uint(raw, at, 2), hf.uint(raw, at + 2, 2), raw[at + 4]
            at += hdr
            data = raw[at : at + msize]
            if len(data) != msize:
                raise HDF5Error("message runs past its object header block")
            at += msize if v2 else (msize + 7) & ~7
            if mflags & 0x02 and mtype in (0x0C,):
                raise HDF5Error("a shared attribute message is not supported")
            if mtype == 0x10:
                cont = hf.uint(data, 0, hf.so)
                clen = hf.uint(data, hf.so, hf.sl)
                if v2:
                    if hf.read(cont, 4) != b"OCHK":
                        raise HDF5Error("continuation block without OCHK")
                    blocks.append((cont + 4, clen - 8))
                else:
                    blocks.append((cont, clen))
            else:
                out.append((mtype, data))
            if len(out) > MAX_MESSAGES:
                raise HDF5Error(f"more than {MAX_MESSAGES} header messages")
    return out


def _attribute(hf: _File, data: bytes) -> tuple[str, bytes | None]:
    version = data[0] if data else 0
    if version not in (1, 2, 3) or len(data) < 8:
        raise HDF5Error(f"attribute message version {version}")
    flags = data[1]
    if flags & 0x03:
        return "(shared datatype)", None
    nsize, tsize, ssize = struct.unpack_from("<HHH", data, 2)
    at = 8 if version < 3 else 9

    def pad(n: int) -> int:
        return (n + 7) & ~7 if version == 1 else n

    name = data[at : at + nsize].split(b"\0", 1)[0].decode("utf-8", "replace")
    at += pad(nsize)
    dtype = data[at : at + tsize]
    at += pad(tsize)
    space = data[at : at + ssize]
    at += pad(ssize)
    value = data[at:]
    if len(dtype) < 8 or len(space) < 2:
        raise HDF5Error(f"attribute `{name}`: datatype or dataspace truncated")
    count = _elements(hf, space)
    cls = dtype[0] & 0x0F
    size = int.from_bytes(dtype[4:8], "little")
    if count != 1:
        return name, None
    if cls == 3:  # fixed-length string
        return name, value[:size].split(b"\0", 1)[0]
    if cls == 9 and dtype[1] & 0x0F == 1:  # variable-length string: global heap reference
        if len(value) < 4 + hf.so + 4:
            raise HDF5Error(f"attribute `{name}`: heap reference truncated")
        length = int.from_bytes(value[0:4], "little")
        collection = hf.uint(value, 4, hf.so)
        index = hf.uint(value, 4 + hf.so, 4)
        return name, _global_heap(hf, collection, index, length)
    return name, None


def _elements(hf: _File, space: bytes) -> int:
    version, rank = space[0], space[1]
    if version == 1:
        at = 8
    elif version == 2:
        if space[3] == 2:  # null dataspace
            return 0
        at = 4
    else:
        raise HDF5Error(f"dataspace version {version}")
    count = 1
    for i in range(rank):
        count *= hf.uint(space, at + i * hf.sl, hf.sl)
        if count > 1 << 40:
            break
    return count


def _global_heap(hf: _File, addr: int, index: int, length: int) -> bytes:
    head = hf.read(addr, 8 + hf.sl)
    if head[:4] != b"GCOL":
        raise HDF5Error(f"no global heap collection at {addr}")
    size = hf.uint(head, 8, hf.sl)
    if size > 256 * 1024 * 1024:
        raise HDF5Error(f"global heap collection of {size} bytes")
    raw = hf.read(addr, min(size, hf.length - addr))
    at = 8 + hf.sl
    while at + 8 + hf.sl <= len(raw):
        obj = hf.uint(raw, at, 2)
        osize = hf.uint(raw, at + 8, hf.sl)
        data_at = at + 8 + hf.sl
        if obj == 0:
            break
        if obj == index:
            if osize < length or data_at + length > len(raw):
                raise HDF5Error(f"global heap object {index} shorter than its reference")
            return raw[data_at : data_at + length]
        at = data_at + ((osize + 7) & ~7)
    raise HDF5Error(f"global heap object {index} not found at {addr}")


# -- the parsers the registry names ----------------------------------------------------------


def scan_hdf5(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str
) -> None:
    """An HDF5 file: a Keras model (``model_config``) is checked; other HDF5 is data."""
    _scan(f, start, length, where, ctx, name, weights=False)


def scan_keras_weights(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str
) -> None:
    """``model.weights.h5`` of a ``.keras`` archive: HDF5 whose root has no model config (one
    there is still checked: the loader ignores it, another tool may not). Read in place when
    the member is stored (Keras stores it); a deflated one is spooled by the dispatcher under
    the member budget."""
    _scan(f, start, length, where, ctx, name, weights=True)


def _scan(
    f: BinaryIO,
    start: int,
    length: int,
    where: Location,
    ctx: Context,
    name: str,
    *,
    weights: bool,
) -> None:
    from .keras import analyse_json_text

    try:
        attrs = read_root_attributes(f, start, length)
    except (HDF5Error, struct.error, IndexError, OSError) as exc:
        ctx.anomaly("hdf5-malformed", where, f"HDF5 root attributes unreadable: {exc}")
        return
    if attrs.dense:
        ctx.anomaly(
            "hdf5-attributes-not-read",
            where,
            "some root attributes are in HDF5 dense storage (a fractal heap), which the "
            "scanner does not read; a model config there was not checked",
        )
    for key in KERAS_TEXT:
        value = attrs.values.get(key)
        if value is not None and key == "keras_version":
            ctx.emit("keras.version", value[:64].decode("utf-8", "replace"), where.at(key=key))
    found = False
    for key in KERAS_JSON:
        if key not in attrs.values:
            continue
        found = True
        value = attrs.values[key]
        loc = where.at(key=key)
        if value is None:
            ctx.anomaly("hdf5-malformed", loc, f"`{key}` is not a string attribute")
            continue
        analyse_json_text(value, loc, ctx, f"`{key}` attribute", key)
    if not found and not weights and not attrs.dense:
        from .dispatch import extension

        ctx.emit(
            "format.data", "hdf5", where, detected="hdf5", extension=extension(name) or "(none)"
        )
