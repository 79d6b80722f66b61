"""In-process decision cost: tether's core and service beside cedarpy raw, pycasbin and a floor.

Each contender answers the same fixed request mix. A round runs the mix enough times to
last ``round_seconds``; after a warm-up round, ``rounds`` rounds are timed with
``perf_counter_ns`` and the median round gives microseconds per decision.

* ``tether PolicyEngine.decide``: the pure core. It is handed the same pre-classified
  ``context.tether`` values cedarpy raw gets, so the difference is tether's own work
  (context building, request conversion, outcomes, obligations, approval re-check).
* ``tether Tether.evaluate``: the service call the HTTP edge makes: classification, the
  core, a decision id and the row queued to the batching writer, which commits to a
  temporary SQLite store on a thread of this process (its cost lands in the timing).
"""

from __future__ import annotations

import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from bench.estate import BenchEstate, install_estate
from bench.peers import (
    MixRunner,
    casbin_runner,
    cedarpy_runner,
    check_agreement,
    floor_runner,
)
from tether.config import Settings
from tether.services import Tether
from tether.store.tables import decisions

FLOOR = "plain-Python floor (dict lookup)"
CASBIN = "pycasbin (RBAC + deny rules)"
RAW_SCHEMA = "cedarpy raw, with Schema"
RAW_NO_SCHEMA = "cedarpy raw, no Schema"
CORE = "tether PolicyEngine.decide"
SERVICE = "tether Tether.evaluate (+ SQLite log)"


@dataclass(frozen=True)
class Timing:
    name: str
    us_per_decision: float
    rounds_us: tuple[float, ...]
    note: str = ""

    @property
    def decisions_per_second(self) -> float:
        return 1e6 / self.us_per_decision


@dataclass
class InProcessReport:
    timings: list[Timing] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    recorded: tuple[int, int] | None = None  # (decisions evaluated, rows in the store)

    def get(self, name: str) -> Timing:
        return next(t for t in self.timings if t.name == name)

    @property
    def raw_best(self) -> Timing:
        """The faster cedarpy raw variant: tether's ratio is taken against it."""
        return min(self.get(RAW_SCHEMA), self.get(RAW_NO_SCHEMA), key=lambda t: t.us_per_decision)

    def ratio(self, name: str) -> float:
        return self.get(name).us_per_decision / self.raw_best.us_per_decision


def time_mix(
    run: Callable[[], object], mix_size: int, *, rounds: int, round_seconds: float
) -> tuple[float, tuple[float, ...]]:
    """Median µs per decision over ``rounds`` rounds, after calibration and a warm-up."""
    started = time.perf_counter_ns()
    run()
    once = max(time.perf_counter_ns() - started, 1)
    repeats = max(1, int(round_seconds * 1e9 / once))
    per_round: list[float] = []
    for index in range(rounds + 1):
        gc.collect()
        started = time.perf_counter_ns()
        for _ in range(repeats):
            run()
        elapsed = time.perf_counter_ns() - started
        if index > 0:  # round 0 is the warm-up
            per_round.append(elapsed / 1000 / (repeats * mix_size))
    return statistics.median(per_round), tuple(per_round)


def run_inprocess(
    estate: BenchEstate, *, rounds: int = 7, round_seconds: float = 0.4
) -> InProcessReport:
    """Time every contender on the estate's mix; check each against tether's answers."""
    report = InProcessReport()
    mix = len(estate.requests)
    requests = [r.decision_request() for r in estate.requests]
    expected_outcomes = [r.expected for r in estate.requests]

    engine = estate.compiled.engine()
    extras = [estate.cedar_request(r)["context"]["tether"] for r in estate.requests]
    pairs = list(zip(requests, extras, strict=True))
    decide = engine.decide

    def core() -> list[bool]:
        return [decide(request, extra).permits for request, extra in pairs]

    outcomes = [decide(request, extra).outcome.value for request, extra in pairs]
    if outcomes != expected_outcomes:
        report.problems.append(f"tether's outcomes {outcomes} differ from {expected_outcomes}")
    expected = core()

    contenders: list[tuple[str, MixRunner, str]] = [
        (FLOOR, floor_runner(estate), "no guardrails: a lower bound, not a policy"),
        (CASBIN, casbin_runner(estate), "approval = deny, constrain = allow"),
        (RAW_SCHEMA, cedarpy_runner(estate, with_schema=True), ""),
        (RAW_NO_SCHEMA, cedarpy_runner(estate, with_schema=False), ""),
        (CORE, core, "outcomes + obligations + approval re-check"),
    ]
    for name, runner, note in contenders:
        if name != FLOOR:
            problem = check_agreement(name, runner(), expected)
            if problem:
                report.problems.append(problem)
        median, per_round = time_mix(runner, mix, rounds=rounds, round_seconds=round_seconds)
        report.timings.append(Timing(name, median, per_round, note))

    with tempfile.TemporaryDirectory(prefix="tether-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'tether.db'}"
        install_estate(url, estate)
        tether = Tether(Settings(database_url=url))
        try:
            evaluate = tether.evaluate
            calls = 0

            def service() -> list[bool]:
                nonlocal calls
                calls += mix
                return [evaluate(request).decision.permits for request in requests]

            problem = check_agreement(SERVICE, service(), expected)
            if problem:
                report.problems.append(problem)
            median, per_round = time_mix(service, mix, rounds=rounds, round_seconds=round_seconds)
            report.timings.append(Timing(SERVICE, median, per_round, "decision row committed"))
            tether.decision_log.flush(timeout=60)
            with tether.engine.connect() as connection:
                rows = connection.execute(select(func.count()).select_from(decisions)).scalar()
            report.recorded = (calls, int(rows or 0))
        finally:
            tether.close()
            tether.engine.dispose()
    return report


def format_inprocess(report: InProcessReport) -> str:
    raw = report.raw_best
    header = f"{'contender':<40} {'µs/decision':>12} {'decisions/s':>12} {'× cedarpy raw':>14}"
    lines = [header, "-" * len(header)]
    for t in report.timings:
        ratio = t.us_per_decision / raw.us_per_decision
        lines.append(
            f"{t.name:<40} {t.us_per_decision:>12.1f} {t.decisions_per_second:>12,.0f} "
            f"{ratio:>13.2f}×  {t.note}".rstrip()
        )
    lines.append("")
    lines.append(f"ratios are against the faster cedarpy raw variant: {raw.name}")
    spread = {
        t.name: f"{min(t.rounds_us):.1f}–{max(t.rounds_us):.1f}"
        for t in report.timings
        if t.name in (CORE, raw.name, SERVICE)
    }
    lines.append("round spread (µs/decision): " + "; ".join(f"{k}: {v}" for k, v in spread.items()))
    if report.recorded is not None:
        calls, rows = report.recorded
        verdict = "yes" if calls == rows else "NO"
        lines.append(
            f"Tether.evaluate calls: {calls:,}; decision rows in SQLite: {rows:,}; "
            f"every decision recorded: {verdict}"
        )
    lines += [f"PROBLEM: {p}" for p in report.problems]
    return "\n".join(lines)
