"""Decision rows as the driver takes them: an encoding that never raises.

A decision row is a dict with the columns of ``decisions``. Most of it is tether's own
(ids, outcome, reasons), but ``context`` and the entity ids are the caller's, and a
caller's value may be anything the edge let through: an integer beyond 64 bits, a lone
surrogate, a NUL byte PostgreSQL text refuses, a nesting JSON cannot encode. None of that
may cost another row its place in the batch, so each row is encoded on its own
(:meth:`RowEncoder.encode`): text a store would refuse (a NUL byte, a lone surrogate, more
characters than its column) is cleaned, the same on every backend, and a row that still
cannot be encoded becomes an **error row**
(:func:`error_row`): the same decision id, time, principal, action, resource and
outcome, every text cleaned to what any store accepts, and ``context`` replaced by
``{"tether_error": "context not storable: <reason>"}``. An error row is what an audit
needs: the decision happened, and why its context is not there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Engine, String

from tether.ids import new_id
from tether.store.record_chain import CHAIN_COLUMNS, DECISION_COLUMNS
from tether.store.tables import decisions

#: The key of ``context`` in an error row.
ERROR_KEY = "tether_error"
#: A reason longer than this is cut (it is stored, and read by people).
REASON_CHARS = 160

# Plain `str` names (SQLAlchemy's are a subclass orjson refuses as a key); the chain's
# two hashes are added by the writer (tether.store.record_chain), never from a row.
COLUMNS = DECISION_COLUMNS
_ROW_COLUMNS = [c for c in decisions.columns if c.name not in CHAIN_COLUMNS]
JSON_COLUMNS = frozenset(str(c.name) for c in _ROW_COLUMNS if isinstance(c.type, JSON))
STRING_LENGTHS = {
    str(column.name): int(column.type.length)
    for column in _ROW_COLUMNS
    if isinstance(column.type, String) and column.type.length
}
_NULLABLE_STRINGS = frozenset(
    str(c.name) for c in _ROW_COLUMNS if isinstance(c.type, String) and c.nullable
)
# Integer columns (PostgreSQL INTEGER: 32 bits).
_INT_MAX = 2**31 - 1
Params = tuple[Any, ...]


def encode_json(value: Any) -> str:
    """JSON text of ``value`` as a store keeps it; raises on what JSON cannot hold.

    orjson first (fast); the standard library for what orjson refuses but JSON can say
    (integers beyond 64 bits, non-string keys). Never a lone surrogate: the text must be
    valid UTF-8 for every driver.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        text.encode()  # UnicodeEncodeError on a lone surrogate
        return text


def short_reason(exc: BaseException) -> str:
    """What went wrong, in one short line: the driver's own message where there is one
    (SQLAlchemy's wrapper adds the statement and its parameters)."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0]
    text = f"{type(cause).__name__}: {first}" if first else type(cause).__name__
    return clean_text(text, REASON_CHARS)


def clean_text(value: str, length: int | None = None) -> str:
    """``value`` as any store accepts it: valid UTF-8, no NUL, at most ``length`` chars."""
    text = value.encode("utf-8", "replace").decode().replace("\x00", "")
    return text[:length] if length is not None else text


def storable(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with its text columns cleaned (:func:`clean_text`), everything else kept:
    what a store refused for a NUL byte or an over-long id, stored without loss of context."""
    fixed = dict(row)
    for name, length in STRING_LENGTHS.items():
        value = fixed.get(name)
        if isinstance(value, str):
            fixed[name] = clean_text(value, length)
    return fixed


def error_row(row: Any, reason: str) -> dict[str, Any]:
    """The error row standing for ``row`` (see the module docstring): every column of a
    type the store takes, whatever ``row`` holds (even if it is not a mapping)."""
    source: Mapping[str, Any] = row if isinstance(row, Mapping) else {}
    fixed: dict[str, Any] = {}
    for name, length in STRING_LENGTHS.items():
        value = source.get(name)
        if value is None and name in _NULLABLE_STRINGS:
            fixed[name] = None
        else:
            fixed[name] = clean_text(value if isinstance(value, str) else _text(value), length)
    if not fixed["decision_id"]:
        fixed["decision_id"] = new_id()
    at = source.get("at")
    fixed["at"] = at if isinstance(at, datetime) and at.tzinfo is not None else datetime.now(UTC)
    fixed["decision"] = source.get("decision") is True
    fixed["reasons"] = _texts(source.get("reasons"))
    fixed["errors"] = _texts(source.get("errors"))
    obligations = source.get("obligations")
    fixed["obligations"] = (
        {clean_text(_text(k)): clean_text(_text(v)) for k, v in obligations.items()}
        if isinstance(obligations, Mapping)
        else {}
    )
    fixed["context"] = {ERROR_KEY: clean_text(f"context not storable: {reason}", 400)}
    fixed["estate_revision"] = _bounded_int(source.get("estate_revision"), None)
    fixed["duration_us"] = _bounded_int(source.get("duration_us"), 0)
    return fixed


def _text(value: Any) -> str:
    if value is None:
        return ""
    try:
        return str(value)
    except Exception:  # a caller's object whose __str__ fails
        return f"<{type(value).__name__}>"


def _texts(value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        return []
    return [clean_text(_text(item), 400) for item in value]


def _bounded_int(value: Any, default: int | None) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _INT_MAX:
        return value
    return default


class RowEncoder:
    """Encodes decision rows into the driver's parameters for :attr:`insert_sql`.

    Straight to the driver's ``executemany``: SQLAlchemy's per-row processing costs more
    than the database does at thousands of decisions per second.
    """

    def __init__(self, engine: Engine) -> None:
        names = ", ".join([*COLUMNS, *CHAIN_COLUMNS])
        self._to_params: Callable[[Mapping[str, Any]], Params]
        if engine.dialect.name == "sqlite":
            marks = ", ".join("?" for _ in [*COLUMNS, *CHAIN_COLUMNS])
            self._to_params = _sqlite_params
        else:
            marks = ", ".join(
                "CAST(%s AS JSON)" if c in JSON_COLUMNS else "%s"
                for c in [*COLUMNS, *CHAIN_COLUMNS]
            )
            self._to_params = _driver_params
        self.insert_sql = f"INSERT INTO decisions ({names}) VALUES ({marks})"  # noqa: S608 - names from our own table

    def encode(self, row: Any) -> Params:
        """The parameters of ``row``, or of its error row if ``row`` cannot be encoded;
        never raises."""
        try:
            return self._to_params(row)
        except Exception as exc:  # RecursionError, UnicodeEncodeError, anything
            return self._to_params(error_row(row, short_reason(exc)))

    def params(self, row: Mapping[str, Any]) -> Params:
        """The parameters of ``row`` as it is; raises what encoding it raises."""
        return self._to_params(row)


# Positions in COLUMNS order, so a row is encoded in one pass over its values (a call per
# column cost more than the rest of the row's encoding).
_AT = COLUMNS.index("at")
_JSON_AT = tuple(i for i, name in enumerate(COLUMNS) if name in JSON_COLUMNS)
_STRINGS_AT = tuple(
    (i, STRING_LENGTHS[name]) for i, name in enumerate(COLUMNS) if name in STRING_LENGTHS
)
_PLAIN_AT = tuple(i for i, name in enumerate(COLUMNS) if name not in JSON_COLUMNS)


def _common_values(row: Mapping[str, Any]) -> list[Any]:
    """The row's values in :data:`COLUMNS` order, JSON columns as text and text columns
    fitted (:func:`_fit`), the same on every store."""
    get = row.get
    values = [get(name) for name in COLUMNS]
    for i in _JSON_AT:
        values[i] = encode_json(values[i])
    for i, length in _STRINGS_AT:
        value = values[i]
        if isinstance(value, str):
            values[i] = _fit(value, length)
    return values


def _sqlite_params(row: Mapping[str, Any]) -> Params:
    values = _common_values(row)
    _require_time(values[_AT])
    for i in _PLAIN_AT:
        value = values[i]
        if isinstance(value, datetime):
            values[i] = _sqlite_time(value)
    return tuple(values)


def _sqlite_time(value: datetime) -> str:
    """The storage format SQLAlchemy's SQLite DateTime reads back (UTC, no offset):
    ``YYYY-MM-DD HH:MM:SS.ffffff`` (``isoformat``: a third of ``strftime``'s cost)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _driver_params(row: Mapping[str, Any]) -> Params:
    _require_time(row.get("at"))
    return tuple(_common_values(row))


def _fit(value: str, length: int) -> str:
    """``value`` as its column takes it on every store, the same on each: what a store
    would refuse (a NUL byte on PostgreSQL, a lone surrogate anywhere, more characters than
    the column has) is cleaned here, before it could make a batch fail. Costs two C-level
    scans for the usual short ASCII id."""
    if len(value) <= length and "\x00" not in value and (value.isascii() or _is_utf8(value)):
        return value
    return clean_text(value, length)


def _is_utf8(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _require_time(value: Any) -> None:
    # SQLite would keep any text (and nothing could read the row back); PostgreSQL would
    # parse words such as `yesterday`. The time of a decision is tether's, never a caller's.
    if not isinstance(value, datetime):
        raise TypeError(f"`at` must be a datetime, got `{type(value).__name__}`")
