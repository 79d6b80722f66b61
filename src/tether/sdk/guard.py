"""``@guarded``: tether decides every call of an agent's tool function before it runs.

::

    @guarded(action="read_invoice", resource="invoice:{invoice_id}", client=tether)
    def read_invoice(invoice_id: str) -> list[dict[str, Any]]: ...

    with acting_as(grant):              # the agent's task token (or a Subject)
        rows = read_invoice("INV-1")

Each call is one decision (action, resource, and the SHA-256 of the arguments in
``context.tool.arguments_sha256``):

* ``allow``: the tool runs;
* ``deny``: :class:`~tether.sdk.errors.ToolDenied` (reasons, ``error_code``), not run;
* ``constrain``: the obligations are fulfilled on the result (``tether.sdk.obligations``);
  one the tool cannot fulfil refuses the call (:class:`~tether.sdk.errors.ObligationUnsupported`);
* ``approval_required``: waits up to ``approval_wait_s`` for a human, then asks again
  with ``context.approval_id``; else :class:`~tether.sdk.errors.ApprovalPending` with
  the ticket, and the next identical call retries with that approval;
* tether unreachable, too slow, or refusing this PEP: fail closed
  (:class:`~tether.sdk.errors.DecisionUnavailable`), at once or, with
  ``FailClosed(after_ms=N)``, after ``N`` ms of retrying. There is no fail-open setting.

Every call that ran is reported to ``POST /v1/events`` as an ``execute_tool`` span
(tool, argument digest, result size, task, token, decision and call ids), so paths and
drift see what actually ran; a call made with a task token also reports what it returned
(after obligations) to ``POST /v1/results``, so that drift judges the task's later
destinations by where they came from. A failed report is logged; the result is still
returned (the call has happened). A sync tool takes a :class:`~tether.sdk.Client`, an async one
an :class:`~tether.sdk.AsyncClient`; the decision logic is the same generator for both.
"""

from __future__ import annotations

import functools
import inspect
import logging
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from tether.sdk import _operations as ops
from tether.sdk._protocol import ClientConfig, Flow, Invoke, Sleep
from tether.sdk._tickets import PendingApprovals
from tether.sdk.actors import Actor, current_actor
from tether.sdk.client import AsyncClient, Client
from tether.sdk.errors import (
    ApprovalPending,
    ClientError,
    DecisionUnavailable,
    ObligationUnsupported,
    ServerError,
    TetherUnavailable,
    ToolDenied,
)
from tether.sdk.events import (
    ToolCall,
    arguments_digest,
)
from tether.sdk.models import (
    ApprovalStatus,
    Decision,
    Outcome,
    Resource,
    TokenGrant,
)
from tether.sdk.obligations import (
    ObligationHandler,
    ObligationMismatch,
    fulfil,
    handlers_for,
    names,
    unsupported,
)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
ResourceSpec = str | Resource | Callable[..., Resource | str]
RETRY_PAUSE_S = 0.05


@dataclass(frozen=True, slots=True)
class FailClosed:
    """What a guarded tool does when no decision comes: it refuses, always.

    ``FailClosed()`` refuses at the first failure (within the client's timeout);
    ``FailClosed(after_ms=N)`` keeps asking (a tether restart, a dropped connection) and
    refuses once ``N`` ms have passed without a decision.
    """

    after_ms: int | None = None

    def __post_init__(self) -> None:
        if self.after_ms is not None and self.after_ms <= 0:
            raise ValueError(f"`after_ms` must be a positive number of ms, got `{self.after_ms}`")


FAIL_CLOSED = FailClosed()


@dataclass(frozen=True)
class _Guard:
    """One guarded tool: what it asks tether, and how it treats the answers."""

    tool: str
    resource: ResourceSpec
    signature: inspect.Signature
    actor: Actor | Callable[[], Actor] | None
    context: Mapping[str, Any] | Callable[..., Mapping[str, Any]] | None
    obligations: dict[str, ObligationHandler]
    approval_wait_s: float
    fail_closed: FailClosed
    report: bool
    pending: PendingApprovals = field(default_factory=PendingApprovals)

    def who(self) -> Actor:
        actor = self.actor() if callable(self.actor) else self.actor
        actor = actor or current_actor()
        if actor is None:
            raise DecisionUnavailable(
                f"`{self.tool}` was called outside `acting_as(...)` and names no `actor`: "
                "there is nobody to decide for",
                tool=self.tool,
                code="actor_missing",
            )
        return actor

    def target(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Resource:
        spec = self.resource
        if callable(spec):
            spec = spec(*args, **kwargs)
        if isinstance(spec, str):
            arguments = self.signature.bind(*args, **kwargs)
            arguments.apply_defaults()
            spec = Resource.parse(spec.format(**arguments.arguments))
        return spec

    def flow(
        self,
        config: ClientConfig,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Flow[Any]:
        """One guarded call, as effects (see ``tether.sdk._protocol``)."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        digest = arguments_digest(bound.arguments)
        actor, resource = self.who(), self.target(args, kwargs)
        extra = self.context(*args, **kwargs) if callable(self.context) else self.context
        context: dict[str, Any] = {
            **(extra or {}),
            "tool": {"name": self.tool, "arguments_sha256": digest},
        }
        key = self.pending.key(actor, self.tool, resource, context)
        decision = yield from self._decided(config, actor, resource, context, key)
        known = self.obligations
        missing = unsupported(decision.obligations, known)
        if missing:
            raise ObligationUnsupported(
                f"`{self.tool}` cannot fulfil the obligation(s) {names(missing)}, so it refuses",
                tool=self.tool,
                obligations=missing,
                reasons=decision.reasons,
                decision=decision,
            )
        started = datetime.now(UTC)
        try:
            result = yield Invoke(function, args, dict(kwargs))
        except Exception as exc:
            yield from self._report(config, actor, resource, decision, digest, started, exc)
            raise
        try:
            delivered = fulfil(result, decision.obligations, known)
        except ObligationMismatch as exc:
            yield from self._report(config, actor, resource, decision, digest, started, exc)
            raise ObligationUnsupported(
                f"`{self.tool}` ran but its result is withheld: {exc}",
                tool=self.tool,
                obligations=sorted(decision.obligations),
                reasons=decision.reasons,
                decision=decision,
            ) from exc
        yield from self._report_result(config, actor, decision, delivered)
        yield from self._report(config, actor, resource, decision, digest, started, delivered)
        return delivered

    def _decided(
        self,
        config: ClientConfig,
        actor: Actor,
        resource: Resource,
        context: dict[str, Any],
        key: str,
    ) -> Flow[Decision]:
        """The decision the call may run on (allow or constrain), or the refusal raised."""
        approval_id = self.pending.get(key)
        waited = False
        while True:
            asked = {**context, "approval_id": approval_id} if approval_id else context
            decision = yield from self._ask(config, actor, resource, asked)
            if decision.outcome is not Outcome.APPROVAL_REQUIRED:
                self.pending.forget(key)
                if decision.allowed:
                    return decision
                raise ToolDenied(
                    f"tether denied `{self.tool}` on `{resource}`: "
                    + (", ".join(decision.reasons) or "no reason given"),
                    tool=self.tool,
                    code=decision.error_code,
                    reasons=decision.reasons,
                    decision=decision,
                )
            ticket = decision.approval
            if ticket is None:
                raise ToolDenied(
                    f"`{self.tool}` needs an approval but tether opened no ticket",
                    tool=self.tool,
                    code="approval_required",
                    reasons=decision.reasons,
                    decision=decision,
                )
            self.pending.remember(key, ticket.id)
            if self.approval_wait_s > 0 and not waited:
                waited = True
                try:
                    approval = yield from ops.wait_for_approval(
                        config, ticket, timeout=self.approval_wait_s
                    )
                except ClientError as exc:
                    raise self._unavailable(exc) from exc
                if approval.status is ApprovalStatus.APPROVED:
                    approval_id = ticket.id
                    continue  # ask again with the approval: tether uses it, once
                if approval.status is not ApprovalStatus.PENDING:
                    self.pending.forget(key)
                    raise ToolDenied(
                        f"the approval of `{self.tool}` is {approval.status.value}",
                        tool=self.tool,
                        code=f"approval_{approval.status.value}",
                        reasons=decision.reasons,
                        decision=decision,
                    )
            raise ApprovalPending(
                f"`{self.tool}` waits for a human to approve `{ticket.id}`; call it again "
                "once approved",
                tool=self.tool,
                ticket=ticket,
                reasons=decision.reasons,
                decision=decision,
            )

    def _ask(
        self, config: ClientConfig, actor: Actor, resource: Resource, context: dict[str, Any]
    ) -> Flow[Decision]:
        after_ms = self.fail_closed.after_ms
        deadline = time.monotonic() + after_ms / 1000 if after_ms is not None else None
        while True:
            remaining = deadline - time.monotonic() if deadline is not None else None
            try:
                decision: Decision = yield from ops.evaluate(
                    config, actor, self.tool, resource, context=context, timeout=remaining
                )
                return decision
            except (TetherUnavailable, ServerError) as exc:
                if deadline is None or time.monotonic() + RETRY_PAUSE_S >= deadline:
                    raise self._unavailable(exc) from exc
                yield Sleep(RETRY_PAUSE_S)
            except ClientError as exc:  # tether refused the PEP itself (401, 403, 400)
                raise self._unavailable(exc) from exc

    def _unavailable(self, exc: ClientError) -> DecisionUnavailable:
        return DecisionUnavailable(
            f"no decision for `{self.tool}`, so it is refused (fail closed): {exc.message}",
            tool=self.tool,
            code=exc.code,
        )

    def _report_result(
        self, config: ClientConfig, actor: Actor, decision: Decision, delivered: Any
    ) -> Flow[None]:
        """What the agent got, for drift's provenance of the task's later destinations
        (a call made with a task token and recorded as a decision)."""
        if not self.report or not isinstance(actor, TokenGrant) or not decision.decision_id:
            return
        try:
            yield from ops.report_result(config, actor, decision, delivered)
        except ClientError as exc:
            log.warning("the result of `%s` was not reported: %s", self.tool, exc)

    def _report(
        self,
        config: ClientConfig,
        actor: Actor,
        resource: Resource,
        decision: Decision,
        digest: str,
        started: datetime,
        result: Any,
    ) -> Flow[None]:
        if not self.report:
            return
        call = ToolCall.of(
            self.tool,
            actor,
            resource=str(resource),
            decision_id=decision.decision_id,
            arguments_sha256=digest,
            started_at=started,
            result=result,
        )
        try:
            yield from ops.report(config, [call])
        except ClientError as exc:
            log.warning("the call of `%s` ran but was not reported: %s", self.tool, exc)


def _check_template(template: str, signature: inspect.Signature, name: str) -> None:
    """Refuse a resource template that names no argument of the tool (or is no template)."""
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    except ValueError as exc:
        raise ValueError(
            f"the resource template `{template}` of `{name}` is invalid: {exc}"
        ) from None
    unknown = sorted(fields - set(signature.parameters))
    if unknown:
        raise ValueError(
            f"the resource template `{template}` of `{name}` names "
            + ", ".join(f"`{f}`" for f in unknown)
            + ", which is no argument of the tool"
        )


def guarded(
    *,
    client: Client | AsyncClient,
    resource: ResourceSpec,
    action: str | None = None,
    actor: Actor | Callable[[], Actor] | None = None,
    context: Mapping[str, Any] | Callable[..., Mapping[str, Any]] | None = None,
    obligations: Mapping[str, ObligationHandler] | None = None,
    read_only: bool = False,
    approval_wait_s: float = 0.0,
    fail_closed: FailClosed = FAIL_CLOSED,
    report: bool = True,
) -> Callable[[F], F]:
    """Put tether in front of a tool function (sync with a ``Client``, async with an
    ``AsyncClient``).

    Args:
        client: the client that asks tether (and reports the call).
        resource: what the call acts on: ``type:id`` text formatted with the call's
            arguments (``"invoice:{invoice_id}"``), a :class:`Resource`, or a callable
            taking the call's arguments.
        action: the action (and tool) name; default: the function's name.
        actor: who calls: a task token, a subject, or a callable returning one; default:
            the innermost :func:`acting_as`.
        context: more AuthZEN context, or a callable of the call's arguments making it.
        obligations: handlers for obligations beyond the built-in ones.
        read_only: the tool changes nothing (fulfils ``read_only=true``).
        approval_wait_s: how long a call waits for a human's approval before raising
            :class:`ApprovalPending` (0: at once).
        fail_closed: when to give up on an unreachable tether (always refusing).
        report: report every executed call to ``/v1/events`` (needs the ``ingest`` role)
            and, with a task token, its result to ``/v1/results`` (the ``pep`` role).

    Raises:
        TypeError: an async tool with a blocking ``Client`` or the reverse.
        ValueError: a resource template naming no argument of the tool.
    """

    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        name = getattr(function, "__name__", type(function).__name__)
        if isinstance(resource, str):
            _check_template(resource, signature, name)
        is_async = inspect.iscoroutinefunction(function)
        if is_async and not isinstance(client, AsyncClient):
            raise TypeError(f"the async tool `{name}` needs an `AsyncClient`")
        if not is_async and not isinstance(client, Client):
            raise TypeError(f"the tool `{name}` needs a `Client` (it is not async)")
        guard = _Guard(
            tool=action or name,
            resource=resource,
            signature=signature,
            actor=actor,
            context=context,
            obligations=handlers_for(obligations, read_only=read_only),
            approval_wait_s=approval_wait_s,
            fail_closed=fail_closed,
            report=report,
        )
        if isinstance(client, AsyncClient):
            async_client = client

            @functools.wraps(function)
            async def call_async(*args: Any, **kwargs: Any) -> Any:
                flow = guard.flow(async_client.config, function, args, kwargs)
                return await async_client.run(flow)

            return call_async  # type: ignore[return-value]  # same signature as `function`
        sync_client = client

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            return sync_client.run(guard.flow(sync_client.config, function, args, kwargs))

        return call  # type: ignore[return-value]

    return decorate
