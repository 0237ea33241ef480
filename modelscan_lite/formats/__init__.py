"""Format parsers: each module owns one family of bytes and emits
:class:`~modelscan_lite.model.Fact` objects.

Parsers never deserialize: they read headers and opcode streams, under :mod:`modelscan_lite.limits`.
"""
