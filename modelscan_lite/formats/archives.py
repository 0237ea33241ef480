"""Archives: zip (PyTorch, TorchScript, NumPy ``.npz`` or generic), tar (incl. the legacy
PyTorch 0.1 layout) and 7z. Every member is sniffed by content and dispatched recursively.

Zip, normatively (APPNOTE 6.3): the central directory (CD) at the end lists entries with their
name, flags, method, CRC-32, sizes and the offset of a 30-byte local header
(``PK\\x03\\x04``, version, flags, method, time, date, crc, csize, usize, name length, extra
length) that precedes the member data. PyTorch's reader (miniz) looks members up by their CD
name, ignores the encryption flag and CRC, and reads the data after the *local* header. So do
we: Python's ``zipfile`` parses the CD only, data is read by us, and every place where the
local header, flags or CRC disagree with the CD is an anomaly, not an error.
"""

from __future__ import annotations

import re
import struct
import tarfile
import zipfile
import zlib
from typing import Any, BinaryIO, cast

from ..model import Location
from . import registry
from .base import Context
from .dispatch import HEAD, dispatch_bytes, dispatch_file, dispatch_stream, run_format
from .streams import (
    BudgetExceeded,
    DecodedStream,
    FileSlice,
    Source,
    SourceFile,
)

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_ZIP_METHODS = {0: None, 8: "deflate", 12: "bz2"}
_SUSPICIOUS_FLAGS = 0x0001 | 0x0040 | 0x2000  # encrypted, strong encryption, masked header
CRC_CHECK_LIMIT = 16 << 20


def member_name_problem(name: str) -> str | None:
    """Why extracting a member with this name would escape the target directory, if it would."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "absolute path"
    if any(part == ".." for part in norm.split("/")):
        return "parent-directory component"
    return None


def _check_name(name: str, where: Location, ctx: Context) -> None:
    problem = member_name_problem(name)
    if problem:
        ctx.emit("archive.path-escape", name, where, reason=problem)


_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_CD_READ = 1 << 20


def _end_record(fp: BinaryIO, size: int) -> tuple[int, int, int, int]:
    """(entries, directory size, directory offset, where the end record starts) from the
    end of central directory record, ZIP64 if present; found as ``zipfile`` finds it."""
    fp.seek(max(0, size - _EOCD.size))
    tail = fp.read()
    if len(tail) == _EOCD.size and tail[:4] == b"PK\x05\x06" and tail[-2:] == b"\0\0":
        at = size - _EOCD.size
    else:
        lo = max(size - (1 << 16) - _EOCD.size, 0)
        fp.seek(lo)
        tail = fp.read()
        found = tail.rfind(b"PK\x05\x06")
        if found < 0 or len(tail) - found < _EOCD.size:
            raise zipfile.BadZipFile("File is not a zip file")
        tail = tail[found : found + _EOCD.size]
        at = lo + found
    rec = _EOCD.unpack(tail)
    entries, cd_size, cd_offset = rec[4], rec[5], rec[6]
    loc_at = at - _EOCD64_LOCATOR.size
    if loc_at >= 0:
        fp.seek(loc_at)
        loc = fp.read(_EOCD64_LOCATOR.size)
        sig, diskno, _rel, disks = _EOCD64_LOCATOR.unpack(loc)
        if sig == b"PK\x06\x07":
            if diskno != 0 or disks > 1:
                raise zipfile.BadZipFile("zipfiles that span multiple disks are not supported")
            if loc_at - _EOCD64.size >= 0:
                fp.seek(loc_at - _EOCD64.size)
                rec64 = _EOCD64.unpack(fp.read(_EOCD64.size))
                if rec64[0] == b"PK\x06\x06":
                    entries, cd_size, cd_offset = rec64[7], rec64[8], rec64[9]
                    at -= _EOCD64.size + _EOCD64_LOCATOR.size
    return entries, cd_size, cd_offset, at


def _zip64_extra(info: zipfile.ZipInfo) -> None:
    """Sizes and offset from the ZIP64 extra field, as ``zipfile`` reads them."""
    extra = info.extra
    while len(extra) >= 4:
        tp, ln = struct.unpack("<HH", extra[:4])
        if ln + 4 > len(extra):
            raise zipfile.BadZipFile(f"Corrupt extra field {tp:04x} (size={ln})")
        if tp == 0x0001:
            data = extra[4 : ln + 4]
            try:
                if info.file_size in (0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF):
                    (info.file_size,) = struct.unpack("<Q", data[:8])
                    data = data[8:]
                if info.compress_size == 0xFFFF_FFFF:
                    (info.compress_size,) = struct.unpack("<Q", data[:8])
                    data = data[8:]
                if info.header_offset == 0xFFFF_FFFF:
                    (info.header_offset,) = struct.unpack("<Q", data[:8])
            except struct.error:
                raise zipfile.BadZipFile("Corrupt zip64 extra field") from None
        extra = extra[ln + 4 :]


def read_central_directory(
    fp: BinaryIO, size: int, limit: int
) -> tuple[list[zipfile.ZipInfo], int]:
    """The first ``limit`` entries of a zip's central directory (read in 1 MiB steps, never
    whole) and the number of entries the end record declares. Same entries, names and
    offsets as ``zipfile.ZipFile(...).infolist()``, whose parse materialises every entry:
    a 684 KB gzip of a zip listing 5 M entries once took 2.3 GiB."""
    entries, cd_size, cd_offset, at = _end_record(fp, size)
    concat = at - cd_size - cd_offset  # bytes prepended to the archive (self-extractors)
    cd_start = cd_offset + concat
    if cd_start < 0:
        raise zipfile.BadZipFile("Bad offset for central directory")
    fp.seek(cd_start)
    infos: list[zipfile.ZipInfo] = []
    buf = b""
    pos = 0
    done = 0  # directory bytes the entries so far declare (zipfile's ``total``)
    got = 0  # directory bytes read
    while done < cd_size and len(infos) < limit:
        if len(buf) - pos < _CENTRAL.size + 3 * 0xFFFF and got < cd_size:
            chunk = fp.read(min(_CD_READ, cd_size - got))
            got = cd_size if not chunk else got + len(chunk)
            buf = buf[pos:] + chunk
            pos = 0
        if len(buf) - pos < _CENTRAL.size:
            raise zipfile.BadZipFile("Truncated central directory")
        cd = _CENTRAL.unpack_from(buf, pos)
        if cd[0] != b"PK\x01\x02":
            raise zipfile.BadZipFile("Bad magic number for central directory")
        nlen, xlen, clen = cd[12], cd[13], cd[14]
        rec_end = pos + _CENTRAL.size + nlen + xlen + clen  # may pass the end: cut short
        p = pos + _CENTRAL.size
        raw_name = buf[p : p + nlen]
        flags = cd[5]
        x = zipfile.ZipInfo(raw_name.decode("utf-8" if flags & 0x800 else "cp437"))
        x.extra = buf[p + nlen : p + nlen + xlen]
        x.comment = buf[p + nlen + xlen : rec_end]
        x.header_offset = cd[18]
        (
            x.create_version,
            x.create_system,
            x.extract_version,
            x.reserved,
            x.flag_bits,
            x.compress_type,
            t,
            d,
            x.CRC,
            x.compress_size,
            x.file_size,
        ) = cd[1:12]
        if x.extract_version > 63:
            raise NotImplementedError(f"zip file version {x.extract_version / 10:.1f}")
        x.volume, x.internal_attr, x.external_attr = cd[15:18]
        x._raw_time = t  # type: ignore[attr-defined]  # as zipfile sets it
        x.date_time = (
            (d >> 9) + 1980,
            (d >> 5) & 0xF,
            d & 0x1F,
            t >> 11,
            (t >> 5) & 0x3F,
            (t & 0x1F) * 2,
        )
        _zip64_extra(x)
        x.header_offset += concat
        infos.append(x)
        done += rec_end - pos
        pos = min(rec_end, len(buf))
    more = entries if done < cd_size else len(infos)
    return infos, max(more, len(infos))


def scan_zip(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str
) -> None:
    from .streams import SliceIO

    limit = max(0, ctx.limits.max_members - ctx.members)
    try:
        sio = cast(BinaryIO, SliceIO(f, start, length))
        infos, declared = read_central_directory(sio, length, limit + 1)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        ValueError,
        OSError,
        EOFError,
        struct.error,
        NotImplementedError,
        UnicodeDecodeError,
    ) as exc:
        ctx.anomaly("archive-unreadable", where, f"zip central directory unreadable: {exc}")
        return
    names = [i.filename for i in infos]
    matched = registry.profile_for("zip", names)
    profile, root = matched if matched else (None, "")
    ctx.formats.append(profile.id if profile else "zip")
    if profile is not None:
        _unanalysed_profile(profile, where, ctx)
    seen: dict[str, int] = {}
    for info in infos:
        ctx.members += 1
        if ctx.members > ctx.limits.max_members:
            ctx.anomaly(
                "budget-members",
                where,
                f"more than {ctx.limits.max_members} archive members (this zip's directory "
                f"declares {declared}); the rest were not read",
            )
            return
        if ctx.deadline.expired():
            ctx.anomaly("budget-time", where, "time budget ran out inside the archive")
            return
        mname = info.filename
        seen[mname] = seen.get(mname, 0) + 1
        label = mname if seen[mname] == 1 else f"{mname}#{seen[mname]}"
        mloc = where.child(label)
        if seen[mname] == 2:
            ctx.emit(
                "archive.duplicate", mname, mloc, message="loaders disagree on which copy they read"
            )
        _check_name(mname, mloc, ctx)
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            ctx.emit("archive.link", mname, mloc, link="symlink", target="stored as member data")
            continue
        if mname.endswith("/"):
            continue
        raw = profile.raw_members if profile else None
        if raw is not None and mname.startswith(root) and raw.search(mname[len(root) :]):
            # raw tensor bytes: loaders copy them, never deserialize them; only a member whose
            # first bytes are strongly something else is scanned (a second stage hides there)
            found = _storage_content(f, start, length, info)
            if found is None:
                continue
            ctx.anomaly(
                "storage-member-not-tensor-data",
                mloc,
                f"tensor storage member `{mname}` holds {found}, not raw tensor bytes",
            )
        _scan_zip_member(f, start, length, info, mloc, ctx, profile, root)


STORAGE_HEAD = 4096
# formats whose magic number (4+ bytes, or a checksum) raw tensor bytes match only by a
# 2**-32 chance, and that can carry code or a further pickle
_STRONG_MAGIC = frozenset({"7z", "xz", "lz4", "npy", "hdf5", "tar", "gguf"})
_WRAPPERS = frozenset({"gzip", "bz2", "zlib", "lzma"})


def _storage_content(f: BinaryIO, start: int, length: int, info: zipfile.ZipInfo) -> str | None:
    """What a PyTorch storage member's first bytes strongly are, when they are not tensor
    data: reads the local header and at most ``STORAGE_HEAD`` bytes of content, never the
    tensor. None for anything raw tensor bytes can look like by chance (text, short magic
    numbers, protocol 0/1 pickle look-alikes)."""
    if not 0 <= info.header_offset <= length - _LOCAL.size:
        return None
    f.seek(start + info.header_offset)
    raw = f.read(_LOCAL.size)
    if len(raw) < _LOCAL.size or raw[:4] != b"PK\x03\x04":
        return None
    nlen, xlen = _LOCAL.unpack(raw)[-2:]
    f.seek(start + info.header_offset + _LOCAL.size + nlen + xlen)
    head = f.read(min(STORAGE_HEAD, info.compress_size))
    if info.compress_type == 8:
        try:
            head = zlib.decompressobj(-15).decompress(head, STORAGE_HEAD)
        except zlib.error:
            return None
    elif info.compress_type != 0:
        return None
    return _strong_format(head, 2)


def _strong_format(head: bytes, depth: int) -> str | None:
    from .pickles import sniff_pickle
    from .sniff import sniff

    fmt = sniff(head, data_formats=False)
    if fmt == "pickle":
        strong = head[:1] == b"\x80" and sniff_pickle(head, strict=True)
        return f"a pickle (protocol {head[1]})" if strong else None
    if fmt == "zip":
        if head.startswith(b"PK\x05\x06"):
            return "an empty zip archive" if len(head) == 22 else None
        if len(head) < _LOCAL.size:
            return None
        _s, ver, _fl, method, _t, _d, _c, _cs, _us, nlen, _x = _LOCAL.unpack_from(head)
        sane = ver <= 63 and method in (0, 8, 12, 14, 93, 95) and 0 < nlen <= 1024
        return "a zip archive" if sane else None
    if fmt in _STRONG_MAGIC:
        return f"{fmt} data"
    if fmt in _WRAPPERS and depth > 0:
        inner = _unwrap_head(head, fmt)
        found = _strong_format(inner, depth - 1) if inner else None
        return f"{fmt}-compressed {found}" if found else None
    return None


def _unwrap_head(head: bytes, fmt: str) -> bytes | None:
    """The first decompressed bytes of a compressed head, or None if it does not decode."""
    import bz2
    import lzma

    try:
        if fmt == "gzip":
            return zlib.decompressobj(16 + 15).decompress(head, STORAGE_HEAD)
        if fmt == "zlib":
            return zlib.decompressobj().decompress(head, STORAGE_HEAD)
        if fmt == "bz2":
            return bz2.BZ2Decompressor().decompress(head, STORAGE_HEAD)
        return lzma.LZMADecompressor().decompress(head, STORAGE_HEAD)
    except (zlib.error, OSError, ValueError, EOFError, lzma.LZMAError):
        return None


def _scan_zip_member(
    f: BinaryIO,
    start: int,
    length: int,
    info: zipfile.ZipInfo,
    mloc: Location,
    ctx: Context,
    profile: registry.Profile | None,
    root: str,
) -> None:
    if not 0 <= info.header_offset <= length - _LOCAL.size:
        ctx.anomaly(
            "archive-unreadable",
            mloc,
            f"the directory points to offset {info.header_offset}, outside the file",
        )
        return
    f.seek(start + info.header_offset)
    raw = f.read(_LOCAL.size)
    if len(raw) < _LOCAL.size:
        ctx.anomaly("archive-unreadable", mloc, "local header past the end of the file")
        return
    sig, _ver, flags, method, _t, _d, _crc, _cs, _us, nlen, xlen = _LOCAL.unpack(raw)
    if sig != b"PK\x03\x04":
        ctx.anomaly("archive-unreadable", mloc, "no local header where the directory points")
        return
    lname_b = f.read(nlen)
    lname = lname_b.decode("utf-8" if flags & 0x800 else "cp437", "replace")
    if lname != info.filename:
        ctx.emit(
            "zip.header-mismatch",
            "name",
            mloc,
            message=f"local header names it `{lname}`, the directory `{info.filename}`",
        )
    if (flags | info.flag_bits) & _SUSPICIOUS_FLAGS:
        ctx.emit(
            "zip.header-mismatch",
            "flags",
            mloc,
            message=f"general-purpose flags 0x{flags | info.flag_bits:04x} mark it "
            "encrypted, but PyTorch ignores that and reads it",
        )
    if method != info.compress_type:
        ctx.emit(
            "zip.header-mismatch",
            "method",
            mloc,
            message=f"compression method {method} locally, {info.compress_type} in the directory",
        )
    data_start = info.header_offset + _LOCAL.size + nlen + xlen
    csize = info.compress_size
    if data_start + csize > length:
        ctx.emit(
            "zip.header-mismatch", "size", mloc, message="member data runs past the end of the file"
        )
        csize = max(0, length - data_start)
    method = info.compress_type
    if method not in _ZIP_METHODS:
        ctx.anomaly(
            "embedded-not-analysed",
            mloc,
            f"zip compression method {method} is not supported by the scanner",
        )
        return
    mname = info.filename
    codec = _ZIP_METHODS[method]
    local = mname[len(root) :] if mname.startswith(root) else None
    routed = profile.route(local) if profile is not None and local is not None else None
    if codec is None:
        if routed:
            fmt = _routed(
                routed, mloc, ctx, mname, info.file_size, file=(f, start + data_start, csize)
            )
        else:
            fmt = dispatch_file(f, start + data_start, csize, mloc, ctx, mname)
    else:

        def restart(ds: int = data_start, cs: int = csize) -> Source:
            return FileSlice(f, start + ds, cs)

        stream = DecodedStream(restart(), codec, ctx.budget, restart)
        if routed:
            fmt = _routed(routed, mloc, ctx, mname, info.file_size, stream=stream)
        else:
            fmt = dispatch_stream(stream, mloc, ctx, mname, info.file_size)
    if fmt == "pickle" and profile is not None and profile.pickles is not None:
        debug = profile.debug_pickles
        if local not in profile.pickles and not (
            debug and local and local.startswith(debug[0]) and local.endswith(debug[1])
        ):
            ctx.emit("archive.unexpected-pickle", info.filename, mloc, archive=profile.id)
        if info.file_size <= CRC_CHECK_LIMIT:
            _check_crc(f, start + data_start, csize, codec, info, mloc, ctx)


def _routed(
    fmt: str,
    mloc: Location,
    ctx: Context,
    mname: str,
    size: int | None,
    *,
    file: tuple[BinaryIO, int, int] | None = None,
    stream: Source | None = None,
) -> str:
    """A member the archive's profile names (Keras ``config.json``, TorchScript ``code/``):
    parsed as that format, not sniffed; the format is still recorded."""
    try:
        if file is not None:
            file[0].seek(file[1])
            head = file[0].read(min(HEAD, file[2]))
        else:
            assert stream is not None
            head = stream.read(HEAD)
    except BudgetExceeded as exc:
        ctx.anomaly(exc.what, mloc, exc.detail)
        return fmt
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        ctx.anomaly("stream-corrupt", mloc, f"cannot decode: {exc}")
        return fmt
    ctx.formats.append(fmt)
    return run_format(fmt, head, mloc, ctx, mname, size, file=file, stream=stream)


def _check_crc(
    f: BinaryIO,
    data_start: int,
    csize: int,
    codec: str | None,
    info: zipfile.ZipInfo,
    mloc: Location,
    ctx: Context,
) -> None:
    f.seek(data_start)
    data = f.read(csize)
    try:
        if codec == "deflate":
            data = zlib.decompressobj(-15).decompress(data, CRC_CHECK_LIMIT + 1)
        elif codec == "bz2":
            import bz2

            data = bz2.BZ2Decompressor().decompress(data, CRC_CHECK_LIMIT + 1)
    except (zlib.error, OSError, ValueError, EOFError):
        return
    if zlib.crc32(data) != info.CRC:
        ctx.emit(
            "zip.header-mismatch",
            "crc",
            mloc,
            message=f"CRC-32 0x{zlib.crc32(data):08x} of the data, 0x{info.CRC:08x} "
            "recorded; PyTorch loads it anyway",
        )


# -- tar --------------------------------------------------------------------------------

LEGACY_TAR_MEMBERS = frozenset({"sys_info", "pickle", "storages", "tensors"})
_ELEMENT_SIZES = {
    "Double": 8,
    "Float": 4,
    "Half": 2,
    "BFloat16": 2,
    "Long": 8,
    "Int": 4,
    "Short": 2,
    "Char": 1,
    "Byte": 1,
    "Bool": 1,
    "ComplexDouble": 16,
    "ComplexFloat": 8,
}


def scan_tar_stream(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    """A tar read from a file region is walked by seeking: its members are parsed where they
    lie (a multi-GB ``.nemo`` checkpoint is never copied); a tar inside a decoded stream is
    walked forward."""
    scan_tar(src, where, ctx, window=src.window() if isinstance(src, FileSlice) else None)


def scan_tar(
    src: Source, where: Location, ctx: Context, window: tuple[BinaryIO, int, int] | None = None
) -> None:
    """A tar stream: members are dispatched as they stream by. A tar profile's routes apply
    by member name (a stream cannot look ahead at the layout); the layout names the tar
    once every member has been seen."""
    legacy = False
    slot = len(ctx.formats)
    names: list[str] = []
    try:
        _scan_tar_members(src, where, ctx, names, window)
    finally:
        legacy = "pytorch-legacy-tar" in ctx.formats[slot:]
        matched = None if legacy else registry.profile_for("tar", names)
        if matched is not None:
            _unanalysed_profile(matched[0], where, ctx)
        kind = "pytorch-legacy-tar" if legacy else matched[0].id if matched else "tar"
        ctx.formats.insert(slot, kind)


def _unanalysed_profile(profile: registry.Profile, where: Location, ctx: Context) -> None:
    """A layout the registry knows whose format has no parser yet: never reported clean."""
    if not profile.analysed:
        ctx.emit("format.unanalysed", profile.id, where, detected=profile.id)


def _tar_route(name: str) -> str | None:
    local = name[2:] if name.startswith("./") else name
    for profile in registry.PROFILES:
        if profile.container == "tar":
            fmt = profile.route(local)
            if fmt is not None:
                return fmt
    return None


def _open_tar(src: Source, window: tuple[BinaryIO, int, int] | None) -> tarfile.TarFile:
    import io

    from .streams import SliceIO

    if window is not None:  # seekable: headers read, data skipped by seeking
        return tarfile.open(fileobj=io.BufferedReader(SliceIO(*window)), mode="r:")
    return tarfile.open(fileobj=SourceFile(src), mode="r|")


def _scan_tar_members(
    src: Source,
    where: Location,
    ctx: Context,
    names: list[str],
    window: tuple[BinaryIO, int, int] | None,
) -> None:
    legacy = False
    seen: dict[str, int] = {}
    try:
        with _open_tar(src, window) as tf:
            for member in tf:
                ctx.members += 1
                if ctx.members > ctx.limits.max_members:
                    ctx.anomaly(
                        "budget-members",
                        where,
                        f"more than {ctx.limits.max_members} archive members",
                    )
                    return
                if ctx.deadline.expired():
                    ctx.anomaly("budget-time", where, "time budget ran out inside the archive")
                    return
                local = member.name[2:] if member.name.startswith("./") else member.name
                names.append(local)
                seen[local] = seen.get(local, 0) + 1
                label = member.name if seen[local] == 1 else f"{member.name}#{seen[local]}"
                mloc = where.child(label)
                if seen[local] == 2 and not member.isdir():
                    ctx.emit(
                        "archive.duplicate",
                        member.name,
                        mloc,
                        message="extraction keeps the last copy; a reader that stops at the "
                        "first reads another",
                    )
                _check_name(member.name, mloc, ctx)
                if member.issym() or member.islnk():
                    ctx.emit(
                        "archive.link",
                        member.name,
                        mloc,
                        link="symlink" if member.issym() else "hardlink",
                        target=member.linkname,
                    )
                    continue
                if not member.isfile():
                    continue
                if member.name in LEGACY_TAR_MEMBERS and not legacy:
                    legacy = member.name == "sys_info"
                    if legacy:
                        ctx.formats.append("pytorch-legacy-tar")  # moved to the tar's slot
                routed = None if legacy else _tar_route(member.name)
                if window is not None and not member.issparse():
                    f, base, size = window
                    if member.offset_data + member.size > size:
                        ctx.anomaly(
                            "archive-unreadable", mloc, "member data runs past the end of the tar"
                        )
                        return
                    at = (f, base + member.offset_data, member.size)
                    if legacy and member.name in ("storages", "tensors"):
                        _scan_legacy_records(FileSlice(*at), mloc, ctx, member.name)
                    elif routed is not None:
                        _routed(routed, mloc, ctx, member.name, member.size, file=at)
                    else:
                        dispatch_file(*at, mloc, ctx, member.name)
                    continue
                fh = tf.extractfile(member)
                if fh is None:
                    continue
                msrc = _TarMember(fh)
                if legacy and member.name in ("storages", "tensors"):
                    _scan_legacy_records(msrc, mloc, ctx, member.name)
                elif routed is not None:
                    _routed(routed, mloc, ctx, member.name, member.size, stream=msrc)
                else:
                    dispatch_stream(msrc, mloc, ctx, member.name, member.size)
    except BudgetExceeded as exc:
        ctx.anomaly(exc.what, where, exc.detail)
    except (tarfile.TarError, OSError, ValueError, EOFError, zlib.error) as exc:
        ctx.anomaly("archive-unreadable", where, f"tar stream unreadable: {exc}")


class _TarMember:
    """A forward :class:`Source` over a tar member's file object."""

    __slots__ = ("_fh", "_pos")

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self._pos = 0

    def read(self, n: int) -> bytes:
        out: bytes = self._fh.read(n)
        self._pos += len(out)
        return out

    def skip(self, n: int) -> int:
        done = 0
        while done < n:
            got = len(self._fh.read(min(n - done, 1 << 20)))
            if not got:
                break
            done += got
        self._pos += done
        return done

    def tell(self) -> int:
        return self._pos

    def reread(self, start: int, end: int) -> bytes | None:
        return None


def _scan_legacy_records(src: Source, where: Location, ctx: Context, which: str) -> None:
    """The ``storages``/``tensors`` members of a legacy tar: pickles between raw records."""
    from .pickle_vm import Reader, walk_stream
    from .pickles import emit_stream

    reader = Reader(src)
    budget = [ctx.limits.max_opcodes]
    n = 0

    def one() -> Any:
        nonlocal n
        n += 1
        res = walk_stream(reader, ctx.limits, ctx.deadline, budget)
        emit_stream(res, src, where, ctx, n)
        if res.error:
            raise _Stop
        return res.top

    def raw(size: int) -> bytes:
        reader.fill(size)
        data = reader.buf[reader.pos : reader.pos + size]
        reader.pos += len(data)
        if len(data) < size:
            ctx.anomaly(
                "pickle-truncated", where.at(reader.tell()), f"legacy {which} record ends early"
            )
            raise _Stop
        return data

    try:
        count = one()
        if not isinstance(count, int) or count < 0:
            ctx.anomaly("pickle-invalid", where, f"legacy {which} count is not a number")
            return
        for _ in range(min(count, ctx.limits.max_members)):
            args = one()
            if which == "storages":
                stype = args[2] if isinstance(args, tuple) and len(args) == 3 else None
                tname = getattr(stype, "name", "")
                elsize = _ELEMENT_SIZES.get(tname.rsplit(".", 1)[-1].removesuffix("Storage"))
                if elsize is None:
                    ctx.anomaly(
                        "embedded-not-analysed",
                        where,
                        f"unknown storage type `{tname}` in legacy storages",
                    )
                    return
                (numel,) = struct.unpack("<q", raw(8))
                if numel < 0 or not reader.skip(numel * elsize):
                    ctx.anomaly("pickle-truncated", where, "legacy storage data ends early")
                    return
            else:
                (ndim,) = struct.unpack("<i", raw(4))
                if not 0 <= ndim <= 64:
                    ctx.anomaly("pickle-invalid", where, f"legacy tensor with {ndim} dims")
                    return
                raw(4 + 16 * ndim + 8)
        if which == "storages":
            one()
        if not reader.at_eof():
            ctx.anomaly(
                "pickle-trailing-data",
                where.at(reader.tell()),
                f"bytes after the last legacy {which} record",
            )
    except _Stop:
        return


class _Stop(Exception):
    pass


# -- 7z -----------------------------------------------------------------------------------


def scan_7z_at(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str
) -> None:
    import io

    from .streams import SliceIO

    scan_7z(io.BufferedReader(SliceIO(f, start, length)), where, ctx, length)


def scan_7z(fileobj: BinaryIO, where: Location, ctx: Context, packed: int) -> None:
    """A 7z archive (``packed`` bytes): py7zr extracts every member into memory, each capped
    at the member budget; the expansion ratio is judged against the whole archive's size
    (py7zr does not say how much of it each member consumed)."""
    try:
        import py7zr
        from py7zr.io import Py7zIO, WriterFactory
    except ImportError:
        ctx.emit("dependency.missing", "py7zr", where, detected="7z", fix="pip install py7zr")
        return
    limit = ctx.limits.max_member_read
    budget = ctx.budget

    class Capped(Py7zIO):
        def __init__(self) -> None:
            self.data = bytearray()
            self.total = 0

        def write(self, s: bytes | bytearray) -> int:
            self.total += len(s)
            budget.charge(len(s), packed)
            if len(self.data) <= limit:
                self.data += s[: limit + 1 - len(self.data)]
            return len(s)

        def read(self, size: int | None = None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return 0

        def flush(self) -> None:
            return None

        def size(self) -> int:
            return self.total

    class Factory(WriterFactory):
        def __init__(self) -> None:
            self.files: dict[str, Capped] = {}

        def create(self, filename: str) -> Py7zIO:
            out = self.files[filename] = Capped()
            return out

    factory = Factory()
    try:
        with py7zr.SevenZipFile(fileobj, mode="r") as archive:
            if archive.needs_password():
                ctx.anomaly("embedded-not-analysed", where, "7z archive is encrypted")
                return
            infos = archive.list()
            declared = sum(int(i.uncompressed or 0) for i in infos)
            if declared > ctx.limits.max_decompressed:
                ctx.anomaly("decompressed-size", where, f"7z declares {declared} bytes of content")
                return
            for info in infos:
                ctx.members += 1
                mloc = where.child(info.filename)
                _check_name(info.filename, mloc, ctx)
                if getattr(info, "is_symlink", False):
                    ctx.emit("archive.link", info.filename, mloc, link="symlink")
            archive.extractall(factory=factory)  # noqa: S202 - into memory, via the factory
    except BudgetExceeded as exc:
        ctx.anomaly(exc.what, where, exc.detail)
        return
    except Exception as exc:
        ctx.anomaly("archive-unreadable", where, f"7z archive unreadable: {exc}")
        return
    for fname, out in factory.files.items():
        mloc = where.child(fname)
        if len(out.data) > limit:
            ctx.anomaly("budget-member-size", mloc, f"7z member larger than {limit} bytes")
            continue
        dispatch_bytes(bytes(out.data), mloc, ctx, fname)
