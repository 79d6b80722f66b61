"""RFC 8414 authorization server metadata (``GET /.well-known/oauth-authorization-server``).

Built from the configured issuer URL, never from the request's ``Host`` header (a client
must be able to trust that the endpoints it is sent to belong to the issuer).
"""

from __future__ import annotations

from typing import Any

from tether.tokens.access_token import SIGNING_ALGORITHMS
from tether.tokens.exchange import ACCESS_TOKEN_TYPE, GRANT_TYPE, ID_TOKEN_TYPE, JWT_TYPE


def authorization_server_metadata(issuer: str) -> dict[str, Any]:
    """The metadata document of the tether whose issuer URL is ``issuer``."""
    base = issuer.rstrip("/")
    return {
        "issuer": base,
        "token_endpoint": f"{base}/oauth2/token",
        "introspection_endpoint": f"{base}/oauth2/introspect",
        "revocation_endpoint": f"{base}/oauth2/revoke",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": [GRANT_TYPE],
        # No authorization endpoint: tasks and token exchange are the only way in.
        "response_types_supported": [],
        # The workload authenticates with its own proof, the `subject_token`.
        "token_endpoint_auth_methods_supported": ["none"],
        "token_types_supported": [JWT_TYPE, ID_TOKEN_TYPE, ACCESS_TOKEN_TYPE],
        "access_token_signing_alg_values_supported": sorted(SIGNING_ALGORITHMS),
        "tether_tasks_endpoint": f"{base}/v1/tasks",
        "tether_task_resource_prefix": "urn:tether:task:",
    }
