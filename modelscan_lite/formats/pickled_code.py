"""Code objects a pickle builds from raw bytecode (dill, cloudpickle), shown as evidence.

dill pickles a function as ``dill._dill._create_function(_create_code(...), globals, ...)``
and cloudpickle as ``_make_function(_builtin_type('CodeType')(...), ...)``: loading builds a
``types.CodeType`` from bytes the file chose, then a function the program runs when it calls
it. The pickle walker records the constructor's literal arguments
(:attr:`.pickle_vm.StreamResult.code_objects`); this module lays them out as CPython's
``CodeType`` signature does (3.11+: argcount, posonlyargcount, kwonlyargcount, nlocals,
stacksize, flags, code, consts, names, varnames, filename, name, qualname, firstlineno, ...;
3.8-3.10 have no qualname; dill puts ``co_lnotab`` first since 3.10) and disassembles the
bytecode with the running interpreter's opcode tables (:func:`.pymarshal.disassemble`),
never building a code object. Each becomes a ``pickle.code`` fact whose evidence is the
disassembly.
"""

from __future__ import annotations

import sys
from typing import Any

from ..model import Location
from .base import Context
from .pymarshal import Code, disassemble

MAX_LINES = 40


def code_record(args: tuple[Any, ...]) -> Code | None:
    """The code object the arguments describe, or None when they are not literal enough."""
    if args and not isinstance(args[0], int):
        args = args[1:]  # dill: co_lnotab first
    if len(args) < 12 or not all(isinstance(a, int) for a in args[:6]):
        return None
    raw = args[6]
    if isinstance(raw, str):
        raw = raw.encode("latin-1", "replace")
    if not isinstance(raw, bytes):
        return None

    def strs(value: Any) -> tuple[str, ...]:
        return tuple(v for v in value if isinstance(v, str)) if isinstance(value, tuple) else ()

    consts = args[7] if isinstance(args[7], tuple) else ()
    # 3.8-3.10 have no qualname: a 12-argument call ends at the name
    qualname = args[12] if len(args) > 12 and isinstance(args[12], str) else str(args[11])
    first = next((a for a in args[12:14] if isinstance(a, int)), 0)
    return Code(
        "pickled",
        args[0],
        args[5],
        raw,
        consts,
        strs(args[8]),
        strs(args[9]),
        str(args[10]),
        str(args[11]),
        qualname,
        first,
    )


def emit_code_objects(
    found: list[tuple[int, str, tuple[Any, ...]]], start: int, where: Location, ctx: Context
) -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for offset, ctor, args in found:
        code = code_record(args)
        if code is None:
            ctx.emit(
                "pickle.code",
                ctor,
                where.at(start + offset, ctor),
                f"# {ctor}(...): arguments the walker cannot read (computed or too large)",
                qualname="?",
                size="?",
            )
            continue
        try:
            lines = disassemble(code)
        except (IndexError, KeyError, ValueError, TypeError) as exc:  # hostile bytecode
            lines = [f"(disassembly stopped: {type(exc).__name__})"]
        if len(lines) > MAX_LINES:
            lines = [*lines[:MAX_LINES], f"  ... {len(lines) - MAX_LINES} more lines"]
        header = (
            f"# {ctor}: loading builds this code object from {len(code.code)} bytes of "
            f"bytecode (disassembled with Python {version} opcode tables)"
        )
        ctx.emit(
            "pickle.code",
            ctor,
            where.at(start + offset, code.qualname),
            "\n".join([header, *lines]),
            qualname=code.qualname[:120],
            filename=code.filename[:120],
            size=len(code.code),
        )
