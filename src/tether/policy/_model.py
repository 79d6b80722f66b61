"""Decision values: what is asked, what is answered (pure data, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, Any] = MappingProxyType({})


class Outcome(StrEnum):
    """What a decision tells the enforcement point to do.

    ``allow`` and ``constrain`` permit the request (``constrain`` with obligations
    the PEP must fulfil or refuse); ``deny`` and ``approval_required`` refuse it.
    """

    ALLOW = "allow"
    CONSTRAIN = "constrain"
    APPROVAL_REQUIRED = "approval_required"
    DENY = "deny"

    @property
    def permits(self) -> bool:
        return self in _PERMITTING

    @property
    def precedence(self) -> int:
        """Higher wins when several determining policies disagree."""
        return _PRECEDENCE[self]


_PERMITTING = frozenset({Outcome.ALLOW, Outcome.CONSTRAIN})
_PRECEDENCE = {
    Outcome.ALLOW: 0,
    Outcome.CONSTRAIN: 1,
    Outcome.APPROVAL_REQUIRED: 2,
    Outcome.DENY: 3,
}


@dataclass(frozen=True, slots=True)
class EntityRef:
    """An entity as AuthZEN names it: a type and an id."""

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """One access question: may ``subject`` perform ``action`` on ``resource``?

    ``*_properties`` are the attributes the caller asserts in the request; they add
    to, but never override, the attributes the estate declares for a known entity.
    """

    subject: EntityRef
    action: str
    resource: EntityRef
    context: Mapping[str, Any] = field(default_factory=dict)
    subject_properties: Mapping[str, Any] = field(default_factory=dict)
    resource_properties: Mapping[str, Any] = field(default_factory=dict)
    action_properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer: an outcome, the policies that determined it, and what to enforce.

    ``error_code`` is set when tether refused before or beside the policies, with a
    stable code (e.g. ``token_revoked`` for a revoked task token).
    """

    outcome: Outcome
    reasons: tuple[str, ...]
    obligations: Mapping[str, str] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    error_code: str | None = None

    @property
    def permits(self) -> bool:
        # Not `self.outcome.permits`: a property through a property, on every answer.
        return self.outcome in _PERMITTING
