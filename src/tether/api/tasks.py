"""tether's task API under ``/v1/tasks`` (RFC 9457 problem+json errors).

* ``POST /v1/tasks``: a workload opens a task, authenticated by its own proof
  (``Authorization: Bearer <JWT-SVID or OIDC token>``: a valid proof is what confers the
  ``workload`` role); body ``{purpose, intent: {actions, resources, data_classes, calls}, ttl}``;
  answers 201 with ``task_id``.
* ``POST /v1/tasks/{id}/end``: the workload that opened it, or an admin, ends it; every
  token of the task is revoked at once. Ending an ended task answers it again.
* ``GET /v1/tasks`` (``identity``, ``status``, ``limit``) and ``GET /v1/tasks/{id}``
  (with its tokens, by ``jti``): auditors and admins.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.api.contract import STRING, Doc, array, listing, obj
from tether.api.routing import CALLER_KEY, secured
from tether.callers import Caller, Role
from tether.errors import InvalidRequest, PayloadTooLarge, Unauthenticated
from tether.numerals import decimal
from tether.services import Tether
from tether.tokens import TaskRequest
from tether.tokens.errors import ClientMismatch

READERS = (Role.AUDITOR, Role.ADMIN)
MAX_TASK_BODY = 64 * 1024
_STATES = ("open", "ended", "expired")
TASK_REQUEST = obj(
    ("purpose", "intent"),
    purpose=STRING,
    intent=obj(
        ("actions", "resources"),
        actions=array(STRING),
        resources=array(STRING),
        data_classes=array(STRING),
        calls=array(obj(("tool",), tool=STRING, arguments={"type": "object"})),
    ),
    ttl={"oneOf": [{"type": "integer"}, STRING]},
)


def bearer(request: Request) -> str | None:
    """The credential of ``Authorization: Bearer <credential>``, if any."""
    value = request.headers.get("authorization", "")
    scheme, _, credential = value.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


def gate_caller(request: Request) -> Caller | None:
    """The caller the HTTP edge authenticated, when it did."""
    caller = request.scope.get(CALLER_KEY)
    return caller if isinstance(caller, Caller) else None


async def read_json(request: Request, limit: int, *, required: bool = True) -> Any:
    body = await request.body()
    if len(body) > limit:  # this route's own bound, under the edge's `max_body_bytes`
        raise PayloadTooLarge(f"the body of `{request.url.path}` exceeds {limit} bytes")
    if not body.strip():
        if required:
            raise InvalidRequest("the body is empty; expected a JSON object", code="empty_body")
        return {}
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise InvalidRequest(
            "content type must be `application/json`", code="unsupported_media_type"
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}", code="malformed_json") from None


def task_routes(tether: Tether) -> list[Route]:
    authority = tether.tasks

    async def open_task(request: Request) -> Response:
        proof = bearer(request)
        if proof is None:
            raise Unauthenticated(
                "open a task with your workload proof: "
                "`Authorization: Bearer <JWT-SVID or OIDC token>`",
                code="credentials_missing",
            )
        proven = await run_in_threadpool(authority.authenticate, proof, attempt="task.open")
        caller = gate_caller(request)
        if caller is not None and caller.identity_id != proven.identity.id:
            raise ClientMismatch(f"the caller `{caller.identity_id}` is not `{proven.identity.id}`")
        task_request = TaskRequest.from_json(await read_json(request, MAX_TASK_BODY))
        task = await run_in_threadpool(
            authority.open_task,
            task_request,
            identity_id=proven.identity.id,
            opened_by=proven.name,
            proof_id=proven.proof.token_id,
        )
        return JSONResponse(
            task.to_json(authority.now()),
            status_code=201,
            headers={"location": f"/v1/tasks/{task.id}"},
        )

    async def end_task(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        caller = gate_caller(request)
        if caller is not None and Role.ADMIN in caller.roles:
            actor, owner = caller.identity_id, None
        elif caller is not None:
            actor = owner = caller.identity_id
        else:  # no edge authentication in front: the workload proves itself here
            proof = bearer(request)
            if proof is None:
                raise Unauthenticated(
                    "end a task with your workload proof: `Authorization: Bearer <proof>`",
                    code="credentials_missing",
                )
            proven = await run_in_threadpool(authority.authenticate, proof, attempt="task.end")
            actor = owner = proven.identity.id
        body = await read_json(request, MAX_TASK_BODY, required=False)
        reason = body.get("reason", "ended") if isinstance(body, dict) else None
        if not isinstance(reason, str) or not reason or len(reason) > 200:
            raise InvalidRequest("`reason` must be a short string", code="task_request_invalid")
        ended = await run_in_threadpool(
            authority.end_task, task_id, actor=actor, reason=reason, owner=owner
        )
        answer = ended.task.to_json(authority.now())
        answer["revoked_tokens"] = len(ended.revoked)
        answer["already_ended"] = ended.already_ended
        return JSONResponse(answer)

    async def list_tasks(request: Request) -> Response:
        params = request.query_params
        state = params.get("status")
        if state is not None and state not in _STATES:
            raise InvalidRequest(
                f"`status` must be one of {', '.join(_STATES)}", code="invalid_query"
            )
        limit = decimal(params.get("limit", "100"), low=1, high=10_000)
        if limit is None:
            raise InvalidRequest("`limit` must be from 1 to 10000", code="invalid_query")
        tasks = await run_in_threadpool(
            authority.list_tasks,
            identity_id=params.get("identity"),
            state=state,
            limit=limit,
        )
        now = authority.now()
        return JSONResponse({"tasks": [t.to_json(now) for t in tasks]})

    async def show_task(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        task = await run_in_threadpool(partial(authority.task, task_id, fresh=True))
        tokens = await run_in_threadpool(authority.tokens_of, task_id)
        answer = task.to_json(authority.now())
        answer["tokens"] = [t.to_json() for t in tokens]
        return JSONResponse(answer)

    return [
        secured(
            "/v1/tasks",
            open_task,
            roles=(Role.WORKLOAD,),
            methods=("POST",),
            doc=Doc(
                "Open a task: purpose and intent for a bounded time (Authorization: Bearer "
                "<the workload's JWT-SVID or OIDC token>)",
                body=TASK_REQUEST,
                status=201,
                refusals={400: "the task request is invalid (`task_request_invalid`)"},
            ),
        ),
        secured(
            "/v1/tasks",
            list_tasks,
            roles=READERS,
            doc=Doc(
                "Tasks, newest first",
                query={
                    "identity": STRING,
                    "status": {"enum": list(_STATES)},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 10_000},
                },
                answer=listing("tasks"),
                refusals={400: "a query parameter invalid (`invalid_query`)"},
            ),
        ),
        secured(
            "/v1/tasks/{task_id}/end",
            end_task,
            roles=(Role.WORKLOAD, Role.ADMIN),
            methods=("POST",),
            doc=Doc(
                "End a task: every token of it is revoked (a workload ends only its own)",
                body=obj(reason={"type": "string", "minLength": 1, "maxLength": 200}),
                body_required=False,
                refusals={404: "no such task of yours"},
            ),
        ),
        secured(
            "/v1/tasks/{task_id}",
            show_task,
            roles=READERS,
            doc=Doc("One task and its tokens (by jti)", refusals={404: "no such task"}),
        ),
    ]
