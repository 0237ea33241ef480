"""Memory-bomb benchmark (issue 10, item 5): peak RSS and seconds of the CLI per case.

    python bench/bench_bombs.py [--baseline /tmp/base] [--only NAME]

Each case is built in a temp dir by the deterministic builders of
``tests/test_memory_bombs.py`` and scanned with ``python -m modelscan_lite scan FILE --format
json`` in a child process; peak RSS is that process's own (``os.wait4``). ``--baseline`` also
scans with an older checkout (``git worktree add /tmp/base <commit>``), run from its folder so
that its package is the one imported. Results go to ``bench/results-bombs.json``; the budget
the tests hold each case to is 512 MiB.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.test_memory_bombs import CASES, MiB, build_big_real_repo, run_scan  # noqa: E402

# the control: big but real files, analysed fully with no finding
ALL = {**CASES, "control-20MB-tokenizer-3000-tensors": build_big_real_repo}


def measure(target: Path, cwd: Path) -> dict[str, Any]:
    run = run_scan(target, timeout=900, cwd=cwd)
    return {
        "peak_rss_mib": round(run.peak_rss / MiB, 1),
        "seconds": round(run.seconds, 1),
        "exit": run.code,
        "findings": sorted({f"{f['rule']}: {f['message'][:120]}" for f in run.findings()}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, help="an older checkout to compare with")
    ap.add_argument("--only", action="append", choices=sorted(ALL), help="run only these")
    ap.add_argument("--out", type=Path, default=HERE / "results-bombs.json")
    args = ap.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bombs-") as tmp:
        for name, build in ALL.items():
            if args.only and name not in args.only:
                continue
            folder = Path(tmp) / name
            folder.mkdir()
            target = build(folder)
            size = sum(p.stat().st_size for p in [target, *target.rglob("*")] if p.is_file())
            entry: dict[str, Any] = {"input_bytes": size, "after": measure(target, ROOT)}
            if args.baseline:
                entry["before"] = measure(target, args.baseline.resolve())
            results[name] = entry
            line = (
                f"{name:32} {size / 1e6:8.2f} MB  after: {entry['after']['peak_rss_mib']:7.1f} MiB "
            )
            line += f"{entry['after']['seconds']:6.1f} s exit {entry['after']['exit']}"
            if "before" in entry:
                b = entry["before"]
                line += f"  | before: {b['peak_rss_mib']:7.1f} MiB {b['seconds']:6.1f} s"
                line += f" exit {b['exit']}"
            print(line, flush=True)
    doc = {
        "what": "peak RSS (MiB) and wall seconds of `modelscan_lite scan FILE --format json`",
        "limit_mib": 512,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, shared 2-core box; seconds are noisy",
        "cases": results,
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
