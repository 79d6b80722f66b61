"""tether's signing keys: generation, encrypted storage, rotation, JWKS, sign and verify.

Tokens tether issues (task tokens, admin tokens, Security Event Tokens) are JWS
signed with ES256 (RS256 available) by the *active* key. ``rotate`` makes a new
active key; the old one keeps verifying, and stays in the JWKS, until
``verify_until`` (the longest lifetime of a token it may have signed).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import Engine, insert, select, update

from tether.store.key_tables import signing_keys
from tether.tokens.errors import KeyStoreError, TokenRejected
from tether.tokens.low_s import canonical
from tether.tokens.master_key import decrypt, encrypt

ALGORITHMS = ("ES256", "RS256")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    status: str
    created_at: datetime
    verify_until: datetime | None
    public_jwk: Mapping[str, Any]


class KeyRing:
    """The signing keys in the store, cached in memory; safe to share across threads."""

    def __init__(self, engine: Engine, master_key: bytes) -> None:
        self._engine = engine
        self._master = master_key
        self._private: dict[str, ECKey | RSAKey] = {}
        self._keys: list[SigningKey] = []
        self.reload()

    # --- reading ---------------------------------------------------------------------

    def reload(self) -> None:
        with self._engine.connect() as connection:
            rows = connection.execute(select(signing_keys)).mappings().all()
        keys = [
            SigningKey(
                r["kid"],
                r["alg"],
                r["status"],
                _utc(r["created_at"]),
                _utc(r["verify_until"]) if r["verify_until"] else None,
                r["public_jwk"],
            )
            for r in rows
        ]
        private: dict[str, ECKey | RSAKey] = {}
        for row in rows:
            if row["kid"] in self._private:
                private[row["kid"]] = self._private[row["kid"]]
                continue
            pem = decrypt(self._master, row["private_key_enc"], context=row["kid"].encode())
            key_type = ECKey if row["alg"].startswith("ES") else RSAKey
            private[row["kid"]] = key_type.import_key(pem, parameters={"kid": row["kid"]})
        self._keys = sorted(keys, key=lambda k: k.created_at)
        self._private = private

    def keys(self) -> list[SigningKey]:
        return list(self._keys)

    def active(self) -> SigningKey:
        """The key new tokens are signed with; one is generated if there is none."""
        for key in reversed(self._keys):
            if key.status == "active":
                return key
        return self.rotate()

    def jwks(self, now: datetime | None = None) -> dict[str, Any]:
        """Public keys that may still verify a token (RFC 7517 JWK Set)."""
        moment = now or datetime.now(UTC)
        return {
            "keys": [
                dict(k.public_jwk)
                for k in self._keys
                if k.status == "active" or (k.verify_until and k.verify_until > moment)
            ]
        }

    # --- writing ---------------------------------------------------------------------

    def rotate(
        self, *, alg: str = "ES256", retire_after: timedelta = timedelta(hours=1)
    ) -> SigningKey:
        """Make a new active key; the previous ones verify for ``retire_after`` more."""
        if alg not in ALGORITHMS:
            raise KeyStoreError(f"unsupported signing algorithm `{alg}` (use ES256 or RS256)")
        now = datetime.now(UTC)
        kid = f"{now:%Y%m%d}-{secrets.token_hex(4)}"
        key: ECKey | RSAKey
        if alg == "ES256":
            key = ECKey.generate_key("P-256", parameters={"kid": kid})
        else:
            key = RSAKey.generate_key(2048, parameters={"kid": kid})
        public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
        sealed = encrypt(self._master, key.as_pem(private=True), context=kid.encode())
        with self._engine.begin() as connection:
            connection.execute(
                update(signing_keys)
                .where(signing_keys.c.status == "active")
                .values(status="retired", verify_until=now + retire_after)
            )
            connection.execute(
                insert(signing_keys).values(
                    kid=kid,
                    alg=alg,
                    public_jwk=public,
                    private_key_enc=sealed,
                    status="active",
                    created_at=now,
                    verify_until=None,
                )
            )
        self.reload()
        return next(k for k in self._keys if k.kid == kid)

    # --- tokens ----------------------------------------------------------------------

    def sign(self, claims: Mapping[str, Any], *, typ: str) -> str:
        key = self.active()
        header = {"alg": key.alg, "kid": key.kid, "typ": typ}
        token = jwt.encode(header, dict(claims), self._private[key.kid], algorithms=[key.alg])
        return canonical(token) if key.alg == "ES256" else token  # one signature per token

    def verify(self, token: str, *, typ: str, now: datetime | None = None) -> dict[str, Any]:
        """Verify signature, ``typ`` and ``kid`` of a token tether signed; return its claims."""
        moment = now or datetime.now(UTC)
        usable = {
            k.kid: k
            for k in self._keys
            if k.status == "active" or (k.verify_until and k.verify_until > moment)
        }
        header = unverified_header(token)
        kid = header.get("kid")
        if header.get("typ") != typ:
            raise TokenRejected(f"token `typ` must be `{typ}`", code="token_type_invalid")
        if not isinstance(kid, str) or kid not in usable:
            raise TokenRejected(
                "token is signed by a key tether does not (or no longer) trust",
                code="token_key_unknown",
            )
        key = usable[kid]
        try:
            decoded = jwt.decode(token, KeySet([self._private[kid]]), algorithms=[key.alg])
        except (JoseError, ValueError) as exc:
            raise TokenRejected(
                f"token signature does not verify: {exc}", code="token_signature_invalid"
            ) from None
        return dict(decoded.claims)


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, before any verification (to pick the key)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRejected(
            "token is not a compact JWS (three dot-separated parts)", code="token_malformed"
        )
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise TokenRejected("token header is not base64url JSON", code="token_malformed") from None
    if not isinstance(header, dict):
        raise TokenRejected("token header is not a JSON object", code="token_malformed")
    return header


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
