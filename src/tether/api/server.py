"""Hosting the app on uvicorn: TLS and mTLS, the client certificate, header limits.

uvicorn does not hand client certificates to the application. :func:`http_protocol`
makes a subclass of uvicorn's httptools protocol that reads the verified peer
certificate once per connection (``transport.get_extra_info("ssl_object")``) and puts its
DER bytes in every request's ``scope["state"][PEER_CERT_KEY]``, where the gate reads
them. The same subclass bounds the bytes of a request line plus headers: over
``max_header_bytes`` it answers 431 and closes the connection before the parser has
buffered more (httptools itself has no limit).

It also keeps connections from costing other callers (:class:`ConnectionLimits`): at most
``max_connections`` open at once and ``max_connections_per_address`` from one client
address (one more is answered 503 and closed at once); a client has ``header_timeout_s``
to send a request line and headers, from connecting or from its first byte on a kept-alive
connection (then 408 and closed), and ``body_timeout_s`` for the body after them (then
closed). uvicorn closes kept-alive connections idle for ``keep_alive_s``. So idle, slow-
header and slow-body clients hold a bounded number of descriptors for a bounded time.

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
import resource
import ssl
import time
from asyncio import sslproto
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from tether.api.asgi import PEER_CERT_KEY
from tether.api.errors import problem
from tether.config import Settings

log = logging.getLogger(__name__)
_HANDSHAKE_TIMEOUT_S = 10
_SHUTDOWN_TIMEOUT_S = 2
_REFUSAL_LOG_EVERY_S = 10.0
# Descriptors kept for what is not a client connection: the store, logs, the worker's pipes.
_RESERVED_DESCRIPTORS = 256


@dataclass(frozen=True)
class TlsFiles:
    """Server certificate and key; with ``client_ca``, client certificates are verified."""

    cert: Path
    key: Path
    client_ca: Path | None = None
    require_client_cert: bool = False


def _refusal(status: int, reason: str, detail: str, code: str) -> bytes:
    """A whole HTTP/1.1 answer (problem+json) sent before the connection is closed."""
    body = problem(status, detail, code)
    head = (
        f"HTTP/1.1 {status} {reason}\r\n".encode() + b"content-type: application/problem+json\r\n"
        b"x-content-type-options: nosniff\r\n"
        b"cache-control: no-store\r\n"
        b"connection: close\r\n" + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections a server keeps open, and how long a client may take."""

    max_connections: int = 4096
    max_connections_per_address: int = 256
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_connections=settings.max_connections,
            max_connections_per_address=settings.max_connections_per_address,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
        )


@dataclass
class OpenConnections:
    """The connections a server holds open, in all and by client address."""

    limits: ConnectionLimits
    total: int = 0
    by_address: dict[str, int] = field(default_factory=dict)
    refused: int = 0

    def admit(self, address: str) -> str | None:
        """Count one more connection from ``address``; or say which limit it is over."""
        if self.total >= self.limits.max_connections:
            self.refused += 1
            return "max_connections"
        held = self.by_address.get(address, 0)
        if held >= self.limits.max_connections_per_address:
            self.refused += 1
            return "max_connections_per_address"
        self.total += 1
        self.by_address[address] = held + 1
        return None

    def release(self, address: str) -> None:
        self.total -= 1
        held = self.by_address.pop(address, 1) - 1
        if held > 0:
            self.by_address[address] = held


def _peer_address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "?")


def http_protocol(
    max_header_bytes: int, limits: ConnectionLimits | None = None
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol, passing on the client certificate, with header,
    connection and time limits (see the module docs)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    bounds = limits or ConnectionLimits()
    open_connections = OpenConnections(bounds)
    header_refusal = _refusal(
        431,
        "Request Header Fields Too Large",
        f"request line and headers exceed {max_header_bytes} bytes",
        "request_headers_too_large",
    )
    header_timeout = _refusal(
        408,
        "Request Timeout",
        f"request line and headers not received within {bounds.header_timeout_s:g} s "
        "(TETHER_HEADER_TIMEOUT_S)",
        "request_timeout",
    )
    busy = {
        name: _refusal(
            503,
            "Service Unavailable",
            f"too many open connections ({name}, TETHER_{name.upper()})",
            "too_many_connections",
        )
        for name in ("max_connections", "max_connections_per_address")
    }
    refusals = _Refusals()

    class TetherHttpProtocol(HttpToolsProtocol):
        # Bytes of the current request's line and headers seen so far, counted before the
        # parser buffers them; the last 3 bytes seen, to find a `\r\n\r\n` split across reads.
        _awaiting_headers = True
        _header_bytes = 0
        _tail = b""
        # The client address this connection is counted under (None: not counted).
        _address: str | None = None
        # The deadline for the request line and headers, or for the body.
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            address = _peer_address(transport)
            over = open_connections.admit(address)
            if over is not None:
                refusals.log(address, f"connection refused: over {over}")
                transport.write(busy[over])
                transport.close()
                return
            self._address = address
            ssl_object = transport.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            # app_state is copied into each request's scope["state"]: per connection here.
            self.app_state = {**self.app_state, PEER_CERT_KEY: der}
            self._arm(bounds.header_timeout_s, self._headers_late)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._address is not None:
                open_connections.release(self._address)
                self._address = None
            super().connection_lost(exc)

        def _arm(self, seconds: float, handler: Callable[[], None]) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, handler)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _headers_late(self) -> None:
            self._deadline = None
            if self._awaiting_headers and not self.transport.is_closing():
                self._awaiting_headers = False
                self.transport.write(header_timeout)
                self.transport.close()

        def _body_late(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()  # the app reading the body sees a disconnect

        def on_headers_complete(self) -> None:
            self._awaiting_headers, self._header_bytes, self._tail = False, 0, b""
            self._arm(bounds.body_timeout_s, self._body_late)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()
            self._awaiting_headers = True

        def data_received(self, data: bytes) -> None:
            if self._awaiting_headers:
                if self._deadline is None:  # a kept-alive connection's next request begins
                    self._arm(bounds.header_timeout_s, self._headers_late)
                window = self._tail + data
                end = window.find(b"\r\n\r\n")
                seen = len(data) if end < 0 else end + 4 - len(self._tail)
                self._header_bytes += seen
                self._tail = window[-3:]
                if self._header_bytes > max_header_bytes:
                    self._awaiting_headers = False
                    self._disarm()
                    self.transport.write(header_refusal)
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

    def log(self, peer: Any, reason: str) -> None:
        now = time.monotonic()
        if now - self._last.get(reason, -_REFUSAL_LOG_EVERY_S) >= _REFUSAL_LOG_EVERY_S:
            self._last[reason] = now
            log.warning("%s: %s", peer, reason)

    def log_handshake(self, peer: Any, exc: BaseException) -> None:
        reason = str(getattr(exc, "verify_message", "") or getattr(exc, "reason", "") or exc)
        self.log(peer, f"TLS handshake refused: {reason}")


def tls_protocol(
    inner: Callable[..., asyncio.Protocol], context: ssl.SSLContext
) -> Callable[..., asyncio.BaseProtocol]:
    """A protocol factory terminating TLS in front of ``inner`` (see the module docs)."""
    refusals = _Refusals()

    class AlertingSSLProtocol(sslproto.SSLProtocol):
        def _on_handshake_complete(self, handshake_exc: BaseException | None) -> None:
            if handshake_exc is not None:
                transport = getattr(self, "_transport", None)
                refusals.log_handshake(
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

    limits = ConnectionLimits.of(settings)
    limits = replace(limits, max_connections=_descriptor_cap(limits.max_connections))
    protocol: Callable[..., Any] = http_protocol(settings.max_header_bytes, limits)
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
        timeout_keep_alive=settings.keep_alive_s,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_graceful_shutdown=10,
    )


def _descriptor_cap(wanted: int) -> int:
    """Raise the soft descriptor limit to the hard one; ``wanted`` connections, or as many
    as the descriptors left after the server's own (logged when fewer)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    cap = max(1, soft - _RESERVED_DESCRIPTORS)
    if cap < wanted:
        log.warning(
            "max_connections lowered from %d to %d: the process may open %d descriptors",
            wanted,
            cap,
            soft,
        )
        return cap
    return wanted
