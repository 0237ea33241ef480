"""The wheel build's one compiled part: the pickle walker's C core.

hatchling runs this hook for every wheel (``pip install .``, ``pip wheel .``) and editable
install (``pip install -e .``). It compiles ``modelscan_lite/formats/_pickle_fast.c`` with the
interpreter's own compiler settings (setuptools' ``build_ext``), with a digest of the
source built in so that a core compiled from another version of the file is never used. A wheel gets
the extension and a platform tag; an editable install gets it next to the source, where the
checkout imports it (git-ignored). When there is no compiler, or it fails, the build goes on
without it: a pure-Python wheel, and a notice on stderr (the scanner says the same at every
scan, see ``walker_engine.fallback_notice``). ``MODELSCAN_LITE_PURE=1`` skips the compile.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

CORE = "modelscan_lite.formats._pickle_fast"
SOURCE = Path("modelscan_lite/formats/_pickle_fast.c")


def source_digest(root: Path) -> str:
    """``walker_engine.source_digest`` of the C source, the one definition the scanner checks
    against, loaded from its file (the package itself is not importable while it is built;
    the module imports only the standard library at its top)."""
    path = root / "modelscan_lite" / "formats" / "walker_engine.py"
    spec = importlib.util.spec_from_file_location("_msl_walker_engine", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.source_digest((root / SOURCE).read_bytes()))


def compile_core(root: Path, out_dir: Path, temp_dir: Path) -> Path:
    """Compile the core into ``out_dir`` (as the package path under it); returns the file."""
    from setuptools import Distribution, Extension  # type: ignore[import-untyped]
    from setuptools.command.build_ext import build_ext  # type: ignore[import-untyped]

    source = root / SOURCE
    ext = Extension(
        CORE,
        [str(source)],
        define_macros=[("MSL_SOURCE_DIGEST", f'"{source_digest(root)}"')],
    )  # the interpreter's own optimisation flags (-O3 on CPython's Linux builds)
    cmd = build_ext(Distribution({"name": "modelscan-lite-core", "ext_modules": [ext]}))
    cmd.build_lib = str(out_dir)
    cmd.build_temp = str(temp_dir)
    cmd.ensure_finalized()
    cmd.run()
    return Path(cmd.get_ext_fullpath(CORE))


class CompiledWalkerHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        if os.environ.get("MODELSCAN_LITE_PURE", "") not in ("", "0"):
            self._notice("MODELSCAN_LITE_PURE is set")
            return
        root = Path(self.root)
        self._scratch = tempfile.mkdtemp(prefix="modelscan-lite-core-")
        out = root if version == "editable" else Path(self._scratch) / "lib"
        try:
            built = compile_core(root, out, Path(self._scratch) / "temp")
        except Exception as exc:  # no compiler, no headers, a compile error
            self._notice(f"compiling {SOURCE} failed: {type(exc).__name__}: {exc}")
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":
            build_data["force_include"][str(built)] = str(built.relative_to(out))

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    @staticmethod
    def _notice(why: str) -> None:
        sys.stderr.write(
            f"modelscan-lite: note: building without the compiled pickle walker ({why}); "
            "the pure-Python walker gives the same verdicts, several times slower on large "
            "pickles.\n"
        )
