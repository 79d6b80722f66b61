"""Hash chains over tether's own records: decisions and the admin audit log.

Every row of ``decisions`` and ``audit_log`` names its predecessor's hash
(``prev_hash``) and carries its own, ``hash = SHA-256(prev_hash || "\\n" || header)``,
where the header is the JSON array of the row's columns (all but ``seq`` and the two
hashes) as the store keeps them: times as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; for decisions
the JSON columns as their exact stored text (PostgreSQL ``json`` and SQLite keep it
verbatim), for the audit log the canonical JSON of ``details``. Rows are appended under
the chain's lock (an update of its ``record_chain_heads`` row, which SQLite and PostgreSQL
both serialise), so ``seq`` order is chain order whichever process writes.

The head of each chain is *sealed*: ``record_chain_heads`` keeps the last row's ``seq``
and hash with a signature over them (made by the caller's ``Sealer``; keys are not this
layer's). Decision batches are sealed in the transaction that inserts them; audit rows are
sealed soon after (:func:`seal_head`). Verification is :mod:`tether.telemetry.records`.
Rows written before the chains existed (``hash`` null, ``seq`` below the chain's
``first_seq``) are left as they were and reported apart.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Connection,
    RowMapping,
    Text,
    bindparam,
    cast,
    func,
    insert,
    select,
    update,
)

from tether.store.tables import audit_log, decisions, record_chain_heads

log = logging.getLogger(__name__)

GENESIS = "0" * 64
"""The ``prev_hash`` of the first row of a chain."""

DECISIONS = "decisions"
AUDIT_LOG = "audit_log"
CHAINS = (DECISIONS, AUDIT_LOG)
CHAIN_COLUMNS = ("prev_hash", "hash")

# A signature over a chain's head: (chain, first_seq, seq, hash, at) -> compact JWS.
Sealer = Callable[[str, int, int, str, datetime], str]


@dataclass(frozen=True, slots=True)
class SealedHead:
    """What ``record_chain_heads`` holds for a chain (all None before its first row)."""

    chain: str
    first_seq: int | None
    seq: int | None
    hash: str | None
    at: datetime | None
    signature: str | None


def link(prev_hash: str, header: bytes) -> str:
    """The hash of a row whose predecessor hashed to ``prev_hash``."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + header).hexdigest()


def time_text(value: datetime | str) -> str:
    """A time in the chains' one spelling; naive values (and SQLite's stored text, as
    tether writes it) are UTC."""
    if isinstance(value, str):  # "YYYY-MM-DD HH:MM:SS.ffffff", tether's SQLite form
        return value.replace(" ", "T") + "Z"
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def canonical(value: Any) -> str:
    """Canonical JSON text of a JSON value (keys sorted, no spaces)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # integers beyond 64 bits
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- decisions: the header from the driver's parameters, or from a row read back --------

DECISION_COLUMNS = [
    str(c.name) for c in decisions.columns if c.name != "seq" and c.name not in CHAIN_COLUMNS
]
_DECISION_AT = DECISION_COLUMNS.index("at")
_DECISION_BOOL = DECISION_COLUMNS.index("decision")


def decision_header(values: Sequence[Any]) -> bytes:
    """The header of a decision row, from its values in :data:`DECISION_COLUMNS` order
    (the JSON columns as their stored text)."""
    fixed = list(values)
    fixed[_DECISION_AT] = time_text(fixed[_DECISION_AT])
    fixed[_DECISION_BOOL] = bool(fixed[_DECISION_BOOL])
    return orjson.dumps(fixed)


# --- the audit log ---------------------------------------------------------------------

AUDIT_COLUMNS = ("at", "actor", "action", "target", "details")


def audit_header(row: Mapping[str, Any] | RowMapping) -> bytes:
    """The header of an audit row (from what is inserted, or read back)."""
    return orjson.dumps(
        [
            time_text(row["at"]),
            row["actor"],
            row["action"],
            row["target"],
            canonical(row["details"]),
        ]
    )


def append_audit(connection: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append audit rows (``at``, ``actor``, ``action``, ``target``, ``details``) to the
    chain, inside the caller's transaction (which holds the chain's lock until it ends)."""
    fixed = [
        {
            "at": (row.get("at") or datetime.now(UTC)).astimezone(UTC),
            "actor": str(row["actor"])[:200],
            "action": str(row["action"])[:80],
            "target": str(row["target"])[:400],
            "details": dict(row.get("details") or {}),
        }
        for row in rows
    ]
    if not fixed:
        return
    prev = hold(connection, AUDIT_LOG)
    for row in fixed:
        row["prev_hash"] = prev
        row["hash"] = prev = link(prev, audit_header(row))
    connection.execute(insert(audit_log), fixed)
    _note_first(connection, AUDIT_LOG)  # sealed soon after, by seal_head


# --- inside a chain's lock ----------------------------------------------------------------

_TABLES = {DECISIONS: decisions, AUDIT_LOG: audit_log}

# The statements of every append, built once (building one cost more than running it: a
# batch of decisions runs them all, often for a few rows).
_HEADS = record_chain_heads.c
_LOCK = (
    update(record_chain_heads)
    .where(_HEADS.chain == bindparam("lock_chain"))
    .values(chain=_HEADS.chain)
)
_LAST = {
    chain: select(table.c.seq, table.c.hash)
    .where(table.c.hash.is_not(None))
    .order_by(table.c.seq.desc())
    .limit(1)
    for chain, table in _TABLES.items()
}
_HEAD = select(record_chain_heads).where(_HEADS.chain == bindparam("head_chain"))
_FIRST = select(_HEADS.first_seq).where(_HEADS.chain == bindparam("first_chain"))
_SEAL = (
    update(record_chain_heads)
    .where(_HEADS.chain == bindparam("seal_chain"))
    .values(
        seq=bindparam("seal_seq"),
        hash=bindparam("seal_hash"),
        at=bindparam("seal_at"),
        signature=bindparam("seal_signature"),
    )
)


def hold(connection: Connection, chain: str) -> str:
    """Take ``chain``'s lock for the rest of the transaction; the hash of its last row."""
    locked = connection.execute(_LOCK, {"lock_chain": chain})
    if locked.rowcount == 0:  # a store made before the row existed
        connection.execute(insert(record_chain_heads).values(chain=chain))
    last = connection.execute(_LAST[chain]).first()
    return str(last.hash) if last is not None else GENESIS


def _note_first(connection: Connection, chain: str) -> None:
    """Record the chain's first ``seq`` once (rows below it predate the chain)."""
    table = _TABLES[chain]
    first = select(func.min(table.c.seq)).where(table.c.hash.is_not(None)).scalar_subquery()
    connection.execute(
        update(record_chain_heads)
        .where(record_chain_heads.c.chain == chain, record_chain_heads.c.first_seq.is_(None))
        .values(first_seq=first)
    )


def note_appended(connection: Connection, chain: str, sealer: Sealer | None, *, after: str) -> None:
    """After rows were appended under the lock to a chain whose last hash was ``after``:
    the first ``seq`` noted, and the new head sealed when a ``sealer`` is given, but only
    if ``after`` is the sealed head (the chain was not altered since tether sealed it)."""
    head = read_head(connection, chain)  # its seq and hash: not changed by noting first_seq
    first = head.first_seq
    if first is None:
        _note_first(connection, chain)
    if sealer is None:
        return
    if after == (head.hash if head.seq is not None else GENESIS):
        _seal(connection, chain, sealer, first_seq=first)
    else:
        log.error(
            "the %s chain does not continue from its sealed head: not sealing it "
            "(run `tether audit verify`)",
            chain,
        )


def seal_head(connection: Connection, chain: str, sealer: Sealer) -> bool:
    """Seal ``chain``'s head if rows were appended since its last seal and they continue
    from it (each links to the one before and hashes to its own hash); whether it did."""
    head = read_head(connection, chain)
    table = _TABLES[chain]
    last = connection.execute(select(func.max(table.c.seq))).scalar()
    if last is None or head.seq == last:
        return False
    hold(connection, chain)
    if not _continues(connection, chain, head):
        log.error(
            "the %s chain does not continue from its sealed head: not sealing it "
            "(run `tether audit verify`)",
            chain,
        )
        return False
    _seal(connection, chain, sealer)
    return True


def _continues(connection: Connection, chain: str, head: SealedHead) -> bool:
    """Whether the rows after the sealed head link on from it (audit rows: few)."""
    if chain != AUDIT_LOG:
        raise ValueError(f"only the audit log is sealed after the fact, not `{chain}`")
    start = head.seq if head.seq is not None else 0
    query = select(audit_log).where(audit_log.c.seq >= start).order_by(audit_log.c.seq)
    prev = GENESIS if head.seq is None else None
    for row in connection.execute(query).mappings():
        if prev is None:  # the sealed row itself
            if row["seq"] != head.seq or row["hash"] != head.hash:
                return False
            prev = str(row["hash"])
            continue
        if row["hash"] is None and head.seq is None:
            continue  # older than the chain
        if row["prev_hash"] != prev or row["hash"] != link(prev, audit_header(row)):
            return False
        prev = str(row["hash"])
    return prev is not None


def _seal(
    connection: Connection, chain: str, sealer: Sealer, *, first_seq: int | None = None
) -> None:
    """Sign the chain's last row as its head (``first_seq``: the chain's, when the caller
    read it in this transaction; read here otherwise)."""
    row = connection.execute(_LAST[chain]).first()
    first = first_seq
    if first is None:
        first = connection.execute(_FIRST, {"first_chain": chain}).scalar()
    if row is None or first is None:
        return
    now = datetime.now(UTC)
    seq, head = int(row.seq), str(row.hash)
    connection.execute(
        _SEAL,
        {
            "seal_chain": chain,
            "seal_seq": seq,
            "seal_hash": head,
            "seal_at": now,
            "seal_signature": sealer(chain, int(first), seq, head, now),
        },
    )


def read_head(connection: Connection, chain: str) -> SealedHead:
    row = connection.execute(_HEAD, {"head_chain": chain}).first()
    if row is None:
        return SealedHead(chain, None, None, None, None, None)
    return SealedHead(
        chain,
        None if row.first_seq is None else int(row.first_seq),
        None if row.seq is None else int(row.seq),
        row.hash,
        row.at,
        row.signature,
    )


_DECISION_JSON = frozenset(str(c.name) for c in decisions.columns if isinstance(c.type, JSON))


def decision_columns_as_stored() -> list[Any]:
    """The columns to read a decision back for verification (JSON as its stored text)."""
    return [
        cast(decisions.c[name], Text).label(name) if name in _DECISION_JSON else decisions.c[name]
        for name in DECISION_COLUMNS
    ]
