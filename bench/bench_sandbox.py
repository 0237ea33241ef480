"""The sandbox's own start-up overhead, per backend, next to the loaders' times.

For each backend the machine supports and each loader, loads one small benign artifact
``--repeat`` times and records the median of: ``startup`` (process start to the moment the
parent holds the seccomp listener: interpreter, isolation, warm-up imports), ``warm`` (the
warm-up imports alone), ``isolation`` (startup - warm: what the sandbox itself costs), the
loader's ``load`` and ``inference``, and ``total`` wall time. A bare ``python -c pass`` gives
the interpreter's floor. Writes bench/results-sandbox.json.

    python bench/bench_sandbox.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modelscan_lite.config import SandboxOptions  # noqa: E402
from modelscan_lite.sandbox import BACKENDS, supervisor  # noqa: E402


def artifacts(folder: Path) -> dict[str, Path]:
    import numpy as np
    import torch

    out = {"pickle": folder / "state.pkl", "torch": folder / "state.pt"}
    out["pickle"].write_bytes(b"\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s.")
    torch.save({"w": torch.zeros(64, 64)}, out["torch"])
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        w = numpy_helper.from_array(np.ones((3, 2), dtype=np.float32), "W")
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "W"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
            [w],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        out["onnx"] = folder / "model.onnx"
        onnx.save(model, out["onnx"])
    except ImportError:
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    floor = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)
        floor.append(time.perf_counter() - t)
    results: dict[str, object] = {"python_start": round(statistics.median(floor), 4)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for loader, path in artifacts(Path(tmp)).items():
            for backend in BACKENDS:
                reason = supervisor.probe(backend)
                if reason:
                    rows.append({"backend": backend, "loader": loader, "skipped": reason})
                    continue
                runs = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    o = supervisor.run(str(path), loader, backend, SandboxOptions())
                    wall = time.perf_counter() - t
                    assert o.status == "done", (o.status, o.error)
                    runs.append({**o.timings, "wall": wall})

                def med(key: str, runs: list[dict[str, float]] = runs) -> float:
                    return round(statistics.median(r.get(key, 0.0) for r in runs), 4)

                row = {
                    "backend": backend,
                    "loader": loader,
                    "startup": med("startup"),
                    "warm": med("warm"),
                    "isolation": round(med("startup") - med("warm"), 4),
                    "load": med("load"),
                    "inference": med("inference"),
                    "total": med("wall"),
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    results["runs"] = rows
    (ROOT / "bench" / "results-sandbox.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
