"""Start-up benchmark, run on demand: a tiny scan's whole-process time, this checkout against
a baseline checkout of an earlier commit, measured paired (runs interleaved, A B A B ...) so
that a noisy shared machine affects both sides alike.

    git worktree add /tmp/base <commit>
    python bench/bench_startup.py --baseline /tmp/base [--repeat 40]

Inputs are made in a temp dir: a tiny protocol-2 pickle of a dict (no globals: the pre-commit
case) and a small ``torch.save`` checkpoint (globals: the allowlist is read). Bytecode caching
is on (``PYTHONDONTWRITEBYTECODE`` is removed) and both trees are compiled first. Results go
to ``bench/results-startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["MODELSCAN_LITE_NO_PROGRESS"] = "1"


def make_inputs(tmp: Path) -> dict[str, Path]:
    tiny = tmp / "tiny.pkl"
    tiny.write_bytes(pickle.dumps({"epoch": 3, "lr": 0.001, "name": "run-1"}, protocol=2))
    ckpt = tmp / "small.pt"
    code = "import torch, sys; torch.save({'w': torch.ones(10), 'b': torch.zeros(3)}, sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(ckpt)], check=True)
    return {"tiny pickle": tiny, "small torch checkpoint": ckpt}


def run(tree: Path, path: Path) -> float:
    env = {**ENV, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "modelscan_lite", "scan", "--format", "json", str(path)],
        env=env,
        cwd=tree,  # the current directory comes first on sys.path
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline", type=Path, required=True, help="checkout of an earlier commit")
    ap.add_argument("--repeat", type=int, default=40)
    args = ap.parse_args()
    trees = {"baseline": args.baseline.resolve(), "this": ROOT}
    for tree in trees.values():
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(tree / "modelscan_lite")],
            check=True,
            env=ENV,
        )
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, path in make_inputs(Path(tmp)).items():
            times: dict[str, list[float]] = {name: [] for name in trees}
            for tree in trees.values():
                run(tree, path)  # warm the page cache and the rules cache
            for _ in range(args.repeat):
                for name, tree in trees.items():
                    times[name].append(run(tree, path))
            base = statistics.median(times["baseline"])
            this = statistics.median(times["this"])
            results[label] = {"baseline_s": round(base, 4), "this_s": round(this, 4)}
            results[label]["ratio"] = round(this / base, 3)
            print(
                f"{label:24} baseline {base * 1000:6.1f} ms  this {this * 1000:6.1f} ms  "
                f"ratio {this / base:.3f}"
            )
    out = HERE / "results-startup.json"
    out.write_text(json.dumps({"repeat": args.repeat, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
