"""Hugging Face model repos as a whole: config, tokenizer, weights, index files, custom code
and chat templates, read as JSON and headers, never loaded.

A folder is a model repo when it holds ``config.json``, ``tokenizer_config.json`` or a weights
index. Its cross-file findings become one extra artifact (format ``hf-repo``) whose findings
name the file and key that disagree; the files themselves are still scanned one by one.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..formats.base import Context
from ..model import Location
from .code import check_auto_map, check_python
from .consistency import (
    check_config_vs_weights,
    check_index,
    check_tokenizer,
    sentencepiece_size,
    tokenizer_vocab,
)
from .weights import TensorMap, weight_tensors

MARKERS = (
    "config.json",
    "tokenizer_config.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
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


def _json(path: str, ctx: Context) -> Any:
    if not os.path.isfile(path):
        return None
    try:
        if os.path.getsize(path) > MAX_JSON:
            ctx.emit(
                "repo.unanalysed",
                os.path.basename(path),
                Location(path),
                message="JSON file over 64 MiB was not analysed",
            )
            return None
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError, RecursionError) as exc:
        ctx.emit(
            "repo.unanalysed",
            os.path.basename(path),
            Location(path),
            message=f"not valid JSON: {type(exc).__name__}",
        )
        return None


def analyze_repo(root: str, ctx: Context) -> None:
    """Emit ``repo.*`` and ``template.*`` facts for the repo folder ``root``."""

    def path(name: str) -> str:
        return os.path.join(root, name)

    config = _json(path("config.json"), ctx)
    tok_config = _json(path("tokenizer_config.json"), ctx)
    generation = _json(path("generation_config.json"), ctx)
    tokenizer = _json(path("tokenizer.json"), ctx)
    for name, data in (("config.json", config), ("tokenizer_config.json", tok_config)):
        if isinstance(data, dict):
            check_auto_map(data, Location(path(name)), ctx)
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(".py"):
                check_python(
                    os.path.join(dirpath, name), Location(os.path.join(dirpath, name)), ctx
                )
    _check_templates(root, tok_config, ctx)
    _check_shadow_weights(root, ctx)
    tensors: TensorMap = {}
    for name in sorted(os.listdir(root)):
        if name.endswith(".index.json"):
            index = _json(path(name), ctx)
            if isinstance(index, dict):
                check_index(path(name), index, root, ctx)
    tensors = _repo_tensors(root)
    if isinstance(config, dict) and tensors:
        check_config_vs_weights(config, tensors, Location(path("config.json")), ctx)
    vocab_txt = None
    if tokenizer is None and os.path.isfile(path("vocab.txt")):
        with open(path("vocab.txt"), encoding="utf-8", errors="replace") as f:
            vocab_txt = f.read(MAX_JSON)
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


def _repo_tensors(root: str) -> TensorMap:
    """All tensors of the preferred weights: safetensors (single or sharded), else pickles."""
    for single, pattern in (("model.safetensors", ".safetensors"), ("pytorch_model.bin", ".bin")):
        if os.path.isfile(os.path.join(root, single)):
            return weight_tensors(os.path.join(root, single)) or {}
        shards = sorted(
            n
            for n in os.listdir(root)
            if n.endswith(pattern) and n.startswith(("model-", "pytorch_model-"))
        )
        if shards:
            out: TensorMap = {}
            for shard in shards:
                out.update(weight_tensors(os.path.join(root, shard)) or {})
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
    from ..templates import scan_template

    copies: list[tuple[str, str]] = []
    if isinstance(tok_config, dict):
        value = tok_config.get("chat_template")
        if isinstance(value, str):
            copies.append(("tokenizer_config.json", value))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and isinstance(item.get("template"), str):
                    copies.append((f"tokenizer_config.json:{item.get('name')}", item["template"]))
    jinja = os.path.join(root, "chat_template.jinja")
    if os.path.isfile(jinja):
        with open(jinja, encoding="utf-8", errors="replace") as f:
            copies.append(("chat_template.jinja", f.read(2 << 20)))
    data = _json(os.path.join(root, "chat_template.json"), ctx)
    if isinstance(data, dict) and isinstance(data.get("chat_template"), str):
        copies.append(("chat_template.json", data["chat_template"]))
    for source, text in copies:
        name, _, key = source.partition(":")
        scan_template(text, Location(os.path.join(root, name), key=key or "chat_template"), ctx)
    defaults = {" ".join(t.split()) for s, t in copies if ":" not in s or s.endswith(":default")}
    if len(defaults) > 1:
        ctx.emit(
            "repo.template-copies",
            ", ".join(s for s, _ in copies),
            Location(os.path.join(root, copies[0][0].partition(":")[0])),
            message="the repo carries different default chat templates in "
            f"{', '.join(s for s, _ in copies)}; loaders disagree on which wins",
        )
