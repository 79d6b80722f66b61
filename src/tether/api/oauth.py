"""tether's OAuth endpoints: token exchange, introspection, revocation, JWKS, metadata.

* ``POST /oauth2/token`` (RFC 8693): the workload authenticates with the proof it sends
  as ``subject_token`` (or ``actor_token`` when delegating); a valid proof confers the
  ``workload`` role. Errors are RFC 6749 §5.2 JSON with tether's ``error_code``.
* ``POST /oauth2/introspect`` (RFC 7662, PEPs): ``{"active": false, "error_code"}`` for any
  token that is not active.
* ``POST /oauth2/revoke`` (RFC 7009): 200 whatever the token, even an unknown one; a
  workload that is not a PEP or admin may revoke only a token issued to it (§2.1), another
  workload's is refused with ``unauthorized_client`` and stays valid.
* ``GET /.well-known/jwks.json`` and ``GET /.well-known/oauth-authorization-server``
  (RFC 8414): public.

Requests are ``application/x-www-form-urlencoded`` (RFC 6749 §4.1.3, RFC 7662 §2.1,
RFC 7009 §2.1); answers carry ``Cache-Control: no-store`` (RFC 6749 §5.1).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tether.api.contract import INTEGER, OBJECT, STRING, Doc, Schema, array, obj
from tether.api.routing import public, secured
from tether.api.tasks import gate_caller
from tether.callers import Caller, Role
from tether.errors import InvalidRequest, StoreUnavailable, TetherError
from tether.numerals import decimal
from tether.services import Tether
from tether.tokens import (
    ExchangeRequest,
    authorization_server_metadata,
    exchange,
    introspect,
    revoke,
    token_response,
)

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024
_REVOKE_ANY = frozenset({Role.PEP, Role.ADMIN})
_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _json(document: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(document), status_code=status, media_type="application/json", headers=_NO_STORE
    )


def _form(*required: str) -> Schema:
    return {
        "type": "object",
        "required": list(required),
        "properties": dict.fromkeys(required, STRING),
        "additionalProperties": STRING,
    }


_OAUTH_REFUSALS = {
    400: "RFC 6749 §5.2 error (`invalid_request`, `invalid_grant`, ...) with `error_code`",
    503: "the store is unavailable (`temporarily_unavailable`)",
}


def oauth_error(exc: Exception) -> Response:
    """An error in RFC 6749 §5.2 form, with tether's ``error_code``."""
    if isinstance(exc, StoreUnavailable):
        status, error = 503, "temporarily_unavailable"
    elif isinstance(exc, TetherError):
        status, error = 400, getattr(exc, "oauth_error", "invalid_request")
    else:
        log.exception("unexpected error at an OAuth endpoint")
        status, error = 500, "server_error"
    code = exc.code if isinstance(exc, TetherError) else "internal_error"
    message = exc.message if isinstance(exc, TetherError) else "internal error"
    return _json({"error": error, "error_description": message, "error_code": code}, status)


async def read_form(request: Request) -> dict[str, list[str]]:
    """The form parameters, each with every value it was given.

    Raises:
        InvalidRequest: not a form, too large, or not UTF-8.
    """
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != FORM:
        raise InvalidRequest(f"the body must be `{FORM}`", code="unsupported_media_type")
    declared = request.headers.get("content-length", "")
    if (decimal(declared) or 0) > MAX_FORM_BYTES:
        raise InvalidRequest(f"the form exceeds {MAX_FORM_BYTES} bytes", code="payload_too_large")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidRequest(f"the form exceeds {MAX_FORM_BYTES} bytes", code="payload_too_large")
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the form is not UTF-8 form encoding", code="malformed_form") from None


def _token_parameter(form: dict[str, list[str]]) -> str:
    values = form.get("token", [])
    if len(values) != 1 or not values[0]:
        raise InvalidRequest("parameter `token` is required, once", code="parameter_missing")
    return values[0]


def _owner_required(caller: Caller | None) -> str | None:
    """The identity a revoked token must have been issued to: the caller's, unless it is
    a PEP or an admin (which may revoke any task token)."""
    if caller is None or caller.has_any(_REVOKE_ANY):
        return None
    return caller.identity_id


def oauth_routes(tether: Tether) -> list[Route]:
    authority = tether.tasks

    async def token(request: Request) -> Response:
        try:
            exchange_request = ExchangeRequest.from_form(await read_form(request))
            caller = gate_caller(request)
            issued = await run_in_threadpool(
                exchange,
                authority,
                exchange_request,
                client=caller.identity_id if caller is not None else None,
            )
        except Exception as exc:  # every refusal in the protocol's own form
            return oauth_error(exc)
        return _json(token_response(issued, time.time()))

    async def introspection(request: Request) -> Response:
        try:
            presented = _token_parameter(await read_form(request))
            answer = await run_in_threadpool(introspect, authority, presented)
        except Exception as exc:
            return oauth_error(exc)
        return _json(answer)

    async def revocation(request: Request) -> Response:
        try:
            presented = _token_parameter(await read_form(request))
            caller = gate_caller(request)
            await run_in_threadpool(
                revoke,
                authority,
                presented,
                actor=caller.identity_id if caller is not None else None,
                client=_owner_required(caller),
            )
        except Exception as exc:
            return oauth_error(exc)
        return Response(b"", status_code=200, headers=_NO_STORE)

    async def jwks(_request: Request) -> Response:
        await run_in_threadpool(authority.refresh_keys)
        return Response(
            orjson.dumps(tether.keys.jwks()),
            media_type="application/jwk-set+json",
            headers={"cache-control": "max-age=60"},
        )

    async def metadata(_request: Request) -> Response:
        document = authorization_server_metadata(tether.settings.public_url)
        return Response(orjson.dumps(document), media_type="application/json")

    return [
        secured(
            "/oauth2/token",
            token,
            roles=(Role.WORKLOAD,),
            methods=("POST",),
            doc=Doc(
                "RFC 8693 token exchange: a workload proof or task token for a task token",
                form=_form("grant_type", "subject_token", "subject_token_type"),
                answer=obj(
                    ("access_token", "token_type", "expires_in"),
                    access_token=STRING,
                    issued_token_type=STRING,
                    token_type=STRING,
                    expires_in=INTEGER,
                    scope=STRING,
                ),
                refusals=_OAUTH_REFUSALS,
            ),
        ),
        secured(
            "/oauth2/introspect",
            introspection,
            roles=(Role.PEP,),
            methods=("POST",),
            doc=Doc(
                'RFC 7662 introspection: `{"active": false}` for any token not valid now',
                form=_form("token"),
                answer=obj(("active",), active={"type": "boolean"}),
                refusals=_OAUTH_REFUSALS,
            ),
        ),
        secured(
            "/oauth2/revoke",
            revocation,
            roles=(Role.WORKLOAD, Role.PEP, Role.ADMIN),
            methods=("POST",),
            doc=Doc(
                "RFC 7009 revocation: a workload only of its own tokens, a PEP or admin of any; "
                "200 with an empty body, also for a token tether does not know",
                form=_form("token"),
                answer_type="",
                refusals=_OAUTH_REFUSALS,
            ),
        ),
        public(
            "/.well-known/jwks.json",
            jwks,
            doc=Doc(
                "tether's public signing keys (RFC 7517)",
                answer=obj(("keys",), keys=array(OBJECT)),
                answer_type="application/jwk-set+json",
            ),
        ),
        public(
            "/.well-known/oauth-authorization-server",
            metadata,
            doc=Doc("RFC 8414 authorization server metadata", answer=obj(("issuer",))),
        ),
    ]
