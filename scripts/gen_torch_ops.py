"""Generate ``rules/allowlist/torch-ops.json``: PyTorch's own operator namespaces and ops, its
TorchScript custom-class namespaces, and the ops that touch files or the network, read from
the installed torch (never from a name pattern).

The T rules (TorchScript ``code/``, ``.pt2`` graphs, ExecuTorch operator tables) decide by
identity against this file:

- ``namespaces``: every ``<namespace>::<op>`` the installed torch registers, from
  ``torch._C._jit_get_all_schemas()`` (TorchScript's view: ``prim``, ``aten`` builtins...)
  and ``torch._C._dispatch_get_all_op_names()`` (the dispatcher's, after importing the torch
  modules that register ops from Python: higher-order ops, ``quantized_decomposed``,
  functional collectives). An op outside these namespaces needs a library the host loads
  (T103); an op inside them that is not listed was added by a later torch or registered by
  a library into a PyTorch namespace (T105).
- ``class_namespaces``: namespaces of the TorchBind classes torch registers
  (``__torch__.torch.classes.<namespace>.<Class>``), from
  ``torch._C._jit_get_custom_class_schemas()``.
- ``file_ops`` / ``network_ops``: reviewed identities, each checked to be registered (or
  recorded as not registered). The script fails when a registered schema takes a ``str``
  argument named like a path (``filename``, ``path``, ``file``, ``dir``...) and is on
  neither list nor on ``reviewed_not_file``: a new file-touching op must be reviewed.
- ``higher_order``: higher-order ops (``torch.ops.higher_order.<name>``).

Run with torch installed::

    python scripts/gen_torch_ops.py           # writes rules/allowlist/torch-ops.json
    python scripts/gen_torch_ops.py --check   # exit 1 if the file would change
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "rules" / "allowlist" / "torch-ops.json"

# torch modules that register operator libraries from Python when imported
REGISTERING_MODULES = (
    "torch._higher_order_ops",
    "torch.ao.quantization.fx._decomposed",
    "torch.distributed._functional_collectives",
    "torch._prims",
    "torch._prims.debug_prims",
    "torch._dynamo",
    "torch._inductor.lowering",
    "torch.export",
)

# ops that read or write host files, by identity (reviewed)
FILE_OPS = {
    "aten::from_file": "maps or reads a host file into a tensor (torch.from_file)",
    "aten::save": "writes a value to a host file (torch.save in TorchScript)",
    "aten::load": "would read a pickled file (torch.load); not a TorchScript builtin",
    "debugprims::load_tensor": "reads a tensor dump from the host's debug directory",
}
# ops that reach other processes or hosts (reviewed)
NETWORK_OPS = {
    "prim::rpc_async": "makes a remote procedure call to another RPC worker",
    "prim::rpc_sync": "makes a remote procedure call to another RPC worker",
    "prim::rpc_remote": "makes a remote procedure call to another RPC worker",
}
# names that load a native library when called from code (not ops; reviewed)
LIBRARY_LOADS = ("load_library",)
# schemas whose path-like argument names were reviewed and do not touch files
REVIEWED_NOT_FILE = frozenset({"aten::einsum", "aten::einsum.out"})
_PATHLIKE = re.compile(r"^(?:file(?:name)?|path|dir(?:ectory)?|url|fname|filepath)$", re.I)


def generate() -> dict[str, object]:
    import torch

    for mod in REGISTERING_MODULES:
        with contextlib.suppress(Exception):
            importlib.import_module(mod)
    ops: dict[str, set[str]] = {}
    schemas = torch._C._jit_get_all_schemas()
    unreviewed = []
    for schema in schemas:
        ns, _, name = schema.name.partition("::")
        ops.setdefault(ns, set()).add(name)
        qual = schema.name + (f".{schema.overload_name}" if schema.overload_name else "")
        pathlike = [
            a.name for a in schema.arguments if _PATHLIKE.match(a.name) and "str" in str(a.type)
        ]
        if (
            pathlike
            and schema.name not in FILE_OPS
            and schema.name not in NETWORK_OPS
            and qual not in REVIEWED_NOT_FILE
        ):
            unreviewed.append(str(schema))
    for full in torch._C._dispatch_get_all_op_names():
        ns, _, rest = full.partition("::")
        ops.setdefault(ns, set()).add(rest.split(".", 1)[0])
    if unreviewed:
        raise SystemExit(
            "schemas with path-like arguments, not reviewed:\n" + "\n".join(unreviewed)
        )
    higher = sorted(torch._ops._higher_order_ops)
    ops.setdefault("higher_order", set()).update(higher)
    classes: set[str] = set()
    for schema in torch._C._jit_get_custom_class_schemas():
        for arg in schema.arguments[:1]:
            m = re.match(r"__torch__\.torch\.classes\.([A-Za-z_]\w*)\.", str(arg.type))
            if m:
                classes.add(m.group(1))
    registered = {f"{ns}::{name}" for ns, names in ops.items() for name in names}
    return {
        "generator": "scripts/gen_torch_ops.py",
        "library": "torch",
        "version": torch.__version__.split("+", 1)[0],
        "sources": [
            "torch._C._jit_get_all_schemas()",
            "torch._C._dispatch_get_all_op_names()",
            "torch._ops._higher_order_ops",
            "torch._C._jit_get_custom_class_schemas()",
        ],
        "file_ops": {
            k: {"what": v, "registered": k in registered} for k, v in sorted(FILE_OPS.items())
        },
        "network_ops": {
            k: {"what": v, "registered": k in registered} for k, v in sorted(NETWORK_OPS.items())
        },
        "library_loads": list(LIBRARY_LOADS),
        "class_namespaces": sorted(classes),
        "namespaces": {ns: sorted(names) for ns, names in sorted(ops.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file would change")
    args = parser.parse_args()
    text = json.dumps(generate(), indent=1) + "\n"
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is stale; run scripts/gen_torch_ops.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
