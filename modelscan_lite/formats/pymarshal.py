"""A bounded reader of CPython ``marshal`` data that never calls ``marshal.loads``, and a
disassembler for the code objects it finds, for evidence (Keras ``Lambda`` bytecode).

``marshal`` is not safe against hostile data (the CPython docs say so), and a code object
built from attacker bytes is one call away from running. So this module reads the format
itself into plain Python values: ``None``, ``bool``, ``int`` (bounded digits), ``float``,
``complex``, ``str``, ``bytes``, ``tuple``/``list``/``dict``/``frozenset`` and
:class:`Code`, a frozen record of a code object's fields. Nothing here creates a
``types.CodeType``.

The format (``Python/marshal.c``): one type byte per object, its high bit (``FLAG_REF``,
0x80) asks the reader to remember the object for later ``r`` (ref) entries.

==========  ==========================================================================
``0``       NULL (ends a dict)        ``N`` None, ``F`` False, ``T`` True, ``.`` Ellipsis,
                                      ``S`` StopIteration
``i``       int32 LE                  ``l`` long: int32 digit count n (sign = sign of n),
                                      then \\|n\\| uint16 digits of 15 bits, least first
``g``       float64 LE                ``f`` float as text: uint8 length + ASCII
``y``       2 x float64 (complex)     ``x`` complex as two text floats
``s``       bytes: int32 length       ``t``/``u``: str (UTF-8): int32 length
``a``/``A`` ASCII str, int32 length   ``z``/``Z``: ASCII str, uint8 length
``(``/``[`` tuple/list: int32 count   ``)`` small tuple: uint8 count
``<``/``>`` set/frozenset: int32 n    ``{`` dict: key/value pairs until NULL
``r``       ref: int32 index          ``c`` code object (fields below)
==========  ==========================================================================

A code object's fields differ by Python version; the version is not recorded, so the
reader tries the layouts newest first and keeps the first that reads the whole blob with
fields of the right types: 3.11+ (argcount, posonlyargcount, kwonlyargcount, stacksize,
flags, code, consts, names, localsplusnames, localspluskinds, filename, name, qualname,
firstlineno, linetable, exceptiontable), 3.8-3.10 (argcount, posonlyargcount,
kwonlyargcount, nlocals, stacksize, flags, code, consts, names, varnames, freevars,
cellvars, filename, name, firstlineno, lnotab), 3.0-3.7 (no posonlyargcount) and 2.x (no
kwonlyargcount either).
"""

from __future__ import annotations

import dis
import opcode
import struct
import sys
from dataclasses import dataclass

MAX_DEPTH = 40
MAX_OBJECTS = 200_000
MAX_LONG_DIGITS = 300  # 15-bit digits: ~1,350 decimal digits, far below int-str limits
MAX_INSTRUCTIONS = 20_000  # per disassembly (all nested code objects together)

FLAG_REF = 0x80


class MarshalError(ValueError):
    """The blob is not marshal data this reader understands (or breaks a budget)."""


@dataclass(frozen=True, slots=True)
class Code:
    layout: str  # "3.11+", "3.8-3.10", "3.0-3.7", "2.x"
    argcount: int
    flags: int
    code: bytes
    consts: tuple[object, ...]
    names: tuple[str, ...]
    varnames: tuple[str, ...]  # localsplusnames on 3.11+, else varnames + cell + free
    filename: str
    name: str
    qualname: str
    firstlineno: int


class _Ref:
    """A reference to an object still being read (a self-referencing container)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<ref>"


_LAYOUTS: dict[str, tuple[str, ...]] = {
    # "L" int32, "O" object; the names tell which object is which field
    "3.11+": (
        "L:argcount", "L:posonly", "L:kwonly", "L:stacksize", "L:flags", "O:code",
        "O:consts", "O:names", "O:localsplusnames", "O:localspluskinds", "O:filename",
        "O:name", "O:qualname", "L:firstlineno", "O:linetable", "O:exceptiontable",
    ),
    "3.8-3.10": (
        "L:argcount", "L:posonly", "L:kwonly", "L:nlocals", "L:stacksize", "L:flags",
        "O:code", "O:consts", "O:names", "O:varnames", "O:freevars", "O:cellvars",
        "O:filename", "O:name", "L:firstlineno", "O:lnotab",
    ),
    "3.0-3.7": (
        "L:argcount", "L:kwonly", "L:nlocals", "L:stacksize", "L:flags", "O:code",
        "O:consts", "O:names", "O:varnames", "O:freevars", "O:cellvars", "O:filename",
        "O:name", "L:firstlineno", "O:lnotab",
    ),
    "2.x": (
        "L:argcount", "L:nlocals", "L:stacksize", "L:flags", "O:code", "O:consts",
        "O:names", "O:varnames", "O:freevars", "O:cellvars", "O:filename", "O:name",
        "L:firstlineno", "O:lnotab",
    ),
}  # fmt: skip


class _Reader:
    def __init__(self, data: bytes, layout: str) -> None:
        self.data = data
        self.pos = 0
        self.layout = layout
        self.refs: list[object] = []
        self.objects = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise MarshalError(f"truncated at byte {self.pos} (wants {n} more)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def _i32(self) -> int:
        value: int = struct.unpack("<i", self._take(4))[0]
        return value

    def _count(self) -> int:
        n = self._i32()
        if n < 0 or n > len(self.data) - self.pos:  # every element takes at least a byte
            raise MarshalError(f"count {n} does not fit the {len(self.data)}-byte blob")
        return n

    def read(self, depth: int = 0) -> object:
        if depth > MAX_DEPTH:
            raise MarshalError(f"nested deeper than {MAX_DEPTH} levels")
        self.objects += 1
        if self.objects > MAX_OBJECTS:
            raise MarshalError(f"more than {MAX_OBJECTS} objects")
        code = self._take(1)[0]
        flag = bool(code & FLAG_REF)
        t = chr(code & ~FLAG_REF)
        slot = -1
        if flag and t in "()[<>{c":  # containers register before their items are read
            slot = len(self.refs)
            self.refs.append(_Ref())
        value = self._value(t, depth)
        if flag:
            if slot >= 0:
                self.refs[slot] = value
            else:
                self.refs.append(value)
        return value

    def _value(self, t: str, depth: int) -> object:
        if t == "0":
            return _NULL
        if t == "N":
            return None
        if t == "F":
            return False
        if t == "T":
            return True
        if t == ".":
            return Ellipsis
        if t == "S":
            return StopIteration
        if t == "i":
            return self._i32()
        if t == "l":
            n = self._i32()
            size = abs(n)
            if size > MAX_LONG_DIGITS:
                raise MarshalError(f"a {size}-digit long, more than {MAX_LONG_DIGITS}")
            digits = struct.unpack(f"<{size}H", self._take(2 * size))
            if any(d > 0x7FFF for d in digits):
                raise MarshalError("long digit out of range")
            value = 0
            for d in reversed(digits):
                value = (value << 15) | d
            return -value if n < 0 else value
        if t == "g":
            f: float = struct.unpack("<d", self._take(8))[0]
            return f
        if t == "y":
            re_, im = struct.unpack("<dd", self._take(16))
            return complex(re_, im)
        if t in "fx":
            parts = []
            for _ in range(2 if t == "x" else 1):
                text = self._take(self._take(1)[0]).decode("ascii", "replace")
                try:
                    parts.append(float(text))
                except ValueError:
                    raise MarshalError(f"bad float text {text!r}") from None
            return complex(parts[0], parts[1]) if t == "x" else parts[0]
        if t == "s":
            return self._take(self._count())
        if t in "tuaA":
            raw = self._take(self._count())
            try:
                return raw.decode("utf-8" if t in "tu" else "latin-1", "surrogatepass")
            except UnicodeDecodeError:
                raise MarshalError(f"invalid UTF-8 in a string at byte {self.pos}") from None
        if t in "zZ":
            return self._take(self._take(1)[0]).decode("latin-1")
        if t in "([<>":
            n = self._count()
            items = [self._item(depth) for _ in range(n)]
            if t in "<>":
                try:
                    return frozenset(items)
                except TypeError:
                    return tuple(items)
            return tuple(items) if t == "(" else items
        if t == ")":
            n = self._take(1)[0]
            return tuple(self._item(depth) for _ in range(n))
        if t == "{":
            out: dict[object, object] = {}
            while True:
                key = self.read(depth + 1)
                if key is _NULL:
                    return out
                item = self._item(depth)
                try:
                    out[key] = item
                except TypeError:
                    out[repr(key)] = item
        if t == "r":
            index = self._i32()
            if not 0 <= index < len(self.refs):
                raise MarshalError(f"ref {index} to an object never read")
            return self.refs[index]
        if t == "c":
            return self._code(depth)
        raise MarshalError(f"unknown type byte {t!r} at byte {self.pos - 1}")

    def _item(self, depth: int) -> object:
        value = self.read(depth + 1)
        if value is _NULL:
            raise MarshalError("NULL inside a container")
        return value

    def _code(self, depth: int) -> Code:
        fields: dict[str, object] = {}
        for spec in _LAYOUTS[self.layout]:
            kind, _, field = spec.partition(":")
            fields[field] = self._i32() if kind == "L" else self._item(depth)
        return _make_code(self.layout, fields)


class _Null:
    __slots__ = ()


_NULL = _Null()


def _strs(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
        raise MarshalError(f"{what} is not a tuple of str")
    return value


def _make_code(layout: str, f: dict[str, object]) -> Code:
    code, consts = f["code"], f["consts"]
    if not isinstance(code, bytes):
        raise MarshalError("co_code is not bytes")
    if not isinstance(consts, tuple):
        raise MarshalError("co_consts is not a tuple")
    if layout == "3.11+":
        varnames = _strs(f["localsplusnames"], "co_localsplusnames")
        if not isinstance(f["localspluskinds"], bytes):
            raise MarshalError("co_localspluskinds is not bytes")
    else:
        varnames = (
            _strs(f["varnames"], "co_varnames")
            + _strs(f["cellvars"], "co_cellvars")
            + _strs(f["freevars"], "co_freevars")
        )
    filename, name = f["filename"], f["name"]
    qualname = f.get("qualname", name)
    if not (isinstance(filename, str) and isinstance(name, str) and isinstance(qualname, str)):
        raise MarshalError("co_filename / co_name is not a str")
    argcount, flags, first = f["argcount"], f["flags"], f["firstlineno"]
    assert isinstance(argcount, int) and isinstance(flags, int) and isinstance(first, int)
    return Code(
        layout,
        argcount,
        flags,
        code,
        consts,
        _strs(f["names"], "co_names"),
        varnames,
        filename,
        name,
        qualname,
        first,
    )


def read_code(data: bytes) -> Code:
    """The code object ``data`` holds (one of the known layouts, whole blob consumed)."""
    errors = []
    for layout in _LAYOUTS:
        reader = _Reader(data, layout)
        try:
            value = reader.read()
        except MarshalError as exc:
            errors.append(f"{layout}: {exc}")
            continue
        except (ValueError, struct.error, RecursionError, OverflowError) as exc:
            errors.append(f"{layout}: {type(exc).__name__}")
            continue
        if not isinstance(value, Code):
            raise MarshalError(f"holds a {type(value).__name__}, not a code object")
        if reader.pos != len(data):
            errors.append(f"{layout}: {len(data) - reader.pos} bytes left over")
            continue
        return value
    raise MarshalError("not a code object of a known layout (" + "; ".join(errors) + ")")


# -- disassembly -------------------------------------------------------------------------------


def _cache_entries(op: int) -> int:
    table = getattr(opcode, "_inline_cache_entries", None)
    if isinstance(table, dict):  # 3.13+: keyed by name
        return int(table.get(dis.opname[op], 0))
    if isinstance(table, list | tuple) and op < len(table):
        return int(table[op])
    return 0


def _short(value: object, limit: int = 80) -> str:
    if isinstance(value, Code):
        return f"<code {value.qualname}>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _argrepr(op: int, arg: int, code: Code) -> str:
    name = dis.opname[op]

    def pick(table: tuple[object, ...] | tuple[str, ...], index: int) -> str:
        return _short(table[index]) if 0 <= index < len(table) else f"<bad index {index}>"

    if op in dis.hasconst:
        return pick(code.consts, arg)
    if op in dis.hasname:
        index = arg
        if sys.version_info >= (3, 11) and name == "LOAD_GLOBAL":
            index = arg >> 1
        elif sys.version_info >= (3, 12) and name in ("LOAD_ATTR", "LOAD_SUPER_ATTR"):
            index = arg >> (2 if name == "LOAD_SUPER_ATTR" else 1)
        value = code.names[index] if 0 <= index < len(code.names) else f"<bad index {index}>"
        return str(value)
    if (op in dis.haslocal or op in dis.hasfree) and 0 <= arg < len(code.varnames):
        return code.varnames[arg]
    if op in dis.hascompare:
        # the comparison's index in the oparg: its low bits hold flags from 3.12 on
        shift = 5 if sys.version_info >= (3, 13) else 4 if sys.version_info >= (3, 12) else 0
        index = arg >> shift
        return dis.cmp_op[index] if 0 <= index < len(dis.cmp_op) else f"<bad index {index}>"
    return ""


def disassemble(code: Code, *, limit: int = MAX_INSTRUCTIONS) -> list[str]:
    """Text lines: each instruction of ``code`` (names resolved), then its nested code
    objects, read with the running interpreter's opcode tables."""
    lines: list[str] = []
    todo: list[Code] = [code]
    seen = 0
    while todo and seen < 64:
        current = todo.pop(0)
        seen += 1
        lines.append(f"code object {current.qualname!r} ({current.filename}:{current.firstlineno})")
        raw = current.code
        i = 0
        ext = 0
        while i + 1 < len(raw):
            if limit <= 0:
                lines.append("  ... (instruction budget reached)")
                return lines
            limit -= 1
            op, arg = raw[i], raw[i + 1] | ext
            opname = dis.opname[op]
            if op == dis.EXTENDED_ARG:
                ext = arg << 8
                i += 2
                continue
            ext = 0
            shown = _argrepr(op, arg, current) if op >= dis.HAVE_ARGUMENT else ""
            arg_text = str(arg) if op >= dis.HAVE_ARGUMENT else ""
            shown = f"({shown})" if shown else ""
            lines.append(f"  {i:>4} {opname:<24} {arg_text:>4} {shown}".rstrip())
            i += 2 + 2 * _cache_entries(op)
        todo.extend(c for c in current.consts if isinstance(c, Code))
    return lines


def referenced_names(code: Code) -> list[str]:
    """Every name and string constant the code object and its nested ones mention, in
    first-seen order (``os``, ``system``, ``__import__``...)."""
    out: dict[str, None] = {}
    todo: list[Code] = [code]
    seen = 0
    while todo and seen < 64:
        current = todo.pop(0)
        seen += 1
        for n in current.names:
            out.setdefault(n, None)
        for c in current.consts:
            if isinstance(c, str) and len(c) <= 200:
                out.setdefault(c, None)
            elif isinstance(c, Code):
                todo.append(c)
    return list(out)
