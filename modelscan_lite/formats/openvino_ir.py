"""OpenVINO IR models (``model.xml`` + ``model.bin``): the XML graph read with expat under
budgets, with no DTD, no entities and nothing external; the ``.bin`` beside it only stat-ed.

Format (OpenVINO ``src/core/src/xml_util``/``ir_deserializer.cpp``, IR v10/v11)::

    <?xml version="1.0"?>
    <net name="..." version="10|11">
      <layers>
        <layer id="N" name="..." type="Convolution" version="opset1">
          <data element_type="f32" shape="3,4" offset="0" size="48"/>   (Const: weights)
          <input>/<output> <port id=".." precision=".."> <dim>..</dim> </port> ...
        </layer> ...
      </layers>
      <edges> <edge from-layer="0" from-port="0" to-layer="1" to-port="0"/> ... </edges>
      <rt_info> ... </rt_info>
    </net>

``version`` names the operation set a layer's ``type`` comes from: ``opset1`` ...
``opsetN`` (the ops OpenVINO ships, listed in ``rules/allowlist/openvino-opsets.json``,
generated from the installed library by ``scripts/gen_openvino_opsets.py``), ``ie`` /
``experimental`` internal sets, or anything else: an *extension*. A layer from an extension
(or a ``type`` its opset does not have) only loads when the host registers native code for
it (``core.add_extension("libcustom.so")``): that library is code shipped beside the model.
Such layers are reported (M120). Const layers whose ``offset + size`` runs past the ``.bin``
are reported (M420); a DOCTYPE or entity declaration (billion laughs, external entities) is
refused before any expansion (M320); broken XML or a graph that is not an IR (M222).
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.parsers import expat

from ..model import Location
from .base import Context
from .streams import Source

CHUNK = 1 << 16
MAX_ELEMENTS = 4_000_000
MAX_DEPTH = 64
MAX_ATTR = 1 << 20
_SNIFF = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]{0,200}\?>\s*)?(?:<!--.{0,2000}?-->\s*)*"
    rb"(?:<net[\s>]|<!DOCTYPE\s+net[\s>\[])",
    re.S,
)
INTERNAL_OPSETS = frozenset({"ie", "experimental"})
# the IR serialiser's names for a few ops (ov::pass::Serialize translate_type_name)
IR_ALIASES = {"Const": "Constant", "PReLU": "PRelu", "ReLU": "Relu", "SoftMax": "Softmax"}
ALLOWLIST = Path(__file__).resolve().parents[2] / "rules" / "allowlist" / "openvino-opsets.json"


class IRError(Exception):
    pass


class Refused(Exception):
    """A DTD, entity or external reference: never expanded."""


class Budget(Exception):
    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


def sniff_openvino(head: bytes) -> bool:
    return _SNIFF.match(head) is not None


@lru_cache(maxsize=1)
def opsets() -> dict[str, frozenset[str]]:
    """opset name -> the op types it has (the committed allowlist)."""
    data = json.loads(ALLOWLIST.read_text(encoding="utf-8"))
    return {name: frozenset(ops) for name, ops in data["opsets"].items()}


class _Walk:
    def __init__(self) -> None:
        self.depth = 0
        self.elements = 0
        self.path: list[str] = []
        self.root: str | None = None
        self.net_version = ""
        self.layers: list[dict[str, str]] = []
        self.consts: list[tuple[str, str, int, int]] = []  # (id, name, offset, size)
        self.ids: set[str] = set()
        self.edges: list[tuple[str, str]] = []
        self.current: dict[str, str] | None = None

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise Budget("budget-xml-elements", f"more than {MAX_ELEMENTS} XML elements")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Budget("budget-xml-depth", f"XML nested deeper than {MAX_DEPTH} levels")
        if any(len(v) > MAX_ATTR for v in attrs.values()):
            raise IRError(f"an attribute of <{tag[:40]}> is longer than {MAX_ATTR} characters")
        parent = self.path[-1] if self.path else None
        self.path.append(tag)
        if parent is None:
            self.root = tag
            if tag != "net":
                raise IRError(f"the root element is <{tag[:40]}>, not <net>")
            self.net_version = attrs.get("version", "")
            return
        if tag == "layer" and parent == "layers":
            layer = {
                "id": attrs.get("id", ""),
                "name": attrs.get("name", "")[:200],
                "type": attrs.get("type", ""),
                "version": attrs.get("version", ""),
            }
            if not layer["id"] or not layer["type"]:
                raise IRError(f"layer {layer['name']!r} has no id or type")
            if layer["id"] in self.ids:
                raise IRError(f"two layers have id {layer['id'][:20]!r}")
            self.ids.add(layer["id"])
            self.layers.append(layer)
            self.current = layer
        elif tag == "data" and parent == "layer" and self.current is not None:
            if self.current["type"] == "Const" and ("offset" in attrs or "size" in attrs):
                try:
                    off, size = int(attrs.get("offset", "")), int(attrs.get("size", ""))
                except ValueError:
                    raise IRError(
                        f"Const layer {self.current['name']!r} has a non-numeric offset or size"
                    ) from None
                if off < 0 or size < 0:
                    raise IRError(f"Const layer {self.current['name']!r} has a negative offset")
                self.consts.append((self.current["id"], self.current["name"], off, size))
        elif tag == "edge" and parent == "edges":
            self.edges.append((attrs.get("from-layer", ""), attrs.get("to-layer", "")))

    def end(self, tag: str) -> None:
        self.depth -= 1
        self.path.pop()
        if tag == "layer":
            self.current = None


def _refuse(*args: Any) -> None:
    raise Refused("a DOCTYPE, entity declaration or external reference")


def parse_ir(src: Source, ctx: Context) -> _Walk:
    walk = _Walk()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse  # type: ignore[assignment]
    parser.StartElementHandler = walk.start
    parser.EndElementHandler = walk.end
    total = 0
    limit = ctx.limits.max_member_read
    while True:
        chunk = src.read(CHUNK)
        total += len(chunk)
        if total > limit:
            raise Budget("budget-member-size", f"an IR XML larger than {limit} bytes")
        if ctx.deadline.expired():
            raise TimeoutError
        try:
            parser.Parse(chunk, not chunk)
        except expat.ExpatError as exc:
            raise IRError(f"not well-formed XML: {exc}") from None
        if not chunk:
            break
    if walk.root != "net":
        raise IRError("no <net> root")
    for a, b in walk.edges:
        if a not in walk.ids or b not in walk.ids:
            raise IRError(f"an edge joins layer {a[:20]!r} to {b[:20]!r}, not both defined")
    return walk


def _custom(layer: dict[str, str], known: dict[str, frozenset[str]]) -> str | None:
    """Why the layer needs code from outside OpenVINO, or None."""
    version, kind = layer["version"], layer["type"]
    if not version or version in INTERNAL_OPSETS:
        return None
    ops = known.get(version)
    if ops is None:
        return f"from operation set {version!r}, which OpenVINO does not ship (an extension)"
    if kind not in ops and IR_ALIASES.get(kind) not in ops:
        return f"type {kind!r} is not an operation of {version}"
    return None


def scan_openvino(
    src: Source, head: bytes, where: Location, ctx: Context, name: str, length: int | None
) -> None:
    try:
        walk = parse_ir(src, ctx)
    except Refused:
        ctx.anomaly(
            "xml-doctype",
            where,
            "the IR XML declares a DOCTYPE or entities; refused before expanding anything",
        )
        return
    except Budget as exc:
        ctx.anomaly(exc.what, where, str(exc))
        return
    except TimeoutError:
        ctx.anomaly("budget-time", where, f"more than {ctx.deadline.seconds:.0f}s to walk")
        return
    except IRError as exc:
        ctx.anomaly("openvino-malformed", where, f"not a valid OpenVINO IR: {exc}")
        return
    known = opsets()
    custom = 0
    for layer in walk.layers:
        why = _custom(layer, known)
        if why is not None:
            custom += 1
            ctx.emit(
                "openvino.custom-layer",
                layer["type"][:100],
                where.at(key=f"layer {layer['id'][:20]} {layer['name'][:100]}"),
                evidence=f'<layer id="{layer["id"][:20]}" name="{layer["name"][:100]}" '
                f'type="{layer["type"][:100]}" version="{layer["version"][:100]}">',
                version=layer["version"][:100],
                why=why,
            )
    _check_weights(walk, where, ctx, name)
    ctx.emit(
        "openvino.model",
        walk.net_version[:10] or "?",
        where,
        layers=len(walk.layers),
        consts=len(walk.consts),
        custom=custom,
    )


def _check_weights(walk: _Walk, where: Location, ctx: Context, name: str) -> None:
    """Const offsets against the size of the ``.bin`` next to a top-level ``.xml``."""
    if where.member is not None or not walk.consts or not where.path.lower().endswith(".xml"):
        return
    weights = where.path[:-4] + ".bin"
    ctx.consult(weights)
    try:
        size = os.path.getsize(weights)
    except OSError:
        return  # the weights file is not there: nothing to compare with
    for lid, lname, off, nbytes in walk.consts:
        if off + nbytes > size:
            ctx.anomaly(
                "openvino-weights-out-of-range",
                where.at(key=f"layer {lid[:20]} {lname[:100]}"),
                f"Const layer {lname[:100]!r} reads bytes {off}..{off + nbytes} of "
                f"{os.path.basename(weights)}, which has {size}",
            )
