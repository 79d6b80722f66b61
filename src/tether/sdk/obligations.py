"""The obligations a guarded tool fulfils on its result (DESIGN "Outcomes").

A ``constrain`` decision allows a call on conditions; a PEP that cannot fulfil one must
refuse. The guard knows:

* ``max_rows=N``: a list (or tuple) result is cut to its first ``N`` items;
* ``redact=a,b``: every member named ``a`` or ``b`` of a dict result, at any depth of
  dicts and lists, is replaced by ``[REDACTED]``;
* ``read_only=true``: fulfilled only by a tool declared ``read_only=True``;

and any the tool adds (``guarded(obligations={"name": handler})``). Which obligations a
decision carries is checked *before* the call (an unknown one refuses it); a known one
that does not fit the result (``max_rows`` on a dict) withholds the result after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

ObligationHandler = Callable[[Any, str], Any]
"""Fulfils one obligation: ``handler(result, value)`` is the result the agent may see.
It raises :class:`ObligationMismatch` when the result is not of a kind it can treat."""

REDACTED = "[REDACTED]"
READ_ONLY = "read_only"


class ObligationMismatch(ValueError):
    """A known obligation that this result cannot be made to fulfil."""


def max_rows(result: Any, value: str) -> Any:
    """The first ``value`` items of a list or tuple result."""
    try:
        limit = int(value)
    except ValueError:
        raise ObligationMismatch(f"`max_rows` must be an integer, got `{value}`") from None
    if limit < 0:
        raise ObligationMismatch(f"`max_rows` must not be negative, got `{value}`")
    if not isinstance(result, (list, tuple)):
        raise ObligationMismatch(f"`max_rows` needs a list result, got {type(result).__name__}")
    return result[:limit]


def _masked(value: Any, fields: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        return {
            key: REDACTED if key in fields else _masked(item, fields) for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(_masked(item, fields) for item in value)
    return value


def redact(result: Any, value: str) -> Any:
    """The result with every member named in ``value`` (comma-separated) masked."""
    fields = frozenset(name.strip() for name in value.split(",") if name.strip())
    if not isinstance(result, (Mapping, list, tuple)):
        raise ObligationMismatch(
            f"`redact` needs a dict or list result, got {type(result).__name__}"
        )
    return _masked(result, fields)


BUILT_IN: Mapping[str, ObligationHandler] = {"max_rows": max_rows, "redact": redact}


def _read_only_fulfilled(result: Any, value: str) -> Any:
    return result  # the tool declared itself read-only: nothing to change


def handlers_for(
    extra: Mapping[str, ObligationHandler] | None, *, read_only: bool
) -> dict[str, ObligationHandler]:
    """Every obligation a tool can fulfil: the built-in ones, ``read_only`` for a
    read-only tool, and the tool's own (which may replace a built-in one)."""
    known = dict(BUILT_IN)
    if read_only:
        known[READ_ONLY] = _read_only_fulfilled
    known.update(extra or {})
    return known


def unsupported(
    obligations: Mapping[str, str], known: Mapping[str, ObligationHandler]
) -> list[str]:
    """The obligations of a decision the tool cannot fulfil (``read_only=false`` asks
    nothing)."""
    return sorted(
        name
        for name, value in obligations.items()
        if name not in known and not (name == READ_ONLY and value == "false")
    )


def fulfil(
    result: Any, obligations: Mapping[str, str], known: Mapping[str, ObligationHandler]
) -> Any:
    """``result`` with every obligation applied, in name order.

    Raises:
        ObligationMismatch: an obligation that does not fit the result.
    """
    for name in sorted(obligations):
        if name in known:
            result = known[name](result, obligations[name])
    return result


def names(obligations: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in obligations)
