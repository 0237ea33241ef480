"""The rule engine: loads rule files from ``rules/``, matches facts, and makes findings.

A rule matches a fact when the fact's ``kind`` is one of the rule's kinds and its ``value``
passes every value test the rule gives (``in``, ``not-in``, ``glob``, ``regex``), and no rule
listed under ``not-matched-by`` matched the same fact. Globs are dotted-name globs: ``*``
stays inside one dotted component, ``**`` crosses dots. With ``suffixes: true`` a glob also
tests each dotted tail of the value (``pathlib.os.system`` -> ``os.system``), with leading
underscores dropped from components (``_os`` -> ``os``), because ``find_class`` walks every
component of a dotted name. With ``not-allowlisted: pickle-globals`` a fact whose exact
``(module, qualname)`` identity is on the allowlist (:mod:`.allowlist`) never matches; with
``called: true|false`` a pickle fact matches only when loading does / does not call the
global. ``callables: [category, ...]`` adds the entries of those categories of the shared list
of dangerous callables (``rules/callables/dangerous.json``, :mod:`.callables`) to the rule's
globs: an exact entry as its dotted name, a module-wide entry as ``module.**``.

Rule files are validated structurally here (cheaply, at every start) and against
``rules/schema.json`` in the tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .allowlist import Allowlist, Identity, load_allowlist
from .cache import read_cache, write_cache
from .model import Fact, Finding, Location, Severity

if TYPE_CHECKING:  # the callables list is read only when the rule files are parsed
    from .callables import Callables

RULE_ID = re.compile(r"^[PASGOHJDXKTFNM][1-9]\d{2}$")
RULES_VERSION = re.compile(r"^[0-9a-f]{12}$")
RULE_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
FAMILY_DIRS = {
    "P": "pickle",
    "A": "archive",
    "S": "safetensors",
    "G": "gguf",
    "O": "onnx",
    "H": "hf-repo",
    "J": "template",
    "K": "keras",
    "T": "torch",
    "F": "tensorflow",
    "N": "config",
    "M": "formats",
    "D": "dynamic",
    "X": "scanner",
}
REQUIRED = ("id", "name", "severity", "formats", "match", "message", "since", "doc")
DOC_FIELDS = ("what", "why", "example", "fix", "known-problems")


class RuleError(ValueError):
    """A rule file is malformed; the message names the file."""


def rules_dir() -> Path:
    """The rules shipped in the wheel (``modelscan_lite/_rules``) or in the checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_rules", here.parent / "rules"):
        if (candidate / "schema.json").is_file():
            return candidate
    raise RuleError(f"no rules directory found next to {here}")


def glob_to_regex(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^.]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^.]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


class GlobSet:
    """Dotted-name globs, matched cheaply: exact names by set lookup, ``prefix.**`` by
    ``str.startswith``, and only the remaining wildcard patterns through a regex compiled on
    first use (compiling every allowlist and denylist up front cost ~60 ms per process)."""

    __slots__ = ("_rx", "_wild", "exact", "prefixes")

    def __init__(self, patterns: Sequence[str]) -> None:
        self.exact = frozenset(p for p in patterns if "*" not in p and "?" not in p)
        self.prefixes = tuple(
            p[:-2]
            for p in patterns
            if p.endswith(".**") and "*" not in p[:-3] and "?" not in p[:-3]
        )
        self._wild = tuple(
            p
            for p in patterns
            if p not in self.exact and not (p.endswith(".**") and p[:-2] in self.prefixes)
        )
        self._rx: re.Pattern[str] | None = None

    def patterns(self) -> list[str]:
        """Patterns that make an equal GlobSet (for the checked-rules cache)."""
        return [*sorted(self.exact), *(p + "**" for p in self.prefixes), *self._wild]

    def match(self, value: str) -> bool:
        if value in self.exact or value.startswith(self.prefixes):
            return True
        if not self._wild:
            return False
        if self._rx is None:
            self._rx = re.compile("(?:" + "|".join(glob_to_regex(p) for p in self._wild) + r")\Z")
        return self._rx.match(value) is not None


def _compile_globs(patterns: Sequence[str]) -> GlobSet | None:
    return GlobSet(patterns) if patterns else None


# tails start at most this many components from the end: what a chain resolves to is its end,
# and every tail of a name with N components would cost O(N^2) (a file-chosen name with
# thousands of dots made matching quadratic; such a name is never allowlisted anyway)
MAX_TAIL_COMPONENTS = 16


def dotted_tails(value: str) -> list[str]:
    """``a._b.c`` -> ``a._b.c``, ``_b.c``, ``b.c`` (tails of two or more components, starting
    in the last ``MAX_TAIL_COMPONENTS``)."""
    parts = value.split(".")
    out = [value]
    for i in range(max(1, len(parts) - MAX_TAIL_COMPONENTS), len(parts) - 1):
        tail = parts[i:]
        out.append(".".join(tail))
        stripped = ".".join(p.lstrip("_") or p for p in tail[:-1]) + "." + tail[-1]
        if stripped != out[-1]:
            out.append(stripped)
    return out


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    formats: tuple[str, ...]
    kinds: frozenset[str]
    message: str
    since: str
    doc: dict[str, str]
    cwe: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    values_in: frozenset[str] | None = None
    values_not_in: frozenset[str] = frozenset()
    glob: GlobSet | None = None
    regex: re.Pattern[str] | None = None
    suffixes: bool = False
    not_matched_by: tuple[str, ...] = ()
    # True: a fact whose (module, qualname) identity is on the allowlist never matches
    not_allowlisted: bool = False
    # True/False: only facts of globals that loading calls / does not call
    called: bool | None = None
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def family(self) -> str:
        return self.id[0]

    def value_matches(self, value: str) -> bool:
        if self.values_in is not None and value not in self.values_in:
            return False
        if value in self.values_not_in:
            return False
        if self.glob is not None:
            tails = dotted_tails(value) if self.suffixes else [value]
            if not any(self.glob.match(t) for t in tails):
                return False
        return not (self.regex is not None and not self.regex.search(value))

    def matches(self, fact: Fact, allowlist: Allowlist) -> bool:
        """True when ``fact`` is one this rule reports, under ``allowlist``."""
        if fact.kind not in self.kinds or not self.value_matches(fact.value):
            return False
        if self.called is not None:
            details = fact.detail_dict()
            if (details.get("called", "0") not in ("", "0")) is not self.called:
                return False
        if not self.not_allowlisted:
            return True
        init = fact.detail_dict().get("inits", "0") not in ("", "0")
        return not allowlist.allows(*fact_identity(fact), init=init)


def fact_identity(fact: Fact) -> Identity:
    """The ``(module, qualname)`` a pickle fact names: from its details when the walker
    recorded them, else the dotted value split at its last dot."""
    details = fact.detail_dict()
    module, qualname = details.get("module"), details.get("qualname")
    if module is not None and qualname is not None:
        return module, qualname
    module, _, qualname = fact.value.rpartition(".")
    return module, qualname


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def parse_rule(data: Any, source: str, callables: Callables | None = None) -> Rule:
    if not isinstance(data, dict):
        raise RuleError(f"{source}: a rule file holds one mapping")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise RuleError(f"{source}: missing {', '.join(missing)}")
    rid, name = str(data["id"]), str(data["name"])
    if not RULE_ID.match(rid):
        raise RuleError(f"{source}: id {rid!r} is not <FAMILY><CLASS><NN>")
    if not RULE_NAME.match(name):
        raise RuleError(f"{source}: name {name!r} is not kebab-case")
    match = data["match"]
    if not isinstance(match, dict) or "kind" not in match:
        raise RuleError(f"{source}: match needs a kind")
    known = {
        "kind",
        "in",
        "not-in",
        "glob",
        "regex",
        "suffixes",
        "not-matched-by",
        "not-allowlisted",
        "called",
        "callables",
    }
    unknown = set(match) - known
    if unknown:
        raise RuleError(f"{source}: unknown match keys {sorted(unknown)}")
    doc = data["doc"]
    if not isinstance(doc, dict) or any(not str(doc.get(k, "")).strip() for k in DOC_FIELDS):
        raise RuleError(f"{source}: doc needs {', '.join(DOC_FIELDS)}")
    try:
        severity = Severity.parse(str(data["severity"]))
        regex = re.compile(match["regex"]) if match.get("regex") else None
        globs = _as_list(match.get("glob")) + _callable_globs(match, callables)
    except (ValueError, re.error) as exc:
        raise RuleError(f"{source}: {exc}") from None
    _allowlist_name(match.get("not-allowlisted"), source)
    return _build_rule(data, source, severity, regex, globs)


def _build_rule(
    data: dict[str, Any],
    source: str,
    severity: Severity,
    regex: re.Pattern[str] | None,
    globs: list[str],
) -> Rule:
    """The Rule of rule data :func:`parse_rule` checked (now, or when it wrote the cache)."""
    match, doc = data["match"], data["doc"]
    return Rule(
        id=str(data["id"]),
        name=str(data["name"]),
        severity=severity,
        formats=tuple(_as_list(data["formats"])),
        kinds=frozenset(_as_list(match["kind"])),
        message=str(data["message"]),
        since=str(data["since"]),
        doc={k: str(v).strip() for k, v in doc.items()},
        cwe=tuple(_as_list(data.get("cwe"))),
        references=tuple(_as_list(data.get("references"))),
        values_in=frozenset(_as_list(match["in"])) if "in" in match else None,
        values_not_in=frozenset(_as_list(match.get("not-in"))),
        glob=_compile_globs(globs),
        regex=regex,
        suffixes=bool(match.get("suffixes", False)),
        not_matched_by=tuple(_as_list(match.get("not-matched-by"))),
        not_allowlisted=match.get("not-allowlisted") is not None,
        called=match.get("called") if isinstance(match.get("called"), bool) else None,
        source=source,
        raw=data,
    )


def _callable_globs(match: dict[str, Any], callables: Callables | None) -> list[str]:
    """The patterns of the ``callables`` categories a rule names (CallablesError, a
    ValueError, on an unknown category or a malformed data file)."""
    categories = _as_list(match.get("callables"))
    if not categories:
        return []
    from .callables import CallablesError, load_callables

    table = callables if callables is not None else load_callables()
    unknown = sorted(set(categories) - set(table.categories))
    if unknown:
        raise CallablesError(f"callables names unknown categories {unknown}")
    return table.patterns(categories)


def _allowlist_name(value: Any, source: str) -> bool:
    if value is None:
        return False
    if value != "pickle-globals":
        raise RuleError(f"{source}: not-allowlisted names an unknown allowlist {value!r}")
    return True


def _yaml_load(text: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    version: str
    allowlist: Allowlist

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}

    def get(self, rule_id: str) -> Rule | None:
        return self.by_id().get(rule_id.upper())


def _content_version(texts: list[tuple[str, str]], data_files: list[Path]) -> str:
    """A 48-bit checksum of every rule file and data file: zlib is already loaded, while
    hashlib's OpenSSL start-up costs a tiny scan ~4 ms."""
    crc, adler = 0, 1
    for rel, text in texts:
        blob = rel.rsplit("/", 1)[-1].encode() + b"\0" + text.encode()
        crc, adler = zlib.crc32(blob, crc), zlib.adler32(blob, adler)
    for data_file in data_files:
        blob = data_file.name.encode() + b"\0" + data_file.read_bytes()
        crc, adler = zlib.crc32(blob, crc), zlib.adler32(blob, adler)
    return f"{crc:08x}{adler & 0xFFFF:04x}"


def _stat_key(paths: list[Path], data_files: list[Path]) -> str | None:
    """Names, sizes, mtimes and inodes of the rule and data files: a cheap key under which
    the content version is remembered, so a start-up does not read 1.5 MB to checksum it."""
    crc = 0
    try:
        for path in (*paths, *data_files):
            st = path.stat()
            crc = zlib.crc32(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode(), crc)
    except OSError:
        return None
    return f"{crc:08x}{len(paths) + len(data_files):04x}"


def _indexed_version(paths: list[Path], data_files: list[Path]) -> str | None:
    key = _stat_key(paths, data_files)
    version = (read_cache(f"rules-index-{key}") or "").strip() if key else ""
    return version if RULES_VERSION.match(version) else None


def _write_index(paths: list[Path], data_files: list[Path], version: str) -> None:
    key = _stat_key(paths, data_files)
    if key:
        write_cache(f"rules-index-{key}", version)


def _parsed_rule_data(
    rels: list[str], paths: list[Path], texts: list[tuple[str, str]] | None, digest: str
) -> list[Any]:
    """The YAML documents, from a JSON cache keyed by the rule files' content digest.

    Importing and running the YAML parser costs ~50 ms per process, most of a tiny scan; the
    cache holds the same data as JSON and cannot go stale since its name is the content hash.
    """
    name = f"rules-{digest}.json"
    text = read_cache(name)
    if text is not None:
        try:
            cached = json.loads(text)
            if isinstance(cached, list) and len(cached) == len(rels):
                return cached
        except ValueError:
            pass
    if texts is None:
        texts = [(rel, p.read_text(encoding="utf-8")) for rel, p in zip(rels, paths, strict=True)]
    out = []
    for rel, text in texts:
        try:
            out.append(_yaml_load(text))
        except Exception as exc:
            raise RuleError(f"{rel}: not valid YAML: {exc}") from None
    # data that is not JSON-serialisable: the next start-up parses the YAML again
    with contextlib.suppress(TypeError, ValueError):
        write_cache(name, json.dumps(out))
    return out


@lru_cache(maxsize=4)
def load_rules(directory: str | None = None) -> RuleSet:
    """The rule set in ``directory`` (default: the shipped rules); RuleError when malformed."""
    root = Path(directory) if directory else rules_dir()
    paths = sorted(root.glob("*/*.yaml"))
    data_files = sorted(
        [
            *(root / "allowlist").glob("*.json"),
            *(root / "onnx" / "known-ops").glob("*.json"),
            *(root / "callables").glob("*.json"),
        ]
    )
    rels = [f"{path.parent.name}/{path.name}" for path in paths]
    version = _indexed_version(paths, data_files)
    texts: list[tuple[str, str]] | None = None
    if version is None:
        texts = [
            (rel, path.read_text(encoding="utf-8")) for rel, path in zip(rels, paths, strict=True)
        ]
        version = _content_version(texts, data_files)
        _write_index(paths, data_files, version)
    checked = _checked_rules(rels, version)
    if checked is not None:
        return RuleSet(checked, version, load_allowlist(str(root), version))
    rules: list[Rule] = []
    parsed = _parsed_rule_data(rels, paths, texts, version)
    callables: Callables | None = None
    if (root / "callables").is_dir():
        from .callables import CallablesError, load_callables  # only when parsing the files

        try:
            callables = load_callables(str(root))
        except CallablesError as exc:
            raise RuleError(str(exc)) from None
    for path, rel, data in zip(paths, rels, parsed, strict=True):
        rule = parse_rule(data, rel, callables)
        if path.name != f"{rule.id}-{rule.name}.yaml":
            raise RuleError(f"{rel}: file name must be {rule.id}-{rule.name}.yaml")
        if path.parent.name != FAMILY_DIRS[rule.family]:
            raise RuleError(
                f"{rel}: family {rule.family} rules live in {FAMILY_DIRS[rule.family]}/"
            )
        rules.append(rule)
    ids = [r.id for r in rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RuleError(f"duplicate rule ids: {', '.join(dupes)}")
    known = set(ids)
    for r in rules:
        for other in r.not_matched_by:
            if other not in known:
                raise RuleError(f"{r.source}: names unknown rule {other}")
    rules.sort(key=lambda r: r.id)
    _write_checked_rules(rels, version, rules)
    return RuleSet(tuple(rules), version, load_allowlist(str(root), version))


def _checked_name(rels: list[str], version: str) -> str:
    """Named by the rules' content version and the files' places (a rule moved to another
    family folder must be checked again)."""
    return f"rules-checked-{version}-{zlib.crc32(chr(10).join(rels).encode()):08x}.json"


def _checked_rules(rels: list[str], version: str) -> tuple[Rule, ...] | None:
    """The rules an earlier start parsed and checked from these same files, built without
    parsing the callables list or checking again (a tiny scan's start-up: ~4 ms instead of
    ~20 ms). JSON data only; anything unexpected in it means: parse the files."""
    text = read_cache(_checked_name(rels, version))
    if text is None:
        return None
    try:
        out = []
        for source, raw, globs in json.loads(text):
            pattern = raw["match"].get("regex")
            regex = re.compile(pattern) if pattern else None
            severity = Severity.parse(str(raw["severity"]))
            out.append(_build_rule(raw, str(source), severity, regex, [str(g) for g in globs]))
    except (ValueError, TypeError, KeyError, AttributeError, re.error):
        return None
    return tuple(out)


def _write_checked_rules(rels: list[str], version: str, rules: list[Rule]) -> None:
    records = [[r.source, r.raw, r.glob.patterns() if r.glob else []] for r in rules]
    with contextlib.suppress(TypeError, ValueError):
        write_cache(_checked_name(rels, version), json.dumps(records))


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def glob_match(name: str, pattern: str) -> bool:
    """``fnmatch`` with ``*`` and ``?`` as the only wildcards: ``[`` and ``]`` are literal,
    since model file names carry them (``model[v1].pkl`` names that file, not ``model1.pkl``)."""
    from fnmatch import fnmatchcase

    return fnmatchcase(name, pattern.replace("[", "[[]"))


def path_matches(pattern: str, path: str, root: str = "") -> bool:
    """Whether a per-path glob covers ``path``, the same from any working directory: a glob
    with a ``/`` is matched against the path relative to ``root`` (the config file's folder;
    a file outside it never matches), one without against the file name, an absolute glob
    against the absolute path. ``*`` crosses ``/`` (``vendor/*`` covers the whole tree);
    brackets are literal (:func:`glob_match`)."""
    full = os.path.abspath(path)
    if os.path.isabs(pattern):
        return glob_match(full, os.path.normpath(pattern))
    if "/" not in pattern:
        return glob_match(os.path.basename(full), pattern)
    base = os.path.abspath(root or os.getcwd())
    # as named, and with the folders' links resolved (a cwd or config reached through a link)
    real = os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full))
    for candidate, anchor in ((full, base), (real, os.path.realpath(base))):
        rel = os.path.relpath(candidate, anchor)
        if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
            return glob_match(rel.replace(os.sep, "/"), pattern.removeprefix("./"))
    return False


def fingerprint_path(path: str) -> str:
    """The path as a fingerprint sees it: one file however the scan named it. A file inside
    the working directory is taken relative to it (``models/x``, ``./models/x``,
    ``models//x`` and ``$PWD/models/x`` are one), any other by its normalised absolute path;
    ``/`` separators; an ``hf://`` address as it is. Links are not resolved: the path is the
    one the user scans, so a baseline matches when the same relative path is scanned from the
    same place, in this checkout or a copy of it."""
    if "://" in path:
        return path
    try:
        full = os.path.abspath(path)
        rel = os.path.relpath(full, os.getcwd())
    except (OSError, ValueError):  # no working directory any more; another drive
        return os.path.normpath(path).replace(os.sep, "/")
    if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
        return rel.replace(os.sep, "/")
    return full.replace(os.sep, "/")


def fingerprint(rule_id: str, where: Location, value: str) -> str:
    """Stable across re-saves: no byte offsets, only rule, path (see
    :func:`fingerprint_path`), member, key and value."""
    import hashlib

    path = fingerprint_path(where.path)
    text = "\0".join((rule_id, path, where.member or "", where.key or "", value))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def render_message(rule: Rule, fact: Fact) -> str:
    values = _Defaults(fact.detail_dict())
    values["value"] = fact.value
    values["kind"] = fact.kind
    called = values.get("called", "0")
    if fact.kind.startswith("pickle.") and called not in ("", "0"):
        values["use"] = f"; loading calls it: `{values.get('call', '')}`"
    elif fact.kind == "pickle.global":
        values["use"] = "; loading imports it"
    try:
        return rule.message.format_map(values)
    except (ValueError, IndexError, KeyError, AttributeError):
        return rule.message


@dataclass(frozen=True)
class Policy:
    """The active rule set after config: selection, severity remaps, the allowlist extended
    by the user's exact ``allow-globals``."""

    rules: tuple[Rule, ...]
    allowlist: Allowlist
    severity: dict[str, Severity] = field(default_factory=dict)
    per_path_ignore: tuple[tuple[str, frozenset[str]], ...] = ()
    path_root: str = ""  # what per-path globs are relative to ("" = the working directory)

    @classmethod
    def build(
        cls,
        ruleset: RuleSet,
        select: Iterable[str] = (),
        ignore: Iterable[str] = (),
        severity: dict[str, Severity] | None = None,
        extra_allowlist: Sequence[str] = (),
        per_path_ignore: Sequence[tuple[str, Sequence[str]]] = (),
        path_root: str = "",
    ) -> Policy:
        """AllowlistError when an ``extra_allowlist`` entry is not an exact name."""
        sel = [s.upper() for s in select]
        ign = [s.upper() for s in ignore]
        chosen = []
        for r in ruleset.rules:
            if sel and not any(r.id.startswith(s) for s in sel):
                continue
            if any(r.id.startswith(s) for s in ign):
                continue
            chosen.append(r)
        return cls(
            tuple(chosen),
            ruleset.allowlist.extended(tuple(extra_allowlist)),
            dict(severity or {}),
            tuple((p, frozenset(i.upper() for i in ids)) for p, ids in per_path_ignore),
            path_root,
        )

    def matching_rules(self, fact: Fact) -> list[Rule]:
        hits = {r.id: r for r in self.rules if r.matches(fact, self.allowlist)}
        return [r for r in hits.values() if not any(o in hits for o in r.not_matched_by)]

    def findings(self, facts: Iterable[Fact]) -> list[Finding]:
        out: list[Finding] = []
        seen: set[str] = set()
        for fact in facts:
            for rule in self.matching_rules(fact):
                if self._ignored(rule.id, fact.location.path):
                    continue
                fp = fingerprint(rule.id, fact.location, fact.value)
                if fp in seen:
                    continue
                seen.add(fp)
                out.append(
                    Finding(
                        rule.id,
                        rule.name,
                        self.severity.get(rule.id, rule.severity),
                        render_message(rule, fact),
                        fact.location,
                        fp,
                        fact.evidence,
                    )
                )
        out.sort(key=lambda f: (-f.severity, f.location.member or "", f.rule))
        return out

    def _ignored(self, rule_id: str, path: str) -> bool:
        return any(
            any(rule_id.startswith(i) for i in ids) and path_matches(pat, path, self.path_root)
            for pat, ids in self.per_path_ignore
        )

    def would_flag(self, facts: Iterable[Fact]) -> bool:
        """True when any of these facts gives a finding (evidence is built only then)."""
        return any(self.matching_rules(fact) for fact in facts)
