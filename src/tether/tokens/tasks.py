"""Tasks: a purpose and a declared intent, for a bounded time (DESIGN "JIT task credentials").

A workload opens a task before it acts: ``{purpose, intent: {actions, resources,
data_classes, calls}, ttl}``. The intent must lie within the identity's standing entitlement
(every declared action on every declared resource pattern is covered by one of its
grants), the TTL within its class's ``max_task_ttl``. Tokens for the task carry its id
(``txn``); decisions made with them see the purpose and intent in
``context.tether.task`` and whether the request is ``within_intent``.

Pattern containment reuses the estate's patterns (:func:`tether.estate.parse_pattern`):
``P`` lies within ``E`` when ``E`` matches ``P``'s own text, its ``*`` included. That is
exact for ``*``-only globs: a ``*`` of ``P`` can only be matched by a ``*`` of ``E``, whose
literal parts never contain one.

``calls`` (optional) are the calls the task means to make, where the workload knows them:
``[{tool, arguments}]``, each tool one of the intent's actions, each argument a string, a
number or a list of them (the values that matter: a recipient, an IBAN, a URL). Decisions
do not read them (``context.tether.task.intent`` has no ``calls``); drift detection does,
to tell a call towards a destination the task declared for another call
(:mod:`tether.drift.detectors.out_of_intent`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.errors import FieldError
from tether.estate import ResourcePattern, glob_regex, parse_duration, parse_pattern
from tether.policy import EntityRef
from tether.tokens.access_token import scope_problem
from tether.tokens.errors import IntentExceedsEntitlement, TaskRequestInvalid

MAX_PURPOSE = 1000
MAX_ITEMS = 100
MAX_NAME = 400
#: Most arguments of one intended call, and longest string value of one.
MAX_CALL_ARGUMENTS = 32
MAX_ARGUMENT = 2000
#: A task's longest life when its identity's class sets no ``max_task_ttl``.
DEFAULT_MAX_TASK_TTL_S = 3600
#: Every member of ``context.tether.task`` (``actor`` only for a delegated token).
TASK_CONTEXT_MEMBERS = frozenset(
    {"id", "purpose", "intent", "within_intent", "delegation_depth", "actor"}
)
OPEN = "open"
ENDED = "ended"
EXPIRED = "expired"


@dataclass(frozen=True)
class IntendedCall:
    """One call a task declares it will make: a tool and the argument values that matter."""

    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "arguments": dict(self.arguments)}


@dataclass(frozen=True)
class TaskIntent:
    """What a task declares it will do: actions on resources holding data classes, and
    where known the calls it will make."""

    actions: tuple[str, ...]
    resources: tuple[ResourcePattern, ...]
    data_classes: tuple[str, ...] = ()
    calls: tuple[IntendedCall, ...] = ()
    _matchers: tuple[tuple[str | None, re.Pattern[str] | None], ...] = field(
        init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        # (type, id regex) per pattern, compiled once: `None` matches anything.
        matchers = tuple(
            (p.type, None if p.id_glob == "*" else glob_regex(p.id_glob)) for p in self.resources
        )
        object.__setattr__(self, "_matchers", matchers)

    def to_json(self) -> dict[str, list[Any]]:
        shown: dict[str, list[Any]] = {
            "actions": list(self.actions),
            "resources": [p.text for p in self.resources],
            "data_classes": list(self.data_classes),
        }
        if self.calls:
            shown["calls"] = [c.to_json() for c in self.calls]
        return shown

    @classmethod
    def from_json(cls, value: Any, *, path: str = "intent") -> TaskIntent:
        """Read and validate an intent object.

        Raises:
            TaskRequestInvalid: naming every member that is wrong.
        """
        errors: list[FieldError] = []
        if not isinstance(value, dict):
            raise TaskRequestInvalid([FieldError(path, "must be an object")])
        unknown = sorted(set(value) - {"actions", "resources", "data_classes", "calls"})
        errors += [FieldError(f"{path}.{k}", "is not a member of an intent") for k in unknown]
        actions = _names(value, "actions", path, errors, required=True)
        for index, action in enumerate(actions):
            problem = scope_problem(action)
            if problem:
                errors.append(FieldError(f"{path}.actions[{index}]", problem))
        patterns: list[ResourcePattern] = []
        for index, text in enumerate(_names(value, "resources", path, errors, required=True)):
            pattern = parse_pattern(text)
            if isinstance(pattern, str):
                errors.append(FieldError(f"{path}.resources[{index}]", pattern))
            elif pattern not in patterns:
                patterns.append(pattern)
        data_classes = _names(value, "data_classes", path, errors, required=False)
        calls = _calls(value.get("calls"), f"{path}.calls", actions, errors)
        if errors:
            raise TaskRequestInvalid(errors)
        return cls(tuple(actions), tuple(patterns), tuple(data_classes), calls)

    def outside(self, action: str, resource: EntityRef, data_class: str | None) -> str | None:
        """Why a request is outside this intent, or ``None`` when it is within."""
        if action not in self.actions:
            return f"action `{action}` is not in the task's intent"
        if not any(
            (t is None or t == resource.type) and (r is None or r.fullmatch(resource.id))
            for t, r in self._matchers
        ):
            return f"resource `{resource}` is not in the task's intent"
        if data_class is not None and data_class not in self.data_classes:
            return f"data class `{data_class}` of `{resource}` is not in the task's intent"
        return None


def _calls(
    raw: Any, path: str, actions: list[str], errors: list[FieldError]
) -> tuple[IntendedCall, ...]:
    """The intended calls of an intent (see the module docstring), problems to ``errors``."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_ITEMS:
        errors.append(FieldError(path, f"must be an array of at most {MAX_ITEMS} calls"))
        return ()
    calls: list[IntendedCall] = []
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(item, dict) or set(item) - {"tool", "arguments"}:
            errors.append(FieldError(where, "must be an object `{tool, arguments}`"))
            continue
        tool, arguments = item.get("tool"), item.get("arguments", {})
        if not isinstance(tool, str) or tool not in actions:
            errors.append(FieldError(f"{where}.tool", "must be one of the intent's actions"))
            continue
        if not isinstance(arguments, dict) or len(arguments) > MAX_CALL_ARGUMENTS:
            errors.append(
                FieldError(
                    f"{where}.arguments",
                    f"must be an object of at most {MAX_CALL_ARGUMENTS} members",
                )
            )
            continue
        bad = [k for k, v in arguments.items() if not _argument_value(v)]
        errors += [
            FieldError(f"{where}.arguments.{k}", "must be a string, a number or a list of them")
            for k in bad
        ]
        if not bad:
            calls.append(IntendedCall(tool, dict(arguments)))
    return tuple(calls)


def _argument_value(value: Any, *, nested: bool = False) -> bool:
    if isinstance(value, list) and not nested:
        return len(value) <= MAX_ITEMS and all(_argument_value(v, nested=True) for v in value)
    if isinstance(value, str):
        return len(value) <= MAX_ARGUMENT
    return isinstance(value, int | float) and not isinstance(value, bool)


def _names(
    value: Mapping[str, Any], key: str, path: str, errors: list[FieldError], *, required: bool
) -> list[str]:
    raw = value.get(key)
    where = f"{path}.{key}"
    if raw is None:
        if required:
            errors.append(FieldError(where, "is required"))
        return []
    if not isinstance(raw, list) or (required and not raw):
        errors.append(FieldError(where, "must be a non-empty array of strings"))
        return []
    if len(raw) > MAX_ITEMS:
        errors.append(FieldError(where, f"may hold at most {MAX_ITEMS} items"))
        return []
    names: list[str] = []
    for index, item in enumerate(raw):
        if not isinstance(item, str) or not item or len(item) > MAX_NAME:
            errors.append(FieldError(f"{where}[{index}]", "must be a non-empty string"))
        elif item not in names:
            names.append(item)
    return names


@dataclass(frozen=True)
class TaskRequest:
    """A request to open a task, validated: ``ttl_s`` is ``None`` for the class maximum."""

    purpose: str
    intent: TaskIntent
    ttl_s: int | None = None

    @classmethod
    def from_json(cls, body: Any) -> TaskRequest:
        """Read ``{purpose, intent, ttl}``; ``ttl`` is seconds or a duration like ``15m``.

        Raises:
            TaskRequestInvalid: naming every member that is wrong.
        """
        if not isinstance(body, dict):
            raise TaskRequestInvalid([FieldError("", "the body must be a JSON object")])
        errors: list[FieldError] = []
        unknown = sorted(set(body) - {"purpose", "intent", "ttl"})
        errors += [FieldError(k, "is not a member of a task request") for k in unknown]
        purpose = body.get("purpose")
        if not isinstance(purpose, str) or not purpose.strip():
            errors.append(FieldError("purpose", "is required: say what the task is for"))
        elif len(purpose) > MAX_PURPOSE:
            errors.append(FieldError("purpose", f"must be at most {MAX_PURPOSE} characters"))
        ttl_s = None
        try:
            ttl_s = parse_ttl(body.get("ttl"))
        except ValueError as exc:
            errors.append(FieldError("ttl", str(exc)))
        intent: TaskIntent | None = None
        try:
            intent = TaskIntent.from_json(body.get("intent"))
        except TaskRequestInvalid as exc:
            errors += exc.field_errors
        if errors or intent is None or not isinstance(purpose, str):
            raise TaskRequestInvalid(errors)
        return cls(purpose.strip(), intent, ttl_s)


def parse_ttl(value: object) -> int | None:
    """Seconds from an integer or a duration (``30s``, ``15m``, ``4h``, ``1d``).

    Raises:
        ValueError: anything else, or not positive.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError("must be a positive number of seconds")
        return value
    if isinstance(value, str):
        seconds = parse_duration(value)
        if seconds is not None:
            return seconds
    raise ValueError("must be seconds or a duration such as `30s`, `15m`, `4h`")


@dataclass(frozen=True)
class Grant:
    """One standing entitlement of an identity: actions on resource patterns."""

    actions: frozenset[str]
    resources: tuple[ResourcePattern, ...]


def pattern_within(inner: ResourcePattern, outer: ResourcePattern) -> bool:
    """Whether every resource ``inner`` matches is matched by ``outer``."""
    if outer.type is None:
        return True
    return inner.type is not None and outer.matches(inner.type, inner.id_glob)


def intent_excess(
    identity_id: str, intent: TaskIntent, grants: Iterable[Grant]
) -> list[FieldError]:
    """What of ``intent`` no grant covers: one problem per action and resource pattern."""
    grants = list(grants)
    errors: list[FieldError] = []
    for index, pattern in enumerate(intent.resources):
        for action in intent.actions:
            if not any(
                action in g.actions and any(pattern_within(pattern, e) for e in g.resources)
                for g in grants
            ):
                errors.append(
                    FieldError(
                        f"intent.resources[{index}]",
                        f"`{action}` on `{pattern.text}` exceeds the standing entitlement "
                        f"of `{identity_id}`",
                    )
                )
    return errors


def check_within_entitlement(identity_id: str, intent: TaskIntent, grants: Iterable[Grant]) -> None:
    """Raise :class:`IntentExceedsEntitlement` naming what the grants do not cover."""
    errors = intent_excess(identity_id, intent, grants)
    if errors:
        raise IntentExceedsEntitlement(errors)


@dataclass(frozen=True)
class TaskRecord:
    """A task as the store keeps it."""

    id: str
    identity_id: str
    identity_kind: str
    workload_class: str | None
    purpose: str
    intent: TaskIntent
    status: str
    opened_at: datetime
    expires_at: datetime
    opened_by: str
    ended_at: datetime | None = None
    ended_by: str | None = None
    end_reason: str | None = None
    _cedar: dict[str, Any] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Built once per task: a decision only copies it and adds what is per request.
        # Policies see the intent without its intended calls (drift's, not Cedar's).
        intent = {k: v for k, v in self.intent.to_json().items() if k != "calls"}
        object.__setattr__(self, "_cedar", {"intent": intent})

    def state(self, now: datetime) -> str:
        """``open``, ``ended``, or ``expired`` (past its end without being ended)."""
        if self.status == ENDED:
            return ENDED
        return EXPIRED if now >= self.expires_at else OPEN

    def cedar(
        self,
        *,
        within_intent: bool,
        depth: int,
        actor: str | None,
        members: frozenset[str] = TASK_CONTEXT_MEMBERS,
    ) -> dict[str, Any]:
        """The ``context.tether.task`` record for one decision, with ``members`` only.

        Cedar parses every value of a context on every decision, so the authority passes
        the members some policy names: one no policy reads cannot change an answer.
        """
        record = {
            "id": self.id,
            "purpose": self.purpose,
            "intent": self._cedar["intent"],
            "within_intent": within_intent,
            "delegation_depth": depth,
        }
        if actor is not None:
            record["actor"] = actor
        if members is TASK_CONTEXT_MEMBERS:
            return record
        return {k: v for k, v in record.items() if k in members}

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        moment = now or datetime.now(UTC)
        return {
            "task_id": self.id,
            "identity": self.identity_id,
            "identity_kind": self.identity_kind,
            "class": self.workload_class,
            "purpose": self.purpose,
            "intent": self.intent.to_json(),
            "status": self.state(moment),
            "opened_at": self.opened_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "opened_by": self.opened_by,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "ended_by": self.ended_by,
            "end_reason": self.end_reason,
        }


def referenced_attributes(ests: Iterable[Any]) -> set[str]:
    """Every attribute name policies read (``.name`` or ``has name``), from their EST."""
    names: set[str] = set()
    stack = list(ests)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            attr = node.get("attr")
            if isinstance(attr, str):
                names.add(attr)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names
