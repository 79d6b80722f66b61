"""AuthZEN request parsing: every malformed shape is a RequestInvalid naming the member."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.api.asgi import parse_json_body
from tether.api.authzen_schema import (
    RequestInvalid,
    _parse_naming_errors,
    _well_formed,
    merge_item,
    parse_evaluation,
    parse_semantic,
    require_object_body,
)
from tether.errors import InvalidRequest
from tether.policy import DecisionRequest, EntityRef, Outcome, PolicyEngine, parse_policy_file

VALID: dict[str, Any] = {
    "subject": {"type": "user", "id": "alice@acmecorp.com", "properties": {"dept": "ops"}},
    "action": {"name": "can_read", "properties": {"method": "GET"}},
    "resource": {"type": "todo", "id": "1", "properties": {"owner": "bob"}},
    "context": {"time": "2024-10-26T01:22-07:00", "score": 0.5},
}


def without(path: str) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    target = body
    for key in parents:
        target = target[key]
    del target[last]
    return body


def replaced(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    target = body
    for key in parents:
        target = target[key]
    target[last] = value
    return body


def test_valid_request_parses_completely() -> None:
    request = parse_evaluation(VALID)
    assert request == DecisionRequest(
        subject=EntityRef("user", "alice@acmecorp.com"),
        action="can_read",
        resource=EntityRef("todo", "1"),
        context=VALID["context"],
        subject_properties={"dept": "ops"},
        resource_properties={"owner": "bob"},
        action_properties={"method": "GET"},
    )


def test_optional_members_default_to_empty() -> None:
    request = parse_evaluation(
        {
            "subject": {"type": "user", "id": "a"},
            "action": {"name": "r"},
            "resource": {"type": "doc", "id": "1"},
        }
    )
    assert request.context == {}
    assert request.subject_properties == request.resource_properties == {}
    assert request.action_properties == {}


def test_unknown_members_are_ignored() -> None:
    body = {**VALID, "extra": [1], "subject": {**VALID["subject"], "nickname": "al"}}
    assert parse_evaluation(body).subject == EntityRef("user", "alice@acmecorp.com")


MISSING = [
    "subject",
    "action",
    "resource",
    "subject.type",
    "subject.id",
    "action.name",
    "resource.type",
    "resource.id",
]


@pytest.mark.parametrize("member", MISSING)
def test_missing_member_is_named(member: str) -> None:
    with pytest.raises(RequestInvalid) as caught:
        parse_evaluation(without(member))
    assert f"`{member}`" in caught.value.message
    assert "is required" in caught.value.message
    assert [e.path for e in caught.value.field_errors] == [member]


WRONG_TYPES = [
    ("subject", "alice", "must be an object, not a string"),
    ("subject", [], "must be an object, not an array"),
    ("action", "read", "must be an object"),
    ("resource", 7, "must be an object, not a number"),
    ("context", [], "must be an object, not an array"),
    ("context", "x", "must be an object"),
    ("subject.type", 1, "must be a string, not a number"),
    ("subject.id", True, "must be a string, not a boolean"),
    ("subject.id", {"a": 1}, "must be a string, not an object"),
    ("action.name", ["read"], "must be a string, not an array"),
    ("resource.type", 1.5, "must be a string"),
    ("resource.id", "", "must not be empty"),
    ("subject.type", "", "must not be empty"),
    ("action.name", "", "must not be empty"),
    ("subject.properties", [], "must be an object, not an array"),
    ("resource.properties", "x", "must be an object"),
    ("action.properties", 3, "must be an object"),
]


@pytest.mark.parametrize(("member", "value", "message"), WRONG_TYPES)
def test_wrong_type_is_named(member: str, value: Any, message: str) -> None:
    with pytest.raises(RequestInvalid) as caught:
        parse_evaluation(replaced(member, value))
    assert f"`{member}`" in caught.value.message
    assert message in caught.value.message
    assert caught.value.code == "authzen_request_invalid"
    assert isinstance(caught.value, InvalidRequest)


@pytest.mark.parametrize("member", ["subject", "action", "resource"])
def test_null_member_counts_as_missing(member: str) -> None:
    with pytest.raises(RequestInvalid, match=f"`{member}`: is required"):
        parse_evaluation(replaced(member, None))


def test_every_problem_is_reported_at_once() -> None:
    body = {"subject": {"type": 1}, "action": "x", "resource": {"id": ""}, "context": 5}
    with pytest.raises(RequestInvalid) as caught:
        parse_evaluation(body)
    paths = [e.path for e in caught.value.field_errors]
    assert paths == [
        "subject.type",
        "subject.id",
        "action",
        "resource.type",
        "resource.id",
        "context",
    ]


@pytest.mark.parametrize(
    ("body", "kind"), [([], "an array"), ("x", "a string"), (None, "null"), (3, "a number")]
)
def test_body_must_be_an_object(body: Any, kind: str) -> None:
    with pytest.raises(RequestInvalid, match=f"request body must be a JSON object, not {kind}"):
        require_object_body(body)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("x", "`options`: must be an object"),
        ({"evaluations_semantic": "all"}, "`options.evaluations_semantic`: must be one of"),
        ({"evaluations_semantic": 1}, "`options.evaluations_semantic`"),
    ],
)
def test_bad_evaluations_semantic_is_named(options: Any, message: str) -> None:
    with pytest.raises(RequestInvalid, match=message):
        parse_semantic({"options": options})


@pytest.mark.parametrize(
    "semantic", ["execute_all", "deny_on_first_deny", "permit_on_first_permit"]
)
def test_every_evaluations_semantic_is_accepted(semantic: str) -> None:
    assert parse_semantic({"options": {"evaluations_semantic": semantic}}) == semantic
    assert parse_semantic({}) == "execute_all"


def test_batch_item_inherits_top_level_members_it_omits() -> None:
    item = {"resource": {"type": "todo", "id": "2"}}
    merged = merge_item(VALID, item)
    assert merged["resource"] == {"type": "todo", "id": "2"}
    assert merged["subject"] == VALID["subject"]
    assert merged["context"] == VALID["context"]
    assert "evaluations" not in merge_item({**VALID, "evaluations": [item]}, item)


# --- the raw body ----------------------------------------------------------------------------


def scope(content_type: bytes | None = b"application/json") -> dict[str, Any]:
    headers = [] if content_type is None else [(b"content-type", content_type)]
    return {"type": "http", "headers": headers}


@pytest.mark.parametrize(
    "content_type",
    [
        b"application/json",
        b"application/json; charset=utf-8",
        b"Application/JSON",
        b"application/authzen+json",
    ],
)
def test_json_content_types_are_accepted(content_type: bytes) -> None:
    assert parse_json_body(scope(content_type), b'{"a": 1}') == {"a": 1}


@pytest.mark.parametrize(
    ("content_type", "body", "code", "message"),
    [
        (None, b"{}", "unsupported_media_type", "got `none`"),
        (b"text/plain", b"{}", "unsupported_media_type", "got `text/plain`"),
        (b"application/json", b"", "empty_body", "request body is empty"),
        (b"application/json", b"  \n", "empty_body", "request body is empty"),
        (b"application/json", b"{", "malformed_json", "not valid JSON"),
        (b"application/json", b"\xff\xfe", "malformed_json", "not valid JSON"),
        (b"application/json", b"NaN", "malformed_json", "not valid JSON"),
    ],
)
def test_bad_bodies_are_invalid_requests(
    content_type: bytes | None, body: bytes, code: str, message: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_json_body(scope(content_type), body)
    assert caught.value.code == code
    assert message in caught.value.message


# --- fuzzing: arbitrary input is a request or a tether error, never anything else ------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
ENTITY = st.fixed_dictionaries(
    {},
    optional={
        "type": JSON | st.text(max_size=8),
        "id": JSON | st.text(max_size=8),
        "properties": JSON | st.dictionaries(st.text(max_size=5), JSON, max_size=3),
    },
)
ACTION = st.fixed_dictionaries(
    {}, optional={"name": JSON | st.text(max_size=8), "properties": JSON}
)
NEAR_VALID = st.fixed_dictionaries(
    {},
    optional={
        "subject": ENTITY | JSON,
        "action": ACTION | JSON,
        "resource": ENTITY | JSON,
        "context": st.dictionaries(st.text(max_size=6), JSON, max_size=4) | JSON,
    },
)

ENGINE = PolicyEngine(
    parse_policy_file(
        "fuzz.cedar",
        "permit(principal, action, resource) when { context has ok && context.ok == true };\n"
        "permit(principal, action, resource) when { principal has admin };",
    )[0]
)


def _outcome(parse: Callable[[], Any]) -> Any:
    """What ``parse`` returned, or the exception it raised (any exception)."""
    try:
        return parse()
    except Exception as exc:
        return exc


def _parse_and_decide(body: Any) -> None:
    result = _outcome(lambda: parse_evaluation(require_object_body(body)))
    if isinstance(result, Exception):
        assert isinstance(result, RequestInvalid), repr(result)
        assert result.field_errors
        assert all(f"`{e.path}`" in result.message for e in result.field_errors if e.path)
        return
    assert isinstance(result, DecisionRequest)
    assert ENGINE.decide(result).outcome in (Outcome.ALLOW, Outcome.DENY)


@settings(max_examples=400, deadline=None)
@given(body=NEAR_VALID | JSON)
def test_arbitrary_json_is_a_request_or_a_request_error(body: Any) -> None:
    _parse_and_decide(body)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64) | NEAR_VALID.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bytes_are_a_request_or_a_tether_error(raw: bytes) -> None:
    body = _outcome(lambda: parse_json_body(scope(), raw))
    if isinstance(body, Exception):
        assert isinstance(body, InvalidRequest), repr(body)
        return
    _parse_and_decide(body)


@settings(max_examples=400, deadline=None)
@given(body=NEAR_VALID | JSON)
def test_the_well_formed_shortcut_builds_what_the_full_parser_builds(body: Any) -> None:
    if not isinstance(body, dict):
        return
    quick = _well_formed(body)
    if quick is not None:  # else the full parser answers, naming what is wrong if anything
        assert quick == _parse_naming_errors(body, "")


def test_the_shortcut_takes_the_usual_request_and_makes_new_empty_members() -> None:
    assert _well_formed(VALID) == parse_evaluation(VALID)
    bare = {
        "subject": {"type": "u", "id": "a"},
        "action": {"name": "r"},
        "resource": VALID["resource"],
    }
    first, second = _well_formed(bare), _well_formed(bare)
    assert first is not None
    assert second is not None
    first.context["k"] = first.subject_properties["k"] = first.action_properties["k"] = 1
    assert second.context == second.subject_properties == second.action_properties == {}
