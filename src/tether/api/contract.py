"""What each HTTP operation takes and answers, declared beside the route itself.

Every route is declared with :func:`tether.api.routing.secured` (or ``public``) and a
:class:`Doc`: its summary, its query parameters, its body (JSON or an OAuth form), its
answer and the refusals its handler gives. ``/openapi.json``
(:func:`tether.api.openapi.openapi_document`) is built from these declarations and the
declared roles alone, so a route cannot exist without its contract. What every operation
of a kind may answer is added there, once: the edge's refusals (408, 431, 503), the
gate's (401, 403, 429) on secured routes, 400 and 413 on operations with a body, 404 on
operations with a path parameter.

Error bodies take the form of their protocol: RFC 9457 problem+json with tether's
``error_code`` (``/v1``, AuthZEN), RFC 6749 §5.2 JSON on ``/oauth2/*``, the SSF poll
errors (``err``, ``description``) on ``/ssf/poll``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Schema = Mapping[str, Any]

OBJECT: Schema = {"type": "object"}
STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
DATE_TIME: Schema = {"type": "string", "format": "date-time"}


def array(items: Schema, **more: Any) -> Schema:
    return {"type": "array", "items": items, **more}


def obj(required: tuple[str, ...] = (), **properties: Schema) -> Schema:
    """A JSON object with these properties (more are allowed: clients must ignore them)."""
    schema: dict[str, Any] = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    return schema


def listing(key: str, items: Schema = OBJECT, **more: Schema) -> Schema:
    """``{key: [items...], **more}``, the shape of tether's list answers."""
    return obj((key,), **{key: array(items)}, **more)


@dataclass(frozen=True)
class Doc:
    """The contract of one operation.

    Args:
        summary: one line a reader of the API document sees first.
        query: query parameters by name (their JSON schemas); all optional.
        headers: request headers the handler reads, by name (their JSON schemas and what
            they mean); all optional, and each one the answer carries back.
        body: the JSON request body's schema (``None``: no JSON body).
        form: an ``application/x-www-form-urlencoded`` body's schema (OAuth endpoints).
        body_required: whether the body may be left out.
        answer: the JSON success answer's schema (``None``: any JSON object).
        answer_type: the success answer's media type, or several (a ``format`` query
            parameter chooses); ``""``: an empty body.
        status: the success status.
        refusals: other statuses the handler answers, with what they mean.
        refusal_bodies: the JSON body of a refusal the handler answers in its own form
            (not problem+json), by status.
    """

    summary: str
    query: Mapping[str, Schema] = field(default_factory=dict)
    headers: Mapping[str, Schema] = field(default_factory=dict)
    body: Schema | None = None
    form: Schema | None = None
    body_required: bool = True
    answer: Schema | None = None
    answer_type: str | tuple[str, ...] = "application/json"
    status: int = 200
    refusals: Mapping[int, str] = field(default_factory=dict)
    refusal_bodies: Mapping[int, Schema] = field(default_factory=dict)
