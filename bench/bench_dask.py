"""Dask scale-out benchmark, run on demand (never a timed unit test):
``python bench/bench_dask.py [--files 40] [--repeat 3] [--workers 1,2,4]``. The result
cache is off: every run parses every file.

A CPU-bound local tree (``--files`` copies of an opcode-dense pickle, 200,000 small dicts,
1.9 MB each; ~0.5 s of pickle analysis apiece) under ``bench/data/dask-tree/`` (git-ignored),
scanned:

- ``local -j1`` (in this process) and ``local -j2`` (the fork pool), as references;
- ``dask`` with ``--workers`` (1, 2 and 4) workers: a ``LocalCluster`` of process workers,
  one thread each, opened once, then the scan timed on the warm cluster (median of
  ``--repeat`` runs);
- the whole CLI, ``scan --executor dask -j N``, cluster start and stop included (one run).

Every run's JSON report must be the same (times aside). Writes ``bench/results-dask.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data" / "dask-tree"
sys.path.insert(0, str(ROOT))

from modelscan_lite.config import Config  # noqa: E402
from modelscan_lite.executors import DaskExecutor  # noqa: E402
from modelscan_lite.report.json_report import render_json  # noqa: E402
from modelscan_lite.scanner import scan_paths  # noqa: E402


def make_tree(files: int) -> int:
    DATA.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps([{"a": i} for i in range(200_000)])
    for old in DATA.glob("*.pkl"):
        old.unlink()
    for i in range(files):
        (DATA / f"dense-{i:03d}.pkl").write_bytes(blob)
    return len(blob)


def normal_report(report_json: str) -> str:
    """A JSON report with every time zeroed, for comparing two runs."""

    def walk(o: object) -> object:
        if isinstance(o, dict):
            return {k: 0 if k == "seconds" else walk(v) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v) for v in o]
        return o

    return json.dumps(walk(json.loads(report_json)), sort_keys=True)


def timed(label: str, repeat: int, run: object) -> tuple[float, list[float], str]:
    times, text = [], ""
    for _ in range(repeat):
        t = time.perf_counter()
        report = run()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
        text = normal_report(render_json(report))
    med = statistics.median(times)
    print(f"{label:<28} {med:7.2f} s  (runs {', '.join(f'{x:.2f}' for x in times)})", flush=True)
    return med, times, text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", default="1,2,4", help="Dask worker counts, comma-separated")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    size = make_tree(args.files)
    tree = [str(DATA)]
    results: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": os.getloadavg(),
        },
        "tree": {"files": args.files, "bytes_each": size},
    }
    runs: dict[str, dict[str, object]] = {}
    reports: dict[str, str] = {}
    for jobs in (1, 2):
        med, times, text = timed(
            f"local -j{jobs}",
            args.repeat,
            lambda j=jobs: scan_paths(tree, Config(jobs=j, cache=False)),
        )
        runs[f"local-j{jobs}"] = {"median_s": round(med, 3), "runs_s": [round(t, 3) for t in times]}
        reports[f"local-j{jobs}"] = text
    for workers in counts:
        t = time.perf_counter()
        ex = DaskExecutor(None, workers)
        start = time.perf_counter() - t
        try:
            cfg = Config(executor="dask", jobs=workers, cache=False)
            med, times, text = timed(
                f"dask {workers} worker(s), warm",
                args.repeat,
                lambda c=cfg, e=ex: scan_paths(tree, c, executor=e),
            )
        finally:
            t = time.perf_counter()
            ex.close()
            stop = time.perf_counter() - t
        runs[f"dask-{workers}"] = {
            "median_s": round(med, 3),
            "runs_s": [round(x, 3) for x in times],
            "cluster_start_s": round(start, 3),
            "cluster_stop_s": round(stop, 3),
        }
        reports[f"dask-{workers}"] = text
    for workers in counts:
        t = time.perf_counter()
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "modelscan_lite", "scan", str(DATA), "-f", "json"),
                *("--executor", "dask", "-j", str(workers), "--no-cache"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t
        assert proc.returncode == 0, proc.stderr
        print(f"{'CLI dask -j' + str(workers):<28} {wall:7.2f} s  (cluster start/stop included)")
        runs[f"cli-dask-{workers}"] = {"wall_s": round(wall, 3)}
    same = len(set(reports.values())) == 1
    dask1 = float(runs["dask-1"]["median_s"])  # type: ignore[arg-type]
    local1 = float(runs["local-j1"]["median_s"])  # type: ignore[arg-type]
    results["runs"] = runs
    for workers in counts[1:]:
        dask_n = float(runs[f"dask-{workers}"]["median_s"])  # type: ignore[arg-type]
        results[f"speedup_dask_1_to_{workers}_workers"] = round(dask1 / dask_n, 2)
        print(f"speed-up 1 -> {workers} Dask workers: {dask1 / dask_n:.2f}x")
    best = min(float(runs[f"dask-{w}"]["median_s"]) for w in counts)  # type: ignore[arg-type]
    results["speedup_local_j1_to_best_dask"] = round(local1 / best, 2)
    results["reports_identical"] = same
    results["machine"]["loadavg_after"] = os.getloadavg()  # type: ignore[index]
    print(f"reports identical: {same}")
    (HERE / "results-dask.json").write_text(json.dumps(results, indent=2) + "\n")
    if not same:
        raise SystemExit("the reports differ between executors")


if __name__ == "__main__":
    main()
