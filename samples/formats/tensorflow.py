"""TensorFlow SavedModel and TFLite samples, built from bytes (no TensorFlow needed).

SavedModels are protobuf messages written field by field (field numbers of
``tensorflow/core/protobuf/saved_model.proto`` and the protos it imports); TFLite models are
flatbuffers written by the small forward writer below (``tensorflow/lite/schema/schema.fbs``).
Every payload is harmless: the paths only name files, nothing is executed by building them.
"""

from __future__ import annotations

import struct
from typing import Any

# -- protobuf ----------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ld(field: int, body: bytes | str) -> bytes:
    data = body.encode() if isinstance(body, str) else body
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def vi(field: int, n: int) -> bytes:
    return _varint(field << 3) + _varint(n)


def attr(key: str, value: bytes) -> bytes:
    return ld(5, ld(1, key) + ld(2, value))


def attr_s(key: str, s: str) -> bytes:
    return attr(key, ld(2, s))


def attr_strings(key: str, values: list[str]) -> bytes:
    return attr(key, ld(1, b"".join(ld(2, v) for v in values)))


def attr_func(key: str, name: str) -> bytes:
    return attr(key, ld(10, ld(1, name)))


def const_string(value: str) -> bytes:
    """The ``value`` attribute of a string Const (DT_STRING = 7)."""
    return attr("value", ld(8, vi(1, 7) + ld(8, value)))


def node(name: str, op: str, *inputs: str, attrs: bytes = b"") -> bytes:
    return ld(1, name) + ld(2, op) + b"".join(ld(3, i) for i in inputs) + attrs


def function(name: str, args: list[str], nodes: list[bytes]) -> bytes:
    sig = ld(1, name) + b"".join(ld(2, ld(1, a) + vi(3, 7)) for a in args)
    return ld(1, sig) + b"".join(ld(3, n) for n in nodes)


def saved_model(
    nodes: list[bytes],
    functions: list[bytes] = (),  # type: ignore[assignment]
    saver: tuple[str, str, str] | None = None,
    assets: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> bytes:
    info = ld(4, "serve") + ld(5, "2.21.0")
    graph = b"".join(ld(1, n) for n in nodes)
    if functions:
        graph += ld(2, b"".join(ld(1, f) for f in functions))
    graph += ld(4, vi(1, 1808))
    meta = ld(1, info) + ld(2, graph)
    if saver:
        meta += ld(3, ld(1, saver[0]) + ld(2, saver[1]) + ld(3, saver[2]) + vi(7, 2))
    for tensor, filename in assets:
        meta += ld(6, ld(1, ld(1, tensor)) + ld(2, filename))
    return vi(1, 1) + ld(2, meta)


def _saver_parts() -> tuple[list[bytes], list[bytes], tuple[str, str, str]]:
    """A TF2-style saver: top-level nodes that call a save and a restore function whose
    checkpoint ops take their path from the function argument."""
    save = function(
        "__inference__traced_save_10",
        ["file_prefix"],
        [
            node("StringJoin/inputs_1", "Const", attrs=const_string("_temp/part")),
            node("StringJoin", "StringJoin", "file_prefix", "StringJoin/inputs_1:output:0"),
            node("num_shards", "Const"),
            node("shard", "Const"),
            node(
                "ShardedFilename",
                "ShardedFilename",
                "StringJoin:output:0",
                "shard:output:0",
                "num_shards:output:0",
            ),
            node("SaveV2", "SaveV2", "ShardedFilename:filename:0", "names:output:0"),
            node(
                "MergeV2Checkpoints",
                "MergeV2Checkpoints",
                "ShardedFilename:filename:0",
                "file_prefix",
            ),
        ],
    )
    restore = function(
        "__inference__traced_restore_20",
        ["file_prefix"],
        [node("RestoreV2", "RestoreV2", "file_prefix", "names:output:0")],
    )
    top = [
        node("saver_filename", "Placeholder"),
        node(
            "StatefulPartitionedCall_1",
            "StatefulPartitionedCall",
            "saver_filename",
            attrs=attr_func("f", "__inference__traced_save_10"),
        ),
        node(
            "StatefulPartitionedCall_2",
            "StatefulPartitionedCall",
            "saver_filename",
            attrs=attr_func("f", "__inference__traced_restore_20"),
        ),
    ]
    return (
        top,
        [save, restore],
        (
            "saver_filename:0",
            "StatefulPartitionedCall_1:0",
            "StatefulPartitionedCall_2",
        ),
    )


def model_with(
    body: list[bytes],
    extra_top: list[bytes] = (),  # type: ignore[assignment]
    assets: list[tuple[str, str]] = (),
) -> bytes:  # type: ignore[assignment]
    """A SavedModel with the saver and one serving function holding ``body``."""
    top, fns, saver = _saver_parts()
    serve = function("__inference___call___5", ["x"], body)
    call = node(
        "StatefulPartitionedCall",
        "StatefulPartitionedCall",
        "x",
        attrs=attr_func("f", "__inference___call___5"),
    )
    return saved_model(
        [node("x", "Placeholder"), call, *top, *extra_top], [serve, *fns], saver, assets
    )


BENIGN_BODY = [
    node("MatMul", "MatMul", "x", "x"),
    node("Relu", "Relu", "MatMul:product:0"),
    node("Identity", "Identity", "Relu:activations:0"),
]


# -- flatbuffers (TFLite) ----------------------------------------------------------------------

Table = list[Any]  # fields by index: None, ("u8"|"i8"|"i32"|"u32"|"u64", int) or a ref


def _flatbuffer(root: Table, ident: bytes = b"TFL3") -> bytes:
    """Write ``root`` forward: each table's vtable, then the table (8 bytes per field), then
    what it references (always after the reference, so offsets are positive)."""
    buf = bytearray(8)
    buf[4:8] = ident

    def pad(n: int) -> None:
        while len(buf) % n:
            buf.append(0)

    def write(obj: Any) -> int:
        kind = obj[0]
        if kind == "table":
            fields = obj[1]
            pad(2)
            vt = len(buf)
            buf.extend(struct.pack("<HH", 4 + 2 * len(fields), 4 + 8 * len(fields)))
            for i, f in enumerate(fields):
                buf.extend(struct.pack("<H", 0 if f is None else 4 + 8 * i))
            pad(8)
            t = len(buf)
            buf.extend(struct.pack("<i", t - vt))
            buf.extend(bytes(8 * len(fields)))
            refs = []
            for i, f in enumerate(fields):
                at = t + 4 + 8 * i
                if f is None:
                    continue
                if f[0] in ("u8", "i8", "i32", "u32", "u64"):
                    fmt = {"u8": "<B", "i8": "<b", "i32": "<i", "u32": "<I", "u64": "<Q"}[f[0]]
                    struct.pack_into(fmt, buf, at, f[1])
                else:
                    refs.append((at, f))
            for at, f in refs:
                child = write(f)
                struct.pack_into("<I", buf, at, child - at)
            return t
        pad(4)
        at = len(buf)
        if kind == "str":
            data = obj[1].encode()
            buf.extend(struct.pack("<I", len(data)) + data + b"\0")
        elif kind == "bytes":
            buf.extend(struct.pack("<I", len(obj[1])) + obj[1])
        elif kind == "ints":
            buf.extend(struct.pack(f"<I{len(obj[1])}i", len(obj[1]), *obj[1]))
        elif kind == "tables":
            items = obj[1]
            buf.extend(struct.pack("<I", len(items)) + bytes(4 * len(items)))
            for k, item in enumerate(items):
                slot = at + 4 + 4 * k
                child = write(("table", item))
                struct.pack_into("<I", buf, slot, child - slot)
        return at

    root_at = write(("table", root))
    struct.pack_into("<I", buf, 0, root_at)
    return bytes(buf)


def tflite(
    codes: list[tuple[int, str | None]],
    ops: list[tuple[int, list[int], list[int]]],
    *,
    tensors: int = 3,
    tensor_buffers: list[int] | None = None,
    buffers: list[Table] | None = None,
) -> bytes:
    """A one-subgraph model: opcodes (builtin, custom_code), operators (opcode, in, out)."""
    tb = tensor_buffers or [0] * tensors
    opcode_tables = [
        [("i8", min(b, 127)), ("str", c) if c else None, ("i32", 1), ("i32", b)] for b, c in codes
    ]
    tensor_tables = [
        [("ints", [1, 2]), ("i8", 0), ("u32", tb[i]), ("str", f"t{i}")] for i in range(tensors)
    ]
    op_tables = [[("u32", o), ("ints", i), ("ints", out)] for o, i, out in ops]
    subgraph = [
        ("tables", tensor_tables),
        ("ints", [0]),
        ("ints", [tensors - 1]),
        ("tables", op_tables),
        ("str", "main"),
    ]
    bufs = buffers if buffers is not None else [[], [("bytes", b"\0" * 8)]]
    model = [
        ("u32", 3),
        ("tables", opcode_tables),
        ("tables", [subgraph]),
        ("str", "modelscan-lite sample"),
        ("tables", bufs),
    ]
    return _flatbuffer(model)


ADD, CUSTOM = 0, 32
OK_TFLITE = tflite([(ADD, None)], [(0, [0, 1], [2])])


def samples() -> dict[str, bytes]:
    ok = model_with(BENIGN_BODY)
    read_passwd = model_with(
        [
            node("ReadFile/filename", "Const", attrs=const_string("/etc/passwd")),
            node("ReadFile", "ReadFile", "ReadFile/filename:output:0"),
            node("Identity", "Identity", "ReadFile:contents:0"),
        ]
    )
    write_file = model_with(
        [
            node("path", "Const", attrs=const_string("/tmp/modelscan-lite-sample-marker")),
            node("contents", "Const", attrs=const_string("marker")),
            node("WriteFile", "WriteFile", "path:output:0", "contents:output:0"),
        ]
    )
    pyfunc = model_with(
        [
            node("PyFunc", "PyFunc", "x", attrs=attr_s("token", "pyfunc_0")),
            node("Identity", "Identity", "PyFunc:output:0"),
        ]
    )
    save_outside = model_with(
        [
            node("prefix", "Const", attrs=const_string("/tmp/modelscan-lite-sample-ckpt")),
            node("SaveV2", "SaveV2", "prefix:output:0", "names:output:0"),
        ]
    )
    print_file = model_with(
        [
            node(
                "PrintV2",
                "PrintV2",
                "x",
                attrs=attr_s("output_stream", "file:///tmp/modelscan-lite-sample-marker"),
            ),
        ]
    )
    rpc = model_with(
        [
            node("address", "Const", attrs=const_string("127.0.0.1:1")),
            node("RpcClient", "RpcClient", "address:output:0"),
        ]
    )
    custom = model_with([node("Decrypt", "Decrypt", "x"), node("Identity", "Identity", "x")])
    asset_escape = model_with(
        [
            node("InitializeTableFromTextFileV2", "InitializeTableFromTextFileV2", "table", "x"),
        ],
        extra_top=[node("asset_path", "Const", attrs=const_string("vocab.txt"))],
        assets=[("asset_path:0", "../../../../etc/passwd")],
    )
    ok_asset = model_with(
        [node("init", "InitializeTableFromTextFileV2", "table", "x")],
        extra_top=[node("asset_path", "Const", attrs=const_string("vocab.txt"))],
        assets=[("asset_path:0", "vocab.txt")],
    )
    flex_pyfunc = tflite([(CUSTOM, "FlexPyFunc")], [(0, [0], [2])])
    flex_inverse = tflite([(CUSTOM, "FlexMatrixInverse")], [(0, [0], [2])])
    custom_tflite = tflite([(CUSTOM, "MyDecoder")], [(0, [0, 1], [2])])
    postprocess = tflite([(CUSTOM, "TFLite_Detection_PostProcess")], [(0, [0, 1], [2])])
    bad_opcode = tflite([(ADD, None)], [(5, [0, 1], [2])])
    bad_buffer = tflite([(ADD, None)], [(0, [0, 1], [2])], tensor_buffers=[0, 1, 99])
    far_buffer = tflite(
        [(ADD, None)],
        [(0, [0, 1], [2])],
        buffers=[[], [None, ("u64", 1 << 40), ("u64", 4096)]],
        tensor_buffers=[0, 1, 0],
    )
    return {
        "F101/bad-pyfunc.pb": pyfunc,
        "F101/bad-flex-pyfunc.tflite": flex_pyfunc,
        "F101/ok-module.pb": ok,
        "F101/ok-builtin.tflite": OK_TFLITE,
        "F102/bad-readfile-passwd.pb": read_passwd,
        "F102/bad-writefile.pb": write_file,
        "F102/bad-savev2-outside-saver.pb": save_outside,
        "F102/bad-printv2-to-file.pb": print_file,
        "F102/ok-saver-and-asset.pb": ok_asset,
        "F103/bad-rpc-client.pb": rpc,
        "F103/ok-module.pb": ok,
        "F104/bad-custom-op.pb": custom,
        "F104/ok-module.pb": ok,
        "F105/bad-custom-op.tflite": custom_tflite,
        "F105/ok-detection-postprocess.tflite": postprocess,
        "F106/bad-flex-op.tflite": flex_inverse,
        "F106/ok-builtin.tflite": OK_TFLITE,
        "F201/bad-truncated.pb": ok[:-7],
        "F201/ok-module.pb": ok,
        "F202/bad-opcode-index.tflite": bad_opcode,
        "F202/ok-builtin.tflite": OK_TFLITE,
        "F203/bad-buffer-index.tflite": bad_buffer,
        "F203/bad-buffer-outside-file.tflite": far_buffer,
        "F203/ok-builtin.tflite": OK_TFLITE,
        "F401/bad-asset-escape.pb": asset_escape,
        "F401/ok-asset.pb": ok_asset,
    }
