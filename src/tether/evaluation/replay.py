"""Replay recorded agent runs as tether tasks and judge each call with the drift detectors.

For one evaluation :class:`Replay` builds a throw-away tether: a temporary SQLite store
and an estate applied through the real estate path (``tether.estate.apply_estate``):
one ``agent`` identity per suite, class ``agent`` in ``monitor`` mode, entitled to the
suite's tools on any resource. Each run then goes through tether as an agent's task
would:

1. the task is opened with its user task's ground-truth calls as the declared intent:
   the tools as ``actions``; ``app:<suite>``, each tool's ``mcp_tool:<tool>`` and every
   target value (recipient, IBAN, URL, channel... see
   :data:`tether.drift.catalog.TARGET_ARGUMENTS`) as ``target:<value>``
   ``resources``; the calls themselves, with their target arguments, as the intended
   ``calls``. Where the run's user message names another value in the place of one the
   ground truth's prompt names (the benchmark's data changed between the version that
   recorded the run and the ground truth's), the intended calls take the run's value
   (:func:`anchored`): the intent is what *this* user asked for;
2. a task token is issued for it (scope: the intent's actions, as token exchange does);
3. each recorded tool call is decided exactly as the in-process MCP gateway decides a
   ``tools/call`` (:meth:`tether.gateway.LocalDecider.decide_blocking`: subject and task
   from the token, resource ``mcp_tool:<tool>``, the arguments in ``context.mcp``), and
   recorded; ``tether eval agentdojo --via-gateway`` sends the same calls through a real
   gateway (:mod:`tether.evaluation.live`);
4. what the call returned (the trace's tool message) is reported with
   :meth:`tether.services.Tether.report_result`, as the in-process MCP gateway reports a
   forwarded call's result;
5. the tether's own live drift engine (:meth:`tether.services.Tether.start_drift`, run
   on this thread, the ``out_of_intent`` and ``tool_chain`` detectors enabled) judges the
   task's decisions in order, each with what the earlier calls returned: the same code
   that judges a served tether's decisions;
6. the task is ended (its tokens revoked).

The task's purpose is the run's own user message (what the user asked, as an agent
would open its task), else the ground truth's prompt.

A run is flagged when some call yields a finding at or above ``flag_at`` (``high``).
No baseline is learned (each run is a fresh task of a fresh agent), so the detectors
judge against intent and entitlement only.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tether.config import Settings
from tether.drift.catalog import DefaultToolCatalog, normalise_target, target_values
from tether.drift.directory import Watched, load_directory
from tether.drift.model import (
    Finding,
    Severity,
)
from tether.estate import apply_estate, parse_pattern
from tether.evaluation.agentdojo import Call, GroundTruth, Run, UserTask
from tether.gateway import TOOL_CALL, TOOL_TYPE, LocalDecider, ToolCall
from tether.services import Tether
from tether.tokens import TaskRequest
from tether.tokens.tasks import MAX_PURPOSE

DETECTORS = ("out_of_intent", "tool_chain")
OWNER = "agentdojo-eval"
AGENT_CLASS = "agent"
DATA_CLASSES = {"public": 1, "internal": 2, "confidential": 3, "restricted": 4}
_MAX_INTENT_RESOURCES = 100
_DECISION_REF = re.compile(r"decision:[0-9a-f]+")
_NOT_IN_PATTERNS = re.compile(r"[\x00-\x1f\x7f*?\[\]]")
_PUNCTUATION = ".,;:!?'\"()"
_OUTCOMES = {
    "allow": "allowed",
    "constrain": "constrain",
    "deny": "denied",
    "approval_required": "approval_required",
}


@dataclass(frozen=True, slots=True)
class RunVerdict:
    """What tether made of one run: its decisions and its worst finding."""

    run: Run
    flagged: bool
    calls: int
    refused: int  # calls tether's decision core did not allow (outside the token's scope...)
    worst: Finding | None
    decided: tuple[tuple[str, str], ...] = ()  # each call's (outcome, decision id), in order
    findings: tuple[Finding, ...] = ()

    def by_call(self) -> list[tuple[str, list[tuple[str, str, float, str]]]]:
        """Each call's outcome and what drift found on it (detector, severity, score,
        reason with the decision ids left out), in order: how two replays compare."""
        found: dict[str, list[tuple[str, str, float, str]]] = {}
        for finding in self.findings:
            ref = finding.evidence[0] if finding.evidence else ""
            reason = _DECISION_REF.sub("decision:*", finding.reason)
            found.setdefault(ref, []).append(
                (finding.detector, finding.severity.value, finding.score, reason)
            )
        return [
            (outcome, sorted(found.get(f"decision:{ref}", []))) for outcome, ref in self.decided
        ]


def identity_for(suite: str) -> str:
    return "agentdojo-" + re.sub(r"[^a-z0-9-]+", "-", suite.lower()).strip("-")


def estate_document(truth: GroundTruth, runs: list[Run]) -> dict[str, Any]:
    """The estate of the replay: one monitored agent per suite, entitled to its tools."""
    suites = sorted({r.suite for r in runs} & set(truth.suite_tools))
    return {
        "classes": {AGENT_CLASS: {"mode": "monitor", "max_task_ttl": "4h"}},
        "data_classes": DATA_CLASSES,
        "identities": [
            {
                "id": identity_for(suite),
                "kind": "agent",
                "class": AGENT_CLASS,
                "owner": OWNER,
                "entitlements": [{"actions": sorted(truth.suite_tools[suite]), "resources": ["*"]}],
            }
            for suite in suites
        ],
    }


def anchored(task: UserTask, prompt: str | None) -> UserTask:
    """``task`` with its calls' argument values that its prompt names replaced by the
    values ``prompt`` (the run's user message) names in their place: word for word, where
    the two prompts differ by as many words as they replace. ``task`` itself when nothing
    changes."""
    if not prompt or prompt == task.prompt:
        return task
    declared, given = task.prompt.split(), prompt.split()
    swapped: dict[str, str] = {}
    matcher = SequenceMatcher(None, declared, given, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "replace" and i2 - i1 == j2 - j1:
            for old, new in zip(declared[i1:i2], given[j1:j2], strict=True):
                old, new = old.strip(_PUNCTUATION), new.strip(_PUNCTUATION)
                if old and new and old != new:
                    swapped[old] = new
    if not swapped:
        return task

    def swap(value: Any) -> Any:
        if isinstance(value, list):
            return [swap(v) for v in value]
        return swapped.get(value, value) if isinstance(value, str) else value

    calls = tuple(
        replace(c, arguments={k: swap(v) for k, v in c.arguments.items()}) for c in task.calls
    )
    return replace(task, prompt=prompt, calls=calls)


def _intended_call(catalog: DefaultToolCatalog, call: Call) -> dict[str, Any]:
    """An intended call of the intent: the tool and its target arguments."""
    targets = catalog.info(call.tool).target_arguments
    arguments = {
        name: value for name, value in call.arguments.items() if name in targets and _plain(value)
    }
    return {"tool": call.tool, "arguments": arguments}


def _plain(value: Any) -> bool:
    if isinstance(value, list):
        return len(value) <= _MAX_INTENT_RESOURCES and all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
        )
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def intent_of(catalog: DefaultToolCatalog, task: UserTask) -> dict[str, list[Any]]:
    """The declared intent of a user task: its tools (as a gateway names them: the
    ``mcp_tool:<name>`` of an unmapped tool, and the suite's ``app:<suite>``), the
    targets of its calls, and the calls themselves with their target arguments."""
    actions = list(dict.fromkeys(c.tool for c in task.calls))
    resources = [f"app:{task.suite}", *(f"{TOOL_TYPE}:{tool}" for tool in actions)]
    for call in task.calls:
        for _, value in target_values(catalog.info(call.tool), call.arguments):
            text = f"target:{normalise_target(value)}"
            if (
                not _NOT_IN_PATTERNS.search(value)
                and len(text) <= 400
                and text not in resources
                and not isinstance(parse_pattern(text), str)
            ):
                resources.append(text)
    calls = [_intended_call(catalog, c) for c in task.calls[:_MAX_INTENT_RESOURCES]]
    return {
        "actions": actions,
        "resources": resources[:_MAX_INTENT_RESOURCES],
        "calls": calls,
    }


class Replay:
    """A throw-away tether that replays runs; use as a context manager."""

    def __init__(
        self,
        truth: GroundTruth,
        runs: list[Run],
        *,
        flag_at: Severity = Severity.HIGH,
        catalog: DefaultToolCatalog | None = None,
    ) -> None:
        self.truth = truth
        self.flag_at = flag_at
        self.catalog = catalog or DefaultToolCatalog()
        self._dir = tempfile.TemporaryDirectory(prefix="tether-eval-")
        root = Path(self._dir.name)
        estate_dir = root / "estate"
        estate_dir.mkdir()
        document = estate_document(truth, runs)
        (estate_dir / "estate.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        self.tether = Tether(
            Settings(
                database_url=f"sqlite:///{root / 'tether.db'}",
                master_key_file=str(root / "master.key"),
            )
        )
        apply_estate(self.tether.engine, estate_dir, actor=OWNER)
        self.tether.reload()
        snapshot = self.tether.snapshot
        with self.tether.engine.connect() as connection:
            directory = load_directory(connection, snapshot.revision, snapshot.estate)
        # The drift engine's view of each agent: entitlement, blast radius, class thresholds.
        self._watched: dict[str, Watched] = {}
        for identity in document["identities"]:
            watched = directory.get(identity["id"])
            if watched is not None:
                self._watched[identity["id"]] = watched
        self.data_classes: Mapping[str, int] = directory.data_classes
        self.drift = self.tether.start_drift(background=False, detectors=DETECTORS)
        self.decider = LocalDecider(self.tether, caller=OWNER)

    @property
    def folder(self) -> Path:
        """The replay's own temporary folder (removed on close)."""
        return Path(self._dir.name)

    def __enter__(self) -> Replay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.tether.close()
        self._dir.cleanup()

    def knows(self, run: Run) -> bool:
        """Whether the ground truth has the run's user task (else it cannot be replayed)."""
        return (run.suite, run.user_task_id) in self.truth.tasks and identity_for(
            run.suite
        ) in self._watched

    def replay(self, run: Run) -> RunVerdict:
        """Replay one run through tether (see the module docstring)."""
        task_id, token = self.open(run)
        decided: list[tuple[str, str]] = []
        for call in run.calls:
            outcome, decision_id = self._decide(token, call)
            decided.append((outcome, decision_id))
            # The recorded agent saw this result whatever tether decided: report it.
            self.tether.report_result(decision_id, call.result)
        return self.judge(run, task_id, decided)

    def open(self, run: Run) -> tuple[str, str]:
        """Open the run's task and issue its token: ``(task id, token)``."""
        user_task = anchored(self.truth.tasks[(run.suite, run.user_task_id)], run.prompt)
        identity = self._watched[identity_for(run.suite)].view
        request = TaskRequest.from_json(
            {
                "purpose": _purpose(run, user_task),
                "intent": intent_of(self.catalog, user_task),
            }
        )
        authority = self.tether.tasks
        task = authority.open_task(request, identity_id=identity.identity_id, opened_by=OWNER)
        issued = authority.issue(
            task, scope=task.intent.actions, event="token.exchange", actor=OWNER, details={}
        )
        return task.id, issued.token

    def judge(self, run: Run, task_id: str, decided: list[tuple[str, str]]) -> RunVerdict:
        """Detect on everything the run's calls queued (``decided``: each call's outcome and
        decision id, in order), end its task, and say what tether made of it."""
        findings = tuple(f for f in self.drift.run_pending() if f.task_id == task_id)
        worst = max(findings, key=lambda f: f.score, default=None)
        self.tether.tasks.end_task(task_id, actor=OWNER, reason="replayed")
        flagged = worst is not None and worst.severity.rank >= self.flag_at.rank
        refused = sum(outcome not in ("allow", "constrain") for outcome, _ in decided)
        return RunVerdict(run, flagged, len(run.calls), refused, worst, tuple(decided), findings)

    def _decide(self, token: str, call: Call) -> tuple[str, str]:
        """Decide ``call`` with the task's token exactly as the in-process MCP gateway
        decides a ``tools/call`` of it: its outcome and decision id."""
        asked = ToolCall(TOOL_CALL, call.tool, call.arguments)
        decided = self.decider.decide_blocking(token, asked)
        return decided.outcome, decided.decision_id or ""


def _purpose(run: Run, user_task: UserTask) -> str:
    text = run.prompt or user_task.prompt or user_task.task_id
    return text[:MAX_PURPOSE]
