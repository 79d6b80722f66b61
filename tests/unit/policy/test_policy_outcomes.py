"""Outcomes from annotations, their precedence, and fail-closed evaluation."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.policy import (
    NO_PERMIT,
    Decision,
    DecisionRequest,
    EntityRef,
    Outcome,
    PolicyEngine,
    PolicyInvalid,
    parse_policy_file,
)

ALICE = EntityRef("User", "alice")
DOC = EntityRef("Doc", "d1")


def engine(text: str) -> PolicyEngine:
    specs, problems = parse_policy_file("test.cedar", text)
    assert problems == []
    return PolicyEngine(specs)


def decide(text: str, action: str = "read", **context: object) -> Decision:
    return engine(text).decide(DecisionRequest(ALICE, action, DOC, context))


ALLOW = '@id("allow") permit(principal, action, resource);'
CONSTRAIN_ROWS = (
    '@id("rows") @outcome("constrain") @obligations("max_rows=100; read_only=true")\n'
    "permit(principal, action, resource);"
)
CONSTRAIN_REDACT = (
    '@id("redact") @outcome("constrain") @obligations("max_rows=500; redact=ssn")\n'
    "permit(principal, action, resource);"
)
APPROVAL_PERMIT = (
    '@id("approve-permit") @outcome("approval_required") permit(principal, action, resource);'
)
APPROVAL_FORBID = (
    '@id("approve-forbid") @outcome("approval_required") forbid(principal, action, resource);'
)
DENY = '@id("deny") forbid(principal, action, resource);'


def test_plain_permit_allows_and_names_the_policy() -> None:
    decision = decide(ALLOW)
    assert decision == Decision(Outcome.ALLOW, ("allow",))
    assert decision.permits


def test_no_matching_permit_is_a_deny() -> None:
    decision = decide('permit(principal, action == Action::"write", resource);')
    assert decision.outcome is Outcome.DENY
    assert decision.reasons == (NO_PERMIT,)
    assert not decision.permits


def test_reason_without_id_annotation_is_file_and_position() -> None:
    decision = decide(
        'permit(principal, action == Action::"x", resource);\n' + ALLOW.split(")", 1)[1]
    )
    assert decision.reasons == ("test.cedar#2",)


def test_constrain_carries_its_obligations() -> None:
    decision = decide(CONSTRAIN_ROWS)
    assert decision.outcome is Outcome.CONSTRAIN
    assert decision.permits
    assert decision.reasons == ("rows",)
    assert dict(decision.obligations) == {"max_rows": "100", "read_only": "true"}


def test_two_constrain_policies_merge_obligations_stricter_wins() -> None:
    decision = decide(CONSTRAIN_ROWS + "\n" + CONSTRAIN_REDACT)
    assert decision.outcome is Outcome.CONSTRAIN
    assert set(decision.reasons) == {"rows", "redact"}
    assert dict(decision.obligations) == {"max_rows": "100", "read_only": "true", "redact": "ssn"}


def test_constrain_beats_plain_allow_and_keeps_only_constraining_obligations() -> None:
    decision = decide(ALLOW + "\n" + CONSTRAIN_REDACT)
    assert decision.outcome is Outcome.CONSTRAIN
    assert set(decision.reasons) == {"allow", "redact"}
    assert dict(decision.obligations) == {"max_rows": "500", "redact": "ssn"}


def test_approval_required_on_a_permit() -> None:
    decision = decide(APPROVAL_PERMIT)
    assert decision.outcome is Outcome.APPROVAL_REQUIRED
    assert not decision.permits
    assert decision.reasons == ("approve-permit",)
    assert dict(decision.obligations) == {}


def test_approval_required_on_a_forbid_of_a_permitted_request() -> None:
    decision = decide(ALLOW + "\n" + APPROVAL_FORBID)
    assert decision.outcome is Outcome.APPROVAL_REQUIRED
    assert not decision.permits
    assert "approve-forbid" in decision.reasons


def test_approval_forbid_alone_does_not_offer_approval_for_an_unentitled_request() -> None:
    # Approving would not help: nothing permits the request, so the answer is a deny,
    # not an approval ticket for something the identity is not entitled to do.
    decision = decide(APPROVAL_FORBID + '\npermit(principal, action == Action::"other", resource);')
    assert decision.outcome is Outcome.DENY
    assert NO_PERMIT in decision.reasons


def test_approval_forbid_with_an_erroring_permit_fails_closed() -> None:
    decision = decide(
        APPROVAL_FORBID
        + '\n@id("broken") permit(principal, action, resource) when { context.nope == 1 };'
    )
    assert decision.outcome is Outcome.DENY


def test_plain_forbid_beats_approval_forbid() -> None:
    decision = decide(ALLOW + "\n" + APPROVAL_FORBID + "\n" + DENY)
    assert decision.outcome is Outcome.DENY
    assert "deny" in decision.reasons


def test_forbid_reasons_name_only_determining_forbids() -> None:
    decision = decide(
        ALLOW + "\n" + DENY + '\n@id("other") forbid(principal, action == Action::"x", resource);'
    )
    assert decision.reasons == ("deny",)


# Every combination of matching policies: the outcome is the highest-precedence one
# (deny > approval_required > constrain > allow), and deny when nothing permits.
POLICIES = {
    "allow": (ALLOW, Outcome.ALLOW),
    "constrain": (CONSTRAIN_ROWS, Outcome.CONSTRAIN),
    "approve-permit": (APPROVAL_PERMIT, Outcome.APPROVAL_REQUIRED),
    "approve-forbid": (APPROVAL_FORBID, Outcome.APPROVAL_REQUIRED),
    "deny": (DENY, Outcome.DENY),
}
COMBINATIONS = [
    combo
    for size in range(1, len(POLICIES) + 1)
    for combo in itertools.combinations(POLICIES, size)
]


def _expected(combo: tuple[str, ...]) -> Outcome:
    if not set(combo) & {"allow", "constrain", "approve-permit"}:
        return Outcome.DENY
    return max((POLICIES[name][1] for name in combo), key=lambda o: o.precedence)


@pytest.mark.parametrize("combo", COMBINATIONS, ids="+".join)
def test_precedence_over_every_combination(combo: tuple[str, ...]) -> None:
    decision = decide("\n".join(POLICIES[name][0] for name in combo))
    assert decision.outcome is _expected(combo)
    assert decision.permits is (decision.outcome in (Outcome.ALLOW, Outcome.CONSTRAIN))
    # A constrain permit's obligations come with constrain, and with approval_required
    # (what the approved retry must still enforce); never with allow or deny.
    assert bool(decision.obligations) is (
        decision.outcome is Outcome.CONSTRAIN
        or (decision.outcome is Outcome.APPROVAL_REQUIRED and "constrain" in combo)
    )


def test_precedence_order_is_the_documented_one() -> None:
    ranked = sorted(Outcome, key=lambda o: o.precedence)
    assert ranked == [Outcome.ALLOW, Outcome.CONSTRAIN, Outcome.APPROVAL_REQUIRED, Outcome.DENY]


# --- fail closed -------------------------------------------------------------------------


def test_erroring_permit_next_to_a_satisfied_permit_denies_with_the_error() -> None:
    decision = decide(
        '@id("broken") permit(principal, action, resource) when { context.missing == 1 };\n' + ALLOW
    )
    assert decision.outcome is Outcome.DENY
    assert not decision.permits
    assert "evaluation-error" in decision.reasons
    assert len(decision.errors) == 1
    assert "`broken`" in decision.errors[0]
    assert "missing" in decision.errors[0]


def test_erroring_forbid_next_to_a_satisfied_permit_denies() -> None:
    # Cedar skips an erroring forbid and allows; tether must not.
    decision = decide(
        '@id("guard") forbid(principal, action, resource) when { context.amount > 10 };\n' + ALLOW
    )
    assert decision.outcome is Outcome.DENY
    assert "`guard`" in decision.errors[0]


def test_erroring_policy_that_does_not_apply_is_harmless() -> None:
    decision = decide(
        '@id("broken") permit(principal, action == Action::"x", resource) '
        "when { context.missing == 1 };\n" + ALLOW
    )
    assert decision.outcome is Outcome.ALLOW


def test_type_error_in_context_comparison_denies() -> None:
    decision = decide(
        '@id("limit") permit(principal, action, resource) when { context.amount < 10 };',
        amount="lots",
    )
    assert decision.outcome is Outcome.DENY
    assert decision.errors


@pytest.mark.parametrize(
    "bad_type",
    ["", "not a type", "1User", "User-Agent", "User::", "::User", "a:b", "User.x", "Üser"],
)
@pytest.mark.parametrize("where", ["subject", "resource"])
def test_invalid_entity_type_names_deny(bad_type: str, where: str) -> None:
    subject = EntityRef(bad_type, "x") if where == "subject" else ALICE
    resource = EntityRef(bad_type, "x") if where == "resource" else DOC
    decision = engine(ALLOW).decide(DecisionRequest(subject, "read", resource))
    assert decision.outcome is Outcome.DENY
    assert decision.reasons == ("evaluation-error",)
    assert f"`{bad_type}`" in decision.errors[0]


@pytest.mark.parametrize("reserved", ["if", "in", "like", "has", "is", "then", "__cedar::X"])
def test_reserved_words_as_entity_types_deny(reserved: str) -> None:
    decision = engine(ALLOW).decide(DecisionRequest(EntityRef(reserved, "x"), "read", DOC))
    assert decision.outcome is Outcome.DENY
    assert decision.errors


@settings(max_examples=150, deadline=None)
@given(
    subject_type=st.text(max_size=20),
    resource_type=st.text(max_size=20),
    subject_id=st.text(max_size=20),
    action=st.text(max_size=20),
)
def test_any_names_allow_or_deny_and_never_raise(
    subject_type: str, resource_type: str, subject_id: str, action: str
) -> None:
    decision = ENGINE_FOR_FUZZ.decide(
        DecisionRequest(EntityRef(subject_type, subject_id), action, EntityRef(resource_type, "r"))
    )
    assert decision.outcome in (Outcome.ALLOW, Outcome.DENY)
    if decision.outcome is Outcome.ALLOW:
        assert decision.reasons == ("allow",)


ENGINE_FOR_FUZZ = engine(ALLOW)


# --- annotations that cannot be loaded ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('@id("p") @outcome("maybe") permit(principal, action, resource);', "unknown @outcome"),
        (
            '@id("p") @outcome("constrain") @obligations("a=1")\n'
            "forbid(principal, action, resource);",
            "forbid policy can only",
        ),
        ('@id("p") @outcome("allow") forbid(principal, action, resource);', "forbid policy"),
        ('@id("p") @outcome("deny") permit(principal, action, resource);', "cannot have @outcome"),
        ('@id("p") @obligations("a=1") permit(principal, action, resource);', "need @outcome"),
        ('@id("p") @outcome("constrain") permit(principal, action, resource);', "needs @oblig"),
        (
            '@id("p") @outcome("constrain") @obligations("max_rows") '
            "permit(principal, action, resource);",
            "must have the form",
        ),
    ],
)
def test_bad_annotations_are_reported_with_policy_and_line(text: str, message: str) -> None:
    specs, problems = parse_policy_file("bad.cedar", ALLOW + "\n\n" + text)
    assert [s.id for s in specs] == ["allow"]
    assert len(problems) == 1
    assert problems[0].file == "bad.cedar"
    assert problems[0].line == 3
    assert message in problems[0].message
    assert "`p`" in problems[0].message


def test_duplicate_policy_ids_are_refused() -> None:
    specs, _ = parse_policy_file("a.cedar", ALLOW + "\n" + ALLOW)
    with pytest.raises(PolicyInvalid, match=r"duplicate policy id.*allow"):
        PolicyEngine(specs)


def test_templates_are_refused() -> None:
    _, problems = parse_policy_file("t.cedar", "permit(principal == ?principal, action, resource);")
    assert [p.message for p in problems] == ["policy templates are not supported"]
