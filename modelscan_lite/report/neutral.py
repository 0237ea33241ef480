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

A CI log is a terminal of its own kind. The GitHub runner reads, on stdout and stderr alike,
any line whose first non-blank characters are ``::`` as a workflow command (``::add-mask::``,
``::error::``, ``::stop-commands::``), and its older syntax ``##[command]`` anywhere in a
line. :func:`neutralise` shows ``##[`` as ``#\\x23[``; :func:`defuse_commands` also shows the
first colon of a ``::`` line as ``\\x3a`` (the text and JUnit reports pass through it after
folding lines); :func:`defuse_json` writes ``#`` of ``##[`` as ``\\u0023`` in JSON text, which
decodes to the same string. A file named ``::error::x.pkl`` or ``##[add-mask]x.pkl`` therefore
cannot issue a command from a ``modelscan-lite scan`` step, whatever the format.
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


# any whitespace may come first: the runner trims it (.NET TrimStart: every Unicode space)
_COMMAND_LINE = re.compile(r"^([^\S\n]*):(?=:)", re.MULTILINE)


# the runner's first syntax, matched anywhere in a line (actions/runner ActionCommand.TryParse)
_LEGACY_COMMAND = "##["


def defuse_commands(text: str) -> str:
    """``text`` with no line that a CI runner would read as a workflow command."""
    return _COMMAND_LINE.sub(r"\1\\x3a", text).replace(_LEGACY_COMMAND, "#\\x23[")


def defuse_json(text: str) -> str:
    """JSON text (``json.dumps`` output) that a CI runner reads no command from: ``##[``
    can only occur inside a string there, and ``\\u0023`` decodes to the same ``#``; no JSON
    line starts with ``::`` (``json.dumps`` escapes line breaks inside strings)."""
    return text.replace(_LEGACY_COMMAND, "#\\u0023[")


def neutralise(text: str) -> str:
    """``text`` with every character that could act on a terminal shown as an escape, and no
    legacy CI command (``##[``)."""
    if _LEGACY_COMMAND in text:
        text = text.replace(_LEGACY_COMMAND, "#\\x23[")
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)
