"""The rules ship inside the built wheel and work from an installed copy, not only a checkout;
the wheel carries the compiled pickle walker, and a build without a C compiler gives a working
pure-Python wheel that says so (at build time and at every scan)."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow


CORE = "modelscan_lite/formats/_pickle_fast.*"


def build_wheel(out: Path, env: dict[str, str] | None = None) -> tuple[Path, str]:
    """The project's own build (hatchling and hatch_build.py): the wheel and the build log."""
    pytest.importorskip("hatchling")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-v",
            "-w",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return next(out.glob("modelscan_lite-*.whl")), proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))[0]


def install(wheel: Path, where: Path) -> Path:
    """A fresh venv that sees nothing of this interpreter's packages, with the wheel and its
    declared runtime dependencies only; returns its python."""
    env_dir = where / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", str(wheel)]
    subprocess.run(install, check=True, timeout=600)
    return py


def scan_sample(
    py: Path, cwd: Path, sample: Path = ROOT / "samples/P101/bad-posix-system.pkl"
) -> subprocess.CompletedProcess[str]:
    """``scan -f json`` of one file by the installed copy."""
    argv = [str(py), "-m", "modelscan_lite", "scan", "-f", "json", str(sample)]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True)


def test_wheel_carries_the_compiled_walker(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if fnmatch.fnmatch(n, CORE + "so") or n.endswith(".pyd")], names
    assert not wheel.name.endswith("-py3-none-any.whl"), "a wheel with a C core is platform-tagged"


def test_build_without_a_compiler_gives_a_pure_wheel_that_says_so(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """No compiler (``CC`` that always fails): the build notes it on stderr and goes on; the
    pure-Python wheel installs, scans with the same verdict and notes the fallback on stderr
    at every scan, with stdout carrying only the report."""
    pure, log = build_wheel(tmp_path_factory.mktemp("pure"), {"CC": "/bin/false"})
    assert "building without the compiled pickle walker (compiling" in log
    assert pure.name.endswith("-py3-none-any.whl")
    assert not [n for n in zipfile.ZipFile(pure).namelist() if fnmatch.fnmatch(n, CORE + "so")]
    py = install(pure, tmp_path)
    proc = scan_sample(py, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert [f["rule"] for f in json.loads(proc.stdout)["artifacts"][0]["findings"]] == ["P101"]
    assert "note: pure Python (the compiled core cannot be used: it is not installed" in (
        proc.stderr
    )


def test_wheel_contains_every_rule(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for rule in (ROOT / "rules").glob("*/*.yaml"):
        assert f"modelscan_lite/_rules/{rule.parent.name}/{rule.name}" in names
    assert "modelscan_lite/_rules/schema.json" in names
    # the JSON report's published schema (README links it; importlib.resources finds it)
    assert "modelscan_lite/report.schema.json" in names


def test_installed_wheel_scans_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """A fresh venv that sees nothing of this interpreter's packages (also when the tests run
    inside a venv), with the wheel and its declared runtime dependencies only: the scan finds
    the payload and the evidence is fickling's decompilation, so every import fickling needs
    is declared."""
    py = install(wheel, tmp_path)
    env_dir = py.parent.parent
    sample = tmp_path / "x.pkl"
    sample.write_bytes((ROOT / "samples/P101/bad-posix-system.pkl").read_bytes())
    probe = (
        "import modelscan_lite, importlib.util as u; "
        "print(modelscan_lite.__file__, u.find_spec('torch'))"
    )
    proc = subprocess.run(
        [str(py), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert str(env_dir) in proc.stdout, "the test must use the installed copy"
    assert proc.stdout.split()[-1] == "None", "the venv must not see this interpreter's packages"
    proc = scan_sample(py, tmp_path, sample)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    (finding,) = [f for f in report["artifacts"][0]["findings"] if f["rule"] == "P101"]
    assert "from posix import system" in finding["evidence"], finding["evidence"]
    assert "not importable" not in finding["evidence"] and not report.get("notes")
    doc = subprocess.run(
        [str(py), "-m", "modelscan_lite", "rule", "P101"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert doc.returncode == 0 and "code-execution-global" in doc.stdout
    walker = subprocess.run(
        [str(py), "-m", "modelscan_lite", "version"], cwd=tmp_path, capture_output=True, text=True
    )
    assert "pickle walker: compiled (C core, _pickle_fast)" in walker.stdout
