"""Repo-analysis benchmark: the cross-file checks read JSON and headers only, so their time
must not grow with the size of the weights. ``python bench/bench_repo.py``.

Builds two copies of the sample repo under ``bench/data/`` (one with its 320-byte weights,
one with a 1 GiB safetensors file of the same tensors plus padding tensors), times the
repo-level analysis in-process (median of 21 runs, page cache warm) and records the bytes it
read (``rchar``). Writes ``bench/results-repo.json``.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from modelscan_lite.config import Config  # noqa: E402
from modelscan_lite.scanner import build_policy, scan_file, scan_repo  # noqa: E402
from samples.make_samples import repo_files, st_file, st_tensor  # noqa: E402


def make(name: str, pad_bytes: int) -> Path:
    repo = HERE / "data" / name
    if repo.exists():
        return repo
    repo.mkdir(parents=True)
    for fname, data in repo_files().items():
        (repo / fname).write_bytes(data)
    if pad_bytes:
        header = {
            "model.embed_tokens.weight": st_tensor("F32", [16, 4], 0, 256),
            "model.layers.0.mlp.weight": st_tensor("F32", [4, 4], 256, 320),
            "lm_head.padding": st_tensor("U8", [pad_bytes], 320, 320 + pad_bytes),
        }
        with open(repo / "model.safetensors", "wb") as f:
            f.write(st_file(header, b"\0" * 320))
            f.truncate(f.tell() + pad_bytes)  # sparse: the bytes are never read
    return repo


def rchar() -> int:
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar")).split()[1])


def measure(repo: Path) -> dict[str, float]:
    config = Config()
    policy = build_policy(config)
    # the repo analysis takes the tensor tables of the file scan (measured apart: it is the
    # file scan's cost, paid once)
    tables = {str(p.resolve()): scan_file(str(p), policy, config).tensors for p in repo.iterdir()}
    scan_repo(str(repo), policy, config, tables)  # warm
    times = []
    for _ in range(21):
        before = rchar()
        t = time.perf_counter()
        result = scan_repo(str(repo), policy, config, tables)
        times.append(time.perf_counter() - t)
        read = rchar() - before
    size = sum(p.stat().st_size for p in repo.iterdir())
    return {
        "median_ms": round(statistics.median(times) * 1000, 2),
        "bytes_read": read,
        "repo_bytes": size,
        "findings": len(result.findings),
    }


def main() -> None:
    small = make("repo-small", 0)
    large = make("repo-1GiB", 1 << 30)
    doc = {"small": measure(small), "1 GiB weights": measure(large)}
    print(json.dumps(doc, indent=2))
    (HERE / "results-repo.json").write_text(json.dumps(doc, indent=2) + "\n")
    if len(sys.argv) > 1 and sys.argv[1] == "--clean":
        shutil.rmtree(small)
        shutil.rmtree(large)


if __name__ == "__main__":
    main()
