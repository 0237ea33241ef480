"""Native executables where a model is expected, and llamafiles: an executable with a zip
appended that holds the model (a GGUF) and its default arguments (``.args``).

Identification (head only)::

    APE       "MZqFpD='" at byte 0: Cosmopolitan's Actually Portable Executable, a DOS/PE
              header that is also a POSIX shell script (every llamafile since 0.1)
    ELF       "\\x7fELF", class 1|2, byte order 1|2, version 1
    PE        "MZ" with e_lfanew (u32 at 0x3c) pointing at "PE\\0\\0" inside the head
    Mach-O    0xfeedface / 0xfeedfacf in either byte order

The zip (found by its end record in the last 64 KiB + 22 bytes) is read by the archive
reader, which accounts for the executable bytes before it; its members (the GGUF, ``.args``)
are sniffed and parsed like any archive member's.

Running a llamafile runs its native code: that is what it is for, and nothing static can
vouch for machine code. So the executable itself is always reported (M121), with what is
bundled as evidence, and more severely when its name promises a data file that no one
would execute on purpose (``.gguf``, ``.safetensors``, ``.bin``...: M122).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from ..model import Location
from .base import Context

APE = b"MZqFpD='"
EOCD = b"PK\x05\x06"
# names under which an executable is what the user expects to get
EXECUTABLE_EXTENSIONS = frozenset(
    {"", ".llamafile", ".exe", ".com", ".elf", ".out", ".run", ".app", ".so", ".dll", ".dylib"}
)
MACHO = (b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe")
ELF_MACHINES = {3: "x86", 40: "ARM", 62: "x86-64", 183: "AArch64", 243: "RISC-V"}


def executable_kind(head: bytes) -> str | None:
    if head.startswith(APE):
        return "APE"
    if head.startswith(b"\x7fELF") and len(head) >= 20:
        if head[4] in (1, 2) and head[5] in (1, 2) and head[6] == 1:
            endian = "<" if head[5] == 1 else ">"
            (machine,) = struct.unpack_from(endian + "H", head, 18)
            return f"ELF {ELF_MACHINES.get(machine, f'machine {machine}')}"
        return None
    if head.startswith(b"MZ") and len(head) >= 0x40:
        (e_lfanew,) = struct.unpack_from("<I", head, 0x3C)
        if 0x40 <= e_lfanew <= len(head) - 4 and head[e_lfanew : e_lfanew + 4] == b"PE\0\0":
            return "PE"
        return None
    if head[:4] in MACHO:
        return "Mach-O"
    return None


def sniff_executable(head: bytes) -> bool:
    return executable_kind(head) is not None


def _zip_end(f: BinaryIO, start: int, length: int) -> bool:
    tail = min(length, 65536 + 22)
    f.seek(start + length - tail)
    data = f.read(tail)
    return data.rfind(EOCD) >= 0


def scan_executable(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str
) -> None:
    from .archives import read_central_directory
    from .dispatch import extension
    from .streams import SliceIO

    f.seek(start)
    kind = executable_kind(f.read(4096)) or "executable"
    members: list[str] = []
    declared = 0
    if _zip_end(f, start, length):
        try:
            infos, declared = read_central_directory(SliceIO(f, start, length), length, 64)  # type: ignore[arg-type]
            members = [i.filename for i in infos]
        except Exception:
            declared = 0
        if members or declared:
            from .archives import scan_zip

            scan_zip(f, start, length, where, ctx, name)
    gguf = any(m.lower().endswith(".gguf") for m in members)
    bundle = "llamafile" if gguf else "program with an appended zip" if members else "program"
    shown = ", ".join(members[:12]) + (" ..." if len(members) > 12 else "")
    evidence = f"{kind} executable, {length} bytes" + (
        f"; appended zip with {max(declared, len(members))} members: {shown}" if members else ""
    )
    ext = extension(name)
    ctx.emit(
        "format.executable",
        bundle,
        where,
        evidence=evidence,
        executable=kind,
        extension=ext or "(none)",
        members=len(members),
    )
    if ext not in EXECUTABLE_EXTENSIONS:
        ctx.emit(
            "format.executable-disguised",
            f"{kind}:{ext}",
            where,
            evidence=evidence,
            executable=kind,
            extension=ext,
        )
