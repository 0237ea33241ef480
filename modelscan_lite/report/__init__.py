"""Report writers: ``text`` (people), ``json`` (machines, versioned), ``sarif`` (code scanning),
``github`` (workflow-command annotations), ``gitlab`` (code quality), ``junit`` (test reports)."""

from __future__ import annotations

from ..model import Report

FORMATS = ("text", "json", "sarif", "github", "gitlab", "junit")


def render(
    report: Report,
    fmt: str,
    *,
    color: bool = False,
    quiet: bool = False,
    width: int | None = None,
) -> str:
    """``report`` in format ``fmt``; ``quiet`` (text only) leaves out clean and skipped files."""
    if fmt == "json":
        from .json_report import render_json

        return render_json(report)
    if fmt == "sarif":
        from .sarif import render_sarif

        return render_sarif(report)
    if fmt == "github":
        from .github import render_github

        return render_github(report)
    if fmt == "gitlab":
        from .gitlab import render_gitlab

        return render_gitlab(report)
    if fmt == "junit":
        from .junit import render_junit

        return render_junit(report)
    from .text import render_text

    return render_text(report, color=color, quiet=quiet, width=width)
