"""Start-up: what a tiny single-file scan imports (the one-file pre-commit case).

Counts modules, never time: ``python -X importtime -m modelscan_lite scan -q FILE`` runs in a
subprocess with its own rules cache (a first run fills it, as on any machine after the first
scan), and the second run must not import the modules below, which only other inputs need.
The module list is ``sys.modules`` at exit (``-X importtime`` misses modules loaded through
``importlib.import_module``, as the format registry loads parsers); the importtime lines name
the costliest imports when the test fails. The rule set a warm start builds from the
checked-rules cache must equal the parsed one. ``bench/bench_startup.py`` measures the time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelscan_lite.engine import Rule, RuleError, load_rules, rules_dir

ROOT = Path(__file__).resolve().parent.parent

# third-party libraries a tiny clean pickle or safetensors file never needs
HEAVY_LIBRARIES = (
    "fickling",  # decompiled evidence: only for findings
    "jinja2",  # chat templates
    "py7zr",  # 7z archives
    "yaml",  # rule files: parsed once, then read from the checked-rules cache
    "rich",  # progress bar: never with -q or without a terminal
    "numpy",
    "torch",
    "safetensors",
    "onnx",
    "gguf",
    "huggingface_hub",
    "jsonschema",
)
# our modules for other formats, repos, remote sources and the sandbox; stdlib modules with a
# noticeable start-up that nothing on this path needs
HEAVY_MODULES = (
    "modelscan_lite.sandbox",
    "modelscan_lite.repo",
    "modelscan_lite.templates",
    "modelscan_lite.hfcache",
    "modelscan_lite.callables",  # only when the rule files are parsed
    "modelscan_lite.waivers",
    "modelscan_lite.rule_docs",
    "modelscan_lite.report.sarif",
    "modelscan_lite.formats.onnx",
    "modelscan_lite.formats.archives",
    "modelscan_lite.formats.keras",
    "modelscan_lite.formats.tensorflow",
    "modelscan_lite.formats.gguf",
    "importlib.metadata",
    "email",
    "http",
    "ssl",
    "zipfile",
    "tarfile",
    "tempfile",
    "multiprocessing",
    "concurrent",
    "urllib.request",
)

DUMP = """\
import atexit, runpy, sys
out = sys.argv.pop()
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv = ["modelscan-lite", *sys.argv[1:]]
runpy.run_module("modelscan_lite", run_name="__main__", alter_sys=True)
"""


def _inputs(tmp_path: Path) -> dict[str, Path]:
    pkl = tmp_path / "tiny.pkl"
    pkl.write_bytes(pickle.dumps({"epoc": 3}, protocol=2))
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    st = tmp_path / "tiny.safetensors"
    st.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    return {"pickle": pkl, "safetensors": st}


def _scan(path: Path, tmp_path: Path) -> tuple[set[str], str]:
    """The modules loaded by ``scan -q path`` and the -X importtime report."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MODELSCAN_LITE_NO_CACHE", "PYTHONPATH", "FORCE_COLOR")
    }
    env.update(
        XDG_CACHE_HOME=str(tmp_path / "cache"), MODELSCAN_LITE_NO_PROGRESS="1", PYTHONPATH=str(ROOT)
    )
    out = tmp_path / "modules.txt"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", DUMP, "scan", "-q", str(path), str(out)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    return set(out.read_text().split()), proc.stderr


def _interpreter_modules(tmp_path: Path) -> set[str]:
    """What the interpreter's start loads before any of our code (``site`` and the ``.pth``
    files of this environment): not counted against the scan."""
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; print(chr(10).join(sys.modules))"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(proc.stdout.split())


def _costliest(importtime: str, n: int = 15) -> str:
    rows = []
    for line in importtime.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            _, cumulative, name = line[len("import time:") :].split("|")
            rows.append((int(cumulative), name.rstrip()))
    return "\n".join(f"{us / 1000:8.1f} ms {name}" for us, name in sorted(rows)[-n:])


@pytest.mark.parametrize("kind", ["pickle", "safetensors"])
def test_a_tiny_scan_imports_nothing_it_does_not_need(kind: str, tmp_path: Path) -> None:
    path = _inputs(tmp_path)[kind]
    _scan(path, tmp_path)  # fills the rules cache, as the first scan on a machine does
    loaded, importtime = _scan(path, tmp_path)
    assert "modelscan_lite.scanner" in loaded  # the scan did run, in this tree
    unwanted = sorted(
        m
        for m in loaded - _interpreter_modules(tmp_path)
        if any(m == h or m.startswith(h + ".") for h in (*HEAVY_LIBRARIES, *HEAVY_MODULES))
    )
    assert not unwanted, f"{unwanted}\ncostliest imports:\n{_costliest(importtime)}"


def test_the_first_scan_on_a_machine_parses_the_rule_files(tmp_path: Path) -> None:
    """The guard above is not vacuous: without the cache the rule files are parsed (yaml and
    the callables list are loaded), and the scan's result is the same."""
    path = _inputs(tmp_path)["pickle"]
    cold, _ = _scan(path, tmp_path)
    assert {"yaml", "modelscan_lite.callables"} <= cold
    warm, _ = _scan(path, tmp_path)
    assert not {"yaml", "modelscan_lite.callables"} & warm


def _fields(rule: Rule) -> dict[str, object]:
    out = {f.name: getattr(rule, f.name) for f in dataclasses.fields(rule)}
    out["glob"] = sorted(rule.glob.patterns()) if rule.glob else None
    out["regex"] = rule.regex.pattern if rule.regex else None
    return out


@pytest.fixture
def rules_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MODELSCAN_LITE_NO_CACHE", raising=False)
    root = tmp_path / "rules"
    shutil.copytree(rules_dir(), root)
    load_rules.cache_clear()
    yield root
    load_rules.cache_clear()


def test_rules_from_the_checked_cache_equal_the_parsed_rules(rules_copy: Path) -> None:
    parsed = load_rules(str(rules_copy))
    load_rules.cache_clear()
    checked = list((rules_copy.parent / "cache" / "modelscan-lite").glob("rules-checked-*"))
    assert len(checked) == 1  # written by the first load
    cached = load_rules(str(rules_copy))
    assert cached.version == parsed.version
    assert [_fields(r) for r in cached.rules] == [_fields(r) for r in parsed.rules]
    checked[0].write_text('[["x", {"match": 3}, []]]')  # not what a load writes: ignored
    load_rules.cache_clear()
    assert [_fields(r) for r in load_rules(str(rules_copy)).rules] == [
        _fields(r) for r in parsed.rules
    ]


def test_a_rule_moved_to_another_family_is_checked_again(rules_copy: Path) -> None:
    """The checked cache is named by the content version and the files' places: the same
    bytes in the wrong folder are parsed and refused, never taken from the cache."""
    load_rules(str(rules_copy))
    load_rules.cache_clear()
    rule = next(rules_copy.glob("pickle/P101-*.yaml"))
    rule.rename(rules_copy / "gguf" / rule.name)
    with pytest.raises(RuleError, match="family P rules live in pickle/"):
        load_rules(str(rules_copy))
