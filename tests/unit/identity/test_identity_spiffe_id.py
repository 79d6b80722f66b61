"""SPIFFE IDs and trust domain names: every rule of SPIFFE-ID.md §2."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.identity import SpiffeId, TrustDomain
from tether.identity.errors import IdentityProofError, SpiffeIdInvalid

VALID = [
    "spiffe://example.org",
    "spiffe://example.org/agents/billing-bot",
    "spiffe://staging.example.com/payments/mysql",
    "spiffe://k8s-west.example.com/ns/staging/sa/default",
    "spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453",
    "spiffe://trust_domain_name.example.com/a",
    "spiffe://10.0.0.1/a",  # dotted quads are names like any other (§2.1)
    "spiffe://a/B/c.d/e_f/g-h/...",  # `...` is not a relative segment
    "spiffe://x/.a/a./..a",
    "spiffe://" + "a" * 255,
    "spiffe://example.org/" + "a" * (2048 - len("spiffe://example.org/")),
]

INVALID = [
    ("", "empty"),
    ("example.org/a", "must start with `spiffe://`"),
    ("http://example.org/a", "must start with `spiffe://`"),
    ("spiffe:example.org", "must start with `spiffe://`"),
    ("spiffe:/example.org", "must start with `spiffe://`"),
    ("spiffe//example.org", "must start with `spiffe://`"),
    (" spiffe://example.org", "must start with `spiffe://`"),
    ("SPIFFE://example.org/a", "scheme must be lowercase"),
    ("Spiffe://example.org/a", "scheme must be lowercase"),
    ("spiffe://", "trust domain is empty"),
    ("spiffe:///path", "trust domain is empty"),
    ("spiffe://Example.org/a", "must be lowercase"),
    ("spiffe://EXAMPLE.ORG", "must be lowercase"),
    ("spiffe://user@example.org/a", "userinfo"),
    ("spiffe://user:pw@example.org/a", "userinfo"),
    ("spiffe://example.org:443/a", "port"),
    ("spiffe://example.org:/a", "port"),
    ("spiffe://[::1]/a", "IPv6"),
    ("spiffe://exa%41mple.org/a", "percent-encoded"),
    ("spiffe://exa mple.org/a", "may only hold"),
    ("spiffe://exämple.org/a", "may only hold"),
    ("spiffe://example.org/a?query=1", "query"),
    ("spiffe://example.org/a?", "query"),
    ("spiffe://example.org?x", "query"),
    ("spiffe://example.org/a#frag", "fragment"),
    ("spiffe://example.org#", "fragment"),
    ("spiffe://example.org/", "must not end with `/`"),
    ("spiffe://example.org/a/", "must not end with `/`"),
    ("spiffe://example.org//a", "empty segment"),
    ("spiffe://example.org/a//b", "empty segment"),
    ("spiffe://example.org/.", "`.` or `..`"),
    ("spiffe://example.org/..", "`.` or `..`"),
    ("spiffe://example.org/./a", "`.` or `..`"),
    ("spiffe://example.org/a/../b", "`.` or `..`"),
    ("spiffe://example.org/a/.", "`.` or `..`"),
    ("spiffe://example.org/a%20b", "percent-encoded"),
    ("spiffe://example.org/%2e%2e/admin", "percent-encoded"),
    ("spiffe://example.org/a b", "may only hold"),
    ("spiffe://example.org/a:b", "may only hold"),
    ("spiffe://example.org/a@b", "may only hold"),
    ("spiffe://example.org/a+b", "may only hold"),
    ("spiffe://example.org/ä", "may only hold"),
    ("spiffe://example.org/a\\b", "may only hold"),
    ("spiffe://example.org/a\n", "may only hold"),
    ("spiffe://example.org\n", "may only hold"),
    ("spiffe://example.org/a\x00", "may only hold"),
    ("spiffe://" + "a" * 256, "longer than 255 bytes"),
    ("spiffe://example.org/" + "a" * 2048, "longer than 2048 bytes"),
    ("spiffe://example.org/" + "ä" * 1020, "longer than 2048 bytes"),
]


@pytest.mark.parametrize("text", VALID)
def test_valid_ids_parse_and_round_trip(text: str) -> None:
    spiffe_id = SpiffeId.parse(text)
    assert str(spiffe_id) == text
    assert SpiffeId.parse(str(spiffe_id)) == spiffe_id


@pytest.mark.parametrize(("text", "why"), INVALID)
def test_invalid_ids_are_refused_with_the_rule_they_break(text: str, why: str) -> None:
    with pytest.raises(SpiffeIdInvalid) as caught:
        SpiffeId.parse(text)
    assert isinstance(caught.value, IdentityProofError)
    assert caught.value.code == "spiffe_id_invalid"
    assert why in caught.value.message
    assert "\n" not in caught.value.message


def test_parts() -> None:
    spiffe_id = SpiffeId.parse("spiffe://example.org/ns/prod/sa/api")
    assert spiffe_id.trust_domain == TrustDomain("example.org")
    assert spiffe_id.path == "/ns/prod/sa/api"
    assert spiffe_id.member_of(TrustDomain("example.org"))
    assert not spiffe_id.member_of(TrustDomain("example.com"))
    assert TrustDomain("example.org").id == SpiffeId.parse("spiffe://example.org")


def test_path_is_case_sensitive() -> None:
    assert SpiffeId.parse("spiffe://example.org/A") != SpiffeId.parse("spiffe://example.org/a")


def test_construction_validates_too() -> None:
    with pytest.raises(SpiffeIdInvalid):
        SpiffeId(TrustDomain("example.org"), "/a/")
    with pytest.raises(SpiffeIdInvalid):
        TrustDomain("Example.org")
    with pytest.raises(SpiffeIdInvalid):
        SpiffeId("example.org", "/a")  # type: ignore[arg-type]


def test_ids_are_frozen_and_hashable() -> None:
    spiffe_id = SpiffeId.parse("spiffe://example.org/a")
    with pytest.raises(AttributeError):
        spiffe_id.path = "/b"  # type: ignore[misc]
    assert {spiffe_id, SpiffeId.parse("spiffe://example.org/a")} == {spiffe_id}


@pytest.mark.parametrize("text", ["example.org", "spiffe://example.org"])
def test_trust_domain_parse_accepts_name_or_id(text: str) -> None:
    assert TrustDomain.parse(text) == TrustDomain("example.org")
    assert str(TrustDomain.parse(text)) == "example.org"


@pytest.mark.parametrize(
    "text", ["spiffe://example.org/a", "spiffe://", "Example.org", "example.org:80", "", "a/b"]
)
def test_trust_domain_parse_refuses(text: str) -> None:
    with pytest.raises(SpiffeIdInvalid):
        TrustDomain.parse(text)


@pytest.mark.parametrize("value", [None, 42, b"spiffe://example.org", ["spiffe://x"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(SpiffeIdInvalid):
        SpiffeId.parse(value)  # type: ignore[arg-type]


def test_messages_bound_hostile_values() -> None:
    with pytest.raises(SpiffeIdInvalid) as caught:
        SpiffeId.parse("spiffe://example.org/`" + "x" * 1500 + "\n")
    assert len(caught.value.message) < 300
    assert "\n" not in caught.value.message


# (c) SpiffeId.parse never raises anything but its own error.

_SPIFFE_ALPHABET = st.sampled_from([*"abcAZ09.-_/:@?#%[] \n\tä`", "spiffe://", "//", ".."])


@given(st.text())
def test_parse_of_any_text_raises_only_its_own_error(text: str) -> None:
    try:
        spiffe_id = SpiffeId.parse(text)
    except SpiffeIdInvalid:
        return  # anything else propagates and fails the test
    assert str(spiffe_id) == text


@given(st.lists(_SPIFFE_ALPHABET, max_size=30).map("".join))
def test_parse_of_near_miss_ids_raises_only_its_own_error(tail: str) -> None:
    text = "spiffe://" + tail
    try:
        spiffe_id = SpiffeId.parse(text)
    except SpiffeIdInvalid:
        return
    assert str(spiffe_id) == text
    assert spiffe_id.trust_domain.name.islower() or not spiffe_id.trust_domain.name.isalpha()


_SEGMENT = st.from_regex(r"[a-zA-Z0-9._\-]{1,12}", fullmatch=True).filter(
    lambda s: s not in (".", "..")
)
_DOMAIN = st.from_regex(r"[a-z0-9._\-]{1,40}", fullmatch=True)


@given(_DOMAIN, st.lists(_SEGMENT, max_size=6))
def test_every_well_formed_id_parses(domain: str, segments: list[str]) -> None:
    text = f"spiffe://{domain}" + "".join(f"/{s}" for s in segments)
    spiffe_id = SpiffeId.parse(text)
    assert spiffe_id.trust_domain.name == domain
    assert str(spiffe_id) == text
