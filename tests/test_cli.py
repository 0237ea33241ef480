"""The whole CLI in a subprocess: exit codes, stdout discipline, and snapshot tests of the
text, JSON and SARIF reports (``UPDATE_SNAPSHOTS=1 pytest tests/test_cli.py`` refreshes them)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from .conftest import ROOT, SNAPSHOTS

SNAP_SAMPLES = [
    "samples/P101/bad-torch-zip.pt",
    "samples/A204/bad-crc-mismatch.pt",
    "samples/P201/bad-payload-then-invalid-opcode.pkl",
    "samples/A203/ok-pickle-named.pkl",
    "samples/X201/ok-readme.md",
]


def _normalise(text: str) -> str:
    text = re.sub(r"\d+\.\d\ds\b", "N.NNs", text)
    # SARIF's %SRCROOT% is the checkout, wherever it was cloned
    text = text.replace(ROOT.as_uri() + "/", "file:///SRCROOT/")
    return re.sub(
        r'"rules_version": "[0-9a-f]+"',
        '"rules_version": "X"',
        re.sub(r"rules [0-9a-f]{12}", "rules X", text),
    )


def _check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    text = _normalise(text)
    if os.environ.get("UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(text)
    assert text == path.read_text(), f"snapshot {name} differs; UPDATE_SNAPSHOTS=1 to refresh"


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_report_snapshots(cli, fmt: str) -> None:  # type: ignore[no-untyped-def]
    proc = cli("scan", "--format", fmt, "--jobs", "1", *SNAP_SAMPLES)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    _check_snapshot(f"scan.{fmt}", proc.stdout)


def test_json_report_shape(cli) -> None:  # type: ignore[no-untyped-def]
    proc = cli("scan", "--format", "json", *SNAP_SAMPLES)
    doc = json.loads(proc.stdout)
    assert doc["schema_version"] == 1
    torch_zip = next(a for a in doc["artifacts"] if a["path"].endswith("bad-torch-zip.pt"))
    f = next(x for x in torch_zip["findings"] if x["rule"] == "P101")
    assert f["location"]["member"] == "archive/data.pkl"
    assert f["location"]["key"] == "posix.system"
    assert f["severity"] == "critical" and len(f["fingerprint"]) == 16
    assert "system(" in f["evidence"]
    readme = next(a for a in doc["artifacts"] if a["path"].endswith("ok-readme.md"))
    assert readme["skipped"] and not readme["findings"]
    assert doc["summary"]["failing"] >= 1


def test_sarif_validates(cli) -> None:  # type: ignore[no-untyped-def]
    import jsonschema

    proc = cli("scan", "--format", "sarif", *SNAP_SAMPLES)
    doc = json.loads(proc.stdout)
    schema = json.loads((Path(__file__).parent / "sarif-2.1.0-subset.json").read_text())
    jsonschema.validate(doc, schema)
    sarif_pydantic = pytest.importorskip("sarif_pydantic")
    sarif_pydantic.Sarif.model_validate(doc)
    driver = doc["runs"][0]["tool"]["driver"]
    ids = [r["id"] for r in driver["rules"]]
    for result in doc["runs"][0]["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    assert "P101" in ids and driver["rules"][ids.index("P101")]["help"]["markdown"]


def test_exit_0_on_clean_and_stdout_is_only_the_report(cli) -> None:  # type: ignore[no-untyped-def]
    proc = cli("scan", "-f", "json", "samples/P101/ok-state-dict.pt")
    assert proc.returncode == 0
    json.loads(proc.stdout)


def test_fail_on_threshold(cli) -> None:  # type: ignore[no-untyped-def]
    low_only = "samples/A206/bad-object-array.npy"
    assert cli("scan", low_only).returncode == 0
    assert cli("scan", "--fail-on", "low", low_only).returncode == 1
    assert cli("scan", "--fail-on", "never", "samples/P101/bad-posix-system.pkl").returncode == 0


def test_usage_errors_exit_2(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("scan", "--format", "xml", "samples").returncode == 2
    assert cli("scan", "--fail-on", "sometimes", "samples").returncode == 2
    assert cli("scan", "--no-such-flag").returncode == 2
    assert cli("rule", "Q999").returncode == 2


def test_missing_path_exits_2_but_findings_win(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = str(tmp_path / "nope.pkl")
    proc = cli("scan", missing)
    # the text report on stdout carries the error, once; other formats say it on stderr
    assert proc.returncode == 2 and proc.stdout.count("no such file") == 1
    assert "no such file" not in proc.stderr
    proc = cli("scan", missing, "samples/P101/bad-posix-system.pkl")
    assert proc.returncode == 1 and "no such file" in proc.stdout
    proc = cli("scan", "-f", "json", missing, "samples/P101/bad-posix-system.pkl")
    assert proc.returncode == 1 and "no such file" in proc.stderr


def test_output_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "r.sarif"
    proc = cli("scan", "-f", "sarif", "-o", str(out), "samples/P101/bad-posix-system.pkl")
    assert proc.returncode == 1 and proc.stdout == ""
    assert json.loads(out.read_text())["version"] == "2.1.0"


def test_config_error_exits_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "pyproject.toml").write_text('[tool.modelscan-lite]\nfail-on = "x"\n')
    proc = cli("scan", str(ROOT / "samples/P101/ok-plain-dict.pkl"), cwd=tmp_path)
    assert proc.returncode == 2 and "fail-on" in proc.stderr


def test_rule_doc_command(cli) -> None:  # type: ignore[no-untyped-def]
    proc = cli("rule", "p101")
    assert proc.returncode == 0
    assert proc.stdout.startswith("# P101 code-execution-global")
    for section in ("What it finds", "Why it matters", "Example", "How to fix", "Known problems"):
        assert section in proc.stdout
    listing = cli("rule")
    assert "P105" in listing.stdout and "X901" in listing.stdout


def test_python_dash_m_and_version(cli) -> None:  # type: ignore[no-untyped-def]
    proc = cli("version")
    assert proc.returncode == 0 and proc.stdout.startswith("modelscan-lite ")


def test_whole_samples_tree_fails_without_tracebacks(cli) -> None:  # type: ignore[no-untyped-def]
    proc = cli("scan", "samples")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "FAIL" in proc.stdout.splitlines()[-1]
