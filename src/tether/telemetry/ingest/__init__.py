"""Ingest adapters: raw events from each source format to :class:`ObservedAccess`.

One module per format, each with ``iter_events(source, *, source_name, now=None)``
yielding events and, for input it cannot read, :class:`IngestError` values (ingest
carries on). ``source`` is a binary or text file, or an iterable of lines; use
:func:`open_source` for a path (gzip is handled). Memory use stays constant however
large the input.

====================  =========================================================
module                format
====================  =========================================================
``cloudtrail``        AWS CloudTrail: ``{"Records": [...]}`` files, JSON lines
``k8s_audit``         Kubernetes audit events (also EKS, and AKS ``kube-audit``)
``gcp_audit``         Google Cloud Audit Logs ``LogEntry`` (also GKE)
``azure_activity``    Azure Monitor activity log records
``otel``              OTLP/JSON traces: GenAI ``execute_tool`` spans
``jsonl``             any JSON lines, through a field mapping
``openai``            OpenAI organization audit logs
``anthropic``         Anthropic organization activity logs
``bedrock``           Amazon Bedrock model invocation logs
====================  =========================================================
"""

from tether.telemetry.ingest._registry import ADAPTERS, DECODERS, Adapter
from tether.telemetry.ingest.detect import detect_source, iter_detected
from tether.telemetry.ingest.files import iter_file, open_source
from tether.telemetry.ingest.fixtures import iter_labelled_fixture
from tether.telemetry.ingest.jsonl import FieldMapping

__all__ = [
    "ADAPTERS",
    "DECODERS",
    "Adapter",
    "FieldMapping",
    "detect_source",
    "iter_detected",
    "iter_file",
    "iter_labelled_fixture",
    "open_source",
]
