"""Decisions and the admin audit log are hash-chained with a signed head: every edit shows.

On both stores: decisions written by the real writer and audit rows by the real
``record_audit`` verify clean; rewriting a deny to allow, deleting a decision or every
``auth.*`` audit row, a row inserted by hand, the seal deleted or re-made without tether's
key, the chain re-hashed end to end: each is reported with its kind and place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, text, update

from decision_support import row
from tether.store.audit import record_audit
from tether.store.decision_log import DecisionLog
from tether.store.record_chain import (
    AUDIT_LOG,
    DECISION_COLUMNS,
    DECISIONS,
    GENESIS,
    audit_header,
    decision_columns_as_stored,
    decision_header,
    link,
)
from tether.store.tables import audit_log, decisions, record_chain_heads
from tether.telemetry.records import seal_signature, verify_records
from tether.tokens import KeyRing, load_or_create_master_key


def decision_row(n: int, **overrides: Any) -> dict[str, Any]:
    """A row with nested context, a caller and a revision: more columns in the hash."""
    nested = {"n": n, "score": 0.5, "tags": ["a", "b"], "nested": {"z": 1, "a": None}}
    return row(n, **{"context": nested, "caller": "pep-1", "estate_revision": 3, **overrides})


def broken_kind(report: Any) -> str:
    assert report.broken is not None, "the chain verified"
    return str(report.broken.kind)


@pytest.fixture
def keys(store: Engine, tmp_path: Path) -> KeyRing:
    ring = KeyRing(store, load_or_create_master_key(tmp_path / "master.key"))
    ring.active()
    return ring


def _writer(store: Engine, keys: KeyRing) -> DecisionLog:
    return DecisionLog(store, flush_interval_ms=5, sealer=lambda *head: seal_signature(keys, *head))


@pytest.fixture
def written(store: Engine, keys: KeyRing) -> list[dict[str, Any]]:
    """30 decisions in three batches (the 7th a deny), then 12 audit rows (4 `auth.*`)."""
    rows = [
        decision_row(i, outcome="deny", decision=False) if i == 7 else decision_row(i)
        for i in range(30)
    ]
    log = _writer(store, keys)
    for start in (0, 10, 20):
        log.write(rows[start : start + 10])
    with store.begin() as connection:
        for i in range(12):
            action = "auth.refused" if i % 3 == 0 else "pep.add"
            record_audit(connection, actor="tests", action=action, target=f"t{i}", details={"i": i})
    log.close()  # seals the audit log's head
    return rows


def _verify(store: Engine, keys: KeyRing, chain: str) -> Any:
    return verify_records(store, keys, chain)


def _seq_of(store: Engine, decision_id: str) -> int:
    with store.connect() as connection:
        return int(
            connection.execute(
                select(decisions.c.seq).where(decisions.c.decision_id == decision_id)
            ).scalar_one()
        )


def _deny_rewritten_to_allow(store: Engine, written: list[dict[str, Any]]) -> int:
    """The one deny of ``written`` made an allow in the store; its ``seq``."""
    seq = _seq_of(store, written[7]["decision_id"])
    with store.begin() as connection:
        connection.execute(
            update(decisions).where(decisions.c.seq == seq).values(outcome="allow", decision=True)
        )
    return seq


def test_what_tether_wrote_verifies_on_both_chains(
    store: Engine, keys: KeyRing, written: list[dict[str, Any]]
) -> None:
    report = _verify(store, keys, DECISIONS)
    assert report.ok, report.broken
    assert (report.rows, report.unchained, report.unsealed) == (30, 0, 0)
    assert report.sealed_seq == _seq_of(store, written[-1]["decision_id"])
    audit = _verify(store, keys, AUDIT_LOG)
    assert audit.ok, audit.broken
    assert (audit.rows, audit.unsealed) == (12, 0)


def test_a_deny_rewritten_to_allow_is_modified(
    store: Engine, keys: KeyRing, written: list[dict[str, Any]]
) -> None:
    seq = _deny_rewritten_to_allow(store, written)
    report = _verify(store, keys, DECISIONS)
    assert report.broken is not None
    assert (report.broken.kind, report.broken.seq) == ("modified", seq)
    assert f"decision {seq} was modified" in report.broken.message


def test_a_changed_context_is_modified(
    store: Engine, keys: KeyRing, written: list[dict[str, Any]]
) -> None:
    seq = _seq_of(store, written[3]["decision_id"])
    with store.begin() as connection:
        connection.execute(
            update(decisions).where(decisions.c.seq == seq).values(context={"n": 3, "score": 1})
        )
    report = _verify(store, keys, DECISIONS)
    assert broken_kind(report) == "modified"


def test_a_deleted_decision_breaks_the_next_link(
    store: Engine, keys: KeyRing, written: list[dict[str, Any]]
) -> None:
    seq = _seq_of(store, written[12]["decision_id"])
    with store.begin() as connection:
        connection.execute(delete(decisions).where(decisions.c.seq == seq))
    report = _verify(store, keys, DECISIONS)
    assert report.broken is not None
    assert (report.broken.kind, report.broken.seq) == ("deleted", seq + 1)


def test_the_last_decisions_deleted_are_a_truncation(
    store: Engine, keys: KeyRing, written: list[dict[str, Any]]
) -> None:
    seq = _seq_of(store, written[27]["decision_id"])
    with store.begin() as connection:
        connection.execute(delete(decisions).where(decisions.c.seq >= seq))
    report = _verify(store, keys, DECISIONS)
    assert broken_kind(report) == "truncated"


def test_every_auth_audit_row_deleted_is_found(
    store: Engine, keys: KeyRing, written: list[dict[str, Any]]
) -> None:
    with store.begin() as connection:
        connection.execute(delete(audit_log).where(audit_log.c.action.like("auth.%")))
    report = _verify(store, keys, AUDIT_LOG)
    assert broken_kind(report) == "deleted"


def _rehash_decisions(store: Engine, *, from_seq: int = 0) -> None:
    """What an attacker with the database but not the key can do: re-link every row."""
    with store.begin() as connection:
        rows = connection.execute(
            select(decisions.c.seq, decisions.c.prev_hash, *decision_columns_as_stored()).order_by(
                decisions.c.seq
            )
        ).mappings()
        prev = GENESIS
        for stored in list(rows):
            if stored["seq"] < from_seq:
                prev = link(
                    stored["prev_hash"], decision_header([stored[c] for c in DECISION_COLUMNS])
                )
                continue
            digest = link(prev, decision_header([stored[c] for c in DECISION_COLUMNS]))
            connection.execute(
                update(decisions)
                .where(decisions.c.seq == stored["seq"])
                .values(prev_hash=prev, hash=digest)
            )
            prev = digest


def test_a_rewritten_and_rehashed_chain_does_not_match_its_seal(
    store: Engine, keys: KeyRing, written: list[dict[str, Any]]
) -> None:
    _deny_rewritten_to_allow(store, written)
    _rehash_decisions(store)
    report = _verify(store, keys, DECISIONS)
    assert broken_kind(report) == "rechained"


@pytest.mark.parametrize("forgery", ["fields changed", "signature made up"])
def test_a_seal_made_without_tethers_key_is_forged(
    store: Engine, keys: KeyRing, written: list[dict[str, Any]], forgery: str
) -> None:
    _deny_rewritten_to_allow(store, written)
    _rehash_decisions(store)
    with store.begin() as connection:
        last_hash = connection.execute(
            select(decisions.c.hash).order_by(decisions.c.seq.desc()).limit(1)
        ).scalar_one()
        signature = connection.execute(
            select(record_chain_heads.c.signature).where(record_chain_heads.c.chain == DECISIONS)
        ).scalar_one()
        if forgery == "signature made up":
            signature = signature.rsplit(".", 1)[0] + "." + "A" * 86
        connection.execute(
            update(record_chain_heads)
            .where(record_chain_heads.c.chain == DECISIONS)
            .values(hash=last_hash, signature=signature)
        )
    assert broken_kind(_verify(store, keys, DECISIONS)) == "seal_forged"


def test_a_deleted_seal_is_reported(
    store: Engine, keys: KeyRing, written: list[dict[str, Any]]
) -> None:
    with store.begin() as connection:
        connection.execute(delete(record_chain_heads))
    for chain in (DECISIONS, AUDIT_LOG):
        report = _verify(store, keys, chain)
        assert broken_kind(report) == "seal_missing", chain


def test_a_decision_inserted_by_hand_is_reported(
    store: Engine, keys: KeyRing, written: list[dict[str, Any]]
) -> None:
    forged = decision_row(99, outcome="allow")
    forged.pop("request_id")
    with store.begin() as connection:
        connection.execute(decisions.insert().values(**forged))
    report = _verify(store, keys, DECISIONS)
    assert broken_kind(report) == "inserted"


def test_audit_rows_not_yet_sealed_are_counted_not_broken(
    store: Engine, keys: KeyRing, written: list[dict[str, Any]]
) -> None:
    with store.begin() as connection:
        record_audit(connection, actor="tests", action="pep.add", target="late", details={})
    report = _verify(store, keys, AUDIT_LOG)
    assert report.ok, report.broken
    assert report.unsealed == 1


def test_rows_older_than_the_chain_are_counted_apart(store: Engine, keys: KeyRing) -> None:
    legacy = decision_row(1)
    with store.begin() as connection:
        connection.execute(decisions.insert().values(**legacy))  # no hashes: before chains
    log = _writer(store, keys)
    log.write([decision_row(2), decision_row(3)])
    log.close()
    report = _verify(store, keys, DECISIONS)
    assert report.ok, report.broken
    assert (report.rows, report.unchained) == (3, 1)


def test_the_audit_header_reads_back_the_same(store: Engine, written: Any) -> None:
    with store.connect() as connection:
        stored = connection.execute(select(audit_log).order_by(audit_log.c.seq)).mappings().all()
        raw = connection.execute(text("SELECT COUNT(*) FROM audit_log WHERE hash IS NULL")).scalar()
    assert raw == 0
    prev = GENESIS
    for item in stored:
        assert item["prev_hash"] == prev
        prev = link(prev, audit_header(item))
        assert item["hash"] == prev


def test_tether_never_seals_over_a_rehashed_chain(
    store: Engine, keys: KeyRing, written: list[dict[str, Any]]
) -> None:
    _deny_rewritten_to_allow(store, written)
    _rehash_decisions(store)
    log = _writer(store, keys)
    log.write([decision_row(50)])  # recorded, but the seal stays where tether left it
    log.close()
    report = _verify(store, keys, DECISIONS)
    assert report.rows == 31
    assert broken_kind(report) == "rechained"


def test_tether_never_seals_over_a_rewritten_audit_tail(
    store: Engine, keys: KeyRing, written: list[dict[str, Any]]
) -> None:
    with store.begin() as connection:
        record_audit(connection, actor="tests", action="pep.revoke", target="k1", details={})
        connection.execute(
            update(audit_log).where(audit_log.c.target == "k1").values(action="pep.add")
        )
    log = _writer(store, keys)
    log.seal_audit(force=True)
    log.close()
    assert broken_kind(_verify(store, keys, AUDIT_LOG)) == "modified"
    with store.connect() as connection:
        sealed = connection.execute(
            select(record_chain_heads.c.seq).where(record_chain_heads.c.chain == AUDIT_LOG)
        ).scalar_one()
    assert sealed is not None
    assert sealed < _max_audit_seq(store)


def _max_audit_seq(store: Engine) -> int:
    with store.connect() as connection:
        return int(connection.execute(text("SELECT MAX(seq) FROM audit_log")).scalar_one())
