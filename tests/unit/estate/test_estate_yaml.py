"""The located YAML loader: values as YAML means them, lines where the text has them."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from tether.estate._yaml import load_located

KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)


@given(st.dictionaries(KEYS, VALUES, max_size=6), st.booleans())
def test_values_match_safe_load(document: dict[str, Any], flow: bool) -> None:
    text = yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True)
    node, problems = load_located("f.yaml", text)
    assert problems == []
    expected = yaml.safe_load(text)
    if expected is None:
        assert node is None or node.plain() == {}
    else:
        assert node is not None
        assert node.plain() == expected


@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=6))
def test_top_level_keys_are_located(document: dict[str, Any]) -> None:
    text = yaml.safe_dump(document, default_flow_style=False, sort_keys=False)
    node, _ = load_located("f.yaml", text)
    assert node is not None
    lines = text.splitlines()
    for key in document:
        line = node.key_line(key)
        assert lines[line - 1].lstrip("'\"").startswith(key), (key, line, text)


def test_lines_of_nested_nodes() -> None:
    text = "a:\n  - x: 1\n    y: [1, 2]\n  - {z: 3}\nb: hello\n"
    node, problems = load_located("f.yaml", text)
    assert problems == []
    assert node is not None
    first, second = node.value["a"].value
    assert (first.line, first.key_line("y"), first.value["y"].line) == (2, 3, 3)
    assert second.line == 4
    assert node.value["b"].line == 5


def test_yaml_scalars_keep_their_yaml_meaning() -> None:
    node, _ = load_located("f.yaml", "n: 30\nt: true\nd: 2026-12-31\ns: '30'\nk: no\n")
    assert node is not None
    plain = node.plain()
    assert plain["n"] == 30
    assert plain["t"] is True
    assert plain["d"].isoformat() == "2026-12-31"
    assert plain["s"] == "30"
    assert plain["k"] is False  # YAML 1.1, as PyYAML reads it


def test_keys_are_their_text() -> None:
    node, _ = load_located("f.yaml", "1: a\ntrue: b\n")
    assert node is not None
    assert set(node.value) == {"1", "true"}


def test_duplicate_keys_are_reported() -> None:
    _, problems = load_located("f.yaml", "a: 1\nb: 2\na: 3\n")
    assert [(p.line, p.message) for p in problems] == [(3, "duplicate key `a` (first at line 1)")]


def test_merge_keys_may_be_overridden() -> None:
    text = "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n"
    node, problems = load_located("f.yaml", text)
    assert problems == []
    assert node is not None
    assert node.plain()["derived"] == {"x": 1, "y": 3}


def test_syntax_errors_carry_a_line() -> None:
    node, problems = load_located("f.yaml", "a: 1\nb: [1, 2\nc: 3\n")
    assert node is None
    [problem] = problems
    assert problem.line == 3
    assert problem.message.startswith("invalid YAML")


def test_recursive_alias_is_a_problem_not_a_hang() -> None:
    _, problems = load_located("f.yaml", "a: &x [1, *x]\n")
    assert any("recursive" in p.message for p in problems)


def test_alias_bombs_stay_linear() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    node, problems = load_located("f.yaml", "\n".join(lines) + "\n")
    assert problems == []
    assert node is not None
    assert node.value["a8"].value[0] is node.value["a7"]


def test_empty_document() -> None:
    assert load_located("f.yaml", "# nothing\n") == (None, [])
