"""Every labelled event of the shared cloud-audit fixtures goes through ingest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from telemetry_support import CLOUD_AUDIT, INGEST_TIME, fixed_clock, labelled_cases, split

from tether.telemetry import (
    AccessOutcome,
    IngestError,
    PrincipalKind,
    PrincipalRule,
    Source,
    resolve,
)
from tether.telemetry.ingest import detect_source, iter_labelled_fixture
from tether.telemetry.ingest._base import UNEXPECTED
from tether.telemetry.ingest._time import parse_time

FIXTURE_FILES = sorted(CLOUD_AUDIT.glob("*.jsonl"))
SESSION_ARN = re.compile(r"^arn:aws:sts::(\d+):assumed-role/([^/]+)/(.+)$")


def test_every_fixture_family_is_present() -> None:
    names = {path.name.split("_rules")[0] for path in FIXTURE_FILES}
    assert names >= {
        "anthropic",
        "aws_bedrockmodelinvocation",
        "aws_cloudtrail",
        "aws_eks",
        "gcp_audit",
        "gcp_k8s",
        "kubernetes",
        "openai",
    }


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_every_event_is_ingested_and_every_null_log_is_an_error(path: Path) -> None:
    cases = labelled_cases(path)
    events, errors = split(iter_labelled_fixture(path, now=fixed_clock))

    null_lines = [number for number, case in enumerate(cases, 1) if case["log"] is None]
    assert len(events) == len(cases) - len(null_lines)
    assert [error.line for error in errors] == null_lines
    for error in errors:
        assert error.file == str(path)
        assert "no event" in error.message
        assert UNEXPECTED not in error.message
    # Each event keeps its raw event verbatim, and came from the case of the same order.
    assert [event.raw for event in events] == [c["log"] for c in cases if c["log"] is not None]


def test_cloudtrail_fixture_counts_match_the_readme() -> None:
    path = CLOUD_AUDIT / "aws_cloudtrail_rules.labelled.jsonl"
    events, errors = split(iter_labelled_fixture(path))
    assert len(events) + len(errors) == 464
    assert len(errors) == 3
    assert {event.source for event in events} == {Source.CLOUDTRAIL}


@pytest.mark.parametrize(
    ("name", "sources"),
    [
        ("anthropic_rules", {Source.ANTHROPIC}),
        ("aws_bedrockmodelinvocation_rules", {Source.BEDROCK}),
        ("aws_eks_rules", {Source.K8S_AUDIT}),
        ("gcp_audit_rules", {Source.GCP_AUDIT}),
        ("gcp_k8s_rules", {Source.GCP_AUDIT}),
        ("openai_rules", {Source.OPENAI}),
        # Kubernetes rules test EKS/self-managed events, AKS kube-audit records, GKE audit
        # entries and one Azure activity record the rule must ignore.
        ("kubernetes_rules", {Source.K8S_AUDIT, Source.GCP_AUDIT, Source.AZURE_ACTIVITY}),
    ],
)
def test_events_are_read_by_the_adapter_their_shape_calls_for(
    name: str, sources: set[Source]
) -> None:
    events, _ = split(iter_labelled_fixture(CLOUD_AUDIT / f"{name}.labelled.jsonl"))
    assert {event.source for event in events} == sources


def test_assumed_role_sessions_resolve_to_their_role() -> None:
    path = CLOUD_AUDIT / "aws_cloudtrail_rules.labelled.jsonl"
    events, _ = split(iter_labelled_fixture(path))
    sessions = [e for e in events if SESSION_ARN.match(e.principal.attributes.get("arn", ""))]
    assert len(sessions) > 200
    for event in sessions:
        found = SESSION_ARN.match(event.principal.attributes["arn"])
        assert found is not None
        account, role, session = found.groups()
        role_arn = f"arn:aws:iam::{account}:role/{role}"
        assert event.principal.kind == PrincipalKind.AWS_ASSUMED_ROLE
        assert event.principal.key == role_arn
        assert event.principal.attributes["session_name"] == session
        rules = [PrincipalRule.by_role_arn("the-role", role_arn)]
        assert resolve(event.principal, rules) == "the-role"
        other = [PrincipalRule.by_role_arn("other", f"arn:aws:iam::{account}:role/{role}x")]
        assert resolve(event.principal, other) is None


def test_bedrock_invocations_resolve_to_the_caller_role() -> None:
    events, _ = split(
        iter_labelled_fixture(CLOUD_AUDIT / "aws_bedrockmodelinvocation_rules.labelled.jsonl")
    )
    rule = PrincipalRule.by_role_arn("ml-app", "arn:aws:iam::111111111111:role/role_details")
    assert {resolve(event.principal, [rule]) for event in events} == {"ml-app"}
    assert {event.action.split(":")[0] for event in events} == {"bedrock"}


@pytest.mark.parametrize("name", ["kubernetes_rules", "aws_eks_rules"])
def test_service_accounts_parse(name: str) -> None:
    path = CLOUD_AUDIT / f"{name}.labelled.jsonl"
    events, _ = split(iter_labelled_fixture(path))
    k8s = [event for event in events if event.source is Source.K8S_AUDIT]
    accounts = [e for e in k8s if e.principal.key.startswith("system:serviceaccount:")]
    assert accounts
    for event in accounts:
        _, _, namespace, name_ = event.principal.key.split(":", 3)
        assert event.principal.kind == PrincipalKind.K8S_SERVICE_ACCOUNT
        assert event.principal.attributes["namespace"] == namespace
        assert event.principal.attributes["name"] == name_
        rule = PrincipalRule.by_service_account("sa", f"{namespace}/{name_}")
        assert resolve(event.principal, [rule]) == "sa"
    humans = [e for e in k8s if e.principal.kind == PrincipalKind.K8S_USER]
    assert all(not e.principal.key.startswith("system:serviceaccount:") for e in humans)


def test_kubernetes_events_without_timestamps_get_the_ingest_time_and_the_flag() -> None:
    path = CLOUD_AUDIT / "kubernetes_rules.labelled.jsonl"
    events, _ = split(iter_labelled_fixture(path, now=fixed_clock))
    k8s = [event for event in events if event.source is Source.K8S_AUDIT]
    undated = [e for e in k8s if _k8s_time(e.raw) is None]
    dated = [e for e in k8s if _k8s_time(e.raw) is not None]
    assert len(undated) > 150  # most Kubernetes samples carry no timestamp
    assert all(e.at == INGEST_TIME and e.at_is_ingest_time for e in undated)
    assert dated
    for event in dated:
        assert not event.at_is_ingest_time
        assert event.at == parse_time(_k8s_time(event.raw))


def _k8s_time(raw: object) -> str | None:
    import orjson

    event = raw if isinstance(raw, dict) else {}
    if event.get("category") == "kube-audit":
        event = orjson.loads(event["properties"]["log"])
    found = event.get("requestReceivedTimestamp") or event.get("stageTimestamp")
    return found if isinstance(found, str) else None


def test_denials_and_errors_are_told_apart() -> None:
    trail, _ = split(iter_labelled_fixture(CLOUD_AUDIT / "aws_cloudtrail_rules.labelled.jsonl"))
    by_code = {str(e.raw.get("errorCode")): e.outcome for e in trail if e.raw.get("errorCode")}
    assert by_code["AccessDenied"] is AccessOutcome.DENIED
    assert by_code["Client.UnauthorizedOperation"] is AccessOutcome.DENIED
    assert by_code["NoSuchEntity"] is AccessOutcome.ERROR
    assert by_code["BucketNotEmpty"] is AccessOutcome.ERROR

    k8s, _ = split(iter_labelled_fixture(CLOUD_AUDIT / "aws_eks_rules.labelled.jsonl"))
    codes = {e.raw.get("responseStatus", {}).get("code"): e.outcome for e in k8s}
    assert codes[403] is AccessOutcome.DENIED
    assert codes[200] is AccessOutcome.ALLOWED


def test_dedupe_keys_follow_content_not_event_ids() -> None:
    path = CLOUD_AUDIT / "aws_cloudtrail_rules.labelled.jsonl"
    events, _ = split(iter_labelled_fixture(path))
    by_id: dict[str, list[str]] = {}
    by_key: dict[str, list[object]] = {}
    for event in events:
        if event.source_event_id:
            by_id.setdefault(event.source_event_id, []).append(event.dedupe_key)
        by_key.setdefault(event.dedupe_key, []).append(event.raw)
    reused = {eid: keys for eid, keys in by_id.items() if len(set(keys)) > 1}
    assert reused, "the fixtures reuse eventIDs for different events"
    # Equal keys only ever join identical raw events.
    for raws in by_key.values():
        assert all(raw == raws[0] for raw in raws)


def test_detect_source_says_none_for_what_no_adapter_reads() -> None:
    assert detect_source({"hello": "world"}) is None
    assert detect_source([1, 2]) is None
    assert detect_source(None) is None


def test_a_labelled_file_with_broken_lines_reports_them_and_carries_on(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(
        '{"log": {"eventName": "GetObject", "eventSource": "s3.amazonaws.com"}}\n'
        "not json\n"
        '{"rule_id": "x"}\n'
        '{"log": 5}\n'
        '{"log": {"what": "ever"}}\n'
        '{"log": {"kind": "Event", "verb": "get", "user": {"username": "u"}}}\n'
    )
    events, errors = split(iter_labelled_fixture(path))
    assert [e.source for e in events] == [Source.CLOUDTRAIL, Source.K8S_AUDIT]
    assert [(e.line, e.file) for e in errors] == [(n, str(path)) for n in (2, 3, 4, 5)]
    assert all(isinstance(e, IngestError) for e in errors)
    assert "not valid JSON" in errors[0].message
    assert "no `log`" in errors[1].message
    assert "not an event" in errors[2].message
    assert "not an event of any format" in errors[3].message
