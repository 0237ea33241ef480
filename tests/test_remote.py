"""Remote scanning by range requests (issue 14): ``hf://`` through a Hub-compatible server and
``https://`` through a Range server, both real HTTP servers started here on 127.0.0.1.

The acceptance points: findings and locations identical to a local scan of the same files;
the byte budgets (a 16 GiB repo, a 1 GiB checkpoint); nothing written to the Hugging Face
cache; network failures are errors (exit 2) that never hide a finding; retries; a server that
ignores ranges is refused, not downloaded from."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelscan_lite.config import Config
from modelscan_lite.remote import RemoteError
from modelscan_lite.remote.scan import Skeletons
from modelscan_lite.remote.sources import RemoteFile, RemoteTree, redact
from modelscan_lite.repo import find_repos
from modelscan_lite.scanner import scan_paths

from .conftest import SAMPLES, run_cli
from .remote_servers import HubServer, RangeServer, Repo, make_repo

pytest.importorskip("huggingface_hub")
pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

GiB = 1 << 30


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Repo]:
    root = tmp_path_factory.mktemp("hub")
    return {
        "big": make_repo(root, "org/big", "safetensors-sharded", total_size=16 * GiB, shards=4),
        "evil": make_repo(root, "org/evil", "pickle-bin", payload=True),
        "ckpt": make_repo(root, "org/ckpt", "pytorch-zip", total_size=GiB),
        "gguf": make_repo(root, "org/gguf", "gguf"),
        "onnx": make_repo(root, "org/onnx", "onnx"),
        "data": make_repo(root, "org/data", "safetensors-sharded", repo_type="dataset"),
    }


@pytest.fixture
def hub(fixtures: dict[str, Repo], tmp_path: Path) -> Iterator[tuple[HubServer, dict[str, str]]]:
    with HubServer(fixtures.values()) as srv:
        env = {
            "HF_ENDPOINT": srv.url,
            "HF_HOME": str(tmp_path / "hf-home"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        yield srv, env


@pytest.fixture
def hub_env(hub: tuple[HubServer, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> HubServer:
    """The hub server, with this process pointed at it (huggingface_hub reads HF_ENDPOINT at
    import: its constant is patched too)."""
    from huggingface_hub import constants

    srv, env = hub
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(constants, "ENDPOINT", srv.url)
    return srv


def _json(args: list[str], env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    proc = run_cli("scan", "-f", "json", "--fail-on", "never", *args, env=env)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _findings(doc: dict[str, Any], prefix: str) -> set[tuple[Any, ...]]:
    """Each finding as (path below the prefix, rule, member, offset, key, message)."""
    pattern = re.compile(prefix)
    out = set()
    for artifact in doc["artifacts"]:
        for f in artifact["findings"]:
            loc = f["location"]
            rel = pattern.sub("", loc["path"]).lstrip("/")
            message = pattern.sub("", f["message"])
            out.add((rel, f["rule"], loc["member"], loc["offset"], loc["key"], message))
    return out


def test_hf_scan_of_every_sample_equals_the_local_scan(tmp_path: Path) -> None:
    """Every sample (every format, attack and sibling layout) served as one hub repo: the
    remote scan reports exactly the local scan's findings at the same locations; and each
    sample repo folder (the H rules) served as its own repo gets its repo findings."""
    files = {str(p.relative_to(SAMPLES)): p for p in SAMPLES.rglob("*") if p.is_file()}
    repo_roots = [Path(r) for r in find_repos(str(SAMPLES))]
    repos = [Repo("s/all", files)] + [
        Repo(f"r{i}/{r.name}", {str(p.relative_to(r)): p for p in r.rglob("*") if p.is_file()})
        for i, r in enumerate(repo_roots)
    ]
    with HubServer(repos) as srv:
        env = {"HF_ENDPOINT": srv.url, "HF_HOME": str(tmp_path / "h")}
        code, remote = _json(["hf://s/all"], env)
        assert code == 0 and remote["errors"] == []
        _, remote_repos = _json([f"hf://{r.repo_id}" for r in repos[1:]], env)
    _, local = _json([str(SAMPLES)])
    mine = _findings(local, re.escape(str(SAMPLES)))
    assert len(mine) > 300
    assert _findings(remote, r"hf://s/all@[0-9a-f]{40}") == mine
    # each repo folder: the repo analysis too (config vs weights, tokenizers, templates)
    _, local_repos = _json([str(r) for r in repo_roots])
    assert _per_repo(local_repos, {str(r): i for i, r in enumerate(repo_roots)}) == _per_repo(
        remote_repos, {f"hf://{r.repo_id}": i for i, r in enumerate(repos[1:])}
    )


def _per_repo(doc: dict[str, Any], roots: dict[str, int]) -> set[tuple[Any, ...]]:
    """Findings as (repo number, path inside it, rule, member, offset, key, message), the
    repo's own name taken out of paths and messages."""
    out = set()
    for artifact in doc["artifacts"]:
        for f in artifact["findings"]:
            loc = f["location"]
            path = re.sub(r"@[0-9a-f]{40}", "", loc["path"])
            root = max((r for r in roots if path == r or path.startswith(r + "/")), key=len)
            message = re.sub(re.escape(root) + r"(@[0-9a-f]{40})?/?", "", f["message"])
            rel = path[len(root) :].lstrip("/")
            out.add(
                (roots[root], rel, f["rule"], loc["member"], loc["offset"], loc["key"], message)
            )
    return out


def test_https_files_equal_the_local_scan() -> None:
    files = {
        str(p.relative_to(SAMPLES)): p
        for p in sorted(SAMPLES.rglob("*"))
        if p.is_file() and p.parent.name[0] in "PAGS"  # pickles, archives, GGUF, safetensors
    }
    with RangeServer(files) as srv:
        urls = [f"{srv.url}/{name}" for name in files]
        _, remote = _json(urls)
    _, local = _json([str(p) for p in files.values()])
    assert _findings(remote, re.escape(srv.url)) == _findings(local, re.escape(str(SAMPLES)))
    assert remote["summary"]["remote"]["files"] == len(files)


def test_sixteen_gib_repo_costs_under_a_thousandth_of_its_bytes(
    hub: tuple[HubServer, dict[str, str]], fixtures: dict[str, Repo]
) -> None:
    srv, env = hub
    code, doc = _json(["hf://org/big"], env)
    assert code == 0 and doc["errors"] == []
    total = sum(p.stat().st_size for p in fixtures["big"].files.values())
    assert total > 15.9 * GiB  # 16 GiB as the llama-like shapes round it
    remote = doc["summary"]["remote"]
    assert remote["bytes"] == total
    assert remote["fetched"] <= total // 1000
    assert srv.file_bytes_sent <= total // 1000  # what the server really sent
    paths = {a["path"] for a in doc["artifacts"]}
    assert any(p.endswith("/model-00004-of-00004.safetensors") for p in paths)
    assert any(a["format"] == "hf-repo" for a in doc["artifacts"])  # the repo was analysed
    shard = next(a for a in doc["artifacts"] if a["path"].endswith("00001-of-00004.safetensors"))
    assert shard["content_id"].startswith("sha256:") and shard["remote"]["requests"] >= 1


def test_one_gib_checkpoint_over_https_costs_under_a_mebibyte(fixtures: dict[str, Repo]) -> None:
    path = fixtures["ckpt"].files["pytorch_model.bin"]
    assert path.stat().st_size >= GiB
    with RangeServer({"ckpt/pytorch_model.bin": path}) as srv:
        code, doc = _json([f"{srv.url}/ckpt/pytorch_model.bin"])
        sent = srv.file_bytes_sent
    assert code == 0 and doc["errors"] == []
    (artifact,) = doc["artifacts"]
    assert artifact["format"] == "pytorch-zip" and artifact["content_id"].startswith("etag:")
    assert artifact["remote"]["fetched"] <= 1 << 20 and sent <= 1 << 20


def test_a_hostile_repo_is_found_and_nothing_reaches_the_hf_cache(
    hub: tuple[HubServer, dict[str, str]],
) -> None:
    srv, env = hub
    _code, doc = _json(["hf://org/evil", "hf://org/gguf", "hf://org/onnx"], env)
    rules = {(a["path"].split("@")[0], f["rule"]) for a in doc["artifacts"] for f in a["findings"]}
    assert ("hf://org/evil", "P101") in rules
    assert {r for p, r in rules if p != "hf://org/evil"} == set()
    assert not Path(env["HF_HOME"]).exists()  # no cache, no download
    assert srv.requests > 0


def test_datasets_revisions_and_single_files(hub: tuple[HubServer, dict[str, str]]) -> None:
    _srv, env = hub
    _, doc = _json(["hf://datasets/org/data", "hf://org/evil@main/pytorch_model.bin"], env)
    paths = [a["path"] for a in doc["artifacts"]]
    assert any(p.startswith("hf://datasets/org/data@") for p in paths)
    single = [p for p in paths if p.endswith("/pytorch_model.bin") and "org/evil" in p]
    assert len(single) == 1 and re.fullmatch(
        r"hf://org/evil@[0-9a-f]{40}/pytorch_model.bin", single[0]
    )


def test_network_failure_is_an_error_but_a_finding_still_wins(
    hub: tuple[HubServer, dict[str, str]],
) -> None:
    _srv, env = hub
    env = {**env, "HF_HUB_ETAG_TIMEOUT": "2"}
    proc = run_cli("scan", "hf://org/evil", "http://127.0.0.1:9/gone.bin", env=env)
    assert proc.returncode == 1  # the finding on the other file wins
    assert "127.0.0.1:9" in proc.stdout and "P101" in proc.stdout
    proc = run_cli("scan", "-f", "json", "hf://org/missing", env=env)
    assert proc.returncode == 2 and "repository not found" in proc.stderr


def test_unreachable_hub_says_so_clearly(tmp_path: Path) -> None:
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path)}
    proc = run_cli("scan", "hf://org/name", env=env)
    assert proc.returncode == 2
    assert "cannot reach http://127.0.0.1:9" in proc.stdout and "HF_HUB_OFFLINE" in proc.stdout


def test_transient_server_errors_are_retried(hub_env: HubServer) -> None:
    hub_env.fail_next(2)  # the next two requests answer 503
    report = scan_paths(["hf://org/gguf"], Config(jobs=1))
    assert report.errors == ()
    assert any(a.format == "gguf" for a in report.artifacts)


def test_a_server_that_ignores_ranges_is_refused_not_downloaded(fixtures: dict[str, Repo]) -> None:
    path = fixtures["ckpt"].files["pytorch_model.bin"]
    with RangeServer({"m.bin": path}, ignore_range=True) as srv:
        code, doc = _json([f"{srv.url}/m.bin"])
        sent = srv.file_bytes_sent
    assert code == 2 and doc["errors"]
    assert sent < 64 << 20  # the client stopped reading: nowhere near the 1 GiB


def test_request_budget_is_a_finding(hub_env: HubServer) -> None:
    from dataclasses import replace

    from modelscan_lite.limits import Limits

    config = Config(jobs=1, limits=replace(Limits(), max_remote_bytes=1000))
    report = scan_paths(["hf://org/ckpt"], config)
    x901 = [f for f in report.findings if f.rule == "X901"]
    assert x901 and "pytorch_model.bin" in x901[0].location.path
    assert "fetch" in x901[0].message


def test_download_is_behind_the_static_verdict(hub_env: HubServer) -> None:
    from modelscan_lite.hfcache import cache_dir

    report = scan_paths(["hf://org/evil", "hf://org/gguf"], Config(jobs=1, download=True))
    cached = os.listdir(cache_dir())
    assert "models--org--gguf" in cached and "models--org--evil" not in cached
    assert any("not downloaded" in n and "org/evil" in n for n in report.notes)
    assert any(f.rule == "P101" for f in report.findings)


def test_skeleton_refuses_names_that_leave_it(tmp_path: Path) -> None:
    files = [RemoteFile(rel, 1) for rel in ("ok.json", "../x", "/abs", "a/../../y", "a//b")]
    tree = RemoteTree("hf://o/n", "hf://o/n@x", files, lambda f: lambda a, b: b"")
    skeletons = Skeletons()
    try:
        folder, paths, refused = skeletons.make(tree)
        assert set(paths) == {"ok.json"} and sorted(refused) == sorted(
            ["../x", "/abs", "a/../../y", "a//b"]
        )
        assert all(os.path.realpath(p).startswith(folder) for p in paths.values())
    finally:
        skeletons.close()
    assert not os.path.exists(folder)


def test_reports_never_carry_url_secrets() -> None:
    assert redact("https://user:pw@host:8443/a/b.bin?X-Amz-Signature=s3cr3t") == (
        "https://host:8443/a/b.bin?..."
    )


def test_without_the_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from modelscan_lite.remote.sources import resolve

    real_import = builtins.__import__

    def missing(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith(("huggingface_hub", "fsspec")):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", missing)
    for spec in ("hf://org/name", "https://example.invalid/m.bin", "s3://bucket/m.bin"):
        with pytest.raises(RemoteError, match=r"modelscan-lite\[remote\]"):
            resolve(spec)


def _fleet_rows(out: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for p in sorted(out.glob("part-*.jsonl"))
        for line in p.read_text().splitlines()
    ]


def test_fleet_of_remote_targets(hub_env: HubServer, tmp_path: Path) -> None:
    """The fleet API takes repos and URLs: rows per artifact, in target order, the hostile
    payload found, and a target that cannot be listed is an error in the manifest."""
    from modelscan_lite.fleet import scan_fleet

    targets = ["hf://org/gguf", "hf://org/evil", "hf://org/absent", "hf://org/onnx"]
    summary = scan_fleet(targets, tmp_path / "out", config=Config(jobs=1))
    rows = _fleet_rows(tmp_path / "out")
    assert [t for t in dict.fromkeys(r["target"] for r in rows)] == [
        "hf://org/gguf",
        "hf://org/evil",
        "hf://org/onnx",
    ]
    evil = [r for r in rows if r["target"] == "hf://org/evil"]
    assert any(f["rule"] == "P101" for r in evil for f in r["findings"])
    assert all("remote" in r for r in rows if r["format"] != "hf-repo")
    absent = next(t for t in summary.targets if t.target == "hf://org/absent")
    assert absent.errors and "repository not found" in absent.errors[0]


@pytest.mark.slow
def test_fleet_of_remote_targets_on_dask(
    hub: tuple[HubServer, dict[str, str]], tmp_path: Path
) -> None:
    """On Dask each remote target is a task: the workers read it by ranges themselves (they
    inherit HF_ENDPOINT); the rows equal a local fleet's. The Dask client runs in a
    subprocess (it unpickles what workers send, which the in-process tripwire forbids)."""
    pytest.importorskip("distributed")
    import subprocess
    import sys

    from .conftest import ROOT

    _srv, env = hub
    targets = ["hf://org/evil", "hf://org/gguf", "hf://org/onnx"]
    code = (
        "import sys\n"
        "from modelscan_lite.config import Config\n"
        "from modelscan_lite.fleet import scan_fleet\n"
        "targets = sys.argv[1:4]\n"
        "scan_fleet(targets, sys.argv[4], config=Config(jobs=1))\n"
        "scan_fleet(targets, sys.argv[5], executor='dask', config=Config(jobs=2))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *targets, str(tmp_path / "local"), str(tmp_path / "dask")],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    def normal(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # the Dask run may take results the local run cached: no bytes fetched for those
        return [{k: v for k, v in r.items() if k not in ("seconds", "remote")} for r in rows]

    local = _fleet_rows(tmp_path / "local")
    assert any(f["rule"] == "P101" for r in local for f in r["findings"])
    assert normal(_fleet_rows(tmp_path / "dask")) == normal(local)


def test_only_strong_etags_identify_bytes() -> None:
    from modelscan_lite.remote.sources import etag_id

    assert etag_id('"abc-123"') == "etag:abc-123"
    assert etag_id('W/"abc"') is None  # weak: equivalent, not the same bytes
    assert etag_id('"\x1b]0;x\x07"') is None  # nothing a terminal would act on
    assert etag_id(None) is None and etag_id('""') is None


class _Hostile:
    """A raw HTTP server on 127.0.0.1 that answers every GET with ``206`` and then either
    floods (an endless body) or trickles (a byte at a time); HEAD gives a size."""

    def __init__(self, mode: str) -> None:
        import socket
        import threading

        self.mode = mode
        self.sent = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/m.bin"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: Any) -> None:
        import time

        try:
            request = conn.recv(65536)
            if request.startswith(b"HEAD"):
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\nAccept-Ranges: bytes\r\n"
                    b'ETag: "x"\r\nConnection: close\r\n\r\n'
                )
                return
            conn.sendall(b"HTTP/1.1 206 Partial Content\r\nConnection: close\r\n\r\n")
            chunk = b"\0" * 65536 if self.mode == "flood" else b"\x80"
            while not self.stop.is_set() and self.sent < (1 << 30):
                conn.sendall(chunk)
                self.sent += len(chunk)
                if self.mode == "trickle":
                    time.sleep(0.05)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_a_flooding_server_costs_one_chunk_not_its_body() -> None:
    """A 206 with an endless body: the read stops at the asked length (memory stays small);
    the scan finishes, with what it read."""
    server = _Hostile("flood")
    try:
        report = scan_paths([server.url], Config(jobs=1, cache=False))
    finally:
        server.close()
    (artifact,) = report.artifacts
    assert artifact.fetched is not None and artifact.fetched <= 2 << 20
    assert server.sent < 64 << 20  # the client hung up long before a GiB


def test_a_trickling_server_is_abandoned(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelscan_lite.remote import ranges, sources

    monkeypatch.setattr(sources, "REQUEST_DEADLINE", 0.5)
    monkeypatch.setattr(ranges, "BACKOFF", 0.0)
    server = _Hostile("trickle")
    try:
        report = scan_paths([server.url], Config(jobs=1, cache=False))
    finally:
        server.close()
    assert report.errors and "abandoned" in report.errors[0]


def test_any_fsspec_store_equals_the_local_scan() -> None:
    """The object-store path (s3://, gs://, az:// through their fsspec backends) is one
    code path for every fsspec protocol: exercised here with fsspec's in-memory store, a
    folder of samples and one file, against the local scan."""
    import fsspec

    fs = fsspec.filesystem("memory")
    picked = [
        p
        for p in sorted(SAMPLES.rglob("*"))
        if p.is_file() and p.parent.name in ("P101", "A202", "G207", "O401", "S205")
    ]
    for p in picked:
        fs.pipe(f"/bucket/models/{p.relative_to(SAMPLES)}", p.read_bytes())
    try:
        remote = scan_paths(["memory://bucket/models"], Config(jobs=1, cache=False))
        single = scan_paths(
            [f"memory://bucket/models/{picked[0].relative_to(SAMPLES)}"],
            Config(jobs=1, cache=False),
        )
    finally:
        fs.rm("/bucket", recursive=True)
    local = scan_paths([str(p) for p in picked], Config(jobs=1, cache=False))

    def rows(report: Any, prefix: str) -> set[tuple[Any, ...]]:
        return {
            (f.location.path.split(prefix, 1)[-1].lstrip("/"), f.rule, f.location.member)
            for f in report.findings
        }

    assert remote.errors == () and len(remote.artifacts) >= len(picked)
    assert rows(remote, "bucket/models") == rows(local, str(SAMPLES))
    assert all(a.fetched is not None for a in remote.artifacts if a.format != "hf-repo")
    (artifact,) = single.artifacts
    assert artifact.path.startswith("memory://") and artifact.fetched is not None


def test_schemes_are_case_insensitive(hub: tuple[HubServer, dict[str, str]]) -> None:
    """RFC 3986: HF:// and HTTP:// name what hf:// and http:// name (they were an error)."""
    _srv, env = hub
    _, lower = _json(["hf://org/evil"], env)
    code, upper = _json(["HF://org/evil"], env)
    assert code == 0 and upper["errors"] == []
    assert _findings(upper, "") == _findings(lower, "")
    with RangeServer({"m.bin": SAMPLES / "P101" / "bad-posix-system.pkl"}) as plain:
        code, doc = _json(["HTTP" + plain.url[4:] + "/m.bin"])
    assert doc["errors"] == [] and any(f["rule"] == "P101" for f in doc["artifacts"][0]["findings"])
