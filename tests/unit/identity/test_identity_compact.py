"""Structure before crypto: malformed, non-canonical and ambiguous tokens (RFC 7515 §7.1)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from identity_support import (
    AUDIENCE,
    WORKLOAD,
    Minter,
    Signer,
    assert_refused,
    b64,
    b64json,
    verify_svid,
    with_raw_claim,
)

from tether.identity import TrustStore, verify_jwt_svid
from tether.identity.errors import IdentityProofError

MALFORMED: list[tuple[str, Callable[[str], str]]] = [
    ("two segments", lambda t: ".".join(t.split(".")[:2])),
    ("four segments", lambda t: t + ".x"),
    ("jwe", lambda _t: "a.b.c.d.e"),
    ("empty", lambda _t: ""),
    ("dots", lambda _t: ".."),
    ("padding", lambda t: t.split(".")[0] + "==." + ".".join(t.split(".")[1:])),
    ("standard base64", lambda t: t.replace("-", "+").replace("_", "/") + "+/"),
    ("whitespace", lambda t: t + " "),
    ("newline", lambda t: t + "\n"),
    ("non-ascii", lambda t: t + "é"),
    ("header not json", lambda t: b64(b"{alg") + "." + ".".join(t.split(".")[1:])),
    ("header array", lambda t: b64json(["ES256"]) + "." + ".".join(t.split(".")[1:])),
    ("payload not json", lambda t: t.split(".")[0] + "." + b64(b"\xff\xfe") + ".sig"),
    ("payload array", lambda t: t.split(".")[0] + "." + b64json([1]) + ".sig"),
    ("payload empty", lambda t: t.split(".")[0] + "..sig"),
    ("bad length", lambda t: t.split(".")[0] + "A." + ".".join(t.split(".")[1:])),
]


@pytest.mark.parametrize(("name", "damage"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed(
    trust: TrustStore, mint: Minter, name: str, damage: Callable[[str], str]
) -> None:
    token = damage(mint.token())
    with pytest.raises(IdentityProofError) as caught:
        verify_svid(token, trust)
    assert caught.value.code == "token_malformed", caught.value.message


def test_not_a_string(trust: TrustStore) -> None:
    for value in (None, 5, ["a.b.c"]):
        with pytest.raises(IdentityProofError) as caught:
            verify_jwt_svid(value, trust, audience=AUDIENCE)  # type: ignore[arg-type]
        assert caught.value.code == "token_malformed"
    with pytest.raises(IdentityProofError) as caught:
        verify_jwt_svid({"payload": "x"}, trust, audience=AUDIENCE)  # type: ignore[arg-type]
    assert caught.value.code == "json_serialization_not_allowed"


def test_duplicate_members_are_refused(trust: TrustStore, mint: Minter, ec_signer: Signer) -> None:
    """Duplicates let two parsers disagree (`alg`, `sub`): the token is malformed."""
    claims = json.dumps(mint.claims())[:-1] + ', "sub": "spiffe://example.org/admin"}'
    token = mint.token(payload=claims.encode())
    assert_refused(token, trust, "token_malformed")
    header = '{"alg":"ES256","kid":"ec-1","alg":"none"}'
    signing_input = f"{b64(header.encode())}.{b64json(mint.claims())}".encode()
    token = f"{signing_input.decode()}.{b64(ec_signer.sign(signing_input))}"
    assert_refused(token, trust, "token_malformed")


def test_nan_is_refused(trust: TrustStore, mint: Minter) -> None:
    assert_refused(with_raw_claim(mint, "exp", "NaN"), trust, "token_malformed")


def test_deeply_nested_payload(trust: TrustStore, mint: Minter) -> None:
    nested = b'{"sub": "' + WORKLOAD.encode() + b'", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert_refused(mint.token(payload=nested), trust, "token_malformed")


def test_non_canonical_base64_in_the_signature(trust: TrustStore, mint: Minter) -> None:
    """ES256 signatures are 64 bytes: the last base64url char carries 2 unused bits."""
    token = mint.token()
    last = token[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(last) ^ 1]
    assert_refused(token[:-1] + twin, trust, "token_malformed")
