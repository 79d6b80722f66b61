"""Hosting the app on uvicorn: TLS and mTLS, the client certificate, header limits.

uvicorn does not hand client certificates to the application. :func:`http_protocol`
makes a subclass of uvicorn's httptools protocol that reads the verified peer
certificate once per connection (``transport.get_extra_info("ssl_object")``) and puts its
DER bytes in every request's ``scope["state"][PEER_CERT_KEY]``, where the gate reads
them. The same subclass bounds the bytes of a request line plus headers: over
``max_header_bytes`` it answers 431 and closes the connection before the parser has
buffered more (httptools itself has no limit).

TLS is terminated by :func:`tls_protocol`, asyncio's TLS protocol with one change: when
the handshake fails (a client certificate from an unknown CA, an expired one, none when
one is required) the TLS alert saying why is sent before the connection closes, and the
reason is logged (rate-limited). asyncio and uvloop both drop the alert, which leaves the
client with a bare "server disconnected".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from asyncio import sslproto
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from tether.api.asgi import PEER_CERT_KEY
from tether.api.errors import problem
from tether.config import Settings

log = logging.getLogger(__name__)
_HANDSHAKE_TIMEOUT_S = 10
_SHUTDOWN_TIMEOUT_S = 2
_REFUSAL_LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class TlsFiles:
    """Server certificate and key; with ``client_ca``, client certificates are verified."""

    cert: Path
    key: Path
    client_ca: Path | None = None
    require_client_cert: bool = False


def _header_refusal(limit: int) -> bytes:
    body = problem(
        431, f"request line and headers exceed {limit} bytes", "request_headers_too_large"
    )
    head = (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/problem+json\r\n"
        b"x-content-type-options: nosniff\r\n"
        b"cache-control: no-store\r\n"
        b"connection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


def http_protocol(max_header_bytes: int) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol, passing on the client certificate, with a header limit."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    refusal = _header_refusal(max_header_bytes)

    class TetherHttpProtocol(HttpToolsProtocol):
        # Bytes of the current request's line and headers seen so far, counted before the
        # parser buffers them; the last 3 bytes seen, to find a `\r\n\r\n` split across reads.
        _awaiting_headers = True
        _header_bytes = 0
        _tail = b""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            # app_state is copied into each request's scope["state"]: per connection here.
            self.app_state = {**self.app_state, PEER_CERT_KEY: der}

        def on_headers_complete(self) -> None:
            self._awaiting_headers, self._header_bytes, self._tail = False, 0, b""
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._awaiting_headers = True

        def data_received(self, data: bytes) -> None:
            if self._awaiting_headers:
                window = self._tail + data
                end = window.find(b"\r\n\r\n")
                seen = len(data) if end < 0 else end + 4 - len(self._tail)
                self._header_bytes += seen
                self._tail = window[-3:]
                if self._header_bytes > max_header_bytes:
                    self._awaiting_headers = False
                    self.transport.write(refusal)
                    self.transport.close()
                    return
            super().data_received(data)

    return TetherHttpProtocol


def server_context(tls: TlsFiles) -> ssl.SSLContext:
    """The server's TLS context: TLS 1.2 or later; client certificates verified against
    ``client_ca`` when given (optional, or required)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(tls.cert), str(tls.key))
    if tls.client_ca is not None:
        context.load_verify_locations(str(tls.client_ca))
        context.verify_mode = ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL
    return context


class _Refusals:
    """Logs why TLS handshakes fail, at most once per reason every few seconds."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def log(self, peer: Any, exc: BaseException) -> None:
        reason = str(getattr(exc, "verify_message", "") or getattr(exc, "reason", "") or exc)
        now = time.monotonic()
        if now - self._last.get(reason, -_REFUSAL_LOG_EVERY_S) >= _REFUSAL_LOG_EVERY_S:
            self._last[reason] = now
            log.warning("TLS handshake with %s refused: %s", peer, reason)


def tls_protocol(
    inner: Callable[..., asyncio.Protocol], context: ssl.SSLContext
) -> Callable[..., asyncio.BaseProtocol]:
    """A protocol factory terminating TLS in front of ``inner`` (see the module docs)."""
    refusals = _Refusals()

    class AlertingSSLProtocol(sslproto.SSLProtocol):
        def _on_handshake_complete(self, handshake_exc: BaseException | None) -> None:
            if handshake_exc is not None:
                transport = getattr(self, "_transport", None)
                refusals.log(
                    transport.get_extra_info("peername") if transport else "?", handshake_exc
                )
                # The alert OpenSSL wrote is still in the outgoing buffer: send it.
                with contextlib.suppress(Exception):
                    self._process_outgoing()  # type: ignore[attr-defined]
            super()._on_handshake_complete(handshake_exc)

    def factory(**kwargs: Any) -> asyncio.BaseProtocol:
        return AlertingSSLProtocol(
            asyncio.get_running_loop(),
            inner(**kwargs),
            context,
            None,  # type: ignore[arg-type]  # no waiter: the server does not wait on it
            server_side=True,
            ssl_handshake_timeout=_HANDSHAKE_TIMEOUT_S,
            # A client that never answers close_notify must not hold up a clean shutdown.
            ssl_shutdown_timeout=_SHUTDOWN_TIMEOUT_S,
        )

    return factory


def serve(app: Any, settings: Settings, *, tls: TlsFiles | None = None) -> None:
    """Run ``app`` on uvicorn at ``settings.host:settings.port`` until stopped."""
    import uvicorn

    protocol: Callable[..., Any] = http_protocol(settings.max_header_bytes)
    if tls is not None:
        protocol = tls_protocol(protocol, server_context(tls))
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        http=cast(type[asyncio.Protocol], protocol),
        log_level="warning",
        access_log=False,
        lifespan="on",
        server_header=False,
        limit_concurrency=settings.max_concurrency,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_graceful_shutdown=10,
    )
