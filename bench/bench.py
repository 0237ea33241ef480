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
    make_format_inputs(size)


def make_format_inputs(size: int) -> None:
    """safetensors and GGUF of ``size`` bytes, ONNX of half that with embedded weights."""
    import numpy as np

    n = 16
    per = size // n // 2  # F16 elements per tensor
    st_path = DATA / f"model-{size >> 20}MiB.safetensors"
    if not st_path.exists():
        from safetensors.numpy import save_file

        save_file({f"layer{i}.weight": np.zeros(per, np.float16) for i in range(n)}, str(st_path))
    gguf_path = DATA / f"model-{size >> 20}MiB.gguf"
    if not gguf_path.exists():
        import gguf

        vocab = 150_000
        w = gguf.GGUFWriter(str(gguf_path), "llama")
        w.add_block_count(n)
        w.add_embedding_length(64)
        w.add_token_list([f"token-{i}" for i in range(vocab)])
        w.add_chat_template(CHAT_TEMPLATE)
        w.add_tensor("token_embd.weight", np.zeros((vocab, 64), np.float16))
        rest = (size - vocab * 64 * 2) // n // 2
        for i in range(n):
            w.add_tensor(f"blk.{i}.ffn_up.weight", np.zeros((rest // 64, 64), np.float16))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    onnx_path = DATA / f"model-{size >> 21}MiB.onnx"
    if not onnx_path.exists():
        import onnx
        from onnx import TensorProto, helper

        dim = int((size // 2 // 8 // 4) ** 0.5)
        inits, nodes, prev = [], [], "X"
        for i in range(8):
            inits.append(
                helper.make_tensor(
                    f"W{i}",
                    TensorProto.FLOAT,
                    [dim, dim],
                    np.zeros(dim * dim, np.float32).tobytes(),
                    raw=True,
                )
            )
            nodes.append(helper.make_node("MatMul", [prev, f"W{i}"], [f"H{i}"]))
            prev = f"H{i}"
        graph = helper.make_graph(
            nodes,
            "g",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, dim])],
            [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, dim])],
            inits,
        )
        onnx.save(helper.make_model(graph), str(onnx_path))


CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def input_paths(small: bool) -> dict[str, Path]:
    size = (64 << 20) if small else GiB
    dicts = 300_000 if small else 3_000_000
    dense = DATA / f"dicts-{dicts}.pkl"
    return {
        f"{size >> 20} MiB safetensors": DATA / f"model-{size >> 20}MiB.safetensors",
        f"{size >> 20} MiB GGUF, 150k-token vocabulary": DATA / f"model-{size >> 20}MiB.gguf",
        f"{size >> 21} MiB ONNX, weights embedded": DATA / f"model-{size >> 21}MiB.onnx",
        "tiny pickle (pre-commit feel)": DATA / "tiny.pkl",
        f"{size >> 20} MiB torch zip checkpoint": DATA / f"checkpoint-{size >> 20}MiB.pt",
        f"{size >> 20} MiB protocol-5 pickle of numpy arrays": DATA / f"arrays-{size >> 20}MiB.pkl",
        f"{dense.stat().st_size >> 20} MiB pickle of {dicts:,} small dicts": dense,
    }


# Run the tools as users do: with bytecode caching (some shells export
# PYTHONDONTWRITEBYTECODE, which would make every run recompile our sources while the peers'
# were precompiled at install time).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
# Peers must not phone home from a benchmark (modelaudit sends telemetry by default).
ENV.update({"PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_ANALYTICS": "1"})


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


def tools(label: str) -> dict[str, list[str]]:
    """The tools that handle this input: picklescan for pickles, modelaudit (set
    MODELAUDIT=/path/to/modelaudit, e.g. from its own virtualenv) for the other formats."""
    found = {"modelscan-lite": [sys.executable, "-m", "modelscan_lite", "scan", "-q"]}
    pickles = "pickle" in label or "checkpoint" in label
    if pickles and shutil.which("picklescan"):
        found["picklescan"] = ["picklescan", "-p"]
    audit = os.environ.get("MODELAUDIT")
    if audit and not pickles:
        found["modelaudit"] = [audit, "scan", "--no-cache", "--format", "json"]
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--small", action="store_true", help="64 MiB inputs instead of 1 GiB")
    ap.add_argument("--write-readme", action="store_true")
    ap.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--only",
        help="re-measure inputs whose label contains this text and "
        "merge them into the saved results",
    )
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
    out = HERE / ("results-small.json" if args.small else "results.json")
    previous = json.loads(out.read_text()) if args.only and out.exists() else None
    if args.only:
        inputs = {k: v for k, v in inputs.items() if args.only in k}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "modelscan_lite")],
        check=True,
        env=ENV,
    )
    results: dict[str, dict[str, dict[str, float]]] = {}
    for label, path in inputs.items():
        results[label] = {}
        for tool, cmd in tools(label).items():
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
    reads = {}
    for label, path in inputs.items():
        if any(word in label for word in ("tiny", "dicts", "arrays")):
            continue
        reads[label] = {"file_bytes": path.stat().st_size, "read_bytes": bytes_read(path)}
        print(
            f"{label}: read {reads[label]['read_bytes']:,} of {reads[label]['file_bytes']:,} bytes"
        )
    if previous is not None:
        results = {**previous["results"], **results}
        reads = {**previous.get("bytes_read", {}), **reads}
    doc = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "results": results,
        "bytes_read": reads,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    if args.write_readme:
        write_readme(doc)


def write_readme(doc: dict) -> None:  # type: ignore[type-arg]
    lines = [
        "| input | modelscan-lite | peer | peer's time, memory | ratio |",
        "|---|---|---|---|---|",
    ]
    for label, per_tool in doc["results"].items():
        ours = per_tool["modelscan-lite"]
        cell = f"{ours['median_s']:.3f} s, {ours['max_rss_mib']:.0f} MiB"
        peers = [(name, r) for name, r in per_tool.items() if name != "modelscan-lite"]
        if not peers:
            lines.append(f"| {label} | {cell} | - | - | |")
        for name, theirs in peers:
            other = f"{theirs['median_s']:.3f} s, {theirs['max_rss_mib']:.0f} MiB"
            ratio = f"{ours['median_s'] / theirs['median_s']:.2f}x"
            lines.append(f"| {label} | {cell} | {name} | {other} | {ratio} |")
    lines.append("")
    lines.append("Bytes the scanner read (`rchar`), beyond its own start-up:")
    lines.append("")
    for label, r in doc["bytes_read"].items():
        lines.append(f"- {label}: {r['read_bytes']:,} of {r['file_bytes']:,} bytes")
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n" + "\n".join(lines) + "\n" + end + tail)


if __name__ == "__main__":
    main()
