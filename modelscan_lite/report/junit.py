"""``--format junit``: JUnit XML for CI test-report views (GitLab ``reports:junit``, Jenkins...).

Layout: one ``<testsuite>`` per scanned file (``name`` and ``file`` its path, relative to the
cwd when under it). In it, one ``<testcase>`` per finding: a ``<failure>`` when the finding
is at or above ``--fail-on``, a passing case with the finding in ``<system-out>`` below it.
A file with no findings is one passing ``scan`` case; a file skipped as not a model file is
a ``scan`` case with ``<skipped>``; a file that could not be read a ``scan`` case with
``<error>``. A first suite, ``modelscan-lite``, carries the run: ``<properties>`` (tool and
rules versions, fail-on, files, skipped, suppressed, baselined) and a summary in
``<system-out>``, and one ``<error>`` case per scan error that no file owns. One failure
per test case keeps the report valid under the strict JUnit schemas.

Waived findings (suppressed or baselined) are not test cases: they do not fail and must not
read as failures; their counts are the ``suppressed`` and ``baselined`` properties.

XML 1.0 cannot carry most control characters, lone surrogates, U+FFFE or U+FFFF, even as
character references. Every string from the scan is therefore neutralised
(:func:`neutral.neutralise` shows them as ``\\x1b``-style escapes; multi-line text keeps its
line breaks) before ElementTree escapes the markup characters.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET

from ..model import ArtifactResult, Finding, Report
from .ci_paths import ci_path
from .github import summary_line, where
from .neutral import defuse_commands, neutralise

_NON_XML = re.compile("[\ufffe\uffff]")


def clean(text: str) -> str:
    """One line that XML 1.0 can hold and a viewer shows as it is."""
    return _NON_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", neutralise(text))


def clean_block(text: str) -> str:
    """Like :func:`clean`, line by line, keeping the line breaks."""
    return "\n".join(clean(line) for line in text.split("\n"))


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """A child element; attributes are cleaned here, ``text`` must be built from cleaned
    parts (it is cleaned again line by line, which leaves cleaned text as it is)."""
    el = ET.SubElement(parent, tag, {k: clean(v) for k, v in attrs.items()})
    if text is not None:
        el.text = clean_block(text)
    return el


def _finding_text(f: Finding, path: str) -> str:
    """The failure body: one cleaned line per field (a line break a file put in a name shows
    as ``\\n``), then the evidence with its own line breaks."""
    lines = [f"{f.severity.label} {f.rule} {f.name}: {f.message}", f"file: {path}"]
    at = where(f)
    if at:
        lines.append(f"at: {at}")
    lines.append(f"fingerprint: {f.fingerprint}")
    lines = [clean(line) for line in lines]
    if f.evidence:
        lines += ["evidence:", clean_block(f.evidence)]
    lines.append(f"`modelscan-lite rule {f.rule}` for details.")
    return "\n".join(lines)


def _suite(root: ET.Element, a: ArtifactResult, report: Report, base: str) -> None:
    path = ci_path(a.path, base)
    suite = _sub(root, "testsuite", name=path, file=path, time=f"{a.seconds:.3f}")
    tests = failures = errors = skipped = 0
    for f in a.findings:
        tests += 1
        case = _sub(suite, "testcase", classname=path, name=_case_name(f), file=path, time="0.000")
        text = _finding_text(f, path)
        if report.fail_on is not None and f.severity >= report.fail_on:
            failures += 1
            _sub(
                case,
                "failure",
                text,
                type=f"{f.rule} {f.name}",
                message=f"{f.severity.label}: {f.message}",
            )
        else:
            _sub(case, "system-out", f"below fail-on: {text}")
    if a.error or a.skipped or not a.findings:
        tests += 1
        case = _sub(
            suite, "testcase", classname=path, name="scan", file=path, time=f"{a.seconds:.3f}"
        )
        if a.error:
            errors += 1
            _sub(case, "error", clean(f"{a.path}: {a.error}"), type="scan-error", message=a.error)
        elif a.skipped:
            skipped += 1
            _sub(case, "skipped", message=a.skipped)
    _counts(suite, tests, failures, errors, skipped)


def _case_name(f: Finding) -> str:
    at = where(f)
    return f"{f.rule} {f.name}" + (f" ({at})" if at else "")


def _counts(el: ET.Element, tests: int, failures: int, errors: int, skipped: int) -> None:
    el.set("tests", str(tests))
    el.set("failures", str(failures))
    el.set("errors", str(errors))
    el.set("skipped", str(skipped))


def render_junit(report: Report) -> str:
    base = os.path.abspath(os.getcwd())
    root = ET.Element("testsuites", {"name": "modelscan-lite"})
    run = _sub(root, "testsuite", name="modelscan-lite", time=f"{report.seconds:.3f}")
    props = ET.SubElement(run, "properties")
    for name, value in (
        ("tool_version", report.tool_version),
        ("rules_version", report.rules_version),
        ("fail_on", report.fail_on.label if report.fail_on else "never"),
        ("files", str(len(report.artifacts))),
        ("skipped", str(sum(1 for a in report.artifacts if a.skipped))),
        ("findings", str(len(report.findings))),
        ("failing", str(len(report.failing()))),
        ("suppressed", str(report.waived_count("suppression"))),
        ("baselined", str(report.waived_count("baseline"))),
        ("errors", str(len(report.errors))),
    ):
        _sub(props, "property", name=name, value=value)
    loose = report.loose_errors()
    for error in loose:
        case = _sub(run, "testcase", classname="modelscan-lite", name=error, time="0.000")
        _sub(case, "error", clean(error), type="scan-error", message=error)
    _counts(run, len(loose), 0, len(loose), 0)
    for a in report.artifacts:
        _suite(root, a, report, base)
    totals = [0, 0, 0, 0]
    for suite in root.iter("testsuite"):
        for i, key in enumerate(("tests", "failures", "errors", "skipped")):
            totals[i] += int(suite.get(key, "0"))
    _counts(root, *totals)
    root.set("time", f"{report.seconds:.3f}")
    _sub(run, "system-out", clean(summary_line(report)))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    # multi-line texts (evidence) keep their breaks: no line may read as a workflow command
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + defuse_commands(body) + "\n"
