"""Configuration: ``[tool.modelscan-lite]`` in the nearest ``pyproject.toml``, then CLI overrides.

Keys: ``select``, ``ignore`` (rule IDs or prefixes), ``fail-on`` (severity or ``never``),
``severity`` (table: rule ID -> severity), ``per-path-ignores`` (table: path glob -> IDs; a
glob with a ``/`` is matched against the path relative to the config file's folder, as ruff
does, one without against the file name; an absolute glob against the absolute path),
``allow-globals`` (exact global names, ``module.Name`` or ``module:Qual.name``, added to the
pickle allowlist), ``jobs``, ``executor`` (local or dask, see :mod:`.executors`), ``cache``
(false: no result cache, see :mod:`.result_cache`); for the sandboxed loader ``dynamic`` (off,
auto, require), ``sandbox-backend`` (auto, bwrap, namespaces, landlock), ``sandbox-timeout``
(seconds), ``sandbox-memory-mib`` and ``trust-remote-code``.

Waivers (see :mod:`.waivers`): ``baseline`` (a baseline file written by ``--write-baseline``,
relative to the config file's folder) and ``[[tool.modelscan-lite.suppress]]`` entries:
``rule`` (ID or prefix; required unless ``fingerprint``), ``path`` (glob, anchored as in
``per-path-ignores``), ``member`` (glob on the archive member), ``fingerprint``, ``reason``
(required) and ``expires`` (a date; the entry stops applying the day after, with a note).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .allowlist import AllowlistError, parse_identity
from .limits import Limits
from .model import Severity

if TYPE_CHECKING:
    from .waivers import Suppression

DEFAULT_FAIL_ON = Severity.MEDIUM
KEYS = {
    "select",
    "ignore",
    "fail-on",
    "severity",
    "per-path-ignores",
    "allow-globals",
    "jobs",
    "executor",
    "dynamic",
    "sandbox-backend",
    "sandbox-timeout",
    "sandbox-memory-mib",
    "trust-remote-code",
    "baseline",
    "suppress",
    "cache",
}
DYNAMIC_MODES = ("off", "auto", "require")
SANDBOX_BACKENDS = ("auto", "bwrap", "namespaces", "landlock")
EXECUTORS = ("local", "dask")  # modelscan_lite.executors
MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    """Limits and choices for the sandboxed loader (``--dynamic``)."""

    backend: str = "auto"
    timeout: float = 120.0
    memory: int = 8192 * MiB
    file_size: int = 1024 * MiB
    open_files: int = 1024
    trust_remote_code: bool = False


class ConfigError(ValueError):
    """Bad configuration: exit code 2 with this message."""


@dataclass(frozen=True)
class Config:
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_on: Severity | None = DEFAULT_FAIL_ON
    severity: dict[str, Severity] = field(default_factory=dict)
    per_path_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    allow_globals: tuple[str, ...] = ()
    jobs: int = 0  # 0: one per core
    limits: Limits = field(default_factory=Limits)
    source: str | None = None
    # the folder per-path-ignores are anchored to: the config file's own (None: the cwd)
    root: str | None = None
    dynamic: str = "off"
    # --hash: read every byte once more for the SHA-256 of each file (report field sha256)
    full_hash: bool = False
    # the result cache (modelscan_lite.result_cache): an unchanged file's result is reused
    # (off with --no-cache, ``cache = false`` or MODELSCAN_LITE_NO_CACHE)
    cache: bool = True
    sandbox: SandboxOptions = field(default_factory=SandboxOptions)
    # waivers (modelscan_lite.waivers): a baseline file to read (a relative path is taken
    # from the working directory; the pyproject key from the config file's folder), one to
    # write instead (--write-baseline), suppression entries (pyproject and --suppressions)
    baseline: str | None = None
    write_baseline: str | None = None
    suppress: tuple[Suppression, ...] = ()
    # where the per-file scans run (modelscan_lite.executors): "local" or "dask", and the
    # Dask scheduler address (None: a LocalCluster the scan starts)
    executor: str = "local"
    scheduler: str | None = None
    # remote files (modelscan_lite.remote) scanned at once: threads waiting on the network
    remote_jobs: int = 32
    # --download: fetch hf:// repos into the Hugging Face cache (after a clean remote scan)
    download: bool = False

    def merged(self, **overrides: Any) -> Config:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def check_rule_ids(cfg: Config, known: list[str]) -> None:
    """Every rule ID or prefix the config names must select at least one rule: a typo in
    ``--select`` would otherwise switch every rule off, one in ``--ignore`` silently keep a
    rule on. ConfigError with the nearest IDs when one does not."""
    import difflib

    named = [
        ("select", cfg.select),
        ("ignore", cfg.ignore),
        ("severity", tuple(cfg.severity)),
        *((f"per-path-ignores.{pat}", ids) for pat, ids in cfg.per_path_ignores),
        ("suppress", tuple(s.rule for s in cfg.suppress if s.rule is not None)),
    ]
    for key, ids in named:
        for raw in ids:
            rid = raw.strip().upper()
            if rid and any(k.startswith(rid) for k in known):
                continue
            near = difflib.get_close_matches(rid, known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(f"{key}: {raw!r} names no rule{hint}")


def parse_fail_on(text: str) -> Severity | None:
    if text.strip().lower() == "never":
        return None
    try:
        return Severity.parse(text)
    except ValueError:
        raise ConfigError(
            f"fail-on must be low, medium, high, critical or never, not {text!r}"
        ) from None


def _str_list(value: Any, key: str, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: {key} must be a list of strings")
    return tuple(value)


def from_table(table: dict[str, Any], source: str) -> Config:
    unknown = set(table) - KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown keys in [tool.modelscan-lite]: {sorted(unknown)}")
    cfg = Config(source=source)
    if "select" in table:
        cfg = replace(cfg, select=_str_list(table["select"], "select", source))
    if "ignore" in table:
        cfg = replace(cfg, ignore=_str_list(table["ignore"], "ignore", source))
    if "fail-on" in table:
        cfg = replace(cfg, fail_on=parse_fail_on(str(table["fail-on"])))
    if "severity" in table:
        sev = table["severity"]
        if not isinstance(sev, dict):
            raise ConfigError(f"{source}: severity must be a table of rule ID = severity")
        try:
            cfg = replace(cfg, severity={k.upper(): Severity.parse(str(v)) for k, v in sev.items()})
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    if "per-path-ignores" in table:
        ppi = table["per-path-ignores"]
        if not isinstance(ppi, dict):
            raise ConfigError(f"{source}: per-path-ignores must be a table of glob = [IDs]")
        cfg = replace(
            cfg,
            per_path_ignores=tuple(
                (k, _str_list(v, f"per-path-ignores.{k}", source)) for k, v in ppi.items()
            ),
        )
    if "allow-globals" in table:
        names = _str_list(table["allow-globals"], "allow-globals", source)
        for name in names:
            try:
                parse_identity(name)
            except AllowlistError as exc:
                raise ConfigError(f"{source}: allow-globals: {exc}") from None
        cfg = replace(cfg, allow_globals=names)
    if "jobs" in table:
        if not isinstance(table["jobs"], int) or table["jobs"] < 0:
            raise ConfigError(f"{source}: jobs must be a whole number >= 0")
        cfg = replace(cfg, jobs=table["jobs"])
    if "cache" in table:
        if not isinstance(table["cache"], bool):
            raise ConfigError(f"{source}: cache must be true or false")
        cfg = replace(cfg, cache=table["cache"])
    if "executor" in table:
        try:
            cfg = replace(cfg, executor=check_choice(table["executor"], EXECUTORS, "executor"))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    cfg = _waiver_keys(cfg, table, source)
    return _sandbox_keys(cfg, table, source)


def _waiver_keys(cfg: Config, table: dict[str, Any], source: str) -> Config:
    """``baseline`` (relative to the config file's folder) and ``[[...suppress]]`` entries."""
    if "baseline" in table:
        import os

        if not isinstance(table["baseline"], str) or not table["baseline"].strip():
            raise ConfigError(f"{source}: baseline must be the path of a baseline file")
        folder = os.path.dirname(os.path.abspath(source))
        cfg = replace(cfg, baseline=os.path.join(folder, table["baseline"]))
    if "suppress" in table:
        from .waivers import parse_suppressions

        cfg = replace(cfg, suppress=parse_suppressions(table["suppress"], source))
    return cfg


def check_choice(value: object, choices: tuple[str, ...], key: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _sandbox_keys(cfg: Config, table: dict[str, Any], source: str) -> Config:
    box = cfg.sandbox
    try:
        if "dynamic" in table:
            cfg = replace(cfg, dynamic=check_choice(table["dynamic"], DYNAMIC_MODES, "dynamic"))
        if "sandbox-backend" in table:
            backend = check_choice(table["sandbox-backend"], SANDBOX_BACKENDS, "sandbox-backend")
            box = replace(box, backend=backend)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    timeout = table.get("sandbox-timeout", box.timeout)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise ConfigError(f"{source}: sandbox-timeout must be a number of seconds > 0")
    memory = table.get("sandbox-memory-mib", box.memory // MiB)
    if not isinstance(memory, int) or isinstance(memory, bool) or memory < 64:
        raise ConfigError(f"{source}: sandbox-memory-mib must be a whole number >= 64")
    trust = table.get("trust-remote-code", box.trust_remote_code)
    if not isinstance(trust, bool):
        raise ConfigError(f"{source}: trust-remote-code must be true or false")
    box = replace(box, timeout=float(timeout), memory=memory * MiB, trust_remote_code=trust)
    return replace(cfg, sandbox=box)


def find_pyproject(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None = None, start: Path | None = None) -> Config:
    """The config from ``path`` or the nearest ``pyproject.toml`` above ``start``."""
    pyproject = path or find_pyproject((start or Path.cwd()).resolve())
    if pyproject is None:
        return Config()
    import tomllib

    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except RecursionError:
        raise ConfigError(f"{pyproject}: nests too deep to be a configuration") from None
    except (OSError, ValueError) as exc:  # TOMLDecodeError and UnicodeDecodeError included
        # a config that does not parse is an error, never "no config": it may hold the
        # ignores and severities the user relies on
        raise ConfigError(f"{pyproject}: {exc}") from None
    table = data.get("tool", {}).get("modelscan-lite")
    if table is None:
        return Config()
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.modelscan-lite] must be a table")
    return replace(from_table(table, str(pyproject)), root=str(pyproject.resolve().parent))
