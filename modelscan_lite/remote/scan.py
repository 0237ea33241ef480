"""Scanning remote trees (:mod:`.sources`) without downloading them.

Each remote file is scanned by the same parsers as a local one, through a
:class:`~.ranges.RangeReader`; files are scanned concurrently by threads (the work is waiting
on the network). For the cross-file analysis a remote tree gets a *skeleton* folder in a
temporary directory, never in the Hugging Face cache: every file of the tree is there with
its real name and size (a sparse file, no bytes fetched), and the files the repo analysis
reads (configs, tokenizer files, templates, Python code; see :func:`analysis_reads`) are
there with their real bytes, up to 64 MiB each. Weights stay sparse: the analysis takes
their tensor tables from the file scans, as it does for local folders. The skeleton is then
analysed exactly as a local folder is, and findings are reported under the remote names
(``hf://ORG/NAME@COMMIT/path``, the URL).

A file whose read failed (after retries) is an error even when a parser swallowed the
failure; a file that hit its request or byte budget has an X901 finding.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, BinaryIO, cast

from ..formats.streams import BudgetExceeded
from ..model import ArtifactResult, Fact, Location
from . import RemoteError
from .ranges import Fetch, RangeReader
from .sources import RemoteFile, RemoteTree, resolve

if TYPE_CHECKING:
    from ..config import Config
    from ..engine import Policy
    from ..hfcache import Snapshot
    from ..scanner import ProgressCallback

# what the repo analysis opens by name (repo/__init__.py, repo/code.py, templates.py)
ANALYSIS_SUFFIXES = (".json", ".yaml", ".yml", ".py", ".jinja", ".txt")
ANALYSIS_NAMES = ("tokenizer.model",)
MATERIALISE_MAX = 64 * 1024 * 1024  # the largest a repo-analysis reader takes (MAX_JSON)


@dataclass
class RemoteScan:
    """The outcome for the scanner: file results keyed by skeleton path, the skeletons as
    snapshots (for the repo analysis and the renaming), single-file results, errors."""

    by_path: dict[str, ArtifactResult]
    snapshots: list[Snapshot]
    singles: list[ArtifactResult]
    errors: list[str]


class Skeletons:
    """The temporary folder holding every remote tree's skeleton; removed by :meth:`close`."""

    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="modelscan-lite-remote-")
        self._count = 0

    def make(self, tree: RemoteTree) -> tuple[str, dict[str, str], list[str]]:
        """(folder, rel -> skeleton path, names refused). Each file is a sparse file of its
        size; a name that would leave the folder (``..``, absolute) is refused."""
        self._count += 1
        folder = os.path.join(self.root, f"{self._count:04d}")
        os.makedirs(folder)
        paths: dict[str, str] = {}
        refused: list[str] = []
        for rf in tree.files:
            rel = rf.rel or "file"
            parts = rel.split("/")
            if rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in rel:
                refused.append(rel)
                continue
            path = os.path.join(folder, *parts)
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.truncate(rf.size)
            except OSError:
                refused.append(rel)
                continue
            paths[rf.rel] = path
        return folder, paths, refused

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def analysis_reads(rel: str, repo_roots: Sequence[str]) -> bool:
    """Whether the repo analysis of one of ``repo_roots`` (relative folders, '' for the top)
    opens the file ``rel``: the named files of a repo folder, and Python and YAML files
    below it."""
    folder, name = os.path.split(rel)
    if not (name.endswith(ANALYSIS_SUFFIXES) or name in ANALYSIS_NAMES):
        return False
    for root in repo_roots:
        if folder == root:
            return True
        inside = root == "" or folder.startswith(root + "/")
        if inside and name.endswith((".py", ".yaml", ".yml")):
            return True
    return False


@dataclass(frozen=True)
class RemoteJob:
    """One remote file to scan: its tree, its skeleton ``path`` (in ``folder``), whether the
    repo analysis reads it, and the tree's signature (the result cache's sibling key)."""

    tree: RemoteTree
    file: RemoteFile
    path: str
    folder: str
    materialise: bool
    signature: str


def scan_remote(
    specs: Sequence[str],
    policy: Policy,
    config: Config,
    skeletons: Skeletons,
    progress: ProgressCallback | None = None,
) -> RemoteScan:
    """List and scan every remote spec; see the module docstring."""
    from ..hfcache import Snapshot, relocate
    from ..repo import find_repos

    out = RemoteScan({}, [], [], [])
    jobs: list[RemoteJob] = []
    # skeleton file -> its remote file: a parser that reads a sibling's bytes reads these
    remote_at: dict[str, tuple[RemoteTree, RemoteFile]] = {}
    workers = max(1, config.remote_jobs)
    with ThreadPoolExecutor(workers, thread_name_prefix="modelscan-list") as pool:
        listed = list(pool.map(_listing, specs))  # listings wait on the network too
    for tree_or_error in listed:
        if isinstance(tree_or_error, str):
            out.errors.append(tree_or_error)
            continue
        tree = tree_or_error
        folder, paths, refused = skeletons.make(tree)
        out.errors.extend(
            f"{tree.display}/{rel}: a name that cannot be laid out as a file of the repo (it "
            "leaves the repo, or a file has the name of a folder); not scanned"
            for rel in refused
        )
        roots = [os.path.relpath(r, folder).replace(os.sep, "/") for r in find_repos(folder)]
        roots = ["" if r == "." else r for r in roots]
        signature = tree_signature(tree)
        for rf in tree.files:
            if rf.rel in paths:
                reads = analysis_reads(rf.rel, roots)
                jobs.append(RemoteJob(tree, rf, paths[rf.rel], folder, reads, signature))
                remote_at[os.path.realpath(paths[rf.rel])] = (tree, rf)
        if not tree.single:
            snap = Snapshot(
                tree.repo_id or tree.display,
                tree.revision or "",
                folder,
                files={rel: path for rel, path in paths.items()},
                label=tree.display,
            )
            out.snapshots.append(snap)
    total_bytes = sum(job.file.size for job in jobs)
    done = [0, 0]
    lock = threading.Lock()

    def one(job: RemoteJob) -> ArtifactResult:
        try:
            result = scan_one(job, policy, config, remote_at)
        except Exception as exc:  # a bug must not lose the other files
            result = ArtifactResult(
                job.path, "unknown", job.file.size, error=f"internal error: {exc!r}"
            )
        if progress is not None:
            with lock:
                done[0] += 1
                done[1] += job.file.size
                shown = (
                    job.tree.display if job.tree.single else f"{job.tree.display}/{job.file.rel}"
                )
                progress(shown, done[0], len(jobs), done[1], total_bytes)
        return result

    with ThreadPoolExecutor(workers, thread_name_prefix="modelscan-remote") as pool:
        for job, result in zip(jobs, pool.map(one, jobs), strict=True):
            if job.tree.single:
                out.singles.append(relocate(result, job.tree.display))
            else:
                out.by_path[job.path] = result
    return out


def tree_signature(tree: RemoteTree) -> str:
    """A digest of the tree's listing (every name, size and content id): a cached result of
    one of its files stands only while every sibling it could have looked at is the same."""
    listing = "\n".join(f"{f.rel}\0{f.size}\0{f.content_id}" for f in tree.files)
    return hashlib.sha256(listing.encode("utf-8", "surrogatepass")).hexdigest()


def _listing(spec: str) -> RemoteTree | str:
    """The spec listed, or the error that says why not."""
    try:
        return resolve(spec)
    except RemoteError as exc:
        return str(exc)


def scan_one(
    job: RemoteJob,
    policy: Policy,
    config: Config,
    remote_at: dict[str, tuple[RemoteTree, RemoteFile]] | None = None,
) -> ArtifactResult:
    """Scan one remote file by ranges (reported at its skeleton path), or take its result
    from the result cache when its content id, name and tree are unchanged; when the repo
    analysis reads it, write its bytes into the skeleton. ``remote_at``: the remote file
    behind each skeleton file, for parsers that read a sibling's bytes."""
    from ..result_cache import open_cache, settings_key
    from ..scanner import new_context, scan_reader

    tree, rf, path = job.tree, job.file, job.path
    started = time.perf_counter()
    name = tree.display if tree.single else f"{tree.display}/{rf.rel}"
    limits = config.limits
    try:
        fetch = tree.opener(rf)
    except Exception as exc:  # a backend that cannot open it: the file's error
        return ArtifactResult(path, "unknown", rf.size, error=f"cannot open: {exc}")

    def reader_for(f: RemoteFile, label: str, opened: Fetch) -> RangeReader:
        return RangeReader(
            opened,
            f.size,
            label,
            max_requests=limits.max_remote_requests,
            max_bytes=limits.max_remote_bytes,
        )

    reader = reader_for(rf, name, fetch)
    cache = open_cache(config) if rf.content_id else None
    settings = settings_key(policy, config) if cache is not None else ""
    if cache is not None and rf.content_id is not None:
        hit = cache.lookup_content(rf.content_id, rf.rel, job.signature, settings, path=path)
        if hit is not None:
            error = _materialised(reader, path) if job.materialise else None
            return replace(
                hit,
                error=error,
                fetched=reader.stats.bytes,
                requests=reader.stats.requests,
            )
    siblings: list[RangeReader] = []

    def open_sibling(sibling: str) -> BinaryIO:
        found = (remote_at or {}).get(os.path.realpath(sibling))
        if found is None:
            raise FileNotFoundError(sibling)
        other_tree, other = found
        opened = reader_for(other, f"{other_tree.display}/{other.rel}", other_tree.opener(other))
        siblings.append(opened)
        return cast(BinaryIO, opened)

    ctx = new_context(policy, config)
    ctx.open_sibling = open_sibling
    result = scan_reader(
        cast(BinaryIO, reader),
        rf.size,
        path,
        policy,
        config,
        lambda: (rf.sha256, rf.content_id),
        started,
        ctx,
    )
    error = _materialised(reader, path) if job.materialise and reader.failed is None else None
    extra: list[Fact] = []
    if reader.budget_hit is not None and not any(
        f.kind == "anomaly" and f.value == reader.budget_hit[0] for f in ctx.facts
    ):  # a parser caught the budget exception without saying so
        what, detail = reader.budget_hit
        extra.append(Fact("anomaly", what, Location(path), (("message", detail),)))
    findings = result.findings + tuple(policy.findings(extra))
    error = result.error or error
    failed = reader.failed or next((s.failed for s in siblings if s.failed), None)
    if failed is not None and error is None:
        error = f"cannot read: {failed}"
    result = replace(
        result,
        findings=findings,
        error=error,
        skipped=None if error else result.skipped,
        fetched=reader.stats.bytes + sum(s.stats.bytes for s in siblings),
        requests=reader.stats.requests + sum(s.stats.requests for s in siblings),
        seconds=time.perf_counter() - started,
    )
    if cache is not None and rf.content_id is not None and reader.budget_hit is None:
        # siblings inside the tree are covered by the tree's signature; one outside it
        # (a link or an escape) is local state the cache cannot vouch for
        inside = [p for p in ctx.consulted if _within(job.folder, p)]
        if len(inside) == len(ctx.consulted):
            ctx.consulted.clear()
            cache.store_content(
                rf.content_id,
                rf.rel,
                job.signature,
                settings,
                replace(result, fetched=None, requests=None),
                ctx,
            )
    return result


def _within(folder: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == folder or real.startswith(os.path.realpath(folder) + os.sep)


def _materialised(reader: RangeReader, path: str) -> str | None:
    """Write the file's bytes into the skeleton for the repo analysis; the error, if that
    failed (the half-written skeleton file is removed: the analysis must not read it)."""
    try:
        _materialise(reader, path)
    except (OSError, BudgetExceeded) as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        reader.failed = reader.failed or exc
        return f"cannot read: {exc}"
    return None


def _materialise(reader: RangeReader, path: str) -> None:
    """The file's bytes (at most 64 MiB; the rest stays sparse) into the skeleton."""
    take = min(reader.size, MATERIALISE_MAX)
    with open(path, "r+b") as f:
        pos = 0
        while pos < take:
            chunk = reader.pread(pos, min(4 << 20, take - pos))
            if not chunk:
                break
            f.write(chunk)
            pos += len(chunk)
