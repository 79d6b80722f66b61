"""The adapters by source: each format's decoder and its ``iter_events`` reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType

from tether.telemetry.ingest import (
    anthropic,
    azure_activity,
    bedrock,
    cloudtrail,
    gcp_audit,
    k8s_audit,
    openai,
    otel,
)
from tether.telemetry.ingest._base import Decoder
from tether.telemetry.model import IngestError, ObservedAccess, Source

Adapter = Callable[..., Iterator[ObservedAccess | IngestError]]
"""``iter_events(source, *, source_name, now=None)`` of an adapter module."""

DECODERS: Mapping[Source, Decoder] = MappingProxyType(
    {
        Source.CLOUDTRAIL: cloudtrail.decode,
        Source.K8S_AUDIT: k8s_audit.decode,
        Source.GCP_AUDIT: gcp_audit.decode,
        Source.AZURE_ACTIVITY: azure_activity.decode,
        Source.OTEL: otel.decode,
        Source.OPENAI: openai.decode,
        Source.ANTHROPIC: anthropic.decode,
        Source.BEDROCK: bedrock.decode,
    }
)

ADAPTERS: Mapping[Source, Adapter] = MappingProxyType(
    {
        Source.CLOUDTRAIL: cloudtrail.iter_events,
        Source.K8S_AUDIT: k8s_audit.iter_events,
        Source.GCP_AUDIT: gcp_audit.iter_events,
        Source.AZURE_ACTIVITY: azure_activity.iter_events,
        Source.OTEL: otel.iter_events,
        Source.OPENAI: openai.iter_events,
        Source.ANTHROPIC: anthropic.iter_events,
        Source.BEDROCK: bedrock.iter_events,
    }
)
