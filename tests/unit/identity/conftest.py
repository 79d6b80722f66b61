"""Fixtures for the identity tests: session keys, a trust store, a local OIDC issuer.

The helpers themselves (signing, minting, the issuer server) live in
``identity_support.py`` beside this file, so test modules can import them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from identity_support import FakeClock, LocalIssuer, Minter, Signer, jwks
from joserfc.jwk import ECKey, RSAKey

from tether.identity import JwtSvidBundle, TrustStore

# Keys: generated once per session (RSA generation is the slow part).


@pytest.fixture(scope="session")
def ec_signer() -> Signer:
    return Signer("ec-1", "ES256", ECKey.generate_key("P-256"))


@pytest.fixture(scope="session")
def rsa_signer() -> Signer:
    return Signer("rsa-1", "RS256", RSAKey.generate_key(2048))


@pytest.fixture(scope="session")
def p384_signer() -> Signer:
    return Signer("ec384-1", "ES384", ECKey.generate_key("P-384"))


@pytest.fixture(scope="session")
def other_domain_signer() -> Signer:
    return Signer("other-1", "ES256", ECKey.generate_key("P-256"))


@pytest.fixture(scope="session")
def attacker_ec() -> Signer:
    """An EC key nobody trusts, publishing the trusted EC key's ``kid``."""
    return Signer("ec-1", "ES256", ECKey.generate_key("P-256"))


@pytest.fixture(scope="session")
def attacker_rsa() -> Signer:
    """An RSA key nobody trusts, publishing the trusted RSA key's ``kid``."""
    return Signer("rsa-1", "RS256", RSAKey.generate_key(2048))


@pytest.fixture
def mint(ec_signer: Signer) -> Minter:
    return Minter(ec_signer)


@pytest.fixture
def example_bundle(ec_signer: Signer, rsa_signer: Signer, p384_signer: Signer) -> JwtSvidBundle:
    """example.org: EC P-256 (no `use`, like go-spiffe), RSA and P-384 (``use: jwt-svid``)."""
    return JwtSvidBundle.from_jwks(
        jwks(
            ec_signer.jwk(),
            rsa_signer.jwk(use="jwt-svid"),
            p384_signer.jwk(use="jwt-svid"),
            spiffe_sequence=7,
            spiffe_refresh_hint=300,
        )
    )


@pytest.fixture
def trust(example_bundle: JwtSvidBundle, other_domain_signer: Signer) -> TrustStore:
    """Trusts example.org (the signers above) and other.org (``other_domain_signer``)."""
    store = TrustStore()
    store.add_spiffe_domain("example.org", example_bundle)
    store.add_spiffe_domain("spiffe://other.org", jwks(other_domain_signer.jwk(use="jwt-svid")))
    return store


@pytest.fixture
def local_issuer() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer()
    yield issuer
    issuer.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
