"""Cross-file consistency of a Hugging Face repo: config vs weights vs tokenizer vs index.

Everything here reads JSON and weight headers (see :mod:`.weights`); facts name the file and
key that disagree. Both transformers 4.x (``torch_dtype``, ``special_tokens_map.json``, chat
template inside ``tokenizer_config.json``) and 5.x (``dtype``, ``chat_template.jinja``)
layouts are understood.
"""

from __future__ import annotations

import math
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
LAYER = re.compile(r"\.(?:layers|h|layer|blocks|block)\.(\d{1,9})\.")
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
    _check_layers(config, tensors, cfg_loc, ctx)
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


LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")


def _check_layers(
    config: dict[str, Any], tensors: TensorMap, cfg_loc: Location, ctx: Context
) -> None:
    """Layer counts against the layer indices present, per stack of layers (the tensor-name
    prefix before `layers.N.`, `h.N.`, `layer.N.`, `blocks.N.`, `block.N.`). One stack is
    compared with the config's layer count; encoder and decoder stacks with their own keys;
    any other mix of stacks (vision towers, stages) is not guessed at."""
    stacks: dict[str, set[int]] = {}
    for name in tensors:
        if m := LAYER.search(name):
            stacks.setdefault(name[: m.start()], set()).add(int(m.group(1)))
    if not stacks:
        return
    key = next((k for k in LAYER_KEYS if _is_int(config.get(k))), None)
    # extra trailing layers some exports carry on purpose (DeepSeek-V3's multi-token
    # prediction layer is stored as layer `num_hidden_layers`)
    nextn = config.get("num_nextn_predict_layers")
    extra = nextn if isinstance(nextn, int) and not isinstance(nextn, bool) and nextn > 0 else 0
    checks: list[tuple[str, int, set[int], int]] = []
    enc_key = next((k for k in ("encoder_layers", "num_layers") if _is_int(config.get(k))), None)
    dec_key = next(
        (
            k
            for k in ("decoder_layers", "num_decoder_layers", "num_layers")
            if _is_int(config.get(k))
        ),
        None,
    )
    if len(stacks) == 1 and key is not None:
        checks.append((key, config[key], next(iter(stacks.values())), extra))
    elif len(stacks) == 2 and enc_key and dec_key:
        for prefix, seen in stacks.items():
            parts = prefix.split(".")
            if "encoder" in parts and "decoder" not in parts:
                checks.append((enc_key, config[enc_key], seen, 0))
            elif "decoder" in parts and "encoder" not in parts:
                checks.append((dec_key, config[dec_key], seen, 0))
    for k, declared, seen, allowed in checks:
        count = max(seen) + 1
        if len(seen) == count and declared <= count <= declared + allowed:
            continue
        ctx.emit(
            "repo.config-weights",
            k,
            cfg_loc.at(key=k),
            evidence=f"{k} = {declared}; layer indices present: {_ranges(seen)}",
            message=f"{k} is {declared} but the weights have {len(seen)} layers "
            f"(highest index {max(seen)})",
        )


def _ranges(seen: set[int]) -> str:
    out: list[str] = []
    for i in sorted(seen):
        if out and out[-1].endswith(f"-{i - 1}"):
            out[-1] = out[-1].rsplit("-", 1)[0] + f"-{i}"
        elif out and out[-1] == str(i - 1):
            out[-1] = f"{i - 1}-{i}"
        else:
            out.append(str(i))
    return ", ".join(out[:8]) + (", ..." if len(out) > 8 else "")


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
        check_tokenizer_alone(tokenizer_json, tok_loc, ctx)


def check_tokenizer_alone(tokenizer_json: dict[str, Any], where: Location, ctx: Context) -> None:
    """What ``tokenizer.json`` shows by itself: look-alike special tokens (H504) and
    normalisers that rewrite text (H505)."""
    _check_added_tokens(tokenizer_json, where, ctx)
    _check_normalizers(tokenizer_json, where, ctx)


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
        present = weight_tensors(path, ctx.weight_tables)
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


# --- attention shapes (H509) ---------------------------------------------------------------

FLOAT_DTYPES = frozenset({"F32", "F16", "BF16", "F64", "F8_E4M3", "F8_E5M2"})
# model types whose attention is `*.self_attn.{q,k,v}_proj.weight` as nn.Linear weights
# [heads * head_dim, hidden] and [kv_heads * head_dim, hidden], with `head_dim` from the
# config when set, else hidden // heads. Only these are checked: a layout not listed here
# (MLA, per-layer head counts, vision towers, quantised packs) is never guessed.
SPLIT_QKV = frozenset(
    {
        "llama",
        "mistral",
        "mixtral",
        "qwen2",
        "qwen2_moe",
        "qwen3",
        "qwen3_moe",
        "gemma",
        "gemma2",
        "gemma3_text",
        "stablelm",
        "starcoder2",
        "olmo",
        "olmo2",
        "phi",
        "cohere",
        "granite",
        "opt",
    }
)
BERT_LIKE = frozenset({"bert", "roberta", "xlm-roberta", "camembert", "electra"})
SPLIT_PROJ = re.compile(r"\.self_attn\.([qkv])_proj\.weight$")
BERT_PROJ = re.compile(r"\.attention\.self\.(query|key|value)\.weight$")


def _pos_int(value: Any) -> int | None:
    return value if _is_int(value) and value > 0 else None


def _heads(config: dict[str, Any]) -> tuple[int, int, int, int] | None:
    """(hidden, heads, kv_heads, head_dim) when the config states them unambiguously."""
    hidden = _pos_int(config.get("hidden_size"))
    heads = _pos_int(config.get("num_attention_heads"))
    if hidden is None or heads is None:
        return None
    kv_raw = config.get("num_key_value_heads")
    kv = heads if kv_raw is None else _pos_int(kv_raw)
    head_dim = config.get("head_dim")
    if head_dim is None and hidden % heads == 0:
        head_dim = hidden // heads
    head_dim = _pos_int(head_dim)
    if kv is None or head_dim is None:
        return None
    return hidden, heads, kv, head_dim


def check_attention(
    config: dict[str, Any], tensors: TensorMap, cfg_loc: Location, ctx: Context
) -> None:
    """Head counts and head size in the config against the q/k/v projection shapes."""
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or "quantization_config" in config:
        return
    # (config key blamed, tensor, actual shape, expected shape, how the expectation is built)
    bad: dict[str, tuple[str, tuple[int, ...], tuple[int, int], str]] = {}

    def expect(
        key: str, name: str, shape: tuple[int, ...], want: tuple[int, int], how: str
    ) -> None:
        if shape != want:
            bad.setdefault(key, (name, shape, want, how))

    for name, (dtype, shape) in sorted(tensors.items()):
        if dtype not in FLOAT_DTYPES or len(shape) != 2:
            continue
        if model_type in SPLIT_QKV and (m := SPLIT_PROJ.search(name)):
            dims = _heads(config)
            if dims is None or shape[1] != dims[0]:
                continue  # the embedding-width check owns hidden_size
            hidden, heads, kv, hd = dims
            if m.group(1) == "q":
                expect(
                    "num_attention_heads",
                    name,
                    shape,
                    (heads * hd, hidden),
                    f"{heads} heads x head_dim {hd}",
                )
            else:
                key = (
                    "num_key_value_heads"
                    if "num_key_value_heads" in config
                    else ("num_attention_heads")
                )
                expect(key, name, shape, (kv * hd, hidden), f"{kv} kv heads x head_dim {hd}")
        elif model_type == "phi3" and name.endswith(".self_attn.qkv_proj.weight"):
            dims = _heads(config)
            if dims is None or shape[1] != dims[0]:
                continue
            hidden, heads, kv, hd = dims
            key = (
                "num_key_value_heads"
                if "num_key_value_heads" in config
                else ("num_attention_heads")
            )
            expect(
                key,
                name,
                shape,
                ((heads + 2 * kv) * hd, hidden),
                f"({heads} heads + 2 x {kv} kv heads) x head_dim {hd}",
            )
        elif model_type == "falcon" and name.endswith(".self_attention.query_key_value.weight"):
            dims = _heads(config)
            if dims is None or shape[1] != dims[0] or "num_key_value_heads" in config:
                continue
            hidden, heads, _, hd = dims
            if config.get("new_decoder_architecture") is True:
                kv_f = _pos_int(config.get("num_kv_heads", heads))
                key = "num_kv_heads"
            elif config.get("multi_query", True) is True:
                kv_f, key = 1, "multi_query"
            else:
                kv_f, key = heads, "multi_query"
            if kv_f is not None:
                expect(
                    key,
                    name,
                    shape,
                    ((heads + 2 * kv_f) * hd, hidden),
                    f"({heads} heads + 2 x {kv_f} kv heads) x head_dim {hd}",
                )
        elif model_type == "gpt2" and name.endswith(".attn.c_attn.weight"):
            n_embd = _pos_int(config.get("n_embd"))
            if n_embd is not None and shape[0] == n_embd:  # Conv1D: [in, out]
                expect("n_embd", name, shape, (n_embd, 3 * n_embd), f"q, k, v of {n_embd}")
        elif model_type in BERT_LIKE and BERT_PROJ.search(name):
            dims = _heads(config)
            if dims is None or shape[1] != dims[0]:
                continue
            hidden, heads, _, _ = dims
            expect(
                "num_attention_heads",
                name,
                shape,
                (heads * (hidden // heads), hidden),
                f"{heads} heads x {hidden // heads}",
            )
    for key, (name, shape, want, how) in bad.items():
        ctx.emit(
            "repo.attention-shape",
            key,
            cfg_loc.at(key=key),
            evidence=f"`{name}` is {list(shape)}, expected {list(want)} ({how})",
            message=f"config `{key}` does not match the attention weights: `{name}` is "
            f"{list(shape)}, the config implies {list(want)} ({how})",
        )


# --- rope and context length (H510) --------------------------------------------------------

# rope types transformers knows (`modeling_rope_utils.ROPE_INIT_FUNCTIONS` plus "default"),
# and legacy names it still rewrites on load; tests compare this with the installed library
ROPE_TYPES = frozenset(
    {"default", "linear", "dynamic", "yarn", "longrope", "llama3", "proportional", "su", "mrope"}
)
MAX_ROPE_FACTOR = 1024
MAX_POSITIONS = 1 << 24
POSITION_KEYS = ("max_position_embeddings", "n_positions", "original_max_position_embeddings")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer beyond float range
        return math.inf


def check_rope(config: dict[str, Any], cfg_loc: Location, ctx: Context) -> None:
    """rope_scaling / rope_parameters and context lengths within bounds real models use."""
    custom = "auto_map" in config  # remote code may define its own rope types

    def emit(key: str, value: Any, why: str) -> None:
        ctx.emit(
            "repo.rope-bounds",
            key,
            cfg_loc.at(key=key),
            evidence=f"{key} = {json_repr(value)}",
            message=f"`{key}` is {json_repr(value)}: {why}",
        )

    def positions(prefix: str, node: dict[str, Any]) -> None:
        for key in POSITION_KEYS:
            value = node.get(key)
            if value is None:
                continue
            if not _is_int(value) or not 1 <= value <= MAX_POSITIONS:
                emit(
                    prefix + key,
                    value,
                    f"a context length must be an integer in [1, {MAX_POSITIONS}]",
                )

    def rope(prefix: str, node: dict[str, Any], depth: int = 0) -> None:
        if depth < 2 and node and all(isinstance(v, dict) for v in node.values()):
            for sub, child in node.items():  # per layer type (Gemma 3: full / sliding)
                rope(f"{prefix}.{sub}", child, depth + 1)
            return
        kind = node.get("rope_type", node.get("type"))
        if (
            kind is not None
            and not custom
            and (not isinstance(kind, str) or kind not in ROPE_TYPES)
        ):
            emit(prefix + ".rope_type", kind, "not a rope type transformers implements")
        factor = node.get("factor")
        if factor is not None:
            num = _number(factor)
            if num is None or not (math.isfinite(num) and 0 < num <= MAX_ROPE_FACTOR):
                emit(
                    prefix + ".factor",
                    factor,
                    f"a scaling factor must be in (0, {MAX_ROPE_FACTOR}]",
                )
        theta = node.get("rope_theta")
        if theta is not None:
            num = _number(theta)
            if num is None or not (math.isfinite(num) and num > 0):
                emit(prefix + ".rope_theta", theta, "rope_theta must be a positive number")
        for key in ("short_factor", "long_factor"):
            values = node.get(key)
            if isinstance(values, list) and any(
                (n := _number(v)) is None or not (math.isfinite(n) and n > 0) for v in values
            ):
                emit(prefix + "." + key, values[:4], "every factor must be a positive number")
        positions(prefix + ".", node)

    for prefix, node in (("", config), ("text_config.", config.get("text_config"))):
        if not isinstance(node, dict):
            continue
        positions(prefix, node)
        for key in ("rope_scaling", "rope_parameters"):
            sub = node.get(key)
            if isinstance(sub, dict):
                rope(prefix + key, sub)
        theta = node.get("rope_theta")
        if theta is not None and (
            (n := _number(theta)) is None or not (math.isfinite(n) and n > 0)
        ):
            emit(prefix + "rope_theta", theta, "rope_theta must be a positive number")


def json_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- token identity (H511-H514) ------------------------------------------------------------


def _byte_level(tokenizer_json: dict[str, Any]) -> bool:
    """True when the model vocab is written in GPT-2's byte-to-unicode alphabet."""
    for section in ("pre_tokenizer", "decoder"):
        node = tokenizer_json.get(section)
        nodes = [node, *_list(node.get("pretokenizers") if isinstance(node, dict) else None)]
        nodes += _list(node.get("decoders") if isinstance(node, dict) else None)
        if any(isinstance(n, dict) and n.get("type") == "ByteLevel" for n in nodes):
            return True
    return False


def _bytes_to_unicode() -> dict[int, str]:
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


BYTE_TO_CHAR = _bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}
# a terminal acts on: CSI with its final byte, OSC with a payload (title, clipboard,
# hyperlink), DCS/SOS/PM/APC strings, and full reset; 7-bit and 8-bit (C1) forms
ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|(?:\x1b\]|\x9d).|\x1b[PX^_].|\x1bc", re.S
)
TERMINAL_CONTROLS = re.compile("[\x07\x1b\x9b\x9d]")


def model_vocab(tokenizer_json: dict[str, Any]) -> tuple[dict[str, set[int]], bool]:
    """The learned vocab of ``tokenizer.json`` (added tokens excluded), as written in the
    file (a unigram list may hold one piece twice: CamemBERT's ``<unk>``), and whether it is
    byte-level encoded."""
    model = tokenizer_json.get("model")
    vocab = model.get("vocab") if isinstance(model, dict) else None
    out: dict[str, set[int]] = {}
    if isinstance(vocab, dict):
        for k, v in vocab.items():
            if isinstance(k, str) and _is_int(v):
                out.setdefault(k, set()).add(v)
    elif isinstance(vocab, list):
        for i, piece in enumerate(vocab):
            if isinstance(piece, list) and piece and isinstance(piece[0], str):
                out.setdefault(piece[0], set()).add(i)
    return out, _byte_level(tokenizer_json)


def _decoded(token: str, byte_level: bool) -> str:
    if not byte_level:
        return token
    try:
        return bytes(CHAR_TO_BYTE[c] for c in token).decode("utf-8", "replace")
    except KeyError:  # not in the byte alphabet: written as is
        return token


def _encoded(content: str, byte_level: bool) -> str:
    return "".join(BYTE_TO_CHAR[b] for b in content.encode()) if byte_level else content


def added_tokens(
    tokenizer_json: dict[str, Any] | None, tok_config: dict[str, Any] | None
) -> list[tuple[str, int, bool, str]]:
    """(content, id, special, file) of every added token in tokenizer.json and
    tokenizer_config.json ``added_tokens_decoder``."""
    out: list[tuple[str, int, bool, str]] = []
    for tok in _list((tokenizer_json or {}).get("added_tokens")):
        if isinstance(tok, dict) and isinstance(tok.get("content"), str) and _is_int(tok.get("id")):
            out.append((tok["content"], tok["id"], tok.get("special") is True, "tokenizer.json"))
    decoder = (tok_config or {}).get("added_tokens_decoder")
    if isinstance(decoder, dict):
        for key, tok in decoder.items():
            if isinstance(tok, dict) and isinstance(tok.get("content"), str):
                try:
                    tid = int(key)
                except ValueError:
                    continue
                out.append(
                    (tok["content"], tid, tok.get("special") is True, "tokenizer_config.json")
                )
    return out


SPECIAL_NAMES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)


def _named_specials(tok_config: dict[str, Any] | None) -> set[str]:
    out: set[str] = set()
    for key in SPECIAL_NAMES:
        value = (tok_config or {}).get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            out.add(value)
    for key in ("additional_special_tokens", "extra_special_tokens"):
        for value in _list((tok_config or {}).get(key)):
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                out.add(value)
    return out


def check_token_identity(
    tokenizer_json: dict[str, Any] | None,
    tok_config: dict[str, Any] | None,
    root: str,
    ctx: Context,
) -> None:
    """One string, one id: a control token with a second id (H511), an added token that
    shadows a learned token (H512), a control token also learned as plain text (H513), and
    terminal escape sequences inside tokens (H514)."""
    added = added_tokens(tokenizer_json, tok_config)
    specials = {c for c, _, special, _ in added if special} | _named_specials(tok_config)
    ids: dict[str, dict[int, str]] = {}
    for content, tid, _, file in added:
        ids.setdefault(content, {}).setdefault(tid, file)
    for content, by_id in ids.items():
        if content in specials and len(by_id) > 1:
            first, second = sorted(by_id)[:2]
            ctx.emit(
                "repo.special-token-alias",
                content,
                Location(
                    os.path.join(root, by_id[second]),
                    key="added_tokens"
                    if by_id[second] == "tokenizer.json"
                    else "added_tokens_decoder",
                ),
                evidence=f"{content!r}: ids {sorted(by_id)}",
                message=f"control token {content!r} has a second id: {first} "
                f"({by_id[first]}) and {second} ({by_id[second]})",
            )
    vocab, byte_level = model_vocab(tokenizer_json) if tokenizer_json else ({}, False)
    tok_loc = Location(os.path.join(root, "tokenizer.json"))
    shadowed: list[tuple[str, int, int]] = []
    for content, by_id in ids.items():
        learned_ids = vocab.get(_encoded(content, byte_level), set())
        if not learned_ids or learned_ids & by_id.keys():
            continue
        learned = min(learned_ids)
        tid = min(by_id)
        if content in specials:
            ctx.emit(
                "repo.control-token-duplicate",
                content,
                tok_loc.at(key="model.vocab"),
                evidence=f"{content!r}: control id {tid}, plain vocab id {learned}",
                message=f"control token {content!r} (id {tid}) is also a plain vocabulary "
                f"token (id {learned}): text can carry it under another id",
            )
        else:
            shadowed.append((content, tid, learned))
    if shadowed:
        content, tid, learned = shadowed[0]
        ctx.emit(
            "repo.token-shadow",
            content,
            tok_loc.at(key="added_tokens"),
            evidence=", ".join(f"{c!r}: added {a}, vocab {v}" for c, a, v in shadowed[:5]),
            message=f"{len(shadowed)} added tokens shadow vocabulary entries under another id "
            f"(e.g. {content!r}: added {tid}, vocab {learned})",
        )
    escapes: list[tuple[str, int, str]] = []
    for content, by_id in ids.items():
        if ESCAPE_SEQUENCE.search(content) or (
            len(content) > 1 and TERMINAL_CONTROLS.search(content)
        ):
            escapes.append((content, min(by_id), by_id[min(by_id)]))
    for token, tids in vocab.items():
        text = _decoded(token, byte_level)
        if ESCAPE_SEQUENCE.search(text):
            escapes.append((text, min(tids), "tokenizer.json"))
    if escapes:
        content, tid, file = escapes[0]
        key = "added_tokens" if content in ids else "model.vocab"
        if file == "tokenizer_config.json":
            key = "added_tokens_decoder"
        ctx.emit(
            "repo.token-escape",
            content,
            Location(os.path.join(root, file), key=key),
            evidence=", ".join(f"id {i}: {c!r}" for c, i, _ in escapes[:5]),
            message=f"{len(escapes)} tokens carry terminal escape sequences "
            f"(e.g. id {tid}: {content!r}); printing model output runs them in a terminal",
        )
