"""Compiling estates: entitlements as Cedar permits, entities, the schema, resource rules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tether.errors import EstateInvalid, EstateProblem
from tether.estate import CompiledEstate, compile_estate, load_estate
from tether.policy import Decision, DecisionRequest, EntityRef, Outcome

EstateFactory = Callable[..., Path]


def compiled_from(directory: Path) -> CompiledEstate:
    return compile_estate(load_estate(directory))


def decide(
    compiled: CompiledEstate,
    subject: str,
    action: str,
    resource: str,
    **properties: Any,
) -> Decision:
    """Decide as the server does: tether's context comes from the resource classifier."""
    sub = EntityRef(*subject.split(":", 1))
    res = EntityRef(*resource.split(":", 1))
    data_class, level = compiled.classifier().classify(res)
    context: dict[str, Any] = {"subject_id": sub.id, "resource_id": res.id, "sensitivity": level}
    if data_class:
        context["data_class"] = data_class
    request = DecisionRequest(sub, action, res, resource_properties=properties)
    return compiled.engine().decide(request, context)


def compile_problems(directory: Path) -> list[EstateProblem]:
    estate = load_estate(directory)
    with pytest.raises(EstateInvalid) as caught:
        compile_estate(estate)
    return caught.value.problems


@pytest.mark.parametrize(
    ("subject", "action", "resource", "outcome"),
    [
        ("agent:billing-bot", "read_invoice", "invoice:inv-1", Outcome.ALLOW),
        ("agent:billing-bot", "send_email", "email:cfo@example.org", Outcome.ALLOW),
        ("agent:billing-bot", "send_email", "email:cfo@example.org.evil.com", Outcome.DENY),
        ("agent:billing-bot", "send_email", "email:cfo@evil.com", Outcome.DENY),
        ("agent:billing-bot", "send_email", "invoice:inv-1", Outcome.ALLOW),  # both actions
        ("agent:billing-bot", "delete_invoice", "invoice:inv-1", Outcome.DENY),
        ("agent:billing-bot", "read_invoice", "payments:p-1", Outcome.DENY),
        ("agent:billing-bot", "read_invoice", "secret:s", Outcome.DENY),
        ("agent:other-bot", "read_invoice", "invoice:inv-1", Outcome.DENY),
        ("service_account:nightly-etl", "read_table", "table:any", Outcome.ALLOW),
        ("agent:nightly-etl", "read_table", "table:any", Outcome.DENY),  # kind is part of it
    ],
)
def test_entitlements_decide(
    make_estate: EstateFactory, subject: str, action: str, resource: str, outcome: Outcome
) -> None:
    assert decide(compiled_from(make_estate()), subject, action, resource).outcome is outcome


def test_entitlement_policy_has_a_stable_id_and_its_yaml_location(
    make_estate: EstateFactory,
) -> None:
    directory = make_estate()
    compiled = compiled_from(directory)
    grants = {p.id: p for p in compiled.policies if p.id.startswith("entitlement:")}
    assert set(grants) == {"entitlement:billing-bot:1", "entitlement:nightly-etl:1"}
    lines = (directory / "estate.yaml").read_text().splitlines()
    grant = grants["entitlement:billing-bot:1"]
    assert grant.file == "estate.yaml"
    assert "actions: [read_invoice, send_email]" in lines[grant.line - 1]
    reasons = decide(compiled, "agent:billing-bot", "read_invoice", "invoice:1").reasons
    assert reasons == ("entitlement:billing-bot:1",)


def test_exact_and_star_patterns(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                identities:
                  - id: key
                    kind: api_key
                    class: batch
                    entitlements:
                      - {actions: [read_table], resources: ["table:revenue_daily"]}
                      - {actions: [ping], resources: ["*"]}
                """
        }
    )
    compiled = compiled_from(directory)
    assert decide(compiled, "api_key:key", "read_table", "table:revenue_daily").permits
    assert not decide(compiled, "api_key:key", "read_table", "table:revenue_daily2").permits
    assert decide(compiled, "api_key:key", "ping", "anything:at-all").permits


def test_ids_with_cedar_specials_are_escaped(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": r"""
                identities:
                  - id: 'weird "bot" \ 1'
                    kind: agent
                    class: agent
                    entitlements:
                      - {actions: ['say "hi"'], resources: ['doc:a"b\*c*']}
                """
        }
    )
    compiled = compiled_from(directory)
    subject = 'agent:weird "bot" \\ 1'
    assert decide(compiled, subject, 'say "hi"', 'doc:a"b\\*c-and-more').permits
    assert decide(compiled, subject, 'say "hi"', 'doc:a"b\\*c').permits
    assert not decide(compiled, subject, 'say "hi"', 'doc:a"b*c').permits  # `\` is literal


def test_guardrail_forbid_wins_over_an_entitlement(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                identities:
                  - id: snoop
                    kind: agent
                    class: agent
                    entitlements:
                      - {actions: [read], resources: ["secret:*"]}
                """
        }
    )
    result = decide(compiled_from(directory), "agent:snoop", "read", "secret:db")
    assert result.outcome is Outcome.DENY
    assert result.reasons == ("agents-never-read-secrets",)


def test_sensitivity_reaches_policies(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "policies/approval.cedar": """\
                @id("money-needs-approval")
                @outcome("approval_required")
                forbid (principal is agent, action, resource)
                when { context.tether.sensitivity >= 4 };
                """,
            "more.yaml": """\
                identities:
                  - id: payer
                    kind: agent
                    class: agent
                    entitlements:
                      - {actions: [pay], resources: ["payments:*", "invoice:*"]}
                """,
        }
    )
    compiled = compiled_from(directory)
    assert decide(compiled, "agent:payer", "pay", "payments:1").outcome is Outcome.APPROVAL_REQUIRED
    assert decide(compiled, "agent:payer", "pay", "invoice:1").outcome is Outcome.ALLOW


def test_entities_carry_estate_attributes_and_parents(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                identities:
                  - id: alice
                    kind: user
                    owner: security
                    attributes: {roles: [admin], email: alice@example.org}
                    parents: ["team:payments"]
                  - id: bob
                    kind: user
                resources:
                  - {type: record, id: r1, attributes: {owner: alice}, parents: ["folder:f1"]}
                """,
            "policies/todo.cedar": """\
                @id("admins-do-anything-to-records")
                permit (principal is user, action == Action::"delete", resource is record)
                when { principal has roles && principal.roles.contains("admin") };

                @id("team-reads-folder")
                permit (
                  principal in team::"payments", action == Action::"read", resource in folder::"f1"
                );

                @id("owners-edit")
                permit (principal is user, action == Action::"edit", resource is record)
                when { resource has owner && resource.owner == context.tether.subject_id };
                """,
        }
    )
    compiled = compiled_from(directory)
    engine = compiled.engine()
    alice = engine.entity(EntityRef("user", "alice"))
    assert alice is not None
    assert alice.attrs == {
        "kind": "user",
        "owner": "security",
        "roles": ["admin"],
        "email": "alice@example.org",
    }
    assert decide(compiled, "user:alice", "delete", "record:r1").permits
    assert not decide(compiled, "user:bob", "delete", "record:r1").permits
    assert decide(compiled, "user:alice", "read", "record:r1").permits
    assert not decide(compiled, "user:bob", "read", "record:r1").permits
    assert decide(compiled, "user:alice", "edit", "record:r1").permits
    assert not decide(compiled, "user:bob", "edit", "record:r1").permits


def test_generated_schema(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                identities:
                  - {id: a, kind: user, attributes: {roles: [x], level: 3, meta: {on: true}}}
                  - {id: b, kind: user, attributes: {level: 1, meta: {on: false, n: 2}}}
                """,
        }
    )
    schema = compiled_from(directory).schema_text
    assert schema is not None
    assert (
        'entity user = { "kind": String, "level": Long, '
        '"meta": { "n"?: Long, "on": Bool }, "roles"?: Set<String> };'
    ) in schema
    assert "entity secret;" in schema  # named by a policy's `is` test
    assert "entity invoice;" in schema  # named by an entitlement pattern
    assert 'action "read_invoice" appliesTo' in schema
    assert '"data_class"?: String' in schema


def test_attribute_type_conflict_names_both_places(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                identities:
                  - {id: a, kind: user, attributes: {level: 3}}
                  - {id: b, kind: user, attributes: {level: high}}
                """,
        }
    )
    [problem] = compile_problems(directory)
    assert problem.file == str(directory / "more.yaml")
    assert problem.line == 3
    assert "`String` here but `Long` at more.yaml:2" in problem.message
    assert "schema.cedarschema" in problem.message


def test_policy_failing_the_generated_schema(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "policies/bad.cedar": """\
                // reads an attribute no agent has
                permit (principal is agent, action, resource)
                when { principal.department == "finance" };
                """
        }
    )
    [problem] = compile_problems(directory)
    assert problem.file == str(directory / "policies/bad.cedar")
    assert problem.line == 2
    assert "schema validation" in problem.message
    assert "department" in problem.message
    assert "`schema.cedarschema`" in problem.message


def test_written_schema_is_used_and_enforced(make_estate: EstateFactory) -> None:
    schema = """\
        entity agent = { "kind": String, "class"?: String, "owner"?: String };
        entity service_account = { "kind": String, "class"?: String, "owner"?: String };
        entity invoice, email, table, secret, payments;
        action "read_invoice", "send_email", "read_table"
          appliesTo { principal: [agent, service_account],
                      resource: [invoice, email, table, secret],
                      context: { "action": {}, "tether": { "subject_id": String,
                      "resource_id": String, "sensitivity": Long, "data_class"?: String } } };
        """
    directory = make_estate({"schema.cedarschema": schema})
    compiled = compiled_from(directory)
    assert compiled.schema_text is not None
    assert compiled.schema_text.startswith("entity agent")

    broken = make_estate(
        {
            "schema.cedarschema": schema,
            "more.yaml": """\
                identities:
                  - id: x
                    kind: agent
                    class: agent
                    entitlements:
                      - {actions: [not_in_schema], resources: ["invoice:*"]}
                """,
        }
    )
    problems = compile_problems(broken)
    assert {(p.file, p.line) for p in problems} == {(str(broken / "more.yaml"), 6)}
    assert 'unrecognized action `Action::"not_in_schema"`' in problems[0].message
    assert "entitlement:x:1" in problems[0].message


def test_resource_rules_and_declared_data_classes(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                resources:
                  - {pattern: "table:customers*", data_class: confidential}
                  - {type: table, id: "odd*name", data_class: restricted}
                """
        }
    )
    classifier = compiled_from(directory).classifier()
    assert classifier.classify(EntityRef("payments", "p1")) == ("restricted", 4)
    assert classifier.classify(EntityRef("table", "customers_eu")) == ("confidential", 3)
    assert classifier.classify(EntityRef("table", "odd*name")) == ("restricted", 4)
    assert classifier.classify(EntityRef("table", "odd-other-name")) == (None, 0)
    assert classifier.classify(EntityRef("ticket", "t")) == (None, 0)


def test_bundle_round_trip_decides_the_same(make_estate: EstateFactory) -> None:
    compiled = compiled_from(make_estate())
    again = CompiledEstate.from_bundle(compiled.to_bundle())
    for resource in ("email:a@example.org", "email:a@evil.org", "invoice:1"):
        assert decide(compiled, "agent:billing-bot", "send_email", resource) == decide(
            again, "agent:billing-bot", "send_email", resource
        )
    assert again.classes == compiled.classes


def test_identity_and_resource_cannot_be_one_entity(make_estate: EstateFactory) -> None:
    directory = make_estate({"more.yaml": "resources:\n  - {type: agent, id: billing-bot}\n"})
    [problem] = compile_problems(directory)
    assert problem.line == 2
    assert "also the identity declared at estate.yaml:" in problem.message
