"""Obligations of a ``constrain`` applied to MCP results, and the ones refused up front."""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
import pytest

from tether.gateway._obligations import REDACTED, WITHHELD, constrain, unfulfillable

ROWS = [{"name": f"c{i}", "ssn": f"s{i}", "card": {"pan": f"p{i}"}} for i in range(4)]


def result(*texts: str, structured: object = None) -> dict[str, Any]:
    """A ``CallToolResult`` as the gateway holds it: its JSON, validated."""
    model = types.CallToolResult(
        content=[types.TextContent(type="text", text=t) for t in texts],
        structured_content=structured,  # type: ignore[arg-type]
    )
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def test_max_rows_truncates_structured_lists_json_text_and_row_blocks() -> None:
    given = result(*(json.dumps(row) for row in ROWS), structured={"result": ROWS, "total": 4})

    applied = constrain(given, {"max_rows": "2"})

    assert applied["structuredContent"] == {"result": ROWS[:2], "total": 4}
    assert [json.loads(b["text"]) for b in applied["content"]] == ROWS[:2]
    assert applied["_meta"] == {"tether/obligations": {"max_rows": "2"}}
    assert given["structuredContent"] == {"result": ROWS, "total": 4}  # the input is untouched
    assert len(given["content"]) == 4
    listed = constrain(result(json.dumps(ROWS)), {"max_rows": "1"})
    assert json.loads(listed["content"][0]["text"]) == ROWS[:1]


def test_redact_masks_named_members_at_any_depth_and_withholds_plain_text() -> None:
    given = result(json.dumps(ROWS[0]), "ssn s0 in prose", structured={"result": ROWS})

    applied = constrain(given, {"redact": "pan,ssn"})

    masked = {"name": "c0", "ssn": REDACTED, "card": {"pan": REDACTED}}
    assert applied["structuredContent"]["result"][0] == masked
    assert given["structuredContent"]["result"][0] == ROWS[0]
    texts = [b["text"] for b in applied["content"]]
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


def test_other_blocks_and_members_are_kept_as_they_came() -> None:
    image = {"type": "image", "data": "aGk=", "mimeType": "image/png"}
    given = {
        "content": [image, {"type": "text", "text": '{"ssn": 1}', "annotations": {"priority": 1}}],
        "isError": False,
        "_meta": {"trace": "t-1"},
    }

    applied = constrain(given, {"redact": "ssn"})

    assert applied["content"][0] == image
    assert applied["content"][1] == {
        "type": "text",
        "text": json.dumps({"ssn": REDACTED}),
        "annotations": {"priority": 1},
    }
    assert applied["isError"] is False
    assert applied["_meta"] == {"trace": "t-1", "tether/obligations": {"redact": "ssn"}}
    assert "structuredContent" not in applied
