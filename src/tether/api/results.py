"""``POST /v1/results``: what a decided call returned, reported by the PEP that enforced it.

Drift detection judges a destination by where the value entered the task's run
(:mod:`tether.drift.provenance`): a field of a record a covered call returned, free text
someone else wrote, nothing at all. An in-process gateway hands each result to the drift
engine itself (:meth:`tether.services.Tether.report_result`); a PEP over HTTP (a remote
``tether gateway mcp``, ``@guarded`` tools) reports it here, so that its calls are judged
exactly as the in-process gateway's are.

Body ``{"token": <task token>, "decision_id": <id>, "result": <JSON or text>}``:
``decision_id`` is the ``context.decision_id`` of the call's evaluation, ``result`` what
the agent was shown (an MCP ``CallToolResult`` as JSON, a tool's return value, or text).
The task token binds the report to its task: a result counts only for a decision of the
task the token belongs to (it may have ended since: the call ran while it was open).
Nothing is stored; the answer is ``202`` once the result is queued for drift detection, in
order with the decisions (a result of a decision drift never saw is ignored there).

Bounded: a body over :data:`MAX_RESULT_BODY` bytes is ``413`` (``result_too_large``). A
reporter sends a result whose JSON is over :data:`MAX_RESULT_JSON` bytes as text, its
first :data:`MAX_RESULT_CHARS` characters at most (``tether.sdk`` does): all provenance
reads of a text, though then as text only (its values count as free text, not as record
fields: judged more strictly, never more leniently).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.api.contract import STRING, Doc, obj
from tether.api.routing import secured
from tether.api.tasks import read_json
from tether.callers import Role
from tether.drift.provenance import MAX_RESULT_CHARS
from tether.errors import InvalidRequest, PayloadTooLarge
from tether.services import Tether

CALLERS = (Role.PEP, Role.ADMIN)
#: The largest JSON of a reported result (bytes): twice what provenance reads of one, for
#: the escaping of a result sent as text.
MAX_RESULT_JSON = 2 * MAX_RESULT_CHARS
#: The largest body taken: such a result, a task token and the decision's id.
MAX_RESULT_BODY = MAX_RESULT_JSON + 64 * 1024
MAX_DECISION_ID = 128
INVALID = "result_report_invalid"
TOKEN_INVALID = "result_token_invalid"  # noqa: S105 (an error code)


def _invalid(message: str, code: str = INVALID) -> InvalidRequest:
    return InvalidRequest(message, code=code)


def parse_report(body: Any) -> tuple[str, str, Any]:
    """``(token, decision_id, result)`` of a ``POST /v1/results`` body.

    Raises:
        InvalidRequest: not ``{token, decision_id, result}`` (``result_report_invalid``).
    """
    if not isinstance(body, dict):
        raise _invalid('the body must be {"token": ..., "decision_id": ..., "result": ...}')
    token, decision_id = body.get("token"), body.get("decision_id")
    if not isinstance(token, str) or not token:
        raise _invalid("`token` must be the task token the call was decided for")
    if not isinstance(decision_id, str) or not 0 < len(decision_id) <= MAX_DECISION_ID:
        raise _invalid(
            f"`decision_id` must be the decision's id (at most {MAX_DECISION_ID} characters), "
            "as `context.decision_id` of its evaluation said"
        )
    if "result" not in body or body["result"] is None:
        raise _invalid("`result` is missing: what the call returned (JSON or text)")
    return token, decision_id, body["result"]


def task_of(tether: Tether, token: str) -> tuple[str, str]:
    """``(identity, task id)`` of a task token whose signature is tether's (ended, revoked
    or expired since is fine: the call ran while it was valid).

    Raises:
        InvalidRequest: not a task token of this tether (``result_token_invalid``).
    """
    inspection = tether.tasks.inspect(token, refresh=False)
    claims = inspection.claims
    if claims is None:
        why = inspection.error.message if inspection.error is not None else "it does not verify"
        raise _invalid(f"`token` is not a task token of this tether: {why}", TOKEN_INVALID)
    return claims.subject, claims.task_id


def result_routes(tether: Tether) -> list[Route]:
    async def report(request: Request) -> Response:
        try:
            body = await read_json(request, MAX_RESULT_BODY)
        except PayloadTooLarge:
            raise PayloadTooLarge(
                f"a reported result takes at most {MAX_RESULT_BODY} bytes; send the first "
                f"{MAX_RESULT_CHARS} characters of a larger one as text",
                code="result_too_large",
            ) from None
        token, decision_id, result = parse_report(body)
        task = await run_in_threadpool(task_of, tether, token)
        tether.report_result(decision_id, result, task=task)
        return JSONResponse({"decision_id": decision_id, "task_id": task[1]}, status_code=202)

    return [
        secured(
            "/v1/results",
            report,
            roles=CALLERS,
            methods=("POST",),
            doc=Doc(
                "Report what a decided call returned (for drift detection's provenance of "
                "later destinations); bound to the task of `token`, nothing stored",
                body=obj(
                    ("token", "decision_id", "result"),
                    token={"type": "string", "minLength": 1},
                    decision_id={"type": "string", "minLength": 1, "maxLength": MAX_DECISION_ID},
                    result={"type": ["object", "array", "string", "number", "boolean"]},
                ),
                answer=obj(("decision_id", "task_id"), decision_id=STRING, task_id=STRING),
                status=202,
                refusals={
                    400: "not `{token, decision_id, result}` (`result_report_invalid`), or "
                    "`token` is no task token of this tether (`result_token_invalid`)",
                    413: f"a body over {MAX_RESULT_BODY} bytes (`result_too_large`)",
                },
            ),
        )
    ]
