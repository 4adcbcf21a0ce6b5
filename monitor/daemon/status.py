"""``copyguard status`` and the daily digest: how the daemon and each stage are doing, and the
depth of every queue, read from the ledger (so it works from any machine on the same database,
whether the daemon runs or not)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import MetaData, Table, func, inspect, select
from sqlalchemy.orm import Session

from ledger.models import (
    Capture,
    Case,
    CaseStatus,
    Detection,
    IdentifyStatus,
    Notice,
    StageRun,
)
from monitor.app import App
from monitor.daemon import requests

HEARTBEAT = "daemon"  # the stage_runs row the running daemon touches
WORKER_STAGE = "worker"  # stage of the rows each `copyguard worker` touches
HEARTBEAT_SECONDS = 30.0
STALE_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)


def _counts(session: Session, column: Any, *where: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).where(*where).group_by(column)).all()
    return {str(key): int(n) for key, n in rows}


def queues(session: Session) -> dict[str, Any]:
    return {
        "captures": _counts(session, Capture.identify_status),
        "detections": _counts(session, Detection.status),
        "notices": _counts(session, Notice.status),
        "cases": _counts(session, Case.status, Case.status != CaseStatus.MERGED),
        "captures_pending": int(session.scalar(select(func.count()).select_from(Capture).where(
            Capture.identify_status == IdentifyStatus.PENDING)) or 0),
        "queued_runs": requests.depth(session),
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat(timespec="seconds") if at else None


def status(app: App) -> dict[str, Any]:
    now = app.clock.now()
    with app.ledger.read() as session:
        rows = list(session.execute(select(StageRun).order_by(StageRun.job)).scalars())
        depth = queues(session)
        beat = next((r for r in rows if r.job == HEARTBEAT), None)
        running = _alive(beat, now)
        daemon = {"running": running, "worker": beat.worker if beat else None,
                  "started_at": _iso(beat.last_started_at) if beat else None,
                  "heartbeat_at": _iso(beat.last_finished_at) if beat else None}
        jobs = [{"job": r.job, "stage": r.stage, "status": r.last_status, "runs": r.runs,
                 "failures": r.failures, "failures_in_a_row": r.failures_in_a_row,
                 "last_started_at": _iso(r.last_started_at),
                 "last_finished_at": _iso(r.last_finished_at), "last_seconds": r.last_seconds,
                 "summary": r.last_summary, "error": r.last_error,
                 "retry_after": _iso(r.retry_after)}
                for r in rows if r.job != HEARTBEAT and r.stage != WORKER_STAGE]
        workers = [{"worker": r.worker, "stage": r.job.split(":")[1], "running": _alive(r, now),
                    "started_at": _iso(r.last_started_at),
                    "heartbeat_at": _iso(r.last_finished_at), "summary": r.last_summary}
                   for r in rows if r.stage == WORKER_STAGE]
    return {"daemon": daemon, "jobs": jobs, "workers": workers, "queues": depth,
            "next_runs": next_runs(app)}


def _alive(row: StageRun | None, now: datetime) -> bool:
    """A heartbeat row of a process that says it runs and has beaten lately."""
    return bool(row and row.last_status == "running" and row.last_finished_at
                and now - row.last_finished_at < STALE_AFTER)


def next_runs(app: App) -> dict[str, str | None]:
    """The job store's next run time of each job (empty before the daemon's first start)."""
    from monitor.daemon.scheduler import JOB_TABLE

    engine = app.ledger.engine
    if not inspect(engine).has_table(JOB_TABLE):
        return {}
    table = Table(JOB_TABLE, MetaData(), autoload_with=engine)
    with engine.connect() as connection:
        rows = connection.execute(select(table.c.id, table.c.next_run_time)).all()
    return {str(job): (datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="seconds")
                       if at else None) for job, at in rows}


def digest_text(app: App) -> str:
    """The daily digest: the last 24 hours and what waits for a person."""
    now = app.clock.now()
    since = now - timedelta(days=1)
    with app.ledger.read() as session:
        captured = session.scalar(select(func.count()).select_from(Capture).where(
            Capture.fetched_at >= since)) or 0
        detected = session.scalar(select(func.count()).select_from(Detection).where(
            Detection.detected_at >= since)) or 0
        sent = session.scalar(select(func.count()).select_from(Notice).where(
            Notice.sent_at >= since)) or 0
        depth = queues(session)
        failing = list(session.execute(select(StageRun).where(
            StageRun.failures_in_a_row > 0)).scalars())
    lines = [f"copyguard digest, {now:%Y-%m-%d %H:%M} UTC", "",
             f"last 24 hours: {captured} captures, {detected} detections, {sent} notices sent",
             f"waiting: {depth['captures_pending']} captures to identify, "
             f"{depth['detections'].get('review', 0)} detections and "
             f"{depth['notices'].get('review', 0)} notices for review, "
             f"{depth['notices'].get('unconfirmed', 0)} unconfirmed and "
             f"{depth['notices'].get('failed', 0)} failed notices, "
             f"{depth['cases'].get('candidate', 0)} new lawsuit candidates"]
    for row in failing:
        lines.append(f"failing: {row.job} ({row.failures_in_a_row} in a row): {row.last_error}")
    return "\n".join(lines) + "\n"
