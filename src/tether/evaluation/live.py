"""``tether eval agentdojo --via-gateway``: the replay's calls through a real MCP gateway.

The offline replay (:mod:`tether.evaluation.replay`) decides each recorded call as the
in-process gateway would. This one sends it the whole way an agent's call goes:

* a stub MCP server (:mod:`tether.evaluation.mcp_stub`, the ``mcp`` SDK, a subprocess
  the gateway starts as its stdio upstream) serves each suite's tools (AgentDojo's
  ``<suite>_tools.json``) and answers each call with the result the run recorded;
* the gateway (:func:`tether.gateway._proxy.create_gateway_app` over a
  :class:`~tether.gateway.LocalDecider` on the replay's tether, as ``tether gateway mcp
  --db`` runs it) serves streamable HTTP on a real socket, under uvicorn in a thread;
* each run is one MCP session (the ``mcp`` SDK's client) holding the run's task token
  as its bearer; each recorded call is a ``tools/call``. A refused call's recorded
  result is reported to the replay's tether as the offline replay reports it (the
  recorded agent saw it, whatever tether decided); a passed call's result is reported
  by the gateway itself.

The replay's drift engine then judges the task exactly as offline, so both print the
same figures when the live path loses nothing: :meth:`RunVerdict.by_call` compares
them call by call.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import uvicorn
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

import tether
from tether.errors import TetherError
from tether.evaluation.agentdojo import EvaluationInputInvalid, Run
from tether.evaluation.metrics import Evaluation
from tether.evaluation.replay import Replay, RunVerdict
from tether.gateway import LocalDecider
from tether.gateway._proxy import DECISION_META, OUTCOME_META, create_gateway_app
from tether.gateway._upstream import UpstreamSpec

TOOLS_SUFFIX = "_tools.json"
_START_S = 30.0
_CALL_TIMEOUT_S = 30.0


class LiveReplayFailed(TetherError):
    """The live path answered a recorded call unlike the recording (the stub found no
    such call, or the gateway answered what no decision explains)."""

    code = "live_replay_failed"


def load_suite_tools(folder: Path) -> dict[str, list[str]]:
    """Each suite's tool names, from the folder's ``<suite>_tools.json`` files.

    Raises:
        EvaluationInputInvalid: no such file, or one that is not ``{"suite", "tools"}``.
    """
    tools: dict[str, list[str]] = {}
    for path in sorted(folder.glob(f"*{TOOLS_SUFFIX}")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            suite, names = document["suite"], document["tools"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EvaluationInputInvalid(f"{path}: not a suite's tools ({exc})") from None
        if not isinstance(suite, str) or not all(isinstance(n, str) for n in names):
            raise EvaluationInputInvalid(f"{path}: `suite` must be a name, `tools` names")
        tools[suite] = list(names)
    if not tools:
        raise EvaluationInputInvalid(f"no `*{TOOLS_SUFFIX}` file in {folder}")
    return tools


def _script(tools: Mapping[str, Sequence[str]], runs: Sequence[Run]) -> dict[str, Any]:
    calls = [
        {"suite": run.suite, "tool": c.tool, "arguments": dict(c.arguments), "result": c.result}
        for run in runs
        for c in run.calls
    ]
    return {"tools": dict(tools), "calls": calls}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving_gateway(replay: Replay, script: Path) -> Iterator[str]:
    """The gateway in front of the stub, on a real socket, until the context ends: its
    MCP URL."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    # The stub runs this very tether package, wherever it is imported from.
    where = str(Path(tether.__file__).parent.parent)
    stub = UpstreamSpec(
        command=(sys.executable, "-m", "tether.evaluation.mcp_stub", str(script)),
        env=(("PYTHONPATH", where),),
    )
    app = create_gateway_app(
        LocalDecider(replay.tether),
        stub,
        public_url=base,
        issuer=replay.tether.settings.public_url,
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="eval-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise LiveReplayFailed("the gateway did not start")
        time.sleep(0.02)
    try:
        yield f"{base}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def _live_run(replay: Replay, url: str, run: Run) -> RunVerdict:
    task_id, token = replay.open(run)
    decided: list[tuple[str, str]] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=_CALL_TIMEOUT_S) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for index, call in enumerate(run.calls):
            where = f"call {index + 1} (`{call.tool}`) of the run on line {run.line}"
            try:
                result = await session.call_tool(call.tool, dict(call.arguments))
            except MCPError as exc:
                data = exc.data if isinstance(exc.data, dict) else {}
                decision_id, outcome = data.get("decision_id"), data.get("outcome")
                if not isinstance(decision_id, str) or not isinstance(outcome, str):
                    raise LiveReplayFailed(f"{where}: the gateway failed: {exc}") from exc
                # Refused, so the upstream never ran it; the recorded agent saw its result.
                replay.tether.report_result(decision_id, call.result)
                decided.append((outcome, decision_id))
                continue
            meta = result.meta or {}
            decision_id, outcome = meta.get(DECISION_META), meta.get(OUTCOME_META)
            if result.is_error or not isinstance(decision_id, str):
                raise LiveReplayFailed(f"{where}: {result.content}")
            decided.append((str(outcome), decision_id))
    return replay.judge(run, task_id, decided)


def evaluate_via_gateway(
    replay: Replay,
    runs: list[Run],
    tools: Mapping[str, Sequence[str]],
    *,
    progress: Callable[[], None] | None = None,
) -> Evaluation:
    """Replay ``runs`` through a gateway in front of the stub; count the verdicts.

    Raises:
        EvaluationInputInvalid: no run matches a user task of the ground truth.
        LiveReplayFailed: the live path answered a call unlike its recording.
    """
    evaluation = Evaluation()
    known = [run for run in runs if replay.knows(run)]
    script = replay.folder / "stub-script.json"
    script.write_text(json.dumps(_script(tools, known)), encoding="utf-8")
    with serving_gateway(replay, script) as url:

        async def main() -> None:
            for run in runs:
                if replay.knows(run):
                    evaluation.add(await _live_run(replay, url, run))
                else:
                    evaluation.skipped.append(run.line)
                if progress is not None:
                    progress()

        anyio.run(main)
    if not evaluation.verdicts:
        raise EvaluationInputInvalid.no_run_matches()
    return evaluation


__all__ = [
    "LiveReplayFailed",
    "evaluate_via_gateway",
    "load_suite_tools",
]
