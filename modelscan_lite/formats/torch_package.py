"""``torch.package`` archives (``torch.package.PackageExporter`` / ``PackageImporter``).

Normatively (``torch/package/package_exporter.py``, ``package_importer.py``): a zip whose
members sit under one root folder: ``.data/version`` (the format version), ``.data/
extern_modules`` (one module name per line: the modules the importer takes from the host's
``sys.modules`` instead of the package), ``.data/python_version``, ``.data/<id>.storage``
(raw tensor bytes), the *interned* modules as Python source (``pkg/mod.py``,
``pkg/__init__.py``), and resources, among them pickles written by ``save_pickle``.

Loading a pickle (``PackageImporter.load_pickle``) resolves each global through the
package's own importer: a global of an interned module imports that module from the
archive, i.e. **executes its source** (``exec`` of the ``.py`` member), before the pickle's
own reduce calls run. So every ``.py`` member is code that runs on load by design
(``torch.package-code``, with the source as evidence), and the source is also analysed with
the repo custom-code checker (:func:`modelscan_lite.repo.code.analyse_source`, abstract
evaluation over :mod:`ast`, never imported) for dangerous calls (``torch.package-code-call``).
Extern modules outside a reviewed set are ``torch.package-extern``. The pickles are
scanned as pickles by the archive walk (their globals name packaged modules).
"""

from __future__ import annotations

import re

from ..model import Location
from .base import Context
from .streams import Source
from .torchscript import read_text_member

MAX_SOURCE = 2 << 20  # bytes of one packaged module analysed (the repo checker's budget)
MAX_EXTERNS = 64 << 10  # bytes of .data/extern_modules
EVIDENCE_LINES = 40
EVIDENCE_CHARS = 4000
_MODULE = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*")
# extern modules real packages take from the host that cannot, by being imported, do more
# than torch itself: torch (and its submodules), numpy, and stdlib modules of data and
# arithmetic. Reviewed by hand; anything else is reported (T108).
SAFE_EXTERN_ROOTS = frozenset(
    {
        "torch",
        "numpy",
        "builtins",
        "collections",
        "typing",
        "typing_extensions",
        "math",
        "functools",
        "itertools",
        "operator",
        "enum",
        "dataclasses",
        "abc",
        "numbers",
        "copy",
        "copyreg",
        "warnings",
        "__future__",
    }
)


def _member(where: Location, name: str) -> str:
    return (where.member or name).rsplit("!", 1)[-1]


def scan_package_source(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    """A ``.py`` member of a ``torch.package`` archive (registry format
    ``torch-package-source``)."""
    from ..repo.code import analyse_source

    member = _member(where, name)
    data = read_text_member(src, where, ctx, "packaged module source", MAX_SOURCE)
    text = data.decode("utf-8", "replace") if data is not None else ""
    module = _module_name(member)
    lines = text.splitlines()
    shown = "\n".join(f"{i + 1:4d} | {ln}" for i, ln in enumerate(lines[:EVIDENCE_LINES]))
    if len(lines) > EVIDENCE_LINES:
        shown += f"\n     | ... {len(lines) - EVIDENCE_LINES} more lines"
    ctx.emit(
        "torch.package-code",
        module,
        where,
        f"{member}:\n{shown[:EVIDENCE_CHARS]}",
        what="its source runs when a pickle of the package names it",
        lines=len(lines),
        via="packaged module",
    )
    if data is None:
        return
    try:
        hits, incomplete = analyse_source(data, member)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        ctx.anomaly(
            "torch-package-invalid",
            where,
            f"packaged module `{module}` does not parse as Python: {type(exc).__name__}",
        )
        return
    if incomplete:
        ctx.anomaly(
            "torch-package-invalid", where, f"analysis of `{module}` incomplete: {incomplete}"
        )
    for hit in hits[:100]:
        line = lines[hit.line - 1].strip() if 0 < hit.line <= len(lines) else ""
        ctx.emit(
            "torch.package-code-call",
            hit.name,
            where.at(key=f"line {hit.line}"),
            f"{member}:{hit.line}: {line[:200]}",
            what=hit.what,
            via="call" if hit.rule == "call" else "dynamic lookup",
            line=hit.line,
            module=module,
        )


def _module_name(member: str) -> str:
    path = member.split("/", 1)[1] if "/" in member else member  # below the package root
    path = path.removesuffix(".py").removesuffix("/__init__")
    return path.replace("/", ".")


def scan_extern_modules(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    """``.data/extern_modules`` (registry format ``torch-package-externs``)."""
    data = read_text_member(src, where, ctx, ".data/extern_modules", MAX_EXTERNS)
    if data is None:
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        ctx.anomaly("torch-package-invalid", where, ".data/extern_modules is not UTF-8 text")
        return
    for n, line in enumerate(text.splitlines(), 1):
        module = line.strip()
        if not module:
            continue
        if not _MODULE.fullmatch(module):
            ctx.anomaly(
                "torch-package-invalid",
                where.at(key=f"line {n}"),
                f"extern module entry `{module[:80]}` is not a module name",
            )
            continue
        if module.split(".", 1)[0] in SAFE_EXTERN_ROOTS:
            continue
        ctx.emit(
            "torch.package-extern",
            module,
            where.at(key=f"line {n}"),
            f".data/extern_modules:{n}: {module}",
            what="the package imports it from the host",
            via="extern",
        )
