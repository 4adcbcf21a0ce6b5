"""Catalog import rows on SQLite and PostgreSQL: two importers never hold one import, a lease
that ran out (or a claimant of this host that is gone) lets another take over, and the one taken
over can no longer record progress or an outcome."""

from __future__ import annotations

import socket
import subprocess
from datetime import timedelta

from ledger import imports
from ledger.clock import FixedClock
from ledger.db import Ledger
from ledger.holders import add_holder
from ledger.models import CatalogImport

LEASE = timedelta(minutes=10)


def _queue(ledger: Ledger, count: int) -> list[int]:
    with ledger.write() as session:
        holder = add_holder(session, ledger.clock, name="Acme", email="legal@acme.example",
                            actor="test")
        return [imports.queue_import(session, ledger.clock, holder_id=holder.id,
                                     actor="user:alice", directory=f"upload-{n}",
                                     files=[(f"{n}.flac", f"0/{n}.flac")],
                                     fields={"artist": "A"}).id for n in range(count)]


def _claim(ledger: Ledger, worker: str) -> int | None:
    with ledger.write() as session:
        row = imports.claim_import(session, ledger.clock, worker=worker, lease=LEASE)
        return None if row is None else row.id


def test_each_import_has_one_importer_and_ends_once(ledger: Ledger) -> None:
    first, second = _queue(ledger, 2)
    assert _claim(ledger, "a:1") == first
    assert _claim(ledger, "b:1") == second  # the first is held
    assert _claim(ledger, "c:1") is None
    with ledger.write() as session:
        assert imports.advance(session, ledger.clock, first, worker="a:1", lease=LEASE,
                               files_done=1, current_file=None)
        assert not imports.advance(session, ledger.clock, first, worker="b:1", lease=LEASE,
                                   files_done=1, current_file=None)
        assert imports.finish(session, ledger.clock, first, worker="a:1", items=[])
        assert not imports.finish(session, ledger.clock, first, worker="a:1", items=[])
        assert imports.directories_in_use(session) == {"upload-1"}
    with ledger.read() as session:
        row = session.get_one(CatalogImport, first)
        assert (row.status, row.files_done, row.attempts) == ("done", 1, 1)
        assert row.lease_until is None and row.finished_at == ledger.clock.now()


def test_a_lease_that_ran_out_is_taken_over(ledger: Ledger, clock: FixedClock) -> None:
    [only] = _queue(ledger, 1)
    assert _claim(ledger, "a:1") == only
    clock.advance(LEASE - timedelta(seconds=1))
    assert _claim(ledger, "b:1") is None
    clock.advance(timedelta(seconds=2))
    assert _claim(ledger, "b:1") == only
    with ledger.write() as session:  # the first importer, back, finds it is no longer its
        assert not imports.finish(session, ledger.clock, only, worker="a:1", error="late")
        assert imports.finish(session, ledger.clock, only, worker="b:1", error="not audio")
    with ledger.read() as session:
        row = session.get_one(CatalogImport, only)
        assert (row.status, row.error, row.attempts) == ("failed", "not audio", 2)


def test_a_dead_claimant_of_this_host_is_taken_over_at_once(ledger: Ledger) -> None:
    [only] = _queue(ledger, 1)
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = f"{socket.gethostname()}:{gone.pid}"
    assert _claim(ledger, dead) == only
    assert _claim(ledger, "b:1") == only  # though its lease has not run out
