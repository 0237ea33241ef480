"""Every format the scanner recognises, declared once: identity, sniff, parser, profiles, loader.

The flow a file takes (DESIGN.md): the sniffer (:mod:`.sniff`) walks :data:`SNIFF_ORDER`
over the first bytes and names a :class:`Format`; the dispatcher (:mod:`.dispatch`) calls
that format's parser; a zip or tar whose member layout matches a :class:`Profile` becomes
that profile's format, and the profile routes named members to their parsers. Parsers emit
facts; rules (``rules/``) turn facts into findings.

A format with ``parser=None`` is *recognised but not analysed*: it gets X903
(``format.unanalysed``), never a clean pass. Adding a format is one parser module, one entry
here, its rules, samples and tests (CONTRIBUTING.md).

Parser signatures (``parser="module:function"``, the module under ``modelscan_lite.formats``,
imported only when that format is met):

* ``access="random"``: ``fn(f: BinaryIO, start: int, length: int, where: Location,
  ctx: Context, name: str) -> None``, the format's bytes are ``f[start:start+length]``;
  a forward-only stream holding one is spooled first (under the member budget).
* ``access="stream"``: ``fn(src: Source, head: bytes, where: Location, ctx: Context,
  name: str, length: int | None) -> None``, ``src`` reads from the format's first byte
  (``head`` is its first bytes, already read once for the sniff).
"""

from __future__ import annotations

import enum
import fnmatch
import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal


class Family(enum.Enum):
    """What loading the format can do; decides how an unanalysed one is reported."""

    CODE = "code"  # loading can import or run code (pickle, Keras, TorchScript...)
    TENSORS = "tensors"  # weights and graphs a loader reads as data (safetensors, GGUF)
    DATA = "data"  # strings and numbers (tokenizers, vectors)
    CONTAINER = "container"  # holds other formats (zip, tar, compression layers)
    TEXT = "text"


Access = Literal["random", "stream"]
Stage = Literal["magic", "structural", "data"]


@dataclass(frozen=True, slots=True)
class Format:
    """One format. ``id`` is its identity everywhere (report ``format``, sandbox, rules)."""

    id: str
    title: str
    family: Family
    parser: str | None = None
    access: Access = "stream"
    nests: bool = False  # parsing recurses into members: the nesting budget applies
    loader: str | None = None  # the sandbox loader that really loads it (sandbox/loaders.py)
    # compression layers that loader opens itself (a compressed file of this format is
    # loaded as it is; under any other layer there is no real loader)
    loader_layers: tuple[str, ...] = ()
    # the sniff: fixed bytes at offsets (all must match), or "module:function" taking the head
    magic: tuple[tuple[int, bytes], ...] = ()
    sniff: str | None = None
    stage: Stage = "magic"
    # the names its writers give it: informational (docs, extension-lie checks), never decides
    extensions: tuple[str, ...] = ()

    def parse_function(self) -> Callable[..., None] | None:
        return _resolve(self.parser) if self.parser else None


@dataclass(frozen=True, slots=True)
class Profile:
    """A zip or tar layout that is a model format: the members that identify it, and which
    parser reads which member (``routes``: glob on the member path below the profile's root,
    format id). A member no route names is sniffed by content like any other."""

    id: str  # the Format it makes (its entry in FORMATS)
    container: Literal["zip", "tar"]
    # the layout test: names -> the root prefix the layout sits under, or None
    match: Callable[[Sequence[str]], str | None]
    routes: tuple[tuple[str, str], ...] = ()
    # members that are raw tensor bytes: not parsed, only checked for strong magic numbers
    raw_members: re.Pattern[str] | None = None
    # pickles the format's loader reads; any other pickle member is A205 (None: no check)
    pickles: frozenset[str] | None = None
    debug_pickles: tuple[str, str] | None = None  # (prefix, suffix) of allowed debug pickles
    # False until the format's own checks exist: the layout is then X903, never clean
    analysed: bool = False

    def route(self, local: str) -> str | None:
        for pattern, fmt in self.routes:
            if fnmatch.fnmatchcase(local, pattern):
                return fmt
        return None


def _resolve(ref: str) -> Callable[..., Any]:
    module, _, func = ref.partition(":")
    mod = importlib.import_module(f"modelscan_lite.formats.{module}")
    fn: Callable[..., Any] = getattr(mod, func)
    return fn


# -- layout tests for the profiles ---------------------------------------------------------


def _torch_root(names: Sequence[str]) -> tuple[str, bool] | None:
    """(root, is TorchScript) for a PyTorch zip: ``<root>/data.pkl`` (+ ``code/`` or
    ``constants.pkl`` for TorchScript), or a TorchScript archive without data.pkl."""
    for n in names:
        if n == "data.pkl" or n.endswith("/data.pkl"):
            root = n[: -len("data.pkl")]
            script = any(m.startswith(root + "code/") or m == root + "constants.pkl" for m in names)
            return root, script
        if n.endswith("constants.pkl"):
            return n[: -len("constants.pkl")], True
    return None


def match_torchscript(names: Sequence[str]) -> str | None:
    found = _torch_root(names)
    return found[0] if found and found[1] else None


def match_pytorch_zip(names: Sequence[str]) -> str | None:
    found = _torch_root(names)
    return found[0] if found and not found[1] else None


def _rooted(marker: str, *also: str) -> Callable[[Sequence[str]], str | None]:
    """The root of ``<root><marker>`` when every ``<root><also>`` prefix has a member too
    (torch.package and .pt2 archives sit under one root folder, like PyTorch zips)."""

    def match(names: Sequence[str]) -> str | None:
        for n in names:
            if n == marker or n.endswith("/" + marker):
                root = n[: -len(marker)]
                if all(any(m.startswith(root + a) for m in names) for a in also):
                    return root
        return None

    return match


match_torch_package = _rooted(".data/extern_modules", ".data/version")
match_pt2 = _rooted("archive_format", "models/")


def match_npz(names: Sequence[str]) -> str | None:
    return "" if names and all(n.endswith(".npy") for n in names) else None


def _all_at_root(*required: str) -> Callable[[Sequence[str]], str | None]:
    def match(names: Sequence[str]) -> str | None:
        present = set(names)
        return "" if all(r in present for r in required) else None

    return match


def match_savedmodel(names: Sequence[str]) -> str | None:
    """A TensorFlow SavedModel folder: ``<root>/saved_model.pb`` (its variables/ shards are
    raw tensor bytes)."""
    for n in names:
        if n == "saved_model.pb" or n.endswith("/saved_model.pb"):
            return n[: -len("saved_model.pb")]
    return None


TF_VARIABLES = re.compile(r"(?:^|/)variables/variables\.data-\d+-of-\d+$")
TORCH_RAW = re.compile(r"(?:^|/)(?:\.data/|data/)[^/]+$")
TORCH_PICKLES = frozenset({"data.pkl", "constants.pkl"})
# TorchScript also stores the tensors of constants.pkl and traced_inputs.pkl (torch.jit.trace,
# read back by torch.jit.load: torch/csrc/jit/serialization/import.cpp) as raw members
TORCHSCRIPT_RAW = re.compile(r"(?:^|/)(?:\.data/|data/|constants/|traced_inputs/)[^/]+$")
TORCHSCRIPT_PICKLES = TORCH_PICKLES | {"traced_inputs.pkl"}


def match_coreml_package(names: Sequence[str]) -> str | None:
    """A Core ML package: ``<root>Manifest.json`` beside ``<root>Data/com.apple.CoreML/``."""
    for n in names:
        if n == "Manifest.json" or n.endswith("/Manifest.json"):
            root = n[: -len("Manifest.json")]
            if any(m.startswith(root + "Data/com.apple.CoreML/") for m in names):
                return root
    return None


# -- the formats -----------------------------------------------------------------------------

_F = Family
FORMATS: dict[str, Format] = {
    f.id: f
    for f in (
        # containers and compression layers
        Format("zip", "zip archive", _F.CONTAINER, "archives:scan_zip", "random", True),
        Format("7z", "7z archive", _F.CONTAINER, "archives:scan_7z_at", "random", True),
        Format("tar", "tar archive", _F.CONTAINER, "archives:scan_tar_stream", nests=True),
        Format("gzip", "gzip stream", _F.CONTAINER, "dispatch:scan_gzip", nests=True),
        Format("bz2", "bzip2 stream", _F.CONTAINER, "dispatch:scan_bz2", nests=True),
        Format("xz", "xz stream", _F.CONTAINER, "dispatch:scan_xz", nests=True),
        Format("lzma", "lzma (alone) stream", _F.CONTAINER, "dispatch:scan_lzma", nests=True),
        Format("zlib", "zlib stream", _F.CONTAINER, "dispatch:scan_zlib", nests=True),
        Format("lz4", "lz4 frame", _F.CONTAINER, "dispatch:scan_lz4", nests=True),
        Format(
            "joblib-zf", "joblib ZF (zlib) layer", _F.CONTAINER, "joblib_zf:scan_zf", nests=True
        ),
        # the pickle family
        Format(
            "pickle",
            "pickle stream",
            _F.CODE,
            "pickles:scan_pickle_file",
            loader="pickle",
            loader_layers=("gzip", "bz2", "xz", "lzma", "zlib", "lz4"),  # joblib's compressions
        ),
        Format("pytorch-zip", "PyTorch zip checkpoint", _F.CODE, loader="torch"),
        Format("pytorch-legacy", "PyTorch legacy checkpoint", _F.CODE, loader="torch"),
        Format("pytorch-legacy-tar", "PyTorch 0.1 tar checkpoint", _F.CODE, loader="torch"),
        Format("torchscript", "TorchScript archive", _F.CODE, loader="torchscript"),
        Format("joblib", "joblib pickle", _F.CODE, loader="pickle"),
        Format("npy", "NumPy array", _F.TENSORS, "numpy_format:scan_npy", loader="numpy"),
        Format("npz", "NumPy .npz archive", _F.CONTAINER),
        # tensor and graph formats
        Format(
            "safetensors",
            "safetensors",
            _F.TENSORS,
            "safetensors:scan_safetensors",
            "random",
            loader="safetensors",
        ),
        Format("gguf", "GGUF", _F.TENSORS, "gguf:scan_gguf", "random", loader="gguf"),
        Format("onnx", "ONNX model", _F.TENSORS, "onnx:scan_onnx", "random", loader="onnx"),
        # data formats (no code on load)
        Format("sentencepiece", "SentencePiece model", _F.DATA, "sentencepiece:scan_sentencepiece"),
        Format(
            "spm-charsmap", "SentencePiece normaliser table", _F.DATA, "spm_charsmap:scan_charsmap"
        ),
        Format("fasttext", "fastText model", _F.DATA, "fasttext:scan_fasttext"),
        Format("word2vec", "word2vec binary vectors", _F.DATA, "word2vec:scan_word2vec_binary"),
        Format("word2vec-text", "word2vec text vectors", _F.DATA, "word2vec:scan_word2vec_text"),
        Format("ggml", "legacy GGML", _F.DATA),
        Format("ubjson", "UBJSON document", _F.DATA),
        Format("text", "text", _F.TEXT),
        # recognised, not analysed: X903 (its handler is Python TorchServe imports)
        Format("torchserve-mar", "TorchServe model archive (.mar)", _F.CODE, extensions=(".mar",)),
        Format(
            "hdf5",
            "HDF5 file (Keras/TF .h5)",
            _F.CODE,
            "hdf5:scan_hdf5",  # root attributes (model_config...), no HDF5 library
            "random",
            loader="keras",
            magic=((0, b"\x89HDF\r\n\x1a\n"),),
            sniff="hdf5:sniff_userblock",  # the signature after a 512/1024/2048-byte user block
            stage="structural",
            extensions=(".h5", ".hdf5", ".keras"),
        ),
        # --- keras ---
        Format(
            "keras-v3", "Keras v3 archive (.keras)", _F.CODE, loader="keras", extensions=(".keras",)
        ),
        Format(
            "keras-config",
            "Keras model config (config.json)",
            _F.CODE,
            "keras:scan_keras_config",
            # content, not name: a Keras config scanned alone or in a zip of another layout
            sniff="keras:sniff_keras_config",
            stage="structural",
            extensions=(".json",),
        ),
        Format(
            "keras-metadata",
            "Keras archive metadata (metadata.json)",
            _F.DATA,
            "keras:scan_keras_metadata",
            extensions=(".json",),
        ),
        Format(
            "keras-weights",
            "Keras archive weights (model.weights.h5)",
            _F.TENSORS,
            "hdf5:scan_keras_weights",
            "random",
            extensions=(".h5",),
        ),
        # --- torch programs ---
        Format(
            "torchscript-code",
            "TorchScript serialized code (code/*.py)",
            _F.CODE,
            "torchscript:scan_torchscript_code",
            extensions=(".py",),
        ),
        Format(
            "torch-package",
            "torch.package archive",
            _F.CODE,
            loader="torch-package",
            extensions=(".pt",),
        ),
        Format(
            "torch-package-source",
            "torch.package module source",
            _F.CODE,
            "torch_package:scan_package_source",
            extensions=(".py",),
        ),
        Format(
            "torch-package-externs",
            "torch.package .data/extern_modules",
            _F.TEXT,
            "torch_package:scan_extern_modules",
        ),
        Format("pt2", "torch.export archive (.pt2)", _F.CODE, loader="pt2", extensions=(".pt2",)),
        Format(
            "pt2-graph",
            "torch.export serialized program (models/*.json)",
            _F.CODE,
            "pt2:scan_graph",
            extensions=(".json",),
        ),
        Format(
            "pt2-payload",
            "torch.export weight or constant payload",
            _F.TENSORS,
            "pt2:scan_payload",
            "random",
            nests=True,
        ),
        Format(
            "pt2-native",
            "AOTInductor member of a .pt2 archive",
            _F.CODE,
            "pt2:scan_native",
            "random",
            nests=True,
        ),
        Format(
            "executorch",
            "ExecuTorch program (.pte)",
            _F.CODE,
            "executorch:scan_pte",
            "random",
            loader="executorch",
            sniff="executorch:sniff_pte",
            stage="structural",
            extensions=(".pte",),
        ),
        # --- tensorflow ---
        Format(
            "tflite",
            "TFLite flatbuffer",
            _F.CODE,
            "tensorflow:scan_tflite",
            "random",
            loader="tflite",
            magic=((4, b"TFL3"),),
            extensions=(".tflite",),
        ),
        Format(
            "tf-savedmodel",
            "TensorFlow SavedModel (saved_model.pb)",
            _F.CODE,
            "tensorflow:scan_saved_model",
            "random",
            loader="tf-savedmodel",
            sniff="tensorflow:sniff_saved_model",
            stage="structural",
            extensions=(".pb",),
        ),
        Format(
            "tf-savedmodel-text",
            "TensorFlow SavedModel in text format (saved_model.pbtxt)",
            _F.CODE,
            "tensorflow:scan_saved_model_text",
            sniff="tensorflow:sniff_saved_model_text",
            stage="structural",
            extensions=(".pbtxt",),
        ),
        Format(
            "tf-keras-metadata",
            "SavedModel Keras metadata (keras_metadata.pb)",
            _F.CODE,
            "tensorflow:scan_keras_metadata",
            "random",
            sniff="tensorflow:sniff_keras_metadata",
            stage="structural",
            extensions=(".pb",),
        ),
        Format(
            "tf-fingerprint",
            "SavedModel fingerprint (fingerprint.pb)",
            _F.DATA,
            "tensorflow:scan_fingerprint",
            "random",
            sniff="tensorflow:sniff_fingerprint",
            stage="structural",
            extensions=(".pb",),
        ),
        # --- nemo / hydra / skops / dill ---
        Format(
            "nemo",
            "NeMo archive (.nemo)",
            _F.CODE,
            loader="nemo",
            loader_layers=("gzip",),  # restore_from opens its tar gzipped or not
            extensions=(".nemo",),
        ),
        # routed, never sniffed: YAML is text; the repo analysis checks a folder's *.yaml
        Format(
            "nemo-config",
            "NeMo model_config.yaml",
            _F.CODE,
            "hydra:scan_nemo_config",
            extensions=(".yaml",),
        ),
        Format(
            "hydra-config",
            "Hydra / OmegaConf YAML config",
            _F.CODE,
            "hydra:scan_hydra_config",
            extensions=(".yaml", ".yml"),
        ),
        Format("skops", "skops archive (.skops)", _F.CODE, loader="skops", extensions=(".skops",)),
        Format(
            "skops-schema",
            "skops schema.json",
            _F.CODE,
            "skops:scan_skops_schema",
            extensions=(".json",),
        ),
        # --- other model formats ---
        Format(
            "xgboost-json",
            "XGBoost JSON model",
            _F.DATA,
            "xgboost_model:scan_xgboost_json",
            loader="xgboost",
            sniff="xgboost_model:sniff_xgboost_json",
            stage="structural",
            extensions=(".json",),
        ),
        Format(
            "xgboost-ubj",
            "XGBoost UBJSON model",
            _F.DATA,
            "xgboost_model:scan_xgboost_ubjson",
            loader="xgboost",
            sniff="xgboost_model:sniff_xgboost_ubjson",
            stage="structural",
            extensions=(".ubj", ".model", ".bin"),
        ),
        Format(
            "xgboost-binary",
            "XGBoost legacy binary model",
            _F.DATA,
            "xgboost_model:scan_xgboost_binary",
            loader="xgboost-binary",
            sniff="xgboost_model:sniff_xgboost_binary",
            stage="data",
            extensions=(".model", ".bin", ".deprecated"),
        ),
        Format(
            "lightgbm",
            "LightGBM text model",
            _F.DATA,
            "lightgbm_text:scan_lightgbm",
            loader="lightgbm",
            sniff="lightgbm_text:sniff_lightgbm",
            stage="structural",
            extensions=(".txt", ".model"),
        ),
        Format(
            "catboost",
            "CatBoost model (.cbm)",
            _F.DATA,
            "catboost_model:scan_catboost",
            "random",
            loader="catboost",
            magic=((0, b"CBM1"),),
            extensions=(".cbm", ".bin"),
        ),
        Format(
            "flax-msgpack",
            "Flax msgpack checkpoint",
            _F.TENSORS,
            "flax_msgpack:scan_flax",
            loader="flax",
            sniff="flax_msgpack:sniff_flax",
            stage="data",
            extensions=(".msgpack",),
        ),
        Format(
            "openvino-ir",
            "OpenVINO IR (.xml)",
            _F.TENSORS,
            "openvino_ir:scan_openvino",
            loader="openvino",
            sniff="openvino_ir:sniff_openvino",
            stage="structural",
            extensions=(".xml",),
        ),
        # Core ML: a .mlpackage is a folder (or a zip of one) of
        # Manifest.json, Data/com.apple.CoreML/model.mlmodel and weights/weight.bin
        Format(
            "coreml-package",
            "Core ML package (.mlpackage, its Manifest.json)",
            _F.CODE,
            "coreml:scan_coreml_manifest",
            "random",
            sniff="coreml:sniff_coreml_manifest",
            stage="structural",
            extensions=(".json", ".mlpackage"),
        ),
        Format(
            "coreml-model",
            "Core ML model (.mlmodel protobuf)",
            _F.CODE,
            "coreml:scan_coreml_model",
            "random",
            sniff="coreml:sniff_coreml_model",  # also asked before ONNX (sniff.py)
            stage="structural",
            extensions=(".mlmodel",),
        ),
        Format(
            "coreml-weights",
            "Core ML ML-program weights (MIL blob storage, weight.bin)",
            _F.TENSORS,
            "coreml:scan_coreml_weights",
            "random",
            sniff="coreml:sniff_coreml_weights",
            stage="structural",
            extensions=(".bin",),
        ),
        # a native executable (a llamafile: APE + an appended zip holding the GGUF) runs code
        Format(
            "executable",
            "native executable (llamafile, ELF, PE, Mach-O)",
            _F.CODE,
            "llamafile:scan_executable",
            "random",
            nests=True,
            sniff="llamafile:sniff_executable",
            stage="structural",
            extensions=(".llamafile", ".exe", ""),
        ),
    )
}

# zip and tar layouts that are model formats; tried in this order (first match wins)
PROFILES: tuple[Profile, ...] = (
    # --- torch programs ---
    # before TorchScript: a package or .pt2 can hold TorchScript members (.data/ts_code/)
    Profile(
        "torch-package",
        "zip",
        match_torch_package,
        routes=(
            ("*.py", "torch-package-source"),
            (".data/extern_modules", "torch-package-externs"),
        ),
        raw_members=re.compile(r"^\.data/[^/]+\.storage$"),
        analysed=True,
    ),
    Profile(
        "pt2",
        "zip",
        match_pt2,
        routes=(
            ("models/*.json", "pt2-graph"),
            ("data/weights/weight_*", "pt2-payload"),
            ("data/constants/tensor_*", "pt2-payload"),
            ("data/aotinductor/*", "pt2-native"),
        ),
        analysed=True,
    ),
    Profile(
        "torchscript",
        "zip",
        match_torchscript,
        raw_members=TORCHSCRIPT_RAW,
        pickles=TORCHSCRIPT_PICKLES,
        debug_pickles=("code/", ".debug_pkl"),
        routes=(("code/*.py", "torchscript-code"),),
        analysed=True,
    ),
    Profile(
        "pytorch-zip",
        "zip",
        match_pytorch_zip,
        raw_members=TORCH_RAW,
        pickles=TORCH_PICKLES,
        analysed=True,
    ),
    # --- tensorflow ---
    Profile("tf-savedmodel", "zip", match_savedmodel, raw_members=TF_VARIABLES, analysed=True),
    Profile("tf-savedmodel", "tar", match_savedmodel, raw_members=TF_VARIABLES, analysed=True),
    # --- keras ---
    Profile(
        "keras-v3",
        "zip",
        # Keras reads only config.json (and the weights): metadata.json may be missing
        lambda names: (
            ""
            if "config.json" in names
            and (
                any(n in names for n in ("metadata.json", "model.weights.h5", "model.weights.npz"))
                or all(n == "config.json" or n.startswith("assets/") for n in names)
            )
            else None
        ),
        routes=(
            ("config.json", "keras-config"),
            ("metadata.json", "keras-metadata"),
            ("model.weights.h5", "keras-weights"),
        ),
        analysed=True,
    ),
    # --- nemo / skops ---
    # NeMo's SaveRestoreConnector writes a tar (often uncompressed, sometimes gzip) of
    # ./model_config.yaml, ./model_weights.ckpt (a PyTorch zip) and tokenizer files; tar
    # routes apply by member name as members stream by
    Profile(
        "nemo",
        "tar",
        lambda names: next(
            (
                n[: -len("model_config.yaml")]
                for n in names
                if n == "model_config.yaml" or n.endswith("/model_config.yaml")
            ),
            None,
        ),
        routes=(("model_config.yaml", "nemo-config"), ("*/model_config.yaml", "nemo-config")),
        analysed=True,
    ),
    # skops.io.dump: schema.json at the root, arrays as <id>.npy (sparse as .npz)
    Profile(
        "skops",
        "zip",
        _all_at_root("schema.json"),
        routes=(("schema.json", "skops-schema"),),
        analysed=True,
    ),
    # --- other model formats ---
    Profile("torchserve-mar", "zip", _all_at_root("MAR-INF/MANIFEST.json")),
    # Core ML: a zipped .mlpackage folder
    Profile(
        "coreml-package",
        "zip",
        match_coreml_package,
        routes=(
            ("Manifest.json", "coreml-package"),
            ("Data/com.apple.CoreML/model.mlmodel", "coreml-model"),
            ("Data/com.apple.CoreML/weights/*.bin", "coreml-weights"),
        ),
        analysed=True,
    ),
    Profile("npz", "zip", match_npz, analysed=True),
)


def profile_for(container: str, names: Sequence[str]) -> tuple[Profile, str] | None:
    """The first profile of ``container`` whose layout ``names`` match, with its root."""
    for profile in PROFILES:
        if profile.container == container:
            root = profile.match(names)
            if root is not None:
                return profile, root
    return None


def get(fmt: str) -> Format | None:
    return FORMATS.get(fmt)


# the sniff steps the registry declares, in FORMATS order (see sniff.py for where each
# stage sits among the built-in sniffs)
MAGICS: tuple[tuple[str, tuple[tuple[int, bytes], ...]], ...] = tuple(
    (f.id, f.magic) for f in FORMATS.values() if f.magic
)
_SNIFFERS: dict[str, list[tuple[str, Callable[[bytes], bool]]]] = {}


def magic_format(head: bytes) -> str | None:
    """The first format whose fixed bytes ``head`` carries."""
    for fmt, marks in MAGICS:
        if all(head[at : at + len(mark)] == mark for at, mark in marks):
            return fmt
    return None


def sniffers(stage: Stage) -> list[tuple[str, Callable[[bytes], bool]]]:
    """The sniff functions of one stage (modules imported on first use)."""
    found = _SNIFFERS.get(stage)
    if found is None:
        found = _SNIFFERS[stage] = [
            (f.id, _resolve(f.sniff)) for f in FORMATS.values() if f.sniff and f.stage == stage
        ]
    return found
