"""Obligations of a ``constrain`` applied to MCP results, and the ones refused up front."""

from __future__ import annotations

import json

import mcp_types as types
import pytest

from tether.gateway._obligations import REDACTED, WITHHELD, constrain, unfulfillable

ROWS = [{"name": f"c{i}", "ssn": f"s{i}", "card": {"pan": f"p{i}"}} for i in range(4)]


def result(*texts: str, structured: object = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=t) for t in texts],
        structured_content=structured,  # type: ignore[arg-type]
    )


def test_max_rows_truncates_structured_lists_json_text_and_row_blocks() -> None:
    given = result(*(json.dumps(row) for row in ROWS), structured={"result": ROWS, "total": 4})

    applied = constrain(given, {"max_rows": "2"})

    assert applied.structured_content == {"result": ROWS[:2], "total": 4}
    assert [json.loads(b.text) for b in applied.content] == ROWS[:2]  # type: ignore[union-attr]
    assert applied.meta == {"tether/obligations": {"max_rows": "2"}}
    assert given.structured_content == {"result": ROWS, "total": 4}  # the input is untouched
    listed = constrain(result(json.dumps(ROWS)), {"max_rows": "1"})
    assert json.loads(listed.content[0].text) == ROWS[:1]  # type: ignore[union-attr]


def test_redact_masks_named_members_at_any_depth_and_withholds_plain_text() -> None:
    given = result(json.dumps(ROWS[0]), "ssn s0 in prose", structured={"result": ROWS})

    applied = constrain(given, {"redact": "pan,ssn"})

    masked = {"name": "c0", "ssn": REDACTED, "card": {"pan": REDACTED}}
    assert applied.structured_content["result"][0] == masked  # type: ignore[index]
    texts = [b.text for b in applied.content]  # type: ignore[union-attr]
    assert json.loads(texts[0]) == masked
    assert texts[1] == WITHHELD


def test_no_obligations_leave_the_result_as_it_is() -> None:
    given = result("plain", structured={"a": 1})
    assert constrain(given, {}) is given


@pytest.mark.parametrize(
    ("obligations", "problems"),
    [
        ({"max_rows": "10", "redact": "ssn"}, []),
        ({"read_only": "true"}, ["read_only"]),
        ({"max_rows": "-1", "rate_limit": "5"}, ["rate_limit", "max_rows"]),
    ],
)
def test_unknown_or_odd_obligations_cannot_be_fulfilled(
    obligations: dict[str, str], problems: list[str]
) -> None:
    assert unfulfillable(obligations) == problems
