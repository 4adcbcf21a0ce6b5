"""Catalog imports as rows: queued by the upload that received the files, claimed by one web
server's importer under a lease, advanced file by file, finished with the outcome per file.

The lease (renewed at every step) is what lets a second server, or the same one restarted, take
over an import whose server died; on the claimant's own host a dead process is recognised at
once (:mod:`ledger.claims`). Registering the recordings is audited by the catalog service itself;
these rows are the progress a browser watches and the history of uploads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ledger.claims import claimant_gone
from ledger.clock import Clock
from ledger.models import CatalogImport, CatalogImportStatus

Status = CatalogImportStatus


def queue_import(session: Session, clock: Clock, *, holder_id: int, actor: str,
                 directory: str, files: Sequence[tuple[str, str]],
                 fields: dict[str, Any]) -> CatalogImport:
    """A received upload waiting for the importer: ``files`` as (shown name, stored name)."""
    row = CatalogImport(holder_id=holder_id, actor=actor, status=Status.QUEUED,
                        directory=directory,
                        files=[{"name": name, "stored": stored} for name, stored in files],
                        fields=fields, files_done=0, attempts=0, created_at=clock.now())
    session.add(row)
    session.flush()
    return row


def _claimable(now: datetime) -> Any:
    return or_(CatalogImport.status == Status.QUEUED,
               (CatalogImport.status == Status.RUNNING) & (CatalogImport.lease_until < now))


def claim_import(session: Session, clock: Clock, *, worker: str,
                 lease: timedelta) -> CatalogImport | None:
    """The oldest import nobody works on (queued, or running under a lease that ran out or by
    a process of this host that is gone), now this worker's; None when there is none."""
    now = clock.now()
    running = session.scalars(select(CatalogImport).where(
        CatalogImport.status == Status.RUNNING, CatalogImport.lease_until >= now)).all()
    orphans = [row.id for row in running if claimant_gone(row.claimed_by)]
    query = select(CatalogImport).where(
        or_(_claimable(now), CatalogImport.id.in_(orphans))).order_by(CatalogImport.id).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = session.scalars(query).first()
    if row is None:
        return None
    row.status, row.claimed_by, row.lease_until = Status.RUNNING, worker, now + lease
    row.attempts += 1
    row.started_at = row.started_at or now
    session.flush()
    return row


def anything_to_claim(session: Session) -> bool:
    """Whether an import is queued or running (a running one may be a dead server's): a read,
    so an idle importer does not take the write lock to find nothing."""
    return session.scalar(select(CatalogImport.id).where(
        CatalogImport.status.in_((Status.QUEUED, Status.RUNNING))).limit(1)) is not None


def give_back(session: Session, import_id: int, *, worker: str) -> bool:
    """Queued again (its files stay), as a server that stops between files leaves it; False
    when it is no longer this worker's."""
    result = session.execute(
        update(CatalogImport)
        .where(CatalogImport.id == import_id, CatalogImport.claimed_by == worker,
               CatalogImport.status == Status.RUNNING)
        .values(status=Status.QUEUED, claimed_by=None, lease_until=None, current_file=None))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def advance(session: Session, clock: Clock, import_id: int, *, worker: str, lease: timedelta,
            files_done: int, current_file: str | None) -> bool:
    """Record progress and renew the lease; False when the import is no longer this worker's
    (another took it over: this one must stop)."""
    result = session.execute(
        update(CatalogImport)
        .where(CatalogImport.id == import_id, CatalogImport.claimed_by == worker,
               CatalogImport.status == Status.RUNNING)
        .values(files_done=files_done, current_file=current_file,
                lease_until=clock.now() + lease))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish(session: Session, clock: Clock, import_id: int, *, worker: str,
           items: list[dict[str, Any]] | None = None, error: str | None = None) -> bool:
    """Done with ``items`` (the outcome per file), or failed with ``error``; False when the
    import is no longer this worker's."""
    result = session.execute(
        update(CatalogImport)
        .where(CatalogImport.id == import_id, CatalogImport.claimed_by == worker,
               CatalogImport.status == Status.RUNNING)
        .values(status=Status.FAILED if error is not None else Status.DONE, items=items,
                error=error, current_file=None, lease_until=None, finished_at=clock.now()))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def directories_in_use(session: Session) -> set[str]:
    """The upload directories of imports not finished (their files must stay)."""
    return set(session.scalars(select(CatalogImport.directory).where(
        CatalogImport.status.not_in(Status.FINISHED))))
