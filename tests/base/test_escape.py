"""The one escaping of peer-supplied text for terminals and logs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from otpbase.escape import escape


def test_printable_text_is_unchanged() -> None:
    assert escape("alice@example.org") == "alice@example.org"
    assert escape("Jürgen Müller") == "Jürgen Müller"


def test_controls_and_backslash_are_escaped() -> None:
    assert escape("a\nb") == "a\\x0ab"
    assert escape("\x1b[2J") == "\\x1b[2J"
    assert escape("a\\x0ab") == "a\\\\x0ab"  # a literal backslash cannot pose as an escape
    assert escape("\u202eevil") == "\\u202eevil"  # bidirectional override
    assert escape("\udcff") == "\\udcff"  # an undecodable byte kept by surrogateescape
    assert escape("\U000e0001") == "\\U000e0001"


def test_spaces_only_when_asked() -> None:
    assert escape("a b") == "a b"
    assert escape("a b", space=True) == "a\\x20b"


@given(st.text())
def test_escaped_text_is_one_printable_line(text: str) -> None:
    out = escape(text, space=True)
    assert out.isprintable() and " " not in out


@given(st.text(), st.text())
def test_unambiguous(a: str, b: str) -> None:
    if a != b:
        assert escape(a) != escape(b)
