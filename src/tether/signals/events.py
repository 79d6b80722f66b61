"""CAEP event types (OpenID CAEP 1.0) and RFC 9493 subject identifiers.

The event types tether emits, each an event-type URI under
``https://schemas.openid.net/secevent/caep/event-type/``:

* ``session-revoked``: a task ended or a task token was revoked. The subject is
  ``{"format": "opaque", "id": <task id or token jti>}``; ``txn`` is the task id, the
  same ``txn`` its task tokens carry, so a resource server can drop every token of it.
* ``token-claims-change``: claims of a token changed (``claims``: the new values).
* ``credential-change``: tether's signing keys rotated (subject: tether's issuer as
  ``{"format": "uri"}``, ``credential_type`` ``jwk``: CAEP allows a type agreed with the
  receiver, and a JWS signing key has no CAEP name), or a credential of an identity
  changed.
* ``risk-level-change``: a drift finding changed an identity's risk (``principal``,
  ``current_level`` LOW/MEDIUM/HIGH, ``previous_level``, ``risk_reason``).

Every payload may carry the optional CAEP members ``event_timestamp`` (seconds),
``initiating_entity`` (``admin``, ``user``, ``policy``, ``system``), ``reason_admin`` and
``reason_user`` (``{language tag: text}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.signals.errors import SignalInvalid

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
TOKEN_CLAIMS_CHANGE = CAEP + "token-claims-change"
CREDENTIAL_CHANGE = CAEP + "credential-change"
RISK_LEVEL_CHANGE = CAEP + "risk-level-change"
#: What tether emits; receivers may subscribe to a subset.
EVENT_TYPES = (SESSION_REVOKED, TOKEN_CLAIMS_CHANGE, CREDENTIAL_CHANGE, RISK_LEVEL_CHANGE)

INITIATING_ENTITIES = frozenset({"admin", "user", "policy", "system"})
CHANGE_TYPES = frozenset({"create", "revoke", "update", "delete"})
RISK_LEVELS = ("LOW", "MEDIUM", "HIGH")

# RFC 9493 §3 formats and SSF 1.0 §3 additions, with the members each requires.
SUBJECT_FORMATS: dict[str, tuple[str, ...]] = {
    "account": ("uri",),
    "email": ("email",),
    "iss_sub": ("iss", "sub"),
    "opaque": ("id",),
    "phone_number": ("phone_number",),
    "did": ("url",),
    "uri": ("uri",),
    "aliases": ("identifiers",),
    "jwt_id": ("iss", "jti"),
    "saml_assertion_id": ("issuer", "assertion_id"),
    "ip": ("ip",),
    "complex": (),
}
_MAX_TEXT = 2000


def check_event_type(event_type: object) -> str:
    """An event-type URI (RFC 8417 §2.2: the names of ``events`` are URIs)."""
    if (
        not isinstance(event_type, str)
        or ":" not in event_type
        or any(c.isspace() for c in event_type)
        or len(event_type) > _MAX_TEXT
    ):
        raise SignalInvalid(f"event type `{event_type}` is not a URI")
    return event_type


def check_subject(subject: object, *, where: str = "sub_id") -> dict[str, Any]:
    """A subject identifier (RFC 9493) as a plain dict, its format's members present.

    Raises:
        SignalInvalid: not an object, an unknown ``format`` or a required member missing.
    """
    if not isinstance(subject, Mapping):
        raise SignalInvalid(f"`{where}` must be an object with a `format`")
    fmt = subject.get("format")
    if fmt not in SUBJECT_FORMATS:
        known = ", ".join(sorted(SUBJECT_FORMATS))
        raise SignalInvalid(f"`{where}.format` `{fmt}` is not a subject format ({known})")
    for member in SUBJECT_FORMATS[str(fmt)]:
        value = subject.get(member)
        if value is None or value == "" or value == []:
            raise SignalInvalid(f"`{where}` of format `{fmt}` needs `{member}`")
    if fmt == "complex":
        parts = {k: v for k, v in subject.items() if k != "format"}
        if not parts:
            raise SignalInvalid(f"complex `{where}` names no subject")
        for name, part in parts.items():
            check_subject(part, where=f"{where}.{name}")
    return dict(subject)


def check_payload(event_type: str, event: object) -> dict[str, Any]:
    """The event's members, checked where CAEP makes them required or enumerated."""
    if not isinstance(event, Mapping):
        raise SignalInvalid("an event payload must be a JSON object")
    payload = dict(event)
    entity = payload.get("initiating_entity")
    if entity is not None and entity not in INITIATING_ENTITIES:
        raise SignalInvalid(f"`initiating_entity` `{entity}` is not admin, user, policy or system")
    for name in ("reason_admin", "reason_user"):
        reason = payload.get(name)
        if reason is not None and (
            not isinstance(reason, Mapping)
            or not reason
            or not all(isinstance(v, str) for v in reason.values())
        ):
            raise SignalInvalid(f"`{name}` must map language tags to text")
    stamp = payload.get("event_timestamp")
    if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int | float)):
        raise SignalInvalid("`event_timestamp` must be seconds since the epoch")
    if event_type == TOKEN_CLAIMS_CHANGE and not isinstance(payload.get("claims"), Mapping):
        raise SignalInvalid("token-claims-change needs `claims` (the new values)")
    if event_type == CREDENTIAL_CHANGE:
        if not isinstance(payload.get("credential_type"), str):
            raise SignalInvalid("credential-change needs `credential_type`")
        if payload.get("change_type") not in CHANGE_TYPES:
            raise SignalInvalid("credential-change needs `change_type` create|revoke|update|delete")
    if event_type == RISK_LEVEL_CHANGE:
        if not isinstance(payload.get("principal"), str):
            raise SignalInvalid("risk-level-change needs `principal`")
        for name in ("current_level", "previous_level"):
            level = payload.get(name)
            if (name == "current_level" or level is not None) and level not in RISK_LEVELS:
                raise SignalInvalid(f"`{name}` must be LOW, MEDIUM or HIGH")
    return payload


# --- builders (what the hooks and the drift engine send) ---------------------------------


def _common(
    timestamp: float, initiating_entity: str | None, reason_admin: str | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"event_timestamp": int(timestamp)}
    if initiating_entity is not None:
        payload["initiating_entity"] = initiating_entity
    if reason_admin:
        payload["reason_admin"] = {"en": reason_admin}
    return payload


def opaque(identifier: str) -> dict[str, str]:
    """An RFC 9493 opaque subject: a task id, a token jti, an identity id."""
    return {"format": "opaque", "id": identifier}


def session_revoked(
    timestamp: float, *, initiating_entity: str | None = None, reason_admin: str | None = None
) -> dict[str, Any]:
    return _common(timestamp, initiating_entity, reason_admin)


def token_claims_change(
    timestamp: float,
    claims: Mapping[str, Any],
    *,
    initiating_entity: str | None = None,
    reason_admin: str | None = None,
) -> dict[str, Any]:
    return {**_common(timestamp, initiating_entity, reason_admin), "claims": dict(claims)}


def credential_change(
    timestamp: float,
    *,
    credential_type: str,
    change_type: str,
    friendly_name: str | None = None,
    initiating_entity: str | None = None,
    reason_admin: str | None = None,
) -> dict[str, Any]:
    """A credential-change payload. CAEP lists ``password``, ``pin``, ``x509``,
    ``fido2-*``, ``verifiable-credential``, ``phone-*`` and ``app``, "or any other
    credential type supported mutually"; tether's JWS signing keys use ``jwk``."""
    payload = _common(timestamp, initiating_entity, reason_admin)
    payload.update(credential_type=credential_type, change_type=change_type)
    if friendly_name:
        payload["friendly_name"] = friendly_name
    return payload


def risk_level_change(
    timestamp: float,
    *,
    current_level: str,
    previous_level: str | None = None,
    principal: str = "USER",
    risk_reason: str | None = None,
    initiating_entity: str | None = "policy",
) -> dict[str, Any]:
    """A risk-level-change payload for a drift finding. ``principal`` ``USER`` (SSF
    subject principals include robotic users: an identity) or ``SESSION`` (a task)."""
    payload = _common(timestamp, initiating_entity, None)
    payload.update(principal=principal, current_level=current_level)
    if previous_level is not None:
        payload["previous_level"] = previous_level
    if risk_reason:
        payload["risk_reason"] = risk_reason
    return payload
