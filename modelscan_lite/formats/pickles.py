"""Pickle streams wherever they live: raw pickle files, joblib files, legacy PyTorch files,
members of PyTorch/TorchScript zips, object arrays in ``.npy``.

Turns :mod:`.pickle_vm` results into facts: ``pickle.global`` (every import, with whether it
is called), ``pickle.call`` (a callee reached through a resolver such as ``getattr``),
``pickle.extension`` (``EXT1/2/4`` codes), and ``anomaly`` facts for broken or ambiguous
streams. Several pickles back to back are all walked; a legacy PyTorch file (magic number
first) is walked as its five stacked pickles and the raw storage bytes after them are left
alone. Evidence is fickling's decompilation of the stream, built only when a finding needs it.
"""

from __future__ import annotations

import ast
import contextlib
import io
from dataclasses import replace

from ..limits import Deadline, Limits
from ..model import Fact, Location
from .base import Context
from .pickle_vm import LEGACY_TORCH_MAGIC, Reader, StreamResult, walk_file_path, walk_stream
from .streams import BytesSource, Source

# Opcodes that can start a pickle without PROTO: anything pushing a value or a mark.
STARTS = frozenset(b"(]})cNILFSVXUTKJMGldtipghBC\x8c\x8d\x8e\x8f\x88\x89\x8a\x8b\x95\x96")
MAX_EVIDENCE_STREAM = 1 << 20
# first evidence line when fickling cannot be imported; the scanner also puts it in the notes
FICKLING_MISSING = "# fickling is not importable, evidence is the scanner's own summary"
# error kinds that are about the budget or the container, not about the pickle itself
NOT_PICKLE_ERRORS = frozenset(
    {"joblib-array-unknown", "decompressed-size", "compression-ratio", "stream-corrupt"}
)
MAX_EVIDENCE_LINES = 14
# PyTorch storage class -> the safetensors dtype name (tensor tables use the latter)
STORAGE_DTYPES = {
    "FloatStorage": "F32",
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "DoubleStorage": "F64",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
}


def sniff_pickle(head: bytes, *, strict: bool = False) -> bool:
    """True when ``head`` plausibly starts a pickle: a PROTO 2-5 opcode, or a protocol 0/1
    stream that walks cleanly to STOP or through at least 16 opcodes of the head."""
    if len(head) < 2:
        return False
    first = head[0]
    if first == 0x80:
        if not 2 <= head[1] <= 5:
            return False
        if not strict:
            return True
    elif first not in STARTS:
        return False
    reader = Reader(BytesSource(head))
    res = walk_stream(reader, Limits(max_opcodes=1 << 16), Deadline(1.0), [1 << 16])
    if res.stopped:
        return res.opcodes >= 3 or first == 0x80
    return res.error_kind == "pickle-truncated" and res.opcodes >= 16


def scan_pickle_file(
    src: Source,
    head: bytes,
    where: Location,
    ctx: Context,
    name: str = "",
    length: int | None = None,
) -> None:
    """The registry's entry point: a pickle as a whole file or member."""
    scan_pickle(src, where, ctx)


def scan_pickle(src: Source, where: Location, ctx: Context, *, kind: str = "pickle") -> None:
    """Walk every pickle stream in ``src`` and emit facts.

    ``kind``: ``pickle`` for a whole file (legacy PyTorch layout recognised, several streams
    walked), ``member`` for an archive member or embedded payload (one stream expected).
    """
    reader = Reader(src)
    budget = [ctx.limits.max_opcodes]
    streams = 0
    legacy = False
    while True:
        res = walk_stream(reader, ctx.limits, ctx.deadline, budget)
        streams += 1
        if res.tensors:
            ctx.tensor_table(
                where, {k: (STORAGE_DTYPES.get(d, d), s) for k, (d, s) in res.tensors.items()}
            )
        emit_stream(res, src, where, ctx, streams)
        emit_file_path(res, src, where, ctx, streams)
        if res.error:
            return
        if streams == 1 and kind == "pickle" and res.top == LEGACY_TORCH_MAGIC:
            legacy = True
            ctx.formats.append("pytorch-legacy")
        if legacy and streams == 5:
            return  # the rest is raw storage bytes, read by torch without unpickling
        start = reader.tell()
        if not reader.fill(1):
            return
        head = reader.buf[reader.pos : reader.pos + 4096]
        if legacy:
            continue
        if not sniff_pickle(head):
            # Writers that append a newline leave whitespace after STOP; no whitespace byte
            # is a pickle opcode, so a loader reading on fails rather than runs anything.
            # Anything else, or whitespace past the window, is still reported.
            tail = reader.buf[reader.pos :]
            if (
                len(tail) <= 4096  # the sniff window
                and not tail.strip(b" \t\r\n\x0b\x0c")
                and not reader.fill(len(tail) + 1)
            ):
                return
            what = _describe(head)
            ctx.anomaly(
                "pickle-trailing-data",
                where.at(start),
                f"{_remaining(src, start)} bytes after the pickle's STOP ({what})",
            )
            return
        if streams == 1:
            ctx.anomaly(
                "pickle-multiple-streams",
                where.at(start),
                "a second pickle follows the first; loaders that read again run it",
            )
        if streams >= ctx.limits.max_pickles_per_stream:
            ctx.anomaly(
                "budget-streams",
                where.at(start),
                f"more than {ctx.limits.max_pickles_per_stream} stacked pickles",
            )
            return


def _remaining(src: Source, start: int) -> str:
    size = getattr(src, "size", None)
    return str(size - start) if isinstance(size, int) else "some"


def _describe(head: bytes) -> str:
    from .sniff import sniff  # local: sniff imports this module

    fmt = sniff(head)
    return f"looks like {fmt}" if fmt not in ("unknown", "text") else fmt + " data"


def emit_stream(res: StreamResult, src: Source, where: Location, ctx: Context, n: int) -> None:
    stream = f"{n}@{res.start}"
    # In a TorchScript archive, ``__torch__.*`` names are classes compiled from the archive's
    # own ``code/`` and resolved by the TorchScript loader's compilation unit; Python never
    # imports them (torch.jit.load reads these pickles with its C++ unpickler).
    torchscript = "torchscript" in ctx.formats
    facts = [
        Fact(
            "torchscript.class"
            if torchscript and kind == "pickle.global" and _is_torchscript_class(use.module)
            else kind,
            use.name,
            where.at(res.start + use.offset, use.name),
            tuple(
                (k, str(v))
                for k, v in (
                    ("module", use.module),
                    ("qualname", use.qualname),
                    ("opcode", use.opcode),
                    ("spelled", use.spelled),
                    ("count", use.count),
                    ("called", use.called),
                    ("inits", use.inits),
                    ("call", use.first_call),
                    ("stream", stream),
                )
                if v is not None
            ),
        )
        for kind, uses in (("pickle.global", res.globals), ("pickle.call", res.derived_calls))
        for use in uses.values()
    ]
    evidence = None
    if facts and ctx.wants_evidence(facts):
        evidence = decompile(src, res)
        facts = [replace(f, evidence=evidence) for f in facts]
    ctx.facts.extend(facts)
    for code, count in res.ext_codes.items():
        ctx.emit(
            "pickle.extension", str(code), where.at(res.start), evidence, count=count, stream=stream
        )
    for kind, offset, message in res.anomalies:
        ctx.anomaly(kind, where.at(res.start + offset), message, evidence)
    if res.error:
        kind = res.error_kind or "pickle-invalid"
        if kind.startswith("budget-") or kind in NOT_PICKLE_ERRORS:
            ctx.anomaly(kind, where.at(res.error_offset), res.error, evidence)
        else:
            ctx.anomaly(
                kind,
                where.at(res.error_offset),
                f"{res.error}; the unpickler runs everything before this point",
                evidence,
            )
    for offset, loader, name in res.file_refs:
        here = where.at(res.start + offset, name)
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or "\0" in name or ":" in parts[0]:
            ctx.anomaly(
                "pickle-file-reference-escape",
                here,
                f"`{loader}` makes loading read `{name}`, outside the pickle's folder",
            )
        else:
            ctx.anomaly(
                "pickle-sibling-file",
                here,
                f"`{loader}` makes loading read `{name}` from the pickle's folder "
                "(numpy.load with allow_pickle=True): scan that file too",
            )
    if res.code_objects:  # dill / cloudpickle functions: their bytecode, disassembled
        from .pickled_code import emit_code_objects

        emit_code_objects(res.code_objects, res.start, where, ctx)
    for offset, length, loader, literal in res.embedded:
        data = literal
        if data is None and length <= ctx.limits.max_member_read:
            data = src.reread(res.start + offset, res.start + offset + length)
        if data is None:
            ctx.anomaly(
                "embedded-not-analysed",
                where.at(res.start + offset),
                f"{length} bytes passed to `{loader}` could not be re-read",
            )
            continue
        from .dispatch import dispatch_bytes

        dispatch_bytes(data, where.child(f"<bytes for {loader} @{res.start + offset}>"), ctx)


def emit_file_path(res: StreamResult, src: Source, where: Location, ctx: Context, n: int) -> None:
    """A stream with a frame violation, walked again as ``pickle.load(file)`` reads it
    (:func:`.pickle_vm.walk_file_path`): when that reading drops frame bytes, the divergence
    is a ``pickle-file-read-divergence`` anomaly and what only that reading imports, calls or
    deserializes is emitted like any other stream's facts."""
    walked = walk_file_path(src, res, ctx.limits, ctx.deadline)
    if walked is None:
        return
    fres, drops = walked
    if not drops:
        return  # the same opcodes either way (bytes payloads read through the frame's end)
    offset, dropped, what = drops[0]
    seen = {**res.globals, **res.derived_calls}
    new = 0
    for uses in (fres.globals, fres.derived_calls):
        for key, use in list(uses.items()):
            before = seen.get(key)
            if before is not None and (before.called, before.inits) >= (use.called, use.inits):
                del uses[key]
            else:
                new += 1
    fres.ext_codes = {c: k for c, k in fres.ext_codes.items() if c not in res.ext_codes}
    known = {(o, ln) for o, ln, _, _ in res.embedded}
    fres.embedded = [e for e in fres.embedded if (e[0], e[1]) not in known]
    outcome = (
        f"then fails ({fres.error})"
        if fres.error
        else f"and returns {_short_value(fres.top)}"
        if fres.stopped
        else "and stops"
    )
    fres.anomalies = [
        (
            "pickle-file-read-divergence",
            offset,
            f"pickle.load(file) reads this stream differently from pickle.loads: {what} does "
            f"not fit in the {dropped} bytes left of a FRAME, so a file read drops them and "
            f"goes on after the frame ({len(drops)} such drop(s)); it runs {fres.opcodes} "
            f"opcodes with {new} import(s) or call(s) pickle.loads does not make, {outcome}",
        )
    ]
    fres.error = None
    fres.end = fres.start  # evidence: the calls this reading makes, not a decompilation
    emit_stream(fres, src, where, ctx, n)


def _short_value(value: object) -> str:
    from .pickle_vm import _short

    return f"`{_short(value, 60)}`"


def _is_torchscript_class(module: str | None) -> bool:
    return module is not None and (module == "__torch__" or module.startswith("__torch__."))


def decompile(src: Source, res: StreamResult) -> str | None:
    """fickling's view of what loading the stream runs, cut to the interesting lines."""
    if res.end - res.start > MAX_EVIDENCE_STREAM:
        return _summary(res)
    data = src.reread(res.start, res.end)
    if not data:
        return _summary(res)
    try:
        from fickling.fickle import Pickled
    except Exception as exc:  # a broken install is said where the evidence is, not hidden
        summary = _summary(res) or ""
        return f"{FICKLING_MISSING} ({type(exc).__name__}: {exc}; pip install fickling)\n{summary}"
    try:
        # fickling prints warnings about malformed streams on stdout, which carries only
        # the report: keep whatever it writes out of both streams
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            pickled = Pickled.load(data)
            code = ast.unparse(pickled.ast)
    except Exception:
        return _summary(res)
    lines = code.splitlines()
    if len(lines) > MAX_EVIDENCE_LINES:
        keep = [ln for ln in lines if "import" in ln or "(" in ln][: MAX_EVIDENCE_LINES - 1]
        lines = [*keep, f"# ... {len(code.splitlines()) - len(keep)} more lines"]
    return "\n".join(ln if len(ln) <= 200 else ln[:197] + "..." for ln in lines)


def _summary(res: StreamResult) -> str | None:
    calls = [
        u.first_call for u in (*res.globals.values(), *res.derived_calls.values()) if u.first_call
    ]
    return "\n".join(c for c in calls[:MAX_EVIDENCE_LINES] if c) or None
