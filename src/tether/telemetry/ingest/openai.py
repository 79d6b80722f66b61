"""OpenAI organization audit logs (``GET /v1/organization/audit_logs`` objects), as JSON lines.

Each object (``"object": "organization.audit_log"``) has a ``type`` such as
``api_key.created`` or ``login.failed``, an ``effective_at`` in Unix seconds, an
``actor`` (a browser ``session`` of a user, or an ``api_key`` owned by a user or a
service account) and a payload under the type's name with dots as underscores
(``api_key_created``). The action is ``openai:TYPE``; ``*.failed`` types are ``denied``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tether.telemetry.ingest._base import (
    Clock,
    Context,
    NotAnEvent,
    attributes,
    iter_decoded,
    mapping,
    text,
)
from tether.telemetry.ingest._reader import TextSource
from tether.telemetry.model import (
    UNKNOWN_PRINCIPAL,
    AccessOutcome,
    Environment,
    IngestError,
    ObservedAccess,
    PrincipalKind,
    RawPrincipal,
    Source,
    dedupe_key_of,
)


def iter_events(
    source: TextSource, *, source_name: str, now: Clock | None = None
) -> Iterator[ObservedAccess | IngestError]:
    """Every audit log object in ``source`` as an event; an IngestError per unreadable one."""
    return iter_decoded(source, decode, source_name=source_name, now=now)


def decode(raw: dict[str, Any], context: Context) -> tuple[ObservedAccess]:
    """The event of one object (the decoder :func:`iter_events` runs)."""
    return (decode_entry(raw, context),)


def decode_entry(raw: dict[str, Any], context: Context) -> ObservedAccess:
    """One audit log object as an event."""
    kind = text(raw.get("type"))
    if kind is None or not isinstance(raw.get("actor"), dict):
        raise NotAnEvent("not an OpenAI audit log object: no `type` and `actor`")
    actor = raw["actor"]
    session = mapping(actor.get("session"))
    payload = mapping(raw.get(kind.replace(".", "_")))
    subject, _, verb = kind.rpartition(".")
    at, at_is_ingest_time = context.time_of(raw.get("effective_at"))
    return ObservedAccess(
        at=at,
        at_is_ingest_time=at_is_ingest_time,
        source=Source.OPENAI,
        source_event_id=text(raw.get("id")),
        dedupe_key=dedupe_key_of(raw),
        principal=principal_of(actor),
        action=f"openai:{kind}",
        resource=text(payload.get("id")),
        resource_type=f"openai:{subject}" if subject and payload.get("id") else None,
        outcome=AccessOutcome.DENIED if verb == "failed" else AccessOutcome.ALLOWED,
        environment=Environment(
            source_ip=text(session.get("ip_address")),
            user_agent=text(session.get("user_agent")),
        ),
        raw=raw,
    )


def principal_of(actor: dict[str, Any]) -> RawPrincipal:
    """A browser session's user, an API key, or the service account owning the key."""
    key = mapping(actor.get("api_key"))
    if key:
        key_id = text(key.get("id"))
        owner = mapping(key.get("service_account"))
        owner_id = text(owner.get("id"))
        if owner_id:
            details = attributes(api_key_id=key_id)
            return RawPrincipal(PrincipalKind.OPENAI_SERVICE_ACCOUNT, owner_id, owner_id, details)
        if key_id:
            user = mapping(key.get("user"))
            details = attributes(user_id=text(user.get("id")), email=text(user.get("email")))
            return RawPrincipal(PrincipalKind.OPENAI_API_KEY, key_id, key_id, details)
    user = mapping(mapping(actor.get("session")).get("user"))
    user_id = text(user.get("id"))
    if user_id:
        email = text(user.get("email"))
        details = attributes(email=email)
        return RawPrincipal(PrincipalKind.OPENAI_USER, user_id, email or user_id, details)
    return UNKNOWN_PRINCIPAL
