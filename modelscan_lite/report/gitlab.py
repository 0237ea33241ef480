"""``--format gitlab``: a GitLab Code Quality report (``artifacts:reports:codequality``).

The format is a JSON array of issues, the subset of the Code Climate spec that GitLab reads:
``description``, ``check_name``, ``fingerprint``, ``severity`` (``info``, ``minor``,
``major``, ``critical``, ``blocker``) and ``location.path`` (relative to the repository root,
``$CI_PROJECT_DIR`` or the cwd) with ``location.lines.begin``. Binary artifacts have no
lines: ``begin`` is 1 and the member, offset and key are in the description.

Severities: critical -> ``blocker``, high -> ``critical``, medium -> ``major``, low ->
``minor``. Scan errors are issues too (``check_name`` ``modelscan-lite/scan-error``,
``critical``), at the path the error names, so nothing passes silently in the merge request.

``fingerprint`` must be unique per issue and stable across pipelines (GitLab compares the
source and target branches by it): it is a hash of the finding's own fingerprint (rule, path,
member, key and value, no byte offsets) and its occurrence number among findings sharing it.

Waived findings (suppressed or baselined) are left out: the format has no place for counts
and no "suppressed" state, and a listed issue would show in the merge request as if it were
open. Their counts are in every other format (text, JSON, SARIF, github, junit).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..model import Finding, Report, Severity
from .ci_paths import ci_base, ci_path
from .github import where
from .neutral import defuse_json

SEVERITY = {
    Severity.CRITICAL: "blocker",
    Severity.HIGH: "critical",
    Severity.MEDIUM: "major",
    Severity.LOW: "minor",
}


def _fingerprint(*parts: str) -> str:
    text = "\0".join(parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _issue(f: Finding, path: str, occurrence: int) -> dict[str, Any]:
    at = where(f)
    description = f"{f.rule} {f.name}: {f.message}"
    if at:
        description += f" (at {at})"
    description += f". `modelscan-lite rule {f.rule}` for details."
    return {
        "type": "issue",
        "description": description,
        "check_name": f"modelscan-lite/{f.rule}",
        "categories": ["Security"],
        "fingerprint": _fingerprint(f.fingerprint, path, str(occurrence)),
        "severity": SEVERITY[f.severity],
        "location": {"path": path, "lines": {"begin": 1}},
    }


def _error_issue(error: str, base: str, occurrence: int) -> dict[str, Any]:
    head, sep, _ = error.partition(": ")
    path = ci_path(head, base) if sep and head else "."
    return {
        "type": "issue",
        "description": f"modelscan-lite could not scan this: {error}",
        "check_name": "modelscan-lite/scan-error",
        "categories": ["Security"],
        "fingerprint": _fingerprint("scan-error", error, str(occurrence)),
        "severity": "critical",
        "location": {"path": path, "lines": {"begin": 1}},
    }


def render_gitlab(report: Report) -> str:
    base = ci_base("CI_PROJECT_DIR")
    seen: dict[str, int] = {}
    issues = []
    for f in report.findings:
        n = seen[f.fingerprint] = seen.get(f.fingerprint, 0) + 1
        issues.append(_issue(f, ci_path(f.location.path, base), n))
    errors: dict[str, int] = {}
    for error in report.errors:
        n = errors[error] = errors.get(error, 0) + 1
        issues.append(_error_issue(error, base, n))
    return defuse_json(json.dumps(issues, indent=2)) + "\n"
