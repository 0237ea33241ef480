"""SARIF 2.1.0 output: one run, the active rules with their docs, one result per finding.

Archive members are expressed as the artifact's URI plus a ``member`` property and a logical
location, since SARIF has no notion of a file inside a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..engine import Rule, load_rules
from ..model import Report, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
}
SCORE = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.0",
    Severity.LOW: "2.0",
}


def _uri(path: str) -> str:
    p = Path(path)
    return p.as_posix() if not p.is_absolute() else p.as_uri()


def rule_descriptor(rule: Rule) -> dict[str, Any]:
    doc = rule.doc
    markdown = "\n\n".join(
        f"**{k.capitalize()}.** {doc[k]}" for k in ("what", "why", "fix", "known-problems")
    )
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": doc["what"].split(". ")[0].rstrip(".") + "."},
        "fullDescription": {"text": doc["what"]},
        "help": {"text": f"{doc['why']}\nFix: {doc['fix']}", "markdown": markdown},
        "helpUri": f"https://github.com/modelscan-lite/modelscan-lite/blob/main/rules/README.md#{rule.id.lower()}",
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {
            "security-severity": SCORE[rule.severity],
            "tags": ["security", *rule.cwe],
            "precision": "high",
        },
    }


def render_sarif(report: Report) -> str:
    ruleset = load_rules()
    active = [r for r in ruleset.rules if r.id in set(report.active_rules)]
    index = {r.id: i for i, r in enumerate(active)}
    results = []
    for f in report.findings:
        loc = f.location
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(loc.path)}}
        location: dict[str, Any] = {"physicalLocation": physical}
        if loc.member or loc.key:
            location["logicalLocations"] = [
                {
                    "fullyQualifiedName": "!".join(x for x in (loc.member, loc.key) if x),
                    "kind": "member" if loc.member else "object",
                }
            ]
        props: dict[str, Any] = {"severity": f.severity.label}
        if loc.member:
            props["member"] = loc.member
        if loc.offset is not None:
            props["offset"] = loc.offset
        if f.evidence:
            props["evidence"] = f.evidence
        results.append(
            {
                "ruleId": f.rule,
                "ruleIndex": index.get(f.rule, -1),
                "level": LEVEL[f.severity],
                "message": {"text": f.message},
                "locations": [location],
                "partialFingerprints": {"modelscanLite/v1": f.fingerprint},
                "properties": props,
            }
        )
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "modelscan-lite",
                        "version": report.tool_version,
                        "semanticVersion": report.tool_version,
                        "informationUri": "https://github.com/modelscan-lite/modelscan-lite",
                        "rules": [rule_descriptor(r) for r in active],
                    }
                },
                "results": results,
                "invocations": [
                    {
                        "executionSuccessful": not report.errors,
                        "toolExecutionNotifications": [
                            {"level": "error", "message": {"text": e}} for e in report.errors
                        ],
                    }
                ],
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"
