"""Hub-scale remote scanning benchmark, run on demand (never a timed unit test):
``python bench/bench_remote.py [--latency 0.05] [--repos 100]``.

Real HTTP servers on 127.0.0.1 (``tests/remote_servers.py``), every request delayed by
``--latency`` seconds (a round trip to a hub), serve:

- ``org/big``: 4 safetensors shards, 16 GiB (sparse on disk), with config, tokenizer and
  index: scanned over ``hf://`` (a Hub-compatible server, ``HF_ENDPOINT``);
- a 1 GiB PyTorch zip checkpoint: scanned over ``https://`` (a Range server);
- ``--repos`` small repos of every kind (sharded safetensors, a pickle ``.bin`` with a
  payload, GGUF, ONNX; tokenizer and config files): scanned together from one process at
  several ``remote_jobs`` (threads), giving repos per second;
- the same small repos fetched with ``snapshot_download`` from the same server, what
  downloading scanners do: bytes and time against the range scan.

Measured: bytes fetched against repo bytes (the servers' own counters), wall time (in this
process: ``scan_paths``; and the whole CLI process for the big repo). The result cache is off
(every run reads the files); a cached re-scan of the fleet is measured last. Writes
``bench/results-remote.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from modelscan_lite.config import Config  # noqa: E402
from modelscan_lite.scanner import scan_paths  # noqa: E402
from tests.remote_servers import HubServer, RangeServer, Repo, make_repo  # noqa: E402

GiB = 1 << 30
KINDS = ("safetensors-sharded", "pickle-bin", "gguf", "onnx")


def _point_hub(url: str, home: str) -> None:
    """This process at the test hub (huggingface_hub read HF_ENDPOINT at import)."""
    from huggingface_hub import constants

    os.environ.update(
        HF_ENDPOINT=url,
        HF_HOME=home,
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    constants.ENDPOINT = url
    constants.HUGGINGFACE_CO_URL_TEMPLATE = url + "/{repo_id}/resolve/{revision}/{filename}"
    constants.HF_HUB_CACHE = os.path.join(home, "hub")


def big_repo(root: Path, latency: float, home: str) -> dict[str, Any]:
    repo = make_repo(root, "org/big", "safetensors-sharded", total_size=16 * GiB, shards=4)
    total = sum(p.stat().st_size for p in repo.files.values())
    with HubServer([repo], latency=latency) as srv:
        _point_hub(srv.url, home)
        env = dict(os.environ)
        started = time.perf_counter()
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "modelscan_lite", "scan", "-f", "json"),
                *("--no-cache", "hf://org/big"),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        cli = time.perf_counter() - started
        doc = json.loads(proc.stdout)
        cli_sent, cli_requests = srv.file_bytes_sent, srv.requests
        srv.reset()
        started = time.perf_counter()
        report = scan_paths(["hf://org/big"], Config(jobs=1, cache=False))
        wall = time.perf_counter() - started
        assert not report.errors, report.errors
    return {
        "repo_bytes": total,
        "files": len(repo.files),
        "fetched_reported": doc["summary"]["remote"]["fetched"],
        "server_file_bytes": cli_sent,
        "server_requests": cli_requests,
        "fetched_fraction": cli_sent / total,
        "exit_code": proc.returncode,
        "cli_wall_s": round(cli, 3),
        "in_process_wall_s": round(wall, 3),
    }


def https_checkpoint(root: Path, latency: float) -> dict[str, Any]:
    repo = make_repo(root, "org/ckpt", "pytorch-zip", total_size=GiB)
    path = repo.files["pytorch_model.bin"]
    with RangeServer({"ckpt/pytorch_model.bin": path}, latency=latency) as srv:
        started = time.perf_counter()
        report = scan_paths([f"{srv.url}/ckpt/pytorch_model.bin"], Config(jobs=1, cache=False))
        wall = time.perf_counter() - started
        assert not report.errors, report.errors
        (artifact,) = report.artifacts
        return {
            "file_bytes": path.stat().st_size,
            "format": artifact.format,
            "fetched_reported": artifact.fetched,
            "server_file_bytes": srv.file_bytes_sent,
            "server_requests": srv.requests,
            "wall_s": round(wall, 3),
        }


def fleet(root: Path, n: int, latency: float, home: str) -> dict[str, Any]:
    repos: list[Repo] = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        repos.append(make_repo(root, f"fleet/r{i:03d}", kind, payload=kind == "pickle-bin"))
    total = sum(p.stat().st_size for r in repos for p in r.files.values())
    specs = [f"hf://{r.repo_id}" for r in repos]
    out: dict[str, Any] = {"repos": n, "repo_bytes": total, "by_threads": {}}
    with HubServer(repos, latency=latency) as srv:
        _point_hub(srv.url, home)
        for threads in (1, 4, 16, 32, 64):
            srv.reset()
            started = time.perf_counter()
            report = scan_paths(specs, Config(jobs=1, remote_jobs=threads, cache=False))
            wall = time.perf_counter() - started
            assert not report.errors, report.errors[:3]
            payloads = sum(1 for f in report.findings if f.rule == "P101")
            out["by_threads"][threads] = {
                "wall_s": round(wall, 3),
                "repos_per_s": round(n / wall, 1),
                "server_requests": srv.requests,
                "server_file_bytes": srv.file_bytes_sent,
                "payloads_found": payloads,
            }
        xdg = tempfile.mkdtemp(prefix="bench-remote-cache-")
        os.environ["XDG_CACHE_HOME"] = xdg
        cached = {}
        for label in ("first", "cached"):
            srv.reset()
            started = time.perf_counter()
            scan_paths(specs, Config(jobs=1))
            cached[label] = {
                "wall_s": round(time.perf_counter() - started, 3),
                "server_requests": srv.requests,
                "server_file_bytes": srv.file_bytes_sent,
            }
        out["cache"] = cached
        os.environ["MODELSCAN_LITE_NO_CACHE"] = "1"
        out["fleet_api"] = fleet_api(specs, n, srv)
        del os.environ["MODELSCAN_LITE_NO_CACHE"]
        srv.reset()
        from huggingface_hub import snapshot_download

        cache = tempfile.mkdtemp(prefix="bench-dl-")
        started = time.perf_counter()
        for r in repos:
            snapshot_download(r.repo_id, cache_dir=cache)
        download = time.perf_counter() - started
        out["snapshot_download"] = {
            "wall_s": round(download, 3),
            "repos_per_s": round(n / download, 1),
            "server_requests": srv.requests,
            "server_file_bytes": srv.file_bytes_sent,
        }
    return out


def fleet_api(specs: list[str], n: int, srv: HubServer) -> dict[str, Any]:
    """``scan_fleet`` over the repos: in this process (remote targets 8 at once), and on a
    local Dask cluster of 1 and 2 workers (one task per repo, read by the worker)."""
    from modelscan_lite.executors import DaskExecutor
    from modelscan_lite.fleet import scan_fleet

    out: dict[str, Any] = {}
    runs: list[tuple[str, str, int]] = [("local", "local", 0), ("dask-1", "dask", 1)]
    runs.append(("dask-2", "dask", 2))
    for label, executor, workers in runs:
        if executor == "dask":  # the cluster is started before the clock starts
            cluster = DaskExecutor(None, workers)
            scheduler = cluster.client.scheduler.address
        else:
            cluster, scheduler = None, None
        try:
            srv.reset()
            dest = tempfile.mkdtemp(prefix="bench-fleet-")
            started = time.perf_counter()
            summary = scan_fleet(
                specs,
                dest,
                executor=executor,
                scheduler=scheduler,
                config=Config(jobs=workers or 1, cache=False),
            )
            wall = time.perf_counter() - started
        finally:
            if cluster is not None:
                cluster.close()
        errors = [e for t in summary.targets for e in t.errors]
        assert not errors, errors[:3]
        out[label] = {
            "wall_s": round(wall, 3),
            "repos_per_s": round(n / wall, 1),
            "rows": sum(t.artifacts for t in summary.targets),
            "server_requests": srv.requests,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--out", default=str(HERE / "results-remote.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    home = str(work / "hf-home")
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "latency_s": args.latency,
        "big_repo_hf": big_repo(work, args.latency, home),
        "checkpoint_https": https_checkpoint(work, args.latency),
        "fleet_hf": fleet(work, args.repos, args.latency, home),
        "command": f"python bench/bench_remote.py --latency {args.latency} --repos {args.repos}",
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
