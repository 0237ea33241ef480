"""Non-negotiable 1, checked statically: outside ``modelscan_lite/sandbox`` no module calls an
API that deserializes, executes or renders an artifact. ``modelscan_lite/guard.py`` is checked
like every module, plus the narrow rule of its one exemption (it calls the user's own loader,
saved at install, after a clean scan): see ``test_guard_only_calls_the_saved_originals``."""

from __future__ import annotations

import ast

import pytest

from .conftest import ROOT

FORBIDDEN_CALLS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("pickle", "Unpickler"),
    ("_pickle", "load"),
    ("_pickle", "loads"),
    ("_pickle", "Unpickler"),
    ("cPickle", "load"),
    ("cPickle", "loads"),
    ("dill", "load"),
    ("dill", "loads"),
    ("cloudpickle", "load"),
    ("cloudpickle", "loads"),
    ("joblib", "load"),
    ("torch", "load"),
    ("marshal", "loads"),
    ("marshal", "load"),
    ("np", "load"),
    ("numpy", "load"),
    ("onnxruntime", "InferenceSession"),
    ("jinja2", "Template"),
    ("yaml", "unsafe_load"),
    ("builtins", "eval"),
}
FORBIDDEN_NAMES = {"eval", "exec", "__import__", "InferenceSession"}
FORBIDDEN_ATTRS = {"from_string", "render"}


def _package_files() -> list:
    return [p for p in (ROOT / "modelscan_lite").rglob("*.py") if "sandbox" not in p.parts]


@pytest.mark.parametrize("path", _package_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_never_deserializes(path) -> None:  # type: ignore[no-untyped-def]
    tree = ast.parse(path.read_text(), str(path))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and (func.value.id, func.attr) in FORBIDDEN_CALLS
            ):
                problems.append(f"line {node.lineno}: {func.value.id}.{func.attr}(...)")
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_NAMES:
                problems.append(f"line {node.lineno}: {func.id}(...)")
            if isinstance(func, ast.Attribute) and func.attr in FORBIDDEN_ATTRS:
                problems.append(f"line {node.lineno}: .{func.attr}(...)")
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "load"
                and any(k.arg == "allow_pickle" for k in node.keywords)
            ):
                problems.append(f"line {node.lineno}: load(allow_pickle=...)")
        if isinstance(node, ast.ImportFrom) and node.module in ("pickle", "_pickle", "dill"):
            names = {a.name for a in node.names}
            if names & {"load", "loads", "Unpickler"}:
                problems.append(f"line {node.lineno}: from {node.module} import {names}")
    assert not problems, f"{path.name} deserializes or executes: {problems}"


GUARD = ROOT / "modelscan_lite" / "guard.py"
DESERIALIZING_MODULES = {"pickle", "_pickle", "torch", "joblib", "numpy", "dill", "cloudpickle"}


def test_guard_only_calls_the_saved_originals() -> None:
    """The one documented exemption: ``modelscan_lite/guard.py`` makes a deserializer run, on
    the user's behalf, after a clean scan: the loader the user called, saved when the guard
    was installed, always through a variable named ``original``. The check above still covers
    the guard (no ``pickle.loads(...)``/``torch.load(...)`` on data it read); this one adds
    that it imports no deserializing library (it reaches them through ``sys.modules`` only)
    and never calls what it fetched with ``getattr`` (a loader called by name in disguise)."""
    tree = ast.parse(GUARD.read_text(), str(GUARD))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if any(n.split(".")[0] in DESERIALIZING_MODULES for n in names):
                problems.append(f"line {node.lineno}: imports {names}")
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Call) and getattr(func.func, "id", None) == "getattr":
                problems.append(f"line {node.lineno}: getattr(...)(...)")
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "original"
    ]
    assert calls, "the guard calls the original loader through a variable named original"
    assert not problems, f"guard.py: {problems}"


def test_tripwire_is_armed() -> None:
    import pickle

    with pytest.raises(AssertionError, match="must never deserialize"):
        pickle.loads(b"N.")
