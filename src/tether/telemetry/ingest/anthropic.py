"""Anthropic organization activity logs (Admin API activity objects), as JSON lines.

Each object has an ``id``, a ``created_at`` (RFC 3339), a ``type`` such as
``admin_api_key_created`` or ``claude_chat_access_failed``, an ``actor`` (``user_actor``
with ``user_id`` and ``email_address``, ``api_actor`` with ``api_key_id``, or an
unauthenticated actor) and the object acted on as ``*_id`` fields. The action is
``anthropic:TYPE``; types reporting a failure are ``denied``.
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

# Fields naming the organization or the actor, never the object acted on.
_NOT_TARGETS = frozenset({"id", "organization_id", "user_id", "api_key_id"})


def iter_events(
    source: TextSource, *, source_name: str, now: Clock | None = None
) -> Iterator[ObservedAccess | IngestError]:
    """Every activity object in ``source`` as an event; an IngestError per unreadable one."""
    return iter_decoded(source, decode, source_name=source_name, now=now)


def decode(raw: dict[str, Any], context: Context) -> tuple[ObservedAccess]:
    """The event of one object (the decoder :func:`iter_events` runs)."""
    return (decode_entry(raw, context),)


def decode_entry(raw: dict[str, Any], context: Context) -> ObservedAccess:
    """One activity object as an event."""
    kind = text(raw.get("type"))
    if kind is None or not isinstance(raw.get("actor"), dict):
        raise NotAnEvent("not an Anthropic activity object: no `type` and `actor`")
    actor = raw["actor"]
    resource, resource_type = _target(raw)
    at, at_is_ingest_time = context.time_of(raw.get("created_at"))
    return ObservedAccess(
        at=at,
        at_is_ingest_time=at_is_ingest_time,
        source=Source.ANTHROPIC,
        source_event_id=text(raw.get("id")),
        dedupe_key=dedupe_key_of(raw),
        principal=principal_of(actor),
        action=f"anthropic:{kind}",
        resource=resource,
        resource_type=resource_type,
        outcome=AccessOutcome.DENIED if "_failed" in kind else AccessOutcome.ALLOWED,
        environment=Environment(
            source_ip=text(actor.get("ip_address")),
            user_agent=text(actor.get("user_agent")),
        ),
        raw=raw,
    )


def principal_of(actor: dict[str, Any]) -> RawPrincipal:
    """A user, an API key, or unknown (an unauthenticated actor)."""
    user_id = text(actor.get("user_id"))
    email = text(actor.get("email_address"))
    if user_id or email:
        key = user_id or email or ""
        return RawPrincipal(
            PrincipalKind.ANTHROPIC_USER, key, email or key, attributes(email=email)
        )
    key_id = text(actor.get("api_key_id"))
    if key_id:
        return RawPrincipal(PrincipalKind.ANTHROPIC_API_KEY, key_id, key_id)
    return UNKNOWN_PRINCIPAL


def _target(raw: dict[str, Any]) -> tuple[str | None, str | None]:
    """The object acted on: ``resource_id``, else the first other ``*_id`` field."""
    resource = text(raw.get("resource_id"))
    if resource:
        return resource, text(raw.get("resource_type"))
    for key, value in raw.items():
        if key.endswith("_id") and key not in _NOT_TARGETS and text(value):
            return text(value), key.removesuffix("_id")
    return None, None
