"""Cross-file consistency of a Hugging Face repo: config vs weights vs tokenizer vs index.

Everything here reads JSON and weight headers (see :mod:`.weights`); facts name the file and
key that disagree. Both transformers 4.x (``torch_dtype``, ``special_tokens_map.json``, chat
template inside ``tokenizer_config.json``) and 5.x (``dtype``, ``chat_template.jinja``)
layouts are understood.
"""

from __future__ import annotations

import os
import posixpath
import re
import unicodedata
from typing import Any

from ..formats.base import Context
from ..model import Location
from .weights import TensorMap, dominant_dtype, weight_tensors

EMBEDDING = re.compile(
    r"(?:^|\.)(?:embed_tokens|wte|word_embeddings|tok_embeddings|"
    r"embed_in|shared)\.weight$"
)
LAYER = re.compile(r"\.(?:layers|h|layer|blocks|block)\.(\d+)\.")
TORCH_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64"}
SPECIAL_ID_KEYS = (
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "decoder_start_token_id",
    "sep_token_id",
    "unk_token_id",
)
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_config_vs_weights(
    config: dict[str, Any], tensors: TensorMap, cfg_loc: Location, ctx: Context
) -> None:
    vocab = config.get("vocab_size")
    hidden = config.get("hidden_size", config.get("d_model", config.get("n_embd")))
    embed = next(((n, s) for n, (_, s) in tensors.items() if EMBEDDING.search(n)), None)
    if embed is not None and len(embed[1]) == 2:
        rows, cols = embed[1]
        if isinstance(vocab, int) and rows != vocab:
            ctx.emit(
                "repo.config-weights",
                "vocab_size",
                cfg_loc.at(key="vocab_size"),
                message=f"vocab_size is {vocab} but `{embed[0]}` has {rows} rows",
            )
        # Factorised embeddings (ALBERT, ELECTRA, MobileBERT, ConvBERT, RoFormer, SqueezeBERT:
        # `embedding_size`; RemBERT: `input_embedding_size`) are that wide, then projected
        # to hidden_size; transformers builds word_embeddings from that key when present.
        width_key = next(
            (k for k in ("embedding_size", "input_embedding_size") if _is_int(config.get(k))),
            "hidden_size",
        )
        width = config.get(width_key) if width_key != "hidden_size" else hidden
        if isinstance(width, int) and cols != width:
            ctx.emit(
                "repo.config-weights",
                width_key,
                cfg_loc.at(key=width_key),
                message=f"{width_key} is {width} but `{embed[0]}` is {cols} wide",
            )
    layers = config.get("num_hidden_layers", config.get("n_layer", config.get("num_layers")))
    seen = {int(m.group(1)) for n in tensors if (m := LAYER.search(n))}
    if isinstance(layers, int) and seen and (max(seen) + 1 != layers or len(seen) != layers):
        ctx.emit(
            "repo.config-weights",
            "num_hidden_layers",
            cfg_loc.at(key="num_hidden_layers"),
            message=f"num_hidden_layers is {layers} but the weights have "
            f"{len(seen)} layers (highest index {max(seen)})",
        )
    archs_list = _list(config.get("architectures"))
    causal = any(
        isinstance(a, str) and a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs_list
    )
    has_head = any(n.endswith(("lm_head.weight", "embed_out.weight")) for n in tensors)
    if causal and config.get("tie_word_embeddings") is False and not has_head:
        ctx.emit(
            "repo.config-weights",
            "tie_word_embeddings",
            cfg_loc.at(key="tie_word_embeddings"),
            message="tie_word_embeddings is false but the weights have no lm_head: the "
            "loader would initialise the output layer randomly",
        )
    declared = config.get("dtype", config.get("torch_dtype"))
    stored = dominant_dtype(tensors)
    if isinstance(declared, str) and stored and TORCH_DTYPES.get(declared, stored) != stored:
        ctx.emit(
            "repo.dtype",
            declared,
            cfg_loc.at(key="dtype"),
            message=f"config says {declared} but most weights are {stored}",
        )
    model_type = config.get("model_type")
    archs = config.get("architectures")
    if isinstance(model_type, str) and isinstance(archs, list) and archs:
        squashed = re.sub(r"[-_]", "", model_type.lower()).removesuffix("text")
        if not any(isinstance(a, str) and squashed in a.lower() for a in archs):
            ctx.emit(
                "repo.architecture",
                model_type,
                cfg_loc.at(key="architectures"),
                message=f"model_type `{model_type}` but architectures {archs[:3]}",
            )


def sentencepiece_size(data: bytes) -> int | None:
    """Number of pieces in a sentencepiece ``tokenizer.model``, read by the file scan's own
    ``ModelProto`` walker (None when the file is not a valid model; the file scan says why)."""
    from ..formats.sentencepiece import count_pieces

    return count_pieces(data)


def tokenizer_vocab(
    tokenizer_json: dict[str, Any] | None, vocab_txt: str | None, sp_size: int | None = None
) -> dict[str, int]:
    """token -> id from ``tokenizer.json`` (model vocab and added tokens) or ``vocab.txt``."""
    out: dict[str, int] = {}
    if tokenizer_json is not None:
        model = tokenizer_json.get("model")
        vocab = model.get("vocab") if isinstance(model, dict) else None
        if isinstance(vocab, dict):
            out.update({k: v for k, v in vocab.items() if isinstance(v, int)})
        elif isinstance(vocab, list):  # unigram: [[piece, score], ...]
            out.update({p[0]: i for i, p in enumerate(vocab) if isinstance(p, list) and p})
        for tok in _list(tokenizer_json.get("added_tokens")):
            if isinstance(tok, dict) and isinstance(tok.get("id"), int):
                out[str(tok.get("content"))] = tok["id"]
    elif vocab_txt is not None:
        out = {line: i for i, line in enumerate(vocab_txt.splitlines())}
    elif sp_size:
        out = {f"<piece {i}>": i for i in (0, sp_size - 1)}
    return out


def check_tokenizer(
    config: dict[str, Any] | None,
    generation: dict[str, Any] | None,
    tokenizer_json: dict[str, Any] | None,
    vocab: dict[str, int],
    tensors: TensorMap,
    root: str,
    ctx: Context,
) -> None:
    rows = None
    embed = next((s for n, (_, s) in tensors.items() if EMBEDDING.search(n)), None)
    if embed is not None and len(embed) == 2:
        rows = embed[0]
    limit = rows if rows is not None else (config or {}).get("vocab_size")
    tok_loc = Location(os.path.join(root, "tokenizer.json"))
    if vocab and isinstance(limit, int):
        top = max(vocab.values())
        if top >= limit:
            over = sorted((i, t) for t, i in vocab.items() if i >= limit)[:3]
            ctx.emit(
                "repo.tokenizer-size",
                str(top + 1),
                tok_loc,
                message=f"the tokenizer produces ids up to {top} but the model has "
                f"{limit} embedding rows (e.g. {over})",
            )
    known_ids = set(vocab.values())
    for name, data in (("config.json", config), ("generation_config.json", generation)):
        if not isinstance(data, dict):
            continue
        for key in SPECIAL_ID_KEYS:
            ids = data.get(key)
            for tid in ids if isinstance(ids, list) else [ids]:
                if not isinstance(tid, int):
                    continue
                bad = (isinstance(limit, int) and not 0 <= tid < limit) or (
                    known_ids and tid not in known_ids
                )
                if bad:
                    ctx.emit(
                        "repo.special-token",
                        f"{key}={tid}",
                        Location(os.path.join(root, name), key=key),
                        message=f"{key} {tid} is not a token the tokenizer or the "
                        "embedding can produce",
                    )
    if tokenizer_json is not None:
        _check_added_tokens(tokenizer_json, tok_loc, ctx)
        _check_normalizers(tokenizer_json, tok_loc, ctx)


# Cyrillic and Greek letters that render like Latin ones (Unicode TR39 confusables, the
# subset that matters for ASCII control tokens such as <|im_end|>).
HOMOGLYPHS = str.maketrans(
    "аеорсухіјѕԁԛԝɡοαρνικτΑΒΕΗΙΚΜΝΟΡΤΧΥΖ", "aeopcyxijsdqwgoapvikt" + "ABEHIKMNOPTXYZ"
)


def _skeleton(text: str) -> str:
    """What a token looks like: invisible characters dropped, compatibility forms, accents
    and homoglyphs folded, case ignored."""
    text = INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).translate(HOMOGLYPHS)
    return "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    ).casefold()


def _check_added_tokens(tokenizer_json: dict[str, Any], where: Location, ctx: Context) -> None:
    specials = [
        t
        for t in _list(tokenizer_json.get("added_tokens"))
        if isinstance(t, dict) and isinstance(t.get("content"), str)
    ]
    by_skeleton: dict[str, str] = {}
    for tok in specials:
        content = tok["content"]
        if INVISIBLE.search(content):
            ctx.emit(
                "repo.lookalike-token",
                content,
                where.at(key="added_tokens"),
                message=f"added token {content!r} hides invisible characters",
            )
        skel = _skeleton(content)
        other = by_skeleton.get(skel)
        if other is not None and other != content:
            ctx.emit(
                "repo.lookalike-token",
                content,
                where.at(key="added_tokens"),
                message=f"added tokens {other!r} and {content!r} look the same",
            )
        by_skeleton.setdefault(skel, content)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _walk_components(node: Any, depth: int = 0) -> list[dict[str, Any]]:
    if not isinstance(node, dict) or depth > 32:
        return []
    out = [node]
    for key in ("normalizers", "pretokenizers"):
        for child in _list(node.get(key)):
            out.extend(_walk_components(child, depth + 1))
    return out


def _check_normalizers(tokenizer_json: dict[str, Any], where: Location, ctx: Context) -> None:
    for section in ("normalizer", "pre_tokenizer"):
        for comp in _walk_components(tokenizer_json.get(section)):
            if comp.get("type") != "Replace":
                continue
            pattern = comp.get("pattern")
            pattern = pattern if isinstance(pattern, dict) else {}
            needle = pattern.get("String") or pattern.get("Regex") or ""
            content = comp.get("content", "")
            if isinstance(needle, str) and re.search(r"[A-Za-z]{2,}", needle):
                ctx.emit(
                    "repo.rewriting-normalizer",
                    needle[:60],
                    where.at(key=section),
                    message=f"the {section} silently replaces {needle[:40]!r} with "
                    f"{str(content)[:40]!r} in every input",
                )


def check_index(index_path: str, data: dict[str, Any], root: str, ctx: Context) -> None:
    where = Location(index_path)
    weight_map = data.get("weight_map")
    if not isinstance(weight_map, dict):
        ctx.emit(
            "repo.unanalysed",
            os.path.basename(index_path),
            where,
            message="index file has no weight_map",
        )
        return
    shards: dict[str, set[str]] = {}
    for tensor, shard in weight_map.items():
        if isinstance(shard, str):
            shards.setdefault(shard, set()).add(tensor)
    for shard, listed in sorted(shards.items()):
        norm = shard.replace("\\", "/")
        if (
            norm.startswith("/")
            or re.match(r"^[A-Za-z]:", norm)
            or ".." in norm.split("/")
            or posixpath.normpath(norm).startswith("..")
        ):
            ctx.emit(
                "repo.index-escape",
                shard,
                where.at(key=shard),
                message=f"weight_map points at `{shard}`, outside the repo",
            )
            continue
        path = os.path.join(root, norm)
        if not os.path.isfile(path):
            ctx.emit(
                "repo.index-missing",
                shard,
                where.at(key=shard),
                message=f"shard `{shard}` ({len(listed)} tensors) is not in the repo",
            )
            continue
        present = weight_tensors(path)
        if present is None:
            continue
        extra = sorted(set(present) - listed)
        missing = sorted(listed - set(present))
        if extra:
            ctx.emit(
                "repo.index-unlisted",
                shard,
                Location(path, key=extra[0]),
                message=f"`{shard}` holds {len(extra)} tensors the index does not list "
                f"(e.g. `{extra[0]}`)",
            )
        if missing:
            ctx.emit(
                "repo.index-absent",
                shard,
                where.at(key=missing[0]),
                message=f"the index maps {len(missing)} tensors to `{shard}` that it "
                f"does not hold (e.g. `{missing[0]}`)",
            )
