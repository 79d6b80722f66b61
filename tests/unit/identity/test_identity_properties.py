"""Properties of verification, checked on many generated tokens and key sets (hypothesis).

(a) Claims mutated and *re-signed* with a key the verifier does not trust are
    never accepted, whatever ``kid``/``alg`` they claim (DESIGN: "Tests that can
    fail": byte flips alone only exercise the signature check).
(b) Any character or byte mutation of a valid token that changes it is refused.
(c) Any JSON in header, claims or key set only ever raises tether's own errors.
Verification only ever raises :class:`IdentityProofError`, never anything else.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from identity_support import (
    AUDIENCE,
    NOW,
    NOW_S,
    WORKLOAD,
    Minter,
    Signer,
    b64,
    b64json,
    encode,
    jwks,
)
from joserfc.jwk import ECKey, RSAKey

from tether.identity import (
    JwkKeySet,
    JwtSvidBundle,
    TrustStore,
    verify_jwt_svid,
    verify_workload_proof,
)
from tether.identity.errors import IdentityProofError, TrustConfigInvalid

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

TRUSTED_KIDS = ["ec-1", "rsa-1", "ec384-1", "other-1"]


@pytest.fixture(scope="module")
def attackers() -> list[Signer]:
    """Keys nobody trusts, of every type the trusted bundle holds."""
    return [
        Signer("x", "ES256", ECKey.generate_key("P-256")),
        Signer("x", "RS256", RSAKey.generate_key(2048)),
        Signer("x", "ES384", ECKey.generate_key("P-384")),
    ]


@pytest.fixture(scope="module")
def module_trust(
    ec_signer: Signer, rsa_signer: Signer, p384_signer: Signer, other_domain_signer: Signer
) -> TrustStore:
    store = TrustStore()
    store.add_spiffe_domain(
        "example.org", jwks(ec_signer.jwk(), rsa_signer.jwk(), p384_signer.jwk())
    )
    store.add_spiffe_domain("other.org", jwks(other_domain_signer.jwk()), require_kid=False)
    store.add_oidc_issuer(
        "https://issuer.example",
        jwks=jwks(ec_signer.jwk(use="sig"), rsa_signer.jwk()),
        algorithms=["ES256", "RS256", "PS256"],
        require_kid=False,
    )
    return store


def _assert_refused(token: str, trust: TrustStore) -> None:
    for entry in (verify_jwt_svid, verify_workload_proof):
        try:
            workload = entry(token, trust, audience=AUDIENCE, now=NOW)
        except IdentityProofError:
            continue
        raise AssertionError(f"accepted a forged token as {workload.subject}")


_json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.floats(allow_nan=False)
)
_plausible_subs = st.sampled_from(
    [
        WORKLOAD,
        "spiffe://example.org/admin",
        "spiffe://other.org/svc",
        "spiffe://example.org",
        "repo:acme/app:ref:refs/heads/main",
    ]
)
# Mostly plausible subjects, so most forgeries get as far as the signature check.
_subs = st.one_of(_plausible_subs, _plausible_subs, _plausible_subs, st.text(max_size=40))
_auds = st.one_of(
    st.just(AUDIENCE),
    st.lists(st.sampled_from([AUDIENCE, "reports", "spiffe://example.org/x"]), max_size=3),
    _json_scalar,
)
_times = st.one_of(st.integers(NOW_S - 100, NOW_S + 100_000), _json_scalar)


@st.composite
def forged_claims(draw: st.DrawFn) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    for name, strategy in (
        ("sub", _subs),
        ("aud", _auds),
        ("exp", _times),
        ("nbf", _times),
        ("iat", _times),
        ("iss", st.sampled_from(["https://issuer.example"] * 3 + ["spiffe://example.org", "x"])),
        ("jti", st.text(max_size=10)),
    ):
        if draw(st.booleans()) or name in ("sub", "aud", "exp"):
            claims[name] = draw(strategy)
    extra = draw(st.dictionaries(st.text(max_size=8), _json_scalar, max_size=3))
    return {**extra, **claims}


_headers = st.fixed_dictionaries(
    {
        "alg": st.sampled_from(["ES256", "ES384", "RS256", "PS256", "RS512"]),
        "kid": st.sampled_from(TRUSTED_KIDS),
    },
    optional={"typ": st.sampled_from(["JWT", "JOSE"])},
) | st.fixed_dictionaries(
    {"alg": st.sampled_from(["ES256", "RS256"])},
    optional={"kid": st.text(max_size=8)},
)


@PROPERTY_SETTINGS
@given(claims=forged_claims(), header=_headers, which=st.integers(0, 2))
def test_claims_resigned_with_an_untrusted_key_are_never_accepted(
    module_trust: TrustStore,
    attackers: list[Signer],
    claims: dict[str, Any],
    header: dict[str, Any],
    which: int,
) -> None:
    _assert_refused(encode(header, claims, attackers[which]), module_trust)


@PROPERTY_SETTINGS
@given(
    sub=st.sampled_from([WORKLOAD, "spiffe://example.org/admin", "spiffe://other.org/svc"]),
    kid=st.sampled_from(TRUSTED_KIDS),
    which=st.integers(0, 2),
    exp_delta=st.integers(-10, 10_000),
)
def test_valid_looking_svids_signed_by_an_untrusted_key_are_never_accepted(
    module_trust: TrustStore,
    attackers: list[Signer],
    sub: str,
    kid: str,
    which: int,
    exp_delta: int,
) -> None:
    """Everything right but the key, which publishes a trusted kid."""
    attacker = attackers[which].with_kid(kid)
    _assert_refused(Minter(attacker, sub=sub).token(exp=NOW_S + exp_delta), module_trust)


@pytest.fixture(scope="module")
def valid_tokens(ec_signer: Signer, rsa_signer: Signer, module_trust: TrustStore) -> list[str]:
    tokens = [
        Minter(ec_signer).token(),
        Minter(rsa_signer).token(header={"alg": "PS256"}),
        Minter(ec_signer, sub="repo:acme/app", iss="https://issuer.example").token(),
    ]
    for token in tokens:
        verify_workload_proof(token, module_trust, audience=AUDIENCE, now=NOW)
    return tokens


_replacement = st.one_of(
    st.sampled_from(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ")),
    st.characters(),
)


@st.composite
def mutations(draw: st.DrawFn, token: str) -> str:
    kind = draw(st.sampled_from(["replace", "insert", "delete", "swap", "truncate", "bitflip"]))
    at = draw(st.integers(0, len(token) - 1))
    if kind == "replace":
        return token[:at] + draw(_replacement) + token[at + 1 :]
    if kind == "insert":
        return token[:at] + draw(_replacement) + token[at:]
    if kind == "delete":
        return token[:at] + token[at + 1 :]
    if kind == "swap":
        at = min(at, len(token) - 2)
        return token[:at] + token[at + 1] + token[at] + token[at + 2 :]
    if kind == "truncate":
        return token[:at]
    raw = bytearray(token.encode("ascii"))
    raw[at] ^= 1 << draw(st.integers(0, 7))
    return raw.decode("latin-1")


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), which=st.integers(0, 2))
def test_any_mutation_of_a_valid_token_is_refused(
    module_trust: TrustStore, valid_tokens: list[str], data: st.DataObject, which: int
) -> None:
    token = valid_tokens[which]
    mutated = data.draw(mutations(token))
    assume(mutated != token)
    _assert_refused(mutated, module_trust)


# Any JSON at all in the header, payload or key set: refused with tether's own errors only.

_json = st.recursive(
    _json_scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_header_members = st.sampled_from(["alg", "kid", "typ", "crit", "jku", "x5t"])
_any_header = st.dictionaries(_header_members, _json, max_size=4) | st.fixed_dictionaries(
    {"alg": st.sampled_from(["ES256", "RS256"])},
    optional={"kid": _json, "typ": _json},
)
_any_claims = st.dictionaries(
    st.sampled_from(["sub", "iss", "aud", "exp", "nbf", "iat", "jti", "x"]), _json, max_size=7
)


@PROPERTY_SETTINGS
@given(header=_any_header, claims=_any_claims, signature=st.binary(max_size=80))
def test_any_json_header_and_claims_only_raise_identity_errors(
    module_trust: TrustStore, header: dict[str, Any], claims: dict[str, Any], signature: bytes
) -> None:
    token = f"{b64json(header)}.{b64json(claims)}.{b64(signature)}"
    _assert_refused(token, module_trust)


_any_jwk = st.dictionaries(
    st.sampled_from(["kty", "kid", "use", "alg", "crv", "x", "y", "n", "e", "key_ops", "d"]),
    _json | st.sampled_from(["EC", "RSA", "P-256", "jwt-svid", "sig", "ES256"]),
    max_size=8,
)


@PROPERTY_SETTINGS
@given(document=st.one_of(_json, st.fixed_dictionaries({"keys": st.lists(_any_jwk, max_size=4)})))
def test_any_key_set_document_only_raises_config_errors(document: Any) -> None:
    for kind in (JwtSvidBundle, JwkKeySet):
        with contextlib.suppress(TrustConfigInvalid):  # anything else fails the test
            kind.from_jwks(document if isinstance(document, dict) else json.dumps(document))
