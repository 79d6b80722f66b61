"""Dependencies between tether's packages point one way: no two packages import each other.

Read from the source (every ``import tether.x`` and ``from tether.x import``, including
imports inside functions), so a cycle added anywhere fails here with its two packages
and the modules that close it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import tether

ROOT = Path(tether.__file__).parent

# Cycles that remain, each to be removed by issue 18 (the composition root); this set
# may only shrink.
KNOWN_CYCLES = {frozenset({"services", "worker"})}


def _package_imports() -> dict[str, dict[str, set[str]]]:
    """``{package: {imported package: {module that imports it}}}``."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        package = relative.parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "tether" and len(parts) > 1 and parts[1] != package:
                    graph[package][parts[1]].add(str(relative))
    return graph


def test_no_two_packages_import_each_other() -> None:
    graph = _package_imports()
    cycles = {
        frozenset({a, b}): sorted(graph[a][b] | graph[b][a])
        for a in graph
        for b in graph[a]
        if a in graph.get(b, {})
    }
    unexpected = {tuple(sorted(pair)): modules for pair, modules in cycles.items()}
    for known in KNOWN_CYCLES:
        unexpected.pop(tuple(sorted(known)), None)
    assert unexpected == {}, f"packages importing each other (pair: modules): {unexpected}"


def test_the_known_cycles_still_exist_or_leave_the_list() -> None:
    graph = _package_imports()
    gone = [
        sorted(pair)
        for pair in KNOWN_CYCLES
        if not all(b in graph.get(a, {}) for a in pair for b in pair - {a})
    ]
    assert gone == [], f"cycles removed: take them out of KNOWN_CYCLES: {gone}"


def test_tokens_and_callers_are_layered_tokens_first() -> None:
    assert "callers" not in _package_imports()["tokens"]
