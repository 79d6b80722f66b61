"""The remote decider: the gateway asks a tether server over HTTP (``--tether URL``).

It asks the same questions as :class:`~tether.gateway.LocalDecider`, through the SDK's
client, as a PEP (its API key, JWT-SVID or client certificate):

* a bearer is checked by RFC 7662 introspection (``POST /oauth2/introspect``); an active
  answer is remembered for at most :data:`AUTHENTICATED_FOR_S` (never past the token's
  ``exp``). An ended task's token is inactive there, so its holder gets HTTP 401 at once
  instead of a refusal per call (in process, such calls are refused one by one); within
  the remembered window its calls are still refused, each as a recorded decision, since
  every decision checks the token in full;
* each call is ``POST /access/v1/evaluation`` with the body
  :func:`~tether.gateway.decision_body` builds from the estate's ``tools:`` mappings,
  read from ``GET /v1/tools`` at most once per :data:`MAPPINGS_FOR_S`;
* ``tools/list`` is ``POST /v1/tools/callable``;
* what each call returned to the agent is ``POST /v1/results``, sent in the background
  and in order per token; the token's next decision waits for it (at most
  :data:`REPORT_WAIT_S`), so the server's drift engine judges later destinations by
  where they came from exactly as an in-process gateway's does.

tether unreachable fails closed: a call is refused (``tether_unreachable``, the upstream
is never called), a listing or a bearer check raises :class:`DeciderUnavailable` (the
agent gets a JSON-RPC error or HTTP 503).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from tether.estate.compiled import ToolMapping
from tether.gateway._calls import ArgumentProblem, GatewayDecision, ToolCall, decision_body
from tether.gateway._decider import (
    Bearer,
    DeciderUnavailable,
    RememberedBearers,
)
from tether.sdk import AsyncClient
from tether.sdk._protocol import Call, Flow, is_header_value
from tether.sdk.errors import ClientError, TetherAPIError, TetherUnavailable, UnexpectedResponse

log = logging.getLogger(__name__)

#: How long the estate's tool mappings are used before they are read again.
MAPPINGS_FOR_S = 1.0
#: How long a result report may take, and a decision waits for its token's last one (s).
REPORT_WAIT_S = 2.0


def _as_is(value: Any) -> Any:
    return value


def _request(
    method: str,
    path: str,
    *,
    json: Any = None,
    form: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> Flow[Any]:
    answer = yield Call(method, path, _as_is, json=json, form=form, request_id=request_id)
    return answer


class RemoteDecider:
    """A :class:`~tether.gateway.GatewayDecider` over a tether server."""

    def __init__(self, client: AsyncClient, *, clock: Callable[[], float] = time.monotonic):
        self.client = client
        self._clock = clock
        self._bearers = RememberedBearers(clock=clock)
        self._mappings: dict[str, ToolMapping] = {}
        self._mappings_read_at: float | None = None
        self._reports: dict[str, asyncio.Task[None]] = {}  # by token: its last result sent

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """Nothing to run beside the gateway: the server owns the revocation state."""
        yield

    async def authenticate(self, token: str) -> Bearer | None:
        remembered = self._bearers.get(token)
        if remembered is not None:
            return remembered
        try:
            answer = await self.client.run(
                _request("POST", "/oauth2/introspect", form={"token": token})
            )
        except TetherUnavailable as exc:
            raise DeciderUnavailable(f"tether cannot check the token: {exc}") from exc
        except ClientError as exc:
            raise DeciderUnavailable(f"tether refused to check the token: {exc}") from exc
        bearer = _bearer(answer)
        if bearer is None:
            self._bearers.forget(token)
            return None
        self._bearers.put(token, bearer)
        return bearer

    async def decide(self, token: str, call: ToolCall, request_id: str | None) -> GatewayDecision:
        await self._reported(token)
        try:
            mappings = await self._current_mappings()
            body = decision_body(token, call, mappings.get(call.name))
            # The JSON-RPC request's id, kept with the decision as in process (unless it
            # cannot be a header value: tether then makes one).
            sent_id = request_id if request_id and is_header_value(request_id) else None
            evaluation = _request("POST", "/access/v1/evaluation", json=body, request_id=sent_id)
            answer = await self.client.run(evaluation)
        except ArgumentProblem as problem:
            return GatewayDecision.refused(problem.code, problem.message)
        except TetherAPIError as exc:  # tether could not evaluate the request: refused
            return GatewayDecision.refused(exc.error_code, str(exc))
        except ClientError as exc:  # unreachable, or an answer the gateway cannot read
            return GatewayDecision.refused(exc.error_code, f"tether did not decide: {exc}")
        return GatewayDecision.from_authzen(answer)

    def report_result(self, token: str, decision_id: str, result: Mapping[str, Any]) -> None:
        """Sent in the background (``POST /v1/results``), after the token's earlier
        reports; the token's next decision waits for it (see :meth:`_reported`)."""
        earlier = self._reports.get(token)
        sending = asyncio.get_running_loop().create_task(
            self._send_result(earlier, token, decision_id, result)
        )
        self._reports[token] = sending

        def forget(done: asyncio.Task[None]) -> None:
            if self._reports.get(token) is done:
                del self._reports[token]

        sending.add_done_callback(forget)

    async def _send_result(
        self,
        earlier: asyncio.Task[None] | None,
        token: str,
        decision_id: str,
        result: Mapping[str, Any],
    ) -> None:
        if earlier is not None:
            await asyncio.wait({earlier})
        try:
            await self.client.report_result(token, decision_id, result, timeout=REPORT_WAIT_S)
        except ClientError as exc:  # judged without it: as `unknown`, never more leniently
            log.warning("the result of decision %s did not reach tether: %s", decision_id, exc)

    async def _reported(self, token: str) -> None:
        """Wait (at most :data:`REPORT_WAIT_S`) until the token's results sent so far
        reached tether, so that its next decision is judged with them, as in process."""
        sending = self._reports.get(token)
        if sending is not None:
            await asyncio.wait({sending}, timeout=REPORT_WAIT_S)

    async def callable_tools(self, token: str, names: Sequence[str]) -> frozenset[str]:
        try:
            answer = await self.client.run(
                _request("POST", "/v1/tools/callable", json={"token": token, "tools": list(names)})
            )
        except ClientError as exc:
            message = f"tether did not say which tools may be called: {exc}"
            raise DeciderUnavailable(message) from exc
        tools = answer.get("tools") if isinstance(answer, dict) else None
        return frozenset(t for t in tools or () if isinstance(t, str))

    async def _current_mappings(self) -> dict[str, ToolMapping]:
        now = self._clock()
        if self._mappings_read_at is not None and now - self._mappings_read_at < MAPPINGS_FOR_S:
            return self._mappings
        answer = await self.client.run(_request("GET", "/v1/tools"))
        tools = answer.get("tools") if isinstance(answer, dict) else None
        if not isinstance(tools, dict):
            raise UnexpectedResponse("`GET /v1/tools` answered without `tools`", status=200)
        self._mappings = {
            name: ToolMapping.from_json(name, body)
            for name, body in tools.items()
            if isinstance(body, dict)
        }
        self._mappings_read_at = now
        return self._mappings


def _bearer(answer: Any) -> Bearer | None:
    if not isinstance(answer, dict) or answer.get("active") is not True:
        return None
    subject, task, scope = answer.get("sub"), answer.get("txn"), answer.get("scope", "")
    expires, issuer = answer.get("exp"), answer.get("iss")
    if not (isinstance(subject, str) and isinstance(task, str) and isinstance(expires, int)):
        return None
    scopes = tuple(scope.split()) if isinstance(scope, str) else ()
    return Bearer(subject, task, scopes, expires, issuer if isinstance(issuer, str) else "")
