"""The result cache (``modelscan_lite.result_cache``): a hit gives the stored result without
parsing; anything the result depends on (the bytes the scan read, a consulted sibling, the
rules, the config) makes it miss; results that another run may not repeat are never stored;
several processes write at once; a broken, read-only or disabled cache costs time only.

Every test has its own ``XDG_CACHE_HOME``. The files a test writes are a moment old when it
scans them, which the cache treats as "racy" and does not store, so most tests set
``RACY_NS`` to 0; one test checks the default.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sqlite3
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from modelscan_lite import engine, result_cache, scanner
from modelscan_lite.config import Config, ConfigError, from_table
from modelscan_lite.formats.dispatch import dispatch_file
from modelscan_lite.limits import Limits
from modelscan_lite.model import ArtifactResult, DynamicRun, Finding, Location, Severity
from modelscan_lite.result_cache import ResultCache, decode_result, encode_result
from modelscan_lite.scanner import build_policy, new_context, scan_file, scan_paths

from .conftest import SAMPLES
from .helpers import rules_of

# 21 bytes each: a tuple holding one string (clean), and a call of os.system (P101)
CLEAN_PICKLE = b"(S'" + b"x" * 14 + b"'\nt."
BAD_PICKLE = b"cos\nsystem\n(S'id'\ntR."
SOME_SAMPLES = (
    "P101/bad-builtin-py2-alias.pkl",
    "O401/ok-external.onnx",
    "O402/bad-missing.onnx",
    "M120/ok-model.xml",
    "M134/ok-mlprogram.mlmodel",
)


@pytest.fixture
def db(result_db: Path) -> Path:
    return result_db


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the parsers were called on, in order."""
    calls: list[str] = []

    def counting(*args: Any, **kwargs: Any) -> None:
        calls.append(args[3].path)
        dispatch_file(*args, **kwargs)

    monkeypatch.setattr(scanner, "dispatch_file", counting)
    return calls


def scan(path: Path | str, config: Config | None = None) -> ArtifactResult:
    config = config or Config()
    return scan_file(str(path), build_policy(config), config)


def same(a: ArtifactResult, b: ArtifactResult) -> bool:
    """Equal results, tensor tables included, whatever the time each took."""
    return replace(a, seconds=0.0) == replace(b, seconds=0.0) and a.tensors == b.tensors


def entries(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM files").fetchone()[0])


def copy_sample(name: str, dest: Path) -> Path:
    """The sample, its siblings (same stem) and weights folder copied into ``dest``."""
    src = SAMPLES / name
    dest.mkdir(parents=True, exist_ok=True)
    for sibling in src.parent.iterdir():
        if sibling.name.startswith(src.name.split(".")[0]) and sibling.is_file():
            shutil.copy2(sibling, dest / sibling.name)
    if (src.parent / "weights").is_dir():
        shutil.copytree(src.parent / "weights", dest / "weights")
    return dest / src.name


# -- hits --------------------------------------------------------------------------------


def test_a_second_scan_gives_the_stored_result_without_parsing(
    db: Path, parses: list[str], tmp_path: Path
) -> None:
    files = [copy_sample(name, tmp_path / name.split("/")[0]) for name in SOME_SAMPLES]
    first = [scan(f) for f in files]
    assert parses == [str(f) for f in files]
    assert entries(db) == len(files)
    parses.clear()
    second = [scan(f) for f in files]
    assert parses == []  # no parser ran: every result came from the cache
    for a, b in zip(first, second, strict=True):
        assert same(a, b), a.path
    assert rules_of(second[0]) == {"P101"} and rules_of(second[2]) == {"O402"}
    stats = result_cache.default_cache().stats()  # type: ignore[union-attr]
    assert (stats["hits"], stats["entries"], stats["path"]) == (len(files), len(files), str(db))


def test_a_hit_does_not_claim_the_scan_time(db: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(BAD_PICKLE)
    first = scan(path)
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT result FROM files").fetchone()
    assert decode_result(stored) == first  # the database keeps the scan's own time
    hit = scan(path)
    assert same(hit, first)
    assert hit.seconds != first.seconds  # the hit reports its lookup, not the parse


def test_the_same_path_from_another_folder_is_another_entry(
    db: Path, parses: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a fingerprint takes the path relative to the working directory
    (tmp_path / "a").mkdir()
    path = tmp_path / "a" / "bad.pkl"
    path.write_bytes(BAD_PICKLE)
    config = Config(root=str(tmp_path))  # per-path ignores anchored the same from anywhere
    monkeypatch.chdir(tmp_path)
    above = scan(path, config)
    monkeypatch.chdir(tmp_path / "a")
    inside = scan(path, config)
    assert len(parses) == 2
    assert above.findings[0].fingerprint != inside.findings[0].fingerprint
    assert same(scan(path, config), inside) and len(parses) == 2


# -- misses ------------------------------------------------------------------------------


def _stat_without_ctime(st: os.stat_result) -> str:
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns}"


def test_read_bytes_changed_under_the_same_stat_miss(
    db: Path, parses: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a rewrite within one timestamp tick (or a file system without ctime) keeps the stat
    # identity: without ctime and with the mtime forced back, only the re-hash can tell
    monkeypatch.setattr(result_cache, "_stat_id", _stat_without_ctime)
    path = tmp_path / "model.pkl"
    path.write_bytes(CLEAN_PICKLE)
    before = os.stat(path)
    assert rules_of(scan(path)) == set()
    with open(path, "r+b") as f:  # same file, same size
        f.write(BAD_PICKLE)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert _stat_without_ctime(os.stat(path)) == _stat_without_ctime(before)
    after = scan(path)
    assert len(parses) == 2
    assert rules_of(after) == {"P101"}
    assert same(scan(path), after) and len(parses) == 2  # and the new result is stored


def _safetensors(payload: bytes) -> bytes:
    import struct

    n = len(payload)
    header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    return struct.pack("<Q", len(header)) + header + payload


def test_unread_bytes_changed_under_the_same_stat_still_hit(
    db: Path, parses: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tensor bytes are never read: a result cannot depend on them (the content_id design)
    monkeypatch.setattr(result_cache, "_stat_id", _stat_without_ctime)
    path = tmp_path / "model.safetensors"
    path.write_bytes(_safetensors(b"\0" * 65536))
    before = os.stat(path)
    first = scan(path)
    assert first.format == "safetensors"
    path.write_bytes(_safetensors(b"\0" * 65535 + b"\1"))  # past what sniffing reads
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert same(scan(path), first) and len(parses) == 1
    with open(path, "r+b") as f:  # a header byte (read by the scan): a miss
        f.seek(20)
        f.write(b"V" if f.read(1) != b"V" else b"W")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    scan(path)
    assert len(parses) == 2


def test_a_changed_file_misses_on_its_stat(db: Path, parses: list[str], tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(CLEAN_PICKLE)
    scan(path)
    path.write_bytes(BAD_PICKLE)
    assert rules_of(scan(path)) == {"P101"} and len(parses) == 2
    path.unlink()
    path.write_bytes(CLEAN_PICKLE)  # another inode, the first bytes again
    assert rules_of(scan(path)) == set() and len(parses) == 3


@pytest.fixture
def edited_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Call it to make the shipped rules a copy whose P101 message says ``EDITED``, with the
    same tool and rule versions."""
    rules = tmp_path / "rules"
    shutil.copytree(engine.rules_dir(), rules)

    def edit() -> None:
        (p101,) = rules.glob("pickle/P101-*.yaml")
        text = p101.read_text(encoding="utf-8")
        p101.write_text(text.replace("message: ", "message: EDITED ", 1), encoding="utf-8")
        monkeypatch.setattr(engine, "rules_dir", lambda: rules)
        engine.load_rules.cache_clear()

    yield edit
    engine.load_rules.cache_clear()  # the shipped rules again for the next test


def test_an_edited_rule_misses_without_a_version_bump(
    db: Path, parses: list[str], tmp_path: Path, edited_rules: Callable[[], None]
) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(BAD_PICKLE)
    before = scan(path)
    assert not before.findings[0].message.startswith("EDITED")
    edited_rules()
    after = scan(path)
    assert len(parses) == 2
    assert after.findings[0].message.startswith("EDITED")
    assert same(scan(path), after) and len(parses) == 2


@pytest.mark.parametrize(
    "other",
    [
        Config(ignore=("P101",)),
        Config(select=("O",)),
        Config(severity={"P101": Severity.LOW}),
        Config(per_path_ignores=(("*.pkl", ("P101",)),)),
        Config(allow_globals=("os.system",)),
        Config(limits=Limits(max_stack=1)),
        Config(full_hash=True),
    ],
    ids=["ignore", "select", "severity", "per-path", "allow", "limit", "hash"],
)
def test_a_config_change_misses(db: Path, parses: list[str], tmp_path: Path, other: Config) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(BAD_PICKLE)
    default = scan(path)
    changed = scan(path, other)
    assert len(parses) == 2
    assert not same(changed, default)
    assert same(scan(path, other), changed) and same(scan(path), default)
    assert len(parses) == 2  # both results are stored side by side


def test_settings_that_act_outside_the_file_scan_share_entries(
    db: Path, parses: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(BAD_PICKLE)
    scan(path)
    scan(path, Config(jobs=3, fail_on=Severity.LOW, dynamic="auto", source="x.toml"))
    assert len(parses) == 1


def test_every_config_field_is_in_the_key_or_listed_as_irrelevant() -> None:
    # a field added to Config is part of the key until NOT_RESULTS names it
    from dataclasses import fields

    policy = build_policy(Config())
    base = result_cache.settings_key(policy, Config())
    for f in fields(Config):
        if f.name in result_cache.NOT_RESULTS:
            continue
        value = getattr(Config(), f.name)
        other: Any
        if isinstance(value, bool):
            other = not value
        elif isinstance(value, int | float):
            other = value + 1
        elif isinstance(value, str) or value is None:
            other = "/elsewhere"
        elif isinstance(value, Limits):
            other = replace(value, max_depth=value.max_depth + 1)
        elif isinstance(value, dict):
            other = {"P101": Severity.LOW}
        else:
            other = ("P101",)
        changed = replace(Config(), **{f.name: other})
        assert result_cache.settings_key(policy, changed) != base, f.name
    for name in result_cache.NOT_RESULTS:
        assert name in {f.name for f in fields(Config)}, name  # no stale name


def test_a_changed_sibling_misses(db: Path, parses: list[str], tmp_path: Path) -> None:
    path = copy_sample("O401/ok-external.onnx", tmp_path)
    data = tmp_path / "ok-external.onnx.data"
    assert rules_of(scan(path)) == set()
    assert rules_of(scan(path)) == set() and len(parses) == 1
    with open(data, "r+b") as f:
        f.truncate(4)  # the tensor's bytes now lie outside its external file
    assert rules_of(scan(path)) == {"O203"} and len(parses) == 2
    data.unlink()
    assert rules_of(scan(path)) == {"O402"} and len(parses) == 3
    assert rules_of(scan(path)) == {"O402"} and len(parses) == 3  # absent, and still absent
    data.symlink_to("/etc/hostname")
    assert rules_of(scan(path)) == {"O401"} and len(parses) == 4


@pytest.mark.parametrize(
    ("sample", "sibling"),
    [
        ("O401/ok-external.onnx", "ok-external.onnx.data"),
        ("M120/ok-model.xml", "ok-model.bin"),
        ("M134/ok-mlprogram.mlmodel", "weights/weight.bin"),
    ],
)
def test_every_sibling_a_parser_reads_is_recorded_and_checked(
    db: Path, parses: list[str], tmp_path: Path, sample: str, sibling: str
) -> None:
    path = copy_sample(sample, tmp_path)
    scan(path)
    with sqlite3.connect(db) as conn:
        (consulted,) = conn.execute("SELECT consulted FROM files").fetchone()
    assert [os.path.abspath(p) for p, _ in json.loads(consulted)] == [str(tmp_path / sibling)]
    assert scan(path) is not None and len(parses) == 1
    (tmp_path / sibling).parent.mkdir(exist_ok=True)
    with open(tmp_path / sibling, "ab") as f:  # one byte more, or there at last
        f.write(b"\0")
    scan(path)
    assert len(parses) == 2


def test_the_hugging_face_blobs_folders_are_consulted(tmp_path: Path) -> None:
    snap = tmp_path / "models--org--name" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    ctx = new_context(build_policy(Config()), Config())
    assert ctx.cache_blobs(str(snap)) is None
    assert ctx.consulted == [str(tmp_path / "models--org--name" / "blobs")]
    (tmp_path / "models--org--name" / "blobs").mkdir()
    assert ctx.cache_blobs(str(snap)) == str(tmp_path / "models--org--name" / "blobs")


# -- what is never stored ----------------------------------------------------------------


def test_a_result_with_an_error_is_not_stored(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(BAD_PICKLE)

    def failing_read(*args: Any, **kwargs: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(scanner, "dispatch_file", failing_read)
    assert scan(path).error == "cannot read: Input/output error"
    monkeypatch.setattr(scanner, "dispatch_file", dispatch_file)
    assert entries(db) == 0
    assert rules_of(scan(path)) == {"P101"}


def test_an_internal_error_is_not_stored(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(BAD_PICKLE)

    def crashing(*args: Any, **kwargs: Any) -> None:
        raise MemoryError

    monkeypatch.setattr(scanner, "dispatch_file", crashing)
    assert rules_of(scan(path)) == {"X904"}
    monkeypatch.setattr(scanner, "dispatch_file", dispatch_file)
    assert entries(db) == 0
    assert rules_of(scan(path)) == {"P101"}


def test_a_scan_that_ran_out_of_time_is_not_stored(
    db: Path, parses: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(BAD_PICKLE)
    hurried = Config(limits=Limits(max_seconds=0.0))
    assert "X901" in rules_of(scan(path, hurried))
    assert entries(db) == 0
    scan(path, hurried)
    assert len(parses) == 2


def test_a_file_written_just_before_its_scan_is_not_stored(
    db: Path, parses: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(result_cache, "RACY_NS", 2_000_000_000)  # the default
    path = tmp_path / "model.pkl"
    path.write_bytes(BAD_PICKLE)
    first = scan(path)
    assert entries(db) == 0
    assert same(scan(path), first) and len(parses) == 2
    # an old mtime does not help: the ctime says when it was written
    copy = copy_sample("P101/bad-builtin-py2-alias.pkl", tmp_path / "copy")
    scan(copy)
    assert entries(db) == 0
    scan(SAMPLES / "P101" / "bad-builtin-py2-alias.pkl")  # the checkout's: long written
    assert entries(db) == 1


# -- content-addressed entries -------------------------------------------------------------


def _result(path: str, rule: str = "P101") -> ArtifactResult:
    where = Location(path, "archive/data.pkl", 12, "os.system")
    finding = Finding(rule, "name", Severity.CRITICAL, "message", where, "0123456789abcdef")
    return ArtifactResult(path, "pytorch-zip", 42, (finding,), content_id="sha256:" + "a" * 64)


def test_content_entries_are_found_by_identity_name_siblings_and_settings(db: Path) -> None:
    cache = ResultCache(db)
    ctx = new_context(build_policy(Config()), Config())
    stored = _result("hf://org/name@main/model.bin")
    assert cache.store_content("sha256:1", "model.bin", "sig", "settings", stored, ctx)
    hit = cache.lookup_content("sha256:1", "model.bin", "sig", "settings")
    assert hit is not None and replace(hit, seconds=0.0) == stored
    for other in (
        ("sha256:2", "model.bin", "sig", "settings"),
        ("sha256:1", "model.pt", "sig", "settings"),
        ("sha256:1", "model.bin", "other", "settings"),
        ("sha256:1", "model.bin", "sig", "other"),
    ):
        assert cache.lookup_content(*other) is None, other
    moved = cache.lookup_content(
        "sha256:1", "model.bin", "sig", "settings", path="hf://org/name@v2/model.bin"
    )
    assert moved is not None and moved.path == "hf://org/name@v2/model.bin"
    assert moved.findings[0].location.path == moved.path
    assert moved.findings[0].fingerprint != stored.findings[0].fingerprint
    ctx.anomaly("budget-time", Location("x"), "ran out")
    assert not cache.store_content("sha256:3", "model.bin", "sig", "settings", stored, ctx)
    assert cache.lookup_content("sha256:3", "model.bin", "sig", "settings") is None


# -- the database ------------------------------------------------------------------------


def _worker(db: str, worker: int, samples: list[str], out: Any, barrier: Any) -> None:
    try:
        inherited = result_cache.default_cache()
        fresh = inherited is not None and inherited._conn is None  # not the parent's
        cache = ResultCache(db)
        config = Config()
        policy = build_policy(config)
        ctx = new_context(policy, config)
        barrier.wait()
        stored = missing = 0
        for i in range(300):
            path = f"w{worker}/{i}.bin"
            stored += cache.store_content(f"id-{worker}-{i}", path, "", "s", _result(path), ctx)
            j = (i * 7) % (i + 1)  # one of this worker's earlier entries
            missing += (
                cache.lookup_content(f"id-{worker}-{j}", f"w{worker}/{j}.bin", "", "s") is None
            )
            if i % 60 == 0:  # and whole scans of files all the workers share
                for sample in samples:
                    scan_file(sample, policy, config)
        out.put((worker, stored, missing, fresh, None))
    except BaseException:
        out.put((worker, 0, 0, False, traceback.format_exc()))


def _run_workers(db: Path, first: int, samples: list[str]) -> None:
    mp = multiprocessing.get_context("fork")
    out = mp.Queue()
    barrier = mp.Barrier(4)
    procs = [
        mp.Process(target=_worker, args=(str(db), w, samples, out, barrier))
        for w in range(first, first + 4)
    ]
    for p in procs:
        p.start()
    reports = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [r[4] for r in reports] == [None] * 4, [r[4] for r in reports if r[4]]
    assert sorted(r[:4] for r in reports) == [(w, 300, 0, True) for w in range(first, first + 4)]


def test_concurrent_writers(db: Path, tmp_path: Path) -> None:
    samples = [str(copy_sample(name, tmp_path / name.split("/")[0])) for name in SOME_SAMPLES]
    _run_workers(db, 0, samples)  # four processes create the database at once
    cache = result_cache.default_cache()
    assert cache is not None and cache.stats()["entries"] == 4 * 300 + len(samples)
    _run_workers(db, 4, samples)  # forked from a process with the database open
    for w in range(8):
        for i in range(300):
            hit = cache.lookup_content(f"id-{w}-{i}", f"w{w}/{i}.bin", "", "s")
            assert hit is not None and hit.path == f"w{w}/{i}.bin"
    assert cache.stats()["entries"] == 8 * 300 + len(samples)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _open_and_store(db: str, worker: int, out: Any, barrier: Any) -> None:
    cache = ResultCache(db)
    ctx = new_context(build_policy(Config()), Config())
    barrier.wait()
    out.put(cache.store_content(f"id-{worker}", "n", "", "s", _result("p"), ctx))


def test_processes_that_start_at_once_all_open_a_new_database(tmp_path: Path) -> None:
    # switching a new database to WAL does not wait for the busy timeout by itself
    mp = multiprocessing.get_context("fork")
    for round in range(10):
        db = tmp_path / str(round) / "results.sqlite3"
        out = mp.Queue()
        barrier = mp.Barrier(4)
        procs = [
            mp.Process(target=_open_and_store, args=(str(db), w, out, barrier)) for w in range(4)
        ]
        for p in procs:
            p.start()
        stored = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert stored == [True] * 4, round


def test_a_corrupt_database_costs_time_only(db: Path, parses: list[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(BAD_PICKLE)
    expected = scan(path, Config(cache=False))
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(os.urandom(8192))
    assert same(scan(path), expected)  # the garbage is replaced by a new database
    assert same(scan(path), expected) and len(parses) == 2
    # a database whose pages are garbage behind a valid header: not used, never an error
    cache = result_cache.default_cache()
    assert cache is not None
    cache.close()
    raw = bytearray(db.read_bytes())
    raw[100:] = os.urandom(len(raw) - 100)
    db.write_bytes(bytes(raw))
    assert same(scan(path), expected)
    assert same(scan(path), expected) and len(parses) == 4
    assert cache.stats()["usable"] is False
    assert cache.clear() == 0  # ``cache clear`` removes it
    assert same(scan(path), expected) and same(scan(path), expected) and len(parses) == 5
    assert cache.stats()["usable"] is True


def test_an_old_schema_is_dropped(db: Path, parses: list[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(BAD_PICKLE)
    scan(path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE name = 'schema'")
    result_cache.default_cache().close()  # type: ignore[union-attr]
    scan(path)
    assert len(parses) == 2 and entries(db) == 1


def test_a_cache_folder_that_cannot_be_written_costs_time_only(
    db: Path, parses: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(BAD_PICKLE)
    expected = scan(path, Config(cache=False))
    shutil.rmtree(db.parent, ignore_errors=True)
    db.parent.parent.mkdir(parents=True, exist_ok=True)
    db.parent.write_text("a file where the cache folder should be")
    assert same(scan(path), expected)
    assert same(scan(path), expected) and len(parses) == 3
    assert result_cache.default_cache().stats()["usable"] is False  # type: ignore[union-attr]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_cache_folder_costs_time_only(
    db: Path, parses: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(BAD_PICKLE)
    expected = scan(path, Config(cache=False))
    db.parent.mkdir(parents=True)
    db.parent.chmod(0o555)
    try:
        assert same(scan(path), expected)
        assert same(scan(path), expected)
    finally:
        db.parent.chmod(0o755)
    assert not db.exists()


def test_no_database_when_the_cache_is_off(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(BAD_PICKLE)
    scan(path, Config(cache=False))
    assert not db.exists()
    monkeypatch.setenv("MODELSCAN_LITE_NO_CACHE", "1")
    scan(path)
    assert not db.exists()
    assert "off" in result_cache.stats_text() and "off" in result_cache.clear_text()
    monkeypatch.delenv("MODELSCAN_LITE_NO_CACHE")
    scan(path)
    assert db.exists()


def test_the_pyproject_key() -> None:
    assert from_table({"cache": False}, "pyproject.toml").cache is False
    assert from_table({}, "pyproject.toml").cache is True
    with pytest.raises(ConfigError, match="cache must be true or false"):
        from_table({"cache": "no"}, "pyproject.toml")


def test_stats_and_clear(db: Path, parses: list[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(BAD_PICKLE)
    scan(path)
    scan(path)
    text = result_cache.stats_text()
    assert str(db) in text and "entries: 1 (1 files, 0 by content)" in text
    stats = result_cache.default_cache().stats()  # type: ignore[union-attr]
    assert (stats["hits"], stats["misses"], stats["bytes"] > 0) == (1, 1, True)
    assert result_cache.clear_text() == f"removed 1 cached result from {db}"
    assert "entries: 0" in result_cache.stats_text()
    scan(path)
    assert len(parses) == 2


# -- the JSON form ---------------------------------------------------------------------------


def test_every_sample_result_round_trips_exactly() -> None:
    report = scan_paths([str(SAMPLES)], Config(cache=False))
    assert len(report.artifacts) > 700
    assert any(a.tensors for a in report.artifacts)
    for result in report.artifacts:
        back = decode_result(encode_result(result))
        assert back == result and back.tensors == result.tensors, result.path
        assert back.seconds == result.seconds


def test_every_field_round_trips() -> None:
    run = DynamicRun("torch", "bwrap", "done", 1.5, 0.25, 2.0, None, 123, 3, "note")
    result = replace(
        _result("odd \udcff näme.pt"),
        skipped="why",
        error="how",
        sha256="b" * 64,
        seconds=0.125,
        dynamic=run,
        layers=("gzip", "pickle"),
        tensors={"w": ("F32", (2, 3)), "scalar": ("I64", ()), "big": ("U8", (2**40,))},
    )
    back = decode_result(encode_result(result))
    assert back == result and back.tensors == result.tensors
    assert isinstance(back.findings[0].severity, Severity)
    assert isinstance(back.tensors["w"][1], tuple)  # type: ignore[index]
    broken = json.loads(encode_result(result))
    del broken["layers"]
    with pytest.raises(ValueError):
        decode_result(json.dumps(broken))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_a_new_cache_folder_leaves_no_open_files(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # each test of a suite has its own cache folder: a process must not keep them all open
    path = tmp_path / "bad.pkl"
    path.write_bytes(BAD_PICKLE)
    scan(path)
    before = len(os.listdir("/proc/self/fd"))
    for i in range(40):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / f"xdg{i}"))
        scan(path)
        scan(path)
    assert len(os.listdir("/proc/self/fd")) <= before


def test_threads_share_the_cache_of_the_current_folder(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # remote files are scanned in threads: they ask for the cache at once
    import threading

    for round in range(5):
        old = result_cache.default_cache()
        assert old is not None and old.lookup("nothing", "") is None  # opened
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / f"xdg{round}"))
        barrier = threading.Barrier(16)
        got: list[ResultCache | None] = []

        def ask() -> None:
            barrier.wait()
            got.append(result_cache.default_cache())

        threads = [threading.Thread(target=ask) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert {id(c) for c in got} == {id(got[0])}
        assert got[0] is not None and got[0].path.startswith(str(tmp_path / f"xdg{round}"))
        assert result_cache.default_cache() is got[0]
