"""Amazon Resource Names (AWS General Reference, "Amazon Resource Names (ARNs)").

``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE``; only what telemetry needs: splitting,
and the role behind an STS assumed-role session.
"""

from __future__ import annotations


def split_arn(arn: str) -> tuple[str, str, str, str, str] | None:
    """(partition, service, region, account, resource) of an ARN, or None."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return parts[1], parts[2], parts[3], parts[4], parts[5]


def role_of_session(session_arn: str) -> str | None:
    """``arn:P:iam::ACCT:role/ROLE`` for ``arn:P:sts::ACCT:assumed-role/ROLE/SESSION``."""
    parsed = split_arn(session_arn)
    if parsed is None or parsed[1] != "sts" or not parsed[4].startswith("assumed-role/"):
        return None
    pieces = parsed[4].split("/")
    if len(pieces) < 3 or not pieces[1]:
        return None
    return f"arn:{parsed[0]}:iam::{parsed[3]}:role/{pieces[1]}"


def role_identity(role_arn: str) -> tuple[str, str] | None:
    """(account, role name) of a role ARN, whatever its path; None if not a role ARN."""
    parsed = split_arn(role_arn)
    if parsed is None or parsed[1] != "iam" or not parsed[4].startswith("role/"):
        return None
    name = parsed[4].rsplit("/", 1)[-1]
    return (parsed[3], name) if name else None
