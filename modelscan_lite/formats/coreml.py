"""Core ML: recognised, not yet analysed (X903).

A Core ML package (``Model.mlpackage/``) is a folder whose ``Manifest.json`` lists its items
(``fileFormatVersion``, ``itemInfoEntries``, ``rootModelIdentifier``); the model itself is
``Data/com.apple.CoreML/model.mlmodel``, a protobuf ``Model`` that can name custom layers
(``neuralNetwork.layers[*].custom.className``) and custom models (``customModel.className``):
Swift/Objective-C classes the host app must provide. Those are not read yet, so the manifest
is reported as a format this version does not analyse rather than passed as JSON text.

A bare ``.mlmodel`` is a protobuf with no magic number; it is not claimed by content here
(its first fields look like ONNX's), so it stays an unrecognised model file (X201).
"""

from __future__ import annotations

import re

_MANIFEST = re.compile(rb'\A\s*\{[^{}]{0,2000}"(?:fileFormatVersion|itemInfoEntries)"\s*:', re.S)


def sniff_coreml_manifest(head: bytes) -> bool:
    """A JSON object with Core ML's manifest keys (both of them within the head)."""
    return (
        _MANIFEST.match(head) is not None
        and b'"itemInfoEntries"' in head
        and b'"fileFormatVersion"' in head
        and b"com.apple.CoreML" in head
    )
