"""A real RFC 8935 push receiver for the Shared Signals tests.

:class:`SetReceiver` listens on 127.0.0.1 (``http.server`` in a thread). For every POST it
checks the media types, the bearer token when it has one, and the SET's signature against
a JWKS it is given (a callable, so it can fetch tether's ``/.well-known/jwks.json``), then
answers the next status of its script (202 once the script is used up). A SET whose
signature does not verify is answered ``400 {"err": "invalid_key"}``, as RFC 8935 §2.3 says.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

SET_MEDIA_TYPE = "application/secevent+jwt"


@dataclass
class Received:
    status: int
    headers: dict[str, str]
    token: str
    header: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)
    verified: bool = False


class SetReceiver:
    def __init__(
        self,
        jwks: Callable[[], dict[str, Any]],
        *,
        script: Iterable[int] = (),
        token: str | None = None,
    ) -> None:
        self._jwks = jwks
        self._script = list(script)
        self._token = token
        self._lock = threading.Lock()
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length).decode("ascii", "replace")
                status, answer = receiver._handle(dict(self.headers.items()), body)
                payload = json.dumps(answer).encode() if answer else b""
                self.send_response(status)
                if payload:
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/events"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handle(self, headers: dict[str, str], body: str) -> tuple[int, dict[str, str] | None]:
        lowered = {k.lower(): v for k, v in headers.items()}
        record = Received(0, lowered, body)
        status, answer = self._check(lowered, body, record)
        record.status = status
        with self._lock:
            self.received.append(record)
        return status, answer

    def _check(
        self, headers: dict[str, str], body: str, record: Received
    ) -> tuple[int, dict[str, str] | None]:
        if headers.get("content-type") != SET_MEDIA_TYPE:
            return 400, {"err": "invalid_request", "description": "not a secevent+jwt"}
        if "application/json" not in headers.get("accept", ""):
            return 400, {"err": "invalid_request", "description": "accept must allow json"}
        if self._token is not None and headers.get("authorization") != f"Bearer {self._token}":
            return 401, {"err": "authentication_failed", "description": "bad token"}
        try:
            decoded = jwt.decode(
                body, KeySet.import_key_set(self._jwks()), algorithms=["ES256", "RS256"]
            )
        except (JoseError, ValueError) as exc:
            return 400, {"err": "invalid_key", "description": str(exc)}
        record.header, record.claims, record.verified = (
            dict(decoded.header),
            dict(decoded.claims),
            True,
        )
        with self._lock:
            status = self._script.pop(0) if self._script else 202
        if status == 400:
            return 400, {"err": "invalid_audience", "description": "not for us"}
        return status, None

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.status == 202]

    def wait_for(self, count: int, *, timeout: float = 15.0, accepted: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                seen = [r for r in self.received if r.status == 202 or not accepted]
            if len(seen) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"receiver got {len(self.received)} SETs: {self.received}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


ISSUER = "https://tether.test"
