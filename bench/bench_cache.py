"""Result-cache benchmark, run on demand (never a timed unit test):
``python bench/bench_cache.py [--repos 500]``.

A local tree of ``--repos`` Hugging Face-style repo folders under ``bench/data/cache-tree/``
(git-ignored), each a copy of one of the shipped sample repos (``samples/H*/``: configs,
tokenizers, templates, safetensors and pickle weights) plus a 2 MB opcode-dense pickle, is
scanned by the CLI three times, each a whole process with its own empty or warm cache:

- cold: an empty cache (every file parsed, every result stored), 3 s after the tree was
  written (a file written less than 2 s before its scan is not stored);
- warm: the same tree again (every file a hit: stat identity and re-hash of what was read);
- ``--no-cache``: for reference, a scan that neither reads nor writes the cache.

The three JSON reports must be the same (times aside). Writes ``bench/results-cache.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data" / "cache-tree"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_dask import normal_report  # noqa: E402

from modelscan_lite.repo import find_repos  # noqa: E402


def make_tree(n: int) -> tuple[int, int]:
    if DATA.exists():
        shutil.rmtree(DATA)
    DATA.mkdir(parents=True)
    sources = [Path(r) for r in find_repos(str(ROOT / "samples")) if "/H" in r]
    dense = pickle.dumps([{"a": i} for i in range(20_000)])
    files = size = 0
    for i in range(n):
        dest = DATA / f"repo-{i:04d}"
        shutil.copytree(sources[i % len(sources)], dest)
        (dest / "optimizer.pkl").write_bytes(dense)
    for p in DATA.rglob("*"):
        if p.is_file():
            files += 1
            size += p.stat().st_size
    return files, size


def run(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "modelscan_lite", "scan", "-f", "json", "--fail-on", "never", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - started
    return wall, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repos", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--out", default=str(HERE / "results-cache.json"))
    args = parser.parse_args()
    files, size = make_tree(args.repos)
    # a file written less than 2 s before its scan is not stored ("racy", see result_cache):
    # a tree being audited was not written this instant
    time.sleep(3)
    xdg = tempfile.mkdtemp(prefix="bench-cache-")
    env = {**os.environ, "XDG_CACHE_HOME": xdg}
    env.pop("MODELSCAN_LITE_NO_CACHE", None)
    jobs = ["-j", str(args.jobs)] if args.jobs else []
    cold, cold_doc = run([str(DATA), *jobs], env)
    warm, warm_doc = run([str(DATA), *jobs], env)
    off, off_doc = run([str(DATA), "--no-cache", *jobs], env)
    same = len({normal_report(json.dumps(d)) for d in (cold_doc, warm_doc, off_doc)}) == 1
    stats = subprocess.run(
        [sys.executable, "-m", "modelscan_lite", "cache", "stats"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    ).stdout
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "tree": {"repos": args.repos, "files": files, "bytes": size},
        "cold_s": round(cold, 3),
        "warm_s": round(warm, 3),
        "no_cache_s": round(off, 3),
        "warm_over_cold": round(warm / cold, 3),
        "reports_identical": same,
        "cache_stats": stats.strip().splitlines(),
        "command": f"python bench/bench_cache.py --repos {args.repos}",
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
