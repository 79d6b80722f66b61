"""Typed readers over located YAML mappings that collect problems instead of raising.

Every estate section is read through :class:`Fields`: it reports unknown keys (a typo
must not silently weaken policy), missing required keys and values of the wrong type,
each at the line of the offending node, and keeps reading so that one run lists every
problem. Durations are ``30s``, ``15m``, ``4h``, ``30d``; moments are ISO 8601.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tether.errors import EstateProblem
from tether.estate._model import Where
from tether.estate._yaml import Node

_DURATION = re.compile(r"^([0-9]+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


class Problems:
    """The problems found so far; files are named relative to the estate folder."""

    def __init__(self) -> None:
        self.items: list[EstateProblem] = []

    def add(self, where: Node | Where | str, message: str, line: int | None = None) -> None:
        if isinstance(where, str):
            self.items.append(EstateProblem(where, line, message))
        else:
            self.items.append(EstateProblem(where.file, line or where.line, message))

    def __bool__(self) -> bool:
        return bool(self.items)


def where(node: Node) -> Where:
    return Where(node.file, node.line)


def expect_map(node: Node | None, problems: Problems, what: str) -> bool:
    """Whether ``node`` is a mapping; reports it when it is not (``None`` is not reported)."""
    if node is None or node.value is None:
        return False
    if not node.is_map:
        problems.add(node, f"{what} must be a mapping")
        return False
    return True


def expect_list(node: Node | None, problems: Problems, what: str) -> list[Node]:
    """The items of a sequence node; reports a node of another shape."""
    if node is None or node.value is None:
        return []
    if not node.is_seq:
        problems.add(node, f"{what} must be a list")
        return []
    return list(node.value)


class Fields:
    """The keys of one mapping, checked against the keys it may and must have."""

    def __init__(
        self,
        node: Node,
        problems: Problems,
        *,
        what: str,
        required: Iterable[str] = (),
        optional: Iterable[str] = (),
    ) -> None:
        self.node = node
        self.problems = problems
        self.what = what
        self.ok = True
        required = tuple(required)
        allowed = set(required) | set(optional)
        for key in node.value:
            if key not in allowed:
                expected = ", ".join(f"`{k}`" for k in sorted(allowed))
                problems.add(
                    node, f"unknown key `{key}` in {what} (expected {expected})", node.key_line(key)
                )
                self.ok = False
        for key in required:
            if key not in node.value:
                problems.add(node, f"{what} needs `{key}`")
                self.ok = False

    def has(self, key: str) -> bool:
        return key in self.node.value

    def get(self, key: str) -> Node | None:
        value: Node | None = self.node.value.get(key)
        return value

    def fail(self, key: str, message: str) -> None:
        value = self.get(key)
        self.problems.add(value if value is not None else self.node, message)
        self.ok = False

    def string(self, key: str, *, max_length: int | None = None) -> str | None:
        """A non-empty string (at most ``max_length`` characters: the store's column size)."""
        value = self.get(key)
        if value is None:
            return None
        if value.is_map or value.is_seq or not isinstance(value.value, str):
            self.fail(key, f"`{key}` of {self.what} must be a string{_quote_hint(value)}")
            return None
        if not value.value.strip():
            self.fail(key, f"`{key}` of {self.what} must not be empty")
            return None
        if max_length is not None and len(value.value) > max_length:
            self.fail(key, f"`{key}` of {self.what} is longer than {max_length} characters")
            return None
        return value.value

    def integer(self, key: str, *, minimum: int = 0) -> int | None:
        value = self.get(key)
        if value is None:
            return None
        raw = value.value
        if value.is_map or value.is_seq or isinstance(raw, bool) or not isinstance(raw, int):
            self.fail(key, f"`{key}` of {self.what} must be an integer")
            return None
        if raw < minimum or raw > _LONG_MAX:
            self.fail(key, f"`{key}` of {self.what} must be at least {minimum}, not `{raw}`")
            return None
        return raw

    def boolean(self, key: str) -> bool | None:
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value.value, bool):
            self.fail(key, f"`{key}` of {self.what} must be `true` or `false`")
            return None
        return value.value

    def duration(self, key: str) -> int | None:
        """A duration in seconds."""
        value = self.get(key)
        if value is None:
            return None
        seconds = parse_duration(value.value) if isinstance(value.value, str) else None
        if seconds is None:
            shown = value.plain()
            self.fail(
                key,
                f"`{key}` of {self.what} must be a duration like `30s`, `15m`, `4h` or `30d`, "
                f"not `{shown}`",
            )
        return seconds

    def moment(self, key: str, *, date_is_start: bool = False) -> datetime | None:
        """An ISO 8601 date or time, as an aware UTC datetime: a date means its end (an
        expiry holds through its day), or its start with ``date_is_start`` (a grant made
        on that day is that old at least)."""
        value = self.get(key)
        if value is None:
            return None
        moment = parse_moment(value.value, date_is_start=date_is_start)
        if moment is None:
            self.fail(
                key,
                f"`{key}` of {self.what} must be an ISO 8601 date or time "
                f"(`2026-12-31`, `2026-12-31T18:00:00Z`), not `{value.plain()}`",
            )
        return moment

    def strings(self, key: str, *, non_empty: bool = True) -> list[tuple[str, Node]]:
        """A list of strings, each with its node."""
        value = self.get(key)
        if value is None:
            return []
        if not value.is_seq:
            self.fail(key, f"`{key}` of {self.what} must be a list of strings")
            return []
        if non_empty and not value.value:
            self.fail(key, f"`{key}` of {self.what} must not be empty")
            return []
        items: list[tuple[str, Node]] = []
        for item in value.value:
            if item.is_map or item.is_seq or not isinstance(item.value, str):
                self.problems.add(item, f"items of `{key}` in {self.what} must be strings")
                self.ok = False
            else:
                items.append((item.value, item))
        return items

    def attributes(self, key: str) -> tuple[dict[str, Any], dict[str, Where]]:
        """Entity attributes: strings, integers, booleans, lists and mappings of those."""
        value = self.get(key)
        if value is None or value.value is None:
            return {}, {}
        if not value.is_map:
            self.fail(key, f"`{key}` of {self.what} must be a mapping")
            return {}, {}
        result: dict[str, Any] = {}
        lines: dict[str, Where] = {}
        for name, item in value.items():
            converted = self._attribute_value(item, f"attribute `{name}` of {self.what}")
            if converted is not None:
                result[name] = converted
                lines[name] = Where(item.file, value.key_line(name))
        return result, lines

    def _attribute_value(self, node: Node, what: str) -> Any:
        if node.is_map:
            parts = {k: self._attribute_value(v, f"{what}.{k}") for k, v in node.items()}
            return None if None in parts.values() else parts
        if node.is_seq:
            items = [self._attribute_value(v, what) for v in node.value]
            return None if None in items else items
        raw = node.value
        if isinstance(raw, bool | str):
            return raw
        if isinstance(raw, int):
            if _LONG_MIN <= raw <= _LONG_MAX:
                return raw
            self.problems.add(node, f"{what} is out of the 64-bit integer range")
        elif isinstance(raw, datetime | date):
            return raw.isoformat()
        else:
            self.problems.add(
                node,
                f"{what} must be a string, integer, boolean, list or mapping, not `{raw}`",
            )
        self.ok = False
        return None


def parse_duration(text: str) -> int | None:
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_moment(raw: object, *, date_is_start: bool = False) -> datetime | None:
    """A date means the end of that day (UTC), or its start with ``date_is_start``; a
    time without offset is UTC."""
    if isinstance(raw, str):
        text = raw.strip()
        try:
            raw = date.fromisoformat(text)
        except ValueError:
            try:
                raw = datetime.fromisoformat(text)
            except ValueError:
                return None
    if isinstance(raw, datetime):
        return raw.replace(tzinfo=UTC) if raw.tzinfo is None else raw.astimezone(UTC)
    if isinstance(raw, date):
        day = raw if date_is_start else raw + timedelta(days=1)
        return datetime.combine(day, time(0), tzinfo=UTC)
    return None


def _quote_hint(node: Node) -> str:
    if node.is_map or node.is_seq or node.value is None:
        return ""
    return f' (quote it: `"{node.value}"`)'
