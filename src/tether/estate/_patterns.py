"""Resource patterns (``type:id-glob``) and their translation to Cedar conditions.

A pattern names a resource type and a glob over resource ids in which ``*`` is the only
wildcard: ``invoice:*`` (every invoice), ``table:revenue_daily`` (one table),
``email:*@example.org`` (some emails), or ``*`` alone (anything). In Cedar they become
``resource is invoice``, ``resource == table::"revenue_daily"`` and
``resource is email && context.tether.resource_id like "*@example.org"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
# Cedar reserves these words; `Action` is the type of actions, never of a resource.
_RESERVED = frozenset(
    {"true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar", "Action"}
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_WILDCARDS = frozenset("?[]")


@dataclass(frozen=True)
class ResourcePattern:
    """A parsed pattern: ``type`` is ``None`` for ``*``; ``id_glob`` is ``*`` for a whole type."""

    text: str
    type: str | None
    id_glob: str

    @property
    def is_exact(self) -> bool:
        return self.type is not None and "*" not in self.id_glob

    def matches(self, resource_type: str, resource_id: str) -> bool:
        """Whether a resource falls under this pattern (the semantics Cedar is given)."""
        if self.type is None:
            return True
        return (
            resource_type == self.type
            and glob_regex(self.id_glob).fullmatch(resource_id) is not None
        )


def type_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an entity type, or ``None``."""
    if not _IDENTIFIER.match(name):
        return f"type `{name}` must be a Cedar identifier (letters, digits and `_`)"
    if name in _RESERVED:
        return f"type `{name}` is a reserved word in Cedar"
    return None


def text_problem(value: str, what: str) -> str | None:
    """Why ``value`` cannot be an id, action or pattern, or ``None``."""
    if not value:
        return f"{what} must not be empty"
    if _CONTROL.search(value):
        return f"{what} `{value!r}` contains control characters"
    try:
        value.encode()
    except UnicodeEncodeError:
        return f"{what} `{value!r}` is not valid unicode"
    return None


def parse_pattern(text: str) -> ResourcePattern | str:
    """Parse ``text``; a string return value is the problem with it."""
    problem = text_problem(text, "pattern")
    if problem:
        return problem
    if text == "*":
        return ResourcePattern(text, None, "*")
    resource_type, colon, id_glob = text.partition(":")
    if not colon:
        return f"pattern `{text}` must look like `type:id`, `type:*` or `*`"
    problem = type_name_problem(resource_type)
    if problem:
        return f"pattern `{text}`: {problem}"
    if not id_glob:
        return f"pattern `{text}` needs an id or `*` after the `:`"
    if _NOT_WILDCARDS & set(id_glob):
        return f"pattern `{text}`: only `*` is a wildcard; `?`, `[` and `]` are not allowed"
    return ResourcePattern(text, resource_type, id_glob)


def cedar_string(value: str) -> str:
    """``value`` as a Cedar string literal (quotes included)."""
    out = []
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def cedar_condition(pattern: ResourcePattern) -> str | None:
    """The Cedar expression true for resources under ``pattern``; ``None`` means any."""
    if pattern.type is None:
        return None
    if pattern.id_glob == "*":
        return f"resource is {pattern.type}"
    if pattern.is_exact:
        return f"resource == {pattern.type}::{cedar_string(pattern.id_glob)}"
    # In a `like` literal an unescaped `*` is the wildcard; every other character,
    # escaped as in any Cedar string, stands for itself.
    return (
        f"resource is {pattern.type} && "
        f"context.tether.resource_id like {cedar_string(pattern.id_glob)}"
    )


def glob_regex(glob: str) -> re.Pattern[str]:
    """A regex matching what ``glob`` matches (``*`` is any run of characters)."""
    return re.compile(".*".join(re.escape(part) for part in glob.split("*")), re.DOTALL)


def fnmatch_literal(value: str) -> str:
    """``value`` escaped so that :mod:`fnmatch` matches it literally."""
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in value)
