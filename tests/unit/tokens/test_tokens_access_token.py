"""RFC 9068 task tokens: the claims tether issues, strict verification, and mutations."""

from __future__ import annotations

import base64
import json
import weakref
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey
from joserfc.jws import JWSRegistry

from tether.errors import Unauthenticated
from tether.services import Tether
from tether.tokens import KeyRing, TaskAuthority, TaskTokenClaims, verify_task_token
from tether.tokens.access_token import nest_actors, read_claims, sign_task_token
from tether.tokens.low_s import P256_ORDER
from token_support import ISSUER, Clock, WorkloadKey, b64, issue, open_task


def claims(**overrides: Any) -> TaskTokenClaims:
    base: dict[str, Any] = {
        "issuer": ISSUER,
        "subject": "billing-bot",
        "audience": "tether",
        "task_id": "t1",
        "jti": "j1",
        "scope": ("read_invoice", "send_email"),
        "issued_at": 1_000,
        "expires_at": 1_300,
    }
    base.update(overrides)
    return TaskTokenClaims(**base)


def verify(token: object, keys: KeyRing, now: float = 1_100, **kwargs: Any) -> TaskTokenClaims:
    return verify_task_token(
        token,
        keys,
        issuer=kwargs.get("issuer", ISSUER),
        audience=kwargs.get("audience", "tether"),
        now=now,
    )


def code_of(token: object, keys: KeyRing, now: float = 1_100, **kwargs: Any) -> str:
    with pytest.raises(Unauthenticated) as caught:
        verify(token, keys, now, **kwargs)
    return caught.value.code


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    decode = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))  # noqa: E731
    return decode(header), decode(payload), signature


def forge(header: dict[str, Any], payload: dict[str, Any], key: ECKey) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = JWSRegistry.algorithms["ES256"].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture
def keys(sqlite_tether: Tether) -> KeyRing:
    return sqlite_tether.keys


def test_claims_follow_rfc_9068_and_nest_act(keys: KeyRing) -> None:
    token = sign_task_token(keys, claims(actors=("sub-helper", "helper-bot")))
    header, payload, _ = parts(token)
    assert header == {"typ": "at+jwt", "alg": "ES256", "kid": keys.active().kid}
    assert payload["sub"] == payload["client_id"] == "billing-bot"
    assert payload["txn"] == "t1"
    assert payload["scope"] == "read_invoice send_email"
    assert payload["act"] == {"sub": "sub-helper", "act": {"sub": "helper-bot"}}
    read = verify(token, keys)
    assert read == claims(actors=("sub-helper", "helper-bot"))
    assert (read.depth, read.actor) == (2, "sub-helper")


def test_nest_actors_of_nobody_is_no_act() -> None:
    assert nest_actors(()) is None
    assert "act" not in claims().to_claims()


def test_rs256_keys_sign_task_tokens_too(keys: KeyRing) -> None:
    keys.rotate(alg="RS256")
    token = sign_task_token(keys, claims())
    assert parts(token)[0]["alg"] == "RS256"
    assert verify(token, keys).jti == "j1"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"alg": "none"}, "alg_not_allowed"),
        ({"alg": "HS256"}, "alg_not_allowed"),
        ({"alg": "EdDSA"}, "alg_not_allowed"),
        ({"jku": "https://evil.example/jwks"}, "header_parameter_not_allowed"),
        ({"typ": "JWT"}, "token_type_invalid"),
        ({"kid": "not-a-tether-key"}, "token_key_unknown"),
    ],
)
def test_header_checks(keys: KeyRing, change: dict[str, Any], code: str) -> None:
    _, payload, signature = sign_task_token(keys, claims()).split(".")
    forged = {**parts(sign_task_token(keys, claims()))[0], **change}
    token = f"{b64(json.dumps(forged).encode())}.{payload}.{signature}"
    assert code_of(token, keys) == code


@pytest.mark.parametrize(
    ("now", "kwargs", "code"),
    [
        (1_400, {}, "token_expired"),
        (900, {}, "token_not_yet_valid"),
        (1_100, {"issuer": "https://other.test"}, "token_issuer_mismatch"),
        (1_100, {"audience": "someone-else"}, "token_audience_mismatch"),
    ],
)
def test_claim_checks(keys: KeyRing, now: float, kwargs: dict[str, Any], code: str) -> None:
    assert code_of(sign_task_token(keys, claims()), keys, now, **kwargs) == code


def test_expiry_allows_a_few_seconds_of_skew(keys: KeyRing) -> None:
    token = sign_task_token(keys, claims())
    assert verify(token, keys, now=1_303).jti == "j1"
    assert code_of(token, keys, now=1_306) == "token_expired"


@pytest.mark.parametrize(
    "change",
    [
        {"sub": None},
        {"client_id": "someone-else"},
        {"txn": 5},
        {"jti": ""},
        {"exp": "soon"},
        {"iat": True},
        {"scope": ["read_invoice"]},
        {"scope": "read_invoice  send_email"},
        {"act": {"sub": "x", "extra": 1}},
        {"act": {"act": {"sub": "x"}}},
        {"aud": ["tether", "other"]},
    ],
)
def test_malformed_claims_are_refused(change: dict[str, Any]) -> None:
    payload = claims().to_claims()
    payload.update(change)
    payload = {k: v for k, v in payload.items() if v is not None}
    with pytest.raises(Unauthenticated) as caught:
        read_claims(payload, issuer=ISSUER, audience="tether", now=1_100)
    assert caught.value.code in ("token_claim_invalid", "token_audience_mismatch")


def test_act_nesting_is_bounded() -> None:
    payload = claims(actors=tuple(f"a{i}" for i in range(40))).to_claims()
    with pytest.raises(Unauthenticated, match="deeper"):
        read_claims(payload, issuer=ISSUER, audience="tether", now=1_100)


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("not.a.jwt", "token_malformed"),
        ('{"payload": "x", "signatures": []}', "json_serialization_not_allowed"),
        ("a" * 20_000, "token_too_large"),
        (12, "token_malformed"),
    ],
)
def test_form_checks(keys: KeyRing, token: object, code: str) -> None:
    assert code_of(token, keys) == code


def test_an_untrusted_key_with_tethers_kid_fails_the_signature(keys: KeyRing) -> None:
    header, payload, _ = parts(sign_task_token(keys, claims()))
    attacker = ECKey.generate_key("P-256")
    assert code_of(forge(header, payload, attacker), keys) == "token_signature_invalid"


# --- property tests: mutations of a valid token are never accepted --------------------------

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
ATTACKER = ECKey.generate_key("P-256")
CLAIM_VALUES = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**40), max_value=2**41),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.sampled_from(["sub", "act", "x"]), st.text(max_size=10), max_size=2),
)
CLAIM_NAMES = st.sampled_from(
    ["iss", "sub", "client_id", "aud", "iat", "exp", "jti", "scope", "txn", "act", "extra"]
)


@SETTINGS
@given(data=st.data())
def test_character_mutations_are_never_accepted(keys: KeyRing, data: st.DataObject) -> None:
    token = sign_task_token(keys, claims())
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.characters(codec="ascii"))
    assume(replacement != token[position])
    mutated = token[:position] + replacement + token[position + 1 :]
    with pytest.raises(Unauthenticated):
        verify(mutated, keys)


@SETTINGS
@given(data=st.data())
def test_resigned_claim_mutations_are_never_accepted(keys: KeyRing, data: st.DataObject) -> None:
    """Claims changed and re-signed by a key the verifier does not trust (DESIGN "Tests
    that can fail"), under tether's own kid: refused whatever the change."""
    header, payload, _ = parts(sign_task_token(keys, claims()))
    name = data.draw(CLAIM_NAMES)
    payload[name] = data.draw(CLAIM_VALUES)
    if data.draw(st.booleans()):
        header = {**header, "kid": data.draw(st.sampled_from([header["kid"], "x", ""]))}
    with pytest.raises(Unauthenticated):
        verify(forge(header, payload, ATTACKER), keys)


_ISSUED: weakref.WeakKeyDictionary[TaskAuthority, str] = weakref.WeakKeyDictionary()


@SETTINGS
@given(data=st.data())
def test_mutated_tokens_are_never_active_even_once_the_original_is_cached(
    sqlite_tether: Tether, clock: Clock, workload_key: WorkloadKey, data: st.DataObject
) -> None:
    authority = sqlite_tether.tasks
    token = _ISSUED.get(authority)
    if token is None:  # one genuine token per authority, for all the examples
        task = open_task(authority, workload_key)
        token = _ISSUED[authority] = issue(authority, workload_key, task.id).token
    assert authority.inspect(token).verified is not None  # cached now
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.characters(codec="ascii"))
    assume(replacement != token[position])
    mutated = token[:position] + replacement + token[position + 1 :]
    inspection = authority.inspect(mutated)
    assert inspection.verified is None
    assert inspection.error is not None


def _rs(token: str) -> tuple[int, int]:
    signature = base64.urlsafe_b64decode(parts(token)[2] + "==")
    return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")


def _with_signature(token: str, r: int, s: int) -> str:
    head, payload, _ = token.split(".")
    return f"{head}.{payload}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _es256_valid(keys: KeyRing, token: str) -> bool:
    """Whether ``token``'s signature verifies under its key, by cryptography alone."""
    header, _, _ = parts(token)
    jwk = next(k for k in keys.jwks()["keys"] if k["kid"] == header["kid"])
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="), "big"),
        int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "=="), "big"),
        ec.SECP256R1(),
    )
    r, s = _rs(token)
    signing_input = token.rsplit(".", 1)[0].encode("ascii")
    try:
        numbers.public_key().verify(
            encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        return False
    return True


def test_the_malleated_twin_of_an_es256_signature_is_refused(
    sqlite_tether: Tether, workload_key: WorkloadKey
) -> None:
    """(r, n-s) verifies as well as (r, s): tether signs low s only and refuses high s
    (issue 19), also once the genuine token is cached."""
    keys, authority = sqlite_tether.keys, sqlite_tether.tasks
    signed = [sign_task_token(keys, claims(jti=f"j{i}")) for i in range(24)]
    assert all(_rs(token)[1] <= P256_ORDER // 2 for token in signed)  # 2**-24 by chance
    token = issue(authority, workload_key, open_task(authority, workload_key).id).token
    assert authority.inspect(token).verified is not None  # cached now
    r, s = _rs(token)
    twin = _with_signature(token, r, P256_ORDER - s)
    assert _es256_valid(keys, token)
    assert _es256_valid(keys, twin)
    now = authority.now().timestamp()
    assert verify(token, keys, now=now).jti
    assert code_of(twin, keys, now=now) == "token_signature_malleated"
    inspection = authority.inspect(twin)
    assert inspection.verified is None
    assert inspection.error is not None
    assert inspection.error.code == "token_signature_malleated"
    assert authority.inspect(token).verified is not None
