"""The report for people: worst first, a per-rule summary when many files were scanned, each
finding with where it is, its evidence, its fix and the command that explains it.

Layout, top to bottom: the summary (more than :data:`SUMMARY_FILES` files scanned and some
finding): counts per severity, then one line per rule; the details, files with the worst
finding first and, within a file, findings by severity; skipped files; sandbox runs; notes;
errors that belong to no file (a file's error is shown in its block, once); the verdict line.
``quiet`` drops what concerns clean and skipped files and the notes, and prints nothing at all
for a clean scan.

Plain text is the stable form (snapshot-tested); colour (fixed ANSI SGR codes) is added when
writing to a terminal. Every line is passed through :func:`.neutral.neutralise`: a
scanned file chooses many of the strings shown, and none of them may act on the terminal or
start a report line of its own.
"""

from __future__ import annotations

import os
from collections import Counter

from ..model import ArtifactResult, Finding, Report, Severity
from .neutral import defuse_commands, neutralise

# the styles used below, as ANSI SGR parameters
SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}
COLOURS = frozenset({"red", "green", "yellow", "cyan"})
STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
}
# the per-rule summary opens the report when more files than this were scanned
SUMMARY_FILES = 5
# skipped files listed one per line up to this many; past it, one line counts them
SKIPPED_LISTED = 5
EVIDENCE_LINES = 8

Line = tuple[str, str]  # (text, style); style '' for plain


def _worst(art: ArtifactResult) -> int:
    return max((f.severity for f in art.findings), default=0)


def _fixes(report: Report) -> dict[str, str]:
    """Rule ID -> its one-line fix, from the shipped rule docs."""
    if not report.findings:
        return {}
    from ..engine import load_rules

    return {r.id: " ".join(r.doc.get("fix", "").split()) for r in load_rules().rules}


def _where(f: Finding) -> str:
    loc = f.location
    where = loc.member or ""
    if loc.key and loc.key not in f.message:
        where = f"{where} [{loc.key}]" if where else f"[{loc.key}]"
    if loc.offset is not None:
        where = f"{where}, offset {loc.offset}" if where else f"offset {loc.offset}"
    return where


def _finding_lines(f: Finding, fix: str) -> list[Line]:
    out: list[Line] = [
        (f"  {f.rule} {f.severity.name:<8} {f.name}", STYLE[f.severity]),
        (f"      {f.message}", ""),
    ]
    where = _where(f)
    if where:
        out.append((f"      at {where}", "dim"))
    if f.evidence:
        ev = f.evidence.splitlines()
        out.extend((f"      | {ln}", "dim") for ln in ev[:EVIDENCE_LINES])
        if len(ev) > EVIDENCE_LINES:
            out.append((f"      | ... {len(ev) - EVIDENCE_LINES} more lines", "dim"))
    tail = f"`modelscan-lite rule {f.rule}` for details"
    out.append((f"      fix: {fix} ({tail})" if fix else f"      {tail}", "green"))
    return out


def _details(report: Report, fixes: dict[str, str]) -> list[Line]:
    shown = [a for a in report.artifacts if a.findings or a.error]
    # worst file first; ties keep the scan order (sorted is stable)
    shown.sort(key=_worst, reverse=True)
    out: list[Line] = []
    for art in shown:
        out.append((f"{art.path}  ({art.format}, {art.size} bytes)", "bold"))
        if art.error:
            out.append((f"  error: {art.error}", "red"))
        for f in sorted(art.findings, key=lambda x: x.severity, reverse=True):
            out.extend(_finding_lines(f, fixes.get(f.rule, "")))
        out.append(("", ""))
    return out


def _summary(report: Report) -> list[Line]:
    """Counts per severity and one line per rule, worst rule first."""
    findings = report.findings
    by_rule: dict[str, list[Finding]] = {}
    for f in findings:
        by_rule.setdefault(f.rule, []).append(f)
    per_sev = Counter(f.severity for f in findings)
    flagged = sum(1 for a in report.artifacts if a.findings)
    out: list[Line] = [
        (
            f"Summary: {len(findings)} finding(s) in {flagged} of {len(report.artifacts)} file(s)",
            "bold",
        ),
        (
            "  "
            + ", ".join(
                f"{per_sev[s]} {s.label}" for s in sorted(Severity, reverse=True) if per_sev[s]
            ),
            "",
        ),
    ]
    order = sorted(by_rule, key=lambda r: (-max(f.severity for f in by_rule[r]), r))
    for rid in order:
        group = by_rule[rid]
        sev = max(f.severity for f in group)
        files = len({f.location.path for f in group})
        out.append(
            (
                f"  {rid:<5} {sev.label:<8} {len(group):>4} in {files:>3} file(s)  {group[0].name}",
                STYLE[sev],
            )
        )
    out.append(("", ""))
    return out


def _skipped(report: Report) -> list[Line]:
    skipped = [a for a in report.artifacts if a.skipped]
    if len(skipped) <= SKIPPED_LISTED:
        return [(f"skipped: {a.path} ({a.skipped})", "dim") for a in skipped]
    reasons = Counter(a.skipped for a in skipped)
    parts = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    return [(f"skipped {len(skipped)} files: {parts} (--format json lists them)", "dim")]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _dynamic_lines(report: Report) -> list[Line]:
    """One line per sandboxed load: verdict, backend, times and peak memory."""
    out: list[Line] = []
    for a in report.artifacts:
        run = a.dynamic
        if run is None:
            continue
        out.append(
            (
                f"sandbox: {a.path}: {run.status} ({run.loader} on {run.backend}; start-up "
                f"{_seconds(run.startup)}, load {_seconds(run.load)}, inference "
                f"{_seconds(run.inference)}, peak {run.peak_rss / 2**20:.0f} MiB)"
                + (f"; {run.note}" if run.note else ""),
                "dim" if run.status == "done" else "yellow",
            )
        )
    return out


def summary_line(report: Report) -> str:
    counts = Counter(f.severity for f in report.findings)
    scanned = len(report.artifacts)
    skipped = sum(1 for a in report.artifacts if a.skipped)
    parts = [f"{counts[s]} {s.label}" for s in sorted(Severity, reverse=True) if counts[s]]
    found = ", ".join(parts) if parts else "no findings"
    waived = [
        f"{n} {kind}"
        for kind, n in (
            ("suppressed", report.waived_count("suppression")),
            ("baselined", report.waived_count("baseline")),
        )
        if n
    ]
    if waived:
        found += f" ({', '.join(waived)} not counted)"
    fail = report.fail_on.label if report.fail_on else "never"
    failing = len(report.failing())
    verdict = (
        f"FAIL ({failing} at or above {fail})"
        if failing
        else ("ERROR" if report.errors else "PASS")
    )
    return (
        f"{verdict}: {scanned} file(s), {skipped} skipped as not model files, {found}; "
        f"fail-on {fail}; {report.seconds:.2f}s"
    )


def report_lines(report: Report, quiet: bool = False) -> list[Line]:
    """The whole report as (text, style) lines, neutralised."""
    if quiet and not report.findings and not report.errors and not report.waived:
        return []
    fixes = _fixes(report)
    out: list[Line] = []
    if len(report.artifacts) > SUMMARY_FILES and report.findings:
        out.extend(_summary(report))
    out.extend(_details(report, fixes))
    if not quiet:
        out.extend(_skipped(report))
        out.extend(_dynamic_lines(report))
        out.extend((f"note: {n}", "yellow") for n in report.notes)
    out.extend((f"error: {e}", "red") for e in report.loose_errors())
    out.append((summary_line(report), "bold"))
    # paths, members, keys, messages and evidence carry strings a file chose
    return [(neutralise(text), style) for text, style in out]


def _wrap(lines: list[Line], width: int) -> list[Line]:
    """Lines folded to ``width`` columns, continuation lines indented under their text (a
    terminal would fold them at column 0)."""
    import textwrap

    out: list[Line] = []
    for text, style in lines:
        if len(text) <= width:
            out.append((text, style))
            continue
        body = text.lstrip(" ")
        indent = " " * (len(text) - len(body))
        if body.startswith("| "):
            indent += "| "
        elif indent:
            indent += "  "
        folded = textwrap.wrap(
            text,
            width,
            subsequent_indent=indent,
            break_on_hyphens=False,
            drop_whitespace=True,
            replace_whitespace=False,
        ) or [text]
        out.extend((part, style) for part in folded)
    return out


def render_text(
    report: Report, *, color: bool = False, width: int | None = None, quiet: bool = False
) -> str:
    """The text report; ``width`` folds long lines for a terminal of that many columns."""
    lines = report_lines(report, quiet)
    if not lines:
        return ""
    if width:
        lines = _wrap(lines, max(width, 40))
    # after folding: a folded line may start with a word a file chose
    lines = [(defuse_commands(text), style) for text, style in lines]
    if not color:
        return "\n".join(t for t, _ in lines) + "\n"
    # a handful of fixed SGR codes, line by line (rich's layout engine took 4 s for 5,000
    # findings); NO_COLOR (no-color.org) and TERM=dumb keep bold and dim only
    plain = bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"
    out = []
    for text, style in lines:
        codes = ";".join(SGR[word] for word in style.split() if not (plain and word in COLOURS))
        out.append(f"\x1b[{codes}m{text}\x1b[0m" if codes and text else text)
    return "\n".join(out) + "\n"
