"""The OpenAPI 3.1 document served at ``/openapi.json``, built from the routes' own
declarations (:data:`~tether.api.routing.ROUTE_ROLES`, :data:`~tether.api.routing.ROUTE_DOCS`):
there is no other copy to keep in step.

Per operation it states the path parameters (from the route's template), the query
parameters and body the route declares, its answers with their media types and the
refusals every operation of its kind may give (see :mod:`tether.api.contract`), the
security schemes its roles authenticate with, and the roles themselves
(``x-tether-roles``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tether.api.contract import OBJECT, STRING, Doc, Schema, obj
from tether.api.routing import ROUTE_DOCS, ROUTE_ROLES
from tether.callers import Role

PROBLEM_JSON = "application/problem+json"
_PROBLEM = obj(
    ("type", "title", "status", "detail", "error_code"),
    type=STRING,
    title=STRING,
    status={"type": "integer"},
    detail=STRING,
    error_code=STRING,
)
# RFC 6749 §5.2 (OAuth endpoints) and RFC 8936 §2.4 (SSF poll) error bodies.
_OAUTH_ERROR = obj(
    ("error", "error_code"), error=STRING, error_description=STRING, error_code=STRING
)
_SSF_ERROR = obj(("err", "error_code"), err=STRING, description=STRING, error_code=STRING)

# How callers authenticate (README "Who may call tether"), by the roles they hold.
SECURITY_SCHEMES: dict[str, Schema] = {
    "pep_key": {
        "type": "http",
        "scheme": "bearer",
        "description": "a PEP API key `tpk_<key id>_<secret>` (also accepted without `Bearer`)",
    },
    "workload_proof": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "the workload's JWT-SVID or OIDC workload token",
    },
    "admin_token": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "an admin token (`tether admin token`) or a person's OIDC token",
    },
    "mtls": {"type": "mutualTLS", "description": "an X.509-SVID (with `--client-ca`)"},
}
_SCHEMES_OF = {
    # A PEP or ingest source may also be a workload proving itself (its identity's roles).
    Role.PEP: ("pep_key", "workload_proof", "mtls"),
    Role.INGEST: ("pep_key", "workload_proof", "mtls"),
    Role.WORKLOAD: ("workload_proof", "mtls"),
    Role.ADMIN: ("admin_token",),
    Role.AUDITOR: ("admin_token",),
    Role.APPROVER: ("admin_token",),
}

# What any operation may answer before its handler runs (tether.api.server, the gate).
_EDGE = {
    408: "request line and headers not received within TETHER_HEADER_TIMEOUT_S (`request_timeout`)",
    431: "request line and headers over TETHER_MAX_HEADER_BYTES (`request_headers_too_large`)",
    503: "too many open connections, in all (TETHER_MAX_CONNECTIONS) or from the client's "
    "address (TETHER_MAX_CONNECTIONS_PER_ADDRESS) (`too_many_connections`), or more requests "
    "at once than TETHER_MAX_CONCURRENCY",
}
_GATE = {
    401: "no credentials, or credentials that do not verify (`WWW-Authenticate: Bearer`)",
    403: "the caller holds none of the operation's roles (`role_forbidden`)",
    429: "the caller's rate limit (`Retry-After`)",
}
_BODY = {
    400: "the body is not what the operation takes (malformed, wrong media type, invalid)",
    413: "the body is over the operation's size bound (`payload_too_large`)",
}
_PATH_PARAMETER = {404: "nothing by that id"}
_METHOD = {405: "a method the path does not take (`Allow` lists those it does)"}

_PARAMETER = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-z]+))?\}")


def _media(value: str) -> str:
    return value.split(";", 1)[0].strip()


def _error_content(path: str) -> dict[str, Any]:
    content: dict[str, Any] = {PROBLEM_JSON: {"schema": _PROBLEM}}
    if path.startswith("/oauth2/"):
        content["application/json"] = {"schema": _OAUTH_ERROR}
    elif path.startswith("/ssf/"):
        content["application/json"] = {"schema": _SSF_ERROR}
    return content


def _success(doc: Doc) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": "the answer"}
    types = (doc.answer_type,) if isinstance(doc.answer_type, str) else doc.answer_type
    content = {
        _media(kind): {"schema": doc.answer or OBJECT} if _media(kind).endswith("json") else {}
        for kind in types
        if kind
    }
    if content:
        answer["content"] = content
    return answer


def _parameters(template: str, doc: Doc) -> list[dict[str, Any]]:
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            # `{name:path}` takes `/` too; any other segment does not.
            "schema": {"type": "string", "minLength": 1}
            if converter == "path"
            else {"type": "string", "pattern": "^[^/]+$", "minLength": 1},
        }
        for name, converter in _PARAMETER.findall(template)
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in doc.query.items()
    ]
    parameters += [
        {"name": name, "in": "header", "required": False, "schema": schema}
        for name, schema in doc.headers.items()
    ]
    return parameters


def _security(roles: Iterable[Role]) -> list[dict[str, list[str]]]:
    names = sorted({scheme for role in roles for scheme in _SCHEMES_OF[role]})
    return [{name: []} for name in names]


def _operation(method: str, template: str, roles: frozenset[Role], doc: Doc) -> dict[str, Any]:
    path = _PARAMETER.sub(r"{\1}", template)
    refusals: dict[int, str] = {**_EDGE, **_METHOD}
    if roles:
        refusals.update(_GATE)
    if doc.body is not None or doc.form is not None:
        refusals.update(_BODY)
    if _PARAMETER.search(template):
        refusals.update(_PATH_PARAMETER)
    if doc.query:
        refusals.setdefault(400, "a query parameter out of range or invalid")
    for status, meaning in doc.refusals.items():  # the route's own, beside the edge's
        refusals[status] = f"{refusals[status]}; or {meaning}" if status in refusals else meaning
    responses: dict[str, Any] = {str(doc.status): _success(doc)}
    if doc.headers:  # read from the request, carried back on every answer
        echoed = {name: {"schema": schema} for name, schema in doc.headers.items()}
        for answer in responses.values():
            answer["headers"] = echoed
    content = _error_content(path)
    for status in sorted(refusals):
        own = doc.refusal_bodies.get(status)
        answers = content if own is None else {**content, "application/json": {"schema": own}}
        responses[str(status)] = {"description": refusals[status], "content": answers}
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
        "summary": doc.summary,
        "responses": responses,
        "security": _security(roles),
        "x-tether-roles": sorted(role.value for role in roles),
    }
    parameters = _parameters(template, doc)
    if parameters:
        operation["parameters"] = parameters
    if doc.body is not None:
        operation["requestBody"] = {
            "required": doc.body_required,
            "content": {"application/json": {"schema": doc.body}},
        }
    elif doc.form is not None:
        operation["requestBody"] = {
            "required": doc.body_required,
            "content": {"application/x-www-form-urlencoded": {"schema": doc.form}},
        }
    return operation


def openapi_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for (method, template), roles in sorted(ROUTE_ROLES.items()):
        path = _PARAMETER.sub(r"{\1}", template)
        doc = ROUTE_DOCS[(method, template)]
        paths.setdefault(path, {})[method.lower()] = _operation(method, template, roles, doc)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tether",
            "version": "0.1.0",
            "description": "Runtime governance for non-human identities. Errors are RFC 9457 "
            "problem+json with tether's `error_code` (RFC 6749 JSON on `/oauth2/*`, RFC 8936 "
            "on `/ssf/poll`).",
        },
        "components": {"securitySchemes": SECURITY_SCHEMES},
        "paths": paths,
    }
