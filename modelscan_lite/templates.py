"""Chat-template (Jinja) analysis, shared by GGUF ``tokenizer.chat_template`` and Hugging Face
``tokenizer_config.json`` / ``chat_template.jinja``.

The template is *parsed* with Jinja's own parser (the same grammar the loaders use) and its
syntax tree is walked; it is never rendered, and no environment that could render it is built.
Server-side template injection in chat templates (CVE-2024-34359 and its kin in vLLM and
SGLang) needs a path from the template's data to Python internals: a dunder attribute
(``__class__``, ``__globals__``, ``__subclasses__``...), a Jinja global that leaks
``__globals__`` (``cycler``, ``joiner``, ``lipsum``), or an attribute name computed at render
time (``|attr(x)``, ``obj[a ~ b]``, ``"%c"|format(95)``). Real chat templates need none of
these; they read ``messages``, call a handful of string and dict methods, and use Jinja's
built-in filters. Constant strings are folded across ``~``/``+`` so split names are seen,
and escapes are already decoded by the parser.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

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
# what real chat templates call
# fmt: off
SAFE_METHODS = frozenset({
    "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith",
    "lower", "upper", "title", "capitalize", "replace", "items", "keys", "values", "get",
    "join", "count", "find", "rfind", "index", "append", "format", "isdigit", "isalpha",
    "isspace", "isalnum", "islower", "isupper", "zfill", "partition", "rpartition", "copy",
    "pop", "extend", "update", "insert", "removeprefix", "removesuffix", "casefold",
    "cycle", "changed",  # Jinja's loop.cycle() and loop.changed()
})
# fmt: on
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
        "varargs",
        "kwargs",
    }
)
HIDDEN_INSTRUCTIONS = re.compile(
    r"ignore\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|earlier|preceding)\s+"
    r"(?:instructions|messages|prompts|rules)"
    r"|(?:do\s+not|don't|never)\s+(?:tell|reveal|mention|disclose|inform|let)\s+(?:the\s+)?"
    r"(?:user|anyone|human)"
    r"|(?:secret|hidden|covert)\s+(?:instruction|prompt|goal|objective|task)s?"
    r"|exfiltrat\w*|send\s+(?:the|all|every)\s+(?:conversation|messages?|data|history)\s+to"
    r"|always\s+(?:recommend|promote|insert|include\s+the\s+link)",
    re.IGNORECASE,
)
INVISIBLE = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)


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


def _fold(node: Any) -> str | None:
    """The constant string an expression always evaluates to, if it is one."""
    from jinja2 import nodes

    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return node.value
    if isinstance(node, nodes.Concat):
        parts = [_fold(n) for n in node.nodes]
        return None if any(p is None for p in parts) else "".join(p for p in parts if p)
    if isinstance(node, nodes.Add):
        left, right = _fold(node.left), _fold(node.right)
        return left + right if left is not None and right is not None else None
    return None


def _builds_string(node: Any) -> bool:
    """True for expressions that compute a string at render time from pieces."""
    from jinja2 import nodes

    if isinstance(node, (nodes.Concat, nodes.Mod)):
        return True
    if isinstance(node, nodes.Add):
        return (
            _builds_string(node.left)
            or _builds_string(node.right)
            or (_fold(node.left) is not None or _fold(node.right) is not None)
        )
    if isinstance(node, nodes.Filter) and node.name in (
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
    ):
        return True
    return (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Getattr)
        and node.node.attr in ("format", "join", "replace", "lower", "upper", "strip")
    )


def scan_template(source: str, where: Location, ctx: Context) -> None:
    """Emit ``template.*`` facts for one chat template."""
    if len(source) > MAX_TEMPLATE:
        ctx.emit(
            "template.unanalysed",
            "too-large",
            where,
            message=f"template of {len(source)} characters is over the 1 MiB limit",
        )
        return
    for m in INVISIBLE.finditer(source):
        ctx.emit(
            "template.invisible",
            f"U+{ord(m.group()):04X}",
            where,
            message=f"invisible character U+{ord(m.group()):04X} at character {m.start()}",
        )
        break
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
    _Walker(where, ctx).walk(tree)


class _Walker:
    def __init__(self, where: Location, ctx: Context) -> None:
        self.where = where
        self.ctx = ctx
        self.defined: set[str] = set()
        self.seen: set[tuple[str, str]] = set()

    def emit(self, kind: str, value: str, message: str) -> None:
        if (kind, value) in self.seen:
            return
        self.seen.add((kind, value))
        self.ctx.emit(kind, value, self.where, message=message)

    def walk(self, tree: Any) -> None:
        from jinja2 import nodes

        for node in tree.find_all(
            (nodes.Assign, nodes.AssignBlock, nodes.For, nodes.Macro, nodes.CallBlock)
        ):
            for target in node.find_all(nodes.Name):
                if target.ctx in ("store", "param"):
                    self.defined.add(target.name)
            if isinstance(node, nodes.Macro):
                self.defined.add(node.name)
        for node in tree.find_all(nodes.Node):
            self.visit(node, nodes)

    def visit(self, node: Any, nodes: Any) -> None:
        if isinstance(node, nodes.Getattr):
            self._name(node.attr, f"`.{node.attr}`")
        elif isinstance(node, nodes.Getitem):
            key = _fold(node.arg)
            if key is not None:
                self._name(key, f"`[{key!r}]`")
            elif _builds_string(node.arg):
                self.emit(
                    "template.dynamic-attribute",
                    "subscript",
                    "an item is looked up by a name built at render time",
                )
        elif isinstance(node, nodes.Filter):
            if node.name == "attr":
                key = _fold(node.args[0]) if node.args else None
                if key is None:
                    self.emit(
                        "template.dynamic-attribute",
                        "attr",
                        "`|attr(...)` looks an attribute up by a computed name",
                    )
                else:
                    self._name(key, f"`|attr({key!r})`")
            elif not self._known_filter(node.name):
                self.emit(
                    "template.unusual-call",
                    f"|{node.name}",
                    f"filter `{node.name}` is not a Jinja built-in",
                )
            for kw in node.kwargs:
                if kw.key == "attribute":
                    key = _fold(kw.value)
                    if key is not None:
                        self._name(key, f"`attribute={key!r}`")
        elif isinstance(node, nodes.Name):
            if node.name in RISKY_GLOBALS and node.name not in self.defined:
                self.emit(
                    "template.internals",
                    node.name,
                    f"`{node.name}` is a Jinja global whose attributes reach Python's globals",
                )
        elif isinstance(node, nodes.Call):
            callee = node.node
            if isinstance(callee, nodes.Getattr) and callee.attr not in SAFE_METHODS:
                if not (DUNDER.search(callee.attr) or callee.attr in INTERNAL_ATTRS):
                    self.emit(
                        "template.unusual-call",
                        f".{callee.attr}()",
                        f"calls `.{callee.attr}()`, which no chat template needs",
                    )
            elif (
                isinstance(callee, nodes.Name)
                and callee.name not in SAFE_FUNCTIONS
                and callee.name not in self.defined
                and callee.name not in RISKY_GLOBALS
            ):
                self.emit(
                    "template.unusual-call",
                    f"{callee.name}()",
                    f"calls `{callee.name}()`, which chat-template renderers do not provide",
                )
        elif isinstance(node, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            self.emit(
                "template.include",
                type(node).__name__.lower(),
                f"`{{% {type(node).__name__.lower()} %}}` loads another template",
            )
        elif isinstance(node, (nodes.TemplateData, nodes.Const)):
            text = node.data if isinstance(node, nodes.TemplateData) else node.value
            if isinstance(text, str):
                hit = DUNDER.search(text) if "__" in text else None
                if hit:
                    self._name(hit.group(), f"the string {text[:40]!r}")
                m = HIDDEN_INSTRUCTIONS.search(text)
                if m:
                    self.emit(
                        "template.hidden-instructions",
                        m.group()[:60],
                        f"emits fixed text the user never wrote: "
                        f"{text[max(0, m.start() - 30) : m.end() + 30]!r}",
                    )
        elif isinstance(node, (nodes.Concat, nodes.Add)):
            folded = _fold(node)
            hit = DUNDER.search(folded) if folded is not None and "__" in folded else None
            if hit:
                self._name(hit.group(), f"the concatenation {folded!r:.40}")

    def _name(self, name: str, spelled: str) -> None:
        if DUNDER.search(name) and (name.startswith("__") or name.startswith("_")):
            self.emit("template.dunder", name, f"reaches {spelled}, a Python internal")
        elif name in INTERNAL_ATTRS:
            self.emit("template.internals", name, f"reaches {spelled}, a Python internal")

    @staticmethod
    def _known_filter(name: str) -> bool:
        from jinja2.filters import FILTERS

        return name in FILTERS or name in ("tojson", "items")
