"""Baselines and suppressions (modelscan_lite.waivers): the acceptance round trip through the
real CLI (write a baseline, re-scan clean, add a bad file, fail on that file only), baselines
surviving copies and re-saves, stale entries, suppressions by rule+path, member and
fingerprint, reasons and expiry, malformed files, and the Python API."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import modelscan_lite
from modelscan_lite.config import Config, ConfigError, load_config
from modelscan_lite.waivers import (
    apply_waivers,
    load_suppressions,
    parse_suppressions,
    render_baseline,
)

from .conftest import SAMPLES, run_cli

BAD = {
    "posix.pkl": SAMPLES / "P101/bad-posix-system.pkl",  # P101, no member
    "torch.pt": SAMPLES / "P101/bad-torch-zip.pt",  # P101 in member archive/data.pkl
    "header.npy": SAMPLES / "A201/bad-npy-header.npy",  # an A-family finding
}
# the same `posix.system('true')` call, saved twice: protocol 0, then protocol 2 with memo
# opcodes, so every offset moves
PICKLE_V0 = b"cposix\nsystem\n(S'true'\ntR."
PICKLE_V2 = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."


def _project(root: Path) -> Path:
    models = root / "models"
    models.mkdir(parents=True)
    for name, src in BAD.items():
        shutil.copy(src, models / name)
    (models / "resaved.pkl").write_bytes(PICKLE_V0)
    return root


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def _findings(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for a in doc["artifacts"] for f in a["findings"]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return _project(tmp_path / "proj")


@pytest.fixture
def baselined(project: Path) -> tuple[Path, int]:
    """The project with ``b.json`` written, and the number of findings it accepted."""
    plain = run_cli("scan", "-f", "json", "models", cwd=project)
    assert plain.returncode == 1
    n = len(_findings(_json(plain)))
    assert n >= 4
    proc = run_cli("scan", "-f", "json", "--write-baseline", "b.json", "models", cwd=project)
    assert proc.returncode == 0, proc.stderr
    doc = _json(proc)
    assert doc["summary"]["baselined"] == n and not _findings(doc)
    assert "baseline written to b.json" in proc.stderr
    return project, n


# --------------------------------------------------------------------------- the round trip


def test_round_trip_write_rescan_clean_then_fail_on_the_new_file_only(
    baselined: tuple[Path, int],
) -> None:
    project, n = baselined
    clean = run_cli("scan", "-f", "json", "--baseline", "b.json", "models", cwd=project)
    assert clean.returncode == 0, clean.stderr
    doc = _json(clean)
    assert doc["summary"]["baselined"] == n and doc["summary"]["suppressed"] == 0
    assert not _findings(doc) and doc["summary"]["failing"] == 0
    assert len(doc["waived"]) == n
    assert {w["waiver"]["kind"] for w in doc["waived"]} == {"baseline"}
    assert {w["waiver"]["source"] for w in doc["waived"]} == {"b.json"}
    assert "notes" not in doc  # nothing stale

    shutil.copy(SAMPLES / "P101/bad-inst-subprocess.pkl", project / "models/new.pkl")
    dirty = run_cli("scan", "-f", "json", "--baseline", "b.json", "models", cwd=project)
    assert dirty.returncode == 1
    doc = _json(dirty)
    found = _findings(doc)
    assert found and {f["location"]["path"] for f in found} == {"models/new.pkl"}
    assert doc["summary"]["baselined"] == n


def test_baseline_file_is_versioned_sorted_and_deterministic(
    baselined: tuple[Path, int],
) -> None:
    project, n = baselined
    first = (project / "b.json").read_text()
    data = json.loads(first)
    assert data["baseline_version"] == 1
    assert data["tool"]["name"] == "modelscan-lite"
    assert data["tool"]["version"] == modelscan_lite.__version__ and data["tool"]["rules_version"]
    entries = data["findings"]
    assert len(entries) == n
    assert set(entries[0]) == {"rule", "fingerprint", "path", "member", "key", "message"}
    keys = [(e["path"], e["member"] or "", e["key"] or "", e["rule"]) for e in entries]
    assert keys == sorted(keys)
    member = [e for e in entries if e["path"] == "models/torch.pt"]
    assert member and member[0]["member"] == "archive/data.pkl"
    # the same findings, named ./models/ this time: the very same bytes
    again = run_cli("scan", "-q", "--write-baseline", "b2.json", "./models/", cwd=project)
    assert again.returncode == 0, again.stderr
    assert (project / "b2.json").read_text() == first


def test_baseline_survives_a_copy_other_spellings_and_a_resave(
    baselined: tuple[Path, int], tmp_path: Path
) -> None:
    project, n = baselined
    copy = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(project, copy)
    for spelling in ("models", "./models/", str(copy / "models")):
        proc = run_cli("scan", "-f", "json", "--baseline", "b.json", spelling, cwd=copy)
        assert proc.returncode == 0, (spelling, proc.stdout[-2000:], proc.stderr)
        assert _json(proc)["summary"]["baselined"] == n
    # re-saved with another protocol: every byte offset moves, the finding is the same one
    (copy / "models/resaved.pkl").write_bytes(PICKLE_V2)
    proc = run_cli("scan", "-f", "json", "--baseline", "b.json", "models", cwd=copy)
    assert proc.returncode == 0, proc.stdout[-2000:]
    doc = _json(proc)
    assert doc["summary"]["baselined"] == n and "notes" not in doc


def test_stale_entries_are_a_note_never_an_error(baselined: tuple[Path, int]) -> None:
    project, n = baselined
    (project / "models/posix.pkl").unlink()
    proc = run_cli("scan", "-f", "json", "--baseline", "b.json", "models", cwd=project)
    assert proc.returncode == 0, proc.stderr
    doc = _json(proc)
    assert doc["summary"]["baselined"] == n - 1
    [note] = doc["notes"]
    assert note.startswith("1 baseline entry no longer matches (b.json: models/posix.pkl)")
    assert "1 baseline entry no longer matches" in proc.stderr
    # --write-baseline with the old one in the config drops the stale entry
    (project / "pyproject.toml").write_text('[tool.modelscan-lite]\nbaseline = "b.json"\n')
    proc = run_cli("scan", "-q", "--write-baseline", "b.json", "models", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads((project / "b.json").read_text())["findings"]) == n - 1
    proc = run_cli("scan", "-f", "json", "models", cwd=project)  # baseline from the config
    assert proc.returncode == 0 and "notes" not in _json(proc)


def test_a_baseline_never_waives_another_rule(project: Path) -> None:
    first = _json(run_cli("scan", "-f", "json", "models/posix.pkl", cwd=project))
    [finding] = _findings(first)
    assert finding["rule"] == "P101"
    forged = {
        "baseline_version": 1,
        "findings": [{"rule": "P203", "fingerprint": finding["fingerprint"], "path": "x"}],
    }
    (project / "b.json").write_text(json.dumps(forged))
    proc = run_cli("scan", "-f", "json", "--baseline", "b.json", "models/posix.pkl", cwd=project)
    assert proc.returncode == 1
    doc = _json(proc)
    assert [f["fingerprint"] for f in _findings(doc)] == [finding["fingerprint"]]
    assert doc["summary"]["baselined"] == 0
    assert doc["notes"][0].startswith("1 baseline entry no longer matches")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "the baseline is not valid JSON"),
        ('{"findings": []}', "not a modelscan-lite baseline"),
        ('{"baseline_version": 7, "findings": []}', "baseline_version 7 is not supported"),
        ('{"baseline_version": 1}', "the baseline has no findings list"),
        (
            '{"baseline_version": 1, "findings": [{"rule": "P101", "fingerprint": "xyz"}]}',
            "baseline entry 1 needs a rule and a 16-hex-digit fingerprint",
        ),
        (None, "no such baseline file (write one with --write-baseline b.json)"),
    ],
)
def test_malformed_baseline_exits_2_before_scanning(
    project: Path, content: str | None, message: str
) -> None:
    if content is not None:
        (project / "b.json").write_text(content)
    proc = run_cli("scan", "--baseline", "b.json", "models", cwd=project)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"b.json: {message}" in proc.stderr


def test_unwritable_baseline_keeps_the_findings(project: Path) -> None:
    proc = run_cli(
        "scan", "-f", "json", "--write-baseline", "no/such/dir/b.json", "models", cwd=project
    )
    assert proc.returncode == 1
    doc = _json(proc)
    assert _findings(doc) and doc["summary"]["baselined"] == 0
    assert "cannot write the baseline no/such/dir/b.json" in proc.stderr


# --------------------------------------------------------------------------- suppressions


def _pyproject(project: Path, entries: str) -> None:
    (project / "pyproject.toml").write_text(f"[tool.modelscan-lite]\n{entries}")


def test_suppression_by_rule_and_path(project: Path) -> None:
    _pyproject(
        project,
        '[[tool.modelscan-lite.suppress]]\nrule = "P101"\npath = "models/posix.pkl"\n'
        'reason = "our own test fixture"\n',
    )
    proc = run_cli("scan", "-f", "json", "models", cwd=project)
    assert proc.returncode == 1  # the other files still fail
    doc = _json(proc)
    assert doc["summary"]["suppressed"] == 1
    [waived] = doc["waived"]
    assert waived["rule"] == "P101" and waived["location"]["path"] == "models/posix.pkl"
    assert waived["waiver"] == {
        "kind": "suppression",
        "reason": "our own test fixture",
        "expires": None,
        "source": str(project / "pyproject.toml"),
    }
    assert all(f["location"]["path"] != "models/posix.pkl" for f in _findings(doc))


def test_suppression_path_is_anchored_to_the_config_folder(project: Path) -> None:
    _pyproject(
        project,
        '[[tool.modelscan-lite.suppress]]\nrule = "P1"\npath = "models/*"\nreason = "r"\n'
        '[[tool.modelscan-lite.suppress]]\nrule = "A"\npath = "*.npy"\nreason = "r"\n',
    )
    # from a subfolder: the glob with a / is still relative to the pyproject's folder
    (project / "sub").mkdir()
    proc = run_cli("scan", "-f", "json", "../models", cwd=project / "sub")
    assert proc.returncode == 0, proc.stdout[-3000:]
    doc = _json(proc)
    assert not _findings(doc) and doc["summary"]["suppressed"] == len(doc["waived"]) >= 4


def test_suppression_by_fingerprint_and_by_member(project: Path) -> None:
    doc = _json(run_cli("scan", "-f", "json", "models/posix.pkl", "models/torch.pt", cwd=project))
    fp = next(
        f["fingerprint"] for f in _findings(doc) if f["location"]["path"].endswith("posix.pkl")
    )
    _pyproject(
        project,
        f'[[tool.modelscan-lite.suppress]]\nfingerprint = "{fp}"\nreason = "known"\n'
        '[[tool.modelscan-lite.suppress]]\nrule = "P101"\npath = "*.pt"\nmember = "archive/*"\n'
        'reason = "vendored checkpoint"\n'
        '[[tool.modelscan-lite.suppress]]\nrule = "P101"\npath = "*.pkl"\nmember = "*"\n'
        'reason = "never applies: posix.pkl has no member"\n',
    )
    proc = run_cli("scan", "-f", "json", "models/posix.pkl", "models/torch.pt", cwd=project)
    doc = _json(proc)
    reasons = {w["location"]["path"]: w["waiver"]["reason"] for w in doc["waived"]}
    assert reasons == {"models/posix.pkl": "known", "models/torch.pt": "vendored checkpoint"}
    assert not [f for f in _findings(doc) if f["rule"] == "P101"]
    # a member glob that does not match keeps the finding
    _pyproject(
        project,
        '[[tool.modelscan-lite.suppress]]\nrule = "P101"\nmember = "other/*"\nreason = "r"\n',
    )
    doc = _json(run_cli("scan", "-f", "json", "models/torch.pt", cwd=project))
    assert doc["summary"]["suppressed"] == 0 and _findings(doc)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('rule = "P101"\npath = "*"\n', "suppress entry 1: reason is required"),
        ('rule = "P101"\nreason = "  "\n', "suppress entry 1: reason must be a non-empty string"),
        ('path = "*"\nreason = "r"\n', "give a rule (with a path) or a fingerprint"),
        ('rule = "P101"\nreason = "r"\nwhy = "x"\n', "unknown keys ['why']"),
        ('rule = "Q999"\nreason = "r"\n', "suppress: 'Q999' names no rule"),
        ('fingerprint = "abc"\nreason = "r"\n', "fingerprint must be 16 hex digits"),
        ('rule = "P101"\nreason = "r"\nexpires = "soon"\n', "expires must be a date"),
    ],
)
def test_bad_suppression_exits_2(project: Path, entry: str, message: str) -> None:
    _pyproject(project, f"[[tool.modelscan-lite.suppress]]\n{entry}")
    proc = run_cli("scan", "models/posix.pkl", cwd=project)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert message in proc.stderr


def test_expired_suppression_brings_the_finding_back_with_a_note(project: Path) -> None:
    _pyproject(
        project,
        '[[tool.modelscan-lite.suppress]]\nrule = "P101"\npath = "models/posix.pkl"\n'
        'reason = "until the vendor fixes it"\nexpires = 2000-01-31\n'
        '[[tool.modelscan-lite.suppress]]\nrule = "P101"\npath = "models/torch.pt"\n'
        'reason = "still valid"\nexpires = "2999-12-31"\n',
    )
    proc = run_cli("scan", "-f", "json", "models/posix.pkl", "models/torch.pt", cwd=project)
    assert proc.returncode == 1
    doc = _json(proc)
    assert [f["location"]["path"] for f in _findings(doc)] == ["models/posix.pkl"]
    [waived] = doc["waived"]
    assert waived["waiver"]["expires"] == "2999-12-31"
    [note] = doc["notes"]
    assert note.startswith("suppression expired on 2000-01-31 (rule P101, path models/posix.pkl; ")
    assert "suppression expired on 2000-01-31" in proc.stderr


def test_expiry_day_itself_still_applies() -> None:
    [s] = parse_suppressions([{"rule": "P101", "reason": "r", "expires": "2030-06-01"}], "t")
    assert not s.expired(dt.date(2030, 6, 1)) and s.expired(dt.date(2030, 6, 2))


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_suppression_file_toml_or_yaml(project: Path, suffix: str) -> None:
    # globs with a / are relative to the suppression file's folder, as per-path-ignores are
    # to the pyproject's; a glob without one matches the file name wherever the file is
    if suffix == ".toml":
        name = "waivers.toml"
        text = '[[suppress]]\nrule = "P101"\npath = "models/posix.pkl"\nreason = "toml"\n'
    else:
        (project / "policy").mkdir()
        name = "policy/waivers.yaml"
        text = "suppress:\n  - rule: P101\n    path: posix.pkl\n    reason: yaml\n"
        text += "    expires: 2999-01-01\n"
    (project / name).write_text(text)
    proc = run_cli("scan", "-f", "json", "--suppressions", name, "models/posix.pkl", cwd=project)
    assert proc.returncode == 0, proc.stderr
    [waived] = _json(proc)["waived"]
    assert waived["waiver"]["reason"] == suffix[1:]
    assert waived["waiver"]["source"] == name
    assert waived["waiver"]["expires"] == (None if suffix == ".toml" else "2999-01-01")


def test_suppression_file_errors(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("suppress:\n  - rule: P101\n")
    with pytest.raises(ConfigError, match="reason is required"):
        load_suppressions(str(tmp_path / "s.yaml"))
    (tmp_path / "s.toml").write_text("[[ignore]]\n")
    with pytest.raises(ConfigError, match="holds one key, suppress"):
        load_suppressions(str(tmp_path / "s.toml"))
    (tmp_path / "s.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"must end in \.toml, \.yaml or \.yml"):
        load_suppressions(str(tmp_path / "s.json"))
    (tmp_path / "bad.toml").write_text("[[suppress]\n")
    with pytest.raises(ConfigError, match="cannot parse the suppression file"):
        load_suppressions(str(tmp_path / "bad.toml"))


# --------------------------------------------------------------------------- Python API


def test_python_api_applies_baseline_and_suppressions(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    before = modelscan_lite.scan(["models"])
    assert before.failing() and not before.waived
    # write a baseline through the API, then read it back
    written = modelscan_lite.scan(["models"], Config(write_baseline="api.json"))
    assert not written.findings and written.waived_count("baseline") == len(before.findings)
    again = modelscan_lite.scan([project / "models"], Config(baseline="api.json"))
    assert not again.findings and again.waived_count("baseline") == len(before.findings)
    # suppressions take precedence over the baseline and carry their reason
    suppress = parse_suppressions([{"rule": "A", "path": "*.npy", "reason": "known header"}], "api")
    both = modelscan_lite.scan(["models"], Config(baseline="api.json", suppress=suppress))
    assert not both.findings and both.waived_count("suppression") >= 1
    assert both.waived_count("baseline") + both.waived_count("suppression") == len(before.findings)
    assert {w.waiver.reason for w in both.waived if w.waiver.kind == "suppression"} == {
        "known header"
    }


def test_pyproject_keys_load(project: Path) -> None:
    (project / "ci").mkdir()
    _pyproject(
        project,
        'baseline = "ci/b.json"\n[[tool.modelscan-lite.suppress]]\nrule = "p101"\n'
        'reason = "r"\nexpires = 2027-01-31\n',
    )
    cfg = load_config(project / "pyproject.toml")
    assert cfg.baseline == str(project / "ci/b.json")
    [s] = cfg.suppress
    assert s.rule == "P101" and s.expires == dt.date(2027, 1, 31)
    _pyproject(project, "baseline = 3\n")
    with pytest.raises(ConfigError, match="baseline must be the path"):
        load_config(project / "pyproject.toml")


def test_apply_waivers_leaves_a_report_alone_without_waivers(project: Path) -> None:
    report = modelscan_lite.scan([project / "models"])
    assert apply_waivers(report, Config()) is report
    assert render_baseline([], "0", "r") == render_baseline([], "0", "r")


def test_suppressed_and_baselined_report_is_schema_valid_and_not_stale(
    baselined: tuple[Path, int],
) -> None:
    """A finding both suppressed and in the baseline counts once (as suppressed) and its
    baseline entry is not stale; the JSON with both kinds of waivers validates."""
    import jsonschema

    project, n = baselined
    _pyproject(
        project,
        '[[tool.modelscan-lite.suppress]]\nrule = "A"\npath = "*.npy"\nreason = "known"\n'
        "expires = 2999-01-01\n",
    )
    proc = run_cli("scan", "-f", "json", "--baseline", "b.json", "models", cwd=project)
    assert proc.returncode == 0, proc.stderr
    doc = _json(proc)
    summary = doc["summary"]
    assert summary["suppressed"] >= 1 and summary["suppressed"] + summary["baselined"] == n
    assert "notes" not in doc, doc.get("notes")
    for w in doc["waived"]:
        assert (w["waiver"]["kind"] == "suppression") == (w["rule"][0] == "A")
    schema = json.loads((Path(modelscan_lite.__file__).parent / "report.schema.json").read_text())
    jsonschema.validate(doc, schema)


# --------------------------------------------------------------------------- red-team regressions


def test_brackets_in_a_suppression_path_are_literal(project: Path) -> None:
    """``model[v1].pkl`` names that file: brackets are not a character class that would
    waive ``modelv.pkl`` and ``model1.pkl`` instead."""
    models = project / "models"
    for name in ("model[v1].pkl", "modelv.pkl", "model1.pkl"):
        (models / name).write_bytes(PICKLE_V0)
    _pyproject(
        project,
        '[[tool.modelscan-lite.suppress]]\nrule = "P101"\npath = "models/model[v1].pkl"\n'
        'reason = "reviewed"\n',
    )
    doc = _json(run_cli("scan", "-f", "json", "models", cwd=project))
    assert [w["location"]["path"] for w in doc["waived"]] == ["models/model[v1].pkl"]
    failing = {f["location"]["path"] for f in _findings(doc) if f["rule"] == "P101"}
    assert {"models/modelv.pkl", "models/model1.pkl"} <= failing


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("b.json", "[" * 100_000 + "]" * 100_000, "nests too deep"),
        ("s.yaml", "suppress: " + "[" * 50_000 + "]" * 50_000 + "\n", "nests too deep"),
        ("s.toml", "suppress = " + "[" * 50_000 + "]" * 50_000 + "\n", "nests too deep"),
        (
            "s.yaml",
            "suppress:\n  - {rule: P101, reason: r, expires: 2020-02-30}\n",
            "cannot parse the suppression file",
        ),
        ("b.json", '{"baseline_version": true, "findings": []}', "is not supported"),
    ],
    ids=["deep-json", "deep-yaml", "deep-toml", "yaml-bad-date", "version-true"],
)
def test_hostile_waiver_files_exit_2_without_a_traceback(
    project: Path, name: str, content: str, message: str
) -> None:
    (project / name).write_text(content)
    option = "--baseline" if name.endswith(".json") else "--suppressions"
    proc = run_cli("scan", option, name, "models", cwd=project)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and message in proc.stderr


def test_deeply_nested_pyproject_exits_2(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        "[tool.modelscan-lite]\nignore = " + "[" * 50_000 + "]" * 50_000 + "\n"
    )
    proc = run_cli("scan", "models", cwd=project)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "nests too deep" in proc.stderr


def test_baseline_of_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    """Git allows any bytes in a name; the baseline is written (ASCII JSON) and matches."""
    import os

    folder = tmp_path / "m"
    folder.mkdir()
    with open(os.fsencode(folder) + b"/bad\xff\xfename.pkl", "wb") as f:
        f.write(PICKLE_V0)
    wrote = run_cli("scan", "-f", "json", "--write-baseline", "b.json", "m", cwd=tmp_path)
    assert wrote.returncode == 0, wrote.stderr[-2000:]
    assert (tmp_path / "b.json").read_bytes().isascii()
    again = run_cli("scan", "-f", "json", "--baseline", "b.json", "m", cwd=tmp_path)
    assert again.returncode == 0 and _json(again)["summary"]["baselined"] == 1
