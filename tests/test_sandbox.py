"""The sandboxed loader (``--dynamic``): payloads are refused *and* reported, benign models load.

Every payload test runs on each isolation backend this machine supports (bwrap, the built-in
namespace jail, and the no-namespace Landlock + seccomp fallback); a backend the machine
cannot run is skipped with the probe's reason. Effects are checked from outside: the marker
file, the loopback listener the test owns, the secret's content.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from modelscan_lite.config import Config, SandboxOptions
from modelscan_lite.engine import Policy
from modelscan_lite.model import ArtifactResult
from modelscan_lite.scanner import build_policy, scan_file, scan_paths

from .conftest import SAMPLES

if not sys.platform.startswith("linux"):
    pytest.skip("the sandbox is Linux-only", allow_module_level=True)

from modelscan_lite import sandbox
from modelscan_lite.sandbox import supervisor

sys.path.insert(0, str(SAMPLES))
import make_samples as ms

BACKENDS = [
    pytest.param(
        b, marks=pytest.mark.skipif(bool(supervisor.probe(b)), reason=str(supervisor.probe(b)))
    )
    for b in sandbox.BACKENDS
]
POLICY: Policy = build_policy(Config())


def dynamic(path: Path | str, backend: str = "auto", **opts: object) -> ArtifactResult:
    """Static scan + sandboxed load of one file, as ``scan --dynamic require`` does."""
    static = scan_file(str(path), POLICY, Config())
    options = SandboxOptions(backend=backend, **opts)  # type: ignore[arg-type]
    (result,) = sandbox.run_dynamic([static], POLICY, options)
    return result


def d_rules(result: ArtifactResult) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in result.findings:
        if f.rule.startswith("D"):
            out.setdefault(f.rule, []).append(f.message)
    return out


def run_cli(*args: str) -> tuple[int, str, str]:
    """The CLI in this process, so that a monkeypatched probe reaches it."""
    from typer.testing import CliRunner

    from modelscan_lite.cli import app

    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def payload(tmp_path: Path, name: str, *parts: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(ms.pk(*parts))
    return path


# -- payloads: refused, and reported with the right rule and evidence ----------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_os_system_spawn_is_refused_and_d101(tmp_path: Path, backend: str) -> None:
    marker = tmp_path / "marker-system"
    path = payload(tmp_path, "p.pkl", ms.call("os", "system", ms.U(f"touch {marker}")))
    result = dynamic(path, backend)
    assert not marker.exists()
    (msg,) = d_rules(result)["D101"]
    assert f"sh -c touch {marker}" in msg
    finding = next(f for f in result.findings if f.rule == "D101")
    assert finding.location.path == str(path)
    assert "execve" in (finding.evidence or "") and "os.system" in (finding.evidence or "")
    assert result.dynamic is not None and result.dynamic.backend == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_subprocess_spawn_is_refused_and_d101(tmp_path: Path, backend: str) -> None:
    marker = tmp_path / "marker-subprocess"
    args = ms.EMPTY_LIST + ms.U("touch") + ms.APPEND + ms.U(str(marker)) + ms.APPEND
    path = payload(tmp_path, "p.pkl", ms.call("subprocess", "call", args))
    result = dynamic(path, backend)
    assert not marker.exists()
    assert any(f"touch {marker}" in m for m in d_rules(result)["D101"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctypes_spawn_is_refused_and_d101_d105(tmp_path: Path, backend: str) -> None:
    marker = tmp_path / "marker-ctypes"
    libc_system = ms.call(
        "builtins", "getattr", ms.call("ctypes", "CDLL", ms.U("libc.so.6")), ms.U("system")
    )
    path = payload(
        tmp_path,
        "p.pkl",
        libc_system + ms.MARK + ms.BINBYTES(f"touch {marker}".encode()) + ms.TUPLE + ms.REDUCE,
    )
    result = dynamic(path, backend)
    assert not marker.exists()
    rules = d_rules(result)
    assert any(f"touch {marker}" in m for m in rules["D101"])
    assert any("libc.so.6" in m for m in rules["D105"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_connect_to_loopback_is_refused_and_d102(
    tmp_path: Path, backend: str, listener: tuple[int, list[bytes]]
) -> None:
    port, hits = listener
    addr = ms.MARK + ms.U("127.0.0.1") + ms.BININT(port) + ms.TUPLE
    path = payload(tmp_path, "p.pkl", ms.call("socket", "create_connection", addr))
    result = dynamic(path, backend)
    assert hits == []
    assert any(f"127.0.0.1:{port}" in m and "connect" in m for m in d_rules(result)["D102"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_udp_socket_is_refused_and_d102(tmp_path: Path, backend: str) -> None:
    path = payload(tmp_path, "p.pkl", ms.call("socket", "socket", ms.BININT1(2), ms.BININT1(2)))
    result = dynamic(path, backend)
    assert any("SOCK_DGRAM" in m for m in d_rules(result)["D102"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_write_outside_scratch_is_refused_and_d103(tmp_path: Path, backend: str) -> None:
    marker = tmp_path / "marker-write"
    path = payload(tmp_path, "p.pkl", ms.call("builtins", "open", ms.U(str(marker)), ms.U("w")))
    result = dynamic(path, backend)
    assert not marker.exists()
    assert any(str(marker) in m for m in d_rules(result)["D103"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_secret_read_is_refused_and_d104(tmp_path: Path, backend: str) -> None:
    secret_dir = tmp_path / "home" / ".aws"
    secret_dir.mkdir(parents=True)
    secret = secret_dir / "credentials"
    secret.write_text("aws_secret_access_key = do-not-leak\n")
    # read it, then try to carry it out in the exception message
    read = ms.call(
        "builtins", "getattr", ms.call("builtins", "open", ms.U(str(secret))), ms.U("read")
    )
    path = payload(
        tmp_path / "home",
        "p.pkl",
        ms.call("builtins", "ValueError", read + ms.EMPTY_TUPLE + ms.REDUCE),
    )
    result = dynamic(path, backend)
    assert any(str(secret) in m for m in d_rules(result)["D104"])
    assert "do-not-leak" not in json.dumps(
        [f.message + (f.evidence or "") for f in result.findings]
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_atexit_payload_never_runs_and_is_d106(tmp_path: Path, backend: str) -> None:
    marker = tmp_path / "marker-atexit"
    path = payload(
        tmp_path,
        "p.pkl",
        ms.call("atexit", "register", ms.GLOBAL("os", "system"), ms.U(f"touch {marker}")),
    )
    result = dynamic(path, backend)
    assert not marker.exists()
    assert any(f"touch {marker}" in m for m in d_rules(result)["D106"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_escape_syscall_is_refused_and_d107(tmp_path: Path, backend: str) -> None:
    result = dynamic(payload(tmp_path, "p.pkl", ms.call("os", "setsid")), backend)
    assert any("setsid" in m for m in d_rules(result)["D107"])


# -- the shipped D samples -----------------------------------------------------------------

D_SAMPLES = sorted(SAMPLES.glob("D*/*"))


@pytest.mark.parametrize("sample", D_SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_d_samples(sample: Path) -> None:
    rule = sample.parent.name
    result = dynamic(sample, timeout=15 if rule == "D301" else 120, memory=2048 * 2**20)
    if sample.name.startswith("bad-"):
        assert rule in d_rules(result), result.findings
        assert all(f.location.path == str(sample) for f in result.findings if f.rule == rule)
    else:
        assert not d_rules(result), d_rules(result)


# -- benign real artifacts: load, infer, no D finding ---------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import numpy as np

    root = tmp_path_factory.mktemp("real")
    import torch

    torch.save({"w": torch.randn(4, 4), "b": torch.zeros(4)}, root / "state.pt")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((3, 2), dtype=np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, root / "model.onnx")
    import gguf

    writer = gguf.GGUFWriter(str(root / "model.gguf"), "llama")
    writer.add_block_count(1)
    writer.add_tensor("t", np.ones((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    from transformers import GPT2Config, GPT2Model

    config = GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=50, n_positions=16)
    config.bos_token_id = config.eos_token_id = 0
    GPT2Model(config).save_pretrained(root / "gpt2-tiny")
    import joblib
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit(np.random.default_rng(0).random((20, 3)), [0, 1] * 10)
    joblib.dump(clf, root / "clf.joblib")
    return root


@pytest.mark.parametrize(
    ("name", "loader", "inference"),
    [
        ("state.pt", "torch", False),
        ("model.onnx", "onnx", True),
        ("model.gguf", "gguf", False),
        ("clf.joblib", "pickle", True),
    ],
)
def test_benign_artifacts_load_with_no_dynamic_finding(
    real: Path, name: str, loader: str, inference: bool
) -> None:
    if loader == "onnx":
        pytest.importorskip("onnxruntime")
    result = dynamic(real / name)
    assert result.dynamic is not None
    assert (result.dynamic.status, result.dynamic.loader) == ("done", loader), result.dynamic
    assert not d_rules(result), d_rules(result)
    assert result.dynamic.load is not None and result.dynamic.peak_rss > 0
    assert (result.dynamic.inference is not None) == inference


def test_tiny_transformers_repo_loads_and_infers_with_no_finding(real: Path) -> None:
    report = scan_paths([str(real / "gpt2-tiny")], Config(dynamic="require"))
    repo = next(a for a in report.artifacts if a.format == "hf-repo")
    assert repo.dynamic is not None
    assert (repo.dynamic.status, repo.dynamic.loader) == ("done", "transformers"), repo.dynamic
    assert repo.dynamic.inference is not None
    assert not [f for a in report.artifacts for f in a.findings], report.findings


def test_output_shape_differing_from_the_graph_is_d204(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((3, 2), dtype=np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],  # a lie: [1, 2]
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "liar.onnx")
    result = dynamic(tmp_path / "liar.onnx")
    assert result.dynamic is not None and result.dynamic.status in ("done", "inference")
    if result.dynamic.status == "done":
        (msg,) = d_rules(result)["D204"]
        assert "[1, 2]" in msg and "[1, 5]" in msg
    else:  # onnxruntime itself refused the lie: that is a D202
        assert "D202" in d_rules(result)


def test_missing_loader_is_d901(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a loader the child does not have: the sandboxed load cannot run, which is said, not hidden
    from dataclasses import replace

    from modelscan_lite.formats import registry

    pickle = registry.FORMATS["pickle"]
    monkeypatch.setitem(registry.FORMATS, "pickle", replace(pickle, loader="no-such-loader"))
    path = tmp_path / "ok.pkl"
    path.write_bytes(ms.BENIGN_DICT)
    result = dynamic(path)
    assert "D901" in d_rules(result), result.findings


# -- modes, backends, exit codes ------------------------------------------------------------


def test_require_without_any_backend_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "probe", lambda backend: "no isolation in this test")
    path = tmp_path / "ok.pkl"
    path.write_bytes(ms.BENIGN_DICT)
    # the text report on stdout says it (once); other formats say it on stderr
    code, out, err = run_cli("scan", str(path), "--dynamic", "require")
    assert code == 2
    assert "--dynamic require: no sandbox backend can run here" in out
    code, out, err = run_cli("scan", "-f", "json", str(path), "--dynamic", "require")
    assert code == 2
    assert "--dynamic require: no sandbox backend can run here" in err
    code, out, err = run_cli("scan", str(path), "--dynamic", "auto")
    assert code == 0
    assert "dynamic analysis skipped" in out


def test_findings_still_win_over_require_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "probe", lambda backend: "no isolation in this test")
    path = tmp_path / "bad.pkl"
    path.write_bytes(ms.payload_system())
    code, _, _ = run_cli("scan", str(path), "--dynamic", "require")
    assert code == 1


def test_cli_json_reports_the_sandboxed_run(tmp_path: Path) -> None:
    path = tmp_path / "ok.pkl"
    path.write_bytes(ms.BENIGN_DICT)
    code, out, _ = run_cli("scan", str(path), "--dynamic", "require", "-f", "json")
    assert code == 0
    (art,) = json.loads(out)["artifacts"]
    assert art["dynamic"]["status"] == "done" and art["dynamic"]["loader"] == "pickle"
    assert art["dynamic"]["backend"] in sandbox.BACKENDS


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("backend", BACKENDS)
def test_timeout_kills_the_whole_process_group(tmp_path: Path, backend: str) -> None:
    # fork, then both processes sleep past the deadline: neither may survive it
    path = payload(
        tmp_path,
        "p.pkl",
        ms.call("os", "fork"),
        ms.POP,
        ms.call("time", "sleep", ms.BININT1(30)),
    )
    result = dynamic(path, backend, timeout=1.5)
    assert "D301" in d_rules(result)
    assert _processes_naming(str(path)) == []


def test_unknown_backend_is_a_config_error(tmp_path: Path) -> None:
    code, _, err = run_cli(
        "scan", str(tmp_path), "--dynamic", "auto", "--sandbox-backend", "chroot"
    )
    assert code == 2 and "sandbox-backend" in err


def test_child_environment_is_cleared() -> None:
    env = supervisor._clean_env("/scratch")
    assert not {k for k in env if "TOKEN" in k or k.startswith("AWS")}
    assert env["HOME"] == "/scratch" and env["HF_HUB_OFFLINE"] == "1"
    assert set(os.environ) - set(env)  # nothing of ours leaks through by default
