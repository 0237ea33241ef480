"""The pre-commit hook definition other repositories use: valid, and it gates commits."""

from __future__ import annotations

import re
import shlex

import yaml

from .conftest import ROOT, run_cli


def _hooks() -> dict[str, dict[str, object]]:
    return {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


def test_hook_definitions_are_valid() -> None:
    hooks = _hooks()
    assert {"modelscan-lite", "modelscan-lite-all-files"} <= set(hooks)
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert str(hook["entry"]).startswith("modelscan-lite scan")


def test_hook_file_pattern_selects_model_files() -> None:
    pattern = re.compile(str(_hooks()["modelscan-lite"]["files"]))
    for name in (
        "model.pt",
        "w.safetensors",
        "clf.joblib",
        "x.PKL",
        "m.gguf",
        "m.onnx",
        "a.npz",
        "b.tar.gz",
    ):
        assert pattern.search(name), name
    for name in ("train.py", "README.md", "config.json"):
        assert not pattern.search(name), name


def test_hook_entry_fails_the_commit_on_a_malicious_file() -> None:
    entry = shlex.split(str(_hooks()["modelscan-lite"]["entry"]))
    assert entry[:2] == ["modelscan-lite", "scan"]
    bad = run_cli(*entry[1:], "samples/P101/bad-posix-system.pkl", "samples/P101/ok-plain-dict.pkl")
    assert bad.returncode == 1
    good = run_cli(*entry[1:], "samples/P101/ok-plain-dict.pkl")
    assert good.returncode == 0
