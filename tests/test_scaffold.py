"""scripts/scaffold.py writes a rule and a format that the scanner takes as they are: the
format is sniffed, dispatched and named with nothing else edited, and the rule loads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_scaffolded_format_and_rule_work_untouched(tmp_path: Path) -> None:
    for part in ("modelscan_lite", "rules", "samples", "scripts"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "helpers.py", tmp_path / "tests" / "helpers.py")
    (tmp_path / "tests" / "__init__.py").write_text("")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "MODELSCAN_LITE_NO_CACHE": "1"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )

    made = run(
        "scripts/scaffold.py",
        "--root",
        str(tmp_path),
        "format",
        "acme",
        "Acme model",
        "--magic",
        "ACME",
        "--family",
        "data",
        "--ext",
        "acm",
    )
    assert made.returncode == 0, made.stderr
    rule = run(
        "scripts/scaffold.py",
        "--root",
        str(tmp_path),
        "rule",
        "M999",
        "acme-thing",
        "--kind",
        "acme.thing",
        "--format",
        "acme",
    )
    assert rule.returncode == 0, rule.stderr
    assert (tmp_path / "rules" / "formats" / "M999-acme-thing.yaml").is_file()
    # the generated test passes, the rule set loads, the file is that format
    tests = run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_format_acme.py")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    loads = run(
        "-c",
        "from modelscan_lite.engine import load_rules; "
        "print(any(r.id == 'M999' for r in load_rules().rules))",
    )
    assert loads.stdout.strip() == "True", loads.stderr
    # an existing ID is refused: IDs are permanent
    again = run(
        "scripts/scaffold.py", "--root", str(tmp_path), "rule", "M999", "other", "--kind", "x"
    )
    assert again.returncode != 0 and "exists already" in again.stderr
