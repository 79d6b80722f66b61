"""Requests each replica admitted per caller and second, so rate limits hold across replicas.

``rate_usage`` has one row per (caller key, replica, second): how many requests that
replica admitted for the caller in that second. Every replica adds its own counts a few
times a second and reads the others' (:mod:`tether.callers.rate_share`); rows older than
90 s are deleted by any replica (``window_s`` is indexed: the exchanges read the last
seconds only).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table

from tether.store.tables import metadata

rate_usage = Table(
    "rate_usage",
    metadata,
    Column("caller_key", String(400), primary_key=True),
    Column("replica", String(40), primary_key=True),
    # The second (Unix time, whole) the requests were admitted in.
    Column("window_s", BigInteger, primary_key=True),
    Column("admitted", BigInteger, nullable=False),
)
Index("ix_rate_usage_window", rate_usage.c.window_s)
