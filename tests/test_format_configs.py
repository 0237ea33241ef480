"""NeMo ``.nemo`` archives and Hydra / OmegaConf configs (N rules), skops archives (M101-M119,
M201-M219), dill / cloudpickle reconstruction globals (P112-P119): rule, location, evidence
per code path; real-library fixtures give no failing finding; hostile input never crashes."""

from __future__ import annotations

import io
import random
import tarfile
from pathlib import Path

import pytest

from modelscan_lite.formats.base import Context
from modelscan_lite.formats.hydra import (
    C_SAFE_DEPTH,
    MAX_CONFIG_BYTES,
    compose_yaml,
    known_targets,
    node_bound,
    scan_config_bytes,
)
from modelscan_lite.formats.streams import DecompressBudget
from modelscan_lite.limits import Deadline, Limits
from modelscan_lite.model import Location, Severity
from samples.formats.configs import MODEL_HEAD, OK_MODULE, nemo

from .helpers import find, rules_of, scan, scan_bytes

FIXTURES = Path(__file__).parent / "data" / "formats" / "configs"
MEMBER = "./model_config.yaml"


def _ctx() -> Context:
    return Context(Limits(), Deadline(60), DecompressBudget(1 << 30, 0))


def _facts(text: str, *, nemo_style: bool = False) -> Context:
    ctx = _ctx()
    scan_config_bytes(text.encode(), Location("c.yaml"), ctx, nemo=nemo_style)
    return ctx


# -- real fixtures ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ok-conformer-ctc.nemo", "ok-conformer-ctc-gz.nemo"])
def test_real_nemo_archive_has_no_failing_finding(name: str) -> None:
    result = scan(FIXTURES / name)
    assert result.error is None
    assert not [f for f in result.findings if f.severity >= Severity.MEDIUM], result.findings


def test_real_nemo_config_targets_are_all_known() -> None:
    ctx = _facts((FIXTURES / "ok-model_config.yaml").read_text(), nemo_style=True)
    kinds = [(f.kind, f.value) for f in ctx.facts]
    assert ("config.target.known", "nemo.collections.asr.modules.ConformerEncoder") in kinds
    root = [f for f in ctx.facts if f.location.key == "target"]
    assert root and root[0].kind == "config.target.known"
    assert not [f for f in ctx.facts if f.kind in ("config.target.unknown", "anomaly")]


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("hydra-*.yaml")))
def test_hydra_examples_only_report_their_unknown_app_classes(name: str) -> None:
    """Hydra's own examples instantiate ``my_app.*``: unknown targets (N105), nothing else."""
    result = scan(FIXTURES / name)
    assert rules_of(result) <= {"N105"}
    assert all(f.message.count("`my_app.") for f in result.findings)


def test_known_list_holds_exact_names_and_no_dangerous_callable() -> None:
    from modelscan_lite.callables import load_callables
    from modelscan_lite.engine import dotted_tails

    known = known_targets()
    assert "torch.optim.Adam" in known and "nemo.collections.asr.modules.ConformerEncoder" in known
    table = load_callables()
    assert not [t for t in known if any(table.lookup(x) for x in dotted_tails(t))]
    assert all("*" not in t and "." in t for t in known)


# -- each code path: rule, location, evidence ------------------------------------------------


def test_target_with_args_is_critical_with_the_call_as_evidence(tmp_path: Path) -> None:
    data = nemo(MODEL_HEAD + "pre:\n  _target_: os.system\n  _args_: ['id > /dev/null']\n")
    result = scan_bytes(tmp_path, data, "m.nemo")
    hit = find(result, "N101", MEMBER)
    assert hit.severity is Severity.CRITICAL
    assert hit.location.key == "pre._target_"
    assert "os.system('id > /dev/null')" in hit.message
    assert hit.evidence and "hydra.utils.instantiate" in hit.evidence
    assert "N104" not in rules_of(result)  # the more specific rule only


def test_partial_and_not_recursive_targets_are_still_reported() -> None:
    ctx = _facts(
        "a:\n  _target_: x.y.Z\n  _recursive_: false\n  inner:\n    _target_: subprocess.Popen\n"
        "    _partial_: true\n    args: [ls]\n"
    )
    popen = next(f for f in ctx.facts if f.value == "subprocess.Popen")
    assert popen.location.key == "a.inner._target_"
    assert dict(popen.detail)["call"] == "functools.partial(subprocess.Popen, args=['ls'])"
    outer = next(f for f in ctx.facts if f.value == "x.y.Z")
    assert outer.evidence and "_recursive_: false" in outer.evidence


def test_walk_through_a_module_attribute_is_matched_by_its_tail(tmp_path: Path) -> None:
    result = scan_bytes(
        tmp_path, nemo(MODEL_HEAD + "x:\n  _target_: nemo.core.os.system\n"), "m.nemo"
    )
    assert find(result, "N101", MEMBER).location.key == "x._target_"


def test_nemo_root_target_and_params_style(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, nemo("target: builtins.eval\nparams: {}\n"), "m.nemo")
    assert find(result, "N101", MEMBER).location.key == "target"
    # the generic (non-NeMo) reading does not treat a plain `target` key as instantiation
    assert not _facts("target: builtins.eval\n").facts


def test_aliases_and_merge_keys_are_followed_once() -> None:
    ctx = _facts(
        "base: &b {_target_: posix.system, _args_: [x]}\nuse1: *b\nuse2: *b\n"
        "m:\n  <<: *b\n  extra: 1\n"
    )
    hits = [f for f in ctx.facts if f.value == "posix.system"]
    assert [f.location.key for f in hits] == ["base._target_", "m._target_"]


def test_billion_laughs_costs_its_size_not_its_expansion() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 30):
        prev = f"*a{i - 1}"
        levels.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    ctx = _facts("\n".join(levels) + "\n_target_: ok.Thing\n")
    assert [f.value for f in ctx.facts if f.kind.startswith("config.target")] == ["ok.Thing"]


def test_interpolated_targets_are_resolved_or_reported(tmp_path: Path) -> None:
    ctx = _facts("n: {m: os, f: system}\nx:\n  _target_: ${n.m}.${n.f}\n")
    hit = next(f for f in ctx.facts if f.kind.startswith("config.target"))
    assert hit.value == "os.system" and dict(hit.detail)["spelled"] == "${n.m}.${n.f}"
    result = scan_bytes(tmp_path, nemo(MODEL_HEAD + "x:\n  _target_: ${oc.env:T}\n"), "m.nemo")
    assert find(result, "N106", MEMBER).location.key == "x._target_"


def test_oc_decode_content_is_walked_as_a_config() -> None:
    ctx = _facts("h: \"${oc.decode:'{_target_: builtins.exec, _args_: [pass]}'}\"\n")
    hit = next(f for f in ctx.facts if f.kind.startswith("config.target"))
    assert hit.value == "builtins.exec" and hit.location.key == "h<oc.decode>._target_"


def test_environment_and_custom_resolvers(tmp_path: Path) -> None:
    text = MODEL_HEAD + OK_MODULE + "a: ${oc.env:HF_TOKEN}\nb: ${eval:'1+1'}\nc: ${oc.select:a,1}\n"
    result = scan_bytes(tmp_path, nemo(text), "m.nemo")
    env = find(result, "N401", MEMBER)
    assert env.location.key == "a" and "`HF_TOKEN`" in env.message
    custom = find(result, "N402", MEMBER)
    assert custom.location.key == "b" and custom.severity is Severity.LOW
    assert len([f for f in result.findings if f.rule == "N402"]) == 1


def test_python_tags_duplicate_keys_and_malformed(tmp_path: Path) -> None:
    text = MODEL_HEAD + "x: !!python/name:os.system\ny:\n  _target_: a.B\n  _target_: c.D\n"
    result = scan_bytes(tmp_path, nemo(text), "m.nemo")
    assert find(result, "N107", MEMBER).location.key == "x"
    assert find(result, "N202", MEMBER).location.key == "y._target_"
    # both values of the duplicate are judged
    assert {"a.B", "c.D"} <= {f.message.split("`")[1] for f in result.findings if f.rule == "N105"}
    bad = scan_bytes(tmp_path, nemo("x: [\n"), "b.nemo")
    assert find(bad, "N201", MEMBER)


def test_yaml_config_in_a_repo_folder_is_checked(tmp_path: Path) -> None:
    from modelscan_lite import scan as scan_tree
    from modelscan_lite.config import Config

    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "train.yaml").write_text("m:\n  _target_: subprocess.check_output\n")
    report = scan_tree([tmp_path], Config(jobs=1))
    hits = [f for f in report.findings if f.rule == "N101"]
    assert hits and hits[0].location.path.endswith("train.yaml")
    alone = scan_tree([conf / "train.yaml"], Config(jobs=1))
    assert "N101" in {f.rule for f in alone.findings}


# -- budgets and hostile input ---------------------------------------------------------------


def test_deep_nesting_never_reaches_the_c_composer() -> None:
    """libyaml's composer recurses in C: 40 k nested brackets crashed the process."""
    deep = b"[" * 200_000 + b"]" * 200_000
    assert node_bound(deep) > C_SAFE_DEPTH
    ctx = _ctx()
    scan_config_bytes(deep, Location("d.yaml"), ctx)
    assert [f.value for f in ctx.facts] == ["budget-config-depth"]


def test_repo_yaml_reader_survives_deep_nesting(tmp_path: Path) -> None:
    from modelscan_lite.templates import read_yaml_file

    path = tmp_path / "deep.yaml"
    path.write_bytes(b"- " * 100_000 + b"x\n")
    assert read_yaml_file(str(path)) is None


def test_size_and_node_budgets() -> None:
    ctx = _ctx()
    scan_config_bytes(b"a: 1\n" * (MAX_CONFIG_BYTES // 5 + 1), Location("b.yaml"), ctx)
    assert [f.value for f in ctx.facts] == ["budget-config-bytes"]
    ctx = _ctx()
    scan_config_bytes(b"[" + b"1," * 600_000 + b"]", Location("n.yaml"), ctx)
    assert [f.value for f in ctx.facts] == ["budget-config-nodes"]


def test_truncations_and_mutations_never_raise() -> None:
    base = (FIXTURES / "ok-model_config.yaml").read_bytes() + (
        b"x:\n  _target_: ${a.b}\n  <<: *nothing\ny: &y {z: *y}\nk: ${oc.decode:'[1'}\n"
    )
    rng = random.Random(7)
    for cut in range(0, len(base), max(1, len(base) // 60)):
        scan_config_bytes(base[:cut], Location("t.yaml"), _ctx())
    for _ in range(150):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.choice(b"[]{}:-&*!?|>'\"\n $%\\\x00")
        scan_config_bytes(bytes(data), Location("m.yaml"), _ctx())


def test_compose_rejects_several_documents() -> None:
    from modelscan_lite.formats.hydra import ConfigError

    with pytest.raises(ConfigError) as exc:
        compose_yaml(b"a: 1\n---\nb: 2\n")
    assert exc.value.kind == "config-malformed"


def test_nemo_inside_gzip_and_with_a_subfolder_root(tmp_path: Path) -> None:
    import gzip

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        data = b"target: builtins.exec\n"
        info = tarfile.TarInfo("run1/model_config.yaml")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    result = scan_bytes(tmp_path, gzip.compress(raw.getvalue(), mtime=0), "m.nemo")
    assert "N101" in rules_of(result)


# -- skops ------------------------------------------------------------------------------------

# what skops 0.16 itself says of the fixtures (skops.io.get_untrusted_types, MANIFEST.md)
SKOPS_UNTRUSTED = {
    "ok-logreg.skops": set(),
    "ok-pipeline.skops": set(),
    "ok-forest.skops": {"sklearn.tree._tree.Tree"},
    "ok-hgb.skops": {"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"},
}


@pytest.mark.parametrize("name", sorted(SKOPS_UNTRUSTED))
def test_real_skops_files_agree_with_skops_audit(name: str) -> None:
    result = scan(FIXTURES / name)
    assert result.format == "skops" or "skops" in result.format
    assert not [f for f in result.findings if f.severity >= Severity.MEDIUM], result.findings
    reported = {f.message.split("`")[1] for f in result.findings if f.rule == "M105"}
    assert reported == SKOPS_UNTRUSTED[name]


def test_skops_dangerous_function_node(tmp_path: Path) -> None:
    from samples.formats.configs import _function, skops_with

    result = scan_bytes(tmp_path, skops_with({"hook": _function("builtins", "eval")}), "m.skops")
    hit = find(result, "M101", "schema.json")
    assert hit.location.key == "content.content.hook" and "(FunctionNode)" in hit.message


def test_skops_method_node_names_the_method_and_checks_its_object(tmp_path: Path) -> None:
    from samples.formats.configs import _function, skops_with

    node = {
        "__class__": "Ridge",
        "__module__": "sklearn.linear_model._ridge",
        "__loader__": "MethodNode",
        "content": {"func": "fit", "obj": _function("os", "system")},
    }
    result = scan_bytes(tmp_path, skops_with({"m": node}), "m.skops")
    assert "`sklearn.linear_model._ridge.Ridge.fit`" in find(result, "M104").message
    assert "bound to a `os.system`" in find(result, "M201").message
    assert find(result, "M101").location.key == "content.content.m.content.obj"


def test_skops_structure_and_budgets(tmp_path: Path) -> None:
    from samples.formats.configs import skops_with

    assert "M201" in rules_of(scan_bytes(tmp_path, skops_with(schema=b"[]"), "a.skops"))
    deep = b'{"__loader__": "ListNode", "content": ' * 600 + b"1" + b"}" * 600
    assert "X901" in rules_of(scan_bytes(tmp_path, skops_with(schema=deep), "d.skops"))


def test_skops_schema_mutations_never_raise(tmp_path: Path) -> None:
    from modelscan_lite.formats.skops import walk_schema

    base = __import__("json").loads(
        __import__("zipfile").ZipFile(FIXTURES / "ok-pipeline.skops").read("schema.json")
    )
    rng = random.Random(3)
    values: list[object] = [None, 1, "x", [], {}, {"__loader__": 5}, [{"__loader__": "X"}]]

    def mutate(node: object) -> None:
        if isinstance(node, dict):
            for key in list(node):
                if rng.random() < 0.05:
                    node[key] = rng.choice(values)
                else:
                    mutate(node[key])
        elif isinstance(node, list):
            for item in node:
                mutate(item)

    for _ in range(40):
        doc = __import__("copy").deepcopy(base)
        mutate(doc)
        walk_schema(doc, Location("s"), _ctx())


# -- dill / cloudpickle -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, qualnames",
    [
        ("dill-lambda.pkl", {"<lambda>"}),
        ("dill-function.pkl", {"add_one"}),
        ("dill-class.pkl", {"Scaler.__init__", "Scaler.__call__"}),
        ("cloudpickle-lambda.pkl", {"<lambda>"}),
        ("cloudpickle-function.pkl", {"add_one"}),
        ("cloudpickle-class.pkl", {"Scaler.__init__", "Scaler.__call__"}),
    ],
)
def test_pickled_functions_show_their_bytecode(name: str, qualnames: set[str]) -> None:
    result = scan(FIXTURES / name)
    hits = [f for f in result.findings if f.rule == "P112"]
    assert {f.location.key for f in hits} == qualnames
    assert all(f.severity is Severity.CRITICAL for f in hits)
    for hit in hits:
        assert hit.evidence and "code object" in hit.evidence and "RETURN_VALUE" in hit.evidence
    assert "P101" in rules_of(result)  # the dill / cloudpickle import itself


def test_code_record_refuses_what_it_cannot_read() -> None:
    from modelscan_lite.formats.pickled_code import code_record

    assert code_record(()) is None
    assert code_record((1, 2, 3)) is None
    assert code_record((1, 0, 0, 1, 2, 3, object(), (), (), (), "f", "n")) is None
    rec = code_record((b"", 1, 0, 0, 1, 2, 3, b"\x97\x00", (None,), (), ("x",), "f", "n", "q", 1))
    assert rec is not None and rec.qualname == "q" and rec.code == b"\x97\x00"


def test_nested_repo_yaml_is_reported_once_by_the_repo(tmp_path: Path) -> None:
    # the repo analysis walks YAML below its folder; the file itself is not analysed again
    # on its own (the same N101 twice, once on the file and once on the hf-repo entry)
    from modelscan_lite.config import Config
    from modelscan_lite.scanner import scan_paths

    repo = tmp_path / "repo"
    (repo / "conf" / "model").mkdir(parents=True)
    (repo / "config.json").write_text('{"model_type": "llama", "architectures": ["X"]}')
    nested = repo / "conf" / "model" / "enc.yaml"
    nested.write_text("encoder:\n  _target_: subprocess.check_output\n")
    report = scan_paths([str(repo)], Config(jobs=1))
    hits = [(a.format, f.rule) for a in report.artifacts for f in a.findings]
    assert hits == [("hf-repo", "N101")]
    (hit,) = [f for a in report.artifacts for f in a.findings]
    assert hit.location.path == str(nested)
    (entry,) = [a for a in report.artifacts if a.path == str(nested)]
    assert entry.skipped == "read by the repo analysis, see its hf-repo entry"
