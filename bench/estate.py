"""The benchmark estate: 200 non-human identities, their entitlements and guardrails.

Built programmatically, rendered once to plain strings (Cedar policy text, entities as
Cedar JSON, a Cedar schema) so that every contender reads exactly the same estate:
tether parses the strings with :func:`tether.policy.parse_policy_file`, cedarpy raw
parses them with ``PolicySet.from_str`` / ``Entities.from_json_str`` / ``Schema.from_str``,
and pycasbin gets an equivalent RBAC model derived from the same grants.

The request mix is fixed: allow, constrain, deny (no permit, guardrail forbid, context
forbid) and approval_required, in the proportions a PEP in front of agents sees.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from tether.callers import add_api_key
from tether.estate import CompiledEstate, ResourceRule
from tether.policy import (
    DecisionRequest,
    EntityRecord,
    EntityRef,
    parse_policy_file,
    validate_against_schema,
)
from tether.store import migrate
from tether.store.engine import open_engine
from tether.store.tables import estate_revisions

# --- what the estate is made of ---------------------------------------------------------

Grant = tuple[tuple[str, ...], tuple[str, ...]]  # (actions, resource patterns)

TEAM_GRANTS: Mapping[str, Sequence[Grant]] = {
    "payments": (
        (("read_invoice", "send_email"), ("invoice:*", "email:*@example.org")),
        (("pay_invoice",), ("payments:*",)),
    ),
    "support": (
        (("read_ticket", "reply_ticket"), ("ticket:*",)),
        (("read_invoice",), ("invoice:*",)),
    ),
    "data": (
        (("read_table",), ("table:*",)),
        (("write_table",), ("table:warehouse_*",)),
    ),
    "platform": (
        (("read_object", "write_object"), ("bucket:artifacts-*",)),
        (("deploy",), ("service:*",)),
    ),
    "sales": (
        (("read_crm", "update_crm"), ("crm:*",)),
        (("send_email",), ("email:*@example.org",)),
    ),
    "security": (
        (("read_secret",), ("secret:*",)),
        (("read_table",), ("table:audit_*",)),
    ),
    "ml": (
        (("read_table",), ("table:features_*",)),
        (("read_object",), ("bucket:datasets-*",)),
    ),
    "finance": (
        (("read_table",), ("table:revenue_daily",)),
        (("read_invoice",), ("invoice:*",)),
    ),
}
TEAMS = tuple(TEAM_GRANTS)
ACTIONS = tuple(sorted({a for grants in TEAM_GRANTS.values() for g in grants for a in g[0]}))
RESOURCE_TYPES = (
    "invoice",
    "payments",
    "email",
    "ticket",
    "secret",
    "crm",
    "service",
    "table",
    "bucket",
)
DATA_CLASSES = {"public": 1, "internal": 2, "confidential": 3, "restricted": 4}
SENSITIVITY = (  # most specific first only for readability: the classifier sorts by level
    ("payments:*", "restricted"),
    ("secret:*", "restricted"),
    ("invoice:*", "confidential"),
    ("crm:*", "confidential"),
    ("table:customers*", "confidential"),
    ("bucket:datasets-*", "confidential"),
    ("table:*", "internal"),
    ("bucket:*", "internal"),
    ("email:*", "internal"),
    ("ticket:*", "internal"),
    ("service:*", "internal"),
)
TABLES = (
    ("warehouse_orders", "data", "prod"),
    ("warehouse_events", "data", "prod"),
    ("customers_eu", "data", "prod"),
    ("customers_us", "data", "prod"),
    ("features_clicks", "ml", "prod"),
    ("features_sandbox", "ml", "dev"),
    ("audit_logins", "security", "prod"),
    ("revenue_daily", "finance", "prod"),
)

GUARDRAILS = """\
// Guardrails: forbids win over entitlements; annotations choose tether's outcome.

// Moving money is high impact: an agent may do it only after a human approves.
@id("payments-need-approval")
@outcome("approval_required")
forbid (principal is agent, action == Action::"pay_invoice", resource)
when { context.tether.sensitivity >= 4 };

// No agent reads secrets, whatever its entitlement says.
@id("agents-never-read-secrets")
forbid (principal is agent, action, resource is secret);

// Long tool chains are where prompt injection turns into damage: a human looks first.
@id("deep-tool-chains-need-approval")
@outcome("approval_required")
forbid (principal is agent, action, resource)
when { context has chain_depth && context.chain_depth > 3 };

// Batch jobs write to the warehouse in dev only; prod writes go through the release job.
@id("no-batch-writes-in-prod")
forbid (principal is service_account, action == Action::"write_table", resource)
when { principal.class == "batch" && context has environment && context.environment == "prod" };

// Model training reads sandbox copies, never production tables.
@id("ml-reads-no-prod-tables")
forbid (principal in team::"ml", action == Action::"read_table", resource is table)
when { resource has env && resource.env == "prod" };

// Support sees invoices with bank details redacted, a page at a time.
@id("support-invoices-redacted")
@outcome("constrain")
@obligations("redact=iban; max_rows=100")
permit (principal in team::"support", action == Action::"read_invoice", resource is invoice);

// Confidential tables are read-only and capped for the data team's jobs.
@id("confidential-tables-capped")
@outcome("constrain")
@obligations("max_rows=1000; read_only=true")
permit (principal in team::"data", action == Action::"read_table", resource is table)
when { context.tether.sensitivity >= 3 };
"""


@dataclass(frozen=True)
class BenchIdentity:
    id: str
    kind: str  # agent | service_account
    team: str
    workload_class: str
    grants: tuple[Grant, ...]

    @property
    def ref(self) -> EntityRef:
        return EntityRef(self.kind, self.id)


@dataclass(frozen=True)
class BenchRequest:
    """One request of the mix, with the outcome tether must give it."""

    expected: str
    subject: EntityRef
    action: str
    resource: EntityRef
    context: Mapping[str, Any] = field(default_factory=dict)

    def decision_request(self) -> DecisionRequest:
        return DecisionRequest(self.subject, self.action, self.resource, dict(self.context))

    def authzen_body(self) -> dict[str, Any]:
        return {
            "subject": {"type": self.subject.type, "id": self.subject.id},
            "action": {"name": self.action},
            "resource": {"type": self.resource.type, "id": self.resource.id},
            "context": dict(self.context),
        }


@dataclass(frozen=True)
class BenchEstate:
    """The estate as plain strings (what cedarpy raw reads) and as tether's compiled form."""

    identities: tuple[BenchIdentity, ...]
    policy_text: str
    entities_json: str
    schema_text: str
    compiled: CompiledEstate
    requests: tuple[BenchRequest, ...]

    @property
    def policy_count(self) -> int:
        return len(self.compiled.policies)

    @property
    def entity_count(self) -> int:
        return len(self.compiled.entities)

    def cedar_request(self, request: BenchRequest) -> dict[str, Any]:
        """The Cedar request tether builds for ``request`` (its context included)."""
        data_class, level = self.compiled.classifier().classify(request.resource)
        tether_context: dict[str, Any] = {
            "subject_id": request.subject.id,
            "resource_id": request.resource.id,
            "sensitivity": level,
        }
        if data_class is not None:
            tether_context["data_class"] = data_class
        return {
            "principal": {"type": request.subject.type, "id": request.subject.id},
            "action": {"type": "Action", "id": request.action},
            "resource": {"type": request.resource.type, "id": request.resource.id},
            "context": {**request.context, "action": {}, "tether": tether_context},
        }


# --- building it ---------------------------------------------------------------------------


def _identities(count: int) -> tuple[BenchIdentity, ...]:
    found: list[BenchIdentity] = []
    for n in range(count):
        team = TEAMS[n % len(TEAMS)]
        kind = "agent" if (n // len(TEAMS)) % 2 == 0 else "service_account"
        workload_class = "agent" if kind == "agent" else "batch" if team == "data" else "service"
        prefix = "agent" if kind == "agent" else "svc"
        grants = tuple(TEAM_GRANTS[team])
        if n % 4 == 0:  # a personal grant on one ticket: every estate has one-offs
            grants += ((("read_ticket",), (f"ticket:T-{1000 + n}",)),)
        found.append(BenchIdentity(f"{team}-{prefix}-{n:03d}", kind, team, workload_class, grants))
    return tuple(found)


def _cedar_string(value: str) -> str:
    return json.dumps(value)  # the ids here are plain ASCII: JSON quoting is Cedar quoting


def _condition(pattern: str) -> str | None:
    """Cedar for a ``type:id-glob`` pattern, as `tether apply` compiles it."""
    if pattern == "*":
        return None
    resource_type, _, glob = pattern.partition(":")
    if glob == "*":
        return f"resource is {resource_type}"
    if "*" not in glob:
        return f"resource == {resource_type}::{_cedar_string(glob)}"
    return f"resource is {resource_type} && context.tether.resource_id like {_cedar_string(glob)}"


def _entitlement_text(identity: BenchIdentity, index: int, grant: Grant) -> str:
    actions, patterns = grant
    listed = ", ".join(f"Action::{_cedar_string(a)}" for a in actions)
    head = (
        f"@id({_cedar_string(f'entitlement:{identity.id}:{index}')})\n"
        f"permit (principal == {identity.kind}::{_cedar_string(identity.id)}, "
        f"action in [{listed}], resource)"
    )
    conditions = [_condition(p) for p in patterns]
    if any(c is None for c in conditions):
        return head + ";"
    if len(conditions) == 1:
        return f"{head}\nwhen {{ {conditions[0]} }};"
    return f"{head}\nwhen {{ " + " || ".join(f"({c})" for c in conditions) + " };"


def _entities(identities: Sequence[BenchIdentity]) -> list[EntityRecord]:
    records = [EntityRecord("team", team, {}) for team in TEAMS]
    for identity in identities:
        attrs = {"kind": identity.kind, "class": identity.workload_class, "owner": identity.team}
        records.append(
            EntityRecord(identity.kind, identity.id, attrs, (EntityRef("team", identity.team),))
        )
    for name, owner, env in TABLES:
        records.append(EntityRecord("table", name, {"owner": owner, "env": env}))
    for n in range(40):  # the long tail of tables nobody's requests touch
        records.append(EntityRecord("table", f"staging_{n:02d}", {"owner": "data", "env": "dev"}))
    for prefix, owner in (("artifacts", "platform"), ("datasets", "ml")):
        for n in range(10):
            records.append(
                EntityRecord("bucket", f"{prefix}-{2020 + n}", {"owner": owner, "env": "prod"})
            )
    return records


def _schema() -> str:
    kinds = "agent, service_account"
    resources = ", ".join(RESOURCE_TYPES)
    actions = ", ".join(_cedar_string(a) for a in ACTIONS)
    others = ", ".join(t for t in RESOURCE_TYPES if t not in ("table", "bucket"))
    return f"""\
entity team;
entity agent in [team] {{ kind: String, class: String, owner: String }};
entity service_account in [team] {{ kind: String, class: String, owner: String }};
entity table, bucket {{ owner: String, env: String }};
entity {others};
type TetherContext = {{
  subject_id: String, resource_id: String, sensitivity: Long, data_class?: String
}};
type RequestContext = {{
  action: {{}}, tether: TetherContext, environment?: String, chain_depth?: Long
}};
action {actions} appliesTo {{
  principal: [{kinds}], resource: [{resources}], context: RequestContext
}};
"""


def _member(identities: Sequence[BenchIdentity], team: str, kind: str, nth: int = 0) -> EntityRef:
    matches = [i for i in identities if i.team == team and i.kind == kind]
    return matches[nth % len(matches)].ref


def _requests(ids: Sequence[BenchIdentity]) -> tuple[BenchRequest, ...]:
    prod = {"environment": "prod", "chain_depth": 1}
    dev = {"environment": "dev", "chain_depth": 1}
    deep = {"environment": "prod", "chain_depth": 5}

    def req(
        expected: str, who: EntityRef, action: str, resource: str, ctx: Mapping[str, Any]
    ) -> BenchRequest:
        rtype, _, rid = resource.partition(":")
        return BenchRequest(expected, who, action, EntityRef(rtype, rid), ctx)

    pay_a, pay_a2 = _member(ids, "payments", "agent"), _member(ids, "payments", "agent", 3)
    sup_a = _member(ids, "support", "agent", 1)
    data_s = _member(ids, "data", "service_account")
    data_s2 = _member(ids, "data", "service_account", 2)
    plat_a = _member(ids, "platform", "agent", 2)
    plat_s = _member(ids, "platform", "service_account")
    sales_a, sales_a2 = _member(ids, "sales", "agent", 4), _member(ids, "sales", "agent", 5)
    sec_a, sec_s = _member(ids, "security", "agent"), _member(ids, "security", "service_account")
    ml_a, ml_s = _member(ids, "ml", "agent"), _member(ids, "ml", "service_account")
    fin_s = _member(ids, "finance", "service_account", 1)
    return (
        req("allow", pay_a, "read_invoice", "invoice:INV-1001", prod),
        req("allow", pay_a2, "send_email", "email:cfo@example.org", prod),
        req("constrain", sup_a, "read_invoice", "invoice:INV-2002", prod),
        req("allow", sup_a, "read_ticket", "ticket:T-5511", prod),
        req("allow", data_s, "read_table", "table:warehouse_orders", prod),
        req("constrain", data_s2, "read_table", "table:customers_eu", prod),
        req("allow", data_s, "write_table", "table:warehouse_events", dev),
        req("deny", data_s2, "write_table", "table:warehouse_events", prod),
        req("allow", plat_a, "read_object", "bucket:artifacts-2024", prod),
        req("allow", plat_s, "deploy", "service:checkout", prod),
        req("allow", sales_a, "update_crm", "crm:acct-77", prod),
        req("deny", sales_a2, "read_table", "table:revenue_daily", prod),
        req("deny", sec_a, "read_secret", "secret:db-root", prod),
        req("allow", sec_s, "read_secret", "secret:db-root", prod),
        req("approval_required", pay_a, "pay_invoice", "payments:pay-9001", prod),
        req("deny", sup_a, "pay_invoice", "payments:pay-9001", prod),
        req("deny", ml_a, "read_table", "table:features_clicks", prod),
        req("allow", ml_s, "read_object", "bucket:datasets-2024", prod),
        req("approval_required", pay_a2, "send_email", "email:ops@example.org", deep),
        req("allow", fin_s, "read_table", "table:revenue_daily", prod),
    )


def build_estate(identity_count: int = 200) -> BenchEstate:
    """Build the estate: strings for every contender and tether's :class:`CompiledEstate`."""
    identities = _identities(identity_count)
    entitlement_texts = [
        _entitlement_text(identity, index, grant)
        for identity in identities
        for index, grant in enumerate(identity.grants, start=1)
    ]
    policy_text = "\n".join(
        [GUARDRAILS, "// Entitlements, compiled to permits.", *entitlement_texts, ""]
    )
    specs, problems = parse_policy_file("estate.cedar", policy_text)
    if problems:
        raise ValueError(f"the bench estate does not parse: {problems}")
    schema_text = _schema()
    invalid = validate_against_schema(specs, schema_text, schema_file="schema.cedarschema")
    if invalid:
        raise ValueError(f"the bench estate does not validate: {invalid[:3]}")
    records = _entities(identities)
    rules = [ResourceRule(p, c, DATA_CLASSES[c]) for p, c in SENSITIVITY]
    compiled = CompiledEstate(
        policies=tuple(specs),
        entities=tuple(records),
        schema_text=schema_text,
        resource_rules=tuple(rules),
        classes={
            "agent": {"mode": "enforce"},
            "service": {"mode": "monitor"},
            "batch": {"mode": "monitor"},
        },
    )
    return BenchEstate(
        identities=identities,
        policy_text=policy_text,
        entities_json=json.dumps([r.to_cedar() for r in records]),
        schema_text=schema_text,
        compiled=compiled,
        requests=_requests(identities),
    )


def install_estate(database_url: str, estate: BenchEstate) -> str:
    """Migrate a store, record the estate as its newest revision (what a server loads),
    and return a PEP API key: the AuthZEN endpoints answer authenticated callers only."""
    engine = open_engine(database_url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as connection:
            connection.execute(
                insert(estate_revisions).values(
                    digest="bench",
                    applied_at=datetime.now(UTC),
                    applied_by="bench",
                    source="bench/estate.py",
                    summary={"policies": estate.policy_count, "entities": estate.entity_count},
                    bundle=estate.compiled.to_bundle(),
                )
            )
        return add_api_key(engine, "bench-pep", actor="bench").key
    finally:
        engine.dispose()
