"""No row poisons the decision writer: every honest row of a batch is committed beside
rows that cannot be encoded or that the store refuses, and each of those is stored as an
error row; a row is lost only when the store itself is gone, and then the log says so."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
from sqlalchemy import Engine, event, select

from decision_support import row
from tether.store import migrate
from tether.store.decision_log import DecisionLog
from tether.store.decision_rows import COLUMNS, ERROR_KEY
from tether.store.engine import open_engine
from tether.store.tables import decisions

DoomedDatabase = Any  # tests/conftest.py


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


# Contexts no JSON encoder takes: each row must become an error row, its neighbours intact.
UNENCODABLE = {
    "nesting beyond any encoder": _nested(5000),
    "a set": {"s": {1, 2}},
    "an object": {"o": _Unprintable()},
    "a lone surrogate": {"s": "\ud800"},
    "NaN beside a huge integer": {"n": float("nan"), "big": 2**70},
}


def stored(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(decisions)).mappings()
        return {r["decision_id"]: dict(r) for r in rows}


@pytest.fixture
def log(store: Engine) -> Iterator[DecisionLog]:
    made = DecisionLog(store, flush_interval_ms=20)
    yield made
    made.close()


def test_rows_no_encoder_takes_become_error_rows_and_lose_no_neighbour(
    store: Engine, log: DecisionLog
) -> None:
    honest = [row(i, context={"i": i, "huge": 2**70, "nul": "a\x00b"}) for i in range(1000)]
    poison = {
        reason: row(10_000 + k, context=context)
        for k, (reason, context) in enumerate(UNENCODABLE.items())
    }
    mixed: list[dict[str, Any]] = list(honest)
    for k, bad in enumerate(poison.values()):
        mixed.insert(k * 150 + 7, bad)
    for r in mixed:
        log.record(r)
    log.flush()
    found = stored(store)
    assert len(found) == len(mixed)
    for r in honest:  # every honest row as it was given
        assert found[r["decision_id"]]["context"] == r["context"]
    for reason, bad in poison.items():
        kept = found[bad["decision_id"]]
        assert set(kept["context"]) == {ERROR_KEY}, reason
        assert kept["context"][ERROR_KEY].startswith("context not storable: "), reason
        # The decision itself is kept: who did what, and the answer.
        for column in ("subject_id", "action", "resource_id", "outcome", "decision"):
            assert kept[column] == bad[column], (reason, column)
    assert log.written == len(mixed)
    assert log.lost == 0
    assert log.healthy


def test_rows_with_broken_columns_are_stored_cleaned_or_as_error_rows(
    store: Engine, log: DecisionLog
) -> None:
    honest = [row(i) for i in range(50)]
    nul_and_surrogate = row(900, subject_id="ag\ud800ent\x00-1" + "x" * 500)
    no_outcome = row(901)
    del no_outcome["outcome"]
    not_a_time = row(902, at="yesterday")  # PostgreSQL would take the word
    for r in [*honest[:20], nul_and_surrogate, no_outcome, not_a_time, *honest[20:]]:
        log.record(r)
    log.record(cast(Any, 42))  # not even a mapping
    log.flush()
    found = stored(store)
    assert len(found) == len(honest) + 4
    assert {r["decision_id"] for r in honest} <= set(found)
    cleaned = found[nul_and_surrogate["decision_id"]]
    assert cleaned["subject_id"].startswith("ag?ent-1xx")
    assert len(cleaned["subject_id"]) == 400
    assert cleaned["context"] == nul_and_surrogate["context"]  # cleaning kept the context
    assert found[no_outcome["decision_id"]]["outcome"] == ""
    assert ERROR_KEY in found[not_a_time["decision_id"]]["context"]
    assert log.written == len(honest) + 4
    assert log.lost == 0


def test_a_row_the_store_refuses_for_any_reason_is_isolated(
    store: Engine, log: DecisionLog
) -> None:
    # Not a DataError: a refusal of a kind the writer has never seen.
    context_at = COLUMNS.index("context")

    def refuse_marked(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("INSERT INTO decisions"):
            rows = params if isinstance(params, list) else [params]
            if any("refuse-me" in str(p[context_at]) for p in rows):
                raise ValueError("the store's own reason")

    event.listen(store, "before_cursor_execute", refuse_marked)
    honest = [row(i) for i in range(2000)]
    marked = [row(5000 + k, context={"note": "refuse-me"}) for k in range(3)]
    for i, r in enumerate(honest):
        log.record(r)
        if i % 700 == 0:
            log.record(marked[i // 700])
    log.flush()
    found = stored(store)
    assert {r["decision_id"] for r in honest} <= set(found)
    for bad in marked:
        reason = found[bad["decision_id"]]["context"][ERROR_KEY]
        assert reason == "context not storable: ValueError: the store's own reason"
    assert log.written == len(honest) + len(marked)
    assert log.lost == 0


def test_a_dropped_store_loses_rows_and_says_so_until_it_is_back(
    doomed_database: DoomedDatabase,
) -> None:
    engine = open_engine(doomed_database.url)
    migrate.upgrade(engine)
    log = DecisionLog(engine, flush_interval_ms=20, probe_interval_ms=100)
    try:
        before = [row(i) for i in range(10)]
        for r in before:
            log.record(r)
        log.flush()
        assert (log.written, log.lost, log.healthy) == (10, 0, True)
        doomed_database.drop()
        for i in range(25):
            log.record(row(100 + i))
        log.flush(timeout=30)
        assert log.written == 10
        assert log.lost == 25
        assert not log.healthy
        assert log.problem is not None
        assert "unreachable" in log.problem
    finally:
        log.close()
        engine.dispose()


def test_an_idle_log_notices_the_store_is_gone_before_any_row_is_lost(
    doomed_database: DoomedDatabase,
) -> None:
    engine = open_engine(doomed_database.url)
    migrate.upgrade(engine)
    log = DecisionLog(engine, flush_interval_ms=20, probe_interval_ms=100)
    try:
        time.sleep(0.3)
        assert log.healthy  # probes pass and leave nothing behind
        assert stored(engine) == {}
        doomed_database.drop()
        deadline = time.monotonic() + 5
        while log.healthy:
            assert time.monotonic() < deadline, "the probe did not notice the store is gone"
            time.sleep(0.05)
        assert log.lost == 0
    finally:
        log.close()
        engine.dispose()
