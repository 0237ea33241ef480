"""Neutralising strings that came from a scanned file before they reach a terminal.

A file chooses its member names, pickle global names, keys, templates and even its own file
name. Written raw, an escape sequence in one of them can set the terminal's title, clear the
screen, or move the cursor up and overwrite the report with "0 findings"; a newline can start
a report line of its own; a lone surrogate makes the UTF-8 encoder raise. The text report and
everything on stderr therefore pass every such string through :func:`neutralise`: C0 and C1
control characters (ESC, CR, LF, BEL, TAB...), DEL, Unicode line and paragraph separators,
bidirectional overrides and invisible format characters, and lone surrogates are shown as
escapes (``\\x1b``, ``\\n``, ``\\u202e``, ``\\udc80``). JSON and SARIF are not affected: they
stay exact, their encoders escape what they must.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def neutralise(text: str) -> str:
    """``text`` with every character that could act on a terminal shown as an escape."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)
