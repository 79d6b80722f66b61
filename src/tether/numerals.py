"""Integers written in text (query parameters, headers, obligations, ports).

``str.isdigit()`` is not a test for "``int()`` will read this": it admits ``"²"``, which
``int()`` refuses, and digits of other scripts, which it reads; and ``int()`` refuses
numerals over 4,300 digits. Every integer that arrives as text is read here instead.
"""

from __future__ import annotations

# More digits than any bound tether checks (a 64-bit integer has 19 at most).
_MAX_DIGITS = 18


def decimal(raw: str | None, *, low: int = 0, high: int | None = None) -> int | None:
    """The integer ``raw`` spells in ASCII digits, if it lies in ``[low, high]``; else None."""
    if raw is None or not 0 < len(raw) <= _MAX_DIGITS or not raw.isascii() or not raw.isdigit():
        return None
    value = int(raw)
    if value < low or (high is not None and value > high):
        return None
    return value
