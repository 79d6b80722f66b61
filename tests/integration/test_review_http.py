"""Reviews over real HTTP: the report for auditors, sign-off for admins, and the HTML report
rendered in headless Chromium (issue 5's acceptance), on both backends.

The browser is Debian's Chromium at ``/usr/bin/chromium``, driven by Playwright; a
missing browser fails the test (it is part of the acceptance, not optional).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from review_support import write_cloudtrail, write_estate

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ServerFactory = Callable[..., Any]
CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def server(server_factory: ServerFactory, db_url: str, tmp_path: Path, cli: CliRunner) -> Any:
    started = server_factory(db_url=db_url, estate=write_estate(tmp_path / "estate"))
    ingest = cli(
        "ingest",
        "cloudtrail",
        str(write_cloudtrail(tmp_path / "ct.json")),
        "--db",
        db_url,
        "--json",
        cwd=tmp_path,
    )
    assert ingest.returncode == 0, ingest.stderr
    return started


def test_auditors_read_admins_sign_off_and_the_record_is_kept(server: Any) -> None:
    with server.client("auditor") as auditor:
        response = auditor.get("/v1/reviews", params={"since": "7d"})
        assert response.status_code == 200, response.text
        report = response.json()
        overview = {
            r["identity"]: (r["used"], r["unused"], r["outside"])
            for r in next(s for s in report["sections"] if s["key"] == "identities")["rows"]
        }
        # (the test's callers are identities too: nothing entitled, nothing observed)
        estate = {k: v for k, v in overview.items() if not k.startswith("test-")}
        assert estate == {"dashboard": (1, 1, 0), "etl-bot": (2, 1, 2), "idle-bot": (0, 1, 0)}
        one = auditor.get("/v1/reviews", params={"identity": "etl-bot", "framework": "nist-csf"})
        assert one.status_code == 200
        assert one.json()["scope"]["framework"] == "nist-csf"
        assert {s["key"] for s in one.json()["sections"]} >= {"nist-csf:PR.AA-05"}
        assert auditor.get("/v1/reviews", params={"framework": "iso"}).status_code == 400
        assert auditor.get("/v1/reviews", params={"since": "yesterday"}).status_code == 400
        assert auditor.get("/v1/reviews", params={"identity": "nobody"}).status_code == 404
        refused = auditor.post("/v1/reviews", json={"decisions": {}})
        assert refused.status_code == 403
    with server.client("pep") as pep:
        assert pep.get("/v1/reviews").status_code == 403
    with server.client(None) as anonymous:
        assert anonymous.get("/v1/reviews").status_code == 401

    unused = (
        "entitlement:etl-bot:2|dynamodb:GetItem|arn:aws:dynamodb:us-east-1:111122223333:table/*"
    )
    body = {
        "since": "7d",
        "decisions": {unused: "revoke", "identity|idle-bot": "revoke"},
        "note": "quarterly review",
        "report_digest": report["digest"],
    }
    with server.client("admin") as admin:
        bad = admin.post("/v1/reviews", json={**body, "decisions": {unused: "maybe"}})
        assert bad.status_code == 400
        assert bad.json()["error_code"] == "invalid_request"
        stale = admin.post("/v1/reviews", json={**body, "report_digest": "0" * 64})
        assert stale.status_code == 409
        created = admin.post("/v1/reviews", json=body)
        assert created.status_code == 201, created.text
        record = created.json()
    assert record["report_digest"] == report["digest"]
    assert record["signed_by"].startswith("test-admin")
    with server.client("auditor") as auditor:
        kept = auditor.get(created.headers["location"])
        assert kept.status_code == 200
        assert kept.json()["decisions"] == body["decisions"]
        assert kept.json()["note"] == "quarterly review"
        assert auditor.get("/v1/reviews/nope").status_code == 404
        listed = auditor.get("/v1/reviews").json()["recent_signoffs"]
        assert [r["id"] for r in listed] == [record["id"]]


def test_the_html_report_renders_in_headless_chromium(server: Any, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at `{CHROMIUM}`: run `apt-get install -y chromium` "
            "(the HTML report must be checked in a real browser)"
        )
    from playwright.sync_api import sync_playwright

    with server.client("auditor") as auditor:
        page_response = auditor.get("/v1/reviews", params={"format": "html", "since": "7d"})
    assert page_response.status_code == 200
    assert page_response.headers["content-type"].startswith("text/html")
    csp = page_response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "style-src 'sha256-" in csp

    shot = tmp_path / "review.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(
                extra_http_headers=server.auth_header("auditor"),
                viewport={"width": 1280, "height": 900},
            )
            page = context.new_page()
            blocked: list[str] = []
            page.on("console", lambda m: blocked.append(m.text) if m.type == "error" else None)
            requested: list[str] = []
            page.on("request", lambda r: requested.append(r.url))
            response = page.goto(f"{server.url}/v1/reviews?format=html&since=7d")
            assert response is not None
            assert response.status == 200
            page.screenshot(path=str(shot), full_page=True)
            text = page.inner_text("body")
            chart = page.locator("#identity-chart")
            assert chart.is_visible()
            bars = page.locator("#identity-chart rect.bar-unused").count()
            collapse = page.evaluate(
                "getComputedStyle(document.querySelector('table')).borderCollapse"
            )
            rows = page.evaluate(
                "Array.from(document.querySelectorAll('#section-identities tbody tr'))"
                ".map(tr => Array.from(tr.cells).slice(0, 6).map(td => td.innerText))"
            )
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("etl-bot", "dashboard", "idle-bot", "Right-sized Cedar policy set"):
        assert name in text
    assert bars == len(rows) >= 3  # one unused bar per identity
    assert collapse == "collapse"  # the inline style was admitted by the page's CSP
    assert not [m for m in blocked if "Content Security Policy" in m], blocked
    assert requested == [f"{server.url}/v1/reviews?format=html&since=7d"]  # nothing else
    by_identity = {r[0]: r for r in rows}
    # identity, kind, owner, used, unused, outside
    assert by_identity["etl-bot"][3:6] == ["2", "1", "2"]
    assert by_identity["idle-bot"][3:6] == ["0", "1", "0"]
    assert json.loads(json.dumps(rows))  # plain strings all the way
