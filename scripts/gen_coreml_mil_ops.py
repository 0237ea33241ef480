"""Write rules/allowlist/coreml-mil-ops.json: the op types a Core ML ML program (``mlProgram``,
``MILSpec.Operation.type``) is made of, from the installed coremltools.

The list is every op the MIL op registry knows for any target (``SSAOpRegistry.core_ops``:
iOS13 ... iOS18), minus coremltools' internal ``_``-prefixed ops, plus the op types its
ML-program writer emits itself (``converters/mil/backend/mil/load.py``: ``write_state`` /
``read_state`` for ``coreml_update_state``). ``custom_layer``, the op type a registered
custom op is written as, is left out on purpose: the scanner reports it as a custom layer.

    python3 -m venv --system-site-packages /tmp/venv-coreml
    /tmp/venv-coreml/bin/pip install coremltools
    /tmp/venv-coreml/bin/python scripts/gen_coreml_mil_ops.py

The scanner never imports coremltools.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "rules" / "allowlist" / "coreml-mil-ops.json"
WRITER_OPS = ("read_state", "write_state")


def main() -> None:
    import coremltools
    import coremltools.converters.mil.mil.ops.defs  # registers the ops
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    ops: dict[str, list[str]] = {}
    for name, by_target in SSAOpRegistry.core_ops.items():
        if name.startswith("_"):
            continue
        ops[name] = sorted({t.name for t in by_target})
    for name in WRITER_OPS:
        ops.setdefault(name, ["writer"])
    doc = {
        "source": f"coremltools {coremltools.__version__} (scripts/gen_coreml_mil_ops.py)",
        "ops": dict(sorted(ops.items())),
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(ops)} ops -> {OUT}")


if __name__ == "__main__":
    main()
