"""``--format github``: GitHub Actions workflow commands, one annotation per finding.

Each finding becomes ``::error|warning|notice file=PATH,line=1,title=ID name::message``
(critical and high are errors, medium warnings, low notices), most severe first, since GitHub
shows only the first few annotations of each level per step. ``file`` is relative to
``$GITHUB_WORKSPACE`` (or the cwd) so the annotation attaches to the file; binary artifacts
have no lines, so ``line`` is 1 and the member, offset and key are in the message, with the
rule's fix and ``modelscan-lite rule ID`` for details. Scan errors are ``::error`` lines, and
a final ``::notice`` sums up the scan, with the suppressed and baselined counts.

Injection: a file chooses its member names, keys and even its path. Every string from the
scan is first neutralised (:func:`neutral.neutralise`: no CR, LF or other control characters
survive, so nothing can start a line and issue a command of its own), then escaped as the
runner expects (``actions/toolkit`` ``command.ts``): data escapes ``%``, CR and LF;
properties also ``:`` and ``,``, so a hostile name cannot end the property list early.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import ArtifactResult, Finding, Report, Severity
from .ci_paths import ci_base, ci_path, is_remote
from .neutral import neutralise

LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "notice",
}


def escape_data(text: str) -> str:
    """The message part of a workflow command (after ``::``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A ``key=value`` property of a workflow command."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(level: str, lines: Sequence[str], **properties: str) -> str:
    """One workflow command line. Each of ``lines`` and each property value is neutralised
    (a line break inside one shows as ``\\n``), then the lines are joined with real line
    breaks, which the escaping turns into ``%0A`` (the annotation spans lines)."""
    props = ",".join(
        f"{key}={escape_property(neutralise(value))}" for key, value in properties.items() if value
    )
    head = f"::{level} {props}" if props else f"::{level}"
    body = "\n".join(neutralise(line) for line in lines)
    return f"{head}::{escape_data(body)}"


def where(finding: Finding) -> str:
    """The member, offset and key of a finding, as words (empty when there is none)."""
    loc = finding.location
    parts = []
    if loc.member:
        parts.append(f"member {loc.member}")
    if loc.offset is not None:
        parts.append(f"offset {loc.offset}")
    if loc.key:
        parts.append(f"key {loc.key}")
    return ", ".join(parts)


def _fixes(report: Report) -> dict[str, str]:
    from ..engine import load_rules

    rules = load_rules()
    out = {}
    for rule_id in {f.rule for f in report.findings}:
        rule = rules.get(rule_id)
        if rule is not None:
            out[rule_id] = str(rule.doc.get("fix", "")).strip()
    return out


def _annotation(finding: Finding, base: str, fix: str | None) -> str:
    lines = [finding.message]
    at = where(finding)
    path = finding.location.path
    if is_remote(path):
        at = f"{path}, {at}" if at else path
    if at:
        lines.append(f"at {at}")
    if fix:
        lines.append(f"Fix: {fix}")
    lines.append(f"`modelscan-lite rule {finding.rule}` for details.")
    props = {"title": f"{finding.rule} {finding.name}"}
    if not is_remote(path):
        props = {"file": ci_path(path, base), "line": "1", **props}
    return command(LEVEL[finding.severity], lines, **props)


def _error_file(error: str, artifacts: tuple[ArtifactResult, ...], base: str) -> str:
    for a in artifacts:
        if a.error and error.startswith(f"{a.path}: ") and not is_remote(a.path):
            return ci_path(a.path, base)
    return ""


def summary_line(report: Report) -> str:
    """One sentence with every count a reader of the log needs."""
    counts = {s: 0 for s in Severity}
    for f in report.findings:
        counts[f.severity] += 1
    by_severity = ", ".join(f"{n} {s.label}" for s, n in sorted(counts.items(), reverse=True) if n)
    files = len(report.artifacts)
    skipped = sum(1 for a in report.artifacts if a.skipped)
    threshold = report.fail_on.label if report.fail_on else "never"
    verdict = "FAIL" if report.failing() else ("ERROR" if report.errors else "PASS")
    text = (
        f"modelscan-lite {verdict}: {files} file(s), {skipped} skipped as not model files; "
        f"{len(report.findings)} finding(s)"
    )
    if by_severity:
        text += f" ({by_severity})"
    text += (
        f", {len(report.failing())} at or above fail-on {threshold}; "
        f"{report.waived_count('suppression')} suppressed, "
        f"{report.waived_count('baseline')} baselined; {len(report.errors)} error(s)"
    )
    return text


def render_github(report: Report) -> str:
    base = ci_base("GITHUB_WORKSPACE")
    fixes = _fixes(report)
    ordered = sorted(
        report.findings, key=lambda f: (-f.severity, f.location.path, f.rule, f.fingerprint)
    )
    lines = [_annotation(f, base, fixes.get(f.rule)) for f in ordered]
    for error in report.errors:
        file = _error_file(error, report.artifacts, base)
        lines.append(command("error", [error], file=file, title="modelscan-lite scan error"))
    lines.append(command("notice", [summary_line(report)], title="modelscan-lite summary"))
    return "\n".join(lines) + "\n"
