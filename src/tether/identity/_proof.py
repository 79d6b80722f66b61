"""One entry point for any workload proof: a JWT-SVID or an OIDC workload token.

The *unverified* claims only choose which rules apply: a ``sub`` that is a
``spiffe://`` URI means JWT-SVID rules (JWT-SVID.md) against the SPIFFE
bundles; otherwise an ``iss`` naming a configured OIDC issuer means OIDC rules;
anything else is refused as ``issuer_unknown``. The chosen rules then verify the
token completely, so the choice grants nothing by itself.
"""

from __future__ import annotations

from datetime import datetime

from tether.identity._algorithms import JWT_SVID_ALGORITHMS
from tether.identity._checks import check_alg
from tether.identity._compact import parse_compact
from tether.identity._jwt_svid import verify_parsed_svid
from tether.identity._oidc import verify_parsed_oidc
from tether.identity._spiffe_id import SCHEME_PREFIX
from tether.identity._trust import TrustStore
from tether.identity._verified import VerifiedWorkload
from tether.identity.errors import IssuerUnknown, shown


def verify_workload_proof(
    token: str, trust: TrustStore, *, audience: str, now: datetime | None = None
) -> VerifiedWorkload:
    """Verify a JWT-SVID or OIDC workload token, whichever it is.

    Raises:
        IdentityProofError: the subclass and ``code`` name the failing check.
    """
    jws = parse_compact(token)
    check_alg(jws.header, JWT_SVID_ALGORITHMS)  # `none`, HMAC, EdDSA: refused whatever the issuer
    sub = jws.claims.get("sub")
    if isinstance(sub, str) and sub[: len(SCHEME_PREFIX)].lower() == SCHEME_PREFIX:
        return verify_parsed_svid(jws, trust, audience=audience, now=now)
    iss = jws.claims.get("iss")
    if isinstance(iss, str) and trust.oidc_issuer(iss) is not None:
        return verify_parsed_oidc(jws, trust, audience=audience, now=now)
    if "iss" not in jws.claims:
        raise IssuerUnknown("the token has no `iss` and its `sub` is not a SPIFFE ID")
    raise IssuerUnknown(f"issuer `iss` {shown(iss)} is not trusted")
