"""Format parsers. Each module owns one family of bytes and emits :class:`~modelscan_lite.model.Fact`s.

Parsers never deserialize: they read headers and opcode streams, under :mod:`modelscan_lite.limits`.
"""
