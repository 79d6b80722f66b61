"""The gateway's in-process decider: MCP calls as recorded tether decisions."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio
import pytest
from sqlalchemy import select

from tether.config import load_settings
from tether.estate import apply_estate
from tether.estate.compiled import ToolMapping
from tether.gateway import (
    ArgumentProblem,
    Bearer,
    GatewayDecision,
    LocalDecider,
    ToolCall,
    decision_body,
)
from tether.gateway._decider import RememberedBearers
from tether.gateway._proxy import TaskTokenVerifier
from tether.services import Tether
from tether.store.tables import decisions
from tether.tokens import TaskAuthority
from token_support import ISSUER, WorkloadKey, issue, open_task, write_estate

TOOLS = """\
tools:
  read_invoice:
    resource: {argument: invoice_id, type: invoice}
    data_class: confidential
  send_email:
    resource: {argument: to, type: email}
    destinations: {to: email, cc: email}
"""


KEY = WorkloadKey.generate("wk-1")


@pytest.fixture(scope="module")
def tether(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tether]:
    folder = tmp_path_factory.mktemp("gateway")
    key = KEY
    estate = write_estate(folder / "estate", key, extra=TOOLS)
    settings = load_settings(
        {},
        database_url=f"sqlite:///{folder}/tether.db",
        master_key_file=str(folder / "master.key"),
        issuer=ISSUER,
    )
    made = Tether(settings)
    apply_estate(made.engine, estate)
    made.reload()
    yield made
    made.close()


def token_of(tether: Tether, **body: object) -> tuple[str, str]:
    task = open_task(tether.tasks, KEY, **body)
    return str(issue(tether.tasks, KEY, task.id).token), task.id


def decide(tether: Tether, token: str, call: ToolCall) -> GatewayDecision:
    return anyio.run(LocalDecider(tether).decide, token, call, "req-1")


def test_the_body_takes_resource_and_destinations_from_the_mapping() -> None:
    mapping = ToolMapping("send_email", "to", "email", {"to": "email", "cc": "email"}, "internal")
    call = ToolCall("tools/call", "send_email", {"to": "a@x.org", "cc": ["b@x.org", 3, None]})

    body = decision_body("tok", call, mapping)

    assert body == {
        "subject": {"properties": {"token": "tok"}},
        "action": {"name": "send_email"},
        "resource": {"type": "email", "id": "a@x.org"},
        "context": {
            "mcp": {
                "method": "tools/call",
                "tool": "send_email",
                "arguments": {"to": "a@x.org", "cc": ["b@x.org", 3, None]},
                "destinations": ["email:a@x.org", "email:b@x.org", "email:3"],
                "data_class": "internal",
            }
        },
    }


def test_unmapped_calls_are_decided_on_their_name() -> None:
    tool = decision_body("t", ToolCall("tools/call", "ping", {"a": 1}), None)
    read = decision_body("t", ToolCall("resources/read", "file:///x"), None)
    prompt = decision_body("t", ToolCall("prompts/get", "greet", approval_id="ap-1"), None)

    assert (tool["action"], tool["resource"]) == (
        {"name": "ping"},
        {"type": "mcp_tool", "id": "ping"},
    )
    assert (read["action"], read["resource"]) == (
        {"name": "resources/read"},
        {"type": "mcp_resource", "id": "file:///x"},
    )
    assert prompt["resource"] == {"type": "mcp_prompt", "id": "greet"}
    assert prompt["context"]["approval_id"] == "ap-1"


@pytest.mark.parametrize("value", [None, "", ["a"], {"id": 1}, True])
def test_a_missing_or_odd_resource_argument_is_refused(value: object) -> None:
    mapping = ToolMapping("read_invoice", "invoice_id", "invoice")
    with pytest.raises(ArgumentProblem, match="decided on its argument `invoice_id`"):
        decision_body("t", ToolCall("tools/call", "read_invoice", {"invoice_id": value}), mapping)


def test_an_entitled_call_is_allowed_and_recorded_with_its_task(tether: Tether) -> None:
    token, task_id = token_of(tether)

    decision = decide(
        tether, token, ToolCall("tools/call", "read_invoice", {"invoice_id": "INV-7"})
    )

    assert decision.permits
    assert decision.reasons == ("entitlement:billing-bot:1",)
    tether.decision_log.flush()  # type: ignore[union-attr]
    with tether.engine.connect() as connection:
        row = connection.execute(
            select(decisions).where(decisions.c.decision_id == decision.decision_id)
        ).one()
    assert (row.action, row.resource_type, row.resource_id) == ("read_invoice", "invoice", "INV-7")
    assert row.caller == "gateway:mcp"
    assert row.context["tether"]["task_id"] == task_id
    assert row.context["mcp"]["arguments"] == {"invoice_id": "INV-7"}


def test_a_destination_outside_the_intent_is_refused(tether: Tether) -> None:
    token, _ = token_of(tether)

    decision = decide(tether, token, ToolCall("tools/call", "send_email", {"to": "x@evil.test"}))

    assert not decision.permits
    assert decision.error_code == "outside_task_intent"


def test_a_tool_outside_the_token_scope_and_an_ended_task_are_refused(tether: Tether) -> None:
    token, task_id = token_of(tether)
    pay = ToolCall("tools/call", "pay_invoice", {})
    assert decide(tether, token, pay).error_code == "token_scope_exceeded"

    tether.tasks.end_task(task_id, actor="test")
    read = ToolCall("tools/call", "read_invoice", {"invoice_id": "INV-1"})
    assert decide(tether, token, read).error_code == "task_ended"


def test_authenticate_accepts_tether_tokens_only(tether: Tether) -> None:
    token, task_id = token_of(tether)
    decider = LocalDecider(tether)

    bearer = anyio.run(decider.authenticate, token)
    assert bearer is not None
    assert (bearer.identity, bearer.task_id) == ("billing-bot", task_id)
    assert anyio.run(decider.authenticate, "not-a-token") is None
    assert anyio.run(decider.authenticate, token[:-4] + "AAAA") is None
    tether.tasks.end_task(task_id, actor="test")
    assert anyio.run(decider.authenticate, token) is not None  # refused call by call


def test_callable_tools_are_scope_and_entitlement(tether: Tether) -> None:
    token, task_id = token_of(tether, actions=("read_invoice",), resources=("invoice:*",))
    decider = LocalDecider(tether)
    names = ["read_invoice", "send_email", "pay_invoice", "unknown"]

    assert anyio.run(decider.callable_tools, token, names) == {"read_invoice"}
    tether.tasks.end_task(task_id, actor="test")
    assert anyio.run(decider.callable_tools, token, names) == frozenset()


def test_remembered_bearers_last_their_window_never_past_exp_and_the_oldest_go_first() -> None:
    now = [100.0]
    memo = RememberedBearers(5.0, most=2, clock=lambda: now[0])
    later = int(time.time()) + 3600
    memo.put("a", Bearer("agent-a", "task-a", (), later, ISSUER))
    memo.put("soon", Bearer("agent-s", "task-s", (), int(time.time()) + 1, ISSUER))
    assert memo.get("a") is not None
    assert memo.get("soon") is not None
    now[0] += 2  # past the short token's exp, within the window
    assert memo.get("a") is not None
    assert memo.get("soon") is None
    memo.put("b", Bearer("agent-b", "task-b", (), later, ISSUER))  # the oldest, `a`, goes
    assert memo.get("a") is None
    now[0] += 4  # past the window
    assert memo.get("b") is not None
    now[0] += 2
    assert memo.get("b") is None


def test_while_serving_a_known_token_is_decided_without_a_thread_and_ends_at_once(
    tether: Tether,
) -> None:
    token, task_id = token_of(tether)
    read = ToolCall("tools/call", "read_invoice", {"invoice_id": "INV-1"})
    decider = LocalDecider(tether)
    # Another authority on the same store stands for `tether task end` in another process.
    elsewhere = TaskAuthority(
        tether.engine, tether.settings, tether.keys, lambda: tether.snapshot.estate
    )

    async def serve() -> list[GatewayDecision]:
        async with decider.serving():
            made = [await decider.decide(token, read, "req-1")]  # first sight: in a thread
            limiter = anyio.to_thread.current_default_thread_limiter()
            limiter.total_tokens = 1
            with anyio.fail_after(5):
                async with limiter:  # no thread to be had: answered on the loop, or never
                    made.append(await decider.decide(token, read, "req-2"))
                elsewhere.end_task(task_id, actor="test")
                made.append(await decider.decide(token, read, "req-3"))  # reloaded in a thread
                async with limiter:
                    made.append(await decider.decide(token, read, "req-4"))
            return made

    try:
        first, inline, ended, again = anyio.run(serve)
    finally:
        elsewhere.close()
    assert first.permits
    assert inline.permits
    assert inline.decision_id != first.decision_id
    assert ended.error_code == again.error_code == "task_ended"
    assert not tether.tasks.revocations._probe.reads_without_waiting  # off after serving


def test_the_sdk_access_token_is_made_once_per_bearer_check(tether: Tether) -> None:
    token, _ = token_of(tether)
    decider = LocalDecider(tether)
    verifier = TaskTokenVerifier(decider, most=1)

    first = anyio.run(verifier.verify_token, token)
    assert first is not None
    assert first.client_id == "billing-bot"
    assert anyio.run(verifier.verify_token, token) is first
    decider._bearers.forget(token)  # its window over: checked again, made again
    again = anyio.run(verifier.verify_token, token)
    assert again is not None
    assert again is not first
    assert again == first
    other, _ = token_of(tether)
    assert anyio.run(verifier.verify_token, other) is not None  # the oldest goes (most=1)
    assert anyio.run(verifier.verify_token, token) is not again
    assert anyio.run(verifier.verify_token, "not-a-token") is None


def test_the_gateway_keeps_what_it_loaded_out_of_the_collectors_full_passes(
    tether: Tether,
) -> None:
    import gc

    from tether.gateway._proxy import Gateway
    from tether.gateway._upstream import UpstreamSpec

    gateway = Gateway(LocalDecider(tether), UpstreamSpec.parse("http://127.0.0.1:9/mcp", None))

    async def serve() -> int:
        async with gateway.lifespan(gateway.server()):  # the upstream unreachable: it waits
            return gc.get_freeze_count()

    gc.unfreeze()
    try:
        assert anyio.run(serve) > 0  # ~180k objects: a full pass would stall calls ~100 ms
    finally:
        gc.unfreeze()
