"""Make the benign TensorFlow fixtures in ``tests/data/formats/tensorflow/`` with the real
library (``pip install tensorflow-cpu tf_keras``; TF 2.21 made the committed files). Each SavedModel
keeps ``saved_model.pb`` (and ``keras_metadata.pb`` / ``fingerprint.pb`` where TF writes
them); ``variables/`` shards are raw tensor bytes the scanner never parses, and are kept
only when small. Run: ``python scripts/make_tensorflow_fixtures.py [outdir]``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "formats" / "tensorflow"
KEEP = ("saved_model.pb", "keras_metadata.pb", "fingerprint.pb")


def _keep(src: Path, dst: Path) -> None:
    """Copy a SavedModel folder: its protobufs, its assets, and variables under 64 KB."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for p in sorted(src.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(src)
        small_var = rel.parts[0] == "variables" and p.stat().st_size < 64 * 1024
        if p.name in KEEP or rel.parts[0] == "assets" or small_var:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, dst / rel)


def main(out: Path) -> int:
    import numpy as np
    import tensorflow as tf

    tf.random.set_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())

    # 1. tf.Module with a tf.function and a variable
    class Scale(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable([[1.0, 2.0], [3.0, 4.0]])

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            return tf.nn.relu(tf.matmul(x, self.w))

    m = Scale()
    tf.saved_model.save(m, str(tmp / "module"))
    _keep(tmp / "module", out / "savedmodel-module")

    # 2. a Keras model exported with model.export (Keras 3 -> SavedModel)
    import keras

    inp = keras.Input((4,))
    x = keras.layers.Dense(8, activation="relu")(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(x))
    model.export(str(tmp / "keras-export"), verbose=False)
    _keep(tmp / "keras-export", out / "savedmodel-keras-export")

    # 3. benign string ops, tf.data in memory and tf.print to stderr
    class Text(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, s: tf.Tensor) -> tf.Tensor:
            words = tf.strings.split(tf.strings.lower(s))
            joined = tf.strings.reduce_join(words, axis=-1, separator="_")
            ds = tf.data.Dataset.from_tensor_slices(tf.strings.length(joined)).map(lambda n: n * 2)
            total = ds.reduce(tf.constant(0), lambda a, b: a + b)
            tf.print("total", total)
            return tf.strings.join([joined, tf.strings.as_string(total)], separator=":")

    tf.saved_model.save(Text(), str(tmp / "strings"))
    _keep(tmp / "strings", out / "savedmodel-strings-data")

    # 4. a lookup table initialised from a vocabulary asset
    vocab = tmp / "vocab.txt"
    vocab.write_text("the\ncat\nsat\n")

    class Lookup(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            init = tf.lookup.TextFileInitializer(
                str(vocab),
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            )
            self.table = tf.lookup.StaticHashTable(init, -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, s: tf.Tensor) -> tf.Tensor:
            return self.table.lookup(s)

    tf.saved_model.save(Lookup(), str(tmp / "lookup"))
    _keep(tmp / "lookup", out / "savedmodel-lookup-asset")

    # 5. TFLite: builtin ops, float
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    (out / "dense.tflite").write_bytes(conv.convert())

    # 6. TFLite: dynamic-range + full integer quantization
    def rep() -> object:
        for _ in range(8):
            yield [np.random.RandomState(0).rand(1, 4).astype("float32")]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    (out / "dense-int8.tflite").write_bytes(conv.convert())

    # 7. TFLite with a Flex (select TF) op: an op TFLite has no builtin for
    class Upper(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([3, 3], tf.float32)])
        def __call__(self, s: tf.Tensor) -> tf.Tensor:
            return tf.linalg.inv(s)

    up = Upper()
    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [up.__call__.get_concrete_function()], up
    )
    conv.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    (out / "flex-matrix-inverse.tflite").write_bytes(conv.convert())

    # 8. a Keras 2 (tf_keras) SavedModel: keras_metadata.pb holds the layer configs
    import tf_keras

    k2 = tf_keras.Sequential(
        [tf_keras.layers.Dense(4, activation="relu", input_shape=(3,)), tf_keras.layers.Dense(1)]
    )
    k2.save(str(tmp / "keras2"), save_format="tf")
    _keep(tmp / "keras2", out / "savedmodel-tf-keras")

    shutil.rmtree(tmp)
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"{p.stat().st_size:8d}  {p.relative_to(out)}")
    print("tensorflow", tf.__version__, "keras", keras.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
