"""With an event bus, a server is not ready until it read the workers' drift records once:
before that its decisions would miss restrictions drift made before it started."""

from __future__ import annotations

import asyncio
import socket

import httpx

from tether.api.app import TetherApp
from tether.bus import BehaviourFollower, BusConfig


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ready(app: TetherApp) -> httpx.Response:
    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/readyz")

    return asyncio.run(ask())


def test_a_server_whose_drift_records_are_not_in_is_not_ready(app: TetherApp) -> None:
    assert _ready(app).status_code == 200  # no bus: ready as before
    follower = BehaviourFollower(BusConfig(url=f"nats://127.0.0.1:{_closed_port()}"), {})
    # As `tether serve --events` wires it, with a NATS server that cannot be reached.
    app.tether._bus_behaviour = follower
    try:
        assert follower.start(timeout_s=0.2) is False
        answer = _ready(app)
        assert answer.status_code == 503
        assert answer.json() == {"status": "not_ready"}
        assert "drift records" in (app.tether.bus_unready() or "")
    finally:
        follower.close()
