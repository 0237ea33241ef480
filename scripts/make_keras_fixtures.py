"""Benign Keras models made by the real library, for tests/data/formats/keras/ (MANIFEST.md).

Run with a Keras 3 environment on the torch backend (no TensorFlow needed):

    python3 -m venv --system-site-packages /tmp/venv-keras
    /tmp/venv-keras/bin/pip install keras h5py
    KERAS_BACKEND=torch /tmp/venv-keras/bin/python scripts/make_keras_fixtures.py

Small models only (each file well under 300 KB). The scanner's tests read these files and
never import Keras.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
from keras import layers

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "formats" / "keras"


def sequential() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((8,)), layers.Dense(16, activation="relu"), layers.Dense(2)], name="seq"
    )


def functional_nested() -> keras.Model:
    keras.utils.set_random_seed(1)
    inner = keras.Sequential(
        [keras.Input((6,)), layers.Dense(6, activation="tanh"), layers.Dropout(0.1)],
        name="inner",
    )
    inp = keras.Input((6,), name="x")
    a = inner(inp)
    b = inner(a)  # shared sub-model, called twice
    out = layers.Dense(3, activation="softmax")(layers.Concatenate()([a, b]))
    return keras.Model(inp, out, name="nested")


def text_model() -> keras.Model:
    keras.utils.set_random_seed(2)
    tokens = keras.Input((12,), dtype="int32", name="tokens")
    feats = keras.Input((4,), name="feats")
    x = layers.Embedding(50, 8)(tokens)
    x = layers.MultiHeadAttention(num_heads=2, key_dim=4)(x, x)
    x = layers.LayerNormalization()(x)
    x = layers.Bidirectional(layers.LSTM(6))(x)
    norm = layers.Normalization(mean=[0.0, 1.0, 2.0, 3.0], variance=[1.0, 1.0, 2.0, 2.0])
    y = layers.Dense(4)(norm(feats))
    out = layers.Dense(1, activation="sigmoid")(layers.Concatenate()([x, y]))
    model = keras.Model([tokens, feats], out, name="text")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=["accuracy", keras.metrics.AUC()],
    )
    return model


def conv_model() -> keras.Model:
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.TimeDistributed(layers.Dense(2)),
            layers.GlobalAveragePooling2D(),
            layers.Dense(3),
        ],
        name="conv",
    )
    model.compile(optimizer="sgd", loss="mse")
    return model


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    made = {
        "sequential.keras": sequential(),
        "functional-nested.keras": functional_nested(),
        "text-attention-lstm-compiled.keras": text_model(),
        "conv-compiled.keras": conv_model(),
    }
    for name, model in made.items():
        model.save(OUT / name)
    # legacy HDF5 (model_config + training_config attributes) and weights-only HDF5
    conv_model().save(OUT / "conv-legacy.h5")
    sequential().save(OUT / "sequential-legacy.h5")
    sequential().save_weights(OUT / "sequential.weights.h5")
    # the newest HDF5 layout (superblock 3, OHDR object headers) with a Keras model_config
    import h5py
    import numpy as np

    with h5py.File(OUT / "sequential-legacy.h5", "r") as src_file:
        attrs = {k: src_file.attrs[k] for k in src_file.attrs}
    with h5py.File(OUT / "latest-format-config.h5", "w", libver="latest") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
        f.create_dataset("x", data=np.zeros(4, dtype="float32"))
    # plain HDF5 data (no model_config): X202 (low), never a failure
    with h5py.File(OUT / "plain-data.h5", "w") as f:
        f.create_dataset("values", data=np.arange(16, dtype="int32"))
        f.attrs["note"] = "not a model"
    for path in sorted(OUT.iterdir()):
        print(f"{path.name}\t{path.stat().st_size}")
    print("keras", keras.__version__, "backend", keras.backend.backend(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
