"""Rendering a review report: Markdown, self-contained HTML, JSON and CSV.

The HTML page has no external asset: one inline ``<style>`` block (its CSP hash is
:data:`STYLE_HASH`, for a server that sends ``style-src 'sha256-...'``), charts as inline
SVG, no script, every value escaped. CSV cells that a spreadsheet would run as a formula
(starting ``=``, ``+``, ``-``, ``@``, tab or carriage return) are prefixed with ``'``.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from html import escape

from tether.review.report import Report
from tether.review.report_model import ReportSection, Scalar

FORMATS = ("md", "html", "json", "csv")

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1d2330}
body{background:#fff}h1{font-size:1.6rem;margin-bottom:.2rem}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d5d9e0}
.scope{color:#5a6270;font-size:.9rem}.desc{color:#5a6270;font-size:.9rem;margin:.2rem 0 .6rem}
table{border-collapse:collapse;font-size:.82rem;width:100%;margin:.4rem 0}
th,td{border:1px solid #d5d9e0;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f1f3f7}tr.unused_entitlement td,tr.outside_entitlement td{background:#fff6e5}
.figures{display:flex;gap:1rem;flex-wrap:wrap;margin:.4rem 0}
.figure{border:1px solid #d5d9e0;border-radius:6px;padding:.35rem .7rem;min-width:6rem}
.figure b{display:block;font-size:1.2rem}.empty{color:#5a6270;font-style:italic}
pre{background:#f6f7f9;border:1px solid #d5d9e0;padding:.8rem;overflow:auto;font-size:.8rem}
.notes li{color:#8a4b00}svg text{font-family:system-ui,sans-serif;font-size:11px;fill:#1d2330}
""".strip()

#: The CSP source of the inline style block (``'sha256-...'``).
STYLE_HASH = "'sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode() + "'"
#: The Content-Security-Policy a server should send with :func:`to_html` output.
HTML_CSP = (
    f"default-src 'none'; style-src {STYLE_HASH}; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

_COLOURS = {"used": "#2e7d32", "unused": "#e08a00", "outside": "#c62828"}


def render(report: Report, fmt: str) -> str:
    """``report`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "md":
        return to_markdown(report)
    if fmt == "html":
        return to_html(report)
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    raise ValueError(f"unknown format `{fmt}`")


def to_json(report: Report) -> str:
    value = report.to_json()
    value["digest"] = report.digest
    return json.dumps(value, indent=2, default=str) + "\n"


# --- CSV -------------------------------------------------------------------------------------


def _cell(value: Scalar) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(report: Report) -> str:
    """One table of every row: section first, then the union of the sections' columns."""
    columns: list[str] = ["section", "row_type", "row_id"]
    for part in report.sections:
        columns += [c for c in part.columns if c not in columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for part, row in report.rows():
        values = {**row, "section": part.key}
        writer.writerow([_cell(values.get(c)) for c in columns])
    return out.getvalue()


# --- Markdown --------------------------------------------------------------------------------


def _md(value: Scalar) -> str:
    text = "" if value is None else str(value)
    for ch in "\\`*[]<>|":  # `_` inside words is no emphasis in CommonMark
        text = text.replace(ch, "\\" + ch)
    return " ".join(text.split())


def to_markdown(report: Report) -> str:
    lines = [f"# {_md(report.title)}", "", _scope_line(report, _md), ""]
    for part in report.sections:
        lines += [f"## {_md(part.title)}", ""]
        if part.description:
            lines += [_md(part.description), ""]
        if part.summary:
            lines += [
                ", ".join(f"**{_md(k)}**: {_md(_num(v))}" for k, v in part.summary.items()),
                "",
            ]
        if not part.rows:
            lines += ["_none_", ""]
            continue
        lines.append("| " + " | ".join(_md(c) for c in part.columns) + " |")
        lines.append("|" + "---|" * len(part.columns))
        for row in part.rows:
            lines.append("| " + " | ".join(_md(row.get(c)) for c in part.columns) + " |")
        lines.append("")
    if report.rightsized_cedar.strip():
        lines += ["## Right-sized Cedar policy set", "", "```cedar"]
        lines += [report.rightsized_cedar.replace("```", "` ` `").rstrip(), "```", ""]
    if report.notes:
        lines += ["## Notes", "", *(f"- {_md(n)}" for n in report.notes), ""]
    lines += [f"Report digest: `{report.digest}`", ""]
    return "\n".join(lines)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _scope_line(report: Report, esc: object) -> str:
    scope = report.scope
    parts = [f"window {scope.get('since')} .. {scope.get('until')}"]
    if scope.get("identity"):
        parts.append(f"identity {scope['identity']}")
    if scope.get("estate_revision") is not None:
        parts.append(f"estate revision {scope['estate_revision']}")
    if scope.get("framework"):
        parts.append(f"framework {scope['framework']}")
    parts.append(f"generated {report.generated_at.isoformat()}")
    text = "; ".join(parts)
    return esc(text) if callable(esc) else text


# --- HTML ------------------------------------------------------------------------------------


def _h(value: Scalar) -> str:
    return escape("" if value is None else str(value), quote=True)


def to_html(report: Report) -> str:
    body = [
        f"<h1>{_h(report.title)}</h1>",
        f'<p class="scope">{_scope_line(report, _h)}</p>',
    ]
    if report.identities:
        body.append(identity_chart(report.identities))
    for part in report.sections:
        body.append(_html_section(part))
    if report.rightsized_cedar.strip():
        body.append('<h2 id="rightsized-policy">Right-sized Cedar policy set</h2>')
        body.append(f"<pre>{_h(report.rightsized_cedar)}</pre>")
    if report.notes:
        items = "".join(f"<li>{_h(n)}</li>" for n in report.notes)
        body.append(f'<h2>Notes</h2><ul class="notes">{items}</ul>')
    body.append(f'<p class="scope">Report digest: <code>{_h(report.digest)}</code></p>')
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_h(report.title)}</title><style>{_STYLE}</style></head>\n"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _html_section(part: ReportSection) -> str:
    out = [f'<section id="section-{_h(part.key)}"><h2>{_h(part.title)}</h2>']
    if part.description:
        out.append(f'<p class="desc">{_h(part.description)}</p>')
    if part.summary:
        figures = "".join(
            f'<div class="figure"><b>{_h(_num(v))}</b>{_h(k)}</div>'
            for k, v in part.summary.items()
        )
        out.append(f'<div class="figures">{figures}</div>')
        if part.chart == "bar" and part.key != "identities":
            out.append(bar_chart(part.title, part.summary))
    if part.rows:
        head = "".join(f"<th>{_h(c)}</th>" for c in part.columns)
        rows = "".join(
            f'<tr class="{_h(row.get("row_type"))}" data-row-id="{_h(row.get("row_id"))}">'
            + "".join(f"<td>{_h(row.get(c))}</td>" for c in part.columns)
            + "</tr>"
            for row in part.rows
        )
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    else:
        out.append('<p class="empty">none</p>')
    out.append("</section>")
    return "".join(out)


def identity_chart(identities: Sequence[Mapping[str, object]]) -> str:
    """Grouped horizontal bars: used, unused and outside per identity (inline SVG)."""
    shown = list(identities)[:40]
    peak = max([1, *(int(str(i[k])) for i in shown for k in _COLOURS)])
    label_w, bar_w, row_h = 170, 360, 34
    height = 30 + row_h * len(shown)
    parts = [
        f'<svg id="identity-chart" role="img" aria-label="used, unused and outside per identity" '
        f'xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 60}" height="{height}">'
    ]
    x = label_w
    for key, colour in _COLOURS.items():
        parts.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="13">{key}</text>')
        x += 80
    for n, ident in enumerate(shown):
        y = 24 + n * row_h
        parts.append(f'<text x="0" y="{y + 16}">{_h(str(ident["identity"])[:28])}</text>')
        for k, (key, colour) in enumerate(_COLOURS.items()):
            value = int(str(ident[key]))
            width = max(1, round(bar_w * value / peak)) if value else 0
            by = y + k * 10
            parts.append(
                f'<rect class="bar-{key}" x="{label_w}" y="{by}" width="{width}" height="9" '
                f'fill="{colour}"><title>{_h(str(ident["identity"]))} {key}: {value}</title></rect>'
            )
            parts.append(f'<text x="{label_w + width + 4}" y="{by + 8}">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, figures: Mapping[str, float]) -> str:
    """One bar per figure (inline SVG)."""
    peak = max([1.0, *(float(v) for v in figures.values())])
    label_w, bar_w, row_h = 200, 320, 18
    height = 6 + row_h * len(figures)
    parts = [
        f'<svg class="chart" role="img" aria-label="{_h(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 60}" height="{height}">'
    ]
    for n, (name, value) in enumerate(figures.items()):
        y = 4 + n * row_h
        width = round(bar_w * float(value) / peak)
        parts.append(f'<text x="0" y="{y + 11}">{_h(name)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{width}" height="13" fill="#3f6fb5"/>')
        parts.append(f'<text x="{label_w + width + 4}" y="{y + 11}">{_h(_num(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)
