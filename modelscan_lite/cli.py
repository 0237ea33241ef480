"""The command line: ``modelscan-lite scan PATH...`` and ``modelscan-lite rule [ID]``.

Exit codes: 0 no finding at or above ``--fail-on``; 1 such findings; 2 usage, configuration
or scan error (an error never masks a finding: findings win), including a report that cannot
be written; 130 interrupted (Ctrl-C), with no report. stdout carries only the report;
progress and diagnostics go to stderr, neutralised like the text report. ``-o`` writes the
report atomically.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from .config import Config

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

app = typer.Typer(
    name="modelscan-lite",
    help="Check model files before anything loads them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _fail(message: str) -> typer.Exit:
    _say(f"error: {message}")
    return typer.Exit(EXIT_ERROR)


def _say(message: str) -> None:
    """A diagnostic on stderr; messages can quote paths and names a file chose."""
    from .report.neutral import neutralise

    typer.echo(f"modelscan-lite: {neutralise(message)}", err=True)


def _split_ids(values: list[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(v.strip().upper() for item in values for v in item.split(",") if v.strip())


@app.command()
def scan(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Files, directories, or hf://ORG/NAME[@REVISION] repos to scan."),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="text, json or sarif.")
    ] = "text",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to FILE.")
    ] = None,
    fail_on: Annotated[
        str | None, typer.Option(help="low, medium, high, critical or never (default: medium).")
    ] = None,
    select: Annotated[
        list[str] | None,
        typer.Option(help="Only these rule IDs or prefixes (comma-separated, repeatable)."),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option(help="Skip these rule IDs or prefixes (comma-separated, repeatable)."),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=0, help="Parallel workers (0: one per core).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="A pyproject.toml to read [tool.modelscan-lite] from.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
    hf_cache: Annotated[
        bool,
        typer.Option(
            "--hf-cache", help="Scan every repo and revision in the local Hugging Face cache."
        ),
    ] = False,
    dynamic: Annotated[
        str | None,
        typer.Option(
            help="Also load each artifact for real in a sandbox: off (default), auto (skip "
            "with a notice where no sandbox can run) or require (exit 2 there)."
        ),
    ] = None,
    sandbox_backend: Annotated[
        str | None,
        typer.Option(help="auto (default), bwrap, namespaces or landlock."),
    ] = None,
    sandbox_timeout: Annotated[
        float | None,
        typer.Option(min=1, help="Seconds one sandboxed load and inference may take (120)."),
    ] = None,
    trust_remote_code: Annotated[
        bool,
        typer.Option(
            "--trust-remote-code",
            help="Let transformers run a repo's own code (inside the sandbox only).",
        ),
    ] = False,
) -> None:
    """Scan model files (and archives, and directories of them) without loading them."""
    from .config import ConfigError, load_config, parse_fail_on
    from .engine import RuleError
    from .report import FORMATS, render
    from .scanner import scan_paths

    if not paths and not hf_cache:
        raise _fail("give at least one PATH, or --hf-cache")
    if output_format not in FORMATS:
        raise _fail(f"--format must be one of {', '.join(FORMATS)}, not {output_format!r}")
    try:
        cfg = load_config(config)
        cfg = cfg.merged(
            fail_on=parse_fail_on(fail_on) if fail_on is not None else None,
            select=_split_ids(select),
            ignore=_split_ids(ignore),
            jobs=jobs,
        )
        cfg = _sandbox_overrides(cfg, dynamic, sandbox_backend, sandbox_timeout, trust_remote_code)
        if fail_on is not None and fail_on.strip().lower() == "never":
            from dataclasses import replace

            cfg = replace(cfg, fail_on=None)
        targets = [str(p) for p in paths or []]
        if quiet or not sys.stderr.isatty():
            report = scan_paths(targets, cfg, hf_cache=hf_cache)
        else:
            with _progress() as progress:
                report = scan_paths(targets, cfg, progress, hf_cache=hf_cache)
    except (ConfigError, RuleError) as exc:
        raise _fail(str(exc)) from None
    color = output is None and output_format == "text" and sys.stdout.isatty()
    text = render(report, output_format, color=color)
    if output is not None:
        try:
            _write_atomically(output, text)
        except OSError as exc:
            raise _fail(f"cannot write {output}: {exc.strerror or exc}") from None
    else:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except OSError as exc:
            raise _fail(f"cannot write the report to stdout: {exc.strerror or exc}") from None
    for note in report.notes:
        _say(note)
    for err in report.errors:
        _say(err)
    if report.failing():
        raise typer.Exit(EXIT_FINDINGS)
    if report.errors:
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_OK)


def _write_atomically(path: Path, text: str) -> None:
    """The whole report or nothing: a temp file beside ``path``, then a rename. A full disk
    or a failed write leaves any earlier report at ``path`` as it was."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def _sandbox_overrides(
    cfg: Config, dynamic: str | None, backend: str | None, timeout: float | None, trust: bool
) -> Config:
    from dataclasses import replace

    from .config import DYNAMIC_MODES, SANDBOX_BACKENDS, check_choice

    box = cfg.sandbox
    if dynamic is not None:
        cfg = replace(cfg, dynamic=check_choice(dynamic, DYNAMIC_MODES, "--dynamic"))
    if backend is not None:
        box = replace(box, backend=check_choice(backend, SANDBOX_BACKENDS, "--sandbox-backend"))
    if timeout is not None:
        box = replace(box, timeout=timeout)
    if trust:
        box = replace(box, trust_remote_code=True)
    return replace(cfg, sandbox=box)


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, shown once a scan has more than a handful of files."""
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if total < 20:
            return
        if "bar" not in state:
            from rich.console import Console
            from rich.progress import Progress

            bar = Progress(console=Console(stderr=True), transient=True)
            bar.start()
            state["bar"], state["task"] = bar, bar.add_task("scanning", total=total)
        state["bar"].update(state["task"], completed=done)

    try:
        yield update
    finally:
        if "bar" in state:
            state["bar"].stop()


@app.command()
def rule(
    rule_id: Annotated[str | None, typer.Argument(help="A rule ID such as P101.")] = None,
) -> None:
    """Show one rule's documentation, or list all rules."""
    from .engine import RuleError, load_rules
    from .rule_docs import render_rule, render_rule_list

    try:
        ruleset = load_rules()
    except RuleError as exc:
        raise _fail(str(exc)) from None
    if rule_id is None:
        sys.stdout.write(render_rule_list(ruleset))
        return
    found = ruleset.get(rule_id)
    if found is None:
        raise _fail(f"no rule {rule_id!r}; `modelscan-lite rule` lists them")
    sys.stdout.write(render_rule(found))


@app.command()
def version() -> None:
    """Print the tool and rule-set versions."""
    from . import __version__
    from .engine import load_rules

    sys.stdout.write(f"modelscan-lite {__version__} (rules {load_rules().version})\n")


class _Interrupted(BaseException):
    """SIGINT, raised past click (which would turn KeyboardInterrupt into exit 1, the code for
    findings) so that ``finally`` blocks run (sandbox children are killed) and the exit code
    is 130."""


def _on_sigint(signum: int, frame: object) -> None:
    raise _Interrupted


def main() -> None:
    """Ctrl-C stops the scan with exit 130 and writes no report: a partial report could read
    as a pass."""
    import signal

    signal.signal(signal.SIGINT, _on_sigint)
    try:
        app()
    except _Interrupted:
        _say("interrupted: no report was written")
        sys.exit(EXIT_INTERRUPTED)
