"""How far live detection has examined the stored events, kept in the store.

The live tail (:meth:`tether.drift.engine.DriftEngine.start`) used to begin at the chain's
head, so events stored while no server ran (an ingest into a stopped server's store, a
restart in the middle of an ingest) were never examined live. Now the tail's position is
written after each page it examined (findings stored first), and a restart resumes there.
The position written is the highest sequence number *below every hole* the tail still
waits for (:class:`~tether.store.seq_cursor.SeqCursor`), so resuming never skips a late
commit; an event examined twice makes the same findings (stable ids: stored once).

Replicas on one store each tail every event; the position only moves forward
(``seq < new``), so it is the furthest any of them examined: any one examination is
enough, as the findings are the same.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from tether.store.drift_tables import drift_positions
from tether.store.seq_cursor import SeqCursor

LIVE = "live"


def resume_point(engine: Engine, *, newest: int, reader: str = LIVE) -> int:
    """Where ``reader`` resumes: its stored position, or ``newest`` (the chain's head) when
    it has none (a first start) or the store holds fewer events than it says (restored
    from an older backup)."""
    with engine.connect() as connection:
        stored = connection.execute(
            select(drift_positions.c.seq).where(drift_positions.c.reader == reader)
        ).scalar()
    if stored is None or int(stored) > newest:
        return newest
    return int(stored)


def examined_up_to(cursor: SeqCursor) -> int:
    """The highest sequence number with every event up to it examined."""
    holes = cursor.holes
    return min(holes) - 1 if holes else cursor.last


def save_position(engine: Engine, seq: int, *, reader: str = LIVE) -> None:
    """Record that every stored event up to ``seq`` is examined (never moves back)."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        moved = connection.execute(
            drift_positions.update()
            .where(drift_positions.c.reader == reader, drift_positions.c.seq < seq)
            .values(seq=seq, at=now)
        ).rowcount
        if moved:
            return
        known = connection.execute(
            select(drift_positions.c.seq).where(drift_positions.c.reader == reader)
        ).scalar()
        if known is None:
            connection.execute(drift_positions.insert().values(reader=reader, seq=seq, at=now))
