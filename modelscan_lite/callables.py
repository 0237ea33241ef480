"""The one list of dangerous Python callables (``rules/callables/dangerous.json``), shared by
the pickle rules P101-P104 (``match: callables: [category, ...]``) and the custom-code check
(H103, :mod:`.repo.code`).

An entry is an identity: ``module`` + ``name`` (an exact qualname), or ``module`` alone for a
module-wide entry covering every name in the module and its submodules. For the pickle rules
an entry becomes a dotted-name pattern (``os.system``, ``subprocess.**``) matched by the
engine exactly as before; for the code check :meth:`Callables.lookup` returns the most
specific entry covering a resolved dotted name, and its ``code`` flag says whether a plain
call is reported. The file is validated structurally here and against
``rules/callables/schema.json`` in the tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DATA_FILE = "callables/dangerous.json"
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class CallablesError(ValueError):
    """The callables data file is malformed; the message names the entry."""


@dataclass(frozen=True)
class Dangerous:
    module: str
    name: str | None  # None: every name in ``module`` and its submodules
    category: str
    code: bool  # a plain call in Python source is reported by the code check
    what: str

    @property
    def dotted(self) -> str:
        return self.module if self.name is None else f"{self.module}.{self.name}"

    @property
    def pattern(self) -> str:
        """The engine's dotted-name glob for this entry."""
        return f"{self.module}.**" if self.name is None else self.dotted


@dataclass(frozen=True)
class Callables:
    entries: tuple[Dangerous, ...]
    categories: dict[str, str] = field(compare=False)
    _exact: dict[str, Dangerous] = field(init=False, compare=False, repr=False)
    _wide: dict[str, Dangerous] = field(init=False, compare=False, repr=False)
    _holders: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        exact = {e.dotted: e for e in self.entries if e.name is not None}
        wide = {e.module: e for e in self.entries if e.name is None}
        holders = frozenset(e.module for e in self.entries if e.name is not None and e.code)
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_wide", wide)
        object.__setattr__(self, "_holders", holders)

    def patterns(self, categories: Iterable[str]) -> list[str]:
        wanted = set(categories)
        return sorted({e.pattern for e in self.entries if e.category in wanted})

    def lookup(self, dotted: str) -> Dangerous | None:
        """The most specific entry covering ``dotted``: the exact entry, else the module-wide
        entry with the longest module prefix."""
        hit = self._exact.get(dotted)
        if hit is not None:
            return hit
        parts = dotted.split(".")
        for i in range(len(parts) - 1, 0, -1):
            hit = self._wide.get(".".join(parts[:i]))
            if hit is not None:
                return hit
        return None

    def has_code_attribute(self, module: str) -> bool:
        """True when an attribute of ``module`` looked up by a computed name can be a
        callable the code check reports: ``module`` is ``builtins``, lies inside a
        module-wide ``code`` entry, or directly holds an exact ``code`` entry."""
        if module == "builtins":
            return True
        hit = self.lookup(module + ".x")
        if hit is not None and hit.name is None and hit.code:
            return True
        return module in self._holders


def parse_callables(data: object, source: str = DATA_FILE) -> Callables:
    if not isinstance(data, dict):
        raise CallablesError(f"{source}: must hold one object")
    cats = data.get("categories")
    items = data.get("callables")
    if not isinstance(cats, dict) or not isinstance(items, list) or not items:
        raise CallablesError(f"{source}: needs `categories` and a non-empty `callables` list")
    out: list[Dangerous] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{source}: callables[{i}]"
        if not isinstance(item, dict):
            raise CallablesError(f"{where}: not an object")
        module, name, cat = item.get("module"), item.get("name"), item.get("category")
        if not isinstance(module, str) or not _DOTTED.match(module):
            raise CallablesError(f"{where}: `module` {module!r} is not a dotted name")
        if name is not None and (not isinstance(name, str) or not _DOTTED.match(name)):
            raise CallablesError(f"{where}: `name` {name!r} is not a dotted name")
        if cat not in cats:
            raise CallablesError(f"{where}: unknown category {cat!r}")
        if not isinstance(item.get("code"), bool):
            raise CallablesError(f"{where}: `code` must be true or false")
        entry = Dangerous(
            module, name, str(cat), bool(item["code"]), str(item.get("what") or cats[cat])
        )
        if entry.pattern in seen:
            raise CallablesError(f"{where}: {entry.dotted} is listed twice")
        seen.add(entry.pattern)
        out.append(entry)
    return Callables(tuple(out), {str(k): str(v) for k, v in cats.items()})


@lru_cache(maxsize=4)
def load_callables(rules_root: str | None = None) -> Callables:
    """The shipped list (``rules_root`` defaults to the rules next to the package)."""
    if rules_root is None:
        from .engine import rules_dir

        rules_root = str(rules_dir())
    path = Path(rules_root) / DATA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CallablesError(f"{DATA_FILE}: cannot read: {exc}") from None
    return parse_callables(data)


# str methods without side effects whose result a constant folder may compute (used by the
# custom-code check on Python source and by the chat-template analysis on Jinja)
PURE_STR_METHODS = frozenset(
    {
        "join",
        "format",
        "replace",
        "lower",
        "upper",
        "strip",
        "lstrip",
        "rstrip",
        "title",
        "capitalize",
        "swapcase",
        "casefold",
        "removeprefix",
        "removesuffix",
        "split",
    }
)
