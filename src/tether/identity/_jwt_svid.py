"""JWT-SVID verification, following JWT-SVID.md (Appendix A) and tether's hardening.

In order, each failure with its own code:

1. size, compact serialization only, well-formed (``_compact``);
2. header: ``alg`` one of JWT-SVID.md §2.1 (before any key lookup), no member
   but ``alg``/``kid``/``typ`` (§2), ``typ`` absent or ``JWT``/``JOSE`` (§2.3);
3. ``sub`` a valid SPIFFE ID (§3.1) of a trusted trust domain;
4. the key: by ``kid`` from *that* domain's bundle only, ``kid`` required unless
   the domain allows otherwise, ``use`` ``jwt-svid`` (§6.2), a declared JWK
   ``alg`` equal to the header's;
5. the signature (RFC 7519 §7.2);
6. ``exp`` required and not past, ``nbf``/``iat`` not in the future (with
   leeway), ``aud`` required and holding tether's audience alone (§3.2, §7.2,
   several audiences only where the domain allows them).
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
from tether.identity._spiffe_id import SpiffeId
from tether.identity._trust import TrustStore
from tether.identity._verified import VerifiedWorkload
from tether.identity.errors import TrustDomainUnknown

JWT_SVID_HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})


def verify_jwt_svid(
    token: str, trust: TrustStore, *, audience: str, now: datetime | None = None
) -> VerifiedWorkload:
    """Verify a JWT-SVID against the trust store's SPIFFE bundles.

    Args:
        token: the compact JWT-SVID (without ``Bearer``).
        trust: trusted SPIFFE trust domains.
        audience: tether's audience; a trust domain's own ``audience`` setting wins.
        now: the time to check against (timezone-aware), by default the current time.

    Raises:
        IdentityProofError: the subclass and ``code`` name the failing check.
    """
    return verify_parsed_svid(parse_compact(token), trust, audience=audience, now=now)


def verify_parsed_svid(
    jws: CompactJws, trust: TrustStore, *, audience: str, now: datetime | None
) -> VerifiedWorkload:
    """:func:`verify_jwt_svid` for a token ``_compact`` has already parsed."""
    current = now_seconds(now)
    alg, kid = check_header(
        jws.header, members=JWT_SVID_HEADER_MEMBERS, algorithms=JWT_SVID_ALGORITHMS
    )
    spiffe_id = SpiffeId.parse(string_claim(jws.claims, "sub"))
    domain = trust.spiffe_domain(spiffe_id.trust_domain)
    if domain is None:
        raise TrustDomainUnknown(
            f"trust domain `{spiffe_id.trust_domain}` of `sub` `{spiffe_id}` is not trusted"
        )
    owner = f"trust domain `{domain.trust_domain}`"
    candidates = select_keys(domain.bundle, kid=kid, alg=alg, rules=domain.rules, owner=owner)
    key = verify_signature(jws, alg, candidates, owner=owner)
    expires_at = check_times(jws.claims, now=current, leeway_s=domain.rules.leeway_s)
    accepted = check_audience(
        jws.claims, audience=domain.rules.audience or audience, rules=domain.rules
    )
    return VerifiedWorkload(
        kind="spiffe",
        spiffe_id=spiffe_id,
        issuer=str(domain.trust_domain.id),
        subject=str(spiffe_id),
        audience=accepted,
        expires_at=expires_at,
        kid=key.kid,
        alg=alg,
        claims=frozen_claims(jws.claims),
        token_id=token_id(jws),
    )
