"""Splitting Cedar files into statements, with the line each one starts on; schema validation."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.policy import parse_policy_file, split_statements, validate_against_schema


def test_split_basic_positions() -> None:
    text = "permit(principal, action, resource);\n\n  forbid(principal, action, resource);\n"
    assert [line for line, _ in split_statements(text)] == [1, 3]


def test_semicolons_in_strings_and_comments_do_not_split() -> None:
    text = (
        '// a comment; with a semicolon and a "quote\n'
        '@id("a;b")\n'
        'permit(principal, action, resource) when { context.s == "x;y // z \\" ;" };\n'
        "// trailing comment;\n"
    )
    statements = split_statements(text)
    assert [line for line, _ in statements] == [2]
    specs, problems = parse_policy_file("f.cedar", text)
    assert problems == []
    assert [(s.id, s.line) for s in specs] == [("a;b", 2)]


def test_trailing_statement_without_semicolon_is_reported_at_its_line() -> None:
    specs, problems = parse_policy_file(
        "t.cedar", 'permit(principal, action, resource);\n\n@id("x")\npermit(principal, action'
    )
    assert len(specs) == 1
    assert [(p.file, p.line) for p in problems] == [("t.cedar", 3)]
    assert problems[0].message.startswith("cedar syntax error")


def test_only_comments_after_the_last_statement_is_fine() -> None:
    assert len(split_statements("permit(principal, action, resource);\n// done\n// ;\n")) == 1


def test_syntax_error_names_its_line_and_other_statements_still_load() -> None:
    text = (
        '@id("one")\npermit(principal, action, resource);\n'
        "\n"
        "permit(principal, actoin resource);\n"
        '@id("three") forbid(principal, action, resource);\n'
    )
    specs, problems = parse_policy_file("p.cedar", text)
    assert [(s.id, s.line) for s in specs] == [("one", 1), ("three", 5)]
    assert [(p.file, p.line) for p in problems] == [("p.cedar", 4)]


# --- property: lines survive any placement of comments, blank lines and strings --------------

# Characters that confuse a naive splitter: statement ends, comment starts, quotes.
TRICKY = st.text(alphabet='ab ;/"\\xyz*', max_size=12)
SAFE_STRING = st.text(alphabet="ab ;/xyz*{}()", max_size=12)  # inside a Cedar string literal


def _cedar_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Piece:
    text: str
    policy_line_offset: int  # lines from the piece start to the policy's first token
    policy_id: str


@st.composite
def policy_piece(draw: st.DrawFn, index: int) -> Piece:
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        lines.append(draw(st.sampled_from(["", "   ", "// " + draw(TRICKY), "\t// ;;"])))
    offset = len(lines)
    policy_id = f"p{index};" + draw(SAFE_STRING)
    head = draw(st.sampled_from(["permit", "forbid"]))
    condition = _cedar_string(draw(TRICKY))
    split_annotation = draw(st.booleans())
    annotation = f"@id({_cedar_string(policy_id)})"
    body = (
        f"{head}(principal, action, resource)\n"
        f"  when {{ context.s == {condition} }} // {draw(TRICKY)}\n;"
    )
    lines.append(annotation + ("\n" if split_annotation else " ") + body)
    return Piece("\n".join(lines), offset, policy_id)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), count=st.integers(1, 5), trailer=TRICKY)
def test_statement_lines_are_exact_wherever_comments_and_strings_fall(
    data: st.DataObject, count: int, trailer: str
) -> None:
    pieces = [data.draw(policy_piece(i)) for i in range(count)]
    text = ""
    expected: list[tuple[str, int]] = []
    for piece in pieces:
        start_line = text.count("\n") + 1
        expected.append((piece.policy_id, start_line + piece.policy_line_offset))
        text += piece.text + "\n"
    text += "// " + trailer + "\n"
    assert [line for line, _ in split_statements(text)] == [line for _, line in expected]
    specs, problems = parse_policy_file("gen.cedar", text)
    assert problems == []
    assert [(s.id, s.line) for s in specs] == expected


@settings(max_examples=100, deadline=None)
@given(data=st.data(), count=st.integers(2, 5))
def test_a_broken_statement_is_reported_at_its_own_line(data: st.DataObject, count: int) -> None:
    pieces = [data.draw(policy_piece(i)) for i in range(count)]
    broken = data.draw(st.integers(0, count - 1))
    text = ""
    broken_line = 0
    for index, piece in enumerate(pieces):
        start_line = text.count("\n") + 1
        piece_text = piece.text
        if index == broken:
            piece_text = piece_text.replace("(principal, action,", "(principal, action", 1)
            broken_line = start_line + piece.policy_line_offset
        text += piece_text + "\n"
    specs, problems = parse_policy_file("gen.cedar", text)
    assert [(p.file, p.line) for p in problems] == [("gen.cedar", broken_line)]
    assert len(specs) == count - 1


# --- schema validation -------------------------------------------------------------------------

SCHEMA = """
entity User { role: String };
entity Doc;
action read appliesTo { principal: User, resource: Doc };
"""


def test_schema_validation_names_file_line_and_policy() -> None:
    specs, _ = parse_policy_file(
        "policies/p.cedar",
        '@id("fine")\npermit(principal, action == Action::"read", resource)'
        ' when { principal.role == "x" };\n\n'
        '@id("typo")\npermit(principal, action == Action::"read", resource)'
        " when { principal.rloe == 1 };\n",
    )
    problems = validate_against_schema(specs, SCHEMA, schema_file="schema.cedarschema")
    assert len(problems) == 1
    (problem,) = problems
    assert (problem.file, problem.line) == ("policies/p.cedar", 4)
    assert problem.message.startswith("schema validation:")
    assert "`typo`" in problem.message
    assert "rloe" in problem.message
    assert "policy0" not in problem.message


def test_schema_validation_reports_every_bad_policy() -> None:
    specs, _ = parse_policy_file(
        "p.cedar",
        'permit(principal, action == Action::"write", resource);\n'
        'permit(principal is Doc, action == Action::"read", resource);\n',
    )
    problems = validate_against_schema(specs, SCHEMA, schema_file="schema.cedarschema")
    assert sorted({p.line for p in problems}) == [1, 2]
    assert all(p.file == "p.cedar" for p in problems)
    assert any("p.cedar#1" in p.message for p in problems)


def test_valid_policies_have_no_problems() -> None:
    specs, _ = parse_policy_file(
        "p.cedar", 'permit(principal, action == Action::"read", resource is Doc);'
    )
    assert validate_against_schema(specs, SCHEMA, schema_file="s.cedarschema") == []


@pytest.mark.parametrize("schema", ["entity {", "entity User { role: Strin };"])
def test_broken_schema_names_the_schema_file(schema: str) -> None:
    specs, _ = parse_policy_file("p.cedar", "permit(principal, action, resource);")
    problems = validate_against_schema(specs, schema, schema_file="estate/schema.cedarschema")
    assert len(problems) >= 1
    assert problems[0].file == "estate/schema.cedarschema"
    assert "schema" in problems[0].message
