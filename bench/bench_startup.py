"""Start-up benchmark, run on demand: the whole-process time of a tiny single-file scan, the
one-file pre-commit case, next to picklescan's, measured paired.

    python bench/bench_startup.py [--repeat 30] [--bin DIR] [--label NAME] [--baseline TREE]

Inputs are made in a temp dir: ``tiny.pkl``, a 20-byte protocol-2 pickle of a dict (no
globals), and ``tiny.safetensors``, one 4-byte tensor. Commands, run as users run them (the
console scripts in ``--bin``, by default the directory of this interpreter):

* ``modelscan-lite scan -q tiny.pkl`` and ``picklescan -p tiny.pkl`` (the target: at most
  0.9x picklescan's median);
* ``modelscan-lite scan -q tiny.safetensors``;
* floors: ``python -c pass`` (the interpreter, ``site`` included), ``python -c "import
  pickle; pickle.load(...)"`` (what loading the file costs), and an empty one-command typer
  app given ``scan -q tiny.pkl`` (what typer costs before our code runs);
* with ``--baseline TREE`` (a copy of an earlier ``modelscan_lite/`` and ``rules/``), the same
  console script with ``PYTHONPATH=TREE``: a before/after pair.

The interpreter's start is part of every command; where ``site`` does extra work (a ``.pth``
that imports something) it dilutes every ratio. A real install is closer to a clean venv:
``python -m venv /tmp/v && /tmp/v/bin/pip install -e . picklescan``, then ``--bin /tmp/v/bin``.

Every round runs every command once, in a fresh random order (seeded), so a noisy shared
machine affects all of them alike; medians and p90 of ``--repeat`` rounds, peak RSS from
GNU ``time`` (3 more runs). Bytecode caching is on as in a real install:
``PYTHONDONTWRITEBYTECODE`` is removed, the trees are compiled and each command runs 3 times
unmeasured first (also filling the rules cache in ``~/.cache/modelscan-lite``). An
``-X importtime`` run splits the import time of the modelscan-lite scan into typer,
modelscan_lite and the rest. Results go to ``bench/results-startup.json``, one entry per
``--label`` (default: the ``--bin`` directory).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "results-startup.json"
TARGET = 0.9
GNU_TIME = "/usr/bin/time"
DEVNULL, PIPE = subprocess.DEVNULL, subprocess.PIPE
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
# stderr is not a terminal here: no progress display is started
ENV.pop("PYTHONPATH", None)

# an empty typer app of the CLI's shape: what typer itself costs for ``scan -q FILE``
TYPER_FLOOR = """\
import typer
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
@app.command()
def scan(paths: list[str], quiet: bool = typer.Option(False, "--quiet", "-q")) -> None:
    pass
@app.command()
def rule() -> None:
    pass
app()
"""


def make_inputs(tmp: Path) -> dict[str, Path]:
    tiny = tmp / "tiny.pkl"
    tiny.write_bytes(pickle.dumps({"epoc": 3}, protocol=2))
    assert len(tiny.read_bytes()) == 20
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    st = tmp / "tiny.safetensors"
    st.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\0\0")
    return {"pkl": tiny, "safetensors": st}


def commands(
    bindir: Path, inputs: dict[str, Path], baseline: Path | None
) -> dict[str, tuple[list[str], dict[str, str]]]:
    py = str(bindir / "python")
    ms, ps = str(bindir / "modelscan-lite"), str(bindir / "picklescan")
    pkl, st = str(inputs["pkl"]), str(inputs["safetensors"])
    load = "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))"
    out: dict[str, tuple[list[str], dict[str, str]]] = {
        "python -c pass": ([py, "-c", "pass"], ENV),
        "python -c pickle.load(tiny.pkl)": ([py, "-c", load, pkl], ENV),
        "typer app, empty scan command": ([py, "-c", TYPER_FLOOR, "scan", "-q", pkl], ENV),
        "picklescan -p tiny.pkl": ([ps, "-p", pkl], ENV),
        "modelscan-lite scan -q tiny.pkl": ([ms, "scan", "-q", pkl], ENV),
        "modelscan-lite scan -q tiny.safetensors": ([ms, "scan", "-q", st], ENV),
    }
    if baseline is not None:
        env = {**ENV, "PYTHONPATH": str(baseline)}
        out["baseline: modelscan-lite scan -q tiny.pkl"] = ([ms, "scan", "-q", pkl], env)
    return out


def run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """Wall time (s) and exit code of one whole process."""
    start = time.perf_counter()
    code = subprocess.call(argv, env=env, cwd=cwd, stdout=DEVNULL, stderr=DEVNULL)
    return time.perf_counter() - start, code


def peak_rss(argv: list[str], env: dict[str, str], cwd: Path) -> float | None:
    """Peak RSS (MiB) of one run, median of 3, from GNU time: ``wait4`` on a child of this
    process would count this process's own pages (the child is forked from it before exec)."""
    if not os.access(GNU_TIME, os.X_OK):
        return None
    peaks = []
    for _ in range(3):
        proc = subprocess.run(
            [GNU_TIME, "-f", "%M", *argv], env=env, cwd=cwd, stdout=DEVNULL, stderr=PIPE
        )
        peaks.append(int(proc.stderr.split()[-1]))
    return round(statistics.median(peaks) / 1024, 1)


def import_breakdown(bindir: Path, tiny: Path, cwd: Path) -> dict[str, float]:
    """``-X importtime`` of the modelscan-lite scan, self times summed by owner (ms; the
    instrumentation inflates them, the proportions are what count). ``site`` and what it
    imports are the interpreter's start, as for every other command."""
    proc = subprocess.run(
        [
            str(bindir / "python"),
            "-X",
            "importtime",
            "-m",
            "modelscan_lite",
            "scan",
            "-q",
            str(tiny),
        ],
        env=ENV,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []  # (self us, depth, name), children listed before their parent
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            self_us, _, name = line[len("import time:") :].split("|")
            rows.append((int(self_us), (len(name) - len(name.lstrip()) - 1) // 2, name.strip()))
    site = max((i for i, row in enumerate(rows) if row[2] == "site" and row[1] == 0), default=-1)
    owners = {"interpreter start (site)": 0, "typer": 0, "modelscan_lite": 0, "other": 0}
    owner_of: list[str] = [""] * len(rows)
    for i in range(len(rows) - 1, -1, -1):  # parents first
        self_us, depth, name = rows[i]
        top = name.split(".")[0]
        parent = next((j for j in range(i + 1, len(rows)) if rows[j][1] == depth - 1), None)
        if i <= site:
            owner = "interpreter start (site)"
        elif top in ("typer", "click", "shellingham", "annotated_doc"):
            owner = "typer"
        elif top == "modelscan_lite":
            owner = "modelscan_lite"
        elif depth > 0 and parent is not None:
            owner = owner_of[parent]
        else:
            owner = "other"
        owner_of[i] = owner
        owners[owner] += self_us
    return {k: round(v / 1000, 1) for k, v in owners.items()}


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument(
        "--bin",
        type=Path,
        default=Path(sys.executable).parent,
        help="directory with python, modelscan-lite and picklescan (default: this python's)",
    )
    ap.add_argument("--label", help="name of this run in the results file (default: --bin)")
    ap.add_argument("--baseline", type=Path, help="a copy of an earlier modelscan_lite + rules")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    bindir = args.bin.absolute()
    baseline = args.baseline.resolve() if args.baseline else None
    for tree in [ROOT] + ([baseline] if baseline else []):
        subprocess.run(
            [str(bindir / "python"), "-m", "compileall", "-q", str(tree / "modelscan_lite")],
            check=True,
            env=ENV,
        )
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        inputs = make_inputs(tmp)
        cmds = commands(bindir, inputs, baseline)
        for argv, env in cmds.values():
            for _ in range(3):  # bytecode and rules caches, page cache
                _, code = run(argv, env, tmp)
            if code != 0:
                sys.exit(f"{' '.join(argv)}: exit {code}, expected 0 on a clean file")
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(args.repeat):
            order = list(cmds)
            rng.shuffle(order)
            for name in order:
                times[name].append(run(*cmds[name], tmp)[0])
        rss = {name: peak_rss(*cmds[name], tmp) for name in cmds}
        breakdown = import_breakdown(bindir, inputs["pkl"], tmp)
    ref = statistics.median(times["picklescan -p tiny.pkl"])
    results = {}
    print(f"{'command':46} {'median':>9} {'p90':>9} {'peak RSS':>9} {'vs picklescan':>14}")
    for name in cmds:
        med = statistics.median(times[name])
        results[name] = {
            "median_s": round(med, 4),
            "p90_s": round(p90(times[name]), 4),
            "min_s": round(min(times[name]), 4),
            "peak_rss_mib": rss[name],
            "ratio_vs_picklescan": round(med / ref, 3),
        }
        r = results[name]
        print(
            f"{name:46} {med * 1000:7.1f}ms {r['p90_s'] * 1000:7.1f}ms "
            f"{r['peak_rss_mib'] or 0:6.1f}MiB {r['ratio_vs_picklescan']:13.3f}x"
        )
    ours = results["modelscan-lite scan -q tiny.pkl"]["ratio_vs_picklescan"]
    print(f"target <= {TARGET}x picklescan: {'met' if ours <= TARGET else 'missed'} ({ours}x)")
    print("import time by owner (-X importtime, ms, inflated):", breakdown)
    label = args.label or str(bindir)
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    runs = data.get("runs", {}) if isinstance(data.get("runs"), dict) else {}
    runs[label] = {
        "bin": str(bindir),
        "python": platform.python_version(),
        "repeat": args.repeat,
        "bytecode_cache": "on (PYTHONDONTWRITEBYTECODE removed, trees compiled, 3 warm-up runs)",
        "inputs": {k: p.name for k, p in inputs.items()},
        "target_ratio": TARGET,
        "met": ours <= TARGET,
        "results": results,
        "importtime_ms_by_owner": breakdown,
    }
    data = {"command": "python bench/bench_startup.py", "runs": runs}
    OUT.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
