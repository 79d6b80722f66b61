"""Test support for ``tether.identity``: keys, token minting, a local OIDC issuer, a fake clock.

Tokens are signed here with joserfc's algorithm models so a test can put any
header or payload on the wire, including ones no well-behaved library would emit.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from tether.errors import Unauthenticated
from tether.identity import TrustStore, VerifiedWorkload, verify_jwt_svid, verify_workload_proof
from tether.identity.errors import IdentityProofError

_DATA = Path(__file__).resolve().parents[2] / "data" / "shared"  # vendored ../shared/data
SPIFFE_DATA = Path(os.environ.get("TETHER_SHARED_DATA", _DATA)) / "spiffe"

NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
NOW_S = int(NOW.timestamp())
AUDIENCE = "tether"
WORKLOAD = "spiffe://example.org/agents/billing-bot"
ISSUER = "https://issuer.example"

DROP = object()  # as an override value: leave the member out


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


@dataclass(frozen=True)
class Signer:
    """A private key, the ``kid`` it publishes and the ``alg`` it signs with."""

    kid: str
    alg: str
    key: ECKey | RSAKey = field(repr=False)

    def jwk(self, **extra: Any) -> dict[str, Any]:
        """The public JWK; ``extra`` adds or (with ``DROP``) removes members."""
        jwk: dict[str, Any] = {**self.key.as_dict(private=False), "kid": self.kid}
        return _apply(jwk, extra)

    def sign(self, signing_input: bytes, alg: str | None = None) -> bytes:
        """Sign as ``alg`` says; an ``alg`` no signer knows gets this key's own signature."""
        model = JWSRegistry.algorithms.get(alg or self.alg, JWSRegistry.algorithms[self.alg])
        if model.key_type != self.key.key_type:
            model = JWSRegistry.algorithms[self.alg]
        return model.sign(signing_input, self.key)

    def with_kid(self, kid: str) -> Signer:
        return Signer(kid, self.alg, self.key)


def _apply(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for name, value in overrides.items():
        if value is DROP:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def jwks(*jwks_entries: dict[str, Any], **members: Any) -> dict[str, Any]:
    return {"keys": list(jwks_entries), **members}


def encode(header: Mapping[str, Any], claims: Mapping[str, Any] | bytes, signer: Signer) -> str:
    """A compact JWS of exactly this header and payload, signed by ``signer``."""
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = f"{b64json(header)}.{b64(payload)}".encode()
    alg = header.get("alg")
    signature = signer.sign(signing_input, alg if isinstance(alg, str) else None)
    return f"{signing_input.decode()}.{b64(signature)}"


class Minter:
    """Mints tokens: JWT-SVID claims by default, anything by override."""

    def __init__(self, signer: Signer, *, sub: str = WORKLOAD, iss: str | None = None) -> None:
        self.signer = signer
        self.sub = sub
        self.iss = iss

    def claims(self, **overrides: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "sub": self.sub,
            "aud": AUDIENCE,
            "exp": NOW_S + 300,
            "iat": NOW_S - 10,
        }
        if self.iss is not None:
            base["iss"] = self.iss
        return _apply(base, overrides)

    def header(self, signer: Signer | None = None, **overrides: Any) -> dict[str, Any]:
        signer = signer or self.signer
        return _apply({"alg": signer.alg, "kid": signer.kid, "typ": "JWT"}, overrides)

    def token(
        self,
        *,
        signer: Signer | None = None,
        header: Mapping[str, Any] | None = None,
        payload: bytes | None = None,
        **claims: Any,
    ) -> str:
        signer = signer or self.signer
        head = self.header(signer, **(header or {}))
        return encode(head, payload if payload is not None else self.claims(**claims), signer)


def with_raw_claim(mint: Minter, claim: str, raw: str) -> str:
    """A token whose claim ``claim`` is the raw JSON text ``raw`` (e.g. ``NaN``, ``1e400``)."""
    claims = mint.claims(**{claim: 0})
    text = json.dumps(claims).replace(f'"{claim}": 0', f'"{claim}": {raw}')
    return mint.token(payload=text.encode())


def spiffe_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SPIFFE_DATA / name).read_text())
    return data


# A real local OIDC issuer: discovery and JWKS over HTTP on 127.0.0.1.


class LocalIssuer:
    """Serves ``/.well-known/openid-configuration`` and ``/jwks.json``; counts requests."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.requests: list[str] = []
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with issuer._lock:
                    issuer.requests.append(self.path)
                    document = issuer.documents.get(self.path)
                body = json.dumps(document).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.documents["/.well-known/openid-configuration"] = {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/jwks.json",
        }
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def publish(self, *signers: Signer) -> None:
        with self._lock:
            self.documents["/jwks.json"] = jwks(*(s.jwk(use="sig") for s in signers))

    def count(self, path: str) -> int:
        with self._lock:
            return self.requests.count(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


class FakeClock:
    """A monotonic clock that only moves when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def verify_svid(token: str, trust: TrustStore, **kwargs: Any) -> VerifiedWorkload:
    return verify_jwt_svid(
        token, trust, audience=kwargs.pop("audience", AUDIENCE), now=NOW, **kwargs
    )


def assert_refused(
    token: str,
    trust: TrustStore,
    code: str,
    *,
    audience: str = AUDIENCE,
    entries: tuple[Callable[..., VerifiedWorkload], ...] = (verify_jwt_svid, verify_workload_proof),
) -> IdentityProofError:
    """Every entry point refuses ``token`` with ``code``; no message holds the token."""
    for entry in entries:
        with pytest.raises(IdentityProofError) as caught:
            entry(token, trust, audience=audience, now=NOW)
        assert caught.value.code == code, caught.value.message
        assert token not in caught.value.message
        assert isinstance(caught.value, Unauthenticated)
    return caught.value
