"""Benign Core ML fixtures, made by the real coremltools (no Apple runtime needed).

    python3 -m venv --system-site-packages /tmp/venv-coreml
    /tmp/venv-coreml/bin/pip install coremltools
    /tmp/venv-coreml/bin/python scripts/make_coreml_fixtures.py

Writes into tests/data/formats/coreml/ (see MANIFEST.md there). The tests read these files
statically and never import coremltools. Small traced torch models with fixed seeds; the
.mlpackage folders are also written zipped (``<name>.mlpackage.zip``, fixed timestamps) and
the ML program's ``model.mlmodel`` is copied out bare.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "formats" / "coreml"


def _torch_mlp() -> tuple[object, object]:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3), torch.nn.Softmax(dim=-1)
    ).eval()
    example = torch.rand(1, 4)
    return torch.jit.trace(net, example), example


def _torch_conv() -> tuple[object, object]:
    import torch

    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    ).eval()
    example = torch.rand(1, 3, 8, 8)
    return torch.jit.trace(net, example), example


def _zip_folder(folder: Path, target: Path) -> None:
    """Zip a .mlpackage folder with its name as the top folder, fixed timestamps."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(
                    str(Path(folder.name) / path.relative_to(folder)), (1980, 1, 1, 0, 0, 0)
                )
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, path.read_bytes())


def make_neuralnetwork() -> None:
    import coremltools as ct

    traced, example = _torch_mlp()
    mlmodel = ct.convert(
        traced,
        inputs=[ct.TensorType(name="x", shape=example.shape)],  # type: ignore[attr-defined]
        convert_to="neuralnetwork",
    )
    mlmodel.save(str(OUT / "mlp-neuralnetwork.mlmodel"))

    # a classifier: class labels make a neuralNetworkClassifier (field 403)
    mlmodel = ct.convert(
        traced,
        inputs=[ct.TensorType(name="x", shape=example.shape)],  # type: ignore[attr-defined]
        classifier_config=ct.ClassifierConfig(["cat", "dog", "bird"]),
        convert_to="neuralnetwork",
    )
    mlmodel.save(str(OUT / "mlp-classifier.mlmodel"))


def make_mlprogram() -> None:
    import coremltools as ct

    for name, make in (("mlp", _torch_mlp), ("conv", _torch_conv)):
        traced, example = make()
        mlmodel = ct.convert(
            traced,
            inputs=[ct.TensorType(name="x", shape=example.shape)],  # type: ignore[attr-defined]
            convert_to="mlprogram",
            minimum_deployment_target=ct.target.iOS16,
        )
        pkg = OUT / f"{name}-mlprogram.mlpackage"
        if pkg.exists():
            shutil.rmtree(pkg)
        mlmodel.save(str(pkg))
        _zip_folder(pkg, OUT / f"{name}-mlprogram.mlpackage.zip")
        if name == "mlp":
            shutil.copy(pkg / "Data/com.apple.CoreML/model.mlmodel", OUT / "mlp-mlprogram.mlmodel")


def make_pipeline() -> None:
    """A pipeline built from coremltools' own builders: a scaler then a GLM regressor."""
    import coremltools as ct
    from coremltools.models import datatypes
    from coremltools.models.pipeline import Pipeline
    from coremltools.proto import Model_pb2

    scaler = Model_pb2.Model()
    scaler.specificationVersion = 1
    feat = scaler.description.input.add()
    feat.name = "x"
    feat.type.multiArrayType.shape.append(3)
    feat.type.multiArrayType.dataType = Model_pb2.ArrayFeatureType.DOUBLE
    out = scaler.description.output.add()
    out.name = "scaled"
    out.type.multiArrayType.shape.append(3)
    out.type.multiArrayType.dataType = Model_pb2.ArrayFeatureType.DOUBLE
    scaler.scaler.shiftValue.extend([0.5, -1.0, 2.0])
    scaler.scaler.scaleValue.extend([2.0, 0.5, 1.0])

    glm = Model_pb2.Model()
    glm.specificationVersion = 1
    feat = glm.description.input.add()
    feat.CopyFrom(out)
    res = glm.description.output.add()
    res.name = "y"
    res.type.doubleType.SetInParent()
    weights = glm.glmRegressor.weights.add()
    weights.value.extend([0.25, -0.5, 1.5])
    glm.glmRegressor.offset.append(0.125)

    pipe = Pipeline([("x", datatypes.Array(3))], [("y", datatypes.Double())])
    pipe.add_model(scaler)
    pipe.add_model(glm)
    pipe.spec.description.metadata.shortDescription = "scaler -> glm regressor"
    ct.models.MLModel(pipe.spec).save(str(OUT / "scaler-glm-pipeline.mlmodel"))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    import coremltools

    print("coremltools", coremltools.__version__, file=sys.stderr)
    make_neuralnetwork()
    make_mlprogram()
    make_pipeline()


if __name__ == "__main__":
    main()
