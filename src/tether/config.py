"""Settings: read once at start-up, passed down; domain code never reads the environment.

Precedence: explicit arguments > ``TETHER_*`` environment variables > defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from tether.errors import InvalidRequest

DEFAULT_DB_URL = "sqlite:///.tether/tether.db"


@dataclass(frozen=True)
class Settings:
    """Everything tether can be configured with."""

    database_url: str = DEFAULT_DB_URL
    host: str = "127.0.0.1"
    port: int = 8080
    # How long a decision event may wait in memory before it is committed. A crash
    # (SIGKILL, power loss of the process) loses at most this window of decisions.
    flush_interval_ms: int = 50
    max_body_bytes: int = 1_000_000
    # How often a server checks the store for a new estate revision (hot reload).
    reload_interval_ms: int = 500
    # tether's public base URL (PDP identifier, token issuer); derived from host/port if unset.
    issuer: str = ""
    audience: str = "tether"
    search_page_size: int = 100
    # Encrypts signing keys at rest: a 0600 file (created on first use) or inline base64.
    master_key_file: str = ".tether/master.key"
    master_key: str = ""
    # Requests per second each caller may make, and how many it may make at once above that.
    # Generous on purpose: a PEP in front of a busy gateway is one caller.
    rate_limit_per_s: int = 50_000
    rate_limit_burst: int = 100_000
    # Bytes of request line plus headers; more is answered 431 before the app reads it.
    max_header_bytes: int = 32_768
    # Connections and requests served at once before the server answers 503.
    max_concurrency: int = 4096
    # Open connections at most, in all and from one client address: one more is answered
    # 503 and closed at once (the process's descriptor limit caps the first). A client that
    # holds connections open cannot take the server's descriptors or other callers' turns.
    max_connections: int = 4096
    max_connections_per_address: int = 256
    # Seconds a client has to send a request's line and headers (from connecting, or from
    # its first byte on a kept-alive connection) and then its body; past either: closed
    # (408 for headers). Seconds an idle kept-alive connection stays open.
    header_timeout_s: int = 10
    body_timeout_s: int = 30
    keep_alive_s: int = 5
    # The CA bundle (PEM) client certificates are verified against (mTLS); none: no mTLS.
    client_ca_file: str = ""
    # How long an approval (outcome `approval_required`) may wait for a human and its
    # retry; past it, it is expired: denied by default.
    approval_ttl_s: int = 900
    # Where decision rows are committed and drift detection runs: `thread` (threads of
    # this process) or `process` (a worker process beside the server, tether.worker;
    # `tether serve`'s default: the event loop keeps its CPU for answering).
    background_work: str = "thread"
    # While decisions cannot be recorded (the decision store unreachable, rows lost),
    # deny every evaluation with `decisions_unrecorded` rather than decide unrecorded.
    fail_closed_unrecorded: bool = True

    # --- bounds checked at the HTTP edge before any work; over one: 400 or 413 naming it ---
    # Deepest nesting of an AuthZEN request's `context` and of each `properties` object
    # (the object itself is level 1): deeper is a 400 `context_too_deep`/`properties_too_deep`.
    max_json_depth: int = 32
    # Most JSON values (each object, array, string, number, boolean and null counts once)
    # in `context` and in each `properties` object: more is a 413 `context_too_large`/
    # `properties_too_large`.
    max_json_values: int = 10_000
    # Items of one `/access/v1/evaluations` request: more is a 413 `too_many_evaluations`.
    max_evaluations: int = 1_000
    # Results of one search page at most, whatever its `page.limit` asks (AuthZEN lets a
    # PDP return fewer): the rest follow with `next_token`.
    search_max_page_size: int = 1_000

    # --- the event bus (tether.bus): NATS JetStream, off unless `events_url` is set ---
    # `nats://HOST:PORT`: `serve` publishes decisions and ingested events to the stream and
    # leaves drift detection to `tether worker`s; empty: detection runs beside the server.
    events_url: str = ""
    events_stream: str = "TETHER_EVENTS"
    # Subjects are `<events_subject>.<partition>`; an identity's events all go to one.
    events_subject: str = "tether.events"
    events_partitions: int = 16

    # --- people signing in to the dashboard through an OIDC issuer (tether.web.oidc) ---
    # Off unless `oidc_issuer` is set. The client is registered at the issuer with the
    # redirect URI `<public_url>/signin/oidc/callback`; without a secret it is a public
    # client (PKCE alone). `oidc_roles` maps values of the `oidc_role_claim` claim to
    # dashboard roles: `sec-team=admin,audit=auditor,approvers=approver`. Its roles are
    # fixed at sign-in, so an OIDC session lasts `oidc_session_s` (at most 8 h): then the
    # person signs in again and the issuer's current claims count.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_role_claim: str = "groups"
    oidc_roles: str = ""
    oidc_scopes: str = "openid profile email"
    oidc_session_s: int = 3600

    @property
    def public_url(self) -> str:
        return (self.issuer or f"http://{self.host}:{self.port}").rstrip("/")

    def with_overrides(self, **overrides: Any) -> Settings:
        """Return a copy with every non-``None`` override applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def database_url_from(value: str) -> str:
    """Accept a SQLAlchemy URL or a plain path (which means SQLite)."""
    if "://" in value:
        if value.startswith("postgresql://"):
            return "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value
    return f"sqlite:///{Path(value)}"


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from ``TETHER_*`` variables, then apply explicit overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = env.get(f"TETHER_{f.name.upper()}")
        if raw is None:
            continue
        if f.type in ("bool", bool):
            values[f.name] = parse_bool(f"TETHER_{f.name.upper()}", raw)
        elif f.type in ("int", int):
            try:
                values[f.name] = int(raw)
            except ValueError:
                raise InvalidRequest(
                    f"environment variable `TETHER_{f.name.upper()}` must be an integer, "
                    f"got `{raw}`"
                ) from None
        else:
            values[f.name] = raw
    settings = Settings(**values).with_overrides(**overrides)
    for name, (low, high) in _RANGES.items():
        value = getattr(settings, name)
        if not low <= value <= high:
            raise InvalidRequest(
                f"setting `{name}` (`TETHER_{name.upper()}`) must be from {low} to {high}, "
                f"got `{value}`"
            )
    if settings.background_work not in BACKGROUND_WORK:
        raise InvalidRequest(
            "setting `background_work` (`TETHER_BACKGROUND_WORK`) must be "
            f"{' or '.join(BACKGROUND_WORK)}, got `{settings.background_work}`"
        )
    return replace(settings, database_url=database_url_from(settings.database_url))


BACKGROUND_WORK = ("thread", "process")
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def parse_bool(name: str, raw: str) -> bool:
    """``true``/``false`` (or ``1``/``0``, ``yes``/``no``, any case) as a boolean."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidRequest(
        f"environment variable `{name}` must be true or false (or 1/0, yes/no), got `{raw}`"
    )


# Bounds that keep a typo from becoming a busy loop or a server that refuses every body.
_RANGES = {
    "port": (0, 65535),
    "flush_interval_ms": (0, 60_000),
    "max_body_bytes": (1, 2**31),
    "reload_interval_ms": (10, 3_600_000),
    "search_page_size": (1, 100_000),
    "rate_limit_per_s": (1, 1_000_000_000),
    "rate_limit_burst": (1, 1_000_000_000),
    "max_header_bytes": (1024, 1_048_576),
    "max_concurrency": (1, 1_000_000),
    "max_connections": (1, 1_000_000),
    "max_connections_per_address": (1, 1_000_000),
    "header_timeout_s": (1, 3600),
    "body_timeout_s": (1, 3600),
    "keep_alive_s": (1, 3600),
    "approval_ttl_s": (1, 30 * 86400),
    # Under what a decision row and its Cedar context can be encoded (orjson: 254 levels).
    "max_json_depth": (1, 128),
    "max_json_values": (1, 10_000_000),
    "max_evaluations": (1, 1_000_000),
    "search_max_page_size": (1, 100_000),
    "events_partitions": (1, 1024),
}
