"""Reading JWKS documents and SPIFFE bundles, including the go-spiffe fixtures."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from identity_support import DROP, SPIFFE_DATA, Signer, b64, jwks, spiffe_fixture
from joserfc.jwk import ECKey, OKPKey

from tether.identity import JwkKeySet, JwtSvidBundle
from tether.identity.errors import TrustConfigInvalid

GO_SPIFFE_KID = "C6vs25welZOx6WksNYfbMfiw9l96pMnD"


def test_go_spiffe_jwks_valid_1() -> None:
    bundle = JwtSvidBundle.from_jwks(spiffe_fixture("go-spiffe_jwks_valid_1.json"))
    assert list(bundle.keys) == [GO_SPIFFE_KID]
    key = bundle.get(GO_SPIFFE_KID)
    assert key is not None
    assert (key.kty, key.crv, key.alg) == ("EC", "P-256", None)
    assert bundle.warnings == ()


def test_go_spiffe_jwks_valid_2_has_two_keys() -> None:
    bundle = JwtSvidBundle.from_jwks(spiffe_fixture("go-spiffe_jwks_valid_2.json"))
    assert sorted(bundle.keys) == sorted([GO_SPIFFE_KID, "gHTCunJbefYtnZnTctd84xeRWyMrEsWD"])
    assert len(bundle) == 2


def test_go_spiffe_jwks_missing_kid_skips_that_key_with_a_warning() -> None:
    bundle = JwtSvidBundle.from_jwks(spiffe_fixture("go-spiffe_jwks_missing_kid.json"))
    assert list(bundle.keys) == [GO_SPIFFE_KID]
    assert len(bundle.warnings) == 1
    assert "key #1" in bundle.warnings[0]
    assert "`kid`" in bundle.warnings[0]


def test_go_spiffe_spiffebundle_keeps_only_the_jwt_svid_key() -> None:
    text = (SPIFFE_DATA / "go-spiffe_spiffebundle_valid_1.json").read_text()
    bundle = JwtSvidBundle.from_jwks(text)
    assert list(bundle.keys) == [GO_SPIFFE_KID]
    assert any("x509-svid" in warning for warning in bundle.warnings)


def test_bundle_metadata(ec_signer: Signer) -> None:
    bundle = JwtSvidBundle.from_jwks(
        jwks(ec_signer.jwk(use="jwt-svid"), spiffe_sequence=12, spiffe_refresh_hint=600)
    )
    assert (bundle.sequence, bundle.refresh_hint_s) == (12, 600)


def test_key_with_another_use_is_refused_by_kid(ec_signer: Signer) -> None:
    bundle = JwtSvidBundle.from_jwks(jwks(ec_signer.jwk(use="x509-svid")))
    assert len(bundle) == 0
    assert ec_signer.kid not in bundle
    assert bundle.refused == {ec_signer.kid: "x509-svid"}


@pytest.mark.parametrize("use", ["sig", "enc", "JWT-SVID", "", 7])
def test_bundles_accept_only_jwt_svid_or_no_use(ec_signer: Signer, use: Any) -> None:
    assert len(JwtSvidBundle.from_jwks(jwks(ec_signer.jwk(use=use)))) == 0


def test_plain_key_sets_accept_sig_or_no_use(ec_signer: Signer, rsa_signer: Signer) -> None:
    keys = JwkKeySet.from_jwks(jwks(ec_signer.jwk(use="sig"), rsa_signer.jwk()))
    assert sorted(keys.keys) == ["ec-1", "rsa-1"]
    refused = JwkKeySet.from_jwks(jwks(ec_signer.jwk(use="enc"), rsa_signer.jwk(use="jwt-svid")))
    assert len(refused) == 0
    assert refused.refused == {"ec-1": "enc", "rsa-1": "jwt-svid"}


def test_only_rsa_and_ec_keys_are_used() -> None:
    okp = {**OKPKey.generate_key("Ed25519").as_dict(private=False), "kid": "ed"}
    oct_key = {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}
    bundle = JwtSvidBundle.from_jwks(jwks(okp, oct_key, {"kid": "nokty"}))
    assert len(bundle) == 0
    assert len(bundle.warnings) == 3
    assert all("only RSA and EC" in warning for warning in bundle.warnings)


def test_short_rsa_keys_are_skipped() -> None:
    # A key too short to trust is exactly what this test needs.
    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()  # noqa: S505
    weak = {"kty": "RSA", "n": b64(numbers.n.to_bytes(128, "big")), "e": "AQAB", "kid": "weak"}
    bundle = JwtSvidBundle.from_jwks(jwks(weak))
    assert len(bundle) == 0
    assert "shorter than 2048" in bundle.warnings[0]


@pytest.mark.parametrize(
    "damage",
    [
        {"crv": "P-192"},
        {"crv": "secp256k1"},
        {"x": DROP},
        {"y": 5},
        {"x": "!!!"},
        {"y": "AAAA"},  # not on the curve
        {"key_ops": ["sign"]},
        {"key_ops": "verify"},
        {"alg": "HS256"},
        {"alg": "ES384"},  # does not fit a P-256 key
        {"alg": "RS256"},
        {"alg": "none"},
    ],
)
def test_unusable_ec_keys_are_skipped_with_a_warning(
    ec_signer: Signer, damage: dict[str, Any]
) -> None:
    bundle = JwtSvidBundle.from_jwks(jwks(ec_signer.jwk(**damage)))
    assert len(bundle) == 0
    assert len(bundle.warnings) == 1
    assert "`ec-1`" in bundle.warnings[0]


def test_declared_alg_is_kept(ec_signer: Signer) -> None:
    key = JwtSvidBundle.from_jwks(jwks(ec_signer.jwk(alg="ES256", key_ops=["verify"]))).get("ec-1")
    assert key is not None
    assert key.alg == "ES256"


def test_private_members_are_never_imported() -> None:
    private = ECKey.generate_key("P-256")
    leaked = {**private.as_dict(private=True), "kid": "leak"}
    bundle = JwtSvidBundle.from_jwks(jwks(leaked))
    key = bundle.get("leak")
    assert key is not None
    assert not key.key.is_private
    assert "private key members" in bundle.warnings[0]


def test_duplicate_kid_invalidates_the_document(ec_signer: Signer, rsa_signer: Signer) -> None:
    with pytest.raises(TrustConfigInvalid, match="two keys with kid `ec-1`"):
        JwtSvidBundle.from_jwks(jwks(ec_signer.jwk(), rsa_signer.with_kid("ec-1").jwk()))
    with pytest.raises(TrustConfigInvalid, match="two keys"):
        JwtSvidBundle.from_jwks(jwks(ec_signer.jwk(), ec_signer.jwk(use="x509-svid")))


def test_duplicate_json_members_invalidate_the_document(ec_signer: Signer) -> None:
    key = json.dumps(ec_signer.jwk())
    text = '{"keys": [' + key + '], "keys": []}'
    with pytest.raises(TrustConfigInvalid, match="`keys` twice"):
        JwtSvidBundle.from_jwks(text)


@pytest.mark.parametrize(
    "document",
    ["", "not json", "[]", '{"keys": {}}', "{}", b'{"keys": 1}', '{"keys": [' * 5000],
)
def test_documents_that_are_not_jwks(document: str | bytes) -> None:
    with pytest.raises(TrustConfigInvalid) as caught:
        JwtSvidBundle.from_jwks(document)
    assert caught.value.code == "trust_config_invalid"


def test_empty_bundle_is_valid_and_empty() -> None:
    assert len(JwtSvidBundle.from_jwks({"keys": []})) == 0


def test_non_object_entries_are_skipped(ec_signer: Signer) -> None:
    bundle = JwtSvidBundle.from_jwks(jwks("x", 3, ec_signer.jwk()))  # type: ignore[arg-type]
    assert list(bundle.keys) == ["ec-1"]
    assert len(bundle.warnings) == 2
