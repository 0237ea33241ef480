"""SARIF 2.1.0 output, shaped for GitHub code scanning: one run, the rules with their docs, one
result per finding (waived findings included, marked as suppressed).

What GitHub needs and how this module gives it (tests/test_sarif_github.py checks each point):

- Locations: ``artifactLocation.uri`` is relative to ``%SRCROOT%``, which ``originalUriBaseIds``
  declares as ``$MODELSCAN_LITE_SRCROOT``, else ``$GITHUB_WORKSPACE``, else the working
  directory, as a ``file://`` URI ending in ``/``; a path outside it is an absolute ``file://``
  URI (``invocations[0].workingDirectory`` lets GitHub relativise it); a remote path
  (``hf://org/name@rev/file``) is kept as it is. Every URI is percent-encoded (RFC 3986).
  ``region.startLine`` is on every result: the line of a text finding when the finding names
  one of its own file (``key: "line 6"``, evidence ``name.py:6:``), 1 otherwise, since a model
  file has no lines.
  Archive member and byte offset go in the message text, in ``logicalLocations`` and in the
  result's properties, since SARIF has no notion of a file inside a file.
- Rules: a one-line ``shortDescription`` (the rule's ``doc.short``), ``fullDescription``,
  ``help.text`` and ``help.markdown`` from the rule doc, ``helpUri`` to the rule's heading anchor
  in ``rules/README.md`` (GitHub's heading-slug algorithm), ``security-severity``, ``precision``
  and ``tags`` (``security``, ``external/cwe/cwe-N``, the rule family).
- Results: ``partialFingerprints.primaryLocationLineHash`` (the one GitHub uses) is the finding's
  offset-free fingerprint plus an occurrence counter, so alerts survive re-saves and the upload
  action never hashes a model file's "lines"; a baselined or suppressed finding is a result with
  an external, accepted ``suppression``; ``run.properties`` counts them.
- Errors and notes are ``toolExecutionNotifications``; ``executionSuccessful`` is false on errors.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, quote_from_bytes

from ..engine import Rule, load_rules
from ..model import Finding, Report, Severity, WaivedFinding
from ..rule_docs import render_rule_body
from .neutral import defuse_json

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
REPO_URL = "https://github.com/modelscan-lite/modelscan-lite"
RULES_DOC_URL = f"{REPO_URL}/blob/main/rules/README.md"
SRCROOT = "%SRCROOT%"
SRCROOT_ENV = "MODELSCAN_LITE_SRCROOT"
FINGERPRINT_KEY = "modelscanLite/v1"
# GitHub truncates or rejects past these (docs.github.com, "SARIF support for code scanning")
MAX_DESCRIPTION = 1024
MAX_TAGS = 10  # 20 accepted, only 10 displayed
LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
}
# GitHub: over 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low
SCORE = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.0",
    Severity.LOW: "2.0",
}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_KEY_LINE = re.compile(r"^line (\d+)$")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading: lowercased, punctuation other than ``-`` and
    ``_`` dropped, spaces turned into ``-`` (duplicates, which rules/README.md has none of,
    would get ``-1``, ``-2``...)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def help_uri(rule: Rule) -> str:
    return f"{RULES_DOC_URL}#{github_anchor(f'{rule.id} {rule.name}')}"


def srcroot_path(srcroot: str | os.PathLike[str] | None = None) -> Path:
    """The directory relative URIs are relative to: ``srcroot``, else ``$MODELSCAN_LITE_SRCROOT``,
    else ``$GITHUB_WORKSPACE`` (the checkout GitHub resolves relative URIs against), else the
    working directory; absolute, symbolic links kept."""
    chosen = srcroot
    if chosen is None:
        chosen = os.environ.get(SRCROOT_ENV) or os.environ.get("GITHUB_WORKSPACE") or os.getcwd()
    return Path(os.path.abspath(chosen))


def _relative(absolute: Path, root: Path) -> Path | None:
    """``absolute`` relative to ``root``, also when one of them is reached through a symbolic
    link (the file itself is not resolved: a Hugging Face snapshot file stays named as it is)."""
    real = Path(os.path.realpath(absolute.parent)) / absolute.name
    for candidate, base in ((absolute, root), (real, Path(os.path.realpath(root)))):
        try:
            return candidate.relative_to(base)
        except ValueError:
            continue
    return None


def directory_uri(path: Path) -> str:
    uri = path.as_uri()
    return uri if uri.endswith("/") else uri + "/"


def artifact_location(path: str, root: Path) -> dict[str, str]:
    """A report path as a SARIF ``artifactLocation``: relative to ``%SRCROOT%`` when under it,
    an absolute ``file://`` URI otherwise, a remote URI (``hf://...``) as it is; percent-encoded."""
    match = _SCHEME.match(path)
    if match:
        head = match.group(0)
        return {"uri": head + quote(path[len(head) :], safe="/@")}
    absolute = Path(os.path.abspath(path))
    relative = _relative(absolute, root)
    if relative is None:
        return {"uri": absolute.as_uri()}
    return {
        "uri": quote_from_bytes(os.fsencode(relative.as_posix()), safe="/"),
        "uriBaseId": SRCROOT,
    }


def start_line(finding: Finding) -> int:
    """The line of the artifact's own text the finding points at, or 1 (binary artifacts, and
    findings about text inside a member or a metadata value, whose lines are not the file's)."""
    loc = finding.location
    if loc.member is None and not _SCHEME.match(loc.path):
        if loc.key and (m := _KEY_LINE.match(loc.key)):
            return max(1, int(m.group(1)))
        if finding.evidence:
            name = re.escape(PurePosixPath(loc.path.replace(os.sep, "/")).name)
            if m := re.match(rf"{name}:(\d+):", finding.evidence):
                return max(1, int(m.group(1)))
    return 1


def message_text(finding: Finding) -> str:
    """The finding's message, plus the archive member and byte offset it is at."""
    loc = finding.location
    where = []
    if loc.member:
        where.append(f"in member `{loc.member}`")
    if loc.offset is not None:
        where.append(f"at byte offset {loc.offset}")
    return finding.message + (f" ({', '.join(where)})" if where else "")


def logical_locations(finding: Finding) -> list[dict[str, Any]]:
    """Member, key and offset as one logical location (an empty list when there is none)."""
    loc = finding.location
    if not (loc.member or loc.key or loc.offset is not None):
        return []
    qualified = "!".join(x for x in (loc.member, loc.key) if x)
    if loc.offset is not None:
        qualified += f"@{loc.offset}"
    if loc.key:
        name, kind = loc.key, "property"
    elif loc.member:
        name, kind = loc.member.rsplit("!", 1)[-1], "resource"
    else:
        name, kind = f"@{loc.offset}", "resource"
    props = {"member": loc.member, "offset": loc.offset, "key": loc.key}
    return [
        {
            "name": name,
            "fullyQualifiedName": qualified,
            "kind": kind,
            "properties": {k: v for k, v in props.items() if v is not None},
        }
    ]


def _description(text: str) -> str:
    """``text`` within GitHub's 1024 characters, cut after the last whole sentence that fits
    (the whole doc is in ``help``)."""
    if len(text) <= MAX_DESCRIPTION:
        return text
    head = text[: MAX_DESCRIPTION - 1]
    cut = head.rfind(". ")
    if cut > len(head) // 2:
        return head[: cut + 1]
    cut = max(head.rfind("; "), head.rfind(": "), head.rfind(", "))
    return (head[:cut] if cut > 0 else head.rsplit(" ", 1)[0]) + "…"


def _short(rule: Rule) -> str:
    short = rule.doc.get("short") or rule.name.replace("-", " ").capitalize()
    return " ".join(short.split())


def _help_text(rule: Rule) -> str:
    d = rule.doc
    parts = [
        f"{rule.id} {rule.name} ({rule.severity.label}): {_short(rule)}",
        f"What it finds. {d['what']}",
        f"Why it matters. {d['why']}",
        "Example.\n" + "\n".join("    " + ln for ln in d["example"].rstrip().splitlines()),
        f"How to fix. {d['fix']}",
        f"Known problems. {d['known-problems']}",
    ]
    if rule.references:
        parts.append("References:\n" + "\n".join(f"- {r}" for r in rule.references))
    parts.append(f"Documentation: {help_uri(rule)}")
    return "\n\n".join(parts)


def rule_tags(rule: Rule) -> list[str]:
    cwes = [f"external/cwe/{c.lower()}" for c in rule.cwe]
    family = rule.source.split("/", 1)[0] if "/" in rule.source else None
    tags = ["security", *cwes, *([family] if family else [])]
    return list(dict.fromkeys(tags))[:MAX_TAGS]


def rule_descriptor(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": _short(rule)},
        "fullDescription": {"text": _description(rule.doc["what"])},
        "help": {"text": _help_text(rule), "markdown": render_rule_body(rule)},
        "helpUri": help_uri(rule),
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {
            "security-severity": SCORE[rule.severity],
            "tags": rule_tags(rule),
            "precision": "high",
        },
    }


def _suppression(waived: WaivedFinding) -> dict[str, Any]:
    w = waived.waiver
    if w.kind == "baseline":
        justification = f"in baseline {w.source}" if w.source else "in the baseline"
    else:
        justification = w.reason or "suppressed"
        if w.source:
            justification += f" ({w.source})"
    out: dict[str, Any] = {
        "kind": "external",
        "status": "accepted",
        "justification": justification,
        "properties": {"waiver": w.kind},
    }
    if w.expires:
        out["properties"]["expires"] = w.expires
    if w.source:
        out["properties"]["source"] = w.source
    return out


def render_sarif(report: Report, srcroot: str | os.PathLike[str] | None = None) -> str:
    root = srcroot_path(srcroot)
    root_uri = directory_uri(root)
    ruleset = load_rules()
    wanted = set(report.active_rules)
    wanted.update(f.rule for f in report.findings)
    wanted.update(w.finding.rule for w in report.waived)
    rules = [r for r in ruleset.rules if r.id in wanted]
    index = {r.id: i for i, r in enumerate(rules)}
    seen: Counter[tuple[str, str]] = Counter()

    def result(f: Finding, waived: WaivedFinding | None = None) -> dict[str, Any]:
        artifact = artifact_location(f.location.path, root)
        seen[(artifact["uri"], f.fingerprint)] += 1
        occurrence = seen[(artifact["uri"], f.fingerprint)]
        location: dict[str, Any] = {
            "physicalLocation": {
                "artifactLocation": artifact,
                "region": {"startLine": start_line(f)},
            }
        }
        logical = logical_locations(f)
        if logical:
            location["logicalLocations"] = logical
        props: dict[str, Any] = {"severity": f.severity.label}
        for key in ("member", "offset", "key"):
            value = getattr(f.location, key)
            if value is not None:
                props[key] = value
        if f.evidence:
            props["evidence"] = f.evidence
        out: dict[str, Any] = {"ruleId": f.rule}
        if f.rule in index:
            out["ruleIndex"] = index[f.rule]
        out.update(
            {
                "level": LEVEL[f.severity],
                "message": {"text": message_text(f)},
                "locations": [location],
                "partialFingerprints": {
                    "primaryLocationLineHash": f"{f.fingerprint}:{occurrence}",
                    FINGERPRINT_KEY: f.fingerprint,
                },
                "properties": props,
            }
        )
        if waived is not None:
            out["suppressions"] = [_suppression(waived)]
        return out

    results = [result(f) for f in report.findings]
    results += [result(w.finding, w) for w in report.waived]
    notifications = [{"level": "error", "message": {"text": e}} for e in report.errors]
    notifications += [{"level": "note", "message": {"text": n}} for n in report.notes]
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
                        "informationUri": REPO_URL,
                        "rules": [rule_descriptor(r) for r in rules],
                    }
                },
                "originalUriBaseIds": {
                    SRCROOT: {
                        "uri": root_uri,
                        "description": {"text": "The directory the scan ran from."},
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not report.errors,
                        "workingDirectory": {"uri": root_uri},
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
                "properties": {
                    "suppressed": report.waived_count("suppression"),
                    "baselined": report.waived_count("baseline"),
                    "rulesVersion": report.rules_version,
                },
            }
        ],
    }
    return defuse_json(json.dumps(doc, indent=2)) + "\n"
