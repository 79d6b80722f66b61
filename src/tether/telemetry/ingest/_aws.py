"""AWS principals and outcomes shared by CloudTrail, Bedrock and EKS audit records.

Principals follow the CloudTrail ``userIdentity`` element (AWS CloudTrail User Guide,
"CloudTrail userIdentity element") and IAM ARN formats (IAM User Guide, "IAM
identifiers"). An assumed-role session is keyed by its role,
``arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`` by ``arn:aws:iam::ACCT:role/ROLE``, so
every session of one role is one principal; the session goes in the attributes.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from tether.telemetry.arn import split_arn
from tether.telemetry.ingest._base import attributes, get, mapping, text
from tether.telemetry.model import UNKNOWN_PRINCIPAL, AccessOutcome, PrincipalKind, RawPrincipal

# Error codes that mean "refused because of who asked", not "failed".
_DENIAL = re.compile(
    r"AccessDenied|Unauthorized|Forbidden|NotAuthorized|AuthFailure|InvalidClientTokenId"
    r"|ExpiredToken|RequestExpired|SignatureDoesNotMatch|InvalidAccessKeyId"
    r"|MissingAuthenticationToken|UnrecognizedClient|IncompleteSignature|InvalidToken",
    re.IGNORECASE,
)


# userIdentity JSON -> principal; bounded, cleared when full (cheap and good enough).
_SEEN: dict[bytes, RawPrincipal] = {}
_SEEN_LIMIT = 4096


def outcome_of_error(code: Any) -> AccessOutcome:
    """CloudTrail ``errorCode``: none is allowed, an authorisation failure denied, else error."""
    if not code:
        return AccessOutcome.ALLOWED
    if not isinstance(code, str):
        return AccessOutcome.ERROR
    return AccessOutcome.DENIED if _DENIAL.search(code) else AccessOutcome.ERROR


def principal_from_arn(arn: str, **extra: str | None) -> RawPrincipal:
    """The principal an IAM or STS ARN names (a user, a role session, root, ...)."""
    parsed = split_arn(arn)
    if parsed is None:
        return RawPrincipal(PrincipalKind.AWS_OTHER, arn, arn, attributes(arn=arn, **extra))
    partition, service, _, account, resource = parsed
    kind_name, _, rest = resource.partition("/")
    base = attributes(arn=arn, account_id=account or None, **extra)
    role_name, _, session = rest.partition("/")
    if service in ("sts", "iam") and kind_name == "assumed-role" and role_name:
        role = f"arn:{partition}:iam::{account}:role/{role_name}"
        details = {"role_arn": role, "role_name": role_name, "session_arn": arn}
        base = {**details, **base, **attributes(session_name=session or None)}
        return RawPrincipal(PrincipalKind.AWS_ASSUMED_ROLE, role, role_name, base)
    if service == "iam" and kind_name == "role":
        name = rest.rsplit("/", 1)[-1]
        details = {"role_arn": arn, "role_name": name}
        key = f"arn:{partition}:iam::{account}:role/{name}"
        return RawPrincipal(PrincipalKind.AWS_ASSUMED_ROLE, key, name, {**details, **base})
    if service == "iam" and kind_name == "user":
        name = rest.rsplit("/", 1)[-1]
        return RawPrincipal(PrincipalKind.AWS_IAM_USER, arn, name, {"user_name": name, **base})
    if service == "iam" and resource == "root":
        return RawPrincipal(PrincipalKind.AWS_ROOT, arn, f"root ({account})", base)
    if service == "sts" and kind_name == "federated-user":
        return RawPrincipal(PrincipalKind.AWS_FEDERATED_USER, arn, rest, base)
    return RawPrincipal(PrincipalKind.AWS_OTHER, arn, resource, base)


def principal_of(identity: Any) -> RawPrincipal:
    """:func:`principal_from_user_identity`, remembered: one principal makes many records."""
    if not isinstance(identity, dict):
        return UNKNOWN_PRINCIPAL
    try:
        key = orjson.dumps(identity)
    except TypeError:
        return principal_from_user_identity(identity)
    found = _SEEN.get(key)
    if found is None:
        if len(_SEEN) >= _SEEN_LIMIT:
            _SEEN.clear()
        found = _SEEN[key] = principal_from_user_identity(identity)
    return found


def principal_from_user_identity(identity: Any) -> RawPrincipal:
    """The principal of a CloudTrail ``userIdentity`` element (any subset of its fields)."""
    if not isinstance(identity, dict):
        return UNKNOWN_PRINCIPAL
    kind = text(identity.get("type"))
    arn = text(get(identity, "arn"))
    account = text(get(identity, "accountId"))
    context = mapping(get(identity, "sessionContext"))
    issuer = mapping(context.get("sessionIssuer"))
    extra = attributes(
        principal_id=text(get(identity, "principalId")),
        access_key_id=text(get(identity, "accessKeyId")),
        invoked_by=text(identity.get("invokedBy")),
        mfa=text(mapping(context.get("attributes")).get("mfaAuthenticated")),
        user_type=kind,
    )
    if kind == "AWSService":
        service = text(identity.get("invokedBy")) or "unknown-service"
        return RawPrincipal(PrincipalKind.AWS_SERVICE, service, service, extra)
    if kind == "AWSAccount" and account:
        root = f"arn:aws:iam::{account}:root"
        return RawPrincipal(PrincipalKind.AWS_ACCOUNT, root, f"account {account}", extra)
    if kind == "Root" and not arn and account:
        arn = f"arn:aws:iam::{account}:root"
    if arn:
        principal = principal_from_arn(arn, **extra)
        full_role = text(issuer.get("arn")) or ""
        same_role = full_role.rsplit("/", 1)[-1] == principal.attributes.get("role_name")
        if principal.kind == PrincipalKind.AWS_ASSUMED_ROLE and same_role:
            # The issuer's ARN keeps the role's path, which the session ARN drops.
            principal = RawPrincipal(
                principal.kind,
                principal.key,
                principal.display_name,
                {**principal.attributes, "role_arn": full_role},
            )
        return principal
    issuer_arn = text(issuer.get("arn"))
    if issuer_arn:
        return principal_from_arn(issuer_arn, **extra)
    fallback = extra.get("principal_id") or text(identity.get("userName"))
    if fallback is None:
        return UNKNOWN_PRINCIPAL
    # Test fixtures and some forwarders drop the ARN; keep what there is, unguessed.
    kinds = {
        "IAMUser": PrincipalKind.AWS_IAM_USER,
        "AssumedRole": PrincipalKind.AWS_ASSUMED_ROLE,
        "Root": PrincipalKind.AWS_ROOT,
    }
    details = attributes(account_id=account, user_name=text(identity.get("userName")))
    principal_kind = kinds.get(kind or "", PrincipalKind.AWS_OTHER)
    return RawPrincipal(principal_kind, fallback, fallback, {**extra, **details})
