"""The whole store schema: the core tables plus every feature area's tables.

Import ``metadata`` from here (not from ``tables``) when you need all of it, e.g. in
migrations and schema tests. Each feature area keeps its tables in its own module and
its migrations on its own Alembic branch from ``0001``.
"""

from tether.store import approval_tables as approval_tables
from tether.store import bus_tables as bus_tables
from tether.store import caller_tables as caller_tables
from tether.store import dashboard_tables as dashboard_tables
from tether.store import drift_tables as drift_tables
from tether.store import key_tables as key_tables
from tether.store import lifecycle_tables as lifecycle_tables
from tether.store import rate_tables as rate_tables
from tether.store import review_tables as review_tables
from tether.store import signal_tables as signal_tables
from tether.store import telemetry_tables as telemetry_tables
from tether.store import token_tables as token_tables
from tether.store.tables import metadata

__all__ = ["metadata"]
