"""Dashboard sign-in against a real ``tether serve`` (HTTP, and HTTPS for the cookie
prefix): failed sign-ins audited and throttled, each role sent to a page it may see,
identity ids URL-encoded in links, sessions that outlive the replica that opened them.

Servers of their own, on PostgreSQL: the throttle holds back 127.0.0.1 once the limit is
reached, which would refuse the browser tests' sign-ins on a shared server; a second
replica on the same store takes over the sessions of the first.
"""

from __future__ import annotations

import re
import ssl
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from caller_support import issue, make_ca
from tether.store.engine import open_engine
from tether.store.tables import audit_log, identities
from tether.web.throttle import MAX_FAILURES

pytestmark = pytest.mark.slow

ServerFactory = Any
ODD_ID = "odd id#1?x=y&z"


def sign_in_form(client: httpx.Client) -> str:
    page = client.get("/signin")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def sign_in(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/signin", data={"token": token, "csrf": sign_in_form(client)})


@pytest.fixture(scope="module")
def server(module_server_factory: ServerFactory, module_postgres_url: str) -> Any:
    started = module_server_factory(db_url=module_postgres_url)
    engine = open_engine(module_postgres_url)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(identities).values(
                id=ODD_ID,
                kind="agent",
                owner="team-odd",
                attributes={},
                status="active",
                origin="discovered",
                created_at=now,
                updated_at=now,
            )
        )
    engine.dispose()
    return started


def test_each_role_lands_on_a_page_it_may_see_and_ids_are_url_encoded(server: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as approver:
        landed = sign_in(approver, server.credentials["approver"])
        assert landed.status_code == 303
        assert landed.headers["location"] == "/approvals"
        assert approver.get("/approvals").status_code == 200
        home = approver.get("/")
        assert home.headers["location"] == "/approvals"
        assert 'href="/inventory"' not in approver.get("/approvals").text  # not its page
    with httpx.Client(base_url=server.url, timeout=10) as admin:
        assert sign_in(admin, server.credentials["admin"]).headers["location"] == "/inventory"
        listed = admin.get("/inventory", params={"owner": "team-odd"}).text
        encoded = "/identities/odd%20id%231%3Fx%3Dy%26z"
        assert f'href="{encoded}"' in listed
        page = admin.get(encoded)
        assert page.status_code == 200
        assert "team-odd" in page.text
        assert 'href="/paths?identity=odd%20id%231%3Fx%3Dy%26z"' in page.text


def test_failed_signins_are_audited_then_throttled(server: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as guesser:
        for attempt in range(MAX_FAILURES):
            refused = sign_in(guesser, f"not-a-token-{attempt}")
            assert refused.status_code == 401, refused.text
            assert "not signed in" in refused.text
        throttled = sign_in(guesser, server.credentials["admin"])  # even a good token waits
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) > 0
        assert "too many failed sign-ins" in throttled.text
        assert "tether_session" not in throttled.headers.get("set-cookie", "")
    engine = open_engine(server.db_url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(audit_log.c.actor, audit_log.c.details).where(
                audit_log.c.action == "dashboard.signin_failed"
            )
        ).all()
    engine.dispose()
    assert len(rows) == MAX_FAILURES
    assert {actor for actor, _ in rows} == {"anonymous"}
    assert all(d["address"] == "127.0.0.1" and d["error_code"] for _, d in rows)
    assert "throttled_for_s" in rows[-1][1]
    assert not any("not-a-token" in str(d) for _, d in rows)  # never the credential


def test_a_session_opened_over_tls_on_one_replica_outlives_it_on_another(
    module_server_factory: ServerFactory, server: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A replica over TLS of the module's server (same store; the module's server's throttle
    now holds 127.0.0.1 back from signing in) opens the session, with ``__Host-`` cookies;
    it stops, and the module's server carries on with the session, then signs it out."""
    folder = tmp_path_factory.mktemp("tls")
    ca = make_ca("spiffe://example.org")
    ca.write(folder, "ca")
    cert, key = issue(ca, server_ip="127.0.0.1").write(folder, "server")
    context = ssl.create_default_context(cafile=str(folder / "ca.pem"))
    replica = module_server_factory(
        db_url=server.db_url,
        extra=["--tls-cert", str(cert), "--tls-key", str(key)],
        https=context,
    )
    with httpx.Client(base_url=replica.url, timeout=10, verify=context) as client:
        form = client.get("/signin")
        assert form.headers["set-cookie"].startswith("__Host-tether_signin=")
        signed = sign_in(client, replica.credentials["auditor"])
        assert signed.status_code == 303
        cookies = signed.headers.get_list("set-cookie")
        cookie = next(c for c in cookies if c.startswith("__Host-tether_session="))
        for attribute in ("Secure", "HttpOnly", "Path=/", "SameSite=strict"):
            assert attribute in cookie
        assert "Domain" not in cookie
        assert client.get("/inventory").status_code == 200
        session_id = client.cookies["__Host-tether_session"]
    replica.stop()  # its memory is gone; the session is in the store
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        browser.cookies.set("tether_session", session_id)
        page = browser.get("/inventory")
        assert page.status_code == 200
        assert f"test-auditor-{replica.url.rsplit(':', 1)[1]}" in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        assert browser.post("/signout", data={"csrf": csrf.group(1)}).status_code == 303
        browser.cookies.set("tether_session", session_id)
        assert browser.get("/inventory").status_code == 303  # signed out everywhere
