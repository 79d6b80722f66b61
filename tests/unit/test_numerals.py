"""Integers read from text: only ASCII numerals, within bounds, never an exception."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tether.numerals import decimal


@given(st.text(max_size=30))
def test_any_text_is_read_as_its_ascii_integer_or_refused(text: str) -> None:
    value = decimal(text)
    if text.isascii() and text.isdigit() and len(text) <= 18:
        assert value == int(text)
    else:
        assert value is None


@given(st.integers(min_value=0, max_value=10**6), st.integers(0, 10**6), st.integers(0, 10**6))
def test_bounds_are_inclusive(value: int, low: int, high: int) -> None:
    expected = value if low <= value <= high else None
    assert decimal(str(value), low=low, high=high) == expected


def test_numerals_int_would_misread_or_refuse_are_refused() -> None:
    assert decimal("\u00b9") is None  # superscript one: isdigit() but int() raises
    assert decimal("\u0661") is None  # Arabic-Indic one: int() reads it as 1
    assert decimal("9" * 5000) is None  # int() refuses over 4,300 digits
    assert decimal("") is None
    assert decimal(None) is None
    assert decimal("+1") is None
    assert decimal(" 1") is None
