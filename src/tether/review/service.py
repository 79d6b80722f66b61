"""Running a review against a live tether: the one entry point the CLI and HTTP edge call.

:func:`generate_report` reviews access over the window, right-sizes against the live
estate's schema and entities, adds the sections of the other review modules (lifecycle,
third-party grants, estate metrics: each defines ``review_sections(engine, *, now, since,
identity) -> list[ReportSection]``; one that fails leaves a note in the report instead of
sinking it) and, when a framework is asked for, regroups the rows by that framework's ids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine

from tether.errors import InvalidRequest, NotFound
from tether.estate import CompiledEstate, parse_duration
from tether.frameworks import FRAMEWORKS, load_frameworks
from tether.review import grants, lifecycle, metrics
from tether.review.access import review_access
from tether.review.report import Report, build_report, framework_report
from tether.review.report_model import ReportSection
from tether.review.rightsize import CollapseRule, rightsize
from tether.store.sink import DecisionSink

log = logging.getLogger(__name__)


class LiveSnapshot(Protocol):
    @property
    def revision(self) -> int | None: ...

    @property
    def estate(self) -> CompiledEstate: ...


class ReviewHost(Protocol):
    """What a review needs of tether's core (``tether.services.Tether`` is one): the store
    and the live estate snapshot (``snapshot.revision``, ``snapshot.estate``)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def snapshot(self) -> LiveSnapshot: ...

    @property
    def decision_log(self) -> DecisionSink: ...  # flushed: a report sees every decision

    def reload(self) -> bool: ...


DEFAULT_SINCE = "30d"


class SectionMaker(Protocol):
    def __call__(
        self, engine: Engine, *, now: datetime, since: datetime, identity: str | None
    ) -> Sequence[ReportSection]: ...


SECTIONS: dict[str, SectionMaker] = {
    "lifecycle": lifecycle.review_sections,
    "grants": grants.review_sections,
    "metrics": metrics.review_sections,
}


def parse_since(text: str | None, now: datetime) -> datetime:
    """``30d``/``12h`` back from ``now``, or an ISO 8601 moment.

    Raises:
        InvalidRequest: neither a duration nor a date.
    """
    text = (text or DEFAULT_SINCE).strip()
    try:
        seconds = parse_duration(text)
    except (ValueError, TypeError):
        seconds = None
    if isinstance(seconds, int | float) and seconds > 0:
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"`since` must be a duration like `30d` or an ISO 8601 date, not `{text}`"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def extra_sections(
    tether: ReviewHost, *, now: datetime, since: datetime, identity: str | None
) -> tuple[list[ReportSection], list[str]]:
    """Sections of the other review modules that define ``review_sections``; notes on failures."""
    found: list[ReportSection] = []
    notes: list[str] = []
    for name, make in SECTIONS.items():
        try:
            found += list(make(tether.engine, now=now, since=since, identity=identity))
        except Exception as exc:  # one section must not sink the review
            log.exception("review section `%s` failed", name)
            notes.append(f"section `{name}` could not be built: {exc}")
    return found, notes


def generate_report(
    tether: ReviewHost,
    *,
    since: str | None = None,
    identity: str | None = None,
    framework: str | None = None,
    now: datetime | None = None,
    rule: CollapseRule | None = None,
    with_sections: bool = True,
) -> Report:
    """The review report of the live estate.

    Raises:
        InvalidRequest: a bad ``since`` or an unknown ``framework``.
        NotFound: ``identity`` is not in the inventory.
    """
    now = now or datetime.now(UTC)
    start = parse_since(since, now)
    if framework is not None and framework not in FRAMEWORKS:
        raise InvalidRequest(f"unknown framework `{framework}`; use one of {', '.join(FRAMEWORKS)}")
    tether.reload()
    # Decisions are committed in batches (here or by tether.worker): commit what is queued
    # (and let drift examine it), so two reports of the same moment are the same report.
    tether.decision_log.flush()
    snap = tether.snapshot
    review = review_access(
        tether.engine, since=start, until=now, identity=identity, estate_revision=snap.revision
    )
    if identity is not None and not review.identities:
        raise NotFound(f"no identity `{identity}`")
    policies = rightsize(
        review, schema_text=snap.estate.schema_text, entities=snap.estate.entities, rule=rule
    )
    sections, notes = (
        extra_sections(tether, now=now, since=start, identity=identity)
        if with_sections
        else ([], [])
    )
    report = build_report(
        review, policies, generated_at=now, extra_sections=sections, catalog=load_frameworks()
    )
    if notes:
        report = replace(report, notes=(*report.notes, *notes))
    if framework is not None:
        report = framework_report(report, framework)
    return report
