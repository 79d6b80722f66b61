"""Test support for ``tether.telemetry``: data locations, a fixed clock, stream helpers."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tether.telemetry import IngestError, ObservedAccess

_HERE = Path(__file__).resolve()
_SIBLING = _HERE.parents[3].parent / "shared" / "data"
_IN_REPO = _HERE.parents[2] / "data" / "shared"
SHARED_DATA = Path(
    os.environ.get("TETHER_SHARED_DATA", _SIBLING if _SIBLING.is_dir() else _IN_REPO)
)
CLOUD_AUDIT = SHARED_DATA / "cloud-audit"

INGEST_TIME = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def fixed_clock() -> datetime:
    return INGEST_TIME


def labelled_cases(path: Path) -> list[dict[str, Any]]:
    """The labelled test cases of a fixture file, one dict per line."""
    with path.open("rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]


def split(
    results: Iterable[ObservedAccess | IngestError],
) -> tuple[list[ObservedAccess], list[IngestError]]:
    events: list[ObservedAccess] = []
    errors: list[IngestError] = []
    for result in results:
        if isinstance(result, IngestError):
            errors.append(result)
        else:
            events.append(result)
    return events, errors


class ChunkedReader(io.RawIOBase):
    """A binary stream that hands out ``data`` in the given chunk sizes (short reads)."""

    def __init__(self, data: bytes, sizes: Iterable[int]) -> None:
        self._data = data
        self._sizes: Iterator[int] = iter(sizes)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        step = next(self._sizes, len(self._data))
        piece = self._data[self._pos : self._pos + max(step, 1)]
        self._pos += len(piece)
        return piece


class GeneratedStream(io.RawIOBase):
    """A binary stream produced on the fly from byte pieces, never held whole in memory."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = iter(pieces)
        self._pending = b""
        self.produced = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        parts = [self._pending]
        total = len(self._pending)
        while total < max(size, 1):
            piece = next(self._pieces, None)
            if piece is None:
                break
            parts.append(piece)
            total += len(piece)
        data = b"".join(parts)
        out, self._pending = (data, b"") if size < 0 else (data[:size], data[size:])
        self.produced += len(out)
        return out
