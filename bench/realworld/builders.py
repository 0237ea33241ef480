"""Builders of real benign artifacts for ``bench/realworld.py``, one group per process.

``python builders.py GROUP OUTDIR`` saves the group's artifacts with the real libraries under
OUTDIR and writes ``OUTDIR/manifest.json``: ``items`` (source, path relative to OUTDIR, kind
``file`` or ``dir``), ``failures`` (source, what, error) and ``versions``. Every artifact is
built inside ``Manifest.attempt`` so that one failing library or model leaves the rest.
Deterministic where cheap: fixed seeds, no network (tokenizers are trained locally).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pickle
import random
import shutil
import sys
import sysconfig
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SEED = 0


class Manifest:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.items: list[dict[str, str]] = []
        self.failures: list[dict[str, str]] = []
        self.versions: dict[str, str] = {}

    def add(self, source: str, path: Path, kind: str = "file", note: str = "") -> None:
        rel = str(path.relative_to(self.out))
        self.items.append({"source": source, "path": rel, "kind": kind, "note": note})

    def add_tree(self, source: str, folder: Path, note: str = "") -> None:
        """Every file under ``folder``, each its own item."""
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                self.add(source, p, "file", note)

    @contextlib.contextmanager
    def attempt(self, source: str, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:  # one failing artifact must not stop the group
            tb = traceback.format_exc().strip().splitlines()
            err = f"{type(exc).__name__}: {exc}"[:400] + " | " + " / ".join(tb[-4:-1])[-400:]
            self.failures.append({"source": source, "what": what, "error": err})
            print(f"FAILED {source} {what}: {err}", file=sys.stderr)

    def version(self, *modules: str) -> None:
        for name in modules:
            with contextlib.suppress(Exception):
                mod = importlib.import_module(name)
                self.versions[name] = str(getattr(mod, "__version__", "?"))

    def write(self) -> None:
        data = {"items": self.items, "failures": self.failures, "versions": self.versions}
        (self.out / "manifest.json").write_text(json.dumps(data, indent=1))


def seed_all() -> None:
    random.seed(SEED)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(SEED)
    with contextlib.suppress(ImportError):
        import torch

        torch.manual_seed(SEED)


def fresh(path: Path) -> Path:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    path.mkdir(parents=True)
    return path


# --------------------------------------------------------------------------------------------
# Tokenizers, trained locally on stdlib text (deterministic for a given Python)


def corpus(out: Path) -> Path:
    path = out / "_corpus.txt"
    if not path.exists():
        std = Path(sysconfig.get_paths()["stdlib"])
        parts = [(std / f).read_text() for f in ("argparse.py", "textwrap.py", "difflib.py")]
        path.write_text("\n".join(parts))
    return path


SPM_NAMES = ("tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "spm.model")
BPE_SPECIALS = ["<|endoftext|>", "<s>", "<pad>", "</s>", "<unk>", "<mask>", "<|startoftext|>"]
WP_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tokenizer_files(out: Path, kind: str) -> Path:
    """Tokenizer source files of ``kind``: wp, bpe, spm-unigram, spm-bpe, spm-fairseq."""
    src = out / "_tok" / kind
    if src.exists():
        return src
    tmp = fresh(out / "_tok" / f"{kind}.tmp")
    text = corpus(out)
    if kind == "wp":
        from tokenizers import BertWordPieceTokenizer

        wp = BertWordPieceTokenizer(lowercase=True)
        wp.train([str(text)], vocab_size=600, special_tokens=WP_SPECIALS, show_progress=False)
        wp.save_model(str(tmp))
    elif kind == "bpe":
        from tokenizers import ByteLevelBPETokenizer

        bpe = ByteLevelBPETokenizer()
        bpe.train([str(text)], vocab_size=600, special_tokens=BPE_SPECIALS, show_progress=False)
        bpe.save_model(str(tmp))
        bpe.save(str(tmp / "tokenizer.json"))  # what GPT-NeoX, Falcon, Bloom repos ship
    else:
        import sentencepiece as spm

        model_type = kind.split("-")[1]
        # fairseq layout (XLM-R): <unk>=0 <s>=1 </s>=2, no pad; transformers remaps it
        fairseq = model_type == "fairseq"
        model_type = "unigram" if fairseq else model_type
        spm.SentencePieceTrainer.train(
            input=str(text),
            model_prefix=str(tmp / "sp"),
            vocab_size=600,
            model_type=model_type,
            byte_fallback=model_type == "bpe",
            pad_id=-1 if fairseq else 0,
            unk_id=0 if fairseq else 1,
            bos_id=1 if fairseq else 2,
            eos_id=2 if fairseq else 3,
            minloglevel=2,
            num_threads=1,
            seed_sentencepiece_size=100000,
            user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"] if model_type == "unigram" else [],
        )
        for name in SPM_NAMES:
            shutil.copy(tmp / "sp.model", tmp / name)
        (tmp / "sp.model").unlink()
        (tmp / "sp.vocab").unlink()
    tmp.rename(src)
    return src


# --------------------------------------------------------------------------------------------
# transformers

H = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}
HP = {**H, "max_position_embeddings": 128}
GQA = {**HP, "num_key_value_heads": 2}
ENCDEC = {
    "d_model": 32,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
}
VISION = {**H, "image_size": 32, "patch_size": 8, "num_channels": 3}
CONV_AUDIO = {
    **H,
    "conv_dim": (32, 32),
    "conv_stride": (5, 4),
    "conv_kernel": (10, 4),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
}

# (name, model_type, auto class, config kwargs, tokenizer kind or None, spm file name)
ARCHS: list[tuple[str, str, str, dict[str, Any], str | None, str | None]] = [
    ("bert", "bert", "AutoModelForMaskedLM", HP, "wp", None),
    ("roberta", "roberta", "AutoModelForMaskedLM", HP, "bpe", None),
    (
        "distilbert",
        "distilbert",
        "AutoModelForMaskedLM",
        {"dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 64, "max_position_embeddings": 128},
        "wp",
        None,
    ),
    (
        "albert",
        "albert",
        "AutoModelForMaskedLM",
        {**HP, "embedding_size": 16},
        "spm-unigram",
        "spiece.model",
    ),
    ("electra", "electra", "AutoModelForMaskedLM", {**HP, "embedding_size": 16}, "wp", None),
    (
        "mobilebert",
        "mobilebert",
        "AutoModelForMaskedLM",
        {
            **HP,
            "embedding_size": 16,
            "true_hidden_size": 32,
            "intra_bottleneck_size": 32,
            "num_feedforward_networks": 1,
        },
        "wp",
        None,
    ),
    ("mpnet", "mpnet", "AutoModelForMaskedLM", HP, "wp", None),
    ("deberta-v2", "deberta-v2", "AutoModelForMaskedLM", HP, "spm-unigram", "spm.model"),
    ("deberta", "deberta", "AutoModelForMaskedLM", HP, "bpe", None),
    (
        "xlm-roberta",
        "xlm-roberta",
        "AutoModelForMaskedLM",
        HP,
        "spm-fairseq",
        "sentencepiece.bpe.model",
    ),
    (
        "camembert",
        "camembert",
        "AutoModelForMaskedLM",
        HP,
        "spm-unigram",
        "sentencepiece.bpe.model",
    ),
    (
        "gpt2",
        "gpt2",
        "AutoModelForCausalLM",
        {"n_embd": 32, "n_layer": 2, "n_head": 4},
        "bpe",
        None,
    ),
    (
        "gptj",
        "gptj",
        "AutoModelForCausalLM",
        {"n_embd": 32, "n_layer": 2, "n_head": 4, "rotary_dim": 4, "n_positions": 128},
        "bpe",
        None,
    ),
    (
        "codegen",
        "codegen",
        "AutoModelForCausalLM",
        {
            "n_embd": 32,
            "n_layer": 2,
            "n_head": 4,
            "rotary_dim": 4,
            "n_positions": 128,
            "n_ctx": 128,
        },
        "bpe",
        None,
    ),
    ("llama", "llama", "AutoModelForCausalLM", GQA, "spm-bpe", "tokenizer.model"),
    ("mistral", "mistral", "AutoModelForCausalLM", GQA, "spm-bpe", "tokenizer.model"),
    (
        "mixtral",
        "mixtral",
        "AutoModelForCausalLM",
        {**GQA, "num_local_experts": 2, "num_experts_per_tok": 1},
        "spm-bpe",
        "tokenizer.model",
    ),
    (
        "gemma",
        "gemma",
        "AutoModelForCausalLM",
        {**GQA, "head_dim": 8},
        "spm-bpe",
        "tokenizer.model",
    ),
    (
        "gemma2",
        "gemma2",
        "AutoModelForCausalLM",
        {**GQA, "head_dim": 8},
        "spm-bpe",
        "tokenizer.model",
    ),
    ("phi3", "phi3", "AutoModelForCausalLM", HP, "spm-bpe", "tokenizer.model"),
    ("phi", "phi", "AutoModelForCausalLM", HP, "bpe", None),
    ("qwen2", "qwen2", "AutoModelForCausalLM", GQA, "bpe", None),
    ("qwen3", "qwen3", "AutoModelForCausalLM", {**GQA, "head_dim": 8}, "bpe", None),
    ("stablelm", "stablelm", "AutoModelForCausalLM", GQA, "bpe", None),
    ("starcoder2", "starcoder2", "AutoModelForCausalLM", GQA, "bpe", None),
    (
        "opt",
        "opt",
        "AutoModelForCausalLM",
        {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "ffn_dim": 64,
            "word_embed_proj_dim": 32,
            "max_position_embeddings": 128,
        },
        "bpe",
        None,
    ),
    ("gpt_neox", "gpt_neox", "AutoModelForCausalLM", HP, "bpe", None),
    (
        "falcon",
        "falcon",
        "AutoModelForCausalLM",
        {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4},
        "bpe",
        None,
    ),
    (
        "bloom",
        "bloom",
        "AutoModelForCausalLM",
        {"hidden_size": 32, "n_layer": 2, "n_head": 4},
        "bpe",
        None,
    ),
    (
        "t5",
        "t5",
        "AutoModelForSeq2SeqLM",
        {"d_model": 32, "d_ff": 64, "num_layers": 2, "num_heads": 4, "d_kv": 8},
        "spm-unigram",
        "spiece.model",
    ),
    (
        "bart",
        "bart",
        "AutoModelForSeq2SeqLM",
        {**ENCDEC, "max_position_embeddings": 128},
        "bpe",
        None,
    ),
    (
        "whisper",
        "whisper",
        "AutoModelForSpeechSeq2Seq",
        {**ENCDEC, "num_mel_bins": 80, "max_source_positions": 1500, "max_target_positions": 64},
        "bpe",
        None,
    ),
    ("vit", "vit", "AutoModelForImageClassification", {**VISION, "num_labels": 3}, None, None),
    (
        "swin",
        "swin",
        "AutoModelForImageClassification",
        {
            "image_size": 32,
            "patch_size": 4,
            "embed_dim": 8,
            "depths": [1, 1],
            "num_heads": [1, 2],
            "window_size": 4,
            "num_labels": 3,
        },
        None,
        None,
    ),
    (
        "convnext",
        "convnext",
        "AutoModelForImageClassification",
        {"hidden_sizes": [8, 16], "depths": [1, 1], "num_stages": 2, "num_labels": 3},
        None,
        None,
    ),
    (
        "resnet",
        "resnet",
        "AutoModelForImageClassification",
        {"embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1], "num_labels": 3},
        None,
        None,
    ),
    ("wav2vec2", "wav2vec2", "AutoModelForCTC", CONV_AUDIO, "ctc", None),
    ("hubert", "hubert", "AutoModelForCTC", CONV_AUDIO, "ctc", None),
    (
        "clip",
        "clip",
        "AutoModel",
        {
            "text_config": {**H, "max_position_embeddings": 77},
            "vision_config": {**VISION},
            "projection_dim": 16,
        },
        "bpe",
        None,
    ),
]
SPECIAL_IDS = (
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "decoder_start_token_id",
    "sep_token_id",
    "cls_token_id",
)


def _fix_special_ids(cfg: Any, tok: Any, vocab: int) -> None:
    """Point the config's special-token ids at the tokenizer's (what a real export does)."""
    for attr in SPECIAL_IDS:
        value = getattr(cfg, attr, None)
        if isinstance(value, int) and value >= vocab:
            name = attr.replace("decoder_start_", "bos_").replace("_id", "")
            new = getattr(tok, f"{name}_id", None) if tok is not None else None
            setattr(cfg, attr, new if isinstance(new, int) and new < vocab else None)
        elif isinstance(value, list):
            setattr(cfg, attr, [v for v in value if v < vocab] or None)


def _ctc_tokenizer(src: Path) -> Any:
    from transformers import Wav2Vec2CTCTokenizer

    letters = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ'"]
    (src / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(letters)}))
    return Wav2Vec2CTCTokenizer(str(src / "vocab.json"))


def _processor_extras(name: str, folder: Path) -> None:
    import transformers as tf

    if name in ("vit", "swin", "convnext", "resnet", "clip"):
        tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    elif name in ("wav2vec2", "hubert"):
        tf.Wav2Vec2FeatureExtractor().save_pretrained(folder)
    elif name == "whisper":
        tf.WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)


def build_transformers(m: Manifest) -> None:
    import torch
    import transformers as tf

    m.version("transformers", "tokenizers", "sentencepiece", "torch", "safetensors")
    tf.logging.set_verbosity_error()
    for name, model_type, auto, kwargs, tok_kind, spm_name in ARCHS:
        with m.attempt("transformers", name):
            seed_all()
            src = fresh(m.out / "_src" / name)
            tok = None
            if tok_kind == "ctc":
                tok = _ctc_tokenizer(src)
            elif tok_kind is not None:
                for f in tokenizer_files(m.out, tok_kind).iterdir():
                    shutil.copy(f, src / f.name)
                tf.AutoConfig.for_model(model_type, **kwargs).save_pretrained(src)
                tok = tf.AutoTokenizer.from_pretrained(str(src))
            vocab = len(tok) if tok is not None else None
            cfg_kwargs = dict(kwargs)
            if vocab is not None:
                if model_type == "clip":
                    cfg_kwargs["text_config"] = {**kwargs["text_config"], "vocab_size": vocab}
                else:
                    cfg_kwargs["vocab_size"] = vocab
            cfg = tf.AutoConfig.for_model(model_type, **cfg_kwargs)
            if vocab is not None:
                target = cfg.text_config if model_type == "clip" else cfg
                _fix_special_ids(target, tok, vocab)
                if model_type == "clip":
                    _fix_special_ids(cfg, tok, vocab)
            model = getattr(tf, auto).from_config(cfg)
            model.eval()
            for fmt in ("safetensors", "bin"):
                folder = fresh(m.out / f"{name}-{fmt}")
                if fmt == "safetensors":
                    model.save_pretrained(folder)
                else:
                    # transformers 5 writes safetensors only; this is what 4.x's
                    # save_pretrained(safe_serialization=False) wrote for an unsharded model
                    model.config.save_pretrained(folder)
                    if getattr(model, "generation_config", None) is not None:
                        with contextlib.suppress(Exception):
                            model.generation_config.save_pretrained(folder)
                    torch.save(model.state_dict(), folder / "pytorch_model.bin")
                if tok is not None:
                    tok.save_pretrained(folder)
                if spm_name is not None:
                    shutil.copy(src / spm_name, folder / spm_name)
                _processor_extras(name, folder)
                m.add("transformers", folder, "dir", f"{model_type} {fmt}")
            shutil.rmtree(src)


# --------------------------------------------------------------------------------------------
# PEFT, diffusers, sentence-transformers


def _tiny_bert_folder(m: Manifest) -> Path:
    import transformers as tf

    folder = m.out / "_bert"
    if not folder.exists():
        seed_all()
        tmp = fresh(m.out / "_bert.tmp")
        for f in tokenizer_files(m.out, "wp").iterdir():
            shutil.copy(f, tmp / f.name)
        tf.BertConfig(**HP, vocab_size=600).save_pretrained(tmp)
        tok = tf.AutoTokenizer.from_pretrained(str(tmp))
        cfg = tf.BertConfig(**HP, vocab_size=len(tok))
        tf.BertModel(cfg).save_pretrained(tmp)
        tok.save_pretrained(tmp)
        tmp.rename(folder)
    return folder


def build_hf_extras(m: Manifest) -> None:
    import transformers as tf

    m.version("peft", "diffusers", "sentence_transformers", "transformers", "torch")
    tf.logging.set_verbosity_error()

    def base_llama() -> Any:
        seed_all()
        return tf.LlamaForCausalLM(tf.LlamaConfig(**GQA, vocab_size=128))

    def base_gpt2() -> Any:
        seed_all()
        return tf.GPT2LMHeadModel(tf.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=128))

    def base_bert() -> Any:
        seed_all()
        return tf.BertForSequenceClassification(tf.BertConfig(**HP, vocab_size=128))

    peft_cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = []
    with m.attempt("peft", "import"):
        import peft

        peft_cases = [
            (
                "lora-llama",
                base_llama,
                lambda: peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
            ),
            (
                "lora-llama-all-linear",
                base_llama,
                lambda: peft.LoraConfig(r=4, target_modules="all-linear", use_dora=True),
            ),
            ("lora-gpt2", base_gpt2, lambda: peft.LoraConfig(r=4, target_modules=["c_attn"])),
            (
                "lora-bert-seqcls",
                base_bert,
                lambda: peft.LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query"]),
            ),
            (
                "ia3-llama",
                base_llama,
                lambda: peft.IA3Config(
                    target_modules=["k_proj", "v_proj", "down_proj"],
                    feedforward_modules=["down_proj"],
                ),
            ),
            (
                "prefix-gpt2",
                base_gpt2,
                lambda: peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
            ),
            (
                "prompt-llama",
                base_llama,
                lambda: peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
            ),
        ]
    for name, base, config in peft_cases:
        for safe in (True, False):
            fmt = "safetensors" if safe else "bin"
            with m.attempt("peft", f"{name}-{fmt}"):
                import peft

                model = peft.get_peft_model(base(), config())
                folder = fresh(m.out / "peft" / f"{name}-{fmt}")
                model.save_pretrained(str(folder), safe_serialization=safe)
                m.add("peft", folder, "dir")

    with m.attempt("diffusers", "import"):
        import diffusers as df

        def unet() -> Any:
            seed_all()
            return df.UNet2DModel(
                sample_size=8,
                in_channels=3,
                out_channels=3,
                layers_per_block=1,
                block_out_channels=(8, 16),
                down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                norm_num_groups=4,
                attention_head_dim=4,
            )

        def vae() -> Any:
            seed_all()
            return df.AutoencoderKL(
                block_out_channels=(8, 16),
                down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
                latent_channels=4,
                norm_num_groups=4,
                sample_size=16,
            )

        def cond_unet() -> Any:
            seed_all()
            return df.UNet2DConditionModel(
                sample_size=8,
                in_channels=4,
                out_channels=4,
                layers_per_block=1,
                block_out_channels=(8, 16),
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                cross_attention_dim=16,
                norm_num_groups=4,
                attention_head_dim=4,
            )

        def ddpm() -> Any:
            return df.DDPMPipeline(unet=unet(), scheduler=df.DDPMScheduler(num_train_timesteps=10))

        def ddim() -> Any:
            return df.DDIMPipeline(unet=unet(), scheduler=df.DDIMScheduler(num_train_timesteps=10))

        def ldm() -> Any:
            seed_all()
            vq = df.VQModel(
                block_out_channels=(8,),
                down_block_types=("DownEncoderBlock2D",),
                up_block_types=("UpDecoderBlock2D",),
                latent_channels=3,
                norm_num_groups=4,
                num_vq_embeddings=16,
            )
            return df.LDMPipeline(vqvae=vq, unet=unet(), scheduler=df.DDIMScheduler(10))

        for name, make in [
            ("ddpm-pipeline", ddpm),
            ("ddim-pipeline", ddim),
            ("ldm-pipeline", ldm),
            ("unet2d", unet),
            ("vae-kl", vae),
            ("unet2d-condition", cond_unet),
        ]:
            for safe in (True, False):
                fmt = "safetensors" if safe else "bin"
                with m.attempt("diffusers", f"{name}-{fmt}"):
                    folder = fresh(m.out / "diffusers" / f"{name}-{fmt}")
                    make().save_pretrained(str(folder), safe_serialization=safe)
                    m.add("diffusers", folder, "dir")

    with m.attempt("sentence-transformers", "import"):
        from sentence_transformers import SentenceTransformer, models

        bert = _tiny_bert_folder(m)

        def st(kind: str) -> Any:
            seed_all()
            mods: list[Any] = [models.Transformer(str(bert), max_seq_length=64)]
            mods.append(models.Pooling(32, pooling_mode="cls" if kind == "cls" else "mean"))
            if kind == "dense":
                mods.append(models.Dense(32, 16))
            mods.append(models.Normalize())
            return SentenceTransformer(modules=mods, device="cpu")

        for kind in ("mean", "cls", "dense"):
            for safe in (True, False):
                fmt = "safetensors" if safe else "bin"
                with m.attempt("sentence-transformers", f"{kind}-{fmt}"):
                    folder = fresh(m.out / "sentence-transformers" / f"{kind}-{fmt}")
                    st(kind).save(str(folder), safe_serialization=safe)
                    m.add("sentence-transformers", folder, "dir")


# --------------------------------------------------------------------------------------------
# torch


def build_torch(m: Manifest) -> None:
    import argparse

    import numpy as np
    import torch
    from torch import nn

    m.version("torch", "numpy")
    out = fresh(m.out / "torch")

    def save(name: str, obj: Any, **kw: Any) -> None:
        with m.attempt("torch", name):
            path = out / name
            torch.save(obj, path, **kw)
            m.add("torch", path)

    def mlp() -> nn.Module:
        seed_all()
        return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))

    def step(model: nn.Module, opt: Any) -> None:
        for _ in range(2):
            opt.zero_grad()

            def closure() -> Any:
                opt.zero_grad()
                loss = model(torch.randn(4, 8)).pow(2).mean()
                loss.backward()
                return loss

            opt.step(closure)

    optims = {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        "adam": lambda p: torch.optim.Adam(p, lr=1e-3, amsgrad=True),
        "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01),
        "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-3, momentum=0.9),
        "adagrad": lambda p: torch.optim.Adagrad(p, lr=1e-2),
        "adadelta": lambda p: torch.optim.Adadelta(p),
        "adamax": lambda p: torch.optim.Adamax(p),
        "nadam": lambda p: torch.optim.NAdam(p),
        "radam": lambda p: torch.optim.RAdam(p),
        "asgd": lambda p: torch.optim.ASGD(p),
        "rprop": lambda p: torch.optim.Rprop(p),
        "lbfgs": lambda p: torch.optim.LBFGS(p, max_iter=2),
        "sparse-adam-free": lambda p: torch.optim.Adam(p, fused=False, foreach=True),
    }
    for name, make in optims.items():
        with m.attempt("torch", f"optim-{name}"):
            model = mlp()
            opt = make(model.parameters())
            step(model, opt)
            save(f"optim-{name}.pt", opt.state_dict())

    def sched(make: Callable[[Any], Any]) -> Any:
        model = mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        s = make(opt)
        for _ in range(3):
            opt.step()
            s.step(1.0) if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau) else s.step()
        return s.state_dict()

    lrs = torch.optim.lr_scheduler
    schedulers = {
        "steplr": lambda o: lrs.StepLR(o, step_size=2),
        "multisteplr": lambda o: lrs.MultiStepLR(o, milestones=[1, 2]),
        "cosine": lambda o: lrs.CosineAnnealingLR(o, T_max=10),
        "cosine-restarts": lambda o: lrs.CosineAnnealingWarmRestarts(o, T_0=2),
        "onecycle": lambda o: lrs.OneCycleLR(o, max_lr=0.1, total_steps=10),
        "cyclic": lambda o: lrs.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2),
        "exponential": lambda o: lrs.ExponentialLR(o, gamma=0.9),
        "linear": lambda o: lrs.LinearLR(o, total_iters=4),
        "plateau": lambda o: lrs.ReduceLROnPlateau(o),
        "polynomial": lambda o: lrs.PolynomialLR(o, total_iters=4),
        "sequential": lambda o: lrs.SequentialLR(
            o, [lrs.LinearLR(o, total_iters=2), lrs.ExponentialLR(o, 0.9)], milestones=[2]
        ),
        "lambda": lambda o: lrs.LambdaLR(o, lr_lambda=lambda e: 0.95**e),
    }
    for name, make in schedulers.items():
        with m.attempt("torch", f"sched-{name}"):
            save(f"sched-{name}.pt", sched(make))

    with m.attempt("torch", "gradscaler"):
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
        model = mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler.scale(model(torch.randn(2, 8)).sum()).backward()
        scaler.step(opt)
        scaler.update()
        save("gradscaler.pt", scaler.state_dict())

    modules: dict[str, Callable[[], nn.Module]] = {
        "transformer-encoder": lambda: nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32), num_layers=2
        ),
        "transformer": lambda: nn.Transformer(
            d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32
        ),
        "lstm": lambda: nn.LSTM(8, 16, num_layers=2, bidirectional=True),
        "gru": lambda: nn.GRU(8, 16),
        "cnn": lambda: nn.Sequential(
            nn.Conv2d(3, 8, 3),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.1),
            nn.Flatten(),
            nn.LazyLinear(4),
        ),
        "mha": lambda: nn.MultiheadAttention(16, 2),
        "embedding-bag": lambda: nn.EmbeddingBag(50, 8, mode="mean"),
        "mlp-gelu-layernorm": lambda: nn.Sequential(
            nn.Linear(8, 16), nn.GELU(), nn.LayerNorm(16), nn.SiLU(), nn.Linear(16, 2)
        ),
    }
    for name, make in modules.items():
        seed_all()
        module = make()
        if name == "cnn":
            module(torch.randn(1, 3, 8, 8))
        save(f"module-{name}.pt", module)
        save(f"state-{name}.pt", module.state_dict())

    with m.attempt("torch", "legacy-format"):
        save("state-mlp-legacy.pt", mlp().state_dict(), _use_new_zipfile_serialization=False)
    with m.attempt("torch", "module-legacy-format"):
        save("module-mlp-legacy.pt", mlp(), _use_new_zipfile_serialization=False)
    with m.attempt("torch", "tensors"):
        seed_all()
        tensors = {
            "f16": torch.randn(4).half(),
            "bf16": torch.randn(4).bfloat16(),
            "i8": torch.arange(4, dtype=torch.int8),
            "bool": torch.tensor([True, False]),
            "c64": torch.randn(2, dtype=torch.complex64),
            "u8": torch.arange(4, dtype=torch.uint8),
            "view": torch.arange(10.0)[2:6],
            "noncontig": torch.randn(4, 4).t(),
        }
        save("tensors-dtypes.pt", tensors)
        save("tensor-sparse-coo.pt", torch.eye(4).to_sparse())
        save("tensor-sparse-csr.pt", torch.eye(4).to_sparse_csr())
        save("tensor-quantized.pt", torch.quantize_per_tensor(torch.rand(4), 0.1, 0, torch.quint8))
        save("nn-parameter.pt", nn.Parameter(torch.randn(3)))
        save("topk-return-type.pt", torch.topk(torch.arange(5.0), 2))
        save("tensor-list.pt", [torch.randn(2), (torch.randn(1), 3, "x"), {"a": 1.5}])
    with m.attempt("torch", "checkpoint"):
        model = mlp()
        opt = torch.optim.AdamW(model.parameters())
        step(model, opt)
        ckpt = {
            "epoch": 3,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": opt.state_dict(),
            "loss": 0.25,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "best_metric": np.float64(0.9),
            "step_array": np.arange(3),
        }
        save("checkpoint-training.pt", ckpt)
        save(
            "checkpoint-with-namespace.pt",
            {"args": argparse.Namespace(lr=0.1, epochs=3), "model": model.state_dict()},
        )
    with m.attempt("torch", "torchscript"):
        seed_all()
        scripted = torch.jit.script(mlp())
        path = out / "scripted-mlp.pt"
        torch.jit.save(scripted, str(path))
        m.add("torch", path)
        cnn = modules["cnn"]().eval()
        cnn(torch.randn(1, 3, 8, 8))  # materialise the lazy layer
        traced = torch.jit.trace(cnn, torch.randn(1, 3, 8, 8))
        path = out / "traced-cnn.pt"
        traced.save(str(path))
        m.add("torch", path)
        enc = modules["transformer-encoder"]().eval()
        path = out / "scripted-transformer-encoder.pt"
        torch.jit.save(torch.jit.script(enc), str(path))
        m.add("torch", path)
    with m.attempt("torch", "export-pt2"):
        seed_all()
        ep = torch.export.export(mlp().eval(), (torch.randn(2, 8),))
        path = out / "mlp.pt2"
        torch.export.save(ep, str(path))
        m.add("torch", path)
    with m.attempt("torch", "export-pt2-conv"):
        seed_all()
        conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
        ep = torch.export.export(conv, (torch.randn(1, 3, 8, 8),))
        path = out / "conv.pt2"
        torch.export.save(ep, str(path))
        m.add("torch", path)


# --------------------------------------------------------------------------------------------
# Lightning


def build_lightning(m: Manifest) -> None:
    import lightning as L
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    m.version("lightning", "torch")

    class Tiny(L.LightningModule):
        def __init__(self, hidden: int = 16, lr: float = 0.01, sched: bool = False) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def training_step(self, batch: Any, idx: int) -> Any:
            x, y = batch
            loss = nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
            if not self.hparams.sched:
                return opt
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1)]

    seed_all()
    data = TensorDataset(torch.randn(32, 8), torch.randn(32, 1))
    for name, kw in [("plain", {}), ("with-scheduler", {"sched": True, "hidden": 8})]:
        with m.attempt("lightning", name):
            root = fresh(m.out / "lightning" / name)
            trainer = L.Trainer(
                max_epochs=2,
                logger=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                default_root_dir=str(root),
                accelerator="cpu",
                devices=1,
            )
            trainer.fit(Tiny(**kw), DataLoader(data, batch_size=8))
            path = root / "final.ckpt"
            trainer.save_checkpoint(str(path))
            m.add("lightning", path)
            for ckpt in sorted((root / "checkpoints").glob("*.ckpt")):
                m.add("lightning", ckpt)
            weights = root / "weights-only.ckpt"
            trainer.save_checkpoint(str(weights), weights_only=True)
            m.add("lightning", weights)


# --------------------------------------------------------------------------------------------
# scikit-learn


def build_sklearn(m: Manifest) -> None:
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn import (
        cluster,
        compose,
        decomposition,
        ensemble,
        feature_extraction,
        impute,
        linear_model,
        naive_bayes,
        neighbors,
        neural_network,
        pipeline,
        preprocessing,
        svm,
        tree,
    )
    from sklearn.datasets import make_classification

    m.version("sklearn", "joblib", "numpy", "scipy", "pandas")
    out = fresh(m.out / "sklearn")
    x, y = make_classification(n_samples=120, n_features=6, n_informative=4, random_state=SEED)
    xpos = np.abs(x)
    df = pd.DataFrame(
        {
            "num": x[:, 0],
            "num2": x[:, 1],
            "cat": np.array(["a", "b", "c"])[np.arange(120) % 3],
        }
    )
    texts = [f"document {i} about {['cats', 'dogs', 'models'][i % 3]} and more" for i in range(60)]
    ty = np.arange(60) % 3

    fits: dict[str, Callable[[], Any]] = {
        "logreg": lambda: linear_model.LogisticRegression(max_iter=200).fit(x, y),
        "ridge": lambda: linear_model.Ridge().fit(x, y),
        "sgd": lambda: linear_model.SGDClassifier(random_state=SEED).fit(x, y),
        "random-forest": lambda: ensemble.RandomForestClassifier(5, random_state=SEED).fit(x, y),
        "extra-trees": lambda: ensemble.ExtraTreesRegressor(5, random_state=SEED).fit(x, y),
        "gradient-boosting": lambda: ensemble.GradientBoostingClassifier(
            n_estimators=5, random_state=SEED
        ).fit(x, y),
        "hist-gradient-boosting": lambda: ensemble.HistGradientBoostingClassifier(
            max_iter=5, random_state=SEED
        ).fit(x, y),
        "hist-gradient-boosting-regressor": lambda: ensemble.HistGradientBoostingRegressor(
            max_iter=5, categorical_features=[0], random_state=SEED
        ).fit(np.c_[np.arange(120) % 4, x], y),
        "isolation-forest": lambda: ensemble.IsolationForest(n_estimators=5, random_state=SEED).fit(
            x
        ),
        "adaboost": lambda: ensemble.AdaBoostClassifier(n_estimators=5, random_state=SEED).fit(
            x, y
        ),
        "decision-tree": lambda: tree.DecisionTreeRegressor(max_depth=3).fit(x, y),
        "knn": lambda: neighbors.KNeighborsClassifier(3).fit(x, y),
        "knn-balltree": lambda: neighbors.KNeighborsRegressor(3, algorithm="ball_tree").fit(x, y),
        "nearest-neighbors-kdtree": lambda: neighbors.NearestNeighbors(algorithm="kd_tree").fit(x),
        "svc": lambda: svm.SVC(probability=True, random_state=SEED).fit(x, y),
        "linear-svc": lambda: svm.LinearSVC(random_state=SEED).fit(x, y),
        "mlp": lambda: neural_network.MLPClassifier((16,), max_iter=50, random_state=SEED).fit(
            x, y
        ),
        "kmeans": lambda: cluster.KMeans(3, n_init=1, random_state=SEED).fit(x),
        "dbscan": lambda: cluster.DBSCAN().fit(x),
        "pca": lambda: decomposition.PCA(3, random_state=SEED).fit(x),
        "truncated-svd": lambda: decomposition.TruncatedSVD(2, random_state=SEED).fit(x),
        "gaussian-nb": lambda: naive_bayes.GaussianNB().fit(x, y),
        "pipeline-scaler-logreg": lambda: pipeline.make_pipeline(
            preprocessing.StandardScaler(), linear_model.LogisticRegression()
        ).fit(x, y),
        "pipeline-columntransformer": lambda: pipeline.Pipeline(
            [
                (
                    "prep",
                    compose.ColumnTransformer(
                        [
                            ("num", preprocessing.StandardScaler(), ["num", "num2"]),
                            ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), ["cat"]),
                        ]
                    ),
                ),
                ("clf", ensemble.RandomForestClassifier(3, random_state=SEED)),
            ]
        ).fit(df, y),
        "function-transformer-log1p": lambda: pipeline.make_pipeline(
            preprocessing.FunctionTransformer(np.log1p, inverse_func=np.expm1),
            linear_model.LinearRegression(),
        ).fit(xpos, y),
        "imputer-minmax-poly": lambda: pipeline.make_pipeline(
            impute.SimpleImputer(),
            preprocessing.MinMaxScaler(),
            preprocessing.PolynomialFeatures(2),
            linear_model.Lasso(),
        ).fit(x, y),
        "tfidf-nb": lambda: pipeline.make_pipeline(
            feature_extraction.text.TfidfVectorizer(), naive_bayes.MultinomialNB()
        ).fit(texts, ty),
        "count-vectorizer": lambda: feature_extraction.text.CountVectorizer(ngram_range=(1, 2)).fit(
            texts
        ),
        "label-encoder": lambda: preprocessing.LabelEncoder().fit(["x", "y", "z"]),
        "ordinal-encoder": lambda: preprocessing.OrdinalEncoder().fit(df[["cat"]]),
        "stacking": lambda: ensemble.StackingClassifier(
            [("lr", linear_model.LogisticRegression()), ("nb", naive_bayes.GaussianNB())]
        ).fit(x, y),
    }
    compressions: list[tuple[str, Any]] = [
        ("joblib", 0),
        ("joblib-zlib", 3),
        ("joblib-gzip", ("gzip", 3)),
        ("joblib-bz2", ("bz2", 3)),
        ("joblib-lzma", ("lzma", 3)),
        ("joblib-xz", ("xz", 3)),
    ]
    for name, fit in fits.items():
        with m.attempt("sklearn", name):
            est = fit()
            path = out / f"{name}.pkl"
            with open(path, "wb") as f:
                pickle.dump(est, f, protocol=pickle.HIGHEST_PROTOCOL)
            m.add("sklearn", path)
            for suffix, compress in compressions:
                path = out / f"{name}.{suffix}"
                joblib.dump(est, path, compress=compress)
                m.add("sklearn", path)
    with m.attempt("sklearn", "pickle-protocol-2"):
        path = out / "logreg-protocol2.pkl"
        path.write_bytes(pickle.dumps(fits["logreg"](), protocol=2))
        m.add("sklearn", path)


# --------------------------------------------------------------------------------------------
# xgboost, lightgbm, catboost


def build_boosting(m: Manifest) -> None:
    import joblib
    import numpy as np
    from sklearn.datasets import make_classification

    m.version("xgboost", "lightgbm", "catboost", "joblib")
    x, y = make_classification(n_samples=200, n_features=6, n_informative=4, random_state=SEED)
    xr = x.astype(np.float32)

    def dump(source: str, folder: Path, name: str, obj: Any) -> None:
        path = folder / f"{name}.pkl"
        with open(path, "wb") as f:
            pickle.dump(obj, f)
        m.add(source, path)
        path = folder / f"{name}.joblib"
        joblib.dump(obj, path)
        m.add(source, path)

    with m.attempt("xgboost", "models"):
        import xgboost as xgb

        out = fresh(m.out / "xgboost")
        clf = xgb.XGBClassifier(n_estimators=5, max_depth=3, random_state=SEED).fit(xr, y)
        reg = xgb.XGBRegressor(n_estimators=5, max_depth=3, random_state=SEED).fit(xr, y)
        rank = xgb.XGBRanker(n_estimators=3, random_state=SEED).fit(xr, y, qid=np.arange(200) // 20)
        for name, est in (("classifier", clf), ("regressor", reg), ("ranker", rank)):
            dump("xgboost", out, name, est)
            for ext in ("json", "ubj"):
                path = out / f"{name}.{ext}"
                est.save_model(str(path))
                m.add("xgboost", path)
        booster = xgb.train({"max_depth": 2}, xgb.DMatrix(xr, label=y), num_boost_round=3)
        dump("xgboost", out, "booster", booster)
        path = out / "booster.raw.ubj"
        path.write_bytes(bytes(booster.save_raw("ubj")))
        m.add("xgboost", path)
        path = out / "booster.model"
        booster.save_model(str(path))
        m.add("xgboost", path)

    with m.attempt("lightgbm", "models"):
        import lightgbm as lgb

        out = fresh(m.out / "lightgbm")
        kw = {"n_estimators": 5, "num_leaves": 7, "random_state": SEED, "verbose": -1}
        clf = lgb.LGBMClassifier(**kw).fit(x, y)
        reg = lgb.LGBMRegressor(**kw).fit(x, y)
        for name, est in (("classifier", clf), ("regressor", reg)):
            dump("lightgbm", out, name, est)
            for ext in ("txt", "model"):
                path = out / f"{name}.{ext}"
                est.booster_.save_model(str(path))
                m.add("lightgbm", path)
        booster = lgb.train(
            {"objective": "binary", "verbose": -1, "num_leaves": 7},
            lgb.Dataset(x, label=y),
            num_boost_round=3,
        )
        dump("lightgbm", out, "booster", booster)

    with m.attempt("catboost", "models"):
        import catboost as cb

        out = fresh(m.out / "catboost")
        kw = {"iterations": 5, "depth": 3, "random_seed": SEED, "verbose": False}
        kw["train_dir"] = str(m.out / "_catboost_info")
        clf = cb.CatBoostClassifier(**kw).fit(x, y)
        reg = cb.CatBoostRegressor(**kw).fit(x, y)
        for name, est in (("classifier", clf), ("regressor", reg)):
            dump("catboost", out, name, est)
            for fmt, ext in (("cbm", "cbm"), ("json", "json"), ("onnx", "onnx")):
                path = out / f"{name}.{ext}"
                est.save_model(str(path), format=fmt)
                m.add("catboost", path)


# --------------------------------------------------------------------------------------------
# pandas


def build_pandas(m: Manifest) -> None:
    import numpy as np
    import pandas as pd

    m.version("pandas", "numpy")
    out = fresh(m.out / "pandas")
    n = 20
    rng = np.random.default_rng(SEED)
    df = pd.DataFrame(
        {
            "i": np.arange(n),
            "f": rng.standard_normal(n),
            "s": [f"row{i}" for i in range(n)],
            "cat": pd.Categorical(list("abcd") * (n // 4)),
            "ts": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "td": pd.to_timedelta(np.arange(n), unit="s"),
            "b": np.arange(n) % 2 == 0,
            "ni": pd.array([1, None] * (n // 2), dtype="Int64"),
            "str": pd.array([f"x{i}" for i in range(n)], dtype="string"),
        }
    )
    objects: dict[str, Any] = {
        "dataframe": df,
        "dataframe-plain": pd.DataFrame(rng.standard_normal((5, 3)), columns=list("abc")),
        "series": pd.Series(rng.standard_normal(n), name="x"),
        "series-str": pd.Series(["a", "b", None]),
        "categorical": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True),
        "datetimeindex": pd.date_range("2020-01-01", periods=5, freq="D"),
        "multiindex-frame": df.set_index(["cat", "i"]),
        "periodindex": pd.period_range("2020-01", periods=4, freq="M"),
        "interval-index": pd.interval_range(0, 5),
        "sparse-series": pd.Series(pd.arrays.SparseArray([0, 0, 1, 0])),
        "timedelta-index": pd.timedelta_range("1 day", periods=3),
        "groupby-result": df.groupby("cat", observed=True)["f"].agg(["mean", "sum"]),
    }
    for name, obj in objects.items():
        with m.attempt("pandas", name):
            path = out / f"{name}.pkl"
            pd.to_pickle(obj, path)
            m.add("pandas", path)
    for ext in ("gz", "bz2", "xz", "zip"):
        with m.attempt("pandas", f"dataframe-{ext}"):
            path = out / f"dataframe.pkl.{ext}"
            df.to_pickle(path)
            m.add("pandas", path)
    with m.attempt("pandas", "protocol-4"):
        path = out / "dataframe-protocol4.pkl"
        df.to_pickle(path, protocol=4)
        m.add("pandas", path)


# --------------------------------------------------------------------------------------------
# gensim


def build_gensim(m: Manifest) -> None:
    from gensim import corpora, models
    from gensim.models import fasttext
    from gensim.models.doc2vec import TaggedDocument

    m.version("gensim", "numpy", "scipy")
    text = corpus(m.out).read_text().lower().split("\n")
    sents = [line.split() for line in text if len(line.split()) > 2][:1500]

    def group(name: str, save: Callable[[Path], None]) -> None:
        with m.attempt("gensim", name):
            folder = fresh(m.out / "gensim" / name)
            save(folder)
            m.add_tree("gensim", folder)

    kw = {"vector_size": 16, "min_count": 2, "workers": 1, "seed": SEED, "epochs": 1}

    def w2v(folder: Path) -> None:
        model = models.Word2Vec(sents, **kw)
        model.save(str(folder / "w2v.model"))
        model.save(str(folder / "w2v-sep.model"), sep_limit=0)
        model.wv.save(str(folder / "w2v.kv"))
        model.wv.save_word2vec_format(str(folder / "w2v.bin"), binary=True)
        model.wv.save_word2vec_format(str(folder / "w2v.vec.txt"), binary=False)

    def ft(folder: Path) -> None:
        model = models.FastText(sents, bucket=2000, **kw)
        model.save(str(folder / "fasttext.model"))
        fasttext.save_facebook_model(model, str(folder / "fasttext-facebook.bin"))
        model.wv.save(str(folder / "fasttext.kv"))

    def d2v(folder: Path) -> None:
        docs = [TaggedDocument(s, [i]) for i, s in enumerate(sents[:300])]
        models.Doc2Vec(docs, **kw).save(str(folder / "doc2vec.model"))

    def topic(folder: Path) -> None:
        dictionary = corpora.Dictionary(sents)
        dictionary.save(str(folder / "dictionary.dict"))
        dictionary.save_as_text(str(folder / "dictionary.txt"))
        bow = [dictionary.doc2bow(s) for s in sents[:300]]
        models.TfidfModel(bow).save(str(folder / "tfidf.model"))
        models.LdaModel(bow, num_topics=3, id2word=dictionary, random_state=SEED, passes=1).save(
            str(folder / "lda.model")
        )
        models.LsiModel(bow, num_topics=3, id2word=dictionary).save(str(folder / "lsi.model"))
        phrases = models.Phrases(sents, min_count=2, threshold=1)
        phrases.save(str(folder / "phrases.model"))
        phrases.freeze().save(str(folder / "phraser.model"))
        corpora.MmCorpus.serialize(str(folder / "corpus.mm"), bow)

    group("word2vec", w2v)
    group("fasttext", ft)
    group("doc2vec", d2v)
    group("topic", topic)
    # plain-text outputs (word2vec text, dictionary text, Matrix Market) are data, not models:
    # keep them out, as the package selector does
    m.items = [
        i
        for i in m.items
        if not i["path"].endswith((".vec.txt", "dictionary.txt", ".mm", ".mm.index"))
    ]


# --------------------------------------------------------------------------------------------
# numpy


def build_numpy(m: Manifest) -> None:
    import numpy as np

    m.version("numpy")
    out = fresh(m.out / "numpy")
    rng = np.random.default_rng(SEED)
    arrays: dict[str, Any] = {
        "f32": rng.standard_normal((4, 4)).astype(np.float32),
        "f16": rng.standard_normal(8).astype(np.float16),
        "c128": rng.standard_normal(3) + 1j,
        "i64-fortran": np.asfortranarray(np.arange(12).reshape(3, 4)),
        "bool": np.array([True, False]),
        "unicode": np.array(["alpha", "beta"]),
        "bytes": np.array([b"ab", b"c"]),
        "datetime64": np.arange("2024-01", "2024-04", dtype="datetime64[M]"),
        "structured": np.array([(1, 2.0, b"x")], dtype=[("a", "<i4"), ("b", "<f8"), ("c", "S1")]),
        "big-endian": np.arange(4, dtype=">i4"),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 3)),
    }
    for name, arr in arrays.items():
        with m.attempt("numpy", name):
            path = out / f"{name}.npy"
            np.save(path, arr)
            m.add("numpy", path)
    with m.attempt("numpy", "object-array"):
        path = out / "object-array.npy"
        np.save(path, np.array([{"a": 1}, [1, 2], "s"], dtype=object), allow_pickle=True)
        m.add("numpy", path, note="object array: a pickle, A206 (low) expected")
    with m.attempt("numpy", "npz"):
        np.savez(out / "arrays.npz", **{k: v for k, v in arrays.items() if k != "scalar"})
        m.add("numpy", out / "arrays.npz")
        np.savez_compressed(out / "arrays-compressed.npz", a=arrays["f32"], b=arrays["unicode"])
        m.add("numpy", out / "arrays-compressed.npz")
    with m.attempt("numpy", "memmap"):
        mm = np.lib.format.open_memmap(out / "memmap.npy", mode="w+", dtype=np.float32, shape=(8,))
        mm[:] = 1.0
        mm.flush()
        del mm
        m.add("numpy", out / "memmap.npy")
    with m.attempt("numpy", "ndarray-pickle"):
        path = out / "ndarray.pkl"
        path.write_bytes(pickle.dumps(arrays["f32"], protocol=pickle.HIGHEST_PROTOCOL))
        m.add("numpy", path)
        path = out / "ndarray-protocol2.pkl"
        path.write_bytes(pickle.dumps({"w": arrays["f32"], "n": np.int64(3)}, protocol=2))
        m.add("numpy", path)


# --------------------------------------------------------------------------------------------
# GGUF


CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_gguf(m: Manifest) -> None:
    import gguf
    import numpy as np

    m.version("gguf", "numpy")
    out = fresh(m.out / "gguf")
    rng = np.random.default_rng(SEED)
    vocab = ["<unk>", "<s>", "</s>", *[f"tok{i}" for i in range(61)]]

    def write(name: str, quant: str, with_template: bool) -> None:
        with m.attempt("gguf", name):
            path = out / f"{name}.gguf"
            w = gguf.GGUFWriter(str(path), "llama")
            w.add_name(f"tiny-{name}")
            w.add_context_length(128)
            w.add_embedding_length(32)
            w.add_block_count(1)
            w.add_feed_forward_length(64)
            w.add_head_count(4)
            w.add_head_count_kv(2)
            w.add_rope_dimension_count(8)
            w.add_layer_norm_rms_eps(1e-5)
            w.add_file_type(
                {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16}.get(
                    quant, gguf.LlamaFileType.MOSTLY_Q8_0
                )
            )
            w.add_tokenizer_model("llama")
            w.add_token_list(vocab)
            w.add_token_scores([0.0] * len(vocab))
            w.add_token_types([2, 3, 3] + [1] * (len(vocab) - 3))
            w.add_bos_token_id(1)
            w.add_eos_token_id(2)
            if with_template:
                w.add_chat_template(CHATML)
            shapes = {
                "token_embd.weight": (len(vocab), 32),
                "blk.0.attn_q.weight": (32, 32),
                "blk.0.attn_k.weight": (16, 32),
                "blk.0.attn_v.weight": (16, 32),
                "blk.0.attn_output.weight": (32, 32),
                "blk.0.ffn_up.weight": (64, 32),
                "blk.0.ffn_down.weight": (32, 64),
                "blk.0.attn_norm.weight": (32,),
                "output_norm.weight": (32,),
                "output.weight": (len(vocab), 32),
            }
            for tname, shape in shapes.items():
                data = rng.standard_normal(shape).astype(np.float32)
                if len(shape) == 1 or quant == "f32":
                    w.add_tensor(tname, data)
                elif quant == "f16":
                    w.add_tensor(tname, data.astype(np.float16))
                else:
                    q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
                    w.add_tensor(tname, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()
            m.add("gguf", path)

    write("f32", "f32", False)
    write("f16-chatml", "f16", True)
    write("q8_0-chatml", "q8_0", True)


# --------------------------------------------------------------------------------------------
# Keras 3 (torch backend)


def build_keras(m: Manifest) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    m.version("keras", "torch", "h5py")
    out = fresh(m.out / "keras")
    keras.utils.set_random_seed(SEED)
    seq = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    inp = keras.Input((10,), dtype="int32")
    h = keras.layers.Embedding(50, 8)(inp)
    h = keras.layers.LSTM(8)(h)
    functional = keras.Model(inp, keras.layers.Dense(1)(h))
    for name, model in (("sequential", seq), ("functional-lstm", functional)):
        with m.attempt("keras", name):
            model.compile(optimizer="adam", loss="mse")
            path = out / f"{name}.keras"
            model.save(path)
            m.add("keras", path)
            path = out / f"{name}.weights.h5"
            model.save_weights(path)
            m.add("keras", path)
        with m.attempt("keras", f"{name}-h5"):
            path = out / f"{name}.h5"
            model.save(path)
            m.add("keras", path)


GROUPS: dict[str, Callable[[Manifest], None]] = {
    "transformers": build_transformers,
    "hf_extras": build_hf_extras,
    "torch": build_torch,
    "lightning": build_lightning,
    "sklearn": build_sklearn,
    "boosting": build_boosting,
    "pandas": build_pandas,
    "gensim": build_gensim,
    "numpy": build_numpy,
    "gguf": build_gguf,
    "keras": build_keras,
}


def main() -> int:
    group, out = sys.argv[1], Path(sys.argv[2]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    m = Manifest(out)
    seed_all()
    with m.attempt(group, "whole group"):
        GROUPS[group](m)
    m.write()
    print(f"{group}: {len(m.items)} items, {len(m.failures)} failures", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
