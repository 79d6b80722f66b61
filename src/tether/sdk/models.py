"""The values the SDK sends and answers: subjects, resources, decisions, tasks, tokens.

All are frozen dataclasses. The ``from_json`` readers take tether's answers (AuthZEN
``{"decision", "context"}``, the ``/v1/tasks`` task, the RFC 8693 token response, the
``/v1/approvals`` approval) and raise :class:`~tether.sdk.errors.UnexpectedResponse` for
one that does not have the members the protocol promises.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from tether.sdk.errors import UnexpectedResponse

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Outcome(StrEnum):
    """What tether decided (DESIGN "Outcomes")."""

    ALLOW = "allow"
    DENY = "deny"
    CONSTRAIN = "constrain"
    APPROVAL_REQUIRED = "approval_required"


class ApprovalStatus(StrEnum):
    """Where an approval stands; only ``pending`` may still change."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    USED = "used"


@dataclass(frozen=True, slots=True)
class Subject:
    """Who asks, named directly (a PEP that vouches for the subject itself)."""

    type: str
    id: str
    properties: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, hash=False)


@dataclass(frozen=True, slots=True)
class Resource:
    """What is acted on. ``Resource.parse("invoice:INV-1")`` reads the ``type:id`` form."""

    type: str
    id: str
    properties: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, hash=False)

    @classmethod
    def parse(cls, text: str) -> Resource:
        """A resource from ``type:id`` text.

        Raises:
            ValueError: the text has no ``type:`` prefix or nothing after it.
        """
        kind, sep, ident = text.partition(":")
        if not sep or not kind or not ident:
            raise ValueError(f"a resource is `type:id`, got `{text}`")
        return cls(kind, ident)

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One AuthZEN request: an item of :meth:`~tether.sdk.Client.evaluations`.

    ``subject`` is a :class:`Subject` or the agent's :class:`TokenGrant` (its task token).
    """

    subject: Subject | TokenGrant
    action: str
    resource: Resource
    context: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, hash=False)


def _fail(what: str, status: int = 200) -> UnexpectedResponse:
    return UnexpectedResponse(f"tether's answer is not {what}", status=status)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


@dataclass(frozen=True, slots=True)
class ApprovalTicket:
    """The pending approval an ``approval_required`` decision opened."""

    id: str
    status: ApprovalStatus
    expires_at: datetime | None
    poll: str

    @classmethod
    def from_json(cls, value: Any) -> ApprovalTicket:
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            raise _fail("an approval ticket with an `id`")
        try:
            status = ApprovalStatus(value.get("status", "pending"))
        except ValueError:
            raise _fail(f"an approval status: `{value.get('status')}`") from None
        poll = value.get("poll")
        return cls(
            value["id"],
            status,
            _time(value.get("expires_at")),
            poll if isinstance(poll, str) else f"/v1/approvals/{value['id']}",
        )


@dataclass(frozen=True, slots=True)
class Approval:
    """An approval as ``GET /v1/approvals/{id}`` shows it."""

    id: str
    status: ApprovalStatus
    expires_at: datetime | None
    decided_by: str | None = None
    comment: str | None = None
    reasons: tuple[str, ...] = ()

    @property
    def settled(self) -> bool:
        """True once the approval can no longer change (anything but pending)."""
        return self.status is not ApprovalStatus.PENDING

    @classmethod
    def from_json(cls, value: Any) -> Approval:
        ticket = ApprovalTicket.from_json(value)
        decided_by, comment = value.get("decided_by"), value.get("comment")
        return cls(
            ticket.id,
            ticket.status,
            ticket.expires_at,
            decided_by if isinstance(decided_by, str) else None,
            comment if isinstance(comment, str) else None,
            _strings(value.get("reasons")),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """One AuthZEN decision as tether answers it.

    ``allowed`` is the AuthZEN ``decision``: true for ``allow`` and ``constrain`` (whose
    ``obligations`` the PEP must fulfil or refuse), false for ``deny`` and
    ``approval_required`` (whose ``approval`` ticket a human decides).
    """

    allowed: bool
    outcome: Outcome
    reasons: tuple[str, ...] = ()
    obligations: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)
    approval: ApprovalTicket | None = None
    decision_id: str | None = None
    error_code: str | None = None
    errors: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, value: Any) -> Decision:
        if not isinstance(value, dict) or not isinstance(value.get("decision"), bool):
            raise _fail("an AuthZEN decision (`decision` must be a boolean)")
        context = value.get("context")
        context = {} if context is None else context
        if not isinstance(context, dict):
            raise _fail("an AuthZEN decision (`context` must be an object)")
        allowed: bool = value["decision"]
        raw_outcome = context.get("outcome", "allow" if allowed else "deny")
        try:
            outcome = Outcome(raw_outcome)
        except ValueError:
            raise _fail(f"a known outcome: `{raw_outcome}`") from None
        if allowed != (outcome in (Outcome.ALLOW, Outcome.CONSTRAIN)):
            raise _fail(f"consistent: `decision` {allowed} with outcome `{outcome}`")
        obligations = context.get("obligations") or {}
        if not isinstance(obligations, dict):
            raise _fail("an AuthZEN decision (`obligations` must be an object)")
        ticket = context.get("approval")
        error = context.get("error")  # an /evaluations item that could not be evaluated
        code = context.get("error_code")
        if code is None and isinstance(error, dict):
            code = error.get("error_code")
        errors = _strings(context.get("errors"))
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            errors += (error["message"],)
        decision_id = context.get("decision_id")
        return cls(
            allowed=allowed,
            outcome=outcome,
            reasons=_strings(context.get("reasons")),
            obligations=MappingProxyType({str(k): str(v) for k, v in obligations.items()}),
            approval=(
                ApprovalTicket.from_json(ticket)
                if outcome is Outcome.APPROVAL_REQUIRED
                and isinstance(ticket, dict)
                and "id" in ticket
                else None
            ),
            decision_id=decision_id if isinstance(decision_id, str) else None,
            error_code=code if isinstance(code, str) else None,
            errors=errors,
        )


@dataclass(frozen=True, slots=True)
class TaskIntent:
    """What a task declares it will do."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    data_classes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, list[str]]:
        return {
            "actions": list(self.actions),
            "resources": list(self.resources),
            "data_classes": list(self.data_classes),
        }


@dataclass(frozen=True, slots=True)
class Task:
    """A task as ``/v1/tasks`` answers it; ``revoked_tokens`` and ``already_ended`` only
    in the answer to ending it."""

    id: str
    identity: str
    status: str
    purpose: str
    intent: TaskIntent
    opened_at: datetime | None
    expires_at: datetime | None
    ended_at: datetime | None = None
    end_reason: str | None = None
    revoked_tokens: int | None = None
    already_ended: bool | None = None

    @classmethod
    def from_json(cls, value: Any) -> Task:
        if not isinstance(value, dict) or not isinstance(value.get("task_id"), str):
            raise _fail("a task with a `task_id`")
        intent = value.get("intent")
        if not isinstance(intent, dict):
            intent = {}
        revoked = value.get("revoked_tokens")
        already = value.get("already_ended")
        reason = value.get("end_reason")
        return cls(
            id=value["task_id"],
            identity=str(value.get("identity", "")),
            status=str(value.get("status", "")),
            purpose=str(value.get("purpose", "")),
            intent=TaskIntent(
                _strings(intent.get("actions")),
                _strings(intent.get("resources")),
                _strings(intent.get("data_classes")),
            ),
            opened_at=_time(value.get("opened_at")),
            expires_at=_time(value.get("expires_at")),
            ended_at=_time(value.get("ended_at")),
            end_reason=reason if isinstance(reason, str) else None,
            revoked_tokens=revoked if isinstance(revoked, int) else None,
            already_ended=already if isinstance(already, bool) else None,
        )


def unverified_claims(token: str) -> Mapping[str, Any]:
    """The payload of a compact JWS, *not verified*: for reading the task id and token id
    of a token tether itself just issued, never for trusting anything."""
    parts = token.split(".")
    if len(parts) != 3:
        return _EMPTY
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return _EMPTY
    return MappingProxyType(payload) if isinstance(payload, dict) else _EMPTY


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A task token from ``POST /oauth2/token`` (RFC 8693 §2.2.1).

    ``task_id`` (``txn``), ``identity`` (``sub``) and ``token_id`` (``jti``) are read from
    the token without verifying it (tether verifies it at every decision).
    """

    access_token: str = field(repr=False)
    expires_at: datetime
    scope: tuple[str, ...]
    task_id: str | None
    identity: str | None
    token_id: str | None
    token_type: str = "Bearer"  # noqa: S105 (the RFC 6750 token type, no secret)

    @classmethod
    def from_json(cls, value: Any, *, now: datetime | None = None) -> TokenGrant:
        if not isinstance(value, dict) or not isinstance(value.get("access_token"), str):
            raise _fail("a token response with an `access_token`")
        expires_in = value.get("expires_in", 0)
        if not isinstance(expires_in, int):
            raise _fail("a token response (`expires_in` must be an integer)")
        claims = unverified_claims(value["access_token"])
        scope = value.get("scope")

        def claim(name: str) -> str | None:
            found = claims.get(name)
            return found if isinstance(found, str) else None

        return cls(
            access_token=value["access_token"],
            expires_at=(now or datetime.now(UTC)) + timedelta(seconds=expires_in),
            scope=tuple(scope.split()) if isinstance(scope, str) else (),
            task_id=claim("txn"),
            identity=claim("sub"),
            token_id=claim("jti"),
            token_type=str(value.get("token_type", "Bearer")),
        )


@dataclass(frozen=True, slots=True)
class ReportReceipt:
    """What ``POST /v1/events`` did with a report: stored, duplicates, and per-event errors."""

    ingested: int
    duplicates: int
    errors: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, value: Any) -> ReportReceipt:
        if not isinstance(value, dict) or not isinstance(value.get("ingested"), int):
            raise _fail("an ingest summary with `ingested`")
        errors = value.get("errors")
        listed = errors if isinstance(errors, list) else []
        return cls(
            value["ingested"],
            int(value.get("duplicates", 0)),
            tuple(
                f"event {e.get('index')}: {e.get('message')}" for e in listed if isinstance(e, dict)
            ),
        )


@dataclass(frozen=True, slots=True)
class ResultReceipt:
    """``POST /v1/results`` took a call's result: queued for drift detection, for the
    decision ``decision_id`` of task ``task_id``."""

    decision_id: str
    task_id: str

    @classmethod
    def from_json(cls, value: Any) -> ResultReceipt:
        if not isinstance(value, dict) or not all(
            isinstance(value.get(k), str) for k in ("decision_id", "task_id")
        ):
            raise _fail("a receipt with `decision_id` and `task_id`")
        return cls(value["decision_id"], value["task_id"])
