"""The scheduler: APScheduler 3.11, its job store in the ledger database.

Jobs are textual references with a stable id (``crawl:<target>``, ``identify``, ...), coalesced,
one instance at a time, with a misfire grace time. :func:`sync_jobs` brings them in line with
the targets and settings at each start: a job whose trigger is unchanged is kept as stored, so
its next run time survives a restart; a changed one is replaced; a removed target's crawl job is
deleted. New jobs run at once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from config.schedule import parse_schedule
from ledger.models import StageRun
from ledger.targets import list_targets
from monitor.app import App
from monitor.daemon.jobs import job_id

JOB_FUNCTION = "monitor.daemon.jobs:run"
JOB_TABLE = "apscheduler_jobs"
_THREADS = 4  # the stages other than crawls; identify works in this process
# Crawls wait on their child processes for minutes to hours: a pool of their own, so that a
# busy crawl schedule never holds identify, takedown or the case queue back.
_CRAWL_THREADS = 4
CRAWL_EXECUTOR = "crawls"


def build_scheduler(app: App) -> BackgroundScheduler:
    daemon = app.settings.daemon
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=app.ledger.engine,
                                                 tablename=JOB_TABLE)},
        executors={"default": ThreadPoolExecutor(_THREADS),
                   CRAWL_EXECUTOR: ThreadPoolExecutor(_CRAWL_THREADS)},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": int(daemon.misfire_grace_seconds)},
        timezone=UTC)


def _interval(seconds: float) -> IntervalTrigger:
    return IntervalTrigger(seconds=seconds, timezone=UTC)


def wanted_jobs(app: App) -> dict[str, tuple[BaseTrigger, list[Any]]]:
    """Every job the settings and targets ask for: id -> (trigger, args)."""
    daemon = app.settings.daemon
    jobs: dict[str, tuple[BaseTrigger, list[Any]]] = {
        "identify": (_interval(daemon.identify_every_seconds), ["identify"]),
        "takedown": (_interval(daemon.takedown_every_seconds), ["takedown"]),
        "recheck": (_interval(daemon.recheck_every_seconds), ["recheck"]),
        "cases": (_interval(daemon.cases_every_seconds), ["cases"]),
    }
    if daemon.digest_at:
        hour, minute = daemon.digest_at.split(":")
        jobs["digest"] = (CronTrigger(hour=int(hour), minute=int(minute), timezone=UTC),
                          ["digest"])
    with app.ledger.read() as session:
        for target in list_targets(session):
            schedule = parse_schedule(target.schedule)
            trigger: BaseTrigger = (
                _interval(schedule.interval.total_seconds()) if schedule.interval
                else CronTrigger.from_crontab(schedule.cron or "", timezone=UTC))
            jobs[job_id("crawl", target.name)] = (trigger, ["crawl", target.name])
    return jobs


def sync_jobs(scheduler: BackgroundScheduler, app: App) -> dict[str, str]:
    """Add, keep, replace or remove jobs; what happened to each, for the log."""
    log = logging.getLogger(__name__)
    wanted = wanted_jobs(app)
    changes: dict[str, str] = {}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            scheduler.remove_job(job.id)
            changes[job.id] = "removed"
    now = app.clock.now()
    for name, (trigger, args) in wanted.items():
        existing = scheduler.get_job(name)
        executor = CRAWL_EXECUTOR if args[0] == "crawl" else "default"
        if existing is not None and str(existing.trigger) == str(trigger) \
                and list(existing.args) == args:
            if existing.executor != executor:
                # A job stored before crawls had a pool of their own: moved, keeping its
                # next run time.
                scheduler.modify_job(name, executor=executor)
            changes[name] = "kept"
            continue
        # A new job runs at once; a changed one from its new trigger's next time (passing
        # next_run_time=None would pause it: APScheduler's "undefined" is the default).
        first = now if existing is None else trigger.get_next_fire_time(None, now)
        scheduler.add_job(JOB_FUNCTION, trigger, args=args, id=name, name=name,
                          replace_existing=True, next_run_time=first, executor=executor)
        changes[name] = "added" if existing is None else "replaced"
    for name, change in sorted(changes.items()):
        log.info("job %s: %s", name, change)
    return changes


def resume_interrupted(scheduler: BackgroundScheduler, app: App) -> list[str]:
    """Jobs the last daemon left half-done run again at once instead of at their next time:

    - a job it was running when it died (``kill -9``, a crash, a power cut) or stopped in the
      middle (a crawl cut short by SIGTERM): a crawl carries on from its URL state, the other
      stages take up their pending rows;
    - a job whose run came due but never started: APScheduler moves a job's next run time on
      before it hands the run to a thread, so a daemon killed in between loses that run. Such a
      job has a fire time between its last start and its stored next run.

    Runs left to workers are not marked: their queued runs carry leases of their own."""
    log = logging.getLogger(__name__)
    now = app.clock.now()
    worker_stages = set(app.settings.daemon.worker_stages)
    resumed: list[str] = []
    with app.ledger.write() as session:
        rows = {row.job: row for row in session.execute(select(StageRun)).scalars()}
        for job in scheduler.get_jobs():
            row = rows.get(job.id)
            stage = job.args[0] if job.args else ""
            if row is not None and row.last_status in ("running", "interrupted") \
                    and stage not in worker_stages:
                row.last_status = "interrupted"
                resumed.append(job.id)
                log.warning("job %s: interrupted by the last daemon's end; running it again now",
                            job.id)
            elif job.next_run_time is not None and job.next_run_time > now and _lost_run(
                    job.trigger, job.next_run_time,
                    row.last_started_at if row is not None else None):
                resumed.append(job.id)
                log.warning("job %s: a run came due but never started (the last daemon "
                            "ended first); running it now", job.id)
    for name in resumed:
        scheduler.modify_job(name, next_run_time=now)
    return resumed


# A run's recorded start lags its fire time by the executor's pickup: never a whole second.
_START_SLACK = timedelta(seconds=1)


def _lost_run(trigger: BaseTrigger, next_run: datetime, since: datetime | None) -> bool:
    """Whether a fire time before ``next_run`` came after the last start ``since``. Every job
    runs at once when it is added, so one that never started lost that first run."""
    if since is None:
        return True
    if isinstance(trigger, IntervalTrigger):
        # An interval job's times are its first run plus whole intervals, not the trigger's
        # own start date (the time it was made plus one interval): count back from next_run.
        return next_run - trigger.interval > since + _START_SLACK
    due = trigger.get_next_fire_time(None, since + _START_SLACK)
    return due is not None and due < next_run
