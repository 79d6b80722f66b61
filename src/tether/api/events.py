"""``POST /v1/events``: batches of raw events into the chained event store (RFC 9457 errors).

Body ``{"source": "cloudtrail" | "k8s-audit" | ... | "auto", "events": [raw, ...]}``
(``"mapping": {...}`` too for ``jsonl``). Each raw event is read by its source's adapter
(``auto``: by its shape) and stored by the same writer as ``tether ingest``: attributed,
deduplicated, hash-chained. An event that cannot be read is reported by its index and
the rest are kept; the answer is ``200`` with ``ingested``, ``duplicates`` and
``errors``. A body that is not such a batch is a ``400`` problem.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.api.contract import OBJECT, Doc, array, obj
from tether.api.routing import secured
from tether.callers import Role
from tether.errors import InvalidRequest
from tether.services import Tether
from tether.telemetry.ingest import DECODERS
from tether.telemetry.ingest._base import Context, Decoder, decode_value
from tether.telemetry.ingest.detect import decode_detected
from tether.telemetry.ingest.jsonl import FieldMapping, decode_object
from tether.telemetry.model import IngestError, ObservedAccess, Source
from tether.telemetry.store import EventStore

# The body itself is bounded at the edge (`max_body_bytes`, tether.api.app).
MAX_EVENTS = 10_000
AUTO = "auto"


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="event_batch_invalid")


def _decoder(body: dict[str, Any]) -> Decoder:
    source = body.get("source")
    if source == AUTO:
        return decode_detected
    try:
        known = Source(source if isinstance(source, str) else "")
    except ValueError:
        names = ", ".join(f"`{s.value}`" for s in [*DECODERS, Source.JSONL])
        raise _invalid(f"`source` must be one of {names} or `auto`, got `{source}`") from None
    if known is Source.JSONL:
        mapping = body.get("mapping")
        if not isinstance(mapping, dict):
            raise _invalid("a `jsonl` batch needs a `mapping` object")
        fields = FieldMapping.parse(mapping)
        return lambda raw, context: (decode_object(raw, fields, context),)
    if known not in DECODERS:
        raise _invalid(f"events of source `{source}` cannot be submitted")
    return DECODERS[known]


def parse_batch(body: Any) -> tuple[Decoder, list[Any]]:
    """The decoder and the raw events of a ``POST /v1/events`` body.

    Raises:
        InvalidRequest: the body is not ``{"source": ..., "events": [...]}``.
    """
    if not isinstance(body, dict):
        raise _invalid('the body must be {"source": ..., "events": [...]}')
    raw_events = body.get("events")
    if not isinstance(raw_events, list):
        raise _invalid("`events` must be an array of raw events")
    if len(raw_events) > MAX_EVENTS:
        raise _invalid(f"a batch holds at most {MAX_EVENTS} events, got {len(raw_events)}")
    return _decoder(body), raw_events


def _decoded(decoder: Decoder, raw_events: list[Any]) -> Iterator[ObservedAccess | IngestError]:
    context = Context()
    for index, raw in enumerate(raw_events):
        yield from decode_value(raw, decoder, context, "events", index)


class _SharedWriter:
    """One event store per server, rebuilt when the estate changes (new identities)."""

    def __init__(self, tether: Tether) -> None:
        self._tether = tether
        self._lock = threading.Lock()
        self._store: EventStore | None = None
        self._revision: int | None = None

    def ingest(self, decoder: Decoder, raw_events: list[Any]) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []

        def on_error(error: IngestError) -> None:
            errors.append({"index": error.line, "message": error.message})

        with self._lock:
            revision = self._tether.snapshot.revision
            if self._store is None or revision != self._revision:
                self._store = EventStore(self._tether.engine, self._tether.keys)
                self._revision = revision
            summary = self._store.ingest(_decoded(decoder, raw_events), on_error=on_error)
            if summary.ingested:
                self._store.checkpoint()
        return {
            "ingested": summary.ingested,
            "duplicates": summary.duplicates,
            "errors": errors,
            "discovered_identities": summary.discovered,
        }


def event_routes(tether: Tether) -> list[Route]:
    writer = _SharedWriter(tether)

    async def post_events(request: Request) -> Response:
        body = await request.body()
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            raise InvalidRequest(
                "content type must be `application/json`", code="unsupported_media_type"
            )
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(
                f"the body is not valid JSON: {exc}", code="malformed_json"
            ) from None
        decoder, raw_events = parse_batch(parsed)
        result = await run_in_threadpool(writer.ingest, decoder, raw_events)
        return JSONResponse(result)

    sources = [*(s.value for s in DECODERS), Source.JSONL.value, AUTO]
    doc = Doc(
        "Ingest a batch of audit events (CloudTrail, Kubernetes, GCP, OpenTelemetry, JSON "
        "lines with a mapping); re-sent events are counted, not stored twice",
        body=obj(
            ("source", "events"),
            source={"enum": sources},
            events=array(OBJECT, maxItems=MAX_EVENTS),
            mapping=OBJECT,
        ),
        answer=OBJECT,
    )
    return [
        secured(
            "/v1/events", post_events, roles=(Role.INGEST, Role.ADMIN), methods=("POST",), doc=doc
        )
    ]
