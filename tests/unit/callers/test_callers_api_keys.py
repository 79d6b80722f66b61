"""PEP API keys: their shape, their entropy, and what is kept of them."""

from __future__ import annotations

import re

import pytest

from tether.callers.api_keys import (
    hash_secret,
    new_api_key,
    parse_api_key,
    secret_matches,
)


def test_a_new_key_has_a_public_id_and_256_bits_of_secret() -> None:
    made = new_api_key()
    assert re.fullmatch(r"tpk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", made.text)
    presented = parse_api_key(made.text)
    assert presented is not None
    assert presented.key_id == made.key_id
    assert len(presented.secret) * 6 >= 256  # base64url: 6 bits a character


def test_only_a_salted_hash_is_kept_and_it_verifies() -> None:
    made = new_api_key()
    presented = parse_api_key(made.text)
    assert presented is not None
    assert presented.secret not in (made.salt, made.secret_hash)
    assert secret_matches(presented, made.salt, made.secret_hash)
    other = new_api_key()
    assert made.salt != other.salt
    assert hash_secret(made.salt, "same") != hash_secret(other.salt, "same")


def test_a_wrong_secret_does_not_verify() -> None:
    made = new_api_key()
    presented = parse_api_key(made.text[:-1] + ("A" if made.text[-1] != "A" else "B"))
    assert presented is not None
    assert not secret_matches(presented, made.salt, made.secret_hash)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tpk_",
        "tpk_0123456789abcdef",
        "tpk_0123456789abcdef_",
        "tpk_0123456789ABCDEF_secret",
        "tpk_0123_secret",
        "tpx_0123456789abcdef_secret",
        "tpk_0123456789abcdef_" + "x" * 200,
    ],
)
def test_malformed_keys_are_not_keys(text: str) -> None:
    assert parse_api_key(text) is None
