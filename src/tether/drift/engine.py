"""The drift engine: observe, detect, score, apply exceptions, store, respond.

Live, it runs off the decision hot path: :meth:`DriftEngine.submit_decision` only puts
the decision's row on a bounded queue (a full queue drops and counts, it never blocks a
decision) and one worker thread does the rest. The same thread tails the ``events``
table by sequence number, so events ingested by any process (``tether ingest``, ``POST
/v1/events``) are examined as they are recorded. Batch, :meth:`DriftEngine.scan`
re-runs detection on stored events and decisions (``tether drift scan``); finding ids
are stable, so a re-scan stores nothing twice.

A tool's result, reported after its call (:meth:`DriftEngine.submit_result`: the MCP
gateway, a replay), joins the same queue, so each later call of the task is judged with
what the earlier ones returned: where its destinations came from
(:mod:`tether.drift.provenance`). On the event bus a result can arrive before its call
(reported to one replica, decided on another): it is held up to ``EARLY_RESULT_S`` for
the call to come.

Per observation: the identity's view and class thresholds (:mod:`tether.drift.directory`,
rebuilt when the estate revision changes), its task (from the task ledger), its latest
baseline, and a bounded history of what it did earlier in the same task (or, without a
task, recently) go into a :class:`DetectionContext`; every enabled detector runs; each
signal is scored (:mod:`tether.drift.scoring`); exceptions suppress or downgrade;
findings of at least ``min_severity`` are stored; new ones get a response
(:mod:`tether.drift.responses`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from tether.drift.baseline_store import (
    load_latest_baselines,
    rebuild_baselines,
    select_observed_events,
    stored_observations,
)
from tether.drift.baselines import LearnedBaseline
from tether.drift.catalog import estate_catalog
from tether.drift.detectors import Detector, load_detectors
from tether.drift.detectors.out_of_intent import covered
from tether.drift.directory import Directory, load_directory
from tether.drift.exceptions import ExceptionBook, ExceptionUse, load_exceptions, log_uses
from tether.drift.findings import PENDING, insert_findings
from tether.drift.model import (
    DetectionContext,
    Finding,
    IdentityView,
    IntendedCall,
    Observation,
    Severity,
    Signal,
    TaskView,
    ToolCatalog,
)
from tether.drift.observations import from_decision, from_event, observation_of
from tether.drift.positions import examined_up_to, resume_point, save_position
from tether.drift.provenance import RunRecord, read_output
from tether.drift.responses import (
    RECOVER_EVERY_S,
    BehaviourBoard,
    Responder,
    SignalSink,
    TaskEnder,
    choose_response,
)
from tether.drift.scoring import to_finding
from tether.drift.task_outputs import TaskOutputs
from tether.estate.compiled import CompiledEstate
from tether.frozen import builder
from tether.policy import EntityRef
from tether.store.drift_tables import drift_baselines
from tether.store.seq_cursor import SeqCursor
from tether.store.telemetry_tables import events

log = logging.getLogger(__name__)

#: How often the worker looks for queued decisions (seconds).
POLL_S = 0.005
#: How often, at most, the worker reads newly stored events (seconds) while it keeps up.
EVENTS_POLL_S = 0.1
#: Stored events read at a time. While a read fills its page the engine is behind
#: (``events_behind``) and reads the next page at its next step, without waiting.
EVENTS_PAGE = 2000
REPEAT_WINDOW = timedelta(minutes=5)
MAX_RECENT = 100_000
# A result can reach the engine before its decision (reported to one replica, decided on
# another, both on the bus): it is held this long, and at most this many, for the call.
EARLY_RESULT_S = 10.0
MAX_EARLY_RESULTS = 10_000
#: How often a live engine relearns every baseline from the store (6 h).
DEFAULT_BASELINE_EVERY_S = 6 * 3600.0
#: The key of a queued row that reports a call's result, not a decision.
RESULT_KEY = "tool_result_of"
#: The key of such a row's ``[identity, task id]``: whose task the reporter holds a token of.
TASK_KEY = "reported_for_task"
#: ``(identity, task id)``: the key of a task's history.
TaskKey = tuple[str, str]
#: Outcomes of calls that ran (and so had a result).
_RAN = frozenset({"allowed", "constrain"})
EstateSource = Callable[[], tuple[int | None, CompiledEstate]]
TaskSource = Callable[[str], Any]  # task id -> TaskRecord (raises when unknown)


class DriftEngine:
    """Drift detection over one store.

    Args:
        engine: the store.
        estate: returns the live ``(revision, compiled estate)``.
        tasks: looks a task up by id (``TaskAuthority.task``); ``None``: no task views.
        ender: ends a task when a finding calls for revocation (``TaskAuthority``).
        sink: where Shared Signals go (``tether.signals.Transmitter``).
        detectors: names of the enabled detectors (all by default).
        board: where drift records go (``context.tether.behaviour``); a new one by default.
        events_page: stored events read at a time (see ``EVENTS_PAGE``).
    """

    def __init__(
        self,
        engine: Engine,
        estate: EstateSource,
        *,
        tasks: TaskSource | None = None,
        ender: TaskEnder | None = None,
        sink: SignalSink | None = None,
        detectors: Iterable[str] | None = None,
        catalog: ToolCatalog | None = None,
        min_severity: Severity = Severity.LOW,
        queue_size: int = 10_000,
        history_size: int = 50,
        max_histories: int = 10_000,
        refresh_s: float = 1.0,
        tail_events: bool = True,
        baseline_window: timedelta | None = None,
        baseline_every_s: float | None = None,
        board: BehaviourBoard | None = None,
        events_page: int = EVENTS_PAGE,
    ) -> None:
        self._engine = engine
        self._events_page = events_page
        self._estate = estate
        self._tasks = tasks
        self._detector_names = tuple(detectors) if detectors is not None else None
        self.detectors: tuple[Detector, ...] = ()
        # Given, or the estate's `tools:` (destinations named there) over the default.
        self._catalog_given = catalog is not None
        self._internal: Callable[[str], bool] | None = None  # the estate's organisation
        self.catalog: ToolCatalog = catalog or estate_catalog({})
        self.min_severity = min_severity
        self.board = board if board is not None else BehaviourBoard()
        self.responder = Responder(engine, self.board, tasks=ender, sink=sink)
        # A deque, not a queue.Queue: appending is one atomic C call (~0.1 us, no lock),
        # and the worker polls it every few milliseconds.
        self._queue: deque[Mapping[str, Any]] = deque()
        self._queue_size = queue_size
        self.dropped = 0
        self._history_size = history_size
        self._max_histories = max_histories
        self._histories: OrderedDict[tuple[str, str], deque[Observation]] = OrderedDict()
        self._task_views: OrderedDict[str, TaskView | None] = OrderedDict()
        # What each task's calls returned, by history key, and which calls had a result.
        self._outputs: OrderedDict[tuple[str, str], TaskOutputs] = OrderedDict()
        self._call_keys: OrderedDict[str, tuple[str, str]] = OrderedDict()  # ref -> history key
        # Results of calls not seen yet: ref -> (monotonic arrival, result, reporter's task).
        self._early: OrderedDict[str, tuple[float, Any, Any]] = OrderedDict()
        self.early_results_expired = 0
        self._refresh_s = refresh_s
        self._tail_events = tail_events
        self._baseline_window = baseline_window
        self._baseline_every_s = baseline_every_s
        self._last_rebuild = time.monotonic()
        self._directory = Directory(None)
        self._baselines: dict[str, LearnedBaseline] = {}
        self._baselines_at: Any = None
        self._book = ExceptionBook(())
        self._refreshed = 0.0
        self._recovered = 0.0  # monotonic time responses owed were last looked for
        # Stored events read so far (late commits below the newest are read too).
        self._events_read = SeqCursor()
        self._position_saved = 0  # the tail's position last written to the store
        self._events_polled = 0.0
        self.events_behind = False
        """The last read of stored events filled its page: more are waiting to be examined."""
        # The same finding again (identity, detector, task, resource, reason) within
        # REPEAT_WINDOW of observed time is counted, not stored again: repeated probes make
        # one finding to act on, not a flood (and no write per request under load).
        self._recent: OrderedDict[tuple[str, ...], datetime] = OrderedDict()
        self.repeats = 0
        # When a list, the repeats are kept in it (a backtest counts their events as
        # flagged: the finding they repeat stands for them).
        self.kept_repeats: list[Finding] | None = None
        self._lock = threading.RLock()
        self._busy = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self, *, background: bool = True) -> None:
        """Load the enabled detectors (a missing one is an error now) and start the worker."""
        self.detectors = load_detectors(self._detector_names)
        self.refresh(force=True)
        with self._engine.connect() as connection:
            newest = int(connection.execute(select(func.max(events.c.seq))).scalar() or 0)
        start = resume_point(self._engine, newest=newest) if self._tail_events else newest
        if start < newest:
            log.info("live detection resumes at event %d: %d stored since", start, newest - start)
        self._events_read = SeqCursor(start)
        self._position_saved = start
        if background and self._worker is None:
            self._worker = threading.Thread(target=self._run, name="tether-drift", daemon=True)
            self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=5)
            self._worker = None

    # --- hot path ----------------------------------------------------------------------

    def submit_decision(self, row: Mapping[str, Any]) -> None:
        """Queue a recorded decision for detection; never blocks (a full queue drops)."""
        if len(self._queue) < self._queue_size:
            self._queue.append(row)
        else:
            self.dropped += 1

    def submit_result(self, ref: str, result: Any, *, task: TaskKey | None = None) -> None:
        """Queue what the call decided as ``ref`` (``decision:<id>``) returned: its text,
        or its JSON. ``task``: the ``(identity, task id)`` the reporter holds a token of
        (a result reported over HTTP); the result then counts only for a call of that
        task. Never blocks (a full queue drops)."""
        row: dict[str, Any] = {RESULT_KEY: ref, "result": result}
        if task is not None:
            row[TASK_KEY] = list(task)
        self.submit_decision(row)

    def run_pending(self) -> list[Finding]:
        """Detect on everything queued so far, on the calling thread, and return the
        findings made (for a caller that runs the engine itself, without its thread)."""
        rows: list[Mapping[str, Any]] = []
        while self._queue:
            rows.append(self._queue.popleft())
        return self.work(rows)

    def behaviour(self, identity_id: str) -> Mapping[str, Any] | None:
        """``context.tether.behaviour`` of an identity (``None`` when it has no findings)."""
        return self.board.cedar.get(identity_id)

    # --- worker ------------------------------------------------------------------------

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is processed (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._queue and not self._busy.is_set():
                return True
            time.sleep(0.005)
        return False

    def _run(self) -> None:
        idle_since = time.monotonic()
        while not self._stop.is_set():
            idle = not self._queue and not self.events_behind
            if idle and time.monotonic() - idle_since < self._refresh_s / 2:
                self._stop.wait(POLL_S)
                continue
            self._busy.set()
            try:
                rows: list[Mapping[str, Any]] = []
                while self._queue and len(rows) < 500:
                    rows.append(self._queue.popleft())
                self.work(rows)
            except Exception:
                log.exception("drift detection failed on a batch; carrying on")
            finally:
                self._busy.clear()
                idle_since = time.monotonic()

    def work(self, rows: Sequence[Mapping[str, Any]]) -> list[Finding]:
        """Detect on ``rows`` (decision rows and reported results, in order) and on newly
        stored events, now, on the calling thread: the worker thread's step, also for a
        loop that runs the engine itself. Returns the findings made."""
        self.refresh()
        self._recover_owed()
        every = self._baseline_every_s
        if every is not None and time.monotonic() - self._last_rebuild >= every:
            self._last_rebuild = time.monotonic()
            self.rebuild_baselines(now=datetime.now(UTC), window=self._baseline_window)
        directory = self._directory
        items: list[Observation | Mapping[str, Any]] = []
        for row in rows:
            if RESULT_KEY in row:
                items.append(row)
            else:
                items.extend(from_decision(row, directory))
        polled = time.monotonic() - self._events_polled >= EVENTS_POLL_S
        if self._tail_events and (self.events_behind or polled):
            # Under load a batch of decisions comes every few ms: ask the store for events
            # less often, unless the last read left events waiting (an ingest under way).
            self._events_polled = time.monotonic()
            items.extend(self._new_events())
        found = self.process(items, respond=True) if items else []
        self._save_position()
        return found

    def _save_position(self) -> None:
        """Keep how far the tail examined (after the findings of what it read are stored)."""
        if not self._tail_events:
            return
        examined = examined_up_to(self._events_read)
        if examined <= self._position_saved:
            return
        try:
            save_position(self._engine, examined)
        except Exception:  # the store away a moment: the next step writes it
            log.exception("keeping the live detection position failed")
            return
        self._position_saved = examined

    def examine(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Finding]:
        """Detect on decision and event rows in the order given, now, on the calling thread,
        responding to new findings: the step of an event-bus worker (:mod:`tether.bus`),
        whose items are ``("decision", decisions row)``, ``("event", events row)`` or
        ``("result", reported result)``."""
        self.refresh()
        self._recover_owed()
        directory = self._directory
        observations: list[Observation | Mapping[str, Any]] = []
        for kind, row in items:
            if kind == "decision":
                observations.extend(from_decision(row, directory))
            elif kind == "result":
                if RESULT_KEY in row:
                    reported = {RESULT_KEY: row[RESULT_KEY], "result": row.get("result")}
                    if TASK_KEY in row:
                        reported[TASK_KEY] = row[TASK_KEY]
                    observations.append(reported)
            elif (observed := from_event(row, directory)) is not None:
                observations.append(observed)
        return self.process(observations, respond=True) if observations else []

    def _recover_owed(self) -> None:
        """Now and then, carry out responses other processes owed and did not make."""
        if time.monotonic() - self._recovered < RECOVER_EVERY_S:
            return
        self._recovered = time.monotonic()
        try:
            self.responder.recover(datetime.now(UTC))
        except Exception:  # the store away a moment: the next round looks again
            log.exception("looking for responses owed failed")

    def _new_events(self) -> list[Observation]:
        limit = self._events_page
        self.events_behind = False  # a store that cannot be read is not asked again at once
        with self._engine.connect() as connection:
            result = connection.execute(
                select_observed_events()
                .where(self._events_read.unread(events.c.seq))
                .order_by(events.c.seq)
                .limit(limit)
            )
            # Rows by position (OBSERVED_COLUMNS), fetched at once: no mapping per row, as
            # detection reads two dozen fields of every event.
            rows = result.fetchall()
        self._events_read.advance(int(r[0]) for r in rows)
        self.events_behind = len(rows) >= limit
        directory = self._directory
        found = [observation_of(r, directory) for r in rows]
        return [o for o in found if o is not None]

    def refresh(self, *, force: bool = False) -> None:
        """Reload the directory (new estate revision), exceptions and baselines when due."""
        now = time.monotonic()
        if not force and now - self._refreshed < self._refresh_s:
            return
        self._refreshed = now
        revision, estate = self._estate()
        with self._engine.connect() as connection:
            if force or revision != self._directory.revision:
                self._directory = load_directory(connection, revision, estate)
                if not self._catalog_given:
                    self.catalog = estate_catalog(estate.tools)
                self._internal = estate.organisation.inside if estate.organisation else None
            self._book = ExceptionBook(load_exceptions(connection))
            built = connection.execute(select(func.max(drift_baselines.c.built_at))).scalar()
            if force or built != self._baselines_at:
                self._baselines = load_latest_baselines(connection)
                self._baselines_at = built

    # --- detection ---------------------------------------------------------------------

    def process(
        self, observations: Iterable[Observation | Mapping[str, Any]], *, respond: bool
    ) -> list[Finding]:
        """Detect, score, apply exceptions and store; respond to new findings if asked.
        A reported result (a mapping, see :meth:`submit_result`) is noted for the calls
        after it."""
        with self._lock:
            made: list[Finding] = []
            uses: list[tuple[Finding, ExceptionUse]] = []
            for obs in observations:
                if not isinstance(obs, Observation):
                    self._note_result(str(obs[RESULT_KEY]), obs.get("result"), obs.get(TASK_KEY))
                    continue
                for finding in self._detect(obs):
                    finding, use = self._book.apply(finding)
                    if use is not None:
                        uses.append((finding, use))
                    made.append(finding)
                if self._early and obs.ref in self._early:
                    _, result, task = self._early.pop(obs.ref)
                    self._note_result(obs.ref, result, task)
            if not made:
                return []
            now = datetime.now(UTC)
            if respond:  # owed until carried out (see tether.drift.responses)
                made = [
                    replace(f, response=PENDING) if choose_response(f) != "none" else f
                    for f in made
                ]
            with self._engine.begin() as connection:
                inserted = insert_findings(connection, made, now)
                log_uses(connection, uses, now)
            if respond and inserted:
                responses = self.responder.respond_all(made, now)
                made = [_with_response(f, r) for f, r in zip(made, responses, strict=True)]
            return made

    def _repeat_key(self, signal: Signal, obs: Observation) -> tuple[str, ...]:
        """What makes a finding the same as an earlier one (see ``_recent``)."""
        return (
            obs.identity_id,
            signal.detector,
            obs.task_id or "",
            obs.resource or "",
            signal.reason,
        )

    def _is_repeat(self, key: tuple[str, ...], at: datetime) -> bool:
        """Whether a finding of ``key`` was made within REPEAT_WINDOW before ``at``."""
        last = self._recent.get(key)
        return last is not None and timedelta(0) <= at - last < REPEAT_WINDOW

    def _remember(self, key: tuple[str, ...], at: datetime) -> None:
        self._recent[key] = at
        self._recent.move_to_end(key)
        if len(self._recent) > MAX_RECENT:
            self._recent.popitem(last=False)

    def _detect(self, obs: Observation) -> list[Finding]:
        watched = self._directory.watch(obs.identity_id)
        key = (obs.identity_id, obs.task_id or "")
        history = self._histories.get(key)
        if history is None:
            history = self._histories[key] = deque(maxlen=self._history_size)
            if len(self._histories) > self._max_histories:
                self._histories.popitem(last=False)
        else:
            self._histories.move_to_end(key)
        ctx = self._context(obs, watched.view, history)
        history.append(obs)
        self._call_keys[obs.ref] = key
        if len(self._call_keys) > MAX_RECENT:
            self._call_keys.popitem(last=False)
        found: list[Finding] = []
        for detector in self.detectors:
            try:
                signals = detector.detect(obs, ctx)
            except Exception:
                log.exception("detector %s failed on %s", detector.name, obs.ref)
                continue
            for signal in signals:
                # A repeat is told before scoring: under load most signals are repeats,
                # and scoring is the dearest step left.
                repeat = self._repeat_key(signal, obs)
                if self._is_repeat(repeat, obs.at):
                    self.repeats += 1
                    if self.kept_repeats is not None:
                        self.kept_repeats.append(to_finding(signal, obs, ctx, watched.thresholds))
                    continue
                finding = to_finding(signal, obs, ctx, watched.thresholds)
                if finding.severity.rank >= self.min_severity.rank:
                    self._remember(repeat, obs.at)
                    found.append(finding)
        return found

    def _context(
        self, obs: Observation, identity: IdentityView, history: Iterable[Observation]
    ) -> DetectionContext:
        earlier = tuple(history)
        return _detection_context(
            identity=identity,
            task=self._task_view(obs.task_id),
            baseline=self._baselines.get(obs.identity_id),
            history=earlier,
            catalog=self.catalog,
            data_classes=self._directory.data_classes,
            record=self._record(obs, earlier),
            internal=self._internal,
        )

    def _record(self, obs: Observation, earlier: tuple[Observation, ...]) -> RunRecord | None:
        """What the task's earlier calls returned: ``None`` when none was reported (then
        provenance can only tell intent and purpose), empty and complete before the first."""
        task_id = obs.task_id
        if task_id is None:
            return None
        outputs = self._outputs.get((obs.identity_id, task_id))
        # The earlier calls of the task that ran (and so had a result), looked through
        # only as far as needed: none of them for a task whose record is no longer complete.
        ran = (h.ref for h in earlier if h.outcome in _RAN and h.task_id == task_id)
        if not outputs:
            return None if next(ran, None) is not None else RunRecord()
        return outputs.record(ran)

    def _note_result(self, ref: str, result: Any, task: Any = None) -> None:
        """Remember what the call ``ref`` returned, and whether its task's intent covers it.

        A result of a call this engine has not seen yet is held for ``EARLY_RESULT_S`` and
        noted when the call comes. Ignored: a result of a call long forgotten, of a call of
        another task than the reporter's ``task`` (when given), and a second result of the
        same call."""
        key = self._call_keys.get(ref)
        if key is None:
            self._hold_early(ref, result, task)
            return
        history = self._histories.get(key)
        call: Observation | None = None
        others: list[Observation] = []  # the history but the call: as before it
        for h in history or ():
            if h.ref != ref:
                others.append(h)
            elif call is None:
                call = h
        if call is None:
            return  # a call long forgotten: nothing to judge by
        if task is not None and (not isinstance(task, list | tuple) or tuple(task) != key):
            return  # reported with another task's token: not the reporter's call
        outputs = self._outputs.get(key)
        if outputs is not None and ref in outputs:
            return  # a call has one result: the first reported
        watched = self._directory.watch(key[0])
        ctx = self._context(call, watched.view, others)
        tool = call.tool_name or call.action
        output = read_output(ref, tool, result, covered=covered(call, ctx))
        if outputs is None:
            outputs = self._outputs[key] = TaskOutputs()
        outputs.add(output)
        self._outputs.move_to_end(key)
        if len(self._outputs) > self._max_histories:
            self._outputs.popitem(last=False)

    def _hold_early(self, ref: str, result: Any, task: Any) -> None:
        """Keep the result of a call not seen yet (the first one reported), dropping what
        waited longer than ``EARLY_RESULT_S`` or beyond ``MAX_EARLY_RESULTS``."""
        now = time.monotonic()
        early = self._early
        while early:
            oldest = next(iter(early.values()))
            if now - oldest[0] < EARLY_RESULT_S and len(early) < MAX_EARLY_RESULTS:
                break
            early.popitem(last=False)
            self.early_results_expired += 1
        early.setdefault(ref, (now, result, task))

    def _task_view(self, task_id: str | None) -> TaskView | None:
        if task_id is None or self._tasks is None:
            return None
        if task_id in self._task_views:
            self._task_views.move_to_end(task_id)
            return self._task_views[task_id]
        try:
            view: TaskView | None = task_view(self._tasks(task_id))
        except Exception:
            view = None
        self._task_views[task_id] = view
        if len(self._task_views) > 10_000:
            self._task_views.popitem(last=False)
        return view

    # --- batch -------------------------------------------------------------------------

    def scan(
        self, *, since: datetime, until: datetime | None = None, identity_id: str | None = None
    ) -> list[Finding]:
        """Re-run detection on stored events and decisions (no live responses)."""
        if not self.detectors:
            self.detectors = load_detectors(self._detector_names)
        self.refresh(force=True)
        end = until or datetime.now(UTC)
        with self._engine.connect() as connection:
            observed = list(
                stored_observations(
                    connection,
                    self._directory,
                    since=since,
                    until=end,
                    identity_id=identity_id,
                    unattributed=identity_id is None,
                )
            )
        observed.sort(key=lambda o: o.at)
        return self.process(observed, respond=False)

    def rebuild_baselines(
        self, *, now: datetime, window: timedelta | None = None, identity_id: str | None = None
    ) -> list[LearnedBaseline]:
        """Learn a new baseline version (one identity or all) and start using it."""
        self.refresh(force=True)
        kwargs = {"window": window} if window is not None else {}
        built = rebuild_baselines(
            self._engine, self._directory, now=now, identity_id=identity_id, **kwargs
        )
        self.refresh(force=True)
        return built


# DetectionContext(...) per observation at half the cost of `__init__` (tether.frozen).
_detection_context = builder(DetectionContext)


def _with_response(finding: Finding, response: str) -> Finding:
    return replace(finding, response=response)


def task_view(task: Any) -> TaskView:
    """The :class:`TaskView` of a :class:`~tether.tokens.tasks.TaskRecord`."""
    intent = task.intent

    def within(action: str, resource: str | None) -> bool:
        if resource is None:
            return action in intent.actions
        resource_type, _, resource_id = resource.partition(":")
        return intent.outside(action, EntityRef(resource_type, resource_id), None) is None

    return TaskView(
        task_id=task.id,
        purpose=task.purpose,
        actions=frozenset(intent.actions),
        resources=tuple(p.text for p in intent.resources),
        data_classes=frozenset(intent.data_classes),
        calls=tuple(IntendedCall(c.tool, c.arguments) for c in intent.calls),
        within_intent=within,
    )
