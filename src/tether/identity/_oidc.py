"""OIDC workload token verification (OpenID Connect Core 1.0 §3.1.3.7, RFC 7519 §7.2).

For tokens such as GitHub Actions, Kubernetes service-account and cloud IdP
workload tokens. In order:

1. size, compact serialization only, well-formed (``_compact``);
2. header: ``alg`` asymmetric (RS/PS/ES, before any key lookup), members
   limited to ``alg``, ``kid``, ``typ`` and the informational ``x5t`` and
   ``x5t#S256`` (never ``jku``, ``jwk``, ``x5u``, ``x5c``, ``crit``...),
   ``typ`` absent or ``JWT``/``JOSE``;
3. ``iss`` a configured issuer (exact match), ``alg`` on that issuer's list;
4. the key by ``kid`` from that issuer's JWKS (refetched once, rate limited,
   for an unknown kid);
5. the signature;
6. ``sub`` present, ``exp`` required and not past, ``nbf``/``iat`` not in the
   future (with leeway), ``aud`` holding the issuer's (or tether's) audience.
"""

from __future__ import annotations

from datetime import datetime

from tether.identity._algorithms import JWT_SVID_ALGORITHMS
from tether.identity._checks import (
    check_audience,
    check_header,
    check_times,
    frozen_claims,
    now_seconds,
    select_keys,
    string_claim,
    token_id,
    verify_signature,
)
from tether.identity._compact import CompactJws, parse_compact
from tether.identity._trust import TrustStore
from tether.identity._verified import VerifiedWorkload
from tether.identity.errors import AlgNotAllowed, IssuerUnknown, KidMissing, shown

OIDC_HEADER_MEMBERS = frozenset({"alg", "kid", "typ", "x5t", "x5t#S256"})


def verify_oidc_token(
    token: str, trust: TrustStore, *, audience: str, now: datetime | None = None
) -> VerifiedWorkload:
    """Verify an OIDC workload token against the trust store's issuers.

    Args:
        token: the compact JWT (without ``Bearer``).
        trust: trusted OIDC issuers.
        audience: tether's audience; an issuer's own ``audience`` setting wins.
        now: the time to check against (timezone-aware), by default the current time.

    Raises:
        IdentityProofError: the subclass and ``code`` name the failing check.
    """
    return verify_parsed_oidc(parse_compact(token), trust, audience=audience, now=now)


def verify_parsed_oidc(
    jws: CompactJws, trust: TrustStore, *, audience: str, now: datetime | None
) -> VerifiedWorkload:
    """:func:`verify_oidc_token` for a token ``_compact`` has already parsed."""
    current = now_seconds(now)
    alg, kid = check_header(jws.header, members=OIDC_HEADER_MEMBERS, algorithms=JWT_SVID_ALGORITHMS)
    iss = string_claim(jws.claims, "iss")
    issuer = trust.oidc_issuer(iss)
    if issuer is None:
        raise IssuerUnknown(f"issuer `iss` {shown(iss)} is not trusted")
    if alg not in issuer.algorithms:
        raise AlgNotAllowed(
            f"`alg` {shown(alg)} is not allowed for issuer {shown(iss)}; "
            f"use one of {', '.join(sorted(issuer.algorithms))}"
        )
    owner = f"issuer {shown(iss)}"
    if kid is None and issuer.rules.require_kid:
        raise KidMissing(f"the header has no `kid`, which {owner} requires")
    keys = issuer.keys(kid)
    candidates = select_keys(keys, kid=kid, alg=alg, rules=issuer.rules, owner=owner)
    key = verify_signature(jws, alg, candidates, owner=owner)
    subject = string_claim(jws.claims, "sub")
    expires_at = check_times(jws.claims, now=current, leeway_s=issuer.rules.leeway_s)
    accepted = check_audience(
        jws.claims, audience=issuer.rules.audience or audience, rules=issuer.rules
    )
    return VerifiedWorkload(
        kind="oidc",
        spiffe_id=None,
        issuer=iss,
        subject=subject,
        audience=accepted,
        expires_at=expires_at,
        kid=key.kid,
        alg=alg,
        claims=frozen_claims(jws.claims),
        token_id=token_id(jws),
    )
