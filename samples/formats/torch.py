"""Samples of PyTorch programs: TorchScript ``code/``, ``torch.package``, ``.pt2``, ExecuTorch.

Built without torch (the tests run without it): the TorchScript members below are the bytes
``torch.jit.save`` (torch 2.13) wrote for a scripted module with control flow, a submodule
and a buffer (``scripts/make_torch_fixtures.py`` makes the same module); the bad samples
rewrite one code member. Payloads are harmless: paths are read or written under the
marker location at worst, and nothing here is ever run by the tests.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile

from samples.make_samples import FLOATS, MARKER_CMD, ZIP_TIME, torch_members, torch_zip

# what torch.jit.save wrote (torch 2.13.0) for scripts/make_torch_fixtures.py's ``Scripted``
TS_DATA_PKL = (
    b"\x80\x02c__torch__\nM\nq\x00)\x81}(X\x01\x00\x00\x00cq\x01ctorch._utils\n"
    b"_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04"
    b"X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K\x03tQq\x07K\x00(K\x03t(K\x01t\x89"
    b"ccollections\nOrderedDict\nq\x08)RtRq\tX\x08\x00\x00\x00trainingq\n\x88X\x16\x00\x00"
    b"\x00_is_full_backward_hookq\x0bNX\x03\x00\x00\x00subq\x0cc__torch__\nSub\nq\r)\x81}("
    b"h\n\x88h\x0bNX\x03\x00\x00\x00linq\x0ec__torch__.torch.nn.modules.linear\nLinear\n"
    b"q\x0f)\x81}(X\x06\x00\x00\x00weightq\x10h\x02((h\x03h\x04X\x01\x00\x00\x001q\x11h\x06"
    b"K\x10tQq\x12K\x00(K\x04K\x04t(K\x04K\x01t\x88h\x08)RtRq\x13X\x04\x00\x00\x00biasq\x14"
    b"h\x02((h\x03h\x04X\x01\x00\x00\x002q\x15h\x06K\x04tQq\x16K\x00(K\x04t(K\x01t\x88h\x08"
    b")RtRq\x17h\n\x88h\x0bNubq\x18ubq\x19ubq\x1a."
)
TS_MAIN = """\
class M(Module):
  __parameters__ = []
  __buffers__ = ["c", ]
  c : Tensor
  training : bool
  _is_full_backward_hook : Optional[bool]
  sub : __torch__.Sub
  def forward(self: __torch__.M,
    x: Tensor) -> Tensor:
    if bool(torch.gt(torch.sum(x), 0)):
      sub = self.sub
      x0 = (sub).forward(x, )
    else:
      x0 = x
    x1 = x0
    for i in range(2):
      x2 = torch.add(torch.mul(x1, 2), torch.tensor([1., 2., 3., 4.]))
      x1 = x2
    return x1
class Sub(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : Optional[bool]
  lin : __torch__.torch.nn.modules.linear.Linear
  def forward(self: __torch__.Sub,
    x: Tensor) -> Tensor:
    lin = self.lin
    return torch.relu((lin).forward(x, ))
"""
TS_LINEAR = """\
class Linear(Module):
  __parameters__ = ["weight", "bias", ]
  __buffers__ = []
  weight : Tensor
  bias : Tensor
  training : bool
  _is_full_backward_hook : NoneType
  out_features : Final[int] = 4
  in_features : Final[int] = 4
  def forward(self: __torch__.torch.nn.modules.linear.Linear,
    input: Tensor) -> Tensor:
    weight = self.weight
    bias = self.bias
    return torch.linear(input, weight, bias)
"""
MARKER_PATH = "/tmp/modelscan-lite-sample-marker"


def _zip(members: list[tuple[str, bytes]], deflate: tuple[str, ...] = ()) -> bytes:
    """A zip as torch writes it (fixed timestamps: deterministic)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = (
                zipfile.ZIP_DEFLATED if name.endswith(deflate) else zipfile.ZIP_STORED
            )
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def torchscript(main: str | bytes = TS_MAIN, extra: tuple[tuple[str, bytes], ...] = ()) -> bytes:
    """A TorchScript archive: the real members, ``code/__torch__.py`` replaced by ``main``."""
    root = "model/"
    members = [
        (root + "data/0", FLOATS[:12]),
        (root + "data/1", FLOATS * 4),
        (root + "data/2", FLOATS),
        (root + "data.pkl", TS_DATA_PKL),
        (root + "code/__torch__.py", main.encode() if isinstance(main, str) else main),
        (root + "code/__torch__/torch/nn/modules/linear.py", TS_LINEAR.encode()),
        (root + "constants.pkl", b"\x80\x02)."),
        (root + "version", b"3\n"),
        (root + "byteorder", b"little"),
        (root + ".data/serialization_id", b"0" * 40),
        *((root + n, d) for n, d in extra),
    ]
    return _zip(members, deflate=(".py",))


def _forward(body: str) -> str:
    """TS_MAIN with ``body`` (TorchScript lines, 4-space indented) before the return."""
    return TS_MAIN.replace("    return x1\nclass Sub", body + "    return x1\nclass Sub", 1)


def torchscript_samples() -> dict[str, bytes]:
    ok = torchscript()
    out: dict[str, bytes] = {}
    for rule in ("T101", "T102", "T103", "T104", "T105", "T201"):
        out[f"{rule}/ok-scripted-module.pt"] = ok
    out["T101/bad-from-file.pt"] = torchscript(
        _forward('    leak = torch.from_file("/etc/passwd", False, 64, dtype=0)\n')
    )
    out["T101/bad-save-method.pt"] = torchscript(_forward(f'    (x1).save("{MARKER_PATH}")\n'))
    out["T101/bad-save-in-unparseable-code.pt"] = torchscript(
        _forward(f'    torch.save(x1, "{MARKER_PATH}") if x1 else\n')
    )
    out["T101/bad-getattr-from-file.pt"] = torchscript(
        _forward('    leak = getattr(torch, "from_file")("/etc/hostname", False, 8)\n')
    )
    out["T102/bad-load-library.pt"] = torchscript(
        _forward('    ops.load_library("/tmp/modelscan-lite-sample.so")\n')
    )
    out["T103/bad-custom-op.pt"] = torchscript(
        _forward("    x1 = ops.sample_ops.decrypt(x1, CONSTANTS.c0)\n")
    )
    out["T103/bad-custom-class.pt"] = torchscript(
        TS_MAIN.replace(
            "  sub : __torch__.Sub\n",
            "  sub : __torch__.Sub\n  key : __torch__.torch.classes.sample_ns.Secret\n",
        )
    )
    out["T104/bad-rpc.pt"] = torchscript(
        _forward('    fut = ops.prim.rpc_async("worker1", torch.add, (x1, x1))\n')
    )
    out["T105/bad-unregistered-aten-op.pt"] = torchscript(
        _forward("    x1 = torch.sample_private_kernel(x1)\n")
    )
    out["T201/bad-syntax.pt"] = torchscript(_forward("    x1 = torch.add(x1,\n"))
    out["T201/bad-not-utf8.pt"] = torchscript(
        TS_MAIN.encode().replace(b"x2 = ", b"x2 = \xff\xfe ", 1)
    )
    out["T201/bad-constant-reference.pt"] = torchscript(_forward("    x1 = CONSTANTS.x0\n"))
    return out


# -- torch.package ---------------------------------------------------------------------

# what PackageExporter.save_pickle writes for an instance of an interned ``net.Net`` (protocol 3)
PACKAGE_PICKLE = b"\x80\x03cnet\nNet\nq\x00)\x81q\x01}q\x02X\x08\x00\x00\x00trainingq\x03\x88sb."
NET_SOURCE = """\
import torch


class Net(torch.nn.Module):
    def forward(self, x):
        return torch.relu(x)
"""


def package(
    source: str | bytes | None = NET_SOURCE,
    externs: str = "torch\nbuiltins\n",
    pickle: bytes = PACKAGE_PICKLE,
) -> bytes:
    root = "package/"
    members = [
        (root + ".data/0.storage", FLOATS),
        (root + "model/model.pkl", pickle),
        *(
            [(root + "net.py", source.encode() if isinstance(source, str) else source)]
            if source is not None
            else []
        ),
        (root + ".data/extern_modules", externs.encode()),
        (root + ".data/python_version", b"3.11.7"),
        (root + ".data/version", b"6\n"),
        (root + "byteorder", b"little"),
        (root + ".data/serialization_id", b"0" * 40),
    ]
    return _zip(members)


# protocol 2 pickle of ``torch.nn.modules.linear.Identity()``: only externed torch globals
EXTERN_ONLY_PICKLE = (
    b"\x80\x02ctorch.nn.modules.linear\nIdentity\nq\x00)\x81q\x01}q\x02X\x08\x00\x00\x00"
    b"trainingq\x03\x88sb."
)


def package_samples() -> dict[str, bytes]:
    ok = package(None, pickle=EXTERN_ONLY_PICKLE)
    out: dict[str, bytes] = {}
    for rule in ("T107", "T108", "T109", "T202"):
        out[f"{rule}/ok-extern-only.pt"] = ok
    out["T108/ok-benign-source.pt"] = package()
    out["T107/bad-interned-module.pt"] = package()
    out["T108/bad-os-system.pt"] = package(NET_SOURCE + f"\nimport os\nos.system({MARKER_CMD!r})\n")
    out["T108/bad-getattr-import.pt"] = package(
        NET_SOURCE + f"\ngetattr(__import__('o' + 's'), 'sys' + 'tem')({MARKER_CMD!r})\n"
    )
    out["T109/bad-extern-subprocess.pt"] = package(externs="torch\nbuiltins\nsubprocess\n")
    out["T202/bad-unparseable-module.pt"] = package("def forward(self, x:\n")
    out["T202/bad-extern-list.pt"] = package(externs="torch\nos; rm -rf\n")
    return out


# -- torch.export .pt2 -------------------------------------------------------------------


def _node(target: str, name: str, inputs: list[object] | None = None) -> dict[str, object]:
    return {
        "target": target,
        "inputs": inputs or [{"name": "self", "arg": {"as_tensor": {"name": "x"}}, "kind": 1}],
        "outputs": [{"as_tensor": {"name": name}}],
        "metadata": {},
        "name": name,
    }


def pt2_program(nodes: list[dict[str, object]]) -> bytes:
    """A serialized ExportedProgram in the shape torch.export.save (torch 2.13) writes."""
    doc = {
        "graph_module": {
            "graph": {
                "inputs": [{"as_tensor": {"name": "p_w"}}, {"as_tensor": {"name": "x"}}],
                "outputs": [{"as_tensor": {"name": nodes[-1]["name"]}}],
                "nodes": nodes,
                "tensor_values": {},
                "sym_int_values": {},
                "sym_bool_values": {},
                "is_single_tensor_return": False,
                "custom_obj_values": {},
                "sym_float_values": {},
            },
            "signature": {"input_specs": [], "output_specs": []},
            "module_call_graph": [],
            "metadata": {},
            "treespec_namedtuple_fields": {},
        },
        "opset_version": {"aten": 10},
        "range_constraints": {},
        "schema_version": {"major": 8, "minor": 20},
        "verifiers": ["TRAINING"],
        "torch_version": "2.13.0+cpu",
        "guards_code": [],
    }
    return json.dumps(doc).encode()


OK_NODES = [
    _node("torch.ops.aten.mul.Tensor", "mul", [
        {"name": "self", "arg": {"as_tensor": {"name": "x"}}, "kind": 1},
        {"name": "other", "arg": {"as_tensor": {"name": "p_w"}}, "kind": 1},
    ]),
    _node("torch.ops.aten.relu.default", "relu"),
    _node("_operator.getitem", "getitem"),
]  # fmt: skip


def pt2(
    program: bytes | None = None,
    weight: bytes = FLOATS,
    extra: tuple[tuple[str, bytes], ...] = (),
) -> bytes:
    root = "model/"
    config = {
        "config": {
            "w": {
                "path_name": "weight_0",
                "is_param": True,
                "use_pickle": weight[:2] != FLOATS[:2],
                "tensor_meta": None,
            }
        }
    }
    members = [
        (root + "data/weights/weight_0", weight),
        (root + "data/weights/model_weights_config.json", json.dumps(config).encode()),
        (root + "data/constants/model_constants_config.json", b'{"config": {}}'),
        (root + "models/model.json", program if program is not None else pt2_program(OK_NODES)),
        (root + "data/sample_inputs/model.pt", torch_zip(torch_members())),
        (root + "archive_format", b"pt2"),
        (root + "archive_version", b"0"),
        (root + ".data/version", b"6\n"),
        (root + "byteorder", b"little"),
        *((root + n, d) for n, d in extra),
    ]
    return _zip(members)


def pt2_samples() -> dict[str, bytes]:
    ok = pt2()
    out: dict[str, bytes] = {}
    for rule in ("T106", "T110", "T203"):
        out[f"{rule}/ok-exported.pt2"] = ok
    out["T101/ok-exported.pt2"] = ok
    out["T103/ok-exported.pt2"] = ok
    out["T101/bad-pt2-from-file.pt2"] = pt2(
        pt2_program([*OK_NODES, _node("torch.ops.aten.from_file.default", "leak")])
    )
    out["T103/bad-pt2-custom-op.pt2"] = pt2(
        pt2_program([*OK_NODES, _node("torch.ops.sample_ops.decrypt.default", "dec")])
    )
    out["T106/bad-os-system-target.pt2"] = pt2(
        pt2_program([*OK_NODES, _node("torch.serialization.os.system", "run")])
    )
    cond = _node("torch.ops.higher_order.cond", "cond", [
        {"name": "pred", "arg": {"as_tensor": {"name": "x"}}, "kind": 1},
        {"name": "true_fn", "arg": {"as_graph": {"name": "true_graph_0", "graph": {
            "nodes": [_node("torch._dynamo.utils.os.system", "run")]}}}, "kind": 1},
    ])  # fmt: skip
    out["T106/bad-target-in-cond-branch.pt2"] = pt2(pt2_program([*OK_NODES, cond]))
    out["T110/bad-aoti-shared-object.pt2"] = pt2(
        extra=(("data/aotinductor/model/model.so", b"\x7fELF\x02\x01\x01" + bytes(57)),)
    )
    out["T203/bad-program-not-json.pt2"] = pt2(b'{"graph_module": ')
    out["T203/bad-program-shape.pt2"] = pt2(b'{"graph_module": {"graph": {"nodes": [1]}}}')
    # the pickled paths: a use_pickle weight (torch.load(weights_only=False)) that is a
    # protocol 0 pickle, and an opaque constant object (pickle.loads)
    out["P101/bad-pt2-pickled-weight.pt2"] = pt2(
        weight=f"cos\nsystem\n(S'{MARKER_CMD}'\ntR.".encode()
    )
    out["P101/bad-pt2-opaque-constant.pt2"] = pt2(
        extra=(("data/constants/opaque_obj_0", f"cposix\nsystem\n(S'{MARKER_CMD}'\ntR.".encode()),)
    )
    return out


# -- ExecuTorch .pte ---------------------------------------------------------------------
# A front-to-back flatbuffer writer for the few tables the scanner reads
# (executorch schema/program.fbs): a table is (field number -> value), a value is an int
# ("u8"/"u32"), a string, a nested table (dict) or a list of tables.

Table = dict[int, object]


class _Builder:
    def __init__(self) -> None:
        self.buf = bytearray()

    def _align(self) -> None:
        self.buf += bytes(-len(self.buf) % 4)

    def table(self, fields: Table) -> int:
        self._align()
        n = max(fields) + 1 if fields else 0
        slots: list[tuple[int, object]] = sorted(fields.items())
        inline = [(i, v) for i, v in slots]
        size = 4 + 4 * len(inline)
        vt = len(self.buf)
        vtable = struct.pack("<HH", 4 + 2 * n, size)
        offsets = {i: 4 + 4 * k for k, (i, _) in enumerate(inline)}
        vtable += b"".join(struct.pack("<H", offsets.get(i, 0)) for i in range(n))
        self.buf += vtable
        self._align()
        at = len(self.buf)
        self.buf += struct.pack("<i", at - vt) + bytes(4 * len(inline))
        for i, v in inline:
            slot = at + offsets[i]
            if isinstance(v, int):
                struct.pack_into("<I", self.buf, slot, v)
            else:
                target = self.value(v)
                struct.pack_into("<I", self.buf, slot, target - slot)
        return at

    def value(self, v: object) -> int:
        self._align()
        if isinstance(v, str):
            at = len(self.buf)
            raw = v.encode()
            self.buf += struct.pack("<I", len(raw)) + raw + b"\0"
            return at
        if isinstance(v, dict):
            return self.table(v)
        assert isinstance(v, list)
        at = len(self.buf)
        self.buf += struct.pack("<I", len(v)) + bytes(4 * len(v))
        for k, item in enumerate(v):
            slot = at + 4 + 4 * k
            target = self.value(item)
            struct.pack_into("<I", self.buf, slot, target - slot)
        return at


def pte(plan: Table, *, inline: int = 1, ident: bytes = b"ET12") -> bytes:
    b = _Builder()
    b.buf += bytes(8)
    root = b.table({0: 0, 1: [plan], 3: [{0: []}] * inline})
    struct.pack_into("<I", b.buf, 0, root)
    b.buf[4:8] = ident
    return bytes(b.buf)


def _plan(ops: list[tuple[str, str]], delegates: list[tuple[str, int]] = ()) -> Table:  # type: ignore[assignment]
    return {
        0: "forward",
        6: [{0: n, 1: o} for n, o in ops],
        7: [{0: backend, 1: {0: 0, 1: idx}} for backend, idx in delegates],
    }


OK_PTE_OPS = [
    ("aten::add", "out"),
    ("aten::relu", "out"),
    ("dim_order_ops::_to_dim_order_copy", "out"),
]


def pte_samples() -> dict[str, bytes]:
    ok = pte(_plan(OK_PTE_OPS))
    out: dict[str, bytes] = {}
    for rule in ("T111", "T112", "T204"):
        out[f"{rule}/ok-program.pte"] = ok
    out["T103/ok-program.pte"] = ok
    out["T112/ok-xnnpack-delegate.pte"] = pte(_plan(OK_PTE_OPS, [("XnnpackBackend", 0)]))
    out["T103/bad-pte-custom-op.pte"] = pte(_plan([*OK_PTE_OPS, ("sample_ops::decrypt", "out")]))
    out["T101/bad-pte-from-file.pte"] = pte(_plan([*OK_PTE_OPS, ("aten::from_file", "out")]))
    out["T111/bad-xnnpack-delegate.pte"] = pte(_plan(OK_PTE_OPS, [("XnnpackBackend", 0)]))
    out["T112/bad-unknown-backend.pte"] = pte(_plan(OK_PTE_OPS, [("SampleBackend", 0)]))
    out["T204/bad-delegate-index.pte"] = pte(_plan(OK_PTE_OPS, [("XnnpackBackend", 5)]))
    out["T204/bad-truncated.pte"] = ok[: len(ok) // 2]
    out["T204/bad-operator-name.pte"] = pte(_plan([*OK_PTE_OPS, ("noNamespace", "")]))
    return out


def samples() -> dict[str, bytes]:
    return {**torchscript_samples(), **package_samples(), **pt2_samples(), **pte_samples()}
