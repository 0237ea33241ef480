"""The data model: severities, locations, facts, findings and reports (frozen dataclasses).

Parsers emit :class:`Fact` objects (what is true about the bytes); the rule engine turns them
into :class:`Finding` objects (what matters, and how much); the scanner gathers them per
artifact into :class:`ArtifactResult` and a :class:`Report`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# tensor name -> (dtype, shape), as a format's header or pickle declares it
TensorTable = dict[str, tuple[str, tuple[int, ...]]]


class Severity(enum.IntEnum):
    """How bad a finding is; ordered so that comparisons work (``LOW < CRITICAL``)."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown severity {text!r} (expected low, medium, high or critical)"
            ) from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Location:
    """Where a fact was seen.

    ``path`` is the file on disk; ``member`` the chain of archive members and decoded layers
    leading to the bytes (``"archive/data.pkl"`` or ``"outer.zip!inner.tar!x.pkl"``);
    ``offset`` a byte offset inside the innermost stream; ``key`` a JSON key, tensor or global
    name when that is the clearer pointer.
    """

    path: str
    member: str | None = None
    offset: int | None = None
    key: str | None = None

    def child(self, member: str) -> Location:
        """The location of a member nested one level below this one."""
        joined = member if self.member is None else f"{self.member}!{member}"
        return Location(self.path, joined)

    def at(self, offset: int | None = None, key: str | None = None) -> Location:
        return Location(self.path, self.member, offset, key)

    def display(self) -> str:
        text = self.path
        if self.member:
            text += f" -> {self.member}"
        if self.offset is not None:
            text += f" @{self.offset}"
        if self.key:
            text += f" [{self.key}]"
        return text


@dataclass(frozen=True, slots=True)
class Fact:
    """One normalised observation about the bytes.

    ``kind`` names what was observed (``pickle.global``, ``pickle.call``, ``anomaly``,
    ``format``...); ``value`` is the string rules match on; ``detail`` carries extra values a
    message may quote; ``evidence`` is text shown under the finding (decompiled pickle...).
    """

    kind: str
    value: str
    location: Location
    detail: tuple[tuple[str, str], ...] = ()
    evidence: str | None = None

    def detail_dict(self) -> dict[str, str]:
        return dict(self.detail)


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    name: str
    severity: Severity
    message: str
    location: Location
    fingerprint: str
    evidence: str | None = None


@dataclass(frozen=True, slots=True)
class Waiver:
    """Why a finding does not count: a ``baseline`` entry (a finding known when the baseline
    was written, matched by fingerprint) or a ``suppression`` (config or suppression file,
    matched by rule and path or by fingerprint, always with a reason)."""

    kind: str  # "baseline" or "suppression"
    reason: str | None = None
    expires: str | None = None  # ISO date after which the suppression no longer applies
    source: str | None = None  # the file the waiver came from


@dataclass(frozen=True, slots=True)
class WaivedFinding:
    """A finding that matched a waiver: kept out of ``Report.findings`` and every verdict,
    but counted and listed in every report format."""

    finding: Finding
    waiver: Waiver


@dataclass(frozen=True, slots=True)
class DynamicRun:
    """How the sandboxed load of one artifact went (``--dynamic``): backend, verdict, numbers.

    ``status`` is ``done`` (loaded, and inferred where the format has an inference), ``load``,
    ``inference``, ``memory``, ``timeout``, ``crash``, ``unsupported`` or ``error``. Times are
    seconds: ``startup`` until the watch began (interpreter, isolation, warm-up imports),
    ``warm`` the warm-up imports alone, ``load`` and ``inference`` the loader's own work.
    """

    loader: str
    backend: str
    status: str
    startup: float = 0.0
    warm: float = 0.0
    load: float | None = None
    inference: float | None = None
    peak_rss: int = 0
    landlock_abi: int = 0
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ArtifactResult:
    """What the scan learnt about one file on disk (its members included)."""

    path: str
    format: str
    size: int
    findings: tuple[Finding, ...] = ()
    skipped: str | None = None
    error: str | None = None
    sha256: str | None = None
    # what identifies these bytes without reading them all: ``sha256:<hex>`` (the full
    # content hash: --hash, a Hugging Face blob name or an LFS oid), ``git-sha1:<hex>`` (a
    # Hugging Face blob of a non-LFS file), or ``read-sha256:<hex>`` (the size and the bytes
    # the scan read); see the README's "JSON report"
    content_id: str | None = None
    seconds: float = 0.0
    dynamic: DynamicRun | None = None
    # the format ids from the outside in (``("gzip", "pickle")`` for ``gzip+pickle``)
    layers: tuple[str, ...] = ()
    # a remote file (read by range requests): bytes fetched and requests made; None locally
    fetched: int | None = None
    requests: int | None = None
    # name -> (dtype, shape) of the file's tensors, from its one parse: the repo analysis
    # reads these instead of the weights file (not part of any report)
    tensors: TensorTable | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Report:
    tool_version: str
    rules_version: str
    active_rules: tuple[str, ...]
    fail_on: Severity | None
    artifacts: tuple[ArtifactResult, ...]
    errors: tuple[str, ...] = ()
    seconds: float = 0.0
    notes: tuple[str, ...] = ()  # said on stderr and kept in JSON (e.g. a skipped --dynamic)
    # findings a baseline or a suppression waived: not in ``findings``, never failing
    waived: tuple[WaivedFinding, ...] = ()

    def loose_errors(self) -> tuple[str, ...]:
        """The errors that are no file's own: a file's own error is its ``error``, and the
        scan lists it in ``errors`` as ``"<path>: <error>"`` (a report shows it once, with
        the file)."""
        own = {f"{a.path}: {a.error}" for a in self.artifacts if a.error}
        return tuple(e for e in self.errors if e not in own)

    def waived_count(self, kind: str) -> int:
        """How many findings the ``baseline`` or ``suppression`` waivers took out."""
        return sum(1 for w in self.waived if w.waiver.kind == kind)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for a in self.artifacts for f in a.findings)

    def failing(self) -> tuple[Finding, ...]:
        if self.fail_on is None:
            return ()
        return tuple(f for f in self.findings if f.severity >= self.fail_on)
