"""SSF 1.0 transmitter configuration metadata (``GET /.well-known/ssf-configuration``).

Built from the configured issuer, never from the request's Host header. Streams are
configured by tether's administrators (``tether signals receiver ...``), so the document
advertises no ``configuration_endpoint``; the poll endpoint of a stream is
``<issuer>/ssf/poll``, given as tether's ``poll_endpoint`` extension member.
"""

from __future__ import annotations

from typing import Any

from tether.signals.events import EVENT_TYPES

SPEC_VERSION = "1_0"
PUSH_METHOD = "urn:ietf:rfc:8935"
POLL_METHOD = "urn:ietf:rfc:8936"
POLL_PATH = "/ssf/poll"


def transmitter_metadata(issuer: str) -> dict[str, Any]:
    base = issuer.rstrip("/")
    return {
        "spec_version": SPEC_VERSION,
        "issuer": base,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "delivery_methods_supported": [PUSH_METHOD, POLL_METHOD],
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
        "default_subjects": "ALL",
        "poll_endpoint": f"{base}{POLL_PATH}",
        "events_supported": list(EVENT_TYPES),
    }
