"""Estate metrics on each backend: excessive privilege, rotation, snapshots over time."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from lifecycle_fixtures import add_decision
from sqlalchemy import Engine
from typer.testing import CliRunner

from tether.cli.main import app
from tether.estate import apply_estate
from tether.review.metrics import (
    INDUSTRY_EXCESSIVE,
    INDUSTRY_NOT_ROTATED,
    compute_metrics,
    metrics_section,
    record_snapshot,
    snapshots,
)
from tether.store import migrate
from tether.store.engine import open_engine
from tether.store.lifecycle_tables import offboardings

NOW = datetime.now(UTC)


def _estate(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    old = (NOW - timedelta(days=200)).date().isoformat()
    fresh = (NOW - timedelta(days=5)).date().isoformat()
    text = f"""\
        classes:
          svc: {{mode: monitor, rotate_every: 90d}}
        identities:
          - id: a1
            kind: agent
            class: svc
            owner: t
            entitlements:
              - {{actions: [read, write], resources: ["doc:*"]}}
          - id: a2
            kind: agent
            class: svc
            owner: t
            entitlements:
              - {{actions: [read], resources: ["doc:*"]}}
          - id: a3
            kind: agent
            class: svc
            owner: t
            entitlements:
              - {{actions: [read], resources: ["doc:*"]}}
          - id: k1
            kind: api_key
            class: svc
            owner: t
            attributes: {{rotated_at: "{old}"}}
          - id: k2
            kind: api_key
            class: svc
            owner: t
            attributes: {{rotated_at: "{fresh}"}}
          - id: k3
            kind: api_key
            class: svc
            owner: t
            attributes: {{rotated_at: "{old}"}}
        """
    (folder / "estate.yaml").write_text(textwrap.dedent(text))
    return folder


def _populate(engine: Engine, tmp_path: Path) -> None:
    apply_estate(engine, _estate(tmp_path / "estate"))
    day = timedelta(days=1)
    add_decision(engine, "a1", "read", "doc:1", NOW - day)
    add_decision(engine, "a1", "write", "doc:1", NOW - 120 * day)  # outside the window
    add_decision(engine, "a1", "write", "doc:2", NOW - day, "deny")  # refused: not use
    add_decision(engine, "a2", "read", "doc:5", NOW - day, "constrain")
    add_decision(engine, "a3", "read", "other:1", NOW - day)  # not under `doc:*`
    with engine.begin() as connection:
        connection.execute(
            offboardings.insert().values(
                identity_id="k3",
                offboarded_at=NOW,
                offboarded_by="tests",
                reason="gone",
                previous_status="active",
                revoked={},
            )
        )


def test_excessive_privilege_and_rotation_shares(store: Engine, tmp_path: Path) -> None:
    _populate(store, tmp_path)
    metrics = compute_metrics(store, now=NOW, window_days=90)

    assert metrics.identities == 5  # k3 is offboarded
    assert metrics.entitled == 3
    assert metrics.excessive == ("a1", "a3")
    assert metrics.excessive_share == 66.7
    assert metrics.rotation_governed == 2
    assert metrics.not_rotated == ("k1",)
    assert metrics.not_rotated_share == 50.0
    wide = compute_metrics(store, now=NOW, window_days=150)
    assert wide.excessive == ("a3",)  # a1's write 120 days ago counts now


def test_snapshots_make_the_trend(store: Engine, tmp_path: Path) -> None:
    _populate(store, tmp_path)
    first = record_snapshot(store, compute_metrics(store, now=NOW - timedelta(days=7)))
    second = record_snapshot(store, compute_metrics(store, now=NOW))
    assert first.seq is not None
    assert second.seq is not None
    assert second.seq > first.seq
    trend = snapshots(store, last=10)
    assert [s.seq for s in trend] == [first.seq, second.seq]
    assert trend[-1].excessive == ("a1", "a3")
    assert trend[-1].not_rotated_share == 50.0
    assert [s.seq for s in snapshots(store, last=1)] == [second.seq]

    section = metrics_section(second, trend)
    rows = {r["row_id"]: r for r in section.rows}
    assert rows["metric:excessive_privilege"]["share_percent"] == 66.7
    assert rows["metric:excessive_privilege"]["industry_percent"] == INDUSTRY_EXCESSIVE
    assert rows["metric:not_rotated"]["industry_percent"] == INDUSTRY_NOT_ROTATED
    assert len(section.rows) == 2 + 2 * len(trend)
    assert {r["row_type"] for r in section.rows} == {
        "excessive_privilege",
        "not_rotated",
        "estate_metric",
    }


def test_an_empty_estate_has_no_shares(store: Engine) -> None:
    metrics = compute_metrics(store, now=NOW)
    assert metrics.excessive_share is None
    assert metrics.not_rotated_share is None
    assert metrics.to_json()["excessive_privilege"]["industry_percent"] == 97.0


def test_the_cli_keeps_a_snapshot_per_run(db_url: str, tmp_path: Path) -> None:
    engine = open_engine(db_url)
    try:
        migrate.upgrade(engine)
        _populate(engine, tmp_path)
    finally:
        engine.dispose()
    runner = CliRunner()
    for _ in range(2):
        ran = runner.invoke(app, ["metrics", "--db", db_url, "--json"])
        assert ran.exit_code == 0, ran.output
    answer = json.loads(ran.output)
    assert answer["excessive_privilege"]["share_percent"] == 66.7
    assert answer["not_rotated"]["industry_percent"] == 71.0
    assert len(answer["trend"]) == 2
    human = runner.invoke(app, ["metrics", "--db", db_url, "--last", "2"])
    assert human.exit_code == 0, human.output
    assert "66.7 %" in human.output
    assert "97 %" in human.output


def test_review_sections_of_lifecycle_grants_and_metrics(store: Engine, tmp_path: Path) -> None:
    from tether.review import grants, lifecycle, metrics

    _populate(store, tmp_path)
    since = NOW - timedelta(days=30)
    sections = [
        s
        for module in (lifecycle, grants, metrics)
        for s in module.review_sections(store, now=NOW, since=since, identity=None)
    ]
    assert [s.key for s in sections] == ["lifecycle", "offboarded", "grants", "metrics"]
    assert metrics.review_sections(store, now=NOW, since=since, identity="a1") == []
    only = lifecycle.review_sections(store, now=NOW, since=since, identity="k1")
    assert {r["identity"] for r in only[0].rows} == {"k1"}
    catalog = yaml.safe_load((Path(__file__).parents[3] / "src/tether/frameworks.yaml").read_text())
    for section in sections:
        for row in section.rows:
            assert row["row_type"] in catalog["types"], row
        for framework in section.frameworks:
            assert framework in catalog["frameworks"], framework
