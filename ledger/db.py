"""Engines, transactions and automatic migrations for SQLite (embedded) and PostgreSQL.

SQLite runs in WAL mode with ``foreign_keys=ON`` and ``synchronous=NORMAL``; write transactions
start with ``BEGIN IMMEDIATE`` so a reader never has to upgrade to a writer mid-transaction (which
fails with "database is locked" whatever the busy timeout). Migrations are applied on first use,
under an advisory lock on PostgreSQL so concurrent first starts do not race.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from ledger.clock import Clock, SystemClock

_MIGRATIONS = Path(__file__).with_name("migrations")
_BEGIN_OPTION = "copyguard_sqlite_begin"


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so our BEGIN statement is the one used.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def create_ledger_engine(url: str, *, busy_timeout_ms: int = 30_000) -> Engine:
    """An engine for ``url``; for SQLite the database's folder is created if needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is already there)."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(872345001)")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@dataclass
class Ledger:
    """The opened ledger: an engine on a migrated schema, and the transactions to work in it."""

    engine: Engine
    clock: Clock

    def __post_init__(self) -> None:
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        write_engine = (self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
                        if self.engine.dialect.name == "sqlite" else self.engine)
        self._write = sessionmaker(write_engine, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on an error."""
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (rolled back at the end)."""
        with self._read() as session:
            yield session
            session.rollback()

    def close(self) -> None:
        self.engine.dispose()


def open_ledger(url: str, *, clock: Clock | None = None, busy_timeout_ms: int = 30_000) -> Ledger:
    """Connect to ``url``, apply pending migrations and return the ledger."""
    engine = create_ledger_engine(url, busy_timeout_ms=busy_timeout_ms)
    migrate(engine)
    return Ledger(engine=engine, clock=clock or SystemClock())
