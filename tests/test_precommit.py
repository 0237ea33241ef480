"""The pre-commit hook definition other repositories use: valid, and it gates commits."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, SAMPLES, run_cli


def _hooks() -> dict[str, dict[str, object]]:
    return {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


def test_hook_definitions_are_valid() -> None:
    hooks = _hooks()
    assert {"modelscan-lite-models", "modelscan-lite", "modelscan-lite-all-files"} <= set(hooks)
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert str(hook["entry"]).startswith("modelscan-lite scan")


def test_hook_file_pattern_selects_model_files() -> None:
    pattern = re.compile(str(_hooks()["modelscan-lite"]["files"]))
    for name in (
        "model.pt",
        "w.safetensors",
        "clf.joblib",
        "x.PKL",
        "m.gguf",
        "m.onnx",
        "a.npz",
        "b.tar.gz",
    ):
        assert pattern.search(name), name
    for name in ("train.py", "README.md", "config.json"):
        assert not pattern.search(name), name


def test_hook_entry_fails_the_commit_on_a_malicious_file() -> None:
    entry = shlex.split(str(_hooks()["modelscan-lite"]["entry"]))
    assert entry[:2] == ["modelscan-lite", "scan"]
    bad = run_cli(*entry[1:], "samples/P101/bad-posix-system.pkl", "samples/P101/ok-plain-dict.pkl")
    assert bad.returncode == 1
    good = run_cli(*entry[1:], "samples/P101/ok-plain-dict.pkl")
    assert good.returncode == 0


def test_model_named_hook_covers_every_name_the_scanner_treats_as_a_model() -> None:
    """``modelscan-lite-models`` (and its first name ``modelscan-lite``) selects files by the
    scanner's own idea of a model name; the scanner then reads each one by content."""
    from modelscan_lite.formats.dispatch import MODEL_EXTENSIONS
    from modelscan_lite.formats.registry import FORMATS

    hooks = _hooks()
    assert hooks["modelscan-lite"]["files"] == hooks["modelscan-lite-models"]["files"]
    pattern = re.compile(str(hooks["modelscan-lite-models"]["files"]))
    generic = {"", ".json", ".yaml", ".yml", ".py", ".txt", ".xml", ".exe", ".deprecated"}
    binary_names = {e for f in FORMATS.values() for e in f.extensions} - generic
    for ext in sorted(MODEL_EXTENSIONS | binary_names - {".mlpackage"}):
        assert pattern.search(f"dir/model{ext}"), ext
        assert pattern.search(f"MODEL{ext.upper()}"), ext
    for name in (
        "variables/variables.data-00000-of-00001",
        "m.mlpackage/Data/com.apple.CoreML/weights/weight.bin",
        "m.mlpackage/Manifest.json",
    ):
        assert pattern.search(name), name
    for name in ("src/model.py", "README.md", "config.json", "tokenizer.json", "x.pyc", "a.txt"):
        assert not pattern.search(name), name


def test_quiet_prints_nothing_for_clean_and_skipped_files() -> None:
    entry = shlex.split(str(_hooks()["modelscan-lite-all-files"]["entry"]))
    proc = run_cli(*entry[1:], "samples/P101/ok-plain-dict.pkl", "samples/X201/ok-readme.md")
    assert proc.returncode == 0
    assert proc.stdout == "" and proc.stderr == ""


def _readme_precommit_snippet() -> dict[str, object]:
    text = (ROOT / "README.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        if "modelscan-lite/modelscan-lite" in block and "rev:" in block:
            doc = yaml.safe_load(block)
            assert isinstance(doc, dict)
            return doc
    raise AssertionError("no pre-commit snippet in the README")


def _git(*args: str, cwd: Path = ROOT) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_readme_snippet_pins_a_commit_that_has_the_hooks() -> None:
    """The README's snippet must work as it is: ``rev:`` a full commit SHA (no release tag
    exists yet) of this repository, whose ``.pre-commit-hooks.yaml`` has the hook ids the
    snippet names."""
    repo = _readme_precommit_snippet()["repos"][0]  # type: ignore[index]
    assert repo["repo"] == "https://github.com/modelscan-lite/modelscan-lite"
    rev = str(repo["rev"])
    assert re.fullmatch(r"[0-9a-f]{40}", rev), f"rev {rev!r} is not a full commit SHA"
    if _git("rev-parse", "--is-shallow-repository") == "true":
        pytest.skip("shallow clone: older commits are not here")
    try:
        hooks_then = _git("show", f"{rev}:.pre-commit-hooks.yaml")
    except subprocess.CalledProcessError:
        pytest.fail(f"rev {rev} is not a commit of this repository with .pre-commit-hooks.yaml")
    ids_then = {h["id"] for h in yaml.safe_load(hooks_then)}
    named = {h["id"] for h in repo["hooks"]}
    assert named and named <= ids_then, named - ids_then


# --- the hook through real pre-commit -------------------------------------------------------

# what `pip install .` of the hook repository needs (pyproject.toml names README.md)
HOOK_REPO_FILES = (
    "pyproject.toml",
    "hatch_build.py",
    "README.md",
    ".pre-commit-hooks.yaml",
    "modelscan_lite",
    "rules",
)


@pytest.fixture(scope="module")
def precommit_repo(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, dict[str, str]]]:
    """A git repository that uses this checkout as its pre-commit hook repository.

    pre-commit clones ``repo:`` at ``rev:`` and pip-installs it. The hook repository is a
    one-commit copy of this working tree (in CI the same as HEAD; locally it also holds
    uncommitted work, which is what is under test), so ``rev:`` is that commit's SHA.
    """
    if shutil.which("pre-commit") is None:
        pytest.skip("pre-commit is not installed (it is in the test extras)")
    base = tmp_path_factory.mktemp("precommit")
    hook_repo = base / "hook-repo"
    hook_repo.mkdir()
    for name in HOOK_REPO_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(
                src, hook_repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd")
            )
        else:
            shutil.copy(src, hook_repo / name)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))},
        "PRE_COMMIT_HOME": str(base / "cache"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(base),
        "NO_COLOR": "1",
    }

    def git(*args: str, cwd: Path) -> str:
        return subprocess.run(
            ["git", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    git("init", "-q", cwd=hook_repo)
    git("add", "-A", cwd=hook_repo)
    git("commit", "-q", "-m", "hooks", cwd=hook_repo)
    rev = git("rev-parse", "HEAD", cwd=hook_repo)
    user = base / "user-repo"
    user.mkdir()
    git("init", "-q", cwd=user)
    (user / ".pre-commit-config.yaml").write_text(
        "repos:\n"
        f"  - repo: {hook_repo}\n"
        f"    rev: {rev}\n"
        "    hooks:\n"
        "      - id: modelscan-lite-models\n"
        "      - id: modelscan-lite-all-files\n"
        "        files: '^data/'\n"
    )
    git("add", ".pre-commit-config.yaml", cwd=user)
    git("commit", "-q", "-m", "config", cwd=user)
    subprocess.run(["pre-commit", "install"], cwd=user, env=env, check=True, capture_output=True)
    yield user, env


def _commit(user: Path, env: dict[str, str], *files: str) -> subprocess.CompletedProcess[str]:
    subprocess.run(["git", "add", *files], cwd=user, env=env, check=True)
    return subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "commit", "-m", f"add {' '.join(files)}"],
        cwd=user,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
def test_real_pre_commit_refuses_a_bad_model_and_passes_a_clean_one(
    precommit_repo: tuple[Path, dict[str, str]],
) -> None:
    user, env = precommit_repo
    (user / "weights").mkdir()
    shutil.copy(SAMPLES / "P101" / "bad-posix-system.pkl", user / "weights" / "model.pt")
    refused = _commit(user, env, "weights/model.pt")
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0, out
    assert "P101" in out and "weights/model.pt" in out and "Failed" in out
    subprocess.run(
        ["git", "rm", "-q", "--cached", "weights/model.pt"], cwd=user, env=env, check=True
    )
    (user / "weights" / "model.pt").unlink()

    shutil.copy(SAMPLES / "P101" / "ok-plain-dict.pkl", user / "weights" / "clean.pkl")
    (user / "notes.md").write_text("# notes\n")
    accepted = _commit(user, env, "weights/clean.pkl", "notes.md")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    # --quiet: the hook said nothing for a clean model (pre-commit shows hook output, if
    # any, under the hook's line with --verbose)
    verbose = subprocess.run(
        ["pre-commit", "run", "--verbose", "modelscan-lite-models", "--files", "weights/clean.pkl"],
        cwd=user,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verbose.returncode == 0, verbose.stdout
    lines = [x for x in verbose.stdout.splitlines() if x.strip()]
    assert lines[0].startswith("modelscan-lite (model-named files") and "Passed" in lines[0]
    assert all(x.startswith(("- hook id:", "- duration:")) for x in lines[1:]), lines


@pytest.mark.slow
def test_real_pre_commit_all_files_hook_reads_content_not_names(
    precommit_repo: tuple[Path, dict[str, str]],
) -> None:
    user, env = precommit_repo
    (user / "data").mkdir(exist_ok=True)
    shutil.copy(SAMPLES / "P101" / "bad-posix-system.pkl", user / "data" / "table.json")
    refused = _commit(user, env, "data/table.json")
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "P101" in out and "data/table.json" in out, out
    subprocess.run(
        ["git", "rm", "-q", "--cached", "data/table.json"], cwd=user, env=env, check=True
    )
