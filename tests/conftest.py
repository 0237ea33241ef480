"""Shared fixtures: the no-load tripwire, a private user cache per test, the repo paths, and
a CLI runner.

The tripwire makes every API that deserializes an artifact (``pickle.load(s)``,
``pickle.Unpickler``, ``torch.load``, ``joblib.load``, ``numpy.load``) raise in every test
outside ``tests/sandbox``: a scanner path that reaches one of them fails loudly.

Every test gets its own ``XDG_CACHE_HOME`` (inherited by the CLI subprocesses it runs), so no
test reuses another's cached scan results (``modelscan_lite.result_cache``) or the user's. It
starts with the rules caches one warm-up scan of the session wrote (linked, not copied), so a
CLI run does not parse the rule files again.
"""

from __future__ import annotations

import _pickle
import concurrent.futures.process  # noqa: F401 - bind multiprocessing's own loads first
import multiprocessing.reduction  # noqa: F401
import os
import pickle
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import fickling.fickle  # noqa: F401 - it subclasses pickle.Unpickler at import: before the tripwire
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


class TripwireError(AssertionError):
    """A deserializing API was reached from the static scanner's code path."""


def _trip(name: str):  # type: ignore[no-untyped-def]
    def tripped(*args: object, **kwargs: object) -> None:
        raise TripwireError(f"{name} was called: the static scanner must never deserialize")

    return tripped


@pytest.fixture(autouse=True)
def no_load_tripwire(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "sandbox" in request.node.nodeid.split("::")[0]:
        return
    for mod, attrs in (
        (pickle, ("load", "loads", "Unpickler", "_load", "_loads")),
        (_pickle, ("load", "loads", "Unpickler")),
    ):
        for attr in attrs:
            if hasattr(mod, attr):
                monkeypatch.setattr(mod, attr, _trip(f"{mod.__name__}.{attr}"))
    for modname, attr in (
        ("torch", "load"),
        ("torch.serialization", "load"),
        ("joblib", "load"),
        ("numpy", "load"),
        ("dill", "load"),
        ("dill", "loads"),
        ("cloudpickle", "load"),
        ("cloudpickle", "loads"),
    ):
        mod = sys.modules.get(modname)
        if mod is not None and hasattr(mod, attr):
            monkeypatch.setattr(mod, attr, _trip(f"{modname}.{attr}"))


@pytest.fixture(scope="session")
def _warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user cache folder holding what a first scan writes besides results (the rule files
    parsed and checked, the allowlist records)."""
    base = tmp_path_factory.mktemp("user-cache")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "modelscan_lite",
            "scan",
            "-q",
            str(SAMPLES / "P101" / "bad-builtin-py2-alias.pkl"),
        ],
        env={**os.environ, "XDG_CACHE_HOME": str(base), "MODELSCAN_LITE_NO_PROGRESS": "1"},
        capture_output=True,
        timeout=300,
        check=False,
    )
    return base / "modelscan-lite"


_cache_dirs = count()


@pytest.fixture(autouse=True)
def private_user_cache(
    _warm_cache: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``XDG_CACHE_HOME`` of this test alone, seeded with the warm rules caches."""
    home = tmp_path_factory.getbasetemp() / "user-caches" / str(next(_cache_dirs))
    mine = home / "modelscan-lite"
    mine.mkdir(parents=True)
    for entry in _warm_cache.glob("*"):
        if entry.is_file() and not entry.name.startswith("results."):
            try:
                os.link(entry, mine / entry.name)
            except OSError:
                shutil.copyfile(entry, mine / entry.name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))


def run_cli(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess (no tripwire there: it is checked
    by the in-process tests and the static no-load test)."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "modelscan_lite", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )


@pytest.fixture
def cli():  # type: ignore[no-untyped-def]
    return run_cli


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP listener on loopback that records every connection it accepts."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    hits: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            hits.append(conn.recv(100))
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield srv.getsockname()[1], hits
    stop.set()
    thread.join()
    srv.close()


@pytest.fixture
def result_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh user cache whose result database a test inspects; files written a moment
    ago may be stored (no "racy" wait)."""
    from modelscan_lite import result_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MODELSCAN_LITE_NO_CACHE", raising=False)
    monkeypatch.setattr(result_cache, "RACY_NS", 0)
    return tmp_path / "xdg" / "modelscan-lite" / "results.sqlite3"


WALKERS = ("python", "compiled")


@pytest.fixture(params=WALKERS)
def walker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test on each pickle walker: the pure-Python reference and the compiled core
    (``walker_engine``), in this process and in the subprocesses it starts. In CI a missing
    compiled core fails the test instead of skipping it."""
    from modelscan_lite.formats import walker_engine

    name: str = request.param
    if name == "compiled" and not walker_engine.available():
        reason = f"the compiled walker cannot be used: {walker_engine.describe()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    monkeypatch.setenv(walker_engine.ENV, name)
    with walker_engine.use(name):
        yield name
