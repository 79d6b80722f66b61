"""An OIDC issuer's keys fetched from its ``jwks_uri`` or via OpenID Connect Discovery 1.0.

Keys are cached for ``ttl_s``. A token whose ``kid`` is not in the cache (the
issuer rotated) triggers one refetch, but never more often than every
``min_refetch_interval_s``: a flood of tokens with made-up kids costs the
issuer at most one request per interval. When a refresh fails, the previous
keys keep serving for up to ``max_stale_s`` past their TTL (an issuer outage
should not lock every workload out at once), and then proofs are refused with
``jwks_unavailable``.

Discovery (OpenID Connect Discovery 1.0 §4) fetches
``<issuer>/.well-known/openid-configuration``, requires its ``issuer`` to equal
the configured issuer exactly (§4.3) and takes ``jwks_uri`` from it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tether.identity._fetch import JwksFetcher, fetchable_url_problem
from tether.identity._jwks import JwkKeySet
from tether.identity.errors import JwksUnavailable, TrustConfigInvalid, shown

DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class CachePolicy:
    """How long fetched keys are trusted, and how often an unknown kid may refetch."""

    ttl_s: float = 300.0
    min_refetch_interval_s: float = 30.0
    max_stale_s: float = 3600.0


class RemoteJwks:
    """The cached key set of one issuer, refreshed through a :class:`JwksFetcher`."""

    def __init__(
        self,
        issuer: str,
        fetcher: JwksFetcher,
        *,
        jwks_uri: str | None = None,
        discovery_url: str | None = None,
        policy: CachePolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (jwks_uri is None) == (discovery_url is None):
            raise TrustConfigInvalid("a remote key set needs exactly one of a JWKS URL, discovery")
        self.issuer = issuer
        self.jwks_uri = jwks_uri
        self.discovery_url = discovery_url
        self.policy = policy or CachePolicy()
        self._fetcher = fetcher
        self._clock = clock
        self._lock = threading.Lock()
        # (keys, monotonic time of their fetch), swapped as one value so readers need no lock
        self._cache: tuple[JwkKeySet, float] | None = None
        self._attempted_at = float("-inf")  # last fetch attempt, successful or not
        self.last_error: str | None = None

    def keys(self, kid: str | None = None) -> JwkKeySet:
        """The issuer's keys, fresh within the TTL; refetched once for an unknown ``kid``.

        Raises:
            JwksUnavailable: no usable keys could be had.
        """
        cache = self._cache
        if cache is not None and self._clock() - cache[1] < self.policy.ttl_s:
            keys = cache[0]
            if kid is None or kid in keys or kid in keys.refused:
                return keys
        return self._refresh(kid)

    def _refresh(self, kid: str | None) -> JwkKeySet:
        with self._lock:
            now = self._clock()
            cache = self._cache
            age = now - cache[1] if cache is not None else float("inf")
            # Another thread may have refreshed while this one waited for the lock.
            if (
                cache is not None
                and age < self.policy.ttl_s
                and (kid is None or kid in cache[0] or kid in cache[0].refused)
            ):
                return cache[0]
            usable = (
                cache[0] if cache and age < self.policy.ttl_s + self.policy.max_stale_s else None
            )
            if now - self._attempted_at < self.policy.min_refetch_interval_s:
                # Rate limited: an unknown kid is reported as unknown, not fetched for.
                if usable is not None:
                    return usable
                raise JwksUnavailable(self.last_error or f"no keys for issuer {shown(self.issuer)}")
            self._attempted_at = now
            try:
                keys = self._fetch()
            except JwksUnavailable as exc:
                self.last_error = exc.message
                if usable is not None:
                    return usable
                raise
            self._cache, self.last_error = (keys, now), None
            return keys

    def _fetch(self) -> JwkKeySet:
        jwks_uri = self.jwks_uri or self._discover()
        document = self._fetcher.get_json(jwks_uri)
        if not isinstance(document, dict):
            raise JwksUnavailable(f"{shown(jwks_uri)} did not answer a JWKS object")
        try:
            return JwkKeySet.from_jwks(document, source=f"the JWKS at {shown(jwks_uri)}")
        except TrustConfigInvalid as exc:
            raise JwksUnavailable(exc.message) from exc

    def _discover(self) -> str:
        assert self.discovery_url is not None
        metadata = self._fetcher.get_json(self.discovery_url)
        if not isinstance(metadata, dict):
            raise JwksUnavailable(f"{shown(self.discovery_url)} did not answer a JSON object")
        if metadata.get("issuer") != self.issuer:
            raise JwksUnavailable(
                f"discovery at {shown(self.discovery_url)} names issuer "
                f"{shown(metadata.get('issuer'))}, not {shown(self.issuer)}"
            )
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise JwksUnavailable(f"discovery at {shown(self.discovery_url)} has no `jwks_uri`")
        problem = fetchable_url_problem(jwks_uri)
        if problem:
            raise JwksUnavailable(f"discovered `jwks_uri` {shown(jwks_uri)} refused: {problem}")
        return jwks_uri
