"""The mutation-fuzz campaign of ``bench/fuzz_campaign.py``, run briefly: a fixed seed, 0
crashes and 0 hangs; and proof that the campaign can fail (a parser that raises, a renderer
that raises, a parser that hangs, even inside C code, are each counted with a reproducer)."""

from __future__ import annotations

import importlib.util
import json
import signal
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .conftest import ROOT


def _campaign() -> ModuleType:
    name = "bench_fuzz_campaign"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "fuzz_campaign.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fc = _campaign()


def _small(tmp_path: Path, cases: int = 24, **kw: Any) -> dict[str, Any]:
    """A few cases over the samples only, in this process (so monkeypatches apply)."""
    args: dict[str, Any] = {"cli_every": 0, "isolate": False, "library_seeds": False}
    result: dict[str, Any] = fc.run_campaign(cases, 7, out=tmp_path, **{**args, **kw})
    return result


@pytest.mark.slow
def test_brief_campaign_has_no_crash_and_no_hang(tmp_path: Path) -> None:
    started = time.monotonic()
    res = fc.run_campaign(300, 0, 10.0, tmp_path, cli_every=50)
    took = time.monotonic() - started
    problems = [(c["kind"], c["seed"], c["mutations"], c["detail"]) for c in res["crash_list"]]
    problems += [("hang", h["seed"], h["mutations"], h["detail"]) for h in res["hang_list"]]
    assert not problems, problems
    assert (res["cases"], res["crashes"], res["hangs"]) == (300, 0, 0)
    assert res["cli"]["cases"] == 6 and res["cli"]["failures"] == 0
    assert res["seeds"]["library"] and res["seeds"]["samples"] > 400
    assert res["seeds"]["used"] > 250  # round-robin over a shuffle: every case a new seed
    assert {"pickle-opcode", "splice", "int-boundary", "truncate"} <= set(res["mutations"])
    assert res["isolated_worker"] and res["peak_rss_mib"] > 0
    assert took < 60, f"the CI campaign took {took:.0f} s"


def test_cases_are_deterministic_and_mutated() -> None:
    seeds = fc._sample_seeds()
    order = fc.seed_order(seeds, 3)
    for index in (0, 1, 57, 1000):
        a = fc.make_case(seeds, order, 3, index)
        b = fc.make_case(seeds, order, 3, index)
        assert (a.data, a.filename, a.mutations) == (b.data, b.filename, b.mutations)
        assert a.mutations and (a.data, a.filename) != (a.seed.data, a.seed.filename)
    assert fc.make_case(seeds, order, 3, 5).data != fc.make_case(seeds, order, 4, 5).data


def test_format_aware_mutations_apply_to_their_formats() -> None:
    import random

    seeds = fc._sample_seeds()
    by_name = {s.name: s for s in seeds}
    cases = {
        "safetensors-header": (fc.m_safetensors, "samples/S201/ok-valid.safetensors"),
        "pickle-opcode": (fc.m_pickle_opcode, "samples/P205/ok-plain-dict.pkl"),
        "gguf-counts": (fc.m_gguf, "samples/G201/ok-valid.gguf"),
    }
    for name, (fn, seed_name) in cases.items():
        seed = by_name[seed_name]
        st = fc.State(seed.data, seed.filename, seeds)
        assert fn(random.Random(1), st), name
        assert st.data != seed.data, name
    zipped = by_name["samples/P101/bad-deflated-member.pt"]
    changed = 0
    for i in range(10):
        st = fc.State(zipped.data, zipped.filename, seeds)
        changed += fc.m_zip(random.Random(i), st) and st.data != zipped.data
    assert changed >= 5


def test_a_parser_that_raises_is_a_crash_with_a_reproducer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the dispatcher, not one parser: every case reaches it, whatever the sample mix
    import modelscan_lite.formats.dispatch as dispatch

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyError("injected by the fuzz campaign test")

    monkeypatch.setattr(dispatch, "run_format", boom)
    res = _small(tmp_path)
    assert res["crashes"] > 0 and res["hangs"] == 0
    crash = res["crash_list"][0]
    assert crash["kind"] == "internal-error"
    assert "injected by the fuzz campaign test" in crash["detail"]
    repro = Path(crash["reproducer"])
    meta = json.loads(repro.read_text())
    assert meta["case"] == crash["case"] and meta["campaign_seed"] == 7
    assert meta["seed"] == crash["seed"] and meta["mutations"] == crash["mutations"]
    assert (repro.parent / meta["input"]).exists()
    # the reproducer replays the crash while the bug is there, and passes once it is gone
    assert fc.run_case(repro.parent / meta["input"], 10.0)["kind"] == "internal-error"
    monkeypatch.undo()
    assert fc.run_case(repro.parent / meta["input"], 10.0)["kind"] is None


def test_an_exception_escaping_the_renderer_is_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelscan_lite.report.sarif as sarif

    def boom(*args: object, **kwargs: object) -> str:
        raise UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(sarif, "render_sarif", boom)
    res = _small(tmp_path, cases=3)
    assert res["crashes"] == 3
    assert {c["kind"] for c in res["crash_list"]} == {"render-sarif"}


def test_a_raw_control_character_in_the_text_report_is_a_crash() -> None:
    assert fc._text_problem("ok\nfine\n") is None
    assert "control" in (fc._text_problem("name \x1b]0;pwned\x07\n") or "")
    assert "UTF-8" in (fc._text_problem("name \udcff\n") or "")
    assert fc._text_problem("bidi \u202e\n") is not None


def test_a_slow_parser_is_a_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the dispatcher, not one parser: every case reaches it, whatever the sample mix
    import modelscan_lite.formats.dispatch as dispatch

    def slow(*args: object, **kwargs: object) -> None:
        time.sleep(30)

    monkeypatch.setattr(dispatch, "run_format", slow)
    res = _small(tmp_path, cases=12, seconds_per_case=0.3)
    assert res["hangs"] > 0 and res["crashes"] == 0
    hang = res["hang_list"][0]
    assert "CaseTimeout" in hang["detail"] and Path(hang["reproducer"]).exists()
    assert res["max_seconds_per_case"] < 5


def test_a_hang_the_watchdog_cannot_interrupt_kills_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parser stuck where no signal handler runs (here: SIGALRM blocked) is still counted:
    the forked worker is killed after the grace period and replaced."""
    # the dispatcher, not one parser: every case reaches it, whatever the sample mix
    import modelscan_lite.formats.dispatch as dispatch

    def stuck(*args: object, **kwargs: object) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(30)

    monkeypatch.setattr(dispatch, "run_format", stuck)
    started = time.monotonic()
    res = _small(tmp_path, cases=12, seconds_per_case=0.2, isolate=True, grace=0.8)
    assert res["isolated_worker"] and res["hangs"] > 0
    assert any("killed" in h["detail"] for h in res["hang_list"])
    assert res["cases"] == 12 and time.monotonic() - started < 30
