"""The binding hash: volatile context keys are ignored, any other change mismatches."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.approvals import VOLATILE_CONTEXT_KEYS, binding_hash, bound_request
from tether.approvals.errors import ApprovalRequestInvalid
from tether.policy import DecisionRequest, EntityRef

names = st.text(min_size=1, max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=12),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
contexts = st.dictionaries(
    names.filter(lambda k: k not in VOLATILE_CONTEXT_KEYS), values, max_size=4
)
properties = st.dictionaries(names, values, max_size=3)


@st.composite
def requests(draw: st.DrawFn) -> DecisionRequest:
    return DecisionRequest(
        EntityRef(draw(names), draw(names)),
        draw(names),
        EntityRef(draw(names), draw(names)),
        draw(contexts),
        draw(properties),
        draw(properties),
        draw(properties),
    )


def _with(request: DecisionRequest, **changes: Any) -> DecisionRequest:
    fields = {
        "subject": request.subject,
        "action": request.action,
        "resource": request.resource,
        "context": request.context,
        "subject_properties": request.subject_properties,
        "resource_properties": request.resource_properties,
        "action_properties": request.action_properties,
    }
    fields.update(changes)
    return DecisionRequest(**fields)


@settings(max_examples=200)
@given(requests(), st.dictionaries(st.sampled_from(sorted(VOLATILE_CONTEXT_KEYS)), values))
def test_volatile_context_keys_do_not_change_the_hash(
    request: DecisionRequest, volatile: dict[str, Any]
) -> None:
    retried = _with(request, context={**request.context, **volatile})
    assert binding_hash(retried) == binding_hash(request)


@settings(max_examples=200)
@given(requests(), requests())
def test_requests_that_differ_outside_volatile_keys_never_share_a_hash(
    first: DecisionRequest, second: DecisionRequest
) -> None:
    if bound_request(first) != bound_request(second):
        assert binding_hash(first) != binding_hash(second)
    assert binding_hash(first) == binding_hash(_with(first))


@settings(max_examples=200)
@given(requests(), st.data())
def test_changing_any_one_part_mismatches(request: DecisionRequest, data: st.DataObject) -> None:
    part = data.draw(
        st.sampled_from(
            [
                "subject",
                "resource",
                "action",
                "context",
                "subject_properties",
                "resource_properties",
                "action_properties",
            ]
        )
    )
    if part in ("subject", "resource"):
        old: EntityRef = getattr(request, part)
        changed: Any = data.draw(st.builds(EntityRef, names, names).filter(lambda ref: ref != old))
    elif part == "action":
        changed = data.draw(names.filter(lambda name: name != request.action))
    elif part == "context":
        changed = data.draw(contexts.filter(lambda c: c != request.context))
    else:
        changed = data.draw(properties.filter(lambda p: p != getattr(request, part)))
    assert binding_hash(_with(request, **{part: changed})) != binding_hash(request)


def test_key_order_does_not_matter_and_value_types_do() -> None:
    base = DecisionRequest(EntityRef("agent", "a"), "pay", EntityRef("invoice", "1"))
    one = _with(base, context={"amount": 5, "to": {"iban": "X", "bank": "Y"}})
    other = _with(base, context={"to": {"bank": "Y", "iban": "X"}, "amount": 5})
    assert binding_hash(one) == binding_hash(other)
    assert binding_hash(_with(base, context={"amount": "5"})) != binding_hash(
        _with(base, context={"amount": 5})
    )
    # The nested keys named like volatile ones are part of the request.
    nested = _with(base, context={"meta": {"time": 1}})
    assert binding_hash(nested) != binding_hash(_with(base, context={"meta": {"time": 2}}))


def test_a_context_that_is_not_json_is_refused() -> None:
    request = DecisionRequest(
        EntityRef("agent", "a"), "pay", EntityRef("invoice", "1"), {"x": object()}
    )
    with pytest.raises(ApprovalRequestInvalid):
        binding_hash(request)
