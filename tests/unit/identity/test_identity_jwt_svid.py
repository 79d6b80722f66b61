"""JWT-SVID verification: what JWT-SVID.md and tether accept."""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType
from typing import Any

import pytest
from identity_support import (
    AUDIENCE,
    DROP,
    NOW,
    NOW_S,
    WORKLOAD,
    Minter,
    Signer,
    assert_refused,
    encode,
    jwks,
    spiffe_fixture,
    verify_svid,
)
from joserfc.jwk import ECKey

from tether.errors import Unauthenticated
from tether.identity import JwtSvidBundle, SpiffeId, TrustStore, verify_jwt_svid

# What is accepted


def test_es256_svid_verifies(trust: TrustStore, mint: Minter) -> None:
    workload = verify_svid(mint.token(jti="svid-1", extra="x"), trust)
    assert workload.kind == "spiffe"
    assert workload.spiffe_id == SpiffeId.parse(WORKLOAD)
    assert workload.issuer == "spiffe://example.org"
    assert workload.subject == WORKLOAD
    assert workload.audience == AUDIENCE
    assert workload.expires_at == NOW + timedelta(seconds=300)
    assert (workload.kid, workload.alg) == ("ec-1", "ES256")
    assert workload.token_id == "svid-1"
    assert workload.claims["extra"] == "x"
    assert isinstance(workload.claims, MappingProxyType)


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
def test_every_rsa_algorithm_verifies(trust: TrustStore, rsa_signer: Signer, alg: str) -> None:
    token = Minter(rsa_signer).token(header={"alg": alg})
    assert verify_svid(token, trust).alg == alg


def test_es384_verifies(trust: TrustStore, p384_signer: Signer) -> None:
    assert verify_svid(Minter(p384_signer).token(), trust).alg == "ES384"


def test_es512_verifies(ec_signer: Signer) -> None:
    signer = Signer("p521", "ES512", ECKey.generate_key("P-521"))
    store = TrustStore()
    store.add_spiffe_domain("example.org", jwks(signer.jwk(use="jwt-svid")))
    assert verify_svid(Minter(signer).token(), store).alg == "ES512"


@pytest.mark.parametrize("typ", ["JWT", "JOSE", DROP])
def test_typ_absent_jwt_or_jose(trust: TrustStore, mint: Minter, typ: Any) -> None:
    verify_svid(mint.token(header={"typ": typ}), trust)


def test_audience_list_of_one(trust: TrustStore, mint: Minter) -> None:
    assert verify_svid(mint.token(aud=[AUDIENCE]), trust).audience == AUDIENCE


def test_without_jti_token_id_is_a_hash_prefix(trust: TrustStore, mint: Minter) -> None:
    token = mint.token()
    token_id = verify_svid(token, trust).token_id
    assert token_id.startswith("sha256:")
    assert len(token_id) == len("sha256:") + 32
    assert token_id[7:] not in token


def test_leeway_of_30_seconds(trust: TrustStore, mint: Minter) -> None:
    verify_svid(mint.token(exp=NOW_S - 29), trust)
    verify_svid(mint.token(nbf=NOW_S + 29), trust)
    verify_svid(mint.token(iat=NOW_S + 29), trust)


def test_bytes_token_is_accepted(trust: TrustStore, mint: Minter) -> None:
    verify_jwt_svid(mint.token().encode(), trust, audience=AUDIENCE, now=NOW)  # type: ignore[arg-type]


def test_kid_optional_when_the_domain_allows(example_bundle: JwtSvidBundle, mint: Minter) -> None:
    store = TrustStore()
    store.add_spiffe_domain("example.org", example_bundle, require_kid=False)
    workload = verify_svid(mint.token(header={"kid": DROP}), store)
    assert workload.kid == "ec-1"


def test_several_audiences_when_the_domain_allows(
    example_bundle: JwtSvidBundle, mint: Minter
) -> None:
    store = TrustStore()
    store.add_spiffe_domain("example.org", example_bundle, allow_multiple_audiences=True)
    assert verify_svid(mint.token(aud=[AUDIENCE, "reports"]), store).audience == AUDIENCE


def test_domain_audience_overrides_the_default(example_bundle: JwtSvidBundle, mint: Minter) -> None:
    store = TrustStore()
    store.add_spiffe_domain("example.org", example_bundle, audience="spiffe://example.org/tether")
    assert verify_svid(mint.token(aud="spiffe://example.org/tether"), store).audience.endswith(
        "tether"
    )
    assert_refused(mint.token(), store, "audience_mismatch")


def test_naive_now_is_a_caller_bug(trust: TrustStore, mint: Minter) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_jwt_svid(mint.token(), trust, audience=AUDIENCE, now=NOW.replace(tzinfo=None))


def test_go_spiffe_bundle_keys_are_used_by_kid(mint: Minter, ec_signer: Signer) -> None:
    """The go-spiffe keys (no `use`) are trusted: a token naming one is checked against it."""
    store = TrustStore()
    store.add_spiffe_domain("example.org", spiffe_fixture("go-spiffe_jwks_valid_2.json"))
    impostor = ec_signer.with_kid("C6vs25welZOx6WksNYfbMfiw9l96pMnD")
    assert_refused(mint.token(signer=impostor), store, "signature_invalid")
    assert_refused(mint.token(), store, "kid_unknown")


def test_go_spiffe_bundle_refuses_x509_keys(mint: Minter, ec_signer: Signer) -> None:
    store = TrustStore()
    store.add_spiffe_domain("example.org", spiffe_fixture("go-spiffe_spiffebundle_valid_1.json"))
    assert_refused(mint.token(), store, "kid_unknown")


def test_every_refusal_is_an_unauthenticated_tether_error(trust: TrustStore, mint: Minter) -> None:
    with pytest.raises(Unauthenticated):
        verify_svid(mint.token(aud="x"), trust)


def test_encode_helper_round_trips(trust: TrustStore, mint: Minter, ec_signer: Signer) -> None:
    """The battery's hand-made tokens are real JWS: unmodified, they verify."""
    token = encode(mint.header(), mint.claims(), ec_signer)
    verify_svid(token, trust)
