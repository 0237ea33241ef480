"""Every shipped sample: ``bad-*`` gives its folder's rule at the sample's path, ``ok-*`` does
not; the generator reproduces the committed bytes exactly."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from .conftest import SAMPLES
from .helpers import scan

# the pickle suite runs on both walkers: the pure-Python reference and the compiled core
pytestmark = pytest.mark.usefixtures("walker")

# D samples show their rule only when really loaded: tests/test_sandbox.py runs them
SAMPLE_FILES = sorted(
    p for p in SAMPLES.glob("*/*") if p.is_file() and not p.parent.name.startswith("D")
)
SAMPLE_DIRS = sorted(p for p in SAMPLES.glob("*/*") if p.is_dir())
# every sample file: not the generator and its per-format builder modules (samples/formats/)
COMMITTED = sorted(
    p
    for p in SAMPLES.rglob("*")
    if p.is_file() and p.parent != SAMPLES and SAMPLES / "formats" not in p.parents
)


def _id(p: Path) -> str:
    return f"{p.parent.name}/{p.name}"


def _rules_in(folder: Path) -> set[str]:
    from modelscan_lite import scan as scan_tree
    from modelscan_lite.config import Config

    report = scan_tree([folder], Config(jobs=1))
    return {f.rule for f in report.findings}


@pytest.mark.parametrize("folder", SAMPLE_DIRS, ids=_id)
def test_folder_samples(folder: Path) -> None:
    rules = _rules_in(folder)
    if folder.name.startswith("bad-"):
        assert folder.parent.name in rules, rules
    else:
        assert folder.parent.name not in rules, rules
        assert not rules, rules


@pytest.mark.parametrize("sample", [p for p in SAMPLE_FILES if p.name.startswith("bad-")], ids=_id)
def test_bad_sample_gives_its_rule(sample: Path) -> None:
    rule = sample.parent.name
    result = scan(sample)
    hits = [f for f in result.findings if f.rule == rule]
    assert hits, f"{rule} missing: {[(f.rule, f.message) for f in result.findings]}"
    assert all(f.location.path == str(sample) for f in hits)
    assert all(f.message and not re.search(r"\{[a-z_]+\}", f.message) for f in hits)


@pytest.mark.parametrize("sample", [p for p in SAMPLE_FILES if p.name.startswith("ok-")], ids=_id)
def test_ok_sample_lacks_its_rule(sample: Path) -> None:
    result = scan(sample)
    assert sample.parent.name not in {f.rule for f in result.findings}


def test_generator_is_deterministic_and_matches_committed(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    first = module.all_samples()
    assert first == module.all_samples()
    committed = {p.relative_to(SAMPLES).as_posix(): p.read_bytes() for p in COMMITTED}
    assert set(first) == set(committed), "run `python samples/make_samples.py` and commit"
    stale = [k for k, v in first.items() if committed[k] != v]
    assert not stale, f"stale samples: {stale}; run `python samples/make_samples.py`"
