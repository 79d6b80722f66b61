"""Fetching JSON documents (OIDC discovery, RFC 8414-style metadata, JWKS) over HTTPS.

:class:`JwksFetcher` is the port; :class:`HttpxJwksFetcher` is the real adapter
(no redirects, short timeouts, a response size cap) and
:class:`InMemoryJwksFetcher` serves documents from a dict for tests. A fetcher
raises :class:`~tether.identity.errors.JwksUnavailable` for any failure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from tether.identity.errors import JwksUnavailable, TrustConfigInvalid, shown

MAX_DOCUMENT_BYTES = 1024 * 1024
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class JwksFetcher(Protocol):
    """Fetches one JSON document by URL."""

    def get_json(self, url: str) -> Any:
        """The parsed JSON at ``url``.

        Raises:
            JwksUnavailable: the document could not be fetched or parsed.
        """
        ...


def fetchable_url_problem(url: str) -> str | None:
    """Why ``url`` may not be fetched for keys: https only, plain http only on loopback."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "it is not a URL"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return None
    return "keys are fetched over https only (plain http is allowed for loopback hosts)"


def check_fetchable_url(url: str, what: str) -> None:
    """Raise :class:`TrustConfigInvalid` unless ``url`` may be fetched for keys."""
    problem = fetchable_url_problem(url)
    if problem:
        raise TrustConfigInvalid(f"{what} {shown(url)} cannot be used: {problem}")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key set with a member twice is ambiguous (SPIFFE bundle spec §6.3); ValueError is caught.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member name")
    return result


class HttpxJwksFetcher:
    """Fetches JSON with httpx: no redirects, a timeout, and at most ``max_bytes``."""

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        timeout_s: float = 5.0,
        max_bytes: int = MAX_DOCUMENT_BYTES,
    ) -> None:
        self._client = client or httpx.Client(
            timeout=timeout_s,
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )
        self._max_bytes = max_bytes

    def get_json(self, url: str) -> Any:
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise JwksUnavailable(
                        f"fetching {shown(url)} answered HTTP {response.status_code}"
                    )
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > self._max_bytes:
                        raise JwksUnavailable(
                            f"{shown(url)} answered more than {self._max_bytes} bytes"
                        )
        except httpx.HTTPError as exc:
            raise JwksUnavailable(f"fetching {shown(url)} failed: {type(exc).__name__}") from exc
        try:
            return json.loads(bytes(body), object_pairs_hook=_refuse_duplicates)
        except (ValueError, RecursionError) as exc:
            raise JwksUnavailable(f"{shown(url)} did not answer JSON") from exc

    def close(self) -> None:
        self._client.close()


class InMemoryJwksFetcher:
    """Serves documents from a dict (``url -> JSON value``) and records every request."""

    def __init__(self, documents: Mapping[str, Any] | None = None) -> None:
        self.documents: dict[str, Any] = dict(documents or {})
        self.requests: list[str] = []

    def get_json(self, url: str) -> Any:
        self.requests.append(url)
        if url not in self.documents:
            raise JwksUnavailable(f"fetching {shown(url)} answered HTTP 404")
        return self.documents[url]
