"""Decisions with a task token: the PEP passes it, tether takes the subject from it.

On the AuthZEN evaluation endpoints a PEP passes the agent's task token as
``subject.properties.token`` (never in ``Authorization``: that header authenticates the
PEP itself). tether then:

1. checks the token completely (:meth:`TaskAuthority.inspect`); a refusal is a deny
   whose reason and ``error_code`` name the check (``token_expired``,
   ``token_revoked``, ``task_ended``, ``token_audience_mismatch``, ...);
2. takes the subject from it, ``{type: <identity kind>, id: <identity id>}``; a subject
   the PEP named that differs is refused (``token_subject_mismatch``);
3. refuses an action outside the token's ``scope`` (``token_scope_exceeded``);
4. adds ``context.tether.task``: ``id``, ``purpose``, ``intent`` (``actions``,
   ``resources``, ``data_classes``), ``within_intent``, ``delegation_depth`` and, for
   a delegated token, ``actor``: each member that some policy names (Cedar parses all
   of a context on every decision; what no policy reads cannot change the answer);
5. outside the intent, denies (``outside_task_intent``) unless the identity's class is in
   ``monitor`` mode, where the policies decide and may read ``within_intent``.

The decision is recorded with the task id and token ``jti`` under ``context.tether``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.policy import Decision, DecisionRequest, EntityRef, Outcome, PolicyEngine
from tether.tokens.authority import TaskAuthority
from tether.tokens.cache import VerifiedToken
from tether.tokens.checking import Inspection
from tether.tokens.tasks import TASK_CONTEXT_MEMBERS

#: Where the PEP puts the task token in an AuthZEN request.
TOKEN_PROPERTY = "token"  # noqa: S105 (a property name, not a secret)
SCOPE_EXCEEDED = "token_scope_exceeded"
OUTSIDE_INTENT = "outside_task_intent"
SUBJECT_MISMATCH = "token_subject_mismatch"
#: The subject recorded for a request whose PEP named none and whose token did not verify.
UNVERIFIED_SUBJECT = EntityRef("tether_token", "unverified")


def refusal(code: str, message: str) -> Decision:
    """A deny tether decides before the policies, naming the check that refused."""
    return Decision(Outcome.DENY, (code,), errors=(message,), error_code=code)


@dataclass(frozen=True)
class TaskUse:
    """A task token presented with one decision request: checked, or refused."""

    token: VerifiedToken | None
    refused: Decision | None = None
    enforce_intent: bool = True
    known_task: str | None = None
    known_jti: str | None = None
    # The members of `context.tether.task` policies read; None: no policy reads `task`.
    members: frozenset[str] | None = TASK_CONTEXT_MEMBERS

    def decide(
        self, engine: PolicyEngine, request: DecisionRequest, tether_context: dict[str, Any]
    ) -> Decision:
        """The decision for ``request`` made with this token (``tether_context`` is tether's
        own part of the Cedar context, ``context.tether``)."""
        if self.refused is not None:
            return self.refused
        assert self.token is not None
        claims, task = self.token.claims, self.token.task
        if request.action not in claims.scope:
            return refusal(
                SCOPE_EXCEEDED, f"action `{request.action}` is not in the task token's scope"
            )
        why = task.intent.outside(
            request.action, request.resource, tether_context.get("data_class")
        )
        if self.members is not None:
            tether_context["task"] = task.cedar(
                within_intent=why is None,
                depth=claims.depth,
                actor=claims.actor,
                members=self.members,
            )
        if why is not None and self.enforce_intent:
            return refusal(OUTSIDE_INTENT, why)
        return engine.decide(request, tether_context)

    def recorded_context(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The request context as the decision log keeps it, with the task and token."""
        recorded = dict(context)
        recorded["tether"] = {"task_id": self.known_task, "token_jti": self.known_jti}
        return recorded


def bind_task_token(
    authority: TaskAuthority, request: DecisionRequest, token: object, *, subject_given: bool
) -> tuple[DecisionRequest, TaskUse]:
    """The request as decided with ``token``: its subject taken from the token.

    Args:
        request: the parsed request; its ``subject_properties`` no longer hold the token,
            and its subject is :data:`UNVERIFIED_SUBJECT` when the PEP named none.
        token: the value of ``subject.properties.token``.
        subject_given: whether the PEP named a subject (then it must be the token's).
    """
    return bind_inspected(authority, request, authority.inspect(token), subject_given=subject_given)


def bind_inspected(
    authority: TaskAuthority,
    request: DecisionRequest,
    inspection: Inspection,
    *,
    subject_given: bool,
) -> tuple[DecisionRequest, TaskUse]:
    """:func:`bind_task_token` with the token already inspected (e.g. by
    :meth:`TaskAuthority.inspect_in_memory` on an event loop)."""
    claims, task = inspection.claims, inspection.task
    known_task = task.id if task is not None else (claims.task_id if claims else None)
    known_jti = claims.jti if claims is not None else None
    given = request.subject
    if task is not None and claims is not None:
        # The signature verified: whoever is refused or decided on, it is the token's subject.
        request = DecisionRequest(
            EntityRef(task.identity_kind, claims.subject),
            request.action,
            request.resource,
            request.context,
            request.subject_properties,
            request.resource_properties,
            request.action_properties,
        )
    if inspection.error is not None:
        error = inspection.error
        return request, TaskUse(
            None, refusal(error.code, error.message), known_task=known_task, known_jti=known_jti
        )
    assert inspection.verified is not None
    assert task is not None
    if subject_given and given != request.subject:
        mismatch = refusal(
            SUBJECT_MISMATCH, f"the subject `{given}` is not the task token's `{request.subject}`"
        )
        return request, TaskUse(None, mismatch, known_task=known_task, known_jti=known_jti)
    return request, TaskUse(
        inspection.verified,
        enforce_intent=authority.enforces_intent(task.workload_class),
        known_task=known_task,
        known_jti=known_jti,
        members=authority.task_members(),
    )
