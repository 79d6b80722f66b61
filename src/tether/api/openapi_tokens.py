"""The OpenAPI paths of tasks and task tokens (``/v1/tasks``, ``/oauth2/*``, JWKS, RFC 8414)."""

from __future__ import annotations

from typing import Any

_JSON_OBJECT = {"application/json": {"schema": {"type": "object"}}}
_TASK_REQUEST = {
    "type": "object",
    "required": ["purpose", "intent"],
    "properties": {
        "purpose": {"type": "string"},
        "intent": {
            "type": "object",
            "required": ["actions", "resources"],
            "properties": {
                "actions": {"type": "array", "items": {"type": "string"}},
                "resources": {"type": "array", "items": {"type": "string"}},
                "data_classes": {"type": "array", "items": {"type": "string"}},
            },
        },
        "ttl": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
    },
}
_PROBLEM = {
    "description": "problem+json",
    "content": {"application/problem+json": {"schema": {"type": "object"}}},
}


def _operation(
    summary: str, request: dict[str, Any] | None, errors: dict[str, Any]
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": {"description": "answer", "content": _JSON_OBJECT}, **errors},
    }
    if request is not None:
        operation["requestBody"] = {"required": True, "content": request}
    return operation


def _form(required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "required": required, "additionalProperties": {"type": "string"}}
    return {"application/x-www-form-urlencoded": {"schema": schema}}


def token_paths() -> dict[str, Any]:
    """Path items of the task and token endpoints."""
    oauth_error = {
        "400": {"description": "RFC 6749 §5.2 error with `error_code`", "content": _JSON_OBJECT}
    }
    problems = {"400": _PROBLEM, "404": _PROBLEM}
    task = {"application/json": {"schema": _TASK_REQUEST}}
    return {
        "/v1/tasks": {
            "get": _operation("Tasks (filters: identity, status, limit)", None, problems),
            "post": _operation(
                "Open a task (Authorization: Bearer <the workload's JWT-SVID or OIDC token>)",
                task,
                problems,
            ),
        },
        "/v1/tasks/{task_id}": {
            "get": _operation("One task and its tokens (by jti)", None, problems)
        },
        "/v1/tasks/{task_id}/end": {
            "post": _operation("End a task: every token of it is revoked", None, problems)
        },
        "/oauth2/token": {
            "post": _operation(
                "RFC 8693 token exchange: a workload proof or task token for a task token",
                _form(["grant_type", "subject_token", "subject_token_type"]),
                oauth_error,
            )
        },
        "/oauth2/introspect": {
            "post": _operation("RFC 7662 introspection", _form(["token"]), oauth_error)
        },
        "/oauth2/revoke": {
            "post": _operation(
                "RFC 7009 revocation: a workload only of its own tokens, a PEP or admin of any",
                _form(["token"]),
                oauth_error,
            )
        },
        "/.well-known/jwks.json": {"get": _operation("tether's public signing keys", None, {})},
        "/.well-known/oauth-authorization-server": {
            "get": _operation("RFC 8414 authorization server metadata", None, {})
        },
    }
