"""Hostile input: whatever bytes or objects arrive, adapters yield events or IngestErrors.

Structured fuzzing builds objects from each format's own field names with values of
any JSON type, so the adapters' field access is exercised, not just the JSON parser.
``UNEXPECTED`` marks the safety net in the decode loop: it must never fire.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telemetry_support import ChunkedReader

from tether.telemetry import IngestError, ObservedAccess
from tether.telemetry.ingest import (
    anthropic,
    azure_activity,
    bedrock,
    cloudtrail,
    gcp_audit,
    iter_detected,
    jsonl,
    k8s_audit,
    openai,
    otel,
)
from tether.telemetry.ingest._base import UNEXPECTED

Reader = Callable[..., Iterator[ObservedAccess | IngestError]]


def _jsonl(source: Any, *, source_name: str) -> Iterator[ObservedAccess | IngestError]:
    mapping = {
        "at": "eventTime",
        "principal": "user.username",
        "action": "verb",
        "outcome": "responseStatus.code",
        "records": "items.0",
        "resource": "objectRef",
    }
    return jsonl.iter_events(source, source_name=source_name, mapping=mapping)


READERS: list[Reader] = [
    cloudtrail.iter_events,
    k8s_audit.iter_events,
    gcp_audit.iter_events,
    otel.iter_events,
    openai.iter_events,
    anthropic.iter_events,
    bedrock.iter_events,
    azure_activity.iter_events,
    iter_detected,
    _jsonl,
]
IDS = [r.__module__.rsplit(".", 1)[-1] + "." + r.__name__ for r in READERS]

_WORDS = """
Records eventName eventname eventSource eventTime eventID awsRegion recipientAccountId
userIdentity type arn accountId accesskeyid principalId invokedBy userName sessionContext
sessionIssuer attributes mfaAuthenticated requestParameters bucketName key roleName userName
functionName instancesSet items instanceId names name resources ARN errorCode readOnly
responseElements ConsoleLogin additionalEventData bytesTransferredIn bytesTransferredOut
kind apiVersion verb user username groups extra objectRef resource subresource namespace
requestObject metadata responseStatus code requestReceivedTimestamp stageTimestamp sourceIPs
userAgent requestURI auditID annotations category properties log protoPayload protopayload
authenticationInfo principalEmail principalSubject serviceAccountDelegationInfo
firstPartyPrincipal serviceAccountKeyName methodName resourceName authorizationInfo
permission granted resourceAttributes requestMetadata callerIp callerIP
callerSuppliedUserAgent status labels location insertId timestamp receiveTimestamp
operation producer logName resourceSpans scopeSpans instrumentationLibrarySpans spans scope
spanId parentSpanId traceId startTimeUnixNano value stringValue intValue boolValue
effective_at actor session api_key service_account id email ip_address user_agent
created_at organization_id user_id email_address api_key_id resource_id schemaType
ModelInvocationLog modelId identity region requestId operationName caller resourceId
resultType resultSignature time eventTimestamp gen_ai.operation.name execute_tool
gen_ai.tool.name gen_ai.agent.id gen_ai.tool.call.id error.type login.failed kube-audit
system:serviceaccount:a:b
"""
VOCABULARY = _WORDS.split()

KEYS = st.sampled_from(VOCABULARY) | st.text(max_size=5)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(VOCABULARY)
    | st.text(max_size=12)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=30,
)
OBJECTS = st.dictionaries(KEYS, VALUES, min_size=1, max_size=8)


def check(results: list[ObservedAccess | IngestError]) -> None:
    for result in results:
        assert isinstance(result, ObservedAccess | IngestError)
        if isinstance(result, IngestError):
            assert UNEXPECTED not in result.message, result.message
            assert result.line >= 1


@pytest.mark.parametrize("reader", READERS, ids=IDS)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400), sizes=st.lists(st.integers(1, 64), max_size=20))
def test_arbitrary_bytes_never_raise(reader: Reader, data: bytes, sizes: list[int]) -> None:
    check(list(reader(ChunkedReader(data, sizes), source_name="fuzz")))


@pytest.mark.parametrize("reader", READERS, ids=IDS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.text(max_size=80) | st.binary(max_size=80), max_size=8))
def test_arbitrary_lines_never_raise(reader: Reader, lines: list[Any]) -> None:
    check(list(reader(lines, source_name="fuzz")))


@pytest.mark.parametrize("reader", READERS, ids=IDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects=st.lists(OBJECTS, min_size=1, max_size=4), records=st.booleans())
def test_objects_of_the_formats_own_fields_never_trip_an_adapter(
    reader: Reader, objects: list[dict[str, Any]], records: bool
) -> None:
    # The standard library writes integers beyond 64 bits, which orjson refuses.
    text = json.dumps({"Records": objects}) if records else "\n".join(map(json.dumps, objects))
    data = text.encode()
    check(list(reader(io.BytesIO(data), source_name="fuzz")))


@settings(max_examples=80, deadline=None)
@given(objects=st.lists(OBJECTS, min_size=1, max_size=5))
def test_an_object_gives_the_same_result_in_a_records_file_and_alone(
    objects: list[dict[str, Any]],
) -> None:
    """Streaming a Records array changes nothing but the error prefix."""
    alone = list(cloudtrail.iter_events([json.dumps(o) for o in objects], source_name="f"))
    streamed = list(cloudtrail.iter_events([json.dumps({"Records": objects})], source_name="f"))
    assert len(alone) == len(streamed)
    for one, other in zip(alone, streamed, strict=True):
        if isinstance(one, ObservedAccess):
            assert isinstance(other, ObservedAccess)
            assert one.dedupe_key == other.dedupe_key
            assert one.action == other.action
        else:
            assert isinstance(other, IngestError)
            assert other.message.endswith(one.message)


def test_a_records_file_whose_first_key_is_not_utf8_is_read_not_raised() -> None:
    """Found by ``make fuzz`` (atheris): the Records fast path built its boundary pattern
    with orjson from the first element's first key, and a key holding bytes that are not
    UTF-8 (kept as surrogates) raised TypeError out of the reader."""
    data = (
        b'{"Records": [{"eventT\xff\xffe": "2026-12-01T10:00:00", "eventSource": '
        b'"s3.amazonaws.com", "eventName": "GetObject", "userIdentity": {"type": '
        b'"AssumedRole", "arn": "arn:aws:sts::2:assumed-role/r/s"}}, {"eventT\xff\xffe": 1}]}'
    )
    results = list(cloudtrail.iter_events(io.BytesIO(data), source_name="fuzz"))
    check(results)
    assert len(results) == 2
