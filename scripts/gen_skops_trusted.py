#!/usr/bin/env python3
"""Generate ``rules/allowlist/skops-trusted.json``: the types skops trusts by default, per loader.

skops (``skops.io.load``) refuses a file whose schema names a type outside the node class's
default trusted list unless the caller passes ``trusted=[...]``. Each node class (the
``__loader__`` a schema node names) sets that list in its ``__init__`` with
``self.trusted = self._get_trusted(trusted, DEFAULT)`` (or assigns a list outright); the
base ``Node`` trusts nothing. This script reads that ``DEFAULT`` expression from each class's
source with ``ast`` and evaluates it in the class's module, with the installed skops, so the
list is skops' own, not a copy typed by hand. Run it in a virtualenv with skops and
scikit-learn::

    /tmp/venv-configs/bin/python scripts/gen_skops_trusted.py
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "rules" / "allowlist" / "skops-trusted.json"
# loaders whose node calls the type (``constructor(*args)``) rather than ``cls.__new__(cls)``
CALLING_LOADERS = (
    "ReduceNode",
    "TreeNode",
    "LossNode",
    "QuantileForestNode",
    "ConstructorFromReduceNode",
    "OperatorFuncNode",
    "RandomGeneratorNode",
)


def default_of(cls: type) -> list[str] | None:
    """The DEFAULT a node class's ``__init__`` trusts, or None when it sets none itself."""
    from skops.io._utils import get_type_paths

    src = textwrap.dedent(inspect.getsource(cls.__init__))  # type: ignore[misc]
    module = sys.modules[cls.__module__]
    tree = ast.parse(src)
    # local names the DEFAULT expression uses (``sparse_types = [spmatrix]`` and the
    # ``append`` after it): the body's statements that touch neither the node nor the file
    local: dict[str, Any] = {"state": {}}
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    for stmt in func.body:
        text = ast.unparse(stmt)
        if any(word in text for word in ("self", "super", "load_context", "state[", "raise")):
            continue
        try:
            exec(compile(ast.Module([stmt], []), f"<{cls.__name__}>", "exec"), vars(module), local)  # noqa: S102
        except Exception:  # noqa: S112 - a statement the DEFAULT does not need
            continue
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if not (isinstance(target, ast.Attribute) and target.attr == "trusted"):
            continue
        value = node.value
        expr: ast.expr | None = value
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and value.func.attr == "_get_trusted"
        ):
            expr = value.args[1] if len(value.args) > 1 else None
            for kw in value.keywords:
                if kw.arg == "default":
                    expr = kw.value
        if expr is None:
            return []
        code = compile(ast.Expression(expr), f"<{cls.__name__}>", "eval")
        found: Any = eval(code, vars(module), local)  # noqa: S307 - skops' own source
        return sorted(set(get_type_paths(found)))
    return None


def main() -> None:
    import sklearn
    import skops
    from skops.io import _persist  # noqa: F401 - merges every module's NODE_TYPE_MAPPING
    from skops.io._audit import NODE_TYPE_MAPPING, Node

    loaders: dict[str, list[str]] = {}
    for (name, _protocol), cls in sorted(NODE_TYPE_MAPPING.items(), key=lambda kv: kv[0]):
        trusted: list[str] | None = None
        for klass in cls.__mro__:
            if klass is object or not issubclass(klass, Node):
                break
            trusted = default_of(klass)
            if trusted is not None:
                break
        loaders[name] = trusted or []
    doc = {
        "schema": 1,
        "generator": "scripts/gen_skops_trusted.py",
        "skops": skops.__version__,
        "scikit-learn": sklearn.__version__,
        "protocol": max(p for _, p in NODE_TYPE_MAPPING),
        "calling-loaders": list(CALLING_LOADERS),
        "loaders": loaders,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"{len(loaders)} loaders, {sum(map(len, loaders.values()))} trusted names -> {OUT}")


if __name__ == "__main__":
    main()
