"""One escaping for every human-readable output of text a peer or a file supplied (user names, NAS identifiers,
session ids...): CLI tables, the server's log lines, the PAM module's syslog lines.

Printable characters stay as they are; a backslash becomes `\\\\`; every other character becomes a Python-style escape:
`\\xHH` up to 0xFF, `\\uHHHH` up to 0xFFFF, `\\UHHHHHHHH` above. So a forged newline, an ANSI escape sequence or a
bidirectional override can neither start a new line nor reach the terminal, and no two texts look alike once
escaped. Machine-readable outputs (`--json`) keep the exact text instead.
"""

from __future__ import annotations

__all__ = ["escape"]


def escape(text: str, *, space: bool = False) -> str:
    """`text` made safe for a terminal or a log line. With `space`, a space is escaped too (`\\x20`): for `key=value`
    log fields, where a space would start a field of its own."""
    if text.isprintable() and "\\" not in text and not (space and " " in text):
        return text
    return "".join(_escape_char(c, space) for c in text)


def _escape_char(c: str, space: bool) -> str:
    if c == "\\":
        return "\\\\"
    if c.isprintable() and not (space and c == " "):
        return c
    point = ord(c)
    if point <= 0xFF:
        return f"\\x{point:02x}"
    if point <= 0xFFFF:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"
