"""Bounds of AuthZEN requests: depth and size of `context`/`properties`, items of a batch."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.api.bounds import JsonBounds, RequestBounds, check_value
from tether.api.errors import problem_for
from tether.config import Settings, load_settings
from tether.errors import InvalidRequest, LimitExceeded, PayloadTooLarge

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=40,
)
BOUNDS = st.builds(JsonBounds, st.integers(1, 8), st.integers(1, 60))


def depth_of(value: Any) -> int:
    """The reference definition: containers count, scalars do not."""
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


def values_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(values_of(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(values_of(v) for v in value)
    return 1


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def check(value: Any, bounds: JsonBounds) -> None:
    check_value(value, where="context", kind="context", bounds=bounds)


@settings(max_examples=300, deadline=None)
@given(JSON, BOUNDS)
def test_a_value_passes_exactly_when_it_is_within_both_bounds(
    value: Any, bounds: JsonBounds
) -> None:
    within = depth_of(value) <= bounds.max_depth and values_of(value) <= bounds.max_values
    refused: LimitExceeded | PayloadTooLarge | None = None
    try:
        check(value, bounds)
    except (LimitExceeded, PayloadTooLarge) as exc:  # only ever the two named refusals
        refused = exc
    if refused is None:
        assert within
        return
    assert not within
    assert refused.limit is not None
    if depth_of(value) > bounds.max_depth and values_of(value) <= bounds.max_values:
        assert (refused.code, refused.limit.setting) == ("context_too_deep", "max_json_depth")
    if values_of(value) > bounds.max_values and depth_of(value) <= bounds.max_depth:
        assert (refused.code, refused.limit.setting) == ("context_too_large", "max_json_values")
    assert refused.limit.value in (bounds.max_depth, bounds.max_values)


@settings(max_examples=100, deadline=None)
@given(JSON, st.integers(1, 8))
def test_any_value_one_level_deeper_than_the_limit_is_refused(value: Any, limit: int) -> None:
    deeper = value
    for _ in range(limit + 1 - depth_of(value)):
        deeper = [deeper]
    assert depth_of(deeper) > limit
    with pytest.raises(LimitExceeded) as caught:
        check(deeper, JsonBounds(max_depth=limit, max_values=10**9))
    assert caught.value.code == "context_too_deep"
    assert f"the limit of {limit} (`TETHER_MAX_JSON_DEPTH`)" in caught.value.message


@pytest.mark.parametrize("levels", [33, 254, 300, 1000, 100_000])
def test_deep_nesting_is_refused_without_recursion(levels: int) -> None:
    with pytest.raises(LimitExceeded) as caught:
        check(nested(levels), JsonBounds(max_depth=32, max_values=10**9))
    assert caught.value.code == "context_too_deep"


def test_the_limit_itself_is_allowed() -> None:
    check(nested(32), JsonBounds(max_depth=32, max_values=100))
    check(nested(99), JsonBounds(max_depth=99, max_values=100))  # 99 objects + the 1


def test_a_wide_member_is_refused_after_at_most_the_limit_of_steps() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        check({str(i): i for i in range(100_000)}, JsonBounds(max_depth=32, max_values=10_000))
    assert caught.value.code == "context_too_large"
    assert "`context` holds more JSON values than the limit of 10000" in caught.value.message


def test_the_problem_body_names_the_limit() -> None:
    with pytest.raises(LimitExceeded) as caught:
        check(nested(40), JsonBounds(max_depth=32, max_values=10_000))
    status, body = problem_for(caught.value)
    answer = orjson.loads(body)
    assert status == 400
    assert answer["error_code"] == "context_too_deep"
    assert answer["limit"] == {
        "setting": "max_json_depth",
        "env": "TETHER_MAX_JSON_DEPTH",
        "value": 32,
    }
    assert isinstance(caught.value, InvalidRequest)


BOUNDED = RequestBounds(JsonBounds(max_depth=4, max_values=50), max_evaluations=3)
EVALUATION = {
    "subject": {"type": "user", "id": "alice"},
    "action": {"name": "read"},
    "resource": {"type": "doc", "id": "d1"},
}


@pytest.mark.parametrize(
    ("body", "code", "where"),
    [
        ({**EVALUATION, "context": nested(5)}, "context_too_deep", "`context`"),
        (
            {**EVALUATION, "subject": {"type": "u", "id": "a", "properties": nested(5)}},
            "properties_too_deep",
            "`subject.properties`",
        ),
        (
            {**EVALUATION, "action": {"name": "r", "properties": list(range(60))}},
            "properties_too_large",
            "`action.properties`",
        ),
        (
            {**EVALUATION, "resource": {"type": "d", "id": "1", "properties": nested(9)}},
            "properties_too_deep",
            "`resource.properties`",
        ),
    ],
)
def test_an_evaluation_is_checked_member_by_member(body: Any, code: str, where: str) -> None:
    with pytest.raises((LimitExceeded, PayloadTooLarge)) as caught:
        BOUNDED.check_evaluation(body)
    assert caught.value.code == code
    assert caught.value.message.startswith(where)


def test_members_of_the_wrong_type_are_left_to_the_parser() -> None:
    BOUNDED.check_evaluation([nested(40)])
    BOUNDED.check_evaluation({**EVALUATION, "subject": "alice", "context": "x"})
    BOUNDED.check_evaluations({"evaluations": "many"})


def test_every_item_and_the_defaults_of_a_batch_are_checked() -> None:
    item = {"resource": {"type": "doc", "id": "d2"}}
    deep_item = {"context": nested(5)}
    with pytest.raises(LimitExceeded) as caught:
        BOUNDED.check_evaluations({**EVALUATION, "evaluations": [item, deep_item]})
    assert caught.value.message.startswith("`evaluations[1].context`")
    with pytest.raises(LimitExceeded) as caught:
        BOUNDED.check_evaluations({**EVALUATION, "context": nested(5), "evaluations": [item]})
    assert caught.value.message.startswith("`context`")
    BOUNDED.check_evaluations({**EVALUATION, "evaluations": [item, item, item]})


def test_too_many_items_are_refused_before_any_item_is_walked() -> None:
    # The items are themselves over the depth bound: the count is what is reported.
    body = {"evaluations": [{"context": nested(5)}] * 4}
    with pytest.raises(PayloadTooLarge) as caught:
        BOUNDED.check_evaluations(body)
    assert caught.value.code == "too_many_evaluations"
    assert caught.value.limit is not None
    assert caught.value.limit.env == "TETHER_MAX_EVALUATIONS"
    assert "holds 4 items" in caught.value.message


def test_the_bounds_are_settings_with_defaults_and_ranges() -> None:
    bounds = RequestBounds.from_settings(Settings())
    assert bounds == RequestBounds(JsonBounds(32, 10_000), 1_000)
    env = {"TETHER_MAX_JSON_DEPTH": "8", "TETHER_MAX_EVALUATIONS": "20"}
    assert RequestBounds.from_settings(load_settings(env)) == RequestBounds(
        JsonBounds(8, 10_000), 20
    )
    # Deeper than what a decision row can be encoded with is refused at start-up.
    with pytest.raises(InvalidRequest, match="TETHER_MAX_JSON_DEPTH"):
        load_settings({"TETHER_MAX_JSON_DEPTH": "300"})
    with pytest.raises(InvalidRequest, match="TETHER_SEARCH_MAX_PAGE_SIZE"):
        load_settings({"TETHER_SEARCH_MAX_PAGE_SIZE": "0"})
