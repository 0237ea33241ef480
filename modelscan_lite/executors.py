"""Where the per-file scans run: the executors behind ``scan --executor``.

The scanner hands an executor the list of files to scan (:func:`~.scanner.scan_file` on each,
under one policy and config) and gets one :class:`~.model.ArtifactResult` per file back, in
the input order whatever order they finished in; the rest of the scan (repo analysis,
waivers, the report) runs in the calling process, so the report does not depend on the
executor. Two executors:

``local`` (the default)
    In this process, or a fork-based process pool (``--jobs``) when there are several files.
``dask``
    A ``distributed.Client``: to ``--scheduler ADDRESS`` when given (every worker must reach
    the files at the same paths, and run the same modelscan-lite and rules: a worker that does
    not is an error per file, never a silent difference), else a ``LocalCluster`` of process
    workers (``--jobs`` of them, or one per core, one thread each) started and closed by the
    scan. Files go out in small batches; each worker builds the policy once per config and
    keeps it; a batch a worker could not finish (the worker died) is an error for each of its
    files (exit 2), never a missing file.

An executor is opened once (:func:`open_executor`, a context manager) and can serve several
scans, as :mod:`.fleet` does. Without the ``dask[distributed]`` package ``--executor dask``
is an :class:`ExecutorError` naming the extra (exit 2).
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from .config import EXECUTORS, Config, ConfigError
from .model import ArtifactResult, Report

if TYPE_CHECKING:
    from .engine import Policy

DASK_EXTRA = "pip install 'modelscan-lite[dask]'"
POOL_MIN_FILES = 4  # fewer files than this are scanned in-process by the local executor
CONNECT_TIMEOUT = 10.0  # seconds to reach a --scheduler
WORKERS_TIMEOUT = 30.0  # seconds to wait for a first worker on a --scheduler that has none
MAX_BATCH = 32  # files per Dask task, at most

# progress(current file or None at the end, files done, files, bytes done, bytes): called as
# each file starts (in-process) or ends (a pool, Dask), and once when all are done
ProgressCallback = Callable[[str | None, int, int, int, int], None]


class ExecutorError(ConfigError):
    """The executor cannot run (missing extra, unreachable scheduler): exit 2."""


class Executor(Protocol):
    name: str

    def scan(
        self,
        files: Sequence[str],
        policy: Policy,
        config: Config,
        progress: ProgressCallback | None = None,
    ) -> list[ArtifactResult]:
        """One result per file, in the order of ``files``."""
        ...


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


class _Feed:
    """What one scan tells its progress callback: the file, files and bytes done, and a last
    call with no file once every result is in. Does nothing without a callback."""

    def __init__(self, files: Sequence[str], progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.files = len(files)
        self.sizes = [_size(p) for p in files] if progress else []
        self.total_bytes = sum(self.sizes)
        self.done = self.done_bytes = 0

    def starting(self, path: str) -> None:
        """``path`` is about to be scanned in this process."""
        if self.progress:
            self.progress(path, self.done, self.files, self.done_bytes, self.total_bytes)

    def finished(self, index: int, path: str, *, say: bool = True) -> None:
        """The result for ``files[index]`` is in; ``say``: tell the callback now."""
        if self.progress:
            self.done += 1
            self.done_bytes += self.sizes[index]
            if say:
                self.progress(path, self.done, self.files, self.done_bytes, self.total_bytes)

    def end(self) -> None:
        if self.progress:
            self.progress(None, self.files, self.files, self.total_bytes, self.total_bytes)


# ---------------------------------------------------------------------------- local

_policy: Policy | None = None
_config: Config | None = None


def _init_worker(config: Config) -> None:
    from .scanner import build_policy

    global _policy, _config
    _config = config
    _policy = build_policy(config)


def _scan_in_worker(path: str) -> ArtifactResult:
    from .scanner import scan_file

    assert _policy is not None and _config is not None
    return scan_file(path, _policy, _config)


class LocalExecutor:
    """In this process, or a fork-based process pool when ``jobs`` > 1 and there are at
    least :data:`POOL_MIN_FILES` files."""

    name = "local"

    def scan(
        self,
        files: Sequence[str],
        policy: Policy,
        config: Config,
        progress: ProgressCallback | None = None,
    ) -> list[ArtifactResult]:
        from .scanner import scan_file

        jobs = config.jobs or os.cpu_count() or 1
        out: list[ArtifactResult] = []
        feed = _Feed(files, progress)
        if jobs > 1 and len(files) >= POOL_MIN_FILES:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # fork on Linux: workers start in milliseconds and inherit the loaded rules
            mp = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
            with ProcessPoolExecutor(
                max_workers=min(jobs, len(files)),
                mp_context=mp,
                initializer=_init_worker,
                initargs=(config,),
            ) as pool:
                for i, res in enumerate(pool.map(_scan_in_worker, files, chunksize=4)):
                    out.append(res)
                    feed.finished(i, res.path)
        else:
            for i, path in enumerate(files):
                feed.starting(path)
                out.append(scan_file(path, policy, config))
                feed.finished(i, path, say=False)  # the next file's start says it
        feed.end()
        return out


# ----------------------------------------------------------------------------- dask

# on a Dask worker: config fingerprint -> policy, for the last few configs seen
_worker_policies: dict[str, Policy] = {}
# a worker scans one batch at a time: a batch may move the process into the client's
# working directory (the parsers are pure Python, so a second thread would gain nothing)
_worker_lock = threading.Lock()


def _versions() -> tuple[str, str]:
    from . import __version__
    from .engine import load_rules

    return __version__, load_rules().version


def _worker_policy(config: Config, key: str) -> Policy:
    from .scanner import build_policy

    hit = _worker_policies.get(key)
    if hit is None:
        if len(_worker_policies) >= 8:
            _worker_policies.clear()
        hit = _worker_policies[key] = build_policy(config)
    return hit


def _failed(paths: Sequence[str], message: str) -> list[ArtifactResult]:
    return [ArtifactResult(p, "unknown", _size(p), error=message) for p in paths]


def scan_batch(
    paths: Sequence[str], config: Config, key: str, cwd: str, versions: tuple[str, str]
) -> list[ArtifactResult]:
    """The Dask task: scan ``paths`` on a worker, from the client's working directory (a
    relative path, a fingerprint and a per-path ignore mean the same there). A worker with
    another tool or rules version, or one that cannot enter ``cwd``, gives an error result
    per file instead of a report that would differ."""
    from .scanner import scan_file

    with _worker_lock:
        mine = _versions()
        if mine != versions:
            return _failed(
                paths,
                f"the Dask worker runs modelscan-lite {mine[0]} (rules {mine[1]}), this scan "
                f"{versions[0]} (rules {versions[1]}): not scanned",
            )
        try:
            if os.getcwd() != cwd:
                os.chdir(cwd)
        except OSError as exc:
            return _failed(
                paths,
                f"the Dask worker cannot enter the scan's working directory {cwd} "
                f"({exc.strerror or exc}): not scanned",
            )
        policy = _worker_policy(config, key)
        return [scan_file(p, policy, config) for p in paths]


def scan_remote_target(target: str, config: Config, versions: tuple[str, str]) -> Report:
    """The Dask task for a remote target (``hf://``, ``https://``...): the whole
    ``scan_paths`` on a worker, which reads the target by ranges itself. A worker with another
    tool or rules version gives a report with one error instead."""
    from .scanner import scan_paths

    mine = _versions()
    if mine != versions:
        return Report(
            mine[0],
            mine[1],
            (),
            config.fail_on,
            (),
            errors=(
                f"{target}: the Dask worker runs modelscan-lite {mine[0]} (rules {mine[1]}), "
                f"this scan {versions[0]} (rules {versions[1]}): not scanned",
            ),
        )
    return scan_paths([target], replace(config, executor="local", scheduler=None))


def _config_key(config: Config) -> str:
    import hashlib
    import pickle

    return hashlib.sha256(pickle.dumps(config)).hexdigest()[:24]


def require_dask() -> Any:
    """The ``distributed`` module, or an :class:`ExecutorError` naming the extra."""
    try:
        import distributed
    except ImportError as exc:
        raise ExecutorError(
            f"--executor dask needs the dask[distributed] package ({exc}): {DASK_EXTRA}"
        ) from None
    return distributed


class DaskExecutor:
    """A ``distributed.Client`` to ``scheduler``, or to a ``LocalCluster`` of ``workers``
    process workers (one thread each) that :meth:`close` stops."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int = 0) -> None:
        distributed = require_dask()
        self.cluster: Any = None
        self.scheduler = scheduler
        if scheduler is None:
            import logging

            n = workers or os.cpu_count() or 1
            self.cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client: Any = distributed.Client(self.cluster)
            return
        try:
            self.client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, ValueError) as exc:  # TimeoutError is an OSError
            raise ExecutorError(
                f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})"
            ) from None
        try:
            self.client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
        except (OSError, TimeoutError):
            self.close()
            raise ExecutorError(
                f"--scheduler {scheduler}: the Dask scheduler has no worker after "
                f"{WORKERS_TIMEOUT:.0f} s"
            ) from None

    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {})) or 1

    def scan(
        self,
        files: Sequence[str],
        policy: Policy,
        config: Config,
        progress: ProgressCallback | None = None,
    ) -> list[ArtifactResult]:
        as_completed = require_dask().as_completed

        files = list(files)
        feed = _Feed(files, progress)
        if not files:
            feed.end()
            return []
        size = max(1, min(MAX_BATCH, math.ceil(len(files) / (self.workers() * 4))))
        batches = [files[i : i + size] for i in range(0, len(files), size)]
        args = (config, _config_key(config), os.getcwd(), _versions())
        futures = [self.client.submit(scan_batch, batch, *args, pure=False) for batch in batches]
        where = {f.key: i for i, f in enumerate(futures)}
        slots: list[list[ArtifactResult] | None] = [None] * len(batches)
        try:
            for future in as_completed(futures):
                i = where[future.key]
                try:
                    results = future.result()
                except Exception as exc:  # a dead worker, a broken pickle: an error per file
                    results = _failed(
                        batches[i], f"the Dask task failed: {type(exc).__name__}: {exc}"
                    )
                slots[i] = results
                for j, res in enumerate(results):
                    feed.finished(i * size + j, res.path)
        finally:
            for future in futures:
                future.release()
        feed.end()
        return [r for batch in slots if batch is not None for r in batch]

    def remote_report(self, target: str, config: Config) -> Report:
        """A remote target scanned on a worker (:func:`scan_remote_target`)."""
        future = self.client.submit(scan_remote_target, target, config, _versions(), pure=False)
        try:
            report: Report = future.result()
        finally:
            future.release()
        return report

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


@contextmanager
def open_executor(config: Config) -> Iterator[Executor]:
    """The executor ``config.executor`` names, closed (a LocalCluster stopped) at the end."""
    if config.executor == "local":
        if config.scheduler is not None:
            raise ExecutorError("--scheduler needs --executor dask")
        yield LocalExecutor()
        return
    if config.executor != "dask":
        raise ExecutorError(
            f"executor must be one of {', '.join(EXECUTORS)}, not {config.executor!r}"
        )
    dask = DaskExecutor(config.scheduler, config.jobs)
    try:
        yield dask
    finally:
        dask.close()
