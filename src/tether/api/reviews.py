"""Access reviews over HTTP: ``GET /v1/reviews`` (the report), ``POST /v1/reviews`` (sign-off),
``GET /v1/reviews/{id}`` (a stored sign-off).

``GET /v1/reviews`` takes ``identity``, ``since`` (``30d`` or ISO 8601), ``framework``
(``owasp-asi|maestro|nist-ai-rmf|nist-csf``) and ``format`` (``json`` default, ``html``,
``md``, ``csv``). The HTML page is self-contained; it is sent with a Content-Security-
Policy that admits only its own inline style (by hash) and ``data:`` images.

``POST /v1/reviews`` (admin) body: ``{"identity"?, "since"?, "decisions": {row_id:
"keep"|"revoke"}, "note"?, "report_digest"?}``; the signer is the authenticated caller.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.api.contract import DATE_TIME, STRING, Doc, obj
from tether.api.routing import caller_of, secured
from tether.callers import Role
from tether.errors import InvalidRequest, PayloadTooLarge
from tether.review.render import HTML_CSP, render
from tether.review.service import generate_report
from tether.services import Tether

READERS = (Role.AUDITOR, Role.ADMIN)
_MEDIA = {
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}
_MAX_BODY = 1_000_000
# `30d`, `12h` back from now, or an ISO 8601 moment.
_SINCE = {"anyOf": [{"type": "string", "pattern": "^[1-9][0-9]{0,3}[dh]$"}, DATE_TIME]}


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"`{name}` must be a non-empty string")
    return value


def review_routes(tether: Tether) -> list[Route]:
    async def report(request: Request) -> Response:
        params = request.query_params
        fmt = params.get("format", "json")
        if fmt not in ("json", *_MEDIA):
            raise InvalidRequest(f"`format` must be json, html, md or csv, not `{fmt}`")
        built = await run_in_threadpool(
            generate_report,
            tether,
            since=params.get("since"),
            identity=params.get("identity"),
            framework=params.get("framework"),
        )
        if fmt == "json":
            value = built.to_json()
            value["digest"] = built.digest
            value["recent_signoffs"] = await run_in_threadpool(tether.records.recent_sign_offs)
            return JSONResponse(value)
        text = render(built, fmt)
        headers = {"content-security-policy": HTML_CSP} if fmt == "html" else {}
        return Response(text, media_type=_MEDIA[fmt], headers=headers)

    async def create(request: Request) -> Response:
        body = await request.body()
        if len(body) > _MAX_BODY:
            raise PayloadTooLarge(f"the sign-off body exceeds {_MAX_BODY} bytes")
        try:
            payload = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            raise InvalidRequest("the body is not JSON") from None
        if not isinstance(payload, dict):
            raise InvalidRequest("the body must be a JSON object")
        unknown = set(payload) - {"identity", "since", "decisions", "note", "report_digest"}
        if unknown:
            raise InvalidRequest(f"unknown member(s) {', '.join(sorted(unknown))}")
        decisions = payload.get("decisions", {})
        if not isinstance(decisions, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in decisions.items()
        ):
            raise InvalidRequest("`decisions` must map row ids to `keep` or `revoke`")
        note = payload.get("note", "")
        if not isinstance(note, str):
            raise InvalidRequest("`note` must be a string")
        built = await run_in_threadpool(
            generate_report,
            tether,
            since=_text(payload.get("since"), "since"),
            identity=_text(payload.get("identity"), "identity"),
        )
        record = await run_in_threadpool(
            lambda: tether.records.sign_off(
                built,
                signed_by=caller_of(request).identity_id,
                decisions=decisions,
                note=note,
                expected_digest=_text(payload.get("report_digest"), "report_digest"),
            )
        )
        return JSONResponse(
            record.to_json(), status_code=201, headers={"location": f"/v1/reviews/{record.id}"}
        )

    async def show(request: Request) -> Response:
        record = await run_in_threadpool(
            tether.records.get_sign_off, request.path_params["review_id"]
        )
        return JSONResponse(record.to_json())

    return [
        secured(
            "/v1/reviews",
            report,
            roles=READERS,
            doc=Doc(
                "The access review of the live estate: entitlement beside observed activity, "
                "lifecycle, grants, right-sizing, framework references",
                query={
                    "since": _SINCE,
                    "identity": STRING,
                    "framework": STRING,
                    "format": {"enum": ["json", *_MEDIA]},
                },
                answer_type=("application/json", *_MEDIA.values()),
                refusals={400: "a query parameter invalid", 404: "no such identity"},
            ),
        ),
        secured(
            "/v1/reviews",
            create,
            roles=(Role.ADMIN,),
            methods=("POST",),
            doc=Doc(
                "Sign off a review: keep or revoke each row, bound to the report's digest",
                body={
                    **obj(
                        identity=STRING,
                        since=_SINCE,
                        decisions={
                            "type": "object",
                            "additionalProperties": {"enum": ["keep", "revoke"]},
                        },
                        note=STRING,
                        report_digest=STRING,
                    ),
                    "additionalProperties": False,
                },
                body_required=False,
                status=201,
                refusals={
                    400: "a member invalid",
                    404: "no such identity",
                    409: "the report changed since `report_digest`",
                },
            ),
        ),
        secured(
            "/v1/reviews/{review_id}",
            show,
            roles=READERS,
            doc=Doc("One signed-off review", refusals={404: "no such review"}),
        ),
    ]
