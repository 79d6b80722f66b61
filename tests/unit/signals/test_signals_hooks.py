"""Revocations and key rotations of a real tether become CAEP events in the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tether.config import load_settings
from tether.estate import apply_estate
from tether.services import Tether
from tether.signals import CREDENTIAL_CHANGE, SESSION_REVOKED, PollRequest
from tether.tokens import TaskRequest
from token_support import ISSUER, WorkloadKey, task_body, write_estate


@pytest.fixture
def tether(store: Engine, tmp_path: Path) -> Iterator[Tether]:
    estate = write_estate(
        tmp_path / "estate", WorkloadKey.generate("wk-1"), other=WorkloadKey.generate("o-1")
    )
    settings = load_settings(
        {},
        database_url=str(store.url),
        master_key_file=str(tmp_path / "master.key"),
        issuer=ISSUER,
    )
    made = Tether(settings, engine=store)
    apply_estate(made.engine, estate)
    made.reload()
    made.signals.add_poll_receiver("pep-1", actor="test")
    yield made
    made.close()


def polled(tether: Tether) -> list[dict[str, object]]:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    result = tether.signals.poll("pep-1", PollRequest(return_immediately=True))
    keys = KeySet.import_key_set(tether.keys.jwks())
    return [dict(jwt.decode(token, keys).claims) for token in result.sets.values()]


def test_ending_a_task_emits_one_session_revoked_for_the_task(tether: Tether) -> None:
    task = tether.tasks.open_task(
        TaskRequest.from_json(task_body()), identity_id="billing-bot", opened_by="cli"
    )
    tether.tasks.issue(task, scope=["read_invoice"], event="token.issue", actor="t", details={})
    tether.tasks.end_task(task.id, actor="cli", reason="drift: out-of-intent access")
    tether.tasks.end_task(task.id, actor="cli")  # already ended: nothing new
    (claims,) = polled(tether)
    assert claims["sub_id"] == {"format": "opaque", "id": task.id}
    assert claims["txn"] == task.id
    event = claims["events"][SESSION_REVOKED]  # type: ignore[index]
    assert event["initiating_entity"] == "policy"
    assert event["reason_admin"] == {"en": "drift: out-of-intent access"}
    assert isinstance(event["event_timestamp"], int)


def test_revoking_a_token_emits_session_revoked_per_revoked_jti(tether: Tether) -> None:
    task = tether.tasks.open_task(
        TaskRequest.from_json(task_body()), identity_id="billing-bot", opened_by="cli"
    )
    issued = tether.tasks.issue(
        task, scope=["read_invoice"], event="token.issue", actor="t", details={}
    )
    revoked = tether.tasks.revoke_jti(issued.claims.jti, actor="cli")
    assert revoked == (issued.claims.jti,)
    (claims,) = polled(tether)
    assert claims["sub_id"] == {"format": "opaque", "id": issued.claims.jti}
    assert claims["txn"] == task.id
    assert "initiating_entity" not in claims["events"][SESSION_REVOKED]  # type: ignore[index]
    assert tether.tasks.revoke_jti(issued.claims.jti, actor="cli") == ()
    assert polled(tether) == []


def test_rotating_keys_emits_credential_change_signed_by_the_new_key(tether: Tether) -> None:
    key = tether.tasks.rotate_keys()
    (claims,) = polled(tether)
    assert claims["sub_id"] == {"format": "uri", "uri": ISSUER}
    event = claims["events"][CREDENTIAL_CHANGE]  # type: ignore[index]
    assert event["credential_type"] == "jwk"
    assert event["change_type"] == "create"
    assert event["friendly_name"] == key.kid
    assert "txn" not in claims


def test_a_failing_emit_never_undoes_the_revocation(tether: Tether) -> None:
    task = tether.tasks.open_task(
        TaskRequest.from_json(task_body()), identity_id="billing-bot", opened_by="cli"
    )
    with tether.engine.begin() as connection:  # the outbox is gone: every emit fails
        connection.execute(text("DROP TABLE signal_deliveries"))
    ended = tether.tasks.end_task(task.id, actor="cli")
    assert ended.task.status == "ended"
    assert tether.tasks.task(task.id, fresh=True).status == "ended"
