"""Opening input files: plain or gzip-compressed (RFC 1952), recognised by content."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, cast

from tether.errors import InvalidRequest
from tether.telemetry.errors import SourceUnreadable
from tether.telemetry.ingest import jsonl
from tether.telemetry.ingest._base import Clock
from tether.telemetry.ingest._registry import ADAPTERS
from tether.telemetry.model import IngestError, ObservedAccess, Source

_GZIP_MAGIC = b"\x1f\x8b"


def open_source(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open ``path`` for reading bytes, decompressing it if it is gzip (whatever its name).

    Raises:
        SourceUnreadable: the file does not exist or cannot be read.
    """
    location = Path(path)
    try:
        with location.open("rb") as probe:
            magic = probe.read(2)
        if magic == _GZIP_MAGIC:
            return cast(IO[bytes], gzip.open(location, "rb"))
        return location.open("rb")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SourceUnreadable(f"cannot read `{location}`: {reason}") from None


def iter_file(
    path: str | os.PathLike[str],
    source: Source,
    *,
    mapping: Mapping[str, str] | jsonl.FieldMapping | None = None,
    now: Clock | None = None,
) -> Iterator[ObservedAccess | IngestError]:
    """The events of the file at ``path`` read as ``source``; the file is closed at the end.

    ``mapping`` is required for :attr:`Source.JSONL` and ignored otherwise. Problems with
    the arguments are raised at once, before anything is read.

    Raises:
        SourceUnreadable: the file does not exist or cannot be read.
        FieldMappingInvalid: ``source`` is ``jsonl`` and ``mapping`` is missing or wrong.
        InvalidRequest: no adapter reads ``source``.
    """
    location = Path(path)
    fields: jsonl.FieldMapping | None = None
    if source is Source.JSONL:
        if isinstance(mapping, jsonl.FieldMapping):
            fields = mapping
        else:
            fields = jsonl.FieldMapping.parse(mapping or {})
    elif source not in ADAPTERS:
        raise InvalidRequest(f"no adapter reads `{source}` files")
    if not location.is_file() or not os.access(location, os.R_OK):
        raise SourceUnreadable(f"cannot read `{location}`: not a readable file")

    def events() -> Iterator[ObservedAccess | IngestError]:
        with open_source(location) as handle:
            if fields is not None:
                yield from jsonl.iter_events(
                    handle, source_name=str(location), mapping=fields, now=now
                )
            else:
                yield from ADAPTERS[source](handle, source_name=str(location), now=now)

    return events()
