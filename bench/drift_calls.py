"""Live drift detection's CPU per call as one long agent task runs.

Not part of the suite. The gateway bench's store and estate (``bench/gateway.py``: the
example's estate, a task token for ``read_invoice``), one real decision taken through the
in-process gateway decider to get a decision row as the gateway records it, then
``--calls`` copies of that row (one new decision id and a later time each), each followed
by its reported result (the invoice as the example's upstream returns it), fed to a
:class:`~tether.drift.engine.DriftEngine` built as the worker builds it, in batches of
``--batch`` calls as the worker's loop hands them over. Printed: CPU per call
(``time.process_time``) of the first and the last ``--window`` calls, and the load
average; with ``--write``, the decision log's write of the same rows too.

    PYTHONPATH=$PWD/src .venv/bin/python -m bench.drift_calls [--calls 10000] [--batch 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.gateway import _store
from tether.composition import decision_log, drift_engine
from tether.drift.engine import RESULT_KEY
from tether.drift.observations import _aware
from tether.gateway._calls import TOOL_CALL, ToolCall
from tether.gateway._local import LocalDecider


def _result(invoice: str) -> dict[str, Any]:
    """``read_invoice``'s result as the example's FastMCP server answers it: the record as
    structured content and as indented JSON text."""
    record = {
        "id": invoice,
        "amount": 120,
        "iban": "DE89370400440532013000",
        "contact": "ap@example.org",
    }
    text = json.dumps(record, indent=2)
    return {"content": [{"type": "text", "text": text}], "structuredContent": record}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=20, help="calls handed over at once")
    parser.add_argument("--window", type=int, default=1000, help="calls per printed figure")
    parser.add_argument("--write", action="store_true", help="also the decision log's write")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tether-bench-drift-calls-"))
    try:
        _, tether, token = _store(folder)
        rows: list[Mapping[str, Any]] = []
        tether.decider.observe(rows.append)
        call = ToolCall(TOOL_CALL, "read_invoice", {"invoice_id": "INV-7"})
        decision = LocalDecider(tether).decide_blocking(token, call)
        assert rows, decision
        assert decision.decision_id is not None, decision
        template = rows[0]
        core = tether.components.core
        drift = drift_engine(core, {}, tail_events=False)
        drift.start(background=False)
        writer = decision_log(core) if args.write else None
        at = _aware(template["at"])
        spent: list[float] = []
        write_spent: list[float] = []
        for first in range(0, args.calls, args.batch):
            batch: list[Mapping[str, Any]] = []
            decided: list[Mapping[str, Any]] = []
            for n in range(first, min(first + args.batch, args.calls)):
                decision_id = f"bench-{n:08d}"
                row = {**template, "decision_id": decision_id, "at": at + timedelta(seconds=n)}
                decided.append(row)
                batch.append(row)
                batch.append({RESULT_KEY: f"decision:{decision_id}", "result": _result("INV-7")})
            if writer is not None:
                started = time.process_time()
                writer.write(decided)
                write_spent.append((time.process_time() - started) / len(decided))
            started = time.process_time()
            drift.work(batch)
            spent.append((time.process_time() - started) / len(decided))
        per_window = max(1, args.window // args.batch)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{args.calls} calls of one task, batches of {args.batch}, load average {load}")
        for name, figures in (("detection", spent), ("decision write", write_spent)):
            if not figures:
                continue
            head = sum(figures[:per_window]) / per_window * 1e6
            tail = sum(figures[-per_window:]) / per_window * 1e6
            whole = sum(figures) / len(figures) * 1e6
            print(
                f"{name}: first {args.window} calls {head:.1f} µs/call, "
                f"last {args.window} {tail:.1f} µs/call, all {whole:.1f} µs/call"
            )
        if writer is not None:
            writer.close()
        drift.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
