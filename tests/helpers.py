"""Test helpers: scan a path or bytes in-process and look findings up by rule and member."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from modelscan_lite.config import Config
from modelscan_lite.engine import load_rules
from modelscan_lite.limits import Limits
from modelscan_lite.model import ArtifactResult, Finding
from modelscan_lite.scanner import build_policy, scan_file


def scan(path: str | Path, *, limits: Limits | None = None, **cfg: object) -> ArtifactResult:
    config = Config(limits=limits or Limits(), **cfg)  # type: ignore[arg-type]
    return scan_file(str(path), build_policy(config), config)


def scan_bytes(
    tmp_path: Path, data: bytes, name: str = "sample.pkl", limits: Limits | None = None
) -> ArtifactResult:
    target = tmp_path / name
    target.write_bytes(data)
    return scan(target, limits=limits)


def rules_of(result: ArtifactResult) -> set[str]:
    return {f.rule for f in result.findings}


def find(result: ArtifactResult, rule: str, member: str | None = None) -> Finding:
    hits = [
        f
        for f in result.findings
        if f.rule == rule and (member is None or f.location.member == member)
    ]
    assert hits, (
        f"expected {rule} at member {member!r}; got "
        f"{[(f.rule, f.location.member, f.message) for f in result.findings]}"
    )
    return hits[0]


def all_rule_ids() -> list[str]:
    return [r.id for r in load_rules().rules]


def add_cached_repo(
    cache: Path, repo: str, revisions: list[tuple[str, dict[str, bytes], str | None]]
) -> None:
    """A repo in a Hugging Face cache layout: blobs by content hash, snapshot links, refs."""
    root = cache / ("models--" + repo.replace("/", "--"))
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    for rev, files, ref in revisions:
        for name, data in files.items():
            blob = root / "blobs" / hashlib.sha256(data).hexdigest()
            if not blob.exists():
                blob.write_bytes(data)
            dst = root / "snapshots" / rev / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(blob, dst.parent), dst)
        if ref:
            (root / "refs" / ref).write_text(rev)
