"""What every parser receives: the scan context (budgets, the fact sink, recursion depth).

Parsers call :meth:`Context.emit` / :meth:`Context.anomaly`; they never decide severity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..limits import Deadline, Limits
from ..model import Fact, Location
from .streams import DecompressBudget


@dataclass(slots=True)
class Context:
    limits: Limits
    deadline: Deadline
    budget: DecompressBudget
    facts: list[Fact] = field(default_factory=list)
    # True when any of these facts would give a finding: only then is evidence built.
    wants_evidence: Callable[[Iterable[Fact]], bool] = lambda facts: False
    depth: int = 0
    members: int = 0
    formats: list[str] = field(default_factory=list)

    def emit(
        self, kind: str, value: str, where: Location, evidence: str | None = None, **detail: object
    ) -> None:
        pairs = tuple((k, str(v)) for k, v in detail.items() if v is not None)
        self.facts.append(Fact(kind, value, where, pairs, evidence))

    def anomaly(
        self, value: str, where: Location, message: str, evidence: str | None = None
    ) -> None:
        self.emit("anomaly", value, where, evidence, message=message)
