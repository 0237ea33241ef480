"""The rule catalog: schema-valid files, unique IDs, names match files, docs complete,
every anomaly a parser emits owned by exactly one rule, every rule with bad and ok samples,
and the generated ``rules/README.md`` up to date."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from modelscan_lite.engine import DOC_FIELDS, Policy, RuleError, load_rules, parse_rule
from modelscan_lite.model import Fact, Location
from modelscan_lite.rule_docs import render_readme

from .conftest import ROOT, SAMPLES

RULES = ROOT / "rules"
RULE_FILES = sorted(RULES.glob("*/*.yaml"))
# Rules no input file can trigger by design; each is tested another way (named here).
NO_SAMPLE = {
    "X904": "fault injection in tests/test_scanner.py::test_parser_crash_is_x904",
    "H405": "needs a symlink in a cache layout: "
    "tests/test_repo.py::test_cache_link_outside_blobs_is_reported_not_followed",
    "D204": "needs an ONNX graph that lies about its output: "
    "tests/test_sandbox.py::test_output_shape_differing_from_the_graph_is_d204",
    "D901": "needs a loader library missing: tests/test_sandbox.py::test_missing_loader_is_d901",
}


def test_rule_files_validate_against_schema() -> None:
    schema = json.loads((RULES / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in RULE_FILES:
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, f"{path.name}: {[e.message for e in errors]}"


def test_ids_unique_and_file_names_match() -> None:
    rules = load_rules().rules
    ids = [r.id for r in rules]
    assert len(ids) == len(set(ids))
    assert len(rules) == len(RULE_FILES)
    for r in rules:
        assert r.source.endswith(f"/{r.id}-{r.name}.yaml")
        assert all(r.doc[k].strip() for k in DOC_FIELDS)


def test_every_regex_in_the_rules_compiles() -> None:
    for path in RULE_FILES:
        match = yaml.safe_load(path.read_text())["match"]
        if "regex" in match:
            re.compile(match["regex"])


def test_readme_is_generated_and_current() -> None:
    current = (RULES / "README.md").read_text()
    assert current == render_readme(load_rules()), (
        "rules/README.md is stale: run `python -m modelscan_lite.rule_docs`"
    )


def _emitted_anomalies() -> set[str]:
    """Anomaly values the parsers can emit, read from their source."""
    found: set[str] = set()
    for path in (ROOT / "modelscan_lite").rglob("*.py"):
        text = path.read_text()
        found.update(re.findall(r'anomaly\(\s*"([a-z0-9-]+)"', text))
        found.update(re.findall(r'_anomaly\(\s*"([a-z0-9-]+)"', text))
        found.update(re.findall(r'PickleError\(\s*"([a-z0-9-]+)"', text))
        found.update(re.findall(r'BudgetExceeded\(\s*"([a-z0-9-]+)"', text))
        found.update(re.findall(r'GGUFError\(\s*"([a-z0-9-]+)"', text))
    return found


def test_every_anomaly_is_owned_by_exactly_one_rule() -> None:
    anomalies = _emitted_anomalies()
    assert len(anomalies) > 20  # the scrape works
    policy = Policy.build(load_rules())
    for value in sorted(anomalies):
        owners = [r.id for r in policy.matching_rules(Fact("anomaly", value, Location("x")))]
        assert len(owners) == 1, f"anomaly {value!r} owned by {owners}"


def test_every_rule_has_bad_and_ok_samples() -> None:
    for r in load_rules().rules:
        if r.id in NO_SAMPLE:
            continue
        folder = SAMPLES / r.id
        assert list(folder.glob("bad-*")), f"{r.id} has no bad sample"  # files or folders
        assert list(folder.glob("ok-*")), f"{r.id} has no ok sample"


def _rule(**changes: object) -> dict[str, object]:
    """A valid rule document with some fields replaced."""
    base: dict[str, object] = {
        "id": "P199",
        "name": "x",
        "severity": "low",
        "formats": ["p"],
        "match": {"kind": "a"},
        "message": "m",
        "since": "0.1.0",
        "doc": {k: "x" for k in DOC_FIELDS},
    }
    return {**base, **changes}


@pytest.mark.parametrize(
    "broken, message",
    [
        ({"id": "Z101"}, "missing"),
        (_rule(id="P1"), "<FAMILY>"),
        (_rule(name="Not_Kebab"), "kebab"),
        (_rule(severity="severe"), "severity"),
        (_rule(match={"kind": "a", "globb": ["x"]}), "unknown match keys"),
        (_rule(doc={"what": "x"}), "doc needs"),
    ],
)
def test_malformed_rules_are_rejected_with_the_file_name(broken: dict, message: str) -> None:
    with pytest.raises(RuleError, match=message) as exc:
        parse_rule(broken, "pickle/broken.yaml")
    assert "pickle/broken.yaml" in str(exc.value)


def test_rule_directory_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "pickle").mkdir()
    src = (RULES / "pickle" / "P201-malformed-pickle.yaml").read_text()
    (tmp_path / "pickle" / "P201-wrong-name.yaml").write_text(src)
    load_rules.cache_clear()
    try:
        with pytest.raises(RuleError, match=r"P201-wrong-name\.yaml"):
            load_rules(str(tmp_path))
    finally:
        load_rules.cache_clear()


def test_the_rule_builder_makes_a_valid_rule() -> None:
    assert parse_rule(_rule(), "pickle/P199-x.yaml").id == "P199"


def test_rules_version_follows_file_changes_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version is remembered under the files' sizes, mtimes and inodes; an edit to a
    rule or to the allowlist data must give a new version, never the remembered one."""
    import shutil

    from modelscan_lite.engine import rules_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MODELSCAN_LITE_NO_CACHE", raising=False)
    root = tmp_path / "rules"
    shutil.copytree(rules_dir(), root)
    first = load_rules(str(root)).version
    load_rules.cache_clear()
    assert load_rules(str(root)).version == first  # from the index
    rule = next(root.glob("pickle/P101-*.yaml"))
    rule.write_text(rule.read_text() + "\n# edited\n")
    load_rules.cache_clear()
    second = load_rules(str(root)).version
    assert second != first
    data = root / "allowlist" / "call-through.json"
    data.write_text(data.read_text() + "\n")
    load_rules.cache_clear()
    assert load_rules(str(root)).version not in (first, second)
    load_rules.cache_clear()
