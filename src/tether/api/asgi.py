"""Small ASGI primitives for the hot routes: read a bounded body, send JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from tether.errors import InvalidRequest, Limit, PayloadTooLarge
from tether.numerals import decimal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON = b"application/json"
PROBLEM_JSON = b"application/problem+json"

# Where the server (``tether.api.server``) puts the DER client certificate of an mTLS
# connection: ``scope["state"][PEER_CERT_KEY]`` (``None`` without one).
PEER_CERT_KEY = "tether.peer_cert"

# On every API answer: no MIME sniffing, no caching of decisions or inventory.
API_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
)
# On every HTML page as well: nothing from elsewhere, no framing, no referrer.
HTML_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000")


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refused as soon as it is known to exceed ``limit`` bytes
    (its ``content-length``, else the bytes received so far).

    Raises:
        PayloadTooLarge: over ``limit`` (the ``max_body_bytes`` setting).
        InvalidRequest: the client went away before the end of the body.
    """
    declared = header(scope, b"content-length")
    size = None if declared is None else decimal(declared.decode("latin-1"))
    # A numeral too long to read declares more than any limit.
    if declared is not None and declared.isdigit() and (size is None or size > limit):
        raise PayloadTooLarge(
            f"request body of {declared.decode()[:40]} bytes exceeds the limit of {_bytes(limit)}",
            limit=Limit("max_body_bytes", limit),
        )
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"request body exceeds the limit of {_bytes(limit)}",
                limit=Limit("max_body_bytes", limit),
            )
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _bytes(limit: int) -> str:
    return f"{limit} bytes (`TETHER_MAX_BODY_BYTES`)"


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over ``body`` (already read) once, then passes on what the
    client sends next (a disconnect)."""
    pending = True

    async def receiving() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receiving


def parse_json_body(scope: Scope, body: bytes) -> Any:
    content_type = header(scope, b"content-type")
    # What PEPs send, compared first; anything else is read as a media type.
    media = (
        JSON if content_type == JSON else (content_type or b"").split(b";", 1)[0].strip().lower()
    )
    if media != JSON and not (media.startswith(b"application/") and media.endswith(b"+json")):
        shown = content_type.decode("latin-1") if content_type else "none"
        raise InvalidRequest(
            f"content type must be `application/json`, got `{shown}`", code="unsupported_media_type"
        )
    if not body.strip():
        raise InvalidRequest("request body is empty; expected a JSON object", code="empty_body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"request body is not valid JSON: {exc}", code="malformed_json"
        ) from None


async def send_json(
    send: Send,
    status: int,
    body: bytes,
    *,
    request_id: bytes | None,
    content_type: bytes = JSON,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *API_HEADERS,
    ]
    if request_id is not None:
        headers.append((b"x-request-id", request_id))
    if extra_headers:
        headers.extend(extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def secure_headers(send: Send, *, tls: bool) -> Send:
    """Wrap ``send`` so every answer carries the security headers (HTML pages more)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {bytes(k).lower() for k, _ in headers}
            extra = [h for h in API_HEADERS if h[0] not in present]
            content_type = next(
                (bytes(v) for k, v in headers if bytes(k).lower() == b"content-type"), b""
            )
            if content_type.startswith(b"text/html"):
                extra += [h for h in HTML_HEADERS if h[0] not in present]
            if tls and HSTS[0] not in present:
                extra.append(HSTS)
            message = {**message, "headers": headers + extra}
        await send(message)

    return sending
