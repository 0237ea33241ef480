"""Scanning a fleet of targets into a partitioned dataset: :func:`scan_fleet`.

Each target (a local folder or file, or a remote repo or URL: ``hf://``, ``https://``,
``s3://``...) is scanned as ``modelscan-lite scan TARGET`` would, on one executor opened once
for the whole fleet (:mod:`.executors`: in this process or a process pool, or a Dask cluster,
where several targets are in flight at once). Remote targets are read by range requests
(:mod:`.remote`), several at once: by threads of this process, or on Dask by the workers
themselves (each remote target is one task). Every artifact becomes one row: the JSON
report's artifact object (:func:`~.report.json_report.artifact_dict`) plus ``target``, the
target it came from.
Rows go out in target order, then report order, into partitions of ``partition_size`` rows:
``part-00000.jsonl`` (one JSON object a line) or ``part-00000.parquet`` (needs pyarrow), each
written whole or not at all (a temp file, then a rename). ``manifest.json``, written last,
lists the partitions, the tool and rules versions, and per target its counts, errors and
notes: a target that could not be scanned (a missing path) has no rows and is never silent
there. The output folder must hold no partition of an earlier run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic_write import write_atomically
from .config import Config
from .model import Report

if TYPE_CHECKING:
    from .executors import Executor

FORMATS = ("jsonl", "parquet")
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
FLEET_THREADS_PER_WORKER = 2  # targets in flight per Dask worker
REMOTE_TARGETS_IN_FLIGHT = 8  # remote targets read at once by one process


class FleetError(ValueError):
    """Bad fleet arguments (an unknown format, a used output folder)."""


@dataclass(frozen=True)
class TargetSummary:
    target: str
    artifacts: int
    findings: int
    failing: int
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FleetSummary:
    """What :func:`scan_fleet` wrote: the partitions, the manifest and per-target counts."""

    out_dir: str
    partitions: tuple[str, ...]
    manifest: str
    targets: tuple[TargetSummary, ...] = field(default_factory=tuple)
    seconds: float = 0.0

    @property
    def artifacts(self) -> int:
        return sum(t.artifacts for t in self.targets)

    @property
    def findings(self) -> int:
        return sum(t.findings for t in self.targets)

    @property
    def failing(self) -> int:
        return sum(t.failing for t in self.targets)

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(e for t in self.targets for e in t.errors)


def scan_fleet(
    targets: Sequence[str],
    out_dir: str | os.PathLike[str],
    *,
    executor: str = "local",
    scheduler: str | None = None,
    config: Config | None = None,
    partition_size: int = 1000,
    fmt: str = "jsonl",
) -> FleetSummary:
    """Scan every target and write its artifacts as partitioned rows under ``out_dir``.

    ``executor``/``scheduler`` as ``scan --executor/--scheduler``; ``config`` the scan
    configuration (default: none, all rules); ``fmt`` ``jsonl`` or ``parquet``. Raises
    :class:`FleetError` for bad arguments before anything is scanned, and
    :class:`~.executors.ExecutorError` when the executor cannot start."""
    from .executors import open_executor

    started = time.perf_counter()
    targets = [os.fspath(t) for t in targets]
    if fmt not in FORMATS:
        raise FleetError(f"fmt must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "parquet":
        _require_pyarrow()
    if partition_size < 1:
        raise FleetError("partition_size must be at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    used = sorted(p.name for p in out.iterdir() if p.name.startswith("part-") or p.name == MANIFEST)
    if used:
        raise FleetError(
            f"{out}: holds the output of an earlier run ({used[0]}); give a new folder"
        )
    cfg = replace(config or Config(), executor=executor, scheduler=scheduler)
    writer = _PartitionWriter(out, fmt, partition_size)
    summaries: list[TargetSummary] = []
    versions: tuple[str, str] | None = None
    from .report.json_report import artifact_dict

    with open_executor(cfg) as ex:
        for target, report in zip(targets, _reports(targets, cfg, ex), strict=True):
            versions = versions or (report.tool_version, report.rules_version)
            for artifact in report.artifacts:
                writer.add({"target": target, **artifact_dict(artifact)})
            summaries.append(
                TargetSummary(
                    target,
                    len(report.artifacts),
                    len(report.findings),
                    len(report.failing()),
                    report.errors,
                    report.notes,
                )
            )
    writer.flush()
    summary = FleetSummary(
        str(out),
        tuple(writer.partitions),
        str(out / MANIFEST),
        tuple(summaries),
        time.perf_counter() - started,
    )
    write_atomically(summary.manifest, _manifest(summary, cfg, fmt, versions))
    return summary


def _reports(targets: list[str], cfg: Config, ex: Executor) -> Iterator[Report]:
    """Each target's report, in target order. On Dask several targets are in flight (the
    client is thread-safe and the workers are busy across targets), a remote one as a task of
    its own on a worker; locally, remote targets are read several at once by threads while
    local ones are scanned one at a time (the process pool parallelises within a target)."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from .remote import is_remote
    from .scanner import scan_paths

    dask = ex.name == "dask"

    def one(target: str) -> Report:
        if dask and is_remote(target):
            return ex.remote_report(target, cfg)  # type: ignore[attr-defined,no-any-return]
        return scan_paths([target], cfg, executor=ex)

    if dask:
        workers = max(2, getattr(ex, "workers", lambda: 1)() * FLEET_THREADS_PER_WORKER)
    else:
        workers = REMOTE_TARGETS_IN_FLIGHT if any(is_remote(t) for t in targets) else 1
    if workers == 1 or len(targets) < 2:
        yield from map(one, targets)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: list[Future[Report] | str] = [
            pool.submit(one, t) if dask or is_remote(t) else t for t in targets
        ]
        for item in pending:
            yield one(item) if isinstance(item, str) else item.result()


def _require_pyarrow() -> None:
    import importlib

    try:
        importlib.import_module("pyarrow.parquet")
    except ImportError as exc:
        raise FleetError(
            f"Parquet output needs pyarrow ({exc}): pip install pyarrow, or use fmt='jsonl'"
        ) from None


class _PartitionWriter:
    def __init__(self, out: Path, fmt: str, size: int) -> None:
        self.out, self.fmt, self.size = out, fmt, size
        self.rows: list[dict[str, Any]] = []
        self.partitions: list[str] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.size:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        path = self.out / f"part-{len(self.partitions):05d}.{self.fmt}"
        if self.fmt == "jsonl":
            from .report.neutral import defuse_json

            write_atomically(path, "".join(defuse_json(json.dumps(r)) + "\n" for r in self.rows))
        else:
            _write_parquet(path, self.rows)
        self.partitions.append(str(path))
        self.rows = []


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    """One Parquet file, with the same schema in every partition (a column that is null in
    one partition keeps its type); ``dynamic`` is kept as JSON text."""
    import importlib
    import tempfile
    from contextlib import suppress

    # imported by name: pyarrow is optional and has no type stubs
    pa: Any = importlib.import_module("pyarrow")
    pq: Any = importlib.import_module("pyarrow.parquet")

    s = pa.string()
    location = pa.struct([("path", s), ("member", s), ("offset", pa.int64()), ("key", s)])
    finding = pa.struct(
        [
            ("rule", s),
            ("name", s),
            ("severity", s),
            ("message", s),
            ("location", location),
            ("fingerprint", s),
            ("evidence", s),
        ]
    )
    schema = pa.schema(
        [
            ("target", s),
            ("path", s),
            ("format", s),
            ("size", pa.int64()),
            ("sha256", s),
            ("content_id", s),
            ("skipped", s),
            ("error", s),
            ("findings", pa.list_(finding)),
            ("dynamic", s),
        ]
    )
    table = pa.Table.from_pylist(
        [
            {**r, "dynamic": json.dumps(r["dynamic"]) if r.get("dynamic") is not None else None}
            for r in rows
        ],
        schema=schema,
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def _manifest(
    summary: FleetSummary, cfg: Config, fmt: str, versions: tuple[str, str] | None
) -> str:
    if versions is None:
        from . import __version__
        from .engine import load_rules

        versions = (__version__, load_rules().version)
    doc = {
        "manifest_version": MANIFEST_VERSION,
        "tool": {"name": "modelscan-lite", "version": versions[0], "rules_version": versions[1]},
        "format": fmt,
        "executor": cfg.executor,
        "partitions": [os.path.basename(p) for p in summary.partitions],
        "totals": {
            "targets": len(summary.targets),
            "artifacts": summary.artifacts,
            "findings": summary.findings,
            "failing": summary.failing,
            "errors": len(summary.errors),
        },
        "targets": [
            {
                "target": t.target,
                "artifacts": t.artifacts,
                "findings": t.findings,
                "failing": t.failing,
                "errors": list(t.errors),
                "notes": list(t.notes),
            }
            for t in summary.targets
        ],
        "seconds": round(summary.seconds, 3),
    }
    from .report.neutral import defuse_json

    return defuse_json(json.dumps(doc, indent=2)) + "\n"
