"""The client's operations, each one generator of requests (see ``tether.sdk._protocol``).

Each is a method of both :class:`~tether.sdk.Client` and :class:`~tether.sdk.AsyncClient`
(``Client.evaluate(...)``, ``await AsyncClient.evaluate(...)``): the first parameter,
the client's configuration, is supplied by the client.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

from tether.sdk._protocol import Call, ClientConfig, Flow, is_header_value
from tether.sdk.credentials import BearerToken
from tether.sdk.errors import UnexpectedResponse
from tether.sdk.events import ToolCall, otlp_document, reported_result
from tether.sdk.models import (
    AccessRequest,
    Approval,
    ApprovalTicket,
    Decision,
    ReportReceipt,
    Resource,
    ResultReceipt,
    Subject,
    Task,
    TaskIntent,
    TokenGrant,
)

# RFC 8693 §2.1 and §3, and tether's RFC 8707 resource indicator of a task.
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 (a URN)
TASK_RESOURCE = "urn:tether:task:"
MAX_WAIT_S = 30  # the longest single long-poll tether serves
Semantic = Literal["execute_all", "deny_on_first_deny", "permit_on_first_permit"]


def access_body(request: AccessRequest) -> dict[str, Any]:
    """The AuthZEN body of one request; a task token goes in ``subject.properties.token``
    (never in ``Authorization``: that is the PEP's own credential)."""
    subject = request.subject
    if isinstance(subject, TokenGrant):
        subject_json: dict[str, Any] = {"properties": {"token": subject.access_token}}
    else:
        subject_json = {"type": subject.type, "id": subject.id}
        if subject.properties:
            subject_json["properties"] = dict(subject.properties)
    resource = request.resource
    resource_json: dict[str, Any] = {"type": resource.type, "id": resource.id}
    if resource.properties:
        resource_json["properties"] = dict(resource.properties)
    body: dict[str, Any] = {
        "subject": subject_json,
        "action": {"name": request.action},
        "resource": resource_json,
    }
    if request.context:
        body["context"] = dict(request.context)
    return body


def _decisions(value: Any) -> tuple[Decision, ...]:
    items = value.get("evaluations") if isinstance(value, dict) else None
    if not isinstance(items, list):
        if isinstance(value, dict) and "decision" in value:  # an empty batch is one request
            return (Decision.from_json(value),)
        raise UnexpectedResponse("tether's answer has no `evaluations` array", status=200)
    return tuple(Decision.from_json(item) for item in items)


def evaluate(
    config: ClientConfig,
    subject: Subject | TokenGrant,
    action: str,
    resource: Resource | str,
    *,
    context: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    request_id: str | None = None,
) -> Flow[Decision]:
    """One decision (``POST /access/v1/evaluation``).

    Args:
        subject: the subject itself, or the task token of the agent (tether then takes
            the subject and the task from the token).
        action: the action's name (a tool name).
        resource: the resource, or its ``type:id`` text.
        context: the request's context (a retry after approval adds ``approval_id``).
        timeout: seconds to wait for the answer (default: the client's).
        request_id: the PEP's own id of the request (``X-Request-ID``), kept with the
            decision in tether's log and echoed; tether makes one when it is left out.

    Raises:
        TetherUnavailable: tether could not be reached in time.
        TetherAPIError: tether refused the request (the subclass for its status).
    """
    target = Resource.parse(resource) if isinstance(resource, str) else resource
    body = access_body(AccessRequest(subject, action, target, context or {}))
    _check_request_id(request_id)
    decision: Decision = yield Call(
        "POST",
        "/access/v1/evaluation",
        Decision.from_json,
        json=body,
        timeout=timeout,
        request_id=request_id,
    )
    return decision


def evaluations(
    config: ClientConfig,
    requests: Sequence[AccessRequest],
    *,
    semantic: Semantic = "execute_all",
    timeout: float | None = None,
    request_id: str | None = None,
) -> Flow[tuple[Decision, ...]]:
    """Several decisions in one request (``POST /access/v1/evaluations``).

    With ``deny_on_first_deny`` or ``permit_on_first_permit`` tether stops at the first
    such answer, so fewer decisions than requests may come back. An item tether could not
    evaluate comes back as a ``deny`` whose ``error_code`` says why. ``request_id``: as
    for :func:`evaluate`.
    """
    _check_request_id(request_id)
    body = {
        "evaluations": [access_body(r) for r in requests],
        "options": {"evaluations_semantic": semantic},
    }
    decisions: tuple[Decision, ...] = yield Call(
        "POST",
        "/access/v1/evaluations",
        _decisions,
        json=body,
        timeout=timeout,
        request_id=request_id,
    )
    return decisions


def _check_request_id(request_id: str | None) -> None:
    """A request id goes as a header value: visible ASCII, spaces inside (RFC 9110 §5.5)."""
    if request_id is not None and not is_header_value(request_id):
        raise ValueError(
            f"request_id {request_id!r} cannot be sent as `X-Request-ID`: use visible ASCII "
            "(spaces inside allowed), no control characters"
        )


def _proof(config: ClientConfig, proof: str | None, what: str) -> str:
    if proof is not None:
        return proof
    if isinstance(config.credential, BearerToken):
        return config.credential.current()
    raise ValueError(
        f"{what} needs the workload's own proof (a JWT-SVID or OIDC token): pass `proof=`, "
        "or make the client with `BearerToken(...)`"
    )


def open_task(
    config: ClientConfig,
    *,
    purpose: str,
    actions: Sequence[str],
    resources: Sequence[str],
    data_classes: Sequence[str] = (),
    ttl: str | int | None = None,
    proof: str | None = None,
) -> Flow[Task]:
    """Open a task (``POST /v1/tasks``) as the workload that ``proof`` proves.

    Args:
        purpose: why, in words (shown in reviews and paths).
        actions, resources, data_classes: the declared intent (resources as patterns,
            ``invoice:*``).
        ttl: how long (``"10m"`` or seconds; default: the class's maximum).
        proof: the workload's JWT-SVID or OIDC token (default: the client's
            :class:`~tether.sdk.BearerToken`).
    """
    intent = TaskIntent(tuple(actions), tuple(resources), tuple(data_classes))
    body: dict[str, Any] = {"purpose": purpose, "intent": intent.to_json()}
    if ttl is not None:
        body["ttl"] = ttl
    bearer = _proof(config, proof, "opening a task")
    task: Task = yield Call("POST", "/v1/tasks", Task.from_json, json=body, bearer=bearer)
    return task


def exchange(
    config: ClientConfig,
    task: Task | str | None = None,
    *,
    proof: str | None = None,
    scope: Sequence[str] | None = None,
    parent: TokenGrant | None = None,
) -> Flow[TokenGrant]:
    """A task token (``POST /oauth2/token``, RFC 8693 token exchange).

    Args:
        task: the task (or its id) the token is for.
        proof: the workload's JWT-SVID or OIDC token (default: the client's
            :class:`~tether.sdk.BearerToken`); with ``parent``, the sub-agent's.
        scope: actions to narrow the token to.
        parent: delegate: the parent's task token, narrowed to the sub-agent of ``proof``.
    """
    bearer = _proof(config, proof, "a token exchange")
    form = {"grant_type": GRANT_TYPE}
    if parent is None:
        form |= {"subject_token": bearer, "subject_token_type": JWT_TYPE}
    else:
        form |= {
            "subject_token": parent.access_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "actor_token": bearer,
            "actor_token_type": JWT_TYPE,
        }
    if task is not None:
        form["resource"] = TASK_RESOURCE + (task.id if isinstance(task, Task) else task)
    if scope is not None:
        form["scope"] = " ".join(scope)
    grant: TokenGrant = yield Call(
        "POST", "/oauth2/token", TokenGrant.from_json, form=form, bearer=bearer
    )
    return grant


def end_task(
    config: ClientConfig, task: Task | str, *, reason: str = "ended", proof: str | None = None
) -> Flow[Task]:
    """End a task (``POST /v1/tasks/{id}/end``): every token of it is revoked at once.

    Args:
        proof: the workload's proof (default: the client's credential, which may be an
            admin's).
    """
    task_id = task.id if isinstance(task, Task) else task
    ended: Task = yield Call(
        "POST",
        f"/v1/tasks/{quote(task_id, safe='')}/end",
        Task.from_json,
        json={"reason": reason},
        bearer=proof,
    )
    return ended


def wait_for_approval(
    config: ClientConfig, ticket: ApprovalTicket | str, *, timeout: float = 30.0
) -> Flow[Approval]:
    """Wait, at most ``timeout`` seconds, for a human to decide an approval
    (long-polling ``GET /v1/approvals/{id}?wait=...``, at most 30 s a request).

    Returns the approval as it stands at the end: check ``status`` (still ``pending``
    when nobody decided in time).
    """
    approval_id = ticket.id if isinstance(ticket, ApprovalTicket) else ticket
    path = f"/v1/approvals/{quote(approval_id, safe='')}"
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        wait = max(0, min(MAX_WAIT_S, int(deadline - time.monotonic())))
        approval: Approval = yield Call(
            "GET", path, Approval.from_json, params={"wait": str(wait)}, timeout=wait + 10.0
        )
        if approval.settled or wait == 0:
            return approval


def report(config: ClientConfig, calls: Sequence[ToolCall]) -> Flow[ReportReceipt]:
    """Report executed tool calls as observed events (``POST /v1/events``, OpenTelemetry
    GenAI spans); the caller needs the ``ingest`` role."""
    body = {"source": "otel", "events": [otlp_document(calls)]}
    receipt: ReportReceipt = yield Call("POST", "/v1/events", ReportReceipt.from_json, json=body)
    return receipt


def report_result(
    config: ClientConfig,
    grant: TokenGrant | str,
    decision: Decision | str,
    result: Any,
    *,
    timeout: float | None = None,
) -> Flow[ResultReceipt]:
    """Report what a decided call returned to the agent (``POST /v1/results``), so that
    drift detection judges the task's later destinations by where they came from.

    Args:
        grant: the task token the call was decided for (or its text).
        decision: the call's decision (or its ``decision_id``).
        result: what the agent was shown: JSON, text, or a value written as JSON (see
            :func:`~tether.sdk.events.reported_result` for a large one).
        timeout: seconds to wait for the answer (default: the client's).

    Raises:
        ValueError: the decision has no id (tether recorded nothing to attach it to).
        TetherUnavailable, TetherAPIError: as for any request (a PEP role is needed).
    """
    token = grant.access_token if isinstance(grant, TokenGrant) else grant
    decision_id = decision.decision_id if isinstance(decision, Decision) else decision
    if not decision_id:
        raise ValueError("a result is reported for a recorded decision: this one has no id")
    body = {"token": token, "decision_id": decision_id, "result": reported_result(result)}
    receipt: ResultReceipt = yield Call(
        "POST", "/v1/results", ResultReceipt.from_json, json=body, timeout=timeout
    )
    return receipt
