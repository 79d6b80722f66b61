"""Third-party OAuth grants on each backend: import with file:line errors, granted vs used."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lifecycle_fixtures import add_decision
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from tether.cli.main import app
from tether.review.grants import (
    GrantsInvalid,
    grants_section,
    import_grants,
    list_grants,
    review_grants,
    scopes_of,
)
from tether.store.lifecycle_tables import oauth_grants
from tether.store.tables import audit_log
from tether.telemetry.ingest._base import Context
from tether.telemetry.ingest.jsonl import FieldMapping, decode_object
from tether.telemetry.store import EventStore
from tether.tokens import KeyRing, load_or_create_master_key

NOW = datetime.now(UTC)
INVENTORY = f"""\
grants:
  - app: notes-bot
    vendor: Notetaker Inc.
    scopes: [calendar.read, files.read, files.write]
    granted_by: alice@example.org
    granted_at: {(NOW - timedelta(days=30)).date().isoformat()}
    last_vendor_review: {(NOW - timedelta(days=10)).date().isoformat()}
    scope_actions:
      files.read: [files.get, files.list]
  - app: old-app
    vendor: Legacy Mail
    scopes: [mail.send]
    granted_by: bob@example.org
    granted_at: 2023-01-05
"""
MAPPING = FieldMapping.parse(
    {"at": "ts", "principal": "app", "action": "op", "resource": "target", "outcome": "result"}
)


def _write(folder: Path, text: str, name: str = "grants.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def _ingest(engine: Engine, tmp_path: Path, *lines: dict[str, Any]) -> None:
    context = Context(lambda: NOW)
    events = [decode_object(dict(line), MAPPING, context) for line in lines]
    keys = KeyRing(engine, load_or_create_master_key(tmp_path / "master.key"))
    EventStore(engine, keys).append(events)


def _event(op: str, *, days_ago: int = 1, result: str = "ok", **extra: Any) -> dict[str, Any]:
    at = (NOW - timedelta(days=days_ago)).isoformat()
    return {"ts": at, "app": "notes-bot", "op": op, "target": "doc-1", "result": result, **extra}


def test_scopes_granted_beside_scopes_used(store: Engine, tmp_path: Path) -> None:
    result = import_grants(store, _write(tmp_path, INVENTORY), actor="tests")
    assert result == {"added": ["notes-bot", "old-app"], "updated": []}
    _ingest(
        store,
        tmp_path,
        _event("calendar.events.list", scope="calendar.read"),
        _event("files.get"),  # mapped by scope_actions
        _event("files.update", result="denied", scope="files.write"),  # refused: not use
        _event("files.update", days_ago=200, scope="files.write"),  # outside the window
        _event("users.list", scopes=["admin.directory"]),  # beyond the grant
    )
    reviews = {r.grant.app: r for r in review_grants(store, now=NOW, window_days=90)}

    notes = reviews["notes-bot"]
    assert notes.used == ("calendar.read", "files.read")
    assert notes.unused == ("files.write",)
    assert notes.beyond == ("admin.directory",)
    assert notes.overscoped
    assert notes.activity == 3
    assert notes.to_json()["recommended_scopes"] == ["calendar.read", "files.read"]
    assert notes.review_overdue is False
    old = reviews["old-app"]
    assert old.used == ()
    assert old.review_overdue is True  # never reviewed, granted in 2023
    wide = {r.grant.app: r for r in review_grants(store, now=NOW, window_days=300)}
    assert wide["notes-bot"].unused == ()  # the 200-day-old write counts in a wider window
    section = grants_section(reviews.values(), window_days=90)
    types = [r["row_type"] for r in section.rows]
    assert types.count("grant_overscoped") == 2
    assert types.count("grant_unused_scope") == 2
    assert types.count("vendor_review_overdue") == 1
    assert section.summary == {"apps": 2, "overscoped": 2, "vendor_review_overdue": 1}


def test_decisions_and_action_named_scopes_count(store: Engine, tmp_path: Path) -> None:
    import_grants(store, _write(tmp_path, INVENTORY), actor="tests")
    add_decision(store, "old-app", "mail.send", "mail:1", NOW - timedelta(days=2))
    add_decision(store, "old-app", "mail.send", "mail:2", NOW - timedelta(days=2), "deny")
    old = {r.grant.app: r for r in review_grants(store, now=NOW)}["old-app"]
    assert old.used == ("mail.send",)
    assert old.activity == 1
    assert not old.overscoped


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("grants:\n  - app: a\n    vendr: x\n", 3, "unknown key `vendr`"),
        ("grants:\n  - app: a\n    vendor: v\n", 2, "needs `scopes`"),
        (
            "grants:\n  - {app: a, vendor: v, scopes: [s], granted_by: b, granted_at: soon}\n",
            2,
            "`granted_at` of grant `a` must be an ISO 8601",
        ),
        (
            "grants:\n  - {app: a, vendor: v, scopes: [s], granted_by: b, granted_at: 2025-01-01,"
            "\n     scope_actions: {t: [x]}}\n",
            3,
            "names scope `t`, which is not granted",
        ),
        (
            "grants:\n  - {app: a, vendor: v, scopes: [s], granted_by: b, granted_at: 2025-01-01}"
            "\n  - {app: a, vendor: v, scopes: [s], granted_by: b, granted_at: 2025-01-01}\n",
            3,
            "app `a` is listed twice (also at line 2)",
        ),
        ("grants: [\n", 2, "invalid YAML"),
        ("", 1, "the file is empty"),
    ],
)
def test_invalid_inventories_name_file_and_line_and_store_nothing(
    store: Engine, tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "grants.yaml"
    path.write_text(text)
    with pytest.raises(GrantsInvalid) as invalid:
        import_grants(store, path, actor="tests")
    problems = invalid.value.problems
    assert any(p.line == line and message in p.message for p in problems), problems
    assert all(p.file == str(path) for p in problems)
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(oauth_grants)).scalar() == 0


def test_json_inventories_and_reimport_upsert(store: Engine, tmp_path: Path) -> None:
    grant = {
        "app": "notes-bot",
        "vendor": "Notetaker Inc.",
        "scopes": ["files.read"],
        "granted_by": "alice@example.org",
        "granted_at": "2025-02-01T10:00:00Z",
    }
    path = tmp_path / "grants.json"
    path.write_text(json.dumps({"grants": [grant]}, indent=2))
    assert import_grants(store, path, actor="tests")["added"] == ["notes-bot"]
    grant["scopes"] = ["files.read", "files.write"]
    path.write_text(json.dumps([grant], indent=2))
    assert import_grants(store, path, actor="tests") == {"added": [], "updated": ["notes-bot"]}
    assert list_grants(store)[0].scopes == ("files.read", "files.write")
    path.write_text('{"grants": [{"app": "x", "vendor": 3}]}')
    with pytest.raises(GrantsInvalid):
        import_grants(store, path, actor="tests")
    with store.connect() as connection:
        imports = connection.execute(
            select(func.count()).select_from(audit_log).where(audit_log.c.action == "grants.import")
        ).scalar()
    assert imports == 2


def test_scopes_of_reads_text_and_lists() -> None:
    assert scopes_of({"scope": "a b,c"}) == {"a", "b", "c"}
    assert scopes_of({"scopes": ["a", 3, ""]}) == {"a"}
    assert scopes_of("not a mapping") == set()


def test_the_cli_imports_and_lists(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = _write(tmp_path, "grants:\n  - app: a\n    vendr: x\n", "bad.yaml")
    refused = runner.invoke(app, ["grants", "import", str(bad), "--db", db_url])
    assert refused.exit_code == 2
    assert f"{bad}:3: unknown key `vendr`" in refused.output
    good = runner.invoke(
        app, ["grants", "import", str(_write(tmp_path, INVENTORY)), "--db", db_url, "--json"]
    )
    assert good.exit_code == 0, good.output
    assert json.loads(good.output)["added"] == ["notes-bot", "old-app"]
    listed = runner.invoke(app, ["grants", "list", "--db", db_url, "--json"])
    assert listed.exit_code == 0, listed.output
    grants = {g["app"]: g for g in json.loads(listed.output)["grants"]}
    assert grants["old-app"]["vendor_review_overdue"] is True
    assert grants["notes-bot"]["scopes_unused"] == ["calendar.read", "files.read", "files.write"]
