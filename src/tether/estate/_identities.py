"""Reader of the ``identities`` section: identities, their workload proof and entitlements.

An identity's ``workload`` is how it proves itself: a SPIFFE ID (SPIFFE-ID.md §2) or an
OIDC ``{issuer, subject}`` pair; or the cloud principal it is, whose audit events are
attributed to it: ``{aws_role: ARN or role name}``, ``{k8s_service_account: ns/name}`` or
``{gcp_service_account: email}``. Two identities may not share a workload: a proof (or a
principal) must name exactly one identity. A cloud identity's entitlements take IAM-style
action patterns (``s3:GetObject``, ``s3:Get*``) and ARN resource patterns
(``arn:aws:s3:::reports/*``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from tether.estate._fields import Fields, expect_list, expect_map, where
from tether.estate._model import IDENTITY_KINDS, Entitlement, Identity, Where
from tether.estate._patterns import ResourcePattern, parse_pattern, text_problem
from tether.estate._sections import MAX_ID, MAX_NAME, LoadContext, read_parents
from tether.estate._spiffe import spiffe_id_problem
from tether.estate._yaml import Node

# Attributes tether sets itself from the identity's fields.
RESERVED_ATTRIBUTES = ("kind", "class", "owner")
# What an identity may be as a caller of tether (`tether.callers.Role`); `workload` is
# implied for any workload that proves itself, so it is not declared.
TETHER_ROLES = ("pep", "ingest", "approver", "auditor", "admin")


def read_identities(node: Node, ctx: LoadContext) -> None:
    for entry in expect_list(node, ctx.problems, "`identities`"):
        if expect_map(entry, ctx.problems, "an `identities` entry"):
            _read_identity(entry, ctx)


def _read_identity(entry: Node, ctx: LoadContext) -> None:
    named = entry.value.get("id")
    label = f"identity `{named.value}`" if named and isinstance(named.value, str) else "an identity"
    fields = Fields(
        entry,
        ctx.problems,
        what=label,
        required=["id", "kind"],
        optional=[
            "class",
            "owner",
            "workload",
            "attributes",
            "parents",
            "entitlements",
            "tether_roles",
        ],
    )
    identity_id = fields.string("id", max_length=MAX_ID)
    if identity_id is not None and (problem := text_problem(identity_id, "identity id")):
        fields.fail("id", problem)
        identity_id = None
    if identity_id is not None and not ctx.claim("identity", identity_id, where(entry)):
        fields.ok = False
    kind = fields.string("kind")
    if kind is not None and kind not in IDENTITY_KINDS:
        fields.fail(
            "kind",
            f"kind `{kind}` is not one of " + ", ".join(f"`{k}`" for k in IDENTITY_KINDS),
        )
        kind = None
    workload_class = _workload_class(fields, ctx, kind)
    owner = fields.string("owner", max_length=MAX_ID)
    workload = _workload(fields, ctx)
    attributes, attribute_lines = fields.attributes("attributes")
    for name in RESERVED_ATTRIBUTES:
        if name in attributes:
            ctx.problems.add(
                attribute_lines[name],
                f"attribute `{name}` is reserved: tether sets it from the identity's `{name}`",
            )
            fields.ok = False
    parents = read_parents(fields)
    entitlements = _entitlements(fields, identity_id or "?")
    tether_roles = _tether_roles(fields)
    if fields.ok and identity_id is not None and kind is not None:
        ctx.identities[identity_id] = Identity(
            id=identity_id,
            kind=kind,
            workload_class=workload_class,
            owner=owner,
            workload=workload,
            attributes=attributes,
            parents=parents,
            entitlements=entitlements,
            where=where(entry),
            attribute_lines=attribute_lines,
            tether_roles=tether_roles,
        )


def _tether_roles(fields: Fields) -> tuple[str, ...]:
    """``tether_roles: [pep]``: what the identity may do as a caller of tether itself."""
    roles: list[str] = []
    for role, item in fields.strings("tether_roles"):
        if role not in TETHER_ROLES:
            fields.problems.add(
                item,
                f"`{role}` is not a tether role (one of "
                + ", ".join(f"`{r}`" for r in TETHER_ROLES)
                + ")",
            )
            fields.ok = False
        elif role not in roles:
            roles.append(role)
    return tuple(sorted(roles))


def _workload_class(fields: Fields, ctx: LoadContext, kind: str | None) -> str | None:
    if not ctx.declared("class"):
        return fields.string("class", max_length=MAX_NAME)
    if not fields.has("class") and kind not in (None, "user"):
        declared = ", ".join(f"`{c}`" for c in sorted(ctx.declared("class")))
        fields.problems.add(fields.node, f"{fields.what} needs a `class` (one of {declared})")
        fields.ok = False
        return None
    return ctx.reference(fields, "class", "class", MAX_NAME)


#: The keys of a cloud principal ``workload`` (DESIGN "Contracts added in December").
CLOUD_PRINCIPALS = ("aws_role", "k8s_service_account", "gcp_service_account")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def cloud_principal_problem(key: str, value: str) -> str | None:
    """Why ``value`` cannot be the ``key`` cloud principal, or ``None``."""
    if key == "aws_role" and not (_ROLE_ARN.match(value) or _ROLE_NAME.match(value)):
        return f"`{value}` is neither an IAM role ARN nor a role name"
    if key == "k8s_service_account" and not _K8S_NAME.match(value):
        return f"`{value}` is not a `namespace/name` service account"
    if key == "gcp_service_account" and not _EMAIL.match(value):
        return f"`{value}` is not a service account email"
    return None


def _cloud_principal(node: Node, fields: Fields, ctx: LoadContext) -> Mapping[str, str] | None:
    keys = [k for k in CLOUD_PRINCIPALS if k in node.value]
    if len(keys) != 1 or len(node.value) != 1:
        fields.fail(
            "workload",
            "a cloud `workload` names exactly one of "
            + ", ".join(f"`{k}`" for k in CLOUD_PRINCIPALS),
        )
        return None
    key = keys[0]
    value = node.value[key].value
    if not isinstance(value, str) or not value:
        fields.fail("workload", f"`{key}` must be a non-empty string")
        return None
    problem = cloud_principal_problem(key, value)
    if problem:
        fields.fail("workload", problem)
        return None
    if not ctx.claim("workload", f"{key} {value}", where(node)):
        fields.ok = False
    return {key: value}


def _workload(fields: Fields, ctx: LoadContext) -> str | Mapping[str, str] | None:
    node = fields.get("workload")
    if node is None:
        return None
    if node.is_map and any(k in node.value for k in CLOUD_PRINCIPALS):
        return _cloud_principal(node, fields, ctx)
    if node.is_map:
        proof = Fields(
            node, ctx.problems, what=f"`workload` of {fields.what}", required=["issuer", "subject"]
        )
        issuer, subject = proof.string("issuer"), proof.string("subject")
        if not proof.ok or issuer is None or subject is None:
            fields.ok = False
            return None
        if not ctx.claim("workload", f"{issuer} {subject}", where(node)):
            fields.ok = False
        return {"issuer": issuer, "subject": subject}
    spiffe_id = fields.string("workload")
    if spiffe_id is None:
        return None
    problem = spiffe_id_problem(spiffe_id)
    if problem:
        fields.fail("workload", f"`{spiffe_id}` is not a SPIFFE ID: {problem}")
        return None
    if not ctx.claim("workload", spiffe_id, where(node)):
        fields.ok = False
    return spiffe_id


def _entitlements(fields: Fields, identity_id: str) -> tuple[Entitlement, ...]:
    node = fields.get("entitlements")
    items = expect_list(node, fields.problems, f"`entitlements` of {fields.what}")
    if node is not None and node.value is not None and not node.is_seq:
        fields.ok = False
    result: list[Entitlement] = []
    for index, entry in enumerate(items, start=1):
        if not expect_map(entry, fields.problems, f"an entitlement of {fields.what}"):
            fields.ok = False
            continue
        grant = Fields(
            entry,
            fields.problems,
            what=f"entitlement {index} of {fields.what}",
            required=["actions", "resources"],
        )
        actions: list[str] = []
        for action, item in grant.strings("actions"):
            problem = text_problem(action, "action")
            if problem:
                grant.problems.add(item, problem)
                grant.ok = False
            elif action == "*":
                grant.problems.add(item, "list the actions explicitly; `*` is not an action")
                grant.ok = False
            elif action not in actions:
                actions.append(action)
        patterns: list[ResourcePattern] = []
        for text, item in grant.strings("resources"):
            pattern = parse_pattern(text)
            if isinstance(pattern, str):
                grant.problems.add(item, pattern)
                grant.ok = False
            elif pattern not in patterns:
                patterns.append(pattern)
        if not grant.ok:
            fields.ok = False
            continue
        at = Where(entry.file, entry.line)
        result.append(Entitlement(identity_id, index, tuple(actions), tuple(patterns), at))
    return tuple(result)
