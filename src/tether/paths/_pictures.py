"""An access path as a picture: Mermaid ``flowchart`` text and Graphviz DOT text.

Both draw every node and edge of the path, nodes in reading order, ``outside`` steps in
red (Mermaid ``classDef outside``; DOT ``color=red``), within-intent steps green and
within-entitlement steps amber. Node ids are ``n0``, ``n1``... in reading order; labels
are escaped for each language (Mermaid entity codes, DOT quoted strings), so no value
from the store can break out of a label.
"""

from __future__ import annotations

from tether.paths._model import AccessPath, Mark, NodeKind, PathNode

_MAX_LABEL = 120
_SHAPES_MERMAID = {
    NodeKind.IDENTITY: ('(["', '"])'),
    NodeKind.PROOF: ('[/"', '"/]'),
    NodeKind.TASK: ('[["', '"]]'),
    NodeKind.TOKEN: ('{{"', '"}}'),
    NodeKind.DECISION: ('{"', '"}'),
    NodeKind.CALL: ('["', '"]'),
    NodeKind.RESOURCE: ('[("', '")]'),
}
_SHAPES_DOT = {
    NodeKind.IDENTITY: "ellipse",
    NodeKind.PROOF: "parallelogram",
    NodeKind.TASK: "box3d",
    NodeKind.TOKEN: "hexagon",
    NodeKind.DECISION: "diamond",
    NodeKind.CALL: "box",
    NodeKind.RESOURCE: "cylinder",
}
_COLOURS = {Mark.WITHIN_INTENT: "darkgreen", Mark.WITHIN_ENTITLEMENT: "darkorange3"}
_CLASS_STYLES = {
    Mark.WITHIN_INTENT: "fill:#e8f5e9,stroke:#2e7d32,color:#1b5e20",
    Mark.WITHIN_ENTITLEMENT: "fill:#fff8e1,stroke:#ef6c00,color:#e65100",
    Mark.OUTSIDE: "fill:#ffebee,stroke:#c62828,color:#b71c1c,stroke-width:2px",
}


def _text(node: PathNode) -> str:
    label = node.label if len(node.label) <= _MAX_LABEL else node.label[: _MAX_LABEL - 1] + "…"
    if node.mark is not None:
        label += f"\n[{node.mark}]"
    return label


def _ids(path: AccessPath) -> dict[str, str]:
    return {node.id: f"n{index}" for index, node in enumerate(path.nodes)}


def _mermaid_label(text: str) -> str:
    # Inside a quoted Mermaid label only `"` ends it; entity codes stand for the rest.
    out = []
    for ch in text:
        if ch == "\n":
            out.append("<br/>")
        elif ch in '"#<>&' or ord(ch) < 32:
            out.append(f"#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def to_mermaid(path: AccessPath) -> str:
    """The path as a Mermaid ``flowchart TD``."""
    ids = _ids(path)
    lines = ["flowchart TD"]
    for node in path.nodes:
        opening, closing = _SHAPES_MERMAID[node.kind]
        lines.append(f"  {ids[node.id]}{opening}{_mermaid_label(_text(node))}{closing}")
    for edge in path.edges:
        if edge.source in ids and edge.target in ids:
            arrow = "-.->" if edge.relation in ("authorized", "reached") else "-->"
            lines.append(f"  {ids[edge.source]} {arrow}|{edge.relation}| {ids[edge.target]}")
    for mark, style in _CLASS_STYLES.items():
        members = [ids[n.id] for n in path.nodes if n.mark is mark]
        lines.append(f"  classDef {mark} {style}")
        if members:
            lines.append(f"  class {','.join(members)} {mark}")
    return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "")
    return '"' + escaped.replace("\n", "\\n") + '"'


def to_dot(path: AccessPath) -> str:
    """The path as a Graphviz ``digraph``."""
    ids = _ids(path)
    lines = [
        "digraph access_path {",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for node in path.nodes:
        attrs = [f"label={_dot_string(_text(node))}", f"shape={_SHAPES_DOT[node.kind]}"]
        if node.mark is Mark.OUTSIDE:
            attrs += ["color=red", "fontcolor=red", "penwidth=2"]
        elif node.mark is not None:
            attrs.append(f"color={_COLOURS[node.mark]}")
        lines.append(f"  {ids[node.id]} [{', '.join(attrs)}];")
    for edge in path.edges:
        if edge.source in ids and edge.target in ids:
            attrs = [f"label={_dot_string(str(edge.relation))}"]
            if edge.relation in ("authorized", "reached"):
                attrs.append("style=dashed")
            if path.nodes[int(ids[edge.target][1:])].outside:
                attrs.append("color=red")
            lines.append(f"  {ids[edge.source]} -> {ids[edge.target]} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
