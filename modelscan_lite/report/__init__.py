"""Report writers: ``text`` (people), ``json`` (machines, versioned), ``sarif`` (code scanning)."""

from __future__ import annotations

from ..model import Report

FORMATS = ("text", "json", "sarif")


def render(report: Report, fmt: str, *, color: bool = False) -> str:
    if fmt == "json":
        from .json_report import render_json

        return render_json(report)
    if fmt == "sarif":
        from .sarif import render_sarif

        return render_sarif(report)
    from .text import render_text

    return render_text(report, color=color)
