"""Remote sources read by range requests, never downloaded: ``hf://``, ``https://``,
``s3://``, ``gs://``, ``az://`` (:mod:`.sources`), the range reader every parser reads them
through (:mod:`.ranges`) and the scan of remote trees (:mod:`.scan`).

This module itself imports nothing, so the scanner can ask :func:`is_remote` for free.
"""

from __future__ import annotations

REMOTE_PREFIXES = (
    "hf://",
    "https://",
    "http://",
    "s3://",
    "s3a://",
    "gs://",
    "gcs://",
    "az://",
    "abfs://",
    "abfss://",
)
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+.-")


class RemoteError(Exception):
    """A remote spec cannot be listed, read or downloaded: a missing extra, the network, an
    unknown repo or revision."""


def is_remote(spec: str) -> bool:
    """Whether ``spec`` names a remote file or tree rather than a local path: any
    ``scheme://`` (the ones above, and any other protocol an installed fsspec backend
    serves; an unknown one is an error naming it, never a local path)."""
    if spec.lower().startswith(REMOTE_PREFIXES):
        return True
    scheme, sep, _ = spec.partition("://")
    return bool(sep) and len(scheme) > 1 and set(scheme.lower()) <= _SCHEME_CHARS
