"""The one mapping from tether errors to HTTP: status codes and RFC 9457 problem+json bodies."""

from __future__ import annotations

import orjson
import pytest

from tether import errors
from tether.api.authzen_schema import RequestInvalid
from tether.api.errors import problem, problem_for, status_of
from tether.policy import PolicyInvalid


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidRequest("bad"), 400),
        (RequestInvalid([errors.FieldError("subject", "is required")]), 400),
        (PolicyInvalid("bad policy"), 400),
        (errors.EstateInvalid([errors.EstateProblem("a.yaml", 3, "unknown key `x`")]), 400),
        (errors.Unauthenticated("who are you"), 401),
        (errors.Forbidden("no"), 403),
        (errors.NotFound("no identity `x`"), 404),
        (errors.Conflict("exists"), 409),
        (errors.PayloadTooLarge("too big"), 413),
        (errors.RateLimited("slow down", retry_after_s=3), 429),
        (errors.StoreUnavailable("db down"), 503),
        (errors.TetherError("unexpected"), 500),
    ],
)
def test_status_by_error_class(error: errors.TetherError, status: int) -> None:
    assert status_of(error) == status
    got_status, body = problem_for(error)
    assert got_status == status
    document = orjson.loads(body)
    assert document["status"] == status
    assert document["detail"] == error.message
    assert document["error_code"] == error.code
    assert document["type"].endswith("/" + error.code)
    assert isinstance(document["title"], str)
    assert document["title"]


def test_a_per_instance_code_travels() -> None:
    _, body = problem_for(errors.InvalidRequest("not json", code="malformed_json"))
    assert orjson.loads(body)["error_code"] == "malformed_json"


def test_field_errors_are_listed() -> None:
    error = RequestInvalid(
        [errors.FieldError("subject.id", "is required"), errors.FieldError("context", "bad")]
    )
    document = orjson.loads(problem_for(error)[1])
    assert document["errors"] == [
        {"path": "subject.id", "message": "is required"},
        {"path": "context", "message": "bad"},
    ]
    assert document["detail"] == "`subject.id`: is required; `context`: bad"


def test_estate_problems_carry_file_and_line() -> None:
    error = errors.EstateInvalid(
        [
            errors.EstateProblem("estate.yaml", 7, "unknown key `idenities`"),
            errors.EstateProblem("policies/p.cedar", None, "cedar syntax error"),
        ]
    )
    document = orjson.loads(problem_for(error)[1])
    assert document["problems"] == [
        {"file": "estate.yaml", "line": 7, "message": "unknown key `idenities`"},
        {"file": "policies/p.cedar", "line": None, "message": "cedar syntax error"},
    ]
    assert "estate.yaml:7: unknown key" in document["detail"]


def test_problem_builds_the_rfc9457_members() -> None:
    document = orjson.loads(problem(405, "`/x` only accepts POST", "method_not_allowed"))
    assert document == {
        "type": "https://tether.dev/errors/method_not_allowed",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": "`/x` only accepts POST",
        "error_code": "method_not_allowed",
    }
