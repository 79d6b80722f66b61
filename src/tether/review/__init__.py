"""Access review, right-sizing, framework mapping and reports (approved beside observed)."""

from tether.review.report_model import ReportSection, Row, section

__all__ = ["ReportSection", "Row", "section"]
