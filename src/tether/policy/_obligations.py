"""Obligations: parse ``@obligations("k=v; k2=v2")`` and merge them, the stricter value winning.

Every value has a kind, and merge rules go by kind: integers keep the smallest
(``max_rows=100`` beats ``max_rows=500``); booleans keep ``true`` (``read_only=true``
beats ``false``); anything else is a comma-separated set and the sets are unioned
(``redact=ssn`` and ``redact=iban`` give ``redact=iban,ssn``). One obligation name
has one kind across a policy set (checked when the engine is built), so merging is
commutative, associative and idempotent: the order of policies never matters.
Values are normalised when parsed (``007`` → ``7``, ``TRUE`` → ``true``, sets sorted).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal

from tether.policy.errors import PolicyInvalid

Kind = Literal["integer", "boolean", "set"]
_INTEGER = re.compile(r"-?[0-9]+")


def obligation_kind(value: str) -> Kind:
    """How a value merges with other values of its name."""
    if _INTEGER.fullmatch(value):
        return "integer"
    if value.lower() in ("true", "false"):
        return "boolean"
    return "set"


def _normalise(value: str) -> str:
    kind = obligation_kind(value)
    if kind == "integer":
        return str(int(value))
    if kind == "boolean":
        return value.lower()
    return ",".join(sorted({item.strip() for item in value.split(",") if item.strip()}))


def parse_obligations(text: str, *, policy: str) -> dict[str, str]:
    """Parse an annotation value into a key/value mapping of normalised values."""
    result: dict[str, str] = {}
    for raw in text.split(";"):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), _normalise(value.strip())
        if not sep or not key or not value:
            raise PolicyInvalid(
                f"policy `{policy}`: obligation `{item}` must have the form `name=value`"
            )
        if key in result and obligation_kind(result[key]) != obligation_kind(value):
            raise PolicyInvalid(
                f"policy `{policy}`: obligation `{key}` is given values of different kinds"
            )
        result[key] = value if key not in result else _stricter(key, result[key], value)
    return result


def check_obligation_kinds(parts: Iterable[tuple[str, Mapping[str, str]]]) -> None:
    """Refuse a policy set in which one obligation name has values of different kinds.

    ``parts`` are ``(policy id, obligations)`` pairs.
    """
    seen: dict[str, tuple[Kind, str]] = {}
    for policy, obligations in parts:
        for key, value in obligations.items():
            kind = obligation_kind(value)
            first = seen.setdefault(key, (kind, policy))
            if first[0] != kind:
                raise PolicyInvalid(
                    f"obligation `{key}` is {_article(first[0])} in policy `{first[1]}` "
                    f"but {_article(kind)} in policy `{policy}`; give it one kind everywhere"
                )


def merge_obligations(parts: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """Merge obligations of several policies; the stricter value wins per key."""
    merged: dict[str, str] = {}
    for part in parts:
        for key, value in part.items():
            merged[key] = value if key not in merged else _stricter(key, merged[key], value)
    return merged


def _stricter(key: str, a: str, b: str) -> str:
    kind = obligation_kind(a)
    if kind != obligation_kind(b):
        raise PolicyInvalid(f"obligation `{key}` has values of different kinds: `{a}`, `{b}`")
    if kind == "integer":
        return str(min(int(a), int(b)))
    if kind == "boolean":
        return "true" if "true" in (a.lower(), b.lower()) else "false"
    items = {x.strip() for x in a.split(",")} | {x.strip() for x in b.split(",")}
    return ",".join(sorted(i for i in items if i))


def _article(kind: Kind) -> str:
    return "an integer" if kind == "integer" else f"a {kind}"
