"""Budgets every parser works under, so hostile input cannot hang or exhaust the scanner.

A budget that runs out is never a silent pass: the parser emits an ``anomaly`` fact naming the
budget (``budget-exceeded``) which a rule turns into a failing finding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True, slots=True)
class Limits:
    # pickle
    max_opcodes: int = 200_000_000
    max_stack: int = 1_000_000
    max_memo: int = 32_000_000
    max_pickles_per_stream: int = 64
    # elements a pickle's containers may expand to, shared references counted each time
    # they occur (what repr/json.dumps/==/hash visit), and tuple elements hashed at load;
    # only flagged past 16 per opcode as well (P301)
    max_expansion: int = 100_000_000
    # containers
    max_depth: int = 6
    max_members: int = 100_000
    max_decompressed: int = 8 * GiB
    max_ratio: int = 2_000
    max_member_read: int = 256 * MiB
    # headers (JSON, npy...)
    max_header: int = 100 * MiB
    # wall clock for one file on disk, members included
    max_seconds: float = 300.0


class Deadline:
    """A wall-clock budget shared by everything that parses one artifact."""

    __slots__ = ("_end", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() > self._end
