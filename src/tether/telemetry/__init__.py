"""Telemetry: the observed-access event model, ingest adapters and principal resolution.

Events from outside (AWS CloudTrail, Kubernetes audit, GCP audit, OpenTelemetry GenAI
spans, AI-provider audit logs, generic JSON lines) and tether's own become
:class:`ObservedAccess` values; :mod:`tether.telemetry.ingest` holds one adapter per
format, and :mod:`tether.telemetry.resolve` maps who acted to estate identities. Pure
library: storage, CLI and HTTP build on it.
"""

from tether.telemetry.errors import FieldMappingInvalid, PrincipalRuleInvalid, SourceUnreadable
from tether.telemetry.model import (
    NO_ENVIRONMENT,
    UNKNOWN_PRINCIPAL,
    AccessOutcome,
    Environment,
    IngestError,
    ObservedAccess,
    PrincipalKind,
    RawPrincipal,
    Source,
    canonical_json,
    dedupe_key_of,
)
from tether.telemetry.resolve import (
    MatchBy,
    PrincipalResolver,
    PrincipalRule,
    discovered_identity,
    resolve,
)

__all__ = [
    "NO_ENVIRONMENT",
    "UNKNOWN_PRINCIPAL",
    "AccessOutcome",
    "Environment",
    "FieldMappingInvalid",
    "IngestError",
    "MatchBy",
    "ObservedAccess",
    "PrincipalKind",
    "PrincipalResolver",
    "PrincipalRule",
    "PrincipalRuleInvalid",
    "RawPrincipal",
    "Source",
    "SourceUnreadable",
    "canonical_json",
    "dedupe_key_of",
    "discovered_identity",
    "resolve",
]
