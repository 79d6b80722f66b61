"""An identity's access path drawn as a graph (server-rendered SVG): proof -> task ->
tokens -> decisions and calls -> resources, outside steps marked, each node a link to its
evidence (the node's recorded attributes, shown below the graph).

The layout is the path's own tree (:class:`tether.paths.AccessPath`): depth is the column,
reading order the row.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

from tether.api.paths import read_path
from tether.paths import AccessPath, PathNode, PathQuery
from tether.services import Tether
from tether.web.pages import READERS, Dashboard, View

COLUMN = 190
ROW = 34
BOX_W = 170
BOX_H = 24
MAX_NODES = 400


@dataclass(frozen=True)
class PlacedNode:
    node: PathNode
    x: int
    y: int


@dataclass(frozen=True)
class Layout:
    nodes: tuple[PlacedNode, ...]
    edges: tuple[tuple[PlacedNode, PlacedNode], ...]
    width: int
    height: int


def lay_out(path: AccessPath, limit: int = MAX_NODES) -> Layout:
    placed: dict[str, PlacedNode] = {}
    for row, (depth, node) in enumerate(path.walk()):
        if row >= limit:
            break
        placed[node.id] = PlacedNode(node, 10 + depth * COLUMN, 10 + row * ROW)
    edges = tuple(
        (placed[p.node.parent], p)
        for p in placed.values()
        if p.node.parent is not None and p.node.parent in placed
    )
    width = max((p.x for p in placed.values()), default=0) + BOX_W + 20
    height = max((p.y for p in placed.values()), default=0) + BOX_H + 20
    return Layout(tuple(placed.values()), edges, width, height)


def path_routes(tether: Tether, dashboard: Dashboard) -> list[Route]:
    async def show(view: View) -> Response:
        params = view.request.query_params
        query = PathQuery.parse(params.get("identity"), task=params.get("task") or None)
        path = await run_in_threadpool(read_path, tether, query)
        chosen = params.get("node")
        selected = next((n for n in path.nodes if n.id == chosen), None)
        return view.render(
            "path.html",
            path=path,
            layout=lay_out(path),
            selected=selected,
            box_w=BOX_W,
            box_h=BOX_H,
        )

    return [dashboard.page("/paths", show, roles=READERS)]
