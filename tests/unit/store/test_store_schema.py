"""Migrations create the schema on both backends, idempotently."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from tether.store import migrate
from tether.store.schema import metadata


def test_migrations_create_every_table_and_column(store: Engine) -> None:
    inspector = inspect(store)
    tables = set(inspector.get_table_names())
    assert set(metadata.tables) <= tables
    for name, table in metadata.tables.items():
        columns = {c["name"] for c in inspector.get_columns(name)}
        assert columns == {c.name for c in table.columns}, name


def test_decision_indexes_exist(store: Engine) -> None:
    names = {ix["name"] for ix in inspect(store).get_indexes("decisions")}
    assert {"ix_decisions_at", "ix_decisions_subject_at"} <= names


def test_store_is_at_head_and_upgrade_is_a_no_op(store: Engine) -> None:
    assert migrate.current_revisions(store) == migrate.head_revisions()
    migrate.upgrade(store)
    assert migrate.current_revisions(store) == migrate.head_revisions()


def test_decision_id_is_unique(store: Engine) -> None:
    uniques = inspect(store).get_unique_constraints("decisions")
    assert any(u["column_names"] == ["decision_id"] for u in uniques)
