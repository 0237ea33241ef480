"""Scaffolding for a new rule or a new format, in the shape the checklists in CONTRIBUTING.md
ask for (modelled on ruff's ``add_rule``): it writes the files with every required field and
``TODO`` where a person has to think, and never edits existing files except the one registry
entry a format needs.

    python scripts/scaffold.py rule K107 keras-thing --severity high --kind keras.thing
    python scripts/scaffold.py format acme "Acme model" --magic ACME --family code

``--root`` writes into another checkout (the tests use a temporary copy).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from modelscan_lite.engine import FAMILY_DIRS, RULE_ID

HERE = Path(__file__).resolve().parent.parent
NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
REGISTRY_ANCHOR = "        # --- other model formats ---\n"

RULE_TEMPLATE = """\
id: {rid}
name: {name}
severity: {severity}
formats: [{fmt}]
match:
  kind: {kind}
message: "TODO one line naming the offending value: `{{value}}`"
since: 0.1.0
cwe: [CWE-20]  # TODO the CWE that fits
references: []
doc:
  what: TODO what the scanner saw.
  why: TODO what loading the file would do, and why that matters.
  example: TODO a minimal input that triggers it
  fix: TODO what the user should do.
  known-problems: TODO when it is wrong, or "None known."
"""

PARSER_TEMPLATE = '''"""{title}: TODO the byte-level spec this parser follows (quote
the format's own docs).

Emits TODO facts; never loads, imports or executes what it reads; every loop is bounded by
``ctx.limits`` and ``ctx.deadline`` (a budget hit is ``ctx.anomaly("budget-<name>", ...)``).
"""

from __future__ import annotations

from ..model import Location
from .base import Context
from .streams import Source


def scan_{ident}(
    src: Source,
    head: bytes,
    where: Location,
    ctx: Context,
    name: str = "",
    length: int | None = None,
) -> None:
    """TODO parse under budgets; ``ctx.emit("{fid}.<fact>", value, where.at(...))``."""
    data = src.read(ctx.limits.max_member_read + 1)
    if len(data) > ctx.limits.max_member_read:
        ctx.anomaly("budget-member-size", where, "{title} larger than the member budget")
        return
    if not data.startswith(head[:4]):
        ctx.anomaly("{fid}-malformed", where, "TODO")
'''

SAMPLES_TEMPLATE = '''"""Samples for {title} (``bad-*`` give their folder's rule, ``ok-*``
do not)."""

from __future__ import annotations


def samples() -> dict[str, bytes]:
    return {{
        # "M1xx/bad-TODO.{ext}": b"...",
        # "M1xx/ok-TODO.{ext}": b"...",
    }}
'''

TEST_TEMPLATE = '''"""{title}: each rule with its location and evidence; real files from
the real library pass with no failing finding; truncations and mutations never crash."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import rules_of, scan_bytes


def test_{ident}_is_recognised(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, {magic!r} + b"\\0" * 64, "model.{ext}")
    assert result.format == "{fid}"
    assert "X201" not in rules_of(result)
'''


def add_rule(root: Path, rid: str, name: str, severity: str, kind: str, fmt: str) -> Path:
    if not RULE_ID.match(rid) or rid[0] not in FAMILY_DIRS:
        raise SystemExit(f"{rid}: not <FAMILY><CLASS><NN> with a known family")
    if not NAME.match(name):
        raise SystemExit(f"{name}: rule names are kebab-case")
    folder = root / "rules" / FAMILY_DIRS[rid[0]]
    if any(folder.glob(f"{rid}-*.yaml")):
        raise SystemExit(f"{rid} exists already (IDs are permanent, never reused)")
    path = folder / f"{rid}-{name}.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(RULE_TEMPLATE.format(rid=rid, name=name, severity=severity, kind=kind, fmt=fmt))
    return path


def add_format(root: Path, fid: str, title: str, magic: str, family: str, ext: str) -> list[Path]:
    ident = re.sub(r"\W", "_", fid)
    module = root / "modelscan_lite" / "formats" / f"{ident}.py"
    if module.exists():
        raise SystemExit(f"{module} exists already")
    registry = root / "modelscan_lite" / "formats" / "registry.py"
    text = registry.read_text()
    if f'"{fid}"' in text:
        raise SystemExit(f"format id {fid!r} is already declared")
    if REGISTRY_ANCHOR not in text:
        raise SystemExit("registry anchor not found; add the entry by hand")
    entry = (
        f'        Format(\n            "{fid}",\n            "{title}",\n'
        f'            _F.{family.upper()},\n            "{ident}:scan_{ident}",\n'
        f"            magic=((0, {magic.encode()!r}),),\n"
        f'            extensions=(".{ext}",),\n        ),\n'
    )
    registry.write_text(text.replace(REGISTRY_ANCHOR, REGISTRY_ANCHOR + entry))
    fmt = dict(fid=fid, title=title, ident=ident, ext=ext, magic=magic.encode())
    written = [module, root / "samples" / "formats" / f"{ident}.py"]
    written.append(root / "tests" / f"test_format_{ident}.py")
    for path, template in zip(
        written, (PARSER_TEMPLATE, SAMPLES_TEMPLATE, TEST_TEMPLATE), strict=True
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**fmt))
    return [registry, *written]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=HERE)
    sub = parser.add_subparsers(dest="what", required=True)
    rule = sub.add_parser("rule")
    rule.add_argument("id")
    rule.add_argument("name")
    rule.add_argument("--severity", default="medium", choices=["low", "medium", "high", "critical"])
    rule.add_argument("--kind", required=True, help="the fact kind the rule matches")
    rule.add_argument("--format", default="TODO", dest="fmt")
    fmt = sub.add_parser("format")
    fmt.add_argument("id")
    fmt.add_argument("title")
    fmt.add_argument("--magic", required=True, help="the bytes the format starts with")
    fmt.add_argument("--family", default="code", choices=["code", "tensors", "data"])
    fmt.add_argument("--ext", default="bin", help="the name its writers give it (docs only)")
    args = parser.parse_args(argv)
    if args.what == "rule":
        paths = [add_rule(args.root, args.id, args.name, args.severity, args.kind, args.fmt)]
    else:
        paths = add_format(args.root, args.id, args.title, args.magic, args.family, args.ext)
    for path in paths:
        print(f"wrote {path}", file=sys.stderr)
    print("next: fill the TODOs, then the checklist in CONTRIBUTING.md", file=sys.stderr)


if __name__ == "__main__":
    main()
