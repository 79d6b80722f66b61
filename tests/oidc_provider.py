"""A small OpenID provider for tests, on a real socket: Starlette, uvicorn and joserfc.

It does what the dashboard's sign-in needs of an issuer, and checks what a real one checks:
discovery, a JWKS (one ES256 key), ``/authorize`` (registered client and redirect URI,
``response_type=code``, ``state``, ``nonce``, a ``S256`` code challenge; a page where the
person picks who they are and presses *Sign in*), and ``/token`` (a single-use code of
that client and redirect URI, client_secret_basic, the PKCE verifier) answering an ID
token with ``iss``, ``sub``, ``aud``, ``iat``, ``exp``, ``nonce``, ``email`` and
``groups``. ``id_token_changes`` lets a test alter the next ID token's claims or header.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "tether-dashboard"
CLIENT_SECRET = "s3cret-of-the-dashboard"
# Who may sign in, and the groups the ID token says they are in.
PEOPLE = {"alice": ["sec-admins"], "ada": ["auditors"], "mallory": ["interns"]}


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    person: str


@dataclass
class Provider:
    issuer: str
    redirect_uri: str
    key: ECKey = field(
        default_factory=lambda: ECKey.generate_key("P-256", parameters={"kid": "idp-1"})
    )
    codes: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    id_token_changes: dict[str, Any] = field(default_factory=dict)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.key.as_dict(private=False), "use": "sig", "alg": "ES256"}]}

    def id_token(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        return jwt.encode(
            header or {"alg": "ES256", "kid": self.key.kid, "typ": "JWT"},
            claims,
            self.key,
            algorithms=["ES256"],
        )

    def claims_for(self, person: str, nonce: str, client_id: str = CLIENT_ID) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "sub": person,
            "aud": client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "email": f"{person}@example.org",
            "groups": PEOPLE[person],
        }

    # --- the endpoints ----------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["ES256"],
            }
        )

    async def keys(self, request: Request) -> Response:
        return JSONResponse(self.jwks())

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        problems = [
            name
            for name, ok in (
                ("client_id", q.get("client_id") == CLIENT_ID),
                ("redirect_uri", q.get("redirect_uri") == self.redirect_uri),
                ("response_type", q.get("response_type") == "code"),
                ("scope", "openid" in (q.get("scope") or "").split()),
                ("state", bool(q.get("state"))),
                ("nonce", bool(q.get("nonce"))),
                ("code_challenge_method", q.get("code_challenge_method") == "S256"),
                ("code_challenge", len(q.get("code_challenge") or "") == 43),
            )
            if not ok
        ]
        if problems:
            return HTMLResponse(f"bad authorization request: {', '.join(problems)}", 400)
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in q.items()
        )
        people = "".join(f"<option>{p}</option>" for p in PEOPLE)
        return HTMLResponse(
            "<!doctype html><title>Test IdP</title><h1>Test IdP: who are you?</h1>"
            f'<form method="post" action="/login">{hidden}'
            f'<select id="person" name="person">{people}</select>'
            '<button id="login" type="submit">Sign in</button></form>'
        )

    async def login(self, request: Request) -> Response:
        form = await request.form()
        code = secrets.token_urlsafe(24)
        self.codes[code] = Grant(
            str(form["client_id"]),
            str(form["redirect_uri"]),
            str(form["code_challenge"]),
            str(form["nonce"]),
            str(form["person"]),
        )
        target = f"{form['redirect_uri']}?" + urlencode({"code": code, "state": form["state"]})
        return RedirectResponse(target, status_code=302)

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.token_requests.append(form)
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, 401)
        grant = self.codes.pop(form.get("code", ""), None)  # single use
        verifier = form.get("code_verifier", "")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or grant.redirect_uri != form.get("redirect_uri")
            or grant.challenge != challenge
        ):
            return JSONResponse({"error": "invalid_grant"}, 400)
        claims = {**self.claims_for(grant.person, grant.nonce), **self.id_token_changes}
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(claims),
            }
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.keys),
                Route("/authorize", self.authorize),
                Route("/login", self.login, methods=["POST"]),
                Route("/token", self.token, methods=["POST"]),
            ]
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_provider(redirect_uri: str, port: int | None = None) -> Iterator[Provider]:
    """A provider serving on 127.0.0.1 (uvicorn in a thread) until the block ends."""
    port = port or free_port()
    provider = Provider(f"http://127.0.0.1:{port}", redirect_uri)
    config = uvicorn.Config(provider.app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test OpenID provider did not start")
        time.sleep(0.02)
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(10)
