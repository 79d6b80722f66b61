"""Rewordings of a destination: the forms an input may hold a value in, other than as written.

An agent retypes what it read: an IBAN in groups of four without its spaces, a URL with a
scheme and a path or query added (data leaving in the address), an address with a display
name around it, an account number behind a label. Provenance
(:mod:`tether.drift.provenance`) calls a destination made up only when no input of the run
holds it in any of these forms, so that a destination an attacker put in front of the
agent stays suspect however the agent retyped it.

The forms, each compared by its letters and digits alone (:func:`squeezed`; ``@`` and
``/`` kept): the whole value; a URL's host; each e-mail address in it; each word of it
holding a digit. In a result they are looked for anywhere (looser than a match as written
on purpose: there a match only ever keeps a destination suspect); in the user's words only
as whole words (:meth:`Rewordings.spelt_in`), since there a match excuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from tether.drift.catalog import normalise_target

_SEPARATORS = re.compile(r"[^0-9a-z@/]+")
_KEPT = re.compile(r"[0-9a-z@/]+")
_EMAIL = re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+")
_HOST = re.compile(r"^(?:[a-z0-9-]+\.)+[a-z]{2,}(?=$|[/:?#])")


@lru_cache(maxsize=32)
def squeezed(text: str) -> str:
    """``text`` with everything but letters, digits, ``@`` and ``/`` left out, lowercase."""
    return _SEPARATORS.sub("", text.lower())


@lru_cache(maxsize=32)
def _words(text: str) -> tuple[str, frozenset[int], frozenset[int]]:
    """``squeezed(text)`` and where its words (runs of what it keeps) start and end in it."""
    squeezed, starts, ends = [], set(), set()
    at = 0
    for word in _KEPT.findall(text.lower()):
        starts.add(at)
        at += len(word)
        ends.add(at)
        squeezed.append(word)
    return "".join(squeezed), frozenset(starts), frozenset(ends)


def _aligned_in(needle: str, text: str) -> bool:
    """Whether ``needle`` (squeezed) is some run of whole words of ``text``, squeezed."""
    held, starts, ends = _words(text)
    at = held.find(needle)
    while at >= 0:
        if at in starts and at + len(needle) in ends:
            return True
        at = held.find(needle, at + 1)
    return False


@dataclass(frozen=True, slots=True)
class Rewordings:
    """The forms of one destination (see the module docstring): ``squeezed``, the whole
    value's letters and digits; ``parts``, those of its host, addresses and digit words."""

    squeezed: str
    parts: frozenset[str]

    @classmethod
    def of(cls, value: str) -> Rewordings:
        target = normalise_target(value)
        parts = set(_EMAIL.findall(target))
        host = _HOST.match(target)
        if host is not None and host.group() != target:
            parts.add(host.group())
        words = target.split()
        if len(words) > 1:
            parts.update(normalise_target(w) for w in words if any(c.isdigit() for c in w))
        return cls(squeezed(value), frozenset(squeezed(p) for p in parts) - {""})

    def found_in(self, text: str) -> bool:
        """Whether ``text`` (lowercase) holds the value in one of these forms, each compared
        by its letters and digits (``parts`` are squeezed too), anywhere in it."""
        held = squeezed(text)
        return bool(self.squeezed and self.squeezed in held) or any(p in held for p in self.parts)

    def spelt_in(self, text: str) -> bool:
        """Like :meth:`found_in`, but only as whole words of ``text`` (``evil.com`` is not in
        "the devil comes"): for the user's words, where a match excuses rather than accuses."""
        needles = (self.squeezed, *self.parts) if self.squeezed else tuple(self.parts)
        return any(_aligned_in(n, text) for n in needles)

    def equals_any(self, fields: Iterable[str]) -> bool:
        """Whether one of ``fields`` is the whole value, reworded."""
        return bool(self.squeezed) and any(squeezed(f) == self.squeezed for f in fields)


__all__ = ["Rewordings", "squeezed"]
