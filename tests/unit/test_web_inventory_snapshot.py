"""The inventory snapshot: built once, rebuilt behind the page past its TTL, dropped at once
by the dashboard's own changes (and a rebuild begun before a drop is not kept)."""

from __future__ import annotations

import threading
import time
from typing import Any

from tether.web.inventory import InventorySnapshot


class Builds:
    """Numbered row sets; each build may be held until released."""

    def __init__(self) -> None:
        self.count = 0
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()

    def __call__(self) -> list[dict[str, Any]]:
        self.count += 1
        number = self.count
        self.started.set()
        assert self.release.wait(10)
        return [{"build": number}]


def wait_for(condition: Any) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_past_the_ttl_the_old_rows_are_served_while_a_thread_rebuilds_them() -> None:
    builds = Builds()
    snapshot = InventorySnapshot(builds, ttl_s=60)
    assert snapshot.rows()[0] == [{"build": 1}]
    assert snapshot.rows()[0] == [{"build": 1}]  # within the TTL: not built again
    builds.release.clear()
    builds.started.clear()
    snapshot.expire()
    rows, age = snapshot.rows()
    assert rows == [{"build": 1}]  # at once, without waiting for the rebuild
    assert age > 60
    assert builds.started.wait(10)
    assert snapshot.rows()[0] == [{"build": 1}]  # one rebuild at a time: none started here
    builds.release.set()
    wait_for(lambda: snapshot.rows()[0] == [{"build": 2}])
    assert builds.count == 2


def test_a_drop_rebuilds_in_the_request_and_outdates_a_rebuild_under_way() -> None:
    builds = Builds()
    snapshot = InventorySnapshot(builds, ttl_s=60)
    snapshot.rows()
    builds.release.clear()
    builds.started.clear()
    snapshot.expire()
    snapshot.rows()  # rebuild 2 begins behind, held
    assert builds.started.wait(10)
    snapshot.drop()  # a change from the dashboard: rebuild 2 may predate it
    builds.release.set()
    assert snapshot.rows()[0] == [{"build": 3}]  # built in the request, after the change
    time.sleep(0.1)  # rebuild 2 ends now: its rows are not kept over the newer ones
    assert snapshot.rows()[0] == [{"build": 3}]
