"""Labelled test cases (panther-analysis rule tests): one JSON object a line, the event in ``log``.

Each line is ``{"rule_id", "test_name", "malicious", ..., "log": <raw event or null>}``.
The event is unwrapped and read by the adapter its shape calls for; a null ``log`` is a
test case without an event and is reported as an IngestError ("no event").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from tether.telemetry.ingest._base import Clock, Context, NotAnEvent, iter_decoded, json_type
from tether.telemetry.ingest.detect import decode_detected
from tether.telemetry.ingest.files import open_source
from tether.telemetry.model import IngestError, ObservedAccess


def iter_labelled_fixture(
    path: str | os.PathLike[str], *, now: Clock | None = None
) -> Iterator[ObservedAccess | IngestError]:
    """The event of every labelled test case in the file at ``path`` (gzip or not).

    Raises:
        SourceUnreadable: the file does not exist or cannot be read (on first iteration).
    """
    with open_source(path) as handle:
        yield from iter_decoded(handle, decode_case, source_name=str(path), now=now)


def decode_case(case: dict[str, Any], context: Context) -> Iterator[ObservedAccess | str]:
    """The events of one labelled test case's ``log``."""
    if "log" not in case:
        raise NotAnEvent("not a labelled test case: no `log`")
    log = case["log"]
    if log is None:
        raise NotAnEvent("no event (`log` is null)")
    if not isinstance(log, dict):
        raise NotAnEvent(f"`log` is {json_type(log)}, not an event")
    yield from decode_detected(log, context)
