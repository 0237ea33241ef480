"""Benign fixtures for the "other" model formats, made by the real libraries.

Run with the system python (xgboost, lightgbm, catboost installed there); the Flax, OpenVINO
and Core ML parts run only where their library imports (see tests/data/formats/others/
MANIFEST.md for the versions that made the committed files). Writes into
tests/data/formats/others/. Tests never import these libraries.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "formats" / "others"


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return x, y


def make_xgboost() -> None:
    import pandas as pd
    import xgboost as xgb

    x, y = _data()
    rng = np.random.default_rng(1)
    d = xgb.DMatrix(x, label=y)
    bst = xgb.train({"max_depth": 3, "objective": "binary:logistic"}, d, 5)
    bst.save_model(OUT / "xgb-gbtree.json")
    bst.save_model(OUT / "xgb-gbtree.ubj")
    xgb.train({"booster": "dart", "max_depth": 3}, d, 3).save_model(OUT / "xgb-dart.ubj")
    xgb.train({"booster": "gblinear"}, d, 3).save_model(OUT / "xgb-gblinear.json")
    multi = xgb.DMatrix(x, label=rng.integers(0, 3, len(x)))
    xgb.train({"objective": "multi:softprob", "num_class": 3}, multi, 3).save_model(
        OUT / "xgb-multi.ubj"
    )
    df = pd.DataFrame({"a": pd.Categorical(rng.choice(list("xyz"), len(x))), "b": x[:, 0]})
    cat = xgb.DMatrix(df, label=y, enable_categorical=True)
    xgb.train({"tree_method": "hist", "max_cat_to_onehot": 1}, cat, 3).save_model(
        OUT / "xgb-categorical.ubj"
    )
    xgb.XGBClassifier(n_estimators=3).fit(x, y).save_model(OUT / "xgb-sklearn.json")


def make_lightgbm() -> None:
    import lightgbm as lgb
    import pandas as pd

    x, y = _data()
    rng = np.random.default_rng(2)
    quiet = {"verbose": -1}
    lgb.train({"objective": "binary", "num_leaves": 7, **quiet}, lgb.Dataset(x, y), 5).save_model(
        OUT / "lgb-binary.txt"
    )
    lgb.train(
        {"objective": "multiclass", "num_class": 3, **quiet},
        lgb.Dataset(x, rng.integers(0, 3, len(x))),
        3,
    ).save_model(OUT / "lgb-multiclass.txt")
    c = rng.integers(0, 20, 2000)
    yc = np.isin(c, [1, 3, 5, 7, 11, 13]).astype(float) + rng.normal(size=2000) * 0.1
    df = pd.DataFrame({"a": c, "b": rng.normal(size=2000)})
    params = {"objective": "regression", "max_cat_to_onehot": 2, "min_data_per_group": 5}
    lgb.train(
        {**params, "cat_smooth": 1, **quiet}, lgb.Dataset(df, yc, categorical_feature=["a"]), 5
    ).save_model(OUT / "lgb-categorical.txt")
    lgb.train(
        {"objective": "regression", "linear_tree": True, **quiet}, lgb.Dataset(x, x[:, 0] * 2), 3
    ).save_model(OUT / "lgb-linear.txt")
    rf = {"boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.5}
    lgb.train({"objective": "regression", **rf, **quiet}, lgb.Dataset(x, x[:, 0]), 3).save_model(
        OUT / "lgb-rf.txt"
    )


def make_catboost() -> None:
    import catboost as cb
    import pandas as pd

    x, y = _data()
    rng = np.random.default_rng(3)
    small = {"iterations": 5, "depth": 3, "verbose": False, "allow_writing_files": False}
    cb.CatBoostClassifier(**small).fit(x, y).save_model(str(OUT / "cb-symmetric.cbm"))
    cb.CatBoostClassifier(**small, grow_policy="Lossguide", max_leaves=6).fit(x, y).save_model(
        str(OUT / "cb-lossguide.cbm")
    )
    cb.CatBoostClassifier(**small, grow_policy="Depthwise").fit(x, y).save_model(
        str(OUT / "cb-depthwise.cbm")
    )
    df = pd.DataFrame({"c": rng.choice(list("abcd"), len(x)), "x": x[:, 0]})
    cb.CatBoostClassifier(**small).fit(df, y, cat_features=["c"]).save_model(
        str(OUT / "cb-categorical.cbm")
    )
    cb.CatBoostClassifier(**small, loss_function="MultiClass").fit(
        x, rng.integers(0, 3, len(x))
    ).save_model(str(OUT / "cb-multiclass.cbm"))


def make_flax() -> None:
    """Run with a venv that has flax (``pip install flax``): the system python has none."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax
    from flax import serialization
    from flax.training import train_state

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x: jax.Array) -> jax.Array:
            x = nn.Dense(16)(x)
            x = nn.LayerNorm()(x)
            return nn.Dense(3)(nn.relu(x))

    params = MLP().init(jax.random.PRNGKey(0), jnp.ones((1, 8)))
    (OUT / "flax-params.msgpack").write_bytes(serialization.to_bytes(params))
    state = train_state.TrainState.create(
        apply_fn=MLP().apply, params=params["params"], tx=optax.adam(1e-3)
    )
    (OUT / "flax-train-state.msgpack").write_bytes(serialization.to_bytes(state))
    mixed = {
        "bf16": jnp.ones((4, 4), jnp.bfloat16),
        "i8": np.arange(6, dtype=np.int8).reshape(2, 3),
        "scalar": np.float32(1.5),
        "complex": 1 + 2j,
        "step": 7,
        "name": "mlp",
        "flags": [True, False],
        "empty": np.zeros((0, 3), np.float32),
    }
    (OUT / "flax-mixed.msgpack").write_bytes(serialization.msgpack_serialize(mixed))
    old = serialization.MAX_CHUNK_SIZE
    serialization.MAX_CHUNK_SIZE = 91 * 8  # force the chunked-array layout on a small array
    try:
        chunked = serialization.to_bytes({"a": np.ones((10, 10))})
    finally:
        serialization.MAX_CHUNK_SIZE = old
    (OUT / "flax-chunked.msgpack").write_bytes(chunked)


def make_openvino() -> None:
    """Run with a venv that has openvino (``pip install openvino``)."""
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 16], np.float32, name="x")
    w = ops.constant(np.arange(512, dtype=np.float32).reshape(16, 32) / 512, name="w")
    b = ops.constant(np.ones(32, dtype=np.float32), name="b")
    y = ops.relu(ops.add(ops.matmul(x, w, False, False), b))
    z = ops.softmax(y, 1)
    model = ov.Model([z], [x], "tiny_mlp")
    ov.save_model(model, OUT / "openvino-mlp.xml", compress_to_fp16=False)
    ov.save_model(model, OUT / "openvino-mlp-fp16.xml", compress_to_fp16=True)


MAKERS = {
    "xgboost": make_xgboost,
    "lightgbm": make_lightgbm,
    "catboost": make_catboost,
    "flax": make_flax,
    "openvino": make_openvino,
}


def main(argv: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in argv or ["xgboost", "lightgbm", "catboost"]:
        MAKERS[name]()
        print(f"made {name} fixtures")


if __name__ == "__main__":
    main(sys.argv[1:])
