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
* ``tether ASGI app, no socket``: the AuthZEN route as uvicorn calls it (body parsing,
  validation, ``Tether.evaluate``, JSON answer, metrics) with in-memory receive/send:
  the HTTP figures minus the server's socket and protocol work.

tether slices its policy set per principal (a ``principal == E`` policy cannot apply to
anyone else), so next to cedarpy raw on the full set the table shows cedarpy raw on the
same slices: the like-for-like measure of tether's own overhead. A sweep (every identity
asking every question of the mix) first checks that slicing changes no answer.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select

from bench.estate import BenchEstate, install_estate
from bench.peers import (
    MixRunner,
    casbin_runner,
    cedarpy_runner,
    cedarpy_sliced_runner,
    check_agreement,
    floor_runner,
    sweep_disagreements,
)
from tether.api.app import create_app
from tether.api.asgi import Message
from tether.config import Settings
from tether.policy import PolicyEngine
from tether.services import Tether
from tether.store.tables import decisions

FLOOR = "plain-Python floor (dict lookup)"
CASBIN = "pycasbin (RBAC + deny rules)"
RAW_SCHEMA = "cedarpy raw, with Schema"
RAW_NO_SCHEMA = "cedarpy raw, no Schema"
RAW_SLICED = "cedarpy raw, per-principal slices"
CORE = "tether PolicyEngine.decide"
CORE_CACHED = "tether PolicyEngine.decide, cache on"
SERVICE = "tether Tether.evaluate (+ SQLite log)"
ASGI = "tether ASGI app, no socket (+ log)"


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
    swept: int = 0  # requests of the slicing sweep

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
    estate: BenchEstate, *, rounds: int = 7, round_seconds: float = 0.4, sweep_stride: int = 1
) -> InProcessReport:
    """Time every contender on the estate's mix; check each against tether's answers."""
    report = InProcessReport()
    report.swept, disagreements = sweep_disagreements(estate, sweep_stride)
    report.problems += disagreements[:10]
    mix = len(estate.requests)
    requests = [r.decision_request() for r in estate.requests]
    expected_outcomes = [r.expected for r in estate.requests]

    # Like for like with cedarpy raw: every decision evaluated (the decision cache off).
    compiled = estate.compiled
    engine = PolicyEngine(
        compiled.policies, compiled.entities, schema_text=compiled.schema_text, cache_size=0
    )
    cached_decide = compiled.engine().decide  # as served: repeated questions remembered
    extras = [estate.cedar_request(r)["context"]["tether"] for r in estate.requests]
    pairs = list(zip(requests, extras, strict=True))
    decide = engine.decide

    def core() -> list[bool]:
        return [decide(request, extra).permits for request, extra in pairs]

    def core_cached() -> list[bool]:
        return [cached_decide(request, extra).permits for request, extra in pairs]

    outcomes = [decide(request, extra).outcome.value for request, extra in pairs]
    if outcomes != expected_outcomes:
        report.problems.append(f"tether's outcomes {outcomes} differ from {expected_outcomes}")
    expected = core()

    contenders: list[tuple[str, MixRunner, str]] = [
        (FLOOR, floor_runner(estate), "no guardrails: a lower bound, not a policy"),
        (CASBIN, casbin_runner(estate), "approval = deny, constrain = allow"),
        (RAW_SCHEMA, cedarpy_runner(estate, with_schema=True), ""),
        (RAW_NO_SCHEMA, cedarpy_runner(estate, with_schema=False), ""),
        (RAW_SLICED, cedarpy_sliced_runner(estate), "the evaluation tether performs"),
        (CORE, core, "outcomes + obligations + approval re-check, cache off"),
        (CORE_CACHED, core_cached, "the same questions again: answered from the cache"),
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
        key = install_estate(url, estate)
        tether = Tether(
            Settings(database_url=url, master_key_file=str(Path(folder) / "master.key"))
        )
        try:
            evaluate = tether.evaluate

            def service() -> list[bool]:
                return [evaluate(request).decision.permits for request in requests]

            problem = check_agreement(SERVICE, service(), expected)
            if problem:
                report.problems.append(problem)
            median, per_round = time_mix(service, mix, rounds=rounds, round_seconds=round_seconds)
            report.timings.append(Timing(SERVICE, median, per_round, "row committed; cache on"))

            loop = asyncio.new_event_loop()
            app = create_app(tether)
            try:
                asgi = _asgi_runner(app, estate, loop, key)
                problem = check_agreement(ASGI, asgi(), expected)
                if problem:
                    report.problems.append(problem)
                median, per_round = time_mix(asgi, mix, rounds=rounds, round_seconds=round_seconds)
            finally:
                loop.close()
                app.gate.close()  # what the lifespan shutdown does: stop its audit writer
            report.timings.append(Timing(ASGI, median, per_round, "HTTP minus socket; cache on"))
            tether.decision_log.flush(timeout=60)
            with tether.engine.connect() as connection:
                rows = connection.execute(select(func.count()).select_from(decisions)).scalar()
            # Every Tether.evaluate call counts its outcome: the number of decisions made.
            report.recorded = (sum(tether.outcome_counts.values()), int(rows or 0))
        finally:
            tether.close()
            tether.engine.dispose()
    return report


def evaluation_scope(body: bytes, key: str) -> dict[str, Any]:
    """The ASGI scope of ``POST /access/v1/evaluation`` with ``body``, as uvicorn passes it."""
    return {
        "type": "http",
        "method": "POST",
        "path": "/access/v1/evaluation",
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "state": {},
        "headers": [
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }


def _asgi_runner(
    app: Callable[..., Any], estate: BenchEstate, loop: asyncio.AbstractEventLoop, key: str
) -> MixRunner:
    """The AuthZEN evaluation route called as uvicorn calls it, minus the socket."""
    bodies = [orjson.dumps(r.authzen_body()) for r in estate.requests]
    answers: list[bool] = []

    async def call(body: bytes) -> None:
        scope = evaluation_scope(body, key)

        async def receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body":
                answers.append(bool(orjson.loads(message["body"])["decision"]))

        await app(scope, receive, send)

    async def mix() -> None:
        for body in bodies:
            await call(body)

    def run() -> list[bool]:
        answers.clear()
        loop.run_until_complete(mix())
        return list(answers)

    return run


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
    sliced = report.get(RAW_SLICED).us_per_decision
    core = report.get(CORE).us_per_decision
    lines.append(
        f"like for like (same per-principal slices): tether core {core / sliced:.2f}× "
        f"cedarpy raw, {core - sliced:+.1f} µs per decision"
    )
    if report.swept:
        lines.append(
            f"slicing sweep: {report.swept:,} requests, tether and cedarpy raw (full set) "
            + ("agree" if not any("tether" in p for p in report.problems) else "DISAGREE")
        )
    spread = {
        t.name: f"{min(t.rounds_us):.1f}–{max(t.rounds_us):.1f}"
        for t in report.timings
        if t.name in (CORE, raw.name, RAW_SLICED, SERVICE)
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
