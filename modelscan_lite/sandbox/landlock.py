"""Landlock from Python (ctypes): read-only paths, one writable scratch dir, no TCP, no signals out.

Landlock is the layer that *enforces* file and TCP access for the sandboxed loader: it needs no
privilege, survives every namespace backend (or none), and cannot be undone by the process
that applied it. What it cannot see (UDP, raw sockets, process spawns of allowed binaries) is
left to the seccomp filter. Rights are requested up to the ABI the kernel offers; the ABI in
force is reported so a user knows which guarantees held.
"""

from __future__ import annotations

import ctypes
import os
import stat
from collections.abc import Iterable

from .syscalls import (
    LANDLOCK_ADD_RULE,
    LANDLOCK_CREATE_RULESET,
    LANDLOCK_RESTRICT_SELF,
    no_new_privs,
    syscall,
)

CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = READ_FILE | READ_DIR
WRITE = (
    WRITE_FILE
    | READ_FILE
    | READ_DIR
    | REMOVE_DIR
    | REMOVE_FILE
    | MAKE_DIR
    | MAKE_REG
    | MAKE_SYM
    | MAKE_FIFO
    | MAKE_SOCK
    | REFER
    | TRUNCATE
)


class LandlockError(OSError):
    """Landlock is missing or refused the ruleset."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def abi_version() -> int:
    """The Landlock ABI the kernel offers; 0 when it has none (or it is disabled)."""
    if LANDLOCK_CREATE_RULESET is None:
        return 0
    rc = syscall(LANDLOCK_CREATE_RULESET, None, 0, CREATE_RULESET_VERSION)
    return rc if rc > 0 else 0


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict(
    read_paths: Iterable[str], write_paths: Iterable[str], device_paths: Iterable[str] = ()
) -> int:
    """Confine the calling thread (and what it starts later) for good; return the ABI used.

    ``read_paths`` may be read (files) or listed (directories); ``write_paths`` may also be
    written, created and removed; ``device_paths`` (``/dev/null``...) may be read and written.
    Nothing may be executed, TCP may neither bind nor connect (ABI 4+), and abstract UNIX
    sockets and signals cannot reach outside the sandbox (ABI 6+). Paths that do not exist are
    ignored. Must run while the process has one thread, as Landlock binds the calling thread.
    """
    abi = abi_version()
    if abi < 1 or LANDLOCK_ADD_RULE is None or LANDLOCK_RESTRICT_SELF is None:
        raise LandlockError("Landlock is not available on this kernel")
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0, 0)
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else 16 if abi >= 4 else 8
    assert LANDLOCK_CREATE_RULESET is not None
    ruleset = syscall(LANDLOCK_CREATE_RULESET, ctypes.byref(attr), size, 0)
    if ruleset < 0:
        raise LandlockError(-ruleset, "landlock_create_ruleset failed")
    try:
        for paths, rights in (
            (read_paths, READ),
            (write_paths, WRITE),
            (device_paths, READ_FILE | WRITE_FILE | IOCTL_DEV),
        ):
            for path in paths:
                _add_path(ruleset, path, rights & handled)
        no_new_privs()
        rc = syscall(LANDLOCK_RESTRICT_SELF, ruleset, 0)
        if rc != 0:
            raise LandlockError(-rc, "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def _add_path(ruleset: int, path: str, rights: int) -> None:
    assert LANDLOCK_ADD_RULE is not None
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= FILE_ONLY
        attr = _PathBeneathAttr(rights, fd)
        rc = syscall(LANDLOCK_ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(attr), 0)
        if rc != 0:
            raise LandlockError(-rc, f"landlock_add_rule failed for {path}")
    finally:
        os.close(fd)
