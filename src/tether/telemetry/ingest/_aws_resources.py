"""The resource a CloudTrail record acts on, as an ARN (AWS CloudTrail record contents).

CloudTrail names the target in ``requestParameters`` with service-specific keys. This
table knows the common ones (the ARN formats are those of the AWS Service Authorization
Reference); after it come the record's ``resources`` list and any request parameter that
already holds an ARN. Unknown services give no resource rather than a guess.
"""

from __future__ import annotations

from typing import Any

from tether.telemetry.ingest._base import first, mapping, text

# service prefix -> (request parameter, ARN template, resource type); first present wins.
# Templates see {p} partition, {r} region, {a} account, {v} the parameter's value.
_TABLE: dict[str, tuple[tuple[str, str, str], ...]] = {
    "iam": (
        ("roleName", "arn:{p}:iam::{a}:role/{v}", "iam:role"),
        ("userName", "arn:{p}:iam::{a}:user/{v}", "iam:user"),
        ("groupName", "arn:{p}:iam::{a}:group/{v}", "iam:group"),
        ("instanceProfileName", "arn:{p}:iam::{a}:instance-profile/{v}", "iam:instance-profile"),
        ("policyArn", "{v}", "iam:policy"),
    ),
    "sts": (("roleArn", "{v}", "iam:role"),),
    "lambda": (("functionName", "arn:{p}:lambda:{r}:{a}:function:{v}", "lambda:function"),),
    "dynamodb": (("tableName", "arn:{p}:dynamodb:{r}:{a}:table/{v}", "dynamodb:table"),),
    "secretsmanager": (
        ("secretId", "arn:{p}:secretsmanager:{r}:{a}:secret:{v}", "secretsmanager:secret"),
        ("name", "arn:{p}:secretsmanager:{r}:{a}:secret:{v}", "secretsmanager:secret"),
    ),
    "kms": (("keyId", "arn:{p}:kms:{r}:{a}:key/{v}", "kms:key"),),
    "ssm": (
        ("name", "arn:{p}:ssm:{r}:{a}:parameter/{v}", "ssm:parameter"),
        ("names", "arn:{p}:ssm:{r}:{a}:parameter/{v}", "ssm:parameter"),
        ("documentName", "arn:{p}:ssm:{r}:{a}:document/{v}", "ssm:document"),
    ),
    "ec2": (
        ("instanceId", "arn:{p}:ec2:{r}:{a}:instance/{v}", "ec2:instance"),
        ("groupId", "arn:{p}:ec2:{r}:{a}:security-group/{v}", "ec2:security-group"),
        ("snapshotId", "arn:{p}:ec2:{r}:{a}:snapshot/{v}", "ec2:snapshot"),
        ("imageId", "arn:{p}:ec2:{r}:{a}:image/{v}", "ec2:image"),
        ("volumeId", "arn:{p}:ec2:{r}:{a}:volume/{v}", "ec2:volume"),
        ("networkAclId", "arn:{p}:ec2:{r}:{a}:network-acl/{v}", "ec2:network-acl"),
        ("routeTableId", "arn:{p}:ec2:{r}:{a}:route-table/{v}", "ec2:route-table"),
        ("internetGatewayId", "arn:{p}:ec2:{r}:{a}:internet-gateway/{v}", "ec2:internet-gateway"),
        ("vpcId", "arn:{p}:ec2:{r}:{a}:vpc/{v}", "ec2:vpc"),
    ),
    "rds": (
        ("dBInstanceIdentifier", "arn:{p}:rds:{r}:{a}:db:{v}", "rds:db"),
        ("dBClusterIdentifier", "arn:{p}:rds:{r}:{a}:cluster:{v}", "rds:cluster"),
        ("dBSnapshotIdentifier", "arn:{p}:rds:{r}:{a}:snapshot:{v}", "rds:snapshot"),
        (
            "dBClusterSnapshotIdentifier",
            "arn:{p}:rds:{r}:{a}:cluster-snapshot:{v}",
            "rds:cluster-snapshot",
        ),
        ("dBSecurityGroupName", "arn:{p}:rds:{r}:{a}:secgrp:{v}", "rds:secgrp"),
    ),
    "cloudtrail": (
        ("name", "arn:{p}:cloudtrail:{r}:{a}:trail/{v}", "cloudtrail:trail"),
        ("trailName", "arn:{p}:cloudtrail:{r}:{a}:trail/{v}", "cloudtrail:trail"),
    ),
    "ecr": (("repositoryName", "arn:{p}:ecr:{r}:{a}:repository/{v}", "ecr:repository"),),
    "logs": (("logGroupName", "arn:{p}:logs:{r}:{a}:log-group:{v}", "logs:log-group"),),
    "sns": (("topicArn", "{v}", "sns:topic"),),
    "sqs": (("queueUrl", "{v}", "sqs:queue"),),
    "codebuild": (("projectArn", "{v}", "codebuild:project"),),
    "bedrock": (
        ("guardrailIdentifier", "arn:{p}:bedrock:{r}:{a}:guardrail/{v}", "bedrock:guardrail"),
        ("modelId", "arn:{p}:bedrock:{r}::foundation-model/{v}", "bedrock:foundation-model"),
    ),
}


def resource_of(
    service: str, parameters: Any, resources: Any, partition: str, region: str, account: str
) -> tuple[str | None, str | None]:
    """(resource ARN, resource type) of a CloudTrail record, or (None, None)."""
    params = mapping(parameters)
    if service == "s3":
        found = _s3(params, partition)
        if found[0]:
            return found
    for key, template, kind in _TABLE.get(service, ()):
        value = text(first(params.get(key)))
        if value is None and service == "ec2" and key == "instanceId":
            items = mapping(params.get("instancesSet")).get("items")
            value = text(mapping(first(items)).get("instanceId"))
        if value:
            if value.startswith("arn:"):
                return value, kind
            if service == "ssm":
                value = value.removeprefix("/")  # parameter names carry their own slash
            return template.format(p=partition, r=region, a=account, v=value), kind
    listed = mapping(first(resources))
    listed_arn = text(listed.get("ARN") or listed.get("arn"))
    if listed_arn:
        return listed_arn, text(listed.get("type"))
    for key, value in params.items():
        if key.lower().endswith("arn") and isinstance(value, str) and value.startswith("arn:"):
            return value, None
    return None, None


def _s3(params: dict[str, Any], partition: str) -> tuple[str | None, str | None]:
    bucket = text(params.get("bucketName"))
    if bucket is None:
        return None, None
    key = text(params.get("key"))
    if key:
        return f"arn:{partition}:s3:::{bucket}/{key}", "s3:object"
    return f"arn:{partition}:s3:::{bucket}", "s3:bucket"
