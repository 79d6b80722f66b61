"""Constant memory on large inputs, and a CloudTrail parsing throughput measurement.

The measurement is printed, not asserted: the later target is 20,000 CloudTrail events/s
into SQLite end to end, so parsing alone must stay well above that.
"""

from __future__ import annotations

import io
import itertools
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from telemetry_support import CLOUD_AUDIT, GeneratedStream, labelled_cases

from tether.telemetry import IngestError
from tether.telemetry.ingest import cloudtrail

MB = 1 << 20


def fixture_records() -> list[bytes]:
    """The fixture records, each led by ``eventVersion`` as CloudTrail writes them."""
    cases = labelled_cases(CLOUD_AUDIT / "aws_cloudtrail_rules.labelled.jsonl")
    logs = [case["log"] for case in cases if case["log"] is not None]
    return [orjson.dumps({"eventVersion": log.get("eventVersion", "1.08"), **log}) for log in logs]


def records_document(records: list[bytes], total_bytes: int) -> Iterator[bytes]:
    """``{"Records": [...]}`` on one line, about ``total_bytes`` long, made as it is read."""
    yield b'{"Records":['
    produced = 0
    for index, record in enumerate(itertools.cycle(records)):
        if produced >= total_bytes:
            break
        piece = record if index == 0 else b"," + record
        produced += len(piece)
        yield piece
    yield b"]}"


def resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.slow
def test_a_200_mb_single_line_records_file_streams_in_constant_memory(
    figure: Callable[[str], None],
) -> None:
    stream = GeneratedStream(records_document(fixture_records(), 200 * MB))
    baseline = resident_bytes()
    highest = baseline
    events = errors = 0
    started = time.perf_counter()
    for result in cloudtrail.iter_events(stream, source_name="generated.json"):
        if isinstance(result, IngestError):
            errors += 1
        else:
            events += 1
        if events % 20_000 == 0:
            highest = max(highest, resident_bytes())
    elapsed = time.perf_counter() - started
    assert stream.produced > 200 * MB
    assert errors == 0
    assert events > 150_000
    # Holding the document (or its events) would take gigabytes; streaming takes a few MB.
    assert highest - baseline < 64 * MB
    figure(
        f"[telemetry] CloudTrail Records, 1 line of {stream.produced / MB:.0f} MB: "
        f"{events:,} events in {elapsed:.1f}s = {events / elapsed:,.0f} events/s, "
        f"resident growth {(highest - baseline) / MB:.1f} MB"
    )


def test_traced_memory_stays_flat_over_many_json_lines() -> None:
    records = fixture_records()
    lines = (records[i % len(records)] + b"\n" for i in range(12_000))
    stream = GeneratedStream(lines)
    tracemalloc.start()
    try:
        count = 0
        for count, _ in enumerate(cloudtrail.iter_events(stream, source_name="g"), 1):
            if count == 1_000:
                tracemalloc.reset_peak()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 12_000
    assert peak < 4 * MB  # a chunk of text, one event, and the principal cache


def test_cloudtrail_parse_throughput(figure: Callable[[str], None]) -> None:
    records = fixture_records()
    sample = [records[i % len(records)] for i in range(30_000)]
    jsonl = b"\n".join(sample)
    document = b'{"Records":[' + b",".join(sample) + b"]}"
    rates = {}
    for name, data in (("JSON lines", jsonl), ("Records file", document)):
        started = time.perf_counter()
        count = sum(1 for _ in cloudtrail.iter_events(io.BytesIO(data), source_name=name))
        rates[name] = count / (time.perf_counter() - started)
        assert count == len(sample)
    shown = ", ".join(f"{name} {rate:,.0f} events/s" for name, rate in rates.items())
    figure(f"[telemetry] CloudTrail parse throughput: {shown}")
