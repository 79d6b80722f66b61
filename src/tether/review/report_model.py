"""What a review report is made of: sections of rows, each row carrying framework references.

A report (:mod:`tether.review.report`) is a title, a scope and a sequence of
:class:`ReportSection` values. The access review produces its own sections; other
review modules (lifecycle, third-party grants, estate metrics, offboarding) produce
theirs with :func:`section` and hand them to the report builder, which renders every
section the same way in Markdown, HTML, JSON and CSV.

A row is a plain mapping of column name to a JSON-able scalar (``str``, ``int``,
``float``, ``bool`` or ``None``). Every row has a ``row_type`` (``unused_entitlement``,
``rotation_overdue``, ...) and a stable ``row_id`` (sign-off decisions name it); the
report builder adds the row type's framework references from ``frameworks.yaml``
(columns ``owasp_asi``, ``maestro``, ``nist_ai_rmf``, ``nist_csf``) so a producer need
not. Summary figures are named numbers shown above the rows (``{"identities": 12}``)
and, for ``chart="bar"``, drawn as a bar chart in the HTML report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

Scalar = str | int | float | bool | None
Row = Mapping[str, Scalar]

_EMPTY: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportSection:
    """One titled table of a review report.

    Attributes:
        key: stable machine name of the section (``access``, ``lifecycle``, ``grants``).
        title: heading shown to people.
        columns: the row keys to show, in order (rows may carry more; JSON keeps all).
        rows: the rows; each has at least ``row_type`` and ``row_id``.
        summary: named figures shown above the table (counts, shares in percent).
        frameworks: framework references that apply to the section as a whole,
            ``{"owasp_asi": ("ASI03",), "nist_csf": ("PR.AA-05",)}``; row references
            come from each row's ``row_type``.
        description: one or two sentences saying what the section shows.
        chart: ``"bar"`` to draw ``summary`` as a bar chart in HTML, else ``None``.
    """

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...] = ()
    summary: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    frameworks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""
    chart: str | None = None


def section(
    key: str,
    title: str,
    columns: Sequence[str],
    rows: Iterable[Row],
    *,
    summary: Mapping[str, float] | None = None,
    frameworks: Mapping[str, Sequence[str]] | None = None,
    description: str = "",
    chart: str | None = None,
) -> ReportSection:
    """Build a :class:`ReportSection`, copying its inputs into immutable values."""
    return ReportSection(
        key=key,
        title=title,
        columns=tuple(columns),
        rows=tuple(MappingProxyType(dict(r)) for r in rows),
        summary=MappingProxyType(dict(summary or {})),
        frameworks={k: tuple(v) for k, v in (frameworks or {}).items()},
        description=description,
        chart=chart,
    )


class SectionSource(Protocol):
    """Anything that contributes sections to a review (lifecycle, grants, metrics)."""

    def __call__(self) -> Sequence[ReportSection]: ...
