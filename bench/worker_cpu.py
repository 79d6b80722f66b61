"""What the worker process (``TETHER_BACKGROUND_WORK=process``) costs per decision.

``python -m bench.worker_cpu [--rate 8000] [--seconds 5] [--postgres URL]`` installs the
bench estate on a temporary SQLite store (or a new schema on PostgreSQL), starts a worker
as ``tether serve`` does (:class:`tether.worker.link.WorkerLink`), hands it decision rows
shaped as the server makes them (the bench's request mix, a new request id each) at a
steady rate, and prints the worker's CPU per decision from ``/proc/<pid>/stat`` (user +
system), with the rows it acknowledged as committed (all of them, or the run fails).
Only the worker is measured: the rows are made and sent by this process. ``--profile
FILE`` runs the worker under cProfile and writes its statistics there at exit.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.estate import build_estate, install_estate
from bench.http import cpu_seconds
from bench.replicas import fresh_schema

TICK_S = 0.002


def _rows(estate: Any) -> list[dict[str, Any]]:
    outcomes = {
        "allow": (True, []),
        "constrain": (True, ["tether.constrain"]),
        "deny": (False, ["tether.no_permit"]),
        "approval_required": (False, ["tether.approval"]),
    }
    rows = []
    for request in estate.requests:
        permits, reasons = outcomes.get(request.expected, (False, []))
        rows.append(
            {
                "subject_type": request.subject.type,
                "subject_id": request.subject.id,
                "action": request.action,
                "resource_type": request.resource.type,
                "resource_id": request.resource.id,
                "outcome": request.expected,
                "decision": permits,
                "reasons": reasons,
                "obligations": {"max_rows": "100"} if request.expected == "constrain" else {},
                "errors": [],
                "context": dict(request.context),
                "caller": "bench-pep",
                "estate_revision": 1,
                "duration_us": 40,
            }
        )
    return rows


def run(rate: int, seconds: float, postgres: str | None) -> None:
    from tether.config import load_settings
    from tether.worker.link import WorkerLink

    estate = build_estate()
    folder = Path(tempfile.mkdtemp(prefix="tether-bench-worker-"))
    url = f"sqlite:///{folder / 'tether.db'}" if postgres is None else fresh_schema(postgres)
    install_estate(url, estate)
    os.environ.update(
        {
            "TETHER_DATABASE_URL": url,
            "TETHER_MASTER_KEY_FILE": str(folder / "master.key"),
        }
    )
    link = WorkerLink(load_settings(background_work="process"), {})
    if not link.wait_ready(60):
        raise SystemExit("the worker did not come up")
    pid = link.process.pid
    print(f"worker pid {pid}", flush=True)
    shapes = _rows(estate)
    # Warm up: the first batches build the drift directory, keys, statements.
    for number in range(2000):
        link.record(_row(shapes, number))
    link.flush(30)
    written_before = link.written
    cpu = cpu_seconds(pid)
    sent = 0
    started = time.monotonic()
    total = int(rate * seconds)
    while sent < total:
        due = int((time.monotonic() - started) * rate)
        while sent < min(due, total):
            link.record(_row(shapes, sent))
            sent += 1
        time.sleep(TICK_S)
    link.flush(60)
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(pid) - cpu
    written = link.written - written_before
    load = os.getloadavg()
    link.close()
    print(
        f"worker: {sent} rows at {sent / elapsed:,.0f}/s, {written} acknowledged, "
        f"{cpu / sent * 1e6:.1f} µs of CPU per decision "
        f"(load average {load[0]:.2f} {load[1]:.2f})"
    )
    if written != sent:
        raise SystemExit(f"{sent - written} rows not acknowledged")


def _row(shapes: list[dict[str, Any]], number: int) -> dict[str, Any]:
    shape = shapes[number % len(shapes)]
    return {
        **shape,
        "decision_id": uuid.uuid4().hex,
        "at": datetime.now(UTC),
        "context": {**shape["context"], "request_id": str(number)},
        "request_id": str(number),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=8000, help="decisions per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--postgres", help="a PostgreSQL URL (a new schema is made in it)")
    args = parser.parse_args(argv)
    run(args.rate, args.seconds, args.postgres)


if __name__ == "__main__":
    main()
