"""Samples for Core ML (rules M130-M134, M230-M232, M430): ``.mlmodel`` protobufs, ML-program
weights and ``.mlpackage`` folders / zips.

Bad samples are protobufs assembled field by field here (field numbers: the module docstring
of ``modelscan_lite/formats/coreml.py``); ok samples are the real-library fixtures in
``tests/data/formats/coreml/`` (``scripts/make_coreml_fixtures.py``) or the same builders with
nothing wrong. Deterministic: fixed zip timestamps, no randomness. Nothing here runs code;
a custom class name is only a string.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

from samples.make_samples import ZIP_TIME

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "data" / "formats" / "coreml"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# -- protobuf encoding -------------------------------------------------------------------------


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


def fld(number: int, payload: bytes | str) -> bytes:
    """A length-delimited field (message, string, bytes)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def vint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def feature(name: str) -> bytes:
    """FeatureDescription: name + FeatureType.multiArrayType {shape [4], FLOAT32}."""
    return fld(1, name) + fld(3, fld(5, vint(1, 4) + vint(2, 65568)))


def description(inputs: tuple[str, ...] = ("x",), outputs: tuple[str, ...] = ("y",)) -> bytes:
    return b"".join(fld(1, feature(n)) for n in inputs) + b"".join(
        fld(10, feature(n)) for n in outputs
    )


def model(type_field: int, body: bytes, version: int = 4, desc: bytes | None = None) -> bytes:
    """Model {1 specificationVersion, 2 description, <type_field> body}."""
    return (
        vint(1, version) + fld(2, description() if desc is None else desc) + fld(type_field, body)
    )


def layer(name: str, params: bytes, number: int = 100) -> bytes:
    """NeuralNetworkLayer {1 name, 2 input, 3 output, <number> params} (130 activation,
    500 custom, 615 loop)."""
    return fld(1, name) + fld(2, "x") + fld(3, "y") + fld(number, params)


def custom_layer(name: str, cls: str) -> bytes:
    params = fld(10, cls) + fld(30, fld(1, "mode") + fld(2, fld(20, "fast"))) + fld(40, "decoder")
    return layer(name, params, 500)


def network(*layers: bytes) -> bytes:
    return b"".join(fld(1, lay) for lay in layers)


RELU = layer("relu", fld(10, b""), 130)  # activation {ReLU}


def pipeline(*models: bytes) -> bytes:
    return b"".join(fld(1, m) for m in models)


# -- ML programs -------------------------------------------------------------------------------


def mil_string(s: str) -> bytes:
    """Value {3 immediateValue {1 tensor {4 strings {1 values}}}}."""
    return fld(3, fld(1, fld(4, fld(1, s))))


def mil_op(op_type: str, attrs: dict[str, bytes] | None = None) -> bytes:
    body = fld(1, op_type)
    for key, value in (attrs or {}).items():
        body += fld(5, fld(1, key) + fld(2, value))
    body += fld(3, fld(1, "out_" + op_type))
    return body


def blob_ref(offset: int, fname: str = "@model_path/weights/weight.bin") -> bytes:
    """Value {5 blobFileValue {1 fileName, 2 offset}}."""
    return fld(5, fld(1, fname) + vint(2, offset))


def program(*ops: bytes) -> bytes:
    block = fld(2, "y") + b"".join(fld(3, op) for op in ops)
    function = fld(2, "CoreML6") + fld(3, fld(1, "CoreML6") + fld(2, block))
    return vint(1, 1) + fld(2, fld(1, "main") + fld(2, function))


def ml_program(*ops: bytes) -> bytes:
    return model(502, program(*ops), version=7)


def weights(*blobs: bytes, count: int | None = None) -> bytes:
    """MIL blob storage: header, then per blob metadata + data, 64-byte aligned."""
    out = bytearray(struct.pack("<II", len(blobs) if count is None else count, 2) + b"\0" * 56)
    for data in blobs:
        meta_at = len(out)
        data_at = meta_at + 64
        out += struct.pack("<IIQQ", 0xDEADBEEF, 1, len(data), data_at) + b"\0" * 40
        out += data + b"\0" * (-len(data) % 64)
    return bytes(out)


W1 = bytes(range(64))
W2 = bytes(range(32)) * 3


def manifest(path: str = "com.apple.CoreML/model.mlmodel") -> bytes:
    doc = {
        "fileFormatVersion": "1.0.0",
        "itemInfoEntries": {
            "6B8E6C5E-0000-4000-8000-000000000001": {
                "author": "com.apple.CoreML",
                "description": "CoreML Model Specification",
                "name": "model.mlmodel",
                "path": path,
            },
            "6B8E6C5E-0000-4000-8000-000000000002": {
                "author": "com.apple.CoreML",
                "description": "CoreML Model Weights",
                "name": "weights",
                "path": "com.apple.CoreML/weights",
            },
        },
        "rootModelIdentifier": "6B8E6C5E-0000-4000-8000-000000000001",
    }
    return json.dumps(doc, indent=4).encode()


def package(program_bytes: bytes, weight_bytes: bytes) -> dict[str, bytes]:
    return {
        "Manifest.json": manifest(),
        "Data/com.apple.CoreML/model.mlmodel": program_bytes,
        "Data/com.apple.CoreML/weights/weight.bin": weight_bytes,
    }


def zipped(top: str, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(f"{top}/{name}", ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def two_consts(second: int = 192) -> bytes:
    return ml_program(
        mil_op("const", {"val": blob_ref(64)}),
        mil_op("const", {"val": blob_ref(second)}),
        mil_op("linear"),
    )


def _folder(prefix: str, files: dict[str, bytes]) -> dict[str, bytes]:
    return {f"{prefix}/{name}": data for name, data in files.items()}


def samples() -> dict[str, bytes]:
    ok_nn = fixture("mlp-neuralnetwork.mlmodel")
    ok_prog = fixture("mlp-mlprogram.mlmodel")
    good_pkg = package(two_consts(), weights(W1, W2))
    bad_pkg = package(two_consts(4096), weights(W1, W2))
    s: dict[str, bytes] = {
        # M130: custom layers, top level, nested, and in an ML program
        "M130/ok-neuralnetwork.mlmodel": ok_nn,
        "M130/ok-classifier.mlmodel": fixture("mlp-classifier.mlmodel"),
        "M130/ok-mlprogram.mlmodel": ok_prog,
        "M130/ok-handmade.mlmodel": model(500, network(RELU)),
        "M130/bad-custom-layer.mlmodel": model(
            500, network(RELU, custom_layer("decode", "MyDecoder"))
        ),
        "M130/bad-custom-layer-in-loop.mlmodel": model(
            202,
            pipeline(
                model(604, fld(1, b"")),
                model(
                    500,
                    network(
                        layer(
                            "loop",
                            fld(4, network(custom_layer("inner", "LoopBodyLayer"))),
                            615,
                        )
                    ),
                ),
            ),
        ),
        "M130/bad-mil-custom-layer.mlmodel": ml_program(
            mil_op("custom_layer", {"class_name": mil_string("MILDecoder")})
        ),
        # M131: custom model, alone and in a pipeline classifier
        "M131/ok-pipeline.mlmodel": fixture("scaler-glm-pipeline.mlmodel"),
        "M131/bad-custom-model.mlmodel": model(555, fld(10, "MyRecommender") + fld(40, "demo")),
        "M131/bad-custom-model-in-pipeline.mlmodel": model(
            200, fld(1, pipeline(model(604, b""), model(555, fld(10, "Hidden"))))
        ),
        # M132 linked model, M133 serialized model
        "M132/ok-pipeline.mlmodel": fixture("scaler-glm-pipeline.mlmodel"),
        "M132/bad-linked-model.mlmodel": model(
            202,
            pipeline(
                model(604, b""),
                model(
                    556,
                    fld(1, fld(1, fld(1, "Extractor.mlmodelc")) + fld(2, fld(1, "$BUNDLE_MAIN"))),
                ),
            ),
        ),
        "M133/ok-neuralnetwork.mlmodel": ok_nn,
        "M133/bad-serialized-model.mlmodel": model(
            3000, fld(1, "com.example.engine") + fld(2, b"\x00opaque")
        ),
        # M134: an op outside the MIL op list
        "M134/ok-mlprogram.mlmodel": ok_prog,
        "M134/bad-unknown-op.mlmodel": ml_program(mil_op("const"), mil_op("frobnicate")),
        # M230: structure
        "M230/ok-neuralnetwork.mlmodel": ok_nn,
        "M230/ok-Manifest.json": manifest(),
        "M230/bad-truncated.mlmodel": ok_nn[:-40],
        "M230/bad-two-model-types.mlmodel": model(500, network(RELU)) + fld(604, b""),
        "M230/bad-unnamed-feature.mlmodel": model(
            202,
            pipeline(
                model(500, network(RELU), desc=fld(1, fld(2, "no name") + fld(3, fld(2, b""))))
            ),
        ),
        "M230/bad-manifest-no-items.json": json.dumps(
            {
                "fileFormatVersion": "1.0.0",
                "itemInfoEntries": [{"author": "com.apple.CoreML", "path": "model.mlmodel"}],
            }
        ).encode(),
        # M231: the weights file
        "M231/ok-weight.bin": weights(W1, W2),
        "M231/ok-real-weight.bin": fixture(
            "conv-mlprogram.mlpackage/Data/com.apple.CoreML/weights/weight.bin"
        ),
        "M231/bad-data-past-end.bin": weights(W1, W2)[:-64],
        "M231/bad-count.bin": weights(W1, W2, count=3),
        "M231/bad-second-sentinel.bin": weights(W1, W2)[: 128 + 64]
        + b"\0\0\0\0"
        + weights(W1, W2)[128 + 68 :],
        # M232: offsets into the weights, as a folder and as a zip
        "M232/ok-real.mlpackage.zip": fixture("mlp-mlprogram.mlpackage.zip"),
        "M232/ok-model.mlpackage.zip": zipped("ok.mlpackage", good_pkg),
        "M232/bad-offset.mlpackage.zip": zipped("bad.mlpackage", bad_pkg),
        "M232/bad-offset-weights-first.mlpackage.zip": zipped(
            "bad.mlpackage", dict(reversed(list(bad_pkg.items())))
        ),
        # M430: paths leaving the package
        "M430/ok-Manifest.json": manifest(),
        "M430/ok-model.mlpackage.zip": zipped("ok.mlpackage", good_pkg),
        "M430/bad-manifest-escape.json": manifest("../../../../etc/passwd"),
        "M430/bad-manifest-absolute.json": manifest("/etc/passwd"),
        "M430/bad-blob-escape.mlmodel": ml_program(
            mil_op("const", {"val": blob_ref(64, "@model_path/../../../secret.bin")})
        ),
        "M430/bad-blob-absolute.mlmodel": ml_program(
            mil_op("const", {"val": blob_ref(64, "/etc/passwd")})
        ),
        "M430/bad-linked-model-escape.mlmodel": model(
            556, fld(1, fld(1, fld(1, "../../Other.mlmodelc")) + fld(2, fld(1, "/tmp")))
        ),
    }
    s.update(_folder("M232/ok-model.mlpackage", good_pkg))
    s.update(_folder("M232/bad-offset.mlpackage", bad_pkg))
    s.update(_folder("M231/ok-model.mlpackage", good_pkg))
    return s
