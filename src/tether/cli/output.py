"""How the CLI speaks: JSON for machines, rich tables for people, and exit codes.

Exit codes (the one place they are decided):

* ``0`` success (and ``check``: allow or constrain)
* ``1`` a result the user must act on: a deny or approval_required from ``check``,
  a finding, a verification failure
* ``2`` bad usage or input: invalid arguments, invalid estate, unreachable store
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tether.errors import EstateInvalid, TetherError

EXIT_OK = 0
EXIT_ACTION_NEEDED = 1
EXIT_BAD_INPUT = 2

console = Console()
err_console = Console(stderr=True)


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    view = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*(Text("" if v is None else str(v)) for v in row))  # values, not markup
    console.print(view)


def fail(
    message: str, code: int = EXIT_BAD_INPUT, *, as_json: bool = False, error_code: str = "error"
) -> NoReturn:
    if as_json:
        emit_json({"error": error_code, "message": message})
    else:
        # Escaped: messages quote user values; soft wrap: paths stay whole for copy and grep.
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise SystemExit(code)


@contextmanager
def errors_to_exit(as_json: bool = False) -> Iterator[None]:
    """Turn tether errors into a clear message and exit code 2."""
    try:
        yield
    except EstateInvalid as exc:
        if as_json:
            emit_json(
                {
                    "error": exc.code,
                    "problems": [
                        {"file": p.file, "line": p.line, "message": p.message} for p in exc.problems
                    ],
                }
            )
        else:
            err_console.print(
                f"[bold red]error:[/] estate is invalid ({len(exc.problems)} problem(s))"
            )
            for problem in exc.problems:
                err_console.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except TetherError as exc:
        fail(exc.message, as_json=as_json, error_code=exc.code)


Runner = Callable[[], int]
