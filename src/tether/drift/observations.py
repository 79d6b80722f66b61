"""Observations from what tether records: decisions (its own) and stored telemetry events.

A decision is an observation of its subject (``decision:<id>``) and, for self-governance,
of the PEP that asked (``action = authzen:evaluate``, ``resource = <subject type>:<id>``,
``ref = decision:<id>#caller``): a PEP that suddenly asks about identities it never
asked about is novel access too. A stored event is an observation of the identity it
was attributed to (``event:<seq>``); unattributed events are skipped, except cloud audit
events that name no principal at all: observations of :data:`UNATTRIBUTED`, a discovered
(unmanaged) identity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from tether.drift.cloud import CLOUD_SOURCES
from tether.drift.directory import Directory
from tether.drift.model import EMPTY, Observation
from tether.frozen import builder
from tether.telemetry.model import NO_ENVIRONMENT, Environment

PEP_ACTION = "authzen:evaluate"
#: The identity of cloud audit events that name no principal.
UNATTRIBUTED = "unattributed"
LONG_TERM_KEY_PREFIX = "AKIA"  # an IAM user's access key id (temporary ones are ASIA...)
_OUTCOMES = {
    "allow": "allowed",
    "deny": "denied",
    "constrain": "constrain",
    "approval_required": "approval_required",
}


# Observation(...) on the per-event path (tether.frozen: half the cost of `__init__`).
_observation = builder(Observation)
_environment = builder(Environment)


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def from_decision(row: Mapping[Any, Any], directory: Directory) -> list[Observation]:
    """The observations a recorded decision (a ``decisions`` row as a mapping) makes."""
    context = row.get("context") or {}
    tether_part = context.get("tether") if isinstance(context, Mapping) else None
    tether_part = tether_part if isinstance(tether_part, Mapping) else {}
    resource = f"{row['resource_type']}:{row['resource_id']}"
    data_class, level = directory.classify(resource)
    at = _aware(row["at"])
    task_id = _text(tether_part.get("task_id"))
    environment = NO_ENVIRONMENT
    if isinstance(context, Mapping):
        ip, region, agent = (_text(context.get(k)) for k in ("source_ip", "region", "user_agent"))
        if ip or region or agent:
            environment = Environment(ip, region, agent)
    args = context.get("args") if isinstance(context, Mapping) else None
    mcp = context.get("mcp") if isinstance(context, Mapping) else None
    if not isinstance(args, Mapping) and isinstance(mcp, Mapping):
        args = mcp.get("arguments")  # a call through the MCP gateway (context.mcp)
    ref = f"decision:{row['decision_id']}"
    observations = [
        Observation(
            ref=ref,
            at=at,
            identity_id=str(row["subject_id"]),
            action=str(row["action"]),
            kind="decision",
            resource=resource,
            resource_type=str(row["resource_type"]),
            data_class=data_class,
            sensitivity=level,
            outcome=_OUTCOMES.get(str(row["outcome"]), str(row["outcome"])),
            task_id=task_id,
            token_id=_text(tether_part.get("token_jti")),
            tool_name=str(row["action"]),
            arguments=args if isinstance(args, Mapping) else EMPTY,
            environment=environment,
            records=_int(context.get("records")) if isinstance(context, Mapping) else None,
            credential="task_token" if task_id else None,
        )
    ]
    caller = row.get("caller")
    if caller and caller != row["subject_id"] and directory.get(str(caller)) is not None:
        subject = f"{row['subject_type']}:{row['subject_id']}"
        observations.append(
            Observation(
                ref=f"{ref}#caller",
                at=at,
                identity_id=str(caller),
                action=PEP_ACTION,
                kind="decision",
                resource=subject,
                resource_type=str(row["subject_type"]),
            )
        )
    return observations


def from_event(row: Mapping[Any, Any], directory: Directory) -> Observation | None:
    """The observation of a stored event (an ``events`` row), or ``None`` if unattributed."""
    get = row.get
    values = (row["seq"], row["at"], row["action"], *map(get, OBSERVED_COLUMNS[3:]))
    return observation_of(values, directory)


# The columns of an events row an observation is made of, in the order observation_of
# reads them: then the ones it takes as optional text.
OBSERVED_COLUMNS = (
    "seq",
    "at",
    "action",
    "identity_id",
    "outcome",
    "records",
    "bytes",
    "raw",
    "resource",
    "data_class",
    "resource_type",
    "task_id",
    "token_id",
    "tool_name",
    "call_id",
    "parent_call_id",
    "source_ip",
    "region",
    "user_agent",
    "source",
    "principal_kind",
    "principal_key",
)
_FIRST_TEXT = OBSERVED_COLUMNS.index("resource")
_STR_OR_NONE = frozenset({str, type(None)})


def observation_of(values: Sequence[Any], directory: Directory) -> Observation | None:
    """:func:`from_event` of a row's :data:`OBSERVED_COLUMNS` values, in that order (a row
    of a select of those columns, read without a mapping per row)."""
    seq, at, action, identity_id, outcome, records, size, raw = values[:_FIRST_TEXT]
    texts = values[_FIRST_TEXT:]
    # Every text field as `_text` reads it, checked in one pass (the store's text columns
    # give str or None: only the empty string needs a second look).
    if "" in texts or not _STR_OR_NONE.issuperset(map(type, texts)):
        texts = tuple(map(_text, texts))
    resource, data_class, resource_type, task_id, token_id, tool_name, call_id, parent = texts[:8]
    ip, region, agent, source, principal_kind, principal = texts[8:]
    if not identity_id:
        if source not in CLOUD_SOURCES:
            return None
        # A cloud call whose event names nobody (no `userIdentity`, no principal) is still
        # a call: judged as an unmanaged identity's, as nothing vouches for it.
        identity_id = UNATTRIBUTED
    level = directory.data_classes.get(data_class, 0) if data_class else 0
    if data_class is None and resource is not None:
        data_class, level = directory.classify(resource)
    naive = type(at) is datetime and at.tzinfo is None  # SQLite's times: UTC
    at = at.replace(tzinfo=UTC) if naive else _aware(at)
    return _observation(
        ref=f"event:{seq}",
        at=at,
        identity_id=identity_id if type(identity_id) is str else str(identity_id),
        action=action if type(action) is str else str(action),
        kind="event",
        resource=resource,
        resource_type=resource_type,
        data_class=data_class,
        sensitivity=level,
        outcome=outcome if type(outcome) is str and outcome else str(outcome or "allowed"),
        task_id=task_id,
        token_id=token_id,
        tool_name=tool_name,
        call_id=call_id,
        parent_call_id=parent,
        environment=_environment(source_ip=ip, region=region, user_agent=agent),
        records=records if type(records) is int else None,
        bytes=size if type(size) is int else None,
        credential=_credential(principal_kind, raw),
        source=source,
        principal_kind=principal_kind,
        principal=principal,
    )


def _credential(principal_kind: Any, raw: Any) -> str | None:
    """``static_secret`` for API keys and AWS long-term access keys (``AKIA...``)."""
    if principal_kind is not None and str(principal_kind).endswith("api-key"):
        return "static_secret"
    if raw is None:  # what detection selects for a row that holds no `AKIA` at all
        return None
    # The stored text (detection selects it undecoded) is parsed only when it can hold a
    # long-term key id at all.
    if isinstance(raw, str):
        if LONG_TERM_KEY_PREFIX not in raw:
            return None
        raw = orjson.loads(raw)
    elif isinstance(raw, bytes):
        if LONG_TERM_KEY_PREFIX.encode() not in raw:
            return None
        raw = orjson.loads(raw)
    who = raw.get("userIdentity") if isinstance(raw, Mapping) else None
    key = who.get("accessKeyId") if isinstance(who, Mapping) else None
    if isinstance(key, str) and key.startswith(LONG_TERM_KEY_PREFIX):
        return "static_secret"
    return None
