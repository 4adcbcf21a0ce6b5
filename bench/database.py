"""The PostgreSQL side of ``make bench-workers`` (bench.workers): a scratch database made and
dropped, the CPU time of the backends serving it (from ``/proc``: the server runs on this
machine) and its ``pg_stat_database`` counters. Reads no settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import make_url

from bench import procs


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as psycopg takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def scratch_database(server_url: str) -> Iterator[tuple[str, str]]:
    """(SQLAlchemy URL, name) of a new database on the server of ``server_url``; dropped at
    the end, its connections with it."""
    name = f"bench_workers_{os.getpid()}"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False), name
    finally:
        with psycopg.connect(libpq_url(server_url), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Backends:
    """CPU time of the PostgreSQL backends serving one database, from ``/proc`` (the server
    runs on this machine). A backend's time is counted from when it is first seen in a window,
    and one that ends between two looks loses at most a look's worth."""

    def __init__(self, database: str, exclude: set[int]) -> None:
        self.marker = f" {database} "
        self.exclude = exclude
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._others: set[int] = set()  # processes that are no backend of the database

    def look(self, *, first: bool = False) -> None:
        for found in procs.all_stats():
            if found.pid in self.exclude or found.pid in self._others:
                continue
            if found.pid not in self._last:
                line = procs.command_line(found.pid)
                if not line.startswith("postgres:") or self.marker not in line:
                    self._others.add(found.pid)
                    continue
                self._start[found.pid] = found.cpu_seconds if first else 0.0
            self._last[found.pid] = found.cpu_seconds

    def cpu_seconds(self) -> float:
        return sum(self._last[pid] - self._start[pid] for pid in self._last)


@dataclass(frozen=True)
class DatabaseCounters:
    commits: int
    active_ms: float


def database_counters(server_url: str, database: str) -> DatabaseCounters:
    """The database's counters, read through another database (reading them is no
    transaction of its own)."""
    with psycopg.connect(libpq_url(server_url), autocommit=True) as connection:
        row = connection.execute(
            "SELECT xact_commit, active_time FROM pg_stat_database WHERE datname = %s",
            (database,)).fetchone()
    assert row is not None
    return DatabaseCounters(int(row[0]), float(row[1] or 0.0))


def server_description(url: str) -> str:
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        version = connection.execute("SHOW server_version").fetchone()
        buffers = connection.execute("SHOW shared_buffers").fetchone()
    return f"PostgreSQL {version[0] if version else '?'} (shared_buffers " \
           f"{buffers[0] if buffers else '?'})"
