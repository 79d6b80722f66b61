"""The telemetry event model: one observed access, whoever reported it (pure data, no I/O).

Every source tether ingests (AWS CloudTrail, Kubernetes audit, GCP Cloud Audit Logs,
OpenTelemetry GenAI spans, AI-provider audit logs, generic JSON lines) and every event
tether emits itself becomes an :class:`ObservedAccess`. Ingest problems are values too:
an adapter yields an :class:`IngestError` for a line it cannot read and carries on.

The dedupe key is the SHA-256 of the canonical JSON of the raw event (sorted keys, no
whitespace): it collapses exact duplicates only. Source event ids are kept but never
trusted to be unique (test fixtures and some exporters reuse them).
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import orjson

EMPTY: Mapping[str, str] = MappingProxyType({})
_ZERO = timedelta(0)


class Source(StrEnum):
    """Where an event came from (the ``source`` of an :class:`ObservedAccess`)."""

    CLOUDTRAIL = "cloudtrail"
    K8S_AUDIT = "k8s-audit"
    GCP_AUDIT = "gcp-audit"
    AZURE_ACTIVITY = "azure-activity"
    OTEL = "otel"
    JSONL = "jsonl"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    BEDROCK = "bedrock"
    TETHER = "tether"


class AccessOutcome(StrEnum):
    """What happened to the access: it went through, it was refused, or it failed."""

    ALLOWED = "allowed"
    DENIED = "denied"
    ERROR = "error"


class PrincipalKind(StrEnum):
    """The principal kinds the built-in adapters report (generic JSONL may report others)."""

    UNKNOWN = "unknown"
    AWS_IAM_USER = "aws:iam-user"
    AWS_ASSUMED_ROLE = "aws:assumed-role"
    AWS_FEDERATED_USER = "aws:federated-user"
    AWS_SERVICE = "aws:service"
    AWS_ROOT = "aws:root"
    AWS_ACCOUNT = "aws:account"
    AWS_OTHER = "aws:other"
    K8S_USER = "k8s:user"
    K8S_SERVICE_ACCOUNT = "k8s:service-account"
    GCP_SERVICE_ACCOUNT = "gcp:service-account"
    GCP_USER = "gcp:user"
    AZURE_USER = "azure:user"
    AZURE_SERVICE_PRINCIPAL = "azure:service-principal"
    OPENAI_USER = "openai:user"
    OPENAI_API_KEY = "openai:api-key"
    OPENAI_SERVICE_ACCOUNT = "openai:service-account"
    ANTHROPIC_USER = "anthropic:user"
    ANTHROPIC_API_KEY = "anthropic:api-key"
    AGENT = "agent"
    OTEL_SERVICE = "otel:service"


@dataclass(frozen=True, slots=True)
class RawPrincipal:
    """Who acted, as the source named them, before tether maps them to an identity.

    ``key`` is stable across events of the same principal (an assumed-role session is
    keyed by its role ARN, the session name goes in ``attributes``) and unique within
    ``kind``. ``attributes`` carry what rules and reviewers need: ``account_id``,
    ``arn``, ``role_arn``, ``session_arn``, ``session_name``, ``namespace``, ``name``,
    ``email``, ``groups``...
    """

    kind: str
    key: str
    display_name: str = ""
    attributes: Mapping[str, str] = field(default_factory=lambda: EMPTY, hash=False)

    @property
    def is_unknown(self) -> bool:
        """True when the source did not say who acted."""
        return self.kind == PrincipalKind.UNKNOWN

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


UNKNOWN_PRINCIPAL = RawPrincipal(PrincipalKind.UNKNOWN, "unknown", "unknown")


@dataclass(frozen=True, slots=True)
class Environment:
    """Where the access came from, as far as the source says."""

    source_ip: str | None = None
    region: str | None = None
    user_agent: str | None = None


NO_ENVIRONMENT = Environment()


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedAccess:
    """One access somebody observed: who, did what, to which resource, when, with what result.

    ``at`` is timezone-aware UTC; when the source carried no usable timestamp it is the
    ingest time and ``at_is_ingest_time`` is set. ``identity_id`` stays ``None`` until a
    :class:`~tether.telemetry.resolve.PrincipalRule` maps ``principal`` to an identity.
    ``raw`` is the event exactly as parsed from the source; ``dedupe_key`` is
    :func:`dedupe_key_of` of it.
    """

    at: datetime
    source: Source
    principal: RawPrincipal
    action: str
    raw: Mapping[str, Any]
    dedupe_key: str
    at_is_ingest_time: bool = False
    source_event_id: str | None = None
    identity_id: str | None = None
    task_id: str | None = None
    token_id: str | None = None
    resource: str | None = None
    resource_type: str | None = None
    data_class: str | None = None
    outcome: AccessOutcome = AccessOutcome.ALLOWED
    read_only: bool | None = None
    decision_id: str | None = None
    tool_name: str | None = None
    call_id: str | None = None
    parent_call_id: str | None = None
    environment: Environment = NO_ENVIRONMENT
    records: int | None = None
    bytes: int | None = None
    # canonical_json(raw) when the adapter made it for the dedupe key (the store reuses it).
    raw_json: builtins.bytes | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.at.tzinfo is not UTC and self.at.utcoffset() != _ZERO:
            raise ValueError(f"`at` must be timezone-aware UTC, got `{self.at.isoformat()}`")

    def with_identity(self, identity_id: str | None) -> ObservedAccess:
        """The same event, attributed to ``identity_id``."""
        return replace(self, identity_id=identity_id)


@dataclass(frozen=True, slots=True)
class IngestError:
    """A line of input that did not become an event; ingest carries on after it."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def canonical_json(raw: Any) -> bytes:
    """The canonical JSON of ``raw``: UTF-8, keys sorted, no insignificant whitespace.

    Raises:
        ValueError: ``raw`` is not representable as JSON text (for example a string
            holding a lone surrogate, or a non-string key).
    """
    try:
        return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        pass
    # orjson refuses integers beyond 64 bits; the standard library writes them exactly.
    try:
        text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except TypeError as exc:
        raise ValueError(f"event is not JSON: {exc}") from None
    return text.encode("utf-8")  # UnicodeEncodeError (a ValueError) on lone surrogates


def dedupe_key_of(raw: Any) -> str:
    """SHA-256 (hex) of :func:`canonical_json` of ``raw``: equal only for identical events."""
    return hashlib.sha256(canonical_json(raw)).hexdigest()
