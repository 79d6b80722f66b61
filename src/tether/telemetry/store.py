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

:meth:`EventStore.ingest` commits each batch on a helper thread while the next batch is
read, decoded and serialised (the commit, WAL writes and checkpoints included, runs in
the database driver with the GIL released); the next batch is written only after that
commit succeeded, so batches are chained and committed strictly in order, at most two in
memory. Cyclic garbage collection is paused for the length of an ingest: events and their raw
JSON hold no reference cycles (reference counting frees them), and collection passes
over the live batches were a fifth of the ingest time.

**Detection hook**: every callable in :attr:`EventStore.on_stored` is called, on the
thread that called :meth:`~EventStore.ingest` or :meth:`~EventStore.append`, with the
events of each batch once they are committed (duplicates left out, in chain order).
This is where drift detection is handed stored events.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine

from tether.store.tables import identities
from tether.telemetry.attribution import Attributor
from tether.telemetry.chain import GENESIS, HASHED_COLUMNS, link_hash, time_text
from tether.telemetry.checkpoints import CHECKPOINT, sign_checkpoint
from tether.telemetry.model import IngestError, ObservedAccess, canonical_json
from tether.tokens import KeyRing

# The order _prepare builds rows in: the hashed columns (chain.py), then the raw event.
_EVENT_COLUMNS = ("seq", *HASHED_COLUMNS, "raw", "prev_hash", "hash")
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


def _items_of(summary: IngestSummary) -> int:
    """The events a batch held (stored and duplicates), for ``on_progress``."""
    return summary.ingested + summary.duplicates


def _sqlite_time(value: datetime) -> str:
    # The storage format SQLAlchemy's SQLite DateTime reads back (UTC, no offset).
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


StoredCallback = Callable[[Sequence[ObservedAccess]], None]
"""Called with the events of a batch once they are committed (see ``on_stored``)."""

# A row ready to chain: column values (``dedupe_key`` ... ``raw``), header, raw, and the
# event itself when the hooks are to see it (else None: its parsed JSON is freed at once).
_Row = tuple[tuple[Any, ...], bytes, bytes, ObservedAccess | None]


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A batch ready to chain, keyed by dedupe key."""

    rows: dict[str, _Row]
    duplicates: int
    discovered: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Written:
    summary: IngestSummary
    stored: list[ObservedAccess]  # for the hooks (empty when there are none)


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
        self._stored_seen = False  # a batch met events already stored (see _write)
        self.on_stored: list[StoredCallback] = []
        """Detection hook: called with each committed batch's new events (module doc)."""
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

        ``on_progress`` is called after each batch with the number of items it held. When
        events were stored, the new head is checkpointed before this returns, so no stored
        event is ever without a signed checkpoint for longer than its ingest takes.
        """
        summary = IngestSummary()
        errors = [0]
        pending: tuple[Future[None], _Written, _Prepared] | None = None
        with (
            _collection_paused(),
            contextlib.closing(self._engine.raw_connection()) as connection,
            ThreadPoolExecutor(1, thread_name_prefix="tether-chain-commit") as committer,
        ):
            try:
                # Each batch is prepared as it is read, overlapping the commit of the one before.
                for prepared in self._prepared_batches(items, on_error, errors):
                    if pending is not None:
                        done, pending = pending, None
                        try:
                            summary += self._committed(connection, *done)
                        except BaseException:
                            self._attributor.forget(prepared.discovered)
                            raise
                        if on_progress is not None:
                            on_progress(_items_of(done[1].summary))
                    written = self._write(prepared, connection, commit=False)
                    pending = (committer.submit(connection.commit), written, prepared)
                if pending is not None:
                    done, pending = pending, None
                    summary += self._committed(connection, *done)
                    if on_progress is not None:
                        on_progress(_items_of(done[1].summary))
            finally:
                if pending is not None:  # reading failed while a commit was under way
                    with contextlib.suppress(BaseException):
                        self._committed(connection, *pending)
        if summary.ingested:
            self.checkpoint()
        return summary + IngestSummary(errors=errors[0])

    def _committed(
        self, connection: Any, commit: Future[None], written: _Written, prepared: _Prepared
    ) -> IngestSummary:
        """Wait for a batch's commit; then tell the hooks (or undo the batch's discoveries)."""
        try:
            commit.result()
        except BaseException:
            with contextlib.suppress(Exception):
                connection.rollback()
            self._attributor.forget(prepared.discovered)
            raise
        self._stored(written.stored)
        return written.summary

    def _stored(self, events: list[ObservedAccess]) -> None:
        if events:
            for callback in self.on_stored:
                callback(events)

    def _prepared_batches(
        self,
        items: Iterable[ObservedAccess | IngestError],
        on_error: Callable[[IngestError], None] | None,
        errors: list[int],
    ) -> Iterator[_Prepared]:
        """Batches of ``batch_size`` events, each event serialised as soon as it is read
        (while its parsed JSON is still in the CPU's caches); IngestErrors counted in
        ``errors[0]``."""
        size = self._batch_size
        row_of = self._row_maker(keep_events=bool(self.on_stored))
        rows: dict[str, _Row] = {}
        duplicates = 0
        for item in items:
            if isinstance(item, IngestError):
                errors[0] += 1
                if on_error is not None:
                    on_error(item)
                continue
            key = item.dedupe_key
            if key in rows:
                duplicates += 1
            else:
                rows[key] = row_of(item)
            if len(rows) + duplicates >= size:
                yield _Prepared(rows, duplicates, self._attributor.take_new())
                rows, duplicates = {}, 0
        if rows or duplicates:
            yield _Prepared(rows, duplicates, self._attributor.take_new())

    def append(self, events: Sequence[ObservedAccess], *, connection: Any = None) -> IngestSummary:
        """Store one batch in one transaction; events already stored are skipped.

        ``connection``: a DBAPI connection of this store's engine to reuse (else one is
        opened for the batch).
        """
        prepared = self._prepare(events)
        try:
            written = self._write(prepared, connection)
        except BaseException:
            self._attributor.forget(prepared.discovered)
            raise
        self._stored(written.stored)
        return written.summary

    def _prepare(self, events: Sequence[ObservedAccess]) -> _Prepared:
        """Attribute and serialise a batch (no I/O): rows keyed by dedupe key."""
        rows: dict[str, _Row] = {}
        duplicates = 0
        row_of = self._row_maker(keep_events=True)
        for event in events:
            if event.dedupe_key in rows:
                duplicates += 1
            else:
                rows[event.dedupe_key] = row_of(event)
        return _Prepared(rows, duplicates, self._attributor.take_new())

    def _row_maker(self, *, keep_events: bool) -> Callable[[ObservedAccess], _Row]:
        """A function attributing and serialising one event into its row (no I/O)."""
        sqlite = self._sqlite
        attribute = self._attributor.attribute
        last: list[Any] = [None, "", None]  # the last time seen, its chain and stored spelling

        def row_of(event: ObservedAccess) -> _Row:
            if event.at != last[0]:  # events of one source second share their time
                at_text = time_text(event.at)
                # The storage format SQLAlchemy's SQLite DateTime reads back (UTC, no offset).
                last[:] = event.at, at_text, at_text[:-1].replace("T", " ") if sqlite else event.at
            environment = event.environment
            principal = event.principal
            # HASHED_COLUMNS order (tether.telemetry.chain), as row_header reads them back.
            hashed = [
                event.dedupe_key,
                last[1],
                bool(event.at_is_ingest_time),
                str(event.source),
                event.source_event_id,
                str(principal.kind),
                principal.key,
                attribute(event),
                event.task_id,
                event.token_id,
                event.action,
                event.resource,
                event.resource_type,
                event.data_class,
                str(event.outcome),
                event.decision_id,
                event.tool_name,
                event.call_id,
                event.parent_call_id,
                environment.source_ip,
                environment.region,
                environment.user_agent,
                event.records,
                event.bytes,
            ]
            header = orjson.dumps(hashed)
            raw_json = event.raw_json or canonical_json(event.raw)
            hashed[1] = last[2]
            hashed.append(raw_json.decode("utf-8"))
            return (tuple(hashed), header, raw_json, event if keep_events else None)

        return row_of

    def _write(
        self, prepared: _Prepared, connection: Any = None, *, commit: bool = True
    ) -> _Written:
        """Number, chain and insert a prepared batch, holding the chain lock.

        With ``commit=False`` the transaction (and the lock) stays open: the caller commits.
        """
        duplicates = prepared.duplicates
        raw = connection if connection is not None else self._engine.raw_connection()
        stored: list[ObservedAccess] = []
        try:
            cursor = raw.cursor()
            self._lock(raw, cursor)
            # On SQLite, until a batch met stored events, guess that none is stored: the
            # insert's row count tells if the guess was wrong, and the batch is redone.
            guess = self._sqlite and not self._stored_seen
            existing = set() if guess else self._existing(cursor, list(prepared.rows))
            if not guess:
                self._stored_seen = bool(existing)
            seq, head = self._head(cursor)
            first = seq
            params: list[tuple[Any, ...]] = []
            boundaries: list[tuple[int, str]] = []
            every = self._checkpoint_every
            for key, (values, header, raw_json, event) in prepared.rows.items():
                if key in existing:
                    duplicates += 1
                    continue
                seq += 1
                link = link_hash(head, header, raw_json)
                params.append((seq, *values, head, link))
                if event is not None:
                    stored.append(event)
                head = link
                if seq % every == 0:
                    boundaries.append((seq, link))
            if prepared.discovered:
                cursor.executemany(
                    self._insert_identities,
                    [self._identity_params(r) for r in prepared.discovered],
                )
            if params:
                cursor.executemany(self._insert_events, params)
                if guess and cursor.rowcount != len(params):
                    raw.rollback()
                    self._stored_seen = True
                    return self._write(prepared, connection, commit=commit)
            for boundary_seq, boundary_hash in boundaries:
                self._record_checkpoint(cursor, boundary_seq, boundary_hash)
            if commit:
                raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            if connection is None:
                raw.close()
        summary = IngestSummary(seq - first, duplicates, 0, len(prepared.discovered))
        return _Written(summary, stored)

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
