"""SPIFFE ID syntax checks (SPIFFE-ID.md §2: trust domain, path, maximum length).

Only the syntax the estate needs to accept or refuse a ``workload:`` or ``trust:`` entry;
proving an identity is the work of ``tether.identity``.
"""

from __future__ import annotations

import re

MAX_ID_BYTES = 2048
MAX_TRUST_DOMAIN_BYTES = 255
_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]+$")
_SEGMENT = re.compile(r"^[a-zA-Z0-9._-]+$")
_SCHEME = "spiffe://"


def spiffe_id_problem(value: str, *, trust_domain_only: bool = False) -> str | None:
    """Why ``value`` is not a valid SPIFFE ID (or trust domain ID), or ``None`` when it is.

    With ``trust_domain_only`` the ID must have no path (``spiffe://example.org``).
    """
    if len(value.encode()) > MAX_ID_BYTES:
        return f"a SPIFFE ID is at most {MAX_ID_BYTES} bytes"
    if not value.startswith(_SCHEME):
        return "a SPIFFE ID starts with `spiffe://` (lowercase)"
    rest = value[len(_SCHEME) :]
    if "?" in rest or "#" in rest:
        return "a SPIFFE ID has no query or fragment"
    if "%" in rest:
        return "a SPIFFE ID has no percent-encoded characters"
    trust_domain, slash, path = rest.partition("/")
    if not trust_domain:
        return "a SPIFFE ID needs a trust domain"
    if "@" in trust_domain:
        return "a SPIFFE trust domain has no user info"
    if ":" in trust_domain:
        return "a SPIFFE trust domain has no port"
    if len(trust_domain.encode()) > MAX_TRUST_DOMAIN_BYTES:
        return f"a SPIFFE trust domain is at most {MAX_TRUST_DOMAIN_BYTES} bytes"
    if not _TRUST_DOMAIN.match(trust_domain):
        return (
            f"trust domain `{trust_domain}` may only hold lowercase letters, digits, "
            "`.`, `-` and `_`"
        )
    if trust_domain_only:
        return "a trust domain ID has no path" if slash else None
    if not slash:
        return None
    if not path:
        return "a SPIFFE ID path has no trailing `/`"
    for segment in path.split("/"):
        if not segment:
            return "a SPIFFE ID path has no empty segments or trailing `/`"
        if segment in (".", ".."):
            return "a SPIFFE ID path has no `.` or `..` segments"
        if not _SEGMENT.match(segment):
            return f"path segment `{segment}` may only hold letters, digits, `.`, `-` and `_`"
    return None
