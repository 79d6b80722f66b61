"""Kubernetes, GCP, Azure, OpenAI, Anthropic and Bedrock adapters on hand-written events."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from telemetry_support import INGEST_TIME, fixed_clock, split

from tether.telemetry import AccessOutcome, IngestError, ObservedAccess, PrincipalKind, Source
from tether.telemetry.ingest import (
    anthropic,
    azure_activity,
    bedrock,
    detect_source,
    gcp_audit,
    iter_detected,
    k8s_audit,
    openai,
)

Reader = Callable[..., Iterator[ObservedAccess | IngestError]]


def one(reader: Reader, raw: dict[str, Any]) -> ObservedAccess:
    events, errors = split(reader([orjson.dumps(raw)], source_name="t", now=fixed_clock))
    assert errors == []
    assert len(events) == 1
    return events[0]


def k8s(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": "a-1",
        "verb": "get",
        "user": {"username": "system:serviceaccount:payments:worker", "groups": ["g1", "g2"]},
        "sourceIPs": ["10.1.2.3"],
        "userAgent": "client-go",
        "objectRef": {"resource": "secrets", "namespace": "payments", "name": "db"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2024-02-01T08:00:00.123456Z",
        "stageTimestamp": "2024-02-01T08:00:00.200000Z",
    }
    base.update(fields)
    return base


def test_kubernetes_event() -> None:
    event = one(k8s_audit.iter_events, k8s())
    assert event.source is Source.K8S_AUDIT
    assert event.action == "k8s:get secrets"
    assert event.resource == "secrets/payments/db"
    assert event.resource_type == "k8s:secrets"
    assert event.read_only is True
    assert event.principal.kind == PrincipalKind.K8S_SERVICE_ACCOUNT
    assert event.principal.display_name == "payments/worker"
    assert event.principal.attributes["groups"] == "g1,g2"
    assert event.at.isoformat() == "2024-02-01T08:00:00.123456+00:00"
    assert event.source_event_id == "a-1"
    assert event.environment.source_ip == "10.1.2.3"


@pytest.mark.parametrize(
    ("ref", "resource", "action"),
    [
        (
            {"resource": "pods", "namespace": "default", "name": "test"},
            "pods/default/test",
            "k8s:get pods",
        ),
        ({"resource": "pods", "namespace": "default"}, "pods/default", "k8s:get pods"),
        ({"resource": "nodes", "name": "n1"}, "nodes/-/n1", "k8s:get nodes"),
        ({"resource": "nodes"}, "nodes", "k8s:get nodes"),
        (
            {"resource": "pods", "namespace": "ns", "name": "p", "subresource": "exec"},
            "pods/ns/p/exec",
            "k8s:get pods/exec",
        ),
    ],
)
def test_kubernetes_resources(ref: dict[str, Any], resource: str, action: str) -> None:
    event = one(k8s_audit.iter_events, k8s(objectRef=ref))
    assert (event.resource, event.action) == (resource, action)


def test_kubernetes_create_takes_the_name_from_the_body() -> None:
    body = {"metadata": {"name": "test"}}
    event = one(
        k8s_audit.iter_events,
        k8s(
            verb="create",
            objectRef={"resource": "pods", "namespace": "default"},
            requestObject=body,
        ),
    )
    assert (event.action, event.resource, event.read_only) == (
        "k8s:create pods",
        "pods/default/test",
        False,
    )


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, AccessOutcome.ALLOWED),
        (201, AccessOutcome.ALLOWED),
        (401, AccessOutcome.DENIED),
        (403, AccessOutcome.DENIED),
        (404, AccessOutcome.ERROR),
        (409, AccessOutcome.ERROR),
        (500, AccessOutcome.ERROR),
    ],
)
def test_kubernetes_outcomes(status: int, outcome: AccessOutcome) -> None:
    assert one(k8s_audit.iter_events, k8s(responseStatus={"code": status})).outcome is outcome


def test_kubernetes_without_timestamps_and_users() -> None:
    raw = k8s(user=None)
    del raw["requestReceivedTimestamp"], raw["stageTimestamp"]
    event = one(k8s_audit.iter_events, raw)
    assert (event.at, event.at_is_ingest_time) == (INGEST_TIME, True)
    assert event.principal.is_unknown
    only_stage = k8s()
    del only_stage["requestReceivedTimestamp"]
    assert (
        one(k8s_audit.iter_events, only_stage).at.isoformat() == "2024-02-01T08:00:00.200000+00:00"
    )


def test_kubernetes_non_resource_requests() -> None:
    raw = k8s(requestURI="/healthz?verbose=1", user={"username": "system:anonymous"})
    del raw["objectRef"]
    event = one(k8s_audit.iter_events, raw)
    assert (event.action, event.resource, event.resource_type) == (
        "k8s:get",
        "/healthz",
        "k8s:non-resource",
    )
    assert event.principal.kind == PrincipalKind.K8S_USER


def test_eks_users_carry_their_iam_principal() -> None:
    user = {
        "username": "kubernetes-admin",
        "extra": {"arn": ["arn:aws:sts::1:assumed-role/Admin/s"]},
    }
    event = one(k8s_audit.iter_events, k8s(user=user))
    assert event.principal.attributes["aws_arn"] == "arn:aws:sts::1:assumed-role/Admin/s"


def test_aks_kube_audit_records_are_unwrapped() -> None:
    inner = k8s(verb="delete")
    record = {
        "category": "kube-audit",
        "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
        "properties": {"log": orjson.dumps(inner).decode()},
    }
    assert detect_source(record) is Source.K8S_AUDIT
    event = one(k8s_audit.iter_events, record)
    assert event.action == "k8s:delete secrets"
    assert event.raw == record  # the record as delivered is the raw event
    broken = {"category": "kube-audit", "properties": {"log": "{nope"}}
    _, errors = split(k8s_audit.iter_events([orjson.dumps(broken)], source_name="t"))
    assert "not JSON" in errors[0].message


def gcp(**payload: Any) -> dict[str, Any]:
    proto: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "authenticationInfo": {
            "principalEmail": "Deployer@Proj.iam.gserviceaccount.com",
            "serviceAccountKeyName": "//iam.googleapis.com/projects/p/serviceAccounts/d/keys/k1",
        },
        "methodName": "storage.objects.get",
        "resourceName": "projects/_/buckets/b/objects/o",
        "requestMetadata": {"callerIp": "203.0.113.9", "callerSuppliedUserAgent": "gcloud"},
        "authorizationInfo": [
            {
                "permission": "storage.objects.get",
                "granted": True,
                "resourceAttributes": {"type": "storage.googleapis.com/Object"},
            }
        ],
    }
    proto.update(payload)
    return {
        "protoPayload": proto,
        "insertId": "abc123",
        "timestamp": "2024-03-01T00:00:00.5Z",
        "resource": {"type": "gcs_bucket", "labels": {"location": "europe-west1"}},
        "logName": "projects/p/logs/cloudaudit.googleapis.com%2Fdata_access",
    }


def test_gcp_audit_entry() -> None:
    event = one(gcp_audit.iter_events, gcp())
    assert event.action == "storage.objects.get"
    assert event.resource == "projects/_/buckets/b/objects/o"
    assert event.resource_type == "storage.googleapis.com/Object"
    assert event.principal.kind == PrincipalKind.GCP_SERVICE_ACCOUNT
    assert event.principal.key == "deployer@proj.iam.gserviceaccount.com"
    assert event.principal.attributes["service_account_key"].endswith("/keys/k1")
    assert event.source_event_id == "abc123"
    assert event.at.isoformat() == "2024-03-01T00:00:00.500000+00:00"
    assert event.environment.source_ip == "203.0.113.9"
    assert event.environment.region == "europe-west1"
    user = gcp(authenticationInfo={"principalEmail": "ana@example.com"})
    assert one(gcp_audit.iter_events, user).principal.kind == PrincipalKind.GCP_USER


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ({}, AccessOutcome.ALLOWED),
        ({"code": 0}, AccessOutcome.ALLOWED),
        ({"code": 7, "message": "PERMISSION_DENIED"}, AccessOutcome.DENIED),
        ({"code": 16}, AccessOutcome.DENIED),
        ({"code": 5}, AccessOutcome.ERROR),
    ],
)
def test_gcp_outcomes(status: dict[str, Any], outcome: AccessOutcome) -> None:
    assert one(gcp_audit.iter_events, gcp(status=status)).outcome is outcome


def test_gcp_json_array_export_streams() -> None:
    text = orjson.dumps(
        [gcp(), gcp(methodName="storage.objects.delete")], option=orjson.OPT_INDENT_2
    )
    events, errors = split(gcp_audit.iter_events([text], source_name="t"))
    assert errors == []
    assert [e.action for e in events] == ["storage.objects.get", "storage.objects.delete"]


def test_openai_audit_log() -> None:
    raw = {
        "id": "audit_log-1",
        "type": "api_key.created",
        "effective_at": 1702857600,
        "object": "organization.audit_log",
        "actor": {
            "type": "api_key",
            "api_key": {
                "id": "key-1",
                "type": "service_account",
                "service_account": {"id": "sa-etl"},
            },
        },
        "api_key_created": {"id": "key-2", "data": {"scopes": ["all"]}},
    }
    event = one(openai.iter_events, raw)
    assert (event.action, event.resource, event.resource_type) == (
        "openai:api_key.created",
        "key-2",
        "openai:api_key",
    )
    assert (event.principal.kind, event.principal.key) == (
        PrincipalKind.OPENAI_SERVICE_ACCOUNT,
        "sa-etl",
    )
    assert event.principal.attributes["api_key_id"] == "key-1"
    assert event.at.isoformat() == "2023-12-18T00:00:00+00:00"
    failed = {
        **raw,
        "type": "login.failed",
        "actor": {
            "type": "session",
            "session": {"user": {"id": "u1", "email": "a@b.c"}, "ip_address": "192.0.2.1"},
        },
    }
    event = one(openai.iter_events, failed)
    assert event.outcome is AccessOutcome.DENIED
    assert (event.principal.kind, event.environment.source_ip) == (
        PrincipalKind.OPENAI_USER,
        "192.0.2.1",
    )


def test_anthropic_activity() -> None:
    raw = {
        "id": "activity_1",
        "created_at": "2026-05-07T13:02:42Z",
        "organization_id": "org_1",
        "type": "mcp_server_created",
        "mcp_server_id": "mcpsrv_1",
        "actor": {"type": "api_actor", "api_key_id": "key_1", "ip_address": "10.0.0.1"},
    }
    event = one(anthropic.iter_events, raw)
    assert (event.action, event.resource, event.resource_type) == (
        "anthropic:mcp_server_created",
        "mcpsrv_1",
        "mcp_server",
    )
    assert (event.principal.kind, event.principal.key) == (PrincipalKind.ANTHROPIC_API_KEY, "key_1")
    failed = {**raw, "type": "claude_chat_access_failed"}
    assert one(anthropic.iter_events, failed).outcome is AccessOutcome.DENIED


def test_bedrock_invocation() -> None:
    raw = {
        "schemaType": "ModelInvocationLog",
        "timestamp": "2025-05-15 14:17:22.000000000",
        "accountId": "111111111111",
        "identity": {"arn": "arn:aws:sts::111111111111:assumed-role/app/s1"},
        "region": "us-west-2",
        "requestId": "r-1",
        "operation": "Converse",
        "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
    }
    event = one(bedrock.iter_events, raw)
    assert event.action == "bedrock:Converse"
    assert event.resource == (
        "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
    )
    assert event.resource_type == "bedrock:foundation-model"
    assert event.principal.key == "arn:aws:iam::111111111111:role/app"
    assert event.at.isoformat() == "2025-05-15T14:17:22+00:00"
    assert one(bedrock.iter_events, {**raw, "errorCode": "AccessDeniedException"}).outcome is (
        AccessOutcome.DENIED
    )


def test_azure_activity() -> None:
    raw = {
        "time": "2024-01-01T00:00:00Z",
        "operationName": {"value": "Microsoft.KeyVault/vaults/secrets/read"},
        "caller": "0b8e0a5e-6a4c-4c5a-9d0b-1234567890ab",
        "resourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v",
        "resultType": "Failure",
        "resultSignature": "Forbidden",
        "callerIpAddress": "192.0.2.4",
    }
    event = one(azure_activity.iter_events, raw)
    assert event.action == "azure:Microsoft.KeyVault/vaults/secrets/read"
    assert event.principal.kind == PrincipalKind.AZURE_SERVICE_PRINCIPAL
    assert event.outcome is AccessOutcome.DENIED
    assert one(azure_activity.iter_events, {**raw, "resultSignature": "Conflict"}).outcome is (
        AccessOutcome.ERROR
    )


def test_mixed_streams_are_read_by_shape() -> None:
    lines = [
        orjson.dumps(k8s()),
        orjson.dumps(gcp()),
        b'{"eventName": "ListBuckets", "eventSource": "s3.amazonaws.com"}',
        b'{"hello": 1}',
    ]
    events, errors = split(iter_detected(lines, source_name="mixed"))
    assert [e.source for e in events] == [Source.K8S_AUDIT, Source.GCP_AUDIT, Source.CLOUDTRAIL]
    assert [(e.line, e.file) for e in errors] == [(4, "mixed")]


@pytest.mark.parametrize(
    "reader",
    [
        k8s_audit.iter_events,
        gcp_audit.iter_events,
        openai.iter_events,
        anthropic.iter_events,
        bedrock.iter_events,
        azure_activity.iter_events,
    ],
)
def test_objects_of_another_shape_are_errors(reader: Reader) -> None:
    events, errors = split(reader([b'{"hello": "world"}', b"[1]", b"null"], source_name="f"))
    assert events == []
    assert [(e.file, e.line) for e in errors] == [("f", 1), ("f", 2), ("f", 3)]


def test_a_stream_said_to_be_one_format_reads_each_line_by_its_shape() -> None:
    gke = {"protoPayload": {"methodName": "io.k8s.core.v1.pods.exec.create"}, "logName": "x"}
    k8s = {"kind": "Event", "verb": "get", "objectRef": {"resource": "secrets"}}
    lines = [orjson.dumps(gke), orjson.dumps(k8s), orjson.dumps({"neither": 1})]
    found = list(iter_detected(lines, source_name="k8s.jsonl", fallback=Source.K8S_AUDIT))
    events = [e for e in found if not isinstance(e, IngestError)]
    errors = [e for e in found if isinstance(e, IngestError)]
    assert [e.source for e in events] == [Source.GCP_AUDIT, Source.K8S_AUDIT]
    assert [e.line for e in errors] == [3]
    assert "not a Kubernetes audit event" in errors[0].message
