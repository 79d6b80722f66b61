"""The port through which the MCP gateway asks tether: :class:`GatewayDecider`.

The gateway never decides itself. Its decider checks the agent's bearer token (for the
HTTP 401 of the MCP authorization spec), decides each governed call and says which
tools a token may call (``tools/list``). :class:`~tether.gateway.LocalDecider` asks a
:class:`~tether.services.Tether` in the same process (``--db URL``);
:class:`~tether.gateway.RemoteDecider` a tether server over ``tether.sdk`` (``--tether
URL``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from tether.gateway._calls import GatewayDecision, ToolCall


class DeciderUnavailable(Exception):
    """tether could not be asked (a remote decider's server is unreachable): the agent
    gets HTTP 503 for a bearer check, a JSON-RPC error for a listing; never a pass."""


@dataclass(frozen=True)
class Bearer:
    """A task token the gateway accepts at its edge (it verified as tether's)."""

    identity: str
    task_id: str
    scopes: tuple[str, ...]
    expires_at: int
    issuer: str


#: How long a checked bearer is remembered at the gateway's edge, and how many at most.
AUTHENTICATED_FOR_S = 5.0
REMEMBERED_TOKENS = 10_000


class RememberedBearers:
    """Bearers checked recently: each for at most ``for_s`` seconds and never past its
    ``exp``, the oldest forgotten first beyond ``most``. Every decision checks its token
    in full, so this only spares the bearer check at the gateway's edge."""

    def __init__(
        self,
        for_s: float = AUTHENTICATED_FOR_S,
        *,
        most: int = REMEMBERED_TOKENS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.for_s = for_s
        self.most = most
        self._clock = clock
        self._bearers: dict[str, tuple[Bearer, float]] = {}

    def get(self, token: str) -> Bearer | None:
        remembered = self._bearers.get(token)
        if remembered is None or self._clock() >= remembered[1]:
            return None
        return remembered[0]

    def put(self, token: str, bearer: Bearer) -> None:
        now = self._clock()
        if len(self._bearers) >= self.most:
            self._bearers.pop(next(iter(self._bearers)))
        left = max(0.0, bearer.expires_at - time.time())
        self._bearers[token] = (bearer, now + min(self.for_s, left))

    def forget(self, token: str) -> None:
        self._bearers.pop(token, None)


class GatewayDecider(Protocol):
    """What the gateway needs of tether; every method is safe to call concurrently."""

    def serving(self) -> AbstractAsyncContextManager[None]:
        """Entered for as long as the gateway's server runs (the decider's own background
        work, if any)."""
        ...

    async def authenticate(self, token: str) -> Bearer | None:
        """The token's holder, or ``None`` when it is not a valid tether task token
        (then the agent gets HTTP 401). A token of an ended task still authenticates:
        its calls are refused, each as a recorded decision naming why."""
        ...

    async def decide(self, token: str, call: ToolCall, request_id: str | None) -> GatewayDecision:
        """One recorded decision on ``call``; never raises for a refusal."""
        ...

    async def callable_tools(self, token: str, names: Sequence[str]) -> frozenset[str]:
        """The tools among ``names`` the token's identity may call in its task."""
        ...

    def report_result(self, token: str, decision_id: str, result: Mapping[str, Any]) -> None:
        """What the call decided as ``decision_id`` for ``token`` returned to the agent
        (the ``CallToolResult`` as JSON), for drift detection's provenance; never blocks,
        and reaches tether before the token's next decision."""
        ...
