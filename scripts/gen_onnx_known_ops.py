"""Generate ``rules/onnx/known-ops/*.json``: the operators ONNX Runtime and onnxruntime-extensions
implement natively, by domain, read from the installed libraries (never from a name pattern).

Rule O101 accepts a node from one of these domains only when its op is on the list; O102 flags
an ``ai.onnx.contrib`` op that is not, since onnxruntime-extensions resolves such a name to a
Python function registered in the loading process (``onnx_op`` / ``PyCustomOpDef``).

Sources:
- ``com.microsoft``, ``com.microsoft.nchwc``, ``com.ms.internal.nhwc``: the operator schemas the
  onnxruntime wheel registers, ``onnxruntime.capi.onnxruntime_pybind11_state
  .get_all_operator_schema()`` (the same registry ``tools/python/gen_contrib_doc.py`` turns
  into ``docs/ContribOperators.md``).
- ``ai.onnx.contrib``, ``com.microsoft.extensions``: onnxruntime-extensions' native library
  (``get_library_path()``) registered into an ``InferenceSession``. Candidate names are the
  identifier strings in that library, their tails (linkers merge string tails) and the names
  in its mangled symbols; a name is kept when a one-node model using it gets past op
  resolution, i.e. fails with anything but ``is not a registered function/op``. Python ops
  are never registered at generation time, so none can enter the list.

Run with both packages installed (pinned versions recorded in each file), e.g.::

    pip install onnxruntime==1.32.0 onnxruntime-extensions==0.15.2
    python scripts/gen_onnx_known_ops.py            # writes rules/onnx/known-ops/
    python scripts/gen_onnx_known_ops.py --check    # exit 1 if the files would change
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "rules" / "onnx" / "known-ops"
ORT_DOMAINS = ("com.microsoft", "com.microsoft.nchwc", "com.ms.internal.nhwc")
ORTX_DOMAINS = ("ai.onnx.contrib", "com.microsoft.extensions")
UNREGISTERED = "is not a registered function/op"


def ort_ops() -> dict[str, dict[str, object]]:
    import onnxruntime
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    by_domain: dict[str, set[str]] = {d: set() for d in ORT_DOMAINS}
    for schema in state.get_all_operator_schema():
        if schema.domain in by_domain:
            by_domain[schema.domain].add(schema.name)
    return {
        domain: {
            "library": "onnxruntime",
            "version": onnxruntime.__version__,
            "source": "onnxruntime.capi.onnxruntime_pybind11_state.get_all_operator_schema()",
            "ops": sorted(names),
        }
        for domain, names in by_domain.items()
    }


def _candidates(library: bytes) -> set[str]:
    """Identifier strings of the library, their tails from each capital letter (linkers merge
    string tails), and the source names inside its Itanium-mangled symbols (``16Roberta...``)."""
    out = set()
    for m in re.findall(rb"[A-Za-z0-9_]{3,96}(?=\x00)", library):
        w = m.decode()
        for i, ch in enumerate(w):
            tail = w[i:]
            if ch.isupper() and tail.isalnum() and 3 <= len(tail) <= 64:
                out.add(tail)
    for m in re.finditer(rb"(?<![0-9])([1-9][0-9]?)([A-Z][A-Za-z0-9]+)", library):
        n = int(m.group(1))
        name = m.group(2)[:n].decode()
        if len(name) == n and n >= 3:
            out.add(name)
    return out


def ortx_ops() -> dict[str, dict[str, object]]:
    import onnxruntime as ort
    import onnxruntime_extensions as ortx
    from onnx import TensorProto, helper

    lib = ortx.get_library_path()
    candidates = sorted(_candidates(Path(lib).read_bytes()))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])

    def registered(domain: str, op: str) -> bool:
        node = helper.make_node(op, ["x"], ["y"], domain=domain)
        graph = helper.make_graph([node], "probe", [x], [y])
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)]
        )
        opts = ort.SessionOptions()
        opts.register_custom_ops_library(lib)
        opts.log_severity_level = 4
        try:
            ort.InferenceSession(
                model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # any error past op resolution means the op is known
            return UNREGISTERED not in str(exc)
        return True

    out = {}
    for domain in ORTX_DOMAINS:
        found = [op for op in candidates if registered(domain, op)]
        out[domain] = {
            "library": "onnxruntime-extensions",
            "version": ortx.__version__,
            "onnxruntime": ort.__version__,
            "source": "ops of onnxruntime_extensions.get_library_path() that an InferenceSession "
            "resolves (candidates: identifier strings of that library)",
            "ops": found,
        }
    return out


def render(domain: str, info: dict[str, object]) -> str:
    doc = {
        "domain": domain,
        "generator": "scripts/gen_onnx_known_ops.py",
        **info,
    }
    return json.dumps(doc, indent=1, sort_keys=False) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only compare with the committed files")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    tables = {**ort_ops(), **ortx_ops()}
    changed = []
    args.out.mkdir(parents=True, exist_ok=True)
    for domain, info in sorted(tables.items()):
        path = args.out / f"{domain}.json"
        text = render(domain, info)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            changed.append(path.name)
            if not args.check:
                path.write_text(text, encoding="utf-8")
        print(f"{domain}: {len(info['ops'])} ops")  # type: ignore[arg-type]
    if changed:
        print(("would change: " if args.check else "wrote: ") + ", ".join(changed))
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
