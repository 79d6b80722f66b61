"""Identity lifecycle on each backend: credentials, rotation per class, stale, orphaned."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from lifecycle_fixtures import add_decision
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from tether.callers import add_api_key
from tether.cli.main import app
from tether.errors import EstateInvalid
from tether.estate import apply_estate
from tether.review.lifecycle import FLAGS, identity_lifecycles, lifecycle_sections
from tether.store import migrate
from tether.store.engine import open_engine
from tether.store.lifecycle_tables import offboardings
from tether.store.tables import identities

TODAY = datetime.now(UTC)


def _estate(folder: Path, classes: str = "svc: {mode: monitor, rotate_every: 30d}") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    old = (TODAY - timedelta(days=59)).date().isoformat()
    fresh = (TODAY - timedelta(days=5)).date().isoformat()
    text = f"""\
        classes:
          {classes}
          other: {{mode: monitor}}
        identities:
          - id: alice
            kind: user
            owner: security
          - id: old-key
            kind: api_key
            class: svc
            owner: team-a
            attributes: {{rotated_at: "{old}", credential: vendor_api_key}}
          - id: fresh-key
            kind: api_key
            class: svc
            owner: team-a
            attributes: {{rotated_at: "{fresh}"}}
          - id: default-policy-key
            kind: api_key
            class: other
            owner: team-a
            attributes: {{rotated_at: "{old}"}}
          - id: bot
            kind: agent
            class: other
            owner: alice
            workload: spiffe://example.org/bot
          - id: unowned
            kind: service_account
            class: other
        """
    (folder / "estate.yaml").write_text(textwrap.dedent(text))
    return folder


def _by_id(engine: Engine, now: datetime, **kwargs: int) -> dict[str, object]:
    return {i.identity_id: i for i in identity_lifecycles(engine, now=now, **kwargs)}


def test_credentials_and_rotation_follow_the_class_policy(store: Engine, tmp_path: Path) -> None:
    apply_estate(store, _estate(tmp_path / "estate"))
    key = add_api_key(store, "pep-1", actor="tests")
    items = {i.identity_id: i for i in identity_lifecycles(store, now=TODAY)}

    old, fresh = items["old-key"], items["fresh-key"]
    assert old.credential.type == "vendor_api_key"
    assert old.credential.static
    assert old.rotate_every_days == 30
    assert dict(old.flags).keys() >= {"rotation_overdue", "static_secret"}
    assert "rotation_overdue" not in dict(fresh.flags)
    assert "static_secret" in dict(fresh.flags)
    # A class without `rotate_every` gets the default policy (90 days): 59 days is fine.
    assert "rotation_overdue" not in dict(items["default-policy-key"].flags)
    assert items["default-policy-key"].rotate_every_days == 90
    pep = items["pep-1"]
    assert pep.credential.type == "tether_pep_key"
    assert pep.credential.since == key.created_at
    assert pep.credential.expiry == "never"
    bot = items["bot"]
    assert bot.credential.type == "workload_proof"
    assert not bot.credential.static
    assert bot.rotate_every_days is None
    assert items["alice"].credential.type == "admin_token"
    # Later, the PEP key too is overdue (default 90 days).
    later = {i.identity_id: i for i in identity_lifecycles(store, now=TODAY + timedelta(days=91))}
    assert "rotation_overdue" in dict(later["pep-1"].flags)


def test_stale_and_orphaned(store: Engine, tmp_path: Path) -> None:
    apply_estate(store, _estate(tmp_path / "estate"))
    later = TODAY + timedelta(days=100)
    add_decision(store, "bot", "read", "doc:1", later - timedelta(days=1))
    add_decision(store, "old-key", "read", "doc:1", later - timedelta(days=95))
    items = {i.identity_id: i for i in identity_lifecycles(store, now=later)}

    assert "stale" not in dict(items["bot"].flags)
    assert items["bot"].last_used_at == later - timedelta(days=1)
    assert dict(items["old-key"].flags)["stale"] == "unused for 95 days (threshold 90)"
    assert dict(items["fresh-key"].flags)["stale"].startswith("never used")
    assert "stale" not in dict(
        {i.identity_id: i for i in identity_lifecycles(store, now=later, stale_days=200)}[
            "fresh-key"
        ].flags
    )
    for one in ("bot", "old-key"):  # one identity's lifecycle is its part of everyone's
        assert identity_lifecycles(store, now=later, identity=one) == [items[one]]
    assert dict(items["unowned"].flags)["orphaned"] == "no owner"
    assert "orphaned" not in dict(items["bot"].flags)  # alice is an active user
    assert "orphaned" not in dict(items["old-key"].flags)  # a team owns it

    with store.begin() as connection:
        connection.execute(
            insert(offboardings).values(
                identity_id="alice",
                offboarded_at=TODAY,
                offboarded_by="tests",
                reason="left",
                previous_status="active",
                revoked={},
            )
        )
    items = {i.identity_id: i for i in identity_lifecycles(store, now=later)}
    assert dict(items["bot"].flags)["orphaned"] == "owner `alice` is offboarded"
    assert items["alice"].flags == ()  # offboarded: listed with its record, not flagged
    assert items["alice"].offboarding is not None


def test_a_discovered_long_term_access_key_is_a_static_secret(store: Engine) -> None:
    first_seen = TODAY - timedelta(days=200)
    with store.begin() as connection:
        connection.execute(
            insert(identities).values(
                id="aws-user-deploy",
                kind="service_account",
                workload_class=None,
                owner=None,
                workload=None,
                attributes={
                    "first_seen": first_seen.isoformat(),
                    "principal_attributes": {"access_key_id": "AKIAEXAMPLE0000001"},
                    "managed": False,
                },
                status="active",
                origin="discovered",
                created_at=TODAY,
                updated_at=TODAY,
            )
        )
    item = identity_lifecycles(store, now=TODAY)[0]
    assert item.credential.type == "aws_access_key"
    assert item.credential.exact is False
    assert item.credential_age_days(TODAY) == 200
    assert item.to_json(TODAY)["credential_age_is_lower_bound"] is True
    assert {f for f, _ in item.flags} == {"rotation_overdue", "orphaned", "static_secret"}
    assert dict(item.flags)["rotation_overdue"].startswith("`aws_access_key` is at least 200")


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ("svc: {mode: monitor, rotate_evry: 30d}", "unknown key `rotate_evry`"),
        ("svc: {mode: monitor, rotate_every: often}", "`rotate_every` of class `svc` must be"),
    ],
)
def test_class_rotation_settings_are_validated(
    store: Engine, tmp_path: Path, classes: str, message: str
) -> None:
    with pytest.raises(EstateInvalid) as invalid:
        apply_estate(store, _estate(tmp_path / "estate", classes))
    assert any(message in p.message for p in invalid.value.problems), invalid.value.problems


def test_sections_carry_one_row_per_flag_with_known_row_types(
    store: Engine, tmp_path: Path
) -> None:
    apply_estate(store, _estate(tmp_path / "estate"))
    items = identity_lifecycles(store, now=TODAY)
    findings, offboarded = lifecycle_sections(items, now=TODAY)
    expected = sum(len(i.flags) for i in items)
    assert len(findings.rows) == expected > 0
    assert findings.summary["identities"] == len(items)
    assert findings.summary["static_secret"] == 3
    assert {r["row_type"] for r in findings.rows} <= set(FLAGS)
    assert len({r["row_id"] for r in findings.rows}) == expected
    assert offboarded.rows == ()
    catalog = yaml.safe_load((Path(__file__).parents[3] / "src/tether/frameworks.yaml").read_text())
    assert set(FLAGS) | {"offboarded"} <= set(catalog["types"])


def test_the_cli_lists_every_identity_with_its_flags(db_url: str, tmp_path: Path) -> None:
    engine = open_engine(db_url)
    try:
        migrate.upgrade(engine)
        apply_estate(engine, _estate(tmp_path / "estate"))
    finally:
        engine.dispose()
    runner = CliRunner()
    ran = runner.invoke(app, ["identity", "lifecycle", "--db", db_url, "--json"])
    assert ran.exit_code == 0, ran.output
    rows = {r["identity"]: r for r in json.loads(ran.output)["identities"]}
    assert rows["old-key"]["flags"] == ["rotation_overdue", "static_secret"]
    assert rows["old-key"]["rotate_every_days"] == 30
    assert rows["unowned"]["why"]["orphaned"] == "no owner"
    human = runner.invoke(app, ["identity", "lifecycle", "--db", db_url])
    assert human.exit_code == 0, human.output
    assert "6 identities" in human.output
