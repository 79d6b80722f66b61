"""A located YAML loader (YAML 1.1 via PyYAML's ``SafeLoader``): every value knows its line.

PyYAML's constructors throw node marks away, so estate errors could not say where
the offending value is. Here the document is *composed* (nodes keep their marks) and
turned into :class:`Node` trees: scalars are built by ``SafeLoader`` (so ``30``, ``true``
and ``2026-12-31`` mean what they mean in YAML), mappings keep the line of each key,
duplicate keys are errors (YAML would silently keep the last one), and keys are always
the key's text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

# LibYAML's parser when PyYAML was built with it (much faster); nodes and marks are alike.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAP = "map"
SEQ = "seq"
SCALAR = "scalar"


@dataclass(frozen=True, eq=False)
class Node:
    """One YAML value with its location; ``line`` is 1-based.

    ``value`` is a ``dict[str, Node]`` for mappings, a ``list[Node]`` for sequences and a
    plain Python value for scalars. ``key_lines`` gives the line of each mapping key.
    """

    file: str
    line: int
    shape: str
    value: Any
    key_lines: dict[str, int] = field(default_factory=dict)

    @property
    def is_map(self) -> bool:
        return self.shape == MAP

    @property
    def is_seq(self) -> bool:
        return self.shape == SEQ

    def items(self) -> Iterator[tuple[str, Node]]:
        """The entries of a mapping (nothing for other shapes)."""
        if self.shape == MAP:
            yield from self.value.items()

    def key_line(self, key: str) -> int:
        return self.key_lines.get(key, self.line)

    def plain(self) -> Any:
        """The value as plain Python data (dicts, lists, scalars)."""
        if self.shape == MAP:
            return {k: v.plain() for k, v in self.value.items()}
        if self.shape == SEQ:
            return [v.plain() for v in self.value]
        return self.value


@dataclass(frozen=True)
class YamlProblem:
    line: int | None
    message: str


def load_located(file: str, text: str) -> tuple[Node | None, list[YamlProblem]]:
    """Parse one YAML document into a :class:`Node` tree (``None`` for an empty document)."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "malformed YAML"
        return None, [YamlProblem(line, f"invalid YAML: {reason}")]
    except yaml.YAMLError as exc:
        return None, [YamlProblem(None, f"invalid YAML: {exc}")]
    if root is None:
        return None, []
    builder = _Builder(file)
    try:
        node = builder.build(root)
    finally:
        builder.loader.dispose()
    return node, builder.problems


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[YamlProblem] = []
        self.loader = yaml.SafeLoader("")
        # Aliases share composed nodes; building each once keeps "billion laughs" linear.
        self._built: dict[int, Node] = {}
        self._active: set[int] = set()

    def build(self, node: yaml.Node) -> Node:
        key = id(node)
        done = self._built.get(key)
        if done is not None:
            return done
        line = node.start_mark.line + 1
        if key in self._active:
            self.problems.append(YamlProblem(line, "recursive YAML alias"))
            return Node(self.file, line, SCALAR, None)
        self._active.add(key)
        try:
            if isinstance(node, yaml.MappingNode):
                built = self._mapping(node, line)
            elif isinstance(node, yaml.SequenceNode):
                built = Node(self.file, line, SEQ, [self.build(item) for item in node.value])
            else:
                built = Node(self.file, line, SCALAR, self._scalar(node, line))
        finally:
            self._active.discard(key)
        self._built[key] = built
        return built

    def _scalar(self, node: yaml.Node, line: int) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            reason = getattr(exc, "problem", None) or str(exc)
            self.problems.append(YamlProblem(line, f"invalid YAML value: {reason}"))
            return None

    def _mapping(self, node: yaml.MappingNode, line: int) -> Node:
        own = {id(k) for k, _ in node.value}
        try:
            self.loader.flatten_mapping(node)  # resolve `<<` merge keys
        except yaml.YAMLError as exc:
            reason = getattr(exc, "problem", None) or str(exc)
            self.problems.append(YamlProblem(line, f"invalid YAML merge: {reason}"))
        values: dict[str, Node] = {}
        key_lines: dict[str, int] = {}
        merged: set[str] = set()
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(YamlProblem(key_line, "mapping keys must be plain text"))
                continue
            key = str(key_node.value)
            if key in values and key not in merged:
                self.problems.append(
                    YamlProblem(key_line, f"duplicate key `{key}` (first at line {key_lines[key]})")
                )
                continue
            if id(key_node) in own:
                merged.discard(key)
            else:
                merged.add(key)
            values[key] = self.build(value_node)
            key_lines[key] = key_line
        return Node(self.file, line, MAP, values, key_lines)
