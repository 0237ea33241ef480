"""The JSON report (``schema_version`` 1): stable keys, findings with locations and fingerprints."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from ..model import ArtifactResult, Finding, Location, Report, WaivedFinding
from .neutral import defuse_json

SCHEMA_VERSION = 1


def location_dict(loc: Location) -> dict[str, Any]:
    return {"path": loc.path, "member": loc.member, "offset": loc.offset, "key": loc.key}


def finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "name": f.name,
        "severity": f.severity.label,
        "message": f.message,
        "location": location_dict(f.location),
        "fingerprint": f.fingerprint,
        "evidence": f.evidence,
    }


def artifact_dict(a: ArtifactResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": a.path,
        "format": a.format,
        "size": a.size,
        "sha256": a.sha256,
        "content_id": a.content_id,
        "skipped": a.skipped,
        "error": a.error,
        "findings": [finding_dict(f) for f in a.findings],
    }
    if a.fetched is not None:
        out["remote"] = {"fetched": a.fetched, "requests": a.requests or 0}
    if a.dynamic is not None:
        out["dynamic"] = asdict(a.dynamic)
    return out


def waived_dict(w: WaivedFinding) -> dict[str, Any]:
    out = finding_dict(w.finding)
    out["waiver"] = {
        "kind": w.waiver.kind,
        "reason": w.waiver.reason,
        "expires": w.waiver.expires,
        "source": w.waiver.source,
    }
    return out


def summary(report: Report) -> dict[str, Any]:
    counts = {s: 0 for s in ("critical", "high", "medium", "low")}
    for f in report.findings:
        counts[f.severity.label] += 1
    out: dict[str, Any] = {
        "files": len(report.artifacts),
        "skipped": sum(1 for a in report.artifacts if a.skipped),
        "with_findings": sum(1 for a in report.artifacts if a.findings),
        "findings": counts,
        "failing": len(report.failing()),
        "errors": len(report.errors),
        "suppressed": report.waived_count("suppression"),
        "baselined": report.waived_count("baseline"),
        "fail_on": report.fail_on.label if report.fail_on else "never",
    }
    remote = [a for a in report.artifacts if a.fetched is not None]
    if remote:
        out["remote"] = remote_totals(remote)
    return out


def remote_totals(remote: list[ArtifactResult]) -> dict[str, int]:
    """Bytes fetched by range requests against the remote files' total size."""
    return {
        "files": len(remote),
        "bytes": sum(a.size for a in remote),
        "fetched": sum(a.fetched or 0 for a in remote),
        "requests": sum(a.requests or 0 for a in remote),
    }


def render_json(report: Report) -> str:
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {
            "name": "modelscan-lite",
            "version": report.tool_version,
            "rules_version": report.rules_version,
        },
        "rules_active": list(report.active_rules),
        "artifacts": [artifact_dict(a) for a in report.artifacts],
        "errors": list(report.errors),
        "waived": [waived_dict(w) for w in report.waived],
        "summary": summary(report),
    }
    if report.notes:
        doc["notes"] = list(report.notes)
    return defuse_json(json.dumps(doc, indent=2, sort_keys=False)) + "\n"
