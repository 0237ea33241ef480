"""The published JSON Schema of the JSON report (``modelscan_lite/report.schema.json``, shipped in
the wheel): it is a valid draft 2020-12 schema, every JSON report snapshot and a scan of the whole
``samples/`` folder validate against it, so do hand-built reports with waived findings, a dynamic
run and errors, and it rejects what is not a report."""

from __future__ import annotations

import copy
import importlib.resources
import json
from dataclasses import replace
from typing import Any

import jsonschema
import pytest

from modelscan_lite.engine import load_rules
from modelscan_lite.model import (
    ArtifactResult,
    DynamicRun,
    Finding,
    Location,
    Report,
    Severity,
    WaivedFinding,
    Waiver,
)
from modelscan_lite.report.json_report import render_json

from .conftest import SNAPSHOTS, run_cli


def report_schema() -> dict[str, Any]:
    text = (importlib.resources.files("modelscan_lite") / "report.schema.json").read_text(
        encoding="utf-8"
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def errors_of(doc: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(report_schema())
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(doc)
    ]


def test_schema_is_a_valid_2020_12_schema_with_id_and_title() -> None:
    schema = report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/modelscan_lite/report.schema.json")
    assert schema["title"]
    assert schema["additionalProperties"] is False


def _report_snapshots() -> list[str]:
    # scan.json is the JSON report; scan.<format>.json are other formats (GitLab code quality)
    names = sorted(p.name for p in SNAPSHOTS.glob("*.json") if "." not in p.stem)
    assert names, "no JSON report snapshot"
    return names


@pytest.mark.parametrize("name", _report_snapshots())
def test_every_json_snapshot_validates(name: str) -> None:
    doc = json.loads((SNAPSHOTS / name).read_text(encoding="utf-8"))
    # test_cli.py normalises the rules digest to "X" in snapshots; put a digest back
    if doc.get("tool", {}).get("rules_version") == "X":
        doc["tool"]["rules_version"] = "0" * 12
    assert errors_of(doc) == []


@pytest.fixture(scope="module")
def samples_report() -> dict[str, Any]:
    proc = run_cli("scan", "--format", "json", "samples/")
    assert proc.returncode == 1, proc.stderr[-2000:]
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_scan_of_all_samples_validates(samples_report: dict[str, Any]) -> None:
    assert errors_of(samples_report) == []
    assert len(samples_report["artifacts"]) > 500
    assert sum(len(a["findings"]) for a in samples_report["artifacts"]) > 300


def _finding(path: str, rule: str = "P101", **kw: Any) -> Finding:
    return Finding(
        rule=rule,
        name="code-execution-global",
        severity=kw.get("severity", Severity.CRITICAL),
        message="`posix.system` runs code or a process when the pickle loads",
        location=Location(path, kw.get("member"), kw.get("offset"), kw.get("key")),
        fingerprint=kw.get("fingerprint", "0123456789abcdef"),
        evidence=kw.get("evidence"),
    )


def hand_built_report() -> Report:
    live = _finding("m.pt", member="archive/data.pkl", offset=12, key="posix.system", evidence="x")
    dynamic = DynamicRun(
        loader="torch.load",
        backend="landlock+seccomp",
        status="load",
        startup=0.4,
        warm=0.2,
        load=0.01,
        inference=None,
        peak_rss=123456,
        landlock_abi=4,
        note=None,
    )
    artifacts = (
        ArtifactResult(
            "m.pt",
            "pytorch-zip",
            2048,
            (live,),
            sha256="a" * 64,
            content_id="sha256:" + "a" * 64,
            dynamic=dynamic,
            layers=("zip", "pickle"),
        ),
        ArtifactResult("README.md", "text", 10, skipped="text file, not a model format"),
        ArtifactResult(
            "broken.pkl", "pickle", 3, error="cannot read: Permission denied", content_id=None
        ),
        ArtifactResult("hf.bin", "pickle", 5, content_id="git-sha1:" + "b" * 40),
    )
    waived = (
        WaivedFinding(
            _finding("old.pkl", fingerprint="1111111111111111"),
            Waiver("baseline", source=".modelscan-baseline.json"),
        ),
        WaivedFinding(
            _finding("vendor.pkl", rule="P105", severity=Severity.HIGH),
            Waiver("suppression", reason="reviewed", expires="2099-12-31", source="pyproject.toml"),
        ),
    )
    return Report(
        tool_version="0.1.0",
        rules_version="0123456789ab",
        active_rules=tuple(r.id for r in load_rules().rules),
        fail_on=Severity.MEDIUM,
        artifacts=artifacts,
        errors=("broken.pkl: cannot read: Permission denied", "gone.pkl: no such file"),
        notes=("--dynamic skipped for 1 file",),
        waived=waived,
    )


def test_hand_built_report_with_waivers_dynamic_run_and_errors_validates() -> None:
    doc = json.loads(render_json(hand_built_report()))
    assert errors_of(doc) == []
    # the report really exercises those parts of the schema
    assert doc["artifacts"][0]["dynamic"]["status"] == "load"
    assert {w["waiver"]["kind"] for w in doc["waived"]} == {"baseline", "suppression"}
    assert doc["summary"]["suppressed"] == 1 and doc["summary"]["baselined"] == 1
    assert len(doc["errors"]) == 2 and doc["notes"]
    fail_never = json.loads(render_json(replace(hand_built_report(), fail_on=None)))
    assert fail_never["summary"]["fail_on"] == "never" and errors_of(fail_never) == []


def _mutations() -> list[tuple[str, Any]]:
    def drop(key: str) -> Any:
        return lambda d: d.pop(key)

    def setter(path: list[Any], value: Any) -> Any:
        def apply(d: Any) -> None:
            for p in path[:-1]:
                d = d[p]
            d[path[-1]] = value

        return apply

    return [
        ("missing summary", drop("summary")),
        ("missing waived", drop("waived")),
        ("unknown severity", setter(["artifacts", 0, "findings", 0, "severity"], "severe")),
        ("unknown top-level key", setter(["extra"], 1)),
        ("unknown finding key", setter(["artifacts", 0, "findings", 0, "line"], 3)),
        ("unknown waived key", setter(["waived", 0, "note"], "x")),
        ("waived without waiver", lambda d: d["waived"][0].pop("waiver")),
        ("bad waiver kind", setter(["waived", 0, "waiver", "kind"], "ignore")),
        ("bad rule id", setter(["artifacts", 0, "findings", 0, "rule"], "Z101")),
        ("bad fingerprint", setter(["artifacts", 0, "findings", 0, "fingerprint"], "xyz")),
        ("negative offset", setter(["artifacts", 0, "findings", 0, "location", "offset"], -1)),
        ("bad content_id", setter(["artifacts", 0, "content_id"], "md5:abc")),
        ("bad dynamic status", setter(["artifacts", 0, "dynamic", "status"], "fine")),
        ("string count", setter(["summary", "failing"], "1")),
        ("bad fail_on", setter(["summary", "fail_on"], "always")),
        ("schema version 2", setter(["schema_version"], 2)),
        ("missing location key", lambda d: d["artifacts"][0]["findings"][0]["location"].pop("key")),
    ]


@pytest.mark.parametrize(("what", "mutate"), _mutations(), ids=[m[0] for m in _mutations()])
def test_schema_rejects_what_is_not_a_report(what: str, mutate: Any) -> None:
    doc = json.loads(render_json(hand_built_report()))
    assert errors_of(doc) == []
    broken = copy.deepcopy(doc)
    mutate(broken)
    assert errors_of(broken), f"the schema accepted a report with {what}"
