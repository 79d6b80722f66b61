"""RFC 7662 token introspection (``POST /oauth2/introspect``): is this task token active?

An active token answers its claims (``scope``, ``client_id``, ``sub``, ``aud``, ``iss``,
``exp``, ``iat``, ``jti``, ``token_type``, ``txn`` and ``act``) plus tether's ``task``
(id, purpose, intent, end) and ``delegation_depth``. Any token that is not active, for
whatever reason, answers ``{"active": false}``; tether adds its ``error_code`` (DESIGN
"Errors by protocol": the code travels in every form), which names the reason and
nothing else. Revocation is effective at once: introspection reads the revocation state
like a decision does.
"""

from __future__ import annotations

from typing import Any

from tether.tokens.access_token import nest_actors
from tether.tokens.authority import TaskAuthority


def introspect(authority: TaskAuthority, token: object) -> dict[str, Any]:
    """The RFC 7662 §2.2 answer for ``token``."""
    inspection = authority.inspect(token)
    if inspection.error is not None or inspection.verified is None:
        code = inspection.error.code if inspection.error is not None else "token_rejected"
        return {"active": False, "error_code": code}
    claims, task = inspection.verified.claims, inspection.verified.task
    answer: dict[str, Any] = {
        "active": True,
        "scope": " ".join(claims.scope),
        "client_id": claims.subject,
        "token_type": "Bearer",
        "exp": claims.expires_at,
        "iat": claims.issued_at,
        "sub": claims.subject,
        "aud": claims.audience,
        "iss": claims.issuer,
        "jti": claims.jti,
        "txn": claims.task_id,
        "delegation_depth": claims.depth,
        "task": {
            "id": task.id,
            "identity_kind": task.identity_kind,
            "purpose": task.purpose,
            "intent": task.intent.to_json(),
            "expires_at": task.expires_at.isoformat(),
        },
    }
    act = nest_actors(claims.actors)
    if act is not None:
        answer["act"] = act
    return answer
