"""What every parser receives: the scan context (budgets, the fact sink, recursion depth).

Parsers call :meth:`Context.emit` / :meth:`Context.anomaly`; they never decide severity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from ..limits import Deadline, Limits
from ..model import Fact, Location, TensorTable
from .streams import DecompressBudget


def _open_file(path: str) -> BinaryIO:
    return open(path, "rb")  # the caller closes it


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
    # the file's tensor table (name -> dtype, shape), filled by the parser that reads the
    # top-level weights; the repo analysis uses it instead of parsing the file again
    tensors: TensorTable | None = None
    # for the repo analysis: absolute path -> the tensor table the file scan recorded
    weight_tables: Mapping[str, TensorTable | None] = field(default_factory=dict)
    # paths of other files and folders the parsers looked at (a file's external data, the
    # weights beside it, a Hugging Face cache's blobs folder): the result cache records
    # their state with the result and re-checks it on a hit (:mod:`..result_cache`)
    consulted: list[str] = field(default_factory=list)
    # opens another file whose bytes a parser reads (a Core ML package's weights): the file
    # on disk, or for a remote scan the remote file at that place (remote.scan)
    open_sibling: Callable[[str], BinaryIO] = field(default=_open_file)

    def consult(self, path: str) -> None:
        """The verdict depends on ``path`` (another file than the one scanned, or a folder):
        whether it exists, where links take it, its size or bytes. Call it at every such
        look, before looking."""
        self.consulted.append(path)

    def cache_blobs(self, folder: str) -> str | None:
        """:func:`~modelscan_lite.hfcache.cache_blobs_of`, each ``blobs`` folder it looks
        for consulted."""
        from ..hfcache import blobs_candidates, cache_blobs_of

        for blobs in blobs_candidates(folder):
            self.consult(blobs)
        return cache_blobs_of(folder)

    def tensor_table(self, where: Location, table: TensorTable) -> None:
        """Record tensors read at ``where``: kept only for the file itself or the one pickle
        of a PyTorch archive (``<root>/data.pkl``), never for nested payloads."""
        member = where.member
        if member is None or (member.count("!") == 0 and member.endswith("data.pkl")):
            if self.tensors is None:
                self.tensors = {}
            self.tensors.update(table)

    def emit(
        self, kind: str, value: str, where: Location, evidence: str | None = None, **detail: object
    ) -> None:
        pairs = tuple((k, str(v)) for k, v in detail.items() if v is not None)
        self.facts.append(Fact(kind, value, where, pairs, evidence))

    def anomaly(
        self, value: str, where: Location, message: str, evidence: str | None = None
    ) -> None:
        """Something structural or a limit: ``value`` names it for the rules. A budget hit
        is ``budget-<name>`` (owned by X901 whatever the name); anything else is owned by
        the format's class-2 rule."""
        self.emit("anomaly", value, where, evidence, message=message)
