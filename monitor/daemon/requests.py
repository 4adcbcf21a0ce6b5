"""Queued stage runs: the leader queues a due run of a stage it leaves to workers
(``daemon.worker_stages``); ``copyguard worker`` processes claim them.

A claim is one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so claiming workers
never wait on each other; SQLite's write lock serialises them) that sets a lease the worker
renews while it works. A worker that dies leaves its run ``running`` with a lease that runs out,
and the next claim takes it over; a run whose workers died ``MAX_ATTEMPTS`` times is marked
failed instead of taking more workers down. At most one run of a job is queued or running at a
time: a run that comes due while one waits coalesces into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from ledger.db import Ledger
from ledger.models import StageRequest
from ledger.models import StageRequestStatus as Status

MAX_ATTEMPTS = 3
KEEP_FINISHED = timedelta(days=7)  # finished runs are kept this long, for a look back


@dataclass(frozen=True)
class Claim:
    id: int
    job: str
    stage: str
    target: str | None
    attempt: int


def enqueue(session: Session, *, job: str, stage: str, target: str | None,
            now: datetime) -> bool:
    """Queue a run of ``job`` unless one is queued or running already (True if queued)."""
    waiting = session.execute(select(StageRequest.id).where(
        StageRequest.job == job,
        StageRequest.status.in_((Status.QUEUED, Status.RUNNING))).limit(1)).first()
    if waiting is not None:
        return False
    session.execute(delete(StageRequest).where(
        StageRequest.job == job, StageRequest.status.in_((Status.DONE, Status.FAILED)),
        StageRequest.finished_at < now - KEEP_FINISHED))
    session.add(StageRequest(job=job, stage=stage, target=target, status=Status.QUEUED,
                             requested_at=now, attempts=0))
    return True


def claim(ledger: Ledger, stage: str, *, worker: str, now: datetime,
          lease: timedelta) -> Claim | None:
    """The oldest queued run of ``stage`` (or one whose worker's lease ran out), now this
    worker's; None when there is none."""
    while True:
        with ledger.write() as session:
            query = (select(StageRequest).where(
                StageRequest.stage == stage,
                or_(StageRequest.status == Status.QUEUED,
                    (StageRequest.status == Status.RUNNING) & (StageRequest.lease_until < now)))
                .order_by(StageRequest.id).limit(1))
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            row = session.execute(query).scalar_one_or_none()
            if row is None:
                return None
            row.attempts += 1
            if row.attempts > MAX_ATTEMPTS:
                row.status, row.finished_at = Status.FAILED, now
                row.error = (f"its workers stopped without finishing it {MAX_ATTEMPTS} times "
                             f"(last: {row.claimed_by})")
                row.claimed_by, row.lease_until = None, None
                continue
            row.status, row.claimed_by, row.lease_until = Status.RUNNING, worker, now + lease
            row.started_at = now
            return Claim(row.id, row.job, row.stage, row.target, row.attempts)


def renew(ledger: Ledger, claim_id: int, *, worker: str, until: datetime) -> bool:
    """Extend this worker's lease; False if the run is no longer its own (the lease ran out
    and another worker took it over)."""
    with ledger.write() as session:
        row = session.get(StageRequest, claim_id)
        if row is None or row.status != Status.RUNNING or row.claimed_by != worker:
            return False
        row.lease_until = until
        return True


def finish(ledger: Ledger, claim_id: int, *, worker: str, now: datetime,
           error: str | None = None) -> None:
    """Close this worker's run as done or failed (a run another worker took over is left to
    that worker)."""
    with ledger.write() as session:
        row = session.get(StageRequest, claim_id)
        if row is None or row.claimed_by != worker or row.status != Status.RUNNING:
            return
        row.status = Status.FAILED if error else Status.DONE
        row.finished_at, row.error, row.lease_until = now, error, None


def depth(session: Session) -> dict[str, dict[str, int]]:
    """Queued and running runs per stage, for ``copyguard status`` and the metrics."""
    rows = session.execute(select(StageRequest.stage, StageRequest.status, func.count())
                           .where(StageRequest.status.in_((Status.QUEUED, Status.RUNNING)))
                           .group_by(StageRequest.stage, StageRequest.status)).all()
    out: dict[str, dict[str, int]] = {}
    for stage, status, n in rows:
        out.setdefault(str(stage), {})[str(status)] = int(n)
    return out
