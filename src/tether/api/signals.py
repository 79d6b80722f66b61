"""Shared Signals endpoints: SSF transmitter metadata and RFC 8936 poll delivery.

* ``GET /.well-known/ssf-configuration`` (public): SSF 1.0 transmitter metadata.
* ``POST /ssf/poll`` (PEPs and admins; it changes what is queued, so not auditors):
  the caller's poll stream. Body ``{maxEvents, returnImmediately, ack, setErrs}``,
  answer ``{"sets": {jti: SET}, "moreAvailable": bool}``. With ``returnImmediately``
  false the answer waits up to ``POLL_WAIT_S`` for a SET. Errors are RFC 8935 §2.3 style
  ``{"err", "description"}`` plus tether's ``error_code``.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tether.api.contract import OBJECT, STRING, Doc, array, obj
from tether.api.errors import status_of
from tether.api.routing import caller_of, public, secured
from tether.api.tasks import read_json
from tether.callers import Role
from tether.errors import TetherError
from tether.services import Tether
from tether.signals import PollRequest, transmitter_metadata
from tether.signals.metadata import POLL_PATH

#: The longest a poll with ``returnImmediately: false`` waits for a SET.
POLL_WAIT_S = 10.0
_POLL_STEP_S = 0.2
MAX_POLL_BODY = 1_000_000
_NO_STORE = {"cache-control": "no-store"}
_ERR = {400: "invalid_request", 401: "authentication_failed", 403: "access_denied"}


def _json(document: object, status: int = 200) -> Response:
    return Response(
        orjson.dumps(document), status_code=status, media_type="application/json", headers=_NO_STORE
    )


def poll_error(exc: TetherError) -> Response:
    status = status_of(exc)
    err = _ERR.get(status, "not_found" if status == 404 else "server_error")
    return _json({"err": err, "description": exc.message, "error_code": exc.code}, status)


def signal_routes(tether: Tether) -> list[Route]:
    transmitter = tether.signals

    async def configuration(_request: Request) -> Response:
        # The configured issuer, never the request's Host header.
        document = transmitter_metadata(tether.settings.public_url)
        return Response(orjson.dumps(document), media_type="application/json")

    async def poll(request: Request) -> Response:
        try:
            poller = caller_of(request).identity_id
            poll_request = PollRequest.from_json(
                await read_json(request, MAX_POLL_BODY, required=False)
            )
            result = await run_in_threadpool(transmitter.poll, poller, poll_request)
            waiting = not poll_request.return_immediately and poll_request.max_events > 0
            loop = asyncio.get_running_loop()
            deadline = loop.time() + POLL_WAIT_S
            while waiting and not result.sets and loop.time() < deadline:
                await asyncio.sleep(_POLL_STEP_S)
                if await request.is_disconnected():
                    break
                result = await run_in_threadpool(transmitter.fetch, poller, poll_request.max_events)
        except TetherError as exc:
            return poll_error(exc)
        return _json(result.to_json())

    return [
        public(
            "/.well-known/ssf-configuration",
            configuration,
            doc=Doc("Shared Signals transmitter metadata", answer=obj(("issuer",))),
        ),
        secured(
            POLL_PATH,
            poll,
            roles=(Role.PEP, Role.ADMIN),
            methods=("POST",),
            doc=Doc(
                "RFC 8936 poll delivery of the caller's Security Event Tokens (acknowledge, "
                "report errors, wait up to 10 s with `returnImmediately: false`)",
                body=obj(
                    maxEvents={"type": "integer", "minimum": 0},
                    returnImmediately={"type": "boolean"},
                    ack=array(STRING),
                    setErrs=OBJECT,
                ),
                body_required=False,
                answer=obj(("sets",), sets=OBJECT, moreAvailable={"type": "boolean"}),
                refusals={
                    400: "a malformed poll request (`err: invalid_request`)",
                    404: "the caller has no poll stream (`err: not_found`)",
                },
            ),
        ),
    ]
