"""AgentDojo material: ground-truth calls (a task's intent) and recorded agent runs.

Formats (as AgentDojo v1.2.2 publishes them):

- ground truth, JSON lines: ``{suite, task_id, prompt, ground_truth_calls: [{function,
  args}]}``, one user task a line; beside it, optionally, ``<suite>_tools.json``
  (``{suite, tools: [...]}``) naming every tool of a suite;
- traces, JSON lines: a first line may be a ``{"metadata": {...}}`` header (no
  ``messages``); every other line is a run ``{messages, metadata: {suite_name,
  user_task_id, injection_task_id, security, ...}}`` whose assistant messages carry
  ``tool_calls: [{id, function: {name, arguments}}]``; each ``tool`` message after them
  carries what a call returned (``content``, by ``tool_call_id``, else in call order),
  and the run's first ``user`` message is what the user asked (the task's purpose).

Labels: a run with ``injection_task_id`` is *attacked*; attacked with
``security == true`` the injection succeeded (a positive); attacked otherwise it failed
(reported apart); without an injection it is *clean* (a negative, whatever its
``security`` says). A successful run with no tool call is *unobservable*.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from tether.errors import InvalidRequest


class EvaluationInputInvalid(InvalidRequest):
    """A trace or ground-truth file that is missing, unreadable or malformed."""

    code = "evaluation_input_invalid"

    @classmethod
    def no_run_matches(cls) -> EvaluationInputInvalid:
        return cls(
            "no run of the traces matches a user task of the ground truth "
            "(check that both files come from the same AgentDojo version)"
        )


class Label(StrEnum):
    CLEAN = "clean"
    SUCCEEDED = "injection_succeeded"
    FAILED = "injection_failed"
    UNOBSERVABLE = "unobservable"


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call an agent made (or a task meant to make)."""

    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    call_id: str | None = None
    result: Any = None  # what the call returned, when the trace has it


@dataclass(frozen=True, slots=True)
class UserTask:
    suite: str
    task_id: str
    prompt: str
    calls: tuple[Call, ...]


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """Every user task by ``(suite, task_id)`` and every suite's tools."""

    tasks: Mapping[tuple[str, str], UserTask]
    suite_tools: Mapping[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class Run:
    """One recorded run of an agent on a user task, perhaps under injection."""

    line: int
    suite: str
    user_task_id: str
    injection_task_id: str | None
    security: bool
    calls: tuple[Call, ...]
    prompt: str | None = None  # the user's request in this run

    @property
    def label(self) -> Label:
        if self.injection_task_id is None:
            return Label.CLEAN
        if not self.security:
            return Label.FAILED
        return Label.SUCCEEDED if self.calls else Label.UNOBSERVABLE


def read_json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    if not path.is_file():
        raise EvaluationInputInvalid(f"no file `{path}`")
    try:
        with path.open(encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    yield number, json.loads(text)
                except json.JSONDecodeError as exc:
                    raise EvaluationInputInvalid(
                        f"`{path}` line {number} is not JSON: {exc.msg}"
                    ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationInputInvalid(f"cannot read `{path}`: {exc}") from None


def _bad(path: Path, line: int, what: str) -> EvaluationInputInvalid:
    return EvaluationInputInvalid(f"`{path}` line {line}: {what}")


def _arguments(value: Any) -> Mapping[str, Any]:
    if isinstance(value, str):  # OpenAI-style: the arguments as a JSON string
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def load_ground_truth(path: Path) -> GroundTruth:
    """Read the ground-truth calls, and ``*_tools.json`` beside them when present.

    Raises:
        EvaluationInputInvalid: the file is missing, or a line is not a user task.
    """
    tasks: dict[tuple[str, str], UserTask] = {}
    for line, row in read_json_lines(path):
        if not isinstance(row, dict):
            raise _bad(path, line, "must be a JSON object")
        suite, task_id, raw = row.get("suite"), row.get("task_id"), row.get("ground_truth_calls")
        if not isinstance(suite, str) or not isinstance(task_id, str) or not isinstance(raw, list):
            raise _bad(path, line, "needs `suite`, `task_id` and a `ground_truth_calls` list")
        calls = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("function"), str):
                raise _bad(path, line, "each ground-truth call needs a `function` name")
            calls.append(Call(item["function"], _arguments(item.get("args"))))
        tasks[(suite, task_id)] = UserTask(
            suite, task_id, str(row.get("prompt") or ""), tuple(calls)
        )
    if not tasks:
        raise EvaluationInputInvalid(f"`{path}` holds no user task")
    tools: dict[str, set[str]] = {}
    for task in tasks.values():
        tools.setdefault(task.suite, set()).update(c.tool for c in task.calls)
    for suite in tools:
        listed = path.parent / f"{suite}_tools.json"
        if listed.is_file():
            try:
                names = json.loads(listed.read_text(encoding="utf-8")).get("tools", [])
            except (OSError, ValueError, AttributeError) as exc:
                raise EvaluationInputInvalid(f"cannot read `{listed}`: {exc}") from None
            tools[suite].update(n for n in names if isinstance(n, str))
    return GroundTruth(tasks, {s: frozenset(t) for s, t in tools.items()})


def _calls(messages: Any) -> tuple[Call, ...]:
    calls: list[Call] = []
    results: dict[str, list[Any]] = {}  # by tool_call_id, in order (ids may repeat)
    unnamed: list[Any] = []  # results without a tool_call_id, in order
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "tool":
            ref = message.get("tool_call_id")
            if isinstance(ref, str) and ref:
                results.setdefault(ref, []).append(message.get("content"))
            else:
                unnamed.append(message.get("content"))
            continue
        if message.get("role") != "assistant":
            continue
        for call in message.get("tool_calls") or []:
            if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
                continue
            function: dict[str, Any] = call["function"]
            name = function.get("name")
            if isinstance(name, str) and name:
                call_id = call.get("id") or None
                calls.append(Call(name, _arguments(function.get("arguments")), call_id))
    pending = iter(unnamed)
    named = {ref: iter(found) for ref, found in results.items()}
    return tuple(
        replace(
            c, result=next(named[c.call_id], None) if c.call_id in named else next(pending, None)
        )
        for c in calls
    )


def _prompt(messages: Any) -> str | None:
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts: [{type: text, text}]
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return content.strip() or None if isinstance(content, str) else None
    return None


def load_traces(path: Path) -> list[Run]:
    """Read every run of a trace file (its metadata header skipped).

    Raises:
        EvaluationInputInvalid: the file is missing, a line is not a run, or there is none.
    """
    runs: list[Run] = []
    for line, row in read_json_lines(path):
        if not isinstance(row, dict):
            raise _bad(path, line, "must be a JSON object")
        if "messages" not in row and line == 1:
            continue  # the header: {"metadata": {benchmark, name, ...}}
        meta = row.get("metadata")
        if not isinstance(meta, dict) or not isinstance(row.get("messages"), list):
            raise _bad(path, line, "a run needs `messages` and `metadata`")
        suite, task_id = meta.get("suite_name"), meta.get("user_task_id")
        if not isinstance(suite, str) or not isinstance(task_id, str):
            raise _bad(path, line, "`metadata` needs `suite_name` and `user_task_id`")
        injection = meta.get("injection_task_id")
        runs.append(
            Run(
                line=line,
                suite=suite,
                user_task_id=task_id,
                injection_task_id=str(injection) if injection not in (None, "") else None,
                security=meta.get("security") is True,
                calls=_calls(row["messages"]),
                prompt=_prompt(row["messages"]),
            )
        )
    if not runs:
        raise EvaluationInputInvalid(f"`{path}` holds no run")
    return runs
