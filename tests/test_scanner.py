"""The scanner as a whole: directories, parallel jobs, errors that never hide findings,
fault injection, configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelscan_lite import scan as api_scan
from modelscan_lite.config import Config, ConfigError, load_config
from modelscan_lite.model import Severity
from samples.make_samples import BENIGN_DICT, payload_system

from .helpers import rules_of, scan


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "evil.pkl").write_bytes(payload_system())
    for i in range(6):
        (tmp_path / f"ok{i}.pkl").write_bytes(BENIGN_DICT)
    (tmp_path / "README.md").write_text("# hi\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "evil.pkl").write_bytes(payload_system())
    return tmp_path


@pytest.mark.parametrize("jobs", [1, 2])
def test_directory_scan_serial_and_parallel_agree(tmp_path: Path, jobs: int) -> None:
    report = api_scan([_tree(tmp_path)], Config(jobs=jobs))
    paths = [a.path for a in report.artifacts]
    assert len(paths) == 8  # .git is skipped
    assert [a.path for a in report.artifacts if a.findings] == [str(tmp_path / "sub/evil.pkl")]
    assert any(a.skipped for a in report.artifacts if a.path.endswith("README.md"))
    assert report.failing()


def test_missing_path_is_an_error_that_does_not_hide_findings(tmp_path: Path) -> None:
    (tmp_path / "evil.pkl").write_bytes(payload_system())
    report = api_scan([tmp_path / "evil.pkl", tmp_path / "missing.pkl"], Config())
    assert report.errors and report.failing()


def test_parser_crash_is_x904(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelscan_lite.formats.pickles as pickles

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyError("injected")

    monkeypatch.setattr(pickles, "scan_pickle", boom)
    path = tmp_path / "a.pkl"
    path.write_bytes(BENIGN_DICT)
    result = scan(path)
    assert rules_of(result) == {"X904"}
    assert "injected" in result.findings[0].message


def test_findings_before_a_crash_survive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelscan_lite.formats.archives as archives

    real = archives._check_crc

    def boom(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("late failure")

    monkeypatch.setattr(archives, "_check_crc", boom)
    from samples.make_samples import torch_members, torch_zip

    path = tmp_path / "m.pt"
    path.write_bytes(torch_zip(torch_members(payload_system())))
    assert {"P101", "X904"} <= rules_of(scan(path))


def test_config_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.modelscan-lite]\nfail-on = "critical"\nignore = ["P104"]\n'
        'allow-globals = ["mylib.models.Net"]\nseverity = { P105 = "low" }\n'
        'per-path-ignores = { "vendor/*" = ["P1"] }\n'
    )
    cfg = load_config(start=tmp_path)
    assert cfg.fail_on is Severity.CRITICAL and cfg.ignore == ("P104",)
    assert cfg.severity == {"P105": Severity.LOW}
    from samples.make_samples import U, call, pk

    model = tmp_path / "m.pkl"
    model.write_bytes(pk(call("mylib.models", "Net", U("x")), call("other", "Thing")))
    result = scan(model, **{"allow_globals": cfg.allow_globals, "severity": cfg.severity})
    assert [f.message for f in result.findings if "mylib" in f.message] == []
    assert {f.severity for f in result.findings} == {Severity.LOW}
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "evil.pkl").write_bytes(payload_system())
    assert cfg.root == str(tmp_path.resolve())
    ignores = {"per_path_ignores": cfg.per_path_ignores, "root": cfg.root}
    assert not scan(vendor / "evil.pkl", **ignores).findings


@pytest.mark.parametrize(
    "text, message",
    [
        ('[tool.modelscan-lite]\nfail-on = "sometimes"\n', "fail-on"),
        ("[tool.modelscan-lite]\ncolour = true\n", "unknown keys"),
        ("[tool.modelscan-lite]\nselect = 3\n", "list of strings"),
        ('[tool.modelscan-lite]\nseverity = { P101 = "huge" }\n', "severity"),
    ],
)
def test_bad_config_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(start=tmp_path)


def test_select_and_ignore_prefixes(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(payload_system())
    assert rules_of(scan(path, select=("A",))) == {"A203"}
    assert "A203" not in rules_of(scan(path, ignore=("A2",)))
