"""Waivers: the baseline file and the suppressions that take known findings out of a report.

This module owns three things, all driven by the :class:`~modelscan_lite.config.Config`:

* **Suppressions**: ``[[tool.modelscan-lite.suppress]]`` entries in ``pyproject.toml``, or the
  same entries in a TOML or YAML file (``--suppressions FILE``, a ``suppress`` list). Each is
  keyed by ``rule`` (an ID or prefix) and/or ``path`` (a glob anchored like
  ``per-path-ignores``) and ``member`` (a glob on the archive member), or by ``fingerprint``;
  every given key must match. ``reason`` is required; ``expires`` (a date) ends it: from the
  day after, it no longer applies and the report says so in a note.
* **The baseline file** (``--baseline FILE`` or ``baseline = "path"``): findings known when it
  was written, matched by rule and fingerprint. Entries that match nothing are counted in a
  note ("stale"), never an error. Fingerprints depend on the path as the scan names it,
  normalised (:func:`modelscan_lite.engine.fingerprint_path`): a baseline matches when the same
  relative path is scanned from the same place, in this checkout or a copy of it.
* **Writing a baseline** (``--write-baseline FILE``): every finding no suppression took, sorted,
  as versioned JSON, written atomically; the findings it holds are then waived in the report
  (the current state is accepted: exit 0 unless there is an error).

:func:`apply_waivers` moves matching findings from ``ArtifactResult.findings`` into
``Report.waived`` (suppressions first, then the baseline); nothing else changes. Malformed
entries and files are :class:`~modelscan_lite.config.ConfigError` (exit 2).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .config import ConfigError
from .model import Finding, Report, WaivedFinding, Waiver

if TYPE_CHECKING:
    from .config import Config

BASELINE_VERSION = 1
SUPPRESSION_KEYS = frozenset({"rule", "path", "member", "fingerprint", "reason", "expires"})
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True, slots=True)
class Suppression:
    """One suppression entry. ``root`` is the folder a ``path`` glob with a ``/`` is relative
    to: the suppression file's folder, or None for the pyproject's own (``Config.root``)."""

    reason: str
    rule: str | None = None
    path: str | None = None
    member: str | None = None
    fingerprint: str | None = None
    expires: dt.date | None = None
    source: str | None = None
    root: str | None = None

    def describe(self) -> str:
        parts = [
            f"{key} {value}"
            for key, value in (
                ("rule", self.rule),
                ("path", self.path),
                ("member", self.member),
                ("fingerprint", self.fingerprint),
            )
            if value is not None
        ]
        return ", ".join(parts)

    def expired(self, today: dt.date) -> bool:
        """True from the day after ``expires`` (the date itself is still covered)."""
        return self.expires is not None and today > self.expires

    def matches(self, finding: Finding, root: str) -> bool:
        from .engine import glob_match, path_matches

        loc = finding.location
        if self.rule is not None and not finding.rule.startswith(self.rule):
            return False
        if self.fingerprint is not None and finding.fingerprint != self.fingerprint:
            return False
        if self.member is not None and (
            loc.member is None or not glob_match(loc.member, self.member)
        ):
            return False
        if self.path is not None:
            if "://" in loc.path or "://" in self.path:  # hf:// addresses: matched as written
                return glob_match(loc.path, self.path)
            return path_matches(self.path, loc.path, self.root or root)
        return True


@dataclass(frozen=True, slots=True)
class BaselineEntry:
    rule: str
    fingerprint: str
    path: str
    member: str | None = None
    key: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class Baseline:
    source: str
    entries: tuple[BaselineEntry, ...]
    tool_version: str | None = None
    rules_version: str | None = None


# --------------------------------------------------------------------------- suppressions


def _date(value: object, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{where}: expires must be a date such as 2027-01-31, not {value!r}")


def _opt_str(entry: dict[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def parse_suppressions(
    entries: object, source: str, root: str | None = None
) -> tuple[Suppression, ...]:
    """Suppression entries as read from TOML or YAML (a list of tables); ConfigError on an
    unknown key, a missing reason, no ``rule`` nor ``fingerprint``, a malformed value."""
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: suppress must be a list of tables ([[...suppress]])")
    out: list[Suppression] = []
    for n, entry in enumerate(entries, 1):
        where = f"{source}: suppress entry {n}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a table with rule, path, reason...")
        unknown = set(entry) - SUPPRESSION_KEYS
        if unknown:
            known = ", ".join(sorted(SUPPRESSION_KEYS))
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)} (known: {known})")
        reason = _opt_str(entry, "reason", where)
        if reason is None:
            raise ConfigError(f"{where}: reason is required (say why this finding is accepted)")
        rule = _opt_str(entry, "rule", where)
        fingerprint = _opt_str(entry, "fingerprint", where)
        if rule is None and fingerprint is None:
            raise ConfigError(f"{where}: give a rule (with a path) or a fingerprint")
        if fingerprint is not None:
            fingerprint = fingerprint.lower()
            if not _FINGERPRINT.fullmatch(fingerprint):
                raise ConfigError(
                    f"{where}: fingerprint must be 16 hex digits, not {fingerprint!r}"
                )
        out.append(
            Suppression(
                reason=reason,
                rule=rule.upper() if rule is not None else None,
                path=_opt_str(entry, "path", where),
                member=_opt_str(entry, "member", where),
                fingerprint=fingerprint,
                expires=_date(entry["expires"], where)
                if entry.get("expires") is not None
                else None,
                source=source,
                root=root,
            )
        )
    return tuple(out)


def load_suppressions(path: str) -> tuple[Suppression, ...]:
    """A suppression file: TOML (``[[suppress]]``) or YAML (``suppress:`` list), by extension.
    Its ``path`` globs are relative to the file's folder."""
    lower = path.lower()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the suppression file ({exc.strerror or exc})"
        ) from None
    except ValueError as exc:  # UnicodeDecodeError
        raise ConfigError(f"{path}: {exc}") from None
    data: object
    if lower.endswith(".toml"):
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: cannot parse the suppression file: {exc}") from None
        except RecursionError:
            raise ConfigError(f"{path}: the suppression file nests too deep") from None
    elif lower.endswith((".yaml", ".yml")):
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: cannot parse the suppression file: {exc}") from None
        except RecursionError:
            raise ConfigError(f"{path}: the suppression file nests too deep") from None
        except ValueError as exc:  # a date the YAML resolver builds: 2020-02-30
            raise ConfigError(f"{path}: cannot parse the suppression file: {exc}") from None
    else:
        raise ConfigError(f"{path}: a suppression file must end in .toml, .yaml or .yml")
    if not isinstance(data, dict) or set(data) - {"suppress"}:
        raise ConfigError(f"{path}: a suppression file holds one key, suppress (a list of entries)")
    root = os.path.dirname(os.path.abspath(path))
    return parse_suppressions(data.get("suppress", []), path, root)


# --------------------------------------------------------------------------- baseline


def load_baseline(path: str) -> Baseline:
    """A baseline file; ConfigError naming what is wrong when it is not one."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such baseline file (write one with --write-baseline {path})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the baseline ({exc.strerror or exc})") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ConfigError(f"{path}: the baseline is not valid JSON ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: the baseline nests too deep to be one") from None
    if not isinstance(data, dict) or "baseline_version" not in data:
        raise ConfigError(
            f"{path}: not a modelscan-lite baseline (no baseline_version); "
            "write one with --write-baseline"
        )
    version = data["baseline_version"]
    if type(version) is not int or version != BASELINE_VERSION:
        raise ConfigError(
            f"{path}: baseline_version {data['baseline_version']!r} is not supported "
            f"(this version reads {BASELINE_VERSION}); rewrite it with --write-baseline"
        )
    findings = data.get("findings")
    if not isinstance(findings, list):
        raise ConfigError(f"{path}: the baseline has no findings list")
    entries = []
    for n, item in enumerate(findings, 1):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("rule"), str)
            and isinstance(item.get("fingerprint"), str)
            and _FINGERPRINT.fullmatch(item["fingerprint"])
        ):
            raise ConfigError(
                f"{path}: baseline entry {n} needs a rule and a 16-hex-digit fingerprint"
            )
        entries.append(
            BaselineEntry(
                item["rule"].upper(),
                item["fingerprint"],
                str(item.get("path", "")),
                _str_or_none(item.get("member")),
                _str_or_none(item.get("key")),
                str(item.get("message", "")),
            )
        )
    tool = data.get("tool")
    if not isinstance(tool, dict):
        tool = {}
    return Baseline(
        path,
        tuple(entries),
        _str_or_none(tool.get("version")),
        _str_or_none(tool.get("rules_version")),
    )


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def render_baseline(findings: Iterable[Finding], tool_version: str, rules_version: str) -> str:
    """The baseline file's text: versioned, sorted, one entry per (rule, fingerprint), no
    timestamp, so the same findings always give the same bytes."""
    import json

    from .engine import fingerprint_path

    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for f in findings:
        entries.setdefault(
            (f.rule, f.fingerprint),
            {
                "rule": f.rule,
                "fingerprint": f.fingerprint,
                "path": fingerprint_path(f.location.path),
                "member": f.location.member,
                "key": f.location.key,
                "message": f.message,
            },
        )
    ordered = sorted(
        entries.values(),
        key=lambda e: (e["path"], e["member"] or "", e["key"] or "", e["rule"], e["fingerprint"]),
    )
    doc = {
        "baseline_version": BASELINE_VERSION,
        "tool": {"name": "modelscan-lite", "version": tool_version, "rules_version": rules_version},
        "findings": ordered,
    }
    # ASCII: a path that is not valid UTF-8 (a lone surrogate, as Python decodes it) is
    # written as an escape instead of failing the write
    return json.dumps(doc, indent=2) + "\n"


# --------------------------------------------------------------------------- config and apply


def prepare(config: Config) -> Baseline | None:
    """The baseline the config names, read and checked before the scan starts (a bad file
    fails fast, exit 2). None when there is none, or when ``write_baseline`` replaces it."""
    if config.write_baseline is not None or config.baseline is None:
        return None
    return load_baseline(config.baseline)


def with_cli_options(
    config: Config,
    baseline: str | None,
    write_baseline: str | None,
    suppressions: Sequence[str] = (),
) -> Config:
    """The config with ``--baseline``, ``--write-baseline`` and ``--suppressions`` added (paths
    relative to the working directory); the files' entries join the config's."""
    extra: tuple[Suppression, ...] = ()
    for path in suppressions:
        extra += load_suppressions(path)
    return replace(
        config,
        baseline=baseline if baseline is not None else config.baseline,
        write_baseline=write_baseline if write_baseline is not None else config.write_baseline,
        suppress=config.suppress + extra,
    )


def apply_waivers(
    report: Report,
    config: Config,
    baseline: Baseline | None = None,
    today: dt.date | None = None,
) -> Report:
    """``report`` with the findings that a suppression or the baseline covers moved into
    ``Report.waived``, and notes for expired suppressions and stale baseline entries. With
    ``config.write_baseline`` the remaining findings are written there, then waived (when
    the file cannot be written, they stay and the report carries the error)."""
    if baseline is None:
        baseline = prepare(config)
    if not (config.suppress or baseline or config.write_baseline):
        return report
    today = today or dt.date.today()
    root = config.root or os.getcwd()
    notes = list(report.notes)
    errors = list(report.errors)
    live: list[Suppression] = []
    for s in config.suppress:
        if s.expired(today):
            notes.append(
                f"suppression expired on {s.expires} ({s.describe()}; {s.source}): it no "
                "longer applies, its findings count again"
            )
        else:
            live.append(s)
    known = {(e.rule, e.fingerprint) for e in baseline.entries} if baseline else set()
    matched: set[tuple[str, str]] = set()
    waived = list(report.waived)
    artifacts = []
    for artifact in report.artifacts:
        kept: list[Finding] = []
        for f in artifact.findings:
            if (f.rule, f.fingerprint) in known:  # current, even when a suppression takes it
                matched.add((f.rule, f.fingerprint))
            hit = next((s for s in live if s.matches(f, root)), None)
            if hit is not None:
                expires = hit.expires.isoformat() if hit.expires else None
                waived.append(
                    WaivedFinding(f, Waiver("suppression", hit.reason, expires, hit.source))
                )
            elif baseline is not None and (f.rule, f.fingerprint) in known:
                waived.append(WaivedFinding(f, Waiver("baseline", source=baseline.source)))
            else:
                kept.append(f)
        artifacts.append(
            artifact
            if len(kept) == len(artifact.findings)
            else replace(artifact, findings=tuple(kept))
        )
    if baseline is not None:
        stale = [e for e in baseline.entries if (e.rule, e.fingerprint) not in matched]
        if stale:
            paths = sorted({e.path for e in stale})
            shown = ", ".join(paths[:3]) + (", ..." if len(paths) > 3 else "")
            what = "entry no longer matches" if len(stale) == 1 else "entries no longer match"
            notes.append(
                f"{len(stale)} baseline {what} ({baseline.source}: {shown}): fixed, removed "
                "or not scanned this time; --write-baseline rewrites the file"
            )
    out = replace(report, artifacts=tuple(artifacts), waived=tuple(waived), notes=tuple(notes))
    if config.write_baseline is not None:
        out = _write_baseline(out, config.write_baseline, errors)
    return replace(out, errors=tuple(errors))


def _write_baseline(report: Report, path: str, errors: list[str]) -> Report:
    text = render_baseline(report.findings, report.tool_version, report.rules_version)
    try:
        from .atomic_write import write_atomically

        write_atomically(path, text)
    except OSError as exc:
        errors.append(f"cannot write the baseline {path}: {exc.strerror or exc}")
        return report
    waiver = Waiver("baseline", source=path)
    taken = tuple(WaivedFinding(f, waiver) for f in report.findings)
    artifacts = tuple(replace(a, findings=()) if a.findings else a for a in report.artifacts)
    notes = (*report.notes, f"baseline written to {path}: {len(taken)} finding(s) accepted")
    return replace(report, artifacts=artifacts, waived=report.waived + taken, notes=notes)
