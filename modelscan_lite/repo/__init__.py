"""Hugging Face model repos as a whole: config, tokenizer, weights, index files, custom code
and chat templates, read as JSON and headers, never loaded.

A folder is a model repo when it holds ``config.json``, ``tokenizer_config.json`` or a weights
index. Its cross-file findings become one extra artifact (format ``hf-repo``) whose findings
name the file and key that disagree; the files themselves are still scanned one by one.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any

from .. import jsonbudget
from ..formats.base import Context
from ..model import Location
from .code import (
    AUTO_MAP_FILES,
    check_auto_map,
    check_model_index,
    check_modules_json,
    check_pipeline_py,
    check_python,
)
from .consistency import (
    check_attention,
    check_config_vs_weights,
    check_index,
    check_rope,
    check_token_identity,
    check_tokenizer,
    check_tokenizer_alone,
    sentencepiece_size,
    tokenizer_vocab,
)
from .weights import TensorMap, weight_tensors

MARKERS = (
    "config.json",
    "tokenizer_config.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
    "model_index.json",  # diffusers
    "modules.json",  # sentence-transformers
)
MAX_JSON = 64 << 20
SKIP_DIRS = frozenset({".git", "__pycache__", ".cache"})
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = (
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "model.pt",
    "model.pth",
    "model.ckpt",
    "tf_model.h5",
)


def looks_like_repo(root: str) -> bool:
    return any(os.path.isfile(os.path.join(root, m)) for m in MARKERS)


def find_repos(top: str) -> list[str]:
    """Model repo folders at or below ``top`` (a repo's own subfolders are not repos)."""
    out = []
    for root, dirs, _files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        if looks_like_repo(root):
            out.append(root)
    return out


# the repo files that may legitimately be large (a 33 MB tokenizer.json, an index of 100 k
# tensors); every other JSON file gets the small budget (see limits.py)
LARGE_JSON = ("tokenizer.json", ".index.json")


def _json(path: str, ctx: Context) -> Any:
    """A repo JSON file, parsed under a byte budget (checked before reading), a value and a
    nesting budget; a budget that runs out is an ``anomaly`` naming the file and the budget."""
    if not os.path.isfile(path):
        return None
    limits = ctx.limits
    name = os.path.basename(path)
    cap = limits.max_json_bytes if name.endswith(LARGE_JSON) else limits.max_config_json_bytes
    try:
        size = os.path.getsize(path)
        if size > cap:
            ctx.anomaly(
                "budget-json-bytes",
                Location(path),
                f"`{name}` has {size} bytes, more than the {cap}-byte budget for it; not parsed",
            )
            return None
        return jsonbudget.read_json(path, limits, cap)
    except jsonbudget.JsonBudgetExceeded as exc:
        ctx.anomaly(exc.what, Location(path), f"`{name}`: {exc.message}")
        return None
    except (OSError, ValueError, RecursionError) as exc:
        ctx.emit(
            "repo.unanalysed",
            os.path.basename(path),
            Location(path),
            message=f"not valid JSON: {type(exc).__name__}",
        )
        return None


def reads(root: str, path: str) -> bool:
    """Whether :func:`analyze_repo` of ``root`` reads ``path``: the files of the folder itself,
    and the Python and YAML files below it (the walk in analyze_repo)."""
    root, path = os.path.abspath(root), os.path.abspath(path)
    folder = os.path.dirname(path)
    if folder == root:
        return True
    rel = os.path.relpath(folder, root)
    if rel.startswith(os.pardir) or any(part in SKIP_DIRS for part in rel.split(os.sep)):
        return False
    return path.endswith((".py", ".yaml", ".yml"))


def read_by_any(roots: Collection[str], path: str) -> bool:
    """Whether the analysis of any repo folder in ``roots`` (absolute paths) reads ``path``
    (what :func:`reads` says for one): found by walking up from the file, so the cost does
    not grow with the number of repos."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if folder in roots:
        return True
    if not path.endswith((".py", ".yaml", ".yml")):
        return False
    while True:
        if os.path.basename(folder) in SKIP_DIRS:
            return False
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent
        if folder in roots:
            return True


def analyze_repo(root: str, ctx: Context) -> None:
    """Emit ``repo.*`` and ``template.*`` facts for the repo folder ``root``."""

    def path(name: str) -> str:
        return os.path.join(root, name)

    config = _json(path("config.json"), ctx)
    tok_config = _json(path("tokenizer_config.json"), ctx)
    generation = _json(path("generation_config.json"), ctx)
    tokenizer = _json(path("tokenizer.json"), ctx)
    for name in AUTO_MAP_FILES:  # every config transformers reads an auto_map from
        data = {"config.json": config, "tokenizer_config.json": tok_config}.get(name)
        if data is None and name not in ("config.json", "tokenizer_config.json"):
            data = _json(path(name), ctx)
        if isinstance(data, dict):
            check_auto_map(data, Location(path(name)), ctx)
    check_modules_json(_json(path("modules.json"), ctx), Location(path("modules.json")), ctx)
    check_model_index(_json(path("model_index.json"), ctx), Location(path("model_index.json")), ctx)
    check_pipeline_py(root, ctx)
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(".py"):
                check_python(
                    os.path.join(dirpath, name), Location(os.path.join(dirpath, name)), ctx
                )
            elif name.endswith((".yaml", ".yml")):  # Hydra/OmegaConf configs that instantiate
                from ..formats.hydra import scan_yaml_file

                scan_yaml_file(os.path.join(dirpath, name), ctx)
    _check_templates(root, tok_config, ctx)
    _check_shadow_weights(root, ctx)
    tensors: TensorMap = {}
    for name in sorted(os.listdir(root)):
        if name.endswith(".index.json"):
            index = _json(path(name), ctx)
            if isinstance(index, dict):
                check_index(path(name), index, root, ctx)
    tensors = _repo_tensors(root, ctx)
    if isinstance(config, dict) and tensors:
        check_config_vs_weights(config, tensors, Location(path("config.json")), ctx)
        check_attention(config, tensors, Location(path("config.json")), ctx)
    if isinstance(config, dict):
        check_rope(config, Location(path("config.json")), ctx)
    vocab_txt = None
    if tokenizer is None and os.path.isfile(path("vocab.txt")):
        with open(path("vocab.txt"), encoding="utf-8", errors="replace") as f:
            vocab_txt = f.read(MAX_JSON)
        lines = vocab_txt.count("\n")
        if lines > ctx.limits.max_vocab_lines:
            ctx.anomaly(
                "budget-vocab-lines",
                Location(path("vocab.txt")),
                f"`vocab.txt` has {lines} lines, more than the {ctx.limits.max_vocab_lines} "
                "budget; not compared with the config",
            )
            vocab_txt = None
    sp_size = None
    if tokenizer is None and vocab_txt is None and os.path.isfile(path("tokenizer.model")):
        with open(path("tokenizer.model"), "rb") as spf:
            sp_size = sentencepiece_size(spf.read(MAX_JSON))
    vocab = tokenizer_vocab(tokenizer if isinstance(tokenizer, dict) else None, vocab_txt, sp_size)
    check_tokenizer(
        config if isinstance(config, dict) else None,
        generation if isinstance(generation, dict) else None,
        tokenizer if isinstance(tokenizer, dict) else None,
        vocab,
        tensors,
        root,
        ctx,
    )
    check_token_identity(
        tokenizer if isinstance(tokenizer, dict) else None,
        tok_config if isinstance(tok_config, dict) else None,
        root,
        ctx,
    )


def _repo_tensors(root: str, ctx: Context) -> TensorMap:
    """All tensors of the preferred weights: safetensors (single or sharded), else pickles."""
    for single, pattern in (("model.safetensors", ".safetensors"), ("pytorch_model.bin", ".bin")):
        if os.path.isfile(os.path.join(root, single)):
            return weight_tensors(os.path.join(root, single), ctx.weight_tables) or {}
        shards = sorted(
            n
            for n in os.listdir(root)
            if n.endswith(pattern) and n.startswith(("model-", "pytorch_model-"))
        )
        if shards:
            out: TensorMap = {}
            for shard in shards:
                out.update(weight_tensors(os.path.join(root, shard), ctx.weight_tables) or {})
            return out
    return {}


def _check_shadow_weights(root: str, ctx: Context) -> None:
    names = set(os.listdir(root))
    safe = [n for n in SAFE_WEIGHTS if n in names] or [
        n for n in names if n.startswith("model-") and n.endswith(".safetensors")
    ][:1]
    pickles = [n for n in PICKLE_WEIGHTS if n in names] or [
        n for n in names if n.startswith("pytorch_model-") and n.endswith(".bin")
    ][:1]
    if safe and pickles:
        ctx.emit(
            "repo.shadow-weights",
            pickles[0],
            Location(os.path.join(root, pickles[0])),
            message=f"`{pickles[0]}` sits beside `{safe[0]}`; loaders that prefer "
            "pickle weights (or are asked for them) will unpickle it",
        )


def _check_templates(root: str, tok_config: Any, ctx: Context) -> None:
    from ..templates import is_chat_template_key, scan_template, templates_in_repo

    def read_json(path: str) -> Any:
        name = os.path.basename(path)
        if name == "tokenizer_config.json":
            return tok_config
        if name in ("chat_template.json", "processor_config.json"):
            return _json(path, ctx)
        try:  # any other JSON: only its Jinja-looking strings matter; quiet when unreadable
            if os.path.getsize(path) > ctx.limits.max_config_json_bytes:
                return None
            return jsonbudget.read_json(path, ctx.limits, ctx.limits.max_config_json_bytes)
        except (OSError, ValueError, RecursionError, jsonbudget.JsonBudgetExceeded):
            return None

    copies: list[tuple[str, str]] = []
    for path, key, text in templates_in_repo(root, read_json):
        chat = is_chat_template_key(key)
        scan_template(text, Location(path, key=key), ctx, embedded=not chat)
        name = os.path.relpath(path, root)
        if chat and not name.startswith("additional_chat_templates"):
            copies.append((name if key == "chat_template" else f"{name}:{key[14:-1]}", text))
    defaults = {" ".join(t.split()) for s, t in copies if ":" not in s or s.endswith(":default")}
    if len(defaults) > 1:
        ctx.emit(
            "repo.template-copies",
            ", ".join(s for s, _ in copies),
            Location(os.path.join(root, copies[0][0].partition(":")[0])),
            message="the repo carries different default chat templates in "
            f"{', '.join(s for s, _ in copies)}; loaders disagree on which wins",
        )


# what a repo file scanned alone is recognised as, by name first, then by content
ALONE_NAMES = frozenset(
    {
        "config.json",
        "tokenizer_config.json",
        "chat_template.json",
        "processor_config.json",
        "preprocessor_config.json",
        "modules.json",
        "model_index.json",
        "generation_config.json",
        "tokenizer.json",
        *AUTO_MAP_FILES,
    }
)


def analyze_file(path: str, ctx: Context) -> str | None:
    """A repo file scanned on its own (pre-commit and CI jobs pass files one by one): every
    check that needs only this file, with the locations a folder scan gives. The file is
    recognised by its name or its content (a JSON object with a ``chat_template`` is a
    tokenizer config whatever it is called; Jinja markup in a ``.jinja`` file is a
    template). Returns what it was recognised as, or ``None`` when it is no repo file."""
    from ..templates import (
        is_chat_template_key,
        read_template_file,
        read_yaml_file,
        scan_template,
        templates_in_config,
    )

    name = os.path.basename(path)
    where = Location(path)
    if name.endswith(".jinja"):
        text = read_template_file(path) or ""
        parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
        key = f"chat_template[{name[:-6]}]" if parent == "additional_chat_templates" else None
        scan_template(text, where.at(key=key or "chat_template"), ctx)
        return "chat template"
    hydra: list[str] = []
    if name.endswith((".yaml", ".yml")):
        from ..formats.hydra import scan_yaml_file

        if scan_yaml_file(path, ctx) is not None:
            hydra.append("Hydra/OmegaConf config")
        data = read_yaml_file(path)
    elif name.endswith(".json") or name in ALONE_NAMES:
        data = _json(path, ctx)
    else:
        return None
    found: list[str] = hydra
    if isinstance(data, dict):
        if name in AUTO_MAP_FILES or "auto_map" in data or "custom_pipelines" in data:
            check_auto_map(data, where, ctx)
            found.append("config")
        if "_class_name" in data and "_diffusers_version" in data:
            check_model_index(data, where, ctx)
            found.append("diffusers model_index.json")
    elif isinstance(data, list) and (
        name == "modules.json"
        or (data and all(isinstance(m, dict) and "type" in m and "path" in m for m in data))
    ):
        check_modules_json(data, where, ctx)
        found.append("sentence-transformers modules.json")
    folder = os.path.dirname(path)
    if name == "tokenizer.json" and isinstance(data, dict):
        check_tokenizer_alone(data, where, ctx)
        check_token_identity(data, None, folder, ctx)
        return "tokenizer"
    if name == "tokenizer_config.json" and isinstance(data, dict):
        check_token_identity(None, data, folder, ctx)
    if isinstance(data, dict) and ("model_type" in data or "architectures" in data):
        check_rope(data, where, ctx)
        found.append("config")
    for key, text in templates_in_config(data) if data is not None else ():
        chat = is_chat_template_key(key)
        scan_template(text, where.at(key=key), ctx, embedded=not chat)
        found.append("chat template" if chat else "config with a template")
    if not found and name in ALONE_NAMES:
        found.append("config")
    return found[0] if found else None
