"""A symbolic pickle machine: walks an opcode stream the way the C unpickler would, without
executing anything, and reports what loading it would import and call.

Normative summary of the bytes (pickletools, CPython ``Modules/_pickle.c``):
a pickle is a sequence of opcodes, one byte each, some followed by an argument (fixed-width
little-endian integers, length-prefixed byte strings, or newline-terminated text for protocol
0), ending with ``STOP`` (``.``). ``FRAME`` (protocol 4) announces the size of the next
frame; the C unpickler only checks that the frame's bytes exist, so an argument may straddle
a frame boundary there while the Python unpickler refuses it. We follow the C semantics for
what runs and report every straddle as an anomaly.

The machine keeps a symbolic stack, mark stack and memo. Values are Python scalars for
literals, :class:`Global` for imports, :class:`Call` for call results (with the dotted name a
resolver call would produce), :class:`Blob` for large byte strings that were skipped by
seeking, and small capped containers. Every ``GLOBAL``/``STACK_GLOBAL``/``INST`` import, every
call through a resolver (``getattr``, ``import_module``, ``attrgetter``...), ``EXT`` codes, and
structural anomalies become facts. joblib's inline NumPy buffers are skipped using the
``NumpyArrayWrapper`` state, as ``joblib.load`` reads them, so opcodes after a buffer are seen.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import contextlib
import gc
import lzma
import os
import re
import struct
import warnings
import zlib
from collections.abc import Callable
from sys import getsizeof
from typing import Any

from ..allowlist import CallThrough, Identity, call_throughs
from ..limits import Deadline, Limits
from . import walker_engine
from .streams import CHUNK, BudgetExceeded, Source

KEEP_BYTES = 4096  # literal bytes/str longer than this become a Blob placeholder
MAX_LINE = 1 << 16
CONTAINER_CAP = 64
LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C

_unpack_from = struct.unpack_from


class Global:
    """An imported object: ``name`` is the fully dotted path ``module.attr[.attr...]``;
    ``module`` and ``qualname`` are the exact identity ``find_class`` receives; ``key`` is
    the entry in :attr:`StreamResult.globals` that records its use."""

    __slots__ = ("key", "module", "name", "qualname")

    def __init__(self, name: str, module: str | None = None, qualname: str | None = None) -> None:
        self.name = name
        if module is None or qualname is None:
            module, _, qualname = name.rpartition(".")
        self.module = module
        self.qualname = qualname
        self.key = name

    def __repr__(self) -> str:
        return self.name


class Call:
    """The result of calling ``func`` with ``args``.

    ``ref`` is the dotted name of the object the call returns when the callee is a resolver
    (``getattr(os, 'system')`` returns ``os.system``); ``state`` records a later ``BUILD``.
    """

    __slots__ = ("args", "func", "hooks", "kwargs", "ref", "state")

    def __init__(self, func: Any, args: Any, ref: str | None = None) -> None:
        self.func = func
        self.args = args
        self.kwargs: Any = None
        self.ref = ref
        self.state: Any = None
        # entries SETITEM(S) put in this object (a mapping) under keys the unpickler later
        # calls as methods, or under computed keys; see PickleWalker._mapping_items
        self.hooks: list[tuple[Any, Any]] | None = None

    def __repr__(self) -> str:
        return _short(self, 240)


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


_STATM: list[int] = []  # [pid, fd] of this process's /proc/self/statm, kept open


def resident_bytes() -> int:
    """This process's resident memory now (0 where ``/proc`` does not tell). The walker asks
    at every checkpoint (each 64 Ki opcodes): the file stays open (re-opened after a fork,
    whose /proc/self is another process) and is re-read with ``pread``, ~10x cheaper than
    opening it each time."""
    try:
        if not _STATM or _STATM[0] != os.getpid():
            fd = os.open("/proc/self/statm", os.O_RDONLY)  # close-on-exec, as Python opens
            if _STATM:
                with contextlib.suppress(OSError):
                    os.close(_STATM[1])
            _STATM[:] = [os.getpid(), fd]
        return int(os.pread(_STATM[1], 128, 0).split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class Blob:
    """A byte or text string too large to keep; ``offset`` is where it starts in the stream."""

    __slots__ = ("kind", "length", "offset")

    def __init__(self, kind: str, offset: int, length: int) -> None:
        self.kind = kind
        self.offset = offset
        self.length = length

    def __repr__(self) -> str:
        return f"<{self.kind} of {self.length} bytes>"


class Opaque:
    """A value the machine does not model (persistent ids, out-of-band buffers, ext codes)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


class Seq:
    """A list, set or frozenset; keeps its first ``CONTAINER_CAP`` items.

    Contents are only ever needed for call arguments and BUILD states, so a container that is
    nested inside another one drops its contents (``items`` becomes None): a pickle of
    millions of small records then costs memory per record, not per value. ``tree`` counts
    the elements below it with shared references counted every time they occur (what
    ``repr``, ``json.dumps``, ``==`` or ``hash`` visit); see :func:`_subtrees`."""

    __slots__ = ("items", "kind", "total", "tree")

    def __init__(
        self, kind: str, items: list[Any] | None = None, trees: Trees | None = None
    ) -> None:
        self.kind = kind
        self.items: list[Any] | None = []
        self.total = 0
        self.tree = 0
        if items:
            self.extend(items, trees)

    def extend(self, items: list[Any] | tuple[Any, ...], trees: Trees | None = None) -> int:
        """Add ``items``; returns the hashing work they cost (sets only, see ``_subtrees``)."""
        n = len(items)
        self.total += n
        work = 0
        if _HEAVY.isdisjoint(map(type, items)):  # C-speed check, rare slow path
            self.tree += n
        else:
            sub, work = _subtrees(items, trees, self)
            self.tree = min(self.tree + n + sub, TREE_CAP)
            if self.kind == "list":
                work = 0
        mine = self.items
        if mine is not None and len(mine) < CONTAINER_CAP:
            mine.extend(items[: CONTAINER_CAP - len(mine)])
        return work

    def drop(self) -> None:
        self.items = None

    def __repr__(self) -> str:
        return f"<{self.kind} of {self.total}>"


class Dct:
    """A dict. SETITEMS batches are kept as the flat key/value lists the machine already
    built, and turned into a dict (first ``CONTAINER_CAP`` hashable keys) only when read:
    only BUILD states and dtype fields are ever read. ``parts`` is None once the dict was
    nested in another container (see :class:`Seq`)."""

    __slots__ = ("_dict", "parts", "total", "tree")

    def __init__(self) -> None:
        self.parts: list[tuple[Any, ...]] | None = []
        self.total = 0
        self.tree = 0
        self._dict: dict[Any, Any] | None = None

    def set_many(self, flat: list[Any] | tuple[Any, ...], trees: Trees | None = None) -> int:
        """Set ``flat[0]: flat[1], flat[2]: flat[3], ...``; returns the hashing work of the
        keys (see ``_subtrees``)."""
        self.total += len(flat) >> 1
        work = 0
        if _HEAVY.isdisjoint(map(type, flat)):  # C-speed check, rare slow path
            self.tree += len(flat)
        else:
            sub_v, _ = _subtrees(flat[1::2], trees, self)
            sub_k, work = _subtrees(flat[0::2], trees, self)
            self.tree = min(self.tree + len(flat) + sub_k + sub_v, TREE_CAP)
        parts = self.parts
        if parts is not None:
            flat = tuple(flat)  # kept as a tuple: one allocation (the compiled core does too)
            if len(parts) < CONTAINER_CAP:
                parts.append(flat)
                self._dict = None
            elif any(type(k) is str and k in CALLED_KEYS for k in flat[0::2]):
                # rare: a big dict; keep batches naming methods the unpickler calls
                if len(parts) < 2 * CONTAINER_CAP:
                    parts.append(flat)
                    self._dict = None
                else:
                    self.total = -1  # marks "cannot be checked" for BUILD
        return work

    def pairs(self) -> list[tuple[Any, Any]] | None:
        """Every (key, value) kept, in order; None when the contents were not kept."""
        if self.parts is None or self.total < 0 or len(self.parts) >= CONTAINER_CAP:
            return None
        return [(k, v) for flat in self.parts for k, v in zip(flat[0::2], flat[1::2], strict=False)]

    def has_key(self, key: str) -> bool:
        return any(k == key for k, _ in self.pairs() or ())

    def hooks(self) -> list[tuple[str, Any]] | None:
        """The entries whose keys name methods the unpickler looks up on the instance and
        calls (see :data:`CALLED_KEYS`); None when the contents were not kept or a key is
        computed at load time (it could be any of them)."""
        if self.parts is None or self.total < 0:
            return None
        out = []
        for flat in self.parts:
            for k, v in zip(flat[0::2], flat[1::2], strict=False):
                tk = type(k)
                if tk is str:
                    if k in CALLED_KEYS:
                        out.append((k, v))
                elif tk is Call or tk is Opaque or tk is Blob:
                    return None
        return out

    def drop(self) -> None:
        self.parts = None
        self._dict = None

    @property
    def items(self) -> dict[Any, Any] | None:
        """The contents as a dict, or None when they were dropped."""
        if self.parts is None:
            return None
        if self._dict is None:
            out: dict[Any, Any] = {}
            for flat in self.parts:
                it = iter(flat)
                for k, v in zip(it, it, strict=False):
                    if len(out) >= CONTAINER_CAP:
                        break
                    if type(k) is tuple:  # hashing a tuple DAG is exponential: never needed
                        continue
                    with contextlib.suppress(TypeError):
                        out[k] = v
            self._dict = out
        return self._dict

    def get(self, key: str) -> Any:
        items = self.items
        return items.get(key) if items else None

    def __repr__(self) -> str:
        return f"<dict of {self.total}>"


_CONTAINERS = frozenset({Seq, Dct})
# Instance attributes the unpickler looks up with getattr and calls: BUILD calls
# ``inst.__setstate__(state)``; APPEND/APPENDS/ADDITEMS on a non-list/set call ``append``,
# ``extend``, ``add``; ``__class__`` set through a slot state makes a later BUILD call the new
# class's ``__setstate__``. A BUILD state that sets one of them sets what a later opcode calls.
# dict(obj) and OrderedDict(obj) call ``obj.keys()``; file-like protocols call ``read``,
# ``readline``, ``write``.
CALLED_KEYS = frozenset(
    {
        "__setstate__",
        "append",
        "extend",
        "add",
        "__class__",
        "keys",
        "items",
        "values",
        "update",
        "read",
        "readline",
        "write",
    }
)
_HEAVY = frozenset({Seq, Dct, tuple})  # items that can make a container's tree grow
TREE_CAP = 1 << 62
TUPLE_TREES = 4096  # heavy tuples remembered (the heaviest are kept)
# id(tuple) -> (the tuple, its tree): tuples cannot carry a count, so the walker keeps the
# ones whose tree is more than twice their length (only those can make a DAG grow)
Trees = dict[int, tuple[tuple[Any, ...], int]]


def _subtrees(items: Any, trees: Trees | None, owner: Any) -> tuple[int, int]:
    """(elements below ``items``, hashing work of their tuples) and drop the contents of
    nested containers (see :class:`Seq`). A container inside itself adds nothing: ``repr``
    and ``==`` stop at a cycle. The hashing work counts tuples only: ``hash`` of a tuple
    visits its whole tree on every call (not cached in CPython 3.11-3.13), lists and dicts
    are unhashable, and a frozenset caches its hash."""
    sub = 0
    work = 0
    for v in items:
        t = type(v)
        if t is Seq or t is Dct:
            v.drop()
            if v is not owner:
                sub += v.tree
        elif t is tuple:
            w = _tuple_tree(v, trees)
            sub += w
            work += w
    return min(sub, TREE_CAP), min(work, TREE_CAP)


def _subtrees_of_tuple(t: tuple[Any, ...], trees: Trees) -> tuple[int, int]:
    """Like :func:`_subtrees` for a tuple's items, which keep their contents (call
    arguments are read)."""
    sub = 0
    for v in t:
        tv = type(v)
        if tv is Seq or tv is Dct:
            sub += v.tree
        elif tv is tuple:
            sub += _tuple_tree(v, trees)
    return min(sub, TREE_CAP), 0


def _tuple_tree(t: tuple[Any, ...], trees: Trees | None) -> int:
    if trees:
        known = trees.get(id(t))
        if known is not None and known[0] is t:
            return known[1]
    return len(t)


def _short(value: Any, limit: int = 120) -> str:
    """``repr(value)`` cut to ``limit`` characters, built with a budget: a full ``repr`` of
    a shared tuple or call DAG is exponential (see P301), so it is never computed."""
    parts: list[str] = []
    _bounded_repr(value, parts, [limit + 1])
    text = "".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bounded_repr(value: Any, out: list[str], left: list[int]) -> None:
    if left[0] <= 0:
        return
    t = type(value)
    if t is tuple or t is list:
        out.append("(" if t is tuple else "[")
        left[0] -= 1
        for i, v in enumerate(value):
            if left[0] <= 0:
                return
            if i:
                out.append(", ")
                left[0] -= 2
            _bounded_repr(v, out, left)
        if t is tuple and len(value) == 1:
            out.append(",")
        out.append(")" if t is tuple else "]")
        left[0] -= 1
    elif t is Call:
        _bounded_repr(value.func, out, left)
        _bounded_repr(value.args, out, left)
    else:
        text = repr(value) if t is not str or len(value) <= 4 * KEEP_BYTES else repr(value[:4096])
        text = text[: left[0] + 3]
        out.append(text)
        left[0] -= len(text)


class GlobalUse:
    """How one global name was used in a stream (``module``/``qualname``: its identity, for
    imports; None for names reached through a resolver)."""

    __slots__ = (
        "called",
        "count",
        "first_call",
        "inits",
        "module",
        "name",
        "offset",
        "opcode",
        "qualname",
        "spelled",
    )

    def __init__(
        self,
        name: str,
        offset: int,
        opcode: str,
        spelled: str,
        module: str | None = None,
        qualname: str | None = None,
    ) -> None:
        self.name = name
        self.module = module
        self.qualname = qualname
        self.offset = offset
        self.opcode = opcode
        self.spelled = spelled
        self.count = 0
        self.called = 0
        # calls with ``__call__`` semantics (a class's ``__init__`` runs with the call's
        # arguments), as opposed to ``cls.__new__(cls)`` (NEWOBJ, copyreg.__newobj__)
        self.inits = 0
        self.first_call: str | None = None


class StreamResult:
    """Everything one pickle stream (up to its ``STOP`` or its first error) revealed."""

    __slots__ = (
        "anomalies",
        "code_objects",
        "derived_calls",
        "embedded",
        "end",
        "error",
        "error_kind",
        "error_offset",
        "ext_codes",
        "file_refs",
        "globals",
        "opcodes",
        "proto",
        "start",
        "stopped",
        "tensors",
        "top",
    )

    def __init__(self, start: int) -> None:
        self.start = start
        self.end = 0
        self.stopped = False
        self.error: str | None = None
        self.error_kind: str | None = None
        self.error_offset: int | None = None
        self.top: Any = None
        self.opcodes = 0
        self.proto = 0
        self.globals: dict[str, GlobalUse] = {}
        self.derived_calls: dict[str, GlobalUse] = {}
        self.ext_codes: dict[int, int] = {}
        self.anomalies: list[tuple[str, int, str]] = []
        self.embedded: list[tuple[int, int, str, bytes | None]] = []
        # (offset, loader, file name) of files loading reads next to the pickle
        self.file_refs: list[tuple[int, str, str]] = []
        self.tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
        # (offset, constructor, arguments) of code objects loading builds from raw bytecode
        # (dill's _create_code, types.CodeType, cloudpickle's _builtin_type('CodeType'))
        self.code_objects: list[tuple[int, str, tuple[Any, ...]]] = []


class Reader:
    """A forward window over a :class:`Source`: the walker indexes ``buf`` directly."""

    __slots__ = ("base", "buf", "pos", "src")

    file_mode = False  # True for :class:`FileReader`

    def __init__(self, src: Source) -> None:
        self.src = src
        self.buf = b""
        self.pos = 0
        self.base = src.tell()

    def fill(self, need: int) -> bool:
        """Make ``need`` bytes available at ``pos``; False at end of stream."""
        have = len(self.buf) - self.pos
        if have >= need:
            return True
        more = self.src.read(max(CHUNK, need - have))
        self.base += self.pos
        self.buf = self.buf[self.pos :] + more
        self.pos = 0
        return len(self.buf) >= need

    def skip(self, n: int) -> bool:
        have = len(self.buf) - self.pos
        if n <= have:
            self.pos += n
            return True
        rest = n - have
        self.base += len(self.buf)
        self.buf = b""
        self.pos = 0
        got = self.src.skip(rest)
        self.base += got
        return got == rest

    def tell(self) -> int:
        return self.base + self.pos

    def at_eof(self) -> bool:
        return not self.fill(1)

    def need(
        self, pos: int, k: int, what: str = "stream ends inside an opcode argument"
    ) -> tuple[bytes, int, int, int]:
        """Refill so ``k`` bytes follow ``pos``; returns the walker's new buffer locals."""
        self.pos = pos
        if not self.fill(k):
            self.pos = len(self.buf)
            raise PickleError("pickle-truncated", what)
        return self.buf, self.pos, len(self.buf), self.base

    def readline(self, pos: int) -> tuple[bytes, bytes, int, int, int]:
        """A newline-terminated protocol 0 argument (at most 64 KiB)."""
        while True:
            i = self.buf.find(b"\n", pos)
            if i >= 0:
                return self.buf[pos:i], self.buf, i + 1, len(self.buf), self.base
            if len(self.buf) - pos > MAX_LINE:
                self._skip_line(pos)
            _, pos, _, _ = self.need(
                pos, len(self.buf) - pos + 1, "stream ends inside a text argument"
            )

    def _skip_line(self, pos: int) -> None:
        """Python's unpickler has no limit on a text argument; this reader keeps at most
        ``MAX_LINE`` bytes of one. Read on to its newline keeping nothing, then raise
        :class:`LongLine` (never cut the stream short)."""
        start = self.base + pos
        self.pos = len(self.buf)
        while True:
            if not self.fill(1):
                raise PickleError("pickle-truncated", "stream ends inside a text argument")
            i = self.buf.find(b"\n", self.pos)
            if i >= 0:
                self.pos = i + 1
                raise LongLine(start, self.base + i - start)
            self.pos = len(self.buf)

    def take(
        self, pos: int, n: int, kind: str, start: int
    ) -> tuple[bytes | Blob, bytes, int, int, int]:
        """A length-prefixed payload after the length field ending at ``pos``: kept when
        short, otherwise skipped without copying and returned as a :class:`Blob`."""
        if n < 0:
            raise PickleError("pickle-invalid", f"negative {kind} length")
        if n <= KEEP_BYTES:
            if pos + n > len(self.buf):
                self.need(pos, n, f"{kind} of {n} bytes runs past the end")
                pos = self.pos
            data = self.buf[pos : pos + n]
            return data, self.buf, pos + n, len(self.buf), self.base
        offset = self.base + pos - start
        self.pos = pos
        if not self.skip(n):
            self.pos = len(self.buf)
            raise PickleError("pickle-truncated", f"{kind} of {n} bytes runs past the end")
        return Blob(kind, offset, n), self.buf, self.pos, len(self.buf), self.base


MAX_FRAME_WINDOW = 64 << 20  # a FRAME larger than this is not modelled as a file-read window


class FileReader(Reader):
    """The reads of ``pickle.load(file)`` by the C unpickler on a file object without
    ``peek`` (``io.BytesIO``: what ``torch.load`` runs on ``data.pkl``), or on a buffered file
    whose buffer holds less than the frame (frames of 128 KiB or more, always).

    ``Modules/_pickle.c`` (3.8-3.14): ``load_frame`` calls ``_Unpickler_Read(frame_len)``.
    When the frame is not already in the input buffer, ``_Unpickler_ReadImpl`` ->
    ``_Unpickler_ReadFromFile`` calls ``file.read(frame_len)`` and the result *becomes* the
    input buffer (the *window*); ``next_read_idx`` is rewound to its start. Later reads:

    - ``_Unpickler_Read(n)`` (an opcode byte, integer and length fields, str/unicode/long
      payloads) that does not fit in what is left of the window calls ``file.read(n)``: the
      rest of the window is **dropped** and the ``n`` bytes come from after the frame;
    - ``_Unpickler_Readline`` (text arguments) with no newline left in the window calls
      ``file.readline()``: the same drop;
    - ``_Unpickler_ReadInto`` (bytes/bytearray payloads) copies what is left, then reads
      the rest from the file: no drop;
    - a ``FRAME`` whose length fits in what is left of the window is ignored; a longer one
      drops the rest and reads the new window from after the old one.

    ``pickle.loads(data)`` has one window, the whole input, so frames never matter there;
    that is what :class:`Reader` models. Every drop is recorded in ``drops`` as
    ``(offset, dropped bytes, what was read)``.
    """

    __slots__ = ("drops", "rest", "rest_at", "wend")

    file_mode = True

    def __init__(self, src: Source) -> None:
        super().__init__(src)
        self.wend = -1  # absolute end of the current window, -1 when there is none
        self.rest = b""  # bytes already read from ``src`` after the window ...
        self.rest_at = 0  # ... starting at this index of ``rest``
        self.drops: list[tuple[int, int, str]] = []

    def _close(self, pos: int, what: str | None) -> int:
        """End the window at ``pos``: drop what is left of it (when ``what`` says which read
        did), or, for ``what=None``, keep it in front of the bytes that follow (ReadInto)."""
        left = len(self.buf) - pos
        if left and what is not None:
            self.drops.append((self.base + pos, left, what))
            left = 0
        if left:  # continue through the window's end
            self.buf = self.buf[pos:] + self.rest[self.rest_at :]
            self.pos = 0
            self.base = self.wend - left
        else:  # go on with the bytes after the window
            self.buf, self.pos = self.rest, self.rest_at
            self.base = self.wend - self.rest_at
        self.rest, self.rest_at, self.wend = b"", 0, -1
        return self.pos

    def frame(self, pos: int, flen: int) -> tuple[bytes, int, int, int]:
        """A FRAME of ``flen`` bytes whose argument ends at ``pos``; returns the walker's
        buffer locals."""
        at = self.base + pos
        if flen == 0 or (self.wend >= 0 and at + flen <= self.wend):
            self.pos = pos
        else:
            if self.wend >= 0:
                pos = self._close(pos, f"a FRAME of {flen} bytes")
            if flen > MAX_FRAME_WINDOW:
                raise PickleError(
                    "pickle-frame-straddle", f"a FRAME of {flen} bytes is too large to model"
                )
            have = len(self.buf) - pos
            if flen <= have:
                window = self.buf[pos : pos + flen]
                self.rest, self.rest_at = self.buf, pos + flen
            else:
                window = self.buf[pos:] + self.src.read(flen - have)
                if len(window) < flen:
                    self.pos = len(self.buf)
                    raise PickleError(
                        "pickle-truncated", f"a FRAME of {flen} bytes runs past the end"
                    )
                self.rest, self.rest_at = b"", 0
            self.base += pos
            self.buf, self.pos, self.wend = window, 0, self.base + flen
        return self.buf, self.pos, len(self.buf), self.base

    def need(
        self, pos: int, k: int, what: str = "stream ends inside an opcode argument"
    ) -> tuple[bytes, int, int, int]:
        if self.wend >= 0:
            pos = self._close(pos, f"a read of {k} bytes")
        return super().need(pos, k, what)

    def readline(self, pos: int) -> tuple[bytes, bytes, int, int, int]:
        if self.wend >= 0 and self.buf.find(b"\n", pos) < 0:
            pos = self._close(pos, "a text argument")
        return super().readline(pos)

    def take(
        self, pos: int, n: int, kind: str, start: int
    ) -> tuple[bytes | Blob, bytes, int, int, int]:
        if self.wend >= 0 and pos + n > len(self.buf):
            into = kind in ("bytes", "bytearray")
            pos = self._close(pos, None if into else f"a {kind} of {n} bytes")
        return super().take(pos, n, kind, start)

    def fill(self, need: int) -> bool:
        if self.wend >= 0 and len(self.buf) - self.pos < need:
            self._close(self.pos, None)
        return super().fill(need)

    def skip(self, n: int) -> bool:
        if self.wend >= 0 and len(self.buf) - self.pos < n:
            self._close(self.pos, None)
        return super().skip(n)


class Memo:
    """The unpickler's memo: a list while keys arrive densely from 0 (what MEMOIZE and
    picklers produce), with a dict for any other keys. ``size()`` counts distinct keys, as
    ``len(memo)`` does in the unpickler, so MEMOIZE indices match.

    ``nbytes()`` estimates the memory the memo holds (``Limits.max_memo_bytes``): each value's
    ``sys.getsizeof`` plus ``ENTRY_BYTES``, counted once per key as it arrives (dense keys in
    batches, when the machine checks its budgets; overwrites and sparse keys at once). Shared
    values are counted every time (picklers never memoise one object twice), containers'
    own lists are the ``ENTRY_BYTES`` part, so the estimate stays within 0.8-2x of the real
    size: 30 M memoised floats estimate 1.9 GiB and stop near 4 M."""

    __slots__ = ("counted", "extra", "items", "sizes", "spill")

    ENTRY_BYTES = 40

    def __init__(self, sizes: Callable[[list[Any], int], int] | None = None) -> None:
        # the compiled core's sum of getsizeof over items[start:], or None
        self.sizes = sizes
        self.items: list[Any] = []
        self.spill: dict[int, Any] = {}
        self.counted = 0  # entries of ``items`` already in ``extra``
        self.extra = 0  # bytes counted so far

    def size(self) -> int:
        return len(self.items) + len(self.spill)

    def nbytes(self) -> int:
        items = self.items
        n = len(items) - self.counted
        if n > 0:
            sizes = self.sizes
            new = (
                sizes(items, self.counted) if sizes else sum(map(getsizeof, items[self.counted :]))
            )
            self.extra += new + n * self.ENTRY_BYTES
            self.counted = len(items)
        return self.extra

    def put(self, idx: int, value: Any) -> None:
        items = self.items
        if idx < len(items):
            items[idx] = value
            if idx < self.counted:  # a value replaced after it was counted
                self.extra += getsizeof(value) + self.ENTRY_BYTES
        elif idx == len(items):
            items.append(value)
            spill = self.spill
            if spill:
                spill.pop(idx, None)
                while len(items) in spill:
                    items.append(spill.pop(len(items)))
        else:
            self.spill[idx] = value
            self.extra += getsizeof(value) + 2 * self.ENTRY_BYTES  # a dict entry, an int key

    def get(self, idx: int) -> Any:
        if idx < len(self.items):
            return self.items[idx]
        try:
            return self.spill[idx]
        except KeyError:
            raise PickleError(
                "pickle-memo-missing", f"memo key {idx} read before it was set"
            ) from None


class PickleError(Exception):
    """Raised inside the walk for a stream the real unpickler would reject."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class LongLine(PickleError):
    """A protocol 0 text argument longer than ``MAX_LINE`` was skipped up to its newline
    (bytes read, none kept); the reader stands after it. ``offset`` is where it started.
    Opcodes whose argument may be that long (INT, LONG, STRING, UNICODE) catch it; for the
    others (a module name of megabytes) it ends the stream like any invalid argument."""

    def __init__(self, offset: int, length: int) -> None:
        super().__init__("pickle-invalid", f"text argument of {length} bytes")
        self.offset = offset
        self.length = length


# dtype kind letter -> bytes per unit (numbers after the letter count units)
_DTYPE_UNIT = {
    "b": 1,
    "i": 1,
    "u": 1,
    "f": 1,
    "c": 1,
    "m": 1,
    "M": 1,
    "S": 1,
    "a": 1,
    "V": 1,
    "U": 4,
    "?": 1,
    "e": 2,
    "d": 8,
    "g": 16,
    "l": 8,
    "q": 8,
    "h": 2,
}
_DTYPE_RE = re.compile(r"^[<>|=]?([a-zA-Z?])(\d*)$")
_RESOLVERS_GETATTR = frozenset(
    {
        "builtins.getattr",
        "inspect.getattr_static",
        "builtins.object.__getattribute__",
        "builtins.type.__getattribute__",
        "operator.getitem",
        "_operator.getitem",
    }
)
_RESOLVERS_IMPORT = frozenset(
    {
        "importlib.import_module",
        "builtins.__import__",
        "importlib.__import__",
        "importlib._bootstrap._gcd_import",
    }
)
_RESOLVERS_NAME = frozenset({"pkgutil.resolve_name"})
_RESOLVERS = _RESOLVERS_GETATTR | _RESOLVERS_IMPORT | _RESOLVERS_NAME
_ATTRGETTERS = frozenset({"operator.attrgetter", "_operator.attrgetter"})
_METHODCALLERS = frozenset({"operator.methodcaller", "_operator.methodcaller"})
_PARTIALS = frozenset({"functools.partial", "_functools.partial", "functools.partialmethod"})
MAX_PARTIAL_DEPTH = 8
NESTED_LOADERS = frozenset(
    {
        "pickle.loads",
        "_pickle.loads",
        "pickle._loads",
        "cloudpickle.loads",
        "dill.loads",
        "dill._dill.loads",
        "joblib.load",
        "torch.load",
        "torch.serialization.load",
        "marshal.loads",
        "numpy.load",
        "torch.storage._load_from_bytes",
    }
)


_CALL_THROUGHS: list[dict[Identity, CallThrough]] = []


def _call_through_table() -> dict[Identity, CallThrough]:
    """The shipped call-through table (``rules/allowlist/call-through.json``), read once."""
    if not _CALL_THROUGHS:
        _CALL_THROUGHS.append(call_throughs())
    return _CALL_THROUGHS[0]


CODE_CONSTRUCTORS = frozenset({"types.CodeType", "dill._dill._create_code"})
# functions returning a builtin type by name: ``_builtin_type('CodeType')`` is types.CodeType
_TYPE_BY_NAME = frozenset(
    {
        "cloudpickle.cloudpickle._builtin_type",
        "cloudpickle.cloudpickle_fast._builtin_type",
        "dill._dill._load_type",
    }
)


def _code_constructor(func: Any, callee: str | None) -> str | None:
    """The code-object constructor ``func`` is, if it is one (for evidence: the bytecode)."""
    if callee in CODE_CONSTRUCTORS:
        return callee
    if type(func) is Call and ref_of(func.func) in _TYPE_BY_NAME and func.args == ("CodeType",):
        return f"{ref_of(func.func)}('CodeType')"
    return None


def ref_of(value: Any) -> str | None:
    """The dotted name of what ``value`` is, if the machine can tell."""
    t = type(value)
    if t is Global:
        return value.name  # type: ignore[no-any-return]
    if t is Call:
        return value.ref  # type: ignore[no-any-return]
    return None


def normalise_global(module: str, name: str) -> tuple[str, str]:
    """The identity ``find_class(module, name)`` resolves, with Python 2 names mapped."""
    key = (module, name)
    if key in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[key]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return module, name


def dtype_itemsize(dtype: Any) -> tuple[int, bool] | None:
    """(itemsize, has_objects) of a symbolic ``numpy.dtype(...)`` call, or None if unknown."""
    if type(dtype) is not Call or type(dtype.args) is not tuple or not dtype.args:
        return None
    spec = dtype.args[0]
    if not isinstance(spec, str):
        return None
    state = dtype.state
    has_objects = spec.lstrip("<>|=").startswith("O")
    if type(state) is tuple and len(state) >= 8:
        fields = state[4]
        if type(fields) is Dct:
            if fields.items is None:
                return None
            for sub in fields.items.values():
                if type(sub) is tuple and sub:
                    inner = dtype_itemsize(sub[0])
                    if inner is None:
                        return None
                    has_objects = has_objects or inner[1]
        elsize = state[5]
        if isinstance(elsize, int) and elsize > 0 and not has_objects:
            return elsize, False
    if has_objects:
        return 8, True
    m = _DTYPE_RE.match(spec)
    if not m:
        return None
    kind, count = m.group(1), m.group(2)
    unit = _DTYPE_UNIT.get(kind)
    if unit is None:
        return None
    if kind in ["e", "d", "g", "l", "q", "h", "?"]:
        return unit, False
    return unit * int(count or "1"), False


def _pop_mark(stack: list[Any], marks: list[int]) -> list[Any]:
    if not marks:
        raise PickleError("pickle-invalid", "MARK expected but not found")
    k = marks.pop()
    items = stack[k:]
    del stack[k:]
    return items


def _text(data: Any, how: str) -> Any:
    if type(data) is Blob:
        return data
    try:
        return data.decode("utf-8", "surrogatepass") if how == "utf-8" else data.decode("latin-1")
    except UnicodeDecodeError as exc:
        raise PickleError("pickle-invalid", f"undecodable string: {exc}") from None


def _unescape(body: bytes) -> str:
    """A protocol 0 STRING body, unescaped as the unpickler does; invalid escapes make
    ``codecs`` warn, which must not become an error under ``-W error``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return codecs.escape_decode(body)[0].decode("latin-1")


def _text_int(line: bytes, long: bool) -> Any:
    if not long and line in (b"00", b"01"):
        return line == b"01"
    if long and line.endswith(b"L"):
        line = line[:-1]
    if len(line) > 4300:
        return Opaque("int")
    try:
        return int(line, 0)
    except ValueError:
        try:
            return int(line)
        except ValueError:
            raise PickleError("pickle-invalid", "INT/LONG argument is not a number") from None


def _mapping_items(target: Call, flat: list[Any] | tuple[Any, ...]) -> None:
    """SETITEM(S) on an object built by a call (an OrderedDict, a dict subclass): keep the
    entries whose keys the unpickler may later call as methods when the object is used as
    a BUILD state (see :data:`CALLED_KEYS`), and computed keys (they could be any)."""
    for i in range(0, len(flat) - 1, 2):
        if _hook_key(flat[i]):
            hooks = target.hooks
            if hooks is None:
                hooks = target.hooks = []
            if len(hooks) < CONTAINER_CAP:
                hooks.append((flat[i], flat[i + 1]))


def _hook_key(key: Any) -> bool:
    """A key that names a method the unpickler calls on an instance, or one computed at
    load time (it could name any)."""
    tk = type(key)
    return (tk is str and key in CALLED_KEYS) or tk is Call or tk is Opaque or tk is Blob


# mapping types a stream can build as a BUILD state from a list of pairs
_MAPPING_CTORS = frozenset(
    {"builtins.dict", "collections.OrderedDict", "collections.defaultdict", "collections.Counter"}
)


def _call_state_hooks(state: Any) -> list[tuple[Any, Any]] | None:
    """The method-name entries of a BUILD state that is an object built by a call: what
    SETITEM(S) put in it, plus, for a mapping built from a list of pairs (``dict(pairs)``),
    the pairs. None when the pairs were not kept."""
    if type(state) is not Call:
        return []
    hooks = list(state.hooks or ())
    if ref_of(state.func) in _MAPPING_CTORS and type(state.args) is tuple:
        for arg in state.args:
            if type(arg) is Seq or type(arg) is tuple:
                pairs: Any = arg
                if type(arg) is Seq:
                    if arg.items is None or arg.total > len(arg.items):
                        return None
                    pairs = arg.items
                for pair in pairs:
                    if type(pair) is tuple and len(pair) == 2:
                        if _hook_key(pair[0]):
                            hooks.append(pair)
                    elif type(pair) is not tuple:
                        return None
            elif type(arg) is Dct:
                inner = arg.hooks()
                if inner is None:
                    return None
                hooks.extend(inner)
            elif arg is not None and not isinstance(arg, (int, str)):
                return None
    return hooks


def _persistent_class(func: Any) -> Any:
    """Legacy ``torch.save`` stores a module's class as the persistent id
    ``('module', cls, source_file, source)``, and its loader returns ``cls``
    (torch/serialization.py ``_legacy_load.persistent_load``, ``typename == "module"``):
    calling that object calls ``cls``."""
    if type(func) is Call and type(func.func) is Opaque and func.func.what == "persistent_load":
        pid = func.args[0] if type(func.args) is tuple and func.args else None
        if type(pid) is tuple and len(pid) > 1 and pid[0] == "module" and type(pid[1]) is Global:
            return pid[1]
    return func


def _resolve_call(func: Any, args: Any) -> tuple[str | None, str | None]:
    """(name of what is really called, name of what the call returns) for resolver patterns."""
    fname = ref_of(func)
    if type(func) is Call:
        inner = ref_of(func.func)
        fargs = func.args if type(func.args) is tuple else ()
        if inner in _ATTRGETTERS and fargs and isinstance(fargs[0], str):
            target = ref_of(args[0]) if type(args) is tuple and args else None
            return fname, f"{target or '?'}.{fargs[0]}"
        if inner in _METHODCALLERS and fargs and isinstance(fargs[0], str):
            target = ref_of(args[0]) if type(args) is tuple and args else None
            return f"{target or '?'}.{fargs[0]}", None
        if inner in _PARTIALS and fargs:
            return ref_of(fargs[0]), None
    if fname is None or type(args) is not tuple:
        return fname, None
    if fname in _RESOLVERS_GETATTR and len(args) >= 2 and isinstance(args[1], str):
        base = ref_of(args[0])
        return fname, f"{base or '?'}.{args[1]}"
    if fname in _RESOLVERS_IMPORT and args and isinstance(args[0], str):
        return fname, args[0]
    if fname in _RESOLVERS_NAME and args and isinstance(args[0], str):
        return fname, args[0].replace(":", ".")
    return fname, None


MAX_TENSORS = 1_000_000
_REBUILD_TENSOR = frozenset(
    {
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v3",
    }
)
_REBUILD_WRAPPERS = frozenset(
    {"torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"}
)


class PickleWalker:
    """Walks one pickle stream from the reader's position to its ``STOP``.

    ``run()`` never raises for hostile input: errors end the stream and are recorded in the
    :class:`StreamResult`, after everything seen before them.
    """

    def __init__(
        self, reader: Reader, limits: Limits, deadline: Deadline, opcode_budget: list[int]
    ) -> None:
        self.r = reader
        self.limits = limits
        self.deadline = deadline
        self.budget = opcode_budget  # shared across stacked streams: [remaining]
        self.res = StreamResult(start=reader.tell())
        self.trees: Trees = {}  # heavy tuples (see _subtrees)
        self.hashed = 0  # hashing work of tuple keys and set items so far
        self.expanded = False
        self.rss_start = resident_bytes()
        # the compiled core for runs of data opcodes, or None (see walker_engine)
        self.core = walker_engine.core()

    # -- facts -------------------------------------------------------------------------
    def _anomaly(self, kind: str, offset: int, message: str) -> None:
        if len(self.res.anomalies) < 100:
            self.res.anomalies.append((kind, offset, message))

    def _use(self, module: str, qualname: str, offset: int, opcode: str, spelled: str) -> Global:
        name = f"{module}.{qualname}" if module else qualname
        glob = Global(name, module, qualname)
        uses = self.res.globals
        g = uses.get(name)
        if g is not None and (g.module, g.qualname) != (module, qualname):
            # the same dotted name walked from another module: a different identity
            glob.key = f"{module}:{qualname}"
            g = uses.get(glob.key)
        if g is None:
            g = uses[glob.key] = GlobalUse(name, offset, opcode, spelled, module, qualname)
        g.count += 1
        return glob

    def _called(
        self, func: Any, args: Any, offset: int, opcode: str, depth: int = 0, kwargs: Any = None
    ) -> Call:
        if type(func) is Global and func.name not in _RESOLVERS:
            # the common case, what _resolve_call and _code_constructor decide for it
            callee: str | None = func.name
            produced = None
            ctor = callee if callee in CODE_CONSTRUCTORS else None
        else:
            func = _persistent_class(func)
            if type(func) is Call and ref_of(func.func) in _PARTIALS and depth < MAX_PARTIAL_DEPTH:
                # calling partial(f, *a, **k) with b calls f(*a, *b, **k); the call with no b
                # was judged when the partial was built
                fargs = func.args if type(func.args) is tuple else ()
                if fargs and ((type(args) is tuple and args) or kwargs is not None):
                    extra = args if type(args) is tuple else ()
                    merged = kwargs if kwargs is not None else func.kwargs
                    self._called(fargs[0], (*fargs[1:], *extra), offset, opcode, depth + 1, merged)
                return Call(func, args)
            callee, produced = _resolve_call(func, args)
            ctor = _code_constructor(func, callee)
        if ctor is not None and type(args) is tuple and len(self.res.code_objects) < 32:
            self.res.code_objects.append((offset, ctor, args))
        call = Call(func, args, produced)
        call.kwargs = kwargs
        if callee is None:
            if type(func) is Call:
                self._anomaly(
                    "pickle-call-of-object",
                    offset,
                    f"{opcode} calls the object built by `{_short(func, 80)}`, "
                    "whose code cannot be checked",
                )
            return call
        target = self.res.globals.get(func.key) if type(func) is Global else None
        if target is None:
            derived = self.res.derived_calls.get(callee)
            if derived is None:
                derived = self.res.derived_calls[callee] = GlobalUse(callee, offset, opcode, callee)
            derived.count += 1
            target = derived
        target.called += 1
        if opcode != "NEWOBJ" and opcode != "NEWOBJ_EX":
            target.inits += 1
        if target.first_call is None:
            shown = args if type(args) is tuple else (args,)
            target.first_call = f"{callee}({', '.join(_short(a, 80) for a in shown)})"
        if callee in NESTED_LOADERS and type(args) is tuple and args:
            self._embed(args[0], callee, offset)
        if type(func) is Global:
            through = _call_through_table().get((func.module, func.qualname))
            if through is not None:
                self._check_call_through(through, call, offset, opcode)
                if kwargs is not None:
                    self._check_keywords(through, kwargs, offset, opcode)
            bound = func.name in _PARTIALS and type(args) is tuple and args
            if bound and depth < MAX_PARTIAL_DEPTH:
                # the partial calls its function with the bound arguments later (defaultdict
                # factory, __setstate__, a user's call): judge that call now
                self._called(args[0], tuple(args[1:]), offset, "partial", depth + 1, kwargs)
        return call

    def _check_keywords(self, through: CallThrough, kwargs: Any, offset: int, op: str) -> None:
        """Keyword arguments of a call-through (NEWOBJ_EX, a partial's keywords): the table
        names positions, so every keyword value is judged by the strictest use the callable
        makes of any argument. Keywords the walker cannot read cannot be checked."""
        callee = f"{through.identity[0]}.{through.identity[1]}"
        if kwargs is None or (type(kwargs) is Dct and kwargs.total == 0):
            return
        pairs = kwargs.pairs() if type(kwargs) is Dct else None
        if pairs is None:
            self._unchecked(callee, "keyword arguments", kwargs, offset)
            return
        uses = set(through.args.values())
        for key, value in pairs:
            tv = type(value)
            if tv is Global and uses & {"calls", "class"}:
                self._mark_called(value, f"{callee}({key}={value.name})", offset, op)
            elif tv is Blob or isinstance(value, bytes):
                if "payload" in uses:
                    self._embed(value, callee, offset)
            elif (tv is Opaque or (tv is Call and ref_of(value.func) not in _PARTIALS)) and (
                uses & {"calls", "class", "payload"}
            ):
                self._unchecked(callee, f"its keyword {key}", value, offset)

    def _mark_called(
        self, value: Global, shown: str, offset: int, op: str, *, init: bool = True
    ) -> None:
        """Record that loading calls the imported ``value`` (``init``: with ``__call__``
        semantics, so a class's ``__init__`` runs, not only ``__new__``)."""
        used = self.res.globals.get(value.key) or self.res.globals.setdefault(
            value.key, GlobalUse(value.name, offset, op, value.name, value.module, value.qualname)
        )
        used.called += 1
        used.inits += init
        used.first_call = used.first_call or shown

    def _embed(self, blob: Any, loader: str, offset: int) -> None:
        if type(blob) is Blob:
            self.res.embedded.append((blob.offset, blob.length, loader, None))
        elif isinstance(blob, bytes):
            self.res.embedded.append((offset, len(blob), loader, blob))

    def _build(self, obj: Call, state: Any, offset: int) -> None:
        """``BUILD`` on an object made by a call. ``partial.__setstate__((f, args, kw, d))``
        replaces the wrapped function; a state that stores a method the unpickler later
        calls (``__setstate__``, ``append``...) makes that value called; classes whose
        loading reads their state (call-through ``state``) are checked."""
        if ref_of(obj.func) in _PARTIALS:
            if type(state) is tuple and state:
                bound = state[1] if len(state) > 1 and type(state[1]) is tuple else ()
                keywords = state[2] if len(state) > 2 and state[2] is not None else None
                obj.args = (state[0], *bound)
                obj.kwargs = keywords
                self._called(state[0], bound, offset, "partial", kwargs=keywords)
            return
        if type(state) is tuple and len(state) == 2:  # (dict state, slot state)
            dicts = [d for d in state if d is not None]
            slots = state[1]
            if type(slots) is Dct and slots.has_key("__dict__"):
                # setattr(obj, '__dict__', d) swaps in a dict whose later contents the
                # walker does not follow
                self._unchecked("BUILD", "a slot state that replaces __dict__", slots, offset)
        elif type(state) in (Dct, Call):
            dicts = [state]
        else:
            dicts = []
        for d in dicts:
            hooks = d.hooks() if type(d) is Dct else _call_state_hooks(d)
            if hooks is None:
                # a state the walker cannot read key by key (nested elsewhere, keys computed,
                # a mapping built from pairs it did not keep): what it sets cannot be checked
                if type(d) is not Dct or d.total:
                    self._unchecked("BUILD", "a state it cannot read key by key", d, offset)
                continue
            if any(type(k) is not str for k, _ in hooks):
                self._unchecked("BUILD", "a state with keys computed at load time", d, offset)
                continue
            for key, value in hooks:
                tv = type(value)
                if tv is Global:
                    if value.name in NESTED_LOADERS or (
                        (value.module, value.qualname) in _call_through_table()
                    ):
                        # what a later opcode passes to it is not paired with this BUILD
                        self._unchecked(
                            "BUILD", f"state {key} set to a call-through", value, offset
                        )
                    self._mark_called(value, f"BUILD sets `{key}` to {value.name}", offset, "BUILD")
                elif tv is Opaque:
                    self._unchecked("BUILD", f"state {key}", value, offset)
        if type(obj.func) is Global and type(state) is Dct:
            self._check_state(obj.func, state, offset)

    def _check_call_through(self, through: CallThrough, call: Call, offset: int, op: str) -> None:
        """An allowed callable that uses an argument: a function or class it calls becomes a
        called global (judged by the allowlist like any other), a payload it deserializes
        must be literal bytes (scanned as embedded), a name it resolves becomes an import.
        What cannot be checked is an anomaly."""
        args = call.args if type(call.args) is tuple else ()
        callee = f"{through.identity[0]}.{through.identity[1]}"
        for where, use in through.args.items():
            if not isinstance(where, int) or where >= len(args):
                continue
            value = args[where]
            tv = type(value)
            if use in ("calls", "class"):
                if tv is Global:
                    shown = f"{callee}(..., {value.name}, ...)"
                    self._mark_called(value, shown, offset, op, init=use == "calls")
                elif tv is Call and value.ref is not None:
                    name = value.ref
                    derived = self.res.derived_calls.setdefault(
                        name, GlobalUse(name, offset, op, name)
                    )
                    derived.count += 1
                    derived.called += 1
                    derived.inits += use == "calls"
                    derived.first_call = derived.first_call or f"{callee}(... {name} ...)"
                elif tv is Opaque or (
                    use == "calls" and tv is Call and ref_of(value.func) not in _PARTIALS
                ):
                    # a partial was judged when it was built; other objects built by the
                    # stream have code the walker cannot see
                    self._unchecked(callee, where, value, offset)
            elif use == "payload":
                if tv is not Blob and not isinstance(value, bytes):
                    self._unchecked(callee, where, value, offset)
            elif use == "resolves-module":
                name_at = next((k for k, u in through.args.items() if u == "resolves-name"), None)
                qual = args[name_at] if isinstance(name_at, int) and name_at < len(args) else None
                if isinstance(value, str) and isinstance(qual, str):
                    found = self._use(value, qual, offset, op, f"{value} {qual} via {callee}")
                    call.ref = found.name
                else:
                    self._unchecked(callee, where, value, offset)

    def _check_state(self, cls: Global, state: Dct, offset: int) -> None:
        """``BUILD`` on an instance of an allowed class whose loading reads its state: a class
        named there is instantiated, a file named there is read next to the pickle."""
        through = _call_through_table().get((cls.module, cls.qualname))
        if through is None or not through.state:
            return
        callee = f"{cls.module}.{cls.qualname}"
        for key, use in through.state.items():
            value = state.get(key)
            if value is None:
                continue
            if use == "class" and type(value) is Global:
                shown = f"{callee} state {key}={value.name}"
                self._mark_called(value, shown, offset, "BUILD", init=False)
            elif use == "sibling-file":
                if not isinstance(value, str):
                    self._unchecked(callee, f"its state {key}", value, offset)
                else:
                    self.res.file_refs.append((offset, callee, value))

    def _unchecked(self, callee: str, where: int | str, value: Any, offset: int) -> None:
        self._anomaly(
            "pickle-unchecked-call-through",
            offset,
            f"`{callee}` uses {f'its argument {where}' if isinstance(where, int) else where} "
            f"({_short(value, 80)}), which cannot be checked",
        )

    # -- expansion (P301) --------------------------------------------------------------------
    def _note_tuple(self, t: tuple[Any, ...], ops: int, offset: int) -> None:
        """Remember a tuple whose tree is more than twice its length (only those can make a
        DAG grow: a level that is not remembered counts as its length, at most half its
        tree); when too many are remembered, keep the heaviest half."""
        sub, _ = _subtrees_of_tuple(t, self.trees)
        tree = min(len(t) + sub, TREE_CAP)
        if tree <= 2 * len(t):
            return
        trees = self.trees
        trees[id(t)] = (t, tree)
        if len(trees) > TUPLE_TREES:
            keep = sorted(trees.items(), key=lambda kv: kv[1][1])[TUPLE_TREES // 2 :]
            trees.clear()
            trees.update(keep)
        if tree > self.limits.max_expansion:
            self._grew(tree, 0, ops, offset)

    def _grew(self, tree: int, work: int, ops: int, offset: int) -> int:
        """A container reached ``tree`` elements (shared references counted each time), or
        hashing at load cost ``work`` more. Past the budget, and past 16 elements per
        opcode walked (a benign pickle writes every element it holds), that is an expansion
        pickle; returns the size the loop checks next."""
        if self.expanded:
            return TREE_CAP
        self.hashed = min(self.hashed + work, TREE_CAP)
        budget = max(self.limits.max_expansion, 16 * ops)
        if self.hashed > budget:
            self.expanded = True
            self._anomaly(
                "pickle-expansion",
                offset,
                f"loading hashes tuples with {self.hashed:,} elements in all (shared "
                f"references counted each time) after {ops:,} opcodes: the load hangs",
            )
        elif tree > budget:
            self.expanded = True
            self._anomaly(
                "pickle-expansion",
                offset,
                f"a container expands to {tree:,} elements (shared references counted each "
                f"time) from {ops:,} opcodes: repr, json.dumps, == or hash visit them all",
            )
        return TREE_CAP if self.expanded else budget

    # -- the machine ---------------------------------------------------------------------
    def run(self) -> StreamResult:
        res = self.res
        try:
            self._loop()
        except PickleError as exc:
            res.error = str(exc)
            res.error_kind = exc.kind
            res.error_offset = self.r.tell()
        except BudgetExceeded as exc:
            res.error, res.error_kind = exc.detail, exc.what
            res.error_offset = self.r.tell()
        except (OSError, ValueError, EOFError, zlib.error, lzma.LZMAError) as exc:
            res.error, res.error_kind = f"cannot decode: {exc}", "stream-corrupt"
            res.error_offset = self.r.tell()
        res.end = self.r.tell()
        return res

    def _loop(self) -> None:
        """The dispatch loop. Buffer state lives in plain locals (``buf``, ``pos``, ``blen``,
        ``base``) and is handed to :class:`Reader` helpers only when bytes run out; budgets
        are checked every 65536 opcodes, so the common opcode costs a few comparisons."""
        r = self.r
        res = self.res
        limits = self.limits
        stack: list[Any] = []
        marks: list[int] = []
        core = self.core
        memo = Memo(core.sizes if core is not None else None)
        run_core = core.run if core is not None else None
        mlist = memo.items
        spill = memo.spill
        push = stack.append
        max_stack = limits.max_stack
        max_memo = limits.max_memo
        max_memo_bytes = limits.max_memo_bytes
        trees = self.trees
        heavy = _HEAVY
        exp_limit = limits.max_expansion  # cheap first check; _grew decides
        no_frame = 1 << 62
        frame_end = no_frame  # absolute offset where the current frame ends
        start = r.tell()
        remaining = self.budget[0]
        ops = 0
        buf, pos, blen, base = r.buf, r.pos, len(r.buf), r.base
        limit = 0
        # ``limit``: the next buffer position where the slow path must run: the buffer's
        # end, the current frame's end, or 64 KiB on (budgets are checked there).
        limit = 0
        try:
            while True:
                if pos >= limit:
                    if pos >= blen:
                        buf, pos, blen, base = r.need(pos, 1, "stream ends before STOP")
                    if base + pos >= frame_end:
                        if base + pos > frame_end:
                            self._anomaly(
                                "pickle-frame-straddle",
                                frame_end - start,
                                "an opcode argument runs past the end of its FRAME",
                            )
                        frame_end = no_frame
                    self._periodic(ops, remaining, len(stack), memo.size())
                    if memo.nbytes() > max_memo_bytes:
                        raise PickleError(
                            "budget-memo-bytes",
                            f"memo holds more than {max_memo_bytes} bytes ({memo.size()} entries)",
                        )
                    limit = min(blen, frame_end - base, pos + 0x10000)
                if run_core is not None:
                    # the core runs data opcodes up to ``limit`` and stops before any
                    # other (or any it cannot finish exactly): that one runs below
                    ran, pos = run_core(
                        buf, pos, limit, stack, marks, mlist, spill, exp_limit, trees
                    )
                    if ran:
                        ops += ran
                        if pos >= limit:
                            continue
                ops += 1
                op = buf[pos]
                pos += 1
                # Ordered by frequency in real checkpoints and dense data pickles.
                if op == 0x68:  # BINGET
                    if pos >= blen:
                        buf, pos, blen, base = r.need(pos, 1)
                        limit = 0
                    try:
                        push(mlist[buf[pos]])
                    except IndexError:
                        push(memo.get(buf[pos]))
                    pos += 1
                elif op == 0x94:  # MEMOIZE
                    if not stack:
                        raise PickleError("pickle-invalid", "MEMOIZE on an empty stack")
                    if spill:
                        memo.put(len(mlist) + len(spill), stack[-1])
                    else:
                        mlist.append(stack[-1])
                elif op == 0x28:  # MARK
                    marks.append(len(stack))
                elif op == 0x52:  # REDUCE (early: what the compiled core hands back most)
                    if len(stack) < 2:
                        raise PickleError("pickle-stack-underflow", "REDUCE needs two items")
                    args = stack.pop()
                    stack[-1] = self._called(stack[-1], args, base + pos - 1 - start, "REDUCE")
                elif op == 0x4D:  # BININT2
                    if pos + 2 > blen:
                        buf, pos, blen, base = r.need(pos, 2)
                        limit = 0
                    push(buf[pos] | buf[pos + 1] << 8)
                    pos += 2
                elif op == 0x4A:  # BININT
                    if pos + 4 > blen:
                        buf, pos, blen, base = r.need(pos, 4)
                        limit = 0
                    push(_unpack_from("<i", buf, pos)[0])
                    pos += 4
                elif op == 0x65 or op == 0x75 or op == 0x90:  # APPENDS / SETITEMS / ADDITEMS
                    if not marks:
                        raise PickleError("pickle-invalid", "MARK expected but not found")
                    k = marks.pop()
                    items = stack[k:]
                    del stack[k:]
                    if not stack:
                        raise PickleError("pickle-stack-underflow", "no container to add to")
                    target = stack[-1]
                    if op == 0x75:
                        if type(target) is Dct:
                            work = target.set_many(items, trees)
                            if work or target.tree > exp_limit:
                                exp_limit = self._grew(
                                    target.tree, work, ops, base + pos - 1 - start
                                )
                        elif type(target) is Call:
                            _mapping_items(target, items)
                        # state dicts: name -> rebuild call (a plain dict or an OrderedDict)
                        if (
                            len(items) > 1
                            and type(items[1]) is Call
                            and (type(target) is Dct or type(target) is Call)
                        ):
                            self._record_tensors(items)
                    elif type(target) is Seq:
                        work = target.extend(items, trees)
                        if work or target.tree > exp_limit:
                            exp_limit = self._grew(target.tree, work, ops, base + pos - 1 - start)
                elif op == 0x8C:  # SHORT_BINUNICODE
                    if pos >= blen:
                        buf, pos, blen, base = r.need(pos, 1)
                        limit = 0
                    n = buf[pos] + 1
                    if pos + n > blen:  # the length byte is read, then the text (FileReader)
                        buf, pos, blen, base = r.need(pos + 1, n - 1)
                        pos -= 1  # may be -1: only pos + 1 and pos + n are used
                        limit = 0
                    try:
                        push(buf[pos + 1 : pos + n].decode("utf-8", "surrogatepass"))
                    except UnicodeDecodeError as exc:
                        raise PickleError("pickle-invalid", f"undecodable string: {exc}") from None
                    pos += n
                elif op == 0x5D:  # EMPTY_LIST
                    push(Seq("list"))
                elif op == 0x7D:  # EMPTY_DICT
                    push(Dct())
                elif op == 0x47:  # BINFLOAT
                    if pos + 8 > blen:
                        buf, pos, blen, base = r.need(pos, 8)
                        limit = 0
                    push(_unpack_from(">d", buf, pos)[0])
                    pos += 8
                elif op == 0x4B:  # BININT1
                    if pos >= blen:
                        buf, pos, blen, base = r.need(pos, 1)
                        limit = 0
                    push(buf[pos])
                    pos += 1
                elif op == 0x71 or op == 0x72:  # BINPUT / LONG_BINPUT
                    w = 1 if op == 0x71 else 4
                    if pos + w > blen:
                        buf, pos, blen, base = r.need(pos, w)
                        limit = 0
                    idx = buf[pos] if w == 1 else _unpack_from("<I", buf, pos)[0]
                    pos += w
                    if not stack:
                        raise PickleError("pickle-invalid", "PUT on an empty stack")
                    memo.put(idx, stack[-1])
                elif op == 0x6A:  # LONG_BINGET
                    if pos + 4 > blen:
                        buf, pos, blen, base = r.need(pos, 4)
                        limit = 0
                    idx = _unpack_from("<I", buf, pos)[0]
                    pos += 4
                    push(mlist[idx] if idx < len(mlist) else memo.get(idx))
                elif op == 0x29:  # EMPTY_TUPLE
                    push(())
                elif op == 0x85:  # TUPLE1
                    if not stack:
                        raise PickleError("pickle-stack-underflow", "TUPLE1 on an empty stack")
                    a1 = stack[-1]
                    stack[-1] = t1 = (a1,)
                    if type(a1) in heavy:
                        self._note_tuple(t1, ops, base + pos - 1 - start)
                elif op == 0x86:  # TUPLE2
                    if len(stack) < 2:
                        raise PickleError("pickle-stack-underflow", "TUPLE2 needs two items")
                    b2 = stack.pop()
                    a2 = stack[-1]
                    stack[-1] = t2 = (a2, b2)
                    if type(a2) in heavy or type(b2) in heavy:
                        self._note_tuple(t2, ops, base + pos - 1 - start)
                elif op == 0x87:  # TUPLE3
                    if len(stack) < 3:
                        raise PickleError("pickle-stack-underflow", "TUPLE3 needs three items")
                    c3 = stack.pop()
                    b3 = stack.pop()
                    a3 = stack[-1]
                    stack[-1] = t3 = (a3, b3, c3)
                    if type(a3) in heavy or type(b3) in heavy or type(c3) in heavy:
                        self._note_tuple(t3, ops, base + pos - 1 - start)
                elif op == 0x74:  # TUPLE
                    tn = tuple(_pop_mark(stack, marks))
                    push(tn)
                    if not heavy.isdisjoint(map(type, tn)):
                        self._note_tuple(tn, ops, base + pos - 1 - start)
                elif op == 0x73:  # SETITEM
                    if len(stack) < 3:
                        raise PickleError("pickle-stack-underflow", "SETITEM needs three items")
                    v = stack.pop()
                    k = stack.pop()
                    target = stack[-1]
                    if type(target) is Dct:
                        work = target.set_many((k, v), trees)
                        if work or target.tree > exp_limit:
                            exp_limit = self._grew(target.tree, work, ops, base + pos - 1 - start)
                    elif type(target) is Call:
                        _mapping_items(target, (k, v))
                    if type(v) is Call and (type(target) is Dct or type(target) is Call):
                        self._record_tensors((k, v))
                elif op == 0x61:  # APPEND
                    if len(stack) < 2:
                        raise PickleError("pickle-stack-underflow", "APPEND needs two items")
                    v = stack.pop()
                    target = stack[-1]
                    if type(target) is Seq:
                        work = target.extend((v,), trees)
                        if work or target.tree > exp_limit:
                            exp_limit = self._grew(target.tree, work, ops, base + pos - 1 - start)
                elif op == 0x4E:  # NONE
                    push(None)
                elif op == 0x88:  # NEWTRUE
                    push(True)
                elif op == 0x89:  # NEWFALSE
                    push(False)
                elif op == 0x62:  # BUILD
                    if len(stack) < 2:
                        raise PickleError("pickle-stack-underflow", "BUILD needs two items")
                    state = stack.pop()
                    obj = stack[-1]
                    tobj = type(obj)
                    if tobj is Call:
                        obj.state = state
                        self._build(obj, state, base + pos - 1 - start)
                        if ref_of(obj.func) == "joblib.numpy_pickle.NumpyArrayWrapper":
                            # joblib writes the buffer after closing the frame, outside frames
                            if frame_end != no_frame:
                                if base + pos < frame_end:
                                    self._anomaly(
                                        "pickle-frame-straddle",
                                        base + pos - start,
                                        "an inline joblib buffer sits inside a FRAME",
                                    )
                                frame_end = no_frame
                            r.pos = pos
                            self._joblib_array(obj)
                            buf, pos, blen, base = r.buf, r.pos, len(r.buf), r.base
                            limit = 0
                    elif tobj is Global:
                        self._anomaly(
                            "pickle-build-on-global",
                            base + pos - 1 - start,
                            f"BUILD sets attributes on the imported object `{obj.name}`",
                        )
                elif op == 0x93:  # STACK_GLOBAL
                    if len(stack) < 2:
                        raise PickleError("pickle-stack-underflow", "STACK_GLOBAL needs two items")
                    name = stack.pop()
                    module = stack.pop()
                    here = base + pos - 1 - start
                    if type(module) is str and type(name) is str:
                        mod, qual = normalise_global(module, name)
                        push(self._use(mod, qual, here, "STACK_GLOBAL", f"{module} {name}"))
                    elif isinstance(module, (str, Call, Opaque, Blob)) and isinstance(
                        name, (str, Call, Opaque, Blob)
                    ):
                        self._anomaly(
                            "pickle-unresolved-global",
                            here,
                            f"STACK_GLOBAL operands are computed: {_short(module)}, {_short(name)}",
                        )
                        push(Opaque("unresolved global"))
                    else:
                        raise PickleError("pickle-invalid", "STACK_GLOBAL requires two strings")
                elif op == 0x63 or op == 0x69:  # GLOBAL / INST
                    here = base + pos - 1 - start
                    module_b, buf, pos, blen, base = r.readline(pos)
                    limit = 0
                    name_b, buf, pos, blen, base = r.readline(pos)
                    limit = 0
                    module = _text(module_b, "utf-8")
                    name = _text(name_b, "utf-8")
                    mod, qual = normalise_global(module, name)
                    opname = "GLOBAL" if op == 0x63 else "INST"
                    g = self._use(mod, qual, here, opname, f"{module} {name}")
                    if op == 0x63:
                        push(g)
                    else:
                        push(self._called(g, tuple(_pop_mark(stack, marks)), here, "INST"))
                elif op == 0x81:  # NEWOBJ
                    if len(stack) < 2:
                        raise PickleError("pickle-stack-underflow", "NEWOBJ needs two items")
                    args = stack.pop()
                    stack[-1] = self._called(stack[-1], args, base + pos - 1 - start, "NEWOBJ")
                elif op == 0x92:  # NEWOBJ_EX
                    if len(stack) < 3:
                        raise PickleError("pickle-stack-underflow", "NEWOBJ_EX needs three items")
                    kwargs = stack.pop()
                    args = stack.pop()
                    call = self._called(
                        stack[-1], args, base + pos - 1 - start, "NEWOBJ_EX", kwargs=kwargs
                    )
                    stack[-1] = call
                elif op == 0x95:  # FRAME
                    if pos + 8 > blen:
                        buf, pos, blen, base = r.need(pos, 8)
                        limit = 0
                    flen = _unpack_from("<Q", buf, pos)[0]
                    pos += 8
                    if r.file_mode:  # pickle.load(file): the frame becomes the read window
                        buf, pos, blen, base = r.frame(pos, flen)  # type: ignore[attr-defined]
                        limit = 0
                        continue
                    if frame_end != no_frame and base + pos - 9 < frame_end:
                        self._anomaly(
                            "pickle-frame-straddle",
                            base + pos - 9 - start,
                            "a FRAME starts before the previous frame ends",
                        )
                    frame_end = base + pos + flen
                    limit = 0
                elif op == 0x2E:  # STOP
                    res.stopped = True
                    if not stack:
                        raise PickleError("pickle-stack-underflow", "STOP on an empty stack")
                    res.top = stack[-1]
                    break
                elif op == 0x80:  # PROTO
                    if pos >= blen:
                        buf, pos, blen, base = r.need(pos, 1)
                        limit = 0
                    proto = buf[pos]
                    pos += 1
                    if base + pos - 2 != start:
                        self._anomaly(
                            "pickle-misplaced-proto",
                            base + pos - 2 - start,
                            "PROTO appears after the start of the stream",
                        )
                    if proto > 5:
                        raise PickleError("pickle-invalid", f"unsupported pickle protocol {proto}")
                    res.proto = proto
                elif op == 0x58 or op == 0x8D:  # BINUNICODE / BINUNICODE8
                    w = 4 if op == 0x58 else 8
                    if pos + w > blen:
                        buf, pos, blen, base = r.need(pos, w)
                        limit = 0
                    n = _unpack_from("<I" if w == 4 else "<Q", buf, pos)[0]
                    value, buf, pos, blen, base = r.take(pos + w, n, "str", start)
                    limit = 0
                    push(_text(value, "utf-8"))
                elif op == 0x42 or op == 0x43 or op == 0x8E or op == 0x96:  # bytes, bytearray
                    w = 1 if op == 0x43 else (4 if op == 0x42 else 8)
                    if pos + w > blen:
                        buf, pos, blen, base = r.need(pos, w)
                        limit = 0
                    n = buf[pos] if w == 1 else _unpack_from("<I" if w == 4 else "<Q", buf, pos)[0]
                    value, buf, pos, blen, base = r.take(
                        pos + w, n, "bytearray" if op == 0x96 else "bytes", start
                    )
                    limit = 0
                    push(value)
                elif op == 0x55 or op == 0x54:  # SHORT_BINSTRING / BINSTRING
                    w = 1 if op == 0x55 else 4
                    if pos + w > blen:
                        buf, pos, blen, base = r.need(pos, w)
                        limit = 0
                    n = buf[pos] if w == 1 else _unpack_from("<i", buf, pos)[0]
                    value, buf, pos, blen, base = r.take(pos + w, n, "str", start)
                    limit = 0
                    push(_text(value, "latin-1"))
                elif op == 0x30:  # POP (pops a MARK when one sits on top, as _pickle.c does)
                    if marks and marks[-1] == len(stack):
                        marks.pop()
                    elif len(stack) > (marks[-1] if marks else 0):
                        stack.pop()
                    else:
                        raise PickleError("pickle-stack-underflow", "POP on an empty stack")
                elif op == 0x31:  # POP_MARK
                    _pop_mark(stack, marks)
                elif op == 0x32:  # DUP
                    if not stack:
                        raise PickleError("pickle-stack-underflow", "DUP on an empty stack")
                    push(stack[-1])
                elif op == 0x8A or op == 0x8B:  # LONG1 / LONG4
                    w = 1 if op == 0x8A else 4
                    if pos + w > blen:
                        buf, pos, blen, base = r.need(pos, w)
                        limit = 0
                    n = buf[pos] if w == 1 else _unpack_from("<i", buf, pos)[0]
                    if n < 0:
                        raise PickleError("pickle-invalid", "negative LONG4 byte count")
                    value, buf, pos, blen, base = r.take(pos + w, n, "long", start)
                    limit = 0
                    push(
                        int.from_bytes(value, "little", signed=True)
                        if isinstance(value, bytes) and n <= 1024
                        else Opaque("int")
                    )
                elif op == 0x6C:  # LIST
                    sq = Seq("list", _pop_mark(stack, marks), trees)
                    push(sq)
                    if sq.tree > exp_limit:
                        exp_limit = self._grew(sq.tree, 0, ops, base + pos - 1 - start)
                elif op == 0x64:  # DICT
                    d = Dct()
                    work = d.set_many(_pop_mark(stack, marks), trees)
                    push(d)
                    if work or d.tree > exp_limit:
                        exp_limit = self._grew(d.tree, work, ops, base + pos - 1 - start)
                elif op == 0x8F:  # EMPTY_SET
                    push(Seq("set"))
                elif op == 0x91:  # FROZENSET
                    sq = Seq("frozenset")
                    work = sq.extend(_pop_mark(stack, marks), trees)
                    push(sq)
                    if work or sq.tree > exp_limit:
                        exp_limit = self._grew(sq.tree, work, ops, base + pos - 1 - start)
                elif op == 0x6F:  # OBJ
                    items = _pop_mark(stack, marks)
                    if not items:
                        raise PickleError("pickle-stack-underflow", "OBJ without a class")
                    push(self._called(items[0], tuple(items[1:]), base + pos - 1 - start, "OBJ"))
                elif op == 0x70 or op == 0x67:  # PUT / GET (text index)
                    line, buf, pos, blen, base = r.readline(pos)
                    limit = 0
                    try:
                        idx = int(line)
                    except ValueError:
                        raise PickleError(
                            "pickle-invalid", "PUT/GET index is not a number"
                        ) from None
                    if op == 0x70:
                        if not stack:
                            raise PickleError("pickle-invalid", "PUT on an empty stack")
                        memo.put(idx, stack[-1])
                    else:
                        push(memo.get(idx))
                elif op == 0x49 or op == 0x4C:  # INT / LONG
                    try:
                        line, buf, pos, blen, base = r.readline(pos)
                    except LongLine:
                        buf, pos, blen, base, limit = r.buf, r.pos, len(r.buf), r.base, 0
                        push(Opaque("int"))
                        continue
                    limit = 0
                    push(_text_int(line, op == 0x4C))
                elif op == 0x46:  # FLOAT
                    line, buf, pos, blen, base = r.readline(pos)
                    limit = 0
                    try:
                        push(float(line))
                    except ValueError:
                        raise PickleError(
                            "pickle-invalid", "FLOAT argument is not a number"
                        ) from None
                elif op == 0x53 or op == 0x56:  # STRING / UNICODE, longer than MAX_LINE
                    try:
                        line, buf, pos, blen, base = r.readline(pos)
                    except LongLine as long_line:
                        buf, pos, blen, base, limit = r.buf, r.pos, len(r.buf), r.base, 0
                        push(Blob("str", long_line.offset - start, long_line.length))
                        continue
                    limit = 0
                    if op == 0x56:  # UNICODE
                        try:
                            push(line.decode("raw-unicode-escape"))
                        except UnicodeDecodeError as exc:
                            raise PickleError(
                                "pickle-invalid", f"bad UNICODE escape: {exc}"
                            ) from None
                        continue
                    line = line.rstrip()
                    if len(line) < 2 or line[0] != line[-1] or line[0] not in b"\"'":
                        raise PickleError("pickle-invalid", "STRING argument is not quoted")
                    try:
                        push(_unescape(line[1:-1]))
                    except ValueError as exc:
                        raise PickleError("pickle-invalid", f"bad STRING escape: {exc}") from None
                elif op == 0x50:  # PERSID
                    line, buf, pos, blen, base = r.readline(pos)
                    limit = 0
                    push(Call(Opaque("persistent_load"), (_text(line, "latin-1"),)))
                elif op == 0x51:  # BINPERSID
                    if not stack:
                        raise PickleError("pickle-stack-underflow", "BINPERSID on an empty stack")
                    stack[-1] = Call(Opaque("persistent_load"), (stack[-1],))
                elif op == 0x82 or op == 0x83 or op == 0x84:  # EXT1/2/4
                    w = 1 if op == 0x82 else (2 if op == 0x83 else 4)
                    if pos + w > blen:
                        buf, pos, blen, base = r.need(pos, w)
                        limit = 0
                    fmt = "<H" if w == 2 else "<i"
                    code = buf[pos] if w == 1 else _unpack_from(fmt, buf, pos)[0]
                    pos += w
                    res.ext_codes[code] = res.ext_codes.get(code, 0) + 1
                    push(Opaque(f"extension code {code}"))
                elif op == 0x97:  # NEXT_BUFFER
                    self._anomaly(
                        "pickle-out-of-band-buffer",
                        base + pos - 1 - start,
                        "NEXT_BUFFER needs out-of-band buffers a plain load lacks",
                    )
                    push(Opaque("out-of-band buffer"))
                elif op == 0x98:  # READONLY_BUFFER
                    if not stack:
                        raise PickleError(
                            "pickle-stack-underflow", "READONLY_BUFFER on an empty stack"
                        )
                else:
                    r.pos = pos - 1
                    raise PickleError("pickle-invalid", f"invalid opcode 0x{op:02x}")
        except PickleError:
            res.opcodes = ops
            raise
        r.pos = pos
        res.opcodes = ops
        self.budget[0] = remaining - ops
        if len(stack) > max_stack or memo.size() > max_memo:
            self._periodic(ops, remaining, len(stack), memo.size())
        if frame_end != no_frame and base + pos < frame_end:
            self._anomaly(
                "pickle-frame-straddle",
                base + pos - 1 - start,
                "STOP inside a FRAME that announces more bytes",
            )

    def _periodic(self, ops: int, remaining: int, stack: int, memo: int) -> None:
        limits = self.limits
        if ops > remaining:
            self.budget[0] = 0
            raise PickleError("budget-opcodes", f"more than {limits.max_opcodes} opcodes")
        if stack > limits.max_stack:
            raise PickleError("budget-stack", f"stack deeper than {limits.max_stack}")
        if memo > limits.max_memo:
            raise PickleError("budget-memo", f"memo larger than {limits.max_memo}")
        if self.deadline.expired():
            raise PickleError("budget-time", f"more than {self.deadline.seconds:.0f}s to walk")
        if self.rss_start and resident_bytes() - self.rss_start > limits.max_walk_memory:
            raise PickleError(
                "budget-memory",
                f"walking it grew the scanner by more than {limits.max_walk_memory >> 20} MiB",
            )

    def _record_tensors(self, flat: list[Any] | tuple[Any, ...]) -> None:
        """State-dict entries ``name -> _rebuild_tensor_v2(storage, offset, size, ...)``:
        the tensor's shape and storage type, by symbolic evaluation of the rebuild call."""
        tensors = self.res.tensors
        for i in range(0, len(flat) - 1, 2):
            key, value = flat[i], flat[i + 1]
            if type(key) is not str or type(value) is not Call or len(tensors) >= MAX_TENSORS:
                continue
            if ref_of(value.func) in _REBUILD_WRAPPERS and type(value.args) is tuple:
                value = value.args[0] if value.args else None
                if type(value) is not Call:
                    continue
            if ref_of(value.func) not in _REBUILD_TENSOR or type(value.args) is not tuple:
                continue
            args = value.args
            size = args[2] if len(args) > 2 else None
            if type(size) is tuple and all(type(d) is int for d in size):
                storage = args[0]
                dtype = "?"
                if type(storage) is Call and type(storage.args) is tuple and storage.args:
                    pid = storage.args[0]
                    if type(pid) is tuple and len(pid) > 1 and type(pid[1]) is Global:
                        dtype = pid[1].name.rsplit(".", 1)[-1]
                tensors[key] = (dtype, size)

    def _joblib_array(self, wrapper: Call) -> None:
        """Skip the raw buffer ``joblib.load`` reads right after a NumpyArrayWrapper BUILD."""
        r = self.r
        state = wrapper.state
        if type(state) is not Dct or state.items is None:
            raise PickleError("joblib-array-unknown", "NumpyArrayWrapper state is not a dict")
        items = state.items
        shape = items.get("shape")
        size = dtype_itemsize(items.get("dtype"))
        if (
            size is None
            or type(shape) is not tuple
            or not all(isinstance(d, int) and d >= 0 for d in shape)
        ):
            raise PickleError(
                "joblib-array-unknown", "cannot tell the size of an inline joblib array"
            )
        itemsize, has_objects = size
        if has_objects:
            inner = PickleWalker(r, self.limits, self.deadline, self.budget)
            sub = inner.run()
            for name, use in sub.globals.items():
                mine = self.res.globals.setdefault(name, use)
                if mine is not use:
                    mine.count += use.count
                    mine.called += use.called
                    mine.inits += use.inits
            for name, use in sub.derived_calls.items():
                self.res.derived_calls.setdefault(name, use)
            self.res.anomalies.extend(sub.anomalies)
            for code, n in sub.ext_codes.items():
                self.res.ext_codes[code] = self.res.ext_codes.get(code, 0) + n
            if sub.error:
                raise PickleError(
                    sub.error_kind or "pickle-invalid",
                    f"in an object array's nested pickle: {sub.error}",
                )
            return
        count = 1
        for d in shape:
            count *= d
        if items.get("numpy_array_alignment_bytes"):
            if not r.fill(1):
                raise PickleError("pickle-truncated", "stream ends before an array's padding")
            pad = r.buf[r.pos]
            r.pos += 1
            if not r.skip(pad):
                raise PickleError("pickle-truncated", "stream ends inside an array's padding")
        if not r.skip(count * itemsize):
            raise PickleError(
                "pickle-truncated",
                f"inline joblib array of {count * itemsize} bytes runs past the end",
            )


def walk_stream(
    reader: Reader, limits: Limits, deadline: Deadline, budget: list[int]
) -> StreamResult:
    """Walk one stream with the cyclic garbage collector paused.

    A dense pickle creates millions of small tracked objects, and the collector's periodic
    passes over them cost ~20% of the walk. The machine's containers drop their contents when
    nested in another container, so they cannot form cycles; nothing is lost by pausing it.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return PickleWalker(reader, limits, deadline, budget).run()
    finally:
        if paused:
            gc.enable()


class RereadSource:
    """A forward :class:`Source` over ``src.reread`` from ``start``: walks a stream a second
    time without disturbing the first reader. A source that cannot re-read raises OSError,
    which the walk reports as an error."""

    __slots__ = ("_pos", "_src", "_start")

    def __init__(self, src: Source, start: int) -> None:
        self._src = src
        self._start = start
        self._pos = 0

    def read(self, n: int) -> bytes:
        data = self._src.reread(self._start + self._pos, self._start + self._pos + n)
        if data is None:
            raise OSError("the stream cannot be read a second time")
        self._pos += len(data)
        return data

    def skip(self, n: int) -> int:
        size = getattr(self._src, "size", None)
        step = n if not isinstance(size, int) else max(0, min(n, size - self._start - self._pos))
        self._pos += step
        return step

    def tell(self) -> int:
        return self._pos

    def reread(self, start: int, end: int) -> bytes | None:
        return self._src.reread(self._start + start, self._start + end)


def walk_file_path(
    src: Source, res: StreamResult, limits: Limits, deadline: Deadline
) -> tuple[StreamResult, list[tuple[int, int, str]]] | None:
    """Walk ``res``'s stream again as ``pickle.load(file)`` reads it (:class:`FileReader`),
    when the first walk saw a frame violation (only then can the two differ). Returns the
    second result (offsets relative to the stream, like ``res``) and the frame bytes that
    reading drops, or None when there was nothing to compare."""
    if not any(kind == "pickle-frame-straddle" for kind, _, _ in res.anomalies):
        return None
    reader = FileReader(RereadSource(src, res.start))
    fres = walk_stream(reader, limits, deadline, [limits.max_opcodes])
    fres.start = res.start
    fres.end += res.start
    if fres.error_offset is not None:
        fres.error_offset += res.start
    return fres, reader.drops
