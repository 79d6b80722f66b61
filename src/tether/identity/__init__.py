"""Cryptographic workload identity: SPIFFE IDs, JWT-SVIDs, OIDC workload tokens, bindings.

A pure library (no database, no HTTP server): the token exchange and the HTTP
edge build on it. Typical use::

    trust = TrustStore()
    trust.add_spiffe_domain("example.org", bundle_json)
    workload = verify_workload_proof(token, trust, audience="tether")
    identity_id = resolve_identity(workload, bindings)

Specs: SPIFFE-ID.md (``SpiffeId``), JWT-SVID.md and SPIFFE_Trust_Domain_and_Bundle.md
(``verify_jwt_svid``, ``JwtSvidBundle``), RFC 7515/7517/7519, OpenID Connect Core
and Discovery 1.0 (``verify_oidc_token``). Refusals are
:class:`~tether.identity.errors.IdentityProofError` with a stable ``code``.
"""

from tether.identity._algorithms import DEFAULT_OIDC_ALGORITHMS, JWT_SVID_ALGORITHMS
from tether.identity._binding import WorkloadBinding, resolve_identity
from tether.identity._compact import MAX_TOKEN_BYTES, CompactJws, parse_compact
from tether.identity._fetch import (
    HttpxJwksFetcher,
    InMemoryJwksFetcher,
    JwksFetcher,
    fetchable_url_problem,
)
from tether.identity._jwks import JwkKeySet, JwtSvidBundle, PublicJwk
from tether.identity._jwt_svid import verify_jwt_svid
from tether.identity._oidc import verify_oidc_token
from tether.identity._proof import verify_workload_proof
from tether.identity._remote import CachePolicy, RemoteJwks
from tether.identity._spiffe_id import SpiffeId, TrustDomain
from tether.identity._trust import (
    DEFAULT_LEEWAY_S,
    OidcIssuer,
    SpiffeTrust,
    TokenRules,
    TrustStore,
)
from tether.identity._verified import VerifiedWorkload
from tether.identity.errors import IdentityProofError, TrustConfigInvalid, UnknownWorkload

__all__ = [
    "DEFAULT_LEEWAY_S",
    "DEFAULT_OIDC_ALGORITHMS",
    "JWT_SVID_ALGORITHMS",
    "MAX_TOKEN_BYTES",
    "CachePolicy",
    "CompactJws",
    "HttpxJwksFetcher",
    "IdentityProofError",
    "InMemoryJwksFetcher",
    "JwkKeySet",
    "JwksFetcher",
    "JwtSvidBundle",
    "OidcIssuer",
    "PublicJwk",
    "RemoteJwks",
    "SpiffeId",
    "SpiffeTrust",
    "TokenRules",
    "TrustConfigInvalid",
    "TrustDomain",
    "TrustStore",
    "UnknownWorkload",
    "VerifiedWorkload",
    "WorkloadBinding",
    "fetchable_url_problem",
    "parse_compact",
    "resolve_identity",
    "verify_jwt_svid",
    "verify_oidc_token",
    "verify_workload_proof",
]
