"""Benchmarks, run on demand (never as timed unit tests): ``python bench/bench.py``.

Builds inputs under ``bench/data/`` (git-ignored), then times whole processes side by side
(modelscan-lite and, when installed, picklescan), median of ``--repeat`` runs, with peak RSS
from ``wait4``. For the 1 GiB PyTorch checkpoint it also records how many bytes the scanner
read (``rchar`` from ``/proc/self/io``), to show that tensor data is never read.

``--write-readme`` replaces the table between the bench markers in README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
GiB = 1 << 30


def make_inputs(small: bool) -> None:
    DATA.mkdir(exist_ok=True)
    inputs: dict[str, Path] = {}
    tiny = DATA / "tiny.pkl"
    tiny.write_bytes(pickle.dumps({"epoch": 3, "lr": 0.001, "name": "run-1"}, protocol=2))
    inputs["tiny pickle (pre-commit feel)"] = tiny

    size = (64 << 20) if small else GiB
    ckpt = DATA / f"checkpoint-{size >> 20}MiB.pt"
    if not ckpt.exists():
        import torch

        n = 16
        per = size // n // 4
        torch.save({f"layer{i}.weight": torch.ones(per) for i in range(n)}, ckpt)
    inputs[f"{size >> 20} MiB torch zip checkpoint"] = ckpt

    arrays = DATA / f"arrays-{size >> 20}MiB.pkl"
    if not arrays.exists():
        import numpy as np

        with open(arrays, "wb") as f:
            pickle.dump([np.ones(size // 16 // 8) for _ in range(16)], f, protocol=5)
    inputs[f"{size >> 20} MiB protocol-5 pickle of numpy arrays"] = arrays

    dicts = 300_000 if small else 3_000_000
    dense = DATA / f"dicts-{dicts}.pkl"
    if not dense.exists():
        with open(dense, "wb") as f:
            pickle.dump(
                [
                    {"id": i, "name": f"n{i}", "score": i * 0.5, "tags": [i, i + 1]}
                    for i in range(dicts)
                ],
                f,
                protocol=4,
            )
    inputs[f"{dense.stat().st_size >> 20} MiB pickle of {dicts:,} small dicts"] = dense


def input_paths(small: bool) -> dict[str, Path]:
    size = (64 << 20) if small else GiB
    dicts = 300_000 if small else 3_000_000
    dense = DATA / f"dicts-{dicts}.pkl"
    return {
        "tiny pickle (pre-commit feel)": DATA / "tiny.pkl",
        f"{size >> 20} MiB torch zip checkpoint": DATA / f"checkpoint-{size >> 20}MiB.pt",
        f"{size >> 20} MiB protocol-5 pickle of numpy arrays": DATA / f"arrays-{size >> 20}MiB.pkl",
        f"{dense.stat().st_size >> 20} MiB pickle of {dicts:,} small dicts": dense,
    }


# Run the tools as users do: with bytecode caching (some shells export
# PYTHONDONTWRITEBYTECODE, which would make every run recompile our sources while the peers'
# were precompiled at install time).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(cmd: list[str]) -> tuple[float, int, int]:
    """(seconds, peak RSS in KiB, exit code) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def bytes_read(path: Path) -> int:
    code = (
        "import sys; from modelscan_lite import scan; from modelscan_lite.config import "
        "Config; scan([sys.argv[1]], Config(jobs=1)); "
        "print([l for l in open('/proc/self/io') if l.startswith('rchar')][0].split()[1])"
    )
    base = (
        "import modelscan_lite.scanner, modelscan_lite.engine, modelscan_lite.formats.sniff;"
        "print([l for l in open('/proc/self/io') if l.startswith('rchar')][0].split()[1])"
    )
    full = int(
        subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
    idle = int(
        subprocess.run(
            [sys.executable, "-c", base], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
    return max(0, full - idle)


def tools() -> dict[str, list[str]]:
    found = {"modelscan-lite": [sys.executable, "-m", "modelscan_lite", "scan", "-q"]}
    if shutil.which("picklescan"):
        found["picklescan"] = ["picklescan", "-p"]
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--small", action="store_true", help="64 MiB inputs instead of 1 GiB")
    ap.add_argument("--write-readme", action="store_true")
    ap.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_only:
        make_inputs(args.small)
        return
    # Build the inputs in a child: this process must stay small, because forked children
    # inherit its peak RSS in ru_maxrss (torch and numpy would inflate every measurement).
    subprocess.run(
        [sys.executable, __file__, "--make-only", *(["--small"] if args.small else [])], check=True
    )
    inputs = input_paths(args.small)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "modelscan_lite")],
        check=True,
        env=ENV,
    )
    results: dict[str, dict[str, dict[str, float]]] = {}
    for label, path in inputs.items():
        results[label] = {}
        for tool, cmd in tools().items():
            first = run([*cmd, str(path)])  # warms the page cache and the rules cache
            # sub-second runs are noisy on a shared 2-vCPU machine: take more of them
            repeat = args.repeat if first[0] > 1.0 else max(args.repeat, 15)
            runs = [run([*cmd, str(path)]) for _ in range(repeat)]
            results[label][tool] = {
                "median_s": round(statistics.median(r[0] for r in runs), 3),
                "max_rss_mib": round(max(r[1] for r in runs) / 1024, 1),
                "exit_code": runs[0][2],
            }
            print(f"{label:55s} {tool:15s} {results[label][tool]}", flush=True)
    ckpt = next(p for k, p in inputs.items() if "checkpoint" in k)
    read = bytes_read(ckpt)
    doc = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "results": results,
        "checkpoint_bytes_read": {"file_bytes": ckpt.stat().st_size, "read_bytes": read},
    }
    print(f"checkpoint: read {read:,} of {ckpt.stat().st_size:,} bytes")
    out = HERE / ("results-small.json" if args.small else "results.json")
    out.write_text(json.dumps(doc, indent=2) + "\n")
    if args.write_readme:
        write_readme(doc)


def write_readme(doc: dict) -> None:  # type: ignore[type-arg]
    lines = ["| input | modelscan-lite | picklescan | ratio |", "|---|---|---|---|"]
    for label, per_tool in doc["results"].items():
        ours = per_tool["modelscan-lite"]
        theirs = per_tool.get("picklescan")
        cell = f"{ours['median_s']:.3f} s, {ours['max_rss_mib']:.0f} MiB"
        other = f"{theirs['median_s']:.3f} s, {theirs['max_rss_mib']:.0f} MiB" if theirs else "n/a"
        ratio = f"{ours['median_s'] / theirs['median_s']:.2f}x" if theirs else ""
        lines.append(f"| {label} | {cell} | {other} | {ratio} |")
    cr = doc["checkpoint_bytes_read"]
    lines.append("")
    lines.append(
        f"Checkpoint scan read {cr['read_bytes']:,} of its {cr['file_bytes']:,} bytes "
        "(the pickle member and headers only)."
    )
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n" + "\n".join(lines) + "\n" + end + tail)


if __name__ == "__main__":
    main()
