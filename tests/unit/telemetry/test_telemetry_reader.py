"""Streaming JSON: CloudTrail ``{"Records": [...]}`` across chunk boundaries, gzip, odd input."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telemetry_support import ChunkedReader, split

from tether.errors import InvalidRequest
from tether.telemetry import SourceUnreadable
from tether.telemetry.ingest import cloudtrail, iter_file, k8s_audit, open_source
from tether.telemetry.ingest._reader import Item, Unreadable, read_json
from tether.telemetry.model import Source


def record(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::123456789012:assumed-role/etl/session-{n % 3}",
            "accountId": "123456789012",
        },
        "eventTime": f"2024-03-01T12:{n % 60:02d}:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "eu-west-1",
        "requestParameters": {"bucketName": "reports", "key": f"day/{n}.csv"},
        "additionalEventData": {"bytesTransferredOut": n},
        "eventID": f"id-{n}",
        "readOnly": True,
        "note": 'braces } ] , { and " quotes, \\ backslashes, \u00e9 and }, { inside strings',
        **extra,
    }


RECORDS = [record(n) for n in range(40)]
DOCUMENT = orjson.dumps({"Records": RECORDS})
PRETTY = orjson.dumps({"Records": RECORDS}, option=orjson.OPT_INDENT_2)


def summary(results: list[Any]) -> list[tuple[str, Any]]:
    return [
        ("event", (e.source_event_id, e.resource, e.bytes, e.dedupe_key))
        if not hasattr(e, "message")
        else ("error", (e.line, e.message))
        for e in results
    ]


def test_a_records_document_streams_one_event_per_record() -> None:
    events, errors = split(cloudtrail.iter_events(io.BytesIO(DOCUMENT), source_name="t.json"))
    assert errors == []
    assert [e.source_event_id for e in events] == [f"id-{n}" for n in range(40)]
    first = events[0]
    assert first.resource == "arn:aws:s3:::reports/day/0.csv"
    assert first.resource_type == "s3:object"
    assert first.action == "s3:GetObject"
    assert first.read_only is True
    assert first.raw == RECORDS[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=400),
    pretty=st.booleans(),
)
def test_records_stream_identically_whatever_the_chunk_sizes(
    sizes: list[int], pretty: bool
) -> None:
    data = PRETTY if pretty else DOCUMENT
    whole = summary(list(cloudtrail.iter_events(io.BytesIO(data), source_name="t")))
    chunked = summary(list(cloudtrail.iter_events(ChunkedReader(data, sizes), source_name="t")))
    assert chunked == whole
    assert len(whole) == 40


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=300))
def test_json_lines_stream_identically_whatever_the_chunk_sizes(sizes: list[int]) -> None:
    lines = b"".join(orjson.dumps(r) + b"\n" for r in RECORDS[:10]) + b"{broken\n" + b"[]\n"
    whole = summary(list(cloudtrail.iter_events(io.BytesIO(lines), source_name="t")))
    chunked = summary(list(cloudtrail.iter_events(ChunkedReader(lines, sizes), source_name="t")))
    assert chunked == whole
    assert [kind for kind, _ in whole] == ["event"] * 10 + ["error"]


def test_multibyte_characters_split_across_chunks_survive() -> None:
    data = orjson.dumps({"Records": [record(1, name="日本語 é 🙂")]})
    events, errors = split(
        cloudtrail.iter_events(ChunkedReader(data, [1] * len(data)), source_name="t")
    )
    assert errors == []
    assert events[0].raw["name"] == "日本語 é 🙂"


def test_jsonl_and_records_give_the_same_events() -> None:
    lines = b"\n".join(orjson.dumps(r) for r in RECORDS)
    from_lines = summary(list(cloudtrail.iter_events(io.BytesIO(lines), source_name="t")))
    from_doc = summary(list(cloudtrail.iter_events(io.BytesIO(DOCUMENT), source_name="t")))
    assert from_lines == from_doc


def test_several_records_documents_and_lines_in_one_stream() -> None:
    data = DOCUMENT + b"\n" + orjson.dumps(record(99)) + b"\n" + PRETTY
    events, errors = split(cloudtrail.iter_events(io.BytesIO(data), source_name="t"))
    assert errors == []
    assert len(events) == 81


def test_a_broken_record_is_reported_with_its_line_and_reading_resumes() -> None:
    good = orjson.dumps(record(1)).decode()
    text = '{"Records": [\n' + good + ",\n{broken,\n" + good + "\n]}\n" + good + "\n"
    events, errors = split(cloudtrail.iter_events(io.StringIO(text), source_name="t.json"))
    assert len(errors) >= 1
    assert errors[0].line == 3
    assert errors[0].message.startswith("record 2: not valid JSON")
    assert "rest of the array skipped" in errors[0].message
    # The record before the break and the line after the document still count.
    assert events[0].source_event_id == "id-1"
    assert events[-1].source_event_id == "id-1"


def test_gzip_files_are_read_transparently(tmp_path: Path) -> None:
    packed = tmp_path / "trail.json.gz"
    packed.write_bytes(gzip.compress(DOCUMENT))
    disguised = tmp_path / "trail.json"  # gzip is told by content, not by name
    disguised.write_bytes(gzip.compress(DOCUMENT))
    for path in (packed, disguised):
        events, errors = split(iter_file(path, Source.CLOUDTRAIL))
        assert errors == []
        assert len(events) == 40
    with open_source(packed) as handle:
        assert handle.read(12) == b'{"Records":['


def test_a_truncated_gzip_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    packed = gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in RECORDS * 50))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    events, errors = split(iter_file(path, Source.CLOUDTRAIL))
    assert events  # what came before the cut
    assert any("cannot be read past this point" in e.message for e in errors)


def test_missing_files_and_unreadable_sources_are_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(SourceUnreadable, match="cannot read"):
        iter_file(tmp_path / "nope.json", Source.CLOUDTRAIL)
    with pytest.raises(SourceUnreadable):
        open_source(tmp_path)
    path = tmp_path / "ok.json"
    path.write_text("{}")
    with pytest.raises(InvalidRequest, match="no adapter reads `tether`"):
        iter_file(path, Source.TETHER)


def test_iterables_of_lines_are_lines_with_or_without_line_breaks() -> None:
    lines = [orjson.dumps(r).decode() for r in RECORDS[:3]]
    events, _ = split(cloudtrail.iter_events(lines, source_name="t"))
    assert len(events) == 3
    as_bytes = [line.encode() + b"\r\n" for line in lines]
    events, _ = split(cloudtrail.iter_events(as_bytes, source_name="t"))
    assert len(events) == 3


def test_reader_framings() -> None:
    def values(text: str, **kwargs: Any) -> list[Any]:
        return [
            (i.line, i.value) if isinstance(i, Item) else ("!", i.line)
            for i in read_json(io.StringIO(text), **kwargs)
        ]

    assert values('{"a": 1}\n\n{"b": 2}\n') == [(1, {"a": 1}), (3, {"b": 2})]
    assert values('{"a": 1} {"b": 2}') == [(1, {"a": 1}), (1, {"b": 2})]
    assert values('{\n  "a": 1\n}\n{"b":\n 2}') == [(1, {"a": 1}), (4, {"b": 2})]
    assert values('[{"a": 1},\n {"b": 2}]') == [(1, {"a": 1}), (2, {"b": 2})]
    assert values("\ufeff" + '{"a": 1}') == [(1, {"a": 1})]
    assert values("123") == [(1, 123)]
    assert values("nope\n{}") == [("!", 1), (2, {})]
    assert values('{"a": NaN}\n{"a": 1e999}\n{"a": 1}') == [("!", 1), ("!", 2), (3, {"a": 1})]
    # Without ``records_key`` a Records document is one value.
    assert values('{"Records": [1]}') == [(1, {"Records": [1]})]
    assert values('{"Records": [1, 2]}', records_key="Records") == [(1, 1), (1, 2)]
    assert values('{"Records": [1, 2] "x"}', records_key="Records") == [(1, 1), (1, 2), ("!", 1)]
    after = '{"Records": [1], "more": {"a": [1]}, "x": 2}\n3'
    assert values(after, records_key="Records") == [(1, 1), (2, 3)]
    assert values('{"Records": [1], 5: 1}\n3', records_key="Records") == [(1, 1), ("!", 1), (2, 3)]
    assert values('{"Records": [1, ', records_key="Records") == [(1, 1), ("!", 1)]


def test_large_integers_read_the_same_on_both_paths() -> None:
    big = 123456789012345678901234567890
    line = f'{{"eventName": "X", "eventSource": "s3.amazonaws.com", "n": {big}}}'
    doc = f'{{"Records": [{line}]}}'
    from_line = list(cloudtrail.iter_events([line], source_name="t"))
    from_doc = list(cloudtrail.iter_events([doc], source_name="t"))
    assert from_line[0].dedupe_key == from_doc[0].dedupe_key  # type: ignore[union-attr]


def test_invalid_utf8_spoils_only_its_line() -> None:
    data = b'{"kind": "Event", "verb": "get", "user": {"username": "\xff"}}\n'
    data += b'{"kind": "Event", "verb": "get", "user": {"username": "ok"}}\n'
    events, errors = split(k8s_audit.iter_events(io.BytesIO(data), source_name="t"))
    assert [e.principal.key for e in events] == ["ok"]
    assert [e.line for e in errors] == [1]


def test_an_overlong_line_is_refused_and_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    from tether.telemetry.ingest import _reader

    monkeypatch.setattr(_reader, "MAX_ITEM_CHARS", 1000)
    monkeypatch.setattr(_reader, "CHUNK_CHARS", 64)
    long = orjson.dumps(record(1, padding="x" * 5000))
    data = long + b"\n" + orjson.dumps(record(2)) + b"\n"
    events, errors = split(cloudtrail.iter_events(io.BytesIO(data), source_name="t"))
    assert [e.source_event_id for e in events] == ["id-2"]
    assert errors[0].line == 1
    assert "longer than 1000" in errors[0].message


def test_unreadable_reports_are_values() -> None:
    items = list(read_json(io.StringIO("{")))
    assert items == [Unreadable(1, items[0].message)]  # type: ignore[union-attr]


def test_look_alike_boundaries_inside_a_record_do_not_split_it() -> None:
    nested = {"items": [{"eventVersion": "x", "n": 1}, {"eventVersion": "y", "n": 2}]}
    tricky = [record(1), record(2, requestParameters=nested), record(3), {"other": "first"}]
    tricky += [record(n) for n in range(4, 30)]
    for data in (
        orjson.dumps({"Records": tricky}),
        orjson.dumps({"Records": tricky}, option=orjson.OPT_INDENT_2),
    ):
        items = list(read_json(ChunkedReader(data, [997] * 1000), records_key="Records"))
        assert [i.value for i in items if isinstance(i, Item)] == tricky
