"""The access review read from the store (events, decisions, exceptions) and sign-offs, on both
backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from tether.errors import Conflict, InvalidRequest, NotFound
from tether.review.access import review_access
from tether.review.report import build_report
from tether.review.rightsize import rightsize
from tether.review.signoff import get_sign_off, parse_decisions, recent_sign_offs, sign_off
from tether.store.review_tables import access_review_decisions
from tether.store.tables import audit_log, decisions, entitlements, exceptions, identities
from tether.store.telemetry_tables import events

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _seed(store: Engine) -> None:
    with store.begin() as c:
        for ident in ("bot", "ghost"):
            c.execute(
                insert(identities).values(
                    id=ident,
                    kind="agent",
                    attributes={},
                    origin="estate",
                    created_at=NOW,
                    updated_at=NOW,
                    owner="team",
                )
            )
        c.execute(
            insert(entitlements).values(
                id="entitlement:bot:1",
                identity_id="bot",
                actions=["read", "write"],
                resources=["doc:*"],
                policy_id="entitlement:bot:1",
            )
        )
        c.execute(
            insert(exceptions).values(
                id="x1",
                identity_id="bot",
                detector="volume_anomaly",
                owner="team",
                justification="close",
                expires_at=NOW + timedelta(days=9),
                origin="estate",
                created_at=NOW,
            )
        )
        c.execute(
            insert(exceptions).values(
                id="x0",
                identity_id="bot",
                detector="novel_access",
                owner="team",
                justification="old",
                expires_at=NOW - timedelta(days=1),
                origin="estate",
                created_at=NOW,
            )
        )
        base: dict[str, Any] = {
            "subject_type": "agent",
            "reasons": [],
            "obligations": {},
            "errors": [],
            "context": {},
            "duration_us": 1,
        }
        rows = [
            ("d1", NOW - timedelta(days=1), "bot", "read", "doc", "a", "allow", True),
            ("d2", NOW - timedelta(days=1), "bot", "read", "doc", "b", "constrain", True),
            ("d3", NOW - timedelta(days=1), "bot", "delete", "doc", "a", "deny", False),
            ("d4", NOW - timedelta(days=40), "bot", "write", "doc", "a", "allow", True),  # old
            ("d5", NOW - timedelta(days=1), "ghost", "read", "doc", "z", "allow", True),
        ]
        for did, at, subject, action, rtype, rid, outcome, permits in rows:
            c.execute(
                insert(decisions).values(
                    decision_id=did,
                    at=at,
                    subject_id=subject,
                    action=action,
                    resource_type=rtype,
                    resource_id=rid,
                    outcome=outcome,
                    decision=permits,
                    **base,
                )
            )
        # An ingested event of `write` (allowed) and tether's own record of decision d1.
        for n, (source, action, decision_id) in enumerate(
            [("jsonl", "write", None), ("tether", "read", "d1")]
        ):
            c.execute(
                insert(events).values(
                    dedupe_key=f"k{n}",
                    at=NOW - timedelta(hours=2),
                    at_is_ingest_time=False,
                    source=source,
                    principal_kind="agent",
                    principal_key="bot",
                    identity_id="bot",
                    action=action,
                    resource="doc:c",
                    outcome="allowed",
                    decision_id=decision_id,
                    raw={},
                    prev_hash="0" * 64,
                    hash=f"{n}" * 64,
                )
            )


def test_review_reads_events_decisions_and_exceptions_in_the_window(store: Engine) -> None:
    _seed(store)
    review = review_access(store, since=NOW - timedelta(days=30), until=NOW)
    by_id = {r.identity_id: r for r in review.identities}
    bot = by_id["bot"]
    assert {(p.action, p.uses) for p in bot.parts} == {("read", 2), ("write", 1)}
    read = next(p for p in bot.parts if p.action == "read")
    assert [str(r) for r in read.resources] == [
        "doc:a",
        "doc:b",
    ]  # tether's event not counted twice
    assert [(o.action, o.denied) for o in bot.outside] == [("delete", 1)]
    assert [x["id"] for x in bot.exceptions] == ["x1"]  # the expired one is not in force
    ghost = by_id["ghost"]
    assert ghost.parts == ()
    assert [o.action for o in ghost.outside] == ["read"]
    only = review_access(store, since=NOW - timedelta(days=30), until=NOW, identity="ghost")
    assert [r.identity_id for r in only.identities] == ["ghost"]


def _report(store: Engine):  # type: ignore[no-untyped-def]
    review = review_access(store, since=NOW - timedelta(days=30), until=NOW)
    return build_report(review, rightsize(review, schema_text=None), generated_at=NOW)


def test_sign_off_stores_decisions_and_audits(store: Engine) -> None:
    _seed(store)
    report = _report(store)
    assert "entitlement:bot:1|write|doc:*" in report.row_ids()
    row = "outside|bot|delete|doc:a"
    record = sign_off(
        store,
        report,
        signed_by="alice",
        decisions={row: "revoke", "identity|ghost": "keep"},
        note="quarterly",
        expected_digest=report.digest,
        now=NOW,
    )
    again = get_sign_off(store, record.id)
    assert again.decisions == {row: "revoke", "identity|ghost": "keep"}
    assert again.signed_by == "alice"
    assert again.report_digest == report.digest
    assert again.summary["revoke"] == 1
    assert again.signed_at == NOW
    assert [r["id"] for r in recent_sign_offs(store)] == [record.id]
    with store.connect() as c:
        assert c.execute(
            select(audit_log.c.action).where(audit_log.c.actor == "alice")
        ).scalar() == ("review.sign_off")


@pytest.mark.parametrize(
    ("decisions", "error"),
    [
        ({"no-such-row": "keep"}, "is not in the report"),
        ({"identity|bot": "delete"}, "is not keep or revoke"),
    ],
)
def test_a_bad_decision_refuses_the_whole_sign_off(
    store: Engine, decisions: dict[str, str], error: str
) -> None:
    _seed(store)
    report = _report(store)
    with pytest.raises(InvalidRequest, match=error):
        sign_off(
            store, report, signed_by="alice", decisions={"identity|ghost": "keep", **decisions}
        )
    with store.connect() as c:
        assert c.execute(select(access_review_decisions)).first() is None


def test_a_changed_report_is_a_conflict_and_unknown_ids_are_not_found(store: Engine) -> None:
    _seed(store)
    with pytest.raises(Conflict, match="changed"):
        sign_off(store, _report(store), signed_by="a", decisions={}, expected_digest="0" * 64)
    with pytest.raises(NotFound):
        get_sign_off(store, "nope")
    with pytest.raises(InvalidRequest):
        sign_off(store, _report(store), signed_by=" ", decisions={})


def test_decisions_parse_from_the_command_line() -> None:
    assert parse_decisions(["a|b=c=keep", "x=revoke"]) == {"a|b=c": "keep", "x": "revoke"}
    with pytest.raises(InvalidRequest):
        parse_decisions(["keep"])
