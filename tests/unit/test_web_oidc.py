"""The dashboard's OIDC sign-in refuses, each with its own code: a bad or spent state, a
nonce of another sign-in, another audience or issuer, ``alg: none`` and HS256, an expired
token, a token of another client (``azp``), no mapped role, a discovery document naming
another issuer; and it maps the role claim.

The issuer's discovery document and JWKS are served by the identity library's in-memory
fetcher; the ID tokens are signed by joserfc with the test provider's key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy import Engine, func, select

from oidc_provider import CLIENT_ID, Provider
from tether.callers import Role
from tether.config import load_settings
from tether.errors import InvalidRequest, TetherError
from tether.identity import InMemoryJwksFetcher
from tether.store import migrate
from tether.store.dashboard_tables import dashboard_signin_flows as flows
from tether.store.engine import open_engine
from tether.web.oidc import FLOW_TTL_S, OidcConfig, OidcSignin, code_challenge, parse_role_map

ISSUER = "https://idp.example.org"


def signin_with(
    provider: Provider,
    engine: Engine,
    *,
    discovered_issuer: str = ISSUER,
    clock: Callable[[], float] = time.time,
) -> OidcSignin:
    settings = load_settings(
        {},
        oidc_issuer=ISSUER,
        oidc_client_id=CLIENT_ID,
        oidc_roles="sec-admins=admin,auditors=auditor",
        issuer="https://tether.example.org",
    )
    config = OidcConfig.from_settings(settings)
    assert config is not None
    fetcher = InMemoryJwksFetcher(
        {
            f"{ISSUER}/.well-known/openid-configuration": {
                "issuer": discovered_issuer,
                "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token",
                "jwks_uri": f"{ISSUER}/jwks",
                "code_challenge_methods_supported": ["S256"],
            },
            f"{ISSUER}/jwks": provider.jwks(),
        }
    )
    return OidcSignin(config, engine, fetcher=fetcher, clock=clock)


@pytest.fixture
def provider() -> Provider:
    return Provider(ISSUER, "https://tether.example.org/signin/oidc/callback")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Engine]:
    """Where the flows are kept, for the tests of the token checks (the tests of the flows
    themselves run on both backends)."""
    engine = open_engine(f"sqlite:///{tmp_path}/tether.db")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def signin(provider: Provider, sqlite_store: Engine) -> OidcSignin:
    return signin_with(provider, sqlite_store)


def refusal(call: Any) -> str:
    with pytest.raises(TetherError) as raised:
        call()
    return raised.value.code


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    def part(value: Any) -> str:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}.{part(signature) if signature else ''}"


def test_a_good_id_token_proves_the_person_with_the_mapped_roles(
    provider: Provider, signin: OidcSignin
) -> None:
    person = signin.person(provider.id_token(provider.claims_for("alice", "n-1")), nonce="n-1")
    assert person.identity_id == "oidc:alice"
    assert person.roles == frozenset({Role.ADMIN})
    assert person.credential == "oidc"
    assert person.attributes["email"] == "alice@example.org"
    both = {**provider.claims_for("ada", "n-2"), "groups": ["auditors", "sec-admins", "x"]}
    assert signin.person(provider.id_token(both), nonce="n-2").roles == {Role.ADMIN, Role.AUDITOR}


def test_the_authorization_url_carries_state_nonce_and_an_s256_challenge(
    provider: Provider, store: Engine
) -> None:
    signin = signin_with(provider, store)
    flow_id, url = signin.begin("/findings")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{ISSUER}/authorize"
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == "https://tether.example.org/signin/oidc/callback"
    flow = signin.take(flow_id, query["state"])
    assert query["nonce"] == flow.nonce
    assert flow.next_page == "/findings"
    digest = hashlib.sha256(flow.verifier.encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 appendix B
    )


def test_a_bad_state_or_a_spent_or_unknown_flow_is_refused(
    provider: Provider, store: Engine
) -> None:
    signin = signin_with(provider, store)
    flow_id, url = signin.begin("")
    state = parse_qs(urlsplit(url).query)["state"][0]
    assert refusal(lambda: signin.finish(flow_id, {"state": "forged", "code": "c"})) == (
        "oidc_state_mismatch"
    )
    # The crossed answer spent the flow: the right state cannot use it afterwards.
    assert refusal(lambda: signin.finish(flow_id, {"state": state, "code": "c"})) == (
        "oidc_flow_unknown"
    )
    assert refusal(lambda: signin.finish("", {"state": state})) == "oidc_flow_unknown"
    other_id, other_url = signin.begin("")
    other_state = parse_qs(urlsplit(other_url).query)["state"][0]
    answer = {"state": other_state, "error": "access_denied", "error_description": "no"}
    assert refusal(lambda: signin.finish(other_id, answer)) == "oidc_issuer_refused"
    with store.connect() as connection:  # every flow taken: none left behind
        assert connection.execute(select(func.count()).select_from(flows)).scalar_one() == 0


def test_a_flow_begun_on_one_replica_is_taken_on_another_once(
    provider: Provider, store: Engine
) -> None:
    first, second = signin_with(provider, store), signin_with(provider, store)
    flow_id, url = first.begin("/reviews")
    state = parse_qs(urlsplit(url).query)["state"][0]
    with store.connect() as connection:
        stored = repr(connection.execute(select(flows)).all())
    assert flow_id not in stored
    assert state not in stored  # sealed
    assert second.take(flow_id, state).next_page == "/reviews"
    assert refusal(lambda: first.take(flow_id, state)) == "oidc_flow_unknown"


def test_a_flow_older_than_ten_minutes_is_refused(provider: Provider, store: Engine) -> None:
    now = [1_000_000.0]
    signin = signin_with(provider, store, clock=lambda: now[0])
    flow_id, url = signin.begin("")
    now[0] += FLOW_TTL_S + 1
    state = parse_qs(urlsplit(url).query)["state"][0]
    assert refusal(lambda: signin.take(flow_id, state)) == "oidc_flow_unknown"


def test_a_nonce_of_another_sign_in_is_refused(provider: Provider, signin: OidcSignin) -> None:
    token = provider.id_token(provider.claims_for("alice", "nonce-of-another"))
    assert refusal(lambda: signin.person(token, nonce="this-one")) == "oidc_nonce_mismatch"
    no_nonce = {k: v for k, v in provider.claims_for("alice", "x").items() if k != "nonce"}
    assert refusal(lambda: signin.person(provider.id_token(no_nonce), nonce="x")) == (
        "oidc_nonce_mismatch"
    )


def test_another_audience_issuer_or_client_is_refused(
    provider: Provider, signin: OidcSignin
) -> None:
    claims = provider.claims_for("alice", "n")
    for changes, code in (
        ({"aud": "another-client"}, "audience_mismatch"),
        ({"iss": "https://evil.example.org"}, "issuer_unknown"),
        ({"azp": "another-client"}, "oidc_azp_mismatch"),
    ):
        token = provider.id_token({**claims, **changes})
        assert refusal(lambda t=token: signin.person(t, nonce="n")) == code


def test_alg_none_and_hs256_are_refused_before_any_key(
    provider: Provider, signin: OidcSignin
) -> None:
    claims = provider.claims_for("alice", "n")
    none = unsigned({"alg": "none", "kid": "idp-1"}, claims)
    assert refusal(lambda: signin.person(none, nonce="n")) == "alg_not_allowed"
    # HS256 keyed with the issuer's public key: the classic key-confusion forgery.
    secret = OctKey.import_key(json.dumps(provider.jwks()["keys"][0]).encode())
    hs256 = jwt.encode({"alg": "HS256", "kid": "idp-1"}, claims, secret, algorithms=["HS256"])
    assert refusal(lambda: signin.person(hs256, nonce="n")) == "alg_not_allowed"


def test_an_expired_token_or_a_forged_signature_is_refused(
    provider: Provider, signin: OidcSignin
) -> None:
    now = int(time.time())
    old = {**provider.claims_for("alice", "n"), "iat": now - 900, "exp": now - 600}
    assert refusal(lambda: signin.person(provider.id_token(old), nonce="n")) == "token_expired"
    impostor = Provider(ISSUER, provider.redirect_uri)  # same kid, another key
    forged = impostor.id_token(impostor.claims_for("alice", "n"))
    assert refusal(lambda: signin.person(forged, nonce="n")) == "signature_invalid"


def test_no_mapped_role_is_refused(provider: Provider, signin: OidcSignin) -> None:
    for groups in (["interns"], [], "interns", None, 7):
        claims = {**provider.claims_for("mallory", "n"), "groups": groups}
        token = provider.id_token(claims)
        assert refusal(lambda t=token: signin.person(t, nonce="n")) == "oidc_no_role"


def test_a_discovery_document_of_another_issuer_is_refused(
    provider: Provider, sqlite_store: Engine
) -> None:
    signin = signin_with(provider, sqlite_store, discovered_issuer="https://evil.example.org")
    assert refusal(lambda: signin.begin("")) == "oidc_discovery_invalid"


def test_the_configuration_is_checked_at_start() -> None:
    assert parse_role_map("a=admin, b = auditor") == {"a": Role.ADMIN, "b": Role.AUDITOR}
    for bad in ("", "a", "a=pep", "=admin", "a=workload"):
        with pytest.raises(InvalidRequest):
            parse_role_map(bad)
    for settings in (
        {"oidc_issuer": ISSUER},  # no client id
        {"oidc_issuer": "http://idp.example.org", "oidc_client_id": "c", "oidc_roles": "a=admin"},
        {"oidc_issuer": ISSUER, "oidc_client_id": "c", "oidc_roles": "a=admin", "oidc_scopes": "x"},
    ):
        with pytest.raises(InvalidRequest):
            OidcConfig.from_settings(load_settings({}, **settings))
    assert OidcConfig.from_settings(load_settings({})) is None
