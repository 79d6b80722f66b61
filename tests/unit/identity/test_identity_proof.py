"""``verify_workload_proof``: choosing JWT-SVID or OIDC rules, then verifying fully."""

from __future__ import annotations

import pytest
from identity_support import AUDIENCE, DROP, ISSUER, NOW, Minter, Signer, jwks

from tether.identity import TrustStore, verify_workload_proof
from tether.identity.errors import IdentityProofError


@pytest.fixture
def both(trust: TrustStore, ec_signer: Signer) -> TrustStore:
    trust.add_oidc_issuer(ISSUER, jwks=jwks(ec_signer.jwk()))
    return trust


def code_of(token: str, trust: TrustStore) -> str:
    with pytest.raises(IdentityProofError) as caught:
        verify_workload_proof(token, trust, audience=AUDIENCE, now=NOW)
    return caught.value.code


def test_spiffe_subject_takes_jwt_svid_rules(both: TrustStore, ec_signer: Signer) -> None:
    token = Minter(ec_signer, iss=ISSUER).token()  # an `iss` does not make an SVID an OIDC token
    assert verify_workload_proof(token, both, audience=AUDIENCE, now=NOW).kind == "spiffe"


def test_other_subject_with_a_trusted_issuer_takes_oidc_rules(
    both: TrustStore, ec_signer: Signer
) -> None:
    token = Minter(ec_signer, sub="system:serviceaccount:prod:api", iss=ISSUER).token()
    workload = verify_workload_proof(token, both, audience=AUDIENCE, now=NOW)
    assert (workload.kind, workload.subject) == ("oidc", "system:serviceaccount:prod:api")


def test_jwt_svid_rules_stay_strict_even_with_a_trusted_iss(
    both: TrustStore, ec_signer: Signer
) -> None:
    """An OIDC-looking header member does not buy the looser OIDC header rules."""
    token = Minter(ec_signer, iss=ISSUER).token(header={"x5t": "abc"})
    assert code_of(token, both) == "header_parameter_not_allowed"


def test_uppercase_spiffe_scheme_is_judged_as_a_spiffe_id(
    both: TrustStore, ec_signer: Signer
) -> None:
    token = Minter(ec_signer, sub="SPIFFE://example.org/a", iss=ISSUER).token()
    assert code_of(token, both) == "spiffe_id_invalid"


def test_unknown_issuer(both: TrustStore, ec_signer: Signer) -> None:
    assert code_of(Minter(ec_signer, sub="x", iss="https://evil.example").token(), both) == (
        "issuer_unknown"
    )
    assert code_of(Minter(ec_signer, sub="x").token(), both) == "issuer_unknown"
    assert code_of(Minter(ec_signer, sub="x", iss=5).token(), both) == "issuer_unknown"  # type: ignore[arg-type]


def test_bad_alg_wins_over_an_unknown_issuer(both: TrustStore, ec_signer: Signer) -> None:
    token = Minter(ec_signer, sub="x", iss="https://evil.example").token(header={"alg": "none"})
    assert code_of(token, both) == "alg_not_allowed"


def test_structure_is_checked_before_dispatch(both: TrustStore) -> None:
    assert code_of("{}", both) == "json_serialization_not_allowed"
    assert code_of("a.b", both) == "token_malformed"
    assert code_of("x" * 20000, both) == "token_too_large"


def test_kid_less_svid_is_refused_by_default(both: TrustStore, ec_signer: Signer) -> None:
    assert code_of(Minter(ec_signer).token(header={"kid": DROP}), both) == "kid_missing"
