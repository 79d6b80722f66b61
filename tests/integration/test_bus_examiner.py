"""A bus worker's examination step on a real store (SQLite and PostgreSQL): several
partitions' batches at once, each event once, in stream order within a partition."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tether.bus import EVENT, BusConfig, Examiner, encode
from tether.composition import build_core, drift_engine
from tether.config import load_settings
from tether.estate import apply_estate
from tether.store import migrate
from tether.store.bus_tables import bus_examined
from tether.store.drift_tables import findings
from tether.store.engine import open_engine

ENTITLED = "entitlements: [{actions: [read], resources: ['doc:*']}]"
ESTATE = "classes: {batch: {mode: monitor}}\nidentities:\n" + "".join(
    f"  - {{id: svc-{n}, kind: service_account, class: batch, owner: team-data, {ENTITLED}}}\n"
    for n in range(6)
)


@pytest.fixture
def examiner(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Examiner]:
    engine = open_engine(db_url)
    migrate.upgrade(engine)
    (tmp_path / "estate" / "policies").mkdir(parents=True)
    (tmp_path / "estate" / "estate.yaml").write_text(ESTATE)
    apply_estate(engine, tmp_path / "estate", actor="test")
    engine.dispose()
    monkeypatch.setenv("TETHER_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    core = build_core(load_settings(database_url=db_url))
    drift = drift_engine(core, {}, tail_events=False)
    drift.start(background=False)
    yield Examiner(core.store, drift, worker="w-test")
    drift.stop()
    core.close()


def _event(seq: int, identity: int, action: str = "read") -> Any:
    row = {
        "seq": seq,
        "at": "2026-12-07T12:00:00+00:00",
        "identity_id": f"svc-{identity}",
        "action": action,
        "resource": f"doc:{seq}",
        "resource_type": "doc",
        "outcome": "allowed",
    }
    return encode(EVENT, row)


def test_batches_of_several_partitions_are_examined_once_each_in_stream_order(
    examiner: Examiner,
) -> None:
    config = BusConfig("nats://127.0.0.1:4222", partitions=2)
    by_partition: dict[int, list[tuple[int, Any]]] = {0: [], 1: []}
    for seq in range(1, 61):
        message = _event(seq, seq % 6, "delete" if seq % 10 == 0 else "read")
        by_partition[config.partition_of(message.identity_id)].append((seq, message))
    assert by_partition[0]
    assert by_partition[1]
    already = by_partition[0][0]
    assert examiner.examine(0, [already]) == 1
    # The first partition's batch repeats an event within itself and holds the one
    # examined before; the second's is plain.
    first = [*by_partition[0], by_partition[0][3]]
    examined = examiner.examine_partitions([(0, first), (1, by_partition[1])])
    assert examined == 59
    assert examiner.duplicates == 2
    assert examiner.examine_partitions([(1, by_partition[1])]) == 0  # all seen before
    with examiner.store.connect() as connection:
        rows = connection.execute(
            select(bus_examined.c.partition, bus_examined.c.stream_seq).order_by(bus_examined.c.seq)
        ).all()
        found = connection.execute(select(func.count()).select_from(findings)).scalar_one()
    assert len(rows) == 60
    for partition, batch in by_partition.items():
        assert [s for p, s in rows if p == partition] == [s for s, _ in batch]
    assert found == 6  # each out-of-entitlement delete once
