"""OIDC workload tokens: static JWKS, and a real local issuer serving discovery and JWKS."""

from __future__ import annotations

from typing import Any

import pytest
from identity_support import (
    AUDIENCE,
    DROP,
    ISSUER,
    NOW,
    NOW_S,
    FakeClock,
    LocalIssuer,
    Minter,
    Signer,
    jwks,
)
from joserfc.jwk import ECKey

from tether.identity import (
    CachePolicy,
    HttpxJwksFetcher,
    TrustStore,
    verify_oidc_token,
    verify_workload_proof,
)
from tether.identity.errors import IdentityProofError

SUBJECT = "repo:acme/app:ref:refs/heads/main"


@pytest.fixture
def oidc_mint(ec_signer: Signer) -> Minter:
    return Minter(ec_signer, sub=SUBJECT, iss=ISSUER)


@pytest.fixture
def oidc_trust(ec_signer: Signer, rsa_signer: Signer) -> TrustStore:
    store = TrustStore()
    store.add_oidc_issuer(ISSUER, jwks=jwks(ec_signer.jwk(use="sig"), rsa_signer.jwk()))
    return store


def verify(token: str, trust: TrustStore) -> Any:
    return verify_oidc_token(token, trust, audience=AUDIENCE, now=NOW)


def refused(token: str, trust: TrustStore, code: str) -> IdentityProofError:
    for entry in (verify_oidc_token, verify_workload_proof):
        with pytest.raises(IdentityProofError) as caught:
            entry(token, trust, audience=AUDIENCE, now=NOW)
        assert caught.value.code == code, caught.value.message
        assert token not in caught.value.message
    return caught.value


def test_oidc_token_verifies(oidc_trust: TrustStore, oidc_mint: Minter) -> None:
    workload = verify(oidc_mint.token(jti="run-42", repository="acme/app"), oidc_trust)
    assert workload.kind == "oidc"
    assert workload.spiffe_id is None
    assert (workload.issuer, workload.subject) == (ISSUER, SUBJECT)
    assert workload.token_id == "run-42"
    assert workload.claims["repository"] == "acme/app"
    assert verify_workload_proof(
        oidc_mint.token(), oidc_trust, audience=AUDIENCE, now=NOW
    ).kind == ("oidc")


def test_rs256_and_x5t_header(oidc_trust: TrustStore, rsa_signer: Signer) -> None:
    token = Minter(rsa_signer, sub=SUBJECT, iss=ISSUER).token(header={"x5t": "abc"})
    assert verify(token, oidc_trust).alg == "RS256"


def test_issuer_audience_setting_wins(ec_signer: Signer, oidc_mint: Minter) -> None:
    store = TrustStore()
    store.add_oidc_issuer(ISSUER, jwks=jwks(ec_signer.jwk()), audience="https://tether.example")
    assert verify(oidc_mint.token(aud="https://tether.example"), store).audience == (
        "https://tether.example"
    )
    refused(oidc_mint.token(), store, "audience_mismatch")


def test_unknown_issuer(oidc_trust: TrustStore, oidc_mint: Minter) -> None:
    error = refused(oidc_mint.token(iss="https://evil.example"), oidc_trust, "issuer_unknown")
    assert "`https://evil.example`" in error.message
    refused(oidc_mint.token(iss=ISSUER + "/"), oidc_trust, "issuer_unknown")  # exact match only


def test_missing_iss(oidc_trust: TrustStore, oidc_mint: Minter) -> None:
    with pytest.raises(IdentityProofError) as caught:
        verify(oidc_mint.token(iss=DROP), oidc_trust)
    assert caught.value.code == "claim_missing"


def test_alg_outside_the_issuer_list(oidc_trust: TrustStore, rsa_signer: Signer) -> None:
    token = Minter(rsa_signer, sub=SUBJECT, iss=ISSUER).token(header={"alg": "PS256"})
    error = refused(token, oidc_trust, "alg_not_allowed")
    assert "`PS256`" in error.message


def test_alg_list_is_configurable(ec_signer: Signer, rsa_signer: Signer) -> None:
    store = TrustStore()
    store.add_oidc_issuer(ISSUER, jwks=jwks(rsa_signer.jwk()), algorithms=["PS256"])
    token = Minter(rsa_signer, sub=SUBJECT, iss=ISSUER).token(header={"alg": "PS256"})
    assert verify(token, store).alg == "PS256"
    refused(Minter(rsa_signer, sub=SUBJECT, iss=ISSUER).token(), store, "alg_not_allowed")


@pytest.mark.parametrize("alg", ["none", "HS256", "EdDSA"])
def test_weak_algs_are_refused_before_the_issuer_is_looked_up(oidc_mint: Minter, alg: str) -> None:
    refused(oidc_mint.token(header={"alg": alg}), TrustStore(), "alg_not_allowed")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"sub": DROP}, "claim_missing"),
        ({"exp": DROP}, "claim_missing"),
        ({"aud": DROP}, "claim_missing"),
        ({"exp": NOW_S - 31}, "token_expired"),
        ({"nbf": NOW_S + 31}, "token_not_yet_valid"),
        ({"iat": NOW_S + 31}, "issued_in_future"),
        ({"aud": "other"}, "audience_mismatch"),
        ({"aud": [AUDIENCE, "other"]}, "audience_multiple"),
        ({"sub": 42}, "claim_invalid"),
    ],
)
def test_claim_checks(
    oidc_trust: TrustStore, oidc_mint: Minter, overrides: dict[str, Any], code: str
) -> None:
    with pytest.raises(IdentityProofError) as caught:
        verify(oidc_mint.token(**overrides), oidc_trust)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ({"jku": "https://evil.example/jwks"}, "header_parameter_not_allowed"),
        ({"jwk": {"kty": "EC"}}, "header_parameter_not_allowed"),
        ({"x5u": "https://evil.example"}, "header_parameter_not_allowed"),
        ({"crit": ["b64"], "b64": False}, "header_parameter_not_allowed"),
        ({"typ": "at+jwt"}, "typ_not_allowed"),
        ({"kid": DROP}, "kid_missing"),
        ({"kid": "nope"}, "kid_unknown"),
    ],
)
def test_header_checks(
    oidc_trust: TrustStore, oidc_mint: Minter, header: dict[str, Any], code: str
) -> None:
    refused(oidc_mint.token(header=header), oidc_trust, code)


def test_key_published_for_encryption(ec_signer: Signer, oidc_mint: Minter) -> None:
    store = TrustStore()
    store.add_oidc_issuer(ISSUER, jwks=jwks(ec_signer.jwk(use="enc")))
    refused(oidc_mint.token(), store, "key_use_invalid")


def test_untrusted_key_with_a_trusted_kid(oidc_trust: TrustStore, attacker_ec: Signer) -> None:
    refused(Minter(attacker_ec, sub=SUBJECT, iss=ISSUER).token(), oidc_trust, "signature_invalid")


def test_static_keys_rotate_atomically(oidc_trust: TrustStore, oidc_mint: Minter) -> None:
    new = Signer("ec-2", "ES256", ECKey.generate_key("P-256"))
    oidc_trust.set_oidc_jwks(ISSUER, jwks(new.jwk()))
    refused(oidc_mint.token(), oidc_trust, "kid_unknown")
    assert verify(Minter(new, sub=SUBJECT, iss=ISSUER).token(), oidc_trust).kid == "ec-2"


# A real issuer on 127.0.0.1: discovery, JWKS, rotation, caching


def _discovering_store(local_issuer: LocalIssuer, clock: FakeClock) -> TrustStore:
    """Default cache policy: TTL 300 s, an unknown kid refetches at most every 30 s."""
    store = TrustStore(fetcher=HttpxJwksFetcher(timeout_s=5), clock=clock)
    store.add_oidc_issuer(local_issuer.url, discovery=True)
    return store


def test_discovery_then_jwks_over_http(
    local_issuer: LocalIssuer, ec_signer: Signer, clock: FakeClock
) -> None:
    local_issuer.publish(ec_signer)
    store = _discovering_store(local_issuer, clock)
    token = Minter(ec_signer, sub=SUBJECT, iss=local_issuer.url).token()
    workload = verify_workload_proof(token, store, audience=AUDIENCE, now=NOW)
    assert workload.issuer == local_issuer.url
    assert local_issuer.count("/.well-known/openid-configuration") == 1
    assert local_issuer.count("/jwks.json") == 1


def test_known_kid_is_served_from_the_cache(
    local_issuer: LocalIssuer, ec_signer: Signer, clock: FakeClock
) -> None:
    local_issuer.publish(ec_signer)
    store = _discovering_store(local_issuer, clock)
    token = Minter(ec_signer, sub=SUBJECT, iss=local_issuer.url).token()
    for _ in range(20):
        verify_oidc_token(token, store, audience=AUDIENCE, now=NOW)
        clock.advance(10)  # 200 s in all: within the TTL
    assert local_issuer.count("/jwks.json") == 1
    assert local_issuer.count("/.well-known/openid-configuration") == 1


def test_rotation_is_picked_up_by_refetching_on_an_unknown_kid(
    local_issuer: LocalIssuer, ec_signer: Signer, clock: FakeClock
) -> None:
    local_issuer.publish(ec_signer)
    store = _discovering_store(local_issuer, clock)
    old = Minter(ec_signer, sub=SUBJECT, iss=local_issuer.url)
    verify_oidc_token(old.token(), store, audience=AUDIENCE, now=NOW)

    clock.advance(45)  # the issuer rotates, well within the cache TTL
    rotated = Signer("ec-2", "ES256", ECKey.generate_key("P-256"))
    local_issuer.publish(rotated)
    new = Minter(rotated, sub=SUBJECT, iss=local_issuer.url)
    workload = verify_oidc_token(new.token(), store, audience=AUDIENCE, now=NOW)
    assert workload.kid == "ec-2"
    assert local_issuer.count("/jwks.json") == 2
    # The new key now comes from the cache; the withdrawn old key is refused without a fetch.
    verify_oidc_token(new.token(), store, audience=AUDIENCE, now=NOW)
    with pytest.raises(IdentityProofError) as caught:
        verify_oidc_token(old.token(), store, audience=AUDIENCE, now=NOW)
    assert caught.value.code == "kid_unknown"
    assert local_issuer.count("/jwks.json") == 2


def test_a_flood_of_unknown_kids_refetches_once_per_interval(
    local_issuer: LocalIssuer, ec_signer: Signer, clock: FakeClock
) -> None:
    local_issuer.publish(ec_signer)
    store = _discovering_store(local_issuer, clock)
    mint = Minter(ec_signer, sub=SUBJECT, iss=local_issuer.url)
    verify_oidc_token(mint.token(), store, audience=AUDIENCE, now=NOW)

    def flood(count: int) -> None:
        for n in range(count):
            with pytest.raises(IdentityProofError) as caught:
                verify_oidc_token(
                    mint.token(header={"kid": f"made-up-{n}"}), store, audience=AUDIENCE, now=NOW
                )
            assert caught.value.code == "kid_unknown"
            clock.advance(0.1)

    flood(50)  # within 30 s of the first fetch: keys are fresh enough, no refetch
    assert local_issuer.count("/jwks.json") == 1
    clock.advance(30)
    flood(50)  # one refetch, then rate limited for 30 s
    assert local_issuer.count("/jwks.json") == 2
    verify_oidc_token(mint.token(), store, audience=AUDIENCE, now=NOW)  # the real kid still works
    assert local_issuer.count("/jwks.json") == 2


def test_keys_are_refetched_after_the_ttl(
    local_issuer: LocalIssuer, ec_signer: Signer, clock: FakeClock
) -> None:
    local_issuer.publish(ec_signer)
    store = TrustStore(fetcher=HttpxJwksFetcher(), cache=CachePolicy(ttl_s=60), clock=clock)
    store.add_oidc_issuer(local_issuer.url, jwks_uri=f"{local_issuer.url}/jwks.json")
    token = Minter(ec_signer, sub=SUBJECT, iss=local_issuer.url).token()
    verify_oidc_token(token, store, audience=AUDIENCE, now=NOW)
    clock.advance(59)
    verify_oidc_token(token, store, audience=AUDIENCE, now=NOW)
    assert local_issuer.count("/jwks.json") == 1
    clock.advance(2)
    verify_oidc_token(token, store, audience=AUDIENCE, now=NOW)
    assert local_issuer.count("/jwks.json") == 2
    assert local_issuer.count("/.well-known/openid-configuration") == 0


def test_discovery_must_name_the_same_issuer(local_issuer: LocalIssuer, ec_signer: Signer) -> None:
    local_issuer.publish(ec_signer)
    local_issuer.documents["/.well-known/openid-configuration"]["issuer"] = "https://evil.example"
    store = _discovering_store(local_issuer, FakeClock())
    token = Minter(ec_signer, sub=SUBJECT, iss=local_issuer.url).token()
    with pytest.raises(IdentityProofError) as caught:
        verify_oidc_token(token, store, audience=AUDIENCE, now=NOW)
    assert caught.value.code == "jwks_unavailable"
    assert "`https://evil.example`" in caught.value.message
    assert local_issuer.count("/jwks.json") == 0


def test_issuer_down_means_jwks_unavailable(ec_signer: Signer) -> None:
    issuer = LocalIssuer()
    url = issuer.url
    issuer.close()
    store = TrustStore(fetcher=HttpxJwksFetcher(timeout_s=2))
    store.add_oidc_issuer(url, jwks_uri=f"{url}/jwks.json")
    token = Minter(ec_signer, sub=SUBJECT, iss=url).token()
    with pytest.raises(IdentityProofError) as caught:
        verify_oidc_token(token, store, audience=AUDIENCE, now=NOW)
    assert caught.value.code == "jwks_unavailable"
