"""``tether worker --events nats://...``: a drift worker on the event bus (tether.bus)."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Annotated

import typer

from tether.cli.common import DbOption, settings_for
from tether.cli.output import console, errors_to_exit

EventsOption = Annotated[
    str,
    typer.Option("--events", help="the NATS JetStream server, nats://HOST:PORT"),
]


def worker(
    events: EventsOption,
    db: DbOption = None,
    name: Annotated[str | None, typer.Option(help="this worker's name (default: host-pid)")] = None,
) -> None:
    """Run drift detection on the partitions of the event stream this worker holds.

    Any number of workers share the partitions; a killed worker's partitions are taken over
    within seconds and resume from their last acknowledgement. SIGTERM or Ctrl-C stops it
    after its batches in flight.
    """
    from tether.bus import BusConfig, DriftWorker, Examiner, default_worker_name
    from tether.composition import Refresher, build_core, drift_engine

    logging.basicConfig(level=logging.WARNING, format="worker %(levelname)s %(name)s: %(message)s")
    with errors_to_exit():
        settings = settings_for(db, events_url=events)
        config = BusConfig.from_settings(settings)
        core = build_core(settings)
    worker_name = name or default_worker_name()
    drift = drift_engine(core, {}, tail_events=False)
    drift.start(background=False)
    refresher = Refresher(
        settings.reload_interval_ms / 1000, {"reloading the estate": core.live.refresh}
    )
    refresher.start()
    examiner = Examiner(core.store, drift, worker=worker_name)
    bus_worker = DriftWorker(config, examiner, name=worker_name)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await bus_worker.run(stop)

    console.print(f"drift worker [bold]{worker_name}[/] on {config.url} stream {config.stream}")
    try:
        with errors_to_exit():
            asyncio.run(run())
    finally:
        refresher.close()
        drift.stop()
        core.close()
