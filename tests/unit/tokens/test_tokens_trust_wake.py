"""A change notice that arrives while the trust view is being read is not lost."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from tether.store import migrate
from tether.store.engine import open_engine
from tether.tokens.trust import WorkloadTrust


class _NoticeDuringRead:
    """An engine whose next connection gets a change notice as it is opened."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.trust: WorkloadTrust | None = None
        self.connections = 0

    def connect(self) -> AbstractContextManager[Connection]:
        self.connections += 1
        if self.connections == 1 and self.trust is not None:
            self.trust.expire()  # another replica changed an anchor just now
        return self.engine.connect()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def test_a_notice_during_a_refresh_makes_the_next_use_check_again(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'trust.db'}")
    migrate.upgrade(engine)
    now = [0.0]
    noticing = _NoticeDuringRead(engine)
    trust = WorkloadTrust(noticing, audience="tether", clock=lambda: now[0])  # type: ignore[arg-type]
    noticing.trust = trust
    trust.view()  # reads; a notice arrives during the read
    trust.view()  # within the interval, but the notice asks for a check
    assert noticing.connections == 2
    trust.view()  # nothing new since: the view stands for the interval
    assert noticing.connections == 2
    engine.dispose()
