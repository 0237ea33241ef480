"""The format registry: one place declares a format, and the rest of the scanner follows.

* a new format needs only its parser module, its registry entry and its rule (nothing in the
  sniffer, dispatcher, scanner or report changes);
* a recognised format or zip/tar layout without a parser is X903, never clean;
* the repo analysis takes the tensor tables of the file scan and opens no weights file a
  second time.
"""

from __future__ import annotations

import builtins
import io
import os
import shutil
import sys
import tarfile
import types
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from modelscan_lite import engine
from modelscan_lite.config import Config
from modelscan_lite.formats import registry
from modelscan_lite.scanner import build_policy, scan_file, scan_paths

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

TOY_RULE = """\
id: X209
name: toy-format-code
severity: critical
formats: [toy]
match:
  kind: toy.code
message: the toy format runs `{value}` on load
since: 0.1.0
cwe: [CWE-94]
references: []
doc:
  what: A test-only rule.
  why: It proves a format needs only its module, registry entry and rule.
  example: TOY! file
  fix: none
  known-problems: none
"""


def _toy_module() -> types.ModuleType:
    mod = types.ModuleType("modelscan_lite.formats.toyfmt")

    def scan_toy(src: Any, head: bytes, where: Any, ctx: Any, name: str, length: Any) -> None:
        body = src.read(64)
        ctx.emit("toy.code", body[4:].decode().strip(), where.at(4), evidence=body.decode())

    mod.scan_toy = scan_toy  # type: ignore[attr-defined]
    return mod


def test_a_new_format_needs_only_its_module_entry_and_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the rule: one file in a copy of the rules folder
    rules = tmp_path / "rules"
    shutil.copytree(engine.rules_dir(), rules)
    (rules / "scanner" / "X209-toy-format-code.yaml").write_text(TOY_RULE)
    monkeypatch.setattr(engine, "rules_dir", lambda: rules)
    engine.load_rules.cache_clear()
    # the parser module
    monkeypatch.setitem(sys.modules, "modelscan_lite.formats.toyfmt", _toy_module())
    # the registry entry
    toy = registry.Format(
        "toy", "toy format", registry.Family.CODE, "toyfmt:scan_toy", magic=((0, b"TOY!"),)
    )
    monkeypatch.setitem(registry.FORMATS, "toy", toy)
    monkeypatch.setattr(registry, "MAGICS", (*registry.MAGICS, ("toy", toy.magic)))
    try:
        path = tmp_path / "model.bin"
        path.write_bytes(b"TOY!os.system\n")
        config = Config()
        result = scan_file(str(path), build_policy(config), config)
        assert result.format == "toy"
        (finding,) = result.findings
        assert finding.rule == "X209"
        assert finding.location.offset == 4
        assert "`os.system`" in finding.message and finding.evidence == "TOY!os.system\n"
        # and inside a zip member and a gzip layer, with no container code touched
        packed = io.BytesIO()
        with zipfile.ZipFile(packed, "w") as zf:
            zf.writestr("inner/thing", b"TOY!os.system\n")
        path.write_bytes(packed.getvalue())
        result = scan_file(str(path), build_policy(config), config)
        assert [(f.rule, f.location.member) for f in result.findings] == [("X209", "inner/thing")]
    finally:
        engine.load_rules.cache_clear()


def _x903(path: Path) -> list[str]:
    config = Config()
    result = scan_file(str(path), build_policy(config), config)
    return [f.message for f in result.findings if f.rule == "X903"]


def test_recognised_format_without_parser_is_x903(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        registry.FORMATS,
        "toy",
        registry.Format("toy", "toy format", registry.Family.CODE, magic=((0, b"TOY!"),)),
    )
    monkeypatch.setattr(registry, "MAGICS", (*registry.MAGICS, ("toy", ((0, b"TOY!"),))))
    path = tmp_path / "weights.dat"
    path.write_bytes(b"TOY!" + b"\0" * 64)
    assert _x903(path) == [
        "recognised as toy, a format this version does not analyse; it was not checked"
    ]


@pytest.mark.parametrize("container", ["zip", "tar"])
def test_profile_without_parser_is_never_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, container: str
) -> None:
    # a layout the registry knows (two marker members) whose checks do not exist yet
    profile = registry.Profile(
        "toy-archive",
        "zip" if container == "zip" else "tar",
        lambda names: "" if {"toy.cfg", "toy.weights"} <= set(names) else None,
    )
    monkeypatch.setattr(registry, "PROFILES", (profile, *registry.PROFILES))
    monkeypatch.setitem(
        registry.FORMATS, "toy-archive", registry.Format("toy-archive", "toy", registry.Family.CODE)
    )
    path = tmp_path / f"model.{container}"
    members = {"toy.cfg": b"{}", "toy.weights": b"\0" * 32}
    if container == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    else:
        with tarfile.open(path, "w") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    config = Config()
    result = scan_file(str(path), build_policy(config), config)
    assert result.format == "toy-archive"
    assert [f.rule for f in result.findings] == ["X903"]
    # and analysed=True (its parser exists) makes the same layout clean
    monkeypatch.setattr(registry, "PROFILES", (replace(profile, analysed=True), *registry.PROFILES))
    assert scan_file(str(path), build_policy(config), config).findings == ()


WEIGHTS = (".safetensors", ".bin")


def test_repo_analysis_reads_no_weights_file_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # two repos: sharded safetensors with an index listing a tensor the shard lacks (H404
    # needs the shard's table), and a vocab-size mismatch against pytorch-style weights
    # (H501 needs the embedding's shape); both findings come from the file scan's tables
    shutil.copytree(SAMPLES / "H403" / "bad-unlisted-tensor", tmp_path / "sharded")
    shutil.copytree(SAMPLES / "H501" / "bad-vocab-size", tmp_path / "mismatch")
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and str(file).endswith(WEIGHTS):
            opened.append(os.path.abspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(io, "open", counting_open)
    report = scan_paths([str(tmp_path)], Config(jobs=1))
    weights = sorted(str(p) for p in tmp_path.rglob("*") if p.name.endswith(WEIGHTS))
    assert weights, "the samples hold weights files"
    assert sorted(opened) == weights  # each opened once: by its own scan
    rules = {f.rule for a in report.artifacts if a.format == "hf-repo" for f in a.findings}
    assert {"H403", "H501"} <= rules


# -- tar: members read where they lie, duplicates, profile names ---------------------------


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _torch_zip_with_payload(pad: int) -> bytes:
    from samples.make_samples import payload_system, pk

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pk(payload_system()))
        zf.writestr("archive/data/0", b"\0" * pad)  # stored tensor bytes
    return buf.getvalue()


def test_tar_member_from_a_file_is_read_in_place_not_copied(tmp_path: Path) -> None:
    # a checkpoint member larger than the member budget: copied out of a stream it would be
    # cut (X901); read in place from the file it is scanned whole and its payload found
    from modelscan_lite.limits import Limits
    from tests.helpers import scan_bytes

    ckpt = _torch_zip_with_payload(3 << 20)
    limits = Limits(max_member_read=1 << 20)
    plain = scan_bytes(tmp_path, _tar([("./model_weights.ckpt", ckpt)]), "m.tar", limits=limits)
    assert [(f.rule, f.location.member) for f in plain.findings if f.rule == "P101"] == [
        ("P101", "./model_weights.ckpt!archive/data.pkl")
    ]
    assert "X901" not in {f.rule for f in plain.findings}
    # the same tar inside gzip is a stream: the budget still holds, and is said
    import gzip

    packed = gzip.compress(_tar([("./model_weights.ckpt", ckpt)]), mtime=0)
    streamed = scan_bytes(tmp_path, packed, "m.tar.gz", limits=limits)
    assert "X901" in {f.rule for f in streamed.findings}


@pytest.mark.parametrize("compress", [False, True])
def test_duplicate_tar_member_is_a202_and_both_copies_are_scanned(
    tmp_path: Path, compress: bool
) -> None:
    import gzip

    from samples.make_samples import BENIGN_DICT, payload_system, pk
    from tests.helpers import scan_bytes

    cfg = b"model:\n  _target_: nemo.collections.asr.models.EncDecCTCModel\n"
    data = _tar(
        [
            ("./model_config.yaml", cfg),
            ("./model_weights.ckpt", BENIGN_DICT),
            ("./model_weights.ckpt", pk(payload_system())),  # extraction keeps this one
        ]
    )
    data = gzip.compress(data, mtime=0) if compress else data
    result = scan_bytes(tmp_path, data, "m.nemo")
    assert result.format == ("gzip+nemo" if compress else "nemo")
    found = {(f.rule, (f.location.member or "").removeprefix("<gzip>!")) for f in result.findings}
    assert ("A202", "./model_weights.ckpt#2") in found
    assert ("P101", "./model_weights.ckpt#2") in found
