"""Parsing JSON under budgets: bytes, number of values, nesting depth.

``json.loads`` builds one Python object per value, up to ~64 bytes for 1-3 bytes of text, so
a document is measured before it is parsed, in C-speed passes over the raw bytes that
allocate no object per value:

- values: ``,`` + ``:`` + ``[`` + ``{`` occurrences + 1, an upper bound on the number of
  values (each value but the first in a container follows a ``,``, each object member a
  ``:``, each container opens with a bracket; the characters inside strings only add to it);
- depth: strings and everything but brackets are dropped, and innermost bracket pairs are
  removed one level per pass; what remains after ``max_depth`` passes is nested deeper
  than that (or malformed, which the parser then reports).

A budget that runs out raises :class:`JsonBudgetExceeded` naming it (``budget-json-values``,
``budget-json-depth``, ``budget-json-bytes``); callers turn it into an ``anomaly`` fact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .limits import Limits

_STRING = re.compile(rb'"[^"]*"')
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_ONE_BRACKET = bytes.maketrans(b"{}", b"[]")


class JsonBudgetExceeded(Exception):
    """``what`` is the anomaly kind (``budget-json-*``), the message says which budget."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what
        self.message = message


def count_values(raw: bytes) -> int:
    """An upper bound on the number of JSON values in ``raw``."""
    return raw.count(b",") + raw.count(b":") + raw.count(b"[") + raw.count(b"{") + 1


def deeper_than(raw: bytes, max_depth: int) -> bool:
    """True when the brackets outside strings nest more than ``max_depth`` levels."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False
    # escapes first (left to right, as JSON pairs them), then every byte but quotes and
    # brackets; dropping adjacent quote pairs keeps every other quote's parity, so strings
    # stay strings, and the few strings left (those holding brackets) go in one regex pass
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = raw.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    # one bracket kind: in a run of ``[`` and ``]`` each ``[]`` is a leaf, so one replace
    # removes exactly one level (a mismatched ``[}`` passes here and fails the parser)
    skeleton = _STRING.sub(b"", skeleton).translate(_ONE_BRACKET)
    for _ in range(max_depth):
        if not skeleton:
            return False
        skeleton = skeleton.replace(b"[]", b"")
    if not skeleton:
        return False
    while skeleton:  # nested deeper, or unbalanced (then the parser reports it)
        reduced = skeleton.replace(b"[]", b"")
        if len(reduced) == len(skeleton):
            return False
        skeleton = reduced
    return True


def check(raw: bytes, limits: Limits) -> None:
    """Raise :class:`JsonBudgetExceeded` if parsing ``raw`` would exceed a budget."""
    values = count_values(raw)
    if values > limits.max_json_values:
        raise JsonBudgetExceeded(
            "budget-json-values",
            f"up to {values} JSON values, more than the {limits.max_json_values} budget; "
            "not parsed",
        )
    if deeper_than(raw, limits.max_json_depth):
        raise JsonBudgetExceeded(
            "budget-json-depth",
            f"JSON nested deeper than {limits.max_json_depth} levels; not parsed",
        )


def loads(
    raw: bytes,
    limits: Limits,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """``json.loads`` after :func:`check`. Raises what ``json.loads`` raises, and
    :class:`JsonBudgetExceeded`."""
    check(raw, limits)
    return json.loads(raw, object_pairs_hook=object_pairs_hook)


def read_json(path: str, limits: Limits, max_bytes: int) -> Any:
    """Read and parse the JSON file at ``path`` under ``max_bytes`` and the JSON budgets.
    Raises ``OSError``, ``ValueError``, ``RecursionError`` and :class:`JsonBudgetExceeded`."""
    with open(path, "rb") as f:
        raw = f.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise JsonBudgetExceeded(
                "budget-json-bytes",
                f"more than {max_bytes} bytes, over the budget for this file; not parsed",
            )
    return loads(raw, limits)
