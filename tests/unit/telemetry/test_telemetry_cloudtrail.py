"""CloudTrail records: principals, actions, resources, outcomes, lower-cased exports."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from telemetry_support import INGEST_TIME, fixed_clock, split

from tether.telemetry import AccessOutcome, ObservedAccess, PrincipalKind
from tether.telemetry.ingest import cloudtrail


def one(raw: dict[str, Any]) -> ObservedAccess:
    events, errors = split(
        cloudtrail.iter_events([orjson.dumps(raw)], source_name="t", now=fixed_clock)
    )
    assert errors == []
    return events[0]


def rec(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventTime": "2024-05-01T10:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "GetRole",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15",
        "userIdentity": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::111122223333:user/ci/deployer",
            "accountId": "111122223333",
            "accessKeyId": "AKIAEXAMPLE",
            "userName": "deployer",
        },
    }
    base.update(fields)
    return base


def test_a_record_becomes_an_event() -> None:
    event = one(rec(requestParameters={"roleName": "payments"}, readOnly=True, eventID="e-1"))
    assert event.action == "iam:GetRole"
    assert event.resource == "arn:aws:iam::111122223333:role/payments"
    assert event.resource_type == "iam:role"
    assert event.principal.kind == PrincipalKind.AWS_IAM_USER
    assert event.principal.key == "arn:aws:iam::111122223333:user/ci/deployer"
    assert event.principal.display_name == "deployer"
    assert event.principal.attributes["access_key_id"] == "AKIAEXAMPLE"
    assert event.at.isoformat() == "2024-05-01T10:00:00+00:00"
    assert event.outcome is AccessOutcome.ALLOWED
    assert event.read_only is True
    assert event.source_event_id == "e-1"
    assert event.environment.source_ip == "198.51.100.7"
    assert event.environment.region == "us-east-1"
    assert event.environment.user_agent == "aws-cli/2.15"
    assert event.identity_id is None
    assert event.data_class is None


@pytest.mark.parametrize(
    ("source", "params", "resource", "kind"),
    [
        ("s3", {"bucketName": "b", "key": "k/1.csv"}, "arn:aws:s3:::b/k/1.csv", "s3:object"),
        ("s3", {"bucketName": "b"}, "arn:aws:s3:::b", "s3:bucket"),
        ("iam", {"userName": "bob"}, "arn:aws:iam::111122223333:user/bob", "iam:user"),
        ("sts", {"roleArn": "arn:aws:iam::9:role/x"}, "arn:aws:iam::9:role/x", "iam:role"),
        (
            "lambda",
            {"functionName": "resize"},
            "arn:aws:lambda:us-east-1:111122223333:function:resize",
            "lambda:function",
        ),
        (
            "secretsmanager",
            {"secretId": "arn:aws:secretsmanager:us-east-1:1:secret:db-AbC"},
            "arn:aws:secretsmanager:us-east-1:1:secret:db-AbC",
            "secretsmanager:secret",
        ),
        (
            "ssm",
            {"name": "/prod/db/password", "withDecryption": True},
            "arn:aws:ssm:us-east-1:111122223333:parameter/prod/db/password",
            "ssm:parameter",
        ),
        (
            "ec2",
            {"instancesSet": {"items": [{"instanceId": "i-0abc"}]}},
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc",
            "ec2:instance",
        ),
        (
            "rds",
            {"dBInstanceIdentifier": "orders"},
            "arn:aws:rds:us-east-1:111122223333:db:orders",
            "rds:db",
        ),
        ("wafv2", {"resourceArn": "arn:aws:elb:x"}, "arn:aws:elb:x", None),
        ("unknownsvc", {"thing": "x"}, None, None),
    ],
)
def test_request_parameters_name_the_resource(
    source: str, params: dict[str, Any], resource: str | None, kind: str | None
) -> None:
    event = one(rec(eventSource=f"{source}.amazonaws.com", requestParameters=params))
    assert (event.resource, event.resource_type) == (resource, kind)


def test_the_resources_list_is_used_when_parameters_say_nothing() -> None:
    listed = [{"ARN": "arn:aws:kms:us-east-1:1:key/k", "type": "AWS::KMS::Key"}]
    event = one(rec(eventSource="kms.amazonaws.com", resources=listed))
    assert (event.resource, event.resource_type) == (
        "arn:aws:kms:us-east-1:1:key/k",
        "AWS::KMS::Key",
    )


@pytest.mark.parametrize(
    ("fields", "outcome"),
    [
        ({"errorCode": "AccessDenied"}, AccessOutcome.DENIED),
        ({"errorCode": "Client.UnauthorizedOperation"}, AccessOutcome.DENIED),
        ({"errorCode": "ExpiredToken"}, AccessOutcome.DENIED),
        ({"errorCode": "ThrottlingException"}, AccessOutcome.ERROR),
        ({"errorCode": "NoSuchBucket"}, AccessOutcome.ERROR),
        ({"errorCode": ""}, AccessOutcome.ALLOWED),
        ({"responseElements": {"ConsoleLogin": "Failure"}}, AccessOutcome.DENIED),
        ({"responseElements": {"ConsoleLogin": "Success"}}, AccessOutcome.ALLOWED),
    ],
)
def test_error_codes_make_the_outcome(fields: dict[str, Any], outcome: AccessOutcome) -> None:
    assert one(rec(**fields)).outcome is outcome


def test_principal_kinds() -> None:
    session = {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::111122223333:assumed-role/etl-runner/i-0abc",
        "accountId": "111122223333",
        "sessionContext": {
            "sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/service/etl-runner"}
        },
    }
    event = one(rec(userIdentity=session))
    assert event.principal.kind == PrincipalKind.AWS_ASSUMED_ROLE
    assert event.principal.key == "arn:aws:iam::111122223333:role/etl-runner"
    assert (
        event.principal.attributes["role_arn"]
        == "arn:aws:iam::111122223333:role/service/etl-runner"
    )
    assert event.principal.attributes["session_name"] == "i-0abc"

    root = one(rec(userIdentity={"type": "Root", "accountId": "111122223333"}))
    assert (root.principal.kind, root.principal.key) == (
        PrincipalKind.AWS_ROOT,
        "arn:aws:iam::111122223333:root",
    )
    service = one(rec(userIdentity={"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}))
    assert (service.principal.kind, service.principal.key) == (
        PrincipalKind.AWS_SERVICE,
        "ec2.amazonaws.com",
    )
    nobody = one(rec(userIdentity=None))
    assert nobody.principal.is_unknown


def test_lower_cased_exports_read_like_the_original() -> None:
    original = rec(requestParameters={"bucketName": "b"}, eventSource="s3.amazonaws.com")
    lowered = {key.lower(): value for key, value in original.items()}
    a, b = one(original), one(lowered)
    assert (a.action, a.resource, a.at, a.environment) == (
        b.action,
        b.resource,
        b.at,
        b.environment,
    )
    assert a.dedupe_key != b.dedupe_key  # different raw text is a different raw event


def test_missing_or_unusable_times_get_the_ingest_time() -> None:
    for value in (None, "redacted", "...", 12.5e30):
        event = one(rec(eventTime=value))
        assert (event.at, event.at_is_ingest_time) == (INGEST_TIME, True)


def test_s3_data_events_report_bytes() -> None:
    data = {"bytesTransferredIn": 0.0, "bytesTransferredOut": 5120}
    assert one(rec(additionalEventData=data)).bytes == 5120
    assert one(rec()).bytes is None


def test_what_is_not_a_record_is_an_error() -> None:
    lines = [
        '{"eventSource": "s3.amazonaws.com"}',
        '{"Records": [1, {"eventName": "X"}]}',
        '{"other": 1, "Records": [{"eventName": "Y"}, "x"]}',  # not streamed: same result
    ]
    events, errors = split(cloudtrail.iter_events(lines, source_name="t"))
    assert [e.action for e in events] == ["X", "Y"]
    assert [(e.line, e.message) for e in errors] == [
        (1, "not a CloudTrail record: no `eventName`"),
        (2, "record 1: expected a JSON object, got a number"),
        (3, "record 2: expected a JSON object, got a string"),
    ]
