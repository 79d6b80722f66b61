"""Sealing and verifying the record chains: decisions and the admin audit log.

A chain's head is sealed with a JWS (``typ`` ``tether-chain-head+jwt``) over its name, its
first chained row, its last row and that row's hash (:func:`seal_signature`; the chains
themselves are :mod:`tether.store.record_chain`). :func:`verify_records` walks a chain in
``seq`` order and reports the first link that does not hold:

* a row that no longer hashes to its ``hash``: **modified** (a deny rewritten to allow);
* a row that does not name its predecessor's hash: rows **deleted** before it (its
  ``seq`` skips) or **moved or inserted**; a row at or after the chain's first row with
  no hash at all: **inserted** by hand;
* no seal while chained rows exist (the seal was deleted), a seal whose signature does
  not verify (**forged**), a seal naming a row the store no longer has (**truncated**) or
  a row with another hash (**re-chained**).

Decision batches are sealed in the transaction that inserts them, so a decision after the
seal was not written by tether: **inserted**. Audit rows are sealed within about a second
(and when a command closes its store), so the few after the seal are reported as
``unsealed``, not as a break. Rows older than the chain (``seq`` below ``first_seq``,
written before tether chained them) are counted as ``unchained``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from tether.store.record_chain import (
    AUDIT_COLUMNS,
    AUDIT_LOG,
    DECISION_COLUMNS,
    DECISIONS,
    GENESIS,
    SealedHead,
    audit_header,
    decision_columns_as_stored,
    decision_header,
    link,
    read_head,
)
from tether.store.tables import audit_log, decisions
from tether.tokens import KeyRing
from tether.tokens.errors import TokenRejected

SEAL_TYP = "tether-chain-head+jwt"
_WHAT = {DECISIONS: "decision", AUDIT_LOG: "audit record"}


def seal_signature(
    keys: KeyRing, chain: str, first_seq: int, seq: int, head: str, at: datetime
) -> str:
    """The signed seal of ``chain``'s head (row ``seq`` hashing to ``head``)."""
    claims = {
        "chain": chain,
        "first_seq": first_seq,
        "seq": seq,
        "hash": head,
        "iat": int(at.timestamp()),
    }
    return keys.sign(claims, typ=SEAL_TYP)


@dataclass(frozen=True, slots=True)
class RecordBreak:
    seq: int
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class RecordChainReport:
    """One chain walked: its rows, what was not chained or not yet sealed, the first break."""

    chain: str
    rows: int
    unchained: int
    unsealed: int
    sealed_seq: int | None
    sealed_at: datetime | None
    broken: RecordBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _seal_holds(keys: KeyRing, head: SealedHead) -> bool:
    """Whether the seal's signature verifies (with the keys trusted when it was made) and
    signs exactly the stored head."""
    if head.signature is None or head.at is None:
        return False
    at = head.at if head.at.tzinfo is not None else head.at.replace(tzinfo=UTC)
    try:
        claims = keys.verify(head.signature, typ=SEAL_TYP, now=at)
    except TokenRejected:
        return False
    return (
        claims.get("chain") == head.chain
        and claims.get("first_seq") == head.first_seq
        and claims.get("seq") == head.seq
        and claims.get("hash") == head.hash
    )


def _rows(engine: Engine, chain: str) -> Iterator[tuple[int, str | None, str | None, bytes]]:
    """``(seq, prev_hash, hash, header)`` of every row of ``chain`` in ``seq`` order."""
    header: Callable[[Any], bytes]
    if chain == DECISIONS:
        table = decisions
        columns = decision_columns_as_stored()

        def header(row: Any) -> bytes:
            return decision_header([row[name] for name in DECISION_COLUMNS])

    else:
        table = audit_log
        columns = [audit_log.c[name] for name in AUDIT_COLUMNS]
        header = audit_header
    query = select(table.c.seq, table.c.prev_hash, table.c.hash, *columns).order_by(table.c.seq)
    with (
        engine.connect() as connection,
        connection.execution_options(yield_per=2000).execute(query) as result,
    ):
        for row in result.mappings():
            yield int(row["seq"]), row["prev_hash"], row["hash"], header(row)


def verify_records(engine: Engine, keys: KeyRing, chain: str) -> RecordChainReport:
    """Walk ``chain`` (``decisions`` or ``audit_log``) and report its first broken link."""
    with engine.connect() as connection:
        head = read_head(connection, chain)
    what = _WHAT[chain]
    rows = unchained = unsealed = 0
    prev, last_seq = GENESIS, None
    sealed_row_hash: str | None = None
    broken: RecordBreak | None = None
    for seq, prev_hash, digest, header in _rows(engine, chain):
        rows += 1
        if digest is None and (head.first_seq is None or seq < head.first_seq):
            unchained += 1  # older than the chain
            continue
        if digest is None:
            broken = RecordBreak(
                seq, "inserted", f"{what} {seq} has no hash: it was not written by tether"
            )
            break
        if link(str(prev_hash), header) != digest:
            broken = RecordBreak(
                seq, "modified", f"{what} {seq} was modified: it no longer matches its hash"
            )
            break
        if prev_hash != prev:
            if last_seq is None:
                message = (
                    f"{what} {seq} should begin the chain but follows a row that is gone: "
                    "the rows before it were deleted"
                )
            elif seq > last_seq + 1:
                message = (
                    f"{what}s after {last_seq} up to {seq} are missing or were re-hashed: "
                    f"{what} {seq} does not link to {what} {last_seq}"
                )
            else:
                message = f"{what} {seq} does not link to {what} {last_seq}: moved or inserted"
            gap = last_seq is None or seq > last_seq + 1
            broken = RecordBreak(seq, "deleted" if gap else "moved", message)
            break
        prev, last_seq = digest, seq
        if seq == head.seq:
            sealed_row_hash = digest
        elif head.seq is not None and seq > head.seq:
            unsealed += 1
    if broken is None:
        broken = _check_seal(keys, head, last_seq, sealed_row_hash, unsealed, what)
    return RecordChainReport(chain, rows, unchained, unsealed, head.seq, head.at, broken)


def _check_seal(
    keys: KeyRing,
    head: SealedHead,
    last_seq: int | None,
    sealed_row_hash: str | None,
    unsealed: int,
    what: str,
) -> RecordBreak | None:
    if last_seq is None:
        if head.seq is not None:
            return RecordBreak(
                head.seq,
                "truncated",
                f"the chain's seal covers up to {what} {head.seq} but no chained {what} is left",
            )
        return None
    if head.seq is None or head.signature is None:
        return RecordBreak(
            last_seq,
            "seal_missing",
            f"{what}s are chained up to {last_seq} but the chain's signed seal is gone",
        )
    if not _seal_holds(keys, head):
        return RecordBreak(
            head.seq,
            "seal_forged",
            "the chain's seal is not signed by tether (or its fields were changed)",
        )
    if head.seq > last_seq:
        return RecordBreak(
            last_seq + 1,
            "truncated",
            f"the signed seal covers up to {what} {head.seq} but the chain ends at {last_seq}",
        )
    if sealed_row_hash != head.hash:
        return RecordBreak(
            head.seq,
            "rechained",
            f"{what} {head.seq} is not the row the signed seal of "
            f"{head.at:%Y-%m-%d %H:%M:%S} recorded: the chain was re-written",
        )
    if unsealed and head.chain == DECISIONS:
        return RecordBreak(
            head.seq + 1,
            "inserted",
            f"{unsealed} {what}(s) after the signed seal of {what} {head.seq}: tether seals "
            "every batch it writes, so these were not written by tether",
        )
    return None
