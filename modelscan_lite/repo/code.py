"""Custom code in a Hugging Face repo: every place the ecosystem names code to import, and the
repo's Python files.

Where code is named (each gives H101, or H102 for ``org/repo--module.Class``):

- ``auto_map`` in every config transformers reads: ``config.json``,
  ``tokenizer_config.json``, ``preprocessor_config.json`` (feature extractors and image
  processors), ``processor_config.json`` (also its nested sub-processor configs),
  ``video_preprocessor_config.json`` and ``audio_tokenizer_config.json``. Values are strings,
  ``[slow, fast]`` lists or backend dicts;
- ``custom_pipelines.<task>.impl`` in ``config.json`` (``pipeline(trust_remote_code=True)``);
- sentence-transformers ``modules.json``: a module ``type`` outside the library's namespace is
  imported from the repo (or an installed package); one inside the namespace that is not one
  of its module classes (``rules/allowlist/sentence-transformers-modules.json``) is imported
  by name (H104);
- diffusers ``model_index.json``: ``_class_name`` or a component ``[library, Class]`` whose
  library is not diffusers/transformers (or another library diffusers knows) is a custom
  pipeline or component, loaded from the repo's ``.py`` files or another hub repo; and a root
  ``pipeline.py``.

Python files are parsed with ``ast`` (never imported) and evaluated abstractly: imports and
assignments bind names (per scope, flow-insensitively: a name holds every value it is ever
given), strings are constant-folded (``+``, ``%``, f-strings, ``join``, ``format``,
``replace``, slicing, ``chr``, ``bytes.fromhex``, base64/zlib/codecs decoding of constants...)
under a node budget, and ``getattr``, ``__dict__``, ``vars()``, ``globals()``,
``sys.modules``, ``__import__``, ``importlib.import_module``, ``operator.attrgetter`` and
``methodcaller`` and ``functools.partial`` are followed. A call (or a reference reached by
construction) whose resolved dotted name is a ``code`` entry of the shared list of dangerous
callables (``rules/callables/dangerous.json``) is H103, with the line as evidence; a lookup
on ``builtins`` or a module holding such callables by a name that cannot be folded, or an
import by such a name, is H105.
"""

from __future__ import annotations

import ast
import base64
import binascii
import builtins
import codecs
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..callables import PURE_STR_METHODS, Callables, Dangerous, load_callables
from ..engine import dotted_tails
from ..formats.base import Context
from ..model import Location

MAX_SOURCE = 2 << 20
MAX_STEPS = 200_000  # abstract evaluation steps per file
MAX_DEPTH = 60  # nested evaluation depth
MAX_VALUES = 24  # possible values kept per expression
MAX_STR = 4096  # longest folded string
MAX_FINDINGS = 100  # per file; the rest are counted

# the configs transformers reads an ``auto_map`` from (transformers 5.x: CONFIG_NAME,
# TOKENIZER_CONFIG_FILE, FEATURE_EXTRACTOR_NAME == IMAGE_PROCESSOR_NAME, PROCESSOR_NAME,
# VIDEO_PROCESSOR_NAME, AUDIO_TOKENIZER_NAME)
AUTO_MAP_FILES = (
    "config.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "video_preprocessor_config.json",
    "audio_tokenizer_config.json",
)
ST_NAMESPACE = "sentence_transformers."
ST_TYPES_FILE = "allowlist/sentence-transformers-modules.json"
# libraries diffusers resolves ``[library, Class]`` components from (its own
# ``LOADABLE_CLASSES`` and the pipelines' ``ALL_IMPORTABLE_CLASSES``); anything else is a
# custom component: a module file in the repo, or a module of another repo
DIFFUSERS_LIBRARIES = frozenset({"diffusers", "transformers", "onnxruntime.training"})
# diffusers.pipelines subpackages a component may name as its library (diffusers 0.42);
# tests/test_custom_code.py checks the installed diffusers against it
DIFFUSERS_PIPELINE_MODULES = frozenset(
    [
        "ace_step",
        "allegro",
        "animatediff",
        "anyflow",
        "audioldm2",
        "aura_flow",
        "bria",
        "bria_fibo",
        "bria_fibo2",
        "chroma",
        "chronoedit",
        "cogvideo",
        "cogview3",
        "cogview4",
        "consisid",
        "consistency_models",
        "controlnet",
        "controlnet_hunyuandit",
        "controlnet_sd3",
        "cosmos",
        "ddim",
        "ddpm",
        "deepfloyd_if",
        "deprecated",
        "diffusion_gemma",
        "dit",
        "dreamlite",
        "easyanimate",
        "ernie_image",
        "flux",
        "flux2",
        "glm_image",
        "helios",
        "hidream_image",
        "hunyuan_image",
        "hunyuan_video",
        "hunyuan_video1_5",
        "hunyuandit",
        "ideogram4",
        "joyimage",
        "kandinsky",
        "kandinsky2_2",
        "kandinsky3",
        "kandinsky5",
        "kandinsky6",
        "kolors",
        "krea2",
        "latent_consistency_models",
        "latent_diffusion",
        "latte",
        "ledits_pp",
        "llada2",
        "longcat_audio_dit",
        "longcat_image",
        "ltx",
        "ltx2",
        "lucy",
        "lumina",
        "lumina2",
        "marigold",
        "mochi",
        "motif_video",
        "nucleusmoe_image",
        "omnigen",
        "ovis_image",
        "pag",
        "pixart_alpha",
        "prx",
        "qwenimage",
        "qwenimage21",
        "rfd4_proteina",
        "sana",
        "sana_video",
        "sana_wm",
        "shap_e",
        "skyreels_v2",
        "stable_audio",
        "stable_audio_3",
        "stable_cascade",
        "stable_diffusion",
        "stable_diffusion_3",
        "stable_diffusion_xl",
        "stable_video_diffusion",
        "t2i_adapter",
        "visualcloze",
        "wan",
        "z_image",
    ]
)

# data decoders: a constant argument is decoded (folded); a computed one marks the result as
# decoded data, named when it reaches exec/eval/compile
DECODERS = frozenset(
    {
        "base64.b64decode",
        "base64.standard_b64decode",
        "base64.urlsafe_b64decode",
        "base64.b32decode",
        "base64.b16decode",
        "base64.a85decode",
        "base64.b85decode",
        "base64.decodebytes",
        "binascii.a2b_base64",
        "binascii.unhexlify",
        "binascii.a2b_hex",
        "zlib.decompress",
        "gzip.decompress",
        "bz2.decompress",
        "lzma.decompress",
        "codecs.decode",
        "marshal.loads",
        "pickle.loads",
        "bytes.fromhex",
        "builtins.bytes.fromhex",
    }
)
RUNS_CODE = frozenset(
    {
        "builtins.exec",
        "builtins.eval",
        "builtins.compile",
        "types.FunctionType",
        "types.LambdaType",
        "types.CodeType",
    }
)
IMPORTERS = frozenset({"builtins.__import__", "importlib.import_module", "importlib.__import__"})
GETATTRS = frozenset(
    {
        "builtins.getattr",
        "builtins.object.__getattribute__",
        "builtins.type.__getattribute__",
        "inspect.getattr_static",
    }
)
STR_METHODS = PURE_STR_METHODS | {
    "decode",
    "encode",
    "translate",
    "zfill",
    "center",
    "ljust",
    "rjust",
    "__add__",
    "__mul__",
    "__mod__",
    "__getitem__",
}
_BUILTIN_NAMES = frozenset(dir(builtins))


# ---- where code is named ------------------------------------------------------------------


def _refs(value: Any) -> list[str]:
    """The class references in an ``auto_map`` value: a string, a ``[slow, fast]`` list, or a
    backend dict (image processors)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    return []


def _emit_code_refs(ctx: Context, where: Location, file: str, key: str, refs: list[str]) -> None:
    if not refs:
        return
    ctx.emit(
        "repo.remote-code",
        ", ".join(refs)[:300],
        where.at(key=key),
        file=file,
        key=key,
    )
    for ref in refs:
        if "--" in ref:
            ctx.emit(
                "repo.cross-repo-code",
                ref,
                where.at(key=key),
                repo=ref.split("--", 1)[0],
                file=file,
                key=key,
            )


def check_auto_map(data: Any, where: Location, ctx: Context) -> None:
    """``auto_map`` (and, in ``config.json``, ``custom_pipelines``; in
    ``processor_config.json``, the nested sub-processor configs) of one config file."""
    if not isinstance(data, dict):
        return
    file = os.path.basename(where.path)
    auto_map = data.get("auto_map")
    if isinstance(auto_map, dict):
        refs = [r for v in auto_map.values() for r in _refs(v)]
        _emit_code_refs(ctx, where, file, "auto_map", refs)
    elif isinstance(auto_map, list):  # old tokenizer configs: [slow, fast]
        _emit_code_refs(ctx, where, file, "auto_map", _refs(auto_map))
    for name, sub in data.items():
        if isinstance(sub, dict) and name != "auto_map" and isinstance(sub.get("auto_map"), dict):
            refs = [r for v in sub["auto_map"].values() for r in _refs(v)]
            _emit_code_refs(ctx, where, file, f"{name}.auto_map", refs)
    pipelines = data.get("custom_pipelines")
    if isinstance(pipelines, dict):
        for task, info in pipelines.items():
            if isinstance(info, dict):
                _emit_code_refs(
                    ctx, where, file, f"custom_pipelines.{task}.impl", _refs(info.get("impl"))
                )


@lru_cache(maxsize=1)
def st_module_types() -> frozenset[str]:
    """The module classes sentence-transformers ships (generated from the package)."""
    from ..engine import rules_dir

    data = json.loads((rules_dir() / ST_TYPES_FILE).read_text(encoding="utf-8"))
    return frozenset(str(t) for t in data["types"])


def check_modules_json(data: Any, where: Location, ctx: Context) -> None:
    """sentence-transformers ``modules.json``: module types the library does not ship."""
    if not isinstance(data, list):
        return
    for i, module in enumerate(data):
        kind = module.get("type") if isinstance(module, dict) else None
        if not isinstance(kind, str):
            continue
        key = f"[{i}].type"
        if not kind.startswith(ST_NAMESPACE):
            _emit_code_refs(ctx, where, "modules.json", key, [kind])
        elif kind not in st_module_types():
            ctx.emit("repo.unknown-module-type", kind, where.at(key=key), file="modules.json")


def check_model_index(data: Any, where: Location, ctx: Context) -> None:
    """diffusers ``model_index.json``: a custom pipeline class (``_class_name`` as
    ``[module, Class]``) or a component ``[library, Class]`` whose library is neither a
    library diffusers loads from nor one of its pipeline modules (a ``<component>/<library>.py``
    file of the repo, another repo, or any installed package, imported by name)."""
    if not isinstance(data, dict):
        return
    custom = data.get("_class_name")
    if isinstance(custom, list) and len(custom) == 2 and all(isinstance(c, str) for c in custom):
        _emit_code_refs(ctx, where, "model_index.json", "_class_name", [f"{custom[0]}.{custom[1]}"])
    for name, value in data.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        library, cls = value
        if not isinstance(library, str) or not isinstance(cls, str):
            continue
        if library in DIFFUSERS_LIBRARIES or library in DIFFUSERS_PIPELINE_MODULES:
            continue
        ref = f"{library}--{cls}" if "/" in library else f"{library}.{cls}"
        _emit_code_refs(ctx, where, "model_index.json", name, [ref])


def check_pipeline_py(root: str, ctx: Context) -> None:
    """A root ``pipeline.py`` is what ``DiffusionPipeline.from_pretrained(custom_pipeline=
    <this repo>)`` imports."""
    path = os.path.join(root, "pipeline.py")
    if os.path.isfile(path) and os.path.isfile(os.path.join(root, "model_index.json")):
        _emit_code_refs(ctx, Location(path), "pipeline.py", "pipeline.py", ["pipeline"])


# ---- the Python check ---------------------------------------------------------------------

# abstract values: ("c", const) a folded constant; ("r", dotted) a module or object known by
# identity; ("d", dotted) its namespace dict; ("g",) globals(); ("ga", dotted) a bound
# __getattribute__; ("ag", names|None) operator.attrgetter; ("mc", name|None) methodcaller;
# ("m", const, method) a bound str/bytes method; ("t", decoder) decoded data; ("u",) unknown
Val = tuple[Any, ...]
UNKNOWN: Val = ("u",)


class _Budget(Exception):
    pass


@dataclass
class _Scope:
    node: ast.AST
    parent: _Scope | None
    bindings: dict[str, list[ast.AST | Val]] = field(default_factory=dict)
    globals_: set[str] = field(default_factory=set)


@dataclass
class _Hit:
    rule: str  # "call" (H103) or "dynamic" (H105)
    name: str
    line: int
    what: str


class _Analyzer:
    def __init__(self, tree: ast.Module, table: Callables) -> None:
        self.table = table
        self.steps = 0
        self.depth = 0
        self.hits: dict[tuple[str, str, int], _Hit] = {}
        self.module = _Scope(tree, None)
        self.scope_of: dict[int, _Scope] = {}
        self.memo: dict[int, frozenset[Val]] = {}
        self.name_memo: dict[tuple[int, str], frozenset[Val]] = {}
        self.in_progress: set[tuple[int, str]] = set()
        self.partial: dict[tuple[int, str], set[Val]] = {}
        self.star: list[str] = []
        self._bind_scope(tree, self.module)

    # -- binding pass
    def _bind_scope(self, root: ast.AST, scope: _Scope) -> None:
        stack: list[ast.AST] = list(reversed(list(ast.iter_child_nodes(root))))
        while stack:
            node = stack.pop()
            self.scope_of[id(node)] = scope
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                inner = _Scope(node, scope)
                if not isinstance(node, ast.Lambda):
                    self._bind(scope, node.name, UNKNOWN)
                    stack.extend(node.decorator_list)
                args = node.args
                for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
                    if a is not None:
                        self._bind(inner, a.arg, UNKNOWN)
                for d in (*args.defaults, *args.kw_defaults):
                    if d is not None:
                        stack.append(d)
                body = node.body if isinstance(node.body, list) else [node.body]
                for child in body:
                    self.scope_of[id(child)] = inner
                    self._bind_scope_node(child, inner)
                continue
            if isinstance(node, ast.ClassDef):
                self._bind(scope, node.name, UNKNOWN)
                stack.extend(node.bases)
                stack.extend(node.decorator_list)
                inner = _Scope(node, scope)
                for child in node.body:
                    self.scope_of[id(child)] = inner
                    self._bind_scope_node(child, inner)
                continue
            self._bind_node(node, scope)
            stack.extend(reversed(list(ast.iter_child_nodes(node))))

    def _bind_scope_node(self, node: ast.AST, scope: _Scope) -> None:
        wrapper = ast.Module(body=[], type_ignores=[])
        wrapper.body = [node]  # type: ignore[list-item]
        self._bind_scope(wrapper, scope)

    def _bind(self, scope: _Scope, name: str, value: ast.AST | Val) -> None:
        target = self.module if name in scope.globals_ else scope
        values = target.bindings.setdefault(name, [])
        if len(values) < 64:
            values.append(value)

    def _bind_target(self, scope: _Scope, target: ast.AST, value: ast.AST | Val) -> None:
        if isinstance(target, ast.Name):
            self._bind(scope, target.id, value)
        elif isinstance(target, ast.Tuple | ast.List):
            elts = value.elts if isinstance(value, ast.Tuple | ast.List) else None
            for i, t in enumerate(target.elts):
                if isinstance(t, ast.Starred):
                    self._bind_target(scope, t.value, UNKNOWN)
                elif elts is not None and len(elts) == len(target.elts):
                    self._bind_target(scope, t, elts[i])
                else:
                    self._bind_target(scope, t, UNKNOWN)
        elif isinstance(target, ast.Starred):
            self._bind_target(scope, target.value, UNKNOWN)

    def _bind_node(self, node: ast.AST, scope: _Scope) -> None:
        if isinstance(node, ast.Global | ast.Nonlocal):
            scope.globals_.update(node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    self._bind(scope, a.asname, ("r", a.name))
                else:
                    self._bind(scope, a.name.split(".")[0], ("r", a.name.split(".")[0]))
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.name == "*":
                    if node.module and not node.level:
                        self.star.append(node.module)
                    continue
                value: Val = (
                    ("r", f"{node.module}.{a.name}") if node.module and not node.level else UNKNOWN
                )
                self._bind(scope, a.asname or a.name, value)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                self._bind_target(scope, t, node.value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self._bind_target(scope, node.target, node.value)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            self._bind(
                scope,
                node.target.id,
                ast.BinOp(
                    left=ast.Name(id=node.target.id, ctx=ast.Load()), op=node.op, right=node.value
                ),
            )
        elif isinstance(node, ast.NamedExpr):
            self._bind_target(scope, node.target, node.value)
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
            self._bind_target(scope, node.target, UNKNOWN)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            self._bind_target(scope, node.optional_vars, node.context_expr)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            self._bind(scope, node.name, UNKNOWN)

    # -- evaluation
    def _step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _Budget

    def lookup(self, name: str, scope: _Scope) -> frozenset[Val]:
        s: _Scope | None = scope
        while s is not None:
            if isinstance(s.node, ast.ClassDef) and s is not scope:
                s = s.parent  # a class body does not enclose its methods
                continue
            if name in s.bindings:
                return self._binding(s, name)
            s = s.parent
        if name == "__builtins__":
            return frozenset({("r", "builtins"), ("d", "builtins")})
        if name in ("__name__", "__package__"):  # the module itself: sys.modules[__name__]
            return frozenset({("c", "<this module>")})
        if name in ("__builtin__",):
            return frozenset({UNKNOWN})
        out: set[Val] = {("r", f"{m}.{name}") for m in self.star}
        if name in _BUILTIN_NAMES:
            out.add(("r", f"builtins.{name}"))
        return frozenset(out or {UNKNOWN})

    def _binding(self, scope: _Scope, name: str) -> frozenset[Val]:
        key = (id(scope.node), name)
        if key in self.name_memo:
            return self.name_memo[key]
        if key in self.in_progress:  # `s += "x"`: the values found so far
            return _cap(self.partial.get(key, set()) or {UNKNOWN})
        self.in_progress.add(key)
        out: set[Val] = set()
        self.partial[key] = out
        try:
            for value in scope.bindings[name]:
                if isinstance(value, tuple):
                    out.add(value)
                else:
                    out |= self.ev(value, scope)
            result = _cap(out)
        finally:
            self.in_progress.discard(key)
            self.partial.pop(key, None)
        self.name_memo[key] = result
        return result

    def ev(self, node: ast.AST, scope: _Scope | None = None) -> frozenset[Val]:
        scope = scope or self.scope_of.get(id(node), self.module)
        memo = self.memo.get(id(node))
        if memo is not None:
            return memo
        self._step()
        if self.depth > MAX_DEPTH:
            return frozenset({UNKNOWN})
        self.depth += 1
        try:
            result = _cap(self._ev(node, scope))
        finally:
            self.depth -= 1
        if not self.in_progress:
            self.memo[id(node)] = result
        return result

    def _ev(self, node: ast.AST, scope: _Scope) -> set[Val]:
        if isinstance(node, ast.Constant):
            return {_const(node.value)}
        if isinstance(node, ast.Name):
            return set(self.lookup(node.id, scope))
        if isinstance(node, ast.Attribute):
            return {self._attr(v, node.attr, node) for v in self.ev(node.value, scope)}
        if isinstance(node, ast.Subscript):
            return self._subscript(node, scope)
        if isinstance(node, ast.BinOp):
            out: set[Val] = set()
            for a in self.ev(node.left, scope):
                for b in self.ev(node.right, scope):
                    out.add(_binop(a, node.op, b))
            return out
        if isinstance(node, ast.UnaryOp):
            return {_unary(node.op, v) for v in self.ev(node.operand, scope)}
        if isinstance(node, ast.JoinedStr):
            return self._fstring(node, scope)
        if isinstance(node, ast.Tuple | ast.List):
            return self._seq(node.elts, scope)
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        if isinstance(node, ast.IfExp):
            return set(self.ev(node.body, scope) | self.ev(node.orelse, scope))
        if isinstance(node, ast.BoolOp):
            out = set()
            for v in node.values:
                out |= self.ev(v, scope)
            return out
        if isinstance(node, ast.NamedExpr):
            return set(self.ev(node.value, scope))
        if isinstance(node, ast.Starred):
            return set(self.ev(node.value, scope))
        return {UNKNOWN}

    def _seq(self, elts: list[ast.expr], scope: _Scope) -> set[Val]:
        items: list[Any] = []
        for e in elts:
            if isinstance(e, ast.Starred):
                return {UNKNOWN}
            vals = self.ev(e, scope)
            if len(vals) != 1:
                return {UNKNOWN}
            (v,) = vals
            if v[0] != "c":
                return {UNKNOWN}
            items.append(v[1])
        return {("c", tuple(items))}

    def _fstring(self, node: ast.JoinedStr, scope: _Scope) -> set[Val]:
        parts: list[str] = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                parts.append(v.value)
                continue
            if not isinstance(v, ast.FormattedValue):
                return {UNKNOWN}
            vals = self.ev(v.value, scope)
            if len(vals) != 1:
                return {UNKNOWN}
            (val,) = vals
            if val[0] != "c":
                return {UNKNOWN}
            spec = ""
            if v.format_spec is not None:
                sv = self._fstring(v.format_spec, scope)  # type: ignore[arg-type]
                if len(sv) != 1 or next(iter(sv))[0] != "c":
                    return {UNKNOWN}
                spec = str(next(iter(sv))[1])
            try:
                x = val[1]
                if v.conversion == 115:
                    x = str(x)
                elif v.conversion == 114:
                    x = repr(x)
                elif v.conversion == 97:
                    x = ascii(x)
                parts.append(format(x, spec))
            except (ValueError, TypeError):
                return {UNKNOWN}
        return {_const("".join(parts))}

    def _attr(self, v: Val, attr: str, node: ast.AST) -> Val:
        kind = v[0]
        if kind == "r":
            if attr == "__dict__":
                return ("d", v[1])
            if attr == "__call__":
                return v
            if attr in ("__getattribute__", "__getattr__"):
                return ("ga", v[1])
            if attr == "__builtins__":
                return ("r", "builtins")
            return ("r", f"{v[1]}.{attr}")
        if kind == "c" and isinstance(v[1], str | bytes) and attr in STR_METHODS:
            return ("m", v[1], attr)
        if kind == "d" and attr == "get":
            return ("dg", v[1])
        if kind == "g" and attr == "get":
            return ("gg",)
        if kind == "t" and attr in ("decode", "encode", "strip"):
            return ("tm", v[1])
        return UNKNOWN

    def _subscript(self, node: ast.Subscript, scope: _Scope) -> set[Val]:
        out: set[Val] = set()
        keys = self.ev(node.slice, scope) if not isinstance(node.slice, ast.Slice) else None
        for v in self.ev(node.value, scope):
            if isinstance(node.slice, ast.Slice):
                out.add(self._slice(v, node.slice, scope))
                continue
            assert keys is not None
            for k in keys:
                out |= self._item(v, k, node)
        return out

    def _item(self, v: Val, k: Val, node: ast.AST) -> set[Val]:
        namespace = _namespace(v)
        if namespace is not None:
            if k[0] == "c" and isinstance(k[1], str):
                return {self._constructed(r, node) for r in self._resolve_in(namespace, k[1])}
            if namespace in ("<globals>", "<modules>") or self.table.has_code_attribute(namespace):
                self._dynamic(namespace, node, "subscript")
            return {UNKNOWN}
        if v[0] == "c" and k[0] == "c":
            try:
                return {_const(v[1][k[1]])}
            except (TypeError, IndexError, KeyError):
                return {UNKNOWN}
        if v[0] == "t":
            return {v}
        return {UNKNOWN}

    def _resolve_in(self, namespace: str, name: str) -> frozenset[Val]:
        """``name`` looked up in the namespace of ``namespace`` (``"<globals>"``: the
        module's globals, ``"<modules>"``: ``sys.modules``)."""
        if namespace == "<modules>":
            return frozenset({("r", name)})
        if namespace == "<globals>":
            return self.lookup(name, self.module)
        return frozenset({("r", f"{namespace}.{name}")})

    def _slice(self, v: Val, s: ast.Slice, scope: _Scope) -> Val:
        if v[0] != "c" or not isinstance(v[1], str | bytes | tuple):
            return v if v[0] == "t" else UNKNOWN
        bounds: list[Any] = []
        for part in (s.lower, s.upper, s.step):
            if part is None:
                bounds.append(None)
                continue
            vals = self.ev(part, scope)
            if len(vals) != 1 or next(iter(vals))[0] != "c":
                return UNKNOWN
            bounds.append(next(iter(vals))[1])
        try:
            return _const(v[1][slice(*bounds)])
        except (TypeError, ValueError):
            return UNKNOWN

    # -- calls
    def _args(self, node: ast.Call, scope: _Scope) -> list[frozenset[Val]]:
        return [self.ev(a, scope) for a in node.args]

    def _call(self, node: ast.Call, scope: _Scope) -> set[Val]:
        funcs = self.ev(node.func, scope)
        args = self._args(node, scope)
        kwargs = {k.arg: self.ev(k.value, scope) for k in node.keywords if k.arg}
        out: set[Val] = set()
        for f in funcs:
            out |= self._apply(f, args, kwargs, node)
        return out

    def _apply(
        self,
        f: Val,
        args: list[frozenset[Val]],
        kwargs: dict[str, frozenset[Val]],
        node: ast.Call,
    ) -> set[Val]:
        kind = f[0]
        if kind == "m":
            return _fold_method(f[1], f[2], args, kwargs)
        if kind == "tm":
            return {("t", f[1])}
        if kind in ("dg", "gg"):
            namespace = f[1] if kind == "dg" else "<globals>"
            if not args:
                return {UNKNOWN}
            found: set[Val] = set()
            for k in args[0]:
                found |= self._item(("d", namespace) if kind == "dg" else ("g",), k, node)
            return found
        if kind == "ga":
            return self._getattr({("r", f[1])}, args[0] if args else frozenset(), node)
        if kind == "ag":
            out: set[Val] = set()
            for obj in args[0] if args else ():
                for name in f[1] or ():
                    out.add(self._constructed(self._path(obj, name, node), node))
                if f[1] is None and _namespace_of_obj(obj, self.table):
                    self._dynamic(obj[1], node, "operator.attrgetter")
            return out or {UNKNOWN}
        if kind == "mc":
            for obj in args[0] if args else ():
                if f[1] is not None:
                    target = self._path(obj, f[1], node)
                    if target[0] == "r":
                        self._report_call(target[1], node, "operator.methodcaller")
                elif _namespace_of_obj(obj, self.table):
                    self._dynamic(obj[1], node, "operator.methodcaller")
            return {UNKNOWN}
        if kind != "r":
            return {UNKNOWN}
        name = _canonical(f[1])
        if name in GETATTRS:
            if len(args) >= 2:
                return self._getattr(args[0], args[1], node)
            return {UNKNOWN}
        if name in IMPORTERS:
            return self._import(name, args, node)
        if name == "pkgutil.resolve_name" and args:
            out = set()
            for a in args[0]:
                if a[0] == "c" and isinstance(a[1], str):
                    out.add(self._constructed(("r", a[1].replace(":", ".")), node))
                else:
                    self._dynamic("pkgutil", node, "pkgutil.resolve_name")
            self._report_call(name, node)
            return out
        if name in ("builtins.vars", "builtins.globals"):
            if name == "builtins.vars" and args:
                return {("d", a[1]) if a[0] == "r" else UNKNOWN for a in args[0]}
            return {("g",)}
        if name == "builtins.locals":  # a function's locals: no builtins, no module globals
            return {UNKNOWN}
        if name in ("operator.attrgetter", "_operator.attrgetter"):
            names = [a[1] for vals in args for a in vals if a[0] == "c" and isinstance(a[1], str)]
            known = len(names) == sum(len(v) for v in args) and names
            return {("ag", tuple(names) if known else None)}
        if name in ("operator.methodcaller", "_operator.methodcaller"):
            first = args[0] if args else frozenset()
            consts = [a[1] for a in first if a[0] == "c" and isinstance(a[1], str)]
            return (
                {("mc", c) for c in consts}
                if consts and len(consts) == len(first)
                else {("mc", None)}
            )
        if name in ("functools.partial", "functools.partialmethod") and args:
            out = set()
            for inner in args[0]:
                out |= self._apply(inner, args[1:], kwargs, node)
            return out | set(args[0])
        if name in DECODERS:
            folded = _decode(name, args, kwargs)
            if folded is not None:
                return {folded}
            self._report_call(name, node)
            return {("t", name)}
        if name in RUNS_CODE:
            decoded = sorted({a[1] for vals in args for a in vals if a[0] == "t"})
            self._report_call(name, node, taint=decoded)
            return {("t", name)} if name == "builtins.compile" else {UNKNOWN}
        folded_builtin = _fold_builtin(name, args)
        if folded_builtin is not None:
            return {folded_builtin}
        self._report_call(name, node)
        return {UNKNOWN}

    def _getattr(
        self, objs: frozenset[Val] | set[Val], names: frozenset[Val], node: ast.AST
    ) -> set[Val]:
        out: set[Val] = set()
        for obj in objs:
            for n in names or {UNKNOWN}:
                if n[0] == "c" and isinstance(n[1], str):
                    out.add(self._constructed(self._path(obj, n[1], node), node))
                elif _namespace_of_obj(obj, self.table):
                    self._dynamic(obj[1], node, "getattr")
        return out or {UNKNOWN}

    def _path(self, obj: Val, dotted: str, node: ast.AST) -> Val:
        for part in dotted.split("."):
            if not part:
                return UNKNOWN
            if obj[0] in ("d", "g"):
                found = self._item(obj, ("c", part), node)
                obj = next(iter(found)) if len(found) == 1 else UNKNOWN
            else:
                obj = self._attr(obj, part, node)
        return obj

    def _constructed(self, v: Val, node: ast.AST) -> Val:
        """A value reached by a computed name: a dangerous callable is reported even if the
        call is out of sight (passed on, stored)."""
        if v[0] == "r":
            hit = self._entry(v[1])
            if hit is not None and hit.code:
                self._hit(
                    "call", _canonical(v[1]), node, f"{hit.what} (reached by a computed name)"
                )
        return v

    def _import(self, name: str, args: list[frozenset[Val]], node: ast.Call) -> set[Val]:
        out: set[Val] = set()
        for a in args[0] if args else {UNKNOWN}:
            if a[0] == "c" and isinstance(a[1], str) and a[1]:
                mod = a[1]
                out.add(("r", mod))
                if name == "builtins.__import__":
                    out.add(("r", mod.split(".")[0]))
                if self.table.has_code_attribute(mod):
                    self._hit("call", name, node, f"imports `{mod}` by a computed name")
            elif not self._inside_package(name, args):
                self._dynamic("<import>", node, name)
        return out

    def _inside_package(self, name: str, args: list[frozenset[Val]]) -> bool:
        """``import_module(f".{x}", "pkg")``: a relative import inside a constant package
        that holds no dangerous callables reaches only that package's modules."""
        if name != "importlib.import_module" or len(args) < 2 or len(args[1]) != 1:
            return False
        (package,) = args[1]
        return (
            package[0] == "c"
            and isinstance(package[1], str)
            and bool(package[1])
            and not self.table.has_code_attribute(package[1])
            and self._entry(package[1] + ".x") is None
        )

    def _entry(self, dotted: str) -> Dangerous | None:
        """The entry for ``dotted`` or for any of its dotted tails (``pathlib.os.system`` is
        ``os.system``, as for pickles): a reported one first, an exact one before a
        module-wide one."""
        hits = [h for t in dotted_tails(_canonical(dotted)) if (h := self.table.lookup(t))]
        hits.sort(key=lambda h: (not h.code, h.name is None))
        return hits[0] if hits else None

    def _report_call(
        self, name: str, node: ast.AST, via: str | None = None, taint: list[str] | None = None
    ) -> None:
        name = _canonical(name)
        hit = self._entry(name)
        if name == "builtins.open" and isinstance(node, ast.Call) and _writes(node, self):
            target = _outside_path(node, self)
            if target is not None:
                self._hit("call", name, node, f"opens `{target}` for writing")
            return
        if hit is None or not hit.code:
            return
        what = hit.what
        if taint:
            what += f" decoded at run time by {', '.join(f'`{t}`' for t in taint)}"
        if via:
            what += f" (called through `{via}`)"
        self._hit("call", name, node, what)

    def _dynamic(self, namespace: str, node: ast.AST, via: str) -> None:
        if namespace == "<import>":
            what = f"imports a module whose name is computed at run time (`{via}`)"
            self._hit("dynamic", via, node, what)
            return
        what = f"looks up an attribute of `{namespace}` by a name computed at run time ({via})"
        self._hit("dynamic", namespace, node, what)

    def _hit(self, rule: str, name: str, node: ast.AST, what: str) -> None:
        line = getattr(node, "lineno", 0)
        key = (rule, name, line)
        if key not in self.hits:
            self.hits[key] = _Hit(rule, name, line, what)

    # -- driver
    def run(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) or (
                isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
            ):
                self.ev(node)


def _namespace(v: Val) -> str | None:
    if v[0] == "d":
        return str(v[1])
    if v[0] == "g":
        return "<globals>"
    if v == ("r", "sys.modules"):
        return "<modules>"
    return None


def _namespace_of_obj(obj: Val, table: Callables) -> bool:
    return obj[0] in ("r", "d") and table.has_code_attribute(_canonical(obj[1]))


def _canonical(name: str) -> str:
    for alias in ("__builtin__.", "__builtins__."):
        if name.startswith(alias):
            return "builtins." + name[len(alias) :]
    return name


def _cap(values: set[Val] | frozenset[Val]) -> frozenset[Val]:
    if len(values) > MAX_VALUES:
        return frozenset({UNKNOWN})
    return frozenset(values)


def _const(value: Any) -> Val:
    if isinstance(value, str | bytes) and len(value) > MAX_STR:
        return UNKNOWN
    if isinstance(value, list):
        value = tuple(value)
    try:
        hash(value)
    except TypeError:
        return UNKNOWN
    return ("c", value)


def _binop(a: Val, op: ast.operator, b: Val) -> Val:
    if a[0] == "t" or b[0] == "t":
        return a if a[0] == "t" else b
    if a[0] != "c" or b[0] != "c":
        return UNKNOWN
    x, y = a[1], b[1]
    try:
        if isinstance(op, ast.Add) and type(x) is type(y) and isinstance(x, str | bytes | tuple):
            return _const(x + y)
        if isinstance(op, ast.Add | ast.Sub) and isinstance(x, int) and isinstance(y, int):
            return _const(x + y if isinstance(op, ast.Add) else x - y)
        if isinstance(op, ast.Mult) and isinstance(x, int) and isinstance(y, int):
            return _const(x * y) if abs(x) < 1 << 32 and abs(y) < 1 << 32 else UNKNOWN
        if isinstance(op, ast.Mult) and isinstance(x, str | bytes) and isinstance(y, int):
            return _const(x * y) if len(x) * y <= MAX_STR else UNKNOWN
        if isinstance(op, ast.Mod) and isinstance(x, str):
            return _const(x % y)
        if isinstance(op, ast.BitXor) and isinstance(x, int) and isinstance(y, int):
            return _const(x ^ y)
    except (TypeError, ValueError, OverflowError):
        return UNKNOWN
    return UNKNOWN


def _unary(op: ast.unaryop, v: Val) -> Val:
    if v[0] != "c" or not isinstance(v[1], int):
        return UNKNOWN
    if isinstance(op, ast.USub):
        return _const(-v[1])
    if isinstance(op, ast.UAdd):
        return v
    if isinstance(op, ast.Invert):
        return _const(~v[1])
    return UNKNOWN


def _single_consts(args: list[frozenset[Val]]) -> list[Any] | None:
    out = []
    for vals in args:
        if len(vals) != 1:
            return None
        (v,) = vals
        if v[0] != "c":
            return None
        out.append(v[1])
    return out


def _fold_method(
    obj: Any, method: str, args: list[frozenset[Val]], kwargs: dict[str, frozenset[Val]]
) -> set[Val]:
    consts = _single_consts(args)
    kw = _single_consts(list(kwargs.values()))
    if consts is None or kw is None:
        return {UNKNOWN}
    try:
        if method == "format" and isinstance(obj, str):
            return {_const(obj.format(*consts, **dict(zip(kwargs, kw, strict=True))))}
        if method == "join" and consts and isinstance(consts[0], tuple | str):
            return {_const(obj.join(consts[0]))}
        sized = method in ("center", "ljust", "rjust", "zfill", "__mul__")
        if sized and consts and isinstance(consts[0], int) and consts[0] > MAX_STR:
            return {UNKNOWN}
        result = getattr(obj, method)(*consts)
    except (TypeError, ValueError, LookupError, AttributeError, UnicodeError):
        return {UNKNOWN}
    return {_const(result)}


def _fold_builtin(name: str, args: list[frozenset[Val]]) -> Val | None:
    """A folded result of a pure builtin over constants, or None (not such a call)."""
    pure = {
        "builtins.chr",
        "builtins.ord",
        "builtins.str",
        "builtins.bytes",
        "builtins.bytearray",
        "builtins.reversed",
        "builtins.sorted",
        "builtins.list",
        "builtins.tuple",
        "builtins.int",
        "builtins.map",
        "builtins.bytes.fromhex",
        "builtins.str.join",
        "builtins.str.format",
        "builtins.str.lower",
        "builtins.str.upper",
        "builtins.bytes.decode",
    }
    if name not in pure:
        return None
    if name == "builtins.map" and len(args) == 2 and args[0] == frozenset({("r", "builtins.chr")}):
        seq = _single_consts(args[1:])
        if seq is None or not isinstance(seq[0], tuple | list):
            return UNKNOWN
        try:
            return _const(tuple(chr(c) for c in seq[0]))
        except (TypeError, ValueError, OverflowError):
            return UNKNOWN
    consts = _single_consts(args)
    if consts is None:
        return UNKNOWN
    try:
        method_call = name.startswith(("builtins.str.", "builtins.bytes."))
        if method_call and name != "builtins.bytes.fromhex":
            method = name.rsplit(".", 1)[1]
            return _const(getattr(consts[0], method)(*consts[1:]))
        if name in ("builtins.bytes", "builtins.bytearray"):
            if consts and isinstance(consts[0], int):
                return UNKNOWN
            return _const(bytes(*consts))
        if name == "builtins.bytes.fromhex":
            return _const(bytes.fromhex(*consts))
        if name in ("builtins.reversed", "builtins.sorted", "builtins.list", "builtins.tuple"):
            if name == "builtins.reversed":
                return _const(tuple(reversed(*consts)))
            if name == "builtins.sorted":
                return _const(tuple(sorted(*consts)))
            return _const(tuple(*consts))
        if name == "builtins.chr":
            return _const(chr(*consts))
        if name == "builtins.ord":
            return _const(ord(*consts))
        if name == "builtins.str":
            return _const(str(*consts))
        return _const(int(*consts))
    except (TypeError, ValueError, OverflowError, LookupError, UnicodeError):
        return UNKNOWN


def _decode(name: str, args: list[frozenset[Val]], kwargs: dict[str, frozenset[Val]]) -> Val | None:
    """A decoder over constants, folded under the string budget; None when not constant."""
    consts = _single_consts(args)
    kw = _single_consts(list(kwargs.values()))
    if not consts or kw is None:
        return None
    data = consts[0]
    options = dict(zip(kwargs, kw, strict=True))
    try:
        if name == "codecs.decode":
            encoding = consts[1] if len(consts) > 1 else options.get("encoding", "utf-8")
            return _const(codecs.decode(data, encoding))
        if name in ("bytes.fromhex", "builtins.bytes.fromhex"):
            return _const(bytes.fromhex(data))
        if name == "zlib.decompress":
            d = zlib.decompressobj()
            return _const(d.decompress(data, MAX_STR + 1))
        if name.startswith("base64."):
            fn = getattr(base64, name.split(".", 1)[1])
            return _const(fn(data))
        if name.startswith("binascii."):
            return _const(getattr(binascii, name.split(".", 1)[1])(data))
    except (TypeError, ValueError, LookupError, zlib.error, binascii.Error):
        return UNKNOWN
    return None


def _writes(call: ast.Call, analyzer: _Analyzer) -> bool:
    mode = (
        call.args[1]
        if len(call.args) > 1
        else next((k.value for k in call.keywords if k.arg == "mode"), None)
    )
    if mode is None:
        return False
    return any(
        v[0] == "c" and isinstance(v[1], str) and any(c in v[1] for c in "wax+")
        for v in analyzer.ev(mode)
    )


def _outside_path(call: ast.Call, analyzer: _Analyzer) -> str | None:
    """The constant path an ``open`` call writes when it lies outside any repo or cache
    folder the code is given (absolute, ``~``, or climbing with ``..``); None otherwise.
    Writing files under a path the caller passes is what ``save_vocabulary`` does."""
    if not call.args:
        return None
    for v in analyzer.ev(call.args[0]):
        if v[0] == "c" and isinstance(v[1], str):
            path = v[1]
            if path.startswith(("/", "~", "\\")) or ".." in path.replace("\\", "/").split("/"):
                return path
    return None


def analyse_source(
    source: bytes, filename: str, table: Callables | None = None
) -> tuple[list[_Hit], str | None]:
    """The findings for one Python source, and why the analysis is incomplete (or None).
    SyntaxError and friends propagate."""
    tree = ast.parse(source, filename=filename)
    analyzer = _Analyzer(tree, table or load_callables())
    incomplete = None
    try:
        analyzer.run(tree)
    except _Budget:
        incomplete = f"the folding budget ({MAX_STEPS} steps) ran out"
    except RecursionError:
        incomplete = "the expressions nest too deeply"
    hits = sorted(analyzer.hits.values(), key=lambda h: (h.line, h.rule, h.name))
    return hits, incomplete


def check_python(path: str, where: Location, ctx: Context) -> None:
    try:
        with open(path, "rb") as f:
            source = f.read(MAX_SOURCE + 1)
    except OSError as exc:
        ctx.emit(
            "repo.unanalysed", os.path.basename(path), where, message=f"cannot read: {exc.strerror}"
        )
        return
    if len(source) > MAX_SOURCE:
        ctx.emit(
            "repo.unanalysed",
            os.path.basename(path),
            where,
            message="Python file over 2 MiB was not analysed",
        )
        return
    try:
        hits, incomplete = analyse_source(source, path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        ctx.emit(
            "repo.unanalysed",
            os.path.basename(path),
            where,
            message=f"Python file does not parse: {type(exc).__name__}",
        )
        return
    if incomplete:
        ctx.emit(
            "repo.unanalysed",
            os.path.basename(path),
            where,
            message=f"custom-code analysis incomplete: {incomplete}",
        )
    lines = source.decode("utf-8", "replace").splitlines()
    for hit in hits[:MAX_FINDINGS]:
        line = lines[hit.line - 1].strip() if 0 < hit.line <= len(lines) else ""
        ctx.emit(
            "repo.code-call" if hit.rule == "call" else "repo.code-dynamic",
            hit.name,
            where.at(key=f"line {hit.line}"),
            f"{os.path.basename(path)}:{hit.line}: {line[:160]}",
            what=hit.what,
            line=hit.line,
        )
    if len(hits) > MAX_FINDINGS:
        ctx.emit(
            "repo.unanalysed",
            os.path.basename(path),
            where,
            message=f"{len(hits) - MAX_FINDINGS} more custom-code findings not listed",
        )


def iter_python(root: str, skip: frozenset[str]) -> Iterator[str]:
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)
