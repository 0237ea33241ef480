"""Which pickle walker runs: the compiled core under the Python loop, or the Python loop alone.

:mod:`.pickle_vm` is the walker and the reference. Its dispatch loop hands runs of *data*
opcodes (literals, memo, marks, containers and the batches that fill them) to the compiled
core, ``_pickle_fast`` (C, built by the project's own wheel build, see ``hatch_build.py``),
which builds the same values and stops before anything else: imports, calls, BUILD, frames,
errors and budgets stay in Python, so both walkers report the same facts by construction, and
the test suite runs against both (``tests/test_pickle_engines.py`` compares them on random and
mutated streams).

``MODELSCAN_LITE_WALKER`` chooses: ``auto`` (the default: compiled when it is installed),
``compiled`` (an error when it is not) or ``python``. A compiled core built from another
version of its C source (a checkout edited after ``pip install -e .``) is not used.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from sys import getsizeof
from typing import Any, Protocol

ENV = "MODELSCAN_LITE_WALKER"
CHOICES = ("auto", "compiled", "python")


class Core(Protocol):
    """The compiled module's interface (``_pickle_fast.c``)."""

    def run(self, *args: Any) -> tuple[int, int]: ...

    def sizes(self, values: list[Any], start: int) -> int: ...


class WalkerUnavailable(RuntimeError):
    """The walker asked for cannot run (a bad choice, or no compiled core)."""


_loaded: list[tuple[Core | None, str]] = []  # memo of _load()


def source_digest(data: bytes) -> str:
    """Which version of ``_pickle_fast.c`` a core was built from (``hatch_build.py`` builds it
    in): a version check, not a security one, so zlib's CRC-32 and the length; importing
    hashlib would cost every scan ~3 ms."""
    return f"{zlib.crc32(data):08x}-{len(data)}"


_forced: list[str] = []  # use()'s stack, for tests


def _load() -> tuple[Core | None, str]:
    """(the compiled core, "") or (None, why it cannot be used)."""
    if _loaded:
        return _loaded[0]
    try:
        from . import _pickle_fast  # type: ignore[attr-defined]
    except ImportError as exc:
        found: tuple[Core | None, str] = (None, f"it is not installed ({exc})")
    else:
        found = (_pickle_fast, "")
        source = Path(__file__).with_name("_pickle_fast.c")
        with contextlib.suppress(OSError):
            built_from = getattr(_pickle_fast, "SOURCE_DIGEST", None)
            if source_digest(source.read_bytes()) != built_from:
                found = (None, f"it was built from another version of {source.name}")
        if found[0] is not None:
            from . import pickle_vm as vm

            # every instance of these types has one sys.getsizeof (no items, no __dict__);
            # a tuple's is object.__sizeof__ (base + 8 bytes an item) plus the GC header
            fixed: tuple[Any, ...] = (vm.Dct(), vm.Seq("list"), vm.Call(None, ()))
            fixed += (vm.Global("a.b"), vm.Blob("bytes", 0, 0), vm.Opaque("x"), 0.0, None)
            sizes: dict[type, Any] = {type(v): getsizeof(v) for v in fixed}
            sizes[tuple] = (getsizeof(()), tuple.__itemsize__)
            _pickle_fast.configure(
                vm.Dct,
                vm.Seq,
                vm.Call,
                vm.CONTAINER_CAP,
                vm.KEEP_BYTES,
                vm.TREE_CAP,
                getsizeof,
                sizes,
            )
    _loaded.append(found)
    return found


def choice() -> str:
    """The walker asked for: :func:`use`'s, else ``MODELSCAN_LITE_WALKER``, else auto."""
    if _forced:
        return _forced[-1]
    value = os.environ.get(ENV, "").strip().lower() or "auto"
    if value not in CHOICES:
        raise WalkerUnavailable(f"{ENV}={value!r} is not one of {', '.join(CHOICES)}")
    return value


def core() -> Core | None:
    """The compiled core for the next walk, or None for the pure-Python loop."""
    wanted = choice()
    if wanted == "python":
        return None
    run, why = _load()
    if run is None and wanted == "compiled":
        raise WalkerUnavailable(f"{ENV}=compiled, but the compiled pickle walker: {why}")
    return run


def available() -> bool:
    return _load()[0] is not None


def describe() -> str:
    """One line for ``--version`` and notices: which walker runs, and why."""
    wanted = choice()
    run, why = _load()
    if wanted == "python":
        return f"pure Python ({ENV}=python)"
    if run is None:
        return f"pure Python (the compiled core cannot be used: {why})"
    return "compiled (C core, _pickle_fast)"


def fallback_notice() -> str | None:
    """The stderr notice for a scan that falls back to the pure-Python walker without being
    asked to (an install without a C compiler); None when there is nothing to say."""
    if choice() != "auto" or available():
        return None
    return (
        f"note: {describe()}; same verdicts, several times slower on large pickles. "
        f"Reinstall with a C compiler, or set {ENV}=python to silence this."
    )


@contextlib.contextmanager
def use(name: str) -> Iterator[Any]:
    """Run the walks inside the ``with`` block on ``name`` (``python`` or ``compiled``)."""
    if name not in CHOICES:
        raise WalkerUnavailable(f"no walker {name!r}")
    _forced.append(name)
    try:
        core()  # fail here, not in the middle of a scan
        yield
    finally:
        _forced.pop()
