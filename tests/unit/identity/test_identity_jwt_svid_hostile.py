"""The hostile JWT-SVID battery: each token refused with *its own* error code.

The code says which rule caught the token, so a refusal is never ambiguous.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from identity_support import (
    AUDIENCE,
    DROP,
    NOW,
    NOW_S,
    Minter,
    Signer,
    assert_refused,
    b64,
    b64json,
    jwks,
    verify_svid,
    with_raw_claim,
)
from joserfc.jwk import OKPKey
from joserfc.jws import JWSRegistry

from tether.identity import MAX_TOKEN_BYTES, TrustStore, verify_jwt_svid, verify_workload_proof
from tether.identity.errors import IdentityProofError

# The hostile battery


def test_alg_none(trust: TrustStore, mint: Minter) -> None:
    token = f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(mint.claims())}."
    error = assert_refused(token, trust, "alg_not_allowed")
    assert "`none`" in error.message


@pytest.mark.parametrize("alg", ["None", "NONE", "nOnE"])
def test_alg_none_spellings(trust: TrustStore, mint: Minter, alg: str) -> None:
    token = f"{b64json({'alg': alg})}.{b64json(mint.claims())}."
    assert_refused(token, trust, "alg_not_allowed")


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_keyed_with_the_public_key(
    trust: TrustStore, mint: Minter, rsa_signer: Signer, alg: str
) -> None:
    """The classic confusion: HMAC with the verifier's public key (PEM and JWK bytes) as secret."""
    public_pem = rsa_signer.key.as_pem(private=False)
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    for secret in (public_pem, json.dumps(rsa_signer.jwk()).encode()):
        header = {"alg": alg, "kid": "rsa-1", "typ": "JWT"}
        signing_input = f"{b64json(header)}.{b64json(mint.claims())}".encode()
        mac = hmac.new(secret, signing_input, digest).digest()
        assert_refused(f"{signing_input.decode()}.{b64(mac)}", trust, "alg_not_allowed")


def test_eddsa(trust: TrustStore, mint: Minter) -> None:
    okp = OKPKey.generate_key("Ed25519")
    header = {"alg": "EdDSA", "kid": "ec-1"}
    signing_input = f"{b64json(header)}.{b64json(mint.claims())}".encode()
    signature = JWSRegistry.algorithms["EdDSA"].sign(signing_input, okp)
    assert_refused(f"{signing_input.decode()}.{b64(signature)}", trust, "alg_not_allowed")


@pytest.mark.parametrize("alg", [DROP, "", 256, None, ["ES256"], "ES256K", "RSA-OAEP", "A128KW"])
def test_other_bad_algs(trust: TrustStore, mint: Minter, alg: Any) -> None:
    assert_refused(mint.token(header={"alg": alg}), trust, "alg_not_allowed")


def test_unknown_kid(trust: TrustStore, mint: Minter) -> None:
    error = assert_refused(mint.token(header={"kid": "who-knows"}), trust, "kid_unknown")
    assert "`who-knows`" in error.message


def test_missing_kid_is_refused_by_default(trust: TrustStore, mint: Minter) -> None:
    assert_refused(mint.token(header={"kid": DROP}), trust, "kid_missing")


@pytest.mark.parametrize("kid", ["", 7, None, ["ec-1"]])
def test_kid_of_the_wrong_type(trust: TrustStore, mint: Minter, kid: Any) -> None:
    assert_refused(mint.token(header={"kid": kid}), trust, "token_malformed")


def test_key_from_another_trust_domain(trust: TrustStore, other_domain_signer: Signer) -> None:
    """other.org's key signs a token claiming an example.org SPIFFE ID: never verifies."""
    token = Minter(other_domain_signer).token()
    assert_refused(token, trust, "kid_unknown")
    # ... even when it reuses the kid of an example.org key.
    assert_refused(Minter(other_domain_signer.with_kid("ec-1")).token(), trust, "signature_invalid")


def test_other_domain_svid_verifies_with_its_own_key(
    trust: TrustStore, other_domain_signer: Signer
) -> None:
    token = Minter(other_domain_signer, sub="spiffe://other.org/svc").token()
    assert verify_svid(token, trust).issuer == "spiffe://other.org"


def test_unknown_trust_domain(trust: TrustStore, mint: Minter) -> None:
    error = assert_refused(
        mint.token(sub="spiffe://evil.example/agent"), trust, "trust_domain_unknown"
    )
    assert "`evil.example`" in error.message


def test_key_with_another_use(trust: TrustStore, mint: Minter, ec_signer: Signer) -> None:
    store = TrustStore()
    store.add_spiffe_domain("example.org", jwks(ec_signer.jwk(use="x509-svid")))
    assert_refused(mint.token(), store, "key_use_invalid")


@pytest.mark.parametrize("claim", ["exp", "aud"])
def test_missing_required_claim(trust: TrustStore, mint: Minter, claim: str) -> None:
    error = assert_refused(mint.token(**{claim: DROP}), trust, "claim_missing")
    assert f"`{claim}`" in error.message
    assert getattr(error, "claim", None) == claim


def test_missing_sub(trust: TrustStore, mint: Minter) -> None:
    token = mint.token(sub=DROP)
    with pytest.raises(IdentityProofError) as caught:
        verify_svid(token, trust)
    assert (caught.value.code, getattr(caught.value, "claim", None)) == ("claim_missing", "sub")
    # Without a SPIFFE `sub` nor a trusted `iss`, the proof names no one tether trusts.
    with pytest.raises(IdentityProofError) as caught:
        verify_workload_proof(token, trust, audience=AUDIENCE, now=NOW)
    assert caught.value.code == "issuer_unknown"


def test_expired(trust: TrustStore, mint: Minter) -> None:
    assert_refused(mint.token(exp=NOW_S - 31), trust, "token_expired")


def test_not_yet_valid(trust: TrustStore, mint: Minter) -> None:
    assert_refused(mint.token(nbf=NOW_S + 31), trust, "token_not_yet_valid")


def test_issued_in_the_future(trust: TrustStore, mint: Minter) -> None:
    assert_refused(mint.token(iat=NOW_S + 3600), trust, "issued_in_future")


def test_wrong_audience(trust: TrustStore, mint: Minter) -> None:
    error = assert_refused(mint.token(aud="reports"), trust, "audience_mismatch")
    assert "`reports`" in error.message


def test_multiple_audiences(trust: TrustStore, mint: Minter) -> None:
    assert_refused(mint.token(aud=[AUDIENCE, "reports"]), trust, "audience_multiple")
    assert_refused(mint.token(aud=["reports", AUDIENCE]), trust, "audience_multiple")
    assert_refused(mint.token(aud=[AUDIENCE, AUDIENCE]), trust, "audience_multiple")


def test_multiple_audiences_without_ours_is_a_mismatch(trust: TrustStore, mint: Minter) -> None:
    assert_refused(mint.token(aud=["a", "b"]), trust, "audience_mismatch")


@pytest.mark.parametrize("aud", [[], "", [""], 5, [AUDIENCE, 5], {"aud": AUDIENCE}, None])
def test_malformed_audience(trust: TrustStore, mint: Minter, aud: Any) -> None:
    assert_refused(mint.token(aud=aud), trust, "claim_invalid")


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize(
    "value", ["1700000000", True, None, -1, 1e400, 10**30, [NOW_S], {"t": NOW_S}]
)
def test_malformed_numeric_dates(trust: TrustStore, mint: Minter, claim: str, value: Any) -> None:
    token = mint.token(**{claim: value}) if value != 1e400 else with_raw_claim(mint, claim, "1e400")
    assert_refused(token, trust, "claim_invalid")


@pytest.mark.parametrize("sub", ["", 5, None, ["spiffe://example.org/a"]])
def test_sub_of_the_wrong_type(trust: TrustStore, mint: Minter, sub: Any) -> None:
    token = mint.token(sub=sub)
    for entry in (verify_jwt_svid,):
        with pytest.raises(IdentityProofError) as caught:
            entry(token, trust, audience=AUDIENCE, now=NOW)
        assert caught.value.code == "claim_invalid"


def test_tampered_payload(trust: TrustStore, mint: Minter) -> None:
    header, _, signature = mint.token().split(".")
    forged = b64json(mint.claims(sub="spiffe://example.org/admin"))
    assert_refused(f"{header}.{forged}.{signature}", trust, "signature_invalid")


def test_tampered_header(trust: TrustStore, rsa_signer: Signer) -> None:
    """The header is signed too: RS256 -> PS256 with the same signature fails."""
    _, payload, signature = Minter(rsa_signer).token().split(".")
    forged = b64json({"alg": "PS256", "kid": "rsa-1", "typ": "JWT"})
    assert_refused(f"{forged}.{payload}.{signature}", trust, "signature_invalid")


def test_signature_stripped(trust: TrustStore, mint: Minter) -> None:
    header, payload, _ = mint.token().split(".")
    assert_refused(f"{header}.{payload}.", trust, "signature_invalid")


def test_untrusted_key_with_a_trusted_kid(trust: TrustStore, attacker_ec: Signer) -> None:
    assert_refused(Minter(attacker_ec).token(), trust, "signature_invalid")


def test_json_serialization(trust: TrustStore, mint: Minter) -> None:
    header, payload, signature = mint.token().split(".")
    flattened = json.dumps({"protected": header, "payload": payload, "signature": signature})
    general = json.dumps(
        {"payload": payload, "signatures": [{"protected": header, "signature": signature}]}
    )
    for token in (flattened, general, "  " + flattened):
        assert_refused(token, trust, "json_serialization_not_allowed")


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("jku", "https://evil.example/jwks.json"),
        ("x5u", "https://evil.example/cert.pem"),
        ("jwk", {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
        ("x5c", ["MIIB"]),
        ("x5t", "abc"),
        ("x5t#S256", "abc"),
        ("crit", ["exp"]),
        ("cty", "JWT"),
        ("b64", False),
        ("zip", "DEF"),
        ("enc", "A128GCM"),
        ("iss", "spiffe://example.org"),
        ("private", "x"),
    ],
)
def test_extra_header_member(trust: TrustStore, mint: Minter, member: str, value: Any) -> None:
    error = assert_refused(
        mint.token(header={member: value}), trust, "header_parameter_not_allowed"
    )
    assert f"`{member}`" in error.message


@pytest.mark.parametrize("typ", ["at+jwt", "jwt", "JWS", "application/jwt", "", None, 1])
def test_typ_not_allowed(trust: TrustStore, mint: Minter, typ: Any) -> None:
    assert_refused(mint.token(header={"typ": typ}), trust, "typ_not_allowed")


def test_oversized_token(trust: TrustStore, mint: Minter) -> None:
    big = mint.token(padding="x" * MAX_TOKEN_BYTES)
    assert_refused(big, trust, "token_too_large")
    assert_refused("a" * (10 * 1024 * 1024), trust, "token_too_large")


def test_largest_accepted_token(trust: TrustStore, mint: Minter) -> None:
    base = len(mint.token(padding=""))
    # base64 grows 4/3: this padding brings the token just under the limit.
    padding = "x" * ((MAX_TOKEN_BYTES - base) * 3 // 4 - 3)
    token = mint.token(padding=padding)
    assert len(token) <= MAX_TOKEN_BYTES
    verify_svid(token, trust)


SPIFFE_ID_VIOLATIONS = [
    "example.org/agent",
    "https://example.org/agent",
    "SPIFFE://example.org/agent",
    "spiffe://Example.org/agent",
    "spiffe://example.org:8443/agent",
    "spiffe://user@example.org/agent",
    "spiffe://example.org/agent/",
    "spiffe://example.org/agent?admin=1",
    "spiffe://example.org/agent#x",
    "spiffe://example.org//agent",
    "spiffe://example.org/./agent",
    "spiffe://example.org/../admin",
    "spiffe://example.org/ag%65nt",
    "spiffe://example.org/ag ent",
    "spiffe://example.org/agént",
    "spiffe://",
    "spiffe:///agent",
    "spiffe://example.org/" + "a" * 2100,
]


@pytest.mark.parametrize("sub", SPIFFE_ID_VIOLATIONS)
def test_sub_that_is_no_spiffe_id(trust: TrustStore, mint: Minter, sub: str) -> None:
    with pytest.raises(IdentityProofError) as caught:
        verify_svid(mint.token(sub=sub), trust)
    assert caught.value.code == "spiffe_id_invalid"


def test_key_alg_must_match_the_header(ec_signer: Signer, rsa_signer: Signer) -> None:
    store = TrustStore()
    store.add_spiffe_domain("example.org", jwks(rsa_signer.jwk(alg="RS256")))
    token = Minter(rsa_signer).token(header={"alg": "PS256"})
    error = assert_refused(token, store, "alg_not_allowed")
    assert "`RS256`" in error.message


def test_key_type_must_fit_the_alg(trust: TrustStore, mint: Minter, p384_signer: Signer) -> None:
    assert_refused(mint.token(header={"kid": "rsa-1"}), trust, "alg_not_allowed")
    assert_refused(
        mint.token(header={"kid": "ec384-1"}), trust, "alg_not_allowed"
    )  # ES256, P-384 key


def test_empty_bundle_trusts_nothing(mint: Minter) -> None:
    store = TrustStore()
    store.add_spiffe_domain("example.org", {"keys": []})
    assert_refused(mint.token(), store, "kid_unknown")
    store.add_spiffe_domain("example.org", {"keys": []}, require_kid=False)
    assert_refused(mint.token(header={"kid": DROP}), store, "kid_unknown")
