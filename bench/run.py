"""Run tether's benchmarks: in-process decision cost, then decisions per second over HTTP.

Usage (from the repository root)::

    .venv/bin/python bench/run.py            # full run, ~2 minutes
    .venv/bin/python bench/run.py --quick    # shorter rounds and runs, ~40 s
    .venv/bin/python -m bench.run --only inprocess --json results.json

The acceptance targets are measured and printed, never asserted: the exit status is 0
unless a contender gave wrong answers or a decision went unrecorded.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/run.py` puts bench/ first on sys.path, where bench/http.py would shadow the
# standard library's http package: put the repository root there instead.
_ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == _ROOT / "bench":
    sys.path[0] = str(_ROOT)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from dataclasses import asdict  # noqa: E402
from importlib import metadata  # noqa: E402
from typing import Any  # noqa: E402

from bench.estate import BenchRequest, build_estate  # noqa: E402
from bench.http import TETHER, TETHER_NEW, HttpReport, format_http, run_http  # noqa: E402
from bench.inprocess import (  # noqa: E402
    CORE,
    SERVICE,
    InProcessReport,
    format_inprocess,
    run_inprocess,
)

TARGET_RATIO = 1.3
TARGET_RATE = 6000
TARGET_P99_MS = 15.0


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"cedarpy {metadata.version('cedarpy')}, load average {load:.2f} at start"
    )


def _verdicts(inproc: InProcessReport | None, http: HttpReport | None) -> list[str]:
    lines = ["acceptance targets (measured, not asserted):"]
    if inproc is not None:
        ratio = inproc.ratio(CORE)
        lines.append(
            f"  in-process tether decision ≤ {TARGET_RATIO}× cedarpy raw: {ratio:.2f}× "
            + ("met" if ratio <= TARGET_RATIO else "NOT met")
            + f" (Tether.evaluate with logging: {inproc.ratio(SERVICE):.2f}×)"
        )
    if http is not None:
        tether = http.get(TETHER)
        rate, p99 = tether.decisions_per_second, tether.load.p99_ms
        recorded = http.log_check is not None and http.log_check.every_decision_recorded
        met = rate >= TARGET_RATE and p99 < TARGET_P99_MS and recorded
        lines.append(
            f"  HTTP ≥ {TARGET_RATE:,} decisions/s at {http.connections} connections, "
            f"p99 < {TARGET_P99_MS:.0f} ms, one worker, every decision recorded: "
            f"{rate:,.0f}/s, p99 {p99:.2f} ms, recorded {'yes' if recorded else 'NO'} — "
            + ("met" if met else "NOT met")
        )
        fresh = next((t for t in http.targets if t.name == TETHER_NEW), None)
        if fresh is not None:
            lines.append(
                f"    with every question new (no decision-cache hits): "
                f"{fresh.decisions_per_second:,.0f}/s, p99 {fresh.load.p99_ms:.2f} ms"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter rounds and runs")
    parser.add_argument("--only", choices=("inprocess", "http"), help="run one part")
    parser.add_argument("--identities", type=int, default=200, help="estate size")
    parser.add_argument("--connections", type=int, default=32, help="HTTP connections")
    parser.add_argument("--seconds", type=float, help="HTTP run length (default 10, quick 4)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    estate = build_estate(args.identities)
    print(f"machine: {_machine()}")
    print(
        f"estate: {len(estate.identities)} identities, {estate.policy_count} policies, "
        f"{estate.entity_count} entities; mix of {len(estate.requests)} requests "
        f"({_mix(estate.requests)})\n",
        flush=True,
    )
    inproc: InProcessReport | None = None
    http: HttpReport | None = None
    if args.only in (None, "inprocess"):
        print("== in-process (median of rounds, µs per decision) ==", flush=True)
        rounds, round_seconds = (5, 0.2) if args.quick else (9, 0.5)
        with _pinned(0):  # the core the HTTP server gets: one core, its threads included
            inproc = run_inprocess(
                estate,
                rounds=rounds,
                round_seconds=round_seconds,
                sweep_stride=5 if args.quick else 1,
            )
        print(format_inprocess(inproc) + "\n", flush=True)
    if args.only in (None, "http"):
        print("== HTTP (POST AuthZEN evaluation bodies) ==", flush=True)
        seconds = args.seconds or (4.0 if args.quick else 10.0)
        http = run_http(
            estate,
            connections=args.connections,
            seconds=seconds,
            warmup=1.0 if args.quick else 2.0,
        )
        print(format_http(http) + "\n")
    print("\n".join(_verdicts(inproc, http)))
    if args.json:
        args.json.write_text(json.dumps(_figures(inproc, http), indent=2) + "\n")
    failed = bool(inproc and (inproc.problems or _unrecorded(inproc)))
    if http is not None and http.log_check is not None:
        failed = failed or not http.log_check.every_decision_recorded
    return 1 if failed else 0


@contextlib.contextmanager
def _pinned(core: int) -> Iterator[None]:
    """Run on one core (Linux, two cores or more), as the HTTP server does."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        yield
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def _unrecorded(report: InProcessReport) -> bool:
    return report.recorded is not None and report.recorded[0] != report.recorded[1]


def _mix(requests: Sequence[BenchRequest]) -> str:
    counts: dict[str, int] = {}
    for r in requests:
        counts[r.expected] = counts.get(r.expected, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in counts.items())


def _figures(inproc: InProcessReport | None, http: HttpReport | None) -> dict[str, Any]:
    figures: dict[str, Any] = {"machine": _machine()}
    if inproc is not None:
        figures["inprocess"] = {
            t.name: {
                "us_per_decision": t.us_per_decision,
                "decisions_per_second": t.decisions_per_second,
                "ratio_vs_cedarpy_raw": t.us_per_decision / inproc.raw_best.us_per_decision,
                "rounds_us": list(t.rounds_us),
            }
            for t in inproc.timings
        }
    if http is not None:
        figures["http"] = {
            t.name: {
                **asdict(t.load),
                "requests_per_second": t.load.per_second,
                "decisions_per_second": t.decisions_per_second,
                "server_cpu_us_per_request": t.server_cpu_us,
                "worker_cpu_us_per_request": t.worker_cpu_us,
            }
            for t in http.targets
        }
        if http.log_check is not None:
            figures["http"]["decision_log"] = {
                **asdict(http.log_check),
                "every_decision_recorded": http.log_check.every_decision_recorded,
            }
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
