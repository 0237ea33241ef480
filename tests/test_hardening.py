"""Issue 10, output side: a scanned file cannot act on the terminal of the person reading the
report, an undecodable name cannot crash the report, and a report that cannot be written, or
a scan that is interrupted, never looks like a result.

Each hostile string goes through the whole CLI in a subprocess, as a user would run it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from modelscan_lite.report.neutral import neutralise
from samples.make_samples import GLOBAL, U, payload_system, pk

# window title, clear screen, cursor up + erase line, a fake summary on its own line, BEL,
# a right-to-left override, a C1 CSI
HOSTILE = "x\x1b]0;owned\x07\x1b[2J\x1b[1A\x1b[2K\n0 findings\rPASS\u202etxt.lmth\x9b31m"


def run_cli(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "modelscan_lite", "scan", *args],
        capture_output=True,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def assert_inert(out: bytes) -> None:
    text = out.decode("utf-8")  # never anything the UTF-8 decoder rejects
    for ch in text:
        code = ord(ch)
        assert ch == "\n" or not (
            code < 0x20 or 0x7F <= code <= 0x9F or 0x202A <= code <= 0x202E
        ), f"raw control character {ch!r} in the report"
    for line in text.splitlines():
        assert not line.startswith(("0 findings", "PASS")), line


def test_neutralise_escapes_every_terminal_control() -> None:
    shown = neutralise(HOSTILE + "\udc80")
    assert shown == (
        "x\\x1b]0;owned\\x07\\x1b[2J\\x1b[1A\\x1b[2K\\n0 findings\\rPASS\\u202etxt.lmth"
        "\\x9b31m\\udc80"
    )
    assert neutralise("plain/path/model.bin") == "plain/path/model.bin"


@pytest.mark.parametrize("where", ["global", "member", "filename"])
def test_text_report_is_inert_and_json_exact(tmp_path: Path, where: str) -> None:
    name = "model.pkl"
    if where == "global":
        # STACK_GLOBAL: the names are length-prefixed, so they can hold newlines too
        data = pk(U("evil" + HOSTILE), U("run" + HOSTILE), b"\x93", U("x"), b"\x85R", proto=4)
    elif where == "member":
        buf = tmp_path / "a.zip"
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("w/" + HOSTILE + ".pkl", payload_system())
        data = buf.read_bytes()
        name = "model.zip"
    else:
        data = payload_system()
        name = HOSTILE.replace("/", "_") + ".pkl"
    target = tmp_path / name
    target.write_bytes(data)
    text = run_cli(str(target))
    assert text.returncode == 1
    assert_inert(text.stdout)
    assert_inert(text.stderr)
    # JSON stays exact: the hostile string round-trips unchanged
    out = run_cli("--format", "json", str(target))
    art = json.loads(out.stdout)["artifacts"][0]
    locations = [f["location"] for f in art["findings"]]
    if where == "global":
        assert any(HOSTILE in (loc.get("key") or "") for loc in locations), locations
    elif where == "member":
        assert any((loc.get("member") or "").startswith("w/" + HOSTILE) for loc in locations)
    else:
        assert art["path"] == str(target)


def test_many_files_table_is_inert(tmp_path: Path) -> None:
    """The findings-by-file table is rendered by rich, which reads markup in strings."""
    for i in range(2):
        (tmp_path / f"[link=http:x]{i}\x1b[2J.pkl").write_bytes(payload_system())
    out = run_cli(str(tmp_path))
    assert out.returncode == 1
    assert_inert(out.stdout)
    assert b"[link=http:x]" in out.stdout  # shown, not interpreted


def test_lone_surrogate_in_a_global_does_not_crash(tmp_path: Path) -> None:
    # BINUNICODE with the UTF-8 encoding of U+DC80 (surrogatepass): find_class gets it as is
    bad = b"X" + (4).to_bytes(4, "little") + b"ab\xed\xb2\x80"[:4]
    surrogate = b"X" + (5).to_bytes(4, "little") + b"ab\xed\xb2\x80"
    data = pk(U("mod"), surrogate, b"\x93", U("x"), b"\x85R", proto=4)
    assert bad != surrogate
    target = tmp_path / "s.pkl"
    target.write_bytes(data)
    out = run_cli(str(target))
    assert out.returncode == 1, out.stderr
    assert b"\\udc80" in out.stdout
    report_file = tmp_path / "report.txt"
    out = run_cli("-o", str(report_file), str(target))
    assert out.returncode == 1, out.stderr
    assert b"\\udc80" in report_file.read_bytes()
    js = run_cli("--format", "json", str(target))
    assert json.loads(js.stdout)["artifacts"][0]["findings"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_stdout_on_a_full_device_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    target = tmp_path / "m.pkl"
    target.write_bytes(payload_system())
    with open("/dev/full", "wb") as full:
        out = subprocess.run(
            [sys.executable, "-m", "modelscan_lite", "scan", str(target)],
            stdout=full,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert out.returncode == 2
    assert b"cannot write the report to stdout" in out.stderr
    assert b"Traceback" not in out.stderr


def test_output_file_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "m.pkl"
    target.write_bytes(payload_system())
    report = tmp_path / "report.json"
    report.write_text("previous report\n")
    # a directory where the temp file should go cannot be created: nothing is replaced
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    out = run_cli("--format", "json", "-o", str(blocked / "report.json"), str(target))
    assert out.returncode == 2 and b"cannot write" in out.stderr
    assert not (blocked.parent / "report.json.tmp").exists()
    ok = run_cli("--format", "json", "-o", str(report), str(target))
    assert ok.returncode == 1
    assert json.loads(report.read_text())["artifacts"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report")] == []


def test_sigint_exits_130_with_no_report(tmp_path: Path) -> None:
    # a pickle long enough to be walking when the signal arrives
    body = b"".join(
        b"}" + U(f"k{i}") + GLOBAL("collections", "OrderedDict") + b"s0" for i in range(300_000)
    )
    target = tmp_path / "big.pkl"
    target.write_bytes(b"\x80\x04" + body + b"N.")
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelscan_lite", "scan", "--format", "json", str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, stderr[-500:])
    assert stdout == b""
    assert b"interrupted: no report was written" in stderr


# -- silent passes in normal use ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "what"),
    [
        (
            "model.safetensors",
            b"version https://git-lfs.github.com/spec/v1\noid sha256:ab12\nsize 548118077\n",
            "Git LFS pointer (oid sha256:ab12, size 548118077)",
        ),
        ("pytorch_model.bin", b"", "an empty file"),
        ("model.onnx", b"\n  <!doctype HTML>\n<title>404</title>", "an HTML page"),
        ("model.gguf", b'{"error": "Repository not found"}', "a JSON document"),
    ],
)
def test_placeholder_instead_of_a_model_fails(
    tmp_path: Path, name: str, data: bytes, what: str
) -> None:
    target = tmp_path / name
    target.write_bytes(data)
    out = run_cli("--format", "json", str(target))
    assert out.returncode == 1, out.stdout
    finding = json.loads(out.stdout)["artifacts"][0]["findings"][0]
    assert finding["rule"] == "X203" and what in finding["message"]


def test_real_text_files_are_not_placeholders(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "README.md").write_text("# model card\n")
    out = run_cli(str(tmp_path))
    assert out.returncode == 0, out.stdout


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--select", "Z999"], b"'Z999' names no rule"),
        (["--ignore", "P1O1"], b"did you mean"),
    ],
)
def test_rule_id_typos_are_errors(tmp_path: Path, args: list[str], expect: bytes) -> None:
    target = tmp_path / "m.pkl"
    target.write_bytes(payload_system())
    out = run_cli(*args, str(target))
    assert out.returncode == 2 and expect in out.stderr, out.stderr


def test_config_typos_and_broken_toml_are_errors(tmp_path: Path) -> None:
    target = tmp_path / "m.pkl"
    target.write_bytes(payload_system())
    (tmp_path / "pyproject.toml").write_text('[tool.modelscan-lite]\nseverity = { P10l = "low" }\n')
    out = run_cli(str(target), cwd=tmp_path)
    assert out.returncode == 2 and b"P10L" in out.stderr, out.stderr
    (tmp_path / "pyproject.toml").write_text("[tool.modelscan-lite\nfail-on = never\n")
    out = run_cli(str(target), cwd=tmp_path)
    assert out.returncode == 2 and b"pyproject.toml" in out.stderr, out.stderr


# -- nothing met while walking a folder is dropped ----------------------------------------


def _walk_report(folder: Path) -> tuple[int, dict[str, object]]:
    out = run_cli("--format", "json", str(folder))
    return out.returncode, json.loads(out.stdout)


def test_dangling_link_fifo_and_outside_link_are_errors(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "ok.json").write_text("{}")
    (repo / "gone.bin").symlink_to(repo / "missing.bin")
    (repo / "loop.bin").symlink_to(repo / "loop.bin")
    os.mkfifo(repo / "pipe.pkl")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "evil.pkl").write_bytes(payload_system())
    (repo / "weights").symlink_to(outside)
    code, report = _walk_report(repo)
    errors = "\n".join(report["errors"])  # type: ignore[arg-type]
    assert code == 2, report
    assert "gone.bin: dangling or looping symbolic link" in errors
    assert "loop.bin: dangling or looping symbolic link" in errors
    assert "pipe.pkl: not a regular file or directory (FIFO)" in errors
    assert f"weights: directory link leaves the scanned folder, to {outside}" in errors


def test_link_to_root_is_not_a_walk_of_the_machine(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "everything").symlink_to("/")
    code, report = _walk_report(repo)
    assert code == 2
    assert len(report["artifacts"]) == 0  # type: ignore[arg-type]


def test_link_inside_the_folder_is_named_and_scanned_once(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "real").mkdir(parents=True)
    (repo / "real" / "evil.pkl").write_bytes(payload_system())
    (repo / "alias").symlink_to(repo / "real")
    (repo / "real" / "up").symlink_to(repo)  # a loop
    code, report = _walk_report(repo)
    assert code == 1
    paths = [a["path"] for a in report["artifacts"]]  # type: ignore[index]
    assert paths == [str(repo / "real" / "evil.pkl")]
    notes = "\n".join(report["notes"])  # type: ignore[arg-type]
    assert "alias: directory link to" in notes and "up: directory link to" in notes


def _drop_file_read_override() -> None:
    """In the child, before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the
    bounding set, so even root obeys file modes (root reads anything otherwise, and an
    unreadable entry could not be tested as root)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")


def test_unreadable_directory_and_file_are_errors(tmp_path: Path) -> None:
    """Run as root too (as CI does), with the capabilities that bypass file modes dropped."""
    drop = {"preexec_fn": _drop_file_read_override} if os.geteuid() == 0 else {}
    repo = tmp_path / "repo"
    (repo / "locked").mkdir(parents=True)
    (repo / "locked" / "evil.pkl").write_bytes(payload_system())
    (repo / "secret.pkl").write_bytes(payload_system())
    (repo / "locked").chmod(0)
    (repo / "secret.pkl").chmod(0)
    try:
        out = run_cli("--format", "json", str(repo), cwd="/", **drop)
    finally:
        (repo / "locked").chmod(0o755)
    report = json.loads(out.stdout)
    errors = "\n".join(report["errors"])
    assert out.returncode == 2, report
    assert f"{repo / 'locked'}: cannot read this directory (Permission denied)" in errors
    assert f"{repo / 'secret.pkl'}" in errors and "Permission denied" in errors


def test_path_longer_than_the_system_limit_is_an_error(tmp_path: Path) -> None:
    """A tree deeper than PATH_MAX (4096 bytes) cannot be opened by name: the scan says which
    folder it could not read, and never exits 0."""
    fd = os.open(tmp_path, os.O_RDONLY)
    depth = 0
    try:
        while depth * 201 < 4300:
            os.mkdir("d" * 200, dir_fd=fd)
            inner = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, depth = inner, depth + 1
        with open(os.open("evil.pkl", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
            f.write(payload_system())
    finally:
        os.close(fd)
    code, report = _walk_report(tmp_path)
    errors = "\n".join(report["errors"])  # type: ignore[arg-type]
    assert code == 2, report
    assert "cannot read this directory (File name too long)" in errors, errors


def test_per_path_ignores_are_anchored_to_the_config_folder(tmp_path: Path) -> None:
    """Like ruff: a glob with a ``/`` is relative to the folder of the pyproject.toml that
    holds it, whatever the working directory; a glob without one matches file names."""
    project = tmp_path / "project"
    for folder in ("vendor", "src/vendor", "sub"):
        (project / folder).mkdir(parents=True)
    for name in ("vendor/evil.pkl", "src/vendor/evil.pkl", "sub/fixture.pkl"):
        (project / name).write_bytes(payload_system())
    (project / "pyproject.toml").write_text(
        '[tool.modelscan-lite]\nper-path-ignores = { "vendor/*" = ["P1"], "fixture.pkl" = ["P"] }\n'
    )

    def failing(cwd: Path, *args: str) -> list[str]:
        out = run_cli("--format", "json", *args, cwd=cwd)
        report = json.loads(out.stdout)
        return sorted(
            os.path.relpath(os.path.join(cwd, a["path"]), project)
            for a in report["artifacts"]
            if any(f["rule"].startswith("P1") for f in a["findings"])
        )

    # from the project, from a sub-folder (config found above), and from elsewhere via --config
    assert failing(project, ".") == ["src/vendor/evil.pkl"]
    assert failing(project / "sub", "..") == ["src/vendor/evil.pkl"]
    assert failing(tmp_path, "--config", str(project / "pyproject.toml"), "project") == [
        "src/vendor/evil.pkl"
    ]


def test_long_protocol0_text_argument_is_read_through(tmp_path: Path) -> None:
    """Python's unpickler has no limit on a text argument: a valid protocol-0 pickle with a
    3 MiB STRING and a 200 KB INT is not broken, and what follows is still analysed."""
    long_string = b"S'" + b"a" * (3 << 20) + b"'\n"
    long_int = b"I" + b"9" * 200_000 + b"\n"
    benign = b"(" + long_string + long_int + b"l."
    target = tmp_path / "long.pkl"
    target.write_bytes(benign)
    out = run_cli("--format", "json", str(target))
    assert out.returncode == 0, out.stdout[-800:]
    payload = b"(" + long_string + b"0" + GLOBAL("posix", "system") + b"(S'touch x'\ntR."
    target.write_bytes(payload)
    out = run_cli("--format", "json", str(target))
    findings = json.loads(out.stdout)["artifacts"][0]["findings"]
    hit = [f for f in findings if f["rule"] == "P101"]
    assert hit and hit[0]["location"]["offset"] == len(b"(" + long_string + b"0")
    assert not [f for f in findings if f["rule"] == "P201"]


def test_unrecognised_content_in_a_compression_layer_is_reported(tmp_path: Path) -> None:
    """Marshal data (or any serializer the scanner does not know) inside a gzip stream is
    reported whatever the file is called: X204 (low) when the name promises nothing, X201
    when it is named like a model."""
    import gzip
    import marshal

    code = marshal.dumps(compile("print('loaded')", "x", "exec"))
    target = tmp_path / "data.gz"
    target.write_bytes(gzip.compress(code, mtime=0))
    out = run_cli("--format", "json", str(target))
    findings = json.loads(out.stdout)["artifacts"][0]["findings"]
    assert [f["rule"] for f in findings] == ["X204"]
    assert findings[0]["location"]["member"] == "<gzip>"
    # under a model name the same content fails (X201)
    named = tmp_path / "model.pkl.gz"
    named.write_bytes(gzip.compress(code, mtime=0))
    out = run_cli("--format", "json", str(named))
    assert out.returncode == 1
    assert [f["rule"] for f in json.loads(out.stdout)["artifacts"][0]["findings"]] == ["X201"]
    plain = tmp_path / "notes.txt.gz"
    plain.write_bytes(gzip.compress(b"just some text\n", mtime=0))
    assert run_cli(str(plain)).returncode == 0


def test_missing_fickling_is_said_not_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without fickling (a broken install) the verdict stands, the evidence says why it is
    only the scanner's summary, and the report's notes say it once."""
    from modelscan_lite.config import Config
    from modelscan_lite.scanner import scan_paths

    target = tmp_path / "m.pkl"
    target.write_bytes(payload_system())
    monkeypatch.setitem(sys.modules, "fickling.fickle", None)  # import raises ImportError
    report = scan_paths([str(target)], Config(jobs=1))
    (finding,) = [f for f in report.artifacts[0].findings if f.rule == "P101"]
    first, *rest = (finding.evidence or "").splitlines()
    assert first.startswith("# fickling is not importable") and "pip install fickling" in first
    assert any("system(" in line for line in rest), finding.evidence
    assert any(n.startswith("fickling is not importable") for n in report.notes), report.notes


# -- the Hugging Face cache layout: files judged by their snapshot name ---------------------


def _onnx_with_external_data(folder: Path) -> dict[str, bytes]:
    """model.onnx + model.onnx_data as the torch exporter and Optimum write them."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])
    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 4], b"\0\0\x80?" * 16, raw=True)
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "g", [x], [y], [w])
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(
        helper.make_model(graph),
        folder / "model.onnx",
        save_as_external_data=True,
        location="model.onnx_data",
        size_threshold=0,
    )
    return {name: (folder / name).read_bytes() for name in ("model.onnx", "model.onnx_data")}


def _cache_report(cache: Path, *args: str) -> tuple[int, dict[str, object]]:
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    out = run_cli("--format", "json", *args, env=env)
    return out.returncode, json.loads(out.stdout)


def _rules_at(report: dict[str, object], suffix: str) -> set[str]:
    return {
        f["rule"]
        for a in report["artifacts"]  # type: ignore[attr-defined]
        for f in a["findings"]
        if f["location"]["path"].endswith(suffix)
    }


def test_onnx_external_data_resolves_through_the_snapshot(tmp_path: Path) -> None:
    from .helpers import add_cached_repo

    files = _onnx_with_external_data(tmp_path / "export")
    cache = tmp_path / "hub"
    add_cached_repo(cache, "org/onnx", [("a" * 40, files, "main")])
    snapshot = cache / "models--org--onnx" / "snapshots" / ("a" * 40)
    for args in ([str(snapshot)], ["--hf-cache"]):
        code, report = _cache_report(cache, *args)
        assert code == 0 and not _rules_at(report, "model.onnx"), (args, report)


def test_onnx_external_data_leaving_the_cached_repo_is_still_an_escape(tmp_path: Path) -> None:
    from .helpers import add_cached_repo

    files = _onnx_with_external_data(tmp_path / "export")
    cache = tmp_path / "hub"
    add_cached_repo(cache, "org/onnx", [("a" * 40, {"model.onnx": files["model.onnx"]}, "main")])
    add_cached_repo(cache, "org/other", [("b" * 40, {"x": files["model.onnx_data"]}, "main")])
    snapshot = cache / "models--org--onnx" / "snapshots" / ("a" * 40)
    other_blob = next((cache / "models--org--other" / "blobs").iterdir())
    (snapshot / "model.onnx_data").symlink_to(other_blob)  # another repo's blob
    code, report = _cache_report(cache, str(snapshot))
    assert code == 1 and "O401" in _rules_at(report, "model.onnx"), report
    code, report = _cache_report(cache, "--hf-cache")
    assert code == 1 and "H405" in _rules_at(report, "model.onnx_data"), report


@pytest.mark.parametrize(
    "name, content, rule",
    [
        ("model.safetensors", payload_system(), "A203"),  # a pickle under a safe name
        ("pytorch_model.bin", b"\x07" * 4096, "X201"),  # unknown bytes under a model name
    ],
)
def test_cache_files_are_judged_by_their_snapshot_name(
    tmp_path: Path, name: str, content: bytes, rule: str
) -> None:
    """The same file fails the same way in a folder scan and from --hf-cache."""
    from .helpers import add_cached_repo

    cache = tmp_path / "hub"
    add_cached_repo(cache, "org/m", [("a" * 40, {name: content}, "main")])
    snapshot = cache / "models--org--m" / "snapshots" / ("a" * 40)
    for args in ([str(snapshot)], ["--hf-cache"]):
        code, report = _cache_report(cache, *args)
        assert code == 1 and rule in _rules_at(report, name), (args, report)


def test_a_global_with_thousands_of_dots_is_matched_in_linear_time(tmp_path: Path) -> None:
    """Found by the fuzz campaign: every tail of a file-chosen dotted name made rule matching
    quadratic (a 40 KB pickle ran for minutes). Tails now start near the end, where what a
    chain resolves to is named, so a long chain still ends in what it calls."""
    from modelscan_lite.engine import MAX_TAIL_COMPONENTS, dotted_tails

    chain = ".".join(["path", "os"] * 20_000 + ["system"])
    tails = dotted_tails("os." + chain)
    assert len(tails) <= 2 * MAX_TAIL_COMPONENTS + 1
    assert sum(map(len, tails[1:])) < 200 * MAX_TAIL_COMPONENTS
    target = tmp_path / "chain.pkl"
    target.write_bytes(pk(GLOBAL("os", chain) + U("id") + b"\x85R"))
    out = run_cli("--format", "json", str(target))
    rules = {f["rule"] for a in json.loads(out.stdout)["artifacts"] for f in a["findings"]}
    assert out.returncode == 1 and "P101" in rules, rules
