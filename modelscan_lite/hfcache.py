"""The local Hugging Face cache and ``hf://ORG/NAME[@REVISION]`` remote repos.

Cache layout (huggingface_hub): ``<cache>/models--ORG--NAME/`` holds ``blobs/<hash>`` (file
contents, named by their content hash), ``refs/<ref>`` (a commit id) and
``snapshots/<commit>/<path>`` (symbolic links into ``blobs``). The cache lives in
``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``.

Each file is scanned at its name in the snapshot (a blob has no extension, and its siblings,
such as ONNX external data, are found through the snapshot as the loaders find them); revisions
sharing a blob under the same name and siblings share one scan. Findings are reported under
``hf://ORG/NAME@REVISION/path``. A snapshot link that resolves outside
its repo's ``blobs`` folder is a finding and is not followed. Remote repos are downloaded with
``huggingface_hub`` (the ``[hf]`` extra) into the cache and scanned the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .engine import fingerprint
from .model import ArtifactResult, Finding, Location
from .remote import RemoteError as RemoteError  # raised here, defined there

REPO_KINDS = ("models--", "datasets--", "spaces--")


def cache_dir() -> str:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache", "huggingface"
    )
    return os.path.join(home, "hub")


@dataclass
class Snapshot:
    repo_id: str
    revision: str
    path: str
    refs: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> blob path
    escapes: list[tuple[str, str]] = field(default_factory=list)  # (relative path, target)
    missing: list[str] = field(default_factory=list)  # links whose blob is absent
    label: str | None = None  # the name findings carry, when not ``hf://REPO@REVISION``

    @property
    def display(self) -> str:
        return self.label or f"hf://{self.repo_id}@{self.revision}"


def repo_id_of(folder: str) -> str | None:
    name = os.path.basename(folder.rstrip("/"))
    for kind in REPO_KINDS:
        if name.startswith(kind):
            prefix = "" if kind == "models--" else kind[:-2] + "/"
            return prefix + name[len(kind) :].replace("--", "/")
    return None


def snapshots(cache: str) -> list[Snapshot]:
    """Every snapshot of every repo in the cache, its files resolved to blobs safely."""
    out: list[Snapshot] = []
    try:
        repos = sorted(os.listdir(cache))
    except OSError:
        return out
    for name in repos:
        repo_dir = os.path.join(cache, name)
        repo_id = repo_id_of(repo_dir)
        if repo_id is None or not os.path.isdir(repo_dir):
            continue
        refs: dict[str, list[str]] = {}
        refs_dir = os.path.join(repo_dir, "refs")
        for dirpath, _dirs, files in os.walk(refs_dir):
            for ref in files:
                try:
                    with open(os.path.join(dirpath, ref), encoding="utf-8") as f:
                        commit = f.read(100).strip()
                except OSError:
                    continue
                refs.setdefault(commit, []).append(
                    os.path.relpath(os.path.join(dirpath, ref), refs_dir)
                )
        snap_root = os.path.join(repo_dir, "snapshots")
        try:
            revisions = sorted(os.listdir(snap_root))
        except OSError:
            continue
        for revision in revisions:
            snap = Snapshot(
                repo_id, revision, os.path.join(snap_root, revision), sorted(refs.get(revision, []))
            )
            _resolve_files(snap, os.path.realpath(os.path.join(repo_dir, "blobs")))
            out.append(snap)
    return out


def cache_blobs_of(folder: str) -> str | None:
    """The real ``blobs`` folder of the cached repo whose snapshot holds ``folder`` (a path as
    named, links not resolved), or ``None`` outside a cache layout. Inside one, a file named
    in a snapshot is a link into that folder, and loaders follow it."""
    for blobs in blobs_candidates(folder):
        if os.path.isdir(blobs):
            return os.path.realpath(blobs)
    return None


def blobs_candidates(folder: str) -> list[str]:
    """The ``blobs`` folders :func:`cache_blobs_of` looks for, innermost first: one per
    ``<kind>--<name>/snapshots/`` in the path (none outside a cache layout)."""
    parts = os.path.abspath(folder).split(os.sep)
    return [
        os.path.join(os.sep.join(parts[:i]) or os.sep, "blobs")
        for i in range(len(parts) - 2, 0, -1)
        if parts[i] == "snapshots" and parts[i - 1].startswith(REPO_KINDS)
    ]


def in_cache_blobs(real: str, blobs: str | None) -> bool:
    """Whether a resolved path is a blob of that cached repo (directly in ``blobs``)."""
    return blobs is not None and os.path.dirname(real) == blobs


def _resolve_files(snap: Snapshot, blobs: str) -> None:
    for dirpath, dirs, files in os.walk(snap.path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, snap.path)
            real = os.path.realpath(full)
            if os.path.islink(full) and os.path.commonpath([real, blobs]) != blobs:
                snap.escapes.append((rel, real))
                continue
            if os.path.isfile(real):
                snap.files[rel] = real
            else:
                snap.missing.append(rel)


def relocate(result: ArtifactResult, display_path: str) -> ArtifactResult:
    """A blob's result reported under the path a user recognises."""
    findings = tuple(relocate_finding(f, display_path) for f in result.findings)
    return replace(result, path=display_path, findings=findings)


def relocate_finding(finding: Finding, path: str) -> Finding:
    """The finding at another path, its fingerprint recomputed for that path."""
    loc = Location(path, finding.location.member, finding.location.offset, finding.location.key)
    return replace(
        finding, location=loc, fingerprint=fingerprint(finding.rule, loc, finding.message)
    )


def parse_remote(spec: str) -> tuple[str, str | None]:
    """``hf://ORG/NAME[@REVISION]`` -> (repo id, revision)."""
    body = spec[len("hf://") :]
    repo, _, revision = body.partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise RemoteError(f"{spec}: expected hf://ORG/NAME[@REVISION]")
    return repo, revision or None


def download(spec: str, fetch: Callable[..., str] | None = None) -> Snapshot:
    """Fetch a remote repo into the cache (or find it there offline) and describe it."""
    repo_id, revision = parse_remote(spec)
    if fetch is None:
        try:
            from huggingface_hub import snapshot_download
        except ImportError:
            raise RemoteError(
                f"{spec}: scanning hf:// repos needs huggingface_hub: "
                "pip install 'modelscan-lite[hf]'"
            ) from None
        fetch = snapshot_download
    try:
        path = fetch(repo_id=repo_id, revision=revision, cache_dir=cache_dir())
    except Exception as exc:  # the hub client raises many types: all mean "not fetched"
        raise RemoteError(f"{spec}: cannot fetch: {type(exc).__name__}: {exc}") from None
    snap_dir = os.path.realpath(path)
    repo_dir = os.path.dirname(os.path.dirname(snap_dir))
    snap = Snapshot(repo_id, os.path.basename(snap_dir), path)
    _resolve_files(snap, os.path.realpath(os.path.join(repo_dir, "blobs")))
    return snap
