"""The pickle walker against the unpickler it models, paired in one run: ``python
bench/bench_walker.py [--repeat 7]``.

For each input, whole processes in turn (the order rotates every round, so drift on a noisy
machine falls on every command alike): ``modelscan-lite scan --no-cache -q`` with the
compiled walker and with the pure-Python one (``MODELSCAN_LITE_WALKER``), ``python -c
"import pickle; pickle.load(open(F, 'rb'))"`` and, when installed, ``picklescan -p``. Medians
of wall time and peak RSS (``wait4``), and the ratios issue 15 sets targets for, go to
``bench/results-walker.json``.

Inputs (built under ``bench/data/``, git-ignored): the issue's 1 M small dicts (34 MB, 11 M
opcodes), a 20-byte pickle (start-up), 1 M two-tuples, and a call-dense pickle (200 k
``datetime.date`` objects: GLOBAL, REDUCE and bytes arguments, which the compiled core hands
back to the Python loop).
"""

from __future__ import annotations

import argparse
import datetime
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
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def make_inputs() -> dict[str, Path]:
    DATA.mkdir(exist_ok=True)
    specs = {
        "1 M small dicts": (
            "dicts-1m.pkl",
            lambda: [{"id": i, "name": f"n{i}", "score": i * 0.5} for i in range(1_000_000)],
        ),
        "tiny pickle": ("tiny.pkl", lambda: {"epoc": 3}),
        "1 M two-tuples": ("tuples-1m.pkl", lambda: [(i, f"t{i}") for i in range(1_000_000)]),
        "200 k calls (datetime.date)": (
            "dates-200k.pkl",
            lambda: [datetime.date(2020, 1, 1 + i % 28) for i in range(200_000)],
        ),
    }
    out = {}
    for label, (name, build) in specs.items():
        path = DATA / name
        if not path.exists():
            # in a child: this process stays small, and the peak RSS of the commands it
            # forks measures them alone
            pid = os.fork()
            if pid == 0:
                path.write_bytes(pickle.dumps(build(), protocol=4 if label != "tiny pickle" else 2))
                os._exit(0)
            os.waitpid(pid, 0)
        out[label] = path
    return out


def commands(path: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    scan = [shutil.which("modelscan-lite") or "modelscan-lite", "scan", "--no-cache", "-q"]
    load = "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))"
    out = {
        "modelscan-lite (compiled)": (
            [*scan, str(path)],
            {**ENV, "MODELSCAN_LITE_WALKER": "compiled"},
        ),
        "modelscan-lite (pure Python)": (
            [*scan, str(path)],
            {**ENV, "MODELSCAN_LITE_WALKER": "python"},
        ),
        "pickle.load": ([sys.executable, "-c", load, str(path)], ENV),
    }
    if shutil.which("picklescan"):
        out["picklescan"] = ([shutil.which("picklescan") or "", "-p", str(path)], ENV)
    return out


def run(argv: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """(seconds, peak RSS in KiB, exit code) of one whole process (``wait4``)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--skip-picklescan-above", type=int, default=5, help="rounds for slow peers")
    ap.add_argument(
        "--write-readme", action="store_true", help="only rewrite README.md's table from the JSON"
    )
    args = ap.parse_args()
    if args.write_readme:
        write_readme(json.loads((HERE / "results-walker.json").read_text()))
        return
    inputs = make_inputs()
    results: dict[str, dict[str, dict[str, float | int]]] = {}
    for label, path in inputs.items():
        cmds = commands(path)
        for argv, env in cmds.values():  # warm the page cache and bytecode caches
            run(argv, env)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        peaks: dict[str, list[int]] = {name: [] for name in cmds}
        codes: dict[str, int] = {}
        names = list(cmds)
        for i in range(args.repeat):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                if name == "picklescan" and i >= args.skip_picklescan_above and "tiny" not in label:
                    continue
                secs, rss, code = run(*cmds[name])
                times[name].append(secs)
                peaks[name].append(rss)
                codes[name] = code
        row: dict[str, dict[str, float | int]] = {}
        for name in names:
            row[name] = {
                "median_s": round(statistics.median(times[name]), 3),
                "min_s": round(min(times[name]), 3),
                "peak_mib": round(statistics.median(peaks[name]) / 1024, 1),
                "exit": codes[name],
                "runs": len(times[name]),
            }
        fast = row["modelscan-lite (compiled)"]["median_s"]
        row["ratios"] = {
            "compiled / pickle.load": round(fast / row["pickle.load"]["median_s"], 2),
            "pure Python / compiled": round(
                row["modelscan-lite (pure Python)"]["median_s"] / fast, 2
            ),
        }
        if "picklescan" in row:
            row["ratios"]["compiled / picklescan"] = round(fast / row["picklescan"]["median_s"], 3)
        results[f"{label} ({path.stat().st_size:,} bytes)"] = row
        print(label, json.dumps(row), flush=True)
    doc = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "date": datetime.date.today().isoformat(),
        "command": f"python bench/bench_walker.py --repeat {args.repeat}",
        "results": results,
    }
    (HERE / "results-walker.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_readme(doc)


def write_readme(doc: dict[str, Any]) -> None:
    """Replace the table between README.md's walker markers."""
    tools = ["modelscan-lite (compiled)", "modelscan-lite (pure Python)", "pickle.load"]
    head = "| input | compiled | pure Python | `pickle.load` | picklescan | compiled vs load |"
    head += " compiled vs picklescan |\n|---|---|---|---|---|---|---|\n"
    rows = []
    for label, row in doc["results"].items():
        cells = [f"{row[t]['median_s']:.3f} s, {row[t]['peak_mib']:.0f} MiB" for t in tools]
        peer = row.get("picklescan")
        cells.append(f"{peer['median_s']:.3f} s, {peer['peak_mib']:.0f} MiB" if peer else "-")
        ratios = row["ratios"]
        cells.append(f"{ratios['compiled / pickle.load']}x")
        cells.append(f"{ratios['compiled / picklescan']}x" if peer else "-")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    table = head + "\n".join(rows) + f"\n\n({doc['machine']}, {doc['date']}: `{doc['command']}`)"
    readme = HERE.parent / "README.md"
    text = readme.read_text()
    start, end = "<!-- walker:start -->\n", "\n<!-- walker:end -->"
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    readme.write_text(before + start + table + end + after)


if __name__ == "__main__":
    main()
