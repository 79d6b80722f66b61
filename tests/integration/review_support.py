"""An estate of three AWS identities and CloudTrail records of what they did (for review tests).

* ``etl-bot`` reads three report files and writes one (used), deletes one (allowed by AWS,
  outside its entitlement) and is refused a secret (outside, denied); its DynamoDB grant
  is never used.
* ``dashboard`` reads twelve distinct public files (dense: the right-sized policy keeps the
  ``public/*`` pattern); its Lambda grant is never used.
* ``idle-bot`` does nothing: every part of its entitlement is unused.
"""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ACCOUNT = "111122223333"
REGION = "us-east-1"

ESTATE = textwrap.dedent(
    f"""\
    identities:
      - id: etl-bot
        kind: service_account
        owner: team-data
        attributes:
          principals: ["arn:aws:iam::{ACCOUNT}:role/etl"]
        entitlements:
          - actions: ["s3:GetObject", "s3:PutObject"]
            resources: ["arn:aws:s3:::reports/*"]
          - actions: ["dynamodb:GetItem"]
            resources: ["arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/*"]
      - id: dashboard
        kind: service_account
        owner: team-web
        attributes:
          principals: ["arn:aws:iam::{ACCOUNT}:role/dash"]
        entitlements:
          - actions: ["s3:GetObject"]
            resources: ["arn:aws:s3:::public/*"]
          - actions: ["lambda:InvokeFunction"]
            resources: ["arn:aws:lambda:{REGION}:{ACCOUNT}:function:*"]
      - id: idle-bot
        kind: service_account
        owner: team-ops
        attributes:
          principals: ["arn:aws:iam::{ACCOUNT}:role/idle"]
        entitlements:
          - actions: ["ssm:GetParameter"]
            resources: ["arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/*"]
    """
)

# (role, service, event name, request parameters, error code)
Call = tuple[str, str, str, dict[str, Any], str | None]

ETL_READS = ("reports/2026/jan.csv", "reports/2026/feb.csv", "reports/2026/mar.csv")
PUBLIC_FILES = tuple(f"public/page-{n}.html" for n in range(12))

CALLS: list[Call] = [
    *(
        ("etl", "s3", "GetObject", {"bucketName": "reports", "key": key.split("/", 1)[1]}, None)
        for key in ETL_READS
    ),
    ("etl", "s3", "PutObject", {"bucketName": "reports", "key": "2026/out.csv"}, None),
    ("etl", "s3", "DeleteObject", {"bucketName": "reports", "key": "2026/jan.csv"}, None),
    ("etl", "secretsmanager", "GetSecretValue", {"secretId": "prod/db"}, "AccessDenied"),
    *(
        ("dash", "s3", "GetObject", {"bucketName": "public", "key": key.split("/", 1)[1]}, None)
        for key in PUBLIC_FILES
    ),
]


def record(n: int, at: datetime, call: Call) -> dict[str, Any]:
    role, service, name, params, error = call
    found: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{service}.amazonaws.com",
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-sdk-python",
        "requestParameters": params,
        "eventID": f"review-{n}",
        "recipientAccountId": ACCOUNT,
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROA{role.upper()}:session-{n}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/session-{n}",
            "accountId": ACCOUNT,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                    "accountId": ACCOUNT,
                    "userName": role,
                }
            },
        },
    }
    if error:
        found["errorCode"] = error
    return found


def write_cloudtrail(path: Path, *, now: datetime | None = None) -> Path:
    """A CloudTrail log file of :data:`CALLS`, made a day before ``now``."""
    start = (now or datetime.now(UTC)) - timedelta(days=1)
    records = [record(n, start + timedelta(minutes=n), c) for n, c in enumerate(CALLS)]
    path.write_text(json.dumps({"Records": records}))
    return path


def write_estate(folder: Path, *, entitlements: bool = True) -> Path:
    """The estate (without the ``entitlements:`` blocks when ``entitlements`` is false)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = ESTATE
    if not entitlements:
        kept, skipping = [], False
        for line in text.splitlines():
            if line.strip() == "entitlements:":
                skipping = True
                continue
            if skipping and line.startswith("      "):
                continue
            skipping = False
            kept.append(line)
        text = "\n".join(kept) + "\n"
    (folder / "estate.yaml").write_text(text)
    return folder
