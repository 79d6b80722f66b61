"""Signing keys: encrypted at rest, rotation with overlap, sign and verify."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from tether.store.key_tables import signing_keys
from tether.tokens import KeyRing, KeyStoreError, TokenRejected, load_or_create_master_key


@pytest.fixture
def master(tmp_path: Path) -> bytes:
    return load_or_create_master_key(tmp_path / "keys" / "master.key")


def test_master_key_file_is_created_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "m.key"
    key = load_or_create_master_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_master_key(path) == key


def test_master_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.key"
    load_or_create_master_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyStoreError, match="must be 600"):
        load_or_create_master_key(path)


def test_inline_master_key_must_be_32_bytes(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="32 bytes"):
        load_or_create_master_key(tmp_path / "x", base64.b64encode(b"short").decode())


def test_private_keys_are_encrypted_at_rest(store: Engine, master: bytes) -> None:
    ring = KeyRing(store, master)
    kid = ring.active().kid
    with store.connect() as connection:
        sealed = connection.execute(select(signing_keys.c.private_key_enc)).scalar_one()
    assert "PRIVATE KEY" not in sealed
    assert "PRIVATE KEY" not in base64.b64decode(sealed).decode("latin-1")
    assert all("d" not in k for k in ring.jwks()["keys"]), "private parameter in the JWKS"
    assert ring.jwks()["keys"][0]["kid"] == kid


def test_wrong_master_key_cannot_load_the_keys(store: Engine, master: bytes) -> None:
    KeyRing(store, master).active()
    with pytest.raises(KeyStoreError, match="cannot be decrypted"):
        KeyRing(store, bytes(32))


def test_sign_and_verify_round_trip(store: Engine, master: bytes) -> None:
    ring = KeyRing(store, master)
    token = ring.sign({"sub": "billing-bot", "n": 1}, typ="at+jwt")
    assert ring.verify(token, typ="at+jwt") == {"sub": "billing-bot", "n": 1}
    with pytest.raises(TokenRejected) as wrong_type:
        ring.verify(token, typ="secevent+jwt")
    assert wrong_type.value.code == "token_type_invalid"


def _tamper_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def test_tampered_token_is_rejected(store: Engine, master: bytes) -> None:
    ring = KeyRing(store, master)
    token = ring.sign({"sub": "billing-bot"}, typ="at+jwt")
    with pytest.raises(TokenRejected) as rejected:
        ring.verify(_tamper_payload(token), typ="at+jwt")
    assert rejected.value.code == "token_signature_invalid"


def test_token_from_another_store_is_rejected(store: Engine, master: bytes, tmp_path: Path) -> None:
    from tether.store import migrate
    from tether.store.engine import open_engine

    other = open_engine(f"sqlite:///{tmp_path}/other.db")
    migrate.upgrade(other)
    foreign = KeyRing(other, master).sign({"sub": "x"}, typ="at+jwt")
    with pytest.raises(TokenRejected) as rejected:
        KeyRing(store, master).verify(foreign, typ="at+jwt")
    assert rejected.value.code == "token_key_unknown"


def test_rotation_keeps_old_key_verifying_until_its_deadline(store: Engine, master: bytes) -> None:
    ring = KeyRing(store, master)
    old_token = ring.sign({"sub": "a"}, typ="at+jwt")
    old_kid = ring.active().kid
    new = ring.rotate(retire_after=timedelta(minutes=5))
    assert new.kid != old_kid
    assert ring.active().kid == new.kid
    assert {k["kid"] for k in ring.jwks()["keys"]} == {old_kid, new.kid}
    assert ring.verify(old_token, typ="at+jwt") == {"sub": "a"}
    later = datetime.now(UTC) + timedelta(minutes=6)
    assert {k["kid"] for k in ring.jwks(later)["keys"]} == {new.kid}
    with pytest.raises(TokenRejected):
        ring.verify(old_token, typ="at+jwt", now=later)


def test_rs256_keys_are_available(store: Engine, master: bytes) -> None:
    ring = KeyRing(store, master)
    key = ring.rotate(alg="RS256")
    assert key.public_jwk["kty"] == "RSA"
    assert ring.verify(ring.sign({"sub": "x"}, typ="at+jwt"), typ="at+jwt") == {"sub": "x"}


def test_unknown_algorithm_is_refused(store: Engine, master: bytes) -> None:
    with pytest.raises(KeyStoreError, match="HS256"):
        KeyRing(store, master).rotate(alg="HS256")
