"""Write ``rules/tensorflow/ops/tf-ops.json``: the name of every op TensorFlow registers.

The SavedModel and TFLite parsers (``modelscan_lite/formats/tensorflow.py``) report an op
that is on none of these lists as a custom op (it needs a native library loaded before the
model). Run with a TensorFlow installed (``pip install tensorflow-cpu``); the file records
the version. Nothing here runs at scan time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "rules" / "tensorflow" / "ops" / "tf-ops.json"


def main() -> int:
    import tensorflow as tf
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session

    ops = op_def_pb2.OpList()
    ops.ParseFromString(pywrap_tf_session.TF_GetBuffer(pywrap_tf_session.TF_GetAllOpList()))
    names = sorted({op.name for op in ops.op})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps({"library": "tensorflow", "version": tf.__version__, "ops": names}, indent=0)
        + "\n"
    )
    print(f"{len(names)} ops of tensorflow {tf.__version__} -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
