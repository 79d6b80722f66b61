"""Refused calls in the audit trail, rate-limited; last use of callers."""

from __future__ import annotations

from sqlalchemy import Engine, select

from tether.callers import CallerActivity, add_api_key
from tether.store.tables import audit_log, identities


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refusals(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as connection:
        query = select(audit_log).where(audit_log.c.action == "auth.refused")
        return [dict(r) for r in connection.execute(query.order_by(audit_log.c.seq)).mappings()]


def refuse(activity: CallerActivity, credential: str | None, source: str = "10.0.0.1") -> bool:
    return activity.refused(
        action="auth.refused",
        code="api_key_invalid",
        source=source,
        method="POST",
        path="/access/v1/evaluation",
        credential=credential,
        status=401,
    )


def test_a_flood_of_one_bad_credential_is_one_row_with_a_count(store: Engine) -> None:
    clock = Clock()
    activity = CallerActivity(store, clock=clock, flush_interval_s=0.05)
    assert refuse(activity, "api_key:aa")
    assert not any(refuse(activity, "api_key:aa") for _ in range(10_000))
    clock.now += 11
    assert refuse(activity, "api_key:aa")
    activity.close()
    rows = refusals(store)
    assert len(rows) == 2
    assert rows[0]["actor"] == "api_key:aa"
    assert rows[0]["details"]["suppressed_before"] == 0  # type: ignore[index]
    assert rows[1]["details"]["suppressed_before"] == 10_000  # type: ignore[index]


def test_many_distinct_credentials_are_capped_per_minute(store: Engine) -> None:
    clock = Clock()
    activity = CallerActivity(store, clock=clock, max_per_minute=20, flush_interval_s=0.05)
    written = sum(refuse(activity, f"api_key:{n:04x}") for n in range(5000))
    clock.now += 61
    written += refuse(activity, "api_key:late")
    activity.close()
    assert written == 21
    assert len(refusals(store)) == 21


def test_anonymous_refusals_name_the_source(store: Engine) -> None:
    activity = CallerActivity(store, flush_interval_s=0.05)
    refuse(activity, None, source="192.0.2.7")
    activity.close()
    [row] = refusals(store)
    assert row["actor"] == "anonymous@192.0.2.7"
    assert row["target"] == "/access/v1/evaluation"


def test_last_use_is_written(store: Engine) -> None:
    add_api_key(store, "gw-1")
    activity = CallerActivity(store, flush_interval_s=0.05)
    activity.used("gw-1")
    activity.close()
    with store.connect() as connection:
        used = connection.execute(
            select(identities.c.last_used_at).where(identities.c.id == "gw-1")
        ).scalar()
    assert used is not None
