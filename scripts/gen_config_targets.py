#!/usr/bin/env python3
"""Generate ``rules/allowlist/config-targets.json``: the instantiation targets real configs use.

A target on this list gets no N105 (unknown-instantiation-target) finding; a target on the
shared list of dangerous callables is never put here (N101-N104 judge it whatever this list
says). Entries are exact dotted strings: Hydra's ``_locate`` resolves one string to one
object, so the string is the identity. No prefixes, no patterns: ``torch.nn.*`` would admit
``torch.nn.modules.module.os.system``-style walks.

Sources (each entry records the first one it came from):

- NVIDIA NeMo's shipped configs: every ``_target_`` (and NeMo's ``target`` with ``params`` or
  at a config's root) in the YAML files of a NeMo checkout at a pinned commit, read with the
  scanner's own safe composer (``--nemo-repo PATH``, a git directory; ``--nemo-commit``);
- PyTorch: the public classes of ``torch.nn`` (modules), ``torch.optim`` (optimizers),
  ``torch.optim.lr_scheduler`` and ``torch.utils.data`` (datasets, samplers, the loader);
- Lightning: the public callback classes of ``lightning.pytorch.callbacks`` and
  ``pytorch_lightning.callbacks``.

Run with the interpreter that has torch and lightning::

    python3 scripts/gen_config_targets.py --nemo-repo /path/to/NeMo/.git --nemo-commit <sha>
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "rules" / "allowlist" / "config-targets.json"
sys.path.insert(0, str(ROOT))

from modelscan_lite.callables import load_callables  # noqa: E402
from modelscan_lite.engine import dotted_tails  # noqa: E402
from modelscan_lite.formats.base import Context  # noqa: E402
from modelscan_lite.formats.hydra import scan_config_bytes  # noqa: E402
from modelscan_lite.formats.streams import DecompressBudget  # noqa: E402
from modelscan_lite.limits import Deadline, Limits  # noqa: E402
from modelscan_lite.model import Location  # noqa: E402

TORCH_MODULES = ("torch.nn", "torch.optim", "torch.optim.lr_scheduler", "torch.utils.data")
LIGHTNING_MODULES = ("lightning.pytorch.callbacks", "pytorch_lightning.callbacks")


def dangerous(target: str) -> str | None:
    table = load_callables()
    for tail in dotted_tails(target):
        hit = table.lookup(tail)
        if hit is not None:
            return f"{hit.dotted} ({hit.category})"
    return None


def git(repo: str, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", repo, *args], check=True, capture_output=True).stdout


def nemo_targets(repo: str, commit: str) -> dict[str, str]:
    out: dict[str, str] = {}
    names = git(repo, "ls-tree", "-r", "--name-only", commit).decode().splitlines()
    for name in sorted(n for n in names if n.endswith((".yaml", ".yml"))):
        data = git(repo, "show", f"{commit}:{name}")
        ctx = Context(Limits(), Deadline(60), DecompressBudget(1 << 30, 0))
        scan_config_bytes(data, Location(name), ctx, nemo=True)
        for fact in ctx.facts:
            # a one-component target is a bare module import; NeMo's test helpers are no
            # library a model depends on
            if (
                fact.kind in ("config.target.known", "config.target.unknown")
                and "." in fact.value
                and not fact.value.startswith("tests.")
            ):
                out.setdefault(fact.value, f"NVIDIA/NeMo@{commit[:12]} {name}")
    return out


def nemo_model_classes(repo: str, commit: str) -> dict[str, str]:
    """``<module>.<Class>`` of every top-level public class defined under
    ``nemo/collections/*/models/``: what ``SaveRestoreConnector`` writes as a
    ``model_config.yaml``'s root ``target`` (``cls.__module__`` + ``cls.__name__``). Read from
    the source with ``ast``, never imported."""
    import ast

    out: dict[str, str] = {}
    names = git(repo, "ls-tree", "-r", "--name-only", commit).decode().splitlines()
    for name in sorted(names):
        parts = name.split("/")
        if not (
            name.endswith(".py")
            and len(parts) >= 4
            and parts[:2] == ["nemo", "collections"]
            and "models" in [*parts[3:-1], parts[2]]
        ):
            continue
        try:
            tree = ast.parse(git(repo, "show", f"{commit}:{name}"))
        except SyntaxError:
            continue
        module = name[: -len(".py")].replace("/", ".").removesuffix(".__init__")
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                out.setdefault(f"{module}.{node.name}", f"NVIDIA/NeMo@{commit[:12]} {name}")
    return out


def library_targets(modules: tuple[str, ...], base: str | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    for modname in modules:
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        version = getattr(sys.modules[modname.split(".")[0]], "__version__", "?")
        names = getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")]
        for name in sorted(names):
            obj = getattr(mod, name, None)
            if not inspect.isclass(obj) or name.startswith("_"):
                continue
            if modname == "torch.nn" and not _is_module_class(obj):
                continue
            out.setdefault(f"{modname}.{name}", f"{modname.split('.')[0]} {version} {modname}")
    return out


def _is_module_class(obj: type) -> bool:
    import torch

    return issubclass(obj, torch.nn.Module)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nemo-repo", required=True, help="a NeMo git directory")
    ap.add_argument("--nemo-commit", default="HEAD")
    opts = ap.parse_args()
    commit = git(opts.nemo_repo, "rev-parse", opts.nemo_commit).decode().strip()
    found: dict[str, str] = {}
    found.update(library_targets(TORCH_MODULES))
    found.update(library_targets(LIGHTNING_MODULES))
    for target, source in nemo_targets(opts.nemo_repo, commit).items():
        found.setdefault(target, source)
    for target, source in nemo_model_classes(opts.nemo_repo, commit).items():
        found.setdefault(target, source)
    refused = {t: why for t in found if (why := dangerous(t))}
    for target, why in sorted(refused.items()):
        print(f"refused {target}: on the dangerous list as {why}", file=sys.stderr)
    targets = {t: found[t] for t in sorted(found) if t not in refused}
    doc = {
        "schema": 1,
        "generator": "scripts/gen_config_targets.py",
        "sources": {
            "nemo": f"NVIDIA/NeMo@{commit}",
            "torch": _version("torch"),
            "lightning": _version("lightning"),
        },
        "targets": targets,
    }
    OUT.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{len(targets)} targets -> {OUT.relative_to(ROOT)}")


def _version(name: str) -> str:
    try:
        return str(importlib.import_module(name).__version__)
    except ImportError:
        return "not installed"


if __name__ == "__main__":
    main()
