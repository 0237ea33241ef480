"""The result cache beyond single local files: the repo analysis of a local folder (keyed by
the state of everything below it), remote files (keyed by content id, name and the tree's
listing), and the CLI's ``--no-cache`` and ``cache stats|clear``."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest

from modelscan_lite import result_cache, scanner
from modelscan_lite.config import Config
from modelscan_lite.repo import read_by_any, reads
from modelscan_lite.scanner import scan_paths

from .conftest import SAMPLES, run_cli
from .remote_servers import HubServer, Repo


@pytest.fixture
def db(result_db: Path) -> Path:
    return result_db


@pytest.fixture
def analyses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The repo folders analysed, in order."""
    calls: list[str] = []
    real = scanner.scan_repo

    def counting(root: str, *args: object, **kwargs: object) -> object:
        calls.append(root)
        return real(root, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scanner, "scan_repo", counting)
    return calls


def _repo(tmp_path: Path, sample: str = "H501/bad-vocab-size") -> Path:
    dest = tmp_path / "repo"
    shutil.copytree(SAMPLES / sample, dest)
    return dest


def _same_report(a: object, b: object) -> bool:
    from modelscan_lite.report.json_report import render_json

    def normal(report: object) -> object:
        doc = json.loads(render_json(report))  # type: ignore[arg-type]
        for artifact in doc["artifacts"]:
            artifact.pop("remote", None)
        doc["summary"].pop("remote", None)
        return doc["artifacts"]

    return normal(a) == normal(b)


def test_an_unchanged_repo_folder_is_not_analysed_again(
    db: Path, analyses: list[str], tmp_path: Path
) -> None:
    repo = _repo(tmp_path)
    first = scan_paths([str(repo)], Config(jobs=1))
    assert any(f.rule == "H501" for f in first.findings)
    second = scan_paths([str(repo)], Config(jobs=1))
    assert analyses == [str(repo)]  # the second came from the cache
    assert _same_report(first, second)


def test_a_changed_repo_file_misses(db: Path, analyses: list[str], tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    scan_paths([str(repo)], Config(jobs=1))
    config = json.loads((repo / "config.json").read_text())
    config["vocab_size"] = 8  # the H501 mismatch changes
    (repo / "config.json").write_text(json.dumps(config))
    again = scan_paths([str(repo)], Config(jobs=1))
    assert analyses == [str(repo), str(repo)]
    h501 = [f for f in again.findings if f.rule == "H501"]
    assert h501 and "8" in h501[0].message


def test_a_new_file_in_the_repo_misses(db: Path, analyses: list[str], tmp_path: Path) -> None:
    repo = _repo(tmp_path, "H501/ok-repo")
    assert not [f for f in scan_paths([str(repo)], Config(jobs=1)).findings if f.rule == "H101"]
    (repo / "tokenizer_config.json").write_text(
        json.dumps({"auto_map": {"AutoTokenizer": "tok.Evil"}})
    )
    again = scan_paths([str(repo)], Config(jobs=1))
    assert len(analyses) == 2 and any(f.rule == "H101" for f in again.findings)


def test_a_repo_written_just_now_is_not_stored(
    db: Path, analyses: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(result_cache, "RACY_NS", 10**12)  # everything is "just written"
    repo = _repo(tmp_path)
    scan_paths([str(repo)], Config(jobs=1))
    scan_paths([str(repo)], Config(jobs=1))
    assert len(analyses) == 2


def test_read_by_any_is_reads_for_every_root() -> None:
    """The walk-up test used for many repos says what the per-root test says."""
    rng = random.Random(7)
    names = ["a", "b", "__pycache__", ".git", "c"]
    leaves = ["config.json", "x.py", "y.yaml", "w.bin", "z.yml"]
    for _ in range(2000):
        depth = rng.randint(0, 4)
        path = "/r/" + "/".join(rng.choice(names) for _ in range(depth)) + "/" + rng.choice(leaves)
        path = os.path.normpath(path)
        roots = {
            os.path.normpath("/r/" + "/".join(rng.choice(names) for _ in range(rng.randint(0, 3))))
            for _ in range(rng.randint(1, 4))
        }
        assert read_by_any(roots, path) == any(reads(r, path) for r in roots), (roots, path)


def test_a_remote_rescan_comes_from_the_cache(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second scan of the same commit: no parser runs for a file whose content id, name and
    tree listing are the same, and the report is the same."""
    from huggingface_hub import constants

    files = {p.name: p for p in (SAMPLES / "H501" / "bad-vocab-size").iterdir() if p.is_file()}
    files["evil.pkl"] = SAMPLES / "P101" / "bad-posix-system.pkl"
    with HubServer([Repo("org/cached", files)]) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        monkeypatch.setattr(constants, "ENDPOINT", srv.url)
        first = scan_paths(["hf://org/cached"], Config(jobs=1))
        parsed: list[str] = []
        real = scanner.dispatch_file

        def counting(*args: object, **kwargs: object) -> object:
            parsed.append(str(args[3]))
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(scanner, "dispatch_file", counting)
        second = scan_paths(["hf://org/cached"], Config(jobs=1))
    assert parsed == []
    assert any(f.rule == "P101" for f in second.findings)
    assert any(f.rule == "H501" for f in second.findings)
    assert _same_report(first, second)
    evil = next(a for a in second.artifacts if a.path.endswith("/evil.pkl"))
    assert evil.fetched == 0 and evil.requests == 0  # nothing fetched for a cached result


def test_cli_no_cache_and_cache_commands(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    repo = SAMPLES / "H501" / "bad-vocab-size"  # written long ago: not "racy", so stored
    assert run_cli("scan", "--no-cache", "-q", str(repo), env=env).returncode == 1
    stats = run_cli("cache", "stats", env=env)
    assert stats.returncode == 0 and "entries: 0" in stats.stdout
    assert run_cli("scan", "-q", str(repo), env=env).returncode == 1
    stats = run_cli("cache", "stats", env=env)
    assert "entries: 0" not in stats.stdout and "results.sqlite3" in stats.stdout
    cleared = run_cli("cache", "clear", env=env)
    assert cleared.returncode == 0 and "removed" in cleared.stdout
    assert "entries: 0" in run_cli("cache", "stats", env=env).stdout
