"""Walks paths, scans each file by content under its budgets, applies the rules, builds the Report.

One file on disk is one :class:`~modelscan_lite.model.ArtifactResult`, its archive members
included. Files are scanned in a process pool when there are several (``--jobs``); a failure
inside a parser becomes a finding (X904) for that file and never stops the others.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, BinaryIO

from . import __version__
from .config import Config, check_rule_ids
from .content_id import full_sha256, open_logged, read_id
from .engine import Policy, load_rules
from .formats.base import Context
from .formats.dispatch import dispatch_file
from .formats.streams import BudgetExceeded, DecompressBudget
from .limits import Deadline
from .model import ArtifactResult, Fact, Finding, Location, Report, TensorTable
from .remote import is_remote
from .result_cache import open_cache, settings_key

if TYPE_CHECKING:
    from .executors import Executor
    from .hfcache import Snapshot
    from .remote.scan import RemoteScan

SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".ruff_cache"})


def build_policy(config: Config) -> Policy:
    """The active policy; ConfigError when the config names a rule that does not exist."""
    ruleset = load_rules()
    check_rule_ids(config, [r.id for r in ruleset.rules])
    return Policy.build(
        ruleset,
        config.select,
        config.ignore,
        config.severity,
        config.allow_globals,
        [(p, ids) for p, ids in config.per_path_ignores],
        config.root or os.getcwd(),
    )


def iter_files(
    paths: Sequence[str], errors: list[str], notes: list[str] | None = None
) -> Iterator[str]:
    """Every regular file under ``paths``, and a word for everything else: nothing met while
    walking is dropped silently. File links are followed (a Hugging Face snapshot is links
    into ``blobs/``). Directory links are never followed, so no loop and no walk of the whole
    machine through a link to ``/``: one that points inside the scanned folder is a note (its
    files are scanned at their real place), one that leaves it is an error. A dangling or
    looping link, a FIFO, a device or socket, an unreadable directory and a path the system
    refuses are errors too (exit 2 unless there are findings)."""
    notes = notes if notes is not None else []
    for p in paths:
        if os.path.isdir(p):
            yield from _walk(p, errors, notes)
        elif os.path.isfile(p):
            yield p
        elif os.path.lexists(p) and not os.path.exists(p):
            errors.append(f"{p}: dangling symbolic link to {_link_target(p)}")
        elif os.path.exists(p):
            errors.append(f"{p}: not a regular file or directory ({_kind(p)})")
        else:
            errors.append(f"{p}: no such file or directory")


def _walk(top: str, errors: list[str], notes: list[str]) -> Iterator[str]:
    root = os.path.realpath(top)
    seen: set[tuple[int, int]] = set()
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            errors.append(f"{folder}: cannot read this directory ({exc.strerror or exc})")
            continue
        subdirs: list[str] = []
        for entry in entries:
            full = entry.path
            try:
                if entry.is_symlink():
                    if not os.path.exists(full):
                        errors.append(
                            f"{full}: dangling or looping symbolic link to {_link_target(full)}"
                        )
                        continue
                    if os.path.isdir(full):
                        target = os.path.realpath(full)
                        if _within(root, target):
                            notes.append(f"{full}: directory link to {target}, scanned there")
                        else:
                            errors.append(
                                f"{full}: directory link leaves the scanned folder, to "
                                f"{target}; not followed (scan that folder too)"
                            )
                        continue
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIP_DIRS:
                        subdirs.append(full)
                elif entry.is_file():
                    yield full
                else:
                    errors.append(f"{full}: not a regular file or directory ({_kind(full)})")
            except OSError as exc:
                errors.append(f"{full}: cannot be read ({exc.strerror or exc})")
        stack.extend(reversed(subdirs))


def _within(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _link_target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _kind(path: str) -> str:
    import stat

    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "unreadable"
    for test, name in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


LAYERS = frozenset({"gzip", "bz2", "xz", "lzma", "zlib", "lz4"})


def primary_format(formats: list[str]) -> tuple[str, ...]:
    """The format ids that name a file, from the outside in: a zip or tar is named by its
    profile (``("pytorch-zip",)``), a compression layer by what it holds (``("gzip",
    "pickle")``)."""
    if not formats:
        return ("unknown",)
    inner = 0
    while inner < len(formats) - 1 and formats[inner] in LAYERS:
        inner += 1
    fmt = formats[inner]
    if fmt in ("zip", "tar") and inner + 1 < len(formats):
        fmt = formats[inner + 1]  # the archive's profile (``zip``/``tar`` when none matches)
    return (formats[0], fmt) if inner else (fmt,)


def new_context(policy: Policy, config: Config) -> Context:
    """A fresh parse context for one artifact: its own deadline and decompression budget."""
    limits = config.limits
    return Context(
        limits,
        Deadline(limits.max_seconds),
        DecompressBudget(limits.max_decompressed, limits.max_ratio),
        wants_evidence=policy.would_flag,
    )


def scan_file(path: str, policy: Policy, config: Config) -> ArtifactResult:
    """Scan one file on disk; never raises for anything the file contains. With
    ``config.cache`` the result of an unchanged file comes from the result cache, and a new
    one goes into it (:mod:`.result_cache`)."""
    started = time.perf_counter()
    cache = open_cache(config)
    settings = settings_key(policy, config) if cache is not None else ""
    if cache is not None and (hit := cache.lookup(path, settings)) is not None:
        return hit
    try:
        f = open_logged(path)
    except OSError as exc:
        return _unreadable(path, 0, exc, started)
    with f:
        try:
            opened = os.fstat(f.fileno())
        except OSError as exc:
            return _unreadable(path, 0, exc, started)
        size = opened.st_size

        def identity() -> tuple[str | None, str]:
            if config.full_hash:
                sha256 = full_sha256(f)
                return sha256, f"sha256:{sha256}"
            return None, read_id(f, size)

        ctx = new_context(policy, config)
        result = scan_reader(f, size, path, policy, config, identity, started, ctx)
        if cache is not None:
            cache.store(path, settings, result, f.ranges, ctx, opened=opened)
        return result


def _unreadable(path: str, size: int, exc: OSError, started: float) -> ArtifactResult:
    return ArtifactResult(
        path,
        "unknown",
        size,
        error=f"cannot read: {exc.strerror or exc}",
        seconds=time.perf_counter() - started,
    )


def scan_reader(
    f: BinaryIO,
    size: int,
    path: str,
    policy: Policy,
    config: Config,
    identity: Callable[[], tuple[str | None, str | None]],
    started: float,
    ctx: Context | None = None,
) -> ArtifactResult:
    """Scan the ``size`` bytes of the open file ``f``, reported as ``path``: a file on disk
    or a remote one read by ranges (:mod:`.remote`). ``identity`` gives (sha256, content_id)
    once the parsers are done. ``ctx``: the parse context to use (a new one by default), for
    a caller that needs it afterwards (the result cache: consulted paths, facts). Never
    raises for anything the bytes contain; an OSError (a read that failed) is the result's
    error."""
    ctx = ctx if ctx is not None else new_context(policy, config)
    where = Location(path)
    sha256 = content = None
    try:
        try:
            dispatch_file(f, 0, size, where, ctx, path)
        finally:
            sha256, content = identity()
    except OSError as exc:
        return _unreadable(path, size, exc, started)
    except BudgetExceeded as exc:  # a budget of the reader itself (a remote file's requests)
        ctx.anomaly(exc.what, where, exc.detail)
    except RecursionError:
        ctx.anomaly("internal-error", where, "nesting too deep for the scanner")
    except Exception as exc:
        ctx.anomaly("internal-error", where, f"{type(exc).__name__}: {exc}")
    if any(
        f.kind == "pickle.global" and f.value == "joblib.numpy_pickle.NumpyArrayWrapper"
        for f in ctx.facts
    ):
        ctx.formats.append("joblib")
    layers = primary_format(ctx.formats)
    fmt = "+".join(layers)
    findings = tuple(policy.findings(ctx.facts))
    skipped = None
    if fmt in ("text", "unknown") and not findings:
        skipped = (
            "text file, not a model format"
            if fmt == "text"
            else "unrecognised binary content, not a model format"
        )
    return ArtifactResult(
        path,
        fmt,
        size,
        findings,
        skipped=skipped,
        sha256=sha256,
        content_id=content,
        seconds=time.perf_counter() - started,
        layers=layers,
        tensors=ctx.tensors,
    )


def scan_repo(
    root: str,
    policy: Policy,
    config: Config,
    tables: Mapping[str, TensorTable | None],
    extra: Sequence[Fact] = (),
    ctx: Context | None = None,
) -> ArtifactResult:
    """Cross-file analysis of one Hugging Face repo folder, as one artifact. ``tables``: the
    tensor tables the file scan recorded (absolute path -> table); no weights file is read
    again. ``ctx``: the parse context to use (for the result cache)."""
    from .repo import analyze_repo, looks_like_repo

    started = time.perf_counter()
    ctx = ctx if ctx is not None else new_context(policy, config)
    ctx.weight_tables = tables
    ctx.facts.extend(extra)
    try:
        if looks_like_repo(root):
            analyze_repo(root, ctx)
    except Exception as exc:  # a bug must not hide the other findings
        ctx.anomaly("internal-error", Location(root), f"{type(exc).__name__}: {exc}")
    findings = tuple(policy.findings(ctx.facts))
    return ArtifactResult(root, "hf-repo", 0, findings, seconds=time.perf_counter() - started)


def scan_repo_cached(
    root: str,
    policy: Policy,
    config: Config,
    tables: Mapping[str, TensorTable | None],
) -> ArtifactResult:
    """:func:`scan_repo` of a local folder, from the result cache when nothing below the
    folder changed (:func:`.result_cache.folder_state`: names, links, stat identities),
    under the same settings, named the same way from the same working directory."""
    cache = open_cache(config)
    if cache is None:
        return scan_repo(root, policy, config, tables)
    from .result_cache import folder_state

    began = time.time_ns()
    state = folder_state(root, began)
    settings = settings_key(policy, config)
    name = f"{os.getcwd()}\0{root}"
    if state is not None:
        hit = cache.lookup_content(f"folder:{state}", name, "", settings)
        if hit is not None:
            return hit
    ctx = new_context(policy, config)
    result = scan_repo(root, policy, config, tables, ctx=ctx)
    if state is not None and folder_state(root, began) == state:  # unchanged meanwhile
        cache.store_content(f"folder:{state}", name, "", settings, result, ctx)
    return result


# progress(current file or None at the end, files done, files, bytes done, bytes): called
# as each file starts (one process) or ends (a pool, Dask), and once when all are done
ProgressCallback = Callable[[str | None, int, int, int, int], None]


def _scan_all(
    files: list[str],
    policy: Policy,
    config: Config,
    progress: ProgressCallback | None,
    executor: Executor | None = None,
) -> dict[str, ArtifactResult]:
    """Every file scanned by ``executor``, or by the one ``config.executor`` names (opened
    and closed here): in this process, a process pool or Dask (:mod:`.executors`). Files
    whose result is in the result cache are taken from it here: only the others go to the
    executor (a pool or a cluster would cost more than the lookups it would share)."""
    from .executors import open_executor

    found: dict[str, ArtifactResult] = {}
    cache = open_cache(config) if len(files) > 1 else None
    if cache is not None:
        settings = settings_key(policy, config)
        for path in files:
            hit = cache.lookup(path, settings)
            if hit is not None:
                found[path] = hit
    todo = [f for f in files if f not in found]
    if not todo and files:  # all cached: no pool or cluster to start
        if progress is not None:
            progress(None, len(files), len(files), 0, 0)
    elif executor is not None:
        found.update(zip(todo, executor.scan(todo, policy, config, progress), strict=True))
    else:
        with open_executor(config) as opened:
            found.update(zip(todo, opened.scan(todo, policy, config, progress), strict=True))
    return {f: found[f] for f in files}


def _cache_representatives(snaps: Sequence[Snapshot]) -> dict[str, str]:
    """For each file of the snapshots, the snapshot path scanned for it. A file is scanned at
    its name in the snapshot, never as a bare blob: the checks that depend on the name
    (extension, sibling files, ONNX external data) see what a loader sees. Revisions that share
    a blob under the same name with the same siblings share one scan."""
    import hashlib

    chosen: dict[str, str] = {}
    seen: dict[tuple[str, str, str], str] = {}
    for snap in snaps:
        folders: dict[str, list[tuple[str, str]]] = {}
        for rel, blob in snap.files.items():
            folders.setdefault(os.path.dirname(rel), []).append((os.path.basename(rel), blob))
        signature = {
            folder: hashlib.sha256(repr(sorted(items)).encode()).hexdigest()
            for folder, items in folders.items()
        }
        for rel, blob in snap.files.items():
            path = os.path.join(snap.path, rel)
            key = (blob, rel, signature[os.path.dirname(rel)])
            chosen[path] = seen.setdefault(key, path)
    return chosen


def _snapshot_results(
    snap: Snapshot,
    by_path: dict[str, ArtifactResult],
    scanned_as: dict[str, str],
    policy: Policy,
    config: Config,
) -> list[ArtifactResult]:
    """A cached or downloaded snapshot: its files and repo findings, under ``hf://`` names."""
    from .hfcache import relocate
    from .repo import find_repos

    out = [
        _with_blob_id(
            relocate(by_path[scanned_as[os.path.join(snap.path, rel)]], f"{snap.display}/{rel}"),
            snap.files[rel],
        )
        for rel in sorted(snap.files)
    ]
    extra = [
        Fact(
            "repo.cache-link-escape", rel, Location(f"{snap.display}/{rel}"), (("target", target),)
        )
        for rel, target in snap.escapes
    ]
    extra += [
        Fact(
            "repo.unanalysed",
            rel,
            Location(f"{snap.display}/{rel}"),
            (
                (
                    "message",
                    f"`{rel}` links to a blob that is not in the cache (an interrupted "
                    "download?); it was not scanned",
                ),
            ),
        )
        for rel in snap.missing
    ]
    # every repo folder of the snapshot, as for a local folder (a diffusers pipeline has one
    # per component); the cache's own findings go with the top
    roots = find_repos(snap.path)
    if extra and snap.path not in roots:
        roots.insert(0, snap.path)
    tables = {
        os.path.abspath(os.path.join(snap.path, rel)): by_path[
            scanned_as[os.path.join(snap.path, rel)]
        ].tensors
        for rel in snap.files
    }
    for root in roots:
        repo = scan_repo(root, policy, config, tables, extra if root == snap.path else ())
        display = snap.display + root[len(snap.path) :].replace(os.sep, "/")
        moved = tuple(_prefix(f, snap.path, snap.display) for f in repo.findings)
        out.append(ArtifactResult(display, "hf-repo", 0, moved, seconds=repo.seconds))
    return out


def _with_blob_id(result: ArtifactResult, blob: str) -> ArtifactResult:
    """A cache file's identity from its blob's name (a SHA-256 or git blob id), free."""
    from .content_id import blob_id

    sha256, content = blob_id(blob)
    if content is None:
        return result
    return replace(result, sha256=sha256 or result.sha256, content_id=content)


def _prefix(finding: Finding, old: str, new: str) -> Finding:
    from .hfcache import relocate_finding

    path = finding.location.path
    if path.startswith(old):
        path = new + path[len(old) :]
    return relocate_finding(finding, path)


def _files_alone(
    results: list[ArtifactResult], analysed: set[str], policy: Policy, config: Config
) -> tuple[list[ArtifactResult], list[str]]:
    """Text files outside any analysed repo folder that are repo files (configs, tokenizer
    configs, chat templates, modules.json, model_index.json, YAML configs): analysed on their
    own, with the findings a folder scan gives them. Returns the results and those files."""
    if not any(r.format == "text" for r in results):
        return results, []  # nothing to analyse: the repo modules are not even imported
    from .repo import analyze_file, read_by_any

    out: list[ArtifactResult] = []
    alone: list[str] = []
    for result in results:
        if (
            result.format != "text"
            or is_remote(result.path)  # a repo's file (remote or cached): its repo was analysed
            or read_by_any(analysed, result.path)
        ):
            out.append(result)
            continue
        started = time.perf_counter()
        ctx = new_context(policy, config)
        try:
            kind = analyze_file(result.path, ctx)
        except OSError:
            kind = None
        except Exception as exc:  # a bug must not hide the file's other findings
            ctx.anomaly("internal-error", Location(result.path), f"{type(exc).__name__}: {exc}")
            kind = "repo file"
        if kind is None:
            out.append(result)
            continue
        alone.append(result.path)
        findings = tuple(policy.findings(ctx.facts))
        out.append(
            replace(
                result,
                findings=result.findings + findings,
                skipped=None,
                seconds=result.seconds + time.perf_counter() - started,
            )
        )
    return out, alone


def _read_by_repo(result: ArtifactResult, roots: set[str]) -> ArtifactResult:
    """Text files of an analysed repo (config, tokenizer, templates, code) are not skipped:
    the repo analysis read them."""
    from .repo import read_by_any

    if result.skipped and result.format == "text" and read_by_any(roots, result.path):
        from dataclasses import replace

        return replace(result, skipped="read by the repo analysis, see its hf-repo entry")
    return result


def scan_paths(
    paths: Sequence[str],
    config: Config,
    progress: ProgressCallback | None = None,
    hf_cache: bool = False,
    executor: Executor | None = None,
) -> Report:
    """Scan files, folders, ``hf://`` repos and (``hf_cache``) the local Hugging Face cache.
    ``executor``: an open executor to scan the files with (:mod:`.executors`); by default the
    one ``config.executor`` names, opened for this scan."""
    started = time.perf_counter()
    errors: list[str] = []
    notes: list[str] = []
    snaps: list[Snapshot] = []
    remote_specs = [p for p in paths if is_remote(p)]
    if _hub_offline():  # HF_HUB_OFFLINE: an hf:// repo is scanned from the local cache
        from .hfcache import RemoteError, download

        for spec in (p for p in remote_specs if p.lower().startswith("hf://")):
            try:
                snaps.append(download(spec))
            except RemoteError as exc:
                errors.append(f"{exc} (HF_HUB_OFFLINE is set: only the local cache is read)")
        remote_specs = [p for p in remote_specs if not p.lower().startswith("hf://")]
    if hf_cache:
        from .hfcache import cache_dir, snapshots

        cache = cache_dir()
        if not os.path.isdir(cache):
            errors.append(f"{cache}: no Hugging Face cache here (set HF_HUB_CACHE or HF_HOME)")
        snaps.extend(snapshots(cache))
    local = [p for p in paths if not is_remote(p)]
    files = list(dict.fromkeys(iter_files(local, errors, notes)))
    ruleset = load_rules()
    policy = build_policy(config)
    waiving = bool(config.suppress or config.baseline or config.write_baseline)
    if waiving:  # a bad baseline file fails before the scan, not after it
        from .waivers import prepare

        baseline = prepare(config)
    with contextlib.ExitStack() as cleanup:
        remote_results: list[ArtifactResult] = []
        remote_snaps: list[Snapshot] = []
        by_remote: dict[str, ArtifactResult] = {}
        if remote_specs:  # read by ranges, never downloaded (modelscan_lite.remote)
            from .remote.scan import Skeletons, scan_remote

            skeletons = Skeletons()
            cleanup.callback(skeletons.close)
            remote = scan_remote(remote_specs, policy, config, skeletons, progress)
            errors.extend(remote.errors)
            if config.download:
                remote_snaps, downloaded = _download_clean(remote, policy, config, notes, errors)
                snaps.extend(downloaded)
            else:
                remote_snaps = remote.snapshots
            kept = {os.path.join(s.path, rel) for s in remote_snaps for rel in s.files}
            by_remote = {p: r for p, r in remote.by_path.items() if p in kept}
            remote_results = list(remote.singles) if not config.download else []
        scanned_as = _cache_representatives(snaps)
        todo = list(dict.fromkeys(files + list(scanned_as.values())))
        by_path = _scan_all(todo, policy, config, progress, executor)
        by_path.update(by_remote)
        scanned_as.update({p: p for p in by_remote})
        results = [by_path[f] for f in files] + remote_results
        for snap in snaps + remote_snaps:
            results.extend(_snapshot_results(snap, by_path, scanned_as, policy, config))
        analysed: set[str] = set()
        tables = {os.path.abspath(p): r.tensors for p, r in by_path.items()}
        for path in local:
            if os.path.isdir(path):
                from .repo import find_repos

                roots = find_repos(path)
                absolute = {os.path.abspath(r) for r in roots}
                analysed.update(absolute)
                results = [_read_by_repo(r, absolute) for r in results]
                results.extend(scan_repo_cached(root, policy, config, tables) for root in roots)
    results, alone = _files_alone(results, analysed, policy, config)
    if alone:
        notes.append(
            f"{len(alone)} repo file(s) scanned without their folder ({', '.join(alone[:3])}"
            f"{', ...' if len(alone) > 3 else ''}): every check of the file alone ran; the "
            "checks against the repo's other files (config vs weights, tokenizer vs "
            "embeddings, template copies) need the folder: scan it"
        )
    errors.extend(f"{r.path}: {r.error}" for r in results if r.error)
    notes.extend(_degraded_evidence(results))
    if config.dynamic != "off":
        real = {f"{s.display}/{rel}": blob for s in snaps for rel, blob in s.files.items()}
        real.update({s.display: s.path for s in snaps})
        results = _dynamic(results, real, policy, config, notes, errors)
    report = Report(
        tool_version=__version__,
        rules_version=ruleset.version,
        active_rules=tuple(r.id for r in policy.rules),
        fail_on=config.fail_on,
        artifacts=tuple(results),
        errors=tuple(errors),
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
    )
    if waiving:  # baseline and suppressions (modelscan_lite.waivers)
        from .waivers import apply_waivers

        report = apply_waivers(report, config, baseline)
    return report


def _hub_offline() -> bool:
    """huggingface_hub's offline switch (its own parsing of ``HF_HUB_OFFLINE``)."""
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return value in ("1", "ON", "YES", "TRUE")


def _download_clean(
    remote: RemoteScan,
    policy: Policy,
    config: Config,
    notes: list[str],
    errors: list[str],
) -> tuple[list[Snapshot], list[Snapshot]]:
    """``--download``: each ``hf://`` repo whose remote scan fails nothing is downloaded into
    the Hugging Face cache and scanned there (as before range reads); one that fails stays
    remote, with a note. Returns (snapshots kept remote, snapshots downloaded)."""
    from .hfcache import RemoteError, download

    kept: list[Snapshot] = []
    downloaded: list[Snapshot] = []
    for snap in remote.snapshots:
        own = [r for p, r in remote.by_path.items() if p.startswith(snap.path + os.sep)]
        failing = [
            f
            for r in own
            for f in r.findings
            if config.fail_on is not None and f.severity >= config.fail_on
        ]
        if failing or any(r.error for r in own) or not snap.display.startswith("hf://"):
            kept.append(snap)
            if snap.display.startswith("hf://"):
                notes.append(
                    f"{snap.display}: not downloaded (--download): its remote scan has "
                    f"{len(failing)} failing finding(s) or errors"
                )
            continue
        try:
            downloaded.append(download(f"hf://{snap.repo_id}@{snap.revision}"))
        except RemoteError as exc:
            errors.append(str(exc))
            kept.append(snap)
    return kept, downloaded


def _degraded_evidence(results: list[ArtifactResult]) -> list[str]:
    """A note when fickling could not be imported (once, with the reason): the verdicts stand,
    but the decompiled evidence is missing, and a broken install is never silent."""
    from .formats.pickles import FICKLING_MISSING

    for result in results:
        for finding in result.findings:
            if finding.evidence and finding.evidence.startswith(FICKLING_MISSING):
                return [finding.evidence.splitlines()[0].lstrip("# ")]
    return []


def _dynamic(
    results: list[ArtifactResult],
    real: dict[str, str],
    policy: Policy,
    config: Config,
    notes: list[str],
    errors: list[str],
) -> list[ArtifactResult]:
    """``--dynamic``: the sandboxed loads, after the static scan (see :mod:`.sandbox`)."""
    from .sandbox import SandboxUnavailable, run_dynamic

    remote = {i for i, r in enumerate(results) if is_remote(r.path) and r.path not in real}
    if remote:  # read by ranges: nothing on disk to load
        message = (
            f"dynamic analysis skipped for {len(remote)} remote file(s) read by ranges: a "
            "sandboxed load needs the files on disk (hf:// with --download)"
        )
        (errors if config.dynamic == "require" else notes).append(message)
    local = [r for r in results if not (is_remote(r.path) and r.path not in real)]
    try:
        loaded = iter(
            run_dynamic(local, policy, config.sandbox, config.jobs or os.cpu_count() or 1, real)
        )
        return [r if i in remote else next(loaded) for i, r in enumerate(results)]
    except SandboxUnavailable as exc:
        if config.dynamic == "require":
            errors.append(f"--dynamic require: no sandbox backend can run here ({exc})")
        else:
            notes.append(f"dynamic analysis skipped: no sandbox backend can run here ({exc})")
        return results
