"""A scripted tether behind ``httpx.MockTransport``: answers by route, records every request."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tether.sdk import ApiKey, AsyncClient, Client, Subject

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]
BASE = "http://tether.test"
KEY = "tpk_abc_secret"
BILLING = Subject("agent", "billing-bot")


def decision(outcome: str = "allow", **context: Any) -> httpx.Response:
    allowed = outcome in ("allow", "constrain")
    body = {"decision": allowed, "context": {"decision_id": "d-1", "outcome": outcome, **context}}
    return httpx.Response(200, json=body)


def problem(status: int, code: str, detail: str = "refused", **headers: str) -> httpx.Response:
    body = {"type": f"https://tether.dev/errors/{code}", "status": status, "detail": detail}
    body["error_code"] = code
    return httpx.Response(
        status, json=body, headers={"content-type": "application/problem+json", **headers}
    )


def fake_jwt(**claims: Any) -> str:
    def part(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'ES256', 'typ': 'at+jwt'})}.{part(claims)}.c2ln"


def path_of(request: httpx.Request) -> str:
    """The path as sent (percent-escapes kept)."""
    return request.url.raw_path.split(b"?", 1)[0].decode()


@dataclass
class FakeTether:
    """Routes ``(method, path)`` to a queue of answers (the last one repeats)."""

    routes: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, *answers: Answer) -> FakeTether:
        self.routes[(method, path)] = list(answers)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes.get((request.method, path_of(request)))
        if not queue:
            return problem(404, "route_unknown", f"no route {request.url.path}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    def sent(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if path_of(r) == path]

    def bodies(self, path: str) -> list[Any]:
        return [json.loads(r.content) for r in self.sent(path)]

    def client(self, **options: Any) -> Client:
        return Client(
            BASE,
            credential=options.pop("credential", ApiKey(KEY)),
            transport=httpx.MockTransport(self.handle),
            **options,
        )

    def async_client(self, **options: Any) -> AsyncClient:
        return AsyncClient(
            BASE,
            credential=options.pop("credential", ApiKey(KEY)),
            transport=httpx.MockTransport(self.handle),
            **options,
        )


def events_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ingested": 1, "duplicates": 0, "errors": []})
