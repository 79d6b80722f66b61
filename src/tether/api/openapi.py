"""The OpenAPI 3.1 document served at ``/openapi.json``."""

from __future__ import annotations

import re
from typing import Any

from tether.api.openapi_tokens import token_paths
from tether.api.routing import ROUTE_ROLES

_ENTITY = {
    "type": "object",
    "required": ["type", "id"],
    "properties": {
        "type": {"type": "string"},
        "id": {"type": "string"},
        "properties": {"type": "object"},
    },
}
_ACTION = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "properties": {"type": "object"}},
}
_EVALUATION = {
    "type": "object",
    "required": ["subject", "action", "resource"],
    "properties": {
        "subject": _ENTITY,
        "action": _ACTION,
        "resource": _ENTITY,
        "context": {"type": "object"},
    },
}
_DECISION = {
    "type": "object",
    "required": ["decision"],
    "properties": {"decision": {"type": "boolean"}, "context": {"type": "object"}},
}
_PROBLEM = {
    "description": "problem+json",
    "content": {"application/problem+json": {"schema": {"type": "object"}}},
}


def _post(summary: str, request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": {
                "200": {
                    "description": "answer",
                    "content": {"application/json": {"schema": response}},
                },
                "400": _PROBLEM,
                "413": _PROBLEM,
            },
        }
    }


def _get(summary: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {"200": {"description": "ok"}}}}


# The gateway-support routes (tether.api.tools).
_TOOL_MAPPING = {
    "type": "object",
    "properties": {
        "resource_argument": {"type": ["string", "null"]},
        "resource_type": {"type": ["string", "null"]},
        "destinations": {"type": "object", "additionalProperties": {"type": "string"}},
        "data_class": {"type": ["string", "null"]},
    },
}
_TOOL_NAMES = {"type": "array", "maxItems": 1000, "items": {"type": "string", "minLength": 1}}
_TOOL_PATHS = {
    "/v1/tools": {
        "get": {
            "summary": "The estate's tool mappings (`tools:`) for MCP gateways",
            "responses": {
                "200": {
                    "description": "mappings by tool name",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "estate_revision": {"type": ["integer", "null"]},
                                    "tools": {
                                        "type": "object",
                                        "additionalProperties": _TOOL_MAPPING,
                                    },
                                },
                            }
                        }
                    },
                }
            },
        }
    },
    "/v1/tools/callable": _post(
        "The tools among `tools` the task token's holder may call (`tools/list`); an "
        "invalid token may call none. Nothing is recorded. 400 `tools_request_invalid`",
        {
            "type": "object",
            "required": ["token", "tools"],
            "properties": {"token": {"type": "string", "minLength": 1}, "tools": _TOOL_NAMES},
        },
        {"type": "object", "required": ["tools"], "properties": {"tools": _TOOL_NAMES}},
    ),
}


# How callers authenticate (see README "Who may call tether"); public routes override it.
_SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "a PEP API key (`tpk_…`, also accepted without `Bearer`), a JWT-SVID, "
        "an OIDC token or an admin token",
    },
    "mtls": {"type": "mutualTLS", "description": "an X.509-SVID (with `--client-ca`)"},
}
_PUBLIC = ("/healthz", "/readyz", "/openapi.json")


def _answer(text: str) -> dict[str, Any]:
    return {**_PROBLEM, "description": text}


# What the server's connection handling answers on any route, before the app reads the
# request (tether.api.server): each is sent, then the connection is closed.
_EDGE = {
    "408": _answer(
        "request line and headers not received within TETHER_HEADER_TIMEOUT_S (`request_timeout`)"
    ),
    "431": _answer(
        "request line and headers over TETHER_MAX_HEADER_BYTES (`request_headers_too_large`)"
    ),
    "503": _answer(
        "too many open connections, in all (TETHER_MAX_CONNECTIONS) or from the client's "
        "address (TETHER_MAX_CONNECTIONS_PER_ADDRESS) (`too_many_connections`); or more "
        "requests at once than TETHER_MAX_CONCURRENCY; on /readyz: not ready"
    ),
}


def _secure(paths: dict[str, Any]) -> dict[str, Any]:
    """Refusals every operation may answer (at the edge) and every secured one (its
    caller); no security on the public ones."""
    for path, operations in paths.items():
        for operation in operations.values():
            operation.setdefault("responses", {}).update(_EDGE)
            if path in _PUBLIC or path.startswith("/.well-known/"):
                operation["security"] = []
                continue
            operation.setdefault("responses", {}).update(
                {"401": _PROBLEM, "403": _PROBLEM, "429": _PROBLEM}
            )
    return paths


_CONVERTER = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*):[a-z]+\}")


def _declared(paths: dict[str, Any]) -> dict[str, Any]:
    """Every declared route is in the document with the roles that may call it
    (``x-tether-roles``); a route without a hand-written entry gets a minimal one."""
    for (method, template), roles in sorted(ROUTE_ROLES.items()):
        path = _CONVERTER.sub(r"{\1}", template)
        minimal = {"summary": f"{method} {path}", "responses": {"200": {"description": "ok"}}}
        operation = paths.setdefault(path, {}).setdefault(method.lower(), minimal)
        operation["x-tether-roles"] = sorted(role.value for role in roles)
    return paths


def openapi_document() -> dict[str, Any]:
    search = {
        "type": "object",
        "properties": {"results": {"type": "array"}, "page": {"type": "object"}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "tether", "version": "0.1.0"},
        "components": {"securitySchemes": _SECURITY_SCHEMES},
        "security": [{"bearer": []}, {"mtls": []}],
        "paths": _secure(
            _declared(
                {
                    "/access/v1/evaluation": _post(
                        "AuthZEN Access Evaluation", _EVALUATION, _DECISION
                    ),
                    "/access/v1/evaluations": _post(
                        "AuthZEN Access Evaluations (batch)",
                        {"type": "object", "properties": {"evaluations": {"type": "array"}}},
                        {"type": "object"},
                    ),
                    "/access/v1/search/subject": _post(
                        "AuthZEN Subject Search", {"type": "object"}, search
                    ),
                    "/access/v1/search/resource": _post(
                        "AuthZEN Resource Search", {"type": "object"}, search
                    ),
                    "/access/v1/search/action": _post(
                        "AuthZEN Action Search", {"type": "object"}, search
                    ),
                    "/.well-known/authzen-configuration": _get("AuthZEN PDP metadata"),
                    "/v1/identities": _get("Identity inventory"),
                    "/v1/identities/{identity_id}": _get("One identity with its entitlements"),
                    "/v1/decisions": _get(
                        "Recent decisions (filters: subject, action, outcome, since, caller, "
                        "limit); a PEP reads only the decisions it asked for"
                    ),
                    "/healthz": _get("Liveness"),
                    "/readyz": _get(
                        "Readiness (store reachable, decisions recorded); details for auditors"
                    ),
                    "/metrics": _get("Prometheus metrics"),
                    **token_paths(),
                    **_TOOL_PATHS,
                }
            )
        ),
    }
