"""The Python API: :func:`scan` (paths -> Report) and :func:`check` (paths -> Report, or a typed
exception), with the exceptions they raise.

Both read ``[tool.modelscan-lite]`` from the nearest ``pyproject.toml`` above the current
directory when no :class:`~modelscan_lite.config.Config` is given, as the command line does.
Nothing here loads, unpickles or executes the artifacts it looks at: the verdict comes from
the static scanner alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from .model import Finding, Report, Severity

if TYPE_CHECKING:
    from .config import Config


class _FromConfig:
    """The default of ``fail_on``: the config's ``fail-on`` (``medium`` when it says nothing)."""

    _instance: _FromConfig | None = None

    def __new__(cls) -> _FromConfig:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "FROM_CONFIG"


FROM_CONFIG: Final = _FromConfig()
FailOn = str | Severity | None | _FromConfig

_MAX_LISTED = 20  # findings named in an exception message; the rest are counted


class ModelScanError(Exception):
    """Base class of the errors :func:`check` and :mod:`modelscan_lite.guard` raise.

    ``report`` is the full :class:`~modelscan_lite.model.Report` of the scan that decided
    (always set on :class:`UnsafeModelError`).
    """

    def __init__(self, message: str, report: Report | None) -> None:
        super().__init__(message)
        self.report = report


class UnsafeModelError(ModelScanError):
    """Findings at or above the ``fail_on`` threshold: the model must not be loaded.

    ``findings`` holds the failing findings (worst first); the message names the rule,
    severity, file and archive member of each. Raised even when the scan also had errors: an
    error never masks a finding.
    """

    def __init__(self, report: Report, findings: tuple[Finding, ...], action: str = "") -> None:
        self.findings = findings
        super().__init__(_unsafe_message(report, findings, action), report)


class ScanError(ModelScanError):
    """The scan could not look at everything (unreadable file, missing path...) and found
    nothing failing: the model is not known to be safe, so it is refused too.

    ``errors`` holds the scan's error lines; ``report`` is None when no scan could start (a
    stream the guard cannot read twice).
    """

    def __init__(
        self, report: Report | None, action: str = "", errors: tuple[str, ...] = ()
    ) -> None:
        self.errors = errors or (report.errors if report is not None else ())
        lines = [f"{_prefix(action)}the scan could not finish ({len(self.errors)} error(s)):"]
        lines += [f"  {_safe(e)}" for e in self.errors]
        super().__init__("\n".join(lines), report)


def _safe(text: str) -> str:
    from .report.neutral import neutralise

    return neutralise(text)


def _prefix(action: str) -> str:
    return f"modelscan-lite refused {action}: " if action else "modelscan-lite: "


def _where(finding: Finding) -> str:
    loc = finding.location
    text = loc.path
    if loc.member:
        text += f" -> {loc.member}"
    if loc.key:
        text += f" [{loc.key}]"
    return _safe(text)


def _unsafe_message(report: Report, findings: tuple[Finding, ...], action: str) -> str:
    threshold = report.fail_on.label if report.fail_on is not None else "never"
    lines = [f"{_prefix(action)}{len(findings)} finding(s) at or above {threshold}:"]
    for f in findings[:_MAX_LISTED]:
        lines.append(f"  {f.rule} {f.severity.label} {f.name} in {_where(f)}: {_safe(f.message)}")
    if len(findings) > _MAX_LISTED:
        lines.append(f"  ... and {len(findings) - _MAX_LISTED} more (see .report)")
    lines.append("  `modelscan-lite rule ID` explains each rule and how to fix it")
    return "\n".join(lines)


def resolve_config(config: Config | None, fail_on: FailOn = FROM_CONFIG) -> Config:
    """``config``, or the nearest pyproject's ``[tool.modelscan-lite]``, with ``fail_on``
    applied: a :class:`Severity`, a severity name, ``"never"`` or ``None`` (never fail on
    findings), or :data:`FROM_CONFIG`. ConfigError on a bad config or threshold."""
    from .config import load_config, parse_fail_on

    cfg = config if config is not None else load_config()
    if isinstance(fail_on, _FromConfig):
        return cfg
    if fail_on is None or isinstance(fail_on, Severity):
        return replace(cfg, fail_on=fail_on)
    if isinstance(fail_on, str):
        return replace(cfg, fail_on=parse_fail_on(fail_on))
    raise TypeError(
        f"fail_on must be a Severity, a severity name, 'never' or None, not {fail_on!r}"
    )


def _as_paths(
    path_or_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> list[str]:
    if isinstance(path_or_paths, str | os.PathLike):
        return [os.fspath(path_or_paths)]
    return [os.fspath(p) for p in path_or_paths]


def scan(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    config: Config | None = None,
) -> Report:
    """Scan files, folders and ``hf://`` repos; return the :class:`~modelscan_lite.model.Report`.

    Never raises on findings: look at ``report.findings``, ``report.failing()`` (the findings
    at or above the config's ``fail-on``) and ``report.errors`` (what could not be scanned).
    ``config`` defaults to ``[tool.modelscan-lite]`` of the nearest ``pyproject.toml`` above
    the current directory (``ConfigError`` when that table is invalid)::

        >>> import modelscan_lite
        >>> report = modelscan_lite.scan(["model.pt", "checkpoints/"])  # doctest: +SKIP
        >>> for finding in report.failing():  # doctest: +SKIP
        ...     print(finding.rule, finding.severity.label, finding.location.display())
        P104 critical model.pt -> archive/data.pkl @169
    """
    from .scanner import scan_paths

    return scan_paths(_as_paths(paths), resolve_config(config))


def raise_for(report: Report, action: str = "") -> Report:
    """``report`` when nothing in it fails; else :class:`UnsafeModelError` (failing findings,
    even if there were errors too) or :class:`ScanError` (errors and no failing finding)."""
    failing = tuple(sorted(report.failing(), key=lambda f: -f.severity))
    if failing:
        raise UnsafeModelError(report, failing, action)
    if report.errors:
        raise ScanError(report, action)
    return report


def check(
    path_or_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    fail_on: FailOn = FROM_CONFIG,
    config: Config | None = None,
) -> Report:
    """Scan and return the report when it is clean; raise when it is not.

    - :class:`UnsafeModelError` (``.findings``, ``.report``) when a finding is at or above
      ``fail_on``: a :class:`~modelscan_lite.model.Severity`, ``"low"`` ... ``"critical"``,
      or ``"never"``/``None`` to never fail on findings. By default the config's ``fail-on``
      (``medium`` when unset).
    - :class:`ScanError` (``.errors``, ``.report``) when something could not be scanned and
      nothing failed: an error never masks a finding, and never passes silently.
    - ``ConfigError`` for an invalid ``[tool.modelscan-lite]`` or threshold.

    ``config`` defaults to the nearest pyproject's ``[tool.modelscan-lite]`` (its
    ``select``/``ignore``/``severity``/``per-path-ignores``/``allow-globals`` apply)::

        >>> from modelscan_lite import check, UnsafeModelError
        >>> try:  # doctest: +SKIP
        ...     check("downloads/model.bin", fail_on="high")
        ... except UnsafeModelError as exc:
        ...     print([f.rule for f in exc.findings])
        ['P104']
    """
    from .scanner import scan_paths

    paths = _as_paths(path_or_paths)
    report = scan_paths(paths, resolve_config(config, fail_on))
    return raise_for(report)
