"""Scale-out on Dask (``scan --executor dask``, :mod:`modelscan_lite.fleet`), with real
``distributed.LocalCluster``s of process workers.

Everything that talks to a Dask client runs in a subprocess: a client unpickles what its
workers send back, and the in-process tripwire (conftest) forbids ``pickle.loads`` in the test
process. The scans themselves run in the worker processes, which are never the test's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelscan_lite.config import Config, ConfigError, from_table
from modelscan_lite.executors import ExecutorError
from modelscan_lite.fleet import FleetError, scan_fleet
from modelscan_lite.report.json_report import artifact_dict
from modelscan_lite.scanner import scan_paths
from samples.make_samples import BENIGN_DICT, payload_system

from .conftest import ROOT, run_cli

pytest.importorskip("distributed")

TIME_KEYS = {"seconds"}


def _normalised(text: str) -> Any:
    """A JSON report with its times zeroed (the only part two scans may differ in)."""

    def walk(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: 0 if k in TIME_KEYS else walk(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        return obj

    return walk(json.loads(text))


def _python(code: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dask_report_is_the_local_report() -> None:
    """The whole samples tree on a LocalCluster of 2 process workers: the same JSON report,
    findings, order and exit code, as the local process pool."""
    local = run_cli("scan", "samples", "-f", "json", "-j", "2")
    dask = run_cli("scan", "samples", "-f", "json", "-j", "2", "--executor", "dask")
    assert local.returncode == 1, local.stderr
    assert dask.returncode == local.returncode, dask.stderr
    assert dask.stderr == local.stderr  # no Dask log lines on stderr either
    report = _normalised(dask.stdout)
    assert report == _normalised(local.stdout)
    assert len(report["artifacts"]) > 100 and report["summary"]["failing"] > 0


CLUSTER = """
    import sys
    from distributed import LocalCluster

    if __name__ == "__main__":
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        print(cluster.scheduler_address, flush=True)
        sys.stdin.readline()  # the test says when the scan is over
        print(" ".join(sorted(cluster.scheduler.task_prefixes)), flush=True)
        cluster.close()
"""


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A LocalCluster in another process, started in another folder than the scans (its
    workers' working directory is not the client's)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CLUSTER)],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    address = proc.stdout.readline().strip()
    assert address.startswith("tcp://"), address
    try:
        yield address, proc
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdin.close()
        proc.stdout.close()


def test_explicit_scheduler_through_the_cli(
    scheduler: tuple[str, subprocess.Popen[str]],
) -> None:
    address, proc = scheduler
    args = ("scan", "samples/P101", "samples/H101", "samples/S201", "-f", "json")
    dask = run_cli(*args, "--executor", "dask", "--scheduler", address)
    local = run_cli(*args, "-j", "1")
    assert dask.returncode == local.returncode == 1, dask.stderr
    assert dask.stderr == local.stderr == ""
    assert _normalised(dask.stdout) == _normalised(local.stdout)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("done\n")
    proc.stdin.flush()
    assert "scan_batch" in proc.stdout.readline().split()  # the cluster did the scanning


def test_scheduler_needs_the_dask_executor_and_must_be_reachable() -> None:
    alone = run_cli("scan", "samples/P101", "--scheduler", "tcp://127.0.0.1:9")
    assert alone.returncode == 2
    assert "--scheduler needs --executor dask" in alone.stderr
    assert alone.stdout == ""
    bad = run_cli("scan", "samples/P101", "--executor", "nope")
    assert bad.returncode == 2 and "--executor must be one of local, dask" in bad.stderr


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocked = """
        import sys
        sys.modules["distributed"] = None  # as if dask[distributed] were not installed
        sys.argv = ["modelscan-lite", *sys.argv[1:]]
        from modelscan_lite.cli import main
        main()
    """
    run = _python(blocked, "scan", "samples/P101", "--executor", "dask")
    assert run.returncode == 2, run.stderr
    assert "pip install 'modelscan-lite[dask]'" in run.stderr
    assert run.stdout == ""
    # the API says it too, before anything is scanned
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ExecutorError, match=r"modelscan-lite\[dask\]"):
        scan_fleet([str(ROOT / "samples/P101")], tmp_path / "out", executor="dask")
    assert not list((tmp_path / "out").glob("part-*"))


def test_progress_arrives_with_results_on_dask() -> None:
    code = """
        import json
        from modelscan_lite.config import Config
        from modelscan_lite.scanner import scan_paths

        if __name__ == "__main__":
            calls = []
            report = scan_paths(
                ["samples/P101"], Config(executor="dask", jobs=2),
                lambda *a: calls.append(list(a)),
            )
            print(json.dumps({"files": len(report.artifacts), "calls": calls}))
    """
    run = _python(code)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    calls, files = out["calls"], out["files"]
    assert calls[-1][0] is None and calls[-1][1] == calls[-1][2] == files
    done = [c[1] for c in calls[:-1]]
    assert done == list(range(1, files + 1))  # one call per file, as each result arrives
    assert all(c[3] <= c[4] for c in calls) and calls[-1][3] == calls[-1][4] > 0


def test_config_key_executor() -> None:
    assert from_table({"executor": "dask"}, "p.toml").executor == "dask"
    with pytest.raises(ConfigError, match="executor must be one of local, dask"):
        from_table({"executor": "spark"}, "p.toml")


# ------------------------------------------------------------------------------ fleet


def _fleet_targets(tmp_path: Path) -> list[str]:
    a, b = tmp_path / "repo-a", tmp_path / "repo-b"
    (a / "sub").mkdir(parents=True)
    b.mkdir()
    (a / "sub" / "evil.pkl").write_bytes(payload_system())
    for i in range(3):
        (a / f"ok{i}.pkl").write_bytes(BENIGN_DICT)
    (b / "model.pkl").write_bytes(BENIGN_DICT)
    (tmp_path / "single.pkl").write_bytes(payload_system())
    return [str(a), str(b), str(tmp_path / "missing"), str(tmp_path / "single.pkl")]


def _rows(out: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for part in sorted(out.glob("part-*.jsonl"))
        for line in part.read_text().splitlines()
    ]


def test_fleet_writes_partitions(tmp_path: Path) -> None:
    targets = _fleet_targets(tmp_path)
    out = tmp_path / "out"
    summary = scan_fleet(targets, out, partition_size=2)
    # the rows are the JSON report's artifacts, target by target, plus the target
    expected = [
        {"target": t, **artifact_dict(a)}
        for t in targets
        for a in scan_paths([t], Config(jobs=1)).artifacts
    ]
    rows = _rows(out)
    assert rows == expected and len(rows) == 6
    assert [Path(p).name for p in summary.partitions] == [
        "part-00000.jsonl",
        "part-00001.jsonl",
        "part-00002.jsonl",
    ]
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        *(Path(p).name for p in summary.partitions),
    ]  # no temp file left
    assert [r["path"] for r in rows if r["findings"]] == [targets[0] + "/sub/evil.pkl", targets[3]]
    assert summary.artifacts == 6 and summary.failing == 2
    # a target that cannot be scanned has no rows, and is in the summary and manifest
    assert summary.errors == (f"{targets[2]}: no such file or directory",)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["totals"] == {
        "targets": 4,
        "artifacts": 6,
        "findings": summary.findings,
        "failing": 2,
        "errors": 1,
    }
    assert manifest["targets"][2]["errors"] == list(summary.errors)
    assert manifest["partitions"] == [Path(p).name for p in summary.partitions]
    # an output folder is used once: no mix of two runs' partitions
    with pytest.raises(FleetError, match="earlier run"):
        scan_fleet(targets, out)


def test_fleet_refuses_bad_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = str(tmp_path)
    with pytest.raises(FleetError, match="fmt must be one of jsonl, parquet"):
        scan_fleet([good], tmp_path / "b", fmt="csv")
    with pytest.raises(FleetError, match="partition_size"):
        scan_fleet([good], tmp_path / "c", partition_size=0)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(FleetError, match="Parquet output needs pyarrow"):
        scan_fleet([good], tmp_path / "d", fmt="parquet")
    for folder in "bcd":  # refused before anything was written
        assert not (tmp_path / folder).exists() or not any((tmp_path / folder).iterdir())


def test_fleet_parquet(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    targets = _fleet_targets(tmp_path)
    scan_fleet(targets, tmp_path / "jsonl", partition_size=4)
    summary = scan_fleet(targets, tmp_path / "pq", partition_size=4, fmt="parquet")
    rows = [r for p in summary.partitions for r in pq.read_table(p).to_pylist()]
    for row in rows:  # the JSON objects have "dynamic" only after a --dynamic run
        if row["dynamic"] is None:
            del row["dynamic"]
        else:
            row["dynamic"] = json.loads(row["dynamic"])
    assert rows == _rows(tmp_path / "jsonl")


def test_fleet_on_dask_writes_the_local_rows(tmp_path: Path) -> None:
    targets = _fleet_targets(tmp_path)
    scan_fleet(targets, tmp_path / "local", partition_size=4)
    code = """
        import sys
        from modelscan_lite.fleet import scan_fleet

        if __name__ == "__main__":
            s = scan_fleet(sys.argv[2:], sys.argv[1], executor="dask", partition_size=4)
            print(s.artifacts, s.failing, len(s.errors))
    """
    run = _python(code, str(tmp_path / "dask"), *targets)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["6", "2", "1"]
    for name in ("part-00000.jsonl", "part-00001.jsonl"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    local = json.loads((tmp_path / "local" / "manifest.json").read_text())
    dask = json.loads((tmp_path / "dask" / "manifest.json").read_text())
    assert dask["executor"] == "dask"
    assert dask["targets"] == local["targets"]
