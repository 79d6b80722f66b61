"""Building and rendering review reports: references on rows, escaping, framework views."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from tether.estate import parse_pattern
from tether.review.access import AccessReview, IdentityReview, Observed, match, resource_ref
from tether.review.render import HTML_CSP, STYLE_HASH, render
from tether.review.report import Report, build_report, framework_report
from tether.review.report_model import section
from tether.review.rightsize import rightsize

AT = datetime(2026, 3, 1, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script>'


def _report(identity_id: str = "bot", extra: bool = False) -> Report:
    pattern = parse_pattern("invoice:*")
    assert not isinstance(pattern, str)
    grants = [("entitlement:x:1", ("read", "=HYPERLINK(1)"), (pattern,))]
    observed = [
        Observed(identity_id, "read", resource_ref("invoice:1", None), 2, 0, AT, AT, ("jsonl",)),
        Observed(
            identity_id, "del", resource_ref(f"invoice:{HOSTILE}", None), 1, 0, AT, AT, ("x",)
        ),
    ]
    parts, outside = match(identity_id, grants, observed)
    ident = IdentityReview(identity_id, "agent", HOSTILE, None, "estate", parts, outside, ())
    review = AccessReview(AT, AT, None, (ident,))
    sections = (
        [
            section(
                "grants",
                "Grants",
                ("app",),
                [{"row_type": "grant_overscoped", "row_id": "g:1", "app": "a"}],
            )
        ]
        if extra
        else []
    )
    return build_report(
        review, rightsize(review, schema_text=None), generated_at=AT, extra_sections=sections
    )


def test_every_row_carries_its_framework_references() -> None:
    report = _report(extra=True)
    rows = {row["row_type"]: row for _, row in report.rows()}
    assert rows["unused_entitlement"]["nist_csf"] == "PR.AA-05"
    assert rows["outside_entitlement"]["owasp_asi"] == "ASI03, ASI10"
    assert rows["grant_overscoped"]["maestro"] == "L7, L6"  # extra sections too
    assert report.identities == (
        {"identity": "bot", "kind": "agent", "used": 1, "unused": 1, "outside": 1},
    )


def test_html_is_self_contained_and_escapes_everything() -> None:
    html = render(_report(), "html")
    assert HOSTILE not in html
    assert "&lt;script&gt;" in html
    assert "<script" not in html.lower()
    for external in ("http://", "https://", "src=", "<link", "@import"):
        assert external not in html.replace('xmlns="http://www.w3.org/2000/svg"', ""), external
    assert '<svg id="identity-chart"' in html
    assert 'class="bar-unused"' in html
    assert STYLE_HASH in HTML_CSP
    assert "default-src 'none'" in HTML_CSP


def test_csv_neutralises_formulas_and_keeps_every_row() -> None:
    report = _report()
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert len(rows) == sum(1 for _ in report.rows())
    actions = {r["action"] for r in rows if r["action"]}
    assert "'=HYPERLINK(1)" in actions
    assert "=HYPERLINK(1)" not in actions


def test_markdown_escapes_table_syntax() -> None:
    text = render(_report(), "md")
    assert "| identity |" in text
    assert HOSTILE not in text
    assert "\\<script\\>" in text


def test_json_has_digest_and_the_digest_ignores_the_clock() -> None:
    report = _report()
    value = json.loads(render(report, "json"))
    assert value["digest"] == report.digest
    assert len(report.digest) == 64
    later = build_report(
        AccessReview(AT, datetime(2026, 4, 1, tzinfo=UTC), None, ()),
        rightsize(AccessReview(AT, AT, None, ()), schema_text=None),
        generated_at=datetime(2026, 4, 1, tzinfo=UTC),
    )
    earlier = build_report(
        AccessReview(AT, AT, None, ()),
        rightsize(AccessReview(AT, AT, None, ()), schema_text=None),
        generated_at=AT,
    )
    assert later.digest == earlier.digest
    assert report.digest != earlier.digest


def test_framework_view_groups_rows_by_id() -> None:
    view = framework_report(_report(), "nist-ai-rmf")
    keys = [s.key for s in view.sections]
    assert "nist-ai-rmf:MEASURE 2.7" in keys
    assert view.scope["framework"] == "nist-ai-rmf"
    measured = next(s for s in view.sections if s.key == "nist-ai-rmf:MEASURE 2.7")
    assert {r["row_type"] for r in measured.rows} >= {"outside_entitlement"}
    html = render(view, "html")
    assert "MEASURE 2.7" in html


def test_contributed_sections_are_kept_but_not_hashed() -> None:
    with_extra, without = _report(extra=True), _report()
    assert with_extra.digest == without.digest
    assert "g:1" in with_extra.row_ids()
