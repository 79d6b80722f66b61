"""``tether paths IDENTITY``: an identity's observed access path, as a tree or a picture.

Formats: ``tree`` (for people: proof → task → tokens → decisions and calls, each access
step marked), ``json`` (``--json`` too), ``mermaid`` and ``dot`` (text for a picture;
outside steps in red). Exit codes: 0 when the path was shown, whatever it holds;
``--fail-on-outside`` makes a path with an ``outside`` step exit 1 (a finding the user
must act on, for scripts and CI); 2 on bad input (unknown identity or task, bad times).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape
from rich.tree import Tree

from tether.api.paths import read_path
from tether.cli.common import DbOption, JsonOption, open_tether
from tether.cli.output import EXIT_ACTION_NEEDED, EXIT_OK, console, emit_json, errors_to_exit
from tether.paths import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    AccessPath,
    Mark,
    NodeKind,
    PathNode,
    PathQuery,
    to_dot,
    to_mermaid,
)


class PathFormat(StrEnum):
    TREE = "tree"
    JSON = "json"
    MERMAID = "mermaid"
    DOT = "dot"


_MARKS = {
    Mark.WITHIN_INTENT: "[green]✓ within intent[/]",
    Mark.WITHIN_ENTITLEMENT: "[yellow]✓ within entitlement[/]",
    Mark.OUTSIDE: "[bold red]✗ outside[/]",
}
_KIND_STYLE = {
    NodeKind.IDENTITY: "bold",
    NodeKind.PROOF: "cyan",
    NodeKind.TASK: "bold cyan",
    NodeKind.TOKEN: "magenta",
    NodeKind.DECISION: "blue",
    NodeKind.CALL: "default",
    NodeKind.RESOURCE: "dim",
}


def paths(
    identity: Annotated[str, typer.Argument(help="the identity id")],
    task: Annotated[str | None, typer.Option(help="only this task of the identity")] = None,
    since: Annotated[
        str | None, typer.Option(help="from this time (ISO 8601, UTC if no offset)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="before this time (ISO 8601)")] = None,
    output: Annotated[
        PathFormat, typer.Option("--format", help="tree for people, json, mermaid or dot")
    ] = PathFormat.TREE,
    limit: Annotated[
        int,
        typer.Option(min=1, max=MAX_LIMIT, help="read at most this many events and decisions"),
    ] = DEFAULT_LIMIT,
    fail_on_outside: Annotated[
        bool, typer.Option("--fail-on-outside", help="exit 1 when a step is outside")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The access path of an identity: proof → task → tokens → decisions and calls → resources."""
    if as_json:
        output = PathFormat.JSON
    machine = output is PathFormat.JSON
    with errors_to_exit(machine):
        query = PathQuery.parse(identity, task=task, since=since, until=until, limit=limit)
        with open_tether(db) as tether:
            path = read_path(tether, query)
    if output is PathFormat.JSON:
        emit_json(path.to_json())
    elif output is PathFormat.MERMAID:
        console.out(to_mermaid(path), end="", highlight=False)
    elif output is PathFormat.DOT:
        console.out(to_dot(path), end="", highlight=False)
    else:
        console.print(path_tree(path))
        console.print(_summary(path), highlight=False)
    raise SystemExit(EXIT_ACTION_NEEDED if fail_on_outside and path.outside else EXIT_OK)


def _line(node: PathNode) -> str:
    style = _KIND_STYLE[node.kind]
    text = f"[{style}]{escape(node.label)}[/]"
    if node.at is not None and node.kind is not NodeKind.RESOURCE:
        text = f"[dim]{node.at.strftime('%Y-%m-%d %H:%M:%S')}[/] {text}"
    if node.mark is not None:
        text += f"  {_MARKS[node.mark]}"
    if node.why:
        text += f"[red]: {escape(node.why)}[/]"
    return text


def path_tree(path: AccessPath) -> Tree:
    """The path as a rich tree, in reading order."""
    tree = Tree(_line(path.root), guide_style="dim")
    branches = {path.root.id: tree}
    for _, node in path.walk():
        if node.parent is None:
            continue
        parent = branches[node.parent]
        if node.kind is NodeKind.RESOURCE and node.parent == path.root.id:
            parent = branches.get("resources") or branches.setdefault(
                "resources", tree.add("[bold]resources reached[/]")
            )
        branches[node.id] = parent.add(_line(node))
    return tree


def _summary(path: AccessPath) -> str:
    counts = dict.fromkeys(Mark, 0)
    for node in path.nodes:
        if node.mark is not None:
            counts[node.mark] += 1
    text = (
        f"{counts[Mark.WITHIN_INTENT]} within intent, "
        f"{counts[Mark.WITHIN_ENTITLEMENT]} within entitlement, "
        f"{counts[Mark.OUTSIDE]} outside"
    )
    if path.truncated:
        text += " (truncated: raise --limit or narrow --since/--until)"
    return text
