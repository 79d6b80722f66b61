"""Signed checkpoints of the audit chain head (JWS, ``typ`` ``tether-checkpoint+jwt``).

A checkpoint says "event ``last_event_seq`` hashes to ``last_hash``", signed with
tether's key ring; ``kind`` is ``checkpoint`` or ``pruned`` (retention removed every
event up to and including ``last_event_seq``). Exported with
``tether audit checkpoint --export FILE`` as JSON for safekeeping elsewhere; verifying
against that file detects a store truncated or re-chained end to end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from tether.errors import InvalidRequest
from tether.store.telemetry_tables import audit_checkpoints
from tether.tokens import KeyRing
from tether.tokens.errors import TokenRejected

CHECKPOINT = "checkpoint"
PRUNED = "pruned"
CHECKPOINT_TYP = "tether-checkpoint+jwt"
EXPORT_FORMAT = "tether-audit-checkpoint"


class CheckpointInvalid(InvalidRequest):
    """An exported checkpoint file that cannot be read or whose signature does not verify."""

    code = "audit_checkpoint_invalid"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A recorded (or exported) checkpoint of the chain head."""

    last_event_seq: int
    last_hash: str
    kind: str
    at: datetime
    signature: str

    def export(self) -> dict[str, Any]:
        """The JSON document ``tether audit checkpoint --export`` writes."""
        return {
            "format": EXPORT_FORMAT,
            "kind": self.kind,
            "last_event_seq": self.last_event_seq,
            "last_hash": self.last_hash,
            "at": self.at.isoformat(),
            "signature": self.signature,
        }


def sign_checkpoint(keys: KeyRing, seq: int, head: str, kind: str, at: datetime) -> str:
    """The JWS of a checkpoint of event ``seq`` hashing to ``head``."""
    claims = {"last_event_seq": seq, "last_hash": head, "kind": kind, "iat": int(at.timestamp())}
    return keys.sign(claims, typ=CHECKPOINT_TYP)


def signature_matches(keys: KeyRing, checkpoint: Checkpoint) -> bool:
    """True when the checkpoint's signature verifies and signs exactly its fields."""
    try:
        claims = keys.verify(checkpoint.signature, typ=CHECKPOINT_TYP)
    except TokenRejected:
        return False
    return (
        claims.get("last_event_seq") == checkpoint.last_event_seq
        and claims.get("last_hash") == checkpoint.last_hash
        and claims.get("kind") == checkpoint.kind
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def stored_checkpoints(engine: Engine) -> list[Checkpoint]:
    """Every checkpoint in the store, oldest first."""
    query = select(
        audit_checkpoints.c.last_event_seq,
        audit_checkpoints.c.last_hash,
        audit_checkpoints.c.kind,
        audit_checkpoints.c.at,
        audit_checkpoints.c.signature,
    ).order_by(audit_checkpoints.c.seq)
    with engine.connect() as connection:
        return [
            Checkpoint(int(seq), str(head), str(kind), _utc(at), str(signature))
            for seq, head, kind, at, signature in connection.execute(query)
        ]


def latest_checkpoint(engine: Engine) -> Checkpoint | None:
    """The checkpoint covering the most events, or None before any was recorded."""
    found = stored_checkpoints(engine)
    return max(found, key=lambda c: c.last_event_seq) if found else None


def read_export(path: Path, keys: KeyRing) -> Checkpoint:
    """An exported checkpoint file, its signature verified.

    Raises:
        CheckpointInvalid: the file is unreadable, not an export, or not signed by tether.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointInvalid(f"cannot read checkpoint `{path}`: {exc}") from None
    try:
        if document.get("format") != EXPORT_FORMAT:
            raise CheckpointInvalid(f"`{path}` is not an exported tether audit checkpoint")
        checkpoint = Checkpoint(
            int(document["last_event_seq"]),
            str(document["last_hash"]),
            str(document["kind"]),
            datetime.fromisoformat(document["at"]),
            str(document["signature"]),
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        raise CheckpointInvalid(f"`{path}` is not an exported tether audit checkpoint") from None
    if not signature_matches(keys, checkpoint):
        raise CheckpointInvalid(f"the signature of checkpoint `{path}` does not verify")
    return checkpoint
