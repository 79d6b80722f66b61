"""The estate's ``tools:`` section: which argument is a tool's resource, its destinations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tether.errors import EstateInvalid
from tether.estate import apply_estate, compile_estate, load_estate
from tether.estate.compiled import CompiledEstate, ToolMapping

EstateFactory = Callable[..., Path]

TOOLS = """\
tools:
  send_email:
    resource: {argument: to, type: email}
    destinations: {to: email, cc: email}
    data_class: internal
    description: sends one message
  get_weather:
"""


def test_tools_load_compile_and_survive_the_bundle(make_estate: EstateFactory) -> None:
    compiled = compile_estate(load_estate(make_estate({"tools.yaml": TOOLS})))

    send = ToolMapping("send_email", "to", "email", {"to": "email", "cc": "email"}, "internal")
    assert compiled.tools == {"send_email": send, "get_weather": ToolMapping("get_weather")}
    assert CompiledEstate.from_bundle(compiled.to_bundle()).tools == compiled.tools


def test_every_problem_is_named_with_its_line(make_estate: EstateFactory) -> None:
    bad = """\
    tools:
      "bad tool": {}
      x:
        resource: {argument: "1 2"}
        destinations: [to]
        data_class: secretish
        effect: deny
      y:
        resource: to
        destinations: {to: "not a type", "cc list": email}
    """
    with pytest.raises(EstateInvalid) as caught:
        load_estate(make_estate({"tools.yaml": bad}))
    found = {(p.line, p.message) for p in caught.value.problems}
    assert found == {
        (2, "tool name `bad tool` may only hold letters, digits, `_-./` (1 to 128)"),
        (4, "`resource` of tool `x` needs `type`"),
        (4, "`1 2` is not an argument name (letters, digits, `_$.-`)"),
        (5, "`destinations` of tool `x` must map argument names to types (`{to: email}`)"),
        (
            6,
            "data class `secretish` is not declared (declared: `confidential`, `internal`, "
            "`public`, `restricted`)",
        ),
        (
            7,
            "unknown key `effect` in tool `x` (expected `data_class`, `description`, "
            "`destinations`, `resource`)",
        ),
        (9, "`resource` of tool `y` must be a mapping like `{argument: to, type: email}`"),
        (
            10,
            "`destinations` of tool `y`: type `not a type` must be a Cedar identifier "
            "(letters, digits and `_`)",
        ),
        (10, "`destinations` of tool `y`: `cc list` is not an argument name"),
    }


def test_a_tool_declared_twice_names_both_places(make_estate: EstateFactory) -> None:
    with pytest.raises(EstateInvalid) as caught:
        load_estate(make_estate({"a.yaml": "tools: {ping: }", "b.yaml": "tools: {ping: }"}))
    (problem,) = caught.value.problems
    assert problem.message == "tool `ping` is declared twice (also at a.yaml:1)"


def test_apply_reports_tool_changes_and_a_new_revision(
    make_estate: EstateFactory, sqlite_store: object
) -> None:
    folder = make_estate({"tools.yaml": TOOLS})
    first = apply_estate(sqlite_store, folder)  # type: ignore[arg-type]
    assert {(c.kind, c.name, c.op) for c in first.changes if c.kind == "tool"} == {
        ("tool", "send_email", "create"),
        ("tool", "get_weather", "create"),
    }
    (folder / "tools.yaml").write_text(TOOLS.replace("data_class: internal", ""))
    second = apply_estate(sqlite_store, folder)  # type: ignore[arg-type]
    assert [(c.kind, c.name, c.op) for c in second.changes] == [("tool", "send_email", "update")]
    assert second.revision != first.revision
