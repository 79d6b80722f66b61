"""CAEP event payloads and RFC 9493 subjects: what is accepted and what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tether.signals import (
    CREDENTIAL_CHANGE,
    RISK_LEVEL_CHANGE,
    SESSION_REVOKED,
    TOKEN_CLAIMS_CHANGE,
    SignalInvalid,
    credential_change,
    risk_level_change,
    session_revoked,
    token_claims_change,
)
from tether.signals.events import check_event_type, check_payload, check_subject


def test_event_type_uris_are_the_caep_ones() -> None:
    base = "https://schemas.openid.net/secevent/caep/event-type/"
    assert base + "session-revoked" == SESSION_REVOKED
    assert base + "token-claims-change" == TOKEN_CLAIMS_CHANGE
    assert base + "credential-change" == CREDENTIAL_CHANGE
    assert base + "risk-level-change" == RISK_LEVEL_CHANGE


@pytest.mark.parametrize(
    "subject",
    [
        {"format": "opaque", "id": "task-1"},
        {"format": "iss_sub", "iss": "https://tether.test", "sub": "billing-bot"},
        {"format": "jwt_id", "iss": "https://tether.test", "jti": "abc"},
        {"format": "uri", "uri": "https://tether.test"},
        {
            "format": "complex",
            "session": {"format": "opaque", "id": "t"},
            "user": {"format": "opaque", "id": "billing-bot"},
        },
    ],
)
def test_well_formed_subjects_are_accepted(subject: dict[str, Any]) -> None:
    assert check_subject(subject) == subject


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("task-1", "must be an object"),
        ({"id": "x"}, "is not a subject format"),
        ({"format": "opaque"}, "needs `id`"),
        ({"format": "iss_sub", "iss": "https://x"}, "needs `sub`"),
        ({"format": "complex"}, "names no subject"),
        ({"format": "complex", "user": {"format": "email"}}, "sub_id.user"),
    ],
)
def test_malformed_subjects_are_refused(subject: object, message: str) -> None:
    with pytest.raises(SignalInvalid, match=message):
        check_subject(subject)


@pytest.mark.parametrize("event_type", ["session-revoked", "", "urn:x y", 3])
def test_an_event_type_must_be_a_uri(event_type: object) -> None:
    with pytest.raises(SignalInvalid):
        check_event_type(event_type)


def test_builders_make_payloads_that_pass_their_own_checks() -> None:
    cases = [
        (SESSION_REVOKED, session_revoked(1700000000.7, reason_admin="task ended")),
        (TOKEN_CLAIMS_CHANGE, token_claims_change(1700000000, {"scope": "read"})),
        (
            CREDENTIAL_CHANGE,
            credential_change(1700000000, credential_type="jwk", change_type="create"),
        ),
        (RISK_LEVEL_CHANGE, risk_level_change(1700000000, current_level="HIGH")),
    ]
    for event_type, payload in cases:
        assert check_payload(event_type, payload) == payload
        assert payload["event_timestamp"] == 1700000000
    assert cases[0][1]["reason_admin"] == {"en": "task ended"}


@pytest.mark.parametrize(
    ("event_type", "payload", "message"),
    [
        (SESSION_REVOKED, {"initiating_entity": "robot"}, "initiating_entity"),
        (SESSION_REVOKED, {"reason_admin": "plain text"}, "reason_admin"),
        (SESSION_REVOKED, {"event_timestamp": "yesterday"}, "event_timestamp"),
        (TOKEN_CLAIMS_CHANGE, {}, "claims"),
        (CREDENTIAL_CHANGE, {"credential_type": "jwk", "change_type": "rotate"}, "change_type"),
        (CREDENTIAL_CHANGE, {"change_type": "create"}, "credential_type"),
        (RISK_LEVEL_CHANGE, {"principal": "USER", "current_level": "SEVERE"}, "current_level"),
        (RISK_LEVEL_CHANGE, {"current_level": "LOW"}, "principal"),
        (SESSION_REVOKED, ["not", "an", "object"], "JSON object"),
    ],
)
def test_payloads_breaking_caep_are_refused(event_type: str, payload: object, message: str) -> None:
    with pytest.raises(SignalInvalid, match=message):
        check_payload(event_type, payload)
