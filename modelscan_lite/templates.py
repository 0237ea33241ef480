"""Chat-template (Jinja) analysis, shared by GGUF ``tokenizer.chat_template[.<name>]`` and the
Hugging Face files that carry templates (``tokenizer_config.json``, ``chat_template.jinja``,
``chat_template.json``, ``additional_chat_templates/*.jinja``, ``processor_config.json``, and
Jinja strings inside other JSON/YAML configs).

The template is *parsed* with Jinja's own parser (the same grammar the loaders use) and its
syntax tree is walked; it is never rendered, and no environment that could render it is built.

Two analyses run on the tree:

* **Escapes** (J101-J105). Server-side template injection in chat templates (CVE-2024-34359 and
  its kin in vLLM and SGLang) needs a path from the template's data to Python internals: a
  dunder attribute, a Jinja global that leaks ``__globals__`` (``cycler``, ``joiner``,
  ``lipsum``), an attribute name computed at render time, or a call of something that is not a
  plain string/dict method. Names are constant-folded, boundedly, through ``~``, ``+``, ``*``,
  ``%``, ``|format``, ``.format()``, ``|join``, ``|replace``, ``|reverse``, slicing, ``|list``,
  ``|map``, ``set`` variables and namespace attributes, so a split or reversed ``__class__`` is
  seen. A name that cannot be folded and is looked up on something that is not message data is
  *dynamic* (J102).
* **Hidden instructions** (J201, J203, J204), judged by the template's *structure*, not by
  phrases: which fixed text reaches the model, and under which conditions. Legit templates emit
  plenty of fixed prose (system prompts, tool instructions, safety policies, in many languages),
  often only when tools are present or on the last turn; what they never do is emit prose only
  when a user/tool message contains certain *words*, only after turn N, only on some date or at
  random, or send the model to an outside address from the tools branch.
"""

from __future__ import annotations

import functools
import os
import re
import string
import unicodedata
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .callables import PURE_STR_METHODS
from .model import Location

if TYPE_CHECKING:
    from .formats.base import Context

MAX_TEMPLATE = 1 << 20
DUNDER = re.compile(r"__[A-Za-z0-9_]+__|^_[A-Za-z]")
# Attributes that only exist on interpreter objects (frames, code, functions, modules), so
# reaching them means walking Python internals. Words that are plausible data keys
# (`system`, `open`, `os`...) are left out: real templates use `ns.system`-like names, and
# every escape chain also passes through a dunder, which J101 reports.
# fmt: off
INTERNAL_ATTRS = frozenset({
    "mro", "func_globals", "func_code", "f_globals", "f_locals", "f_builtins", "f_back",
    "f_code", "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "tb_frame", "tb_next",
    "co_code", "im_func", "im_self", "im_class", "popen", "import_module", "load_module",
    "get_data", "subprocess", "builtins",
})
# fmt: on
RISKY_GLOBALS = frozenset(
    {
        "cycler",
        "joiner",
        "lipsum",
        "self",
        "config",
        "request",
        "url_for",
        "get_flashed_messages",
        "session",
        "g",
        "environ",
    }
)
# Jinja globals and renderer helpers whose values are objects, not message data.
NON_DATA_NAMES = RISKY_GLOBALS | {"namespace", "range", "dict", "loop", "caller", "varargs"}
# Methods the 171 real templates in tests/data/chat_templates call (scripts: see the test).
CORPUS_METHODS = frozenset(
    {
        "split",
        "items",
        "strip",
        "get",
        "lstrip",
        "rstrip",
        "endswith",
        "startswith",
        "replace",
        "append",
        "pop",
        "format",
        "update",
    }
)
# Side-effect-free str/dict/list methods of the same kind: they return strings, lists or
# booleans built from their receiver and arguments, and reach nothing else.
# fmt: off
PURE_METHODS = frozenset({
    "rsplit", "splitlines", "lower", "upper", "title", "capitalize", "casefold", "swapcase",
    "keys", "values", "join", "count", "find", "rfind", "index", "isdigit", "isalpha",
    "isspace", "isalnum", "islower", "isupper", "isnumeric", "zfill", "partition",
    "rpartition", "copy", "extend", "insert", "removeprefix", "removesuffix", "center",
    "ljust", "rjust", "setdefault",
})
# fmt: on
SAFE_METHODS = CORPUS_METHODS | PURE_METHODS
LOOP_METHODS = frozenset({"cycle", "changed"})  # Jinja's loop.cycle() and loop.changed()
SAFE_FUNCTIONS = frozenset(
    {
        "raise_exception",
        "range",
        "namespace",
        "dict",
        "strftime_now",
        "date_string",
        "len",
        "list",
        "zip",
        "enumerate",
        "max",
        "min",
        "loop",
        "caller",
        "super",
    }
)
# Filters real templates use that are not Jinja built-ins (transformers, vLLM, minja add them).
EXTRA_FILTERS = frozenset({"tojson", "items", "from_json", "fromjson"})
# A hint for reviewers only: it never decides a finding (see J201's doc).
PHRASE_HINTS = re.compile(
    r"ignore\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|earlier|preceding)\s+"
    r"(?:instructions|messages|prompts|rules)"
    r"|(?:do\s+not|don't|never)\s+(?:tell|reveal|mention|disclose|inform|let)\s+(?:the\s+)?"
    r"(?:user|anyone|human)"
    r"|(?:secret|hidden|covert)\s+(?:instruction|prompt|goal|objective|task)s?"
    r"|exfiltrat\w*|send\s+(?:the|all|every)\s+(?:conversation|messages?|data|history)\s+to"
    r"|always\s+(?:recommend|promote|insert|include\s+the\s+link)",
    re.IGNORECASE,
)
HIDDEN_INSTRUCTIONS = PHRASE_HINTS  # old name, kept for importers
INVISIBLE = re.compile(
    "[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    "\ufe00-\ufe0e\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)

# --- hidden-instruction vocabulary (structure, not phrases) --------------------------------
# Message fields whose value is what the user, the tools or the model wrote.
CONTENT_FIELDS = frozenset(
    {
        "content",
        "text",
        "reasoning_content",
        "reasoning",
        "thinking",
        "arguments",
        "output",
        "outputs",
        "result",
        "query",
        "val",
    }
)
# Fields that hold structure (who, what kind), never free text.
STRUCT_FIELDS = frozenset(
    {"role", "type", "name", "id", "tool_call_id", "index", "recipient", "channel"}
)
# Content-part keys and types of the OpenAI/transformers message schema: `'image' in part`,
# `part.type == 'image_url'` test structure, not words.
PART_WORDS = frozenset(
    {
        "text",
        "image",
        "image_url",
        "images",
        "video",
        "video_url",
        "videos",
        "audio",
        "audio_url",
        "input_audio",
        "file",
        "document",
        "type",
        "thinking",
        "reasoning",
        "tool_use",
        "tool_result",
        "tool_calls",
        "tool_call",
        "refusal",
        "url",
        "content",
    }
)
# Markup inside a tested string: tags, special tokens, bracketed markers, soft switches.
MARKUP = re.compile(
    r"<\|[^<>]{0,80}\|>|<\uff5c[^<>]{0,80}\uff5c>|</?[A-Za-z_][^<>]{0,80}>|<[^<>\s]{0,40}>"
    r"|\[/?[A-Za-z_]{1,30}\]|\[[A-Z][A-Z0-9 _-]{0,40}\]|(?<![\w/])/[A-Za-z_]{1,30}\b|\{\{|\}\}"
    r"|\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b"
)
DATE_NAMES = frozenset({"date_string", "strftime_now", "current_date", "today", "now"})
LATE_TURN = 3  # `loop.index > N` with N >= this selects late turns only
ADDRESS = re.compile(
    r"\b(?:https?|ftp|wss?|file)://[^\s\"'<>]+"
    r"|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"
    r"|\b(?:\d{1,3}\.){3}\d{1,3}\b"
    r"|\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|ru|cn|xyz|top|info|biz|example|site|online|app|dev)"
    r"(?:/[^\s\"'<>]*)?\b",
    re.IGNORECASE,
)
FOLD_MAX = 16  # candidate values per folded expression
FOLD_LEN = 4096  # longest folded string kept
NODE_BUDGET = 200_000  # nodes visited per analysis pass
MAX_EMITTED = 20_000  # distinct (text, conditions) pairs kept per template or macro


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    """A parser for the chat-template dialect: Jinja with loop controls and transformers'
    ``{% generation %}`` block. Only its ``parse`` method is ever used."""
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationBlock(Extension):
        tags = {"generation"}  # noqa: RUF012 - Jinja's extension API

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    return ImmutableSandboxedEnvironment(extensions=[loopcontrols, GenerationBlock])


def _nodes() -> Any:
    from jinja2 import nodes

    return nodes


class _Budget(Exception):
    """The analysis visited more nodes than NODE_BUDGET."""


# --- constant folding --------------------------------------------------------------------


def _var_key(node: Any) -> str | None:
    """`x` for a Name, `ns.attr` for a namespace attribute (read or `set` target)."""
    n = _nodes()
    if isinstance(node, n.Name):
        return str(node.name)
    if isinstance(node, n.NSRef):
        return f"{node.name}.{node.attr}"
    if isinstance(node, n.Getattr) and isinstance(node.node, n.Name):
        return f"{node.node.name}.{node.attr}"
    return None


_FORMAT_WIDTH = re.compile(r"\d{4,}")


def _safe_percent(fmt: str, args: Any) -> str | None:
    if _FORMAT_WIDTH.search(fmt):
        return None
    try:
        out = fmt % args
    except (TypeError, ValueError, KeyError, OverflowError):
        return None
    return out if len(out) <= FOLD_LEN else None


def _format_fields(fmt: str) -> list[str] | None:
    """The field names of a ``str.format`` string, or None when it does not parse."""
    try:
        return [f for _, f, _, _ in string.Formatter().parse(fmt) if f is not None]
    except (ValueError, IndexError):
        return None


def _safe_format(fmt: str, args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """``fmt.format(...)`` only when every field is a plain index or name (no attribute or
    item access, no huge widths): nothing of our own objects is reached."""
    fields = _format_fields(fmt)
    if fields is None or _FORMAT_WIDTH.search(fmt):
        return None
    if any(not re.fullmatch(r"\w*", f) for f in fields):
        return None
    try:
        out = fmt.format(*args, **kwargs)
    except (IndexError, KeyError, ValueError, TypeError):
        return None
    return out if len(out) <= FOLD_LEN else None


class _Folder:
    """Bounded constant folding of Jinja expressions to the set of values they can take."""

    def __init__(self) -> None:
        self.env: dict[str, list[Any]] = {}
        self.poisoned: set[str] = set()  # assigned, at least once, a value we cannot fold

    def bind(self, key: str, values: list[Any] | None) -> None:
        if values is None:
            self.poisoned.add(key)
            self.env.pop(key, None)
            return
        if key in self.poisoned:
            return
        old = self.env.setdefault(key, [])
        for v in values:
            if len(old) < FOLD_MAX and v not in old:
                old.append(v)

    def fold(self, node: Any, depth: int = 0) -> list[Any] | None:
        """Every value ``node`` can evaluate to, or None when one is not a constant."""
        if depth > 60:
            return None
        try:
            out = self._fold(node, depth + 1)
        except (TypeError, ValueError, IndexError, KeyError, OverflowError, AttributeError):
            return None
        if out is None:
            return None
        kept = [v for v in out if not isinstance(v, str) or len(v) <= FOLD_LEN]
        return kept[:FOLD_MAX] if kept else None

    def fold_str(self, node: Any) -> list[str] | None:
        values = self.fold(node)
        if values is None:
            return None
        strs = [v for v in values if isinstance(v, str)]
        return strs or None

    def _product(self, nodes_: list[Any], depth: int) -> list[list[Any]] | None:
        combos: list[list[Any]] = [[]]
        for child in nodes_:
            values = self.fold(child, depth)
            if values is None:
                return None
            combos = [[*c, v] for c in combos for v in values][:FOLD_MAX]
        return combos

    def _fold(self, node: Any, depth: int) -> list[Any] | None:
        n = _nodes()
        if isinstance(node, n.Const):
            return [node.value]
        if isinstance(node, (n.List, n.Tuple)):
            combos = self._product(list(node.items), depth)
            if combos is None:
                return None
            return [c if isinstance(node, n.List) else tuple(c) for c in combos]
        if isinstance(node, n.Name) or (
            isinstance(node, n.Getattr) and isinstance(node.node, n.Name)
        ):
            key = _var_key(node)
            return list(self.env[key]) if key in self.env else None
        if isinstance(node, n.Concat):
            combos = self._product(list(node.nodes), depth)
            if combos is None:
                return None
            return ["".join(str(p) for p in c) for c in combos]
        if isinstance(node, (n.Add, n.Mul, n.Mod, n.Sub)):
            pairs = self._product([node.left, node.right], depth)
            if pairs is None:
                return None
            out = []
            for left, right in pairs:
                if isinstance(node, n.Add):
                    out.append(left + right)
                elif isinstance(node, n.Sub):
                    out.append(left - right)
                elif isinstance(node, n.Mul):
                    size = len(left) if isinstance(left, (str, list, tuple)) else 1
                    if isinstance(right, int) and right * size > FOLD_LEN:
                        return None
                    out.append(left * right)
                else:
                    if not isinstance(left, str):
                        return None
                    res = _safe_percent(left, right)
                    if res is None:
                        return None
                    out.append(res)
            return out
        if isinstance(node, n.Neg):
            values = self.fold(node.node, depth)
            return [-v for v in values] if values is not None else None
        if isinstance(node, n.CondExpr):
            a = self.fold(node.expr1, depth)
            b = self.fold(node.expr2, depth) if node.expr2 is not None else [""]
            return a + b if a is not None and b is not None else None
        if isinstance(node, n.Getitem):
            bases = self.fold(node.node, depth)
            if bases is None:
                return None
            if isinstance(node.arg, n.Slice):
                parts = [node.arg.start, node.arg.stop, node.arg.step]
                bounds = self._product([p or n.Const(None) for p in parts], depth)
                if bounds is None:
                    return None
                return [b[slice(*s)] for b in bases for s in bounds][:FOLD_MAX]
            keys = self.fold(node.arg, depth)
            if keys is None:
                return None
            return [b[k] for b in bases for k in keys if isinstance(b, (str, list, tuple))]
        if isinstance(node, n.Filter):
            return self._filter(node, depth)
        if isinstance(node, n.Call) and isinstance(node.node, n.Getattr):
            return self._method(node, depth)
        return None

    def _filter(self, node: Any, depth: int) -> list[Any] | None:
        if node.node is None:
            return None
        bases = self.fold(node.node, depth)
        args = self._product(list(node.args), depth)
        if bases is None or args is None:
            return None
        out: list[Any] = []
        name = node.name
        for base in bases:
            for a in args:
                if name == "join":
                    sep = a[0] if a else ""
                    out.append(str(sep).join(str(x) for x in base))
                elif name == "format":
                    res = _safe_percent(base, tuple(a) if len(a) != 1 else a[0])
                    if res is None:
                        return None
                    out.append(res)
                elif name == "replace":
                    out.append(str(base).replace(str(a[0]), str(a[1])))
                elif name == "reverse":
                    out.append(base[::-1] if isinstance(base, str) else list(reversed(base)))
                elif name in ("lower", "upper", "title", "capitalize"):
                    out.append(getattr(str(base), name)())
                elif name == "trim":
                    out.append(str(base).strip())
                elif name in ("string", "safe", "e", "escape"):
                    out.append(base if name in ("safe", "e", "escape") else str(base))
                elif name == "list":
                    out.append(list(base))
                elif name in ("first", "last"):
                    out.append(base[0] if name == "first" else base[-1])
                elif name == "sort":
                    out.append(sorted(base))
                elif name == "unique":
                    out.append(list(dict.fromkeys(base)))
                elif name == "int":
                    out.append(int(base))
                elif name == "length":
                    out.append(len(base))
                elif name == "map" and a and isinstance(a[0], str):
                    mapped = []
                    for item in base:
                        fake = _nodes().Filter(_nodes().Const(item), a[0], [], [], None, None)
                        value = self._filter(fake, depth + 1)
                        if value is None:
                            return None
                        mapped.append(value[0])
                    out.append(mapped)
                else:
                    return None
        return out[:FOLD_MAX]

    def _method(self, node: Any, depth: int) -> list[Any] | None:
        attr = node.node.attr
        if attr not in PURE_STR_METHODS:
            return None
        bases = self.fold(node.node.node, depth)
        args = self._product(list(node.args), depth)
        kw_nodes = [k.value for k in node.kwargs]
        kws = self._product(kw_nodes, depth)
        if bases is None or args is None or kws is None:
            return None
        out: list[Any] = []
        for base in bases:
            if not isinstance(base, str):
                return None
            for a in args:
                for kv in kws:
                    if attr == "format":
                        keys = [k.key for k in node.kwargs]
                        res = _safe_format(base, a, dict(zip(keys, kv, strict=True)))
                        if res is None:
                            return None
                        out.append(res)
                    elif attr == "join":
                        out.append(base.join(str(x) for x in a[0]))
                    else:
                        out.append(getattr(base, attr)(*a))
        return out[:FOLD_MAX]


# --- entry point -------------------------------------------------------------------------


def scan_template(source: str, where: Location, ctx: Context, *, embedded: bool = False) -> None:
    """Emit ``template.*`` facts for one chat template. ``embedded`` marks a string found
    under some other key of a config because it contains Jinja markup: it is analysed only
    when it parses as Jinja (a string that does not parse is not a template any renderer
    would load, so its parse error is not reported)."""
    if len(source) > MAX_TEMPLATE:
        ctx.emit(
            "template.unanalysed",
            "too-large",
            where,
            message=f"template of {len(source)} characters is over the 1 MiB limit",
        )
        return
    try:
        from jinja2 import TemplateSyntaxError

        tree = _environment().parse(source)
    except ImportError:
        ctx.emit(
            "dependency.missing",
            "jinja2",
            where,
            detected="chat template",
            fix="pip install jinja2",
        )
        return
    except TemplateSyntaxError as exc:
        if embedded:
            return
        _invisible(source, where, ctx)
        ctx.emit(
            "template.unanalysed",
            "syntax",
            where,
            message=f"Jinja cannot parse it (line {exc.lineno}: {exc.message})",
        )
        return
    except (RecursionError, MemoryError, ValueError) as exc:
        ctx.emit(
            "template.unanalysed",
            "parser",
            where,
            message=f"Jinja's parser gave up: {type(exc).__name__}",
        )
        return
    _invisible(source, where, ctx)
    try:
        folder = _fold_assignments(tree)
        _Walker(where, ctx, folder).walk(tree)
        _Flow(where, ctx, folder).run(tree)
    except (RecursionError, _Budget) as exc:
        ctx.emit(
            "template.unanalysed",
            "analysis-budget",
            where,
            message="the template is too deep, too large or too slow to analyse "
            f"({type(exc).__name__})",
        )


def _invisible(source: str, where: Location, ctx: Context) -> None:
    for m in INVISIBLE.finditer(source):
        ctx.emit(
            "template.invisible",
            f"U+{ord(m.group()):04X}",
            where,
            message=f"invisible character U+{ord(m.group()):04X} at character {m.start()}",
            evidence=repr(source[max(0, m.start() - 40) : m.end() + 40]),
        )
        break


def _fold_assignments(tree: Any) -> _Folder:
    """Bind every ``set`` variable (and namespace attribute) to the constants it can hold,
    in document order; a variable assigned several times keeps every candidate, and one
    assigned anything that does not fold (a loop accumulator, message data) folds to nothing."""
    n = _nodes()
    folder = _Folder()
    for last in (False, True):  # the first round resolves uses that precede a later binding
        for node in tree.find_all(n.Assign):
            key = _var_key(node.target)
            if key is None:
                continue
            value = node.node
            if (
                isinstance(value, n.Call)
                and isinstance(value.node, n.Name)
                and value.node.name == "namespace"
            ):
                for kw in value.kwargs:
                    values = folder.fold(kw.value)
                    if values is not None or last:
                        folder.bind(f"{key}.{kw.key}", values)
                continue
            values = folder.fold(value)
            if values is not None or last:
                folder.bind(key, values)
    return folder


# --- escapes: J101-J105 ------------------------------------------------------------------


def _show(node: Any, limit: int = 120) -> str:
    """A short Jinja-like rendering of an expression, for messages and evidence."""
    text = _render(node, 0)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _render(node: Any, depth: int) -> str:
    n = _nodes()
    if depth > 12:
        return "..."
    d = depth + 1
    if isinstance(node, n.Const):
        return repr(node.value)
    if isinstance(node, n.Name):
        return str(node.name)
    if isinstance(node, n.Getattr):
        return f"{_render(node.node, d)}.{node.attr}"
    if isinstance(node, n.Getitem):
        if isinstance(node.arg, n.Slice):
            parts = [node.arg.start, node.arg.stop, node.arg.step]
            inner = ":".join("" if p is None else _render(p, d) for p in parts)
            return f"{_render(node.node, d)}[{inner}]"
        return f"{_render(node.node, d)}[{_render(node.arg, d)}]"
    if isinstance(node, n.Filter):
        args = ", ".join(
            [_render(a, d) for a in node.args]
            + [f"{k.key}={_render(k.value, d)}" for k in node.kwargs]
        )
        base = _render(node.node, d) if node.node is not None else ""
        return f"{base}|{node.name}" + (f"({args})" if args else "")
    if isinstance(node, n.Test):
        args = ", ".join(_render(a, d) for a in node.args)
        return f"{_render(node.node, d)} is {node.name}" + (f"({args})" if args else "")
    if isinstance(node, n.Call):
        args = ", ".join(
            [_render(a, d) for a in node.args]
            + [f"{k.key}={_render(k.value, d)}" for k in node.kwargs]
        )
        return f"{_render(node.node, d)}({args})"
    if isinstance(node, n.Compare):
        ops = {"eq": "==", "ne": "!=", "gt": ">", "gteq": ">=", "lt": "<", "lteq": "<="}
        ops.update({"in": "in", "notin": "not in"})
        text = _render(node.expr, d)
        for op in node.ops:
            text += f" {ops.get(op.op, op.op)} {_render(op.expr, d)}"
        return text
    if isinstance(node, n.Not):
        return f"not {_render(node.node, d)}"
    if isinstance(node, (n.And, n.Or)):
        word = "and" if isinstance(node, n.And) else "or"
        return f"{_render(node.left, d)} {word} {_render(node.right, d)}"
    if isinstance(node, n.BinExpr):
        return f"{_render(node.left, d)} {node.operator} {_render(node.right, d)}"
    if isinstance(node, n.Concat):
        return " ~ ".join(_render(c, d) for c in node.nodes)
    if isinstance(node, (n.List, n.Tuple)):
        return "[" + ", ".join(_render(c, d) for c in node.items) + "]"
    if isinstance(node, n.CondExpr):
        other = _render(node.expr2, d) if node.expr2 is not None else "''"
        return f"{_render(node.expr1, d)} if {_render(node.test, d)} else {other}"
    if isinstance(node, n.Neg):
        return f"-{_render(node.node, d)}"
    return type(node).__name__


def _is_intlike(node: Any) -> bool:
    """Index arithmetic: ints, loop counters, lengths, slices; never a string name."""
    n = _nodes()
    if isinstance(node, n.Const):
        return isinstance(node.value, int)
    if isinstance(node, n.Slice):
        return True
    if isinstance(node, (n.Neg, n.Pos)):
        return _is_intlike(node.node)
    if isinstance(node, (n.Sub, n.FloorDiv, n.Div, n.Pow)):
        return True
    if isinstance(node, (n.Add, n.Mul, n.Mod)):
        return _is_intlike(node.left) or _is_intlike(node.right)
    if isinstance(node, n.Filter):
        return node.name in ("length", "count", "int", "abs", "round")
    if isinstance(node, n.Getattr) and isinstance(node.node, n.Name) and node.node.name == "loop":
        return node.attr in ("index", "index0", "revindex", "revindex0", "length", "depth")
    return False


_STRING_FILTERS = frozenset(
    {
        "format",
        "join",
        "replace",
        "string",
        "reverse",
        "lower",
        "upper",
        "title",
        "capitalize",
        "trim",
        "urlencode",
        "first",
        "last",
        "list",
        "center",
        "striptags",
        "wordwrap",
        "truncate",
        "e",
        "escape",
        "forceescape",
        "safe",
        "batch",
        "slice",
        "sum",
        "random",
    }
)
_STRING_METHODS = frozenset(
    {"format", "join", "replace", "lower", "upper", "strip", "lstrip", "rstrip", "title"}
)


class _Walker:
    def __init__(self, where: Location, ctx: Context, folder: _Folder) -> None:
        self.where = where
        self.ctx = ctx
        self.folder = folder
        self.defined: set[str] = set()
        self.macros: set[str] = set()
        self.built: set[str] = set()  # variables assigned a string built at render time
        self.nondata: set[str] = set()  # variables bound to non-data objects
        self.namespaces: set[str] = set()  # variables bound to namespace()
        self.seen: set[tuple[str, str]] = set()
        self.visited = 0

    def emit(self, kind: str, value: str, message: str, node: Any = None) -> None:
        if (kind, value) in self.seen:
            return
        self.seen.add((kind, value))
        evidence = None
        if node is not None:
            evidence = f"line {getattr(node, 'lineno', '?')}: {_show(node, 200)}"
        self.ctx.emit(kind, value, self.where, evidence=evidence, message=message)

    def walk(self, tree: Any) -> None:
        n = _nodes()
        for node in tree.find_all((n.Assign, n.AssignBlock, n.For, n.Macro, n.CallBlock, n.With)):
            for target in node.find_all(n.Name):
                if target.ctx in ("store", "param"):
                    self.defined.add(target.name)
            if isinstance(node, n.Macro):
                self.macros.add(node.name)
        for _ in range(2):
            for node in tree.find_all(n.Assign):
                key = _var_key(node.target)
                if key is None:
                    continue
                if self._builds_string(node.node) and self.folder.fold_str(node.node) is None:
                    self.built.add(key)
                value = node.node
                if (
                    isinstance(value, n.Call)
                    and isinstance(value.node, n.Name)
                    and value.node.name == "namespace"
                ):
                    self.namespaces.add(key)
                elif not self._is_data(value):
                    self.nondata.add(key)
            for node in tree.find_all(n.For):
                if not self._is_data(node.iter):
                    for name in _target_names(node.target):
                        self.nondata.add(name)
        for node in tree.find_all(n.Node):
            self.visited += 1
            if self.visited > NODE_BUDGET or (
                self.visited % 512 == 0 and self.ctx.deadline.expired()
            ):
                raise _Budget
            self.visit(node, n)

    # what a value is -----------------------------------------------------------------
    def _builds_string(self, node: Any) -> bool:
        """True for expressions that compute a string at render time from pieces."""
        n = _nodes()
        if isinstance(node, (n.Concat, n.Mod)):
            return True
        if isinstance(node, n.Mul):
            return not (_is_intlike(node.left) and _is_intlike(node.right))
        if isinstance(node, n.Add):
            return (
                self._builds_string(node.left)
                or self._builds_string(node.right)
                or self.folder.fold_str(node.left) is not None
                or self.folder.fold_str(node.right) is not None
            )
        if isinstance(node, n.Filter):
            return node.name in _STRING_FILTERS or (
                node.name == "map" and node.node is not None and self._builds_string(node.node)
            )
        if isinstance(node, n.Getitem):
            return isinstance(node.arg, n.Slice) and self._builds_string(node.node)
        if isinstance(node, n.CondExpr):
            return self._builds_string(node.expr1) or (
                node.expr2 is not None and self._builds_string(node.expr2)
            )
        if isinstance(node, (n.Name, n.Getattr)):
            key = _var_key(node)
            return key is not None and key in self.built
        return (
            isinstance(node, n.Call)
            and isinstance(node.node, n.Getattr)
            and node.node.attr in _STRING_METHODS
        )

    def _is_data(self, node: Any) -> bool:
        """True when ``node`` is message data: rooted in the render context (messages,
        tools, user variables), a loop variable over it, or a literal; False for Jinja
        globals, namespaces, ``loop``, ``|attr`` results and anything reached through them."""
        n = _nodes()
        for _ in range(200):
            if isinstance(node, n.Name):
                if node.name in self.nondata or node.name in self.namespaces:
                    return False
                return node.name not in NON_DATA_NAMES or node.name in self.defined - {
                    "loop",
                    "caller",
                }
            if isinstance(node, n.Getattr):
                key = _var_key(node)
                if key is not None and key in self.nondata:
                    return False
                if isinstance(node.node, n.Name) and node.node.name in self.namespaces:
                    return True  # a namespace attribute holds what the template put there
                if DUNDER.search(node.attr) or node.attr in INTERNAL_ATTRS:
                    return False
                node = node.node
            elif isinstance(node, n.Getitem):
                node = node.node
            elif isinstance(node, n.Filter):
                if node.name == "attr" or node.node is None:
                    return False
                node = node.node
            elif isinstance(node, n.Call):
                if isinstance(node.node, n.Name):
                    return node.node.name in self.macros or node.node.name not in NON_DATA_NAMES
                if isinstance(node.node, n.Getattr) and node.node.attr in SAFE_METHODS:
                    node = node.node.node
                else:
                    return False
            elif isinstance(node, (n.Const, n.List, n.Tuple, n.Dict)):
                return True
            else:
                return True  # expressions (comparisons, arithmetic) give plain values
        return False

    # the checks ------------------------------------------------------------------------
    def visit(self, node: Any, n: Any) -> None:
        if isinstance(node, n.Getattr):
            self._name(node.attr, f"`.{node.attr}`", node)
        elif isinstance(node, n.Getitem):
            self._subscript(node, n)
        elif isinstance(node, n.Filter):
            self._filter(node, n)
        elif isinstance(node, n.Name):
            if node.name in RISKY_GLOBALS and node.name not in self.defined:
                self.emit(
                    "template.internals",
                    node.name,
                    f"`{node.name}` is a Jinja global whose attributes reach Python's globals",
                    node,
                )
        elif isinstance(node, n.Call):
            self._call(node, n)
        elif isinstance(node, n.For):
            self._for(node, n)
        elif isinstance(node, (n.Include, n.Import, n.FromImport, n.Extends)):
            word = type(node).__name__.lower()
            self.emit("template.include", word, f"`{{% {word} %}}` loads another template", node)
        elif isinstance(node, (n.TemplateData, n.Const)):
            text = node.data if isinstance(node, n.TemplateData) else node.value
            if isinstance(text, str) and "__" in text:
                hit = DUNDER.search(text)
                if hit:
                    self._name(hit.group(), f"the string {text[:40]!r}", node)
        elif isinstance(node, (n.Concat, n.Add, n.Mod, n.Mul, n.Filter, n.Call)):
            pass
        if isinstance(node, (n.Concat, n.Add, n.Mod, n.Mul, n.Filter, n.Call, n.Getitem)):
            for folded in self.folder.fold_str(node) or ():
                hit = DUNDER.search(folded) if "__" in folded else None
                if hit:
                    self._name(hit.group(), f"the built string {folded[:40]!r}", node)

    def _subscript(self, node: Any, n: Any) -> None:
        if isinstance(node.arg, n.Slice) or _is_intlike(node.arg):
            return
        keys = self.folder.fold(node.arg)
        for key in keys or ():
            if isinstance(key, str):
                self._name(key, f"`[{key!r}]`", node)
        if self._builds_string(node.arg):
            self.emit(
                "template.dynamic-attribute",
                "subscript",
                f"`{_show(node, 80)}` looks an item up by a name built at render time",
                node,
            )
        elif keys is None and not self._is_data(node.node):
            self.emit(
                "template.dynamic-attribute",
                "subscript-non-data",
                f"`{_show(node, 80)}` looks up a computed name on `{_show(node.node, 40)}`, "
                "which is not message data",
                node,
            )

    def _filter(self, node: Any, n: Any) -> None:
        if node.name == "attr":
            keys = self.folder.fold_str(node.args[0]) if node.args else None
            if keys is None or (node.args and self._builds_string(node.args[0])):
                self.emit(
                    "template.dynamic-attribute",
                    "attr",
                    f"`{_show(node, 80)}` looks an attribute up by a computed name",
                    node,
                )
            for key in keys or ():
                self._name(key, f"`|attr({key!r})`", node)
        elif not self._known_filter(node.name):
            self.emit(
                "template.unusual-call",
                f"|{node.name}",
                f"filter `{node.name}` is not a Jinja built-in",
                node,
            )
        names = [kw.value for kw in node.kwargs if kw.key == "attribute"]
        if node.name in ("selectattr", "rejectattr", "groupby") and node.args:
            names.append(node.args[0])
        for value in names:
            keys = self.folder.fold_str(value)
            if keys is None:
                self.emit(
                    "template.dynamic-attribute",
                    f"{node.name}-attribute",
                    f"`{_show(node, 80)}` reads an attribute whose name is computed",
                    node,
                )
            else:
                for key in keys:
                    for part in key.split("."):
                        self._name(part, f"`|{node.name}(attribute={key!r})`", node)
        if node.name == "map" and node.args and not node.kwargs:
            for key in self.folder.fold_str(node.args[0]) or ():
                if key == "attr" and len(node.args) > 1:
                    inner = self.folder.fold_str(node.args[1])
                    for attr in inner or ():
                        self._name(attr, f"`|map('attr', {attr!r})`", node)
                    if inner is None:
                        self.emit(
                            "template.dynamic-attribute",
                            "map-attr",
                            f"`{_show(node, 80)}` reads an attribute whose name is computed",
                            node,
                        )
            if self.folder.fold_str(node.args[0]) is None:
                self.emit(
                    "template.dynamic-attribute",
                    "map-filter",
                    f"`{_show(node, 80)}` applies a filter whose name is computed",
                    node,
                )

    def _call(self, node: Any, n: Any) -> None:
        callee = node.node
        if isinstance(callee, n.Getattr):
            attr = callee.attr
            if DUNDER.search(attr) or attr in INTERNAL_ATTRS:
                return  # J101/J103 report the name itself
            if (
                attr in LOOP_METHODS
                and isinstance(callee.node, n.Name)
                and callee.node.name == "loop"
            ):
                return
            if attr not in SAFE_METHODS:
                self.emit(
                    "template.unusual-call",
                    f".{attr}()",
                    f"calls `{_show(callee, 60)}()`: `.{attr}()` is not a string, list or "
                    "dict method that chat templates use",
                    node,
                )
            elif not self._is_data(callee.node):
                self.emit(
                    "template.unusual-call",
                    f".{attr}() on non-data",
                    f"calls `.{attr}()` on `{_show(callee.node, 40)}`, which is not message data",
                    node,
                )
            if attr == "format":
                self._format_call(node, n)
        elif isinstance(callee, n.Name):
            name = callee.name
            if name in self.macros or name in RISKY_GLOBALS:
                return
            if name in self.defined and name not in ("loop", "caller"):
                self.emit(
                    "template.unusual-call",
                    f"{name}()",
                    f"calls the variable `{name}`: a template variable holds data, and "
                    "calling it calls whatever object it was bound to",
                    node,
                )
            elif name not in SAFE_FUNCTIONS and name not in self.defined:
                self.emit(
                    "template.unusual-call",
                    f"{name}()",
                    f"calls `{name}()`, which chat-template renderers do not provide",
                    node,
                )
        else:
            self.emit(
                "template.unusual-call",
                f"{type(callee).__name__.lower()}()",
                f"calls `{_show(callee, 60)}`, a value looked up at render time",
                node,
            )

    def _format_call(self, node: Any, n: Any) -> None:
        """``'{0.__class__}'.format(x)``: str.format reaches attributes and items itself."""
        fmts = self.folder.fold_str(node.node.node)
        if fmts is None:
            self.emit(
                "template.dynamic-attribute",
                "format-string",
                f"`{_show(node, 80)}` formats with a format string built at render time, "
                "whose fields can read attributes",
                node,
            )
            return
        for fmt in fmts:
            for field in _format_fields(fmt) or ():
                parts = [p for p in re.split(r"[.\[\]]", field) if p]
                for part in parts[1:]:
                    self._name(part, f"the format field `{{{field}}}`", node)
                if re.search(r"[.\[]", field) and not any(
                    DUNDER.search(p) or p in INTERNAL_ATTRS for p in parts[1:]
                ):
                    self.emit(
                        "template.dynamic-attribute",
                        "format-field",
                        f"the format field `{{{field}}}` reads an attribute or item inside "
                        "`str.format`, out of the template's sight",
                        node,
                    )

    def _for(self, node: Any, n: Any) -> None:
        """``{% for k, v in obj.items() %}`` over something that is not data walks an
        object's attributes (its ``__dict__``), which is how internals are enumerated."""
        it = node.iter
        inner = it
        if isinstance(it, n.Call) and isinstance(it.node, n.Getattr):
            if it.node.attr in ("items", "keys", "values"):
                inner = it.node.node
        elif isinstance(it, n.Filter) and it.name in ("items", "dictsort") and it.node is not None:
            inner = it.node
        if inner is not it and not self._is_data(inner):
            self.emit(
                "template.dynamic-attribute",
                "items-walk",
                f"`{{% for ... in {_show(it, 60)} %}}` walks the entries of "
                f"`{_show(inner, 40)}`, which is not message data",
                node,
            )

    def _name(self, name: str, spelled: str, node: Any = None) -> None:
        if DUNDER.search(name) and (name.startswith("__") or name.startswith("_")):
            self.emit("template.dunder", name, f"reaches {spelled}, a Python internal", node)
        elif name in INTERNAL_ATTRS:
            self.emit("template.internals", name, f"reaches {spelled}, a Python internal", node)

    @staticmethod
    def _known_filter(name: str) -> bool:
        from jinja2.filters import FILTERS

        return name in FILTERS or name in EXTRA_FILTERS


# --- hidden instructions: J201, J203, J204 -------------------------------------------------

Labels = frozenset[str]
_EMPTY: Labels = frozenset()


def _markup_free(text: str) -> str:
    return MARKUP.sub(" ", text)


def _is_prose(text: str) -> bool:
    """Fixed text that reads as language: at least two words with eight letters, or four
    letters of a script written without spaces (CJK, Thai...), once markup is removed."""
    bare = _markup_free(text)
    letters = sum(1 for c in bare if c.isalpha())
    if letters < 4:
        return False
    words = [w for w in re.split(r"\s+", bare) if sum(c.isalpha() for c in w) >= 2]
    if len(words) >= 2 and letters >= 8:
        return True
    spaceless = sum(1 for c in bare if c.isalpha() and ord(c) >= 0x2E80)
    return spaceless >= 4


def _trigger_word(value: Any) -> str | None:
    """The word a content test looks for, or None when it tests markup, a part type or
    emptiness (what real templates test)."""
    if not isinstance(value, str) or MARKUP.search(value):
        return None  # a format marker (`</think>`, `<|channel|>final`, `[INST]`, `/think`)
    bare = value.strip()
    if not any(c.isalpha() for c in bare):
        return None
    if bare.lower() in PART_WORDS and bare == value.strip():
        return None
    return value


def _script(c: str) -> str:
    try:
        name = unicodedata.name(c)
    except ValueError:
        return "?"
    return name.split(" ", 1)[0]


_CONFUSABLE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE"})


def _mixed_script_word(text: str) -> str | None:
    """A word whose letters mix Latin with Cyrillic/Greek look-alikes (homoglyphs)."""
    word: str
    for word in re.findall(r"\w{3,}", text):
        scripts = {_script(c) for c in word if c.isalpha()} & _CONFUSABLE_SCRIPTS
        if len(scripts) > 1 and "LATIN" in scripts:
            return word
        if any(_script(c) == "MATHEMATICAL" for c in word):
            return word  # styled look-alike letters (U+1D400 block)
    return None


class _Flow:
    """Which fixed text reaches the model, under which conditions.

    Values carry *kinds*: ``content`` (what a user/tool/model wrote), ``msgs`` (message
    objects), ``tools``, ``date``, ``turn`` (loop counters, message counts), ``random``, and
    ``trig:<label>`` for values computed under, or from, a trigger condition. A condition
    becomes a set of *labels*: ``content:<word>`` (a message contains a word),
    ``turn:<n>`` (only from turn n), ``date``, ``random``, ``tools``."""

    def __init__(self, where: Location, ctx: Context, folder: _Folder) -> None:
        self.where = where
        self.ctx = ctx
        self.folder = folder
        self.kinds: dict[str, set[str]] = {}
        self.texts: dict[str, list[tuple[str, Labels, int]]] = {}
        self.macros: dict[str, Any] = {}
        self.macro_params: dict[str, list[str]] = {}
        self.emitted: list[tuple[str, Labels, int]] = []
        self.emitted_keys: set[tuple[str, Labels, int]] = set()
        self.collect = True
        self.visited = 0
        self.in_for = 0
        self.seen: set[tuple[str, str]] = set()
        self.keys: set[str] = set()  # every attribute/key name the template reads
        self.expanded: dict[tuple[str, Labels], list[tuple[str, Labels, int]]] = {}

    # driver ----------------------------------------------------------------------------
    def run(self, tree: Any) -> None:
        n = _nodes()
        for node in tree.find_all((n.Getattr, n.Getitem, n.Pair, n.Keyword)):
            if isinstance(node, n.Getattr):
                self.keys.add(node.attr)
            elif isinstance(node, n.Getitem):
                self.keys.update(k for k in self.folder.fold_str(node.arg) or () if k)
            elif isinstance(node, n.Pair):
                self.keys.update(k for k in self.folder.fold_str(node.key) or () if k)
            else:
                self.keys.add(node.key)
        for macro in tree.find_all(n.Macro):
            self.macros[macro.name] = macro
            self.macro_params[macro.name] = [a.name for a in macro.args]
        for _ in range(2):  # taints reach uses that come before them in the text
            self.emitted, self.emitted_keys = [], set()
            self.expanded = {}
            self._body(tree.body, _EMPTY, set())
        self._judge()

    def _tick(self) -> None:
        self.visited += 1
        if self.visited > NODE_BUDGET or (self.visited % 512 == 0 and self.ctx.deadline.expired()):
            raise _Budget

    # statements ------------------------------------------------------------------------
    def _body(self, body: list[Any], guards: Labels, calling: set[str]) -> None:
        for stmt in body:
            self._stmt(stmt, guards, calling)

    def _stmt(self, node: Any, guards: Labels, calling: set[str]) -> None:
        n = _nodes()
        self._tick()
        if isinstance(node, n.Output):
            for child in node.nodes:
                for item in self._texts(child, guards, calling):
                    # the same text under the same conditions counts once (a macro called
                    # from a macro called twice... does not double the list)
                    if len(self.emitted) < MAX_EMITTED and item not in self.emitted_keys:
                        self.emitted_keys.add(item)
                        self.emitted.append(item)
        elif isinstance(node, n.If):
            self._if(node, guards, calling)
        elif isinstance(node, n.For):
            inner = guards | self._cond(node.test, True) if node.test is not None else guards
            kinds = self._kinds(node.iter)
            if "tools" in kinds:
                inner = inner | {"tools"}
            names = _target_names(node.target)
            it = node.iter
            if len(names) > 1 and (
                (isinstance(it, n.Filter) and it.name in ("items", "dictsort"))
                or (
                    isinstance(it, n.Call)
                    and isinstance(it.node, n.Getattr)
                    and it.node.attr == "items"
                )
            ):
                self._bind(names.pop(0), self._trig(guards))  # a dict key is structure
            for name in names:
                self._bind(name, kinds | self._trig(guards))
            self.in_for += 1
            self._body(node.body, inner, calling)
            self.in_for -= 1
            self._body(node.else_, guards, calling)
        elif isinstance(node, n.Assign):
            self._assign(node.target, node.node, guards, calling)
        elif isinstance(node, n.AssignBlock):
            key = _var_key(node.target)
            saved = self.emitted, self.emitted_keys
            self.emitted, self.emitted_keys = [], set()
            self._body(node.body, guards, calling)
            captured = self.emitted
            self.emitted, self.emitted_keys = saved
            if key is not None:
                self._bind(key, self._trig(guards))
                for item in captured:
                    self._add_text(key, item)
        elif isinstance(node, n.Macro):
            pass  # walked where it is called
        elif isinstance(node, n.CallBlock):
            self._texts(node.call, guards, calling)
            self._body(node.body, guards, calling)
        elif isinstance(node, n.ExprStmt):
            self._texts(node.node, guards, calling)
        elif isinstance(node, n.With):
            for target, value in zip(node.targets, node.values, strict=False):
                self._assign(target, value, guards, calling)
            self._body(node.body, guards, calling)
        elif isinstance(node, n.FilterBlock):
            self._body(node.body, guards, calling)
        elif hasattr(node, "body") and isinstance(node.body, list):
            self._body(node.body, guards, calling)  # Scope, Block, modifiers, generation

    def _if(self, node: Any, guards: Labels, calling: set[str]) -> None:
        negated: Labels = _EMPTY
        branches = [node, *node.elif_]
        for branch in branches:
            self._body(branch.body, guards | negated | self._cond(branch.test, True), calling)
            negated = negated | self._cond(branch.test, False)
        self._body(node.else_, guards | negated, calling)

    def _assign(self, target: Any, value: Any, guards: Labels, calling: set[str]) -> None:
        n = _nodes()
        keys = (
            [_var_key(target)]
            if not isinstance(target, n.Tuple)
            else [_var_key(t) for t in target.items]
        )
        kinds = self._kinds(value) | self._trig(guards)
        key0 = keys[0] if len(keys) == 1 else None
        if (
            key0 is not None
            and self.in_for
            and isinstance(value, (n.Add, n.Sub))
            and (_var_key(value.left) == key0 or _var_key(value.right) == key0)
        ):
            kinds = kinds | {"turn"}  # a counter stepped once per message
        if (
            isinstance(value, n.Call)
            and isinstance(value.node, n.Name)
            and value.node.name == "namespace"
            and key0 is not None
        ):
            for kw in value.kwargs:
                self._assign(n.NSRef(key0, kw.key), kw.value, guards, calling)
        texts = self._texts(value, guards, calling)
        for key in keys:
            if key is None:
                continue
            self._bind(key, kinds)
            for item in texts:
                self._add_text(key, item)

    def _bind(self, key: str, kinds: set[str] | frozenset[str]) -> None:
        self.kinds.setdefault(key, set()).update(kinds)

    def _add_text(self, key: str, item: tuple[str, Labels, int]) -> None:
        bucket = self.texts.setdefault(key, [])
        if len(bucket) < 64 and item not in bucket:
            bucket.append(item)

    @staticmethod
    def _trig(guards: Labels) -> set[str]:
        return {f"trig:{g}" for g in guards if g != "tools" and not g.startswith("role:")}

    # text reaching the output --------------------------------------------------------
    def _texts(self, node: Any, guards: Labels, calling: set[str]) -> list[tuple[str, Labels, int]]:
        n = _nodes()
        self._tick()
        line = getattr(node, "lineno", 0) or 0
        if isinstance(node, n.TemplateData):
            return [(node.data, guards, line)]
        if isinstance(node, n.Const):
            return [(node.value, guards, line)] if isinstance(node.value, str) else []
        folded = self.folder.fold_str(node) if isinstance(node, (n.Concat, n.Add)) else None
        if folded is not None:
            return [(t, guards, line) for t in folded]
        if isinstance(node, (n.Concat, n.Add)):
            parts = list(node.nodes) if isinstance(node, n.Concat) else [node.left, node.right]
            out: list[tuple[str, Labels, int]] = []
            for p in parts:
                out.extend(self._texts(p, guards, calling))
            return out
        if isinstance(node, n.CondExpr):
            a = self._texts(node.expr1, guards | self._cond(node.test, True), calling)
            b = (
                self._texts(node.expr2, guards | self._cond(node.test, False), calling)
                if node.expr2 is not None
                else []
            )
            return a + b
        if isinstance(node, (n.Name, n.Getattr)):
            key = _var_key(node)
            if key is not None and key in self.texts:
                return [(t, g | guards, ln) for t, g, ln in self.texts[key]]
            return []
        if isinstance(node, n.Filter):
            if node.name in ("join", "trim", "safe", "string", "replace", "indent", "upper"):
                return self._texts(node.node, guards, calling) if node.node is not None else []
            return []
        if isinstance(node, n.Call):
            callee = node.node
            if isinstance(callee, n.Name):
                if callee.name == "raise_exception":
                    return []  # its message is an error, never sent to the model
                macro = self.macros.get(callee.name)
                if macro is not None and callee.name not in calling:
                    params = self.macro_params[callee.name]
                    for param, arg in zip(params, node.args, strict=False):
                        self._bind(param, self._kinds(arg))
                    for kw in node.kwargs:
                        self._bind(kw.key, self._kinds(kw.value))
                    memo = (callee.name, guards)
                    if memo not in self.expanded:  # each macro once per set of conditions
                        saved = self.emitted, self.emitted_keys
                        self.emitted, self.emitted_keys = [], set()
                        self._body(macro.body, guards, calling | {callee.name})
                        self.expanded[memo] = self.emitted
                        self.emitted, self.emitted_keys = saved
                    return self.expanded[memo]
            for arg in node.args:
                self._texts(arg, guards, calling)  # nested macro calls still run
            return []
        return []

    # what a value is ------------------------------------------------------------------
    def _kinds(self, node: Any, depth: int = 0) -> set[str]:
        n = _nodes()
        if node is None or depth > 40:
            return set()
        d = depth + 1
        if isinstance(node, n.Name):
            if node.name == "messages":
                return {"msgs"}
            if node.name in ("tools", "functions", "available_tools", "builtin_tools"):
                return {"tools"}
            if node.name in DATE_NAMES:
                return {"date"}
            if node.name == "loop":
                return {"turn"}
            return set(self.kinds.get(node.name, set()))
        if isinstance(node, n.Getattr):
            key = _var_key(node)
            if key is not None and key in self.kinds:
                return set(self.kinds[key])
            return self._field(self._kinds(node.node, d), node.attr)
        if isinstance(node, n.Getitem):
            base = self._kinds(node.node, d)
            keys = self.folder.fold_str(node.arg) if not isinstance(node.arg, n.Slice) else None
            if keys:
                return set().union(*(self._field(base, k) for k in keys))
            return base
        if isinstance(node, n.Filter):
            base = self._kinds(node.node, d)
            if node.name == "random":
                return base | {"random"}
            if node.name in ("length", "count") and "msgs" in base:
                return {"turn"}
            if node.name in ("string", "tojson", "join", "lower", "upper", "trim") and (
                "msgs" in base
            ):
                return base | {"content"}
            if node.name in ("selectattr", "rejectattr", "map") and node.args:
                attrs = self.folder.fold_str(node.args[0]) or []
                if node.name == "map":
                    attrs = [k.value.value for k in node.kwargs if isinstance(k.value, n.Const)]
                    return set().union(base, *(self._field(base, a) for a in attrs))
                return base
            for a in node.args:
                base |= {k for k in self._kinds(a, d) if k.startswith("trig:")}
            return base
        if isinstance(node, n.Call):
            callee = node.node
            if isinstance(callee, n.Name):
                if callee.name in DATE_NAMES:
                    return {"date"}
                out: set[str] = set()
                for a in [*node.args, *(k.value for k in node.kwargs)]:
                    out |= self._kinds(a, d)
                return out
            if isinstance(callee, n.Getattr):
                return self._kinds(callee.node, d)
            return set()
        if isinstance(node, (n.Compare, n.Test, n.Not, n.And, n.Or)):
            labels = self._cond(node, True)
            out = self._trig(labels)
            for child in node.iter_child_nodes():
                out |= {k for k in self._kinds(child, d) if k.startswith("trig:")}
            return out
        if isinstance(node, n.Mod):
            base = self._kinds(node.left, d)
            right = node.right.value if isinstance(node.right, n.Const) else None
            if "turn" in base and isinstance(right, int) and right >= LATE_TURN:
                return {"turn-periodic"}
            return base
        if isinstance(node, n.CondExpr):
            out = self._kinds(node.expr1, d) | self._kinds(node.expr2, d)
            return out | self._trig(self._cond(node.test, True))
        if isinstance(node, (n.BinExpr, n.Concat, n.List, n.Tuple, n.Neg, n.Pos)):
            out = set()
            for child in node.iter_child_nodes():
                out |= self._kinds(child, d)
            if isinstance(node, n.Concat) or (
                isinstance(node, n.Add)
                and (
                    self.folder.fold_str(node.left) is not None
                    or self.folder.fold_str(node.right) is not None
                )
            ):
                out.discard("date")  # a text that contains the date is not a date
            return out
        return set()

    @staticmethod
    def _field(base: set[str], field: str) -> set[str]:
        trig = {k for k in base if k.startswith("trig:")}
        if not (base & {"msgs", "content", "tools"}):
            return base
        if field in STRUCT_FIELDS:
            return trig | ({"tools"} if "tools" in base else set())
        if field in CONTENT_FIELDS and base & {"msgs", "content"}:
            return trig | {"content"}
        return base

    # conditions -----------------------------------------------------------------------
    def _cond(self, node: Any, positive: bool, depth: int = 0) -> Labels:
        n = _nodes()
        if node is None or depth > 40:
            return _EMPTY
        d = depth + 1
        if isinstance(node, n.Not):
            return self._cond(node.node, not positive, d)
        if isinstance(node, (n.And, n.Or)):
            both = self._cond(node.left, positive, d) | self._cond(node.right, positive, d)
            if isinstance(node, n.Or) == positive:  # either side may hold alone
                both = frozenset(lab for lab in both if not lab.startswith("role:"))
            return both
        labels: set[str] = set()
        kinds = self._kinds_shallow(node)
        if "random" in kinds:
            labels.add("random")
        if positive and "tools" in kinds:
            labels.add("tools")
        if positive:
            labels |= {k[5:] for k in kinds if k.startswith("trig:")}
        if isinstance(node, n.Compare) and node.ops:
            labels |= self._compare(node.expr, node.ops[0].op, node.ops[0].expr, positive)
            roles = set(self.folder.fold_str(node.ops[0].expr) or ())
            if (
                positive
                and node.ops[0].op == "eq"
                and _is_role(node.expr)
                and roles & {"system", "developer"}
            ):
                labels.add(f"role:system@{_show(node.expr.node, 60)}")
        elif isinstance(node, n.Test) and node.name in ("in", "eq", "equalto", "==", "ne"):
            op = {"in": "in", "ne": "ne"}.get(node.name, "eq")
            if node.args:
                labels |= self._compare(node.node, op, node.args[0], positive)
        elif isinstance(node, n.Call) and isinstance(node.node, n.Getattr):
            labels |= self._method_test(node, positive)
        elif isinstance(node, n.Filter) and node.name in ("select", "selectattr"):
            labels |= self._select_test(node, positive)
        return frozenset(labels)

    def _kinds_shallow(self, node: Any) -> set[str]:
        n = _nodes()
        if isinstance(node, (n.Compare, n.Test)):
            out: set[str] = set()
            for child in node.iter_child_nodes():
                out |= self._kinds(child)
            return out
        return self._kinds(node)

    def _compare(self, left: Any, op: str, right: Any, positive: bool) -> set[str]:
        """Labels of ``left <op> right``: a word looked for in message content, a late
        turn, a date."""
        n = _nodes()
        out: set[str] = set()
        lk, rk = self._kinds(left), self._kinds(right)
        lv, rv = self.folder.fold(left), self.folder.fold(right)
        flips = {"notin": "in", "ne": "eq", "gt": "lteq", "gteq": "lt", "lt": "gteq", "lteq": "gt"}
        if not positive:
            op = flips.get(op, {v: k for k, v in flips.items()}.get(op, op))
        # a word in message content
        if op in ("in", "eq"):
            for words, other, node in ((lv, rk, right), (rv, lk, left)):
                if words is None or "content" not in other:
                    continue
                for w in words:
                    items = w if isinstance(w, (list, tuple)) else [w]
                    for item in items:
                        word = self._word(item)
                        if word is not None:
                            out.add(f"content:{word[:40]}@{_owner(node)}")
        # message content compared with a word inside `find`/`count` results
        for side in (left, right):
            if isinstance(side, n.Call):
                out |= self._method_test(side, True, any_polarity=True)
        # a late turn, or a periodic one
        for counter, const, op2 in ((lk, rv, op), (rk, lv, _mirror(op))):
            if const is None or not all(isinstance(c, int) for c in const):
                continue
            if "turn-periodic" in counter:
                out.add("turn:periodic")
            elif "turn" in counter and op2 in ("gt", "gteq", "eq"):
                threshold = max(const) + (1 if op2 == "gt" else 0)
                if threshold >= LATE_TURN:
                    out.add(f"turn:{threshold}")
        # a date
        if ("date" in lk and rv is not None) or ("date" in rk and lv is not None):
            out.add("date")
        return out

    def _method_test(self, node: Any, positive: bool, any_polarity: bool = False) -> set[str]:
        callee = node.node
        if not isinstance(callee, _nodes().Getattr) or callee.attr not in (
            "startswith",
            "endswith",
            "find",
            "rfind",
            "count",
            "index",
        ):
            return set()
        if not (positive or any_polarity):
            return set()
        if "content" not in self._kinds(callee.node):
            return set()
        out = set()
        for arg in node.args:
            for w in self.folder.fold(arg) or ():
                items = w if isinstance(w, (list, tuple)) else [w]
                for item in items:
                    word = self._word(item)
                    if word is not None:
                        out.add(f"content:{word[:40]}@{_owner(callee.node)}")
        return out

    def _word(self, value: Any) -> str | None:
        """A trigger word, unless the template also reads it as a key (then ``'w' in x``
        is a key-membership test on a content part, as in ``'parts' in content``)."""
        word = _trigger_word(value)
        if word is None or word.strip() in self.keys:
            return None
        return word

    def _select_test(self, node: Any, positive: bool) -> set[str]:
        """``messages|selectattr('content', 'in', [...])`` and the like."""
        if not positive or len(node.args) < 3:
            return set()
        attr = self.folder.fold_str(node.args[0]) if node.name == "selectattr" else None
        if node.name == "selectattr" and not (attr and attr[0] in CONTENT_FIELDS):
            return set()
        out = set()
        for w in self.folder.fold(node.args[-1]) or ():
            items = w if isinstance(w, (list, tuple)) else [w]
            for item in items:
                word = self._word(item)
                if word is not None:
                    out.add(f"content:{word[:40]}@?")
        return out

    # the decision ----------------------------------------------------------------------
    def _judge(self) -> None:
        for text, labels, line in self.emitted:
            if not text or not _is_prose(text):
                continue
            system = {lab.split("@", 1)[1] for lab in labels if lab.startswith("role:")}
            triggers = sorted(
                lab.split("@", 1)[0]
                for lab in labels
                if lab != "tools"
                and not lab.startswith("role:")
                # a switch in the operator's own system prompt (`detailed thinking on`),
                # tested on the message whose role the same condition checks
                and not (lab.startswith("content:") and lab.split("@", 1)[-1] in system)
            )
            hint = PHRASE_HINTS.search(text)
            hint_note = f"; phrase hint: {hint.group()!r}" if hint else ""
            shown = " ".join(text.split())[:160]
            if triggers:
                kind = triggers[0].split(":", 1)[0]
                what = {
                    "content": "only when a message contains "
                    + ", ".join(repr(t.split(":", 1)[1]) for t in triggers if ":" in t)[:120],
                    "turn": "only in late turns ("
                    + ", ".join(t for t in triggers if t.startswith("turn"))
                    + ")",
                    "date": "only on some dates",
                    "random": "only at random",
                }.get(kind, "only under a rare condition")
                self._emit(
                    "template.hidden-instructions",
                    f"{kind}-trigger",
                    f"emits fixed text {what}: {shown[:80]!r}",
                    f"line {line}: text {shown!r} is emitted only under {triggers}{hint_note}",
                )
            address = ADDRESS.search(_markup_free(text))
            if address and ("tools" in labels or triggers):
                self._emit(
                    "template.outside-address",
                    address.group()[:80],
                    f"emits fixed text naming the outside address `{address.group()[:80]}` "
                    f"only when {'tools are present' if 'tools' in labels else 'triggered'}",
                    f"line {line}: {shown!r} (conditions: {sorted(labels)}){hint_note}",
                )
            mixed = _mixed_script_word(text)
            if mixed:
                self._emit(
                    "template.homoglyphs",
                    mixed[:40],
                    f"emits the word `{mixed[:40]}`, which mixes look-alike letters of "
                    f"different scripts ({', '.join(sorted({_script(c) for c in mixed}))})",
                    f"line {line}: {shown!r}",
                )

    def _emit(self, kind: str, value: str, message: str, evidence: str) -> None:
        if (kind, value) in self.seen:
            return
        self.seen.add((kind, value))
        self.ctx.emit(kind, value, self.where, evidence=evidence, message=message)


def _owner(node: Any) -> str:
    """The message a content expression reads (``messages[0]`` for
    ``messages[0].content|lower``), or ``?``."""
    n = _nodes()
    for _ in range(20):
        if isinstance(node, n.Filter) and node.node is not None:
            node = node.node
        elif isinstance(node, n.Getattr) and node.attr in CONTENT_FIELDS:
            return _show(node.node, 60)
        elif isinstance(node, n.Getitem) and isinstance(node.arg, n.Const):
            if node.arg.value in CONTENT_FIELDS:
                return _show(node.node, 60)
            node = node.node
        else:
            break
    return "?"


def _is_role(node: Any) -> bool:
    n = _nodes()
    if isinstance(node, n.Getattr):
        return bool(node.attr == "role")
    if isinstance(node, n.Getitem):
        return isinstance(node.arg, n.Const) and bool(node.arg.value == "role")
    return False


def _target_names(target: Any) -> list[str]:
    n = _nodes()
    if isinstance(target, n.Name):
        return [str(target.name)]
    return [str(t.name) for t in target.find_all(n.Name)]


def _mirror(op: str) -> str:
    return {"gt": "lt", "lt": "gt", "gteq": "lteq", "lteq": "gteq"}.get(op, op)


# --- where templates live -------------------------------------------------------------------

TEMPLATE_MARK = re.compile(r"\{%|\{\{")


def templates_in_config(data: Any, max_items: int = 10_000) -> Iterator[tuple[str, str]]:
    """``(key, text)`` for every chat template a parsed config carries: ``chat_template`` as a
    string or a list of ``{name, template}`` (key ``chat_template[name]``), and any other
    string value that contains Jinja markup (key: its dotted path)."""
    stack: list[tuple[str, Any]] = [("", data)]
    seen = 0
    while stack and seen < max_items:
        path, value = stack.pop()
        seen += 1
        if isinstance(value, dict):
            for k, v in reversed(list(value.items())):
                key = f"{path}.{k}" if path else str(k)
                if key == "chat_template" and isinstance(v, list):
                    for item in v:
                        if isinstance(item, dict) and isinstance(item.get("template"), str):
                            yield f"chat_template[{item.get('name')}]", item["template"]
                    continue
                stack.append((key, v))
        elif isinstance(value, list):
            for i, v in reversed(list(enumerate(value))):
                stack.append((f"{path}[{i}]", v))
        elif isinstance(value, str) and (path == "chat_template" or TEMPLATE_MARK.search(value)):
            yield path or "chat_template", value


# files that are data, not configs: large, and their strings are tokens, not templates
NOT_CONFIGS = ("tokenizer.json", "vocab.json", "merges.txt", ".index.json", "added_tokens.json")
MAX_YAML = 1 << 20


def is_chat_template_key(key: str) -> bool:
    """The key a loader reads as a chat template (as opposed to a Jinja-looking string found
    elsewhere in a config)."""
    return key == "chat_template" or key.startswith("chat_template[")


def templates_in_repo(
    root: str, read_json: Callable[[str], Any], read_yaml: Callable[[str], Any] | None = None
) -> list[tuple[str, str, str]]:
    """``(file, key, text)`` for every chat template a repo folder carries, where
    transformers, llama.cpp, vLLM and SGLang read them: ``tokenizer_config.json`` and
    ``processor_config.json`` (``chat_template`` as a string or a list of named templates),
    ``chat_template.jinja``, ``chat_template.json``, ``additional_chat_templates/*.jinja``
    (key ``chat_template[<name>]``), and any string with Jinja markup in the folder's other
    JSON and YAML configs (key: its dotted path). ``read_json`` parses a JSON file under the
    caller's budgets (None when absent or refused); YAML files over 1 MiB are not read."""
    out: list[tuple[str, str, str]] = []
    jinja = os.path.join(root, "chat_template.jinja")
    text = read_template_file(jinja)
    if text is not None:
        out.append((jinja, "chat_template", text))
    extra = os.path.join(root, "additional_chat_templates")
    if os.path.isdir(extra):
        for name in sorted(os.listdir(extra)):
            if name.endswith(".jinja"):
                text = read_template_file(os.path.join(extra, name))
                if text is not None:
                    out.append((os.path.join(extra, name), f"chat_template[{name[:-6]}]", text))
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return out
    for name in names:
        path = os.path.join(root, name)
        if name.endswith(NOT_CONFIGS) or not os.path.isfile(path):
            continue
        if name.endswith(".json"):
            data = read_json(path)
        elif name.endswith((".yaml", ".yml")):
            data = (read_yaml or read_yaml_file)(path)
        else:
            continue
        if data is None:
            continue
        for key, value in templates_in_config(data):
            out.append((path, key, value))
    return out


def read_template_file(path: str) -> str | None:
    """A template file's text, at most one character over ``MAX_TEMPLATE`` (so
    :func:`scan_template` reports the size instead of anything reading it whole)."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read(MAX_TEMPLATE + 1)


def read_yaml_file(path: str) -> Any:
    try:
        import yaml
    except ImportError:
        return None
    try:
        if os.path.getsize(path) > MAX_YAML:
            return None
        with open(path, "rb") as f:
            data = f.read(MAX_YAML + 1)
        from .formats.hydra import C_SAFE_DEPTH, node_bound

        # libyaml's recursive composer overflows the C stack on deep nesting (a 1 MB file of
        # brackets crashed the process): the C loader only where the text cannot nest that
        # deep, the pure-Python one (bounded by RecursionError) otherwise
        fast = node_bound(data) <= C_SAFE_DEPTH
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if fast else yaml.SafeLoader
        return yaml.load(data.decode("utf-8", "replace"), Loader=loader)  # noqa: S506 - safe
    except (OSError, RecursionError, ValueError, yaml.YAMLError):
        return None  # not a YAML config we can read
