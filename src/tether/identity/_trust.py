"""Who may prove workload identity: SPIFFE trust domains and OIDC issuers.

Each SPIFFE trust domain has its own JWT-SVID bundle (a key of one domain never
verifies an SVID of another: SPIFFE-ID.md §3.1) and its own settings; by
default tether requires a ``kid`` and exactly its own audience (DESIGN
"JWT-SVID hardening beyond the spec"). Each OIDC issuer has an audience, an
``alg`` allow-list and keys that are static or fetched (``jwks_uri`` or
discovery). Configuration is replaced copy-on-write: a verification reads one
consistent entry, and a bundle rotates atomically while proofs are verified.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tether.identity._algorithms import DEFAULT_OIDC_ALGORITHMS, JWT_SVID_ALGORITHMS
from tether.identity._fetch import HttpxJwksFetcher, JwksFetcher, check_fetchable_url
from tether.identity._jwks import JwkKeySet, JwtSvidBundle
from tether.identity._remote import DISCOVERY_PATH, CachePolicy, RemoteJwks
from tether.identity._spiffe_id import SCHEME_PREFIX, TrustDomain
from tether.identity.errors import SpiffeIdInvalid, TrustConfigInvalid, shown

DEFAULT_LEEWAY_S = 30.0
_MAX_LEEWAY_S = 300.0

#: A key set already read, or a JWKS document (a mapping or its JSON text) to read.
JwksSource = JwkKeySet | Mapping[str, Any] | str | bytes


@dataclass(frozen=True)
class TokenRules:
    """Per-issuer verification settings shared by SPIFFE domains and OIDC issuers."""

    audience: str | None = None  # None: the audience the caller passes to verify
    require_kid: bool = True
    allow_multiple_audiences: bool = False
    leeway_s: float = DEFAULT_LEEWAY_S

    def __post_init__(self) -> None:
        if self.audience is not None and (not isinstance(self.audience, str) or not self.audience):
            raise TrustConfigInvalid(f"audience {shown(self.audience)} must be a non-empty string")
        if not 0 <= self.leeway_s <= _MAX_LEEWAY_S:
            raise TrustConfigInvalid(f"leeway {shown(self.leeway_s)} must be 0 to 300 seconds")


@dataclass(frozen=True, eq=False)
class SpiffeTrust:
    """One trusted SPIFFE trust domain and its JWT-SVID bundle."""

    trust_domain: TrustDomain
    bundle: JwtSvidBundle
    rules: TokenRules = TokenRules()


@dataclass(frozen=True, eq=False)
class OidcIssuer:
    """One trusted OIDC issuer: static keys or a :class:`RemoteJwks`."""

    issuer: str
    algorithms: frozenset[str] = DEFAULT_OIDC_ALGORITHMS
    rules: TokenRules = TokenRules()
    static_keys: JwkKeySet | None = None
    remote: RemoteJwks | None = None

    def keys(self, kid: str | None) -> JwkKeySet:
        """The issuer's keys; a remote set is refreshed as :class:`RemoteJwks` says.

        Raises:
            JwksUnavailable: remote keys could not be fetched.
        """
        if self.remote is not None:
            return self.remote.keys(kid)
        assert self.static_keys is not None
        return self.static_keys


def _bundle(source: JwksSource, what: str) -> JwtSvidBundle:
    if isinstance(source, JwtSvidBundle):
        return source
    if isinstance(source, JwkKeySet):
        raise TrustConfigInvalid(f"{what} needs a `JwtSvidBundle`, not a plain key set")
    return JwtSvidBundle.from_jwks(source, source=what)


def _trust_domain(value: TrustDomain | str) -> TrustDomain:
    if isinstance(value, TrustDomain):
        return value
    try:
        return TrustDomain.parse(value)
    except SpiffeIdInvalid as exc:
        raise TrustConfigInvalid(exc.message) from exc


class TrustStore:
    """The trust anchors tether verifies workload proofs against (thread-safe).

    Args:
        fetcher: fetches remote JWKS and discovery documents; by default
            :class:`HttpxJwksFetcher`, created when first needed.
        cache: TTL, unknown-kid refetch interval and stale grace for remote keys.
        clock: monotonic seconds, for the cache (tests inject a fake one).
    """

    def __init__(
        self,
        *,
        fetcher: JwksFetcher | None = None,
        cache: CachePolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._own_fetcher: HttpxJwksFetcher | None = None
        self._cache = cache or CachePolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._domains: dict[TrustDomain, SpiffeTrust] = {}
        self._issuers: dict[str, OidcIssuer] = {}

    # SPIFFE trust domains

    def add_spiffe_domain(
        self,
        trust_domain: TrustDomain | str,
        bundle: JwksSource,
        *,
        audience: str | None = None,
        require_kid: bool = True,
        allow_multiple_audiences: bool = False,
        leeway_s: float = DEFAULT_LEEWAY_S,
    ) -> SpiffeTrust:
        """Trust a SPIFFE trust domain (``example.org`` or ``spiffe://example.org``).

        Adding a domain again replaces its entry.

        Raises:
            TrustConfigInvalid: a bad trust domain name, bundle or setting.
        """
        domain = _trust_domain(trust_domain)
        entry = SpiffeTrust(
            domain,
            _bundle(bundle, f"the bundle of `{domain}`"),
            TokenRules(audience, require_kid, allow_multiple_audiences, leeway_s),
        )
        with self._lock:
            self._domains = {**self._domains, domain: entry}
        return entry

    def set_bundle(
        self,
        trust_domain: TrustDomain | str,
        bundle: JwksSource,
    ) -> SpiffeTrust:
        """Replace a trusted domain's bundle atomically (key rotation), keeping its settings.

        Raises:
            TrustConfigInvalid: the domain is not trusted, or the bundle is bad.
        """
        domain = _trust_domain(trust_domain)
        new_bundle = _bundle(bundle, f"the bundle of `{domain}`")
        with self._lock:
            current = self._domains.get(domain)
            if current is None:
                raise TrustConfigInvalid(f"trust domain `{domain}` is not trusted; add it first")
            entry = dataclasses.replace(current, bundle=new_bundle)
            self._domains = {**self._domains, domain: entry}
        return entry

    def remove_spiffe_domain(self, trust_domain: TrustDomain | str) -> None:
        """Stop trusting a trust domain (no error if it was not trusted)."""
        domain = _trust_domain(trust_domain)
        with self._lock:
            self._domains = {k: v for k, v in self._domains.items() if k != domain}

    def spiffe_domain(self, trust_domain: TrustDomain) -> SpiffeTrust | None:
        """The entry of a trusted domain, or ``None``."""
        return self._domains.get(trust_domain)

    @property
    def spiffe_domains(self) -> tuple[SpiffeTrust, ...]:
        return tuple(self._domains.values())

    # OIDC issuers

    def add_oidc_issuer(
        self,
        issuer: str,
        *,
        jwks: JwksSource | None = None,
        jwks_uri: str | None = None,
        discovery: bool = False,
        discovery_url: str | None = None,
        audience: str | None = None,
        algorithms: Iterable[str] = DEFAULT_OIDC_ALGORITHMS,
        require_kid: bool = True,
        allow_multiple_audiences: bool = False,
        leeway_s: float = DEFAULT_LEEWAY_S,
    ) -> OidcIssuer:
        """Trust an OIDC issuer whose keys are ``jwks`` (static), at ``jwks_uri``, or
        found by discovery (``discovery=True`` for ``<issuer>/.well-known/openid-configuration``,
        or an explicit ``discovery_url``). Adding an issuer again replaces its entry.

        Raises:
            TrustConfigInvalid: no or several key sources, a bad URL, algorithm or setting.
        """
        if not isinstance(issuer, str) or not issuer.strip() or issuer != issuer.strip():
            raise TrustConfigInvalid(f"issuer {shown(issuer)} must be a non-empty string")
        if issuer.lower().startswith(SCHEME_PREFIX):
            raise TrustConfigInvalid(
                f"issuer {shown(issuer)} is a SPIFFE ID; trust it as a SPIFFE trust domain"
            )
        if discovery and discovery_url is None:
            discovery_url = issuer.rstrip("/") + DISCOVERY_PATH
        sources = [s for s in (jwks, jwks_uri, discovery_url) if s is not None]
        if len(sources) != 1:
            raise TrustConfigInvalid(
                f"issuer {shown(issuer)} needs exactly one of `jwks`, `jwks_uri`, discovery"
            )
        allowed = frozenset(algorithms)
        if not allowed or not allowed <= JWT_SVID_ALGORITHMS:
            bad = sorted(allowed - JWT_SVID_ALGORITHMS) or ["(none)"]
            raise TrustConfigInvalid(
                f"issuer {shown(issuer)} allows {shown(', '.join(bad))}; "
                f"only {', '.join(sorted(JWT_SVID_ALGORITHMS))} can be allowed"
            )
        rules = TokenRules(audience, require_kid, allow_multiple_audiences, leeway_s)
        entry = OidcIssuer(
            issuer, allowed, rules, *self._key_source(issuer, jwks, jwks_uri, discovery_url)
        )
        with self._lock:
            self._issuers = {**self._issuers, issuer: entry}
        return entry

    def _key_source(
        self,
        issuer: str,
        jwks: JwksSource | None,
        jwks_uri: str | None,
        discovery_url: str | None,
    ) -> tuple[JwkKeySet | None, RemoteJwks | None]:
        if jwks is not None:
            if isinstance(jwks, JwkKeySet):
                return jwks, None
            return JwkKeySet.from_jwks(jwks, source=f"the JWKS of {shown(issuer)}"), None
        url = jwks_uri or discovery_url
        assert url is not None
        check_fetchable_url(url, "the JWKS URL" if jwks_uri else "the discovery URL")
        remote = RemoteJwks(
            issuer,
            self._fetcher_or_default(),
            jwks_uri=jwks_uri,
            discovery_url=discovery_url,
            policy=self._cache,
            clock=self._clock,
        )
        return None, remote

    def _fetcher_or_default(self) -> JwksFetcher:
        with self._lock:
            if self._fetcher is None:
                self._own_fetcher = HttpxJwksFetcher()
                self._fetcher = self._own_fetcher
            return self._fetcher

    def close(self) -> None:
        """Close the HTTP client the store made for itself (a given fetcher is the caller's)."""
        with self._lock:
            if self._own_fetcher is not None:
                self._own_fetcher.close()
                self._own_fetcher = None
                self._fetcher = None

    def set_oidc_jwks(self, issuer: str, jwks: JwksSource) -> OidcIssuer:
        """Replace the static keys of a trusted issuer atomically.

        Raises:
            TrustConfigInvalid: the issuer is not trusted, or the JWKS is bad.
        """
        keys = jwks if isinstance(jwks, JwkKeySet) else JwkKeySet.from_jwks(jwks)
        with self._lock:
            current = self._issuers.get(issuer)
            if current is None:
                raise TrustConfigInvalid(f"issuer {shown(issuer)} is not trusted; add it first")
            entry = dataclasses.replace(current, static_keys=keys, remote=None)
            self._issuers = {**self._issuers, issuer: entry}
        return entry

    def remove_oidc_issuer(self, issuer: str) -> None:
        """Stop trusting an issuer (no error if it was not trusted)."""
        with self._lock:
            self._issuers = {k: v for k, v in self._issuers.items() if k != issuer}

    def oidc_issuer(self, issuer: str) -> OidcIssuer | None:
        """The entry of a trusted issuer (exact string match), or ``None``."""
        return self._issuers.get(issuer)

    @property
    def oidc_issuers(self) -> tuple[OidcIssuer, ...]:
        return tuple(self._issuers.values())
