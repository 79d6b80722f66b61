"""The binding of an approval to exactly one request (DESIGN "Outcomes").

An approval is bound to the SHA-256 of the canonical JSON (sorted keys, compact, UTF-8) of the
request's subject, action and resource (each with the properties the PEP asserted) and
its context without the volatile keys ``approval_id``, ``time`` and ``request_id``: a
retry that differs in anything else is another request and does not match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from tether.approvals.errors import ApprovalRequestInvalid
from tether.policy import DecisionRequest

#: Context keys that change between a request and its retry without changing what is asked.
VOLATILE_CONTEXT_KEYS = frozenset({"approval_id", "time", "request_id"})


def bound_request(request: DecisionRequest) -> dict[str, Any]:
    """The part of ``request`` an approval is bound to, as JSON."""
    return {
        "subject": {
            "type": request.subject.type,
            "id": request.subject.id,
            "properties": dict(request.subject_properties),
        },
        "action": {"name": request.action, "properties": dict(request.action_properties)},
        "resource": {
            "type": request.resource.type,
            "id": request.resource.id,
            "properties": dict(request.resource_properties),
        },
        "context": stable_context(request.context),
    }


def stable_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """``context`` without its volatile keys."""
    return {k: v for k, v in context.items() if k not in VOLATILE_CONTEXT_KEYS}


def binding_hash(request: DecisionRequest) -> str:
    """Hex SHA-256 of the canonical JSON of :func:`bound_request`."""
    try:
        # The standard library, not orjson: integers of any size, as `json.loads` makes them.
        canonical = json.dumps(
            bound_request(request),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:  # only from Python: HTTP and CLI bodies are JSON
        raise ApprovalRequestInvalid(f"the request cannot be bound to an approval: {exc}") from None
    return hashlib.sha256(canonical.encode()).hexdigest()
