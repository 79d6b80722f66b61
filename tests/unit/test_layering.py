"""Dependencies between tether's packages point inward, and no two packages import each other.

Read from the source (every ``import tether.x`` and ``from tether.x import``, including
imports inside functions), so an arrow added anywhere that runs back up (a domain package
importing the composition root, the store importing a domain package) or closes a cycle
fails here, with the packages and the modules that make it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import tether

ROOT = Path(tether.__file__).parent


def _package_imports() -> dict[str, dict[str, set[str]]]:
    """``{package: {imported package: {module that imports it}}}``."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        package = relative.parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "tether" and node.level == 0:
                # `from tether import sdk` imports a package; `__version__` is no package.
                names = [f"tether.{a.name}" for a in node.names if not a.name.startswith("__")]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
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


# tether's packages (top-level modules count as packages), innermost first. A package
# may import packages of its own layer or of layers before it, never of a later one.
LAYERS: tuple[frozenset[str], ...] = (
    # Shared vocabulary: errors, ids, settings, the framework catalogue, building frozen
    # values on hot paths.
    frozenset({"errors", "ids", "numerals", "config", "frameworks", "frozen"}),
    # The store: tables, migrations, the hash chains, the audit log, the decision log.
    frozenset({"store"}),
    frozenset({"policy", "identity", "inventory"}),
    frozenset({"estate"}),
    frozenset({"tokens"}),
    # The domain services, each on the store and the packages above.
    frozenset({"callers", "telemetry", "signals", "approvals", "drift", "review"}),
    # Read models and the decision core above the domain (access paths, the live estate,
    # the decider, the edges' read models, the in-memory ports of tether.testing).
    frozenset({"paths", "live", "decider", "records", "testing"}),
    # The composition root: parts built from settings; the worker process builds some of
    # them; the services object holds them all and starts and stops their threads.
    frozenset({"composition"}),
    # The event bus (NATS JetStream): publishing beside the server, drift workers.
    frozenset({"bus"}),
    frozenset({"worker"}),
    frozenset({"services"}),
    # Edges: HTTP (the API, and the dashboard beside it), the MCP gateway, the SDK, the
    # evaluation harness (it drives a whole tether), then the command line over everything.
    frozenset({"api", "gateway", "sdk", "evaluation", "web"}),
    frozenset({"cli"}),
    # The package's own face: `tether.Client` and friends, imported from the SDK lazily.
    frozenset({"__init__"}),
)
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}


def test_every_package_has_a_layer() -> None:
    packages = {
        path.relative_to(ROOT).parts[0].removesuffix(".py")
        for path in ROOT.rglob("*.py")
        if path.relative_to(ROOT).parts[0] not in ("__init__.py", "py.typed")
    }
    assert packages - set(RANK) == set(), "give each new package a layer in LAYERS"


def test_no_package_imports_a_later_layer() -> None:
    graph = _package_imports()
    back_edges = {
        f"{a} -> {b}": sorted(modules)
        for a, imported in graph.items()
        for b, modules in imported.items()
        if RANK.get(b, len(LAYERS)) > RANK.get(a, -1)
    }
    assert back_edges == {}, f"imports that run back up (edge: modules): {back_edges}"


def test_no_two_packages_import_each_other() -> None:
    graph = _package_imports()
    cycles = {
        tuple(sorted((a, b))): sorted(graph[a][b] | graph[b][a])
        for a in graph
        for b in graph[a]
        if a in graph.get(b, {})
    }
    assert cycles == {}, f"packages importing each other (pair: modules): {cycles}"
