"""Remote key sets: cache, rate-limited refetch, stale grace, and the httpx fetcher's limits."""

from __future__ import annotations

import httpx
import pytest
from identity_support import FakeClock, Signer, jwks

from tether.identity import CachePolicy, HttpxJwksFetcher, InMemoryJwksFetcher, RemoteJwks
from tether.identity.errors import JwksUnavailable

ISSUER = "https://issuer.example"
JWKS_URI = "https://issuer.example/jwks"
DISCOVERY = "https://issuer.example/.well-known/openid-configuration"


def remote(fetcher: InMemoryJwksFetcher, clock: FakeClock, **policy: float) -> RemoteJwks:
    return RemoteJwks(ISSUER, fetcher, jwks_uri=JWKS_URI, policy=CachePolicy(**policy), clock=clock)


def test_first_use_fetches_then_caches(ec_signer: Signer, clock: FakeClock) -> None:
    fetcher = InMemoryJwksFetcher({JWKS_URI: jwks(ec_signer.jwk())})
    keys = remote(fetcher, clock)
    assert "ec-1" in keys.keys("ec-1")
    assert "ec-1" in keys.keys(None)
    assert fetcher.requests == [JWKS_URI]


def test_unknown_kid_refetches_once_per_interval(ec_signer: Signer, clock: FakeClock) -> None:
    fetcher = InMemoryJwksFetcher({JWKS_URI: jwks(ec_signer.jwk())})
    keys = remote(fetcher, clock, min_refetch_interval_s=30)
    keys.keys("ec-1")
    clock.advance(31)
    for _ in range(100):
        assert "nope" not in keys.keys("nope")
    assert len(fetcher.requests) == 2
    clock.advance(31)
    keys.keys("nope")
    assert len(fetcher.requests) == 3


def test_a_refused_kid_does_not_refetch(ec_signer: Signer, clock: FakeClock) -> None:
    fetcher = InMemoryJwksFetcher({JWKS_URI: jwks(ec_signer.jwk(use="enc"))})
    keys = remote(fetcher, clock)
    assert keys.keys("ec-1").refused == {"ec-1": "enc"}
    clock.advance(100)
    keys.keys("ec-1")
    assert len(fetcher.requests) == 1


def test_failed_refresh_serves_stale_keys_within_the_grace(
    ec_signer: Signer, clock: FakeClock
) -> None:
    fetcher = InMemoryJwksFetcher({JWKS_URI: jwks(ec_signer.jwk())})
    keys = remote(fetcher, clock, ttl_s=60, max_stale_s=600, min_refetch_interval_s=30)
    keys.keys("ec-1")
    del fetcher.documents[JWKS_URI]  # the issuer goes down
    clock.advance(61)
    assert "ec-1" in keys.keys("ec-1")
    assert keys.last_error is not None
    for _ in range(10):  # outage: retried at most once per interval
        keys.keys("ec-1")
    assert len(fetcher.requests) == 2
    clock.advance(600)  # past TTL + grace: no more stale keys
    with pytest.raises(JwksUnavailable):
        keys.keys("ec-1")
    with pytest.raises(JwksUnavailable):  # rate limited, still refused
        keys.keys("ec-1")
    assert len(fetcher.requests) == 3


def test_first_fetch_failure_is_rate_limited_too(clock: FakeClock) -> None:
    fetcher = InMemoryJwksFetcher()
    keys = remote(fetcher, clock)
    for _ in range(5):
        with pytest.raises(JwksUnavailable) as caught:
            keys.keys("ec-1")
        assert caught.value.code == "jwks_unavailable"
    assert len(fetcher.requests) == 1


@pytest.mark.parametrize(
    "document",
    [[], "x", {"keys": "x"}, {"nokeys": []}],
)
def test_a_bad_jwks_is_unavailable(clock: FakeClock, document: object) -> None:
    keys = remote(InMemoryJwksFetcher({JWKS_URI: document}), clock)
    with pytest.raises(JwksUnavailable):
        keys.keys(None)


def test_discovery_finds_the_jwks_uri(ec_signer: Signer, clock: FakeClock) -> None:
    fetcher = InMemoryJwksFetcher(
        {
            DISCOVERY: {"issuer": ISSUER, "jwks_uri": JWKS_URI},
            JWKS_URI: jwks(ec_signer.jwk()),
        }
    )
    keys = RemoteJwks(ISSUER, fetcher, discovery_url=DISCOVERY, clock=clock)
    assert "ec-1" in keys.keys("ec-1")
    assert fetcher.requests == [DISCOVERY, JWKS_URI]


@pytest.mark.parametrize(
    ("metadata", "why"),
    [
        ({"issuer": "https://evil.example", "jwks_uri": JWKS_URI}, "names issuer"),
        ({"jwks_uri": JWKS_URI}, "names issuer"),
        ({"issuer": ISSUER}, "no `jwks_uri`"),
        ({"issuer": ISSUER, "jwks_uri": "http://evil.example/jwks"}, "https only"),
        ({"issuer": ISSUER, "jwks_uri": "file:///etc/passwd"}, "https only"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_bad_discovery_documents(clock: FakeClock, metadata: object, why: str) -> None:
    fetcher = InMemoryJwksFetcher({DISCOVERY: metadata})
    keys = RemoteJwks(ISSUER, fetcher, discovery_url=DISCOVERY, clock=clock)
    with pytest.raises(JwksUnavailable, match=why):
        keys.keys(None)


# The real httpx adapter, on a MockTransport (no network)


def fetcher_for(handler: httpx.MockTransport, **kwargs: int) -> HttpxJwksFetcher:
    return HttpxJwksFetcher(httpx.Client(transport=handler, follow_redirects=False), **kwargs)


def test_httpx_fetcher_reads_json() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"keys": []}))
    assert fetcher_for(transport).get_json(JWKS_URI) == {"keys": []}


@pytest.mark.parametrize(
    ("response", "why"),
    [
        (httpx.Response(404), "HTTP 404"),
        (httpx.Response(500, json={}), "HTTP 500"),
        (httpx.Response(302, headers={"Location": "https://evil.example/"}), "HTTP 302"),
        (httpx.Response(200, content=b"<html>"), "did not answer JSON"),
        (httpx.Response(200, content=b'{"keys": [], "keys": [1]}'), "did not answer JSON"),
        (httpx.Response(200, content=b"x" * 2000), "more than 1000 bytes"),
    ],
)
def test_httpx_fetcher_refuses(response: httpx.Response, why: str) -> None:
    transport = httpx.MockTransport(lambda request: response)
    with pytest.raises(JwksUnavailable, match=why):
        fetcher_for(transport, max_bytes=1000).get_json(JWKS_URI)


def test_httpx_fetcher_network_errors() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=request)

    with pytest.raises(JwksUnavailable, match="ConnectTimeout"):
        fetcher_for(httpx.MockTransport(fail)).get_json(JWKS_URI)


def test_httpx_fetcher_closes() -> None:
    fetcher = HttpxJwksFetcher()
    fetcher.close()
