"""Check before load: while the guard is active, the usual model loaders scan first and refuse.

Use it as a context manager (or decorator), or for the whole process::

    import modelscan_lite.guard

    with modelscan_lite.guard.guard(fail_on="medium"):
        model = torch.load("downloads/model.pt")          # scanned, then loaded
        tok = AutoTokenizer.from_pretrained("./my-model")  # the folder is scanned first

    modelscan_lite.guard.install()    # ... until modelscan_lite.guard.uninstall()

A refusal raises :class:`~modelscan_lite.api.UnsafeModelError` (findings at or above
``fail_on``) or :class:`~modelscan_lite.api.ScanError` (the scan could not finish, nothing
failing) *before the loader is called*: not one byte of the artifact is deserialized. When the
scan is clean the guard calls the loader the user called (saved when the guard was installed)
with the same arguments and returns what it returns. ``fail_on`` and ``config`` work as in
:func:`modelscan_lite.check`: by default ``[tool.modelscan-lite]`` of the nearest
``pyproject.toml`` above the current directory, read once, when the guard is installed.

What is intercepted, and where (the narrowest point that sees every file before it is read):

- ``torch.load`` (and ``torch.serialization.load``), ``joblib.load``, ``pickle.load`` (and its
  pure-Python twin ``pickle._load``) and ``numpy.load`` *when* ``allow_pickle`` is true
  (without it NumPy reads no pickle). What is scanned is what the loader reads. A path: the
  whole file. A file object: the loader reads from its current position on (``torch.load``'s
  zip reader counts its offsets from there too; ``numpy.load`` decides npy, npz or pickle
  from the bytes there, but reads an .npz through the whole stream: refused past the start,
  ``ScanError``), so only a *plain* file object (``FileIO``, or a ``BufferedReader``
  over one) at offset 0 of the file its ``name`` is (same device and inode) is scanned by
  path; any other seekable stream (a plain file past a header, ``gzip``/``bz2``/``lzma``
  files, whose loader reads the decoded bytes, ``io.BytesIO``, ``mmap``...) has what it
  yields from its position on copied to a private temporary file, scanned, and is sought
  back to that position. A stream that cannot seek is refused (``ScanError``): read it into
  ``io.BytesIO`` first. A path that does not exist raises ``FileNotFoundError`` without
  calling the loader.
- Files a scanned pickle makes its loader read (rule P402, joblib's pre-0.10
  ``NDArrayWrapper`` sidecars, ``numpy.load(..., allow_pickle=True)``) are scanned too, by
  path, before the loader is called: next to the file for a path, in the working directory
  (where joblib looks) and next to the stream's ``name`` for a stream.
- ``huggingface_hub.hf_hub_download`` (the returned file) and ``snapshot_download`` (the
  returned folder, as a repo): scanned before the path is returned. A refused file stays in
  the Hugging Face cache; every later guarded load of it is refused again.
- transformers: ``transformers.utils.hub.cached_files``, the one function through which
  ``from_pretrained`` of every model, config, tokenizer, processor and remote-code module
  resolves its files, for a local folder as for a hub id. A local folder is scanned whole (so
  the checks across its files run) before the resolver returns; files from the hub are scanned
  as they are returned. Hooking the downloads alone would not do: ``cached_files`` catches
  every exception of a download and falls back to the cached copy, and it returns files
  already in the cache without calling a download at all.
- diffusers: ``DiffusionPipeline.from_pretrained`` scans a local pipeline folder whole first
  (hub pipelines come through ``snapshot_download``); ``diffusers.utils.hub_utils.
  _get_model_file`` scans the weights file each model class resolves. Components loaded by
  transformers, and ``torch.load``, are guarded by the points above.

Each patched function is also replaced wherever a module bound it by name (``from
huggingface_hub import hf_hub_download``), and put back there on uninstall.

Modules are patched only if already imported; the others are patched when they are first
imported (an import hook on ``sys.meta_path``): installing the guard imports neither torch nor
transformers. ``uninstall()`` puts every original back (the same objects) and removes the hook.

Behaviour worth knowing:

- A loader called by the original of a guarded loader (``numpy.load`` -> ``pickle.load``,
  ``torch.load`` -> ``pickle.load`` for the legacy format) is not scanned again when it reads
  what the outer call scanned, in that thread: a file scanned whole (any stream whose
  descriptor is that file), or the very stream scanned, not sought back before where that
  scan began. On anything else (``joblib`` -> ``numpy.load`` of a sidecar file) it is scanned
  like any call. The downloads a hub-side original makes (transformers' resolver ->
  ``hf_hub_download``) are scanned by their caller, on return. The scanner itself never
  reaches the guard.
- Clean verdicts are remembered per file and folder (path, device, inode, size, modification
  and change times; for a plain file object past a header, with the offset), for the
  ``install()``/``guard()`` that made them, until it exits: a folder scanned clean by
  ``from_pretrained`` is not scanned again when ``torch.load`` then opens its weights, and a
  lenient ``guard(fail_on="never")`` block's verdicts are never seen by another block.
- The guard scans in this process (``jobs = 1``) unless the config sets ``jobs``.
- Nested ``guard()``/``install()``: the innermost settings apply (process-wide, every thread)
  until it exits; the originals come back when the last one exits.
- Not covered: ``pickle.loads`` and ``pickle._loads`` on bytes, ``pickle.Unpickler`` and
  ``pickle._Unpickler`` (many libraries subclass them at import time, joblib's unpickler among
  them: replacing them would change their class hierarchy, and subclasses made before the
  guard would still reach the original), loaders bound by name inside a closure or a
  container (``functools.partial(pickle.load)``) before the guard was installed, other
  libraries' own loaders (``dill``, ``cloudpickle``, ``keras``...: scan with
  :func:`modelscan_lite.check`), and a file replaced or rewritten on disk between the scan and
  the load by someone who can write to it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import io
import itertools
import os
import shutil
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .api import FROM_CONFIG, FailOn, ModelScanError, ScanError, raise_for, resolve_config

if TYPE_CHECKING:
    from .config import Config
    from .model import Report

__all__ = ["guard", "install", "installed", "uninstall"]

Fn = Callable[..., Any]

# module -> (attribute path, kind) patched once the module is imported
TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    "pickle": (("load", "pickle.load"), ("_load", "pickle._load")),
    "torch.serialization": (("load", "torch.load"),),
    "torch": (("load", "torch.load"),),
    "joblib.numpy_pickle": (("load", "joblib.load"),),
    "joblib": (("load", "joblib.load"),),
    "numpy": (("load", "numpy.load"),),
    "huggingface_hub.file_download": (("hf_hub_download", "hub-file"),),
    "huggingface_hub._snapshot_download": (("snapshot_download", "hub-folder"),),
    "transformers.utils.hub": (("cached_files", "resolver"),),
    # entry points: only so that a refusal reaches the caller as itself (see _entry)
    "transformers.modeling_utils": (("PreTrainedModel.from_pretrained", "entry"),),
    "transformers.configuration_utils": (("PreTrainedConfig.from_pretrained", "entry"),),
    "transformers.tokenization_utils_base": (("PreTrainedTokenizerBase.from_pretrained", "entry"),),
    "transformers.processing_utils": (("ProcessorMixin.from_pretrained", "entry"),),
    "transformers.image_processing_base": (("ImageProcessingMixin.from_pretrained", "entry"),),
    "transformers.feature_extraction_utils": (("FeatureExtractionMixin.from_pretrained", "entry"),),
    # every AutoModel* class has its own copy of from_pretrained
    "transformers.models.auto.modeling_auto": (("*.from_pretrained", "entry"),),
    "transformers.models.auto.configuration_auto": (("AutoConfig.from_pretrained", "entry"),),
    "transformers.models.auto.tokenization_auto": (("AutoTokenizer.from_pretrained", "entry"),),
    "transformers.models.auto.processing_auto": (("AutoProcessor.from_pretrained", "entry"),),
    "transformers.models.auto.image_processing_auto": (
        ("AutoImageProcessor.from_pretrained", "entry"),
    ),
    "transformers.models.auto.feature_extraction_auto": (
        ("AutoFeatureExtractor.from_pretrained", "entry"),
    ),
    "diffusers.utils.hub_utils": (("_get_model_file", "model-file"),),
    "diffusers.pipelines.pipeline_utils": (("DiffusionPipeline.from_pretrained", "entry"),),
    "diffusers.models.modeling_utils": (("ModelMixin.from_pretrained", "entry"),),
}
# raw loaders: the name of their first parameter (the file), and whether they need a flag
_FILE_PARAM = {
    "pickle.load": "file",
    "pickle._load": "file",
    "torch.load": "f",
    "joblib.load": "filename",
    "numpy.load": "file",
}
# the hub-side wrappers: their originals call each other (resolver -> downloads)
_HUB_KINDS = frozenset({"hub-file", "hub-folder", "resolver", "model-file"})
# file objects that read the bytes of the file they name, as they are on disk
_PLAIN_FILES = (io.FileIO, io.BufferedReader, io.BufferedRandom)
# the rule whose finding names a file the loader reads next to the scanned one
_SIBLING_RULE = "P402"
# what numpy.load takes for an .npz (a local header, or the end record of an empty archive)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_CACHE_SIZE = 4096
_CHUNK = 1 << 20
_tokens = itertools.count(1)


@dataclass(frozen=True, eq=False)
class _Settings:
    """One install() or guard(): the config its scans use (fail_on applied), and the token
    its clean verdicts are remembered under (never reused, unlike ``id()``)."""

    config: Config
    token: int = field(default_factory=lambda: next(_tokens))


@dataclass(frozen=True, eq=False)
class _Scope:
    """What a guarded loader call scanned before calling its original: whole files from
    byte 0 (device, inode), and the stream it was given with the offset the scan began at.
    A loader the original calls in turn on one of these is not scanned again; on anything
    else it is scanned like any call."""

    files: frozenset[tuple[int, int]] = frozenset()
    stream: object | None = None
    start: int = 0


_lock = threading.RLock()
_local = threading.local()
_stack: list[_Settings] = []  # innermost last
_installs: list[_Settings] = []  # the ones install() made, for uninstall()
# id(original) -> (original, wrapper); id(wrapper) -> original
_wrappers: dict[int, tuple[Fn, Fn]] = {}
_originals_of: dict[int, Fn] = {}
# (owner, attribute, original, wrapper) for what was set with setattr (classmethods, attributes)
_patched: list[tuple[object, str, object, object]] = []
# (settings token, signature) -> the sibling files that scan said the loader reads too
_clean: OrderedDict[tuple[int, tuple[Any, ...]], tuple[str, ...]] = OrderedDict()
_hook: _ImportHook | None = None


# --- public API ------------------------------------------------------------------------------


def install(fail_on: FailOn = FROM_CONFIG, config: Config | None = None) -> None:
    """Make the loaders listed in this module's docstring scan first, until :func:`uninstall`.

    ``fail_on`` and ``config`` as in :func:`modelscan_lite.check` (``ConfigError`` now, when
    the pyproject config is invalid)::

        >>> import modelscan_lite.guard
        >>> modelscan_lite.guard.install(fail_on="high")  # doctest: +SKIP
        >>> torch.load("model.pt")  # doctest: +SKIP
        Traceback (most recent call last):
        modelscan_lite.api.UnsafeModelError: modelscan-lite refused torch.load('model.pt'): ...
    """
    settings = _settings(fail_on, config)
    with _lock:
        _installs.append(settings)
        _push(settings)


def uninstall() -> bool:
    """Undo the most recent :func:`install`; False when there was none. When no install and
    no :func:`guard` is left, every original loader is put back where it was."""
    with _lock:
        if not _installs:
            return False
        _pop(_installs.pop())
        return True


@contextlib.contextmanager
def guard(fail_on: FailOn = FROM_CONFIG, config: Config | None = None) -> Iterator[None]:
    """The guard for the duration of a ``with`` block (or of a decorated function)::

    >>> from modelscan_lite.guard import guard
    >>> from modelscan_lite import UnsafeModelError
    >>> with guard():  # doctest: +SKIP
    ...     try:
    ...         state = torch.load("downloads/model.bin")
    ...     except UnsafeModelError as exc:
    ...         print(exc.findings[0].rule)
    P104
    """
    settings = _settings(fail_on, config)
    with _lock:
        _push(settings)
    try:
        yield
    finally:
        with _lock:
            _pop(settings)


def installed() -> bool:
    """Whether a guard is active (install() or an open guard() block)."""
    return bool(_stack)


# --- settings --------------------------------------------------------------------------------


def _settings(fail_on: FailOn, config: Config | None) -> _Settings:
    cfg = resolve_config(config, fail_on)
    if cfg.jobs == 0:
        cfg = replace(cfg, jobs=1)
    return _Settings(cfg)


def _push(settings: _Settings) -> None:
    _stack.append(settings)
    if len(_stack) == 1:
        _activate()


def _pop(settings: _Settings) -> None:
    for i in range(len(_stack) - 1, -1, -1):
        if _stack[i] is settings:
            del _stack[i]
            break
    for key in [k for k in _clean if k[0] == settings.token]:
        del _clean[key]  # its verdicts go with it
    if not _stack:
        _deactivate()


def _active(hub: bool = False) -> _Settings | None:
    """The settings the current call runs under; None when no guard is active, while the
    guard's own scan runs in this thread, or (``hub``) inside a hub-side call whose caller
    scans what it returns."""
    scanning: int = getattr(_local, "scanning", 0)
    resolving: int = getattr(_local, "resolving", 0)
    if scanning or not _stack or (hub and resolving):
        return None
    return _stack[-1]


@contextlib.contextmanager
def _flag(name: str) -> Iterator[None]:
    setattr(_local, name, getattr(_local, name, 0) + 1)
    try:
        yield
    finally:
        setattr(_local, name, getattr(_local, name) - 1)


def _scanning() -> contextlib.AbstractContextManager[None]:
    """The guard's own scan: nothing it calls is guarded (and the scanner loads nothing)."""
    return _flag("scanning")


def _resolving() -> contextlib.AbstractContextManager[None]:
    """A hub-side original: the downloads it makes are scanned by the caller, on return.
    Raw loaders called inside are still guarded."""
    return _flag("resolving")


@contextlib.contextmanager
def _within(scope: _Scope) -> Iterator[None]:
    scopes: list[_Scope] = getattr(_local, "scopes", None) or []
    _local.scopes = scopes
    scopes.append(scope)
    try:
        yield
    finally:
        scopes.pop()


# --- patching --------------------------------------------------------------------------------


def _activate() -> None:
    global _hook
    for name in TARGETS:
        module = sys.modules.get(name)
        if module is not None and _initialised(module):
            _patch_module(module)
    _hook = _ImportHook()
    sys.meta_path.insert(0, _hook)


def _deactivate() -> None:
    global _hook
    if _hook is not None:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(_hook)
        _hook = None
    for owner, attr, original, wrapper in reversed(_patched):
        # put back only what is still ours: a later patch on top of ours is someone else's
        if _raw_attr(owner, attr) is wrapper:
            setattr(owner, attr, original)
    _patched.clear()
    _sweep({id(w): (w, o) for o, w in _wrappers.values()})
    _wrappers.clear()
    _originals_of.clear()
    _clean.clear()


def _initialised(module: ModuleType) -> bool:
    spec = getattr(module, "__spec__", None)
    return not getattr(spec, "_initializing", False)


def _raw_attr(owner: object, attr: str) -> object:
    if isinstance(owner, type):
        return owner.__dict__.get(attr)
    return getattr(owner, attr, None)


def _patch_module(module: ModuleType) -> None:
    with _lock:
        if not _stack:
            return
        replacements: dict[int, tuple[object, object]] = {}
        for kind, owner, attr in _targets_in(module):
            current = _raw_attr(owner, attr)
            if current is None or any(current is w for *_, w in _patched):
                continue  # absent, or already ours
            if id(current) in _originals_of:
                continue  # ours, bound here by a module imported while the guard was on
            if kind == "entry":
                if not isinstance(current, classmethod):
                    continue
                wrapper: object = classmethod(_entry(current.__func__))
                _patched.append((owner, attr, current, wrapper))
                setattr(owner, attr, wrapper)
                continue
            if not callable(current):
                continue
            if id(current) in _wrappers:
                fn = _wrappers[id(current)][1]
            else:
                fn = _wrap(kind, current)
                _wrappers[id(current)] = (current, fn)
                _originals_of[id(fn)] = current
            _patched.append((owner, attr, current, fn))
            setattr(owner, attr, fn)
            replacements[id(current)] = (current, fn)
        if replacements:
            _sweep(replacements)


def _targets_in(module: ModuleType) -> Iterator[tuple[str, object, str]]:
    """(kind, owner, attribute) for each target of ``module`` that exists; ``*`` stands
    for every class the module defines with its own ``from_pretrained``."""
    for path, kind in TARGETS.get(module.__name__, ()):
        *owner_path, attr = path.split(".")
        if owner_path == ["*"]:
            for value in list(vars(module).values()):
                if (
                    isinstance(value, type)
                    and value.__module__ == module.__name__
                    and isinstance(value.__dict__.get(attr), classmethod)
                ):
                    yield kind, value, attr
            continue
        owner: object = module
        try:
            for part in owner_path:
                owner = getattr(owner, part)
        except AttributeError:
            continue
        yield kind, owner, attr


def _sweep(replacements: dict[int, tuple[object, object]]) -> None:
    """In every loaded module, replace each global that is one of the keys of
    ``replacements`` (``id(old) -> (old, new)``, by identity): ``from torch import load`` and
    the like bind the function object itself."""
    if not replacements:
        return
    for module in list(sys.modules.values()):
        if module is None or getattr(module, "__name__", None) == __name__:
            continue
        try:
            namespace = vars(module)
        except TypeError:
            continue
        for key, value in list(namespace.items()):
            pair = replacements.get(id(value))
            if pair is not None and pair[0] is value:
                namespace[key] = pair[1]


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then patches the module it made (and gets out of the way: the
    module's spec and ``__loader__`` keep the real loader)."""

    def __init__(self, real: importlib.abc.Loader) -> None:
        self._real = real

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        spec = module.__spec__
        if spec is not None:
            spec.loader = self._real
        module.__loader__ = self._real
        self._real.exec_module(module)
        _patch_module(module)


class _ImportHook(importlib.abc.MetaPathFinder):
    """Patches a target module right after its first import."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in TARGETS or getattr(_local, "finding", False):
            return None
        _local.finding = True
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            _local.finding = False
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader)
        return spec


# --- wrappers --------------------------------------------------------------------------------


def _wrap(kind: str, original: Fn) -> Fn:
    if kind in _FILE_PARAM:
        return _loader(kind, original)
    if kind in ("hub-file", "hub-folder"):
        return _hub_download(original, folder=kind == "hub-folder")
    return {
        "resolver": _resolver,
        "model-file": _model_file,
    }[kind](original)


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _loader(label: str, original: Fn) -> Fn:
    param = _FILE_PARAM[label]

    @functools.wraps(original)
    def guarded_loader(*args: Any, **kwargs: Any) -> Any:
        settings = _active()
        if settings is None:
            return original(*args, **kwargs)
        if label == "numpy.load" and not _arg(args, kwargs, 2, "allow_pickle"):
            return original(*args, **kwargs)  # no pickle is read without allow_pickle
        source = _arg(args, kwargs, 0, param)
        if _covered(source):
            return original(*args, **kwargs)  # what an enclosing guarded call scanned
        scope = _check_source(source, label, settings)
        with _within(scope):
            return original(*args, **kwargs)

    return guarded_loader


def _hub_download(original: Fn, folder: bool) -> Fn:
    """``hf_hub_download`` (a file) or ``snapshot_download`` (``folder``: a repo folder,
    cross-file checks included): what it returns is scanned before the caller gets it."""
    exists = os.path.isdir if folder else os.path.exists

    @functools.wraps(original)
    def guarded_download(*args: Any, **kwargs: Any) -> Any:
        settings = _active(hub=True)
        if settings is None:
            return original(*args, **kwargs)
        with _resolving():
            result = original(*args, **kwargs)
        if isinstance(result, str | os.PathLike) and exists(result):
            repo = _arg(args, kwargs, 0, "repo_id")
            if folder:
                action = f"snapshot_download({repo!r})"
            else:
                action = f"hf_hub_download({repo!r}, {_arg(args, kwargs, 1, 'filename')!r})"
            _scan([os.fspath(result)], action, settings)
        return result

    return guarded_download


def _resolver(original: Fn) -> Fn:
    @functools.wraps(original)
    def guarded_cached_files(*args: Any, **kwargs: Any) -> Any:
        settings = _active(hub=True)
        if settings is None:
            return original(*args, **kwargs)
        where = _arg(args, kwargs, 0, "path_or_repo_id")
        if isinstance(where, str | os.PathLike) and os.path.isdir(where):
            folder = os.fspath(where)
            _scan([folder], f"transformers from_pretrained({folder!r})", settings)
            with _resolving():
                return original(*args, **kwargs)
        with _resolving():
            result = original(*args, **kwargs)
        files = [os.fspath(p) for p in result or () if isinstance(p, str | os.PathLike)]
        if files:
            _scan(files, f"transformers from_pretrained({where!r})", settings)
        return result

    return guarded_cached_files


def _model_file(original: Fn) -> Fn:
    @functools.wraps(original)
    def guarded_get_model_file(*args: Any, **kwargs: Any) -> Any:
        settings = _active(hub=True)
        if settings is None:
            return original(*args, **kwargs)
        with _resolving():
            result = original(*args, **kwargs)
        if isinstance(result, str | os.PathLike) and os.path.exists(result):
            _scan([os.fspath(result)], f"diffusers from_pretrained({result!r})", settings)
        return result

    return guarded_get_model_file


def _entry(original: Fn) -> Fn:
    """``from_pretrained``: a local folder is scanned whole before anything runs. And since
    transformers and diffusers catch exceptions around the files they resolve (and turn them
    into an ``OSError``, or go on without an optional file), a refusal raised inside the call
    is kept, and the outermost entry point raises it when the call ends, whatever the call
    did with it: the refused file was never handed to the library, and the caller learns why.
    No passthrough here: what the call then fetches from the hub is guarded on its way."""

    @functools.wraps(original)
    def guarded_from_pretrained(cls: type, *args: Any, **kwargs: Any) -> Any:
        settings = _active()
        if settings is None:
            return original(cls, *args, **kwargs)
        where = _arg(args, kwargs, 0, "pretrained_model_name_or_path")
        if isinstance(where, str | os.PathLike) and os.path.isdir(where):
            folder = os.fspath(where)
            _scan([folder], f"{cls.__name__}.from_pretrained({folder!r})", settings)
        depth = getattr(_local, "entries", 0)
        if depth == 0:
            _local.refusal = None
        _local.entries = depth + 1
        failed: BaseException | None = None
        try:
            result = original(cls, *args, **kwargs)
        except BaseException as exc:  # re-raised below, unless a refusal explains it
            failed = exc
        finally:
            _local.entries = depth
        refusal: ModelScanError | None = getattr(_local, "refusal", None) if depth == 0 else None
        if depth == 0:
            _local.refusal = None
        try:
            if refusal is not None and refusal is not failed:
                raise refusal from None
            if failed is not None:
                raise failed
        finally:
            del failed, refusal
        return result

    return guarded_from_pretrained


def _refused(exc: ModelScanError) -> ModelScanError:
    """Note the first refusal inside a ``from_pretrained`` (see :func:`_entry`)."""
    if getattr(_local, "entries", 0) and getattr(_local, "refusal", None) is None:
        _local.refusal = exc
    return exc


# --- scanning --------------------------------------------------------------------------------


def _check_source(source: Any, label: str, settings: _Settings) -> _Scope:
    """Scan what a raw loader is about to read (a path, or a binary file object) and return
    what was scanned. The bytes scanned are the bytes the loader reads: a path or a plain
    file object at offset 0 of the file it names is the whole file (scanned by path); any
    other stream is what it yields from its current position on (a loader reads from there:
    ``pickle.load``, ``numpy.load``, ``joblib.load``, and ``torch.load``, whose zip reader
    counts its offsets from there too), decoded when it decodes (gzip, bz2, lzma...)."""
    if isinstance(source, str | bytes | os.PathLike):
        path = os.fsdecode(os.fspath(source))
        if not os.path.exists(path):
            raise FileNotFoundError(2, "No such file or directory", path)
        ident = _path_ident(path)
        _scan([path], f"{label}({path!r})", settings)
        return _Scope(files=frozenset({ident}) if ident is not None else frozenset())
    plain = _plain_file(source)
    if plain is not None and plain[2] == 0:
        path, ident, _start = plain
        _scan([path], f"{label}({path!r})", settings)
        return _Scope(files=frozenset({ident}), stream=source, start=0)
    start = _scan_stream(source, label, settings, plain)
    return _Scope(stream=source, start=start)


def _covered(source: Any) -> bool:
    """Whether an enclosing guarded call in this thread scanned what ``source`` reads: a
    file it scanned whole (by path, or through any stream whose descriptor is that file),
    or the very stream it scanned, not moved back before where that scan began."""
    scopes: list[_Scope] = getattr(_local, "scopes", None) or []
    if not scopes:
        return False
    if isinstance(source, str | bytes | os.PathLike):
        ident = _path_ident(os.fsdecode(os.fspath(source)))
        return ident is not None and any(ident in s.files for s in scopes)
    ident = _stream_ident(source)
    for scope in scopes:
        if ident is not None and ident in scope.files:
            return True
        if scope.stream is source:
            position = _tell(source)
            return position is not None and position >= scope.start
    return False


def _tell(stream: Any) -> int | None:
    try:
        return int(stream.tell())
    except (AttributeError, OSError, ValueError, TypeError):
        return None


def _path_ident(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _stream_ident(stream: Any) -> tuple[int, int] | None:
    """The file on disk a stream's descriptor is (wrappers such as ``gzip.GzipFile`` answer
    with the file they decode), if any."""
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError, TypeError):
        return None
    return (st.st_dev, st.st_ino)


def _plain_file(stream: Any) -> tuple[str, tuple[int, int], int] | None:
    """(path, identity, position) when ``stream`` is a plain binary file object (``FileIO``
    or a ``BufferedReader`` over one: it yields the file's bytes as they are on disk) whose
    ``name`` is the file it has open; None for anything else (a wrapper that decodes, a
    subclass that may transform, a file renamed or replaced since it was opened)."""
    kind = type(stream)
    if kind not in _PLAIN_FILES:
        return None
    if kind is not io.FileIO and type(getattr(stream, "raw", None)) is not io.FileIO:
        return None
    name = getattr(stream, "name", None)
    if not isinstance(name, str | bytes):
        return None
    path = os.fsdecode(name)
    try:
        opened = os.fstat(stream.fileno())
        named = os.stat(path)
        position = int(stream.tell())
    except (AttributeError, OSError, ValueError, TypeError):
        return None
    ident = (opened.st_dev, opened.st_ino)
    if ident != (named.st_dev, named.st_ino):
        return None
    return path, ident, position


def _scan_stream(
    stream: Any,
    label: str,
    settings: _Settings,
    plain: tuple[str, tuple[int, int], int] | None,
) -> int:
    """Copy what a seekable binary stream yields from its position on to a private file,
    scan it, and seek the stream back; return that position. A clean verdict is remembered
    only for a plain file at an offset (the file's signature and the offset)."""
    action = f"{label}(<{type(stream).__name__} object>)"
    try:
        start = int(stream.tell())
        seekable = bool(stream.seekable()) if hasattr(stream, "seekable") else True
    except (AttributeError, OSError, ValueError, TypeError):
        seekable = False
    if not seekable:
        why = "the stream cannot be rewound after a scan: read it into io.BytesIO, or pass a path"
        raise _refused(ScanError(None, action, (why,)))
    sig: tuple[Any, ...] | None = None
    if plain is not None:
        action = f"{label}({plain[0]!r} from byte {start})"
        file_sig = _file_sig(plain[0])
        sig = None if file_sig is None else (*file_sig, "offset", start)
    name = getattr(stream, "name", None)
    # where joblib looks for the sibling files a pickle names: the working directory for a
    # stream, the stream's folder for good measure
    bases = [""]
    if isinstance(name, str | bytes):
        bases.append(os.path.dirname(os.fsdecode(name)))
    if label == "numpy.load" and start > 0:
        head = stream.read(4)
        stream.seek(start)
        if isinstance(head, bytes) and head.startswith(_ZIP_MAGIC):
            # NumPy hands the stream to zipfile, which reads the whole stream: the members
            # its directory names may sit before the position, where no copy would look
            why = (
                "numpy.load reads an .npz archive through the whole stream, bytes before its "
                "position included: pass a path, or a stream that holds the archive alone"
            )
            raise _refused(ScanError(None, action, (why,)))
    if sig is not None and (settings.token, sig) in _clean:
        _scan_siblings(list(_clean[(settings.token, sig)]), action, settings, set())
        return start
    folder = tempfile.mkdtemp(prefix="modelscan-lite-guard-")
    try:
        copy = os.path.join(folder, "stream")
        with open(copy, "wb") as out:
            while chunk := stream.read(_CHUNK):
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    why = "the stream is not binary (open it with 'rb')"
                    raise _refused(ScanError(None, action, (why,)))
                out.write(chunk)
        stream.seek(start)
        _scan([copy], action, settings, bases=tuple(dict.fromkeys(bases)), sigs=[sig])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return start


def _scan(
    paths: list[str],
    action: str,
    settings: _Settings,
    *,
    bases: tuple[str, ...] | None = None,
    sigs: list[tuple[Any, ...] | None] | None = None,
    seen: set[str] | None = None,
) -> None:
    """Scan ``paths`` unless each was seen clean under these settings; raise when not clean.
    Then scan the sibling files the scan says the loader reads too (rule P402: joblib's old
    ``NDArrayWrapper`` makes it ``numpy.load`` a file next to the pickle), before anything
    is loaded. ``sigs``: what to remember each path's verdict under (None: not remembered;
    by default the path's own signature and those of everything below it). ``bases``: the
    folders a sibling's name is relative to (by default the folder of the file naming it)."""
    token = settings.token
    if seen is None:
        seen = {os.path.realpath(p) for p in paths}
    todo: list[tuple[str, list[tuple[Any, ...]]]] = []
    follow: list[str] = []
    for i, path in enumerate(paths):
        if sigs is None:
            below = _signatures_below(path)  # before the scan: a change during it is new
        else:
            below = [sig] if (sig := sigs[i]) is not None else []
        hit = _clean.get((token, below[0])) if below else None
        if hit is None:
            todo.append((path, below))
        else:
            follow.extend(hit)
    if todo:
        from .scanner import scan_paths

        with _scanning():
            report = scan_paths([path for path, _ in todo], settings.config)
        try:
            raise_for(report, action)
        except ModelScanError as exc:
            raise _refused(exc) from None
        siblings = tuple(_siblings(report, bases))
        follow.extend(siblings)
        with _lock:
            if _stack and settings in _stack:
                for _path, below in todo:
                    for sig in below:
                        _clean[(token, sig)] = siblings
                while len(_clean) > _CACHE_SIZE:
                    _clean.popitem(last=False)
    _scan_siblings(follow, action, settings, seen)


def _siblings(report: Report, bases: tuple[str, ...] | None) -> list[str]:
    """The existing files that the findings of rule P402 (failing or not, waived or not)
    say loading reads next to the scanned file."""
    found: list[str] = []
    for finding in (*report.findings, *(w.finding for w in report.waived)):
        key = finding.location.key
        if finding.rule != _SIBLING_RULE or not isinstance(key, str) or not key:
            continue
        for folder in bases if bases is not None else (os.path.dirname(finding.location.path),):
            candidate = os.path.join(folder, key)
            if os.path.isfile(candidate):
                found.append(candidate)
    return found


def _scan_siblings(follow: list[str], action: str, settings: _Settings, seen: set[str]) -> None:
    for path in dict.fromkeys(follow):
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        _scan([path], f"{action}, which reads {path!r} too", settings, seen=seen)


def _file_sig(path: str) -> tuple[Any, ...] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (
        "f",
        os.path.realpath(path),
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
    )


def _signature(path: str) -> tuple[Any, ...] | None:
    """What a clean verdict is remembered by: for a file its identity, size and times; for a
    folder those of every file below it (None when it cannot be said)."""
    if not os.path.isdir(path):
        return _file_sig(path)
    sigs = _signatures_below(path)
    return sigs[0] if sigs else None


def _signatures_below(path: str) -> list[tuple[Any, ...]]:
    """The signature of ``path`` first, then of every file and folder below it."""
    if not os.path.isdir(path):
        sig = _file_sig(path)
        return [sig] if sig is not None else []
    below: dict[str, list[tuple[Any, ...]]] = {}
    out: list[tuple[Any, ...]] = []
    walked = list(os.walk(path, followlinks=False))
    for folder, dirs, files in reversed(walked):  # children before parents
        entries: list[tuple[Any, ...]] = []
        for name in sorted(files):
            sig = _file_sig(os.path.join(folder, name))
            if sig is None:
                return []  # something vanished or cannot be read: never remembered
            entries.append(sig)
            out.append(sig)
        for name in sorted(dirs):
            entries.extend(below.pop(os.path.join(folder, name), []))
        below[folder] = entries
        out.append(("d", os.path.realpath(folder), tuple(entries)))
    out.reverse()  # the top folder first
    return out
