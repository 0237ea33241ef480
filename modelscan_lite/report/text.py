"""Human-readable report: one block per file with findings, a summary line, plain or coloured.

Colour (via ``rich``) only when writing to a terminal; the plain form is stable for snapshots.
Every line is passed through :func:`.neutral.neutralise`: a scanned file chooses many of the
strings shown, and none of them may act on the terminal or start a report line of its own.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ..model import ArtifactResult, Report, Severity
from .neutral import neutralise

if TYPE_CHECKING:
    from rich.table import Table

STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
}


def _lines(report: Report) -> list[tuple[str, str]]:
    """(text, style) pairs; style '' for plain."""
    out: list[tuple[str, str]] = []
    for art in report.artifacts:
        if not art.findings and not art.error:
            continue
        out.append((f"{art.path}  ({art.format}, {art.size} bytes)", "bold"))
        if art.error:
            out.append((f"  error: {art.error}", "red"))
        for f in art.findings:
            where = f.location.member or ""
            if f.location.key and f.location.key not in f.message:
                where = f"{where} [{f.location.key}]" if where else f"[{f.location.key}]"
            if f.location.offset is not None:
                where = (
                    f"{where}, offset {f.location.offset}"
                    if where
                    else f"offset {f.location.offset}"
                )
            out.append((f"  {f.rule} {f.severity.name:<8} {f.name}", STYLE[f.severity]))
            out.append((f"      {f.message}", ""))
            if where:
                out.append((f"      at {where}", "dim"))
            if f.evidence:
                ev = f.evidence.splitlines()
                for ln in ev[:8]:
                    out.append((f"      | {ln}", "dim"))
                if len(ev) > 8:
                    out.append((f"      | ... {len(ev) - 8} more lines", "dim"))
        out.append(("", ""))
    skipped = [a for a in report.artifacts if a.skipped]
    for a in skipped[:20]:
        out.append((f"skipped: {a.path} ({a.skipped})", "dim"))
    if len(skipped) > 20:
        out.append((f"skipped: {len(skipped) - 20} more files (see --format json)", "dim"))
    out.extend(_dynamic_lines(report))
    for n in report.notes:
        out.append((f"note: {n}", "yellow"))
    for e in report.errors:
        out.append((f"error: {e}", "red"))
    out.append((summary_line(report), "bold"))
    # paths, members, keys, messages and evidence carry strings a file chose
    return [(neutralise(text), style) for text, style in out]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _dynamic_lines(report: Report) -> list[tuple[str, str]]:
    """One line per sandboxed load: verdict, backend, times and peak memory."""
    runs = [(a.path, a.dynamic) for a in report.artifacts if a.dynamic is not None]
    out: list[tuple[str, str]] = []
    for path, run in runs:
        out.append(
            (
                f"sandbox: {path}: {run.status} ({run.loader} on {run.backend}; start-up "
                f"{_seconds(run.startup)}, load {_seconds(run.load)}, inference "
                f"{_seconds(run.inference)}, peak {run.peak_rss / 2**20:.0f} MiB)"
                + (f"; {run.note}" if run.note else ""),
                "dim" if run.status == "done" else "yellow",
            )
        )
    return out


def summary_line(report: Report) -> str:
    counts = {s: 0 for s in Severity}
    for f in report.findings:
        counts[f.severity] += 1
    scanned = len(report.artifacts)
    skipped = sum(1 for a in report.artifacts if a.skipped)
    parts = [f"{counts[s]} {s.label}" for s in sorted(Severity, reverse=True) if counts[s]]
    found = ", ".join(parts) if parts else "no findings"
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


def render_text(report: Report, *, color: bool = False, width: int = 100) -> str:
    lines = _lines(report)
    flagged = [a for a in report.artifacts if a.findings]
    if not color and len(flagged) < 2:
        return "\n".join(t for t, _ in lines) + "\n"
    from rich.console import Console
    from rich.text import Text

    buf = io.StringIO()
    console = Console(
        file=buf,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        soft_wrap=True,
        width=width,
    )
    for text, style in lines[:-1]:
        console.print(Text(text, style=style or ""))
    if len(flagged) >= 2:
        console.print(_table(flagged))
    console.print(Text(*lines[-1]))
    return buf.getvalue()


def _table(flagged: list[ArtifactResult]) -> Table:
    """Findings per file and severity: the overview for a scan of many files."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="findings by file", title_justify="left", show_edge=False)
    table.add_column("file", overflow="fold")
    table.add_column("format")
    for sev in sorted(Severity, reverse=True):
        table.add_column(sev.label, justify="right", style=STYLE[sev])
    for art in flagged:
        counts = {s: sum(1 for f in art.findings if f.severity is s) for s in Severity}
        # Text, not str: rich would read markup ("[link=...]") in a file name
        table.add_row(
            Text(neutralise(art.path)),
            art.format,
            *(str(counts[s] or "") for s in sorted(Severity, reverse=True)),
        )
    return table
