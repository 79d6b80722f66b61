"""Matching observations to entitlement parts and generating the right-sized policy (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tether.estate import parse_pattern
from tether.policy import EntityRecord, EntityRef
from tether.review.access import AccessReview, IdentityReview, Observed, match, resource_ref
from tether.review.rightsize import CollapseRule, rightsize, validate_policy_set

AT = datetime(2026, 3, 1, tzinfo=UTC)
SCHEMA = """
entity agent;
entity invoice;
entity email;
action "read_invoice", "send_email", "pay" appliesTo {
  principal: [agent], resource: [invoice, email],
  context: { "tether": { "resource_id": String } }
};
"""


def _pattern(text: str):  # type: ignore[no-untyped-def]
    found = parse_pattern(text)
    assert not isinstance(found, str)
    return found


def _obs(action: str, resource: str | None, allowed: int = 1, denied: int = 0) -> Observed:
    ref = resource_ref(resource, None)
    return Observed("bot", action, ref, allowed, denied, AT, AT, ("jsonl",))


GRANTS = [
    ("entitlement:bot:1", ("read_invoice", "send_email"), (_pattern("invoice:*"),)),
    ("entitlement:bot:2", ("pay",), (_pattern("invoice:INV-9"),)),
]


def _review(observed: list[Observed]) -> AccessReview:
    parts, outside = match("bot", GRANTS, observed)
    identity = IdentityReview(
        "bot", "agent", "team", None, "estate", parts, outside, tuple(observed)
    )
    return AccessReview(AT, AT, None, (identity,))


def test_resource_ref_reads_patterns_and_arns() -> None:
    assert resource_ref("invoice:INV-1", None) == EntityRef("invoice", "INV-1")
    assert resource_ref("arn:aws:s3:::b/k", "s3:object") == EntityRef("arn", "aws:s3:::b/k")
    assert resource_ref("plain name", "doc") == EntityRef("doc", "plain name")
    assert resource_ref(None, "doc") is None


def test_parts_are_used_unused_and_outside_is_what_no_part_covers() -> None:
    review = _review(
        [
            _obs("read_invoice", "invoice:INV-1", allowed=3),
            _obs("read_invoice", "invoice:INV-2"),
            _obs("send_email", "email:a@example.org"),  # type email: outside invoice:*
            _obs("pay", "invoice:INV-1", allowed=0, denied=2),  # denied probe, outside
            _obs("pay", "invoice:INV-9", allowed=0, denied=1),  # covered but refused: not use
        ]
    )
    (identity,) = review.identities
    status = {(p.entitlement_id, p.action, p.pattern.text): p.uses for p in identity.parts}
    assert status == {
        ("entitlement:bot:1", "read_invoice", "invoice:*"): 4,
        ("entitlement:bot:1", "send_email", "invoice:*"): 0,
        ("entitlement:bot:2", "pay", "invoice:INV-9"): 0,
    }
    assert [(o.action, o.resource_text) for o in identity.outside] == [
        ("send_email", "email:a@example.org"),
        ("pay", "invoice:INV-1"),
    ]
    used = identity.used[0]
    assert [str(r) for r in used.resources] == ["invoice:INV-1", "invoice:INV-2"]


def test_an_allowed_use_without_a_resource_uses_every_part_of_its_action() -> None:
    (identity,) = _review([_obs("send_email", None)]).identities
    assert [p.action for p in identity.used] == ["send_email"]
    policies = rightsize(_review([_obs("send_email", None)]), schema_text=SCHEMA)
    assert "resource is invoice" in policies.text  # the part's own pattern, no wider


def test_sparse_use_is_granted_exactly_and_validates() -> None:
    review = _review([_obs("read_invoice", "invoice:INV-1"), _obs("read_invoice", "invoice:INV-2")])
    policies = rightsize(review, schema_text=SCHEMA)
    (policy,) = policies.policies
    assert policy.actions == ("read_invoice",)
    assert policy.grants == ("invoice:INV-1", "invoice:INV-2")
    assert 'resource == invoice::"INV-1"' in policy.text
    assert "send_email" not in policies.text
    assert "pay" not in policies.text
    assert validate_policy_set(policies.text, SCHEMA) == []
    assert policies.notes == ()


@pytest.mark.parametrize("count", [9, 10])
def test_dense_use_collapses_to_the_pattern_at_the_threshold(count: int) -> None:
    observed = [_obs("read_invoice", f"invoice:INV-{n}") for n in range(count)]
    policies = rightsize(_review(observed), schema_text=SCHEMA, rule=CollapseRule(collapse_at=10))
    collapsed = (
        "resource is invoice;" in policies.text or "when { resource is invoice }" in policies.text
    )
    assert collapsed is (count >= 10)


def test_declared_resources_make_use_dense_by_share() -> None:
    entities = [EntityRecord("invoice", f"INV-{n}", {}, ()) for n in range(4)]
    three = [_obs("read_invoice", f"invoice:INV-{n}") for n in range(3)]
    two = three[:2]
    dense = rightsize(_review(three), schema_text=SCHEMA, entities=entities)  # 75 % < 80 %
    assert "INV-0" in dense.text
    four = [*three, _obs("read_invoice", "invoice:INV-3")]
    assert "INV-0" not in rightsize(_review(four), schema_text=SCHEMA, entities=entities).text
    assert "INV-1" in rightsize(_review(two), schema_text=SCHEMA, entities=entities).text


def test_actions_with_the_same_resources_share_one_permit() -> None:
    review = _review([_obs("read_invoice", "invoice:INV-9"), _obs("pay", "invoice:INV-9")])
    policies = rightsize(review, schema_text=SCHEMA)
    assert len(policies.policies) == 1
    assert policies.policies[0].actions == ("pay", "read_invoice")


def test_a_type_the_schema_does_not_know_falls_back_to_the_pattern_with_a_note() -> None:
    grants = [("entitlement:bot:1", ("read_invoice",), (_pattern("*"),))]
    parts, outside = match("bot", grants, [_obs("read_invoice", "ledger:L-1")])
    identity = IdentityReview("bot", "agent", None, None, "estate", parts, outside, ())
    policies = rightsize(AccessReview(AT, AT, None, (identity,)), schema_text=SCHEMA)
    assert 'resource == ledger::"L-1"' not in policies.text
    assert validate_policy_set(policies.text, SCHEMA) == []
    assert policies.notes
    assert "schema" in policies.notes[0]


def test_an_invalid_policy_set_is_reported_against_the_schema() -> None:
    text = '@id("x")\npermit (principal == agent::"bot", action == Action::"fly", resource);'
    assert validate_policy_set(text, SCHEMA)
