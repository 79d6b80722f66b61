"""The dashboard in a real browser: Playwright driving Debian's Chromium against a real
``tether serve`` on the demo estate (``examples/agents``).

One server and one browser for the module. Screenshots of each page are kept under
``test-artifacts/dashboard/`` (git-ignored).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from tether.review.grants import parse_grants, store_grants
from tether.store.drift_tables import findings
from tether.store.engine import open_engine
from tether.store.tables import audit_log
from tether.store.token_tables import issued_tokens, tasks

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ESTATE = ROOT / "examples" / "agents"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
ServerFactory = Any
LANDING = {"approver": "approvals"}  # a person lands on the first page their roles may see
ServerProcess = Any


GRANTS = """\
grants:
  - app: billing-bot
    vendor: Invoicer Ltd.
    scopes: [invoices.read, mail.send]
    granted_by: alice@example.org
    granted_at: 2026-01-10
"""


def record_activity(db_url: str) -> None:
    """What billing-bot's page shows beside its entitlement, as the store records it: an
    open task with a live token, an OAuth grant, and findings on two days (scores 30, 80)."""
    engine = open_engine(db_url)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(tasks).values(
                id="task-browser-1",
                identity_id="billing-bot",
                identity_kind="agent",
                workload_class="agent",
                purpose="pay the March invoices",
                intent={"actions": ["pay_invoice"], "resources": ["payments:*"]},
                status="open",
                opened_at=now,
                expires_at=now + timedelta(minutes=15),
                opened_by="cli",
            )
        )
        connection.execute(
            insert(issued_tokens).values(
                jti="jti-browser-1",
                task_id="task-browser-1",
                chain=[],
                identity_id="billing-bot",
                depth=0,
                scope="pay_invoice",
                audience="tether",
                kid="k1",
                issued_at=now,
                expires_at=now + timedelta(minutes=5),
            )
        )
        for days_ago, score in ((3, 30.0), (1, 80.0)):
            connection.execute(
                insert(findings).values(
                    finding_id=f"f-browser-{days_ago}",
                    at=now - timedelta(days=days_ago),
                    recorded_at=now,
                    identity_id="billing-bot",
                    detector="out_of_entitlement",
                    severity="high",
                    score=score,
                    deviation=1.0,
                    sensitivity=0.5,
                    blast_radius=0.5,
                    reason="recorded for the dashboard test",
                    evidence=[],
                    details={},
                    frameworks={},
                    mode="monitor",
                )
            )
    store_grants(engine, parse_grants("grants.yaml", GRANTS), actor="tests")
    engine.dispose()


@pytest.fixture(scope="module")
def idp() -> Iterator[Provider]:
    """A real OpenID provider on a real socket; the dashboard's server is its client."""
    with running_provider(redirect_uri="") as provider:
        yield provider


@pytest.fixture(scope="module")
def server(
    module_server_factory: ServerFactory, tmp_path_factory: pytest.TempPathFactory, idp: Provider
) -> Any:
    folder = tmp_path_factory.mktemp("dashboard")
    oidc = {
        "TETHER_OIDC_ISSUER": idp.issuer,
        "TETHER_OIDC_CLIENT_ID": CLIENT_ID,
        "TETHER_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "TETHER_OIDC_ROLE_CLAIM": "groups",
        "TETHER_OIDC_ROLES": "sec-admins=admin, auditors=auditor",
    }
    started = module_server_factory(db_url=f"sqlite:///{folder}/tether.db", estate=ESTATE, env=oidc)
    idp.redirect_uri = f"{started.url}/signin/oidc/callback"  # the client's registration
    record_activity(started.db_url)
    return started


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed at `{CHROMIUM}`: `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


def signed_in(browser: Any, server: ServerProcess, role: str, shot: str | None = None) -> Any:
    """A browser page signed in through the form with ``role``'s admin token."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{server.url}/inventory")
    assert page.url.startswith(f"{server.url}/signin?next=")  # unauthenticated: sign in first
    if shot:
        page.screenshot(path=str(ARTIFACTS / shot))
    page.fill("#token", server.credentials[role])
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/{LANDING.get(role, 'inventory')}")
    return page


def csrf_of(page: Any) -> str:
    return str(page.locator("header input[name=csrf]").get_attribute("value"))


def test_unauthenticated_pages_redirect_and_errors_leak_nothing(server: ServerProcess) -> None:
    answer = httpx.get(f"{server.url}/identities/billing-bot", timeout=10)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=/identities/billing-bot"
    forged = httpx.post(f"{server.url}/offboard", data={"identity": "billing-bot"}, timeout=10)
    assert forged.status_code == 403
    assert "Traceback" not in forged.text
    document = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    assert not any(path in document["paths"] for path in ("/inventory", "/signin", "/offboard"))


def test_admin_signs_in_filters_opens_an_identity_and_needs_the_csrf_token(
    server: ServerProcess, browser: Any
) -> None:
    with server.client("pep") as pep:  # a step outside billing-bot's entitlement
        outside = {
            "subject": {"type": "agent", "id": "billing-bot"},
            "action": {"name": "read_table"},
            "resource": {"type": "table", "id": "customers"},
        }
        assert pep.post("/access/v1/evaluation", json=outside).json()["decision"] is False
    page = signed_in(browser, server, "admin", shot="signin.png")
    cookie = next(c for c in page.context.cookies() if c["name"] == "tether_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    page.select_option("select[name=kind]", "agent")
    page.click("form.filters button")
    page.wait_for_url(re.compile(r".*kind=agent.*"))
    listed = page.locator("#inventory tbody td:first-child").all_inner_texts()
    assert listed == ["billing-bot", "support-agent"]
    row = page.locator("#inventory tbody tr", has_text="billing-bot")
    assert int(row.locator("td").nth(5).inner_text()) >= 2  # its recorded findings, counted
    page.screenshot(path=str(ARTIFACTS / "inventory.png"))

    page.click("text=billing-bot")
    page.wait_for_url(f"{server.url}/identities/billing-bot")
    assert page.locator("#entitlement").inner_text().count("unused") >= 1
    assert page.locator("a.button.danger", has_text="Offboard").count() == 1
    assert "pay the March invoices" in page.locator("#tasks").inner_text()
    assert "jti-browser-1" in page.locator("#tokens").inner_text()
    grants_shown = page.locator("#grants").inner_text()
    assert "Invoicer Ltd." in grants_shown
    assert "2026-01-10" in grants_shown  # the day the estate names, not the day after
    plotted = page.locator("#drift svg.plot circle.point")
    scores = [plotted.nth(i).get_attribute("data-score") for i in range(plotted.count())]
    assert scores[:2] == ["30", "80"]  # then today's, if detection has scored the read yet
    page.screenshot(path=str(ARTIFACTS / "identity.png"), full_page=True)

    no_token = page.request.post(f"{server.url}/offboard", form={"identity": "support-agent"})
    assert no_token.status == 403
    assert "stale or forged" in no_token.text()

    page.click("text=Access path")
    page.wait_for_url(re.compile(r".*/paths\?identity=billing-bot"))
    marked = page.locator("svg#path a.node.outside")
    assert marked.count() >= 1
    page.screenshot(path=str(ARTIFACTS / "path.png"))
    marked.first.click()
    page.wait_for_url(re.compile(r".*node=.*"))
    assert "outside" in page.locator("#evidence").inner_text()

    page.goto(f"{server.url}/findings")
    page.screenshot(path=str(ARTIFACTS / "findings.png"))
    form = page.locator("#new-exception form")
    form.locator("input[name=identity]").fill("billing-bot")
    form.locator("input[name=detector]").fill("out_of_entitlement")
    form.locator("input[name=owner]").fill("team-payments")
    form.locator("input[name=justification]").fill("customer table read for the audit")
    form.locator("button").click()
    page.wait_for_url(f"{server.url}/findings")
    assert "customer table read for the audit" in page.locator("#exceptions").inner_text()
    page.screenshot(path=str(ARTIFACTS / "findings-excepted.png"))

    page.goto(f"{server.url}/reviews")
    page.screenshot(path=str(ARTIFACTS / "review.png"))
    verdicts = page.locator("#signoff select")
    assert verdicts.count() >= 1
    verdicts.first.select_option("revoke")
    page.fill("#signoff input[name=note]", "quarterly review")
    page.click("#signoff button[type=submit]")
    page.wait_for_url(re.compile(r".*/reviews/[^/]+$"))
    assert "signed by" in page.locator("#signed-off").inner_text()
    assert "revoke" in page.inner_text("main")
    page.screenshot(path=str(ARTIFACTS / "review-signed.png"))
    page.goto(f"{server.url}/estate-metrics")
    assert page.locator("svg.bars").count() == 2
    page.screenshot(path=str(ARTIFACTS / "metrics.png"))

    page.goto(f"{server.url}/identities/billing-bot")
    page.click("a.button.danger")
    page.screenshot(path=str(ARTIFACTS / "offboard-confirm.png"))
    page.context.close()


def test_an_approver_approves_and_the_peps_retry_passes_once(
    server: ServerProcess, browser: Any
) -> None:
    request = {
        "subject": {"type": "agent", "id": "billing-bot"},
        "action": {"name": "pay_invoice"},
        "resource": {"type": "payments", "id": "P-7"},
    }
    with server.client("pep") as pep:
        asked = pep.post("/access/v1/evaluation", json=request).json()
        assert asked["context"]["outcome"] == "approval_required"
        approval_id = asked["context"]["approval"]["id"]

        page = signed_in(browser, server, "approver")  # lands on the approvals queue
        row = page.locator(f"tr[data-approval='{approval_id}']")
        assert row.count() == 1
        page.screenshot(path=str(ARTIFACTS / "approvals.png"))
        row.locator("button", has_text="Approve").click()
        page.wait_for_url(f"{server.url}/approvals")
        assert page.locator(f"tr[data-approval='{approval_id}']").count() == 0
        page.context.close()

        retry = {**request, "context": {"approval_id": approval_id}}
        allowed = pep.post("/access/v1/evaluation", json=retry).json()
        assert allowed["decision"] is True, allowed
        again = pep.post("/access/v1/evaluation", json=retry).json()
        assert again["decision"] is False  # once


def test_an_auditor_sees_no_action_and_a_forged_post_is_refused(
    server: ServerProcess, browser: Any
) -> None:
    page = signed_in(browser, server, "auditor")
    page.goto(f"{server.url}/identities/billing-bot")
    assert page.locator("a.button.danger").count() == 0
    page.goto(f"{server.url}/approvals")
    assert page.locator("#pending button").count() == 0
    page.goto(f"{server.url}/findings")
    assert page.locator("#new-exception").count() == 0
    page.goto(f"{server.url}/reviews")
    assert page.locator("#signoff select, #signoff button").count() == 0
    page.screenshot(path=str(ARTIFACTS / "approvals-auditor.png"))
    forged = page.request.post(
        f"{server.url}/offboard", form={"identity": "billing-bot", "csrf": csrf_of(page)}
    )
    assert forged.status == 403
    assert "roles do not allow" in forged.text()
    confirm = page.request.get(f"{server.url}/offboard?identity=billing-bot")
    assert confirm.status == 403
    page.context.close()


def through_the_issuer(browser: Any, server: ServerProcess, idp: Provider, person: str) -> Any:
    """A browser page that signed in as ``person`` at the issuer, through the whole flow."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{server.url}/findings")
    page.click("#oidc")
    page.wait_for_url(re.compile(re.escape(f"{idp.issuer}/authorize?") + ".*"))
    page.select_option("#person", person)
    page.click("#login")
    return page


def test_a_person_signs_in_through_the_oidc_issuer_with_pkce(
    server: ServerProcess, browser: Any, idp: Provider
) -> None:
    page = through_the_issuer(browser, server, idp, "alice")
    page.wait_for_url(f"{server.url}/findings")  # where she was going, with her session
    assert "oidc:alice (admin)" in page.locator("header .who").inner_text()
    page.screenshot(path=str(ARTIFACTS / "oidc-signed-in.png"))
    redeemed = idp.token_requests[-1]
    assert redeemed["grant_type"] == "authorization_code"
    assert 43 <= len(redeemed["code_verifier"]) <= 128
    cookie = next(c for c in page.context.cookies() if c["name"] == "tether_session")
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
    # Its roles are as of sign-in: an OIDC session lasts an hour (TETHER_OIDC_SESSION_S).
    assert 3_000 < cookie["expires"] - time.time() <= 3_601
    assert not any(c["name"] == "tether_oidc" for c in page.context.cookies())  # spent
    engine = open_engine(server.db_url)
    with engine.connect() as connection:
        audited = connection.execute(
            select(audit_log.c.details).where(
                audit_log.c.action == "dashboard.signin", audit_log.c.actor == "oidc:alice"
            )
        ).scalar_one()
    engine.dispose()
    assert audited["credential"] == "oidc"
    page.context.close()


def test_the_oidc_sign_in_fails_closed_with_a_page_saying_why(
    server: ServerProcess, browser: Any, idp: Provider
) -> None:
    page = through_the_issuer(browser, server, idp, "mallory")  # in no mapped group
    page.wait_for_url(re.compile(".*/signin/oidc/callback.*"))
    assert "grants none of the dashboard's roles" in page.inner_text("main")
    page.screenshot(path=str(ARTIFACTS / "oidc-no-role.png"))
    assert page.goto(f"{server.url}/inventory").url.startswith(f"{server.url}/signin")

    page.goto(f"{server.url}/signin")
    page.click("#oidc")  # a flow begins; the answer comes back with another state
    page.wait_for_url(re.compile(re.escape(idp.issuer) + ".*"))
    crossed = page.goto(f"{server.url}/signin/oidc/callback?code=stolen&state=forged")
    assert crossed is not None
    assert crossed.status == 401
    assert "does not carry this sign-in's `state`" in page.inner_text("main")

    idp.id_token_changes = {"nonce": "another-sign-in"}  # a token replayed from elsewhere
    try:
        page = through_the_issuer(browser, server, idp, "alice")
        page.wait_for_url(re.compile(".*/signin/oidc/callback.*"))
        assert "`nonce` is not this sign-in's" in page.inner_text("main")
    finally:
        idp.id_token_changes = {}
    page.context.close()
