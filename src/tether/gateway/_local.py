"""The in-process decider: the gateway asks a :class:`~tether.services.Tether` it hosts.

Each call goes through the same AuthZEN evaluation path as ``POST
/access/v1/evaluation`` (:func:`tether.api.authzen.evaluate_one`): the task token is
checked completely, the subject taken from it, the intent enforced, the decision
recorded and handed to live drift. Store reads happen in worker threads, never on the
event loop; a bearer checked in the last :data:`AUTHENTICATED_FOR_S` is not checked
again at the edge (a thread hop less per call: here, a token of an ended or revoked
task authenticates anyway, and its calls are refused one by one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio.to_thread
import orjson

from tether.api.authzen import evaluate_one
from tether.api.tools import callable_tools
from tether.errors import TetherError
from tether.gateway._calls import ArgumentProblem, GatewayDecision, ToolCall, decision_body
from tether.gateway._decider import Bearer, RememberedBearers
from tether.services import Tether

#: Errors of a token that must be renewed (HTTP 401), not refused call by call.
_UNAUTHENTICATED = frozenset({"token_expired", "token_not_yet_valid"})
#: The caller recorded with every decision the gateway asks for.
GATEWAY_CALLER = "gateway:mcp"
#: How long a checked bearer is taken as valid at the edge (never past its ``exp``).


class LocalDecider:
    """A :class:`~tether.gateway.GatewayDecider` over an in-process tether."""

    def __init__(self, tether: Tether, *, caller: str = GATEWAY_CALLER) -> None:
        self.tether = tether
        self.caller = caller
        self._bearers = RememberedBearers()

    async def authenticate(self, token: str) -> Bearer | None:
        bearer = self._bearers.get(token)
        if bearer is None:
            bearer = await anyio.to_thread.run_sync(self._authenticate, token)
            if bearer is not None:
                self._bearers.put(token, bearer)
        return bearer

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
        return await anyio.to_thread.run_sync(self.decide_blocking, token, call, request_id)

    def decide_blocking(
        self, token: str, call: ToolCall, request_id: str | None = None
    ) -> GatewayDecision:
        """:meth:`decide` on the calling thread (store I/O included): the decision the
        in-process gateway would take, for a caller that is no event loop (a replay)."""
        mapping = self.tether.snapshot.estate.tools.get(call.name)
        try:
            body = decision_body(token, call, mapping)
            answer = orjson.loads(evaluate_one(self.tether, body, request_id, self.caller))
        except ArgumentProblem as problem:
            return GatewayDecision.refused(problem.code, problem.message)
        except TetherError as exc:  # a request tether cannot evaluate: refused, fail closed
            return GatewayDecision.refused(exc.code, exc.message)
        return GatewayDecision.from_authzen(answer)

    def report_result(self, token: str, decision_id: str, result: Mapping[str, Any]) -> None:
        self.tether.report_result(decision_id, result)  # queued before any later decision

    async def callable_tools(self, token: str, names: Sequence[str]) -> frozenset[str]:
        return await anyio.to_thread.run_sync(self._callable_tools, token, names)

    def _callable_tools(self, token: str, names: Sequence[str]) -> frozenset[str]:
        return callable_tools(self.tether, token, names)
