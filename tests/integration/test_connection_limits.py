"""Connections cannot cost other callers: caps and read timeouts of a real ``tether serve``.

Unauthenticated clients open connections and never finish a request (idle, a partial
request line and headers, a body that never ends); the server closes them in bounded time
and holds a bounded number, so ``/healthz`` and evaluations keep answering and the store
keeps working. The 20,000 hostile connections come from 127.0.0.2 (loopback answers on
all of 127/8), the honest callers from 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

ServerFactory = Callable[..., Any]
ServerProcess = Any
pytestmark = pytest.mark.slow

HEADER_TIMEOUT_S = 1
BODY_TIMEOUT_S = 2
KEEP_ALIVE_S = 1
PER_ADDRESS = 300
HOSTILE_ADDRESS = "127.0.0.2"
EVALUATION = {
    "subject": {"type": "user", "id": "alice"},
    "action": {"name": "read"},
    "resource": {"type": "doc", "id": "d1"},
}


@pytest.fixture(scope="module")
def server(
    module_server_factory: ServerFactory,
    estate_writer: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> ServerProcess:
    folder = tmp_path_factory.mktemp("connections")
    return module_server_factory(
        db_url=f"sqlite:///{folder}/tether.db",
        estate=estate_writer(folder / "estate"),
        env={
            "TETHER_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
            "TETHER_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
            "TETHER_KEEP_ALIVE_S": str(KEEP_ALIVE_S),
            "TETHER_MAX_CONNECTIONS_PER_ADDRESS": str(PER_ADDRESS),
        },
    )


def _port(server: ServerProcess) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _connect(server: ServerProcess, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(
        ("127.0.0.1", _port(server)), timeout=10, source_address=(source, 0)
    )
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> tuple[float, bytes]:
    """Read until the server closes; how long it took and what it sent."""
    sock.settimeout(seconds)
    started = time.monotonic()
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {seconds} s; sent {received!r}")
    except ConnectionResetError:
        pass
    return time.monotonic() - started, received


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    server: ServerProcess,
) -> None:
    with _connect(server) as sock:
        took, answer = _closed_within(sock, HEADER_TIMEOUT_S + 5)
    assert took >= HEADER_TIMEOUT_S - 0.2
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b'"error_code":"request_timeout"' in answer
    assert b"TETHER_HEADER_TIMEOUT_S" in answer


def test_a_request_line_sent_a_byte_at_a_time_is_cut_off_at_the_header_timeout(
    server: ServerProcess,
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    with _connect(server) as sock:
        started = time.monotonic()
        sent = 0
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.05)  # well within any idle timeout, but never finishing
        except (BrokenPipeError, ConnectionResetError):
            pass
        took = time.monotonic() - started
        _, answer = _closed_within(sock, 5)
    assert sent < len(request), "the slow client was allowed to send every byte"
    assert took < HEADER_TIMEOUT_S + 1.5
    assert answer.startswith(b"HTTP/1.1 408")


def test_a_body_that_never_ends_is_closed_after_the_body_timeout(server: ServerProcess) -> None:
    head = (
        "POST /access/v1/evaluation HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {server.credentials['pep']}\r\n"
        "Content-Type: application/json\r\ncontent-length: 500\r\n\r\n{"
    ).encode()
    with _connect(server) as sock:
        sock.sendall(head)
        took, answer = _closed_within(sock, BODY_TIMEOUT_S + 5)
    assert took >= BODY_TIMEOUT_S - 0.2
    assert b"200 OK" not in answer


def test_a_kept_alive_connection_is_closed_when_idle(server: ServerProcess) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        took, rest = _closed_within(sock, KEEP_ALIVE_S + 5)
    assert rest == b""
    assert took >= KEEP_ALIVE_S - 0.3


def test_connections_over_the_per_address_cap_get_503_at_once(server: ServerProcess) -> None:
    held = [_connect(server, HOSTILE_ADDRESS) for _ in range(PER_ADDRESS)]
    try:
        time.sleep(0.2)
        with _connect(server, HOSTILE_ADDRESS) as extra:
            took, answer = _closed_within(extra, 2)
        assert took < 1
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"TETHER_MAX_CONNECTIONS_PER_ADDRESS" in answer
        # Another address is not held up by it.
        assert httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
    finally:
        for sock in held:
            sock.close()


ATTACKER = textwrap.dedent(
    """
    import socket, sys, time
    port, source, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    held, failed = [], 0
    for _ in range(count):
        try:
            s = socket.socket()
            s.bind((source, 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            held.append(s)
        except OSError:
            failed += 1
    print(len(held), failed, flush=True)
    sys.stdin.read()  # hold every socket until told to stop
    """
)


@contextmanager
def attackers(server: ServerProcess, total: int, processes: int) -> Iterator[list[str]]:
    """``processes`` subprocesses (each its own descriptor table) holding ``total``
    connections from the hostile address; yields what each printed (held, failed)."""
    each = total // processes
    started = [
        subprocess.Popen(
            [sys.executable, "-c", ATTACKER, str(_port(server)), HOSTILE_ADDRESS, str(each)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        yield [process.stdout.readline().strip() for process in started if process.stdout]
    finally:
        for process in started:
            process.communicate(timeout=30)


def _descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_20000_idle_connections_leave_healthz_and_evaluations_answering(
    server: ServerProcess, figure: Callable[[str], None]
) -> None:
    before = _descriptors(server.process.pid)
    with attackers(server, 20_000, 4) as counts, server.client() as honest:
        opened = sum(int(line.split()[0]) for line in counts)
        held_by_server = _descriptors(server.process.pid)
        started = time.perf_counter()
        health = httpx.get(f"{server.url}/healthz", timeout=5)
        health_s = time.perf_counter() - started
        started = time.perf_counter()
        evaluation = honest.post("/access/v1/evaluation", json=EVALUATION)
        evaluation_s = time.perf_counter() - started
        ready = honest.get("/readyz", headers=server.auth_header("auditor"))
    figure(
        f"[connections] {opened:,} hostile connections opened from one address; server held "
        f"{held_by_server:,} descriptors ({before:,} before); /healthz {health_s * 1000:.0f} ms, "
        f"evaluation {evaluation_s * 1000:.0f} ms"
    )
    assert opened >= 15_000, counts  # the attack really happened
    assert held_by_server - before <= PER_ADDRESS + 50
    assert health.status_code == 200
    assert evaluation.status_code == 200, evaluation.text
    assert evaluation.json()["decision"] is True
    assert ready.status_code == 200, ready.text  # the store was opened and written
    assert "connection refused: over max_connections_per_address" in server.log()
