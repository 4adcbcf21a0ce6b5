"""Opening the ledger: migrations, SQLite settings, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from ledger.clock import FixedClock
from ledger.db import Ledger, open_ledger
from ledger.errors import ConflictError, LedgerError, NotFoundError
from ledger.holders import add_holder, get_holder, list_holders
from ledger.models import Base, RightsHolder


def test_migrations_match_the_models(ledger: Ledger) -> None:
    with ledger.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_opening_again_applies_nothing_and_keeps_data(database_url: str, clock: FixedClock) -> None:
    first = open_ledger(database_url, clock=clock)
    with first.write() as session:
        add_holder(session, clock, name="Acme", email="legal@acme.example", actor="t")
    first.close()
    again = open_ledger(database_url, clock=clock)
    with again.read() as session:
        assert [h.name for h in list_holders(session)] == ["Acme"]
    again.close()


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path, clock: FixedClock) -> None:
    led = open_ledger(f"sqlite:///{tmp_path}/deep/er/ledger.db", clock=clock)
    with led.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    led.close()


def test_timestamps_come_back_as_utc(ledger: Ledger) -> None:
    clock = FixedClock(datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=5))))
    with ledger.write() as session:
        holder = add_holder(session, clock, name="Zone", email="z@z.example", actor="t")
    with ledger.read() as session:
        stored = session.get(RightsHolder, holder.id)
        assert stored is not None
        assert stored.created_at == datetime(2026, 3, 28, 20, 30, tzinfo=UTC)
        assert stored.created_at.tzinfo is not None


def test_naive_timestamps_are_refused(ledger: Ledger) -> None:
    with pytest.raises(Exception, match="timezone-aware"), ledger.write() as session:
        session.add(RightsHolder(name="N", email="n@n.example", created_at=datetime(2026, 1, 1)))
        session.flush()


def test_holder_names_are_unique_and_emails_checked(ledger: Ledger, clock: FixedClock) -> None:
    with ledger.write() as session:
        add_holder(session, clock, name="Acme", email="a@acme.example", actor="t")
    with pytest.raises(ConflictError, match="already exists"), ledger.write() as session:
        add_holder(session, clock, name="Acme", email="b@acme.example", actor="t")
    with pytest.raises(LedgerError, match="not an e-mail"), ledger.write() as session:
        add_holder(session, clock, name="Other", email="nobody", actor="t")
    with ledger.read() as session, pytest.raises(NotFoundError, match="holders list"):
        get_holder(session, "Missing")
