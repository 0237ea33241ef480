"""Which paths a sandboxed loader may read and write: one list, used by both sides.

The child hands these lists to Landlock (enforcement); the parent uses the same lists to judge
the open() calls it sees through seccomp (recording). Keeping one source means a path the
report calls "outside the allowed paths" is exactly a path Landlock refused.

Per-loader allowances (what the real libraries legitimately read, e.g. CPU topology for
onnxruntime's thread pool, cgroup limits for torch) are listed here, by name, so they are
reviewable; docs/sandbox.md in the README quotes them.
"""

from __future__ import annotations

import os
import re
import site
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass

# read by the interpreter, the C library or the loaders themselves; never secrets
SYSTEM_READ = (
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/usr/share/zoneinfo",
    "/lib",
    "/lib64",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/self",
    "/proc/thread-self",
    "/sys/devices/system/cpu",
    "/sys/devices/system/node",
    "/sys/fs/cgroup",
    "/dev/urandom",
    "/dev/random",
)
DEVICES = ("/dev/null", "/dev/zero", "/dev/full")
# what one real loader reads on every load, beyond the above
LOADER_READ: dict[str, tuple[str, ...]] = {
    # modeling_utils._is_on_hf_mount reads the mount table before choosing mmap
    "transformers": ("/proc/mounts",),
}
# the other parts of the artifact a loader reads beside the scanned file, named one by one
# (never the whole folder): a SavedModel's variables, assets and debug info beside
# saved_model.pb (tensorflow/python/saved_model/loader_impl.py, load.py)
SAVEDMODEL_PARTS = (
    "variables",
    "assets",
    "assets.extra",
    "debug",
    "fingerprint.pb",
    "keras_metadata.pb",
    "saved_model.pbtxt",
)


def artifact_parts(loader: str, target: str) -> list[str]:
    """The files and folders of the artifact itself that ``loader`` reads beside ``target``:
    a SavedModel's parts beside ``saved_model.pb``, the OpenVINO weights (``X.bin`` beside
    ``X.xml``). A part that is a symlink or resolves outside the target's folder is left out:
    the artifact cannot widen what the sandbox may read."""
    target = os.path.abspath(target)
    folder = os.path.dirname(target)
    if loader == "tf-savedmodel" and os.path.basename(target) == "saved_model.pb":
        parts = [os.path.join(folder, n) for n in SAVEDMODEL_PARTS]
    elif loader == "openvino":
        parts = [os.path.splitext(target)[0] + ".bin"]
    else:
        return []
    inside = os.path.realpath(folder).rstrip("/") + "/"
    return [p for p in parts if not os.path.islink(p) and os.path.realpath(p).startswith(inside)]


def python_roots() -> list[str]:
    """The interpreter, its standard library and every installed package directory."""
    roots = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        *(p for p in sysconfig.get_paths().values()),
        *site.getsitepackages(),
    }
    # sys.path[0] is the script's folder or the working directory: not an install location
    roots.update(p for p in sys.path[1:] if p and os.path.isdir(p) and p != os.getcwd())
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    roots.add(package_parent)
    return sorted(r for r in roots if r and os.path.exists(r))


# prctl(PR_SET_NAME)'s file form: thread pools name their threads through /proc (tf.data
# writes /proc/self/task/N/comm); Landlock refuses it anyway, and it changes no file
THREAD_NAME = re.compile(r"^/proc/(?:self|thread-self|\d+)(?:/task/\d+)?/comm$")


@dataclass(frozen=True, slots=True)
class PathPolicy:
    read: tuple[str, ...]
    write: tuple[str, ...]
    devices: tuple[str, ...] = DEVICES

    @classmethod
    def for_artifact(cls, targets: Iterable[str], scratch: str, loader: str = "") -> PathPolicy:
        read = [
            *python_roots(),
            *SYSTEM_READ,
            *LOADER_READ.get(loader, ()),
            *(os.path.abspath(t) for t in targets),
            *(p for t in targets for p in artifact_parts(loader, t)),
        ]
        real = [os.path.realpath(p) for p in read if not p.startswith("/proc/")]
        merged = sorted(set(read) | set(real))
        return cls(tuple(merged), (scratch, os.path.realpath(scratch)))

    def may_read(self, path: str) -> bool:
        return self._under(path, self.read + self.write + self.devices)

    def may_write(self, path: str) -> bool:
        if THREAD_NAME.match(path):
            return True  # naming a thread (TensorFlow, OpenMP pools): not a file write
        return self._under(path, self.write + self.devices)

    @staticmethod
    def _under(path: str, roots: tuple[str, ...]) -> bool:
        path = os.path.normpath(path)
        return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)
