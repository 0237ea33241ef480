"""Samples for the "other" model formats (rules M120-M199, M220-M299, M320-M399, M420-M499):
XGBoost, LightGBM, CatBoost, Flax msgpack, llamafile, OpenVINO IR, Core ML.

Bad samples are small hand-built files or real-library fixtures
(``tests/data/formats/others/``, made by ``scripts/make_other_fixtures.py``) with one field
broken; ok samples are the fixtures themselves or the same builders with nothing broken.
Deterministic: no timestamps, no randomness.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "data" / "formats" / "others"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# -- XGBoost ---------------------------------------------------------------------------------


def xgb_doc(
    left: list[int], right: list[int], parents: list[int], split: list[int], num_feature: int = 2
) -> dict[str, object]:
    n = len(left)
    tree = {
        "base_weights": [0.0] * n,
        "categories": [],
        "categories_nodes": [],
        "categories_segments": [],
        "categories_sizes": [],
        "default_left": [0] * n,
        "id": 0,
        "left_children": left,
        "loss_changes": [0.0] * n,
        "parents": parents,
        "right_children": right,
        "split_conditions": [0.5] * n,
        "split_indices": split,
        "split_type": [0] * n,
        "sum_hessian": [1.0] * n,
        "tree_param": {
            "num_deleted": "0",
            "num_feature": str(num_feature),
            "num_nodes": str(n),
            "size_leaf_vector": "1",
        },
    }
    return {
        "learner": {
            "attributes": {},
            "feature_names": [],
            "feature_types": [],
            "gradient_booster": {
                "model": {
                    "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": "1"},
                    "iteration_indptr": [0, 1],
                    "tree_info": [0],
                    "trees": [tree],
                },
                "name": "gbtree",
            },
            "learner_model_param": {
                "base_score": "5E-1",
                "boost_from_average": "1",
                "num_class": "0",
                "num_feature": str(num_feature),
                "num_target": "1",
            },
            "objective": {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}},
        },
        "version": [2, 1, 0],
    }


def xgb_json(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _ubj_int(v: int) -> bytes:
    return b"L" + struct.pack(">q", v)


def _ubj_key(k: str) -> bytes:
    raw = k.encode()
    return _ubj_int(len(raw)) + raw


def ubj(value: object) -> bytes:
    """UBJSON the way xgboost writes it: int64 lengths, typed numeric arrays."""
    if isinstance(value, dict):
        return b"{" + b"".join(_ubj_key(k) + ubj(v) for k, v in value.items()) + b"}"
    if isinstance(value, bool):
        return b"T" if value else b"F"
    if isinstance(value, int):
        return _ubj_int(value)
    if isinstance(value, float):
        return b"D" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode()
        return b"S" + _ubj_int(len(raw)) + raw
    if isinstance(value, list):
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return b"[$l#" + _ubj_int(len(value)) + b"".join(struct.pack(">i", v) for v in value)
        if value and all(isinstance(v, float) for v in value):
            return b"[$d#" + _ubj_int(len(value)) + b"".join(struct.pack(">f", v) for v in value)
        return b"[" + b"".join(ubj(v) for v in value) + b"]"
    raise TypeError(type(value))


GOOD_TREE = ([1, -1, -1], [2, -1, -1], [2147483647, 0, 0], [0, 0, 0])


def xgb_legacy(
    left: list[int], right: list[int], split: list[int], num_feature: int = 2, magic: bool = True
) -> bytes:
    """The pre-2.1 binary layout (xgboost 1.x ``LearnerImpl::SaveModel`` with
    ``save_raw("deprecated")``): see modelscan_lite/formats/xgboost_model.py."""
    out = io.BytesIO()
    if magic:
        out.write(b"binf")
    out.write(struct.pack("<fIiiiIIIi100x", 0.5, num_feature, 0, 0, 0, 1, 7, 1, 1))
    for name in (b"reg:squarederror", b"gbtree"):
        out.write(struct.pack("<Q", len(name)) + name)
    out.write(struct.pack("<iiiiqii128x", 1, 1, num_feature, 0, 0, 1, 0))
    n = len(left)
    out.write(struct.pack("<iiiiii124x", 1, n, 0, 1, num_feature, 0))
    parent_of = {c: (i, c == left[i]) for i in range(n) for c in (left[i], right[i]) if c > 0}
    for i in range(n):
        parent, is_left = parent_of.get(i, (-1, False))
        pfield = (parent | (1 << 31) if is_left else parent) & 0xFFFFFFFF
        out.write(struct.pack("<IiiIf", pfield, left[i], right[i], split[i], 0.5))
    out.write(b"\0" * 16 * n)
    out.write(struct.pack("<i", 0))  # tree_info
    return out.getvalue()


# -- LightGBM --------------------------------------------------------------------------------


def _lgb_replace(text: bytes, key: bytes, value: bytes, nth: int = 0) -> bytes:
    lines = text.split(b"\n")
    hits = [i for i, line in enumerate(lines) if line.startswith(key + b"=")]
    lines[hits[nth]] = key + b"=" + value
    return b"\n".join(lines)


def _lgb_tree_sizes_lie(text: bytes) -> bytes:
    """The second tree's size made 1000 bytes longer: the loader would seek past it."""
    line = next(x for x in text.split(b"\n") if x.startswith(b"tree_sizes="))
    sizes = line[len(b"tree_sizes=") :].split()
    sizes[1] = str(int(sizes[1]) + 1000).encode()
    return _lgb_replace(text, b"tree_sizes", b" ".join(sizes))


def _lgb_child_cycle(text: bytes) -> bytes:
    """Tree 0's last internal node points back to the root as its left child."""
    line = next(x for x in text.split(b"\n") if x.startswith(b"left_child="))
    children = line[len(b"left_child=") :].split()
    children[-1] = b"0"
    return _lgb_replace(text, b"left_child", b" ".join(children))


# -- CatBoost --------------------------------------------------------------------------------


def cbm_tree_sizes_lie(data: bytes) -> bytes:
    """The first TreeSizes entry made one deeper (the splits no longer add up)."""
    from modelscan_lite.formats.catboost_model import FlatBuffer

    fb = FlatBuffer(io.BytesIO(data), 8, struct.unpack_from("<I", data, 4)[0])
    core = fb.table(fb.ref(0, "root"), "core")
    trees = fb.table(fb.ref(core[1], "trees"), "trees")
    _n, at = fb.vector(trees[2], 4, "sizes")
    pos = 8 + at
    (first,) = struct.unpack_from("<i", data, pos)
    return data[:pos] + struct.pack("<i", first + 1) + data[pos + 4 :]


def samples() -> dict[str, bytes]:
    left, right, parents, split = GOOD_TREE
    out: dict[str, bytes] = {
        # XGBoost
        "M220/ok-xgboost.json": fixture("xgb-gbtree.json"),
        "M220/ok-xgboost.ubj": fixture("xgb-gbtree.ubj"),
        "M220/ok-xgboost-handmade.json": xgb_json(xgb_doc(left, right, parents, split)),
        "M220/ok-xgboost-legacy.bin": xgb_legacy([1, -1, -1], [2, -1, -1], [0, 0, 0]),
        "M220/bad-xgboost-shared-node.json": xgb_json(
            xgb_doc([1, 2, -1], [2, 2, -1], [2147483647, 0, 0], [0, 0, 0])
        ),
        "M220/bad-xgboost-child-out-of-range.ubj": ubj(
            xgb_doc([1, -1, -1], [7, -1, -1], [2147483647, 0, 0], [0, 0, 0])
        ),
        "M220/bad-xgboost-feature-out-of-range.json": xgb_json(
            xgb_doc(left, right, parents, [9, 0, 0])
        ),
        "M220/bad-xgboost-legacy-shared-node.bin": xgb_legacy([1, -1, -1], [1, -1, -1], [0, 0, 0]),
        "M220/bad-xgboost-legacy-truncated.bin": xgb_legacy([1, -1, -1], [2, -1, -1], [0, 0, 0])[
            :400
        ],
        # LightGBM
        "M220/ok-lightgbm.txt": fixture("lgb-binary.txt"),
        "M220/bad-lightgbm-tree-sizes.txt": _lgb_tree_sizes_lie(fixture("lgb-binary.txt")),
        "M220/bad-lightgbm-child-cycle.txt": _lgb_child_cycle(fixture("lgb-binary.txt")),
        "M220/bad-lightgbm-leaf-count.txt": _lgb_replace(
            fixture("lgb-binary.txt"), b"leaf_value", b"0.1 0.2"
        ),
        # CatBoost
        "M220/ok-catboost.cbm": fixture("cb-symmetric.cbm"),
        "M220/bad-catboost-tree-sizes.cbm": cbm_tree_sizes_lie(fixture("cb-symmetric.cbm")),
        "M220/bad-catboost-root-offset.cbm": fixture("cb-symmetric.cbm")[:8]
        + struct.pack("<I", 0x7FFFFFF0)
        + fixture("cb-symmetric.cbm")[12:],
    }
    out.update(_more_samples())
    out.update(_ov_samples())
    return out


# -- llamafile and other executables ---------------------------------------------------------


def zip_bytes(members: dict[str, bytes], prefix: bytes = b"") -> bytes:
    """A stored zip with fixed timestamps, after ``prefix`` (offsets count the prefix, as a
    self-extracting executable's do)."""
    import zipfile

    buf = io.BytesIO()
    buf.write(prefix)
    with zipfile.ZipFile(buf, "a" if prefix else "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


APE_HEAD = (
    b"MZqFpD='\n\n\x00\x10\x00\xf8\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    b'\'\n#\'"\no="$(command -v "$0")"\nexec "$o" "$@"\nexit 1\n'
)


def llamafile(gguf: bytes, args: bytes = b"-m\nmodel.gguf\n...\n") -> bytes:
    """An APE shell header and padding standing in for the program, then the zip."""
    stub = APE_HEAD + b"\0" * (4096 - len(APE_HEAD))
    return zip_bytes({"model.gguf": gguf, ".args": args}, prefix=stub)


def elf_stub() -> bytes:
    """An ELF64 x86-64 header (no program: never meant to run)."""
    return (
        b"\x7fELF\x02\x01\x01\x00"
        + b"\0" * 8
        + struct.pack("<HHI", 2, 62, 1)
        + b"\0" * 40
        + b"\0" * 64
    )


# -- Flax msgpack ----------------------------------------------------------------------------


def mp(value: object) -> bytes:
    """A small msgpack packer (what ``msgpack.packb(use_bin_type=True)`` writes)."""
    if value is None:
        return b"\xc0"
    if isinstance(value, bool):
        return b"\xc3" if value else b"\xc2"
    if isinstance(value, int):
        if 0 <= value < 128:
            return bytes([value])
        return b"\xd3" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode()
        return (
            bytes([0xA0 | len(raw)]) if len(raw) < 32 else b"\xdb" + struct.pack(">I", len(raw))
        ) + raw
    if isinstance(value, bytes):
        return b"\xc6" + struct.pack(">I", len(value)) + value
    if isinstance(value, (list, tuple)):
        return b"\xdd" + struct.pack(">I", len(value)) + b"".join(mp(v) for v in value)
    if isinstance(value, dict):
        return (
            b"\xdf"
            + struct.pack(">I", len(value))
            + b"".join(mp(k) + mp(v) for k, v in value.items())
        )
    if isinstance(value, Ext):
        return b"\xc9" + struct.pack(">Ib", len(value.data), value.code) + value.data
    raise TypeError(type(value))


class Ext:
    def __init__(self, code: int, data: bytes) -> None:
        self.code = code
        self.data = data


def nd(shape: list[int], dtype: str, buffer: bytes, code: int = 1) -> Ext:
    """Flax's ndarray ext value: ``[shape, dtype name, buffer]`` packed inside ext ``code``."""
    head = b"\x93" + mp(shape) + mp(dtype)
    return Ext(code, head + mp(buffer))


def flax_state(**leaves: object) -> bytes:
    return mp({"params": {"Dense_0": leaves}})


def _more_samples() -> dict[str, bytes]:
    from samples.make_samples import gguf_model

    kernel = nd([2, 2], "float32", b"\0" * 16)
    return {
        # Flax
        "M221/ok-flax-params.msgpack": fixture("flax-params.msgpack"),
        "M221/ok-flax-chunked.msgpack": fixture("flax-chunked.msgpack"),
        "M221/ok-flax-handmade.msgpack": flax_state(
            kernel=kernel, bias=nd([2], "float32", b"\0" * 8)
        ),
        "M221/bad-flax-object-dtype.msgpack": flax_state(kernel=nd([2], "object", b"\0" * 16)),
        "M221/bad-flax-shape-vs-buffer.msgpack": flax_state(
            kernel=nd([1000, 1000], "float32", b"\0" * 16)
        ),
        "M221/bad-flax-unknown-ext.msgpack": flax_state(kernel=kernel, other=Ext(9, b"abc")),
        "M221/bad-flax-chunks.msgpack": mp(
            {
                "a": {
                    "__msgpack_chunked_array__": True,
                    "shape": {"0": 10, "1": 10},
                    "chunks": {"0": nd([91], "float64", b"\0" * 728)},
                }
            }
        ),
        "M221/bad-flax-truncated.msgpack": flax_state(kernel=kernel, b=kernel)[:-5],
        # executables
        "M121/ok-model.gguf": gguf_model(),
        "M121/bad-llamafile.llamafile": llamafile(gguf_model()),
        "M121/bad-elf-x86-64": elf_stub(),
        "M122/ok-model.llamafile": llamafile(gguf_model()),
        "M122/bad-llamafile-named.gguf": llamafile(gguf_model()),
        "M122/bad-elf-named.bin": elf_stub(),
    }


# -- OpenVINO IR -----------------------------------------------------------------------------


def ov_ir(
    extra_layer: str = "",
    const: str = 'offset="0" size="64"',
    edges: str = '<edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>'
    '<edge from-layer="1" from-port="0" to-layer="2" to-port="1"/>',
    prolog: str = '<?xml version="1.0"?>\n',
) -> bytes:
    return (
        f"""{prolog}<net name="m" version="11">
 <layers>
  <layer id="0" name="x" type="Parameter" version="opset1">
   <data shape="1,16" element_type="f32"/></layer>
  <layer id="1" name="w" type="Const" version="opset1">
   <data element_type="f32" shape="16" {const}/></layer>
  <layer id="2" name="add" type="Add" version="opset1"><data auto_broadcast="numpy"/></layer>
  {extra_layer}
 </layers>
 <edges>{edges}</edges>
</net>
"""
    ).encode()


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE net [\n <!ENTITY a "lol">\n'
    + "".join(f' <!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">\n' for i in range(8))
    + "]>\n"
)


def _ov_samples() -> dict[str, bytes]:
    return {
        "M120/ok-model.xml": ov_ir(),
        "M120/ok-openvino-real.xml": fixture("openvino-mlp.xml"),
        "M120/bad-extension-opset.xml": ov_ir(
            '<layer id="3" name="decode" type="MyDecoder" version="my_extension"/>'
        ),
        "M120/bad-type-not-in-opset.xml": ov_ir(
            '<layer id="3" name="odd" type="RunScript" version="opset8"/>'
        ),
        "M222/ok-model.xml": ov_ir(),
        "M222/bad-edge-to-nowhere.xml": ov_ir(
            edges='<edge from-layer="0" from-port="0" to-layer="99" to-port="0"/>'
        ),
        "M222/bad-not-well-formed.xml": ov_ir()[:-20],
        "M222/bad-duplicate-id.xml": ov_ir(
            '<layer id="1" name="again" type="Relu" version="opset1"/>'
        ),
        "M320/ok-model.xml": ov_ir(),
        "M320/bad-billion-laughs.xml": ov_ir(prolog=BILLION_LAUGHS).replace(
            b'name="m"', b'name="&i;"'
        ),
        "M320/bad-external-entity.xml": ov_ir(
            prolog='<?xml version="1.0"?>\n<!DOCTYPE net [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        ),
        "M420/ok-model.xml": ov_ir(),
        "M420/bad-offset/model.xml": ov_ir(const='offset="32" size="64"'),
        "M420/bad-offset/model.bin": struct.pack("<16f", *range(16)),
    }
