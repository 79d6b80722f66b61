"""Following a table by sequence numbers: rows that commit late are read, once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, select

from tether.store.seq_cursor import HOLE_TTL_S, SeqCursor


def test_a_number_skipped_then_committed_is_read_and_a_rolled_back_one_is_given_up() -> None:
    now = [0.0]
    cursor = SeqCursor(clock=lambda: now[0])
    cursor.advance([1, 2, 5])  # 3 and 4 were taken by transactions not committed yet
    assert cursor.last == 5
    assert cursor.holes == {3, 4}
    cursor.advance([4, 6])  # 4 committed late
    assert cursor.holes == {3}
    now[0] += HOLE_TTL_S + 1  # 3 was rolled back: never asked for again
    metadata = MetaData()
    rows = Table("rows", metadata, Column("seq", Integer, primary_key=True))
    assert "IN" not in str(cursor.unread(rows.c.seq))
    assert cursor.holes == frozenset()


@given(st.permutations(list(range(1, 41))), st.integers(1, 8))
def test_whatever_order_rows_commit_in_each_is_read_exactly_once(
    commit_order: list[int], batch: int
) -> None:
    """Rows 1..40 commit in any order, some between two reads; every read asks the store
    for what the cursor has not read."""
    metadata = MetaData()
    rows = Table("rows", metadata, Column("seq", Integer, primary_key=True))
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    cursor = SeqCursor()
    read: list[int] = []
    for start in range(0, len(commit_order), batch):
        with engine.begin() as connection:
            connection.execute(
                rows.insert(), [{"seq": n} for n in commit_order[start : start + batch]]
            )
        with engine.connect() as connection:
            got = (
                connection.execute(select(rows.c.seq).where(cursor.unread(rows.c.seq)))
                .scalars()
                .all()
            )
        cursor.advance(got)
        read.extend(got)
    assert sorted(read) == list(range(1, 41))
    assert cursor.holes == frozenset()


def test_a_huge_gap_is_noted_at_once_and_only_its_top_is_kept() -> None:
    import time

    from tether.store.seq_cursor import MAX_HOLES

    cursor = SeqCursor()
    started = time.process_time()
    cursor.advance([1, 1_000_002])  # a million numbers of a rolled-back bulk ingest
    assert time.process_time() - started < 1.0
    assert len(cursor.holes) == MAX_HOLES
    assert min(cursor.holes) == 1_000_002 - MAX_HOLES
