"""Keras samples (K1xx, K2xx, K901): ``.keras`` zips and legacy ``.h5`` files built from bytes.

Payloads are harmless: at worst a Lambda whose bytecode would ``touch`` the sample marker
under $TMPDIR (``MARKER_CMD``). The bytecode is a constant made once, with CPython 3.11, by

    code = compile('lambda x: __import__("os").system("' + MARKER_CMD + '") or x',
                   "<keras-sample>", "eval").co_consts[0]
    base64.b64encode(marshal.dumps(code))

(a constant, because marshal output depends on the interpreter's reference counts). The
HDF5 files are written by :func:`h5_file`: superblock version 0, a version 1 root object
header holding a new-style (link info) empty group and fixed-length string attributes,
which h5py / libhdf5 read as Keras does.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
from typing import Any

from samples.make_samples import MARKER_CMD, ZIP_TIME

LAMBDA_B64 = (
    "4wEAAAAAAAAAAAAAAAMAAAADAAAA80oAAACXAHQBAAAAAAAAAAAAAGQBpgEAAKsBAAAAAAAAAACgAQAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAZAKmAQAAqwEAAAAAAAAAAHABfABTACkDTtoCb3N6MnRvdWNoICR7VE1QRElSOi0vdG1wfS9t"
    "b2RlbHNjYW4tbGl0ZS1zYW1wbGUtbWFya2VyKQLaCl9faW1wb3J0X1/aBnN5c3RlbSkB2gF4cwEAAAAg+g48a2Vy"
    "YXMtc2FtcGxlPvoIPGxhbWJkYT5yBwAAAAEAAABzIwAAAIAAjSqQVNEKGtQKGtcKIdIKIdAiVtEKV9QKV9AKXNBb"
    "XIAA8wAAAAA="
)

# -- HDF5 --------------------------------------------------------------------------------------


def _pad8(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 8)


def _h5_message(mtype: int, data: bytes) -> bytes:
    data = _pad8(data)
    return struct.pack("<HHB3x", mtype, len(data), 0) + data


def _h5_string_attr(name: str, value: bytes) -> bytes:
    nm = name.encode() + b"\0"
    dtype = bytes([0x13, 0x00, 0x00, 0x00]) + struct.pack("<I", len(value))  # string, null-term
    space = bytes([1, 0, 0, 0]) + b"\0" * 4  # version 1, scalar
    head = struct.pack("<BBHHH", 1, 0, len(nm), len(dtype), len(space))
    return head + _pad8(nm) + _pad8(dtype) + _pad8(space) + value


def h5_file(attrs: dict[str, bytes]) -> bytes:
    """An HDF5 file whose empty root group has ``attrs`` (fixed-length strings)."""
    messages = _h5_message(0x02, bytes([0, 0]) + b"\xff" * 16)  # link info: no links
    messages += _h5_message(0x0A, bytes([0, 0]))  # group info
    for k, v in attrs.items():
        messages += _h5_message(0x0C, _h5_string_attr(k, v))
    count = 2 + len(attrs)
    header = struct.pack("<BBHII", 1, 0, count, 1, len(messages)) + b"\0" * 4
    root = 96
    eof = root + len(header) + len(messages)
    sb = b"\x89HDF\r\n\x1a\n" + bytes([0, 0, 0, 0, 0, 8, 8, 0]) + struct.pack("<HHI", 4, 16, 0)
    sb += struct.pack("<QQQQ", 0, 2**64 - 1, eof, 2**64 - 1)
    sb += struct.pack("<QQII", 0, root, 0, 0) + b"\0" * 16
    assert len(sb) == 96
    return sb + header + messages


EMPTY_WEIGHTS = h5_file({})

# -- configs -----------------------------------------------------------------------------------

DTYPE = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
         "registered_name": None}  # fmt: skip


def obj(module: str | None, cls: str, config: Any, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"module": module, "class_name": cls, "config": config,
                           "registered_name": None}  # fmt: skip
    out.update(extra)
    return out


def input_layer(shape: int = 4) -> dict[str, Any]:
    return obj("keras.layers", "InputLayer",
               {"batch_shape": [None, shape], "dtype": "float32", "sparse": False,
                "ragged": False, "name": "input_layer", "optional": False})  # fmt: skip


def dense(name: str = "dense", units: int = 2) -> dict[str, Any]:
    return obj(
        "keras.layers",
        "Dense",
        {"name": name, "trainable": True, "dtype": DTYPE, "units": units,
         "activation": "relu", "use_bias": True,
         "kernel_initializer": obj("keras.initializers", "GlorotUniform", {"seed": None}),
         "bias_initializer": obj("keras.initializers", "Zeros", {}),
         "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None,
         "bias_constraint": None},
        build_config={"input_shape": [None, 4]},
    )  # fmt: skip


def lambda_layer(function: Any, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return obj(
        "keras.layers",
        "Lambda",
        {"name": "lambda", "trainable": True, "dtype": DTYPE, "function": function,
         "arguments": arguments or {}},
        build_config={"input_shape": [None, 4]},
    )  # fmt: skip


def fn_ref(module: str, name: str) -> dict[str, Any]:
    return {"module": module, "class_name": "function", "config": name,
            "registered_name": "function"}  # fmt: skip


LAMBDA_FN = {"class_name": "__lambda__",
             "config": {"code": LAMBDA_B64, "defaults": None, "closure": None}}  # fmt: skip


def sequential(layers: list[dict[str, Any]], name: str = "sequential") -> dict[str, Any]:
    return obj(
        "keras",
        "Sequential",
        {"name": name, "trainable": True, "dtype": DTYPE, "layers": [input_layer(), *layers]},
        build_config={"input_shape": [None, 4]},
    )


def keras_zip(config: Any, *, raw_config: bytes | None = None,
              weights: bytes = EMPTY_WEIGHTS) -> bytes:  # fmt: skip
    meta = json.dumps({"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"})
    body = raw_config if raw_config is not None else json.dumps(config).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in (("metadata.json", meta.encode()), ("config.json", body),
                           ("model.weights.h5", weights)):  # fmt: skip
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def legacy_h5(model_config: dict[str, Any]) -> bytes:
    return h5_file(
        {"keras_version": b"2.15.0", "backend": b"tensorflow",
         "model_config": json.dumps(model_config).encode()}
    )  # fmt: skip


def legacy_sequential(layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


def legacy_dense() -> dict[str, Any]:
    return {"class_name": "Dense", "config": {"name": "dense", "units": 2, "activation": "relu"}}


def _torch_wrapper_pickle() -> bytes:
    # a protocol-2 pickle calling posix.system(MARKER_CMD): what a hostile
    # TorchModuleWrapper config hands to torch.load (never loaded here)
    return (
        b"\x80\x02cposix\nsystem\nq\x00X" + struct.pack("<I", len(MARKER_CMD))
        + MARKER_CMD.encode() + b"q\x01\x85q\x02Rq\x03."
    )  # fmt: skip


def samples() -> dict[str, bytes]:
    ok = keras_zip(sequential([dense()]))
    nested_lambda = sequential(
        [obj("keras.layers", "TimeDistributed",
             {"name": "td", "layer": sequential([lambda_layer(LAMBDA_FN)], "inner")})]
    )  # fmt: skip
    out = {
        # K101: Lambda bytecode (CVE-2024-3660), nested in a wrapped sub-model too
        "K101/bad-lambda.keras": keras_zip(sequential([lambda_layer(LAMBDA_FN)])),
        "K101/bad-lambda-nested-submodel.keras": keras_zip(nested_lambda),
        "K101/bad-lambda-activation.keras": keras_zip(
            sequential([{**dense(), "config": {**dense()["config"], "activation": LAMBDA_FN}}])
        ),
        # CVE-2025-9905: a legacy HDF5 model, where safe_mode is ignored
        "K101/bad-lambda-legacy.h5": legacy_h5(
            legacy_sequential(
                [
                    legacy_dense(),
                    {
                        "class_name": "Lambda",
                        "config": {
                            "name": "lambda",
                            "function": [LAMBDA_B64, None, None],
                            "function_type": "lambda",
                            "module": "__main__",
                            "output_shape": None,
                            "output_shape_type": "raw",
                            "arguments": {},
                        },
                    },
                ]
            )
        ),
        "K101/ok-sequential.keras": ok,
        # K102: a dangerous callable by module (CVE-2025-1550)
        "K102/bad-module-function.keras": keras_zip(
            sequential([lambda_layer(fn_ref("os", "system"), {"command": MARKER_CMD})])
        ),
        "K102/bad-builtins-exec.keras": keras_zip(
            sequential([lambda_layer(fn_ref("builtins", "exec"))])
        ),
        "K102/bad-legacy-function-module.h5": legacy_h5(
            legacy_sequential(
                [
                    {
                        "class_name": "Lambda",
                        "config": {
                            "name": "lambda",
                            "function": "system",
                            "function_type": "function",
                            "module": "os",
                            "arguments": {},
                        },
                    }
                ]
            )
        ),
        "K102/ok-builtin-activation.keras": keras_zip(
            sequential([lambda_layer(fn_ref("builtins", "relu"))])
        ),
        # K103: a class from outside Keras
        "K103/bad-external-class.keras": keras_zip(
            sequential([obj("mypkg.layers", "Evil", {"name": "evil"})])
        ),
        "K103/ok-sequential.keras": ok,
        # K104: Keras gadgets
        "K104/bad-get-file.keras": keras_zip(  # CVE-2025-8747
            sequential(
                [
                    lambda_layer(
                        fn_ref("keras.utils", "get_file"),
                        {"origin": "http://127.0.0.1:9/x", "cache_dir": "/tmp"},
                    )
                ]
            )
        ),
        "K104/bad-enable-unsafe-then-lambda.keras": keras_zip(  # CVE-2025-9906
            sequential(
                [
                    lambda_layer(fn_ref("keras.config", "enable_unsafe_deserialization")),
                    lambda_layer(LAMBDA_FN),
                ]
            )
        ),
        "K104/bad-set-global-attribute.keras": keras_zip(  # CVE-2025-9906 variant
            sequential(
                [
                    lambda_layer(
                        fn_ref("keras.src.backend.common.global_state", "set_global_attribute"),
                        {"name": "safe_mode_saving", "value": False},
                    )
                ]
            )
        ),
        "K104/bad-torch-module-wrapper.keras": keras_zip(  # CVE-2025-49655
            sequential(
                [
                    obj(
                        "keras.layers",
                        "TorchModuleWrapper",
                        {
                            "name": "torch_module_wrapper",
                            "output_shape": None,
                            "module": base64.b64encode(_torch_wrapper_pickle()).decode(),
                        },
                    )
                ]
            )
        ),
        "K104/bad-tfsm-layer.keras": keras_zip(  # CVE-2026-1462
            sequential(
                [
                    obj(
                        "keras.layers",
                        "TFSMLayer",
                        {
                            "name": "tfsm",
                            "filepath": "/tmp/attacker_savedmodel",
                            "call_endpoint": "serve",
                        },
                    )
                ]
            )
        ),
        "K104/ok-sequential.keras": ok,
        # K105: custom objects
        "K105/bad-registered-custom.keras": keras_zip(
            sequential(
                [
                    obj(
                        "my_package.layers",
                        "MyLayer",
                        {"name": "my"},
                        registered_name="my_package>MyLayer",
                    )
                ]
            )
        ),
        "K105/bad-unknown-legacy-class.h5": legacy_h5(
            legacy_sequential([{"class_name": "MyCustomLayer", "config": {"name": "c"}}])
        ),
        "K105/ok-legacy.h5": legacy_h5(legacy_sequential([legacy_dense()])),
        # K106: a Keras function that is no modeling object
        "K106/bad-keras-utility.keras": keras_zip(
            sequential([lambda_layer(fn_ref("keras.utils", "plot_model"))])
        ),
        "K106/ok-sequential.keras": ok,
        # K201: malformed config
        "K201/bad-invalid-json.keras": keras_zip(None, raw_config=b'{"class_name": "Seq'),
        "K201/bad-not-keras-object.keras": keras_zip(None, raw_config=b"[1, 2, 3]"),
        "K201/ok-sequential.keras": ok,
        # K202: unreadable HDF5
        "K202/bad-truncated.h5": legacy_h5(legacy_sequential([legacy_dense()]))[:150],
        "K202/ok-legacy.h5": legacy_h5(legacy_sequential([legacy_dense()])),
    }
    # K901: dense attribute storage (an attribute info message with a fractal heap address)
    dense_h5 = bytearray(h5_file({"keras_version": b"3.15.1"}))
    info = _h5_message(0x15, bytes([0, 0]) + struct.pack("<QQ", 4096, 2**64 - 1))
    at = 96 + 16
    dense_h5[at:at] = info
    struct.pack_into("<H", dense_h5, 96 + 2, struct.unpack_from("<H", dense_h5, 96 + 2)[0] + 1)
    size = struct.unpack_from("<I", dense_h5, 96 + 8)[0] + len(info)
    struct.pack_into("<I", dense_h5, 96 + 8, size)
    struct.pack_into("<Q", dense_h5, 40, len(dense_h5))  # end of file address
    out["K901/bad-dense-attributes.h5"] = bytes(dense_h5)
    out["K901/ok-legacy.h5"] = out["K202/ok-legacy.h5"]
    return out
