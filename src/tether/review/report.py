"""A review report: the access review, right-sizing and other sections, as one value.

:func:`build_report` turns an :class:`~tether.review.access.AccessReview` and its
right-sized policy set into sections of rows (adding every row's framework references
from ``frameworks.yaml``) plus any sections other review modules contribute;
:func:`framework_report` regroups the same rows by the ids of one framework. The
renderers (:mod:`tether.review.render`) turn a :class:`Report` into Markdown, HTML,
JSON or CSV. :attr:`Report.digest` is the SHA-256 of the report's canonical JSON
without its generation time: what a sign-off records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from tether.frameworks import COLUMNS, FrameworkCatalog, load_frameworks
from tether.review.access import AccessReview, IdentityReview
from tether.review.report_model import ReportSection, Row, section
from tether.review.rightsize import RightsizedPolicySet

FRAMEWORK_COLUMNS = tuple(COLUMNS.values())


@dataclass(frozen=True)
class Report:
    """Everything a review shows, independent of the format it is rendered in."""

    title: str
    generated_at: datetime
    scope: Mapping[str, Any]
    sections: tuple[ReportSection, ...]
    identities: tuple[Mapping[str, Any], ...]  # per identity: id, kind, used, unused, outside
    rightsized_cedar: str
    notes: tuple[str, ...] = ()

    def rows(self) -> Iterator[tuple[ReportSection, Row]]:
        for part in self.sections:
            for row in part.rows:
                yield part, row

    def row_ids(self) -> set[str]:
        return {str(row["row_id"]) for _, row in self.rows()}

    def to_json(self, *, with_time: bool = True) -> dict[str, Any]:
        value: dict[str, Any] = {
            "title": self.title,
            "scope": dict(self.scope),
            "identities": [dict(i) for i in self.identities],
            "sections": [
                {
                    "key": s.key,
                    "title": s.title,
                    "description": s.description,
                    "columns": list(s.columns),
                    "summary": dict(s.summary),
                    "frameworks": {k: list(v) for k, v in s.frameworks.items()},
                    "rows": [dict(r) for r in s.rows],
                }
                for s in self.sections
            ],
            "rightsized_policy": self.rightsized_cedar,
            "notes": list(self.notes),
        }
        if with_time:
            value["generated_at"] = self.generated_at.isoformat()
        return value

    @property
    def digest(self) -> str:
        """SHA-256 of the access review as shown: its sections and the right-sized policy,
        without the moments it was made at (the window slides with the clock). Sections
        other modules contribute are kept with a sign-off but not hashed: they may carry
        live figures (a metric's time of measurement) that differ on every read."""
        value = self.to_json(with_time=False)
        value["scope"] = {k: v for k, v in value["scope"].items() if k not in ("since", "until")}
        value["sections"] = [s for s in value["sections"] if _hashed(str(s["key"]))]
        canonical = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()


ACCESS_SECTIONS = ("identities", "entitlements", "outside", "findings", "exceptions", "rightsized")


def _hashed(key: str) -> bool:
    """Access-review sections, and framework views of rows (``framework:id``)."""
    return key in ACCESS_SECTIONS or ":" in key


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def build_report(
    review: AccessReview,
    policy_set: RightsizedPolicySet,
    *,
    generated_at: datetime,
    extra_sections: Sequence[ReportSection] = (),
    catalog: FrameworkCatalog | None = None,
) -> Report:
    """The report of an access review, its right-sized policies and ``extra_sections``."""
    catalog = catalog or load_frameworks()
    reviews = review.identities
    sections = [
        _overview(reviews),
        _entitlements(reviews),
        _outside(reviews),
        _findings(reviews),
        _exceptions(reviews),
        _rightsized(reviews, policy_set),
        *extra_sections,
    ]
    if review.identity is not None:  # other sections may cover the whole estate
        sections = [_only(s, review.identity) for s in sections]
    return Report(
        title="Access review" + (f": {review.identity}" if review.identity else ""),
        generated_at=generated_at,
        scope={
            "identity": review.identity,
            "since": review.since.isoformat(),
            "until": review.until.isoformat(),
            "estate_revision": review.estate_revision,
        },
        sections=tuple(_with_references(s, catalog) for s in sections),
        identities=tuple(
            {
                "identity": r.identity_id,
                "kind": r.kind,
                "used": len(r.used),
                "unused": len(r.unused),
                "outside": len(r.outside),
            }
            for r in reviews
        ),
        rightsized_cedar=policy_set.text,
        notes=(*review.notes, *policy_set.notes),
    )


def _only(part: ReportSection, identity: str) -> ReportSection:
    rows = tuple(r for r in part.rows if r.get("identity") in (identity, None))
    return replace(part, rows=rows) if len(rows) != len(part.rows) else part


def _with_references(part: ReportSection, catalog: FrameworkCatalog) -> ReportSection:
    rows = tuple({**row, **catalog.columns(str(row.get("row_type", "")))} for row in part.rows)
    columns = part.columns + tuple(c for c in FRAMEWORK_COLUMNS if c not in part.columns)
    return replace(part, rows=rows, columns=columns)


def _overview(reviews: Sequence[IdentityReview]) -> ReportSection:
    rows = [
        {
            "row_type": "identity_review",
            "row_id": f"identity|{r.identity_id}",
            "identity": r.identity_id,
            "kind": r.kind,
            "owner": r.owner,
            "origin": r.origin,
            "used": len(r.used),
            "unused": len(r.unused),
            "outside": len(r.outside),
            "findings": len(r.findings),
            "exceptions": len(r.exceptions),
        }
        for r in reviews
    ]
    return section(
        "identities",
        "Identities",
        ("identity", "kind", "owner", "used", "unused", "outside", "findings", "exceptions"),
        rows,
        summary={
            "identities": len(rows),
            "used": sum(len(r.used) for r in reviews),
            "unused": sum(len(r.unused) for r in reviews),
            "outside": sum(len(r.outside) for r in reviews),
        },
        description="Entitlement parts (action x resource pattern) used and unused in the "
        "window, and observed activity outside the entitlement, per identity.",
        chart="bar",
    )


def _entitlements(reviews: Sequence[IdentityReview]) -> ReportSection:
    rows: list[dict[str, Any]] = []
    for r in reviews:
        for part in r.parts:
            shown = [str(x) for x in part.resources[:5]]
            more = len(part.resources) - len(shown)
            rows.append(
                {
                    "row_type": "used_entitlement" if part.used else "unused_entitlement",
                    "row_id": part.row_id,
                    "identity": r.identity_id,
                    "entitlement": part.entitlement_id,
                    "action": part.action,
                    "pattern": part.pattern.text,
                    "status": "used" if part.used else "unused",
                    "uses": part.uses,
                    "resources": len(part.resources),
                    "examples": " ".join(shown) + (f" (+{more} more)" if more > 0 else ""),
                    "last_used": _ts(part.last_used),
                }
            )
    return section(
        "entitlements",
        "Entitlements: used and unused",
        (
            "identity",
            "entitlement",
            "action",
            "pattern",
            "status",
            "uses",
            "resources",
            "last_used",
        ),
        rows,
        summary={
            "used": sum(1 for x in rows if x["status"] == "used"),
            "unused": sum(1 for x in rows if x["status"] == "unused"),
        },
        description="Each (action, pattern) of each entitlement; unused parts are excess "
        "privilege the right-sized policy drops.",
    )


def _outside(reviews: Sequence[IdentityReview]) -> ReportSection:
    rows = [
        {
            "row_type": "outside_entitlement",
            "row_id": f"outside|{o.identity_id}|{o.action}|{o.resource_text}",
            "identity": o.identity_id,
            "action": o.action,
            "resource": o.resource_text or None,
            "allowed": o.allowed,
            "denied": o.denied,
            "first_seen": _ts(o.first_seen),
            "last_seen": _ts(o.last_seen),
            "sources": " ".join(o.sources),
        }
        for r in reviews
        for o in r.outside
    ]
    return section(
        "outside",
        "Observed outside entitlement",
        ("identity", "action", "resource", "allowed", "denied", "last_seen", "sources"),
        rows,
        summary={
            "outside": len(rows),
            "allowed": sum(o.allowed for r in reviews for o in r.outside),
        },
        description="Activity no entitlement covers (allowed elsewhere, or refused).",
    )


def _findings(reviews: Sequence[IdentityReview]) -> ReportSection:
    rows = []
    for r in reviews:
        for f in r.findings:
            detector = str(f.get("detector", "finding"))
            rows.append(
                {
                    "row_type": detector,
                    "row_id": f"finding|{f.get('finding_id', f.get('id', ''))}",
                    "identity": r.identity_id,
                    "detector": detector,
                    "severity": _scalar(f.get("severity")),
                    "score": _scalar(f.get("score")),
                    "reason": _scalar(f.get("reason")),
                    "at": _scalar(f.get("at")),
                    "suppressed_by": _scalar(f.get("suppressed_by")),
                }
            )
    return section(
        "findings",
        "Findings in the window",
        ("identity", "detector", "severity", "score", "reason", "at", "suppressed_by"),
        rows,
        summary={"findings": len(rows)},
        description="Drift findings raised for the identities in the window.",
    )


def _exceptions(reviews: Sequence[IdentityReview]) -> ReportSection:
    rows = [
        {
            "row_type": "exception_in_force",
            "row_id": f"exception|{x['id']}",
            "identity": r.identity_id,
            "detector": x["detector"],
            "resource": x.get("resource_pattern"),
            "owner": x["owner"],
            "justification": x["justification"],
            "expires": _scalar(x["expires_at"]),
        }
        for r in reviews
        for x in r.exceptions
    ]
    return section(
        "exceptions",
        "Exceptions in force",
        ("identity", "detector", "resource", "owner", "justification", "expires"),
        rows,
        summary={"exceptions": len(rows)},
        description="Monitored exceptions that suppress or downgrade findings until they expire.",
    )


def _rightsized(reviews: Sequence[IdentityReview], policies: RightsizedPolicySet) -> ReportSection:
    rows: list[Row] = []
    for r in reviews:
        made = policies.for_identity(r.identity_id)
        rows.append(
            {
                "row_type": "rightsized_policy",
                "row_id": f"rightsized|{r.identity_id}",
                "identity": r.identity_id,
                "policies": len(made),
                "actions": " ".join(sorted({a for p in made for a in p.actions})),
                "grants": sum(len(p.grants) for p in made),
                "dropped_parts": len(r.unused),
            }
        )
    return section(
        "rightsized",
        "Right-sized policy",
        ("identity", "policies", "actions", "grants", "dropped_parts"),
        rows,
        summary={"policies": len(policies.policies)},
        description="Cedar permits generated from observed use (the full policy set follows).",
    )


def _scalar(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def framework_report(
    report: Report, framework: str, catalog: FrameworkCatalog | None = None
) -> Report:
    """The same rows, one section per id of ``framework`` (rows may appear under several)."""
    catalog = catalog or load_frameworks()
    spec = catalog.framework(framework)
    column = COLUMNS[framework]
    grouped: dict[str, list[Row]] = {ref: [] for ref in spec.ids}
    for part, row in report.rows():
        for ref in _refs(str(row.get(column) or ""), spec.ids):
            grouped[ref].append(
                {
                    "row_type": row.get("row_type"),
                    "row_id": row.get("row_id"),
                    "identity": row.get("identity"),
                    "section": part.title,
                    **{c: row.get(c) for c in FRAMEWORK_COLUMNS},
                }
            )
    sections = tuple(
        section(
            f"{framework}:{ref}",
            f"{ref} {spec.ids[ref]}",
            ("row_type", "identity", "section", "row_id"),
            rows,
            summary={"rows": len(rows)},
            frameworks={framework: (ref,)},
        )
        for ref, rows in grouped.items()
        if rows
    )
    return replace(
        report,
        title=f"{report.title} — {spec.title}",
        scope={**report.scope, "framework": framework},
        sections=sections,
    )


def _refs(text: str, known: Mapping[str, str]) -> list[str]:
    """The declared ids in a column (ids are joined with `, `)."""
    return [ref for ref in text.split(", ") if ref in known]
