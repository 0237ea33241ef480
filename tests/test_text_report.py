"""The text report and the CLI basics: worst first, the per-rule summary, the fix line, errors
said once, quiet, folding for 80 and 120 columns, deterministic messages, ``--version``,
``-h``, the choices and exit codes in ``--help``, and ``content_id``/``--hash``.

Snapshots: ``UPDATE_SNAPSHOTS=1 pytest tests/test_text_report.py`` refreshes them.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

import pytest

from modelscan_lite.model import (
    ArtifactResult,
    Finding,
    Location,
    Report,
    Severity,
    WaivedFinding,
    Waiver,
)
from modelscan_lite.report.text import SUMMARY_FILES, render_text

from .conftest import ROOT, run_cli
from .test_cli import _check_snapshot

# more than SUMMARY_FILES files, with findings of every severity: the summary opens the report
MANY = [
    "samples/A204/bad-crc-mismatch.pt",
    "samples/P101/bad-torch-zip.pt",
    "samples/P201/bad-payload-then-invalid-opcode.pkl",
    "samples/A203/ok-pickle-named.pkl",
    "samples/X201/ok-readme.md",
    "samples/G207/bad-offset-past-end.gguf",
    "samples/P101/ok-plain-dict.pkl",
]


def _finding(rule: str, sev: Severity, path: str, member: str | None = None) -> Finding:
    return Finding(
        rule, f"{rule.lower()}-name", sev, f"{rule} message", Location(path, member), "0" * 16
    )


def _report(*arts: ArtifactResult, errors: tuple[str, ...] = (), **kw: object) -> Report:
    return Report("0", "r", (), Severity.MEDIUM, arts, errors=errors, **kw)  # type: ignore[arg-type]


def test_sample_list_is_many() -> None:
    assert len(MANY) > SUMMARY_FILES
    assert all((ROOT / p).is_file() for p in MANY), [p for p in MANY if not (ROOT / p).is_file()]


def test_summary_snapshot_many_files() -> None:
    proc = run_cli("scan", "--jobs", "1", *MANY)
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert out.startswith("Summary: "), out[:200]
    # the summary lists every rule once, worst first, before any detail
    summary = out.split("\n\n", 1)[0].splitlines()
    rules = [ln.split()[0] for ln in summary[2:]]
    assert rules[0] == "P101" and len(rules) == len(set(rules))
    sev_order = [Severity.parse(ln.split()[1]) for ln in summary[2:]]
    assert sev_order == sorted(sev_order, reverse=True)
    _check_snapshot("scan-many.text", out)


@pytest.mark.parametrize("width", [80, 120])
def test_folded_for_terminal_width(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelscan_lite import scan
    from modelscan_lite.config import Config

    # relative paths: folding depends on line length, so the checkout's location must not
    monkeypatch.chdir(ROOT)
    report = scan([Path(p) for p in MANY], Config(jobs=1))
    text = render_text(report, width=width)
    for line in text.splitlines():
        assert len(line) <= width, line
    # a folded line continues under its own text, never at column 0: every line of a
    # finding block starts indented
    lines = text.splitlines()
    assert any(ln.startswith("        ") for ln in lines)  # continuation indent
    in_block = False
    for line in lines:
        if re.match(r"  [A-Z]\d{3} ", line):
            in_block = True
        elif not line:
            in_block = False
        elif in_block:
            assert line.startswith("      "), line
    _check_snapshot(f"scan-many-{width}.text", re.sub(r"\d+\.\d\ds\b", "N.NNs", text))


def test_worst_file_and_finding_first() -> None:
    low = ArtifactResult("a-low.pkl", "pickle", 1, (_finding("P301", Severity.LOW, "a-low.pkl"),))
    mixed = ArtifactResult(
        "b-mixed.pkl",
        "pickle",
        1,
        (
            _finding("P201", Severity.MEDIUM, "b-mixed.pkl"),
            _finding("P101", Severity.CRITICAL, "b-mixed.pkl"),
        ),
    )
    text = render_text(_report(low, mixed))
    assert text.index("b-mixed.pkl") < text.index("a-low.pkl")
    assert text.index("P101 CRITICAL") < text.index("P201 MEDIUM")


def test_each_finding_ends_with_fix_and_rule_command() -> None:
    proc = run_cli("scan", "samples/P101/bad-torch-zip.pt")
    lines = proc.stdout.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith("  P101 "))
    block = lines[i : lines.index("", i)]
    assert block[-1].startswith("      fix: Do not load the file.")
    assert block[-1].endswith("(`modelscan-lite rule P101` for details)")


def test_file_error_said_once() -> None:
    broken = ArtifactResult("gone.pkl", "unknown", 0, error="cannot read: permission denied")
    text = render_text(_report(broken, errors=("gone.pkl: cannot read: permission denied", "x: y")))
    assert text.count("permission denied") == 1
    assert "error: x: y" in text  # an error that belongs to no file still shows


def test_error_said_once_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal the text report carries the error; stderr does not repeat it."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-m", "modelscan_lite", "scan", "-q", str(tmp_path / "nope.pkl")],
        stdout=follower,
        stderr=follower,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"},
        timeout=120,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    seen = b"".join(chunks).decode()
    assert proc.returncode == 2
    assert seen.count("no such file") == 1, seen


def test_quiet_prints_nothing_for_clean_and_skipped() -> None:
    proc = run_cli("scan", "-q", "samples/P101/ok-plain-dict.pkl", "samples/X201/ok-readme.md")
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout
    proc = run_cli("scan", "-q", "samples/P101/bad-torch-zip.pt", "samples/X201/ok-readme.md")
    assert proc.returncode == 1
    assert "skipped" not in proc.stdout.split("\n")[-2] or "FAIL" in proc.stdout
    assert "ok-readme" not in proc.stdout and "P101" in proc.stdout


def test_waived_counts_in_the_verdict_line() -> None:
    f = _finding("P101", Severity.CRITICAL, "m.pkl")
    report = _report(
        ArtifactResult("m.pkl", "pickle", 1),
        waived=(
            WaivedFinding(f, Waiver("baseline", source="b.json")),
            WaivedFinding(f, Waiver("suppression", reason="vendored")),
            WaivedFinding(f, Waiver("suppression", reason="vendored")),
        ),
    )
    last = render_text(report).splitlines()[-1]
    assert last.startswith("PASS") and "(2 suppressed, 1 baselined not counted)" in last


def test_messages_are_the_same_on_every_run() -> None:
    """Two processes, the same bytes: the same JSON (no memory address, no set order)."""
    args = ("scan", "-f", "json", "--jobs", "1", "samples/")
    first, second = run_cli(*args), run_cli(*args)
    assert first.stdout == second.stdout
    assert not re.search(r" at 0x[0-9a-f]{6,}>", first.stdout)


def test_help_lists_choices_exit_codes_and_examples() -> None:
    from modelscan_lite.cli import FORMAT_CHOICES
    from modelscan_lite.report import FORMATS

    assert FORMAT_CHOICES == FORMATS
    short, long = run_cli("scan", "-h"), run_cli("scan", "--help")
    assert short.returncode == 0 and short.stdout == long.stdout
    text = short.stdout
    assert "<str>" not in text
    assert "[" + "|".join(FORMATS) + "]" in text
    assert "[low|medium|high|critical|never]" in text
    for code in ("0  no finding", "1  findings", "2  usage", "130  interrupted"):
        assert code in text
    assert "Examples:" in text and "modelscan-lite rule P101" in text
    assert run_cli("-h").returncode == 0


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag(flag: str) -> None:
    from modelscan_lite import __version__

    proc = run_cli(flag)
    assert proc.returncode == 0
    assert re.fullmatch(
        rf"modelscan-lite {re.escape(__version__)} \(rules [0-9a-f]{{12}}\)\n"
        r"pickle walker: (compiled \(C core, _pickle_fast\)|pure Python \(.+\))\n",
        proc.stdout,
    )


def _safetensors(path: Path, payload: bytes) -> bytes:
    header = json.dumps(
        {"w": {"dtype": "U8", "shape": [len(payload)], "data_offsets": [0, len(payload)]}}
    ).encode()
    data = struct.pack("<Q", len(header)) + header + payload
    path.write_bytes(data)
    return data


def _ids(*paths: Path, extra: tuple[str, ...] = ()) -> list[tuple[str | None, str | None]]:
    proc = run_cli("scan", "-f", "json", *extra, *map(str, paths))
    doc = json.loads(proc.stdout)
    return [(a["sha256"], a["content_id"]) for a in doc["artifacts"]]


def test_content_id_follows_the_bytes_read(tmp_path: Path) -> None:
    tensor = bytes(range(256)) * 1024  # 256 KiB of tensor data, past what the scan reads
    a = tmp_path / "a.safetensors"
    data = _safetensors(a, tensor)
    b = tmp_path / "b.safetensors"
    b.write_bytes(data[:-1] + b"\x00")  # a tensor byte the scan never read
    c = tmp_path / "c.safetensors"
    c.write_bytes(data.replace(b'"w"', b'"v"'))  # a header byte
    (sa, ia), (_, ib), (_, ic) = _ids(a, b, c)
    assert sa is None and ia is not None and ia.startswith("read-sha256:")
    assert ia == ib and ia != ic
    full = _ids(a, b, extra=("--hash",))
    assert full[0] == (
        hashlib.sha256(data).hexdigest(),
        "sha256:" + hashlib.sha256(data).hexdigest(),
    )
    assert full[0] != full[1]


def test_content_id_from_hf_cache_blob_names(tmp_path: Path) -> None:
    import os

    from .helpers import add_cached_repo

    weights = _safetensors(tmp_path / "w.safetensors", b"\0" * 64)
    cache = tmp_path / "hub"
    add_cached_repo(cache, "org/m", [("a" * 40, {"model.safetensors": weights}, "main")])
    proc = run_cli(
        "scan", "-f", "json", "--hf-cache", env={"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    )
    doc = json.loads(proc.stdout)
    art = next(a for a in doc["artifacts"] if a["path"].endswith("model.safetensors"))
    digest = hashlib.sha256(weights).hexdigest()
    assert art["sha256"] == digest and art["content_id"] == f"sha256:{digest}"
    assert os.path.exists(cache / "models--org--m" / "blobs" / digest)


@pytest.mark.parametrize("lead", ["", " ", "\u2003", "\u00a0\t"])
def test_no_line_reads_as_a_ci_workflow_command(tmp_path: Path, lead: str) -> None:
    """The GitHub runner takes any line whose first non-blank characters are ``::`` as a
    command, on stdout and stderr: a file name (or a word folded to a line start) must never
    put them there, in the text or the JUnit report."""
    from .test_ci_formats import parse_command

    bad = (ROOT / "samples/P101/bad-posix-system.pkl").read_bytes()
    name = f"{lead}::error file=x::pwned.pkl"
    (tmp_path / name).write_bytes(bad)
    for args in (("-q", "--", name), ("-f", "junit", "--", name), ("--", name)):
        proc = run_cli("scan", *args, cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr
        assert "pwned" in proc.stdout
        for line in (proc.stdout + proc.stderr).splitlines():
            assert parse_command(line) is None, line
    # folded for a narrow terminal: the word lands at a line start
    from modelscan_lite.model import ArtifactResult

    f = _finding("P101", Severity.CRITICAL, "m.pkl")
    f = Finding(
        f.rule, f.name, f.severity, "x " * 30 + "::add-mask::secret", f.location, f.fingerprint
    )
    text = render_text(_report(ArtifactResult("m.pkl", "pickle", 1, (f,))), width=66)
    assert all(parse_command(line) is None for line in text.splitlines()), text


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "gitlab", "junit"])
def test_no_legacy_ci_command_in_any_format(tmp_path: Path, fmt: str) -> None:
    """The runner also reads its older ``##[command]`` syntax anywhere in a line: no format
    may carry it, on stdout or stderr; JSON formats keep the exact name (``\\u0023``)."""
    bad = (ROOT / "samples/P101/bad-posix-system.pkl").read_bytes()
    names = ["##[error]forged.pkl", "x ##[add-mask]P101"]
    for name in names:
        (tmp_path / name).write_bytes(bad)
    proc = run_cli("scan", "-f", fmt, "--", *names, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "##[" not in proc.stdout + proc.stderr
    if fmt in ("json", "gitlab"):
        assert "##[error]forged.pkl" in json.dumps(json.loads(proc.stdout), ensure_ascii=False)
    if fmt == "sarif":
        from urllib.parse import unquote

        run = json.loads(proc.stdout)["runs"][0]
        uris = {
            unquote(loc["physicalLocation"]["artifactLocation"]["uri"])
            for r in run["results"]
            for loc in r["locations"]
        }
        assert "##[error]forged.pkl" in uris, uris


def test_content_id_covers_gguf_metadata_read_through_a_map(tmp_path: Path) -> None:
    """GGUF metadata is parsed through a memory map, not read calls: it must still count,
    and the tensor bytes after it must not."""
    import numpy as np

    gguf = pytest.importorskip("gguf")

    def write(path: Path, template: str, fill: int) -> None:
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_string("tokenizer.chat_template", template)
        tensor = np.zeros((256, 256), dtype=np.float32)
        tensor[-1, -1] = fill  # past the first 4 KiB the sniffer reads
        w.add_tensor("t", tensor)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    write(tmp_path / "a.gguf", "{{ messages }}", 0)
    write(tmp_path / "b.gguf", "{{ messages }}", 1)  # other tensor bytes only
    write(tmp_path / "c.gguf", "{{ massages }}", 0)  # same size, other template
    assert (tmp_path / "a.gguf").stat().st_size == (tmp_path / "c.gguf").stat().st_size
    (_, a), (_, b), (_, c) = _ids(tmp_path / "a.gguf", tmp_path / "b.gguf", tmp_path / "c.gguf")
    assert a == b and a != c


def test_progress_names_each_file_before_it_scans_and_counts_bytes() -> None:
    """The progress line's feed: the file about to be scanned (so one big file is named while
    it scans), files and bytes done, and a final call once everything is done."""
    from modelscan_lite.config import Config
    from modelscan_lite.scanner import scan_paths

    files = [str(ROOT / p) for p in MANY[:3]]
    sizes = [Path(p).stat().st_size for p in files]
    calls: list[tuple[str | None, int, int, int, int]] = []
    scan_paths(files, Config(jobs=1), lambda *a: calls.append(a))
    assert [c[0] for c in calls] == [*files, None]
    assert [c[1] for c in calls] == [0, 1, 2, 3] and {c[2] for c in calls} == {3}
    assert [c[3] for c in calls] == [0, sizes[0], sizes[0] + sizes[1], sum(sizes)]
    assert {c[4] for c in calls} == {sum(sizes)}


def test_colour_adds_only_sgr_codes_and_honours_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the report is the plain report plus SGR styling: no markup read from a
    name a file chose (``[link=...]``), the same folding, and no colour under NO_COLOR."""
    f = Finding(
        "P101", "n", Severity.CRITICAL, "calls [link=http://x]y[/link]", Location("a.pkl"), "0" * 16
    )
    report = _report(ArtifactResult("[bold]a.pkl", "pickle", 1, (f,)))
    sgr = re.compile(r"\x1b\[[0-9;]*m")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    coloured = render_text(report, color=True, width=80)
    assert "\x1b[1;31m" in coloured  # critical: bold red
    assert sgr.sub("", coloured) == render_text(report, width=80)
    assert "[link=http://x]y[/link]" in coloured and "[bold]a.pkl" in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    plain_styles = render_text(report, color=True, width=80)
    assert not re.search(r"\x1b\[[0-9;]*3[0-7]m|\x1b\[[0-9;]*;3[0-7]", plain_styles)
    assert sgr.sub("", plain_styles) == render_text(report, width=80)
