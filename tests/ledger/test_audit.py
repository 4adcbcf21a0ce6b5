"""The hash-chained audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger import audit
from ledger.clock import FixedClock
from ledger.db import Ledger


def _append_many(ledger: Ledger, count: int, actor: str = "tester") -> None:
    for n in range(count):
        with ledger.write() as session:
            audit.append(session, ledger.clock, actor=actor, action="thing.changed",
                         entity_type="thing", entity_id=n, details={"n": n, "note": "café ✓"})


def _tamper(ledger: Ledger, statement: str) -> None:
    """Change the log behind the application's back, as an attacker with database access could:
    the append-only triggers have to be taken away first."""
    with ledger.engine.begin() as conn:
        if ledger.engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
            conn.execute(text(statement))
        else:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"))
            conn.execute(text(statement))
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change"))


def _verify(ledger: Ledger) -> audit.ChainReport:
    with ledger.read() as session:
        return audit.verify_chain(session)


def test_untouched_chain_verifies(ledger: Ledger, clock: FixedClock) -> None:
    _append_many(ledger, 5)
    clock.advance(timedelta(days=400))
    _append_many(ledger, 2)
    report = _verify(ledger)
    assert report.ok, report.problems
    assert report.checked == 7


def test_empty_chain_verifies(ledger: Ledger) -> None:
    assert _verify(ledger).ok


def test_edited_entry_is_detected_and_named(ledger: Ledger) -> None:
    _append_many(ledger, 6)
    _tamper(ledger, "UPDATE audit_log SET details = '{}' WHERE seq = 3")
    report = _verify(ledger)
    assert not report.ok
    assert any("entry 3" in p and "edited" in p for p in report.problems), report.problems


def test_edited_actor_is_detected(ledger: Ledger) -> None:
    _append_many(ledger, 3)
    _tamper(ledger, "UPDATE audit_log SET actor = 'someone else' WHERE seq = 1")
    assert any("entry 1" in p for p in _verify(ledger).problems)


def test_deleted_entry_in_the_middle_is_detected(ledger: Ledger) -> None:
    _append_many(ledger, 6)
    _tamper(ledger, "DELETE FROM audit_log WHERE seq = 4")
    problems = _verify(ledger).problems
    assert any("entry 4 missing" in p for p in problems), problems


def test_deleted_last_entry_is_detected(ledger: Ledger) -> None:
    _append_many(ledger, 4)
    _tamper(ledger, "DELETE FROM audit_log WHERE seq = 4")
    problems = _verify(ledger).problems
    assert any("ends at entry 3" in p for p in problems), problems


def test_log_refuses_update_and_delete(ledger: Ledger) -> None:
    _append_many(ledger, 2)
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), ledger.write() as session:
            session.execute(text(statement))
    assert _verify(ledger).checked == 2


def test_rolled_back_change_leaves_no_entry(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError), ledger.write() as session:
        audit.append(session, ledger.clock, actor="t", action="a", entity_type="e")
        raise RuntimeError("the change failed")
    _append_many(ledger, 1)
    report = _verify(ledger)
    assert report.ok and report.checked == 1


def test_concurrent_writers_keep_one_unbroken_chain(ledger: Ledger) -> None:
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            _append_many(ledger, 25, actor=name)
        except BaseException as exc:  # collected and re-raised by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    report = _verify(ledger)
    assert report.ok, report.problems
    assert report.checked == 100
