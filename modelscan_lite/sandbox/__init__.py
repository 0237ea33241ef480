"""The sandboxed loader: the only code in modelscan-lite that loads an artifact for real.

``scan --dynamic auto|require`` calls :func:`run_dynamic` after the static scan. Each artifact
whose format has a real loader is loaded in its own confined child (:mod:`.supervisor`), and
what happened becomes ``dynamic.*`` facts, judged by the D-family rules like any other fact:
refused attempts (spawn, network, writes and metadata changes, reads and lookups, escapes,
signals), Python-level events reported from inside (ctypes loads, exit handlers), tampering
with the report channel, load and inference failures, non-finite values, output
shapes, timeouts, memory and crashes. Nothing here imports a loader library: those imports
happen in the child (:mod:`.loaders`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from ..engine import Policy
from ..formats import registry
from ..model import ArtifactResult, DynamicRun, Fact, Location
from .supervisor import BACKENDS, Options, Outcome, SandboxUnavailable, choose, probe, run

__all__ = [
    "BACKENDS",
    "MODES",
    "Options",
    "SandboxUnavailable",
    "choose",
    "loader_for",
    "outcome_facts",
    "probe",
    "run_dynamic",
]

MODES = ("off", "auto", "require")
# what only the audit hook inside sees (no syscall tells): its kind -> the fact for the rules
AUDIT_ONLY = {"native": "dynamic.native-load", "atexit": "dynamic.atexit"}


def loader_for(result: ArtifactResult, path: str | None = None) -> str | None:
    """The real loader for a scanned artifact (on disk at ``path``), or ``None`` if none."""
    if result.format == "hf-repo":
        config = os.path.join(path or result.path, "config.json")
        return "transformers" if os.path.isfile(config) else None
    layers = result.layers or (result.format,)
    entry = registry.get(layers[-1])
    if entry is None or any(layer not in entry.loader_layers for layer in layers[:-1]):
        return None  # only loaders that open a compression layer themselves load through it
    return entry.loader


def _gib(n: int) -> str:
    return f"{n / 1024**3:g} GiB"


def outcome_facts(outcome: Outcome, options: Options) -> list[Fact]:
    """What one sandboxed load showed, as facts for the D-family rules."""
    where = Location(outcome.target)
    facts: list[Fact] = []
    globals_seen = [
        ".".join(a.strip("'") for a in ev.get("args", [])[:2])
        for ev in outcome.audit
        if ev.get("kind") == "global"
    ]
    context = ""
    if globals_seen:
        context = "globals the unpickler resolved: " + ", ".join(dict.fromkeys(globals_seen))
    python_side = {
        kind: [
            f"{ev.get('event')}({', '.join(ev.get('args', []))})"
            for ev in outcome.audit
            if ev.get("kind") == kind
        ]
        for kind in ("spawn", "network", "write", "read")
    }
    for ev in outcome.events:
        lines = [f"{ev.syscall} by pid {ev.pid}: {ev.value}"]
        lines += [f"{k}: {v}" for k, v in ev.detail]
        lines += [f"python: {c}" for c in python_side.get(ev.kind, [])[:5]]
        if context:
            lines.append(context)
        facts.append(
            Fact(
                f"dynamic.{ev.kind}",
                ev.value,
                where,
                (("syscall", ev.syscall), ("source", "seccomp"), *ev.detail),
                "\n".join(lines),
            )
        )
    for msg in outcome.audit:
        kind = msg.get("kind")
        if kind not in AUDIT_ONLY:
            continue
        args = [str(a) for a in msg.get("args", [])]
        event = str(msg.get("event"))
        head = f"{event}({', '.join(args)})" if kind == "native" else event
        facts.append(
            Fact(
                AUDIT_ONLY[kind],
                args[0] if args else "?",
                where,
                (("source", "audit hook"),),
                "\n".join(filter(None, [head, context])),
            )
        )
    for kind, more in outcome.audit_over_cap.items():
        if kind in AUDIT_ONLY:
            facts.append(
                Fact(
                    AUDIT_ONLY[kind],
                    f"{more} more event(s), not listed: the recording cap was reached",
                    where,
                    (("source", "audit hook"), ("count", str(more))),
                )
            )
    for what, times in outcome.channel.items():
        facts.append(
            Fact(
                "dynamic.channel",
                what,
                where,
                (("count", str(times)), ("backend", outcome.backend)),
                "the loader writes one JSON line per event and one result, then exits; this was "
                "written by other code in the sandboxed process. The kernel's (seccomp) records "
                "above are unaffected.",
            )
        )
    if not any(e.kind == "spawn" for e in outcome.events):
        # the Python-level attempt when no exec reached the kernel (e.g. refused earlier)
        for call in python_side["spawn"][:5]:
            facts.append(
                Fact(
                    "dynamic.spawn",
                    call,
                    where,
                    (("syscall", "none"), ("source", "audit hook")),
                    context or None,
                )
            )
    detail = (("loader", outcome.loader), ("backend", outcome.backend))
    error = outcome.error or ""
    status = outcome.status
    trace = (
        outcome.summary.get("traceback")
        if isinstance(outcome.summary.get("traceback"), str)
        else None
    )
    if status == "load":
        facts.append(Fact("dynamic.load-failed", error, where, detail, trace))
    elif status == "inference":
        facts.append(Fact("dynamic.inference-failed", error, where, detail))
    elif status == "memory":
        facts.append(
            Fact("dynamic.memory", error, where, (*detail, ("limit", _gib(options.memory))))
        )
    elif status == "timeout":
        facts.append(
            Fact(
                "dynamic.timeout",
                f"{options.timeout:g}s",
                where,
                (*detail, ("seconds", f"{options.timeout:g}")),
            )
        )
    elif status == "crash":
        facts.append(Fact("dynamic.crash", error, where, detail))
    elif status in ("unsupported", "error"):
        facts.append(Fact("dynamic.unanalysed", error, where, detail))
    facts.extend(_sanity_facts(outcome, where))
    return facts


def _sanity_facts(outcome: Outcome, where: Location) -> list[Fact]:
    facts: list[Fact] = []
    summary = outcome.summary
    for part in ("weights", "outputs"):
        report = summary.get(part)
        if not isinstance(report, dict):
            continue
        for name in report.get("non_finite", [])[:20]:
            facts.append(
                Fact("dynamic.non-finite", str(name), where.at(key=str(name)), (("part", part),))
            )
        expected = summary.get("expected") if part == "outputs" else None
        if isinstance(expected, dict):
            shapes = report.get("shapes", {})
            for name, want in expected.items():
                got = shapes.get(name)
                if not isinstance(got, list) or not isinstance(want, list):
                    continue
                if len(got) != len(want) or any(
                    w is not None and w != g for w, g in zip(want, got, strict=False)
                ):
                    facts.append(
                        Fact(
                            "dynamic.output-shape",
                            str(name),
                            where.at(key=str(name)),
                            (
                                ("actual", str(got)),
                                ("expected", str(["?" if w is None else w for w in want])),
                            ),
                        )
                    )
    return facts


def _run_record(outcome: Outcome) -> DynamicRun:
    t = outcome.timings
    note = outcome.summary.get("note") if isinstance(outcome.summary.get("note"), str) else None
    if outcome.status in ("unsupported", "error"):
        note = outcome.error
    if outcome.read_only_failed:
        note = "; ".join(
            filter(None, [note, "not made read-only: " + ", ".join(outcome.read_only_failed)])
        )
    return DynamicRun(
        loader=outcome.loader,
        backend=outcome.backend,
        status=outcome.status,
        startup=round(t.get("startup", 0.0), 4),
        warm=round(t.get("warm", 0.0), 4),
        load=round(t["load"], 4) if "load" in t else None,
        inference=round(t["inference"], 4) if "inference" in t else None,
        peak_rss=outcome.peak_rss,
        landlock_abi=outcome.landlock_abi,
        note=note,
    )


def run_dynamic(
    results: Sequence[ArtifactResult],
    policy: Policy,
    options: Options,
    jobs: int = 1,
    real_paths: Mapping[str, str] | None = None,
) -> list[ArtifactResult]:
    """Load every loadable artifact in the sandbox; return the results with D findings added.

    ``real_paths`` maps a displayed path (``hf://ORG/NAME@REV/file``) to the file on disk.
    Raises :class:`SandboxUnavailable` when no isolation backend works here.
    """
    real_paths = real_paths or {}
    backend = choose(options.backend)
    todo = [
        (i, r, loader)
        for i, r in enumerate(results)
        if (loader := loader_for(r, real_paths.get(r.path)))
    ]
    out = list(results)

    def one(item: tuple[int, ArtifactResult, str]) -> tuple[int, Outcome]:
        i, r, loader = item
        outcome = run(real_paths.get(r.path, r.path), loader, backend, options)
        outcome.target = r.path  # findings name the artifact as the report does
        return i, outcome

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for i, outcome in pool.map(one, todo):
            found = policy.findings(outcome_facts(outcome, options))
            r = out[i]
            out[i] = replace(r, findings=r.findings + tuple(found), dynamic=_run_record(outcome))
    return out
