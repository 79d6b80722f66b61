"""Bounds of an AuthZEN request, checked at the HTTP edge right after parsing, before any
evaluation.

A request's ``context`` and ``properties`` reach Cedar, the decision log and drift
detection, which walk them (some recursively, some with a fixed depth limit): their nesting
and their number of values are bounded here, and so is the number of items of a batch, so
that what a request costs is bounded by settings (``tether.config``) rather than by what
the caller sends. The walk is iterative and stops at the first value over a bound: it
never recurses and costs at most ``max_values`` steps per member checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.config import Settings
from tether.errors import Limit, LimitExceeded, PayloadTooLarge

# The members of an evaluation that carry caller-shaped JSON: `context`, and the
# `properties` of each entity.
ENTITIES = ("subject", "action", "resource")
# JSON's scalars as parsing makes them: none of them is a container.
_SCALARS = frozenset({str, int, float, bool, type(None)})


@dataclass(frozen=True)
class JsonBounds:
    """How deep and how large one JSON member may be."""

    max_depth: int
    max_values: int


def check_value(value: Any, *, where: str, kind: str, bounds: JsonBounds) -> None:
    """Refuse ``value`` (the member at ``where``) if it is nested or sized over ``bounds``.

    Depth counts containers: ``{}`` and ``[]`` are level 1, ``{"a": {}}`` level 2; a
    scalar is level 0. Every value (container or scalar) counts once toward the size.

    Raises:
        LimitExceeded: nested deeper than ``bounds.max_depth`` (code ``{kind}_too_deep``).
        PayloadTooLarge: more than ``bounds.max_values`` values (code ``{kind}_too_large``).
    """
    if type(value) is dict and bounds.max_depth >= 1 and len(value) < bounds.max_values:
        # The usual member, an object of scalars: within bounds, no walk.
        for child in value.values():
            if type(child) not in _SCALARS:
                break
        else:
            return
    if not isinstance(value, dict | list):
        return
    count = 1
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > bounds.max_depth:
            deep = Limit("max_json_depth", bounds.max_depth)
            message = f"`{where}` is nested deeper than the limit of {deep} levels"
            raise LimitExceeded(message, limit=deep, code=f"{kind}_too_deep")
        count += len(node)
        if count > bounds.max_values:
            large = Limit("max_json_values", bounds.max_values)
            message = f"`{where}` holds more JSON values than the limit of {large}"
            raise PayloadTooLarge(message, limit=large, code=f"{kind}_too_large")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


@dataclass(frozen=True)
class RequestBounds:
    """The bounds of AuthZEN evaluation, evaluations and search bodies."""

    json: JsonBounds
    max_evaluations: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestBounds:
        return cls(
            JsonBounds(settings.max_json_depth, settings.max_json_values),
            settings.max_evaluations,
        )

    def check_evaluation(self, body: Any, *, prefix: str = "") -> None:
        """An evaluation or search body (or one item of a batch, at ``prefix``).

        Members of the wrong type are left to the request parser, which names them.
        """
        if type(body) is not dict and not isinstance(body, Mapping):
            return
        check_value(body.get("context"), where=f"{prefix}context", kind="context", bounds=self.json)
        for entity in ENTITIES:
            member = body.get(entity)
            # Parsed JSON holds plain dicts: no abstract-class check for them (~0.3 µs each).
            if (type(member) is dict or isinstance(member, Mapping)) and "properties" in member:
                check_value(
                    member["properties"],
                    where=f"{prefix}{entity}.properties",
                    kind="properties",
                    bounds=self.json,
                )

    def check_evaluations(self, body: Any) -> None:
        """An evaluations body: the number of items first (one ``len``), then the
        defaults and every item.

        Raises:
            PayloadTooLarge: more than ``max_evaluations`` items (``too_many_evaluations``).
        """
        if not isinstance(body, Mapping):
            return
        items = body.get("evaluations")
        if isinstance(items, list) and len(items) > self.max_evaluations:
            limit = Limit("max_evaluations", self.max_evaluations)
            raise PayloadTooLarge(
                f"`evaluations` holds {len(items)} items, over the limit of {limit}",
                limit=limit,
                code="too_many_evaluations",
            )
        self.check_evaluation(body)
        if isinstance(items, list):
            for index, item in enumerate(items):
                self.check_evaluation(item, prefix=f"evaluations[{index}].")
