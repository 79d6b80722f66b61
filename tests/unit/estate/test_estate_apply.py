"""Applying estates to the store: atomic, idempotent, and only ever touching its own rows."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from tether.errors import EstateInvalid
from tether.estate import Change, CompiledEstate, apply_estate
from tether.estate import _apply as apply_module
from tether.policy import DecisionRequest, EntityRef
from tether.store import tables as t

EstateFactory = Callable[..., Path]
NOW = datetime(2026, 6, 1, tzinfo=UTC)
TABLES = (
    t.identities,
    t.entitlements,
    t.workload_classes,
    t.data_classes,
    t.resource_rules,
    t.policies,
    t.trust_anchors,
    t.exceptions,
    t.estate_revisions,
    t.audit_log,
)


def dump(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table apply may write, for before/after comparisons."""
    with engine.connect() as connection:
        return {
            table.name: sorted(
                (dict(r) for r in connection.execute(select(table)).mappings()), key=repr
            )
            for table in TABLES
        }


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def keys(engine: Engine, table: Any, column: str = "id") -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(table.c[column])).scalars())


def test_first_apply_creates_everything(make_estate: EstateFactory, sqlite_store: Engine) -> None:
    directory = make_estate()
    result = apply_estate(sqlite_store, directory, actor="test", now=NOW)

    assert result.revision == 1
    assert result.changed
    assert not result.dry_run
    assert Change("identity", "billing-bot", "create") in result.changes
    assert Change("entitlement", "entitlement:billing-bot:1", "create") in result.changes
    assert Change("policy", "agents-never-read-secrets", "create") in result.changes
    assert Change("schema", "generated", "create") in result.changes
    assert Change("exception", "nightly-etl/volume_anomaly", "create") in result.changes
    assert {c.op for c in result.changes} == {"create"}
    assert keys(sqlite_store, t.identities) == {"billing-bot", "nightly-etl"}
    assert keys(sqlite_store, t.workload_classes, "name") == {"agent", "batch"}
    assert keys(sqlite_store, t.trust_anchors, "name") == {"spiffe://example.org"}
    assert keys(sqlite_store, t.resource_rules, "pattern") == {"payments:*", "email:*"}
    assert keys(sqlite_store, t.policies) == {
        "agents-never-read-secrets",
        "entitlement:billing-bot:1",
        "entitlement:nightly-etl:1",
    }
    with sqlite_store.connect() as connection:
        policy = connection.execute(
            select(t.policies).where(t.policies.c.id == "entitlement:billing-bot:1")
        ).one()
        revision = connection.execute(select(t.estate_revisions)).one()
        audit = connection.execute(select(t.audit_log)).one()
    assert policy.origin == "entitlement"
    assert policy.file == "estate.yaml"
    assert 'like "*@example.org"' in policy.text
    assert revision.applied_by == "test"
    assert revision.summary["counts"]["identity"] == 2
    assert (audit.actor, audit.action, audit.target) == ("test", "estate.apply", str(directory))
    assert audit.details["revision"] == 1
    # What a server loads from the store decides like the files say.
    engine = CompiledEstate.from_bundle(revision.bundle).engine()
    request = DecisionRequest(
        EntityRef("agent", "billing-bot"), "read_invoice", EntityRef("invoice", "i")
    )
    assert engine.decide(
        request, {"subject_id": "billing-bot", "resource_id": "i", "sensitivity": 0}
    ).permits


def test_reapply_is_idempotent(make_estate: EstateFactory, sqlite_store: Engine) -> None:
    directory = make_estate()
    apply_estate(sqlite_store, directory, now=NOW)
    before = dump(sqlite_store)

    again = apply_estate(sqlite_store, directory, now=NOW)

    assert (again.revision, again.changed, again.changes) == (1, False, ())
    assert dump(sqlite_store) == before


def test_a_moved_file_or_reordered_items_change_nothing_semantic(
    make_estate: EstateFactory, sqlite_store: Engine, tmp_path: Path
) -> None:
    first = make_estate(
        {"a.yaml": "identities:\n  - {id: x, kind: user}\n  - {id: y, kind: user}\n"}
    )
    apply_estate(sqlite_store, first, now=NOW)
    second = make_estate(
        {"a.yaml": "identities:\n  - {id: y, kind: user}\n  - {id: x, kind: user}\n"}
    )
    result = apply_estate(sqlite_store, second, now=NOW)
    assert result.changed is False


def test_changes_update_and_delete(make_estate: EstateFactory, sqlite_store: Engine) -> None:
    directory = make_estate(
        {"more.yaml": "identities:\n  - {id: temp-bot, kind: agent, class: agent}\n"}
    )
    apply_estate(sqlite_store, directory, now=NOW)
    estate_yaml = (directory / "estate.yaml").read_text()
    (directory / "estate.yaml").write_text(
        estate_yaml.replace("owner: team-payments", "owner: team-billing")
    )
    (directory / "more.yaml").unlink()
    (directory / "policies/guardrails.cedar").unlink()

    result = apply_estate(sqlite_store, directory, now=NOW)

    assert result.revision == 2
    assert set(result.changes) == {
        Change("identity", "billing-bot", "update"),
        Change("identity", "temp-bot", "delete"),
        Change("policy", "agents-never-read-secrets", "delete"),
        Change("schema", "generated", "update"),  # no policy names `secret` any more
    }
    assert keys(sqlite_store, t.identities) == {"billing-bot", "nightly-etl"}
    assert "agents-never-read-secrets" not in keys(sqlite_store, t.policies)
    assert count(sqlite_store, t.estate_revisions) == 2
    assert count(sqlite_store, t.audit_log) == 2


def test_dropped_identity_loses_its_entitlements_and_policies(
    make_estate: EstateFactory, sqlite_store: Engine
) -> None:
    directory = make_estate()
    apply_estate(sqlite_store, directory, now=NOW)
    text = (directory / "estate.yaml").read_text()
    start = text.index("  - id: nightly-etl")
    end = text.index("exceptions:")
    (directory / "estate.yaml").write_text(text[:start] + text[end:].split("exceptions:")[0])

    result = apply_estate(sqlite_store, directory, now=NOW)

    assert Change("identity", "nightly-etl", "delete") in result.changes
    assert Change("entitlement", "entitlement:nightly-etl:1", "delete") in result.changes
    assert Change("exception", "nightly-etl/volume_anomaly", "delete") in result.changes
    assert keys(sqlite_store, t.identities) == {"billing-bot"}
    assert keys(sqlite_store, t.entitlements) == {"entitlement:billing-bot:1"}
    assert "entitlement:nightly-etl:1" not in keys(sqlite_store, t.policies)
    assert count(sqlite_store, t.exceptions) == 0


def test_created_at_survives_updates(make_estate: EstateFactory, sqlite_store: Engine) -> None:
    directory = make_estate()
    apply_estate(sqlite_store, directory, now=NOW)
    (directory / "estate.yaml").write_text(
        (directory / "estate.yaml").read_text().replace("owner: team-data", "owner: team-etl")
    )
    later = datetime(2026, 7, 1, tzinfo=UTC)
    apply_estate(sqlite_store, directory, now=later)
    with sqlite_store.connect() as connection:
        rows = {r.id: r for r in connection.execute(select(t.identities))}
    assert rows["nightly-etl"].created_at.replace(tzinfo=UTC) == NOW
    assert rows["nightly-etl"].updated_at.replace(tzinfo=UTC) == later
    assert rows["billing-bot"].updated_at.replace(tzinfo=UTC) == NOW  # unchanged row untouched


def test_invalid_estate_leaves_the_store_untouched(
    make_estate: EstateFactory, sqlite_store: Engine
) -> None:
    apply_estate(sqlite_store, make_estate(), now=NOW)
    before = dump(sqlite_store)
    broken = make_estate({"more.yaml": "identities:\n  - {id: x, kind: robot}\n"})
    with pytest.raises(EstateInvalid):
        apply_estate(sqlite_store, broken, now=NOW)
    assert dump(sqlite_store) == before


def test_failure_during_the_write_rolls_everything_back(
    make_estate: EstateFactory, sqlite_store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = make_estate()
    apply_estate(sqlite_store, directory, now=NOW)
    before = dump(sqlite_store)
    (directory / "estate.yaml").write_text(
        (directory / "estate.yaml").read_text().replace("team-payments", "team-x")
    )

    def explode(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(apply_module, "_record", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        apply_estate(sqlite_store, directory, now=NOW)
    assert dump(sqlite_store) == before


def test_rows_of_other_origins_are_left_alone(
    make_estate: EstateFactory, sqlite_store: Engine
) -> None:
    with sqlite_store.begin() as connection:
        connection.execute(
            insert(t.identities).values(
                id="found-in-cloudtrail",
                kind="service_account",
                attributes={},
                status="active",
                origin="discovered",
                created_at=NOW,
                updated_at=NOW,
            )
        )
        connection.execute(
            insert(t.exceptions).values(
                id="cli-1",
                identity_id="billing-bot",
                detector="novel_resource",
                owner="oncall",
                justification="incident 42",
                expires_at=NOW,
                origin="cli",
                created_at=NOW,
            )
        )
        connection.execute(
            insert(t.trust_anchors).values(
                name="spiffe://runtime.example", kind="spiffe", settings={}, origin="runtime"
            )
        )
    apply_estate(sqlite_store, make_estate(), now=NOW)
    # Re-apply a much smaller estate: only estate rows may go.
    small = make_estate({"estate.yaml": "identities:\n  - {id: solo, kind: user}\n"}, base=False)
    apply_estate(sqlite_store, small, now=NOW)

    assert keys(sqlite_store, t.identities) == {"found-in-cloudtrail", "solo"}
    assert keys(sqlite_store, t.exceptions) == {"cli-1"}
    assert keys(sqlite_store, t.trust_anchors, "name") == {"spiffe://runtime.example"}


def test_declaring_an_object_of_another_origin_is_an_error(
    make_estate: EstateFactory, sqlite_store: Engine
) -> None:
    with sqlite_store.begin() as connection:
        connection.execute(
            insert(t.identities).values(
                id="billing-bot",
                kind="agent",
                attributes={},
                status="active",
                origin="runtime",
                created_at=NOW,
                updated_at=NOW,
            )
        )
    before = dump(sqlite_store)
    directory = make_estate()
    with pytest.raises(EstateInvalid) as caught:
        apply_estate(sqlite_store, directory, now=NOW)
    [problem] = caught.value.problems
    assert problem.file == str(directory / "estate.yaml")
    assert problem.line == 12
    assert "identity `billing-bot` already exists in the store" in problem.message
    assert dump(sqlite_store) == before


def test_dry_run_writes_nothing(make_estate: EstateFactory, sqlite_store: Engine) -> None:
    directory = make_estate()
    before = dump(sqlite_store)
    planned = apply_estate(sqlite_store, directory, dry_run=True, now=NOW)
    assert planned.dry_run
    assert planned.changed
    assert planned.revision is None
    assert Change("identity", "billing-bot", "create") in planned.changes
    assert dump(sqlite_store) == before

    applied = apply_estate(sqlite_store, directory, now=NOW)
    assert applied.changes == planned.changes
    after = dump(sqlite_store)
    (directory / "estate.yaml").write_text(
        (directory / "estate.yaml").read_text().replace("team-payments", "team-x")
    )
    planned = apply_estate(sqlite_store, directory, dry_run=True, now=NOW)
    assert planned.changes == (Change("identity", "billing-bot", "update"),)
    assert planned.revision == 1
    assert dump(sqlite_store) == after


def test_declared_resource_and_parent_changes_are_reported(
    make_estate: EstateFactory, sqlite_store: Engine
) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                identities:
                  - {id: alice, kind: user, parents: ["team:a"]}
                resources:
                  - {type: record, id: r1, attributes: {owner: alice}}
                """
        }
    )
    apply_estate(sqlite_store, directory, now=NOW)
    text = (directory / "more.yaml").read_text()
    (directory / "more.yaml").write_text(
        text.replace("team:a", "team:b").replace("alice}}", "bob}}")
    )
    result = apply_estate(sqlite_store, directory, now=NOW)
    assert set(result.changes) >= {
        Change("identity", "alice", "update"),
        Change("resource", "record:r1", "update"),
    }


def test_apply_on_each_backend(make_estate: EstateFactory, store: Engine) -> None:
    """The same apply on SQLite and PostgreSQL (the lead's ``store`` fixture)."""
    directory = make_estate()
    first = apply_estate(store, directory, now=NOW)
    assert first.changed
    again = apply_estate(store, directory, now=NOW)
    assert (again.changed, again.revision) == (False, first.revision)
    small = make_estate({"estate.yaml": "identities:\n  - {id: solo, kind: user}\n"}, base=False)
    result = apply_estate(store, small, now=NOW)
    assert Change("identity", "billing-bot", "delete") in result.changes
    assert keys(store, t.identities) == {"solo"}
    assert count(store, t.exceptions) == 0


def test_concurrent_applies_are_serialised(
    make_estate: EstateFactory, sqlite_store: Engine
) -> None:
    directory = make_estate()
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(apply_estate(sqlite_store, directory, now=NOW))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(r.changed for r in results) == [False, False, True]
    assert count(sqlite_store, t.estate_revisions) == 1
