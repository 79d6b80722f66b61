"""Migrations create the schema on both backends, idempotently."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import Engine, inspect

from tether.store import migrate
from tether.store.engine import open_engine
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


def test_the_task_index_holds_only_events_of_a_task_and_answers_task_queries(
    store: Engine,
) -> None:
    tasks_query = "SELECT seq FROM events WHERE task_id IN ('t-1', 't-2')"
    with store.connect() as connection:
        if store.dialect.name == "sqlite":
            definition = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_events_task_at'"
            ).scalar_one()
            plan = " ".join(
                str(row[-1])
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {tasks_query}")
            )
        else:
            definition = connection.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_events_task_at'"
                " AND schemaname = current_schema()"
            ).scalar_one()
            connection.exec_driver_sql("SET enable_seqscan = off")  # an empty table
            plan = " ".join(
                str(row[0]) for row in connection.exec_driver_sql(f"EXPLAIN {tasks_query}")
            )
    assert "task_id IS NOT NULL" in definition.replace("(", "").replace(")", "")
    assert "ix_events_task_at" in plan


def test_the_heads_read_from_the_revision_files_are_alembics() -> None:
    assert migrate.declared_heads() == migrate.head_revisions()


def test_a_store_behind_head_is_migrated(tmp_path: Path) -> None:
    """The quick check (no Alembic when at head) lets a store at an older revision through."""
    engine = open_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = migrate._config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    assert migrate.current_revisions(engine) == {"0001"}
    migrate.upgrade(engine)
    assert migrate.current_revisions(engine) == migrate.head_revisions()
    engine.dispose()
