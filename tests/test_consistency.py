"""Consistency checks between config, weights, index and tokenizer that real attacks exploit
and real models pass (issue 11 point 5): H501 layers, H404 index, H509-H514."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelscan_lite import scan as scan_tree
from modelscan_lite.config import Config
from modelscan_lite.model import Finding, Report, Severity
from modelscan_lite.repo.consistency import ROPE_TYPES

ROOT = Path(__file__).resolve().parents[1]


# --- tiny repos written by hand (headers only; nothing is ever loaded) ----------------------


def st_bytes(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    """A valid safetensors file whose tensors are all zero bytes."""
    size = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}
    header: dict[str, Any] = {}
    at = 0
    for name, (dtype, shape) in tensors.items():
        n = size[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + n]}
        at += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"\0" * at


def llama_tensors(
    layers: int = 2, hidden: int = 32, heads: int = 4, kv: int = 2, head_dim: int = 8
) -> dict[str, tuple[str, list[int]]]:
    t: dict[str, tuple[str, list[int]]] = {"model.embed_tokens.weight": ("F32", [16, hidden])}
    for i in range(layers):
        p = f"model.layers.{i}.self_attn."
        t[p + "q_proj.weight"] = ("F32", [heads * head_dim, hidden])
        t[p + "k_proj.weight"] = ("F32", [kv * head_dim, hidden])
        t[p + "v_proj.weight"] = ("F32", [kv * head_dim, hidden])
        t[p + "o_proj.weight"] = ("F32", [hidden, heads * head_dim])
    t["model.norm.weight"] = ("F32", [hidden])
    return t


LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 16,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 128,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
    "tie_word_embeddings": True,
    "dtype": "float32",
}


def tokenizer(added: list[dict[str, Any]] | None = None, **model: Any) -> dict[str, Any]:
    vocab = {"<s>": 0, "</s>": 1, **{f"t{i}": i for i in range(2, 14)}}
    return {
        "version": "1.0",
        "added_tokens": added
        if added is not None
        else [
            {"id": 0, "content": "<s>", "special": True},
            {"id": 1, "content": "</s>", "special": True},
        ],
        "normalizer": None,
        "pre_tokenizer": None,
        "model": {"type": "BPE", "vocab": vocab, "merges": [], **model},
    }


def write_repo(folder: Path, files: dict[str, Any]) -> Path:
    base: dict[str, Any] = {
        "config.json": LLAMA,
        "tokenizer.json": tokenizer(),
        "tokenizer_config.json": {"bos_token": "<s>", "eos_token": "</s>"},
        "model.safetensors": st_bytes(llama_tensors()),
    }
    base.update(files)
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in base.items():
        if value is None:
            continue
        data = value if isinstance(value, bytes) else json.dumps(value).encode()
        (folder / name).write_bytes(data)
    return folder


def report(folder: Path) -> Report:
    return scan_tree([folder], Config(jobs=1))


def only(rep: Report, rule: str) -> Finding:
    hits = [f for f in rep.findings if f.rule == rule]
    assert len(hits) == 1, [(f.rule, f.message) for f in rep.findings]
    return hits[0]


def failing(rep: Report) -> list[tuple[str, str | None, str]]:
    return [
        (f.rule, f.location.key, f.message) for f in rep.findings if f.severity >= Severity.MEDIUM
    ]


def test_consistent_repo_is_clean(tmp_path: Path) -> None:
    assert not failing(report(write_repo(tmp_path / "r", {})))


# --- 1. heads against the q/k/v projection shapes (H509) -----------------------------------


def test_kv_heads_lie_is_h509(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "r", {"config.json": {**LLAMA, "num_key_value_heads": 4}})
    f = only(report(repo), "H509")
    assert f.severity == Severity.MEDIUM
    assert f.location.path == str(repo / "config.json")
    assert f.location.key == "num_key_value_heads"
    assert f.evidence is not None
    assert "k_proj.weight` is [16, 32], expected [32, 32]" in f.evidence
    assert "4 kv heads x head_dim 8" in f.evidence


def test_head_dim_lie_is_h509_on_the_query(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "r", {"config.json": {**LLAMA, "head_dim": 16}})
    keys = {f.location.key for f in report(repo).findings if f.rule == "H509"}
    assert keys == {"num_attention_heads", "num_key_value_heads"}


def test_fused_and_legacy_layouts(tmp_path: Path) -> None:
    phi3 = {**LLAMA, "model_type": "phi3", "architectures": ["Phi3ForCausalLM"]}
    fused = {"model.embed_tokens.weight": ("F32", [16, 32])}
    fused |= {f"model.layers.{i}.self_attn.qkv_proj.weight": ("F32", [64, 32]) for i in (0, 1)}
    # (4 + 2 x 2) x 8 = 64 rows: clean; with 1 kv head the config implies 48
    ok = write_repo(tmp_path / "ok", {"config.json": phi3, "model.safetensors": st_bytes(fused)})
    assert not failing(report(ok))
    bad = write_repo(
        tmp_path / "bad",
        {"config.json": {**phi3, "num_key_value_heads": 1}, "model.safetensors": st_bytes(fused)},
    )
    f = only(report(bad), "H509")
    assert f.location.key == "num_key_value_heads"
    assert f.evidence and "qkv_proj.weight` is [64, 32], expected [48, 32]" in f.evidence

    falcon = {
        "architectures": ["FalconForCausalLM"],
        "model_type": "falcon",
        "vocab_size": 16,
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "multi_query": True,
        "dtype": "float32",
    }
    qkv = {
        "transformer.word_embeddings.weight": ("F32", [16, 32]),
        "transformer.h.0.self_attention.query_key_value.weight": ("F32", [48, 32]),
    }
    ok = write_repo(tmp_path / "f-ok", {"config.json": falcon, "model.safetensors": st_bytes(qkv)})
    assert not failing(report(ok))
    bad = write_repo(
        tmp_path / "f-bad",
        {"config.json": {**falcon, "multi_query": False}, "model.safetensors": st_bytes(qkv)},
    )
    f = only(report(bad), "H509")
    assert f.location.key == "multi_query"
    assert f.evidence and "expected [96, 32]" in f.evidence


def test_unknown_attention_layout_is_not_guessed(tmp_path: Path) -> None:
    """DeepSeek-style MLA or an unlisted model type: no H509 whatever the shapes."""
    cfg = {**LLAMA, "model_type": "deepseek_v3", "architectures": ["DeepseekV3ForCausalLM"]}
    repo = write_repo(tmp_path / "r", {"config.json": {**cfg, "num_key_value_heads": 4}})
    assert "H509" not in {f.rule for f in report(repo).findings}


# --- 2. layer count against the layer indices present (H501) -------------------------------


def test_layer_count_lie_is_h501(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "r", {"config.json": {**LLAMA, "num_hidden_layers": 1}})
    f = only(report(repo), "H501")
    assert f.location.path == str(repo / "config.json")
    assert f.location.key == "num_hidden_layers"
    assert f.evidence == "num_hidden_layers = 1; layer indices present: 0-1"


def test_layer_key_is_the_one_the_config_uses(tmp_path: Path) -> None:
    gpt2 = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": 16,
        "n_embd": 32,
        "n_layer": 3,
        "n_head": 4,
        "dtype": "float32",
    }
    t = {"transformer.wte.weight": ("F32", [16, 32])}
    t |= {f"transformer.h.{i}.attn.c_attn.weight": ("F32", [32, 96]) for i in (0, 1)}
    repo = write_repo(tmp_path / "r", {"config.json": gpt2, "model.safetensors": st_bytes(t)})
    f = only(report(repo), "H501")
    assert f.location.key == "n_layer"
    assert f.evidence == "n_layer = 3; layer indices present: 0-1"


def test_layer_gap_and_mtp_layer(tmp_path: Path) -> None:
    t = llama_tensors(layers=3)
    gap = {k: v for k, v in t.items() if ".layers.1." not in k}
    repo = write_repo(tmp_path / "gap", {"model.safetensors": st_bytes(gap)})
    f = only(report(repo), "H501")
    assert f.evidence == "num_hidden_layers = 2; layer indices present: 0, 2"
    # DeepSeek-V3 stores its multi-token-prediction layer as layer `num_hidden_layers`
    mtp = write_repo(
        tmp_path / "mtp",
        {
            "config.json": {**LLAMA, "num_nextn_predict_layers": 1},
            "model.safetensors": st_bytes(t),
        },
    )
    assert "H501" not in {f.rule for f in report(mtp).findings}


def test_encoder_decoder_stacks_use_their_own_keys(tmp_path: Path) -> None:
    bart = {
        "architectures": ["BartForConditionalGeneration"],
        "model_type": "bart",
        "vocab_size": 16,
        "d_model": 32,
        "encoder_layers": 2,
        "decoder_layers": 3,
        "num_hidden_layers": 2,
        "dtype": "float32",
    }
    t = {"model.shared.weight": ("F32", [16, 32])}
    t |= {f"model.encoder.layers.{i}.fc1.weight": ("F32", [4, 32]) for i in range(2)}
    t |= {f"model.decoder.layers.{i}.fc1.weight": ("F32", [4, 32]) for i in range(3)}
    ok = write_repo(tmp_path / "ok", {"config.json": bart, "model.safetensors": st_bytes(t)})
    assert not failing(report(ok))
    bad = write_repo(
        tmp_path / "bad",
        {"config.json": {**bart, "decoder_layers": 2}, "model.safetensors": st_bytes(t)},
    )
    f = only(report(bad), "H501")
    assert f.location.key == "decoder_layers"


# --- 3. rope and context length (H510) -----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "key", "evidence"),
    [
        (
            {"rope_scaling": {"rope_type": "linear", "factor": 1e9}},
            "rope_scaling.factor",
            "rope_scaling.factor = 1000000000.0",
        ),
        (
            {"rope_parameters": {"rope_type": "warp", "rope_theta": 10000.0}},
            "rope_parameters.rope_type",
            "rope_parameters.rope_type = 'warp'",
        ),
        (
            {"rope_parameters": {"rope_type": "default", "rope_theta": -1}},
            "rope_parameters.rope_theta",
            "rope_parameters.rope_theta = -1",
        ),
        ({"max_position_embeddings": 1 << 40}, "max_position_embeddings", None),
        ({"max_position_embeddings": 0}, "max_position_embeddings", None),
    ],
)
def test_rope_out_of_bounds_is_h510(
    tmp_path: Path, change: dict[str, Any], key: str, evidence: str | None
) -> None:
    repo = write_repo(tmp_path / "r", {"config.json": {**LLAMA, **change}})
    f = only(report(repo), "H510")
    assert f.severity == Severity.MEDIUM
    assert f.location.path == str(repo / "config.json")
    assert f.location.key == key
    assert f.evidence == (evidence or f"{key} = {change[key]}")


def test_real_rope_settings_pass(tmp_path: Path) -> None:
    llama3 = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_theta": 500000.0,
    }
    gemma3 = {
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
    }
    legacy = {"type": "su", "short_factor": [1.0, 1.1], "long_factor": [1.2, 4.5]}
    for i, rope in enumerate((llama3, gemma3, legacy)):
        cfg = {**LLAMA, "rope_parameters": rope, "max_position_embeddings": 131072}
        assert not failing(report(write_repo(tmp_path / str(i), {"config.json": cfg})))


def test_rope_types_cover_the_installed_transformers() -> None:
    rope_utils = pytest.importorskip("transformers.modeling_rope_utils")
    assert set(rope_utils.ROPE_INIT_FUNCTIONS) <= ROPE_TYPES


# --- 4. added tokens: a second id for a control token, shadowed vocab (H511, H512) ---------


def test_special_token_second_id_is_h511(tmp_path: Path) -> None:
    added = [
        {"id": 0, "content": "<s>", "special": True},
        {"id": 1, "content": "</s>", "special": True},
        {"id": 14, "content": "</s>", "special": False},
    ]
    repo = write_repo(tmp_path / "r", {"tokenizer.json": tokenizer(added)})
    f = only(report(repo), "H511")
    assert f.severity == Severity.HIGH
    assert f.location.path == str(repo / "tokenizer.json")
    assert f.location.key == "added_tokens"
    assert f.evidence == "'</s>': ids [1, 14]"


def test_special_token_second_id_across_files(tmp_path: Path) -> None:
    decoder = {"0": {"content": "<s>", "special": True}, "15": {"content": "</s>", "special": True}}
    repo = write_repo(
        tmp_path / "r",
        {"tokenizer_config.json": {"eos_token": "</s>", "added_tokens_decoder": decoder}},
    )
    f = only(report(repo), "H511")
    assert f.location.path == str(repo / "tokenizer_config.json")
    assert f.location.key == "added_tokens_decoder"
    assert f.evidence == "'</s>': ids [1, 15]"


def test_added_token_shadowing_vocab_is_h512(tmp_path: Path) -> None:
    added = [
        {"id": 0, "content": "<s>", "special": True},
        {"id": 1, "content": "</s>", "special": True},
        {"id": 15, "content": "t3", "special": False},
    ]
    repo = write_repo(tmp_path / "r", {"tokenizer.json": tokenizer(added)})
    f = only(report(repo), "H512")
    assert f.severity == Severity.MEDIUM
    assert f.location.path == str(repo / "tokenizer.json")
    assert f.location.key == "added_tokens"
    assert f.evidence == "'t3': added 15, vocab 3"


def test_byte_level_shadowing_is_compared_in_the_byte_alphabet(tmp_path: Path) -> None:
    tok = tokenizer(
        [
            {"id": 0, "content": "<s>", "special": True},
            {"id": 1, "content": "</s>", "special": True},
            {"id": 15, "content": " hi", "special": False},
        ]
    )
    tok["model"]["vocab"]["\u0120hi"] = 14  # "Ġhi" is " hi" in GPT-2's byte alphabet
    tok["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False}
    repo = write_repo(tmp_path / "r", {"tokenizer.json": tok})
    assert only(report(repo), "H512").evidence == "' hi': added 15, vocab 14"


# --- 6. a control token duplicated as a normal token; escape sequences (H513, H514) --------


def test_control_token_also_plain_vocab_is_h513(tmp_path: Path) -> None:
    tok = tokenizer(
        [
            {"id": 0, "content": "<s>", "special": True},
            {"id": 1, "content": "</s>", "special": True},
            {"id": 15, "content": "<|im_end|>", "special": True},
        ]
    )
    tok["model"]["vocab"]["<|im_end|>"] = 14
    repo = write_repo(tmp_path / "r", {"tokenizer.json": tok})
    f = only(report(repo), "H513")
    assert f.severity == Severity.HIGH
    assert f.location.path == str(repo / "tokenizer.json")
    assert f.location.key == "model.vocab"
    assert f.evidence == "'<|im_end|>': control id 15, plain vocab id 14"


def test_duplicated_unigram_piece_is_not_h513(tmp_path: Path) -> None:
    """CamemBERT's real unigram vocab lists `<unk>` twice; the added id is one of them."""
    tok = tokenizer([{"id": 5, "content": "<unk>", "special": True}])
    tok["model"] = {
        "type": "Unigram",
        "unk_id": 3,
        "vocab": [["<s>", 0.0], ["</s>", 0.0], ["a", -1.0], ["<unk>", 0.0], ["b", -1.0]]
        + [["<unk>", 0.0]]
        + [[f"p{i}", -2.0] for i in range(10)],
    }
    repo = write_repo(
        tmp_path / "r", {"tokenizer.json": tok, "tokenizer_config.json": {"unk_token": "<unk>"}}
    )
    assert not {"H511", "H512", "H513"} & {f.rule for f in report(repo).findings}


def test_osc_in_added_token_is_h514(tmp_path: Path) -> None:
    osc = "\x1b]52;c;ZWNobyBoaQ==\x07"  # OSC 52: write the clipboard
    added = [
        {"id": 0, "content": "<s>", "special": True},
        {"id": 1, "content": "</s>", "special": True},
        {"id": 15, "content": osc, "special": False},
    ]
    repo = write_repo(tmp_path / "r", {"tokenizer.json": tokenizer(added)})
    f = only(report(repo), "H514")
    assert f.severity == Severity.HIGH
    assert f.location.path == str(repo / "tokenizer.json")
    assert f.location.key == "added_tokens"
    assert f.evidence == f"id 15: {osc!r}"


def test_csi_in_byte_level_vocab_is_h514(tmp_path: Path) -> None:
    tok = tokenizer()
    tok["decoder"] = {"type": "ByteLevel"}
    # ESC [ 2 J (clear screen) in GPT-2's byte alphabet: ESC is U+011B
    tok["model"]["vocab"]["\u011b[2J"] = 14
    tok["model"]["vocab"]["\u011b["] = 15  # a bare `ESC [` is real (Llama 3, Qwen 2): clean
    repo = write_repo(tmp_path / "r", {"tokenizer.json": tok})
    f = only(report(repo), "H514")
    assert f.location.key == "model.vocab"
    assert f.evidence == "id 14: '\\x1b[2J'"


def test_bare_escape_pieces_are_not_h514(tmp_path: Path) -> None:
    tok = tokenizer()
    for i, piece in enumerate(["\x1b", "\x1b[", ")\x1b[", "\x9d", "\x07"]):
        tok["model"]["vocab"][piece] = 14 + i
    repo = write_repo(tmp_path / "r", {"tokenizer.json": tok})
    assert "H514" not in {f.rule for f in report(repo).findings}


# --- 5. index entries whose shard does not hold the tensor (H404), both index kinds ---------


def test_safetensors_index_entry_absent_from_shard_is_h404(tmp_path: Path) -> None:
    t = llama_tensors()
    index = {"weight_map": {**dict.fromkeys(t, "model-00001-of-00001.safetensors")}}
    index["weight_map"]["lm_head.weight"] = "model-00001-of-00001.safetensors"
    repo = write_repo(
        tmp_path / "r",
        {
            "model.safetensors": None,
            "model-00001-of-00001.safetensors": st_bytes(t),
            "model.safetensors.index.json": index,
        },
    )
    f = only(report(repo), "H404")
    assert f.location.path == str(repo / "model.safetensors.index.json")
    assert f.location.key == "lm_head.weight"
    assert "model-00001-of-00001.safetensors" in f.message


def test_pytorch_index_entry_absent_from_shard_is_h404(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    t = llama_tensors()
    repo = write_repo(tmp_path / "r", {"model.safetensors": None})
    shard = "pytorch_model-00001-of-00001.bin"
    torch.save({k: torch.zeros(s) for k, (_, s) in t.items()}, repo / shard)
    index = {"weight_map": {**dict.fromkeys(t, shard), "lm_head.weight": shard}}
    (repo / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    f = only(report(repo), "H404")
    assert f.location.path == str(repo / "pytorch_model.bin.index.json")
    assert f.location.key == "lm_head.weight"
    assert shard in f.message


# --- 7. real architectures saved by the real library --------------------------------------

BUILD = r"""
import json, shutil, sys, warnings
from pathlib import Path
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[2])
import builders as b
import transformers as tf
tf.logging.set_verbosity_error()
out = Path(sys.argv[1])
HP = b.HP
extra = [
    ("gpt_neo", "gpt_neo", "AutoModelForCausalLM",
     {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "attention_types": [[["global"], 2]],
      "max_position_embeddings": 128}, "bpe", None),
    ("olmo", "olmo", "AutoModelForCausalLM", b.GQA, "bpe", None),
    ("mpt", "mpt", "AutoModelForCausalLM",
     {"d_model": 32, "n_heads": 4, "n_layers": 2, "max_seq_len": 128}, "bpe", None),
    ("gpt_bigcode", "gpt_bigcode", "AutoModelForCausalLM",
     {"n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 128}, "bpe", None),
]
names = set(sys.argv[3].split(","))
done = []
for name, model_type, auto, kwargs, tok_kind, spm_name in b.ARCHS + extra:
    if name not in names:
        continue
    b.seed_all()
    src = b.fresh(out / "_src" / name)
    for f in b.tokenizer_files(out, tok_kind).iterdir():
        shutil.copy(f, src / f.name)
    tf.AutoConfig.for_model(model_type, **kwargs).save_pretrained(src)
    tok = tf.AutoTokenizer.from_pretrained(str(src))
    cfg = tf.AutoConfig.for_model(model_type, **{**kwargs, "vocab_size": len(tok)})
    b._fix_special_ids(cfg, tok, len(tok))
    model = getattr(tf, auto).from_config(cfg)
    folder = b.fresh(out / name)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    if spm_name is not None:
        shutil.copy(src / spm_name, folder / spm_name)
    done.append(name)
print(json.dumps(done))
"""

ARCHS = [
    "bert",
    "roberta",
    "distilbert",
    "albert",
    "electra",
    "mobilebert",
    "mpnet",
    "deberta-v2",
    "xlm-roberta",
    "camembert",
    "gpt2",
    "gpt_neo",
    "gptj",
    "codegen",
    "llama",
    "mistral",
    "mixtral",
    "gemma",
    "gemma2",
    "phi",
    "phi3",
    "qwen2",
    "qwen3",
    "stablelm",
    "starcoder2",
    "olmo",
    "opt",
    "gpt_neox",
    "falcon",
    "bloom",
    "t5",
    "bart",
    "mpt",
    "gpt_bigcode",
]


@pytest.fixture(scope="module")
def real_repos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    pytest.importorskip("transformers")
    pytest.importorskip("sentencepiece")
    out = tmp_path_factory.mktemp("archs")
    # transformers unpickles nothing here, but keep its imports out of the tripwire's process
    proc = subprocess.run(
        [sys.executable, "-c", BUILD, str(out), str(ROOT / "bench" / "realworld"), ",".join(ARCHS)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return out, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_real_architectures_have_no_failing_finding(real_repos: tuple[Path, list[str]]) -> None:
    out, built = real_repos
    assert len(built) == len(ARCHS), set(ARCHS) - set(built)
    problems = {}
    for name in built:
        rep = scan_tree([out / name], Config(jobs=1))
        assert any(a.format == "hf-repo" for a in rep.artifacts), name
        if bad := failing(rep):
            problems[name] = bad
    assert not problems


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "change", "rule", "key"),
    [
        ("llama", {"num_key_value_heads": 4}, "H509", "num_key_value_heads"),
        ("qwen3", {"head_dim": 16}, "H509", "num_attention_heads"),
        ("gpt2", {"n_layer": 3}, "H501", "n_layer"),
        ("t5", {"num_decoder_layers": 3}, "H501", "num_decoder_layers"),
        ("mistral", {"rope_parameters": {"rope_type": "yarn", "factor": 0}}, "H510", None),
    ],
)
def test_real_architecture_mutated(
    real_repos: tuple[Path, list[str]],
    tmp_path: Path,
    name: str,
    change: dict[str, Any],
    rule: str,
    key: str | None,
) -> None:
    import shutil

    out, _ = real_repos
    repo = tmp_path / name
    shutil.copytree(out / name, repo)
    config = json.loads((repo / "config.json").read_text())
    config.update(change)
    (repo / "config.json").write_text(json.dumps(config))
    hits = [f for f in report(repo).findings if f.rule == rule]
    assert hits, [(f.rule, f.message) for f in report(repo).findings]
    assert {f.location.path for f in hits} == {str(repo / "config.json")}
    assert (key or "rope_parameters.factor") in {f.location.key for f in hits}


def test_hostile_values_never_crash(tmp_path: Path) -> None:
    cfg = {
        **LLAMA,
        "rope_scaling": {"factor": 10**400, "rope_type": ["x"], "long_factor": [None, "a"]},
        "rope_parameters": {"a": {"b": {"c": {}}}},
        "max_position_embeddings": "big",
        "num_key_value_heads": 0,
        "head_dim": True,
        "text_config": [1],
    }
    tok = tokenizer([{"id": "1", "content": 5}, {"id": 2**70, "content": "</s>", "special": True}])
    tok["model"]["vocab"] = [["a"], [1, 2], "x", None]
    t = llama_tensors()
    t["model.layers.99999999999999999999.self_attn.q_proj.weight"] = ("F32", [1, 1])
    repo = write_repo(
        tmp_path / "r",
        {
            "config.json": cfg,
            "tokenizer.json": tok,
            "tokenizer_config.json": {"added_tokens_decoder": {"9" * 5000: {"content": "x"}}},
            "model.safetensors": st_bytes(t),
        },
    )
    rules = {f.rule for f in report(repo).findings}
    assert "H510" in rules
    assert not {"X901", "X902", "X904"} & rules
