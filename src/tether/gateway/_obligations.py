"""Obligations of a ``constrain`` decision, applied by the gateway to an MCP result.

A PEP that cannot fulfil an obligation must refuse (DESIGN.md, "Outcomes"), so the
gateway checks the obligations *before* the upstream is called and refuses a call
carrying one it does not know. It knows:

* ``max_rows=N``: a list result keeps its first ``N`` items, in ``structuredContent``
  (a list, or the lists one level inside an object), in JSON text blocks, and as
  content blocks (one block per row, as MCP servers return lists);
* ``redact=a,b``: every member named ``a`` or ``b``, at any depth, becomes
  ``"[redacted]"``; a text block that is not JSON cannot be redacted by name and is
  withheld.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tether.numerals import decimal

KNOWN = frozenset({"max_rows", "redact"})
REDACTED = "[redacted]"
WITHHELD = "[withheld: the result must be redacted and this text is not JSON]"
#: The error code of a call whose obligations the gateway cannot fulfil.
UNFULFILLABLE = "obligation_unsupported"


def unfulfillable(obligations: Mapping[str, str]) -> list[str]:
    """The obligations the gateway cannot apply (then it refuses the call)."""
    problems = sorted(k for k in obligations if k not in KNOWN)
    if "max_rows" in obligations and decimal(obligations["max_rows"]) is None:
        problems.append("max_rows")
    return problems


def constrain(result: dict[str, Any], obligations: Mapping[str, str]) -> dict[str, Any]:
    """``result`` (a ``CallToolResult`` as JSON, aliases and all) with the obligations
    applied (a new value; the input is not changed)."""
    if not obligations:
        return result
    limit = decimal(obligations.get("max_rows"))
    fields = frozenset(f for f in obligations.get("redact", "").split(",") if f)
    shown = dict(result)
    structured = result.get("structuredContent")
    if structured is not None:
        shown["structuredContent"] = _apply(structured, limit, fields, nested=True)
    content = list(result.get("content", ()))
    if limit is not None and len(content) > limit:
        content = content[:limit]
    shown["content"] = [_block(block, limit, fields) for block in content]
    shown["_meta"] = {**(result.get("_meta") or {}), "tether/obligations": dict(obligations)}
    return shown


def _block(block: Any, limit: int | None, fields: frozenset[str]) -> Any:
    if not isinstance(block, dict) or block.get("type") != "text":
        return block
    try:
        value = json.loads(block["text"])
    except ValueError:
        return {**block, "text": WITHHELD} if fields else block
    applied = _apply(value, limit, fields, nested=False)
    return {**block, "text": json.dumps(applied)}


def _apply(value: Any, limit: int | None, fields: frozenset[str], *, nested: bool) -> Any:
    if limit is not None:
        if isinstance(value, list):
            value = value[:limit]
        elif nested and isinstance(value, dict):
            value = {k: v[:limit] if isinstance(v, list) else v for k, v in value.items()}
    return _redact(value, fields) if fields else value


def _redact(value: Any, fields: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if k in fields else _redact(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, fields) for v in value]
    return value
