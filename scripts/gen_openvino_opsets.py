"""Write rules/allowlist/openvino-opsets.json: every operation set the installed OpenVINO
ships (``opset1`` ... ``opsetN``) and the op types each one has.

OpenVINO's Python API does not list an opset's type names, so they are probed: candidate
names are every CamelCase suffix of the strings in ``libopenvino.so`` (type names are static
strings there, often tail-merged into longer ones), and a name belongs to an opset when
``NodeFactory(opset).create(name)`` does not answer "Couldn't create operation" (the
created node's own type name is kept: the factory ignores case). The IR
writes constants as ``Const`` (read back as ``Constant``), added wherever ``Constant`` is.
Run in a venv with ``pip install openvino`` (about a minute); the scanner never imports it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "rules" / "allowlist" / "openvino-opsets.json"
NAME = re.compile(r"[A-Z][A-Za-z0-9_]{1,40}")


def candidates() -> set[str]:
    import openvino

    libs = Path(openvino.__file__).parent / "libs"
    lib = next(p for p in sorted(libs.glob("libopenvino.so*")) if p.is_file())
    text = subprocess.run(
        ["strings", "-n", "2", str(lib)],
        capture_output=True,
        text=True,
        errors="replace",
        check=True,
    ).stdout
    found = {"Const"}
    for line in text.splitlines():
        for m in re.finditer(r"[A-Z]", line):
            tail = line[m.start() :]
            if NAME.fullmatch(tail):
                found.add(tail)
    return found


def main() -> None:
    import openvino as ov
    from openvino.utils.node_factory import NodeFactory

    names = sorted(candidates())
    opsets: dict[str, list[str]] = {}
    n = 1
    while hasattr(ov, f"opset{n}"):
        factory = NodeFactory(f"opset{n}")
        ops = set()
        for name in names:
            try:
                # the factory looks names up ignoring case: keep the node's own type name
                ops.add(factory.create(name).get_type_name())
            except RuntimeError as exc:
                if "Couldn't create operation" not in str(exc):
                    ops.add(name)
        if "Constant" in ops:
            ops.add("Const")
        opsets[f"opset{n}"] = sorted(ops)
        n += 1
    doc = {
        "source": f"openvino {ov.__version__} (scripts/gen_openvino_opsets.py)",
        "opsets": opsets,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"{len(opsets)} opsets -> {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
