"""Test support for the event store: CloudTrail records and direct row surgery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select, text, update

from tether.store.tables import identities
from tether.store.telemetry_tables import audit_checkpoints, events
from tether.telemetry.chain import GENESIS, row_hash
from tether.telemetry.ingest._base import Context
from tether.telemetry.ingest.cloudtrail import decode_record
from tether.telemetry.model import ObservedAccess

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ROLE_ARN = "arn:aws:iam::111122223333:role/service/etl-runner"


def record(n: int, *, role: str = "etl-runner", action: str = "GetObject") -> dict[str, Any]:
    """A CloudTrail record of an assumed-role session of ``role`` (distinct per ``n``)."""
    return {
        "eventVersion": "1.08",
        "eventTime": (START + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "s3.amazonaws.com",
        "eventName": action,
        "eventID": f"evt-{n}",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "10.0.0.1",
        "recipientAccountId": "111122223333",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::111122223333:assumed-role/{role}/session-{n}",
            "accountId": "111122223333",
            "sessionContext": {
                "sessionIssuer": {"arn": f"arn:aws:iam::111122223333:role/service/{role}"}
            },
        },
        "requestParameters": {"bucketName": "reports", "key": f"r/{n}.csv"},
    }


def cloudtrail(*numbers: int, **kwargs: Any) -> list[ObservedAccess]:
    context = Context(lambda: START)
    return [decode_record(record(n, **kwargs), context) for n in numbers]


def add_estate_identity(engine: Engine, identity_id: str, principals: list[str]) -> None:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(identities).values(
                id=identity_id,
                kind="workload",
                workload=None,
                attributes={"principals": principals},
                status="active",
                origin="estate",
                created_at=now,
                updated_at=now,
            )
        )


def execute(engine: Engine, *statements: Any) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(statement)


def modify(engine: Engine, seq: int) -> None:
    execute(engine, update(events).where(events.c.seq == seq).values(action="DeleteBucket"))


def remove(engine: Engine, *seqs: int) -> None:
    execute(engine, delete(events).where(events.c.seq.in_(seqs)))


def swap(engine: Engine, a: int, b: int) -> None:
    execute(
        engine,
        update(events).where(events.c.seq == a).values(seq=-1),
        update(events).where(events.c.seq == b).values(seq=a),
        update(events).where(events.c.seq == -1).values(seq=b),
    )


def rechain(engine: Engine, from_seq: int, *, keep_checkpoints: bool = False) -> None:
    """Modify event ``from_seq`` and recompute every hash after it, dropping checkpoints
    (what an attacker with write access but no signing key can do)."""
    modify(engine, from_seq)
    with engine.begin() as connection:
        rows = connection.execute(select(events).order_by(events.c.seq)).mappings().all()
        prev = GENESIS
        for row in rows:
            if row["seq"] >= from_seq:
                link = row_hash(row, prev)
                connection.execute(
                    update(events)
                    .where(events.c.seq == row["seq"])
                    .values(prev_hash=prev, hash=link)
                )
                prev = link
            else:
                prev = row["hash"]
        if not keep_checkpoints:
            connection.execute(delete(audit_checkpoints))


def insert_forged_after(engine: Engine, seq: int) -> None:
    """Shift the events after ``seq`` up by one and put a forged, well-hashed row after it."""
    with engine.begin() as connection:
        rows = (
            connection.execute(
                select(events).where(events.c.seq > seq).order_by(events.c.seq.desc())
            )
            .mappings()
            .all()
        )
        for row in rows:
            connection.execute(
                update(events).where(events.c.seq == row["seq"]).values(seq=row["seq"] + 1)
            )
        before = connection.execute(select(events).where(events.c.seq == seq)).mappings().one()
        forged = dict(before)
        forged.update(seq=seq + 1, dedupe_key="f" * 64, action="DeleteBucket")
        forged["prev_hash"] = before["hash"]
        forged["hash"] = row_hash(forged, before["hash"])
        connection.execute(insert(events).values(**forged))


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql)).scalar_one())
