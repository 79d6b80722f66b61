"""Which parts of the Cedar context a policy set can observe, and the context cut to them.

Cedar parses the whole context of every request into its own values before it evaluates
a policy: about 2 µs per key here, a third of a small decision. A policy can only observe
the context through the ``context`` variable, and most read it as ``context.k``,
``context.k.s``, ``context has k`` or ``context.k has s``; what no policy reads cannot
change an answer, nor an error (an attribute that is read is kept whole, so every value
Cedar evaluates, and every message it writes, is the same). So the context handed to
Cedar keeps only the keys read: :func:`context_use` finds them in the policies' JSON
form (EST), :func:`cut_context` applies them. Any other use of ``context`` (the whole
record compared, passed to a function, put in a set) keeps everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Per top-level key, ``None`` (kept whole) or the set of its keys that are read (each
#: kept whole). ``None`` for the whole use: nothing is cut.
ContextUse = dict[str, frozenset[str] | None] | None

_ACCESS = (".", "has")


def context_use(policy_ests: Iterable[Mapping[str, Any]]) -> ContextUse:
    """What the policies read of ``context`` (see :data:`ContextUse`)."""
    paths: set[tuple[str, ...]] = set()
    for est in policy_ests:
        if not _collect(est, paths):
            return None
    use: dict[str, set[str] | None] = {}
    for path in sorted(paths, key=len):
        key = path[0]
        if len(path) == 1:
            use[key] = None  # the value itself is read (or tested for): kept whole
        elif key not in use:
            use[key] = {path[1]}
        else:
            subkeys = use[key]
            if subkeys is not None:
                subkeys.add(path[1])
    return {key: None if subkeys is None else frozenset(subkeys) for key, subkeys in use.items()}


def cut_context(context: dict[str, Any], use: ContextUse) -> dict[str, Any]:
    """``context`` with only what ``use`` says the policies read; ``context`` itself when
    a part left out is one Cedar might refuse to parse (a refusal is a denial with its
    error: leaving that part out would change the answer)."""
    if use is None:
        return context
    cut: dict[str, Any] = {}
    for key, value in context.items():
        if key not in use:
            # The usual values left out without a call: strings, small integers, `{}`.
            kind = type(value)
            if (
                kind is str
                or (kind is int and _INT64_MIN <= value <= _INT64_MAX)
                or (kind is dict and not value)
                or _inert(value)
            ):
                continue
            return context
        subkeys = use[key]
        if subkeys is None or not _plain_record(value):
            cut[key] = value
            continue
        kept = {}
        for subkey, subvalue in value.items():
            if subkey in subkeys:
                kept[subkey] = subvalue
            elif type(subvalue) is not str and not _inert(subvalue):
                return context
        cut[key] = kept
    return cut


#: Deeper than this, a part left out is not looked into: the whole context goes to Cedar.
_MAX_INERT_DEPTH = 16
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _inert(value: Any, depth: int = 0) -> bool:
    """A value Cedar parses without fail: booleans, strings, 64-bit integers, and sets
    and records of them (no ``__`` keys: Cedar may read those as escapes), not too deep."""
    kind = type(value)
    if kind is str or kind is bool:
        return True
    if kind is int:
        return bool(_INT64_MIN <= value <= _INT64_MAX)
    if depth >= _MAX_INERT_DEPTH:
        return False
    if kind is dict:
        for k, v in value.items():
            if type(k) is not str or k.startswith("__"):
                return False
            # The usual members, strings and small integers, without a call each.
            member = type(v)
            if member is str or (member is int and _INT64_MIN <= v <= _INT64_MAX):
                continue
            if not _inert(v, depth + 1):
                return False
        return True
    if kind is list:
        return all(_inert(v, depth + 1) for v in value)
    return False


def _plain_record(value: Any) -> bool:
    """A record, not Cedar JSON's escape of an entity (``__entity``), an extension value
    (``__extn``) or an expression (``__expr``): those are values of their own, kept whole."""
    return (
        type(value) is dict
        and "__entity" not in value
        and "__extn" not in value
        and "__expr" not in value
    )


def _collect(node: Any, paths: set[tuple[str, ...]]) -> bool:
    """Add the context paths read under ``node``; ``False``: ``context`` is used whole."""
    if isinstance(node, list):
        return all(_collect(item, paths) for item in node)
    if not isinstance(node, Mapping):
        return True
    if node.get("Var") == "context":
        return False  # reached other than as the root of an attribute access
    for op in _ACCESS:
        access = node.get(op)
        if len(node) == 1 and isinstance(access, Mapping):
            path = _context_path(access.get("left"))
            attr = access.get("attr")
            if path is not None and isinstance(attr, str):
                paths.add((*path, attr)[:2])  # below two levels a value is kept whole
                return True
    return all(_collect(value, paths) for value in node.values())


def _context_path(node: Any) -> tuple[str, ...] | None:
    """``()`` for ``context`` itself, ``("k", "s")`` for ``context.k.s``; else ``None``."""
    if not isinstance(node, Mapping) or len(node) != 1:
        return None
    if node.get("Var") == "context":
        return ()
    access = node.get(".")
    if isinstance(access, Mapping) and isinstance(access.get("attr"), str):
        left = _context_path(access.get("left"))
        if left is not None:
            return (*left, access["attr"])
    return None
