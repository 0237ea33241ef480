"""PyTorch programs: TorchScript ``code/``, ``torch.package``, ``torch.export`` ``.pt2``.

Each rule test names the rule, the member and the evidence. The benign fixtures under
``tests/data/formats/torch/`` were made by the real torch (``scripts/make_torch_fixtures.py``);
torch is not needed here.
"""

from __future__ import annotations

import io
import random
import time
from pathlib import Path

import pytest

from modelscan_lite.formats.base import Context
from modelscan_lite.formats.streams import BytesSource, DecompressBudget
from modelscan_lite.formats.torchscript import analyse_code, scan_torchscript_code, torch_ops
from modelscan_lite.limits import Deadline, Limits
from modelscan_lite.model import Location, Severity
from samples.formats import torch as build

from .helpers import find, rules_of, scan, scan_bytes

# the pickle suite runs on both walkers: the pure-Python reference and the compiled core
pytestmark = pytest.mark.usefixtures("walker")

FIXTURES = Path(__file__).parent / "data" / "formats" / "torch"
CLEAN = ["scripted-module.pt", "traced-module.pt", "scripted-function.pt",
         "package-extern-only.pt", "exported.pt2"]  # fmt: skip


def _failing(result: object) -> list[tuple[str, str]]:
    return [
        (f.rule, f.message)
        for f in result.findings  # type: ignore[attr-defined]
        if f.severity >= Severity.MEDIUM
    ]


@pytest.mark.parametrize("name", CLEAN)
def test_real_library_fixtures_are_clean(name: str) -> None:
    result = scan(FIXTURES / name)
    assert result.error is None
    assert not _failing(result), _failing(result)
    assert result.format in ("torchscript", "torch-package", "pt2")


def test_package_with_interned_source_is_code_by_design() -> None:
    result = scan(FIXTURES / "package-with-source.pt")
    assert result.format == "torch-package"
    hit = find(result, "T107", "package-with-source/fixture_net.py")
    assert "class Net(torch.nn.Module)" in (hit.evidence or "")
    assert rules_of(result) <= {"T107", "P105"}


def test_fixture_code_members_are_routed_and_parsed() -> None:
    result = scan(FIXTURES / "traced-module.pt")
    assert result.format == "torchscript"
    assert not result.findings


# -- TorchScript code ----------------------------------------------------------------------


def test_from_file_in_code(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, build.torchscript_samples()["T101/bad-from-file.pt"], "m.pt")
    hit = find(result, "T101", "model/code/__torch__.py")
    assert hit.severity is Severity.CRITICAL
    assert "aten::from_file" in hit.message
    assert hit.location.key == "line 19"
    assert 'torch.from_file("/etc/passwd"' in (hit.evidence or "")


@pytest.mark.parametrize(
    "sample, via",
    [
        ("T101/bad-save-method.pt", "method call"),
        ("T101/bad-save-in-unparseable-code.pt", "text"),
        ("T101/bad-getattr-from-file.pt", "getattr"),
    ],
)
def test_file_ops_however_written(tmp_path: Path, sample: str, via: str) -> None:
    result = scan_bytes(tmp_path, build.torchscript_samples()[sample], "m.pt")
    hit = find(result, "T101", "model/code/__torch__.py")
    assert f"({via})" in hit.message


def test_load_library_custom_ops_rpc_unregistered(tmp_path: Path) -> None:
    s = build.torchscript_samples()
    hit = find(scan_bytes(tmp_path, s["T102/bad-load-library.pt"], "a.pt"), "T102")
    assert "ops.load_library" in hit.message and hit.location.key == "line 19"
    hit = find(scan_bytes(tmp_path, s["T103/bad-custom-op.pt"], "b.pt"), "T103")
    assert "sample_ops::decrypt" in hit.message
    assert "ops.sample_ops.decrypt" in (hit.evidence or "")
    hit = find(scan_bytes(tmp_path, s["T103/bad-custom-class.pt"], "c.pt"), "T103")
    assert (
        "__torch__.torch.classes.sample_ns.Secret" in hit.message and hit.location.key == "line 8"
    )
    hit = find(scan_bytes(tmp_path, s["T104/bad-rpc.pt"], "d.pt"), "T104")
    assert "prim::rpc_async" in hit.message
    result = scan_bytes(tmp_path, s["T105/bad-unregistered-aten-op.pt"], "e.pt")
    assert find(result, "T105").severity is Severity.LOW
    assert rules_of(result) == {"T105"}


@pytest.mark.parametrize(
    "sample, text",
    [
        ("T201/bad-syntax.pt", "does not parse"),
        ("T201/bad-not-utf8.pt", "not UTF-8"),
        ("T201/bad-constant-reference.pt", "CONSTANTS.x0"),
    ],
)
def test_malformed_code(tmp_path: Path, sample: str, text: str) -> None:
    result = scan_bytes(tmp_path, build.torchscript_samples()[sample], "m.pt")
    assert text in find(result, "T201", "model/code/__torch__.py").message


def test_real_code_has_no_op_findings() -> None:
    found, problem = analyse_code(build.TS_MAIN + build.TS_LINEAR, torch_ops())
    assert problem is None and not found.hits


def test_op_list_is_generated_from_torch() -> None:
    ops = torch_ops()
    assert "aten::from_file" in ops.file_ops and "aten::save" in ops.file_ops
    assert {"aten", "prim", "quantized", "higher_order"} <= set(ops.namespaces)
    assert "linear" in ops.namespaces["aten"]
    assert ops.classify("aten", "add") is None
    assert ops.classify("torchvision", "nms") == (
        "torch.custom-op",
        "namespace `torchvision` is not PyTorch's own",
    )


def _ctx() -> Context:
    return Context(Limits(), Deadline(30), DecompressBudget(1 << 30, 1000))


def test_code_budget() -> None:
    ctx = _ctx()
    data = b"x = 1\n" * ((2 << 20) // 6 + 10) + b"torch.save(x, p)\n"
    scan_torchscript_code(BytesSource(data), data[:4096], Location("m"), ctx, "code/a.py", None)
    assert [f.value for f in ctx.facts] == ["budget-member-size", "aten::save"]
    ctx = _ctx()
    data = b"x = 1\n" * ((16 << 20) // 6 + 10)
    scan_torchscript_code(BytesSource(data), data[:4096], Location("m"), ctx, "code/a.py", None)
    assert [f.value for f in ctx.facts] == ["budget-member-size"]


def test_many_names_scan_in_linear_time() -> None:
    text = "def f(x: Tensor):\n" + "  y = torch.add(x, x)  # torch.mul\n" * 30_000
    started = time.perf_counter()
    found, _ = analyse_code(text, torch_ops())
    assert not found.hits
    assert time.perf_counter() - started < 20


# -- torch.package ------------------------------------------------------------------------


def test_package_code_and_dangerous_calls(tmp_path: Path) -> None:
    s = build.package_samples()
    result = scan_bytes(tmp_path, s["T108/bad-os-system.pt"], "p.pt")
    assert result.format == "torch-package"
    hit = find(result, "T108", "package/net.py")
    assert "os.system" in hit.message and hit.location.key == "line 9"
    assert "os.system(" in (hit.evidence or "")
    code = find(result, "T107", "package/net.py")
    assert "class Net(torch.nn.Module)" in (code.evidence or "")
    hit = find(scan_bytes(tmp_path, s["T108/bad-getattr-import.pt"], "q.pt"), "T108")
    assert "computed name" in hit.message or "__import__" in hit.message


def test_package_externs(tmp_path: Path) -> None:
    s = build.package_samples()
    hit = find(scan_bytes(tmp_path, s["T109/bad-extern-subprocess.pt"], "p.pt"), "T109")
    assert "subprocess" in hit.message and hit.location.key == "line 3"
    assert hit.location.member == "package/.data/extern_modules"
    hit = find(scan_bytes(tmp_path, s["T202/bad-extern-list.pt"], "q.pt"), "T202")
    assert "os; rm -rf" in hit.message


def test_package_without_code_is_clean(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, build.package_samples()["T107/ok-extern-only.pt"], "p.pt")
    assert result.format == "torch-package" and not result.findings


# -- .pt2 ---------------------------------------------------------------------------------


def test_pt2_graph_targets(tmp_path: Path) -> None:
    s = build.pt2_samples()
    hit = find(scan_bytes(tmp_path, s["T106/bad-os-system-target.pt2"], "a.pt2"), "T106")
    assert hit.location.member == "model/models/model.json"
    assert hit.location.key == "graph.nodes[3]"
    assert "torch.serialization.os.system" in (hit.evidence or "")
    hit = find(scan_bytes(tmp_path, s["T106/bad-target-in-cond-branch.pt2"], "b.pt2"), "T106")
    assert hit.location.key == "graph.nodes[3].graph.nodes[0]"
    hit = find(scan_bytes(tmp_path, s["T101/bad-pt2-from-file.pt2"], "c.pt2"), "T101")
    assert "aten::from_file" in hit.message
    hit = find(scan_bytes(tmp_path, s["T103/bad-pt2-custom-op.pt2"], "d.pt2"), "T103")
    assert "sample_ops::decrypt" in hit.message


def test_pt2_pickled_paths(tmp_path: Path) -> None:
    s = build.pt2_samples()
    result = scan_bytes(tmp_path, s["P101/bad-pt2-pickled-weight.pt2"], "a.pt2")
    assert find(result, "P101", "model/data/weights/weight_0")
    result = scan_bytes(tmp_path, s["P101/bad-pt2-opaque-constant.pt2"], "b.pt2")
    assert find(result, "P101", "model/data/constants/opaque_obj_0")


def test_pt2_raw_weights_are_not_sniffed(tmp_path: Path) -> None:
    # raw tensor bytes that look like text, a word2vec header, or a pickle prefix fragment
    for weight in (b"12 3\n" * 20, b"]q\x00(" + bytes(60), b"(lp0\n" + bytes(40)):
        result = scan_bytes(tmp_path, build.pt2(weight=weight), "w.pt2")
        assert result.format == "pt2"
        assert not result.findings, [(f.rule, f.message) for f in result.findings]


def test_pt2_native_and_malformed(tmp_path: Path) -> None:
    s = build.pt2_samples()
    hit = find(scan_bytes(tmp_path, s["T110/bad-aoti-shared-object.pt2"], "a.pt2"), "T110")
    assert "ELF" in hit.message
    hit = find(scan_bytes(tmp_path, s["T203/bad-program-not-json.pt2"], "b.pt2"), "T203")
    assert "not JSON" in hit.message


# -- robustness ---------------------------------------------------------------------------


def _all_samples() -> list[bytes]:
    made = build.samples()
    return [made[k] for k in sorted(made)][::3] + [(FIXTURES / n).read_bytes() for n in CLEAN]


def test_fuzz_truncations_and_mutations(tmp_path: Path) -> None:
    rng = random.Random(1234)
    started = time.perf_counter()
    for n, data in enumerate(_all_samples()):
        cases = [data[: rng.randrange(1, len(data))] for _ in range(3)]
        for _ in range(4):
            b = bytearray(data)
            for _ in range(rng.randrange(1, 12)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            cases.append(bytes(b))
        for i, case in enumerate(cases):
            result = scan_bytes(tmp_path, case, f"f{n}-{i}.pt")
            assert result.error is None, result.error
            assert all(f.rule != "X904" for f in result.findings), result.findings
    assert time.perf_counter() - started < 120


def test_code_parser_on_mutated_text() -> None:
    rng = random.Random(7)
    base = (build.TS_MAIN + build.TS_LINEAR).encode()
    for _ in range(200):
        b = bytearray(base)
        for _ in range(rng.randrange(1, 20)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        ctx = _ctx()
        scan_torchscript_code(
            BytesSource(bytes(b)), bytes(b[:4096]), Location("m"), ctx, "c.py", None
        )
        assert all(f.kind.startswith(("torch.", "anomaly")) for f in ctx.facts)


# -- ExecuTorch .pte ----------------------------------------------------------------------


def test_pte_operators_and_delegates(tmp_path: Path) -> None:
    s = build.pte_samples()
    result = scan_bytes(tmp_path, s["T103/bad-pte-custom-op.pte"], "a.pte")
    assert result.format == "executorch"
    hit = find(result, "T103")
    assert hit.location.key == "execution_plan[forward].operators[3]"
    assert "sample_ops::decrypt" in hit.message and "decrypt.out" in (hit.evidence or "")
    hit = find(scan_bytes(tmp_path, s["T101/bad-pte-from-file.pte"], "b.pte"), "T101")
    assert "aten::from_file" in hit.message
    hit = find(scan_bytes(tmp_path, s["T112/bad-unknown-backend.pte"], "c.pte"), "T112")
    assert "SampleBackend" in hit.message
    assert hit.location.key == "execution_plan[forward].delegates[0]"
    result = scan_bytes(tmp_path, s["T111/bad-xnnpack-delegate.pte"], "d.pte")
    assert rules_of(result) == {"T111"} and find(result, "T111").severity is Severity.LOW
    assert not scan_bytes(tmp_path, s["T204/ok-program.pte"], "e.pte").findings


@pytest.mark.parametrize(
    "sample, text",
    [
        ("T204/bad-delegate-index.pte", "index 5"),
        ("T204/bad-truncated.pte", "out of bounds"),
        ("T204/bad-operator-name.pte", "noNamespace"),
    ],
)
def test_pte_malformed(tmp_path: Path, sample: str, text: str) -> None:
    result = scan_bytes(tmp_path, build.pte_samples()[sample], "m.pte")
    assert text in find(result, "T204").message


def test_pte_fuzz(tmp_path: Path) -> None:
    rng = random.Random(99)
    base = build.pte_samples()["T112/bad-unknown-backend.pte"]
    for i in range(300):
        b = bytearray(base[: rng.randrange(9, len(base) + 1)])
        for _ in range(rng.randrange(0, 8)):
            b[rng.randrange(8, len(b))] = rng.randrange(256)
        ctx = _ctx()
        from modelscan_lite.formats.executorch import scan_pte

        scan_pte(io.BytesIO(bytes(b)), 0, len(b), Location("m"), ctx, "m.pte")
        assert all(f.kind.startswith(("torch.", "anomaly")) for f in ctx.facts), i


def test_real_executorch_programs() -> None:
    # made by executorch 1.5.1 (scripts/make_executorch_fixtures.py): portable ops pass with
    # no finding; an XNNPACK-lowered program names its delegate (T111, low) and passes
    from tests.helpers import scan

    plain = scan(FIXTURES / "linear-relu.pte")
    assert plain.format == "executorch" and plain.findings == ()
    lowered = scan(FIXTURES / "linear-relu-xnnpack.pte")
    assert lowered.format == "executorch"
    assert [(f.rule, f.severity.label) for f in lowered.findings] == [("T111", "low")]
    assert "XnnpackBackend" in lowered.findings[0].message
