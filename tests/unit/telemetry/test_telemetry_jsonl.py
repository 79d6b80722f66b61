"""Generic JSON lines through a field mapping."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from telemetry_support import INGEST_TIME, fixed_clock, split

from tether.telemetry import AccessOutcome, FieldMappingInvalid, Source
from tether.telemetry.ingest import FieldMapping, iter_file, jsonl

MAPPING = {
    "at": "ts",
    "principal": "actor.id",
    "principal_kind": "actor.kind",
    "action": "op",
    "resource": "target",
    "outcome": "result",
    "source_ip": "net.ips.0",
    "records": "rows",
    "task_id": "ctx.task",
}


def test_fields_come_from_their_paths() -> None:
    line = {
        "ts": "2024-06-01T09:30:00+02:00",
        "actor": {"id": "nightly-etl", "kind": "workload"},
        "op": "warehouse.query",
        "target": "warehouse:sales.orders",
        "result": "success",
        "net": {"ips": ["10.0.0.8", "10.0.0.9"]},
        "rows": 1200,
        "ctx": {"task": "t-7"},
    }
    events, errors = split(
        jsonl.iter_events([orjson.dumps(line)], source_name="t", mapping=MAPPING)
    )
    assert errors == []
    event = events[0]
    assert event.source is Source.JSONL
    assert event.at.isoformat() == "2024-06-01T07:30:00+00:00"
    assert (event.principal.kind, event.principal.key) == ("workload", "nightly-etl")
    assert (event.action, event.resource) == ("warehouse.query", "warehouse:sales.orders")
    assert event.outcome is AccessOutcome.ALLOWED
    assert event.environment.source_ip == "10.0.0.8"
    assert (event.records, event.task_id) == (1200, "t-7")


@pytest.mark.parametrize(
    ("value", "outcome"),
    [
        (None, AccessOutcome.ALLOWED),
        ("OK", AccessOutcome.ALLOWED),
        ("deny", AccessOutcome.DENIED),
        ("Forbidden", AccessOutcome.DENIED),
        ("failed", AccessOutcome.ERROR),
        (True, AccessOutcome.ALLOWED),
        (False, AccessOutcome.DENIED),
        (200, AccessOutcome.ALLOWED),
        ("403", AccessOutcome.DENIED),
        (503, AccessOutcome.ERROR),
    ],
)
def test_outcomes(value: object, outcome: AccessOutcome) -> None:
    assert jsonl.outcome_of(value) is outcome


def test_epoch_times_missing_times_and_default_kind() -> None:
    lines = [
        b'{"actor": {"id": "a"}, "op": "x", "ts": 1717234200}',
        b'{"actor": {"id": "a"}, "op": "x", "ts": 1717234200123}',
        b'{"actor": {"id": "a"}, "op": "x"}',
    ]
    mapping = {"at": "ts", "principal": "actor.id", "action": "op"}
    events, _ = split(jsonl.iter_events(lines, source_name="t", mapping=mapping, now=fixed_clock))
    assert events[0].at.isoformat() == "2024-06-01T09:30:00+00:00"
    assert events[1].at.isoformat() == "2024-06-01T09:30:00.123000+00:00"
    assert (events[2].at, events[2].at_is_ingest_time) == (INGEST_TIME, True)
    assert {e.principal.kind for e in events} == {"jsonl"}


def test_lines_missing_required_fields_are_errors() -> None:
    lines = [b'{"actor": {"id": "a"}}', b'{"op": "x"}', b'{"actor": {"id": "a"}, "op": "x"}']
    mapping = {"principal": "actor.id", "action": "op"}
    events, errors = split(jsonl.iter_events(lines, source_name="f.jsonl", mapping=mapping))
    assert len(events) == 1
    assert [(e.line, e.message) for e in errors] == [
        (1, "no `op` (action) in the object"),
        (2, "no `actor.id` (principal) in the object"),
    ]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"principal": "a"}, "`action`"),
        ({"principal": "a", "action": "b", "colour": "c"}, r"unknown field\(s\) `colour`"),
        ({"principal": "a", "action": "b..c"}, "not a dotted path"),
        ({"principal": "a", "action": ""}, "not a dotted path"),
    ],
)
def test_bad_mappings_are_refused_before_reading(mapping: dict[str, str], message: str) -> None:
    with pytest.raises(FieldMappingInvalid, match=message):
        FieldMapping.parse(mapping)


def test_iter_file_needs_a_mapping_for_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text('{"who": "svc", "what": "read"}\n')
    with pytest.raises(FieldMappingInvalid):
        iter_file(path, Source.JSONL)
    events, _ = split(iter_file(path, Source.JSONL, mapping={"principal": "who", "action": "what"}))
    assert [(e.principal.key, e.action) for e in events] == [("svc", "read")]
