"""Issue 10, item 5: resource bombs must not exhaust the scanner's memory.

Each case is a small file that once made the CLI grow past a gigabyte. Every one must now be
scanned by ``python3 -m modelscan_lite scan FILE --format json`` in under 512 MiB of peak RSS,
exit 1, and report the budget it hit (never a silent exit 0). Peak RSS is read with
``os.wait4`` on the scanner's own process by a small wrapper process (see ``run_scan``).

The builders are deterministic and write to a temp dir; ``bench/bench_bombs.py`` reuses them.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelscan_lite import jsonbudget
from modelscan_lite import scan as scan_tree
from modelscan_lite.config import Config
from modelscan_lite.limits import Limits
from modelscan_lite.model import Finding

# the pickle suite runs on both walkers: the pure-Python reference and the compiled core
pytestmark = pytest.mark.usefixtures("walker")

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
RSS_LIMIT = 512 * MiB


# -- builders -----------------------------------------------------------------------------


def build_zip_entries_gz(tmp: Path, entries: int = 5_000_000) -> Path:
    """A gzip holding a zip whose central directory lists ``entries`` members (ZIP64 end
    records), all named alike and pointing at one empty stored member: ~253 MiB of zip,
    under the 256 MiB a random-access member may take in memory, in ~250 KB of gzip."""
    out = tmp / "entries.zip.gz"
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, 7, 0)
    local += b"0000000"
    cd_head = struct.pack(
        "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0
    )
    cd_size = entries * (len(cd_head) + 7)
    cd_off = len(local)
    eocd64 = struct.pack(
        "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, cd_size, cd_off
    )
    loc64 = struct.pack("<4sIQI", b"PK\x06\x07", 0, cd_off + cd_size, 1)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, cd_size, cd_off, 0)
    comp = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    with open(out, "wb") as f:
        f.write(comp.compress(local))
        step = 100_000
        for lo in range(0, entries, step):
            block = (cd_head + b"0000000") * (min(entries, lo + step) - lo)
            f.write(comp.compress(block))
        f.write(comp.compress(eocd64 + loc64 + eocd))
        f.write(comp.flush())
    return out


def _safetensors(path: Path, header: bytes, size: int) -> Path:
    header = header + b" " * (size - len(header))
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
    return path


def build_safetensors_lists(tmp: Path, size: int = 99_000_000) -> Path:
    """A 99 MB safetensors header that is one key holding ~33 M empty JSON lists."""
    n = (size - 16) // 3
    header = b'{"x":[' + b"[]," * (n - 1) + b"[]]}"
    return _safetensors(tmp / "lists.safetensors", header, size)


def build_safetensors_tensors(tmp: Path, tensors: int = 1_000_000, size: int = 99_000_000) -> Path:
    """A valid 99 MB safetensors header with ``tensors`` empty tensors (all at offset 0)."""
    parts = [b"{"]
    entry = (
        b'"model.layers.%07d.mlp.experts.weight":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}'
    )
    parts.append(b",".join(entry % i for i in range(tensors)))
    parts.append(b"}")
    return _safetensors(tmp / "tensors.safetensors", b"".join(parts), size)


def build_big_config_repo(tmp: Path, size: int = 60_000_000) -> Path:
    """A Hugging Face repo folder whose ``config.json`` is 60 MB of small JSON values."""
    repo = tmp / "repo"
    repo.mkdir()
    head = b'{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":32000,"x":['
    n = (size - len(head) - 2) // 3
    (repo / "config.json").write_bytes(head + b"[]," * (n - 1) + b"[]]}")
    return repo


def build_memo_floats_gz(tmp: Path, floats: int = 30_000_000) -> Path:
    """A gzip'd protocol 4 pickle that memoises ``floats`` floats (1000 per APPENDS batch)."""
    out = tmp / "floats.pkl.gz"
    batch = 1000
    chunk = b"(" + (b"G" + struct.pack(">d", 1.5) + b"\x94") * batch + b"e"
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    with open(out, "wb") as f:
        f.write(comp.compress(b"\x80\x04]\x94"))
        for _ in range(floats // batch):
            f.write(comp.compress(chunk))
        f.write(comp.compress(b"."))
        f.write(comp.flush())
    return out


def build_stack_strings_gz(tmp: Path, strings: int = 250_000) -> Path:
    """A gzip'd protocol 4 pickle that pushes ``strings`` distinct 4 KiB strings on the stack
    after a MARK (kept by the walker: at most 4 KiB each), never building anything."""
    out = tmp / "stack.pkl.gz"
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    body = b"a" * 4088
    with open(out, "wb") as f:
        f.write(comp.compress(b"\x80\x04("))
        for i in range(strings):
            f.write(comp.compress(b"X" + struct.pack("<I", 4096) + b"%08d" % i + body))
        f.write(comp.compress(b"l."))
        f.write(comp.flush())
    return out


def build_big_real_repo(tmp: Path) -> Path:
    """Not a bomb, the control: a repo with a 20 MB tokenizer.json shaped like Llama-3's /
    Qwen2's (vocab + merges as lists) and a safetensors file with 3,000 tensors written by
    the safetensors library. Must be analysed fully, with no finding."""
    import numpy as np
    from safetensors.numpy import save_file

    repo = tmp / "real-repo"
    repo.mkdir()
    vocab = {f"\u0120tok{i:07d}": i for i in range(200_000)}
    merges = [[f"\u0120to{i:07d}", f"ken{i:06d}"] for i in range(520_000)]
    tok = {
        "version": "1.0",
        "added_tokens": [
            {"id": 200_000 + i, "content": f"<|reserved_{i}|>", "special": True} for i in range(256)
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
        "model": {"type": "BPE", "vocab": vocab, "merges": merges},
    }
    (repo / "tokenizer.json").write_bytes(json.dumps(tok, ensure_ascii=False).encode())
    (repo / "config.json").write_text(
        json.dumps({"model_type": "llama", "vocab_size": 200_256, "architectures": ["X"]})
    )
    tensors = {f"model.layers.{i}.weight": np.zeros((2, 2), np.float32) for i in range(3000)}
    save_file(tensors, str(repo / "extra.safetensors"))
    return repo


# -- running the CLI and measuring its peak RSS -------------------------------------------


@dataclass(frozen=True)
class Run:
    code: int
    peak_rss: int  # bytes
    seconds: float
    report: dict[str, Any]
    stderr: str

    def findings(self) -> list[dict[str, Any]]:
        return [f for a in self.report.get("artifacts", []) for f in a.get("findings", [])]


# A small process between us and the scanner: a child's peak RSS includes the RSS of the
# process it was forked from (Linux keeps the pre-exec high-water mark), so measuring the
# scanner forked from a big pytest or bench process would report that process's size.
_WRAPPER = """
import json, os, subprocess, sys, threading
out, err, timeout, *cmd = sys.argv[1:]
with open(out, "wb") as o, open(err, "wb") as e:
    proc = subprocess.Popen(cmd, stdout=o, stderr=e)
    timer = threading.Timer(float(timeout), proc.kill)
    timer.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    proc.returncode = code = os.waitstatus_to_exitcode(status)
print(json.dumps({"code": code, "maxrss_kib": usage.ru_maxrss}))
"""


def run_scan(target: Path, timeout: float = 600.0, cwd: Path | None = None) -> Run:
    """Run the CLI on ``target`` in a child process and return its own peak RSS."""
    out_path = Path(str(target) + ".report.json")
    err_path = Path(str(target) + ".stderr.txt")
    env = {**os.environ, "MODELSCAN_LITE_NO_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "modelscan_lite", "scan", str(target), "--format", "json"]
    start = time.monotonic()
    wrapper = [sys.executable, "-c", _WRAPPER, str(out_path), str(err_path), str(timeout)]
    done = subprocess.run(
        wrapper + cmd, env=env, cwd=cwd or ROOT, capture_output=True, text=True, check=True
    )
    seconds = time.monotonic() - start
    measured = json.loads(done.stdout)
    text = out_path.read_text(encoding="utf-8", errors="replace")
    try:
        report = json.loads(text) if text.strip() else {}
    except ValueError:
        report = {}
    return Run(
        measured["code"],
        measured["maxrss_kib"] * 1024,  # Linux: KiB
        seconds,
        report,
        err_path.read_text(encoding="utf-8", errors="replace"),
    )


CASES: dict[str, Callable[[Path], Path]] = {
    "zip-5M-entries-in-gzip": build_zip_entries_gz,
    "safetensors-99MB-lists": build_safetensors_lists,
    "safetensors-99MB-1M-tensors": build_safetensors_tensors,
    "repo-60MB-config-json": build_big_config_repo,
    "pickle-30M-memoised-floats-gz": build_memo_floats_gz,
    "pickle-250k-4KiB-strings-on-the-stack-gz": build_stack_strings_gz,
}


def _budget_finding(run: Run, rule: str, kind_in_message: str | None = None) -> dict[str, Any]:
    hits = [f for f in run.findings() if f["rule"] == rule]
    assert hits, f"no {rule} finding: {[f['rule'] for f in run.findings()]} {run.stderr[-2000:]}"
    if kind_in_message:
        hits = [f for f in hits if kind_in_message in f["message"]]
        assert hits, f"no {rule} finding mentions {kind_in_message!r}"
    return hits[0]


def _check_rss(run: Run) -> None:
    assert run.peak_rss < RSS_LIMIT, f"peak RSS {run.peak_rss / MiB:.0f} MiB"


# -- the cases ------------------------------------------------------------------------------


@pytest.mark.slow
def test_zip_with_5m_entries_in_gzip_stops_at_the_member_budget(tmp_path: Path) -> None:
    target = build_zip_entries_gz(tmp_path)
    assert target.stat().st_size < 2 * MiB
    run = run_scan(target)
    _check_rss(run)
    assert run.code == 1, run.stderr[-2000:]
    hit = _budget_finding(run, "X901", "archive members")
    assert hit["location"]["path"] == str(target)
    assert hit["location"]["member"] == "<gzip>"
    assert "5000000" in hit["message"]


@pytest.mark.slow
@pytest.mark.parametrize("build", [build_safetensors_lists, build_safetensors_tensors])
def test_99mb_safetensors_header_hits_the_json_budget(
    tmp_path: Path, build: Callable[[Path], Path]
) -> None:
    """A header of JSON lists, and one of 1 M tensors (was exit 0)."""
    target = build(tmp_path)
    run = run_scan(target)
    _check_rss(run)
    assert run.code == 1, run.stderr[-2000:]
    hit = _budget_finding(run, "X901", "JSON values")
    assert hit["location"]["path"] == str(target)
    assert hit["location"]["offset"] == 8


@pytest.mark.slow
def test_60mb_config_json_in_a_repo_hits_the_byte_budget(tmp_path: Path) -> None:
    repo = build_big_config_repo(tmp_path)
    run = run_scan(repo)
    _check_rss(run)
    assert run.code == 1, run.stderr[-2000:]
    hit = _budget_finding(run, "X901", "config.json")
    assert hit["location"]["path"] == str(repo / "config.json")
    assert "bytes" in hit["message"]


@pytest.mark.slow
def test_pickle_of_30m_memoised_floats_hits_the_memo_budget(tmp_path: Path) -> None:
    target = build_memo_floats_gz(tmp_path)
    assert target.stat().st_size < 2 * MiB
    run = run_scan(target)
    _check_rss(run)
    assert run.code == 1, run.stderr[-2000:]
    hit = _budget_finding(run, "X901", "memo")
    assert hit["location"]["path"] == str(target)
    assert hit["location"]["member"] == "<gzip>"


@pytest.mark.slow
def test_pickle_stack_of_4kib_strings_hits_the_walk_memory_budget(tmp_path: Path) -> None:
    """No structure estimate covers it (each string is under the 4 KiB kept-literal size):
    the walker's measured memory growth stops it (1 GiB before)."""
    target = build_stack_strings_gz(tmp_path)
    assert target.stat().st_size < 2 * MiB
    run = run_scan(target)
    _check_rss(run)
    assert run.code == 1, run.stderr[-2000:]
    hit = _budget_finding(run, "X901", "grew the scanner")
    assert hit["location"]["path"] == str(target)
    assert hit["location"]["member"] == "<gzip>"


def test_builders_are_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    small = build_memo_floats_gz(a, 10_000).read_bytes()
    assert small == build_memo_floats_gz(b, 10_000).read_bytes()
    assert gzip.decompress(small).startswith(b"\x80\x04")


# -- the budgets behind them, in process ------------------------------------------------------


def _x901(folder_or_file: Path, limits: Limits | None = None) -> list[Finding]:
    report = scan_tree([folder_or_file], Config(jobs=1, limits=limits or Limits()))
    return [f for f in report.findings if f.rule == "X901"]


def test_json_value_count_and_depth_are_measured_without_parsing() -> None:
    assert jsonbudget.count_values(b'{"a": [1, 2, {"b": "c"}]}') >= 5
    doc = {"a]": ["[[{", {"b": [[{"c": '\\"]'}]]}]}  # depth 6, brackets inside strings
    raw = json.dumps(doc).encode()
    assert not jsonbudget.deeper_than(raw, 6)
    assert jsonbudget.deeper_than(raw, 5)
    assert not jsonbudget.deeper_than(b"[[[[]", 1)  # unbalanced: left to the parser
    with pytest.raises(jsonbudget.JsonBudgetExceeded) as exc:
        jsonbudget.check(b"[" * 65 + b"]" * 65, Limits())
    assert exc.value.what == "budget-json-depth"


@pytest.mark.parametrize(
    ("name", "body", "limits", "words"),
    [
        ("config.json", b'{"a":' * 100 + b"1" + b"}" * 100, None, "nested deeper than 64"),
        ("tokenizer_config.json", b'{"x": "' + b"a" * 2000 + b'"}', "bytes", "bytes"),
        ("tokenizer.json", b'{"x": [' + b"1," * 2000 + b"1]}", "values", "JSON values"),
        ("generation_config.json", b"[]", "bytes-tiny", "bytes"),
    ],
    ids=["depth", "bytes", "values", "tiny-file"],
)
def test_every_repo_json_has_byte_value_and_depth_budgets(
    tmp_path: Path, name: str, body: bytes, limits: str | None, words: str
) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / name).write_bytes(body)
    small = {
        None: Limits(),
        "bytes": Limits(max_config_json_bytes=1000),
        "values": Limits(max_json_values=1000),
        "bytes-tiny": Limits(max_config_json_bytes=1),
    }[limits]
    hits = [f for f in _x901(tmp_path, small) if f.location.path == str(tmp_path / name)]
    assert hits, f"no X901 on {name}"
    assert words in hits[0].message and f"`{name}`" in hits[0].message


def test_vocab_txt_lines_have_a_budget(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert", "vocab_size": 5}')
    (tmp_path / "vocab.txt").write_text("\n".join(f"t{i}" for i in range(50)) + "\n")
    hits = _x901(tmp_path, Limits(max_vocab_lines=10))
    assert [f.location.path for f in hits] == [str(tmp_path / "vocab.txt")]
    assert "50 lines" in hits[0].message


def test_zip_member_budget_names_what_the_directory_declares(tmp_path: Path) -> None:
    target = tmp_path / "many.zip"
    with zipfile.ZipFile(target, "w") as zf:
        for i in range(50):
            zf.writestr(f"m{i}.txt", b"hello")
    hits = _x901(target, Limits(max_members=10))
    assert len(hits) == 1 and hits[0].location.path == str(target)
    assert "more than 10 archive members" in hits[0].message and "declares 50" in hits[0].message
    assert not _x901(target, Limits(max_members=50))


def test_pickle_memo_byte_budget(tmp_path: Path) -> None:
    data = pickle.dumps([f"string number {i}" for i in range(20_000)], protocol=4)
    target = tmp_path / "strings.pkl"
    target.write_bytes(data)
    assert not _x901(target)
    hits = _x901(target, Limits(max_memo_bytes=200_000))
    assert len(hits) == 1 and "memo holds more than 200000 bytes" in hits[0].message
    # replacing memo entries after they were counted is counted again (PUT to a used key)
    put = b"X" + struct.pack("<I", 4096) + b"a" * 4096 + b"q\x00" + b"0"  # BINPUT 0, POP
    big = b"\x80\x02]q\x000" + put * 200 + b"N."
    target.write_bytes(big)
    hits = _x901(target, Limits(max_memo_bytes=100_000))
    assert len(hits) == 1 and "memo holds" in hits[0].message


def test_safetensors_header_over_the_reference_limit_is_not_read(tmp_path: Path) -> None:
    target = tmp_path / "big.safetensors"
    with open(target, "wb") as f:
        f.write(struct.pack("<Q", 200 * MiB))
        f.write(b"{" + b" " * 100)
        f.truncate(8 + 200 * MiB + 1)  # sparse: a header of 200 MiB exists on disk
    report = scan_tree([target], Config(jobs=1))
    assert {f.rule for f in report.findings} >= {"S301"}


@pytest.mark.slow
def test_big_but_real_files_are_analysed_fully_under_the_budgets(tmp_path: Path) -> None:
    repo = build_big_real_repo(tmp_path)
    assert (repo / "tokenizer.json").stat().st_size > 20_000_000
    run = run_scan(repo)
    _check_rss(run)
    assert run.code == 0, [(f["rule"], f["message"]) for f in run.findings()]
    assert not [f for f in run.findings() if f["rule"] in ("X901", "H901")]
