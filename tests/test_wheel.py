"""The rules ship inside the built wheel and work from an installed copy, not only a checkout."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    return next(out.glob("modelscan_lite-*.whl"))


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
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", str(wheel)]
    subprocess.run(install, check=True, timeout=600)
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
    proc = subprocess.run(
        [str(py), "-m", "modelscan_lite", "scan", "-f", "json", str(sample)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
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
