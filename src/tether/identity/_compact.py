"""Strict reading of a JWS Compact Serialization (RFC 7515 §3.1, §7.1) before verification.

JWT-SVID.md §5.1 allows the compact form only. This module decodes the header
and payload *without* trusting them, so that the header rules can be enforced
before any key is looked up. It is deliberately stricter than RFC 7515:

* at most :data:`MAX_TOKEN_BYTES` (checked before anything else is parsed);
* exactly three segments of canonical, unpadded base64url (a character change
  that decodes to the same bytes would otherwise keep a signature valid);
* header and payload are JSON objects with no duplicate member names
  (SPIFFE_Trust_Domain_and_Bundle.md §6.3 explains why duplicates are dangerous)
  and no ``NaN``/``Infinity``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from tether.identity.errors import (
    JsonSerializationNotAllowed,
    TokenMalformed,
    TokenTooLarge,
    shown,
)

MAX_TOKEN_BYTES = 16 * 1024

_JSON_SERIALIZATION = (
    "JWS JSON Serialization is not allowed: send the compact form `header.payload.signature`"
)
_B64URL = re.compile(r"[A-Za-z0-9_-]*\Z")


@dataclass(frozen=True)
class CompactJws:
    """The three decoded parts of a compact JWS whose signature is not yet checked."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes
    fingerprint: str  # SHA-256 of the whole token: an id that is never the token


def _b64decode(segment: str, part: str) -> bytes:
    if not _B64URL.match(segment) or len(segment) % 4 == 1:
        raise TokenMalformed(f"the {part} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenMalformed(f"the {part} is not base64url") from exc
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise TokenMalformed(f"the {part} is not canonical base64url")
    return raw


def _no_duplicates(part: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, value in pairs:
            if name in result:
                raise TokenMalformed(f"the {part} names {shown(name)} twice")
            result[name] = value
        return result

    return hook


def _no_constants(name: str) -> Any:
    raise TokenMalformed(f"the token holds the non-standard JSON number {shown(name)}")


def loads_json_object(raw: bytes, part: str) -> dict[str, Any]:
    """Parse UTF-8 JSON that must be an object, refusing duplicate names."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text, object_pairs_hook=_no_duplicates(part), parse_constant=_no_constants
        )
    except TokenMalformed:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise TokenMalformed(f"the {part} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise TokenMalformed(f"the {part} is not a JSON object")
    return value


def parse_compact(token: object) -> CompactJws:
    """Split and decode a compact JWS, refusing anything else.

    Raises:
        TokenTooLarge: over :data:`MAX_TOKEN_BYTES`.
        JsonSerializationNotAllowed: a JWS JSON Serialization was given.
        TokenMalformed: not three canonical base64url segments of JSON objects.
    """
    if isinstance(token, bytes):
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenTooLarge(f"the token is larger than {MAX_TOKEN_BYTES} bytes")
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError as exc:
            raise TokenMalformed("the token is not ASCII") from exc
    if isinstance(token, dict):
        raise JsonSerializationNotAllowed(_JSON_SERIALIZATION)
    if not isinstance(token, str):
        raise TokenMalformed(f"the token must be a string, not {type(token).__name__}")
    # Character count first so a huge string is never encoded; ASCII is then checked.
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenTooLarge(f"the token is larger than {MAX_TOKEN_BYTES} bytes")
    if token.lstrip().startswith("{"):
        raise JsonSerializationNotAllowed(_JSON_SERIALIZATION)
    if not token.isascii():
        raise TokenMalformed("the token is not ASCII")
    segments = token.split(".")
    if len(segments) == 5:
        raise TokenMalformed("the token is a JWE (five segments); a signed JWT is required")
    if len(segments) != 3:
        raise TokenMalformed(f"the token has {len(segments)} segment(s); compact JWS has exactly 3")
    header_b64, payload_b64, signature_b64 = segments
    if not header_b64:
        raise TokenMalformed("the header is empty")
    if not payload_b64:
        raise TokenMalformed("the payload is empty (detached payloads are not accepted)")
    header = loads_json_object(_b64decode(header_b64, "header"), "header")
    claims = loads_json_object(_b64decode(payload_b64, "payload"), "payload")
    signature = _b64decode(signature_b64, "signature")
    return CompactJws(
        header=header,
        claims=claims,
        signing_input=f"{header_b64}.{payload_b64}".encode("ascii"),
        signature=signature,
        fingerprint=hashlib.sha256(token.encode("ascii")).hexdigest(),
    )
