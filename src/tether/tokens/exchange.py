"""RFC 8693 token exchange (``POST /oauth2/token``): a proof or a task token in, a task token out.

``grant_type=urn:ietf:params:oauth:grant-type:token-exchange`` and one of three shapes:

* **issue**: ``subject_token`` is the workload's own proof (``subject_token_type``
  ``...:token-type:jwt`` or ``...:id_token``) and ``resource=urn:tether:task:<id>``
  (RFC 8707) names a task its identity opened; the token's scope is the task's intent
  actions, or fewer;
* **narrow**: ``subject_token`` is a task token (``...:token-type:access_token``): the same
  subject and ``act`` with a scope that is the same or smaller;
* **delegate**: as narrow, plus ``actor_token``, the sub-agent's workload proof: ``act``
  nests the sub-agent over the parent's chain, and the depth may not exceed the class's
  ``max_delegation_depth``.

``scope``, ``resource`` and ``audience`` only ever narrow: the scope must lie within the
intent (or the parent's scope), the resource must be the parent's task, the audience
tether's own; ``exp`` is at most the task's end, the class's token TTL and the parent's
``exp``. Refusals keep RFC 6749 §5.2's form with tether's ``error_code``; as RFC 8693
§2.2.2 says, an invalid subject or actor token is ``invalid_request``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.tokens.access_token import SCOPE_TOKEN, TaskTokenClaims
from tether.tokens.authority import (
    DEFAULT_MAX_DELEGATION_DEPTH,
    IssuedTaskToken,
    TaskAuthority,
)
from tether.tokens.errors import (
    ClientMismatch,
    DelegationTooDeep,
    ExchangeRequestInvalid,
    InvalidTarget,
    ScopeNotAllowed,
    TaskNotOwned,
    UnsupportedGrantType,
)
from tether.tokens.tasks import ENDED, EXPIRED, TaskRecord

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 (a URN)
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 (a URN)
PROOF_TYPES = frozenset({JWT_TYPE, ID_TOKEN_TYPE})
TASK_RESOURCE = "urn:tether:task:"
_KNOWN = frozenset(
    {
        "grant_type",
        "subject_token",
        "subject_token_type",
        "actor_token",
        "actor_token_type",
        "resource",
        "audience",
        "scope",
        "requested_token_type",
    }
)


@dataclass(frozen=True)
class ExchangeRequest:
    """A token exchange request, validated (RFC 8693 §2.1)."""

    subject_token: str
    subject_token_type: str
    actor_token: str | None = None
    actor_token_type: str | None = None
    task_id: str | None = None
    scope: tuple[str, ...] | None = None
    audience: str | None = None

    @property
    def delegates(self) -> bool:
        return self.actor_token is not None

    @classmethod
    def from_form(cls, form: Mapping[str, Sequence[str]]) -> ExchangeRequest:
        """Read the form parameters (each name with all the values it was given).

        Raises:
            UnsupportedGrantType, ExchangeRequestInvalid, InvalidTarget.
        """
        values: dict[str, str] = {}
        for name, given in form.items():
            if name not in _KNOWN:
                continue  # RFC 6749 §3.2: unrecognised parameters are ignored
            if len(given) != 1:
                error = (
                    InvalidTarget if name in ("resource", "audience") else ExchangeRequestInvalid
                )
                raise error(
                    f"parameter `{name}` is given {len(given)} times; tether takes one",
                    code="parameter_repeated",
                )
            values[name] = given[0]
        grant_type = _required(values, "grant_type")
        if grant_type != GRANT_TYPE:
            raise UnsupportedGrantType(
                f"grant type `{grant_type[:100]}` is not supported; use `{GRANT_TYPE}`"
            )
        subject_type = _required(values, "subject_token_type")
        if subject_type not in PROOF_TYPES | {ACCESS_TOKEN_TYPE}:
            raise ExchangeRequestInvalid(
                f"`subject_token_type` `{subject_type[:100]}` is not supported: a workload proof "
                f"(`{JWT_TYPE}`) or a task token (`{ACCESS_TOKEN_TYPE}`)",
                code="token_type_unsupported",
            )
        actor_token, actor_type = values.get("actor_token"), values.get("actor_token_type")
        if (actor_token is None) != (actor_type is None):
            raise ExchangeRequestInvalid(
                "`actor_token` and `actor_token_type` go together", code="parameter_missing"
            )
        if actor_type is not None and actor_type not in PROOF_TYPES:
            raise ExchangeRequestInvalid(
                f"`actor_token_type` must be a workload proof (`{JWT_TYPE}`)",
                code="token_type_unsupported",
            )
        requested = values.get("requested_token_type")
        if requested is not None and requested != ACCESS_TOKEN_TYPE:
            raise ExchangeRequestInvalid(
                f"tether issues task tokens only: `requested_token_type` must be "
                f"`{ACCESS_TOKEN_TYPE}`",
                code="requested_token_type_unsupported",
            )
        return cls(
            subject_token=_required(values, "subject_token"),
            subject_token_type=subject_type,
            actor_token=actor_token,
            actor_token_type=actor_type,
            task_id=_task_id(values.get("resource")),
            scope=_scope(values.get("scope")),
            audience=values.get("audience"),
        )


def _required(values: Mapping[str, str], name: str) -> str:
    value = values.get(name)
    if not value:
        raise ExchangeRequestInvalid(f"parameter `{name}` is required", code="parameter_missing")
    return value


def _task_id(resource: str | None) -> str | None:
    if resource is None:
        return None
    task_id = resource.removeprefix(TASK_RESOURCE)
    if task_id == resource or not task_id or len(task_id) > 40:
        raise InvalidTarget(
            f"`resource` must name a task as `{TASK_RESOURCE}<task id>`", code="resource_invalid"
        )
    return task_id


def _scope(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    parts = text.split(" ")
    if not text or any(not SCOPE_TOKEN.match(p) for p in parts):
        raise ExchangeRequestInvalid(
            "`scope` must be action names separated by single spaces", code="scope_invalid"
        )
    return tuple(dict.fromkeys(parts))


def exchange(
    authority: TaskAuthority, request: ExchangeRequest, *, client: str | None = None
) -> IssuedTaskToken:
    """Issue, narrow or delegate a task token.

    Args:
        client: the identity the HTTP edge authenticated as the caller, if any: it must
            be the workload the exchange is for.

    Raises:
        IdentityProofError, TokenRejected: a proof or task token that is not valid.
        InvalidTarget, TaskNotFound, TaskNotOwned: the task cannot be served.
        ScopeNotAllowed, DelegationTooDeep, ClientMismatch.
    """
    if request.audience is not None and request.audience != authority.audience:
        raise InvalidTarget(
            f"audience `{request.audience[:100]}` is not served; task tokens are for "
            f"`{authority.audience}`",
            code="audience_not_allowed",
        )
    if request.subject_token_type in PROOF_TYPES:
        return _issue(authority, request, client)
    return _derive(authority, request, client)


def _issue(
    authority: TaskAuthority, request: ExchangeRequest, client: str | None
) -> IssuedTaskToken:
    if request.delegates:
        raise ExchangeRequestInvalid(
            "`actor_token` delegates a task token: send the parent task token as `subject_token`",
            code="actor_token_unexpected",
        )
    workload = authority.authenticate(request.subject_token, attempt="token.issue")
    identity = workload.identity.id
    _check_client(client, identity)
    if request.task_id is None:
        raise InvalidTarget(
            f"`resource` must name the task: `{TASK_RESOURCE}<task id>`", code="resource_missing"
        )
    task = authority.task(request.task_id)
    if task.identity_id != identity:
        raise TaskNotOwned(f"task `{task.id}` was not opened by `{identity}`")
    _check_open(authority, task)
    scope = _narrowed(authority, identity, task, request.scope, task.intent.actions, "intent")
    return authority.issue(
        task,
        scope=scope,
        event="token.issue",
        actor=identity,
        details={"workload": workload.name, "proof": workload.proof.token_id},
    )


def _derive(
    authority: TaskAuthority, request: ExchangeRequest, client: str | None
) -> IssuedTaskToken:
    inspection = authority.inspect(request.subject_token)
    if inspection.error is not None:
        known = inspection.claims
        if known is not None:  # a genuine token replayed after its end: worth a record
            holder = known.actor or known.subject
            authority.record_refusal(holder, "token.refused", known.jti, inspection.error)
        raise inspection.error
    parent = inspection.verified
    assert parent is not None
    claims, task = parent.claims, parent.task
    if request.task_id is not None and request.task_id != task.id:
        raise InvalidTarget(
            f"`resource` names task `{request.task_id}`, but the token is for task `{task.id}`",
            code="resource_not_parent_task",
        )
    if request.actor_token is None:
        holder = claims.actor or claims.subject
        _check_client(client, holder)
        scope = _narrowed(authority, holder, task, request.scope, claims.scope, "parent")
        return authority.issue(
            task,
            scope=scope,
            actors=claims.actors,
            parent=parent,
            event="token.narrow",
            actor=holder,
            details={},
        )
    workload = authority.authenticate(request.actor_token, attempt="token.delegate")
    actor = workload.identity.id
    _check_client(client, actor)
    _check_depth(authority, actor, task, claims)
    scope = _narrowed(authority, actor, task, request.scope, claims.scope, "parent")
    return authority.issue(
        task,
        scope=scope,
        actors=(actor, *claims.actors),
        parent=parent,
        event="token.delegate",
        actor=actor,
        details={"workload": workload.name, "proof": workload.proof.token_id},
    )


def _check_client(client: str | None, identity: str) -> None:
    if client is not None and client != identity:
        raise ClientMismatch(f"the caller `{client}` is not `{identity}`, whose exchange this is")


def _check_open(authority: TaskAuthority, task: TaskRecord) -> None:
    state = task.state(authority.now())
    if state in (ENDED, EXPIRED):
        raise InvalidTarget(f"task `{task.id}` has {state}", code=f"task_{state}")


def _check_depth(
    authority: TaskAuthority, actor: str, task: TaskRecord, claims: TaskTokenClaims
) -> None:
    settings = authority.class_settings(task.workload_class)
    maximum = int(settings.get("max_delegation_depth", DEFAULT_MAX_DELEGATION_DEPTH))
    depth = claims.depth + 1
    if depth > maximum:
        error = DelegationTooDeep(
            f"delegating to `{actor}` would make a chain {depth} deep; the class "
            f"`{task.workload_class}` allows {maximum}"
        )
        authority.record_refusal(actor, "token.refused", claims.jti, error)
        raise error


def _narrowed(
    authority: TaskAuthority,
    actor: str,
    task: TaskRecord,
    asked: tuple[str, ...] | None,
    allowed: Sequence[str],
    what: str,
) -> tuple[str, ...]:
    if asked is None:
        return tuple(allowed)
    wider = [s for s in asked if s not in allowed]
    if wider:
        whose = "the task's intent" if what == "intent" else "the parent token's scope"
        error = ScopeNotAllowed(
            f"scope {', '.join(f'`{s}`' for s in wider)} is not in {whose}; scope only narrows",
            code=f"scope_exceeds_{what}",
        )
        authority.record_refusal(actor, "token.refused", task.id, error)
        raise error
    return asked


def token_response(issued: IssuedTaskToken, now: float) -> dict[str, Any]:
    """The RFC 8693 §2.2.1 response for an issued task token."""
    return {
        "access_token": issued.token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": max(0, int(issued.claims.expires_at - now)),
        "scope": " ".join(issued.claims.scope),
    }
