"""Access review and right-sizing end to end (issue 5's acceptance), on both backends.

Real CLI throughout: ``tether apply`` an estate, ``tether ingest cloudtrail`` what its
identities did, ``tether review`` lists used / unused / outside per identity and writes
the right-sized Cedar policy; then a new estate (the same identities, no entitlements,
the generated policy under ``policies/``, the estate's own schema) goes through
``tether apply`` and :meth:`Tether.decide` shows that it allows every observed request
within entitlement and denies every unused entitlement part and everything outside.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from review_support import ACCOUNT, ETL_READS, PUBLIC_FILES, REGION, write_cloudtrail, write_estate
from sqlalchemy import select

from tether.config import Settings
from tether.policy import DecisionRequest, EntityRef
from tether.services import Tether
from tether.store.engine import open_engine
from tether.store.tables import estate_revisions

pytestmark = pytest.mark.slow

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _arn(key: str) -> EntityRef:
    """An S3 object as the estate's patterns name it (type `arn`)."""
    return EntityRef("arn", f"aws:s3:::{key}")


def _by_identity(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["identity"], []).append(row)
    return found


def _section(report: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = next(s["rows"] for s in report["sections"] if s["key"] == key)
    return rows


def test_review_lists_use_and_the_rightsized_policy_allows_exactly_what_was_used(
    cli: CliRunner, db_url: str, tmp_path: Path
) -> None:
    run = lambda *args: cli(*args, "--db", db_url, cwd=tmp_path)  # noqa: E731
    _ok(run("apply", str(write_estate(tmp_path / "estate"))))
    ingested = json.loads(
        _ok(run("ingest", "cloudtrail", str(write_cloudtrail(tmp_path / "ct.json")), "--json"))
    )
    assert ingested["ingested"] == 18
    assert ingested["errors"] == 0

    report = json.loads(_ok(run("review", "--since", "7d", "--json")))
    overview = {r["identity"]: r for r in _section(report, "identities")}
    assert {k: (v["used"], v["unused"], v["outside"]) for k, v in overview.items()} == {
        "dashboard": (1, 1, 0),
        "etl-bot": (2, 1, 2),
        "idle-bot": (0, 1, 0),
    }
    parts = _by_identity(_section(report, "entitlements"))
    etl = {(r["action"], r["status"], r["uses"]) for r in parts["etl-bot"]}
    assert etl == {
        ("s3:GetObject", "used", 3),
        ("s3:PutObject", "used", 1),
        ("dynamodb:GetItem", "unused", 0),
    }
    outside = {(r["action"], r["allowed"], r["denied"]) for r in _section(report, "outside")}
    assert outside == {("s3:DeleteObject", 1, 0), ("secretsmanager:GetSecretValue", 0, 1)}
    # Every row carries its framework references.
    for section in report["sections"]:
        for row in section["rows"]:
            assert row["owasp_asi"].startswith("ASI"), row
            assert row["nist_csf"], row

    policy_file = tmp_path / "rightsized.cedar"
    _ok(
        run(
            "review",
            "--since",
            "7d",
            "--policy-out",
            str(policy_file),
            "--format",
            "md",
            "--output",
            str(tmp_path / "r.md"),
        )
    )
    policy = policy_file.read_text()
    assert 'principal == service_account::"etl-bot"' in policy
    assert "idle-bot" not in policy  # nothing used, nothing granted
    assert "dynamodb" not in policy
    assert "lambda" not in policy
    assert "DeleteObject" not in policy
    assert 'context.tether.resource_id like "aws:s3:::public/*"' in policy  # dense: collapsed
    assert "# Access review" in (tmp_path / "r.md").read_text()

    signed = json.loads(
        _ok(
            run(
                "review",
                "--since",
                "7d",
                "--sign-off",
                "--as",
                "alice",
                "--decision",
                "identity|idle-bot=revoke",
                "--json",
            )
        )
    )
    shown = json.loads(_ok(run("review", "--show", signed["id"], "--json")))
    assert shown["decisions"] == {"identity|idle-bot": "revoke"}
    assert shown["signed_by"] == "alice"
    refused = run("review", "--sign-off", "--as", "alice", "--decision", "nope=keep")
    assert refused.returncode == 2
    assert "row `nope` is not in the report" in refused.stderr

    # The right-sized estate: same identities, no entitlements, the generated policy and
    # the estate's own schema, through the real `tether apply`.
    engine = open_engine(db_url)
    try:
        with engine.connect() as connection:
            bundle = (
                connection.execute(
                    select(estate_revisions.c.bundle).order_by(estate_revisions.c.revision.desc())
                )
                .scalars()
                .first()
            )
    finally:
        engine.dispose()
    assert bundle is not None
    rightsized = write_estate(tmp_path / "rightsized", entitlements=False)
    (rightsized / "policies").mkdir()
    (rightsized / "policies" / "rightsized.cedar").write_text(policy)
    (rightsized / "schema.cedarschema").write_text(bundle["schema"])
    _ok(run("apply", str(rightsized)))

    tether = Tether(
        Settings(database_url=db_url, master_key_file=str(tmp_path / ".tether" / "master.key"))
    )
    try:

        def decide(identity: str, action: str, resource: EntityRef) -> bool:
            request = DecisionRequest(EntityRef("service_account", identity), action, resource)
            return tether.decide(request).permits

        # Everything observed within entitlement is allowed...
        for key in ETL_READS:
            assert decide("etl-bot", "s3:GetObject", _arn(key)), key
        assert decide("etl-bot", "s3:PutObject", _arn("reports/2026/out.csv"))
        for key in PUBLIC_FILES:
            assert decide("dashboard", "s3:GetObject", _arn(key)), key
        # ...dense use keeps its pattern, sparse use only the exact resources...
        assert decide("dashboard", "s3:GetObject", _arn("public/new-page.html"))
        assert not decide("etl-bot", "s3:GetObject", _arn("reports/2026/apr.csv"))
        assert not decide("etl-bot", "s3:PutObject", _arn("reports/2026/jan.csv"))
        # ...no part of an unused entitlement is...
        table = EntityRef("arn", f"aws:dynamodb:{REGION}:{ACCOUNT}:table/orders")
        function = EntityRef("arn", f"aws:lambda:{REGION}:{ACCOUNT}:function:render")
        parameter = EntityRef("arn", f"aws:ssm:{REGION}:{ACCOUNT}:parameter/db")
        assert not decide("etl-bot", "dynamodb:GetItem", table)
        assert not decide("dashboard", "lambda:InvokeFunction", function)
        assert not decide("idle-bot", "ssm:GetParameter", parameter)
        # ...and activity outside the entitlement is not granted without a review.
        assert not decide("etl-bot", "s3:DeleteObject", _arn("reports/2026/jan.csv"))
        # Before: the original entitlement allowed what is now removed.
        assert tether.snapshot.revision is not None
        assert tether.snapshot.revision >= 2
    finally:
        tether.close()
        tether.engine.dispose()


def test_the_original_entitlement_allowed_the_unused_parts(
    cli: CliRunner, db_url: str, tmp_path: Path
) -> None:
    """The control: the denials above come from right-sizing, not from a broken request."""
    _ok(cli("apply", str(write_estate(tmp_path / "estate")), "--db", db_url, cwd=tmp_path))
    tether = Tether(
        Settings(database_url=db_url, master_key_file=str(tmp_path / ".tether" / "master.key"))
    )
    try:
        requests = [
            (
                "etl-bot",
                "dynamodb:GetItem",
                EntityRef("arn", f"aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"),
            ),
            (
                "dashboard",
                "lambda:InvokeFunction",
                EntityRef("arn", f"aws:lambda:{REGION}:{ACCOUNT}:function:render"),
            ),
            (
                "idle-bot",
                "ssm:GetParameter",
                EntityRef("arn", f"aws:ssm:{REGION}:{ACCOUNT}:parameter/db"),
            ),
            ("etl-bot", "s3:GetObject", _arn("reports/2026/apr.csv")),
        ]
        for identity, action, resource in requests:
            request = DecisionRequest(EntityRef("service_account", identity), action, resource)
            assert tether.decide(request).permits, (identity, action)
    finally:
        tether.close()
        tether.engine.dispose()
