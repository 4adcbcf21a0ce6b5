"""The scheduler: APScheduler 3.11, its job store in the ledger database.

Jobs are textual references with a stable id (``crawl:<target>``, ``identify``, ...), coalesced,
one instance at a time, with a misfire grace time. :func:`sync_jobs` brings them in line with
the targets and settings at each start: a job whose trigger is unchanged is kept as stored, so
its next run time survives a restart; a changed one is replaced; a removed target's crawl job is
deleted. New jobs run at once.
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config.schedule import parse_schedule
from ledger.targets import list_targets
from monitor.app import App
from monitor.daemon.jobs import job_id

JOB_FUNCTION = "monitor.daemon.jobs:run"
JOB_TABLE = "apscheduler_jobs"
_THREADS = 4  # crawls wait on their child processes; identify works in this one


def build_scheduler(app: App) -> BackgroundScheduler:
    daemon = app.settings.daemon
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=app.ledger.engine,
                                                 tablename=JOB_TABLE)},
        executors={"default": ThreadPoolExecutor(_THREADS)},
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
        if existing is not None and str(existing.trigger) == str(trigger) \
                and list(existing.args) == args:
            changes[name] = "kept"
            continue
        # A new job runs at once; a changed one from its new trigger's next time (passing
        # next_run_time=None would pause it: APScheduler's "undefined" is the default).
        first = now if existing is None else trigger.get_next_fire_time(None, now)
        scheduler.add_job(JOB_FUNCTION, trigger, args=args, id=name, name=name,
                          replace_existing=True, next_run_time=first)
        changes[name] = "added" if existing is None else "replaced"
    for name, change in sorted(changes.items()):
        log.info("job %s: %s", name, change)
    return changes
