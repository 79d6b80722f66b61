"""The in-process decider: the gateway asks a :class:`~tether.services.Tether` it hosts.

Each call goes through the same AuthZEN evaluation path as ``POST
/access/v1/evaluation`` (:func:`tether.api.authzen.evaluate_one`): the task token is
checked completely, the subject taken from it, the intent enforced, the decision
recorded and handed to live drift. Store reads happen in worker threads (but for the
one below); a bearer checked in the last :data:`AUTHENTICATED_FOR_S` is not checked
again at the edge (a thread hop less per call: here, a token of an ended or revoked
task authenticates anyway, and its calls are refused one by one).

While the gateway serves (:meth:`LocalDecider.serving`), a call with a token verified
before is decided on the event loop, without a thread hop (``evaluate_one(may_block=
False)``, as ``POST /access/v1/evaluation`` answers inline): the revocation version is
still read before every decision, here on the loop where the store is SQLite
(:meth:`~tether.tokens.cache.RevocationState.read_without_waiting`), so ending a task or
revoking a token refuses the very next call, as before. Anything that needs more of the
store (a token's first sight, the revocations to load again after one, an approval ticket
to open, a failed read, another thread reading) goes to a thread as before and fails
closed there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import orjson

from tether.api.authzen import evaluate_one
from tether.api.tools import callable_tools
from tether.errors import TetherError
from tether.gateway._calls import ArgumentProblem, GatewayDecision, ToolCall, decision_body
from tether.gateway._decider import Bearer, RememberedBearers
from tether.services import Tether, WouldBlock

#: Errors of a token that must be renewed (HTTP 401), not refused call by call.
_UNAUTHENTICATED = frozenset({"token_expired", "token_not_yet_valid"})
#: The caller recorded with every decision the gateway asks for.
GATEWAY_CALLER = "gateway:mcp"


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

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """While the gateway serves, the revocation version may be read on its event loop
        (see the module)."""
        revocations = self.tether.tasks.revocations
        revocations.read_without_waiting(True)
        try:
            yield
        finally:
            revocations.read_without_waiting(False)

    async def decide(self, token: str, call: ToolCall, request_id: str | None) -> GatewayDecision:
        try:  # on the event loop when no store I/O is needed (nothing is recorded otherwise)
            return self._decide(token, call, request_id, may_block=False)
        except WouldBlock:
            return await anyio.to_thread.run_sync(self.decide_blocking, token, call, request_id)

    def decide_blocking(
        self, token: str, call: ToolCall, request_id: str | None = None
    ) -> GatewayDecision:
        """:meth:`decide` on the calling thread (store I/O included): the decision the
        in-process gateway would take, for a caller that is no event loop (a replay)."""
        return self._decide(token, call, request_id, may_block=True)

    def _decide(
        self, token: str, call: ToolCall, request_id: str | None, *, may_block: bool
    ) -> GatewayDecision:
        """The decision (``may_block=False``: :class:`WouldBlock` where it needs store I/O)."""
        mapping = self.tether.snapshot.estate.tools.get(call.name)
        try:
            body = decision_body(token, call, mapping)
            answer = orjson.loads(
                evaluate_one(self.tether, body, request_id, self.caller, may_block=may_block)
            )
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
