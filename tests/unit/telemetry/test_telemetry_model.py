"""The event model: dedupe keys, canonical JSON, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.telemetry import (
    UNKNOWN_PRINCIPAL,
    IngestError,
    ObservedAccess,
    RawPrincipal,
    Source,
    canonical_json,
    dedupe_key_of,
)
from tether.telemetry.ingest import cloudtrail

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == (
        '{"a":{"c":"é","d":[1,2]},"b":1}'.encode()
    )
    assert canonical_json({"n": 10**30}) == b'{"n":1000000000000000000000000000000}'
    with pytest.raises(ValueError, match="surrogate"):
        canonical_json({"s": "\udcff"})


@given(st.dictionaries(st.text(max_size=6), JSON, max_size=6))
def test_dedupe_key_ignores_key_order_and_formatting(raw: dict[str, object]) -> None:
    shuffled = dict(reversed(list(raw.items())))
    pretty = orjson.loads(orjson.dumps(raw, option=orjson.OPT_INDENT_2))
    assert dedupe_key_of(raw) == dedupe_key_of(shuffled) == dedupe_key_of(pretty)


def test_same_event_id_different_content_different_key() -> None:
    a = {"eventID": "same", "eventName": "GetObject", "eventSource": "s3.amazonaws.com"}
    b = {**a, "eventName": "PutObject"}
    events = list(
        cloudtrail.iter_events([orjson.dumps(a), orjson.dumps(b), orjson.dumps(a)], source_name="t")
    )
    keys = [e.dedupe_key for e in events if isinstance(e, ObservedAccess)]
    assert keys[0] == keys[2] != keys[1]
    assert [e.source_event_id for e in events if isinstance(e, ObservedAccess)] == ["same"] * 3


def test_times_must_be_utc() -> None:
    fields = {
        "source": Source.TETHER,
        "principal": UNKNOWN_PRINCIPAL,
        "action": "x",
        "raw": {},
        "dedupe_key": dedupe_key_of({}),
    }
    ObservedAccess(at=datetime(2024, 1, 1, tzinfo=UTC), **fields)  # type: ignore[arg-type]
    ObservedAccess(at=datetime(2024, 1, 1, tzinfo=timezone(timedelta(0))), **fields)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="UTC"):
        ObservedAccess(at=datetime(2024, 1, 1), **fields)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="UTC"):
        ObservedAccess(at=datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2))), **fields)  # type: ignore[arg-type]


def test_values_are_frozen_and_printable() -> None:
    principal = RawPrincipal("k8s:user", "alice", "alice", {"groups": "g"})
    assert str(principal) == "k8s:user:alice"
    assert hash(principal) == hash(RawPrincipal("k8s:user", "alice", "alice", {"groups": "h"}))
    assert str(IngestError("f.json", 3, "not valid JSON")) == "f.json:3: not valid JSON"
    event = ObservedAccess(
        at=datetime(2024, 1, 1, tzinfo=UTC),
        source=Source.TETHER,
        principal=principal,
        action="x",
        raw={},
        dedupe_key="k",
    )
    assert event.with_identity("alice-id").identity_id == "alice-id"
    assert event.identity_id is None
    with pytest.raises(AttributeError):
        event.action = "y"  # type: ignore[misc]
