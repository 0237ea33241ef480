"""The command line: ``modelscan-lite scan PATH...`` and ``modelscan-lite rule [ID]``.

Exit codes: 0 no finding at or above ``--fail-on``; 1 such findings; 2 usage, configuration
or scan error (an error never masks a finding: findings win), including a report that cannot
be written; 130 interrupted (Ctrl-C), with no report. stdout carries only the report;
progress and diagnostics go to stderr, neutralised like the text report. ``-o`` writes the
report atomically.
"""

# No ``from __future__ import annotations`` here, unlike the other modules: typer evaluates
# string annotations with eval() twice per parameter on every start (~10 ms of a tiny scan);
# names imported only under TYPE_CHECKING must be quoted.
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from .config import Config

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
# the --format choices, listed in --help (modelscan_lite.report.FORMATS is the source; it is
# imported late, so the list is repeated here and a test keeps the two equal)
FORMAT_CHOICES = ("text", "json", "sarif", "github", "gitlab", "junit")

# every command group: no completion install, help with no arguments, no rich tracebacks
_GROUP: dict[str, Any] = {
    "add_completion": False,
    "no_args_is_help": True,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
    "context_settings": {"help_option_names": ["-h", "--help"]},
}
app = typer.Typer(
    name="modelscan-lite", help="Check model files before anything loads them.", **_GROUP
)

SCAN_EPILOG = """\b
Examples:
  modelscan-lite scan model.pt                one file, by content
  modelscan-lite scan ./my-model/ -f sarif -o r.sarif
  modelscan-lite scan hf://org/name@main      a Hugging Face repo, by range reads
  modelscan-lite scan https://host/m.gguf     one URL, headers only
  modelscan-lite scan --hf-cache              every repo in the local HF cache
  modelscan-lite scan . --baseline b.json     known findings waived
  modelscan-lite rule P101                    what a finding means, how to fix it

\b
Exit codes:
  0  no finding at or above --fail-on
  1  findings at or above --fail-on (they win over errors)
  2  usage, configuration or scan error
  130  interrupted (no report written)
"""


def _version_text() -> str:
    from . import __version__
    from .engine import load_rules
    from .formats import walker_engine

    try:
        walker = walker_engine.describe()
    except walker_engine.WalkerUnavailable as exc:
        walker = str(exc)
    return f"modelscan-lite {__version__} (rules {load_rules().version})\npickle walker: {walker}\n"


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(_version_text())
        raise typer.Exit(EXIT_OK)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_show_version,
            is_eager=True,
            help="Print the tool and rule-set versions and exit.",
        ),
    ] = False,
) -> None:
    """Check model files before anything loads them: nothing is unpickled, imported or run.

    `modelscan-lite scan -h` shows the scan options, exit codes and examples."""


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


@app.command(epilog=SCAN_EPILOG)
def scan(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files, directories, hf://ORG/NAME[@REVISION] repos (hf://datasets/...), "
            "https:// URLs or s3:// gs:// az:// paths; remote ones are read by range "
            "requests, never downloaded."
        ),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format", "-f", metavar="[" + "|".join(FORMAT_CHOICES) + "]", help="Report format."
        ),
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write the report to FILE."),
    ] = None,
    sarif_output: Annotated[
        Path | None,
        typer.Option(
            "--sarif-output",
            metavar="FILE",
            help="Also write a SARIF report to FILE, whatever --format is (one scan for the "
            "log and for code scanning).",
        ),
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            metavar="[low|medium|high|critical|never]",
            help="Lowest severity that fails the scan (exit 1); default medium.",
        ),
    ] = None,
    select: Annotated[
        list[str] | None,
        typer.Option(
            metavar="IDS", help="Only these rule IDs or prefixes (comma-separated, repeatable)."
        ),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            metavar="IDS", help="Skip these rule IDs or prefixes (comma-separated, repeatable)."
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", min=0, metavar="N", help="Parallel workers (0: one per core)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="A pyproject.toml to read [tool.modelscan-lite] from."),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="Print only findings and errors: no progress, no notes, nothing for clean "
            "or skipped files.",
        ),
    ] = False,
    hf_cache: Annotated[
        bool,
        typer.Option(
            "--hf-cache", help="Scan every repo and revision in the local Hugging Face cache."
        ),
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Scan every file again: neither read nor write the result cache "
            "(`modelscan-lite cache stats`).",
        ),
    ] = False,
    download: Annotated[
        bool,
        typer.Option(
            "--download",
            help="Download each hf:// repo into the Hugging Face cache after its remote scan "
            "fails nothing, and scan the download (for --dynamic); a repo that fails is not "
            "downloaded.",
        ),
    ] = False,
    dynamic: Annotated[
        str | None,
        typer.Option(
            metavar="[off|auto|require]",
            help="Also load each artifact for real in a sandbox: off (default), auto (skip "
            "with a notice where no sandbox can run) or require (exit 2 there).",
        ),
    ] = None,
    sandbox_backend: Annotated[
        str | None,
        typer.Option(
            metavar="[auto|bwrap|namespaces|landlock]", help="Sandbox isolation (default auto)."
        ),
    ] = None,
    sandbox_timeout: Annotated[
        float | None,
        typer.Option(
            min=1,
            metavar="SECONDS",
            help="Seconds one sandboxed load and inference may take (120).",
        ),
    ] = None,
    trust_remote_code: Annotated[
        bool,
        typer.Option(
            "--trust-remote-code",
            help="Let transformers run a repo's own code (inside the sandbox only).",
        ),
    ] = False,
    full_hash: Annotated[
        bool,
        typer.Option(
            "--hash",
            help="Also read every byte of each file for its SHA-256 (report field sha256); "
            "without it files are identified by the bytes the scan read.",
        ),
    ] = False,
    baseline: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Waive the findings recorded in this baseline file (matched by rule and "
            "fingerprint); entries that match nothing are noted.",
        ),
    ] = None,
    write_baseline: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Record every current finding in FILE (JSON) and accept them: the report "
            "lists them as baselined and the exit code is 0 unless there is an error.",
        ),
    ] = None,
    suppressions: Annotated[
        list[str] | None,
        typer.Option(
            metavar="FILE",
            help="Suppression entries (rule, path, member or fingerprint, reason, expires) "
            "from a TOML or YAML file, added to [[tool.modelscan-lite.suppress]] (repeatable).",
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            metavar="[local|dask]",
            help="Where the files are scanned: local (default: this process or a process "
            "pool) or dask (a Dask cluster; needs modelscan-lite[dask]).",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="With --executor dask: the scheduler to use (tcp://HOST:PORT; its workers "
            "must see the files at the same paths); default a local cluster of --jobs "
            "workers.",
        ),
    ] = None,
) -> None:
    """Scan model files (and archives, and directories of them) without loading them."""
    from dataclasses import replace

    from .atomic_write import write_atomically
    from .config import ConfigError, load_config, parse_fail_on
    from .engine import RuleError
    from .formats import walker_engine
    from .report import FORMATS, render
    from .scanner import scan_paths

    if not paths and not hf_cache:
        raise _fail("give at least one PATH, or --hf-cache")
    if output_format not in FORMATS:
        raise _fail(f"--format must be one of {', '.join(FORMATS)}, not {output_format!r}")
    if (
        output is not None
        and sarif_output is not None
        and output.resolve() == sarif_output.resolve()
    ):
        raise _fail("-o and --sarif-output name the same file; give two files")
    if output is None and sys.stdout is None:  # started with stdout closed
        raise _fail("cannot write the report to stdout: it is closed (use -o FILE)")
    try:
        cfg = load_config(config)
        cfg = cfg.merged(
            fail_on=parse_fail_on(fail_on) if fail_on is not None else None,
            select=_split_ids(select),
            ignore=_split_ids(ignore),
            jobs=jobs,
        )
        cfg = _executor_overrides(cfg, executor, scheduler)
        cfg = _sandbox_overrides(cfg, dynamic, sandbox_backend, sandbox_timeout, trust_remote_code)
        if full_hash:
            cfg = replace(cfg, full_hash=True)
        if download:
            cfg = replace(cfg, download=True)
        if no_cache:
            cfg = replace(cfg, cache=False)
        if baseline is not None or write_baseline is not None or suppressions:
            from .waivers import with_cli_options

            cfg = with_cli_options(cfg, baseline, write_baseline, suppressions or ())
        if fail_on is not None and fail_on.strip().lower() == "never":
            cfg = replace(cfg, fail_on=None)
        notice = walker_engine.fallback_notice()  # the compiled walker was not built
        if notice:
            _say(notice)
        walker_engine.core()  # MODELSCAN_LITE_WALKER=compiled without it: exit 2 now
        targets = [str(p) for p in paths or []]
        if quiet or sys.stderr is None or not sys.stderr.isatty():
            report = scan_paths(targets, cfg, hf_cache=hf_cache)
        else:
            with _progress() as progress:
                report = scan_paths(targets, cfg, progress, hf_cache=hf_cache)
    except (ConfigError, RuleError, walker_engine.WalkerUnavailable) as exc:
        raise _fail(str(exc)) from None
    color = output is None and output_format == "text" and sys.stdout.isatty()
    # on a terminal, long lines are folded under their own indent
    width = shutil.get_terminal_size().columns if color else None
    text = render(report, output_format, color=color, quiet=quiet, width=width)
    if output is not None:
        try:
            write_atomically(output, text)
        except OSError as exc:
            raise _fail(f"cannot write {output}: {exc.strerror or exc}") from None
    else:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except OSError as exc:
            raise _fail(f"cannot write the report to stdout: {exc.strerror or exc}") from None
    if sarif_output is not None:
        try:
            sarif = text if output_format == "sarif" else render(report, "sarif")
            write_atomically(sarif_output, sarif)
        except OSError as exc:
            raise _fail(f"cannot write {sarif_output}: {exc.strerror or exc}") from None
    if output is not None or output_format != "text":
        # a text report on stdout shows them already: said once (a CI log merges the streams)
        for note in () if quiet else report.notes:
            _say(note)
        for err in report.errors:
            _say(err)
    if report.failing():
        raise typer.Exit(EXIT_FINDINGS)
    if report.errors:
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_OK)


def _executor_overrides(cfg: "Config", executor: str | None, scheduler: str | None) -> "Config":
    """``--executor`` and ``--scheduler`` (see :mod:`.executors`); a missing Dask install
    fails here, before the walk."""
    from dataclasses import replace

    from .config import EXECUTORS, ConfigError, check_choice

    if executor is not None:
        cfg = replace(cfg, executor=check_choice(executor, EXECUTORS, "--executor"))
    if scheduler is not None:
        if cfg.executor != "dask":
            raise ConfigError("--scheduler needs --executor dask")
        cfg = replace(cfg, scheduler=scheduler)
    if cfg.executor == "dask":
        from .executors import require_dask

        require_dask()
    return cfg


def _sandbox_overrides(
    cfg: "Config", dynamic: str | None, backend: str | None, timeout: float | None, trust: bool
) -> "Config":
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
def _progress() -> Iterator[Callable[[str | None, int, int, int, int], None]]:
    """A progress line on stderr naming the file being scanned, with files and bytes done.

    It appears only once a scan has run for :data:`PROGRESS_DELAY` seconds (a timer starts
    it, so a single big file shows it too) and is erased at the end."""
    import threading

    state: dict[str, Any] = {}
    lock = threading.Lock()

    def show() -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        with lock:
            if state.get("closed"):
                return
            bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                TextColumn("{task.fields[files]}"),
                DownloadColumn(binary_units=True),
                TimeElapsedColumn(),
                console=Console(stderr=True, highlight=False),
                transient=True,
            )
            state["task"] = bar.add_task("", total=1, files="")
            state["bar"] = bar
            _refresh()
            bar.start()

    def _refresh() -> None:
        from rich.text import Text

        if "bar" not in state or "last" not in state:
            return
        path, done, total, done_bytes, total_bytes = state["last"]
        name = neutral_name(path) if path else "done"
        state["bar"].update(
            state["task"],
            description=Text(name),  # Text: a file name is never read as markup
            completed=done_bytes,
            total=max(total_bytes, 1),
            files=f"{done}/{total} files",
        )

    def update(path: str | None, done: int, total: int, done_bytes: int, total_bytes: int) -> None:
        with lock:
            state["last"] = (path, done, total, done_bytes, total_bytes)
            _refresh()

    timer = threading.Timer(PROGRESS_DELAY, show)
    timer.daemon = True
    timer.start()
    try:
        yield update
    finally:
        timer.cancel()
        with lock:
            state["closed"] = True
            if "bar" in state:
                state["bar"].stop()


PROGRESS_DELAY = 0.5


def neutral_name(path: str, width: int = 48) -> str:
    """``path`` made safe for the terminal and cut from the left to ``width`` characters."""
    from .report.neutral import neutralise

    text = neutralise(path)
    return text if len(text) <= width else "..." + text[-(width - 3) :]


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


cache_app = typer.Typer(
    help="The result cache: an unchanged file's result is reused (see scan --no-cache).",
    **_GROUP,
)
app.add_typer(cache_app, name="cache")


@cache_app.command("stats")
def cache_stats() -> None:
    """Where the result cache is, how many results it holds, its size."""
    from .result_cache import stats_text

    sys.stdout.write(stats_text() + "\n")


@cache_app.command("clear")
def cache_clear() -> None:
    """Remove every cached result."""
    from .result_cache import clear_text

    sys.stdout.write(clear_text() + "\n")


@app.command()
def version() -> None:
    """Print the tool and rule-set versions, and which pickle walker runs."""
    sys.stdout.write(_version_text())


class _Interrupted(BaseException):
    """SIGINT, raised past click (which would turn KeyboardInterrupt into exit 1, the code for
    findings) so that ``finally`` blocks run (sandbox children are killed) and the exit code
    is 130."""


def _on_sigint(signum: int, frame: object) -> None:
    raise _Interrupted


def main() -> None:
    """Ctrl-C stops the scan with exit 130 and writes no report: a partial report could read
    as a pass."""
    import gc
    import signal

    # what start-up allocated so far (typer, the modules) lives until exit: frozen, the
    # collections of the rest of start-up and of the scan no longer traverse it (~5 ms)
    gc.freeze()
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        app()
    except _Interrupted:
        _say("interrupted: no report was written")
        sys.exit(EXIT_INTERRUPTED)
