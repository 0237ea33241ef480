"""Paths as CI systems want them: relative to the checkout, ``/``-separated.

GitHub annotations and GitLab code-quality issues only attach to a file when its path is
relative to the repository root (``$GITHUB_WORKSPACE``, ``$CI_PROJECT_DIR``); the scanner
reports paths as they were given (relative to the working directory, or absolute).
:func:`ci_path` maps one to the other without touching the file system beyond
``realpath`` (a workspace reached through a symbolic link still matches). A path outside the
base, or a remote address (``hf://ORG/NAME@REV/file``), is returned as given.
"""

from __future__ import annotations

import os


def ci_base(env_var: str) -> str:
    """The directory paths are made relative to: ``$env_var`` when set, else the cwd."""
    return os.path.abspath(os.environ.get(env_var) or os.getcwd())


def is_remote(path: str) -> bool:
    """``hf://...`` and other ``scheme://`` addresses: not a file in the checkout."""
    head, sep, _ = path.partition("://")
    return bool(sep) and head.isalnum()


def ci_path(path: str, base: str) -> str:
    """``path`` relative to ``base`` with ``/`` separators, or as given when outside it."""
    if is_remote(path):
        return path
    full = os.path.abspath(path)
    real = os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full))
    for candidate, anchor in ((full, base), (real, os.path.realpath(base))):
        try:
            rel = os.path.relpath(candidate, anchor)
        except ValueError:  # another drive (Windows)
            continue
        if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
            return rel.replace(os.sep, "/")
    return path.replace(os.sep, "/")
