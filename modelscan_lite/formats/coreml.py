"""Core ML: ``.mlmodel`` protobufs, ``.mlpackage`` manifests and ML-program weight blobs.

Read as bytes, never with coremltools. The field numbers below are those of Core ML's
``mlmodel/format/*.proto`` (apple/coremltools), checked against the descriptors coremltools
9.0 ships (``coremltools.proto.*_pb2``).

``Model`` (Model.proto)::

    1 specificationVersion (int32)   2 description (ModelDescription)   10 isUpdatable (bool)
    oneof Type: 200 pipelineClassifier  201 pipelineRegressor  202 pipeline
                300 glmRegressor  301 supportVectorRegressor  302 treeEnsembleRegressor
                303 neuralNetworkRegressor  304 bayesianProbitRegressor
                400 glmClassifier  401 supportVectorClassifier  402 treeEnsembleClassifier
                403 neuralNetworkClassifier  404 kNearestNeighborsClassifier
                500 neuralNetwork  501 itemSimilarityRecommender  502 mlProgram
                555 customModel  556 linkedModel  560 classConfidenceThresholding
                600 oneHotEncoder  601 imputer  602 featureVectorizer  603 dictVectorizer
                604 scaler  606 categoricalMapping  607 normalizer  609 arrayFeatureExtractor
                610 nonMaximumSuppression  900 identity  2000-2006 Apple's text, vision and
                sound models  3000 serializedModel

* ``ModelDescription``: 1 input, 10 output, 13 state, 50 trainingInput (FeatureDescription:
  1 name, 2 shortDescription, 3 type FeatureType with oneof 1-8 and 1000 isOptional),
  11 predictedFeatureName, 12 predictedProbabilitiesName, 20 functions, 21
  defaultFunctionName, 100 metadata.
* ``PipelineClassifier`` / ``PipelineRegressor``: 1 pipeline; ``Pipeline``: 1 models (Model,
  repeated), 2 names: nested models are walked like the top one.
* ``NeuralNetwork`` / ``NeuralNetworkClassifier`` / ``NeuralNetworkRegressor``: 1 layers
  (``NeuralNetworkLayer``: 1 name, 500 custom = ``CustomLayerParams`` {10 className,
  20 weights, 30 parameters, 40 description}, 605 branch {1 ifBranch, 2 elseBranch},
  615 loop {3 conditionNetwork, 4 bodyNetwork}: nested networks are walked).
* ``CustomModel``: 10 className, 30 parameters, 40 description.
* ``LinkedModel``: 1 linkedModelFile {1 linkedModelFileName, 2 linkedModelSearchPath}, each a
  ``StringParameter`` {1 defaultValue}. ``SerializedModel``: 1 identifier, 2 model (bytes).
* ``MILSpec.Program`` (MIL.proto): 2 functions (map entry {1 key, 2 Function});
  ``Function``: 3 block_specializations (map {1 key, 2 Block}); ``Block``: 3 operations;
  ``Operation``: 1 type, 2 inputs (map {1 key, 2 Argument {1 arguments: Binding {1 name,
  2 value}}}), 4 blocks (nested), 5 attributes (map {1 key, 2 Value}); ``Value``: 3
  immediateValue {1 tensor {4 strings {1 values}}}, 5 blobFileValue {1 fileName, 2 offset}.

What loading can do: a custom layer (``NeuralNetworkLayer.custom``, or an ML-program op of
type ``custom_layer`` with a ``class_name`` attribute, as coremltools writes registered custom
ops) and a custom model (``customModel``) name an Objective-C/Swift class the host app must
provide: Core ML looks the class up by name in the process and runs it with the file's
parameters and weights. A linked model loads another compiled model from the host's file
system by name; a serialized model is an opaque payload. ML-program ops outside the standard
MIL ops (``rules/allowlist/coreml-mil-ops.json``, ``scripts/gen_coreml_mil_ops.py``) are
reported. Weights of an ML program live in ``weights/weight.bin`` (MIL blob storage, below),
referenced by ``@model_path/<file>`` + the offset of a blob's metadata.

MIL blob storage (``MILBlob/Blob/StorageFormat.hpp``): a 64-byte ``storage_header`` {u32
count, u32 version = 2, 56 reserved zero bytes}, then per blob a 64-byte ``blob_metadata``
{u32 sentinel 0xDEADBEEF, u32 mil_dtype, u64 sizeInBytes, u64 offset (of the data), 40
reserved bytes} and the data, each 64-byte aligned (little-endian).

A Core ML package (``X.mlpackage/``) has ``Manifest.json`` (``fileFormatVersion``,
``itemInfoEntries`` {id: {author, description, name, path}}, ``rootModelIdentifier``),
the model at ``Data/com.apple.CoreML/model.mlmodel`` and the weights at
``Data/com.apple.CoreML/weights/weight.bin``. Item paths are relative to ``Data/``; one that
is absolute or climbs out with ``..`` is reported.

Weight offsets are checked against the blob file when the model is scanned as a file with
its package folder around it, and, inside a zip or tar, against the weights member of the
same package (whichever of the two members is read second compares; the first leaves a
``coreml.weight-refs`` / ``coreml.weight-blobs`` fact for it).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import struct
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

from .. import jsonbudget
from ..model import Location
from .base import Context
from .protobuf import FIXED32, FIXED64, LEN, VARINT, ProtoError, varint
from .streams import map_region

MIL_OPS = Path(__file__).resolve().parents[2] / "rules" / "allowlist" / "coreml-mil-ops.json"

# Model.Type oneof field numbers (Model.proto)
MODEL_TYPES: dict[int, str] = {
    200: "pipelineClassifier",
    201: "pipelineRegressor",
    202: "pipeline",
    300: "glmRegressor",
    301: "supportVectorRegressor",
    302: "treeEnsembleRegressor",
    303: "neuralNetworkRegressor",
    304: "bayesianProbitRegressor",
    400: "glmClassifier",
    401: "supportVectorClassifier",
    402: "treeEnsembleClassifier",
    403: "neuralNetworkClassifier",
    404: "kNearestNeighborsClassifier",
    500: "neuralNetwork",
    501: "itemSimilarityRecommender",
    502: "mlProgram",
    555: "customModel",
    556: "linkedModel",
    560: "classConfidenceThresholding",
    600: "oneHotEncoder",
    601: "imputer",
    602: "featureVectorizer",
    603: "dictVectorizer",
    604: "scaler",
    606: "categoricalMapping",
    607: "normalizer",
    609: "arrayFeatureExtractor",
    610: "nonMaximumSuppression",
    900: "identity",
    2000: "textClassifier",
    2001: "wordTagger",
    2002: "visionFeaturePrint",
    2003: "soundAnalysisPreprocessing",
    2004: "gazetteer",
    2005: "wordEmbedding",
    2006: "audioFeaturePrint",
    3000: "serializedModel",
}
PIPELINES = frozenset({200, 201, 202})
MESSAGE_FIELDS = frozenset({2, *MODEL_TYPES})
NETWORKS = frozenset({303, 403, 500})
DESCRIPTION_FIELDS = frozenset({1, 10, 11, 12, 13, 20, 21, 50, 100})
FEATURE_LISTS = frozenset({1, 10, 13, 50})
FEATURE_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 1000})
MAX_SPEC_VERSION = 64  # Core ML 8 writes 9; room for years of new versions
MAX_STRING = 4096
MAX_NODES = 4_000_000  # layers + ops + nested models in one file
MAX_DEPTH = 64  # pipelines in pipelines, branches in loops, blocks in ops
MAX_BLOBS = 1_000_000  # distinct weight references / blobs tracked per file
MAX_REPORTED = 64  # findings of one kind per file
BLOB_SENTINEL = 0xDEADBEEF
BLOB_HEADER = 64
MODEL_PATH = "@model_path/"


class Budget(Exception):
    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what
        self.message = message


# -- sniffs ------------------------------------------------------------------------------------

_MANIFEST = re.compile(rb'\A\s*\{[^{}]{0,2000}"(?:fileFormatVersion|itemInfoEntries)"\s*:', re.S)


def sniff_coreml_manifest(head: bytes) -> bool:
    """A JSON object with Core ML's manifest keys (both of them within the head)."""
    return (
        _MANIFEST.match(head) is not None
        and b'"itemInfoEntries"' in head
        and b'"fileFormatVersion"' in head
        and b"com.apple.CoreML" in head
    )


def _text_ok(buf: bytes, pos: int, n: int) -> bool:
    try:
        bytes(buf[pos : pos + n]).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return n > 0


def _feature_ok(buf: bytes, start: int, end: int) -> bool:
    """A complete FeatureDescription: a UTF-8 name (1), optional text (2) and a FeatureType
    (3) whose first field is one of its oneof members."""
    named = typed = False
    pos = start
    while pos < end:
        key, pos = varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire != LEN or number not in (1, 2, 3):
            return False
        n, pos = varint(buf, pos, end)
        if pos + n > end:
            return False
        if number == 1:
            named = _text_ok(buf, pos, n)
            if not named:
                return False
        elif number == 2 and n and not _text_ok(buf, pos, n):
            return False
        elif number == 3:
            if n == 0:
                return False
            inner, _ = varint(buf, pos, pos + n)
            typed = inner >> 3 in FEATURE_TYPES
            if not typed:
                return False
        pos += n
    return named and typed


def sniff_coreml_model(head: bytes) -> bool:
    """``08 <specificationVersion>`` then ``12 <len>`` a ModelDescription made only of its own
    fields with at least one complete, named and typed FeatureDescription, then (when the
    description ends within the head) ``isUpdatable`` and a ``Model.Type`` field (200+)."""
    if len(head) < 8 or head[0] != 0x08:
        return False
    try:
        version, pos = varint(head, 1, len(head))
        if not 1 <= version <= MAX_SPEC_VERSION or head[pos : pos + 1] != b"\x12":
            return False
        n, pos = varint(head, pos + 1, len(head))
        end = pos + n
        stop = min(end, len(head))
        features = 0
        while pos < stop:
            key, after = varint(head, pos, stop)
            number, wire = key >> 3, key & 7
            if number not in DESCRIPTION_FIELDS or wire != LEN:
                return False
            size, body = varint(head, after, stop)
            if body + size > stop:
                break  # cut by the head: what was seen so far decides
            if number in FEATURE_LISTS:
                if not _feature_ok(head, body, body + size):
                    return False
                features += 1
            elif number in (11, 12, 21) and size and not _text_ok(head, body, size):
                return False
            pos = body + size
        if features == 0:
            return False
        if end > len(head):
            return True  # a description longer than the head, Core ML's to its end
        pos = end
        while pos < len(head):
            key, pos = varint(head, pos, len(head))
            number, wire = key >> 3, key & 7
            if number == 10 and wire == VARINT:
                _, pos = varint(head, pos, len(head))
                continue
            return number in MODEL_TYPES and wire == LEN
    except ProtoError:
        return False
    return False


def sniff_coreml_weights(head: bytes) -> bool:
    """MIL blob storage: count, version 2, 56 zero bytes, then the first blob's sentinel
    (or nothing at all: an empty store of exactly 64 bytes)."""
    if len(head) < BLOB_HEADER or head[4:8] != b"\x02\0\0\0" or any(head[8:BLOB_HEADER]):
        return False
    (count,) = struct.unpack_from("<I", head)
    if count == 0:
        return len(head) == BLOB_HEADER
    return len(head) >= 2 * BLOB_HEADER and head[64:68] == struct.pack("<I", BLOB_SENTINEL)


# -- the protobuf walk -------------------------------------------------------------------------


class _Walker:
    """Bounded field iteration: the deadline every 64 Ki fields, a node count."""

    __slots__ = ("buf", "ctx", "fields", "nodes")

    def __init__(self, buf: Any, ctx: Context) -> None:
        self.buf = buf
        self.ctx = ctx
        self.fields = 0
        self.nodes = 0

    def walk(self, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
        buf = self.buf
        pos = start
        while pos < end:
            self.fields += 1
            if not self.fields & 0xFFFF and self.ctx.deadline.expired():
                raise Budget("budget-time", f"more than {self.ctx.deadline.seconds:.0f}s to walk")
            key_at = pos
            key = buf[pos]  # one-byte keys and lengths (most of them) without a call
            if key < 0x80:
                pos += 1
            else:
                key, pos = varint(buf, pos, end)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise ProtoError("field number 0", key_at)
            if wire == VARINT:
                value, pos = varint(buf, pos, end)
                yield number, wire, value, key_at
                continue
            if wire == LEN:
                if pos < end and buf[pos] < 0x80:
                    n = buf[pos]
                    pos += 1
                else:
                    n, pos = varint(buf, pos, end)
            elif wire == FIXED64:
                n = 8
            elif wire == FIXED32:
                n = 4
            else:
                raise ProtoError(f"wire type {wire} (field {number})", key_at)
            if pos + n > end:
                raise ProtoError(f"field {number} of {n} bytes runs past its message", pos)
            yield number, wire, n, pos
            pos += n

    def node(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise Budget("budget-coreml-nodes", f"more than {MAX_NODES} layers, ops and models")

    def text(self, pos: int, n: int) -> str:
        return bytes(self.buf[pos : pos + min(n, MAX_STRING)]).decode("utf-8", "replace")

    def message(self, start: int, end: int, number: int, what: str) -> tuple[int, int]:
        """The one ``number`` field (a message) of ``buf[start:end]`` as (start, end)."""
        found = (0, 0)
        for num, wire, n, at in self.walk(start, end):
            if num == number:
                if wire != LEN:
                    raise ProtoError(f"{what}: field {number} is not a message", at)
                found = (at, at + n)
        return found

    def string(self, start: int, end: int, number: int) -> str | None:
        value = None
        for num, wire, n, at in self.walk(start, end):
            if num == number and wire == LEN:
                value = self.text(at, n)
        return value


class _Model:
    """What one ``.mlmodel`` says: findings are emitted as the walk goes; weight references
    are collected for the blob check."""

    def __init__(self, w: _Walker, where: Location, ctx: Context) -> None:
        self.w = w
        self.where = where
        self.ctx = ctx
        self.refs: dict[tuple[str, int], str] = {}  # (fileName, offset) -> op path
        self.unknown_ops: dict[str, str] = {}
        self.reported = 0
        self.types: list[str] = []

    def _emit(
        self,
        kind: str,
        value: str,
        key: str,
        at: int,
        evidence: str | None = None,
        **detail: object,
    ) -> None:
        self.reported += 1
        if self.reported <= MAX_REPORTED * 8:
            self.ctx.emit(kind, value, self.where.at(at, key), evidence, **detail)

    # -- Model ---------------------------------------------------------------------------

    def model(self, start: int, end: int, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise Budget("budget-coreml-depth", f"models nested more than {MAX_DEPTH} deep")
        self.w.node()
        kinds: list[tuple[int, int, int]] = []
        described = False
        for number, wire, n, at in self.w.walk(start, end):
            if (number == 1 and wire != VARINT) or (number in MESSAGE_FIELDS and wire != LEN):
                raise ProtoError(f"{path or 'Model'}: field {number} has wire type {wire}", at)
            if number == 2:
                self.description(at, at + n, path)
                described = True
            elif number in MODEL_TYPES:
                kinds.append((number, at, n))
        if not kinds:
            raise ProtoError(f"{path or 'Model'}: no model type (fields 200+)", start)
        if len(kinds) > 1:
            names = ", ".join(MODEL_TYPES[k] for k, _, _ in kinds)
            raise ProtoError(f"{path or 'Model'}: more than one model type ({names})", kinds[1][1])
        if not described and depth == 0:
            raise ProtoError("Model: no description (field 2)", start)
        number, at, n = kinds[0]
        name = MODEL_TYPES[number]
        here = f"{path}.{name}" if path else name
        self.types.append(name)
        if number in PIPELINES:
            self.pipeline(number, at, at + n, here, depth)
        elif number in NETWORKS:
            self.network(at, at + n, here, depth)
        elif number == 502:
            self.program(at, at + n, here, depth)
        elif number == 555:
            self.custom_model(at, at + n, here)
        elif number == 556:
            self.linked_model(at, at + n, here)
        elif number == 3000:
            ident = self.w.string(at, at + n, 1) or ""
            self._emit("coreml.serialized-model", ident, here, at)

    def description(self, start: int, end: int, path: str) -> None:
        for number, wire, n, at in self.w.walk(start, end):
            if number in FEATURE_LISTS:
                if wire != LEN:
                    raise ProtoError(f"{path or 'Model'}.description: field {number}", at)
                name = self.w.string(at, at + n, 1)
                if not name:
                    raise ProtoError(f"{path or 'Model'}.description: a feature has no name", at)

    def pipeline(self, number: int, start: int, end: int, path: str, depth: int) -> None:
        if number != 202:  # PipelineClassifier / PipelineRegressor {1 pipeline}
            start, end = self.w.message(start, end, 1, path)
            path += ".pipeline"
        index = 0
        for num, wire, n, at in self.w.walk(start, end):
            if num == 1:
                if wire != LEN:
                    raise ProtoError(f"{path}: models[{index}] is not a message", at)
                self.model(at, at + n, f"{path}.models[{index}]", depth + 1)
                index += 1

    # -- neural networks ---------------------------------------------------------------------

    def network(self, start: int, end: int, path: str, depth: int) -> None:
        stack = [(start, end, path, depth)]
        while stack:
            s, e, p, d = stack.pop()
            if d > MAX_DEPTH:
                raise Budget("budget-coreml-depth", f"networks nested more than {MAX_DEPTH} deep")
            index = 0
            for number, wire, n, at in self.w.walk(s, e):
                if number != 1:
                    continue
                if wire != LEN:
                    raise ProtoError(f"{p}: layers[{index}] is not a message", at)
                self.w.node()
                stack.extend(self.layer(at, at + n, f"{p}.layers[{index}]", d))
                index += 1

    def layer(self, start: int, end: int, path: str, depth: int) -> list[tuple[int, int, str, int]]:
        name = ""
        nested: list[tuple[int, int, str, int]] = []
        custom: tuple[int, int] | None = None
        for number, wire, n, at in self.w.walk(start, end):
            if number == 1 and wire == LEN:
                name = self.w.text(at, n)
            elif number in (500, 605, 615):
                if wire != LEN:
                    raise ProtoError(f"{path}: layer field {number} is not a message", at)
                if number == 500:
                    custom = (at, at + n)
                    continue
                subs = (1, 2) if number == 605 else (3, 4)
                label = "branch" if number == 605 else "loop"
                for num, wt, m, pos in self.w.walk(at, at + n):
                    if num in subs:
                        if wt != LEN:
                            raise ProtoError(f"{path}.{label}: field {num}", pos)
                        nested.append((pos, pos + m, f"{path}.{label}.{num}", depth + 1))
        if custom is not None:
            s, e = custom
            cls = self.w.string(s, e, 10) or ""
            desc = self.w.string(s, e, 40)
            params = sum(1 for num, _, _, _ in self.w.walk(s, e) if num == 30)
            self._emit(
                "coreml.custom-layer",
                cls,
                f"{path} {name[:100]}".strip(),
                s,
                evidence=f"layer `{name[:200]}`: custom class `{cls}`, {params} parameters"
                + (f", description `{desc[:200]}`" if desc else ""),
                layer=name[:200],
                via="NeuralNetworkLayer.custom",
                parameters=params,
                description=desc[:200] if desc else None,
            )
        return nested

    def custom_model(self, start: int, end: int, path: str) -> None:
        cls = self.w.string(start, end, 10) or ""
        desc = self.w.string(start, end, 40)
        params = sum(1 for num, _, _, _ in self.w.walk(start, end) if num == 30)
        self._emit(
            "coreml.custom-model",
            cls,
            path,
            start,
            evidence=f"customModel: class `{cls}`, {params} parameters"
            + (f", description `{desc[:200]}`" if desc else ""),
            parameters=params,
            description=desc[:200] if desc else None,
        )

    def linked_model(self, start: int, end: int, path: str) -> None:
        s, e = self.w.message(start, end, 1, path)
        name_s, name_e = self.w.message(s, e, 1, path)
        search_s, search_e = self.w.message(s, e, 2, path)
        name = self.w.string(name_s, name_e, 1) or ""
        search = self.w.string(search_s, search_e, 1) or ""
        self._emit("coreml.linked-model", name, path, start, search_path=search)
        for value, what in ((name, "linked model file name"), (search, "linked model search path")):
            for part in value.split(":"):
                problem = _escape_problem(part, allow_vars=True)
                if problem:
                    self._emit("coreml.path-escape", part, path, start, source=what, reason=problem)

    # -- ML programs ---------------------------------------------------------------------

    def program(self, start: int, end: int, path: str, depth: int) -> None:
        blocks: list[tuple[int, int, str, int]] = []
        for number, wire, n, at in self.w.walk(start, end):
            if number != 2 or wire != LEN:
                continue
            fname = self.w.string(at, at + n, 1) or "?"
            fs, fe = self.w.message(at, at + n, 2, f"{path}.functions")
            for num, wt, m, pos in self.w.walk(fs, fe):
                if num == 3 and wt == LEN:
                    spec = self.w.string(pos, pos + m, 1) or "?"
                    bs, be = self.w.message(pos, pos + m, 2, f"{path}.{fname}")
                    blocks.append((bs, be, f"{path}.{fname[:100]}.{spec[:40]}", depth))
        while blocks:
            s, e, p, d = blocks.pop()
            if d > MAX_DEPTH + depth:
                raise Budget("budget-coreml-depth", f"blocks nested more than {MAX_DEPTH} deep")
            index = 0
            for number, wire, n, at in self.w.walk(s, e):
                if number != 3:
                    continue
                if wire != LEN:
                    raise ProtoError(f"{p}: operations[{index}] is not a message", at)
                self.w.node()
                blocks.extend(self.operation(at, at + n, f"{p}.ops[{index}]", d))
                index += 1
        self._report_unknown_ops()

    def operation(
        self, start: int, end: int, path: str, depth: int
    ) -> list[tuple[int, int, str, int]]:
        op_type = ""
        nested: list[tuple[int, int, str, int]] = []
        attrs: dict[str, tuple[int, int]] = {}
        for number, wire, n, at in self.w.walk(start, end):
            if wire != LEN:
                continue
            if number == 1:
                op_type = self.w.text(at, n)
            elif number == 4:
                nested.append((at, at + n, f"{path}.block", depth + 1))
            elif number == 5:  # attributes: {1 key, 2 Value}
                key = self.w.string(at, at + n, 1) or ""
                vs, ve = self.w.message(at, at + n, 2, path)
                attrs[key] = (vs, ve)
                self.value(vs, ve, path)
            elif number == 2:  # inputs: {1 key, 2 Argument {1 Binding {1 name, 2 value}}}
                a_s, a_e = self.w.message(at, at + n, 2, path)
                for num, wt, m, pos in self.w.walk(a_s, a_e):
                    if num == 1 and wt == LEN:
                        for bn, bw, bl, bp in self.w.walk(pos, pos + m):
                            if bn == 2 and bw == LEN:
                                self.value(bp, bp + bl, path)
        label = f"{path} {op_type[:100]}"
        if op_type == "custom_layer":
            cls = ""
            if "class_name" in attrs:
                cls = self.immediate_string(*attrs["class_name"]) or ""
            self._emit(
                "coreml.custom-layer",
                cls,
                label,
                start,
                evidence=f"ML program op `custom_layer` {path}: class_name `{cls}`",
                layer=path,
                via="ML program op custom_layer",
            )
        elif op_type not in mil_ops():
            self.unknown_ops.setdefault(op_type, label)
        return nested

    def value(self, start: int, end: int, path: str) -> None:
        for number, wire, n, at in self.w.walk(start, end):
            if number == 5 and wire == LEN:  # blobFileValue {1 fileName, 2 offset}
                fname, offset = "", -1
                for num, wt, val, pos in self.w.walk(at, at + n):
                    if num == 1 and wt == LEN:
                        fname = self.w.text(pos, val)
                    elif num == 2 and wt == VARINT:
                        offset = val
                if offset < 0:
                    raise ProtoError(f"{path}: blob reference without an offset", at)
                if len(self.refs) < MAX_BLOBS:
                    self.refs.setdefault((fname, offset), path)

    def immediate_string(self, start: int, end: int) -> str | None:
        s, e = self.w.message(start, end, 3, "value")
        s, e = self.w.message(s, e, 1, "value")
        s, e = self.w.message(s, e, 4, "value")
        return self.w.string(s, e, 1) if e > s else None

    def _report_unknown_ops(self) -> None:
        for op_type, label in list(self.unknown_ops.items())[:MAX_REPORTED]:
            self._emit("coreml.unknown-op", op_type, label, 0)
        self.unknown_ops.clear()


@cache
def mil_ops() -> frozenset[str]:
    doc = json.loads(MIL_OPS.read_text())
    return frozenset(doc["ops"])


def _escape_problem(path: str, *, allow_vars: bool = False) -> str | None:
    """Why a package-relative path leaves its package, if it does."""
    if not path:
        return None
    if allow_vars and path.startswith("$"):
        return None
    if "\0" in path:
        return "contains a NUL byte"
    if path.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", path):
        return "is absolute"
    parts = re.split(r"[\\/]+", path)
    depth = 0
    for part in parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return "climbs out with `..`"
        elif part not in ("", "."):
            depth += 1
    return None


def _blob_target(fname: str) -> tuple[str | None, str | None]:
    """(path below the model's folder, why it escapes) for a blob ``fileName``."""
    if not fname.startswith(MODEL_PATH):
        return None, "does not start with `@model_path/`"
    rest = fname[len(MODEL_PATH) :]
    problem = _escape_problem(rest)
    if problem:
        return None, problem
    return posixpath.normpath(rest.replace("\\", "/")), None


# -- scanning a .mlmodel -----------------------------------------------------------------------


def scan_coreml_model(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str = ""
) -> None:
    buf, release = map_region(f, start, length, all_decides=True)
    try:
        length = len(buf)
        model = _Model(_Walker(buf, ctx), where, ctx)
        try:
            model.model(0, length, "", 0)
        except Budget as exc:
            ctx.anomaly(exc.what, where, exc.message)
            return
        except (ProtoError, RecursionError) as exc:
            ctx.anomaly(
                "coreml-malformed",
                where.at(getattr(exc, "offset", None)),
                f"not a valid Core ML model: {exc}",
            )
            return
        ctx.emit("coreml.model", "/".join(model.types[:8]), where)
        if model.refs:
            _check_refs(model.refs, where, ctx)
    finally:
        release()


def _check_refs(refs: dict[tuple[str, int], str], where: Location, ctx: Context) -> None:
    by_file: dict[str, list[tuple[int, str]]] = {}
    escapes = 0
    for (fname, offset), op in refs.items():
        rel, problem = _blob_target(fname)
        if problem or rel is None:
            escapes += 1
            if escapes <= MAX_REPORTED:
                ctx.emit(
                    "coreml.path-escape",
                    fname,
                    where.at(key=op),
                    source="weight blob file name",
                    reason=problem,
                )
            continue
        by_file.setdefault(rel, []).append((offset, op))
    for rel, offsets in by_file.items():
        if where.member is None:
            _check_local(rel, offsets, where, ctx)
        else:
            _check_member(rel, offsets, where, ctx)


def _out_of_range(where: Location, ctx: Context, op: str, message: str) -> None:
    ctx.anomaly("coreml-weight-out-of-range", where.at(key=op), message)


def _check_local(rel: str, offsets: list[tuple[int, str]], where: Location, ctx: Context) -> None:
    """The weights file beside a model scanned from disk: each referenced blob's metadata
    must carry the sentinel and its data must lie inside the file."""
    from ..hfcache import in_cache_blobs

    base = os.path.dirname(os.path.abspath(where.path))
    target = os.path.join(base, rel)
    ctx.consult(target)
    real = os.path.realpath(target)
    # in a Hugging Face cache snapshot every file is a link into the repo's blobs
    cached = in_cache_blobs(real, ctx.cache_blobs(base))
    if not real.startswith(os.path.realpath(base) + os.sep) and not cached:
        ctx.emit(
            "coreml.path-escape",
            rel,
            where,
            source="weight blob file",
            reason="resolves outside the model's folder (a link)",
        )
        return
    try:
        fh = ctx.open_sibling(target)
    except OSError:
        return  # not beside the model (a bare .mlmodel): nothing to compare
    with fh:
        size = fh.seek(0, os.SEEK_END)
        bad = 0
        for offset, op in sorted(offsets):
            if ctx.deadline.expired():
                ctx.anomaly("budget-time", where, "weight references not all checked")
                return
            fh.seek(offset)
            problem = _blob_problem(fh.read(BLOB_HEADER), offset, size)
            if problem:
                bad += 1
                if bad <= MAX_REPORTED:
                    _out_of_range(
                        where,
                        ctx,
                        op,
                        f"weight blob at offset {offset} of `{rel}` ({size} bytes): {problem}",
                    )


def _blob_problem(meta: bytes, offset: int, size: int) -> str | None:
    if offset < BLOB_HEADER or offset + BLOB_HEADER > size or len(meta) < 24:
        return "the blob's metadata lies outside the file"
    sentinel, _dtype, nbytes, data = struct.unpack_from("<IIQQ", meta)
    if sentinel != BLOB_SENTINEL:
        return "no blob metadata there (sentinel missing)"
    if data < offset + BLOB_HEADER or data + nbytes > size:
        return f"its data ({nbytes} bytes at {data}) runs outside the file"
    return None


def _sibling(where: Location, rel: str) -> str:
    member = where.member or ""
    cut = max(member.rfind("/"), member.rfind("!"))
    return member[: cut + 1] + rel


def _check_member(rel: str, offsets: list[tuple[int, str]], where: Location, ctx: Context) -> None:
    """A model inside an archive: compare with its weights member if it was read already,
    else leave the references for the weights parser."""
    target = _sibling(where, rel)
    for fact in ctx.facts:
        if fact.kind == "coreml.weight-blobs" and fact.value == target:
            detail = dict(fact.detail)
            valid = {int(x) for x in detail.get("blobs", "").split(",") if x}
            _compare(valid, int(detail.get("size", "0")), offsets, target, where, ctx)
            return
    ctx.emit(
        "coreml.weight-refs",
        target,
        where,
        offsets=",".join(str(o) for o, _ in offsets),
        ops="\x1f".join(op for _, op in offsets),
    )


def _compare(
    valid: set[int],
    size: int,
    offsets: list[tuple[int, str]],
    target: str,
    where: Location,
    ctx: Context,
) -> None:
    bad = 0
    for offset, op in offsets:
        if offset not in valid:
            bad += 1
            if bad <= MAX_REPORTED:
                _out_of_range(
                    where,
                    ctx,
                    op,
                    f"weight blob at offset {offset} of `{target}` ({size} bytes): no blob "
                    "starts there",
                )


# -- scanning weights/weight.bin ---------------------------------------------------------------


def scan_coreml_weights(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str = ""
) -> None:
    """Walk the blob chain: metadata, data, 64-byte aligned, ``count`` times."""
    f.seek(start)
    header = f.read(BLOB_HEADER)
    if len(header) < BLOB_HEADER:
        ctx.anomaly("coreml-weights-malformed", where, "shorter than the 64-byte storage header")
        return
    count, version = struct.unpack_from("<II", header)
    if version != 2:
        ctx.anomaly(
            "coreml-weights-malformed", where, f"storage version {version}; only 2 is defined"
        )
        return
    if count > (length - BLOB_HEADER) // BLOB_HEADER:
        ctx.anomaly(
            "coreml-weights-malformed",
            where,
            f"{count} blobs claimed; {length} bytes hold at most "
            f"{max(0, length - BLOB_HEADER) // BLOB_HEADER}",
        )
        return
    if count > MAX_BLOBS:
        ctx.anomaly("budget-coreml-blobs", where, f"{count} blobs; more than {MAX_BLOBS}")
        return
    valid: list[int] = []
    pos = BLOB_HEADER
    for i in range(count):
        if not i & 0xFFF and ctx.deadline.expired():
            ctx.anomaly("budget-time", where, f"more than {ctx.deadline.seconds:.0f}s to walk")
            return
        f.seek(start + pos)
        problem = _blob_problem(f.read(BLOB_HEADER), pos, length)
        if problem:
            ctx.anomaly(
                "coreml-weights-malformed", where.at(pos), f"blob {i} of {count}: {problem}"
            )
            return
        f.seek(start + pos)
        _, _, nbytes, data = struct.unpack_from("<IIQQ", f.read(24))
        valid.append(pos)
        pos = (data + nbytes + 63) // 64 * 64
    if where.member is None:
        return  # a model beside it reads it itself
    blobs = set(valid)
    for fact in ctx.facts:
        if fact.kind == "coreml.weight-refs" and fact.value == where.member:
            detail = dict(fact.detail)
            offsets = [int(x) for x in detail.get("offsets", "").split(",") if x]
            ops = detail.get("ops", "").split("\x1f")
            pairs = [(o, ops[i] if i < len(ops) else "") for i, o in enumerate(offsets)]
            _compare(blobs, length, pairs, where.member, fact.location, ctx)
            return
    ctx.emit(
        "coreml.weight-blobs",
        where.member,
        where,
        size=length,
        blobs=",".join(map(str, valid)),
    )


# -- scanning Manifest.json --------------------------------------------------------------------


def scan_coreml_manifest(
    f: BinaryIO, start: int, length: int, where: Location, ctx: Context, name: str = ""
) -> None:
    limit = ctx.limits.max_config_json_bytes
    if length > limit:
        ctx.anomaly(
            "budget-json-bytes", where, f"Manifest.json has {length} bytes, over {limit}; not read"
        )
        return
    f.seek(start)
    raw = f.read(length)
    try:
        doc = jsonbudget.loads(raw, ctx.limits)
    except jsonbudget.JsonBudgetExceeded as exc:
        ctx.anomaly(exc.what, where, f"Manifest.json: {exc.message}")
        return
    except (ValueError, RecursionError) as exc:
        ctx.anomaly("coreml-malformed", where, f"Manifest.json is not valid JSON: {exc}")
        return
    entries = doc.get("itemInfoEntries") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        ctx.anomaly("coreml-malformed", where, "Manifest.json has no itemInfoEntries object")
        return
    root = doc.get("rootModelIdentifier")
    if root is not None and root not in entries:
        ctx.anomaly(
            "coreml-malformed",
            where.at(key="rootModelIdentifier"),
            f"rootModelIdentifier `{str(root)[:100]}` names no item",
        )
    reported = 0
    for ident, item in entries.items():
        if not isinstance(item, dict) or not isinstance(item.get("path", ""), str):
            ctx.anomaly(
                "coreml-malformed",
                where.at(key=f"itemInfoEntries.{ident[:100]}"),
                "an item that is not an object with a string `path`",
            )
            continue
        path = item.get("path", "")
        problem = _escape_problem(path)
        if problem and reported < MAX_REPORTED:
            reported += 1
            ctx.emit(
                "coreml.path-escape",
                path[:MAX_STRING],
                where.at(key=f"itemInfoEntries.{ident[:100]}.path"),
                source="package manifest item",
                reason=problem,
            )
