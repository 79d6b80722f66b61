"""``@guarded`` against a scripted tether: the tool runs only on allow or constrain, its
obligations are fulfilled, approvals wait or raise, and no decision means no call."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import httpx
import pytest
from sdk_support import BILLING, FakeTether, decision, events_ok, fake_jwt, problem

from tether.sdk import (
    ApprovalPending,
    AsyncClient,
    Client,
    DecisionUnavailable,
    FailClosed,
    ObligationUnsupported,
    Resource,
    Subject,
    ToolDenied,
    acting_as,
    guarded,
)
from tether.sdk.events import arguments_digest
from tether.sdk.models import TokenGrant

EVALUATION = "/access/v1/evaluation"
ROWS = [{"id": i, "iban": f"DE{i}", "payee": {"iban": "X", "name": "n"}} for i in range(5)]


class Tool:
    """A tool that counts its calls."""

    def __init__(self, result: Any = ROWS) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.result = result

    def __call__(self, invoice_id: str, limit: int = 10) -> Any:
        self.calls.append((invoice_id, limit))
        return self.result


def guard(client: Client, tool: Tool, **options: Any) -> Any:
    options.setdefault("actor", BILLING)
    return guarded(
        client=client, action="read_invoice", resource="invoice:{invoice_id}", **options
    )(tool)


def tether_answering(*answers: httpx.Response | Exception) -> FakeTether:
    return FakeTether().on("POST", EVALUATION, *answers).on("POST", "/v1/events", events_ok)


def test_an_allowed_call_runs_and_is_reported() -> None:
    fake, tool = tether_answering(decision("allow")), Tool()
    with fake.client() as client:
        assert guard(client, tool)("INV-1", limit=3) == ROWS
    assert tool.calls == [("INV-1", 3)]
    (asked,) = fake.bodies(EVALUATION)
    assert asked["action"] == {"name": "read_invoice"}
    assert asked["resource"] == {"type": "invoice", "id": "INV-1"}
    digest = arguments_digest({"invoice_id": "INV-1", "limit": 3})
    assert asked["context"] == {"tool": {"name": "read_invoice", "arguments_sha256": digest}}
    (reported,) = fake.bodies("/v1/events")
    attributes = {
        a["key"]: next(iter(a["value"].values()))
        for a in reported["events"][0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0][
            "attributes"
        ]
    }
    assert attributes["gen_ai.tool.name"] == "read_invoice"
    assert attributes["tether.arguments.sha256"] == digest
    assert attributes["tether.result.records"] == "5"
    assert attributes["tether.decision.id"] == "d-1"
    assert attributes["tether.resource"] == "invoice:INV-1"
    assert attributes["gen_ai.tool.call.id"].startswith("call_")


def test_the_digest_follows_the_arguments() -> None:
    fake, tool = tether_answering(decision("allow")), Tool()
    with fake.client() as client:
        guarded_tool = guard(client, tool, report=False)
        guarded_tool("INV-1")
        guarded_tool(invoice_id="INV-1", limit=10)
        guarded_tool("INV-1", 11)
    digests = [b["context"]["tool"]["arguments_sha256"] for b in fake.bodies(EVALUATION)]
    assert digests[0] == digests[1] != digests[2]
    assert fake.sent("/v1/events") == []


def test_a_task_token_actor_reports_its_task_and_token() -> None:
    grant = TokenGrant(fake_jwt(), _now(), (), "task-7", "billing-bot", "tok-7")
    fake, tool = tether_answering(decision("allow")), Tool()
    with fake.client() as client, acting_as(grant):
        guarded(client=client, action="read_invoice", resource="invoice:{invoice_id}")(tool)(
            "INV-2"
        )
    assert fake.bodies(EVALUATION)[0]["subject"] == {"properties": {"token": grant.access_token}}
    span = fake.bodies("/v1/events")[0]["events"][0]["resourceSpans"][0]["scopeSpans"][0]
    keys = {a["key"]: a["value"] for a in span["spans"][0]["attributes"]}
    assert keys["tether.task.id"] == {"stringValue": "task-7"}
    assert keys["tether.token.id"] == {"stringValue": "tok-7"}
    assert keys["gen_ai.agent.id"] == {"stringValue": "billing-bot"}


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_a_denied_call_never_runs() -> None:
    fake = tether_answering(decision("deny", reasons=["task_ended"], error_code="task_ended"))
    tool = Tool()
    with fake.client() as client, pytest.raises(ToolDenied) as denied:
        guard(client, tool)("INV-1")
    assert tool.calls == []
    assert denied.value.error_code == "task_ended"
    assert denied.value.reasons == ("task_ended",)
    assert denied.value.decision is not None
    assert denied.value.tool == "read_invoice"
    assert fake.sent("/v1/events") == []


def test_max_rows_and_redact_are_fulfilled_on_the_result() -> None:
    fake = tether_answering(decision("constrain", obligations={"max_rows": "2", "redact": "iban"}))
    with fake.client() as client:
        rows = guard(client, Tool())("INV-1")
    assert rows == [
        {"id": 0, "iban": "[REDACTED]", "payee": {"iban": "[REDACTED]", "name": "n"}},
        {"id": 1, "iban": "[REDACTED]", "payee": {"iban": "[REDACTED]", "name": "n"}},
    ]
    assert ROWS[0]["iban"] == "DE0"  # the tool's own value is left alone
    span = fake.bodies("/v1/events")[0]["events"][0]["resourceSpans"][0]["scopeSpans"][0]
    keys = {a["key"]: a["value"] for a in span["spans"][0]["attributes"]}
    assert keys["tether.result.records"] == {"intValue": "2"}


def test_an_unknown_obligation_refuses_the_call_before_it_runs() -> None:
    fake = tether_answering(
        decision("constrain", obligations={"watermark": "yes", "max_rows": "1"})
    )
    tool = Tool()
    with fake.client() as client, pytest.raises(ObligationUnsupported) as refused:
        guard(client, tool)("INV-1")
    assert tool.calls == []
    assert refused.value.obligations == ("watermark",)
    assert refused.value.error_code == "obligation_unsupported"


def test_a_tool_may_bring_its_own_obligation_handler() -> None:
    fake = tether_answering(decision("constrain", obligations={"watermark": "acme"}))
    with fake.client() as client:
        tool = guard(client, Tool(["a"]), obligations={"watermark": lambda r, v: [*r, v]})
        assert tool("INV-1") == ["a", "acme"]


def test_read_only_is_fulfilled_only_by_a_read_only_tool() -> None:
    fake = tether_answering(decision("constrain", obligations={"read_only": "true"}))
    with fake.client() as client:
        assert guard(client, Tool(), read_only=True)("INV-1") == ROWS
        with pytest.raises(ObligationUnsupported):
            guard(client, Tool())("INV-1")


def test_an_obligation_that_does_not_fit_the_result_withholds_it() -> None:
    fake = tether_answering(decision("constrain", obligations={"max_rows": "1"}))
    tool = Tool({"not": "a list"})
    with fake.client() as client, pytest.raises(ObligationUnsupported, match="withheld"):
        guard(client, tool)("INV-1")
    assert len(tool.calls) == 1
    assert len(fake.sent("/v1/events")) == 1  # it ran, so it is reported


TICKET = {"id": "ap-1", "status": "pending", "poll": "/v1/approvals/ap-1"}


def test_approval_required_raises_the_ticket_and_the_retry_carries_it() -> None:
    fake = tether_answering(
        decision("approval_required", approval=TICKET, reasons=["payments-need-approval"]),
        decision("allow", reasons=["approval:ap-1"]),
    )
    tool = Tool()
    with fake.client() as client:
        pay = guard(client, tool)
        with pytest.raises(ApprovalPending) as pending:
            pay("INV-1")
        assert tool.calls == []
        assert pending.value.ticket.id == "ap-1"
        assert pay("INV-1") == ROWS
    first, retry = fake.bodies(EVALUATION)
    assert "approval_id" not in first["context"]
    assert retry["context"] == {**first["context"], "approval_id": "ap-1"}


def test_approval_wait_long_polls_then_asks_again() -> None:
    fake = tether_answering(decision("approval_required", approval=TICKET), decision("allow")).on(
        "GET", "/v1/approvals/ap-1", httpx.Response(200, json={**TICKET, "status": "approved"})
    )
    tool = Tool()
    with fake.client() as client:
        assert guard(client, tool, approval_wait_s=5)("INV-1") == ROWS
    assert tool.calls == [("INV-1", 10)]
    assert fake.bodies(EVALUATION)[1]["context"]["approval_id"] == "ap-1"


def test_an_approval_denied_while_waiting_is_a_denial() -> None:
    fake = tether_answering(decision("approval_required", approval=TICKET)).on(
        "GET", "/v1/approvals/ap-1", httpx.Response(200, json={**TICKET, "status": "denied"})
    )
    tool = Tool()
    with fake.client() as client, pytest.raises(ToolDenied) as denied:
        guard(client, tool, approval_wait_s=5)("INV-1")
    assert denied.value.error_code == "approval_denied"
    assert tool.calls == []


def test_no_decision_fails_closed_at_once() -> None:
    for failure in (httpx.ConnectError("refused"), httpx.ReadTimeout("slow")):
        fake, tool = tether_answering(failure), Tool()
        with fake.client() as client, pytest.raises(DecisionUnavailable) as refused:
            guard(client, tool)("INV-1")
        assert tool.calls == []
        assert len(fake.sent(EVALUATION)) == 1
        assert refused.value.error_code in ("tether_unreachable", "tether_timeout")
        assert "fail closed" in str(refused.value)


def test_a_pep_tether_refuses_fails_closed_too() -> None:
    fake, tool = tether_answering(problem(401, "api_key_invalid")), Tool()
    with fake.client() as client, pytest.raises(DecisionUnavailable) as refused:
        guard(client, tool)("INV-1")
    assert refused.value.error_code == "api_key_invalid"
    assert tool.calls == []


def test_fail_closed_after_n_ms_retries_within_the_budget() -> None:
    fake = tether_answering(
        httpx.ConnectError("restarting"), problem(503, "store_unavailable"), decision("allow")
    )
    tool = Tool()
    with fake.client() as client:
        assert guard(client, tool, fail_closed=FailClosed(after_ms=2000))("INV-1") == ROWS
    assert len(fake.sent(EVALUATION)) == 3


def test_fail_closed_after_n_ms_refuses_once_the_budget_is_spent() -> None:
    fake, tool = tether_answering(httpx.ConnectError("down")), Tool()
    with fake.client() as client:
        started = time.monotonic()
        with pytest.raises(DecisionUnavailable):
            guard(client, tool, fail_closed=FailClosed(after_ms=300))("INV-1")
        elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.0
    assert len(fake.sent(EVALUATION)) > 2
    assert tool.calls == []


def test_a_slow_tether_gets_only_the_remaining_budget() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        timeout = request.extensions["timeout"]["read"]
        assert timeout is not None
        assert timeout <= 0.2
        raise httpx.ReadTimeout("slow", request=request)

    fake, tool = tether_answering(slow), Tool()  # type: ignore[arg-type]
    with fake.client() as client, pytest.raises(DecisionUnavailable):
        guard(client, tool, fail_closed=FailClosed(after_ms=200))("INV-1")
    assert tool.calls == []


def test_fail_closed_takes_only_a_positive_budget() -> None:
    with pytest.raises(ValueError, match="after_ms"):
        FailClosed(after_ms=0)


def test_a_call_outside_acting_as_without_an_actor_is_refused() -> None:
    fake, tool = tether_answering(decision("allow")), Tool()
    with fake.client() as client, pytest.raises(DecisionUnavailable) as refused:
        guarded(client=client, action="read", resource="invoice:{invoice_id}")(tool)("INV-1")
    assert refused.value.error_code == "actor_missing"
    assert fake.requests == []


def test_a_resource_may_be_fixed_or_computed() -> None:
    fake = tether_answering(decision("allow"))
    with fake.client() as client:
        fixed = guarded(
            client=client, action="read", resource=Resource("ledger", "main"), actor=BILLING
        )(Tool())
        computed = guarded(
            client=client,
            action="read",
            actor=Subject("agent", "etl"),
            resource=lambda invoice_id, limit=0: f"row:{limit}",
        )(Tool())
        fixed("INV-1")
        computed("INV-1", limit=4)
    assert [b["resource"] for b in fake.bodies(EVALUATION)] == [
        {"type": "ledger", "id": "main"},
        {"type": "row", "id": "4"},
    ]


def test_a_failed_report_is_logged_and_the_result_kept(caplog: pytest.LogCaptureFixture) -> None:
    fake = (
        FakeTether()
        .on("POST", EVALUATION, decision("allow"))
        .on("POST", "/v1/events", problem(403, "role_forbidden"))
    )
    with fake.client() as client, caplog.at_level(logging.WARNING, "tether.sdk.guard"):
        assert guard(client, Tool())("INV-1") == ROWS
    assert "was not reported" in caplog.text


def test_a_failing_tool_is_reported_as_an_error_and_its_exception_kept() -> None:
    def broken(invoice_id: str) -> None:
        raise KeyError(invoice_id)

    fake = tether_answering(decision("allow"))
    with fake.client() as client, pytest.raises(KeyError):
        guarded(client=client, resource="invoice:{invoice_id}", actor=BILLING)(broken)("X")
    span = fake.bodies("/v1/events")[0]["events"][0]["resourceSpans"][0]["scopeSpans"][0]
    assert span["spans"][0]["status"] == {"code": 2}
    assert {"key": "error.type", "value": {"stringValue": "KeyError"}} in span["spans"][0][
        "attributes"
    ]


# --- async tools ------------------------------------------------------------------------------


def test_an_async_tool_is_decided_the_same() -> None:
    ran: list[str] = []

    async def main(fake: FakeTether) -> Any:
        async with fake.async_client() as client:

            @guarded(client=client, resource="invoice:{invoice_id}", actor=BILLING)
            async def read_invoice(invoice_id: str) -> list[int]:
                await asyncio.sleep(0)
                ran.append(invoice_id)
                return [1, 2, 3]

            return await read_invoice("INV-1")

    allowed = tether_answering(decision("constrain", obligations={"max_rows": "1"}))
    assert asyncio.run(main(allowed)) == [1]
    assert len(allowed.sent("/v1/events")) == 1
    with pytest.raises(ToolDenied):
        asyncio.run(main(tether_answering(decision("deny", reasons=["no"]))))
    with pytest.raises(DecisionUnavailable):
        asyncio.run(main(tether_answering(httpx.ConnectError("down"))))
    assert ran == ["INV-1"]


def test_a_tool_and_its_client_must_match() -> None:
    async def tool_async(invoice_id: str) -> None: ...

    def tool(invoice_id: str) -> None: ...

    with Client("http://t") as client, pytest.raises(TypeError, match="AsyncClient"):
        guarded(client=client, resource="x:1")(tool_async)
    async_client = AsyncClient("http://t")
    with pytest.raises(TypeError, match="`Client`"):
        guarded(client=async_client, resource="x:1")(tool)
    asyncio.run(async_client.aclose())


def test_a_resource_template_must_name_arguments_of_the_tool() -> None:
    with Client("http://t") as client:
        with pytest.raises(ValueError, match="`invoice`, which is no argument"):
            guarded(client=client, resource="invoice:{invoice}")(Tool())
        with pytest.raises(ValueError, match="is invalid"):
            guarded(client=client, resource="invoice:{invoice_id")(Tool())


def results_ok(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(202, json={"decision_id": body["decision_id"], "task_id": "task-7"})


def test_a_task_call_reports_what_the_agent_got_for_provenance() -> None:
    grant = TokenGrant(fake_jwt(), _now(), (), "task-7", "billing-bot", "tok-7")
    constrained = decision("constrain", obligations={"max_rows": "2", "redact": "iban"})
    fake = tether_answering(constrained).on("POST", "/v1/results", results_ok)
    with fake.client() as client, acting_as(grant):
        shown = guard(client, Tool(), actor=None)("INV-3")
    (reported,) = fake.bodies("/v1/results")
    assert reported == {"token": grant.access_token, "decision_id": "d-1", "result": shown}
    assert [row["iban"] for row in reported["result"]] == ["[REDACTED]", "[REDACTED]"]
    # Before the event: the next decision of the task is judged with it.
    assert [r.url.path for r in fake.requests][-2:] == ["/v1/results", "/v1/events"]


def test_a_call_without_a_task_token_or_reports_sends_no_result() -> None:
    fake = tether_answering(decision("allow")).on("POST", "/v1/results", results_ok)
    grant = TokenGrant(fake_jwt(), _now(), (), "task-7", "billing-bot", "tok-7")
    with fake.client() as client:
        guard(client, Tool())("INV-1")  # a subject: no task to judge in
        guard(client, Tool(), actor=grant, report=False)("INV-1")
    assert fake.sent("/v1/results") == []


def test_a_result_tether_refuses_is_logged_and_kept(caplog: pytest.LogCaptureFixture) -> None:
    grant = TokenGrant(fake_jwt(), _now(), (), "task-7", "billing-bot", "tok-7")
    fake = tether_answering(decision("allow")).on(
        "POST", "/v1/results", problem(403, "role_forbidden")
    )
    with fake.client() as client, caplog.at_level(logging.WARNING):
        assert guard(client, Tool(), actor=grant)("INV-1") == ROWS
    assert "the result of `read_invoice` was not reported" in caplog.text
    assert len(fake.sent("/v1/events")) == 1
