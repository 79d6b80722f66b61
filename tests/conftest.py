"""Shared fixtures: store backends (SQLite and a real PostgreSQL) and a real tether server.

PostgreSQL is required: the URL comes from ``TETHER_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``). If it cannot be reached the
PostgreSQL-parametrised tests FAIL with the reason; they are only left out when
``TETHER_TEST_POSTGRES=off`` is set, and then the run says so loudly at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tether.callers import Role, add_api_key, admin_token
from tether.store import migrate
from tether.store.engine import open_engine
from tether.tokens import KeyRing, load_or_create_master_key

ROOT = Path(__file__).resolve().parent.parent
# A verbatim copy of ../shared/data (external material; see its README for sources and
# licences), so the suite runs from any checkout.
SHARED_DATA = Path(os.environ.get("TETHER_SHARED_DATA", ROOT / "tests" / "data" / "shared"))
EXAMPLES = ROOT / "examples"
POSTGRES_ADMIN_URL = os.environ.get(
    "TETHER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
POSTGRES_OFF = os.environ.get("TETHER_TEST_POSTGRES", "").lower() == "off"
BACKENDS = ["sqlite"] if POSTGRES_OFF else ["sqlite", "postgresql"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    shown = [
        (report.nodeid, text)
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "when", None) == "call"
        for name, text in getattr(report, "user_properties", ())
        if name == "figure"
    ]
    if shown:
        terminalreporter.section("measured figures")
        for nodeid, text in shown:
            terminalreporter.write_line(f"{text}    ({nodeid.split('::')[-1]})")
    if POSTGRES_OFF:
        terminalreporter.write_line(
            "WARNING: TETHER_TEST_POSTGRES=off: the PostgreSQL backend was NOT tested", red=True
        )


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Show a figure a test measured in the run's summary ("measured figures"), also when
    the test ran on an xdist worker (whose own output is not shown)."""

    def show(text: str) -> None:
        request.node.user_properties.append(("figure", text.strip()))

    return show


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Create a throw-away database on the real server; yield its SQLAlchemy URL."""
    import psycopg

    name = f"tether_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is required at {POSTGRES_ADMIN_URL} ({exc}); "
            "start it or set TETHER_TEST_POSTGRES=off to test SQLite only",
            pytrace=False,
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield _psycopg_url(f"{base}/{name}")
    _drop_in_the_background(name)


def _drop_in_the_background(name: str) -> None:
    """Drop a test database without holding the session's end for it: DROP DATABASE
    waits for a checkpoint, which a busy disk can stretch past the test timeout. The
    server finishes the drop even once this process is gone."""
    import psycopg

    def drop() -> None:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    dropping = threading.Thread(target=drop, name=f"drop-{name}", daemon=True)
    dropping.start()
    dropping.join(timeout=30)


@dataclass
class DoomedDatabase:
    """A throw-away PostgreSQL database a test drops under whatever uses it."""

    url: str
    name: str

    def drop(self) -> None:
        """End every session on it and drop it: the store is gone, as in an outage."""
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [self.name],
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture
def doomed_database() -> Iterator[DoomedDatabase]:
    """A database of its own on the real PostgreSQL server, for a test to ``drop()``."""
    import psycopg

    if POSTGRES_OFF:
        pytest.skip("TETHER_TEST_POSTGRES=off: a dropped PostgreSQL database is not tested")
    name = f"tether_doomed_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {POSTGRES_ADMIN_URL} ({exc})", pytrace=False)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    doomed = DoomedDatabase(_psycopg_url(f"{base}/{name}"), name)
    yield doomed
    doomed.drop()


def _fresh_schema_url(postgres_url: str) -> str:
    """A fresh PostgreSQL schema per test, so tests never see each other's rows."""
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return f"{postgres_url}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for an empty store, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/tether.db"
    postgres_url: str = request.getfixturevalue("postgres_server")
    return _fresh_schema_url(postgres_url)


@pytest.fixture
def store(db_url: str) -> Iterator[Engine]:
    """A migrated store on each backend."""
    engine = open_engine(db_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The callers every test server gets (see `provision_callers`): name of the credential ->
# what it is. `client(as_=...)` picks one.
TEST_CALLERS = ("pep", "ingest", "admin", "auditor", "approver")


def provision_callers(db_url: str, folder: Path, suffix: str) -> dict[str, str]:
    """Real credentials for a server whose working folder is ``folder``: a PEP API key
    and an ingest-only API key (as ``tether pep add`` makes them) and admin tokens of an
    admin, an auditor and an approver (as ``tether admin token`` issues them), all in the
    store at ``db_url``.

    Admin tokens are signed with the key ring sealed by ``folder/.tether/master.key``,
    the master key the server started in ``folder`` uses. Returns credential by name.
    """
    engine = open_engine(db_url)
    try:
        migrate.upgrade(engine)
        keys = KeyRing(engine, load_or_create_master_key(folder / ".tether" / "master.key"))
        credentials = {"pep": add_api_key(engine, f"test-pep-{suffix}", actor="tests").key}
        credentials["ingest"] = add_api_key(
            engine, f"test-ingest-{suffix}", roles=(Role.INGEST,), actor="tests"
        ).key
        for role in (Role.ADMIN, Role.AUDITOR, Role.APPROVER):
            issued = admin_token(
                engine,
                keys,
                f"test-{role.value}-{suffix}",
                issuer="tests",
                roles=[role],
                ttl_s=6 * 3600,
                actor="tests",
            )
            credentials[role.value] = issued.token
    finally:
        engine.dispose()
    return credentials


@dataclass
class ServerProcess:
    """A real ``tether serve`` in a subprocess, with real credentials for its callers."""

    url: str
    db_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    credentials: dict[str, str] = field(default_factory=dict)

    def client(self, as_: str | None = "pep", *, raw: bool = False) -> httpx.Client:
        """An HTTP client calling as ``as_`` (a name of ``TEST_CALLERS``; ``None``: nobody).

        ``raw`` sends the credential without ``Bearer`` (as the AuthZEN harness does).
        """
        headers = {}
        if as_ is not None:
            credential = self.credentials[as_]
            headers["Authorization"] = credential if raw else f"Bearer {credential}"
        return httpx.Client(base_url=self.url, timeout=10, headers=headers)

    def auth_header(self, as_: str = "pep") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials[as_]}"}

    def stop(self, sig: int | None = None) -> int:
        if self.process.poll() is None:
            if sig is None:
                self.process.terminate()
            else:
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def tether_cli() -> list[str]:
    exe = shutil.which("tether", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "tether.cli"]


def start_server(
    tmp_path: Path,
    *,
    db_url: str,
    estate: Path | None = None,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
    https: ssl.SSLContext | None = None,
) -> ServerProcess:
    """Start ``tether serve``; ``env`` adds to (or overrides) the inherited environment.

    With ``https`` (the client's TLS context) the server is reached over TLS: pass its
    ``--tls-cert``/``--tls-key`` in ``extra``.
    """
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    credentials = provision_callers(db_url, tmp_path, str(port))
    command = [*tether_cli(), "serve", "--port", str(port), "--db", db_url]
    if estate is not None:
        command += ["--estate", str(estate)]
    command += extra or []
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env={**os.environ, **env} if env else None,
        )
    scheme = "https" if https else "http"
    server = ServerProcess(f"{scheme}://127.0.0.1:{port}", db_url, process, log_path, credentials)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tether serve exited with {process.returncode}:\n{server.log()}")
        try:
            health = httpx.get(f"{server.url}/healthz", timeout=1, verify=https or True)
            if health.status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"tether serve did not become healthy:\n{server.log()}")


ServerFactory = Callable[..., ServerProcess]


def _server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    started: list[ServerProcess] = []

    def start(
        *,
        db_url: str,
        estate: Path | None = None,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
        https: ssl.SSLContext | None = None,
    ) -> ServerProcess:
        server = start_server(
            tmp_path, db_url=db_url, estate=estate, extra=extra, env=env, https=https
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start real servers (``start(db_url=..., estate=..., env=...)``); all stopped afterwards."""
    yield from _server_factory(tmp_path)


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Like ``server_factory``, but the servers live for the whole test module."""
    yield from _server_factory(tmp_path_factory.mktemp("servers"))


@pytest.fixture(scope="module", params=BACKENDS)
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Like ``db_url`` (an empty store per backend), shared by a whole test module."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('store')}/tether.db"
    postgres_url: str = request.getfixturevalue("postgres_server")
    return _fresh_schema_url(postgres_url)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """An empty store on the real PostgreSQL (never SQLite), for one test."""
    return _fresh_schema_url(postgres_server)


@pytest.fixture(scope="module")
def module_postgres_url(postgres_server: str) -> str:
    """An empty store on the real PostgreSQL (never SQLite), shared by a whole test module."""
    return _fresh_schema_url(postgres_server)
