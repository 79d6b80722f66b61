"""From presented credentials to callers, on both backends: every kind, every refusal, caching."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from callers_world import BOT, GATEWAY, OIDC_ISSUER, World
from cryptography.hazmat.primitives.serialization import Encoding

from caller_support import issue, make_ca
from tether.callers import Authenticator, Role, add_api_key, admin_token, revoke_api_key
from tether.callers import authenticator as authenticator_module
from tether.callers.errors import (
    ApiKeyInvalid,
    CallerDisabled,
    CallerUnknown,
    ClientCertificateInvalid,
    CredentialsMissing,
    CredentialsUnsupported,
)
from tether.callers.x509 import ClientCaBundle
from tether.errors import Unauthenticated
from tether.estate import apply_estate
from tether.store import migrate
from tether.store.engine import open_engine
from tether.store.tables import identities
from tether.tokens import KeyRing, load_or_create_master_key


def refused(world: World, authorization: str | None, der: bytes | None = None) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        world.authenticator.authenticate(authorization, der)
    return caught.value


# --- API keys ---------------------------------------------------------------------------


def test_an_api_key_as_bearer_or_raw(world: World) -> None:
    issued = add_api_key(world.engine, "gw-1")
    for authorization in (f"Bearer {issued.key}", issued.key, f"bearer   {issued.key}  "):
        caller = world.authenticator.authenticate(authorization)
        assert (caller.identity_id, caller.roles) == ("gw-1", frozenset({Role.PEP}))
        assert (caller.credential, caller.credential_id) == ("api_key", issued.key_id)


def test_a_wrong_unknown_or_revoked_key_is_refused_alike(world: World) -> None:
    issued = add_api_key(world.engine, "gw-1")
    wrong = issued.key[:-2] + ("AA" if not issued.key.endswith("AA") else "BB")
    unknown = "tpk_0000000000000000_" + "A" * 43
    for key in (wrong, unknown, "tpk_broken"):
        assert isinstance(refused(world, f"Bearer {key}"), ApiKeyInvalid)
    world.authenticator.authenticate(issued.key)
    revoke_api_key(world.engine, "gw-1")
    world.directory.refresh()
    error = refused(world, issued.key)
    assert error.code == "api_key_invalid"
    assert issued.key.partition("_")[2].partition("_")[2] not in error.message


def test_a_key_made_after_the_directory_loaded_works_at_once(world: World) -> None:
    world.directory.refresh()
    issued = add_api_key(world.engine, "late")
    assert world.authenticator.authenticate(issued.key).identity_id == "late"


def test_a_verified_key_is_cached_until_the_directory_changes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = add_api_key(world.engine, "gw-1")
    checks: list[str] = []
    real = authenticator_module.secret_matches

    def counting(*args: Any) -> bool:
        checks.append("x")
        return real(*args)

    monkeypatch.setattr(authenticator_module, "secret_matches", counting)
    for _ in range(100):
        world.authenticator.authenticate(f"Bearer {issued.key}")
    assert len(checks) == 1
    add_api_key(world.engine, "someone-else")
    assert world.directory.refresh()
    world.authenticator.authenticate(f"Bearer {issued.key}")
    assert len(checks) == 2


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, CredentialsMissing),
        ("", CredentialsMissing),
        ("Bearer ", CredentialsMissing),
        ("Basic YWxpY2U6c2VjcmV0", CredentialsUnsupported),
        ("Bearer not-a-credential", CredentialsUnsupported),
    ],
)
def test_missing_or_unsupported_credentials(
    world: World, authorization: str | None, error: type[Exception]
) -> None:
    assert isinstance(refused(world, authorization), error)


# --- admin tokens -----------------------------------------------------------------------


def test_an_admin_token_carries_the_roles_its_user_holds(world: World) -> None:
    token = admin_token(world.engine, world.keys, "carol", issuer="t").token
    caller = world.authenticator.authenticate(f"Bearer {token}")
    assert caller.identity_id == "carol"
    assert caller.roles == frozenset({Role.AUDITOR, Role.APPROVER})
    assert caller.credential == "admin_token"
    narrow = admin_token(world.engine, world.keys, "carol", issuer="t", roles=[Role.AUDITOR])
    assert world.authenticator.authenticate(narrow.token).roles == frozenset({Role.AUDITOR})


def test_an_admin_token_loses_what_its_user_loses(world: World) -> None:
    token = admin_token(world.engine, world.keys, "carol", issuer="t").token
    text = (world.estate / "estate.yaml").read_text()
    (world.estate / "estate.yaml").write_text(
        text.replace("tether_roles: [auditor, approver]", "tether_roles: [approver]")
    )
    apply_estate(world.engine, world.estate)
    world.directory.refresh()
    assert world.authenticator.authenticate(token).roles == frozenset({Role.APPROVER})
    with world.engine.begin() as connection:
        connection.execute(
            identities.update().where(identities.c.id == "carol").values(status="offboarded")
        )
    world.directory.refresh(force=True)
    assert isinstance(refused(world, token), CallerDisabled)


def test_an_expired_admin_token_is_refused(world: World) -> None:
    old = datetime(2020, 1, 1, tzinfo=UTC)
    token = admin_token(world.engine, world.keys, "carol", issuer="t", now=old).token
    assert refused(world, token).code == "admin_token_expired"


def test_an_admin_token_of_another_key_ring_is_refused(world: World, tmp_path: Path) -> None:
    other_store = open_engine(f"sqlite:///{tmp_path}/other.db")
    migrate.upgrade(other_store)
    other_ring = KeyRing(other_store, load_or_create_master_key(tmp_path / "other.key"))
    forged = admin_token(other_store, other_ring, "carol-admin", issuer="t").token
    other_store.dispose()
    assert refused(world, forged).code == "token_key_unknown"


# --- JWT-SVIDs and OIDC tokens ----------------------------------------------------------


def test_a_jwt_svid_of_a_pep(world: World) -> None:
    caller = world.authenticator.authenticate(f"Bearer {world.svid.token(GATEWAY)}")
    assert caller.identity_id == "gateway"
    assert caller.roles == frozenset({Role.PEP, Role.WORKLOAD})
    assert caller.credential == "jwt_svid"


def test_a_workload_without_roles_holds_workload_only(world: World) -> None:
    caller = world.authenticator.authenticate(world.svid.token(BOT))
    assert caller.roles == frozenset({Role.WORKLOAD})


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda w: w.svid.token("spiffe://example.org/nobody"), "workload_unknown"),
        (lambda w: w.svid.token(GATEWAY, audience="other"), "audience_mismatch"),
        (lambda w: w.svid.token(GATEWAY, ttl_s=-120), "token_expired"),
        (lambda w: w.idp.token(GATEWAY), "kid_unknown"),
        (lambda w: w.svid.token("spiffe://other.org/gw"), "trust_domain_unknown"),
    ],
)
def test_svids_that_do_not_prove_a_caller(world: World, make: Any, code: str) -> None:
    assert refused(world, f"Bearer {make(world)}").code == code


def test_an_oidc_token_of_a_person(world: World) -> None:
    token = world.idp.token("carol-sub", iss=OIDC_ISSUER)
    caller = world.authenticator.authenticate(f"Bearer {token}")
    assert caller.identity_id == "carol"
    assert caller.roles == frozenset({Role.AUDITOR, Role.APPROVER})  # people never `workload`
    assert caller.credential == "oidc"


def test_a_verified_jwt_is_cached_until_it_expires(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = authenticator_module.verify_workload_proof

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append("x")
        return real(*args, **kwargs)

    monkeypatch.setattr(authenticator_module, "verify_workload_proof", counting)
    token = world.svid.token(GATEWAY, ttl_s=600)
    for _ in range(50):
        world.authenticator.authenticate(token)
    assert len(calls) == 1
    clock = [datetime.now(UTC).timestamp() + 601]
    later = authenticator_module.Authenticator(
        world.directory, world.keys, audience="tether", clock=lambda: clock[0]
    )
    later._cache = dict(world.authenticator._cache)
    later.authenticate(token)  # past its exp the cache no longer answers: verified again
    assert len(calls) == 2


# --- X.509-SVIDs ------------------------------------------------------------------------


def test_x509_svids(world: World) -> None:
    ca, other = make_ca("spiffe://example.org"), make_ca("spiffe://other.org")
    caller = world.authenticator.authenticate(None, issue(ca, uris=(GATEWAY,)).der())
    assert (caller.identity_id, caller.credential) == ("gateway", "x509_svid")
    assert caller.roles == frozenset({Role.PEP, Role.WORKLOAD})
    cases = [
        (issue(other, uris=("spiffe://other.org/gw",)), "trust_domain_unknown"),
        (issue(ca, uris=("spiffe://example.org/nobody",)), "caller_unknown"),
        (issue(ca), "client_certificate_invalid"),
        (issue(ca, uris=(GATEWAY, BOT)), "client_certificate_invalid"),
        (issue(ca, uris=(GATEWAY,), is_ca=True), "client_certificate_invalid"),
        (issue(ca, uris=(GATEWAY,), expired=True), "client_certificate_invalid"),
        (issue(ca, uris=("https://example.org/x",)), "client_certificate_invalid"),
    ]
    for certificate, code in cases:
        error = refused(world, None, certificate.der())
        assert error.code == code, (code, error.message)
    assert isinstance(refused(world, None, b"not DER"), ClientCertificateInvalid)


def test_authorization_wins_over_a_certificate(world: World) -> None:
    ca = make_ca("spiffe://example.org")
    issued = add_api_key(world.engine, "gw-1")
    caller = world.authenticator.authenticate(issued.key, issue(ca, uris=(GATEWAY,)).der())
    assert caller.identity_id == "gw-1"


def test_an_unknown_identity_behind_a_key_is_refused(world: World) -> None:
    issued = add_api_key(world.engine, "gw-1")
    with world.engine.begin() as connection:
        connection.execute(identities.delete().where(identities.c.id == "gw-1"))
    world.directory.refresh(force=True)
    assert isinstance(refused(world, issued.key), CallerUnknown)


def test_a_malformed_key_is_refused(world: World) -> None:
    assert isinstance(refused(world, "tpk_nope"), ApiKeyInvalid)


def test_a_ca_vouches_for_its_own_trust_domain_only(world: World, tmp_path: Path) -> None:
    ca, other = make_ca("spiffe://example.org"), make_ca("spiffe://other.org")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"".join(c.cert.public_bytes(Encoding.PEM) for c in (ca, other)))
    strict = Authenticator(
        world.directory,
        world.keys,
        audience="tether",
        client_cas=ClientCaBundle.from_pem_file(bundle),
    )
    assert strict.authenticate(None, issue(ca, uris=(GATEWAY,)).der()).identity_id == "gateway"
    with pytest.raises(ClientCertificateInvalid) as refused_:
        strict.authenticate(None, issue(other, uris=(GATEWAY,)).der())
    assert refused_.value.code == "trust_domain_mismatch"
    # Without the bundle's labels only the TLS layer would stand in the way.
    assert world.authenticator.authenticate(None, issue(other, uris=(GATEWAY,)).der())


def test_a_bundle_replaced_in_place_reloads_the_directory(world: World) -> None:
    from caller_support import SvidSigner
    from tether.tokens.trust import add_trust_anchor

    now = datetime.now(UTC)
    world.directory.refresh()
    add_trust_anchor(
        world.engine,
        "spiffe://other.org",
        {"jwks": SvidSigner.make("a").jwks()},
        actor="t",
        now=now,
    )
    assert world.directory.refresh() is True
    assert world.directory.refresh() is False
    # Same number of anchors, new keys: a rotation must still be picked up.
    add_trust_anchor(
        world.engine,
        "spiffe://other.org",
        {"jwks": SvidSigner.make("b").jwks()},
        actor="t",
        now=now,
    )
    assert world.directory.refresh() is True
