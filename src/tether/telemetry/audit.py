"""Verifying the audit hash chain: the first broken link, with its position.

Walks ``events`` in ``seq`` order from the start of the chain (or from the latest
*pruned* checkpoint) and checks, for every row, that it hashes to its stored ``hash``
(else it was **modified**), that it names its predecessor's hash (else rows were
**deleted** before it when its ``seq`` skips, otherwise it was **moved** or
**inserted**, or its predecessor re-hashed), and that every signed checkpoint verifies
and matches the row it covers (else the store was **re-chained** or **truncated**), and
that stored events have at least one signed checkpoint (else the store's checkpoints were
**deleted**, which a re-hash or a truncation would need to hide). An
exported checkpoint (``against``) is checked the same way, which catches a store cut
short or re-chained end to end together with its own checkpoints.

Retention (:mod:`tether.telemetry.retention`) removes a prefix of the chain and records a
signed *pruned* checkpoint of the last event it removed; the walk starts after it, from its
hash, and the report names that range as pruned (:attr:`ChainReport.pruned`). Events
missing without such a checkpoint, or after it, are reported as deleted.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Engine, select

from tether.store.telemetry_tables import events
from tether.telemetry.chain import GENESIS, row_hash
from tether.telemetry.checkpoints import PRUNED, Checkpoint, signature_matches, stored_checkpoints
from tether.tokens import KeyRing


class BreakKind(StrEnum):
    MODIFIED = "modified"
    DELETED = "deleted"
    MOVED_OR_INSERTED = "moved_or_inserted"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    CHECKPOINT_FORGED = "checkpoint_forged"
    TRUNCATED = "truncated"
    CHECKPOINTS_MISSING = "checkpoints_missing"


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first link of the chain that does not hold: where, what, and in words."""

    seq: int
    kind: BreakKind
    message: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of walking the chain: ``broken`` is None when it verifies clean.

    ``pruned`` is the signed checkpoint of the last event retention removed (events 1 to
    its ``last_event_seq`` were pruned, not deleted), or None when nothing was pruned.
    """

    events: int
    first_seq: int | None
    last_seq: int | None
    last_hash: str
    checkpoints: int
    broken: ChainBreak | None
    pruned: Checkpoint | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_chain(
    engine: Engine, keys: KeyRing, *, against: Checkpoint | None = None
) -> ChainReport:
    """Walk the whole chain and report the first broken link (see the module doc)."""
    checkpoints = stored_checkpoints(engine)
    if against is not None:
        checkpoints.append(against)
    by_seq: dict[int, list[Checkpoint]] = defaultdict(list)
    start_seq, prev = 1, GENESIS
    pruned: Checkpoint | None = None
    for checkpoint in checkpoints:
        if not signature_matches(keys, checkpoint):
            return _report(0, None, None, prev, checkpoints, _forged(checkpoint))
        if checkpoint.kind == PRUNED:
            if checkpoint.last_event_seq + 1 > start_seq:
                start_seq, prev = checkpoint.last_event_seq + 1, checkpoint.last_hash
                pruned = checkpoint
        else:
            by_seq[checkpoint.last_event_seq].append(checkpoint)

    expected = start_seq
    count, first, last = 0, None, None
    query = select(events).where(events.c.seq >= start_seq).order_by(events.c.seq)
    with (
        engine.connect() as connection,
        connection.execution_options(yield_per=2000).execute(query) as result,
    ):
        for row in result.mappings():
            seq = int(row["seq"])
            if row_hash(row, row["prev_hash"]) != row["hash"]:
                return _report(count, first, last, prev, checkpoints, _modified(seq), pruned)
            if row["prev_hash"] != prev:
                broken = (
                    ChainBreak(
                        expected,
                        BreakKind.DELETED,
                        f"events {_span(expected, seq - 1)} are missing: event {seq} "
                        f"follows event {expected - 1}"
                        + (
                            " (the last event retention pruned; these were deleted)"
                            if pruned is not None and expected == start_seq
                            else ""
                        ),
                    )
                    if seq > expected
                    else ChainBreak(
                        seq,
                        BreakKind.MOVED_OR_INSERTED,
                        f"event {seq} does not link to event {seq - 1}: event {seq - 1} "
                        f"was inserted or altered and re-hashed, or event {seq} was moved",
                    )
                )
                return _report(count, first, last, prev, checkpoints, broken, pruned)
            if seq != expected:
                broken = ChainBreak(
                    expected,
                    BreakKind.MOVED_OR_INSERTED,
                    f"event numbers skip from {expected - 1} to {seq} where the chain links: "
                    "events were renumbered",
                )
                return _report(count, first, last, prev, checkpoints, broken, pruned)
            for checkpoint in by_seq.get(seq, ()):
                if checkpoint.last_hash != row["hash"]:
                    broken = ChainBreak(
                        seq,
                        BreakKind.CHECKPOINT_MISMATCH,
                        f"event {seq} is not the event the signed checkpoint of "
                        f"{checkpoint.at:%Y-%m-%d %H:%M:%S} recorded: the chain was re-written "
                        "from here on",
                    )
                    return _report(count, first, last, prev, checkpoints, broken, pruned)
            prev = row["hash"]
            first = seq if first is None else first
            last = seq
            expected = seq + 1
            count += 1
    if count and first is not None and not any(c.kind != PRUNED for c in checkpoints):
        # Every ingest records a signed checkpoint (in the transaction, every N events,
        # and of the head when it ends): stored events with none at all lost them.
        broken = ChainBreak(
            first,
            BreakKind.CHECKPOINTS_MISSING,
            f"{count} event(s) are stored but no signed checkpoint of them is: the store's "
            "checkpoints were deleted (verify `--against` an exported checkpoint)",
        )
        return _report(count, first, last, prev, checkpoints, broken, pruned)
    beyond = [c for c in checkpoints if c.kind != PRUNED and c.last_event_seq >= expected]
    if beyond:
        covered = max(c.last_event_seq for c in beyond)
        broken = ChainBreak(
            expected,
            BreakKind.TRUNCATED,
            f"events {_span(expected, covered)} are missing: a signed checkpoint covers up to "
            f"event {covered} but the store ends at event {expected - 1}",
        )
        return _report(count, first, last, prev, checkpoints, broken, pruned)
    return _report(count, first, last, prev, checkpoints, None, pruned)


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def _modified(seq: int) -> ChainBreak:
    return ChainBreak(
        seq, BreakKind.MODIFIED, f"event {seq} was modified: it no longer matches its hash"
    )


def _forged(checkpoint: Checkpoint) -> ChainBreak:
    return ChainBreak(
        checkpoint.last_event_seq,
        BreakKind.CHECKPOINT_FORGED,
        f"the checkpoint of event {checkpoint.last_event_seq} is not signed by tether "
        "(or its fields were changed)",
    )


def _report(
    count: int,
    first: int | None,
    last: int | None,
    head: str,
    checkpoints: list[Checkpoint],
    broken: ChainBreak | None,
    pruned: Checkpoint | None = None,
) -> ChainReport:
    return ChainReport(count, first, last, head, len(checkpoints), broken, pruned)
