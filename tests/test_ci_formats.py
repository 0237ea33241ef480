"""The CI report formats (``github``, ``gitlab``, ``junit``): whole-CLI snapshots over the
same samples as tests/test_cli.py, parse checks (every finding is there), and hostile names
that must not break out of a workflow command, the JSON or the XML."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelscan_lite.report.github import command, escape_data, escape_property
from modelscan_lite.report.neutral import neutralise

from .conftest import ROOT, SAMPLES, run_cli
from .test_cli import SNAP_SAMPLES, _check_snapshot, _normalise

CI_ENV = {"GITHUB_WORKSPACE": str(ROOT), "CI_PROJECT_DIR": str(ROOT)}
NO_CI_ENV = {"GITHUB_WORKSPACE": "", "CI_PROJECT_DIR": ""}  # empty: paths relative to the cwd
COMMANDS = {"error", "warning", "notice"}
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "notice"}
GITLAB_SEVERITY = {"critical": "blocker", "high": "critical", "medium": "major", "low": "minor"}


def _scan(fmt: str, *paths: str, cwd: Path = ROOT, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return run_cli(
        "scan",
        "--format",
        fmt,
        "--jobs",
        "1",
        *paths,
        cwd=cwd,
        env=CI_ENV if env is None else {**NO_CI_ENV, **env},
    )


def _json_findings(*paths: str, cwd: Path = ROOT) -> list[dict[str, object]]:
    doc = json.loads(_scan("json", *paths, cwd=cwd).stdout)
    return [f for a in doc["artifacts"] for f in a["findings"]]


def _normalise_junit(text: str) -> str:
    """Timings and the rules version (a hash of the rule files) change from run to run."""
    text = re.sub(r'time="\d+\.\d+"', 'time="N"', text)
    return re.sub(r'(<property name="rules_version" value=")[0-9a-f]+"', r'\1X"', _normalise(text))


# --- the runner's side of workflow commands (actions/runner ActionCommand.TryParseV2) -------


def _unescape(text: str, table: tuple[tuple[str, str], ...]) -> str:
    for token, replacement in table:
        text = text.replace(replacement, token)
    return text


_DATA = (("\r", "%0D"), ("\n", "%0A"), ("%", "%25"))
_PROPERTY = (("\r", "%0D"), ("\n", "%0A"), (":", "%3A"), (",", "%2C"), ("%", "%25"))


def parse_command(line: str) -> tuple[str, dict[str, str], str] | None:
    """A stdout line as the GitHub runner reads it: (command, properties, data), or None."""
    line = line.lstrip()
    if not line.startswith("::"):
        return None
    end = line.find("::", 2)
    if end < 0:
        return None
    info = line[2:end]
    name, _, props_text = info.partition(" ")
    props: dict[str, str] = {}
    for item in props_text.strip().split(","):
        key, sep, value = item.partition("=")
        if item and sep and key and value:
            props[key] = _unescape(value, _PROPERTY)
    return name, props, _unescape(line[end + 2 :], _DATA)


def runner_lines(stdout: str) -> list[str]:
    # the runner reads lines split at LF; a lone CR or any other line break must not occur
    assert "\r" not in stdout
    return stdout.splitlines()


# --- snapshots -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "snapshot"),
    [("github", "scan.github"), ("gitlab", "scan.gitlab.json"), ("junit", "scan.junit.xml")],
)
def test_ci_report_snapshots(fmt: str, snapshot: str) -> None:
    proc = _scan(fmt, *SNAP_SAMPLES)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    text = _normalise_junit(proc.stdout) if fmt == "junit" else proc.stdout
    _check_snapshot(snapshot, text)


# --- parse checks: every finding is there ----------------------------------------------------


def test_github_annotations_cover_every_finding() -> None:
    findings = _json_findings(*SNAP_SAMPLES)
    proc = _scan("github", *SNAP_SAMPLES)
    parsed = [parse_command(line) for line in runner_lines(proc.stdout)]
    assert all(p is not None and p[0] in COMMANDS for p in parsed), proc.stdout
    annotations = [
        p for p in parsed if p and p[1].get("title", "").split(" ")[0] != "modelscan-lite"
    ]
    assert len(annotations) == len(findings)
    for f in findings:
        loc = f["location"]
        assert isinstance(loc, dict)
        match = [
            a
            for a in annotations
            if a[1]["title"] == f"{f['rule']} {f['name']}"
            and a[1]["file"] == loc["path"]
            and str(f["message"]) in a[2]
        ]
        assert match, f
        level, props, data = match[0]
        assert level == LEVEL[str(f["severity"])] and props["line"] == "1"
        if loc["member"]:
            assert f"member {loc['member']}" in data
        if loc["offset"] is not None:
            assert f"offset {loc['offset']}" in data
        assert f"`modelscan-lite rule {f['rule']}` for details" in data
    # most severe first: GitHub shows only the first annotations of each level
    ranks = [list(LEVEL.values()).index(a[0]) for a in annotations]
    assert ranks == sorted(ranks)
    summary = parsed[-1]
    assert summary and summary[0] == "notice" and summary[1]["title"] == "modelscan-lite summary"
    assert "0 suppressed, 0 baselined" in summary[2] and "4 finding(s)" in summary[2]


def test_github_paths_are_relative_to_the_workspace(tmp_path: Path) -> None:
    bad = SAMPLES / "P101" / "bad-posix-system.pkl"
    proc = _scan("github", str(bad), cwd=tmp_path, env={"GITHUB_WORKSPACE": str(ROOT)})
    first = parse_command(proc.stdout.splitlines()[0])
    assert first and first[1]["file"] == "samples/P101/bad-posix-system.pkl"
    # no GITHUB_WORKSPACE: relative to the cwd
    proc = run_cli("scan", "-f", "github", "P101/bad-posix-system.pkl", cwd=SAMPLES, env=NO_CI_ENV)
    first = parse_command(proc.stdout.splitlines()[0])
    assert first and first[1]["file"] == "P101/bad-posix-system.pkl"


def test_gitlab_code_quality_report() -> None:
    findings = _json_findings(*SNAP_SAMPLES)
    issues = json.loads(_scan("gitlab", *SNAP_SAMPLES).stdout)
    assert isinstance(issues, list) and len(issues) == len(findings)
    for issue in issues:
        assert set(issue) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert isinstance(issue["location"]["lines"]["begin"], int)
        assert not Path(issue["location"]["path"]).is_absolute()
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    for f in findings:
        loc = f["location"]
        assert isinstance(loc, dict)
        assert any(
            i["check_name"] == f"modelscan-lite/{f['rule']}"
            and i["location"]["path"] == loc["path"]
            and i["severity"] == GITLAB_SEVERITY[str(f["severity"])]
            and str(f["message"]) in i["description"]
            for i in issues
        ), f
    # stable: the same scan gives the same fingerprints
    again = json.loads(_scan("gitlab", *SNAP_SAMPLES).stdout)
    assert [i["fingerprint"] for i in again] == [i["fingerprint"] for i in issues]


def test_gitlab_fingerprints_unique_for_repeated_findings() -> None:
    """The same finding twice (same rule, path, member, key: one finding fingerprint, as for
    one global called at two offsets) must still be two GitLab issues, or GitLab shows one;
    and the fingerprints do not depend on offsets (they survive a re-save)."""
    from modelscan_lite.model import ArtifactResult, Finding, Location, Report, Severity
    from modelscan_lite.report.gitlab import render_gitlab

    def finding(offset: int) -> Finding:
        where = Location("m.pkl", None, offset, "posix.system")
        return Finding("P101", "code-execution-global", Severity.CRITICAL, "m", where, "f" * 16)

    def report(*offsets: int) -> Report:
        found = tuple(finding(o) for o in offsets)
        art = ArtifactResult("m.pkl", "pickle", 10, found)
        return Report("0", "x", ("P101",), Severity.MEDIUM, (art,))

    issues = json.loads(render_gitlab(report(2, 40)))
    assert len(issues) == 2 and issues[0]["fingerprint"] != issues[1]["fingerprint"]
    moved = json.loads(render_gitlab(report(7, 90)))
    assert [i["fingerprint"] for i in moved] == [i["fingerprint"] for i in issues]


def test_junit_report() -> None:
    findings = _json_findings(*SNAP_SAMPLES)
    root = ET.fromstring(_scan("junit", *SNAP_SAMPLES).stdout)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites[1:]] == SNAP_SAMPLES
    props = {p.get("name"): p.get("value") for p in suites[0].iter("property")}
    assert props["suppressed"] == "0" and props["baselined"] == "0"
    assert props["fail_on"] == "medium" and props["files"] == str(len(SNAP_SAMPLES))
    failures = root.findall(".//failure")
    assert len(failures) == len(findings) == int(root.get("failures", "-1"))
    for f in findings:
        loc = f["location"]
        assert isinstance(loc, dict)
        suite = next(s for s in suites if s.get("name") == loc["path"])
        assert any(
            x.get("type") == f"{f['rule']} {f['name']}" and str(f["message"]) in (x.text or "")
            for x in suite.iter("failure")
        ), f
    skipped = root.findall(".//skipped")
    assert len(skipped) == 1 == int(root.get("skipped", "-1"))
    for suite in suites:  # counts add up, one failure per test case at most
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases)
        assert all(len(c.findall("failure")) <= 1 for c in cases)


def test_junit_below_threshold_findings_pass() -> None:
    low_only = "samples/A206/bad-object-array.npy"
    proc = _scan("junit", low_only)
    assert proc.returncode == 0
    root = ET.fromstring(proc.stdout)
    assert not root.findall(".//failure")
    outs = [c.findtext("system-out") or "" for c in root.iter("testcase")]
    assert any("A206" in o and "below fail-on" in o for o in outs)


def test_scan_errors_in_every_ci_format(tmp_path: Path) -> None:
    missing = "no-such-model.pkl"
    bad = str(SAMPLES / "P101" / "bad-posix-system.pkl")
    gh = _scan("github", missing, bad, cwd=tmp_path, env={})
    assert gh.returncode == 1  # the finding wins over the error
    errors = [
        p
        for p in map(parse_command, runner_lines(gh.stdout))
        if p and p[1].get("title") == "modelscan-lite scan error"
    ]
    assert len(errors) == 1 and missing in errors[0][2]
    gl = json.loads(_scan("gitlab", missing, bad, cwd=tmp_path, env={}).stdout)
    err = [i for i in gl if i["check_name"] == "modelscan-lite/scan-error"]
    assert len(err) == 1 and err[0]["location"]["path"] == missing
    ju = ET.fromstring(_scan("junit", missing, bad, cwd=tmp_path, env={}).stdout)
    assert len(ju.findall(".//error")) == 1 == int(ju.get("errors", "-1"))


# --- hostile names ---------------------------------------------------------------------------

HOSTILE_MEMBERS = [
    "x\n::error file=evil.py,line=9::pwned\r\n::add-mask::secret.pkl",
    "a,b:c%0A%25::d\x1b[2J\u2028e\u202e.pkl",
    "t\tab\x07\x0b\x0c\x85\x7f\ufffe.pkl",
    "\r::stop-commands::tok.pkl",
]


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    bad = (SAMPLES / "P101" / "bad-posix-system.pkl").read_bytes()
    with zipfile.ZipFile(tmp_path / "hostile.zip", "w") as z:
        for name in HOSTILE_MEMBERS:
            z.writestr(name, bad)
    (tmp_path / "bad\n::error::injected,x:y%.pkl").write_bytes(bad)
    return tmp_path


def test_github_hostile_names_cannot_break_out(hostile: Path) -> None:
    findings = _json_findings(".", cwd=hostile)
    assert len(findings) >= len(HOSTILE_MEMBERS) + 1
    proc = _scan("github", ".", cwd=hostile, env={"GITHUB_WORKSPACE": str(hostile)})
    assert proc.returncode == 1
    lines = runner_lines(proc.stdout)
    # one command per finding plus the summary, and every line is one of ours
    assert len(lines) == len(findings) + 1
    parsed = [parse_command(line) for line in lines]
    assert all(p is not None and p[0] in COMMANDS for p in parsed)
    titles = {p[1]["title"] for p in parsed if p}
    assert titles == {"P101 code-execution-global", "modelscan-lite summary"}
    files = {p[1].get("file") for p in parsed if p} - {None}
    assert files == {"hostile.zip", "bad\\n::error::injected,x:y%.pkl"}
    for p in parsed:
        assert p is not None
        _, props, data = p
        assert set(props) <= {"file", "line", "title"}
        # after the runner unescapes: no control character, no line break from the file
        for text in (data, *props.values()):
            assert neutralise(text.replace("\n", "")) == text.replace("\n", "")
    members = " ".join(p[2] for p in parsed if p)
    assert "member x\\n::error file=evil.py,line=9::pwned\\r\\n::add-mask::secret.pkl" in members
    assert "\\x1b[2J" in members and "\\u202e" in members


def test_gitlab_hostile_names_stay_exact_json(hostile: Path) -> None:
    proc = _scan("gitlab", ".", cwd=hostile, env={"CI_PROJECT_DIR": str(hostile)})
    issues = json.loads(proc.stdout)
    proc.stdout.encode("ascii")  # escaped: no raw control or bidi character in the file
    paths = {i["location"]["path"] for i in issues}
    assert paths == {"hostile.zip", "bad\n::error::injected,x:y%.pkl"}
    assert len({i["fingerprint"] for i in issues}) == len(issues)


def test_junit_hostile_names_stay_valid_xml(hostile: Path) -> None:
    proc = _scan("junit", ".", cwd=hostile)
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]", proc.stdout)
    root = ET.fromstring(proc.stdout)
    names = [c.get("name", "") for c in root.iter("testcase")]
    assert any("x\\n::error file=evil.py" in n for n in names)
    for el in root.iter():
        for value in el.attrib.values():
            assert neutralise(value) == value
    assert len(root.findall(".//failure")) == len(_json_findings(".", cwd=hostile))


# --- escaping, against the runner's parser -----------------------------------------------------


@given(st.text(max_size=40), st.lists(st.text(max_size=30), min_size=1, max_size=3))
def test_command_round_trips_through_the_runner(file: str, lines: list[str]) -> None:
    # the title is ours (rule ID and name); the runner trims the end of the property list
    title = "P101 code-execution-global"
    line = command("warning", lines, file=file, line="1", title=title)
    assert "\n" not in line and "\r" not in line
    parsed = parse_command(line)
    assert parsed is not None
    name, props, data = parsed
    assert name == "warning"
    expected = {"file": neutralise(file), "line": "1", "title": title}
    assert props == {k: v for k, v in expected.items() if v}
    assert data == "\n".join(neutralise(x) for x in lines)


def test_escaping_matches_actions_toolkit() -> None:
    # actions/toolkit packages/core/src/command.ts escapeData / escapeProperty
    assert escape_data("50% a\r\nb::c,d:e") == "50%25 a%0D%0Ab::c,d:e"
    assert escape_property("50% a\r\nb::c,d:e") == "50%25 a%0D%0Ab%3A%3Ac%2Cd%3Ae"


def test_waived_counts_in_github_and_junit(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pkl"
    bad.write_bytes((SAMPLES / "P101" / "bad-posix-system.pkl").read_bytes())
    base = tmp_path / "base.json"
    wrote = run_cli("scan", "-q", "--write-baseline", str(base), "bad.pkl", cwd=tmp_path)
    assert wrote.returncode == 0, wrote.stderr
    gh = _scan("github", "--baseline", str(base), "bad.pkl", cwd=tmp_path, env={})
    assert gh.returncode == 0
    lines = runner_lines(gh.stdout)
    assert len(lines) == 1 and "0 suppressed, 1 baselined" in lines[0]
    ju = ET.fromstring(_scan("junit", "--baseline", str(base), "bad.pkl", cwd=tmp_path).stdout)
    props = {p.get("name"): p.get("value") for p in ju.iter("property")}
    assert props["baselined"] == "1" and props["suppressed"] == "0"
    assert not ju.findall(".//failure")
    gl = json.loads(_scan("gitlab", "--baseline", str(base), "bad.pkl", cwd=tmp_path).stdout)
    assert gl == []  # waived findings are not issues (documented in report/gitlab.py)


def test_sarif_output_beside_another_format(tmp_path: Path) -> None:
    """``--sarif-output``: one scan, the chosen format on stdout and SARIF in a file (what the
    GitHub Action does); the exit code is the scan's."""
    out = tmp_path / "r.sarif"
    proc = _scan("github", "--sarif-output", str(out), *SNAP_SAMPLES)
    assert proc.returncode == 1 and proc.stdout.startswith("::error ")
    alone = _scan("sarif", *SNAP_SAMPLES)
    assert _normalise(out.read_text()) == _normalise(alone.stdout)
    clean = _scan("text", "--sarif-output", str(out), "samples/P101/ok-plain-dict.pkl")
    assert clean.returncode == 0 and json.loads(out.read_text())["runs"][0]["results"] == []
    bad_dir = _scan("text", "--sarif-output", str(tmp_path / "no" / "r.sarif"), *SNAP_SAMPLES)
    assert bad_dir.returncode == 2 and "cannot write" in bad_dir.stderr
