"""The in-process decider: the gateway asks a :class:`~tether.services.Tether` it hosts.

Each call goes through the same AuthZEN evaluation path as ``POST
/access/v1/evaluation`` (:func:`tether.api.authzen.evaluate_one`): the task token is
checked completely, the subject taken from it, the intent enforced, the decision
recorded and handed to live drift. Store reads happen in worker threads, never on the
event loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio.to_thread
import orjson

from tether.api.authzen import evaluate_one
from tether.errors import TetherError
from tether.gateway._calls import ArgumentProblem, GatewayDecision, ToolCall, decision_body
from tether.gateway._decider import Bearer
from tether.policy import PolicySpec, scope_action_names
from tether.services import Tether

#: Errors of a token that must be renewed (HTTP 401), not refused call by call.
_UNAUTHENTICATED = frozenset({"token_expired", "token_not_yet_valid"})
#: The caller recorded with every decision the gateway asks for.
GATEWAY_CALLER = "gateway:mcp"


class LocalDecider:
    """A :class:`~tether.gateway.GatewayDecider` over an in-process tether."""

    def __init__(self, tether: Tether, *, caller: str = GATEWAY_CALLER) -> None:
        self.tether = tether
        self.caller = caller

    async def authenticate(self, token: str) -> Bearer | None:
        return await anyio.to_thread.run_sync(self._authenticate, token)

    def _authenticate(self, token: str) -> Bearer | None:
        inspection = self.tether.tasks.inspect(token)
        claims = inspection.claims
        if claims is None or (
            inspection.error is not None and inspection.error.code in _UNAUTHENTICATED
        ):
            return None
        return Bearer(
            claims.subject, claims.task_id, claims.scope, claims.expires_at, claims.issuer
        )

    async def decide(self, token: str, call: ToolCall, request_id: str | None) -> GatewayDecision:
        return await anyio.to_thread.run_sync(self._decide, token, call, request_id)

    def _decide(self, token: str, call: ToolCall, request_id: str | None) -> GatewayDecision:
        mapping = self.tether.snapshot.estate.tools.get(call.name)
        try:
            body = decision_body(token, call, mapping)
            answer = orjson.loads(evaluate_one(self.tether, body, request_id, self.caller))
        except ArgumentProblem as problem:
            return GatewayDecision.refused(problem.code, problem.message)
        except TetherError as exc:  # a request tether cannot evaluate: refused, fail closed
            return GatewayDecision.refused(exc.code, exc.message)
        return GatewayDecision.from_authzen(answer)

    async def callable_tools(self, token: str, names: Sequence[str]) -> frozenset[str]:
        return await anyio.to_thread.run_sync(self._callable_tools, token, names)

    def _callable_tools(self, token: str, names: Sequence[str]) -> frozenset[str]:
        inspection = self.tether.tasks.inspect(token)
        if inspection.verified is None:
            return frozenset()
        claims = inspection.verified.claims
        entitled = permitted_actions(self.tether.snapshot.estate.policies, claims.subject)
        return frozenset(
            n for n in names if n in claims.scope and (entitled is None or n in entitled)
        )


def permitted_actions(policies: Sequence[PolicySpec], identity: str) -> frozenset[str] | None:
    """The actions some ``permit`` could grant ``identity`` (``None``: any action).

    A policy counts when its principal scope is unconstrained or names the identity by id;
    a permit scoped to a group (``principal in``) counts too, since membership is the
    entity store's. What the forbids and conditions leave is for each call's decision.
    """
    candidates = [p for p in policies if p.effect == "permit" and _may_apply(p.est, identity)]
    if any(p.est.get("action", {}).get("op") == "All" for p in candidates):
        return None
    return frozenset(scope_action_names(candidates))


def _may_apply(est: Mapping[str, Any], identity: str) -> bool:
    scope = est.get("principal", {})
    if scope.get("op") == "==":
        entity = scope.get("entity", {})
        return isinstance(entity, Mapping) and entity.get("id") == identity
    return True
