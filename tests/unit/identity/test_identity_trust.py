"""The trust store: configuration checks, atomic bundle rotation, per-domain settings."""

from __future__ import annotations

import threading
import time

import pytest
from identity_support import AUDIENCE, NOW, Minter, Signer, jwks
from joserfc.jwk import ECKey

from tether.identity import (
    InMemoryJwksFetcher,
    JwkKeySet,
    JwtSvidBundle,
    TrustDomain,
    TrustStore,
    verify_jwt_svid,
)
from tether.identity import _trust as trust_module
from tether.identity.errors import IdentityProofError, TrustConfigInvalid


def test_domains_by_name_or_id(example_bundle: JwtSvidBundle) -> None:
    store = TrustStore()
    store.add_spiffe_domain("spiffe://example.org", example_bundle)
    store.add_spiffe_domain(TrustDomain("other.org"), {"keys": []})
    entry = store.spiffe_domain(TrustDomain("example.org"))
    assert entry is not None
    assert entry.bundle is example_bundle
    assert entry.rules.require_kid
    assert not entry.rules.allow_multiple_audiences
    assert entry.rules.leeway_s == 30
    assert {e.trust_domain.name for e in store.spiffe_domains} == {"example.org", "other.org"}


@pytest.mark.parametrize(
    "name", ["Example.org", "spiffe://example.org/path", "", "example.org:443", "https://x"]
)
def test_bad_trust_domain_names(name: str) -> None:
    with pytest.raises(TrustConfigInvalid):
        TrustStore().add_spiffe_domain(name, {"keys": []})


def test_a_plain_key_set_is_not_a_bundle(ec_signer: Signer) -> None:
    with pytest.raises(TrustConfigInvalid, match="JwtSvidBundle"):
        TrustStore().add_spiffe_domain("example.org", JwkKeySet.from_jwks(jwks(ec_signer.jwk())))


@pytest.mark.parametrize("leeway", [-1, 301])
def test_leeway_is_bounded(leeway: float) -> None:
    with pytest.raises(TrustConfigInvalid, match="leeway"):
        TrustStore().add_spiffe_domain("example.org", {"keys": []}, leeway_s=leeway)


def test_bundle_rotation_without_restart(
    trust: TrustStore, mint: Minter, ec_signer: Signer, rsa_signer: Signer
) -> None:
    verify_jwt_svid(mint.token(), trust, audience=AUDIENCE, now=NOW)
    new = Signer("ec-2", "ES256", ECKey.generate_key("P-256"))
    trust.set_bundle("example.org", jwks(new.jwk(use="jwt-svid")))
    with pytest.raises(IdentityProofError) as caught:
        verify_jwt_svid(mint.token(), trust, audience=AUDIENCE, now=NOW)
    assert caught.value.code == "kid_unknown"
    assert verify_jwt_svid(Minter(new).token(), trust, audience=AUDIENCE, now=NOW).kid == "ec-2"


def test_rotation_keeps_the_domain_settings(example_bundle: JwtSvidBundle) -> None:
    store = TrustStore()
    store.add_spiffe_domain("example.org", example_bundle, audience="x", require_kid=False)
    entry = store.set_bundle("example.org", {"keys": []})
    assert (entry.rules.audience, entry.rules.require_kid) == ("x", False)


def test_rotation_of_an_unknown_domain_is_refused() -> None:
    with pytest.raises(TrustConfigInvalid, match="not trusted"):
        TrustStore().set_bundle("example.org", {"keys": []})


def test_a_bad_bundle_leaves_the_old_one_in_place(trust: TrustStore, mint: Minter) -> None:
    with pytest.raises(TrustConfigInvalid):
        trust.set_bundle("example.org", '{"keys": 5}')
    verify_jwt_svid(mint.token(), trust, audience=AUDIENCE, now=NOW)


def test_removed_domain_is_unknown(trust: TrustStore, mint: Minter) -> None:
    trust.remove_spiffe_domain("example.org")
    trust.remove_spiffe_domain("never.example")
    with pytest.raises(IdentityProofError) as caught:
        verify_jwt_svid(mint.token(), trust, audience=AUDIENCE, now=NOW)
    assert caught.value.code == "trust_domain_unknown"


def test_rotation_is_atomic_under_concurrent_verification(
    ec_signer: Signer, rsa_signer: Signer
) -> None:
    """Bundles alternate between two that both hold the signing key: no proof ever fails."""
    store = TrustStore()
    store.add_spiffe_domain("example.org", jwks(ec_signer.jwk()))
    bundles = [
        JwtSvidBundle.from_jwks(jwks(ec_signer.jwk())),
        JwtSvidBundle.from_jwks(jwks(rsa_signer.jwk(), ec_signer.jwk(use="jwt-svid"))),
    ]
    token = Minter(ec_signer).token()
    stop = threading.Event()
    failures: list[str] = []

    swaps = [0]

    def rotate() -> None:
        while not stop.is_set():
            store.set_bundle("example.org", bundles[swaps[0] % 2])
            swaps[0] += 1
            time.sleep(0)  # let the verifier run between swaps

    rotator = threading.Thread(target=rotate)
    rotator.start()
    try:
        for _ in range(150):
            try:
                verify_jwt_svid(token, store, audience=AUDIENCE, now=NOW)
            except IdentityProofError as exc:
                failures.append(exc.code)
    finally:
        stop.set()
        rotator.join()
    assert failures == []
    assert swaps[0] > 10


# OIDC issuer configuration


def test_issuer_needs_exactly_one_key_source(ec_signer: Signer) -> None:
    store = TrustStore(fetcher=InMemoryJwksFetcher())
    with pytest.raises(TrustConfigInvalid, match="exactly one"):
        store.add_oidc_issuer("https://issuer.example")
    with pytest.raises(TrustConfigInvalid, match="exactly one"):
        store.add_oidc_issuer(
            "https://issuer.example", jwks=jwks(ec_signer.jwk()), jwks_uri="https://x/jwks"
        )
    with pytest.raises(TrustConfigInvalid, match="exactly one"):
        store.add_oidc_issuer("https://issuer.example", jwks_uri="https://x/jwks", discovery=True)


@pytest.mark.parametrize(
    "url", ["http://issuer.example/jwks", "ftp://x/jwks", "file:///etc/jwks", "jwks.json"]
)
def test_key_urls_must_be_https(url: str) -> None:
    with pytest.raises(TrustConfigInvalid, match="https only"):
        TrustStore(fetcher=InMemoryJwksFetcher()).add_oidc_issuer("https://i", jwks_uri=url)


def test_plain_http_is_allowed_on_loopback() -> None:
    store = TrustStore(fetcher=InMemoryJwksFetcher())
    store.add_oidc_issuer("http://127.0.0.1:8080", discovery=True)
    entry = store.oidc_issuer("http://127.0.0.1:8080")
    assert entry is not None
    assert entry.remote is not None
    assert entry.remote.discovery_url == "http://127.0.0.1:8080/.well-known/openid-configuration"


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["EdDSA"], [], ["RS256", "HS256"]])
def test_issuer_algorithms_must_be_asymmetric(ec_signer: Signer, algorithms: list[str]) -> None:
    with pytest.raises(TrustConfigInvalid, match="allows"):
        TrustStore().add_oidc_issuer(
            "https://issuer.example", jwks=jwks(ec_signer.jwk()), algorithms=algorithms
        )


@pytest.mark.parametrize("issuer", ["", " https://x", "spiffe://example.org", "SPIFFE://x"])
def test_bad_issuers(ec_signer: Signer, issuer: str) -> None:
    with pytest.raises(TrustConfigInvalid):
        TrustStore().add_oidc_issuer(issuer, jwks=jwks(ec_signer.jwk()))


def test_issuer_defaults(ec_signer: Signer) -> None:
    store = TrustStore()
    entry = store.add_oidc_issuer("https://issuer.example", jwks=jwks(ec_signer.jwk()))
    assert entry.algorithms == frozenset({"RS256", "ES256"})
    assert entry.rules.require_kid
    assert store.oidc_issuers == (entry,)
    store.remove_oidc_issuer("https://issuer.example")
    assert store.oidc_issuer("https://issuer.example") is None


def test_set_jwks_of_an_unknown_issuer(ec_signer: Signer) -> None:
    with pytest.raises(TrustConfigInvalid, match="not trusted"):
        TrustStore().set_oidc_jwks("https://issuer.example", jwks(ec_signer.jwk()))


class _ClosingFetcher(InMemoryJwksFetcher):
    """An in-memory fetcher that counts ``close`` calls."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_close_closes_only_a_fetcher_the_store_made(monkeypatch: pytest.MonkeyPatch) -> None:
    given = _ClosingFetcher()
    store = TrustStore(fetcher=given)
    store.add_oidc_issuer("https://issuer.example", jwks_uri="https://issuer.example/jwks")
    store.close()
    assert given.closed == 0, "a fetcher the caller gave is the caller's to close"
    made: list[_ClosingFetcher] = []

    def make_fetcher() -> _ClosingFetcher:
        made.append(_ClosingFetcher())
        return made[-1]

    monkeypatch.setattr(trust_module, "HttpxJwksFetcher", make_fetcher)
    own = TrustStore()
    own.add_oidc_issuer("https://issuer.example", jwks_uri="https://issuer.example/jwks")
    assert len(made) == 1  # the store made its own for the remote JWKS
    own.close()
    own.close()
    assert made[0].closed == 1, "the store closes the fetcher it made, once"
