"""The event store's single chain writer: attributed, deduplicated, hash-chained appends.

:class:`EventStore` turns :class:`~tether.telemetry.model.ObservedAccess` values into
``events`` rows in batches. Per batch, outside any lock, it attributes each event
(:class:`~tether.telemetry.attribution.Attributor`) and serialises it; then, holding the
chain lock (``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` of
``event_chain_lock`` on PostgreSQL), it drops events already stored (same dedupe key),
numbers the rest after the chain head, links their hashes (:mod:`tether.telemetry.chain`)
and inserts them with the driver's ``executemany`` (``ON CONFLICT (dedupe_key) DO
NOTHING``). Every ``checkpoint_every`` events, and when asked at the end of an ingest, a
signed checkpoint of the head is recorded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine

from tether.store.tables import identities
from tether.telemetry.attribution import Attributor
from tether.telemetry.chain import GENESIS, link_hash, row_header
from tether.telemetry.checkpoints import CHECKPOINT, sign_checkpoint
from tether.telemetry.model import IngestError, ObservedAccess, canonical_json
from tether.tokens import KeyRing

_EVENT_COLUMNS = (
    "seq",
    "dedupe_key",
    "at",
    "at_is_ingest_time",
    "source",
    "source_event_id",
    "principal_kind",
    "principal_key",
    "identity_id",
    "task_id",
    "token_id",
    "action",
    "resource",
    "resource_type",
    "data_class",
    "outcome",
    "decision_id",
    "tool_name",
    "call_id",
    "parent_call_id",
    "source_ip",
    "region",
    "user_agent",
    "records",
    "bytes",
    "raw",
    "prev_hash",
    "hash",
)
_IDENTITY_COLUMNS = tuple(c.name for c in identities.columns)
_IDENTITY_JSON = frozenset({"workload", "attributes"})


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """What an ingest did: events stored, exact duplicates skipped, lines that were no event."""

    ingested: int = 0
    duplicates: int = 0
    errors: int = 0
    discovered: int = 0

    def __add__(self, other: IngestSummary) -> IngestSummary:
        return IngestSummary(
            self.ingested + other.ingested,
            self.duplicates + other.duplicates,
            self.errors + other.errors,
            self.discovered + other.discovered,
        )


def event_row(event: ObservedAccess, identity_id: str | None) -> dict[str, Any]:
    """The columns of ``event`` (all but ``seq``, ``raw`` and the chain hashes)."""
    environment = event.environment
    return {
        "dedupe_key": event.dedupe_key,
        "at": event.at,
        "at_is_ingest_time": event.at_is_ingest_time,
        "source": str(event.source),
        "source_event_id": event.source_event_id,
        "principal_kind": str(event.principal.kind),
        "principal_key": event.principal.key,
        "identity_id": identity_id,
        "task_id": event.task_id,
        "token_id": event.token_id,
        "action": event.action,
        "resource": event.resource,
        "resource_type": event.resource_type,
        "data_class": event.data_class,
        "outcome": str(event.outcome),
        "decision_id": event.decision_id,
        "tool_name": event.tool_name,
        "call_id": event.call_id,
        "parent_call_id": event.parent_call_id,
        "source_ip": environment.source_ip,
        "region": environment.region,
        "user_agent": environment.user_agent,
        "records": event.records,
        "bytes": event.bytes,
    }


def _sqlite_time(value: datetime) -> str:
    # The storage format SQLAlchemy's SQLite DateTime reads back (UTC, no offset).
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A batch ready to chain: column values (``dedupe_key`` ... ``raw``), header, raw."""

    rows: dict[str, tuple[tuple[Any, ...], bytes, bytes]]
    duplicates: int
    discovered: list[dict[str, Any]]


class EventStore:
    """Appends events to the hash-chained ``events`` table (one writer at a time)."""

    def __init__(
        self,
        engine: Engine,
        keys: KeyRing,
        *,
        batch_size: int = 5000,
        checkpoint_every: int = 10_000,
    ) -> None:
        self._engine = engine
        self._keys = keys
        self._batch_size = batch_size
        self._checkpoint_every = checkpoint_every
        self._sqlite = engine.dialect.name == "sqlite"
        mark = "?" if self._sqlite else "%s"
        names = ", ".join(_EVENT_COLUMNS)
        marks = ", ".join(
            "CAST(%s AS JSON)" if c == "raw" and not self._sqlite else mark for c in _EVENT_COLUMNS
        )
        self._insert_events = (
            f"INSERT INTO events ({names}) VALUES ({marks}) "  # noqa: S608 - our own columns
            "ON CONFLICT (dedupe_key) DO NOTHING"
        )
        identity_marks = ", ".join(
            f"CAST({mark} AS JSON)" if c in _IDENTITY_JSON and not self._sqlite else mark
            for c in _IDENTITY_COLUMNS
        )
        self._insert_identities = (
            f"INSERT INTO identities ({', '.join(_IDENTITY_COLUMNS)}) "  # noqa: S608
            f"VALUES ({identity_marks}) ON CONFLICT (id) DO NOTHING"
        )
        columns = "at, last_event_seq, last_hash, kind, signature"
        self._insert_checkpoint = (
            f"INSERT INTO audit_checkpoints ({columns}) VALUES ({', '.join([mark] * 5)})"  # noqa: S608
        )
        keys.active()  # a first key is made now, not while the chain lock is held
        with engine.connect() as connection:
            self._attributor = Attributor(connection)

    # --- writing ---------------------------------------------------------------------

    def ingest(
        self,
        items: Iterable[ObservedAccess | IngestError],
        *,
        on_error: Callable[[IngestError], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> IngestSummary:
        """Store every event of ``items`` (errors are counted and passed to ``on_error``).

        ``on_progress`` is called after each batch with the number of items it held.
        """
        summary = IngestSummary()
        errors = 0
        with contextlib.closing(self._engine.raw_connection()) as connection:
            batch: list[ObservedAccess] = []
            for item in items:
                if isinstance(item, IngestError):
                    errors += 1
                    if on_error is not None:
                        on_error(item)
                    continue
                batch.append(item)
                if len(batch) >= self._batch_size:
                    summary += self.append(batch, connection=connection)
                    if on_progress is not None:
                        on_progress(len(batch))
                    batch = []
            if batch:
                summary += self.append(batch, connection=connection)
                if on_progress is not None:
                    on_progress(len(batch))
        return summary + IngestSummary(errors=errors)

    def append(self, events: Sequence[ObservedAccess], *, connection: Any = None) -> IngestSummary:
        """Store one batch in one transaction; events already stored are skipped.

        ``connection``: a DBAPI connection of this store's engine to reuse (else one is
        opened for the batch).
        """
        prepared = self._prepare(events)
        try:
            return self._write(prepared, connection)
        except BaseException:
            self._attributor.forget(prepared.discovered)
            raise

    def _prepare(self, events: Sequence[ObservedAccess]) -> _Prepared:
        """Attribute and serialise a batch (no I/O): rows keyed by dedupe key."""
        rows: dict[str, tuple[tuple[Any, ...], bytes, bytes]] = {}
        duplicates = 0
        sqlite = self._sqlite
        for event in events:
            if event.dedupe_key in rows:
                duplicates += 1
                continue
            row = event_row(event, self._attributor.attribute(event))
            raw_json = canonical_json(event.raw)
            values = list(row.values())
            if sqlite:
                values[1] = _sqlite_time(values[1])
            values.append(raw_json.decode("utf-8"))
            rows[event.dedupe_key] = (tuple(values), row_header(row), raw_json)
        return _Prepared(rows, duplicates, self._attributor.take_new())

    def _write(self, prepared: _Prepared, connection: Any = None) -> IngestSummary:
        """Number, chain and insert a prepared batch, holding the chain lock."""
        duplicates = prepared.duplicates
        raw = connection if connection is not None else self._engine.raw_connection()
        try:
            cursor = raw.cursor()
            self._lock(raw, cursor)
            existing = self._existing(cursor, list(prepared.rows))
            seq, head = self._head(cursor)
            first = seq
            params: list[tuple[Any, ...]] = []
            boundaries: list[tuple[int, str]] = []
            for key, (values, header, raw_json) in prepared.rows.items():
                if key in existing:
                    duplicates += 1
                    continue
                seq += 1
                link = link_hash(head, header, raw_json)
                params.append((seq, *values, head, link))
                head = link
                if seq % self._checkpoint_every == 0:
                    boundaries.append((seq, link))
            if prepared.discovered:
                cursor.executemany(
                    self._insert_identities,
                    [self._identity_params(r) for r in prepared.discovered],
                )
            if params:
                cursor.executemany(self._insert_events, params)
            for boundary_seq, boundary_hash in boundaries:
                self._record_checkpoint(cursor, boundary_seq, boundary_hash)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            if connection is None:
                raw.close()
        return IngestSummary(seq - first, duplicates, 0, len(prepared.discovered))

    def checkpoint(self) -> tuple[int, str] | None:
        """Sign and record the chain head unless it is already checkpointed; the head."""
        raw = self._engine.raw_connection()
        try:
            cursor = raw.cursor()
            self._lock(raw, cursor)
            seq, head = self._head(cursor)
            if seq == 0:
                raw.rollback()
                return None
            cursor.execute("SELECT MAX(last_event_seq) FROM audit_checkpoints")
            latest = cursor.fetchone()
            if latest is None or latest[0] is None or int(latest[0]) < seq:
                self._record_checkpoint(cursor, seq, head)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()
        return seq, head

    # --- inside the chain lock ---------------------------------------------------------

    def _lock(self, raw: Any, cursor: Any) -> None:
        if self._sqlite:
            raw.driver_connection.isolation_level = None  # we say when transactions begin
            cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: index pages stay cached
            cursor.execute("BEGIN IMMEDIATE")
        else:
            cursor.execute("SELECT id FROM event_chain_lock WHERE id = 1 FOR UPDATE")

    def _existing(self, cursor: Any, keys: list[str]) -> set[str]:
        found: set[str] = set()
        if not self._sqlite:
            cursor.execute("SELECT dedupe_key FROM events WHERE dedupe_key = ANY(%s)", (keys,))
            return {r[0] for r in cursor.fetchall()}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            cursor.execute(
                f"SELECT dedupe_key FROM events WHERE dedupe_key IN ({marks})",  # noqa: S608
                chunk,
            )
            found.update(r[0] for r in cursor.fetchall())
        return found

    def _head(self, cursor: Any) -> tuple[int, str]:
        cursor.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
        found = cursor.fetchone()
        if found is not None:
            return int(found[0]), str(found[1])
        cursor.execute(
            "SELECT last_event_seq, last_hash FROM audit_checkpoints "
            "WHERE kind = 'pruned' ORDER BY seq DESC LIMIT 1"
        )
        pruned = cursor.fetchone()
        return (int(pruned[0]), str(pruned[1])) if pruned is not None else (0, GENESIS)

    def _record_checkpoint(self, cursor: Any, seq: int, head: str) -> None:
        now = datetime.now(UTC)
        signature = sign_checkpoint(self._keys, seq, head, CHECKPOINT, now)
        cursor.execute(
            self._insert_checkpoint,
            (_sqlite_time(now) if self._sqlite else now, seq, head, CHECKPOINT, signature),
        )

    def _identity_params(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        values: list[Any] = []
        for name in _IDENTITY_COLUMNS:
            value = row.get(name)
            if name in _IDENTITY_JSON:
                value = orjson.dumps(value).decode()
            elif isinstance(value, datetime) and self._sqlite:
                value = _sqlite_time(value)
            values.append(value)
        return tuple(values)
