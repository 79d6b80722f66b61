"""``tether review``: access review reports, right-sized policy, framework views and sign-off.

Without ``--format`` it prints readable tables; ``--format md|html|json|csv`` renders the
whole report (to ``--output FILE`` or stdout); ``--framework`` regroups rows by a
framework's ids; ``--policy-out FILE`` writes the right-sized Cedar policy set (ready for
an estate's ``policies/``). ``--sign-off --as USER --decision ROW=keep|revoke ...`` stores
a signed review; ``--show ID`` prints one. Exit codes: 0 done, 2 bad usage or input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tether.cli.common import DbOption, JsonOption, open_tether
from tether.cli.output import console, emit_json, errors_to_exit, fail, table
from tether.frameworks import FRAMEWORKS
from tether.review.render import FORMATS, render
from tether.review.report import FRAMEWORK_COLUMNS, Report
from tether.review.service import generate_report
from tether.review.signoff import get_sign_off, parse_decisions, sign_off


def review(
    identity: Annotated[
        str | None, typer.Option("--identity", help="review one identity (default: all)")
    ] = None,
    since: Annotated[
        str, typer.Option("--since", help="lookback window (`30d`, `12h`) or ISO 8601 date")
    ] = "30d",
    fmt: Annotated[
        str | None, typer.Option("--format", help=f"render as {'|'.join(FORMATS)}")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="write the rendered report to FILE")
    ] = None,
    framework: Annotated[
        str | None, typer.Option("--framework", help=f"group rows by {'|'.join(FRAMEWORKS)}")
    ] = None,
    policy_out: Annotated[
        Path | None,
        typer.Option("--policy-out", help="write the right-sized Cedar policy set to FILE"),
    ] = None,
    do_sign_off: Annotated[
        bool, typer.Option("--sign-off", help="sign the review off (needs --as)")
    ] = False,
    signer: Annotated[str | None, typer.Option("--as", help="who signs the review off")] = None,
    decision: Annotated[
        list[str] | None,
        typer.Option("--decision", help="ROW=keep|revoke for a row id of the report; repeatable"),
    ] = None,
    note: Annotated[str, typer.Option("--note", help="a note kept with the sign-off")] = "",
    show: Annotated[str | None, typer.Option("--show", help="print a stored sign-off")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Review access: entitlements used and unused, activity outside, right-sized policy."""
    if fmt is not None and fmt not in FORMATS:
        fail(f"`--format` must be one of {', '.join(FORMATS)}, not `{fmt}`", as_json=as_json)
    if framework is not None and framework not in FRAMEWORKS:
        fail(
            f"`--framework` must be one of {', '.join(FRAMEWORKS)}, not `{framework}`",
            as_json=as_json,
        )
    if (decision or signer) and not do_sign_off:
        fail("`--decision` and `--as` go with `--sign-off`", as_json=as_json)
    if do_sign_off and not signer:
        fail("`--sign-off` needs `--as USER`", as_json=as_json)
    with errors_to_exit(as_json), open_tether(db) as tether:
        if show is not None:
            record = get_sign_off(tether.engine, show)
            emit_json(record.to_json()) if as_json else _print_sign_off(record.to_json())
            return
        decisions = parse_decisions(decision or [])
        report = generate_report(tether, since=since, identity=identity, framework=framework)
        if do_sign_off:
            plain = (
                report
                if framework is None
                else generate_report(tether, since=since, identity=identity)
            )
            record = sign_off(
                tether.engine, plain, signed_by=str(signer), decisions=decisions, note=note
            )
            if as_json:
                emit_json(record.to_json())
            else:
                _print_sign_off(record.to_json())
            return
    if policy_out is not None:
        policy_out.write_text(report.rightsized_cedar, encoding="utf-8")
    chosen = "json" if as_json and fmt is None else fmt
    if chosen is None:
        _print_tables(report)
        if output is not None:
            output.write_text(render(report, "md"), encoding="utf-8")
        return
    text = render(report, chosen)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        if not as_json:
            console.print(f"wrote the {chosen} report to {output}", highlight=False)
    else:
        typer.echo(text, nl=False)


def _print_tables(report: Report) -> None:
    scope = report.scope
    console.print(
        f"[bold]{report.title}[/] — window {scope.get('since')} .. {scope.get('until')}",
        highlight=False,
    )
    for part in report.sections:
        if not part.rows:
            continue
        columns = [c for c in part.columns if c not in FRAMEWORK_COLUMNS and c != "entitlement"]
        table(part.title, columns, [[row.get(c) for c in columns] for row in part.rows])
    for line in report.notes:
        console.print(f"note: {line}", highlight=False, markup=False)
    console.print(f"report digest {report.digest}", highlight=False)


def _print_sign_off(record: dict[str, object]) -> None:
    console.print(
        f"review [bold]{record['id']}[/] signed by {record['signed_by']} at "
        f"{record['signed_at']} (digest {record['report_digest']})",
        highlight=False,
    )
    decisions = record.get("decisions")
    if isinstance(decisions, dict) and decisions:
        table("Decisions", ["row", "decision"], sorted(decisions.items()))
