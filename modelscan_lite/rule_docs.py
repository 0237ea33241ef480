"""Rule documentation as Markdown: one rule (``modelscan-lite rule ID``) and the index
``rules/README.md``, which is generated from the rule files (a test fails when it is stale).
"""

from __future__ import annotations

from .engine import FAMILY_DIRS, Rule, RuleSet

FAMILY_TITLES = {
    "P": "Pickle streams",
    "A": "Archives and containers",
    "S": "safetensors",
    "G": "GGUF",
    "O": "ONNX",
    "H": "Hugging Face repos",
    "J": "Chat templates",
    "K": "Keras models",
    "T": "PyTorch programs (TorchScript, torch.package, torch.export, ExecuTorch)",
    "F": "TensorFlow and TFLite graphs",
    "N": "Instantiating configs (NeMo, Hydra, OmegaConf)",
    "M": "Other model formats (skops, tree libraries, Flax, OpenVINO, Core ML, llamafile)",
    "D": "Dynamic (sandbox)",
    "X": "Scanner level",
}


def render_rule(rule: Rule, heading: str = "#") -> str:
    return f"{heading} {rule.id} {rule.name}\n\n" + render_rule_body(rule)


def render_rule_body(rule: Rule) -> str:
    """A rule's doc under its heading (also SARIF ``help.markdown``): the one-line summary,
    severity, what, why, example, fix, known problems, references."""
    d = rule.doc
    refs = "\n".join(f"- {r}" for r in rule.references) or "- (none)"
    example = "\n".join("    " + ln for ln in d["example"].rstrip().splitlines())
    summary = f"*{d['short']}*\n\n" if d.get("short") else ""
    return (
        f"{summary}"
        f"Severity: **{rule.severity.label}** | formats: {', '.join(rule.formats)} | "
        f"since {rule.since}" + (f" | {', '.join(rule.cwe)}" if rule.cwe else "") + "\n\n"
        f"**What it finds.** {d['what']}\n\n"
        f"**Why it matters.** {d['why']}\n\n"
        f"**Example.**\n\n{example}\n\n"
        f"**How to fix.** {d['fix']}\n\n"
        f"**Known problems.** {d['known-problems']}\n\n"
        f"**References.**\n\n{refs}\n\n"
        f"Rule file: `rules/{rule.source}`\n"
    )


def render_rule_list(ruleset: RuleSet) -> str:
    lines = [f"{r.id}  {r.severity.label:<8}  {r.name}" for r in ruleset.rules]
    return "\n".join(lines) + "\n"


def render_readme(ruleset: RuleSet) -> str:
    out = [
        "# modelscan-lite rules",
        "",
        "<!-- Generated from the rule files by `python -m modelscan_lite.rule_docs`. "
        "Do not edit by hand: a test fails when this file is stale. -->",
        "",
        f"Rule set version `{ruleset.version}`, {len(ruleset.rules)} rules. IDs are "
        "`<FAMILY><CLASS><NN>` and permanent. Class 1: code execution on load; 2: structural "
        "integrity or ambiguity; 3: resource exhaustion; 4: references escaping the artifact; "
        "5: consistency between files; 9: analysis limits.",
        "",
        "| ID | name | severity | family |",
        "|---|---|---|---|",
    ]
    for r in ruleset.rules:
        out.append(
            f"| [{r.id}](#{r.id.lower()}-{r.name}) | {r.name} | {r.severity.label} | "
            f"{FAMILY_TITLES[r.family]} |"
        )
    out.append("")
    for fam in FAMILY_DIRS:
        rules = [r for r in ruleset.rules if r.family == fam]
        if not rules:
            continue
        out.append(f"## {FAMILY_TITLES[fam]}")
        out.append("")
        for r in rules:
            out.append(render_rule(r, heading="###"))
    out.extend(render_call_throughs(ruleset))
    out.extend(render_callables(ruleset))
    return "\n".join(out).rstrip() + "\n"


_USES = {
    "calls": "called: must be an allowed identity (P105/P101-P104 otherwise)",
    "class": "instantiated: must be an allowed identity",
    "payload": "deserialized: scanned as a nested artifact",
    "resolves-module": "imported by name: judged as an import",
    "resolves-name": "imported by name: judged as an import",
    "sibling-file": "a file read next to the pickle: named (P402) or escaping (P401)",
}


def render_call_throughs(ruleset: RuleSet) -> list[str]:
    """The allowed call-throughs and how the walker checks each (P105, P109, P401, P402),
    from ``rules/allowlist/call-through*.json``; Cython reconstructors are counted."""
    throughs = ruleset.allowlist.call_throughs
    cython = sorted(i for i in throughs if i[1].startswith("__pyx_unpickle_"))
    out = [
        "## Allowed call-throughs",
        "",
        "Allowed callables that call, instantiate, import, deserialize or read what they are",
        "given, and how the pickle walker checks that argument (P105, P109, P401, P402). From",
        "`rules/allowlist/call-through.json`; positions are 0-based; a keyword argument is",
        "judged by the strictest use of any position.",
        "",
        "| callable | argument | checked as | why | source |",
        "|---|---|---|---|---|",
    ]
    for ident in sorted(throughs):
        if ident in cython:
            continue
        ct = throughs[ident]
        uses = [(str(k), u) for k, u in ct.args.items()] + [
            (f"state `{k}`", u) for k, u in ct.state.items()
        ]
        for where, use in uses:
            out.append(
                f"| `{ident[0]}.{ident[1]}` | {where} | {_USES[use]} | {ct.why} | {ct.source} |"
            )
    out += [
        "",
        f"And {len(cython)} Cython reconstructors (`__pyx_unpickle_<Class>(type, checksum, "
        "state)` runs `<Class>.__new__(type)`): argument 0 is instantiated and must be an "
        "allowed identity (`rules/allowlist/call-through-cython.json`).",
        "",
        "Reconstruct-only reason families (rebuilt with `__new__` and a state; a stream that "
        "calls one runs its constructor with the file's arguments, P105): "
        + ", ".join(f"`{r}`" for r in sorted(ruleset.allowlist.reconstruct_only))
        + ".",
        "",
    ]
    return out


def render_callables(ruleset: RuleSet) -> list[str]:
    """The shared list of dangerous callables (``rules/callables/dangerous.json``): which
    pickle rule takes each category, and which entries the custom-code check reports."""
    from .callables import load_callables

    table = load_callables()
    takers: dict[str, list[str]] = {}
    for r in ruleset.rules:
        for cat in r.raw.get("match", {}).get("callables", []) or []:
            takers.setdefault(str(cat), []).append(r.id)
    out = [
        "## Dangerous callables",
        "",
        *(line or "" for line in _about(table)),
        "",
        "| category | pickle rule | entries (**bold**: a call in custom code is H103) |",
        "|---|---|---|",
    ]
    for cat, meaning in table.categories.items():
        names = [
            (f"**`{e.pattern}`**" if e.code else f"`{e.pattern}`")
            for e in table.entries
            if e.category == cat
        ]
        out.append(
            f"| {cat}: {meaning} | {', '.join(takers.get(cat, [])) or '-'} | {', '.join(names)} |"
        )
    out.append("")
    return out


def _about(table: object) -> list[str]:
    import json

    from .callables import DATA_FILE
    from .engine import rules_dir

    data = json.loads((rules_dir() / DATA_FILE).read_text(encoding="utf-8"))
    return [str(line) for line in data.get("about", [])]


def main() -> None:
    from pathlib import Path

    from .engine import load_rules, rules_dir

    target = Path(rules_dir()) / "README.md"
    target.write_text(render_readme(load_rules()), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
